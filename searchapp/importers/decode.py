"""Bytes to text: the checks every import format shares before parsing.

An input must be non-empty UTF-8 (or UTF-16/32 with a byte-order mark) text of
sane size. Each way of failing gets its own message, with the line it was
found on, so the person importing knows what to fix. Line endings come out as
``\\n`` only, which is what the parsers count lines by.
"""

from __future__ import annotations

import codecs
import re

from searchapp.errors import UndecodableInput

__all__ = ["MAX_BYTES", "MAX_LINE", "UndecodableInput", "decode"]

MAX_BYTES = 100 * 1000 * 1000
MAX_LINE = 1_000_000

# Byte-order marks we decode, longest first (the UTF-32 LE mark starts with UTF-16's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_HIGH_BYTES = re.compile(rb"[\x80-\xff]")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_SAMPLE = 8192


def decode(data: bytes, *, max_bytes: int = MAX_BYTES, max_line: int = MAX_LINE) -> str:
    """The text of `data` with ``\\n`` line endings, or `UndecodableInput`."""
    if not data:
        raise UndecodableInput(1, "file is empty")
    if len(data) > max_bytes:
        raise UndecodableInput(1, f"file is larger than the limit of {max_bytes:,} bytes")
    text = _with_bom(data)
    if text is None:
        if _looks_binary(data):
            raise UndecodableInput(1, "binary file, not text")
        text = _utf8(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UndecodableInput(1, "file is empty (only whitespace)")
    _check_line_lengths(text, max_line)
    return text


def _with_bom(data: bytes) -> str | None:
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                before = data[:exc.start].decode(codec, errors="replace")
                line = len(re.findall(r"\r\n|\r|\n", before)) + 1
                raise UndecodableInput(
                    line, f"not valid {label} text although the file starts with a {label} "
                    f"byte-order mark (undecodable bytes at byte offset {exc.start})"
                ) from None
    return None


def _looks_binary(data: bytes) -> bool:
    """NUL bytes, many control bytes, or mostly bytes no text encoding would use much."""
    if b"\x00" in data:
        return True
    sample = data[:_SAMPLE]
    if len(_CONTROL_BYTES.findall(sample)) > len(sample) * 0.1:
        return True
    if len(_HIGH_BYTES.findall(sample)) <= len(sample) * 0.3:
        return False
    try:
        # A sample may end inside a character; valid UTF-8 up to there is still text.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return True
    return False


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of_offset(data, exc.start)
        start = _last_break(data, exc.start)
        column = len(data[start:exc.start].decode("utf-8", errors="replace")) + 1
        raise UndecodableInput(
            line, f"not UTF-8: byte 0x{data[exc.start]:02X} in column {column} cannot be "
            "decoded (is the file Latin-1 or Windows-1252? save it as UTF-8)"
        ) from None


def _line_of_offset(data: bytes, offset: int) -> int:
    return len(_LINE_BREAK.findall(data, 0, offset)) + 1


def _last_break(data: bytes, offset: int) -> int:
    """Offset just after the line break before `offset` (0 on the first line)."""
    return max(data.rfind(b"\n", 0, offset), data.rfind(b"\r", 0, offset)) + 1


def _check_line_lengths(text: str, limit: int) -> None:
    if len(text) <= limit:
        return
    start = 0
    number = 1
    while start <= len(text):
        end = text.find("\n", start)
        if end == -1:
            end = len(text)
        if end - start > limit:
            raise UndecodableInput(
                number, f"line is {end - start:,} characters long; the limit is {limit:,}"
            )
        start = end + 1
        number += 1
