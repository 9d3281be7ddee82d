"""Faults with real processes and real filesystems: SIGKILL at several points of
a rebuild and of an import, a full disk, a read-only index directory, a missing
index at start-up. After each, the live index serves complete results, the
catalog holds all of an import or none of it, and the next run succeeds."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from searchapp import create_app, operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import IndexUnavailable
from searchapp.indexer import IndexStore
from searchapp.search import Engine, SearchQuery

sys.path.insert(0, str(ROOT / "bench"))
from live import write_items


def env_for(settings: Settings) -> dict[str, str]:
    return {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
            "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}


def searchapp(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "searchapp.cli", *args],
                            env=env_for(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "searchapp.cli", *args], env=env_for(settings),
                          capture_output=True, text=True, timeout=300, check=False)


def live_total(settings: Settings) -> int:
    engine = Engine(IndexStore(settings.index_dir))
    try:
        return engine.search(SearchQuery()).total
    finally:
        engine.close()


def catalog_count(settings: Settings) -> int:
    with Catalog(settings.catalog) as catalog:
        return catalog.count()


def killed_after(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGKILL the process after `seconds` unless it finished; True if killed."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        return True
    proc.communicate(timeout=30)
    return False


def duration(settings: Settings, *args: str) -> float:
    started = time.perf_counter()
    assert run(settings, *args).returncode == 0
    return time.perf_counter() - started


def test_killing_a_rebuild_anywhere_leaves_a_complete_live_index(settings: Settings,
                                                                 tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", 1_500, language="en")
    operations.import_paths(settings, [items], organisation="ILO")
    # Timed on the second reindex: the first also writes the stem table the next ones
    # read (index/stems-*.pickle), so it is the slower one.
    assert run(settings, "reindex").returncode == 0
    whole = duration(settings, "reindex")
    kills = 0
    for fraction in (0.1, 0.4, 0.7, 0.9):
        proc = searchapp(settings, "reindex")
        kills += killed_after(proc, whole * fraction)
        # Whatever the moment, the live generation is a complete one and the lock is free.
        assert live_total(settings) == 1_500
        assert catalog_count(settings) == 1_500
        with IndexStore(settings.index_dir).lock(timeout=1):
            pass
    assert kills >= 2, "the rebuild finished too fast to be interrupted"
    assert run(settings, "reindex").returncode == 0
    assert live_total(settings) == 1_500
    assert not list(settings.index_dir.glob("gen-*.tmp"))
    # The new generation and the one live before it; whatever a kill left is gone.
    store = IndexStore(settings.index_dir)
    assert len(store.generations()) == 2 and store.generations()[-1] == store.current()


def test_killing_an_import_leaves_all_of_it_or_none(settings: Settings, tmp_path: Path) -> None:
    operations.import_paths(settings, [SAMPLES])
    batch = write_items(tmp_path / "batch.jsonl", 1_500, language="en")
    whole = duration(settings, "import", str(batch), "--org", "ILO")
    fresh = tmp_path / "fresh"
    outcomes = set()
    for n, fraction in enumerate((0.15, 0.6, 0.95)):
        settings_n = Settings.load({"catalog": fresh / f"{n}.sqlite3",
                                    "index_dir": fresh / f"index-{n}"}, environ={})
        operations.import_paths(settings_n, [SAMPLES])
        killed_after(searchapp(settings_n, "import", str(batch), "--org", "ILO"),
                     whole * fraction)
        count = catalog_count(settings_n)
        assert count in (35, 35 + 1_500)
        outcomes.add(count)
        # The index may lag the catalog if the kill came between the two;
        # reindex --if-needed puts it right, and nothing is stuck.
        assert run(settings_n, "reindex", "--if-needed").returncode == 0
        assert live_total(settings_n) == count
    assert 35 in outcomes, "no kill landed before the import committed"


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_during_rebuild_is_a_clear_error_and_the_old_index_stays(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "small", "600k") as disk:
        settings = Settings.load({"catalog": tmp_path / "catalog.sqlite3",
                                  "index_dir": disk / "index"}, environ={})
        operations.import_paths(settings, [SAMPLES])
        assert live_total(settings) == 35
        with Catalog(settings.catalog) as catalog:  # grow the catalog, not the index
            from searchapp.importers import collect
            more = write_items(tmp_path / "more.jsonl", 5_000, language="en")
            (parsed,) = collect([more], organisation="ILO")
            catalog.upsert(r.item for r in parsed.records)
        result = run(settings, "reindex")  # refused before writing anything
        assert result.returncode == 1
        assert re.search(r"not enough room for a rebuild: it needs about [\d,]+ bytes free in"
                         r" \S+ \(a new generation beside the live one\) and [\d,]+ are free",
                         result.stderr), result.stderr
        assert live_total(settings) == 35
        result = run(settings, "reindex", "--force")  # tried anyway: the disk fills
        assert result.returncode == 1
        assert "rebuild failed, the live index was left as it was: the disk is full" in \
            result.stderr
        assert "Traceback" not in result.stderr
        assert live_total(settings) == 35
        assert not list((disk / "index").glob("gen-*.tmp"))


def test_a_read_only_index_directory_is_a_clear_error(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "8m") as disk:
        settings = Settings.load({"catalog": tmp_path / "catalog.sqlite3",
                                  "index_dir": disk / "index"}, environ={})
        operations.import_paths(settings, [SAMPLES])
        remount = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True,
                                 check=False)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only here")
        result = run(settings, "reindex")
        assert result.returncode == 1
        assert "cannot write to the index directory" in result.stderr
        assert "Read-only file system" in result.stderr
        assert "Traceback" not in result.stderr
        assert live_total(settings) == 35  # still serving, read-only is fine for that


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_missing_or_damaged_index_at_start_up_shows_in_healthz_and_reindex_restores(
    samples: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    gen = IndexStore(samples.index_dir).current()
    assert gen is not None
    for f in gen.path.iterdir():
        f.write_bytes(b"\0garbage")
    app = create_app({"catalog": samples.catalog, "index_dir": samples.index_dir})
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and "run `searchapp reindex`" in body["problem"]
    assert "cannot be opened" in caplog.text
    assert client.get("/api/search").status_code == 503
    operations.rebuild(samples)
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert client.get("/api/search").get_json()["total"] == 35
    app.extensions["searchapp.engine"].close()
    gc.collect()  # Whoosh leaks a handle on the damaged file: collect it inside this test


def test_rebuild_errors_are_ours(samples: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the index directory should be")
    broken = Settings.load({"catalog": samples.catalog, "index_dir": blocker}, environ={})
    with pytest.raises(IndexUnavailable, match="cannot write to the index directory"):
        operations.rebuild(broken)
