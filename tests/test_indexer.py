from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from searchapp import operations
from searchapp.config import Settings
from searchapp.errors import Busy, IndexUnavailable
from searchapp.indexer import IndexStore
from searchapp.models import Item, build_item
from searchapp.search import Engine, SearchQuery


def items(n: int, *, word: str = "cooperative") -> list[Item]:
    return [build_item({"id": f"i{k:05d}", "title": f"{word} item {k}",
                        "date": f"{2010 + k % 8}-03-01"}, organisation=("ILO", "CECOP")[k % 2])
            for k in range(n)]


def test_rebuild_swaps_and_keeps_only_the_previous_generation(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    first = store.rebuild(items(5), expected=5)
    second = store.rebuild(items(7), expected=7)
    third = store.rebuild(items(9), expected=9)
    assert store.current() == third
    assert [g.name for g in store.generations()] == [second.name, third.name]
    assert not first.path.exists()
    assert store.document_count() == 9


def test_count_mismatch_leaves_the_live_generation(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    live = store.rebuild(items(4), expected=4)
    with pytest.raises(IndexUnavailable, match="catalog has 5"):
        store.rebuild(items(4), expected=5)
    assert store.current() == live
    assert not list(tmp_path.glob("*.tmp"))


def test_an_error_mid_rebuild_leaves_the_live_generation(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    live = store.rebuild(items(4), expected=4)

    def failing() -> Iterator[Item]:
        yield from items(3)
        raise RuntimeError("catalog went away")

    with pytest.raises(RuntimeError):
        store.rebuild(failing(), expected=3)
    assert store.current() == live
    engine = Engine(store)
    assert engine.search(SearchQuery()).total == 4
    engine.close()


def test_a_killed_rebuild_leaves_the_old_index_serving_and_no_stuck_lock(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    live = store.rebuild(items(4), expected=4)
    script = textwrap.dedent(f"""
        import os
        from searchapp.indexer import IndexStore
        from searchapp.models import build_item
        store = IndexStore({str(tmp_path)!r})
        def items():
            for k in range(500):
                if k == 300:
                    os.kill(os.getpid(), 9)
                # A language given: the detector's models would load in this process.
                yield build_item({{"id": str(k), "title": "word"}}, organisation="X",
                                 language="en")
        with store.lock():
            store.rebuild(items(), expected=500)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == -9
    assert list(tmp_path.glob("gen-*.tmp")), "the killed rebuild should have left debris"
    assert store.current() == live
    with store.lock(timeout=1):
        store.rebuild(items(6), expected=6)
    assert not list(tmp_path.glob("gen-*.tmp"))
    assert store.document_count() == 6


def test_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         ("import time; from searchapp.indexer import IndexStore\n"
          f"with IndexStore({str(tmp_path)!r}).lock():\n"
          "    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match="another import or rebuild"), store.lock(timeout=0.2):
            pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    with store.lock(timeout=1):  # the dead holder's lock went with it
        pass


def test_incremental_update_replaces_by_id(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(items(4), expected=4)
    written = store.update([*items(1, word="solidarity"), *items(6)[4:]], expected=6)
    assert written == 3
    engine = Engine(store)
    assert engine.search(SearchQuery(q="solidarity")).total == 1
    assert engine.search(SearchQuery(q="cooperative")).total == 5
    engine.close()


# Whoosh leaves the damaged table-of-contents file open when it fails to read it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_missing_or_damaged_index_is_reported_and_reindex_restores_it(
    samples: Settings,
) -> None:
    store = IndexStore(samples.index_dir)
    gen = store.current()
    assert gen is not None
    for f in gen.path.glob("*.seg"):
        f.write_bytes(b"garbage")
    for f in gen.path.glob("_MAIN_*.toc"):
        f.write_bytes(b"garbage")
    with pytest.raises(IndexUnavailable, match="searchapp reindex"):
        Engine(store).search(SearchQuery())
    assert not operations.index_is_current(samples)
    operations.rebuild(samples)
    assert Engine(store).search(SearchQuery()).total == 35


def test_engine_picks_up_a_new_generation_and_new_segments(samples: Settings) -> None:
    engine = Engine(IndexStore(samples.index_dir))
    assert engine.search(SearchQuery(q="solidarity")).total > 0
    before = engine.search(SearchQuery()).total
    operations.rebuild(samples)
    assert engine.search(SearchQuery()).total == before
    assert engine.generation == IndexStore(samples.index_dir).current().name  # type: ignore[union-attr]
    extra = samples.catalog.parent / "extra.jsonl"
    extra.write_text('{"id": "new-1", "title": "Brand new platform cooperatives"}\n')
    operations.import_paths(samples, [extra], organisation="ILO")
    assert engine.search(SearchQuery(q="platform")).total == 2
    assert engine.search(SearchQuery()).total == before + 1
    engine.close()


def test_import_holds_the_lock(samples: Settings) -> None:
    store = IndexStore(samples.index_dir)
    extra = samples.catalog.parent / "extra.jsonl"
    extra.write_text('{"id": "x", "title": "t"}\n')
    quick = Settings.load({"catalog": samples.catalog, "index_dir": samples.index_dir,
                           "lock_timeout": 0.1}, environ={})
    with store.lock(), pytest.raises(Busy):
        operations.import_paths(quick, [extra], organisation="ILO")
    assert os.path.exists(samples.catalog)


def test_an_index_written_with_other_fields_is_not_current(samples: Settings) -> None:
    from whoosh import index as whoosh_index
    from whoosh.fields import ID, STORED, TEXT, Schema

    store = IndexStore(samples.index_dir)
    assert store.written_as_declared() and operations.index_is_current(samples)
    # The generation as an older release wrote it: language only stored, not indexed.
    gen = store.current()
    assert gen is not None
    older = Schema(id=ID(stored=True, unique=True), title=TEXT(stored=True), language=STORED())
    whoosh_index.create_in(str(gen.path), older)
    assert not store.written_as_declared()
    assert not operations.index_is_current(samples)
    operations.rebuild(samples)
    assert store.written_as_declared() and operations.index_is_current(samples)


def test_an_index_written_with_another_title_boost_is_not_current(samples: Settings) -> None:
    """An index from before #12 (title boost 1.15) is rebuilt by `reindex --if-needed`."""
    from dataclasses import replace

    older = replace(samples, title_boost=1.15)
    operations.rebuild(older)
    assert operations.index_is_current(older)
    assert not operations.index_is_current(samples)
    operations.rebuild(samples)
    assert operations.index_is_current(samples) and not operations.index_is_current(older)
