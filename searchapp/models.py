"""The item model: one news item from one organisation, validated.

`Item` is what crosses every boundary (importer → catalog → indexer → search
results). `build_item` is the single place where raw field values become an
`Item`, so every import format applies the same rules.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from searchapp.errors import InvalidItem

__all__ = ["FIELDS", "InvalidItem", "Item", "build_item", "derive_id", "normalise_space",
           "parse_date"]

DEFAULT_TYPE = "News"
DEFAULT_LANGUAGE = "en"
MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_FIELD = 2_000

FIELDS = ("id", "organisation", "title", "summary", "date", "type", "url", "language", "source")
_KNOWN = frozenset((*FIELDS, "year"))  # what a record may have
# How an item's language was decided: given (by the record, the source, the feed or page,
# the manifest or `--language`), or detected from its title and summary.
GIVEN, DETECTED = "given", "detected"

_SPACE = re.compile(r"\s+")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.+\-Z]*)?")
# Control characters, and what XML 1.0 cannot carry at all (surrogates, U+FFFE, U+FFFF):
# dropped from text at import so every page and the Atom feed stay well-formed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    organisation: str
    title: str
    summary: str = ""
    date: dt.date | None = None
    type: str = DEFAULT_TYPE
    url: str | None = None
    language: str = DEFAULT_LANGUAGE
    source: str = ""
    # The address of the feed or page the item was read from (a manifest's
    # `source_url`, `--url`, or the fetched URL); shown as the publisher's site.
    source_url: str | None = None
    language_origin: str = GIVEN  # GIVEN or DETECTED
    # The detector's confidence (0–1) when detected; below
    # `searchapp.languages.DETECTION_THRESHOLD` the language is the English fallback.
    language_confidence: float | None = None

    @property
    def year(self) -> int | None:
        return self.date.year if self.date else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, `year` included."""
        data = asdict(self)
        data["date"] = self.date.isoformat() if self.date else None
        data["year"] = self.year
        return data

    def content_key(self) -> tuple[Any, ...]:
        """What decides whether a re-import changed the item (where it was found does not)."""
        return (self.organisation, self.title, self.summary, self.date, self.type, self.url,
                self.language, self.language_origin)


def normalise_space(text: str) -> str:
    """One space between words, none at the ends, Unicode in composed form."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def derive_id(organisation: str, date: dt.date | None, title: str) -> str:
    """A stable id for a source that gives none: same page, same ids."""
    key = "\x1f".join(
        (normalise_space(organisation).casefold(), date.isoformat() if date else "",
         normalise_space(title).casefold())
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def parse_date(value: Any) -> dt.date | None:
    """An ISO date (``YYYY-MM-DD``), a full ISO timestamp, or nothing."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise InvalidItem(f"date must be a string like 2017-09-27, not {type(value).__name__}")
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        # Exactly YYYY-MM-DD (most dates): `fromisoformat` reads that shape as the pattern
        # does, in a fifth of the time; what it refuses is read below and said why.
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    text = value.strip()
    if not text:
        return None
    match = _DATE.fullmatch(text)
    if not match:
        raise InvalidItem(f"date {value!r} is not an ISO date like 2017-09-27")
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise InvalidItem(f"date {value!r} does not exist ({exc})") from None


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry (each becomes a space)."""
    return _CONTROL.sub(" ", text)


def check_organisation(value: str) -> str:
    """An organisation given outside the records (``--org``, a form field), cleaned and checked.

    The same rules as the record field: control characters dropped, spaces
    normalised, at most `MAX_FIELD` characters. Raises `InvalidItem`.
    """
    return _text({"organisation": value}, "organisation")


def check_id(item_id: str) -> str:
    """`item_id` if its link reaches it, else `InvalidItem` saying why.

    Links carry the id in the path (``/items/<id>``), percent-encoded, so ``?``,
    ``#``, ``%`` and spaces are fine. Browsers and HTTP clients rewrite ``.`` and
    ``..`` path segments, and a leading ``/`` makes an empty segment the router
    folds away: such ids would link to another page, so they are refused.
    """
    if item_id.startswith("/"):
        raise InvalidItem(f"id {item_id!r} starts with '/'; its link would not reach it"
                          " (remove the leading '/')")
    if "." in item_id and any(part in (".", "..") for part in item_id.split("/")):
        raise InvalidItem(f"id {item_id!r} has a '.' or '..' part between slashes; browsers"
                          " rewrite those, so its link would lead elsewhere")
    return item_id


def _text(record: Mapping[str, Any], name: str, *, limit: int = MAX_FIELD) -> str:
    text = record.get(name)
    if type(text) is not str:  # (most values are)
        if text is None:
            return ""
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise InvalidItem(f"{name} must be text, not {type(text).__name__}")
        text = str(text)
    if text.isascii() and text.isprintable():
        # Nothing to drop or compose, and no whitespace but the space: the same as below,
        # several times faster (most imported text).
        if "  " in text or text[:1] == " " or text[-1:] == " ":
            text = " ".join(text.split())
    else:
        text = normalise_space(_CONTROL.sub(" ", text))
    if len(text) > limit:
        raise InvalidItem(f"{name} is {len(text)} characters long; the limit is {limit}")
    return text


@functools.cache
def _detector() -> Callable[[str, str], tuple[str, float]]:
    """`searchapp.languages.detect`, imported where items are first built (a process that
    only reads items does without it), once: an import statement costs each item 1 µs."""
    from searchapp.languages import detect

    return detect


def build_item(
    record: Mapping[str, Any], *, organisation: str | None = None, source: str = "",
    source_url: str | None = None, language: str | None = None,
) -> Item:
    """Validate one raw record and make it an `Item`.

    `organisation` is the fallback from `--org` or a manifest; the record's own
    value wins. `language` likewise (a source's, a manifest's or `--language`); with
    neither, the language is detected from the title and summary
    (`searchapp.languages.detect`, which loads its models on first use). Raises
    `InvalidItem` with a message naming the field.
    """
    if not _KNOWN.issuperset(record):
        unknown = sorted(k for k in record if k not in _KNOWN)
        raise InvalidItem(f"unknown field(s) {', '.join(map(repr, unknown))}; "
                          f"expected some of {', '.join(FIELDS)}")
    org = _text(record, "organisation") or check_organisation(organisation or "")
    if not org:
        raise InvalidItem("organisation is missing (give it in the record, a manifest, or for"
                          " the whole import: --org, or an admin upload's organisation field)")
    title = _text(record, "title", limit=MAX_TITLE)
    if not title:
        raise InvalidItem("title is missing or blank")
    summary = _text(record, "summary", limit=MAX_SUMMARY)
    date = parse_date(record.get("date"))
    year = record.get("year")
    if year not in (None, "") and date is not None and str(year).strip() != str(date.year):
        raise InvalidItem(f"year {year!r} does not match date {date.isoformat()}")
    kind = _text(record, "type") or DEFAULT_TYPE
    url = _text(record, "url") or None
    code = (_text(record, "language") or language or "").lower()
    if code and not _LANGUAGE.match(code):
        raise InvalidItem(f"language {code!r} is not a two-letter ISO 639-1 code")
    origin, confidence = GIVEN, None
    if not code:
        code, confidence = _detector()(title, summary)
        origin, confidence = DETECTED, round(confidence, 3)
    given = _text(record, "id")
    try:
        item_id = check_id(given or url or derive_id(org, date, title))
    except InvalidItem as exc:
        raise InvalidItem(f"{exc} (the id is taken from the url)" if not given else str(exc)) \
            from None
    return Item(id=item_id, organisation=org, title=title, summary=summary, date=date,
                type=kind, url=url, language=code, source=source, source_url=source_url,
                language_origin=origin, language_confidence=confidence)
