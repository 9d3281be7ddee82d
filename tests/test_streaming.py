"""Imports of files of any size: read one record at a time, checked whole before anything
is stored, in memory that does not grow with the file (#14)."""

from __future__ import annotations

import importlib
import io
import json
import time
import tracemalloc
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from browser_support import gunicorn
from conftest import SAMPLES, Cli
from faulty_fs import faulty_file

from searchapp import importers
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.importers.spool import Spool

decode = importlib.import_module("searchapp.importers.decode")  # the module, not its function


def write_jsonl(path: Path, n: int, *, start: int = 0, org: str | None = "ICA",
                bad: dict[int, str] | None = None, long: int = 3,
                language: str | None = None) -> Path:
    """n items one per line (line k+1 holds item start+k); `bad` replaces some lines.

    `org=None` leaves the organisation to the import (`--org`, the upload's form);
    `language` is declared by every item (without it, each item's is detected).
    """
    with path.open("w", encoding="utf-8") as out:
        for k in range(n):
            record = {"id": f"s{start + k}", "organisation": org, "date": "2020-05-01",
                      "title": f"Cooperative housing report number {start + k}",
                      "summary": "Worker cooperatives and credit unions " * long,
                      "language": language}
            line = (bad or {}).get(k + 1) or json.dumps(
                {key: value for key, value in record.items() if value is not None})
            out.write(line + "\n")
    return path


def stats(cli: Cli) -> dict[str, object]:
    return dict(json.loads(cli("stats", "--json").stdout))


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A whole-file limit of 20,000 bytes, to show which files are read whole."""
    monkeypatch.setattr(importers, "MAX_BYTES", 20_000)
    monkeypatch.setattr(decode, "MAX_BYTES", 20_000)
    return 20_000


def test_json_lines_and_csv_over_the_whole_file_limit_import(cli: Cli, tmp_path: Path,
                                                             small_limit: int) -> None:
    jsonl = write_jsonl(tmp_path / "big.jsonl", 600)
    csv = tmp_path / "big.csv"
    csv.write_text("id,organisation,title,date\r\n" + "".join(
        f'c{k},ILO,"Decent work, report {k}",2019-01-{k % 28 + 1:02d}\r\n' for k in range(900)),
        encoding="utf-8")
    assert jsonl.stat().st_size > small_limit and csv.stat().st_size > small_limit
    result = cli("import", jsonl, csv)
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported: 1500 added, 0 updated, 0 unchanged; index rebuilt\n"
    assert any(line.startswith("reading: 1,500/1,500 items")
               for line in result.stderr.splitlines())
    assert stats(cli)["items"] == 1500
    hit = json.loads(cli("search", "--json", '"report 899"').stdout)
    assert [item["id"] for item in hit["hits"]] == ["c899"]


def test_other_formats_keep_the_whole_file_limit(cli: Cli, tmp_path: Path,
                                                 small_limit: int) -> None:
    array = tmp_path / "big.json"
    array.write_text(json.dumps([{"id": f"a{k}", "organisation": "ICA",
                                  "title": f"Item {k}"} for k in range(600)]))
    result = cli("import", array)
    assert result.exit_code == 1
    assert f"{array}:1: file is larger than the limit of 20,000 bytes" in result.stderr


def test_a_bad_record_deep_in_a_big_file_stores_nothing(cli: Cli, tmp_path: Path,
                                                        small_limit: int) -> None:
    assert cli("import", SAMPLES).exit_code == 0
    before = stats(cli)
    big = write_jsonl(tmp_path / "big.jsonl", 800, bad={
        700: '{"id": "s699", "organisation": "ICA", "title": "Late", "date": "2020-02-30"}',
        750: '{"id": "s1", "organisation": "ICA", "title": "Again"}',
        790: '{"title": "unclosed'})
    result = cli("import", big)
    assert result.exit_code == 1
    assert f"{big}:700: date '2020-02-30' does not exist" in result.stderr
    assert f"{big}:750: duplicate id 's1' (first on line 2)" in result.stderr
    assert f"{big}:790: invalid JSON" in result.stderr
    assert stats(cli) == before


def test_undecodable_bytes_deep_in_a_big_file_are_the_only_problem(
        cli: Cli, tmp_path: Path, small_limit: int) -> None:
    big = write_jsonl(tmp_path / "big.jsonl", 800, bad={3: '{"title": ""}'})
    with big.open("ab") as out:
        out.write(b'{"id": "x", "organisation": "ICA", "title": "caf\xe9"}\n')
    result = cli("import", big, "--skip-invalid")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-2] == (
        f"{big}:801: not UTF-8: byte 0xE9 in column 49 cannot be decoded (is the file"
        " Latin-1 or Windows-1252? save it as UTF-8)")
    assert f"{big}:3:" not in result.stderr  # the file is refused whole, as when read whole
    assert stats(cli)["items"] == 0


def test_a_file_whose_reading_fails_part_way_imports_nothing_of_itself(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read error part-way through a file (EIO: a failing disk, a network mount gone),
    after its first records were read and checked: the file imports none of them,
    whatever `--skip-invalid` says, and its problem names the line reading stopped on;
    the other files import as `--skip-invalid` says (the first records were imported,
    and the file said to be unreadable on line 1)."""
    monkeypatch.setattr(decode, "_CHUNK", 1 << 16)  # (many lines read before it fails)
    good = write_jsonl(tmp_path / "good.jsonl", 5, start=10_000, language="en")
    data = write_jsonl(tmp_path / "whole.jsonl", 3_000, language="en").read_bytes()
    fail_at = 4 << 16  # the fifth chunk's read fails
    line = data[:fail_at].count(b"\n") + 1
    assert line > 1_000
    with faulty_file(tmp_path / "mount", "big.jsonl", data, fail_at=fail_at) as faulty:
        refused = cli("import", good, faulty)
        skipped = cli("import", good, faulty, "--skip-invalid")
    problem = f"{faulty}:{line}: cannot read the file: Input/output error"
    assert refused.exit_code == 1 and problem in refused.stderr.splitlines(), refused.stderr
    assert skipped.exit_code == 0, skipped.output
    assert f"skipped {problem}" in skipped.stderr.splitlines(), skipped.stderr
    assert skipped.stdout.startswith("imported: 5 added, 0 updated, 0 unchanged, 1 skipped")
    assert stats(cli)["items"] == 5
    assert json.loads(cli("search", "--json", '"report number 1"').stdout)["total"] == 0


def test_an_id_of_another_organisation_is_refused_across_files(cli: Cli,
                                                               tmp_path: Path) -> None:
    assert cli("import", write_jsonl(tmp_path / "ica.jsonl", 5)).exit_code == 0
    other = write_jsonl(tmp_path / "ilo.jsonl", 3, start=4, org="ILO")
    later = write_jsonl(tmp_path / "later.jsonl", 2, start=10, org="COPAC")
    again = write_jsonl(tmp_path / "again.jsonl", 1, start=10, org="ILO")
    result = cli("import", other, later, again)
    assert result.exit_code == 1
    assert (f"{other}:1: id 's4' already belongs to an item of ICA; an import cannot move it"
            " to ILO") in result.stderr
    assert (f"{again}:1: id 's10' is also given to an item of COPAC ({later}:1); an id names"
            " one item of one organisation") in result.stderr
    result = cli("import", other, later, again, "--skip-invalid")
    assert result.exit_code == 0
    assert result.stdout.startswith("imported: 4 added, 0 updated, 0 unchanged, 2 skipped")


def test_a_later_file_wins_for_the_same_id(cli: Cli, tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "first.jsonl", 3)
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps({"id": "s1", "organisation": "ICA", "title": "Renamed"}) + "\n")
    result = cli("import", first, second)
    assert result.stdout.startswith("imported: 3 added, 0 updated, 0 unchanged")
    assert json.loads(cli("search", "--json", "renamed").stdout)["total"] == 1


# Reading lines: the same lines and line numbers as reading the file whole -----

TEXTS = [b"a\r\nb\rc\nd", b"\xef\xbb\xbfone\r\n\r\ntwo\r", b"x\r\r\ny\n\n", b"caf\xc3\xa9\r\nz",
         b"  \n{\"a\": 1}\r\n", b"\r\n" * 5 + b"last"]


@pytest.mark.parametrize("data", TEXTS)
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_lines_read_in_chunks_are_the_lines_of_the_whole_text(
        data: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_CHUNK", chunk)
    whole = decode.decode(data).split("\n")
    streamed = list(decode.text_lines(io.BytesIO(data)))
    assert streamed == whole[:len(streamed)] and not any(whole[len(streamed):])


@pytest.mark.parametrize(("data", "line", "message"), [
    (b"ok\r\nfine\r\ncaf\xe9\n", 3, "not UTF-8: byte 0xE9 in column 4"),
    (b"a\n" + b"x" * 30 + b"\nb", 2, "line is 30 characters long; the limit is 10"),
    (b"a\r" + b"y" * 100, 2, "line is 100 characters long; the limit is 10"),
    (b" \r\n\t\n", 1, "file is empty (only whitespace)"),
    (b"text\nmore\x00", 1, "binary file, not text"),
])
def test_lines_fail_where_reading_whole_fails(data: bytes, line: int, message: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_CHUNK", 4)
    with pytest.raises(decode.UndecodableInput) as whole:
        decode.decode(data, max_line=10)
    with pytest.raises(decode.UndecodableInput) as streamed:
        list(decode.text_lines(io.BytesIO(data), max_line=10))
    assert (streamed.value.line, streamed.value.message) == (whole.value.line,
                                                             whole.value.message)
    assert streamed.value.line == line and streamed.value.message.startswith(message)


# Memory: reading, checking and storing hold a batch, not the file -------------


def _peak_of_import(settings: Settings, path: Path) -> int:
    """Python's peak allocation while a file is read, checked and stored."""
    tracemalloc.start()
    try:
        with Spool(settings.catalog.parent) as spool:
            importers.collect([path], spool=spool)
            with Catalog(settings.catalog) as catalog:
                spool.check(catalog.organisations_of)
                report = catalog.upsert_spooled(spool.file)  # as `searchapp import` stores
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.added == catalog_count(settings) > 0
    return peak


def catalog_count(settings: Settings) -> int:
    with Catalog(settings.catalog) as catalog:
        return catalog.count()


def test_memory_does_not_grow_with_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Files read 64 KiB at a time (not 1 MiB), so that both sizes span many reads.
    monkeypatch.setattr(decode, "_CHUNK", 1 << 16)
    peaks = []
    for n in (5_000, 40_000):
        settings = Settings.load({"catalog": tmp_path / f"c{n}.db",
                                  "index_dir": tmp_path / f"i{n}"}, environ={})
        # The items declare their language: detecting 45,000 languages under
        # tracemalloc would take most of the test and measure nothing it is about.
        path = write_jsonl(tmp_path / f"{n}.jsonl", n, language="en")
        peaks.append(_peak_of_import(settings, path))
    small, large = peaks
    # Eight times the records: the peak may move by a little, not by eight times.
    assert large < small * 1.5, peaks


# Over HTTP: a 20 MB upload is a job, and searches answer while it runs ---------


def _call(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, dict(json.loads(response.read()))


N_UPLOAD = 41_000


def test_a_20_megabyte_upload_imports_as_a_job_while_searches_answer(
        samples: Settings, tmp_path: Path) -> None:
    # The items declare their language (detecting 41,000 would be most of the job's
    # work, and not what this test is about); the organisation comes from the form.
    upload = write_jsonl(tmp_path / "export.jsonl", N_UPLOAD, long=10, org=None,
                         language="en")
    size = upload.stat().st_size
    assert 20_000_000 <= size <= 20 * 1024 * 1024, size  # within the default upload limit
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"organisation\"\r\n\r\n"
            f"ICA\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\";"
            f" filename=\"export.jsonl\"\r\nContent-Type: application/x-ndjson\r\n\r\n"
            ).encode() + upload.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    auth = {"Authorization": "Bearer secret"}
    with gunicorn(samples, tmp_path / "gunicorn.log", SEARCHAPP_ADMIN_TOKEN="secret") as base:
        status, job = _call(f"{base}/api/admin/imports", data=body, headers={
            **auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert status == 202 and job["state"] in ("queued", "running")
        _, page = _call(f"{base}/api/search?q=cooperative")
        before = page["total"]
        searches = 0
        deadline = time.monotonic() + 900
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            status, page = _call(f"{base}/api/search?q=cooperative")
            assert status == 200 and page["total"] in (before, before + N_UPLOAD)
            searches += 1
            _, job = _call(f"{base}/api/admin/jobs/{job['id']}?wait=2", headers=auth)
        assert job["state"] == "succeeded", job
        assert job["result"]["added"] == N_UPLOAD and job["result"]["index"] == "rebuilt"
        assert searches > 0
        _, everything = _call(f"{base}/api/search")
        assert everything["total"] == 35 + N_UPLOAD
        _, page = _call(f"{base}/api/search?q=%22report+number+40999%22")
        assert [hit["id"] for hit in page["hits"]] == ["s40999"]
        _, item = _call(f"{base}/api/items/s40999")
        assert item["source"] == "upload:export.jsonl"
        _, health = _call(f"{base}/healthz")
        assert health["status"] == "ok" and health["documents"] == 35 + N_UPLOAD



def test_a_killed_imports_working_file_is_removed_by_the_next_import(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    """A killed import leaves its spool (about the size of its input) beside the catalog;
    the next import removes it, and leaves alone one that a live import holds."""
    import os
    import signal
    import subprocess
    import sys

    folder = settings.catalog.parent
    code = ("import sys, time; from pathlib import Path;"
            " from searchapp.importers.spool import Spool;"
            " s = Spool(Path(sys.argv[1])); print(s.file, flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    killed = Path(child.stdout.readline().strip()).parent
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    with Spool(folder) as living:
        alive = living.file.parent
        old = time.time() - 3600
        for left in (killed, alive):
            os.utime(left, (old, old))
        assert killed.exists() and alive.exists()
        items = tmp_path / "one.jsonl"
        items.write_text('{"id": "s1", "title": "Spooled once"}\n')
        assert cli("import", items, "--org", "ICA").exit_code == 0
        assert not killed.exists()  # the dead import's folder, removed
        assert alive.exists()  # the living one's, kept
    assert not alive.exists()
    assert not list(folder.glob(".import-*"))
