"""A big JSON Lines file read in two processes imports exactly what one process imports,
and fails as cleanly when either process fails (#14).

`split.SPLIT_FROM` is lowered so that small files are split; the second process
is real, started as the import starts it.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import Cli

from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.importers import split
from searchapp.models import Item

decode = importlib.import_module("searchapp.importers.decode")  # the module, not its function

TITLES = ["Cooperative housing report", "Rapport sur le logement coopératif",
          "Informe sobre las cooperativas de vivienda", "Bericht über Genossenschaften",
          "Worker buyouts"]


def record(k: int, **fields: object) -> str:
    """Item k as a JSON line; its language is detected (none is declared)."""
    value: dict[str, object] = {
        "id": f"s{k}", "organisation": "ICA", "date": "2021-03-04",
        "title": f"{TITLES[k % len(TITLES)]} {k}",
        "summary": f"{TITLES[(k + 2) % len(TITLES)]} and the members' {k}th meeting"}
    value.update(fields)
    return json.dumps(value, ensure_ascii=False)


def items_file(path: Path, lines: list[str], *, end: str = "\n", bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"")
                     + "".join(line + end for line in lines).encode("utf-8"))
    return path


class Imports:
    """`searchapp import` of one file into two fresh catalogs: in one process, then split
    (checked by the log line that says so); what each says and what each stored."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 caplog: pytest.LogCaptureFixture) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.caplog = caplog
        self.runs = 0
        self.said: list[str] = []  # the log of the last import

    def run(self, path: Path, *args: str, split_from: int,
            expect_split: bool = True) -> tuple[Settings, Result]:
        self.runs += 1
        root = self.tmp_path / f"run{self.runs}"
        settings = Settings.load({"catalog": root / "instance" / "catalog.sqlite3",
                                  "index_dir": root / "index"}, environ={})
        self.monkeypatch.setattr(split, "SPLIT_FROM", split_from)
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO, logger="searchapp.importers.split"):
            result = Cli(settings)("import", path, *args)
        self.said = [r.getMessage() for r in self.caplog.records]
        in_two = any("in two processes" in message for message in self.said)
        assert in_two == (expect_split and split_from == 1), self.said
        assert not list((root / "instance").glob(".import-*"))  # the working files went
        return settings, result

    def both(self, path: Path, *args: str, expect_split: bool = True
             ) -> tuple[Result, Result]:
        """Import `path` in one process and, with every file split where it can be, again
        (split unless not `expect_split`): both said and stored the same. The results."""
        one_settings, one = self.run(path, *args, split_from=1 << 60)
        two_settings, two = self.run(path, *args, split_from=1, expect_split=expect_split)
        assert (two.exit_code, two.stdout) == (one.exit_code, one.stdout)
        assert problems(two) == problems(one)
        assert final_reading(two) == final_reading(one)
        assert stored(two_settings) == stored(one_settings)
        return one, two


def problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines()
            if ".jsonl:" in line]


def final_reading(result: Result) -> list[str]:
    """The reading progress's last line, without its rate."""
    return [line.split(" items")[0] for line in result.stderr.splitlines()
            if line.startswith("reading: ")][-1:]


def stored(settings: Settings) -> list[Item]:
    if not settings.catalog.exists():
        return []
    with Catalog(settings.catalog) as catalog:
        return sorted(catalog.iter_items(), key=lambda item: item.id)


@pytest.fixture
def imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            caplog: pytest.LogCaptureFixture) -> Imports:
    return Imports(tmp_path, monkeypatch, caplog)


def lines_with_problems(n: int) -> list[str]:
    """n items; an invalid record and a repeated id in each half, an id of the first half
    again in the second, and blank lines around the middle."""
    lines = [record(k) for k in range(n)]
    lines[3] = record(3, date="not a date")
    lines[5] = record(4)  # id s4 twice in the first half
    lines[n - 4] = '{"id": "broken", '
    lines[n - 2] = record(7, title="The same id, far from the first")
    middle = n // 2
    lines[middle - 3:middle + 3] = [""] * 3 + ["   "] + [""] * 2
    return lines


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_a_split_read_says_and_stores_what_one_process_does(
        imports: Imports, tmp_path: Path, end: str) -> None:
    path = items_file(tmp_path / "items.jsonl", lines_with_problems(400), end=end, bom=True)
    _, rejected = imports.both(path)
    assert rejected.exit_code == 1
    said = problems(rejected)
    assert [line.split(": ", 1)[0] for line in said] == [
        f"{path}:4", f"{path}:6", f"{path}:397", f"{path}:399"]
    assert "duplicate id 's7' (first on line 8)" in said[-1]
    _, imported = imports.both(path, "--skip-invalid")
    assert imported.stdout.startswith("imported: 390 added")


def test_the_middle_in_a_long_line(imports: Imports, tmp_path: Path) -> None:
    lines = [record(k) for k in range(60)]
    lines[20] = record(20, summary="Cooperatives everywhere. " * 700)  # most of the file
    path = items_file(tmp_path / "long.jsonl", lines)
    data = path.read_bytes()
    assert b"\n" not in data[len(data) // 2 - 1000:len(data) // 2 + 1000]
    _, result = imports.both(path)
    assert result.stdout.startswith("imported: 60 added")


def test_a_first_half_of_blank_lines(imports: Imports, tmp_path: Path) -> None:
    path = items_file(tmp_path / "blank.jsonl", ["  "] * 3000 + [record(k) for k in range(20)])
    _, result = imports.both(path)
    assert result.stdout.startswith("imported: 20 added")
    assert final_reading(result) == ["reading: 20/20"]


def test_a_directory_of_big_files_one_of_them_undecodable(imports: Imports,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    first = items_file(folder / "a.jsonl", [record(k) for k in range(100)])
    items_file(folder / "b.jsonl", [record(k) for k in range(100, 200)])
    first.write_bytes(first.read_bytes()[:-20] + b"\xff" + first.read_bytes()[-20:])
    _, result = imports.both(folder)
    assert [line.split(": ", 1)[0] for line in problems(result)] == [f"{first}:100"]
    _, result = imports.both(folder, "--skip-invalid")
    assert result.stdout.startswith("imported: 100 added")


def test_csv_and_files_without_a_line_break_near_the_middle_are_read_in_one_process(
        imports: Imports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "items.csv"
    csv.write_text("id,organisation,title,date\n" + "".join(
        f"c{k},ILO,Decent work report {k},2019-01-02\n" for k in range(300)))
    _, result = imports.both(csv, expect_split=False)
    assert result.stdout.startswith("imported: 300 added")
    lines = [record(k) for k in range(20)]
    lines[10] = record(10, summary="Cooperatives everywhere. " * 200)
    path = items_file(tmp_path / "long.jsonl", lines)
    monkeypatch.setattr(split, "_SEARCH", 100)
    imports.both(path, expect_split=False)
    assert [message for message in imports.said if "one process" in message] == [
        f"reading {path} in one process: no line break within 100 bytes after its middle"]


@pytest.mark.parametrize(("bad", "line", "message"), [
    (b"\xe9", 151, "not UTF-8: byte 0xE9 in column 76"),
    (b"\x00", 1, "binary file, not text"),
])
def test_undecodable_bytes_in_the_second_half(imports: Imports, tmp_path: Path, bad: bytes,
                                              line: int, message: str) -> None:
    path = items_file(tmp_path / "bad.jsonl", [record(k) for k in range(200)])
    lines = path.read_bytes().split(b"\n")
    lines[150] = lines[150][:75] + bad + lines[150][75:]
    path.write_bytes(b"\n".join(lines))
    _, result = imports.both(path)
    assert result.exit_code == 1
    said = problems(result)
    assert len(said) == 1 and said[0].startswith(f"{path}:{line}: {message}")


def test_a_nul_byte_just_after_the_middle_wins_over_a_bad_byte_before_it(
        imports: Imports, tmp_path: Path) -> None:
    """One process reads the file in chunks and refuses a chunk with a NUL byte before it
    looks at its lines: so does the first half, in the chunk the middle falls in."""
    path = items_file(tmp_path / "bad.jsonl", [record(k) for k in range(200)])
    data = bytearray(path.read_bytes())
    middle = data.index(b"\n", len(data) // 2) + 1
    data[middle - 10] = 0xE9
    data[middle + 10] = 0
    path.write_bytes(bytes(data))
    _, result = imports.both(path)
    assert [line.split(": ", 1)[1] for line in problems(result)] == ["binary file, not text"]


@pytest.mark.parametrize("data", [
    b"a\r\nb\rc\nd", b"\xef\xbb\xbfone\r\n\r\ntwo\r", b"x\r\r\ny\n\n", b"caf\xc3\xa9\r\nz",
    b"  \n{\"a\": 1}\r\n", b"\r\n" * 5 + b"last", b"\n\r\n\r\r\nz"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_lines_read_in_two_parts_are_the_lines_read_whole(
        data: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut at every line start, the two parts' lines are the whole file's."""
    monkeypatch.setattr(decode, "_CHUNK", chunk)
    whole = list(decode.text_lines(io.BytesIO(data)))
    for cut in range(1, len(data)):
        if split._line_start_after(io.BytesIO(data), cut - 1, len(data)) != cut:
            continue  # not just after a line break
        handle = io.BytesIO(data)
        first = list(decode.text_lines(handle, end=cut))
        handle.seek(cut)
        second = list(decode.text_lines(handle, start=cut))
        assert first + second == whole, cut


# The second process's failures, and its parent's ------------------------------

# `searchapp import`, with every JSON Lines file split and the log on stderr; Ctrl-C
# interrupts it as on a terminal (pytest-xdist's workers ignore SIGINT, and their
# children would inherit that).
RUN = ("import logging, signal, sys; logging.basicConfig(level=logging.INFO);"
       " signal.signal(signal.SIGINT, signal.default_int_handler);"
       " from searchapp.importers import split; split.SPLIT_FROM = 1;"
       " from searchapp.cli import main; main()")


def start_import(settings: Settings, path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}
    return subprocess.Popen([sys.executable, "-c", RUN, "import", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def second_process(importing: subprocess.Popen[str], settings: Settings) -> int:
    """The second process's id, once it has begun writing its records."""
    assert importing.stderr is not None
    for line in importing.stderr:
        if "in two processes" in line:
            pid = int(line.split()[-1])
            break
    else:
        pytest.fail("the file was not split")
    until = time.monotonic() + 60
    while not list(settings.catalog.parent.glob(".import-*/part.db")):
        assert time.monotonic() < until
        time.sleep(0.05)
    return pid


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # (a zombie its new parent has not reaped)


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    until = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > until:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """Enough items that the second process is still reading when it is stopped."""
    return items_file(tmp_path / "big.jsonl", [record(k) for k in range(60_000)])


def test_a_killed_second_process_fails_the_import(settings: Settings, big: Path) -> None:
    importing = start_import(settings, big)
    os.kill(second_process(importing, settings), signal.SIGKILL)
    stdout, stderr = importing.communicate(timeout=120)
    assert importing.returncode == 1 and stdout == ""
    assert (f"Error: {big}: import failed, nothing stored: the process reading the second"
            f" half of the file (from byte ") in stderr
    assert "ended unexpectedly (killed by signal SIGKILL)" in stderr
    assert "Traceback" not in stderr
    assert stored(settings) == []
    assert not list(settings.catalog.parent.glob(".import-*"))


def test_ctrl_c_stops_both_processes(settings: Settings, big: Path) -> None:
    importing = start_import(settings, big)
    pid = second_process(importing, settings)
    os.kill(importing.pid, signal.SIGINT)
    _, stderr = importing.communicate(timeout=120)
    assert importing.returncode != 0 and "Aborted!" in stderr
    assert wait_for(lambda: gone(pid), 10)
    assert stored(settings) == []
    assert not list(settings.catalog.parent.glob(".import-*"))


def test_the_second_process_stops_when_the_import_is_killed(settings: Settings,
                                                             big: Path) -> None:
    importing = start_import(settings, big)
    pid = second_process(importing, settings)
    importing.kill()
    importing.communicate(timeout=60)
    assert wait_for(lambda: gone(pid), 30)
    assert not list(settings.catalog.parent.glob(".import-*/part.*"))  # it removed its own

# What an adversary found (stop 23): the second process reopened the file by its name
# and refused it unless it was the same (device, inode, size) the import had measured,
# where one process reads its open handle to the end, so /dev/stdin, or a file growing,
# removed or renamed meanwhile, failed the import. It now reads a descriptor of the file
# the import has open.


def test_an_import_of_dev_stdin_redirected_from_a_big_file(settings: Settings,
                                                           tmp_path: Path) -> None:
    """`searchapp import /dev/stdin < big.jsonl`: the second process opens /dev/stdin,
    which is its own standard input (the pipe its job came on), not the file."""
    path = items_file(tmp_path / "big.jsonl", [record(k) for k in range(400)])
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}
    with path.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-c", RUN, "import", "/dev/stdin"], env=env,
                              stdin=stdin, capture_output=True, text=True, timeout=300,
                              check=False)
    assert "in two processes" in done.stderr  # (it was split)
    assert done.returncode == 0, done.stderr  # main: "the file changed while it was being read"
    assert done.stdout.startswith("imported: 400 added")
    assert len(stored(settings)) == 400


# A newcomer's report (stop 24): from a pipe, `import /dev/stdin` failed ("File or
# stream is not seekable"); a pipe is now copied into the import's folder first.


@pytest.mark.parametrize("path", ["/dev/stdin", "-"])
def test_an_import_from_a_pipe(settings: Settings, path: str) -> None:
    """`producer | searchapp import /dev/stdin` (or `-`), read in two processes as a file
    is, with its problems named and numbered as the user gave it."""
    lines = [record(k) for k in range(400)]
    lines[7] = record(7, title="")
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}
    with subprocess.Popen([sys.executable, "-c", RUN, "import", path, "--skip-invalid"],
                          env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as importing:
        out, err = importing.communicate("".join(line + "\n" for line in lines), timeout=300)
    assert importing.returncode == 0, err
    assert "not seekable" not in err
    assert "in two processes" in err  # (it was split)
    assert f"skipped {path}:8: title is missing or blank" in err
    assert out.startswith("imported: 399 added")
    assert len(stored(settings)) == 399
    assert not list(settings.catalog.parent.glob(".import-*"))  # the copy went with it


def test_a_file_appended_to_while_it_is_imported(imports: Imports, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A line written to the file (a log being written) after the import opened it and
    before the second process opens it: one process reads it too, or at least imports
    what was there; the split import fails as a whole ("RuntimeError: the file changed")."""
    path = items_file(tmp_path / "growing.jsonl", [record(k) for k in range(400)])
    start = split._start

    def appended_then_started(job: split._Job) -> subprocess.Popen[bytes]:
        with path.open("a", encoding="utf-8") as file:
            file.write(record(400) + "\n")
        return start(job)

    monkeypatch.setattr(split, "_start", appended_then_started)
    _, result = imports.run(path, split_from=1)
    assert result.exit_code == 0, result.stderr
    assert "RuntimeError" not in result.stderr


@pytest.mark.parametrize("wait", ["inf", "1e10", "2147484"])
def test_a_catalog_wait_sqlite_cannot_keep_is_refused(wait: str) -> None:
    """SQLite's busy timeout is a C int of milliseconds: SEARCHAPP_CATALOG_WAIT=inf (an
    operator's "wait for ever") or anything from 2,147,484 s on overflowed into no wait
    at all, and jobs failed with catalog_busy at once. Such a value is refused."""
    from searchapp.config import ConfigError

    with pytest.raises(ConfigError, match="SEARCHAPP_CATALOG_WAIT: must be at most 2,000,000"):
        Settings.load({}, environ={"SEARCHAPP_CATALOG_WAIT": wait})
    assert Settings.load({}, environ={"SEARCHAPP_CATALOG_WAIT": "2000000"}).catalog_wait == 2e6


def test_a_file_removed_after_the_import_opened_it(imports: Imports, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's name removed (or replaced by a rename) once the import has it open: one
    process reads its open handle to the end; the second process reopens the name and
    fails ("FileNotFoundError"), failing the import."""
    path = items_file(tmp_path / "removed.jsonl", [record(k) for k in range(400)])
    start = split._start

    def removed_then_started(job: split._Job) -> subprocess.Popen[bytes]:
        path.unlink()
        return start(job)

    monkeypatch.setattr(split, "_start", removed_then_started)
    _, result = imports.run(path, split_from=1)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("imported: 400 added")
