"""JSON Lines (one item object per line) and JSON files of item objects.

Besides JSON Lines, a JSON array of objects and pretty-printed objects one
after another are read. Problems are reported on the line where the object
starts, also when an object spreads over many lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from searchapp.importers.decode import split_lines

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")  # what JSON counts as whitespace
_SURROGATE = re.compile(r"[\ud800-\udfff]")
TOO_DEEP = "invalid JSON: arrays or objects nested too deeply"


class _Unusable(ValueError):
    """A JSON value that parsed but cannot be an item's text; the message says why."""


def parse(text: str, parsed: Parsed, hints: Hints) -> None:
    """Read every object of a JSON Lines or JSON text into `parsed` (a `Parser`)."""
    start = _skip_space(text, 0)
    if text.startswith("[", start):
        _array(text, parsed, hints)
    elif _first_value_spans_lines(text, start):
        _stream(text, parsed, hints)
    else:
        parse_lines(split_lines(text), parsed, hints)


def one_per_line(first_line: str) -> bool | None:
    """Whether a text starting with this line (its first with anything but
    whitespace) is read one value per line, as JSON Lines, by `parse`: True
    when the line holds a whole value, False when it opens an array, and None
    when it cannot tell from this line alone (the first value may span lines).
    """
    start = _skip_space(first_line, 0)
    if first_line.startswith("[", start):
        return False
    try:
        _DECODER.raw_decode(first_line, start)
    except (json.JSONDecodeError, RecursionError):
        return None
    return True


def _first_value_spans_lines(text: str, start: int) -> bool:
    try:
        _, end = _DECODER.raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError):
        return False
    return "\n" in text[start:end]


def parse_lines(lines: Iterable[str], parsed: Parsed, hints: Hints) -> None:
    """Read JSON Lines, given line by line (the first is line 1), into `parsed`."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed.problem(number, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            parsed.problem(number, TOO_DEEP)
            continue
        _record(value, number, parsed, hints)


def _decode(text: str, start: int, line: int, parsed: Parsed, hints: Hints) -> int | None:
    """Read the value at `start` as a record; its end, or None after a JSON error."""
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        parsed.problem(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
        return None
    except RecursionError:
        parsed.problem(line, TOO_DEEP)
        return None
    _record(value, line, parsed, hints)
    return end


def _stream(text: str, parsed: Parsed, hints: Hints) -> None:
    """Values one after another, each on as many lines as it likes."""
    position, line = 0, 1
    while True:
        start = _skip_space(text, position)
        line += text.count("\n", position, start)
        if start >= len(text):
            return
        end = _decode(text, start, line, parsed, hints)
        if end is None:
            return
        line += text.count("\n", start, end)
        position = end


def _array(text: str, parsed: Parsed, hints: Hints) -> None:
    """Walk the array one element at a time, so each keeps the line it starts on."""
    position = _skip_space(text, 0) + 1  # just past "["
    line = 1 + text.count("\n", 0, position)
    expect_value = True
    elements = 0
    while True:
        start = _skip_space(text, position)
        line += text.count("\n", position, start)
        if start >= len(text):
            parsed.problem(line, "invalid JSON: the array is not closed with ']'")
            return
        if text[start] == "]" and (not expect_value or elements == 0):
            break
        if not expect_value:
            if text[start] != ",":
                parsed.problem(line, f"invalid JSON: expected ',' or ']' after an array element, "
                                     f"found {text[start]!r}")
                return
            position = start + 1
            expect_value = True
            continue
        end = _decode(text, start, line, parsed, hints)
        if end is None:
            return
        elements += 1
        line += text.count("\n", start, end)
        position = end
        expect_value = False
    rest = _skip_space(text, start + 1)
    if rest < len(text):
        parsed.problem(1 + text.count("\n", 0, rest),
                       "invalid JSON: unexpected text after the end of the array")


def _skip_space(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _record(value: Any, line: int, parsed: Parsed, hints: Hints) -> None:
    if not isinstance(value, dict):
        parsed.problem(line, f"expected a JSON object for an item, found {_json_type(value)}")
        return
    try:
        for key, field in value.items():
            if not key.isascii():  # (ASCII holds no surrogate: most text ends here)
                _check_text(key, "a field name")
            if isinstance(field, str) and not field.isascii():
                _check_text(field, f"field {key!r}")
    except _Unusable as exc:
        parsed.problem(line, str(exc))
        return
    parsed.add(line, value, organisation=hints.organisation)


def _check_text(text: str, what: str) -> None:
    """JSON's \\u escapes can spell half a surrogate pair, which is no character at all
    (`_record` asks only of text that is not ASCII)."""
    found = _SURROGATE.search(text)
    if found:
        raise _Unusable(f"invalid JSON text: {what} has a lone surrogate"
                        f" \\u{ord(found[0]):04x} (half of a \\u pair; not a character)")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"
