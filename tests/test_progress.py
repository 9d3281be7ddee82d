"""Progress of imports and rebuilds: a bar on a terminal, plain lines elsewhere, or nothing."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from conftest import SAMPLES, Cli

from searchapp.config import Settings
from searchapp.indexer import IndexStore
from searchapp.progress import TerminalProgress


def run_in_terminal(args: list[str], env: dict[str, str], *, timeout: float = 120) -> str:
    """Run a command with stdout and stderr on a pseudo-terminal; everything it drew."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                            env={**os.environ, **env, "COLUMNS": "100"}, close_fds=True)
    os.close(terminal)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], timeout)
            if not ready:
                raise AssertionError("the command printed nothing for too long")
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command has finished
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
        proc.wait(timeout=timeout)
    assert proc.returncode == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode("utf-8", errors="replace")


def write_items(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{k}", "title": f"Cooperative report {k}"})
                            + "\n" for k in range(n)))
    return path


def env_of(settings: Settings) -> dict[str, str]:
    return {"SEARCHAPP_CATALOG": str(settings.catalog),
            "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}


def test_a_terminal_sees_bars_with_counts(settings: Settings, tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", 2_500)
    searchapp = [sys.executable, "-m", "searchapp.cli"]
    shown = run_in_terminal([*searchapp, "import", str(items), "--org", "ICA"],
                            env_of(settings))
    assert re.search(r"checking: 100%\|.*\| 2500/2500", shown), shown  # (it stayed at 0)
    assert re.search(r"storing: 100%\|.*\| 2500/2500", shown), shown
    assert re.search(r"rebuilding the index: 100%\|.*\| 2500/2500", shown), shown
    # Each phase's end is drawn once (a log of the terminal showed it twice), and what
    # follows the last item is a phase of its own rather than a bar sitting at 100%.
    for phase in ("reading", "checking", "storing", "rebuilding the index"):
        assert shown.count(f"{phase}: 100%") == 1, (phase, shown)
    assert re.search(r"rebuilding the index: 100%[^\r\n]*\s+writing the index\r?\n"
                     r"imported: 2500 added, 0 updated, 0 unchanged; index rebuilt", shown), shown
    shown = run_in_terminal([*searchapp, "reindex"], env_of(settings))
    assert re.search(r"indexing: 100%\|.*\| 2500/2500 \[[0-9:]+<[0-9:]+", shown), shown
    assert "writing the index" in shown
    backup = tmp_path / "backup.sqlite3"
    run_in_terminal([*searchapp, "backup", str(backup)], env_of(settings))
    shown = run_in_terminal([*searchapp, "restore", str(backup)], env_of(settings))
    assert re.search(r"indexing: 100%\|.*\| 2500/2500", shown), shown  # (it was silent)
    assert re.search(r"writing the index\r?\n.*restored 2500 items", shown, re.DOTALL), shown
    quiet = run_in_terminal([*searchapp, "reindex", "--quiet"], env_of(settings))
    assert "%|" not in quiet and re.fullmatch(r"rebuilt gen-000004: 2500 items in \S+s\s*",
                                              quiet), quiet


def test_a_bar_draws_its_end_once_and_a_phase_without_counts_as_a_line() -> None:
    drawn = io.StringIO()
    with TerminalProgress(stream=drawn, bar=True) as progress:
        progress("checking", 0, 10)
        progress("checking", 5, 10)
        time.sleep(0.3)  # past the bar's redraw interval: an update would draw 100% now
        progress("checking", 10, 10)
        progress("writing the index")
    shown = drawn.getvalue()
    assert shown.count("checking: 100%") == 1, shown
    assert re.search(r"checking: 100%[^\r\n]*10/10[^\r\n]*\nwriting the index\n$", shown), shown


def test_elsewhere_plain_lines_and_the_summary_on_stdout(cli: Cli) -> None:
    result = cli("import", SAMPLES)
    assert result.exit_code == 0
    assert result.stdout == "imported: 35 added, 0 updated, 0 unchanged; index rebuilt\n"
    lines = result.stderr.splitlines()
    # Each phase's last line has its count (and its rate, when it took over half a second).
    for phase in ("reading", "checking", "storing", "rebuilding the index"):
        assert any(re.fullmatch(rf"{phase}: 35/35 items(, [\d,]+/s)?", line) for line in lines), lines
    assert lines[-1] == "writing the index", lines
    assert not any("%|" in line for line in lines)
    result = cli("reindex", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("rebuilt gen-000002: 35 items")


def test_a_command_behind_a_busy_lock_says_it_waits(samples: Settings, cli: Cli) -> None:
    cli.env["SEARCHAPP_LOCK_TIMEOUT"] = "0.5"
    with IndexStore(samples.index_dir).lock():
        result = cli("reindex")
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "waiting for other imports or rebuilds to finish", lines
    assert "another import or rebuild is running" in result.stderr
    assert cli("reindex").exit_code == 0  # the lock free: no wait, no such line
    assert "waiting" not in cli("reindex").stderr


def test_a_missing_file_says_only_so(cli: Cli, tmp_path: Path) -> None:
    """In a pipe or cron, no `reading: 0 items` / `checking: 0/0 items` lines come before
    the one line that matters: a phase with nothing done says nothing."""
    result = cli("import", tmp_path / "nope.jsonl")
    assert result.exit_code == 1
    assert result.stderr == (f"{tmp_path}/nope.jsonl:1: no such file or directory\n"
                             "Error: import rejected: 1 problem; nothing was written\n")
