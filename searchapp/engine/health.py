"""What a health check asks of an index generation: everything searches need, read afresh.

`check` opens a new reader over the generation (not the one serving) and, for
every segment, checks its files are there and readable, reads a stored
document at each end and the first postings of every field
(`segments.check_segment`), and verifies its posting
arrays file (size, checksums and structure: `arrayfile.verify`). A segment that
fails the first cannot be searched at all (`broken`: searches answer 503 with the
same reason); a damaged arrays file only slows its segment down (`slowed`: the
arrays path reads Whoosh's postings for it instead, counted in `FALLBACKS`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from whoosh.index import Index

from searchapp.engine import arrayfile, segments


@dataclass(slots=True)
class Checked:
    segments: int = 0  # segments opened
    files: int = 0  # their files read
    arrays: int = 0  # posting arrays files verified
    broken: list[str] = field(default_factory=list)  # searches cannot answer (503)
    slowed: list[str] = field(default_factory=list)  # searches answer, more slowly

    def to_dict(self) -> dict[str, Any]:
        return {"segments": self.segments, "files": self.files, "arrays": self.arrays}

    def problem(self) -> str | None:
        """The reason for people, or None when all is well."""
        if self.broken:
            return (f"the index is damaged: {'; '.join(self.broken)}; run `searchapp"
                    " reindex` to rebuild it from the catalog")
        if self.slowed:
            return (f"{'; '.join(self.slowed)}: searches of those segments read Whoosh's"
                    " postings instead, more slowly; run `searchapp reindex` to write them"
                    " anew")
        return None


def missing(ix: Index) -> Checked:
    """Only whether every segment of `ix` has its files, readable (a directory listing:
    cheap enough to do before each reader is opened)."""
    found = Checked()
    listed = segments.segment_files(ix)
    if listed is not None:
        folder, ids = listed
        found.segments = len(ids)
        names = os.listdir(folder)
        for segid in ids:
            present = {name for name in names if name.startswith(f"{segid}.")}
            found.broken.extend(segments.missing_files(folder, segid, present))
            found.files += len(present)
    return found


def check(ix: Index) -> Checked:
    """Read what searches need from every segment of `ix` (see the module docstring)."""
    found = missing(ix)
    if found.broken:
        return found
    found.segments = 0
    try:
        reader = ix.reader()
    except Exception as exc:  # noqa: BLE001 (Whoosh raises many kinds on damaged files)
        found.broken.append(f"its segments cannot be opened ({exc.__class__.__name__}:"
                            f" {exc})")
        return found
    try:
        for leaf, _ in reader.leaf_readers():
            found.segments += 1
            found.broken.extend(segments.check_segment(leaf))
            where = segments.arrays_path(leaf)
            if where is None or not os.path.exists(where[0]):
                continue  # segments Whoosh wrote itself have none
            why = arrayfile.verify(*where)
            if why is not None:
                found.slowed.append(f"the posting arrays file {os.path.basename(where[0])}"
                                    f" is damaged ({why})")
            else:
                found.arrays += 1
    finally:
        reader.close()
    return found
