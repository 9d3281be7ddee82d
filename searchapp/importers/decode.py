"""Bytes to text: the checks every import format shares before parsing.

An input must be non-empty UTF-8 (or UTF-16/32 with a byte-order mark) text of
sane size. Each way of failing gets its own message, with the line it was
found on, so the person importing knows what to fix. Line endings come out as
``\\n`` only, which is what the parsers count lines by.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO

from searchapp.errors import UndecodableInput

__all__ = ["BINARY", "MAX_BYTES", "MAX_LINE", "UndecodableInput", "decode", "looks_binary",
           "split_lines", "text_lines"]

MAX_BYTES = 100 * 1000 * 1000
MAX_LINE = 1_000_000
BINARY = "binary file, not text"  # (said on line 1, wherever the file has a NUL byte)

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
_CHUNK = 1 << 20  # bytes read at a time by `text_lines`


def decode(data: bytes, *, max_bytes: int | None = None, max_line: int = MAX_LINE) -> str:
    """The text of `data` with ``\\n`` line endings, or `UndecodableInput` (`max_bytes`
    is `MAX_BYTES` unless given)."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    if not data:
        raise UndecodableInput(1, "file is empty")
    if len(data) > max_bytes:
        raise UndecodableInput(1, f"file is larger than the limit of {max_bytes:,} bytes")
    text = _with_bom(data)
    if text is None:
        if looks_binary(data):
            raise UndecodableInput(1, BINARY)
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


def looks_binary(data: bytes) -> bool:
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
            raise UndecodableInput(number, _too_long(end - start, limit))
        start = end + 1
        number += 1


def split_lines(text: str) -> Iterator[str]:
    """The lines of `text` as ``text.split("\\n")`` gives them, one at a time: as a
    list, a text of short lines takes several times its size (a file of 50,000,000
    lines of one character, 400 MB)."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def text_lines(handle: BinaryIO, *, max_line: int = MAX_LINE, start: int = 0,
               end: int | None = None) -> Iterator[str]:
    """The lines of the UTF-8 text read from `handle`, one at a time and without their
    endings, as ``decode(whole).split("\\n")`` numbers them, in memory bounded by the
    longest line rather than the file.

    The checks are `decode`'s, made as the reading reaches them: `UndecodableInput`
    is raised on the line where one fails (after the lines before it were given),
    and at the end when no line held anything but whitespace. A read that fails
    (an `OSError`: a failing disk, a network mount gone) is `UndecodableInput` too,
    on the first line not wholly read, so that the caller forgets the file's lines
    given so far as it does for undecodable bytes. The caller has
    already refused an empty file, a UTF-16 or UTF-32 one, and one whose first
    bytes look binary (`looks_binary`).

    `start` and `end` read one part of a file (`importers.split`): `handle` is at
    byte `start` and the part ends before byte `end` (None: at the end of the
    file), both just after a line break. Its lines come numbered from 1, and fail
    as they fail when the whole file is read, which reads in chunks at the same
    offsets; a part is not refused for holding only whitespace.
    """
    number = 0
    seen_text = False
    carry = b""
    started = start > 0  # past the byte-order mark, if any
    position = start
    while True:
        chunk = _next_chunk(handle, position, end, number + 1)
        position += len(chunk)
        final = not chunk
        if not started:
            if chunk and len(carry) + len(chunk) < len(codecs.BOM_UTF8):
                carry += chunk
                continue
            chunk, carry, started = (carry + chunk).removeprefix(codecs.BOM_UTF8), b"", True
        if b"\x00" in chunk:
            raise UndecodableInput(1, BINARY)
        data = carry + chunk if carry else chunk
        if not data and not final:
            continue  # the chunk held only the byte-order mark
        lines = data.splitlines()  # bytes split on \r\n, \r and \n only
        # The last line may go on in the next chunk (and a final \r be half of a \r\n).
        if final or data.endswith(b"\n"):
            carry = b""
        elif data.endswith(b"\r"):
            carry = lines.pop() + b"\r"
        else:
            carry = lines.pop()
        for raw in lines:
            number += 1
            line = _checked(raw, number, max_line)
            if not seen_text and line and not line.isspace():
                seen_text = True
            yield line
        if final:
            break
        if len(carry) > 4 * max_line + 1:  # too long whatever its characters
            raise UndecodableInput(number + 1, _too_long(
                _rest_of_line(handle, carry, number + 1), max_line))
    if not seen_text and start == 0 and end is None:
        raise UndecodableInput(1, "file is empty (only whitespace)")


def _next_chunk(handle: BinaryIO, position: int, end: int | None, line: int) -> bytes:
    """The bytes from `position` to the end of its chunk, or to `end`, read on `line`."""
    if end is not None and position >= end:
        return b""
    chunk = _read(handle, line, _CHUNK - position % _CHUNK)
    if end is not None and position + len(chunk) > end:
        if b"\x00" in chunk:  # the whole file's reading refuses it before its lines
            raise UndecodableInput(1, BINARY)
        chunk = chunk[:end - position]
    return chunk


def _checked(raw: bytes, number: int, max_line: int) -> str:
    raw = raw.rstrip(b"\r")  # a carried \r\n's first half
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
        raise UndecodableInput(
            number, f"not UTF-8: byte 0x{raw[exc.start]:02X} in column {column} cannot be "
            "decoded (is the file Latin-1 or Windows-1252? save it as UTF-8)") from None
    if len(line) > max_line:
        raise UndecodableInput(number, _too_long(len(line), max_line))
    return line


def _read(handle: BinaryIO, line: int, size: int | None = None) -> bytes:
    """The next chunk of `handle` (`size` bytes, else `_CHUNK`), reading on `line`; a
    read that fails is `UndecodableInput` on that line."""
    try:
        return handle.read(_CHUNK if size is None else size)
    except OSError as exc:
        raise UndecodableInput(line, f"cannot read the file: {exc.strerror or exc}") from exc


def _rest_of_line(handle: BinaryIO, start: bytes, line: int) -> int:
    """The characters of line `line`, which began with `start`, read on to its end."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    length = len(decoder.decode(start))
    while chunk := _read(handle, line):
        end = min((i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0), default=-1)
        length += len(decoder.decode(chunk if end < 0 else chunk[:end]))
        if end >= 0:
            break
    return length + len(decoder.decode(b"", final=True))


def _too_long(length: int, limit: int) -> str:
    return f"line is {length:,} characters long; the limit is {limit:,}"
