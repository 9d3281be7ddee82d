"""The `searchapp` command: import, reindex, search, stats, backup, restore, recover, serve."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from searchapp import operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import (
    BadParameter,
    ImportRejected,
    Problem,
    SearchappError,
    StoredNotIndexed,
)
from searchapp.fields import FACETS
from searchapp.importers import FORMATS, Hints
from searchapp.importers.htmlpage import SELECTOR_FIELDS, selectors_from_options
from searchapp.indexer import IndexStore
from searchapp.models import InvalidItem, check_organisation
from searchapp.progress import TerminalProgress
from searchapp.request import PRESETS, check_window
from searchapp.search import Engine, SearchPage, SearchQuery
from searchapp.sources import KINDS, format_duration, new_source
from searchapp.urls import BadUrl, absolute_url

F = TypeVar("F", bound=Callable[..., Any])


class _NotIndexed(click.ClickException):
    """Stored, but the index was not updated: neither a success nor nothing done."""

    exit_code = StoredNotIndexed.exit_code


def _friendly(func: F) -> F:
    """Turn our own errors into messages and a non-zero exit, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImportRejected as exc:
            # (Every problem was printed as it was read back: `_print_problems`.)
            n = exc.total
            raise click.ClickException(
                f"import rejected: {n} problem{'s' * (n != 1)}; nothing was written"
            ) from None
        except StoredNotIndexed as exc:
            raise _NotIndexed(str(exc)) from None
        except SearchappError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="searchapp")
def main() -> None:
    """Search news published by cooperative organisations.

    Settings come from the environment: SEARCHAPP_CATALOG (default
    instance/catalog.sqlite3), SEARCHAPP_INDEX_DIR (default index),
    SEARCHAPP_ADMIN_TOKEN (unset: admin routes off), SEARCHAPP_ENGINE
    (auto, arrays or whoosh; default auto).
    """


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--org", "organisation", help="Organisation for records and pages that name none.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--skip-invalid", is_flag=True, help="Import the valid records, list the rest.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the catalog already has items.")
@click.option("--url", "page_url", metavar="URL",
              help="The saved page's or feed's address: relative links resolve against it.")
@click.option("--select", "select", multiple=True, metavar="FIELD=CSS",
              help=f"CSS selector for HTML pages (repeatable; fields: {', '.join(SELECTOR_FIELDS)};"
                   " item and title required).")
@click.option("--language", metavar="XX",
              help="Two-letter language of the items that declare none (a feed's or page's"
                   " own declaration included); without it, each item's language is detected.")
@click.option("--type-from-category", is_flag=True,
              help="Use a feed or page item's first category as its type.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr, only the summary.")
@_friendly
def import_command(paths: Sequence[Path], organisation: str | None, fmt: str,
                   skip_invalid: bool, if_empty: bool, page_url: str | None,
                   select: Sequence[str], language: str | None,
                   type_from_category: bool, quiet: bool) -> None:
    """Import feeds (RSS, Atom, RDF), HTML pages, listing pages, JSON Lines, JSON arrays
    or CSV (files or directories); the format is told by the content."""
    hints = _import_hints(page_url, select, language, type_from_category)
    settings = Settings.load()
    if organisation is not None:
        try:
            organisation = check_organisation(organisation) or None
        except InvalidItem as exc:
            raise click.BadParameter(str(exc), param_hint="--org") from None
    if if_empty:
        with Catalog(settings.catalog) as catalog:
            if catalog.count():
                click.echo(f"catalog already has {catalog.count()} items; nothing imported")
                return
        indexed = operations.indexed_documents(settings)
        if indexed:
            raise click.ClickException(
                f"the catalog {settings.catalog} is empty but the index holds {indexed:,}"
                " documents: is SEARCHAPP_CATALOG pointing at the right file? Nothing was"
                " imported (restore a backup with `searchapp restore`, or import explicitly"
                " without --if-empty)")
    with TerminalProgress(quiet=quiet) as progress:
        outcome = operations.import_paths(settings, paths, fmt=fmt, organisation=organisation,
                                          skip_invalid=skip_invalid, hints=hints,
                                          progress=progress, tell=_print_problems(progress))
    click.echo(outcome.summary())


def _print_problems(progress: TerminalProgress) -> operations.TellProblems:
    """Print every problem of an import on stderr as `file:line: message` (`skipped
    file:line: message` when the valid records were imported), after the progress."""

    def tell(problems: Iterator[Problem], *, skipped: bool) -> None:
        progress.close()
        prefix = "skipped " if skipped else ""
        for problem in problems:
            click.echo(f"{prefix}{problem}", err=True)

    return tell


def _import_hints(page_url: str | None, select: Sequence[str], language: str | None,
                  type_from_category: bool) -> Hints:
    """The import options as `Hints`, each checked (a usage error names the option)."""
    if page_url is not None:
        try:
            absolute_url(page_url)
        except BadUrl as exc:
            raise click.BadParameter(f"{exc} (it must be an absolute http(s) address)",
                                     param_hint="--url") from None
    try:
        selectors = selectors_from_options(select) if select else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--select") from None
    if language is not None:
        language = language.strip().lower()
        if len(language) != 2 or not language.isascii() or not language.isalpha():
            raise click.BadParameter(f"{language!r} is not a two-letter ISO 639-1 code",
                                     param_hint="--language")
    return Hints(url=page_url.strip() if page_url else None, selectors=selectors,
                 language=language, type_from_category=type_from_category)


@main.command()
@click.option("--if-needed", is_flag=True,
              help="Only rebuild when the index is missing or disagrees with the catalog.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr, only the summary.")
@click.option("--force", is_flag=True,
              help="Rebuild even when the disk seems to lack room for a second generation, or"
                   " the catalog holds less than half the live index's items.")
@_friendly
def reindex(if_needed: bool, quiet: bool, force: bool) -> None:
    """Rebuild the index from the catalog into a new generation and swap it in."""
    settings = Settings.load()
    if if_needed:
        problem = operations.index_problem(settings)
        if problem is None:
            click.echo("index is up to date; nothing to do")
            return
        click.echo(f"the index needs bringing up to date: {problem}", err=True)
    with TerminalProgress(quiet=quiet) as progress:
        outcome = operations.rebuild(settings, progress=progress, check_space=not force,
                                     allow_shrink=force, if_needed=if_needed)
    if outcome.index == "updated":
        click.echo(f"brought {outcome.generation} up to date: {outcome.documents} items"
                   f" indexed in {outcome.seconds:.2f}s")
    elif outcome.index == "unchanged":
        click.echo("index is up to date; nothing to do")
    else:
        click.echo(f"rebuilt {outcome.generation}: {outcome.documents} items in"
                   f" {outcome.seconds:.2f}s")


def _facet_options(command: F) -> F:
    """One repeatable option per facet (searchapp.fields.FACETS), named after it."""
    for name, facet in reversed(FACETS.items()):
        command = click.option(facet.option, name, multiple=True, help=facet.help)(command)
    return command


@main.command()
@click.argument("words", nargs=-1)
@_facet_options
@click.option("--year-from", type=int, help="Only items from this year on.")
@click.option("--year-to", type=int, help="Only items up to this year.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD",
              help="Only items dated on or after this day (undated items are left out).")
@click.option("--to", "date_to", metavar="YYYY-MM-DD",
              help="Only items dated on or before this day (undated items are left out).")
@click.option("--past", type=click.Choice(list(PRESETS)),
              help="Only items from the past week, month or year, up to today (UTC).")
@click.option("--any", "any_words", is_flag=True, help="Items with any of the words, not all.")
@click.option("--sort", type=click.Choice(["relevance", "newest", "oldest"]))
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the /api/search JSON.")
@_friendly
def search(words: Sequence[str], year_from: int | None, year_to: int | None,
           date_from: str | None, date_to: str | None, past: str | None, any_words: bool,
           sort: str | None, limit: int, page: int, as_json: bool,
           **facets: Sequence[str]) -> None:
    """Search the index; prints ranked hits and facet counts."""
    settings = Settings.load()
    try:
        request = SearchQuery.from_params({
            "q": [" ".join(words)], **{name: list(values) for name, values in facets.items()},
            "sort": [sort or ""], "page": [str(page)],
            "year_from": [str(year_from or "")], "year_to": [str(year_to or "")],
            "date_from": [date_from or ""], "date_to": [date_to or ""], "past": [past or ""],
            "match": ["any" if any_words else "all"],
            "per_page": [str(limit)],
        })
        check_window(request, settings.max_result_window, size="--limit {}")
    except BadParameter as exc:
        option = OPTIONS.get(exc.name)
        if option is None:
            raise
        message = re.sub(r"\b(date|year)_(from|to)\b", lambda m: OPTIONS[m.group(0)],
                         str(exc).removeprefix(f"{exc.name}: "))
        raise click.BadParameter(message, param_hint=f"'{option}'") from None
    engine = Engine.from_settings(settings)
    try:
        result = engine.search(request)
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_page(result)


# The `searchapp search` option of each search parameter a problem may name.
OPTIONS = {"date_from": "--from", "date_to": "--to", "year_from": "--year-from",
           "year_to": "--year-to", "page": "--page",
           **{name: facet.option for name, facet in FACETS.items()}}


def _print_page(result: SearchPage) -> None:
    n = result.total
    for message in result.warnings:
        click.echo(f"note: {message}", err=True)
    if result.partial:
        click.echo("note: the search took too long and was cut short: these are the best of"
                   " the items found in time, and the counts may be low", err=True)
    click.echo(f"{n} item{'s' * (n != 1)} (sorted by {result.sort})")
    if result.dates is not None:
        low, high = result.dates
        shown = (f"from {low} " if low != dt.date.min else "") + (
            f"to {high}" if high != dt.date.max else "")
        click.echo(f"dated {shown.strip()} (undated items left out)")
    first = (result.query.page - 1) * result.query.per_page
    for rank, hit in enumerate(result.hits, start=first + 1):
        item = hit.item
        when = item.date.isoformat() if item.date else "undated"
        score = f"  score {hit.score:.2f}" if hit.score is not None else ""
        click.echo(f"\n{rank:>3}. {item.title}")
        click.echo(f"     {item.organisation} · {item.type} · {when}{score}  [{item.id}]")
        if item.url:
            click.echo(f"     {item.url}")
    for name, values in result.facets.items():
        shown = ", ".join(f"{'*' if v.selected else ''}{v.label} ({v.count})" for v in values)
        click.echo(f"\n{FACETS[name].heading.lower()}: {shown or '-'}")
    if result.shortened:
        click.echo("\nthe query is long: only its first words were searched")
    if result.only_too_common:
        click.echo(f"\ntoo common to search for: {', '.join(result.too_common)};"
                   " add a word that says what you are looking for")
    for word, matched in result.typos.items():
        click.echo(f"\nno item has {word!r}; close spellings searched too: {', '.join(matched)}")
    for name, value, guess in result.unmatched:
        click.echo(f"\nno item has the {name} {value!r}"
                   + (f"; did you mean {guess!r}?" if guess else ""))
    if result.suggestion:
        click.echo(f"\ndid you mean: {result.suggestion}")
    if result.any_words_total:
        click.echo(f"\nno item has all of these words; {result.any_words_total} have any of them"
                   " (search again with --any)")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@_friendly
def stats(as_json: bool) -> None:
    """Items per organisation, type, year and language; the index and its engine; freshness."""
    settings = Settings.load()
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    with Catalog(settings.catalog, reading=True) as catalog:
        data: dict[str, Any] = {
            "items": catalog.count(),
            "by": {col: [[value, n] for value, n in catalog.facet_counts(col)]
                   for col in FACETS},
            "catalog_bytes": settings.catalog.stat().st_size,
            "freshness": catalog.freshness().to_dict(),
        }
    gen = store.current()
    data["generation"] = gen.name if gen else None
    data["index_bytes"] = store.size_bytes(gen) if gen else 0
    engine = Engine.from_settings(settings)
    try:
        data["index_documents"] = engine.doc_count()
        data["engine"] = engine.stats()
        checked = engine.check()  # every segment's files read, the arrays files verified
        data["index_checked"] = checked.to_dict()
        problem = checked.problem() or operations.index_problem(settings, recompute=False)
        if problem is not None:
            data["index_problem"] = problem
    except SearchappError as exc:
        data["index_documents"] = None
        data["engine"] = None
        data["index_problem"] = str(exc)
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"items: {data['items']}")
    for col, rows in data["by"].items():
        click.echo(f"by {col}:")
        for value, n in rows:
            click.echo(f"  {'undated' if value is None else value}: {n}")
    click.echo(f"index generation: {data['generation'] or 'none'}"
               f" ({data['index_documents']} documents, {data['index_bytes']:,} bytes)")
    if data["engine"] is not None:
        click.echo(f"engine: {data['engine']['kind']} ({data['engine']['reason']})")
    if "index_checked" in data:
        c = data["index_checked"]
        click.echo(f"index checked: {c['segments']} segments, {c['files']} files read,"
                   f" {c['arrays']} arrays files verified")
    click.echo(f"catalog: {settings.catalog} ({data['catalog_bytes']:,} bytes)")
    if "index_problem" in data:
        click.echo(f"index problem: {data['index_problem']}")
    _print_freshness(data["freshness"])


def _print_freshness(fresh: dict[str, Any]) -> None:
    click.echo(f"catalog last changed: {_when_iso(fresh['changed_at'], 'never')}")
    click.echo("by organisation: newest item, last successful refresh")
    for org in fresh["organisations"]:
        newest = org["newest"] or ("no dated items" if org["has_items"] else "no items yet")
        click.echo(f"  {org['organisation']}: {newest},"
                   f" {_when_iso(org['last_refresh'], 'never refreshed')}")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@_friendly
def backup(path: Path) -> None:
    """Write a consistent copy of the catalog to PATH (safe while serving and importing)."""
    from searchapp.backup import backup as write_backup

    outcome = write_backup(Settings.load(), path)
    click.echo(f"backed up {outcome.items} items to {outcome.path} ({outcome.bytes:,} bytes)")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr, only the summary.")
@_friendly
def restore(path: Path, quiet: bool) -> None:
    """Replace the catalog with the backup at PATH (checked first), then rebuild the index."""
    from searchapp.backup import restore as restore_backup

    with TerminalProgress(quiet=quiet) as progress:
        outcome = restore_backup(Settings.load(), path, progress=progress)
    if outcome.previous:
        click.echo(f"the catalog it replaced is kept at {outcome.previous}")
    r = outcome.rebuild
    click.echo(f"restored {outcome.items} items from {path}; rebuilt {r.generation}:"
               f" {r.documents} items in {r.seconds:.2f}s")


@main.command()
@click.option("--force", is_flag=True,
              help="Replace the items of a catalog that holds some (it is kept beside first).")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr, only the summary.")
@_friendly
def recover(force: bool, quiet: bool) -> None:
    """Write a lost, truncated or damaged catalog anew from the index's stored fields."""
    from searchapp.backup import NOT_RECOVERED
    from searchapp.backup import recover as recover_catalog

    settings = Settings.load()
    with TerminalProgress(quiet=quiet) as progress:
        outcome = recover_catalog(settings, force=force, progress=progress)
    if outcome.previous:
        click.echo(f"the catalog it replaced is kept at {outcome.previous}")
    click.echo(f"recovered {outcome.items} items from index {outcome.generation} into"
               f" {settings.catalog}; the index holds exactly them (no rebuild needed)")
    click.echo("not recovered (the index does not hold them): " + "; ".join(NOT_RECOVERED))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=None,
              help="gunicorn workers [default: one per core]")
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader.")
@_friendly
def serve(host: str, port: int, workers: int | None, dev: bool) -> None:
    """Serve the search page and the API (gunicorn; never in debug mode)."""
    Settings.load()  # a bad SEARCHAPP_* value is a message here, not a worker's traceback
    if dev:
        from searchapp import create_app

        create_app().run(host=host, port=port, debug=False, use_reloader=True)
        return
    from searchapp.server import run

    run(host=host, port=port, workers=workers or (os.cpu_count() or 1))


# --- sources that refresh themselves ------------------------------------------------


@main.group()
def sources() -> None:
    """The feeds and pages followed by `searchapp refresh`."""


@sources.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--org", "organisation", required=True, help="The organisation publishing it.")
@click.option("--kind", type=click.Choice(KINDS),
              help="feed (RSS/Atom), page (HTML) or listing (an import file) [default: seen"
                   " in the first answer]")
@click.option("--language", help="Two-letter language of its items, where they give none.")
@click.option("--every", help="How often it is due: 30m, 6h, 1d, 1h30m  [default: 1h]")
@click.option("--select", "selectors", multiple=True, metavar="FIELD=CSS",
              help="For pages: CSS selector of item, title, link, date, summary or type"
                   " (repeatable).")
@_friendly
def sources_add(name: str, url: str, organisation: str, kind: str | None,
                language: str | None, every: str | None, selectors: Sequence[str]) -> None:
    """Follow URL as source NAME; `searchapp refresh` fetches it when due."""
    source = new_source(name=name, url=url, organisation=organisation, kind=kind,
                        language=language, every=every, selectors=selectors)
    settings = Settings.load()
    # A first step on a new install may make the catalog; beside an index, it was lost.
    with Catalog(settings.catalog, create=operations.new_install(settings)) as catalog:
        catalog.add_source(source)
    click.echo(f"added source {source.name} ({source.kind or 'kind from its first answer'},"
               f" every {format_duration(source.every)}); `searchapp refresh {source.name}`"
               " fetches it now")


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@_friendly
def sources_list(as_json: bool) -> None:
    """Every source, with its last refresh, items and next due time."""
    with Catalog(Settings.load().catalog, reading=True) as catalog:
        followed = catalog.sources()
        counts = catalog.items_per_source()
    if as_json:
        click.echo(json.dumps([{**s.to_dict(), "items": counts.get(s.name, 0)}
                               for s in followed], ensure_ascii=False, indent=2))
        return
    if not followed:
        click.echo("no sources; add one with `searchapp sources add NAME URL --org ORG`")
        return
    for s in followed:
        click.echo(f"{s.name}  {s.organisation}  {s.kind or 'kind not known yet'}"
                   f"  every {format_duration(s.every)}")
        click.echo(f"  url: {s.url}")
        if s.last_fetched:
            click.echo(f"  last fetched: {_when(s.last_fetched)}: {s.last_result}")
        else:
            click.echo("  last fetched: never")
        click.echo(f"  items: {counts.get(s.name, 0)}   next due: {_when(s.next_due())}")
        if s.last_error:
            click.echo(f"  last error: {_when(s.last_error_at)}: {s.last_error}")


@sources.command("remove")
@click.argument("name")
@click.option("--delete-items", is_flag=True, help="Also delete the items it brought.")
@_friendly
def sources_remove(name: str, delete_items: bool) -> None:
    """Stop following NAME; its items stay unless --delete-items."""
    settings = Settings.load()
    if not delete_items:
        with Catalog(settings.catalog, reading=True) as catalog:
            kept = catalog.items_per_source().get(name, 0)
    removed = operations.remove_source(settings, name, delete_items=delete_items)
    if delete_items:
        click.echo(f"removed source {name} and its {removed} items"
                   + ("; index rebuilt" if removed else ""))
    else:
        click.echo(f"removed source {name}; its {kept} items stay (--delete-items removes"
                   " them)")


@main.command("refresh")
@click.argument("names", nargs=-1)
@click.option("--loop", is_flag=True,
              help="Keep refreshing due sources until stopped (SIGTERM or Ctrl-C).")
@_friendly
def refresh_command(names: Sequence[str], loop: bool) -> None:
    """Fetch the named sources, or every due one, and import what changed.

    Prints one line per source; exits 1 when any source failed (the others are
    imported all the same).
    """
    from searchapp import refresh as refreshing  # httpx loads only for this command

    settings = Settings.load()
    if loop:
        if names:
            raise click.UsageError("--loop refreshes every due source; give no names")
        stop = threading.Event()

        def _stop(signum: int, frame: object) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        click.echo("refreshing due sources until stopped")
        try:
            refreshing.run_loop(settings, stop, click.echo)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        click.echo("stopped")
        return
    outcome = refreshing.refresh(settings, names)
    if not outcome.results:
        click.echo("no source is due" if not names else "nothing to refresh")
        return
    for result in outcome.results:
        click.echo(result.line())
        for problem in result.problems:
            click.echo(f"  skipped {problem}", err=True)
    if outcome.index_problem is not None:
        raise _NotIndexed(f"stored, but the index was not updated: {outcome.index_problem}")
    if outcome.failed:
        n = len(outcome.failed)
        others = len(outcome.results) - n
        done = {0: "", 1: "; the other one was imported"}.get(
            others, f"; the {others} others were imported")
        raise click.ClickException(f"{n} source{'s' * (n != 1)} failed{done}")


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "now"


def _when_iso(text: str | None, otherwise: str) -> str:
    return _when(dt.datetime.fromisoformat(text)) if text else otherwise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
