"""What a health check asks of an index generation: everything searches need, read afresh.

`check` opens a new reader over the live generation (not the one serving) and, for
every segment, checks its files are there and readable, reads a stored
document at each end and the first postings of every field
(`segments.check_segment`), and verifies its posting
arrays file (size, checksums and structure: `arrayfile.verify`). A segment that
fails the first cannot be searched at all (`broken`: searches answer 503 with the
same reason); a damaged arrays file only slows its segment down (`slowed`: the
arrays path reads Whoosh's postings for it instead, counted in `FALLBACKS`).

An import's update may replace the table of contents the check opened while the
check reads it: the segments it merged away are deleted, and Whoosh opens some of
their files only when first read (the stored fields), so those reads fail on a
healthy index. A check that finds anything wrong, when the live generation or its
table of contents is no longer the one it opened (`Look.replaced`), checks the new
one instead, up to `ATTEMPTS` tables of contents in all: only what persists is
reported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from whoosh.index import Index

from searchapp.engine import arrayfile, segments

if TYPE_CHECKING:
    from searchapp.indexer import IndexStore

log = logging.getLogger(__name__)

# How many tables of contents one check opens at most: a second and third only when the
# one before was replaced while it was read and something seemed wrong (an import's
# update merging segments away every moment would be needed to use them all).
ATTEMPTS = 3


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


class Look:
    """One check of the live generation of `store`, opened (its files listed, a reader
    over its table of contents) but not yet read (`read`): `check`'s two steps, apart
    so that what happens between them can be tried (`check(store, first=...)`).
    `IndexUnavailable` when the generation does not open at all."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store
        self._stamp = store.pointer_stamp()
        self._ix = store.open_index()
        self._reader: Any = None
        try:
            self._toc = self._ix.latest_generation()
            self._found = missing(self._ix)
            if self._found.broken:
                return
            self._found.segments = 0
            try:
                self._reader = self._ix.reader()
            except Exception as exc:  # noqa: BLE001 (Whoosh raises many kinds on damaged files)
                self._found.broken.append(f"its segments cannot be opened"
                                          f" ({exc.__class__.__name__}: {exc})")
                return
            generation = self._reader.generation()
            if isinstance(generation, int) and generation >= 0:
                self._toc = generation  # (a newer one may have come since the listing)
        except BaseException:
            self.close()
            raise

    def read(self) -> Checked:
        """Read what searches need from every segment (see the module docstring)."""
        found = self._found
        if self._reader is None:
            return found
        for leaf, _ in self._reader.leaf_readers():
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
        return found

    def replaced(self) -> bool:
        """Whether what this look opened is no longer live: another generation swapped in,
        or a newer table of contents written in the same one (an import's update)."""
        if self._store.pointer_stamp() != self._stamp:
            return True
        try:
            return bool(self._ix.latest_generation() != self._toc)
        except OSError:
            return True

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._ix.close()


def check(store: IndexStore, *, first: Look | None = None,
          attempts: int = ATTEMPTS) -> Checked:
    """Read what searches need from every segment of the live generation of `store`
    (see the module docstring), beginning with the look `first` when given. What a look
    finds wrong while its table of contents was replaced under it is checked again in
    the new one; the last look's findings are returned."""
    look = first if first is not None else Look(store)
    for _ in range(attempts - 1):
        try:
            found = look.read()
            if found.problem() is None or not look.replaced():
                return found
        finally:
            look.close()
        log.info("a health check's table of contents was replaced while it read it (an"
                 " import's update or a rebuild): checked again in the new one (it had"
                 " found: %s)", found.problem())
        look = Look(store)
    try:
        return look.read()
    finally:
        look.close()
