"""What reaches the disk, and in which order, when the index changes; and what a user
sees in the states a power cut could leave (#14).

A power cut cannot be staged in a test, so this checks the two halves of the promise:
the order of the real system calls (`strace`: every file of a new generation synced
before the name CURRENT gives it; an update's segment and table of contents synced
before the table of contents takes its name, and before the old one goes), and what
`searchapp stats`, `/healthz` and a search say over the states left on disk
when the order is kept (debris beside an intact index) and when it is not (an empty or
missing generation, a table of contents cut short). strace also stops a rebuild where a
crash or a failing disk would (`-e inject`): killed just before CURRENT names its new
generation, and with the last sync of the index folder failing (EIO) after it does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, app_over

from searchapp import operations
from searchapp.config import Settings
from searchapp.indexer import IndexStore

# Whoosh leaves a file of an index it failed to read (a table of contents cut short, a
# segment's empty file) for the garbage collector to close, with a ResourceWarning, once
# the exception holding it goes (in this test or a later one): those warnings only.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <_io\.FileIO name='[^']*/index/gen-\d+/"
    ":pytest.PytestUnraisableExceptionWarning")

STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(
    STRACE is None and not os.environ.get("CI"),
    reason="strace is not installed (apt-get install strace); CI installs it")

NEW_ITEMS = [{"id": f"durable-{k}", "organisation": "ILO", "title": f"Durable housing {k}",
              "summary": "Cooperative housing after a power cut", "date": "2024-05-01",
              "type": "News", "language": "en"} for k in range(3)]


@dataclass(frozen=True, slots=True)
class Call:
    """One system call that succeeded: `fsync` (`path` the file or folder) or `rename`
    (`path` → `to`) or `unlink`."""

    op: str
    path: str
    to: str = ""


_FSYNC = re.compile(r'^f(?:data)?sync\(\d+<(.*)>\)\s+= 0$')
_RENAME = re.compile(r'^rename(?:at2?)?\((?:[^,]+, )?"(.*)", (?:[^,]+, )?"(.*)"(?:, \w+)?\)\s+= 0$')
_UNLINK = re.compile(r'^unlink(?:at)?\((?:[^,]+, )?"(.*)"(?:, \w+)?\)\s+= 0$')


def traced(settings: Settings, tmp_path: Path, *args: str) -> list[Call]:
    """Run `searchapp ARGS` under strace; the syncs, renames and unlinks of the process
    that replaced CURRENT or a table of contents, in order (one file per process:
    within one, the calls come in the order made)."""
    out = tmp_path / "strace"
    out.mkdir()
    done = under_strace(
        settings, ["-ff", "-qq", "-y", "-o", str(out / "trace"),
                   "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat"],
        *args)
    assert done.returncode == 0, done.stderr
    found = [calls_in(trace.read_text().splitlines()) for trace in out.iterdir()]
    # The process that replaced CURRENT (a rebuild; its index workers write tables of
    # contents of their own elsewhere), or else the one that wrote a table of contents.
    for ending in ("/CURRENT", ".toc"):
        writers = [calls for calls in found
                   if any(c.op == "rename" and c.to.endswith(ending) for c in calls)]
        if writers:
            assert len(writers) == 1, f"{len(writers)} processes renamed *{ending}"
            return writers[0]
    raise AssertionError("no process wrote the index")


def under_strace(settings: Settings, options: list[str], *args: str
                 ) -> subprocess.CompletedProcess[str]:
    """`searchapp ARGS` run under `strace OPTIONS`."""
    assert STRACE is not None, "strace is not installed (apt-get install strace)"
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}
    return subprocess.run([STRACE, *options, sys.executable, "-m", "searchapp.cli", *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def calls_in(lines: list[str]) -> list[Call]:
    """The syncs, renames and unlinks an strace output records, in order (a line's
    leading process id, `strace -f`'s, aside)."""
    calls = []
    for line in lines:
        line = re.sub(r"^\d+\s+", "", line)
        if m := _FSYNC.match(line):
            calls.append(Call("fsync", m.group(1)))
        elif m := _RENAME.match(line):
            calls.append(Call("rename", m.group(1), m.group(2)))
        elif m := _UNLINK.match(line):
            calls.append(Call("unlink", m.group(1)))
    return calls


def at(calls: list[Call], op: str, path: str, to: str = "") -> int:
    """Where the call is (the first such); fails when it was not made."""
    for k, call in enumerate(calls):
        if call.op == op and call.path == path and (not to or call.to == to):
            return k
    raise AssertionError(f"no {op} {path} {to}: {calls}")


@needs_strace
def test_a_rebuild_syncs_every_file_of_the_new_generation_before_current_names_it(
        samples: Settings, tmp_path: Path) -> None:
    store = IndexStore(samples.index_dir)
    before = store.current()
    assert before is not None
    calls = traced(samples, tmp_path, "reindex")
    gen = store.current()
    assert gen is not None and gen.name != before.name
    root = str(samples.index_dir)
    building = f"{gen.path}.tmp"
    named = at(calls, "rename", building, str(gen.path))
    pointer = at(calls, "rename", f"{root}/CURRENT.tmp", f"{root}/CURRENT")
    # Every file the new generation holds, and its folder, synced before it is named.
    files = sorted(p.name for p in gen.path.iterdir())
    assert "SYNCED" in files and any(f.endswith(".toc") for f in files)
    assert any(f.endswith(".arrays") for f in files)
    synced_files = [at(calls, "fsync", f"{building}/{name}") for name in files]
    assert Call("fsync", building) in calls[max(synced_files):named]
    # Its name on the disk, then CURRENT's contents, then CURRENT's name.
    root_synced = [k for k, c in enumerate(calls) if c == Call("fsync", root)]
    assert any(named < k < pointer for k in root_synced)
    assert named < at(calls, "fsync", f"{root}/CURRENT.tmp") < pointer
    assert any(k > pointer for k in root_synced)
    # The generation before it stays; nothing of it is touched before the swap.
    assert before.path.is_dir()
    assert not any(c.path.startswith(f"{before.path}/") and c.op == "unlink"
                   for c in calls[:pointer])


@needs_strace
def test_an_update_syncs_its_segment_and_table_of_contents_before_the_old_one_goes(
        samples: Settings, tmp_path: Path) -> None:
    store = IndexStore(samples.index_dir)
    gen = store.current()
    assert gen is not None
    old_tocs = [p.name for p in gen.path.glob("_MAIN_*.toc")]
    old_segments = {p.name.split(".")[0] for p in gen.path.iterdir()
                    if p.name.startswith("MAIN_")}
    path = tmp_path / "new.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in NEW_ITEMS), encoding="utf-8")
    calls = traced(samples, tmp_path, "import", str(path))
    assert store.current() == gen  # updated in place, not rebuilt
    folder = str(gen.path)
    [toc] = [p.name for p in gen.path.glob("_MAIN_*.toc")]
    assert [toc] != old_tocs
    [written] = [c for c in calls if c.op == "rename" and c.to == f"{folder}/{toc}"]
    renamed = calls.index(written)
    # The new segment's files (its postings, stored fields, arrays...), then the folder.
    new_files = [p.name for p in gen.path.iterdir()
                 if p.name.startswith("MAIN_") and p.name.split(".")[0] not in old_segments]
    assert len(new_files) >= 5, new_files
    segment_synced = max(at(calls, "fsync", f"{folder}/{name}") for name in new_files)
    # The table of contents synced under its temporary name, then renamed, then the folder.
    toc_synced = at(calls, "fsync", written.path)
    assert segment_synced < toc_synced < renamed
    assert any(c == Call("fsync", folder) for c in calls[segment_synced:toc_synced])
    folder_after = at(calls[renamed:], "fsync", folder) + renamed
    # Only then the old table of contents goes.
    for name in old_tocs:
        assert folder_after < at(calls, "unlink", f"{folder}/{name}")


@needs_strace
def test_an_update_by_whooshs_writer_is_as_durable(samples: Settings, tmp_path: Path
                                                   ) -> None:
    """The fallback update (Whoosh's writer) commits its table of contents the same way."""
    store = IndexStore(samples.index_dir)
    gen = store.current()
    assert gen is not None
    old_tocs = [p.name for p in gen.path.glob("_MAIN_*.toc")]
    script = tmp_path / "update.py"
    script.write_text(
        "import sys\n"
        "from searchapp.indexer import IndexStore\n"
        "from searchapp.models import build_item\n"
        "store = IndexStore(sys.argv[1])\n"
        f"items = [build_item({NEW_ITEMS[0]!r})]\n"
        "store.update_with_whoosh(items, expected=store.document_count() + 1)\n")
    out = tmp_path / "strace"
    out.mkdir()
    assert STRACE is not None
    done = subprocess.run(
        [STRACE, "-f", "-qq", "-y", "-o", str(out / "trace"),
         "-e", "trace=fsync,rename,unlink", sys.executable, str(script),
         str(samples.index_dir)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    calls = calls_in((out / "trace").read_text().splitlines())
    folder = str(gen.path)
    [toc] = [p.name for p in gen.path.glob("_MAIN_*.toc")]
    [written] = [c for c in calls if c.op == "rename" and c.to == f"{folder}/{toc}"]
    renamed = calls.index(written)
    assert at(calls, "fsync", written.path) < renamed
    new_segment = [c for c in calls[:renamed] if c.op == "fsync"
                   and c.path.startswith(f"{folder}/MAIN_")]
    assert new_segment, calls
    folder_after = at(calls[renamed:], "fsync", folder) + renamed
    for name in old_tocs:
        assert folder_after < at(calls, "unlink", f"{folder}/{name}")


def orphaned(settings: Settings) -> IndexStore:
    """The index with gen-000001 as the previous generation, gen-000002 live, and
    gen-000003 whole but orphaned: written by a rebuild killed (SIGKILL, by strace) as it
    renamed CURRENT.tmp over CURRENT."""
    operations.rebuild(settings)
    root = str(settings.index_dir)
    killed = under_strace(settings, [
        "-f", "-qq", "-o", os.devnull, "-P", f"{root}/CURRENT.tmp",
        "-e", "trace=rename,renameat,renameat2",
        "-e", "inject=rename,renameat,renameat2:signal=SIGKILL"], "reindex")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = IndexStore(settings.index_dir)
    assert [g.name for g in store.generations()] == ["gen-000001", "gen-000002", "gen-000003"]
    assert store.current() == store.generations()[1]
    (settings.index_dir / "CURRENT").write_text("gen-000003\n", encoding="ascii")
    assert store.document_count() == 35  # whole (read as if CURRENT named it)
    (settings.index_dir / "CURRENT").write_text("gen-000002\n", encoding="ascii")
    return store


@needs_strace
def test_a_generation_orphaned_by_a_rebuild_killed_before_the_swap_is_removed(
        samples: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A rebuild killed after its new generation took its name, as it renames CURRENT.tmp
    over CURRENT, leaves that generation whole but never live. Searches answer from the
    live one, which an import then updates; the next `searchapp reindex` removes the
    orphan (and logs it) and keeps the generation that was live as the previous one."""
    store = orphaned(samples)
    root = str(samples.index_dir)
    path = tmp_path / "new.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in NEW_ITEMS), encoding="utf-8")
    assert Cli(samples)("import", path).exit_code == 0
    found = seen(samples, "durable")
    assert found["stats"]["generation"] == "gen-000002"
    assert found["stats"]["index_documents"] == 38 and found["search"]["total"] == 3
    with caplog.at_level(logging.WARNING, logger="searchapp.indexer"):
        result = Cli(samples)("reindex")
    assert result.exit_code == 0, result.output
    assert ("removing index generation gen-000003: a rebuild was stopped before"
            f" {root}/CURRENT named it, so it was never live (gen-000002 is)") in caplog.text
    # The new generation took the orphan's number; the one live before it is kept.
    assert [g.name for g in store.generations()] == ["gen-000002", "gen-000003"]
    found = seen(samples, "durable")
    assert found["stats"]["generation"] == "gen-000003"
    assert found["stats"]["index_documents"] == 38 and found["search"]["total"] == 3
    (samples.index_dir / "CURRENT").write_text("gen-000002\n", encoding="ascii")
    assert store.document_count() == 38  # the previous one: the live data, not the orphan's


@needs_strace
def test_a_missing_live_generation_names_the_previous_one_not_an_orphan(
        samples: Settings) -> None:
    """With the live generation gone and an orphan above it, the problem every surface
    reports names the generation live before it as the previous one, not the orphan."""
    store = orphaned(samples)
    shutil.rmtree(samples.index_dir / "gen-000002")
    problem = seen(samples)["health"]["problem"]
    assert "the live index generation gen-000002 is missing" in problem
    assert "the previous generation gen-000001 is kept" in problem
    assert "gen-000003" not in problem
    assert Cli(samples)("reindex").exit_code == 0
    assert [g.name for g in store.generations()] == ["gen-000002"]


@needs_strace
def test_a_rebuild_failing_before_the_switch_leaves_no_orphan(samples: Settings) -> None:
    """Syncing CURRENT.tmp fails (EIO, injected by strace) once the new generation has
    taken its name: the rebuild fails, the live index as it was, and the new generation
    goes with it."""
    root = str(samples.index_dir)
    failed = under_strace(samples, [
        "-f", "-qq", "-o", os.devnull, "-P", f"{root}/CURRENT.tmp", "-e", "trace=fsync",
        "-e", "inject=fsync:error=EIO"], "reindex", "--quiet")
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr == ("Error: rebuild failed, the live index was left as it was:"
                             " [Errno 5] Input/output error\n")
    store = IndexStore(samples.index_dir)
    assert [g.name for g in store.generations()] == ["gen-000001"]
    assert seen(samples)["stats"]["generation"] == "gen-000001"


@needs_strace
def test_a_failed_sync_after_the_switch_says_the_new_generation_is_live(
        samples: Settings, tmp_path: Path) -> None:
    """The last sync of the index folder, after CURRENT was renamed to name the new
    generation, fails (EIO, injected by strace): the rebuild fails saying that the new
    generation is live but its switch may not be on the disk, and it serves."""
    root = str(samples.index_dir)
    calls = traced(samples, tmp_path, "reindex")  # gen-000002
    folder_syncs = [k for k, c in enumerate(calls) if c == Call("fsync", root)]
    assert folder_syncs[-1] > at(calls, "rename", f"{root}/CURRENT.tmp", f"{root}/CURRENT")
    failed = under_strace(samples, [
        "-f", "-qq", "-o", os.devnull, "-P", root, "-e", "trace=fsync",
        "-e", f"inject=fsync:error=EIO:when={len(folder_syncs)}"], "reindex",
        "--quiet")
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr == (
        f"Error: rebuilt gen-000003 and made it live ({root}/CURRENT names it), but syncing"
        f" {root} after the switch failed ([Errno 5] Input/output error), so the switch may"
        " not be on the disk: after a power cut the index could be back at gen-000002; check"
        " the disk, then run `searchapp reindex` again\n")
    store = IndexStore(samples.index_dir)
    assert [g.name for g in store.generations()] == ["gen-000001", "gen-000002", "gen-000003"]
    found = seen(samples)
    assert found["stats"]["generation"] == "gen-000003"
    assert found["health"]["status"] == "ok" and found["stats"]["index_documents"] == 35
    assert found["search_status"] == 200 and found["search"]["total"] > 0


# What a user sees in the states a power cut can leave ----------------------------------


def seen(settings: Settings, query: str = "cooperative") -> dict[str, Any]:
    """What `searchapp stats --json`, `/healthz` and a search for `query` answer."""
    stats = Cli(settings)("stats", "--json")
    with app_over(settings) as app:
        client = app.test_client()
        health = client.get("/healthz")
        found = client.get("/api/search", query_string={"q": query})
    return {"stats_exit": stats.exit_code, "stats": json.loads(stats.output),
            "health_status": health.status_code, "health": health.get_json(),
            "search_status": found.status_code, "search": found.get_json()}


def test_debris_of_an_update_cut_off_before_its_rename_is_not_seen(samples: Settings
                                                                  ) -> None:
    """After a cut during an update: a new segment's files and a table of contents half
    written under its temporary name, beside the intact old one. Readers see the old
    one; the next import removes the debris."""
    gen = IndexStore(samples.index_dir).current()
    assert gen is not None
    [toc] = gen.path.glob("_MAIN_*.toc")
    number = int(toc.name.split("_")[2].split(".")[0]) + 1
    (gen.path / f"_MAIN_{number}.toc.1733212800.5").write_bytes(toc.read_bytes()[:40])
    (gen.path / "MAIN_debrisdebris0001.seg").write_bytes(b"")
    before = seen(samples)
    assert before["health_status"] == 200 and before["health"]["status"] == "ok"
    assert before["search_status"] == 200 and before["search"]["total"] > 0
    assert before["stats"]["index_documents"] == 35
    assert "index_problem" not in before["stats"]
    path = samples.catalog.parent / "new.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in NEW_ITEMS), encoding="utf-8")
    assert operations.import_paths(samples, [path]).index == "updated"
    assert not list(gen.path.glob("*.toc.*")) and not list(gen.path.glob("MAIN_debris*"))


def test_a_table_of_contents_cut_short_is_reported_with_what_to_run(samples: Settings
                                                                     ) -> None:
    """What an unsynced rename could leave before this stop (a newest table of contents
    cut short): every surface says the index is damaged and to run `searchapp reindex`,
    which restores it."""
    gen = IndexStore(samples.index_dir).current()
    assert gen is not None
    [toc] = gen.path.glob("_MAIN_*.toc")
    toc.write_bytes(toc.read_bytes()[:40])
    after = seen(samples)
    assert after["stats_exit"] == 0
    assert "searchapp reindex" in after["stats"]["index_problem"]
    assert after["stats"]["index_documents"] is None
    assert after["health_status"] == 503 and after["health"]["status"] == "unavailable"
    assert "searchapp reindex" in after["health"]["problem"]
    assert after["search_status"] == 503
    assert "searchapp reindex" in after["search"]["error"]["message"]
    operations.rebuild(samples)
    assert seen(samples)["health"]["status"] == "ok"


def test_empty_segment_files_are_reported_with_what_to_run(samples: Settings) -> None:
    """The segment's files as an unsynced power cut can leave them: there, but empty."""
    gen = IndexStore(samples.index_dir).current()
    assert gen is not None
    for path in gen.path.glob("MAIN_*"):
        path.write_bytes(b"")
    after = seen(samples)
    assert after["health_status"] == 503, after["health"]
    assert "searchapp reindex" in after["health"]["problem"]
    assert "searchapp reindex" in after["stats"]["index_problem"]
    assert after["search_status"] == 503
    assert "searchapp reindex" in after["search"]["error"]["message"]
    operations.rebuild(samples)
    assert seen(samples)["search"]["total"] > 0


def test_a_missing_live_generation_is_reported_with_what_to_run(samples: Settings) -> None:
    """CURRENT names a generation that is not there, the previous one intact. It is not
    served in its place (it may hold items removed from the catalog since, and lack
    those added): every surface names the missing generation, the previous one, and
    `searchapp reindex`, which restores the index."""
    operations.rebuild(samples)
    store = IndexStore(samples.index_dir)
    gen = store.current()
    assert gen is not None and len(store.generations()) == 2
    previous = store.generations()[0]
    shutil.rmtree(gen.path)
    after = seen(samples)
    assert after["stats_exit"] == 0
    assert after["stats"]["generation"] == gen.name
    assert after["stats"]["index_bytes"] == 0
    for problem in (after["stats"]["index_problem"], after["health"]["problem"],
                    after["search"]["error"]["message"]):
        assert f"the live index generation {gen.name} is missing" in problem
        assert previous.name in problem
        assert "run `searchapp reindex`" in problem
    assert after["health_status"] == 503 and after["search_status"] == 503
    result = Cli(samples)("reindex")
    assert result.exit_code == 0, result.output
    assert seen(samples)["health"]["status"] == "ok"
