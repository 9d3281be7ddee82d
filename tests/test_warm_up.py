"""A new snapshot is warmed up before its first typo query (searchapp.service.Engine):
its close-words indexes are made in the background, never at query time."""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from searchapp import highlight, operations
from searchapp.config import Settings
from searchapp.engine import FALLBACKS, Budget, completion, open_snapshot, words
from searchapp.engine.plain import reserve_close_words
from searchapp.engine.words import BUILT_AT_QUERY_TIME
from searchapp.fields import TEXT_FIELDS
from searchapp.indexer import IndexStore
from searchapp.service import (
    COLUMNS_AT_QUERY_TIME,
    OPENED_AT_REQUEST,
    WARM_UP_NOT_STARTED,
    WATCH_NOT_STARTED,
    Engine,
    SearchQuery,
)
from tests.conftest import app_over, search


@contextlib.contextmanager
def warmed(settings: Settings) -> Iterator[tuple[FlaskClient, Engine]]:
    """The app over `settings`, its engine warmed up as each gunicorn worker's is when it
    starts: its test client and its engine."""
    with app_over(settings) as app:
        engine: Engine = app.extensions["searchapp.engine"]
        engine.warm()
        assert engine.warmed(timeout=120)
        yield app.test_client(), engine


def built_at_query_time(client: FlaskClient) -> int:
    stats = client.get("/healthz").get_json()
    return int(stats["engine"]["fallbacks"].get(BUILT_AT_QUERY_TIME, 0))


def typo_answers(client: FlaskClient) -> tuple[dict[str, Any], dict[str, Any]]:
    return search(client, q="guerrini"), search(client, q="gurreini")


def test_the_first_typo_query_after_start_and_after_a_swap_finds_its_words_made_ahead(
        samples: Settings) -> None:
    with warmed(samples) as (client, engine):
        before = built_at_query_time(client)
        tolerated, suggested = typo_answers(client)
        assert tolerated["typos"] == [{"word": "guerrini", "matched": ["guerini"]}]
        assert tolerated["partial"] is False
        assert suggested["suggestion"] == "guerini" and suggested["partial"] is False
        assert built_at_query_time(client) == before

        operations.rebuild(samples)  # a new generation swapped in: its segments are new
        assert search(client, q="women")["total"] >= 1  # the first request opens it
        assert engine.warmed(timeout=120)
        tolerated, suggested = typo_answers(client)
        assert tolerated["typos"] == [{"word": "guerrini", "matched": ["guerini"]}]
        assert suggested["suggestion"] == "guerini" and suggested["partial"] is False
        assert built_at_query_time(client) == before


def test_without_a_warm_up_the_query_builds_the_index_and_it_is_counted(
        samples: Settings, caplog: Any) -> None:
    from searchapp.engine import FALLBACKS

    engine = Engine(IndexStore(samples.index_dir), warm_up=False)
    try:
        before = FALLBACKS.snapshot().get(BUILT_AT_QUERY_TIME, 0)
        page = engine.search(SearchQuery(q="guerrini"))
        assert page.typos == {"guerrini": ("guerini",)}
        assert page.total >= 2 and not page.partial
        after = FALLBACKS.snapshot()[BUILT_AT_QUERY_TIME]
        assert after > before  # one per segment and spelling field
        assert "was built at query time, not ahead" in caplog.text
        # Kept once built: the next typo query builds nothing.
        engine.search(SearchQuery(q="gurreini"))
        assert FALLBACKS.snapshot()[BUILT_AT_QUERY_TIME] == after
    finally:
        engine.close()


def test_a_typo_query_waits_for_an_index_being_made_only_within_its_budget(
        samples: Settings, caplog: Any) -> None:
    """An index the warm-up has reserved but not made yet (here: never, until given up)
    is waited for until the search's time budget runs out, no longer: the search then
    answers without that segment's close words, partial, and says so."""
    engine = Engine(IndexStore(samples.index_dir), warm_up=False, time_budget=0.5)
    probe = open_snapshot(IndexStore(samples.index_dir).open_index())
    keys = reserve_close_words(probe.reader, TEXT_FIELDS)  # as a warm-up does, then stalls
    given_up = threading.Event()

    def give_up() -> None:
        given_up.set()
        words.release(keys)

    timer = threading.Timer(60, give_up)  # (only if the search did wait for it)
    timer.start()
    try:
        assert keys
        before = FALLBACKS.snapshot().get(words.NOT_READY_IN_BUDGET, 0)
        page = engine.search(SearchQuery(q="guerrini"))
        assert not given_up.is_set()  # answered while the indexes were still pending
        assert page.partial and page.typos == {} and page.total == 0
        assert FALLBACKS.snapshot()[words.NOT_READY_IN_BUDGET] > before
        assert "not made within the search's time budget" in caplog.text
        words.release(keys)  # given up: the next search builds them (counted)
        page = engine.search(SearchQuery(q="guerrini"))
        assert page.typos == {"guerrini": ("guerini",)} and not page.partial
    finally:
        timer.cancel()
        words.release(keys)
        probe.close()
        engine.close()


def test_a_watching_engine_opens_a_swapped_in_generation_before_the_next_search(
        samples: Settings) -> None:
    """What each `searchapp serve` worker does: a rebuild's new generation is opened and
    warmed up by the watch, so the first search after the swap opens nothing and builds
    nothing; the watch ends with the engine."""
    with app_over(samples) as app:
        client = app.test_client()
        engine: Engine = app.extensions["searchapp.engine"]
        engine.warm()
        watcher = engine.watch(every=0.05)
        assert engine.warmed(timeout=120)
        first = search(client, q="women")
        opened = FALLBACKS.snapshot().get(OPENED_AT_REQUEST, 0)
        columns = FALLBACKS.snapshot().get(COLUMNS_AT_QUERY_TIME, 0)
        built = FALLBACKS.snapshot().get(BUILT_AT_QUERY_TIME, 0)
        live = operations.rebuild(samples).generation
        deadline = time.monotonic() + 120
        while engine.generation != live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.generation == live  # opened by the watch, not by a request
        assert engine.warmed(timeout=120)
        assert search(client, q="women")["facets"] == first["facets"]
        assert typo_answers(client)[0]["typos"] == [{"word": "guerrini", "matched": ["guerini"]}]
        assert FALLBACKS.snapshot().get(OPENED_AT_REQUEST, 0) == opened
        assert FALLBACKS.snapshot().get(COLUMNS_AT_QUERY_TIME, 0) == columns
        assert FALLBACKS.snapshot().get(BUILT_AT_QUERY_TIME, 0) == built
    watcher.join(timeout=30)
    assert not watcher.is_alive()


def test_a_watch_over_no_index_says_so_once_and_a_second_watch_is_the_first(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """A worker started before any import: its watch finds nothing to open, every look.
    It says so once (not a line a second per worker) and looks less often meanwhile; a
    second `watch` gives the running one back; `close` ends it and the count of
    requests opening a generation themselves with it."""
    engine = Engine(IndexStore(settings.index_dir))
    caplog.set_level("INFO", logger="searchapp.service")
    watcher = engine.watch(every=0.01)
    assert engine.watch(every=0.01) is watcher

    def said() -> list[str]:
        return [r.message for r in caplog.records
                if "watch: the live generation not opened" in r.message]

    deadline = time.monotonic() + 30
    while not said() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.7)  # room for several more looks: 0.02, 0.04, … 0.32 s apart
    assert len(said()) == 1, said()
    engine.close()
    watcher.join(timeout=30)
    assert not watcher.is_alive()
    assert not engine._watching  # type: ignore[attr-defined]


def test_watch_called_from_many_threads_at_once_starts_one_watch(settings: Settings) -> None:
    """`watch` is idempotent under concurrency: however many threads ask at the same
    moment, one watch thread runs and every caller gets that one."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as can be, to meet any race
    try:
        for _ in range(10):
            engine = Engine(IndexStore(settings.index_dir))
            start = threading.Barrier(8)
            given: list[threading.Thread] = []

            def ask(engine: Engine = engine, start: threading.Barrier = start,
                    given: list[threading.Thread] = given) -> None:
                start.wait()
                given.append(engine.watch(every=3600))

            callers = [threading.Thread(target=ask) for _ in range(8)]
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join(timeout=30)
            watching = [t for t in threading.enumerate()
                        if t.name == "searchapp-watch" and t.is_alive()]
            engine.close()
            for thread in {*given, *watching}:
                thread.join(timeout=5)  # (a second watch would not end: nothing ends it)
            assert len(given) == 8 and len(set(given)) == 1, "callers got different watches"
            assert len(watching) == 1, f"{len(watching)} watch threads ran"
    finally:
        sys.setswitchinterval(switch)


def test_a_request_that_opens_the_generation_before_the_watch_is_counted(
        samples: Settings) -> None:
    with app_over(samples) as app:
        client = app.test_client()
        engine: Engine = app.extensions["searchapp.engine"]
        engine.warm()
        watcher = engine.watch(every=3600)  # it will not look before the request
        opened = FALLBACKS.snapshot().get(OPENED_AT_REQUEST, 0)
        live = operations.rebuild(samples).generation
        assert client.get("/healthz").get_json()["generation"] == live  # no wait for it
        assert FALLBACKS.snapshot().get(OPENED_AT_REQUEST, 0) == opened + 1
        assert engine.warmed(timeout=120)
    watcher.join(timeout=30)
    assert not watcher.is_alive()


def test_a_typo_query_waiting_for_the_warm_up_after_a_swap_lets_other_searches_through(
        samples: Settings) -> None:
    """Right after a swap, a typo query that finds the new segments' close-words indexes
    still being made waits for them without holding the engine: a plain search at the
    same time is answered meanwhile, and the typo query answers once they are settled."""
    engine = Engine(IndexStore(samples.index_dir), time_budget=120)
    probe = None
    keys: list[tuple[str, str]] = []
    answers: dict[str, Any] = {}

    def ask(name: str, q: str) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.__setitem__(name, engine.search(SearchQuery(q=q))),
            daemon=True)
        thread.start()
        return thread

    try:
        engine.warm()
        assert engine.warmed(timeout=120)
        live = operations.rebuild(samples).generation
        # The new generation's close-words indexes being made, and not done for as long
        # as this test says: reserved as the warm-up reserves them.
        probe = open_snapshot(IndexStore(samples.index_dir).open_index())
        keys = reserve_close_words(probe.reader, TEXT_FIELDS)
        assert keys
        typo = ask("typo", "guerrini")  # the first request after the swap opens it
        deadline = time.monotonic() + 60
        while engine.generation != live and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.generation == live
        plain = ask("plain", "cooperative")
        plain.join(timeout=30)
        assert not plain.is_alive(), "the plain search waited behind the typo query"
        assert answers["plain"].total >= 3 and not answers["plain"].partial
        assert typo.is_alive()  # (still waiting for the indexes: nothing let it go yet)
        # Another typo query meanwhile waits too, within its own budget, then answers in part.
        short = engine.search(SearchQuery(q="gurreini"), budget=Budget(0.5))
        assert short.partial and short.typos == {}
        assert typo.is_alive()
        words.release(keys)  # the warm-up gives them up: the typo query builds them
        typo.join(timeout=60)
        assert not typo.is_alive()
        assert answers["typo"].typos == {"guerrini": ("guerini",)}
        assert not answers["typo"].partial
    finally:
        words.release(keys)
        if probe is not None:
            probe.close()
        engine.close()


@contextlib.contextmanager
def no_new_threads() -> Iterator[None]:
    """Within the block, starting a thread fails as it does when the system has none to
    give (`RuntimeError: can't start new thread`): each one asks for a 1 TiB stack, in a
    process allowed half that much address space."""
    limit = resource.getrlimit(resource.RLIMIT_AS)
    size = threading.stack_size(1 << 40)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 39, limit[1]))
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, limit)
        threading.stack_size(size)


def test_a_warm_up_that_cannot_start_is_counted_and_searches_go_on(
        samples: Settings, caplog: Any) -> None:
    """A swapped-in generation whose warm-up thread cannot be started is searched all the
    same: the failure is logged and counted, and the searches build what it would have
    made (counted as such), rather than wait for it."""
    with warmed(samples) as (client, engine):
        counted = FALLBACKS.snapshot()
        operations.rebuild(samples)
        with no_new_threads():
            with pytest.raises(RuntimeError):  # (what the block does to threads)
                threading.Thread(target=lambda: None).start()
            first = search(client, q="cooperative")  # opens the new generation
        assert first["total"] >= 3
        tolerated, suggested = typo_answers(client)
        assert tolerated["typos"] == [{"word": "guerrini", "matched": ["guerini"]}]
        assert not tolerated["partial"]
        assert suggested["suggestion"] == "guerini"
        after = client.get("/healthz").get_json()["engine"]["fallbacks"]
        assert after[WARM_UP_NOT_STARTED] == counted.get(WARM_UP_NOT_STARTED, 0) + 1
        assert after[COLUMNS_AT_QUERY_TIME] == counted.get(COLUMNS_AT_QUERY_TIME, 0) + 1
        assert after[BUILT_AT_QUERY_TIME] > counted.get(BUILT_AT_QUERY_TIME, 0)
        assert "warm-up not started: RuntimeError" in caplog.text
        assert engine.warmed(timeout=0)  # nothing left to wait for



def test_a_watch_that_cannot_start_is_counted_and_requests_open_the_next_generation(
        samples: Settings, caplog: Any) -> None:
    with warmed(samples) as (client, engine):
        counted = FALLBACKS.snapshot()
        with no_new_threads():
            watcher = engine.watch(every=0.05)
        assert not watcher.is_alive()
        assert "watch not started: RuntimeError" in caplog.text
        live = operations.rebuild(samples).generation
        assert client.get("/healthz").get_json()["generation"] == live  # opened by it
        after = FALLBACKS.snapshot()
        assert after[WATCH_NOT_STARTED] == counted.get(WATCH_NOT_STARTED, 0) + 1
        assert after.get(OPENED_AT_REQUEST, 0) == counted.get(OPENED_AT_REQUEST, 0)
        assert engine.warmed(timeout=120)


def test_what_belongs_to_swapped_out_generations_is_let_go(samples: Settings) -> None:
    """Close-words indexes and completion word tables are kept per segment: once a swap
    leaves a generation's segments unread, what was made for them is let go, so a
    serving process keeps about one generation's worth however often it is rebuilt."""
    root = str(samples.index_dir.resolve())

    def ours(keys: Any) -> list[Any]:
        return [k for k in keys if any(str(part).startswith(root) for part in k)]

    with warmed(samples) as (client, engine):
        first_words, first_tables = words.kept(), completion.tables()
        assert ours(first_words) and ours(first_tables)
        gone = [weakref.ref(first_words[k]) for k in ours(first_words)]
        gone += [weakref.ref(first_tables[k]) for k in ours(first_tables)]
        per_generation = len(ours(first_words)), len(ours(first_tables))
        del first_words, first_tables
        for _ in range(3):
            operations.rebuild(samples)
            assert search(client, q="cooperative")["total"] >= 3  # opens the new one
            assert engine.warmed(timeout=120)
            assert typo_answers(client)[0]["typos"]
            assert client.get("/api/suggest", query_string={"q": "coop"}).status_code == 200
        gc.collect()
        assert [r for r in gone if r() is not None] == []
        assert (len(ours(words.kept())), len(ours(completion.tables()))) == per_generation


def test_the_warm_up_makes_the_highlighting_patterns_of_the_index_words(
        samples: Settings) -> None:
    """After the warm-up, marking a search's words on its page compiles no pattern: the
    one for each head of the index's English terms is made ahead."""
    highlight._PATTERNS.clear()
    with warmed(samples) as (client, _engine):
        made = set(highlight._PATTERNS)
        assert {"co", "pa", "gu"} <= made  # cooperatives, parliament, Guerini
        found = search(client, q="cooperatives parliament")
        marked = " ".join(h["highlights"]["title"] + h["highlights"]["summary"]
                          for h in found["hits"])
        assert "<mark>Cooperatives</mark>" in marked or "<mark>cooperatives</mark>" in marked
        assert set(highlight._PATTERNS) == made
