"""Import formats: bytes in, validated `Item`s (with line numbers) or problems out.

One module per format, registered in `PARSERS`. Importers never write: the
caller decides, after the whole input is validated, whether to store anything.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from searchapp.errors import BadParameter, Problem
from searchapp.importers import csvfile, feed, htmlpage, jsonl, listing, sniff, split
from searchapp.importers.decode import (
    MAX_BYTES,
    UndecodableInput,
    decode,
    looks_binary,
    text_lines,
)
from searchapp.models import InvalidItem, Item, build_item, derive_id
from searchapp.urls import BadUrl, absolute_url

if TYPE_CHECKING:
    from searchapp.importers.spool import Spool

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "PARSERS",
    "Hints",
    "Parsed",
    "Parser",
    "Record",
    "check_organisations",
    "collect",
    "guess_format",
    "parse_bytes",
    "read_file",
]

FORMATS = ("auto", "listing", "jsonl", "csv", "feed", "html")
# File extensions a directory import picks up, and the format each implies. Feeds and
# HTML pages are told by their content whatever their name, so they imply nothing.
EXTENSIONS = {".txt": None, ".text": None, ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".json": "jsonl", ".csv": "csv", ".xml": None, ".rss": None, ".atom": None,
              ".rdf": None, ".html": None, ".htm": None}
MANIFEST = "manifest.toml"
_MANIFEST_KEYS = ("path", "organisation", "layout", "source_url", "language")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")


@dataclass(frozen=True, slots=True)
class Record:
    """One valid item and the line of the input it starts on."""

    line: int
    item: Item


@dataclass(slots=True)
class Parsed:
    """Everything read from one input: the valid records and what was wrong."""

    source: str
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    source_url: str | None = None  # the feed or page address, kept on each item
    # The items' language where a record gives none (a source's, a manifest's or
    # `--language`); with neither, each item's is detected (`build_item`).
    language: str | None = None
    # Where valid records go instead of `records`, when given (a `Spool` reading a file
    # of any size one record at a time).
    sink: Callable[[Record], None] | None = field(default=None, repr=False, compare=False)
    # Where problems go instead of `problems`, as (line, message), when given (a `Spool`:
    # a file of nothing but invalid lines has as many problems as lines).
    problem_sink: Callable[[int, str], None] | None = field(default=None, repr=False,
                                                            compare=False)

    def problem(self, line: int, message: str) -> None:
        if self.problem_sink is None:
            self.problems.append(Problem(self.source, line, message))
        else:
            self.problem_sink(line, message)

    def add(self, line: int, fields: Mapping[str, Any], *, organisation: str | None) -> None:
        """Validate one raw record with `build_item`: a `Record` if valid, else a problem."""
        try:
            item = build_item(fields, organisation=organisation, source=self.source,
                              source_url=self.source_url, language=self.language)
        except InvalidItem as exc:
            self.problem(line, str(exc))
            return
        if self.sink is None:
            self.records.append(Record(line, item))
        else:
            self.sink(Record(line, item))


@dataclass(frozen=True, slots=True)
class Hints:
    """What the caller knows about an input besides its bytes."""

    organisation: str | None = None  # from --org or a manifest
    layout: str | None = None  # listing layout from a manifest
    # The address of the page or feed (a manifest's source_url, --url, the fetched URL):
    # relative links resolve against it and items keep it as their `source_url`.
    url: str | None = None
    # CSS selectors (fields in htmlpage.SELECTOR_FIELDS) for HTML pages that mark up
    # nothing we recognise; when given they replace the automatic readers.
    selectors: Mapping[str, str] | None = None
    # The items' language where they declare none: beats a feed's or page's own
    # declaration (see articles.choose_language); otherwise it is detected per item.
    language: str | None = None
    type_from_category: bool = False  # a feed or page item's first category is its type


Parser = Callable[[bytes, Parsed, Hints], None]


def _text_format(parse: Callable[[str, Parsed, Hints], None]) -> Parser:
    """A parser of text formats, behind the shared decoding checks."""

    def parse_bytes(data: bytes, parsed: Parsed, hints: Hints) -> None:
        try:
            text = decode(data)
        except UndecodableInput as exc:
            parsed.problem(exc.line, exc.message)
            return
        parse(text, parsed, hints)

    return parse_bytes


def _markup_format(parse: Parser) -> Parser:
    """A parser of feeds or HTML, which read their own charset declarations."""

    def parse_bytes(data: bytes, parsed: Parsed, hints: Hints) -> None:
        if not data.strip():
            parsed.problem(1, "file is empty" if not data else "file is empty (only whitespace)")
        elif len(data) > MAX_BYTES:
            parsed.problem(1, f"file is larger than the limit of {MAX_BYTES:,} bytes")
        elif b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            parsed.problem(1, "binary file, not text")
        else:
            parse(data, parsed, hints)

    return parse_bytes


_TEXT_PARSERS: dict[str, Callable[[str, Parsed, Hints], None]] = {
    "listing": listing.parse, "jsonl": jsonl.parse, "csv": csvfile.parse}
# Every format reads bytes: the text formats share decode.py's strict UTF-8 checks,
# feeds and HTML pages decode as their own declarations say.
PARSERS: dict[str, Parser] = {
    **{name: _text_format(parse) for name, parse in _TEXT_PARSERS.items()},
    "feed": _markup_format(feed.parse), "html": _markup_format(htmlpage.parse),
}


def parse_bytes(data: bytes, *, name: str, fmt: str = "auto", hints: Hints = Hints(),
                spool: Spool | None = None) -> Parsed:
    """Decode and parse one input named `name`; nothing is raised for bad content.

    With a `spool`, the input's problems go there as they are found, and its
    valid records once it is read (`Spool.take`).

    Raises `BadParameter` only for a `fmt` that is not one of `FORMATS`.
    """
    if fmt not in FORMATS:
        raise BadParameter("format", f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
    parsed = _new_parsed(name, hints)
    if not parsed.problems:
        if spool is not None:
            spool.take(parsed, records=False)
        _parse(data, parsed, fmt, hints)
    if spool is not None:
        spool.take(parsed)
    return parsed


def _parse(data: bytes, parsed: Parsed, fmt: str, hints: Hints) -> None:
    chosen, text = _sniff_format(data, parsed, hints) if fmt == "auto" else (fmt, None)
    if chosen is None:
        return
    if text is not None and chosen in _TEXT_PARSERS:
        _TEXT_PARSERS[chosen](text, parsed, hints)  # decoded (and checked) while sniffing
    else:
        PARSERS[chosen](data, parsed, hints)
    _drop_duplicates(parsed)
    parsed.problems.sort(key=lambda problem: problem.line)


def _new_parsed(name: str, hints: Hints) -> Parsed:
    """An empty `Parsed` for an input, with a problem when its page address is unusable."""
    parsed = Parsed(name, language=hints.language)
    if hints.url:
        try:
            parsed.source_url = absolute_url(hints.url)
        except BadUrl as exc:
            parsed.problem(1, f"the page address is not usable: {exc}")
    return parsed


# Formats read one line at a time from a file of any size (see `_stream`).
STREAMED = ("jsonl", "csv")
_HEAD = 16384
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE,
              codecs.BOM_UTF16_BE)


def _stream(handle: BinaryIO, size: int, name: str, *, fmt: str, hints: Hints,
            spool: Spool) -> Parsed | None:
    """Read a JSON Lines or CSV file line by line into `spool`, checked as `parse_bytes`
    checks it, a big JSON Lines file in two processes (`split`); None (read it whole)
    for other formats and for JSON whose first value may span lines."""
    head = handle.read(_HEAD)
    handle.seek(0)
    if not head or head.startswith(_WIDE_BOMS) or hints.layout or looks_binary(head):
        return None
    text = head.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="ignore")
    if fmt == "auto":
        if sniff.sniff(head):
            return None
        fmt = guess_format(name, text, hints=hints)
    if fmt not in STREAMED:
        return None
    if fmt == "jsonl":
        lines = re.split(r"\r\n|\r|\n", text)
        first = next((k for k, line in enumerate(lines) if line.strip()), None)
        whole = first is not None and (first < len(lines) - 1 or len(head) == size)
        one = jsonl.one_per_line(lines[first]) if whole and first is not None else None
        if first is not None and lines[first].lstrip().startswith("["):
            one = False
        if one is False or (one is None and size <= MAX_BYTES):
            return None  # an array, or values spread over lines: read whole
    parsed = _new_parsed(name, hints)
    refused = bool(parsed.problems)
    spool.take(parsed)  # (its problems, if any, are the import's)
    if refused:
        return parsed
    try:
        if fmt == "csv":
            csvfile.parse_lines(text_lines(handle), parsed, hints)
        elif not split.read_in_two(handle, size, parsed, hints, spool):
            jsonl.parse_lines(text_lines(handle), parsed, hints)
    except UndecodableInput as exc:
        spool.discard(parsed)
        parsed.problem(exc.line, exc.message)
    return parsed


def _sniff_format(data: bytes, parsed: Parsed, hints: Hints) -> tuple[str | None, str | None]:
    """The format of raw bytes, and their text when a text format needed decoding to
    tell; no format, with a problem, for XML that is no feed."""
    if hints.layout:
        return "listing", None
    kind = sniff.sniff(data)
    if kind == sniff.XML:
        parsed.problem(1, f"an XML document with root element <{sniff.root_name(data)}> is"
                          " not a feed (expected <rss>, <feed> or <rdf:RDF>) nor an HTML page")
        return None, None
    if kind:
        return kind, None
    try:
        text = decode(data)
    except UndecodableInput:
        return "listing", None  # the text parser reports why it cannot be read
    return guess_format(parsed.source, text, hints=hints), text


def guess_format(name: str, text: str, *, hints: Hints = Hints()) -> str:
    """The format of an input: a manifest layout, else markup by its first element (a
    feed or an HTML page), else its extension, else its first line."""
    if hints.layout:
        return "listing"
    kind = sniff.sniff(text.encode("utf-8"))
    if kind in (sniff.FEED, sniff.HTML):
        return kind
    implied = EXTENSIONS.get(Path(name).suffix.lower())
    if implied:
        return implied
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    if first.startswith(("{", "[")):
        return "jsonl"
    cells = [cell.strip().strip('"').strip().lower() for cell in re.split(r"[,;\t]", first)]
    if len(cells) > 1 and "title" in cells:
        return "csv"
    return "listing"


def _drop_duplicates(parsed: Parsed) -> None:
    """Keep the first record of each id; report the others."""
    first_line: dict[str, int] = {}
    kept: list[Record] = []
    for record in parsed.records:
        item = record.item
        if item.id not in first_line:
            first_line[item.id] = record.line
            kept.append(record)
            continue
        parsed.problem(record.line, duplicate_id(item.id, item.organisation, item.date,
                                                 item.title, first_line[item.id]))
    parsed.records = kept


def duplicate_id(item_id: str, organisation: str, date: dt.date | None, title: str,
                 first_line: int) -> str:
    """The problem of an item whose id an earlier record of its input has."""
    same = ""
    if item_id == derive_id(organisation, date, title):
        same = ": same organisation, date and title"
    return f"duplicate id {item_id!r} (first on line {first_line}){same}"


def moved_id(item_id: str, organisation: str, owner: str) -> str:
    """The problem of a record whose id is stored for another organisation."""
    return (f"id {item_id!r} already belongs to an item of {owner}; an import cannot move"
            f" it to {organisation} (give this organisation's items ids of their own)")


def also_given(item_id: str, organisation: str, earlier: str, source: str, line: int) -> str:
    """The problem of a record whose id an earlier input gave another organisation."""
    return (f"id {item_id!r} is also given to an item of {earlier} ({source}:{line}); an id"
            " names one item of one organisation")


def check_organisations(parsed: Sequence[Parsed],
                        stored: Callable[[Sequence[str]], Mapping[str, str]]) -> None:
    """Turn every record that would move an item to another organisation into a problem.

    An id names one item of one organisation. A record whose id is stored for
    another organisation (`stored` looks ids up in the catalog), or is given by
    an earlier input of the same import for another organisation, would
    silently replace that organisation's item, so it is refused instead.
    """
    ids = [record.item.id for result in parsed for record in result.records]
    owners = dict(stored(ids))
    first: dict[str, tuple[str, int, str]] = {}
    for result in parsed:
        kept: list[Record] = []
        for record in result.records:
            item = record.item
            owner = owners.get(item.id)
            earlier = first.get(item.id)
            if owner is not None and owner != item.organisation:
                result.problem(record.line, moved_id(item.id, item.organisation, owner))
            elif earlier is not None and earlier[2] != item.organisation:
                result.problem(record.line, also_given(item.id, item.organisation, earlier[2],
                                                       earlier[0], earlier[1]))
            else:
                first.setdefault(item.id, (result.source, record.line, item.organisation))
                kept.append(record)
        result.records = kept
        result.problems.sort(key=lambda problem: problem.line)


# --- files, directories and manifests -------------------------------------------


# What `-` reads, as a path (`collect`).
STDIN = Path("/dev/stdin")


def collect(paths: Sequence[Path | str], *, fmt: str = "auto",
            organisation: str | None = None, defaults: Hints = Hints(),
            spool: Spool | None = None) -> list[Parsed]:
    """Parse every file named, or found in a named directory, in order.

    A directory with a ``manifest.toml`` imports the files it lists, with their
    organisation, layout and source url; otherwise every file with a known
    extension. `organisation` (``--org``) is the fallback where neither the
    record nor a manifest gives one; `defaults` carries the other options given
    (``--url``, ``--select``, ``--language``, ``--type-from-category``), a
    manifest's values winning. Problems name each file as it was given; `-` is the
    standard input.

    With a `spool`, the valid records and the problems go there rather than into
    each `Parsed`, JSON Lines and CSV files are read one line at a time, whatever
    their size, and duplicate ids are left for `Spool.check` to find.
    """
    defaults = dataclasses.replace(defaults, organisation=organisation or defaults.organisation)
    if fmt not in FORMATS:
        raise BadParameter("format", f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
    results: list[Parsed] = []
    for given in paths:
        name = str(given)
        path = STDIN if name == "-" else Path(given)
        if path.is_dir():
            results.extend(_collect_directory(path, name, fmt=fmt, defaults=defaults,
                                              spool=spool))
            continue
        hints = _with_defaults(_sibling_manifest_hints(path) or Hints(), defaults)
        results.append(_read(path, name, fmt=fmt, hints=hints, spool=spool))
    return results


def _with_defaults(hints: Hints, defaults: Hints) -> Hints:
    """A manifest's hints for a file, with the command line's filling what it leaves out."""
    return dataclasses.replace(
        defaults, **{f.name: getattr(hints, f.name) for f in dataclasses.fields(Hints)
                     if getattr(hints, f.name) not in (None, False)})


def _collect_directory(directory: Path, name: str, *, fmt: str,
                       defaults: Hints, spool: Spool | None) -> list[Parsed]:
    if (directory / MANIFEST).is_file():
        manifest, entries = _read_manifest(directory, str(Path(name) / MANIFEST))
        results = [manifest] if manifest.problems else []
        if spool is not None and manifest.problems:
            spool.take(manifest)  # its problems are the import's, as any file's are
        for entry in entries:
            hints = _with_defaults(entry.hints, defaults)
            results.append(_read(entry.path, entry.name, fmt=fmt, hints=hints, spool=spool))
        return results
    files = sorted(child for child in directory.iterdir()
                   if child.is_file() and not child.name.startswith(".")
                   and child.suffix.lower() in EXTENSIONS)
    if not files:
        return [_refused(name, f"directory has no {MANIFEST} and no file to import"
                               f" (looked for {', '.join(EXTENSIONS)})", spool)]
    return [_read(file, str(Path(name) / file.name), fmt=fmt, hints=defaults, spool=spool)
            for file in files]


def _refused(name: str, message: str, spool: Spool | None) -> Parsed:
    """An input that cannot be read at all, with `message` as its problem: the import's
    problem too when there is a `spool` (which an import with one reads its problems
    from: without it, a missing file imported nothing and said so to no one)."""
    refused = Parsed(name)
    refused.problem(1, message)
    if spool is not None:
        spool.take(refused)
    return refused


def read_file(path: Path, name: str, *, fmt: str = "auto", hints: Hints = Hints(),
              spool: Spool | None = None) -> Parsed:
    """Read one file, named `name` in its problems (see `collect` for the `spool`)."""
    if fmt not in FORMATS:
        raise BadParameter("format", f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return _read(path, name, fmt=fmt, hints=hints, spool=spool)


def _read(path: Path, name: str, *, fmt: str, hints: Hints, spool: Spool | None = None
          ) -> Parsed:
    try:
        with path.open("rb") as handle:
            if spool is not None and not handle.seekable():  # a pipe: read as a file
                return _read(_kept(handle, spool), name, fmt=fmt, hints=hints, spool=spool)
            if spool is not None:
                streamed = _stream(handle, os.fstat(handle.fileno()).st_size, name, fmt=fmt,
                                   hints=hints, spool=spool)
                if streamed is not None:
                    return streamed
            data = handle.read(MAX_BYTES + 1)  # one byte over is enough to refuse it
    except FileNotFoundError:
        return _refused(name, "no such file or directory", spool)
    except OSError as exc:
        return _refused(name, f"cannot read the file: {exc.strerror or exc}", spool)
    return parse_bytes(data, name=name, fmt=fmt, hints=hints, spool=spool)


def _kept(handle: BinaryIO, spool: Spool) -> Path:
    """What a pipe gives, copied a chunk at a time into the import's own folder (removed
    with it): the streamed read and the split read go back and forth in a file."""
    fd, name = tempfile.mkstemp(prefix="input-", dir=spool.folder)
    with open(fd, "wb") as copy:
        shutil.copyfileobj(handle, copy, 1 << 20)
    return Path(name)


@dataclass(frozen=True, slots=True)
class _ManifestEntry:
    path: Path
    name: str
    hints: Hints


def _read_manifest(directory: Path, name: str) -> tuple[Parsed, list[_ManifestEntry]]:
    """The entries of a directory's manifest; problems go to a `Parsed` named after it."""
    parsed = Parsed(name)
    try:
        text = (directory / MANIFEST).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        parsed.problem(1, f"cannot read the manifest: {exc}")
        return parsed, []
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        parsed.problem(int(match[1]) if match else 1, f"invalid TOML: {exc}")
        return parsed, []
    tables = data.get("file")
    if not isinstance(tables, list) or not tables:
        parsed.problem(1, "manifest lists no files (expected [[file]] tables with a path)")
        return parsed, []
    lines = text.split("\n")
    headers = [number for number, line in enumerate(lines, 1)
               if line.strip().startswith("[[file]]")]
    entries: list[_ManifestEntry] = []
    for position, table in enumerate(tables):
        header = headers[position] if position < len(headers) else 1
        entry = _manifest_entry(table, directory, Path(name).parent, header, lines, parsed)
        if entry is not None:
            entries.append(entry)
    return parsed, entries


def _manifest_entry(table: Any, directory: Path, shown: Path, header: int, lines: list[str],
                    parsed: Parsed) -> _ManifestEntry | None:
    """One ``[[file]]`` table checked; `shown` is the directory as the user named it."""
    if not isinstance(table, dict):
        parsed.problem(header, "each [[file]] entry must be a table")
        return None
    unknown = sorted(key for key in table if key not in _MANIFEST_KEYS)
    relative = table.get("path")
    line = _line_mentioning(lines, relative, header) if isinstance(relative, str) else header
    if unknown:
        parsed.problem(line, f"unknown key(s) {', '.join(map(repr, unknown))} in [[file]]; "
                             f"expected some of {', '.join(_MANIFEST_KEYS)}")
        return None
    values = {key: table.get(key) for key in _MANIFEST_KEYS}
    bad = [key for key, value in values.items() if value is not None and not isinstance(value, str)]
    if bad:
        parsed.problem(line, f"[[file]] values must be strings: {', '.join(bad)}")
        return None
    if not relative:
        parsed.problem(line, "[[file]] has no path")
        return None
    language = values["language"]
    if language is not None and not _LANGUAGE_CODE.match(language):
        parsed.problem(line, f"language {language!r} for {relative!r} is not a two-letter"
                             " ISO 639-1 code like en or fr")
        return None
    layout = values["layout"]
    if layout is not None and layout not in listing.LAYOUTS:
        parsed.problem(line, f"unknown layout {layout!r} for {relative!r}; expected one of "
                             f"{', '.join(listing.LAYOUTS)}")
        return None
    path = directory / relative
    if not path.is_file():
        parsed.problem(line, f"file {relative!r} listed in the manifest does not exist")
        return None
    return _ManifestEntry(path, str(shown / relative),
                          Hints(organisation=values["organisation"] or None, layout=layout,
                                url=values["source_url"] or None,
                                language=language or None))


def _line_mentioning(lines: list[str], text: str, start: int) -> int:
    """The first line from `start` on that mentions `text`, else `start`."""
    for number in range(start, len(lines) + 1):
        if text in lines[number - 1]:
            return number
    return start


def _sibling_manifest_hints(path: Path) -> Hints | None:
    """What the manifest beside a single named file says about it, if it lists it."""
    if not (path.parent / MANIFEST).is_file():
        return None
    _, entries = _read_manifest(path.parent, MANIFEST)
    target = path.resolve()
    return next((entry.hints for entry in entries if entry.path.resolve() == target), None)
