"""The one exception tree of searchapp.

Everything the package raises on purpose derives from `SearchappError`; the CLI
turns these into messages and exit codes, the web layer into the JSON error
shape. Exceptions from other libraries are translated at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SearchappError(Exception):
    """Base of every error searchapp raises on purpose."""

    code = "error"
    status = 500


# Problems an import's error or outcome lists (what a job records in the catalog and a
# JSON answer carries): the first this many, with the exact count. A file of nothing but
# invalid lines has as many problems as lines; the command line prints them all.
PROBLEMS_LISTED = 1_000


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one record of an input file."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "message": self.message}


class ImportRejected(SearchappError):
    """An input could not be imported; nothing was written.

    `problems` are the first of its problems, `total` how many it has (an import
    lists at most `PROBLEMS_LISTED`: a file may have millions)."""

    code = "invalid_import"
    status = 400

    def __init__(self, problems: Sequence[Problem], *, total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        text = "\n".join(str(p) for p in self.problems)
        if left := self.left_out:
            text += f"\n… and {left:,} more problem{'s' * (left != 1)}, not listed"
        super().__init__(text)

    @property
    def left_out(self) -> int:
        return self.total - len(self.problems)

    def details(self) -> dict[str, Any]:
        """The problems as a JSON error and a job's error give them."""
        return {"problems": [problem.to_dict() for problem in self.problems],
                "problems_total": self.total, "problems_left_out": self.left_out}


class InvalidItem(SearchappError):
    """A record breaks an item rule; the message says which, for a person.

    Importers turn it into a `Problem` on the record's line."""

    code = "invalid_item"
    status = 400


class UndecodableInput(SearchappError):
    """The bytes of an input are not text we can parse; `line` is where that shows."""

    code = "undecodable_input"
    status = 400

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class ReadingFailed(SearchappError):
    """A process reading part of an input for an import failed or was killed (see
    `importers.split`); nothing was stored."""

    code = "reading_failed"
    status = 500


class ConfigError(SearchappError):
    """A setting (a ``SEARCHAPP_*`` variable or an app-factory override) is unusable."""

    code = "config_error"
    status = 500


class Unauthorised(SearchappError):
    """An admin request without the right bearer token."""

    code = "unauthorised"
    status = 401


class BadParameter(SearchappError):
    """A request or command option has a value we cannot use."""

    code = "bad_parameter"
    status = 400

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


class UnknownParameters(SearchappError):
    """A request has parameters its route does not know (a 400 naming them)."""

    code = "unknown_parameter"
    status = 400

    def __init__(self, unknown: list[str], known: tuple[str, ...], message: str) -> None:
        self.unknown, self.known = list(unknown), list(known)
        super().__init__(message)


class NotFound(SearchappError):
    code = "not_found"
    status = 404


class Busy(SearchappError):
    """Another import or rebuild holds the lock."""

    code = "busy"
    status = 409


class IndexUnavailable(SearchappError):
    """The index is missing, unreadable or disagrees with the catalog."""

    code = "index_unavailable"
    status = 503


class StoredNotIndexed(IndexUnavailable):
    """An import stored its items in the catalog but could not bring the index up to date.

    Not a plain failure (the items are kept; the next import or
    `searchapp reindex --if-needed` indexes them) and never a success. `result` is
    what the import did, as a job records it."""

    code = "stored_not_indexed"
    exit_code = 3  # the command line's exit status

    def __init__(self, message: str, result: dict[str, object]) -> None:
        super().__init__(message)
        self.result = result


class CatalogError(SearchappError):
    code = "catalog_error"
    status = 500


class ReadOnly(CatalogError):
    """The catalog, or the folder it is in, cannot be written (a read-only disk or
    mount, its permissions): searching and reading go on, writing cannot."""

    code = "read_only"
    status = 503


class CatalogBusy(CatalogError):
    """Another program held the catalog's write lock for longer than a write waits (a
    sqlite3 shell, a backup tool)."""

    code = "catalog_busy"
    status = 503

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"another program held the catalog's write lock for {seconds:.0f} s"
                         " (a sqlite3 shell, a backup?)")


class CatalogMissing(CatalogError):
    """There is no catalog file where SEARCHAPP_CATALOG says (moved, deleted, a mount
    gone): what only reads answers 503 rather than start an empty catalog there."""

    code = "catalog_missing"
    status = 503

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"the catalog {Path(str(path)).absolute()} is missing (no file there; set"
            " SEARCHAPP_CATALOG if it is elsewhere): restore it from a backup"
            " (`searchapp restore`) or run `searchapp recover` to rebuild it from the index"
            " (README: \"Recovering a lost catalog\"); on a new install, the first"
            " `searchapp import` creates it")


class CatalogDamaged(CatalogError):
    """The catalog file is there but is no SQLite database, or a damaged one (overwritten,
    cut short): what only reads answers 503, as for a missing catalog."""

    code = "catalog_damaged"
    status = 503

    def __init__(self, path: object, reason: object) -> None:
        self.path = path
        super().__init__(
            f"the catalog {path} cannot be read ({reason}): it is damaged or was"
            " overwritten; restore it from a backup (`searchapp restore`) or run"
            " `searchapp recover` to rebuild it from the index (README: \"Recovering a"
            " lost catalog\")")


class DiskFull(SearchappError):
    """No room on the disk for what must be written (nothing was kept of it)."""

    code = "disk_full"
    status = 507


# --- fetching sources ------------------------------------------------------------
#
# Raised by searchapp.fetch; httpx's own exceptions never get past it. The
# message is what the operator sees beside the source's name.


class FetchError(SearchappError):
    """A source could not be fetched or did not answer with something usable."""

    code = "fetch_failed"
    status = 502


class BadURL(FetchError):
    """Not an http(s) URL we can fetch."""

    code = "bad_url"
    status = 400


class Unreachable(FetchError):
    """The host's name does not resolve, or no connection could be made."""


class FetchTimeout(FetchError):
    """No complete answer within the time allowed."""


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, message: str, *, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(message)


class TooLarge(FetchError):
    """The answer is larger than the body size limit."""


class TooManyRedirects(FetchError):
    """More redirects than allowed, or a redirect back to a URL already visited."""


class RobotsDisallowed(FetchError):
    """The site's robots.txt does not allow us to fetch the URL."""


class UnusableContent(FetchError):
    """The answer is not a feed, page or listing, or not the kind the source expects."""
