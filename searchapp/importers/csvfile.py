"""CSV files: a header row naming item fields, then one item per record.

Header names are matched case-insensitively, surrounding spaces ignored; an
empty cell counts as an absent field. Each record is reported on the physical
line it starts on, which differs from its row number once a quoted field spans
lines.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from searchapp.importers.decode import MAX_LINE, split_lines
from searchapp.models import FIELDS

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed

COLUMNS = (*FIELDS, "year")
_DELIMITERS = (",", ";", "\t")
# The longest field read: an unquoted one is within a line anyway. The csv module's own
# limit (131,072) stopped reading the file at a field too long for an item, so the
# records after it were lost; past this one, a quoted field is an unclosed quote.
MAX_FIELD_CHARS = MAX_LINE


def parse(text: str, parsed: Parsed, hints: Hints) -> None:
    """Read every record of a CSV text into `parsed` (a `Parser`)."""
    parse_lines(split_lines(text), parsed, hints)


def parse_lines(lines: Iterable[str], parsed: Parsed, hints: Hints) -> None:
    """Read every record of a CSV text, given line by line without line endings (the
    first is line 1), into `parsed`."""
    given = iter(lines)
    blank: list[str] = []
    header = ""
    for line in given:
        if line.strip():
            header = line
            break
        blank.append(line)
    # What the csv module reads: the lines again, each with its ending.
    ended: Iterator[str] = (line + "\n" for line in itertools.chain(blank, [header], given))
    csv.field_size_limit(MAX_FIELD_CHARS)  # (the module keeps one limit for every reader)
    reader = csv.reader(ended, delimiter=_delimiter(header), strict=True)
    names: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if _report(exc, start, reader.line_num, parsed):
                continue
            return
        if not any(cell.strip() for cell in row):
            continue
        if names is None:
            names = [cell.strip().lower() for cell in row]
            if not _header_ok(names, start, parsed):
                return
            continue
        _row(row, names, start, parsed, hints)
    if names is None:
        parsed.problem(1, "CSV has no header row")


def _delimiter(header: str) -> str:
    """Comma, unless the header line plainly uses semicolons or tabs."""
    return max(_DELIMITERS, key=header.count) if header.count(",") == 0 else ","


def _header_ok(names: list[str], line: int, parsed: Parsed) -> bool:
    """Check the header in one pass over it (a header may have 100,000 columns)."""
    counts = Counter(name for name in names if name)
    if "title" not in counts:
        found = _listed(list(counts)) or "no named columns"
        parsed.problem(line, f"CSV header has no title column (found: {found})")
        return False
    unknown = [name for name in counts if name not in COLUMNS]
    if unknown:
        parsed.problem(line, f"CSV header has unknown column(s) {_listed(unknown)}; "
                             f"expected some of {', '.join(COLUMNS)}")
        return False
    repeated = sorted(name for name, n in counts.items() if n > 1)
    if repeated:
        times = ", ".join(f"{name!r} {counts[name]:,} times" for name in repeated)
        parsed.problem(line, f"CSV header names column(s) more than once: {times}")
        return False
    return True


def _listed(names: list[str], *, shown: int = 20) -> str:
    """The first `shown` names quoted, and how many more there are."""
    text = ", ".join(repr(name[:100]) for name in names[:shown])
    return text + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


def _row(row: list[str], names: list[str], line: int, parsed: Parsed, hints: Hints) -> None:
    if len(row) > len(names):
        parsed.problem(line, f"record has {len(row)} cells but the header has {len(names)} "
                             "columns (an unquoted comma?)")
        return
    unnamed = [number for number, (name, cell) in enumerate(zip(names, row), 1)
               if not name and cell.strip()]
    if unnamed:
        parsed.problem(line, f"value in column {unnamed[0]}, which has no name in the header")
        return
    fields = {name: cell for name, cell in zip(names, row) if name and cell.strip()}
    parsed.add(line, fields, organisation=hints.organisation)


def _report(exc: csv.Error, start: int, stop: int, parsed: Parsed) -> bool:
    """Report a CSV syntax error; whether reading can go on after it."""
    reason = str(exc)
    if "unexpected end of data" in reason:
        parsed.problem(start, "unclosed quote: a quoted field in the record starting on this "
                              "line is never closed (it runs to the end of the file)")
        return False
    if "field larger than field limit" in reason:
        parsed.problem(start, f"a field in the record starting on this line is longer than "
                              f"{MAX_FIELD_CHARS:,} characters (an unclosed quote?); the rest"
                              " of the file was not read")
        return False
    hint = f" (the record runs to line {stop}; is a quote left unclosed?)" if stop > start else ""
    parsed.problem(start, f"malformed CSV: {reason}{hint}")
    return True
