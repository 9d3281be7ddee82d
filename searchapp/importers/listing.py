"""Listing pages: plain-text captures of an organisation's news page.

Two layouts, recognised by their shape, never by a particular page's wording:

- ``dated-blocks``: page chrome, then items made of a ``16 Mar 2017`` line, a
  title line, an optional type-label line, an optional summary paragraph and a
  ``Read more`` line;
- ``numbered-list``: a header line, then items made of an ``N. Label`` line, a
  title line, an optional ``27 September 2017`` line and an optional summary.

A page says nothing about who published it, so the organisation must come
from `Hints` (``--org`` or a manifest).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from searchapp.models import InvalidItem

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed

DATED_BLOCKS = "dated-blocks"
NUMBERED_LIST = "numbered-list"
LAYOUTS = (DATED_BLOCKS, NUMBERED_LIST)

_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")
_MONTHS = {name: number for number, full in enumerate(_MONTH_NAMES, 1)
           for name in (full, full[:3])} | {"sept": 9}

_DATE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]+)\.?,?\s+(\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# Lines that are meant as a date but are not in a form we read ("12 Foo 2017", "30.02.2017").
_LOOSE_DATE = re.compile(r"\d{1,4}(?:st|nd|rd|th)?[\s./-]+[A-Za-z]+\.?,?[\s./-]+\d{2,4}"
                         r"|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_READ_MORE = re.compile(r"read\s+more\b[\W_]*", re.IGNORECASE)
_NUMBERED = re.compile(r"(\d{1,4})[.)]\s+(\S.*)")
_SENTENCE_END = (".", "!", "?", "…", ",", ";", ":")

_Run = tuple[int, int, "_Run | None"]


@dataclass(slots=True)
class _Entry:
    """One item as the layout shows it, before any validation."""

    line: int
    title: str = ""
    kind: str | None = None
    summary: str = ""
    date_line: int = 0
    date_text: str | None = None


def parse(text: str, parsed: Parsed, hints: Hints) -> None:
    """Read every item of a listing page into `parsed` (a `Parser`)."""
    lines = [line.strip() for line in text.split("\n")]
    layout = hints.layout or detect_layout(lines)
    if layout == DATED_BLOCKS:
        entries = _dated_blocks(lines)
    elif layout == NUMBERED_LIST:
        entries = _numbered_list(lines)
    elif layout is None:
        parsed.problem(1, "no items found in this listing page (layout not recognised: expected "
                          "dated blocks ending in 'Read more', or a numbered list '1. Label')")
        return
    else:
        parsed.problem(1, f"unknown listing layout {layout!r}; expected one of "
                          f"{', '.join(LAYOUTS)}")
        return
    if not entries:
        parsed.problem(1, f"no items found in this listing page (layout {layout})")
        return
    if not hints.organisation:
        parsed.problem(1, f"cannot determine the organisation of {parsed.source}: a listing page "
                          "does not name it; pass --org NAME or list the file in a manifest.toml")
        return
    for entry in entries:
        fields: dict[str, Any] = {"title": entry.title, "summary": entry.summary}
        if entry.kind:
            fields["type"] = entry.kind
        if entry.date_text is not None:
            try:
                fields["date"] = to_date(entry.date_text)
            except InvalidItem as exc:
                parsed.problem(entry.date_line, str(exc))
                continue
        parsed.add(entry.line, fields, organisation=hints.organisation)


def detect_layout(lines: list[str]) -> str | None:
    """The layout whose item pattern the stripped `lines` show most, or None."""
    numbered = len(_numbered_starts(lines))
    dated = 0
    pending = False
    for line in lines:
        if is_date_line(line):
            pending = True
        elif pending and _READ_MORE.fullmatch(line):
            dated += 1
            pending = False
    if numbered == 0 and dated == 0:
        return None
    return NUMBERED_LIST if numbered >= dated else DATED_BLOCKS


def is_date_line(line: str) -> bool:
    """Whether a stripped line is only a date we can read (valid or not)."""
    match = _DATE.fullmatch(line)
    if match:
        return match[2].lower() in _MONTHS
    return bool(_ISO_DATE.fullmatch(line))


def to_date(text: str) -> dt.date:
    """``16 Mar 2017``, ``27 September 2017`` or ``2017-09-27`` as a date, else `InvalidItem`."""
    match = _DATE.fullmatch(text)
    if match:
        month = _MONTHS.get(match[2].lower())
        if month is None:
            raise InvalidItem(f"{text!r} is not a date like '16 Mar 2017': "
                              f"unknown month {match[2]!r}")
        day, year = int(match[1]), int(match[3])
    elif match := _ISO_DATE.fullmatch(text):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    else:
        raise InvalidItem(f"{text!r} is not a date like '16 Mar 2017' or '27 September 2017'")
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise InvalidItem(f"date {text!r} does not exist ({exc})") from None


def _paragraphs(lines: list[str], start: int, end: int) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines in ``lines[start:end]``, with 1-based line numbers."""
    paragraphs: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for index in range(start, end):
        if lines[index]:
            current.append((index + 1, lines[index]))
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _joined(paragraphs: list[list[tuple[int, str]]]) -> str:
    return " ".join(text for paragraph in paragraphs for _, text in paragraph)


# --- dated blocks -------------------------------------------------------------


def _dated_blocks(lines: list[str]) -> list[_Entry]:
    """Items from a date line to its ``Read more`` (or the next date); the rest is chrome."""
    entries: list[_Entry] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        # Before the first item only a well-formed date starts one; between items a
        # line that merely looks like a date does too, so its mistake gets reported.
        if not (is_date_line(line) or (entries and _LOOSE_DATE.fullmatch(line))):
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not (_READ_MORE.fullmatch(lines[end])
                                        or is_date_line(lines[end])):
            end += 1
        entries.append(_dated_entry(lines, index, end))
        index = end + 1 if end < len(lines) and _READ_MORE.fullmatch(lines[end]) else end
    return entries


def _dated_entry(lines: list[str], start: int, end: int) -> _Entry:
    entry = _Entry(line=start + 1, date_line=start + 1, date_text=lines[start])
    paragraphs = _paragraphs(lines, start + 1, end)
    if not paragraphs:
        return entry
    first, *others = paragraphs
    entry.title = first[0][1]
    if len(first) > 1:
        # No blank line after the title: this item puts one part per line.
        rest = first[1:]
        if _is_label(rest[0][1], relaxed=False):
            entry.kind = rest[0][1]
            rest = rest[1:]
        entry.summary = _joined([rest, *others])
    elif others and len(others[0]) == 1 and _is_label(others[0][0][1], relaxed=len(others) > 1):
        entry.kind = others[0][0][1]
        entry.summary = _joined(others[1:])
    else:
        entry.summary = _joined(others)
    return entry


def _is_label(text: str, *, relaxed: bool) -> bool:
    """A type label is a short phrase, not a sentence; two paragraphs after a title
    make the first more likely a label, so it may then be a little longer."""
    max_words, max_chars = (8, 60) if relaxed else (5, 40)
    return (len(text.split()) <= max_words and len(text) <= max_chars
            and not text.endswith(_SENTENCE_END) and "..." not in text and "…" not in text
            and any(char.isalpha() for char in text))


# --- numbered list ------------------------------------------------------------


def _numbered_starts(lines: list[str]) -> list[int]:
    """Indexes of the longest run of ``N. Label`` lines numbered one after another.

    Numbered lines outside that run (in chrome or inside a summary) are text.
    """
    # For each number, the longest run so far that ends on it, as a linked list
    # (length, index of its last line, the run before that line).
    best: dict[int, _Run] = {}
    longest: _Run | None = None
    for index, line in enumerate(lines):
        match = _NUMBERED.fullmatch(line)
        if not match:
            continue
        number = int(match[1])
        before = best.get(number - 1)
        run = (before[0] + 1 if before else 1, index, before)
        if number not in best or run[0] > best[number][0]:
            best[number] = run
            if longest is None or run[0] > longest[0]:
                longest = run
    starts: list[int] = []
    while longest is not None:
        starts.append(longest[1])
        longest = longest[2]
    return starts[::-1]


def _numbered_list(lines: list[str]) -> list[_Entry]:
    """Items from one ``N. Label`` line to the next; what precedes the first is the header."""
    starts = _numbered_starts(lines)
    entries: list[_Entry] = []
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(lines)
        match = _NUMBERED.fullmatch(lines[start])
        assert match is not None
        entry = _Entry(line=start + 1, kind=match[2])
        content = [pair for paragraph in _paragraphs(lines, start + 1, end) for pair in paragraph]
        if content and not is_date_line(content[0][1]):
            entry.title = content[0][1]
            content = content[1:]
        if content and (is_date_line(content[0][1]) or _LOOSE_DATE.fullmatch(content[0][1])):
            entry.date_line, entry.date_text = content[0]
            content = content[1:]
        entry.summary = " ".join(text for _, text in content if not _READ_MORE.fullmatch(text))
        entries.append(entry)
    return entries
