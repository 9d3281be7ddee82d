"""An import's problems, however many, in bounded memory (#14).

A file of nothing but invalid lines has as many problems as lines: they wait in the
import's working file, not in a list, and come back from it in order. The command
line prints every one; a job's record and a JSON answer list the first
`PROBLEMS_LISTED`, with the exact count and how many were left out.

The memory tests run the real command in a process of its own and read its peak
resident set (and its second process's, for a split read) from `wait4`, in a small
process started for that (`_MEASURED`). Before
this change, 600,000 invalid lines peaked at 333-361 MB (the file read whole,
streamed, or split in two: some 450 bytes a problem over some 80 MB of Python and
libraries); since, at 90-93 MB, whatever the number of lines.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, app_over
from flask.testing import FlaskClient
from openapi_support import ApiDescription

from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import PROBLEMS_LISTED

LINES = 600_000  # invalid lines of the files the memory tests import
# The largest process's peak, between the two: measured (3 December 2026, 600,000
# lines) at 90-93 MB since and 333-361 MB before, on each path below.
PEAK_MB = 200
NUMBER = "expected a JSON object for an item, found a number"
NOT_JSON = "invalid JSON: Expecting value (column 1)"
TOKEN = "problems-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def item(k: int) -> str:
    return json.dumps({"id": f"v{k}", "organisation": "ICA", "title": f"Valid item {k}",
                       "language": "en"})


# Runs a command (argv[2:]) and writes the peak resident set of its largest process, in
# KiB, to the file argv[1]. Linux counts in a process's peak the memory of the process
# it was started from, as it was when it started (a test process of 670 MB, once,
# after other tests): this one is small, where the test process may be large.
_MEASURED = ("import os, sys\n"
             "pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)\n"
             "_, status, usage = os.wait4(pid, 0)\n"
             "with open(sys.argv[1], 'w') as peak:\n"
             "    peak.write(str(usage.ru_maxrss))\n"
             "sys.exit(os.waitstatus_to_exitcode(status))")


def run_import(settings: Settings, *args: str | Path, split_log: Path | None = None
               ) -> tuple[int, Path, Path, float]:
    """`searchapp import ARGS` in a process of its own: its exit status, its stdout and
    stderr (files), and the peak resident set, in MB, of its largest process. With
    `split_log`, every JSON Lines file is read in two processes (`split.SPLIT_FROM`
    lowered, as tests/test_split.py lowers it), which that log says."""
    folder = settings.catalog.parent
    out, err, peak = folder / "stdout", folder / "stderr", folder / "peak"
    folder.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).parent / "searchapp")]
    if split_log is not None:
        command = [sys.executable, "-c", (
            "import logging, sys\n"
            "from searchapp.importers import split\n"
            "split.SPLIT_FROM = 1\n"
            "said = logging.getLogger('searchapp.importers.split')\n"
            f"said.addHandler(logging.FileHandler({str(split_log)!r}))\n"
            "said.setLevel(logging.INFO)\n"
            "from searchapp.cli import main\n"
            "sys.exit(main())")]
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        done = subprocess.run([sys.executable, "-c", _MEASURED, str(peak), *command,
                               "import", "--quiet", *map(str, args)],
                              stdout=stdout, stderr=stderr, env=env, check=False)
    return done.returncode, out, err, int(peak.read_text()) / 1024


def lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as text:
        for line in text:
            yield line.rstrip("\n")


def stored(settings: Settings) -> list[str]:
    if not settings.catalog.exists():
        return []
    with Catalog(settings.catalog) as catalog:
        return sorted(item.id for item in catalog.iter_items())


def assert_every_problem_in_order(err: Path, expected: Iterator[str], last: str) -> None:
    """`err` holds exactly the lines `expected` gives, then `last`."""
    said = lines(err)
    # (`expected` first: zip takes nothing more from `said` once `expected` is done.)
    for number, (wanted, line) in enumerate(zip(expected, said, strict=False), 1):
        assert line == wanted, (number, line, wanted)
    assert list(said) == [last]


# The command line: every problem, in order, in memory that does not grow ------------


@pytest.mark.parametrize(("name", "line", "message"), [
    ("numbers.jsonl", "1", NUMBER),  # read one line at a time
    ("letters.jsonl", "x", NOT_JSON),  # read whole: its first line is no JSON value
], ids=["streamed", "read whole"])
def test_a_file_of_invalid_lines_is_rejected_with_every_problem_in_bounded_memory(
        settings: Settings, tmp_path: Path, name: str, line: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(f"{line}\n" * LINES)
    code, out, err, peak = run_import(settings, path)
    assert code == 1 and out.read_text() == ""
    assert_every_problem_in_order(
        err, (f"{path}:{k}: {message}" for k in range(1, LINES + 1)),
        f"Error: import rejected: {LINES} problems; nothing was written")
    assert stored(settings) == []
    assert peak < PEAK_MB, f"peak {peak:.0f} MB"


def test_a_file_read_in_two_processes_gives_both_halves_problems_in_bounded_memory(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "numbers.jsonl"
    path.write_text("1\n" * LINES)
    log = tmp_path / "split.log"
    code, _, err, peak = run_import(settings, path, split_log=log)
    assert "in two processes" in log.read_text()
    assert code == 1
    assert_every_problem_in_order(
        err, (f"{path}:{k}: {NUMBER}" for k in range(1, LINES + 1)),
        f"Error: import rejected: {LINES} problems; nothing was written")
    assert stored(settings) == []
    assert peak < PEAK_MB, f"peak {peak:.0f} MB"


def test_skip_invalid_stores_the_valid_records_and_prints_every_one_skipped(
        settings: Settings, tmp_path: Path) -> None:
    # Valid records among 5,000 invalid lines, and one repeated id, which `check` finds
    # after the reading: its problem comes in its line's place.
    valid = {1: item(1), 2_500: item(2), 4_000: item(1), 5_003: item(3)}
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(valid.get(k, "1") + "\n" for k in range(1, 5_004)))
    result = Cli(settings)("import", "--quiet", "--skip-invalid", path)
    assert result.exit_code == 0, result.output
    expected = [f"skipped {path}:{k}: " + (
        "duplicate id 'v1' (first on line 1)" if k == 4_000 else NUMBER)
        for k in range(1, 5_004) if k not in valid or k == 4_000]
    assert result.stderr.splitlines() == expected
    assert result.stdout == ("imported: 3 added, 0 updated, 0 unchanged, 5000 skipped;"
                             " index rebuilt\n")
    assert stored(settings) == ["v1", "v2", "v3"]


def test_problems_of_several_files_come_file_by_file_and_line_by_line(
        settings: Settings, tmp_path: Path) -> None:
    # The repeated ids are found once both files are read, after the invalid lines.
    first, second = tmp_path / "b.jsonl", tmp_path / "a.jsonl"
    first.write_text(item(1) + "\n" + item(1) + "\n1\n")
    second.write_text("x\n" + item(1).replace("ICA", "ILO") + "\n")
    result = Cli(settings)("import", "--quiet", first, second)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{first}:2: duplicate id 'v1' (first on line 1)",
        f"{first}:3: {NUMBER}",
        f"{second}:1: {NOT_JSON}",
        (f"{second}:2: id 'v1' is also given to an item of ICA ({first}:1); an id names"
         " one item of one organisation"),
        "Error: import rejected: 4 problems; nothing was written"]
    assert stored(settings) == []


# Jobs: the first PROBLEMS_LISTED in the catalog, the exact count, how many left out ----


@pytest.fixture
def admin(settings: Settings) -> Iterator[FlaskClient]:
    with app_over(settings, admin_token=TOKEN) as app:
        yield app.test_client()


def upload(client: FlaskClient, data: bytes, **form: str) -> dict[str, Any]:
    response = client.post("/api/admin/imports?wait=60", headers=AUTH, content_type=
                           "multipart/form-data", data={"file": (io.BytesIO(data), "n.jsonl"),
                                                        **form})
    job = ApiDescription.of(client).check("/api/admin/imports", response, method="post")
    assert response.status_code == 200, job
    return job  # type: ignore[no-any-return]


def test_a_rejected_jobs_record_lists_the_first_problems_with_their_count(
        admin: FlaskClient, settings: Settings) -> None:
    many = PROBLEMS_LISTED + 250
    job = upload(admin, b"1\n" * many)
    assert job["state"] == "failed" and job["error"]["code"] == "invalid_import"
    error = job["error"]
    assert [(p["source"], p["line"], p["message"]) for p in error["problems"]] == [
        ("upload:n.jsonl", k, NUMBER) for k in range(1, PROBLEMS_LISTED + 1)]
    assert (error["problems_total"], error["problems_left_out"]) == (many, 250)
    assert error["message"].endswith(f"upload:n.jsonl:{PROBLEMS_LISTED}: {NUMBER}\n"
                                     "… and 250 more problems, not listed")
    assert stored(settings) == []


def test_a_skipping_jobs_record_lists_the_first_problems_with_their_count(
        admin: FlaskClient, settings: Settings) -> None:
    many = PROBLEMS_LISTED + 1
    job = upload(admin, (item(1) + "\n").encode() + b"1\n" * many, skip_invalid="true")
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert (result["added"], result["skipped"], result["errors_left_out"]) == (1, many, 1)
    assert [p["line"] for p in result["errors"]] == list(range(2, PROBLEMS_LISTED + 2))
    assert stored(settings) == ["v1"]


def test_a_small_rejection_lists_every_problem(admin: FlaskClient) -> None:
    job = upload(admin, b"1\n{oops\n")
    error = job["error"]
    assert [p["line"] for p in error["problems"]] == [1, 2]
    assert (error["problems_total"], error["problems_left_out"]) == (2, 0)
    assert error["message"] == (
        f"upload:n.jsonl:1: {NUMBER}\nupload:n.jsonl:2: invalid JSON: Expecting property"
        " name enclosed in double quotes (column 2)")
