"""Admin endpoints: token, upload import, reindex, limits, the shared lock."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import app_over, mounted, read_only
from flask import Flask
from flask.testing import FlaskClient
from openapi_support import ApiDescription
from werkzeug.test import TestResponse

from searchapp.config import Settings
from searchapp.indexer import IndexStore

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WAIT = 60  # seconds a test waits for a job it started
WAITING = "waiting for other imports or rebuilds to finish"  # the phase behind a busy lock
# The phase while another program holds the catalog's write lock.
CATALOG_WAITING = "waiting for the catalog (another program holds its write lock)"
JSONL = b'{"id": "n1", "title": "Platform cooperatives meet in Berlin", "date": "2018-05-01"}\n' \
        b'{"id": "n2", "title": "Housing cooperatives report", "date": "2018-06-01"}\n'


@pytest.fixture
def admin_app(samples: Settings) -> Iterator[Flask]:
    with app_over(samples, admin_token=TOKEN, max_upload_bytes=4096,
                  lock_timeout=0.2) as app:
        yield app


@pytest.fixture
def admin(admin_app: Flask) -> FlaskClient:
    return admin_app.test_client()


def upload(client: FlaskClient, data: bytes, name: str = "new.jsonl",
           headers: dict[str, str] | None = None, wait: int = WAIT,
           **form: str) -> tuple[int, dict[str, Any]]:
    response = client.post(f"/api/admin/imports?wait={wait}",
                           headers=AUTH if headers is None else headers,
                           data={"file": (io.BytesIO(data), name), **form},
                           content_type="multipart/form-data")
    return response.status_code, response.get_json()


def finished(client: FlaskClient, response: TestResponse) -> dict[str, Any]:
    """The job a 200/202 answer started, once it has ended."""
    assert response.status_code in (200, 202), response.get_json()
    location = response.headers["Location"]
    job = client.get(f"{location}?wait={WAIT}", headers=AUTH).get_json()
    assert job["state"] in ("succeeded", "failed"), job
    return job  # type: ignore[no-any-return]


def total(client: FlaskClient) -> int:
    return client.get("/api/search").get_json()["total"]  # type: ignore[no-any-return]


def test_an_upload_imports_with_a_relative_catalog_path(samples: Settings, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # `make run` serves `instance/catalog.sqlite3` from where it started; the job runs in
    # the jobs folder and must still find the upload (it found nothing, and succeeded).
    monkeypatch.chdir(samples.catalog.parent.parent)
    relative = Settings.load({"catalog": Path(samples.catalog.parent.name) / samples.catalog.name,
                              "index_dir": samples.index_dir}, environ={})
    assert not relative.catalog.is_absolute()
    with app_over(relative, admin_token=TOKEN, max_upload_bytes=4096) as app:
        client = app.test_client()
        status, job = upload(client, JSONL, organisation="ILO")
        assert status == 200 and job["state"] == "succeeded", job
        assert job["result"]["added"] == 2 and job["result"]["index"] == "updated"
        assert total(client) == 37
        assert not list((samples.catalog.parent / "jobs").glob("*.upload"))


def test_admin_routes_are_404_without_a_configured_token(client: FlaskClient) -> None:
    for path in ("/api/admin/imports", "/api/admin/reindex"):
        response = client.post(path, headers=AUTH)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    for path in ("/api/admin/jobs", "/api/admin/jobs/abc"):
        assert client.get(path, headers=AUTH).status_code == 404


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
])
def test_wrong_or_missing_token_is_401_and_changes_nothing(admin: FlaskClient,
                                                          headers: dict[str, str]) -> None:
    status, body = upload(admin, JSONL, headers=headers, organisation="ILO")
    assert status == 401 and body["error"]["code"] == "unauthorised"
    response = admin.post("/api/admin/reindex", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert admin.get("/api/admin/jobs", headers=headers).status_code == 401
    assert total(admin) == 35
    assert admin.get("/api/admin/jobs", headers=AUTH).get_json() == {"jobs": []}


def test_upload_imports_as_a_job_and_reports(admin: FlaskClient) -> None:
    status, job = upload(admin, JSONL, organisation="ICA")
    assert status == 200 and job["kind"] == "import" and job["state"] == "succeeded"
    assert job["result"] == {"added": 2, "updated": 0, "unchanged": 0, "skipped": 0,
                             "index": "updated", "repaired": 0, "index_problem": None,
                             "index_note": None, "errors": [], "errors_left_out": 0}
    assert job["error"] is None and job["started"] and job["finished"]
    found = admin.get("/api/search?q=housing").get_json()
    assert found["total"] == 1 and found["hits"][0]["organisation"] == "ICA"
    assert admin.get("/api/items/n1").get_json()["source"] == "upload:new.jsonl"
    again = upload(admin, JSONL, organisation="ICA")[1]["result"]
    assert (again["added"], again["unchanged"]) == (0, 2)
    listed = admin.get("/api/admin/jobs", headers=AUTH).get_json()["jobs"]
    assert [j["state"] for j in listed] == ["succeeded", "succeeded"]


def test_a_job_answers_202_at_once_with_where_to_follow_it(admin: FlaskClient) -> None:
    response = admin.post("/api/admin/reindex", headers=AUTH)
    assert response.status_code == 202
    job = response.get_json()
    assert job["state"] in ("queued", "running") and job["kind"] == "reindex"
    assert response.headers["Location"].endswith(f"/api/admin/jobs/{job['id']}")
    done = finished(admin, response)
    assert done["state"] == "succeeded" and done["result"]["documents"] == 35
    assert admin.get("/api/admin/jobs/nope", headers=AUTH).status_code == 404


def test_upload_in_each_format(admin: FlaskClient) -> None:
    csv = b"id,title,date\nc1,Worker cooperatives in Spain,2019-01-02\n"
    assert upload(admin, csv, "items.csv", organisation="CECOP")[1]["result"]["added"] == 1
    page = (b"Our news\n\n1. News\n\n   Cooperatives and climate\n\n   3 March 2020\n\n"
            b"2. Event\n\n   Webinar on housing cooperatives\n")
    assert upload(admin, page, "listing.txt", organisation="ICA", format="listing")[1][
        "result"]["added"] == 2
    assert total(admin) == 38


def test_every_uploaded_file_is_imported(admin: FlaskClient) -> None:
    response = admin.post(f"/api/admin/imports?wait={WAIT}", headers=AUTH, data={
        "file": [(io.BytesIO(JSONL), "a.jsonl"),
                 (io.BytesIO(b"id,title\nc9,Cooperative banks in Kenya\n"), "b.csv")],
        "organisation": "ICA"}, content_type="multipart/form-data")
    job = finished(admin, response)
    assert job["result"]["added"] == 3 and total(admin) == 38
    assert admin.get("/api/items/c9").get_json()["source"] == "upload:b.csv"


def test_invalid_upload_fails_its_job_with_every_problem_and_writes_nothing(
        admin: FlaskClient) -> None:
    bad = b'{"id": "a", "title": "Fine"}\n{"id": "b", "title": ""}\n{oops\n'
    status, job = upload(admin, bad, "bad.jsonl", organisation="ILO")
    assert status == 200 and job["state"] == "failed" and job["result"] is None
    assert job["error"]["code"] == "invalid_import"
    assert [(p["source"], p["line"]) for p in job["error"]["problems"]] == [
        ("upload:bad.jsonl", 2), ("upload:bad.jsonl", 3)]
    assert "upload:bad.jsonl:2: title is missing or blank" in job["error"]["message"]
    assert total(admin) == 35
    status, job = upload(admin, bad, "bad.jsonl", organisation="ILO", skip_invalid="true")
    assert job["state"] == "succeeded"
    assert job["result"]["added"] == 1 and len(job["result"]["errors"]) == 2


def test_an_upload_without_an_organisation_names_the_form_field(admin: FlaskClient) -> None:
    status, job = upload(admin, JSONL, "no-org.jsonl")
    assert status == 200 and job["state"] == "failed"
    message = job["error"]["message"]
    assert "upload:no-org.jsonl:1: organisation is missing" in message
    assert "an admin upload's organisation field" in message
    assert total(admin) == 35


def test_bad_form_values_are_400_and_start_no_job(admin: FlaskClient) -> None:
    assert upload(admin, JSONL, format="xml")[0] == 400
    assert upload(admin, JSONL, organisation="x" * 2_001)[0] == 400
    response = admin.post("/api/admin/imports", headers=AUTH, data={},
                          content_type="multipart/form-data")
    assert response.status_code == 400 and "file" in response.get_json()["error"]["message"]
    response = admin.post("/api/admin/imports", headers=AUTH, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(JSONL), "a.jsonl"),
                                "other": (io.BytesIO(JSONL), "b.jsonl")})
    assert response.status_code == 400 and "other" in response.get_json()["error"]["message"]
    assert admin.post("/api/admin/reindex?wait=soon", headers=AUTH).status_code == 400
    assert admin.get("/api/admin/jobs", headers=AUTH).get_json() == {"jobs": []}


def test_uploads_over_the_limit_are_413(admin: FlaskClient) -> None:
    status, body = upload(admin, b"x" * 10_000, "big.jsonl", organisation="ILO")
    assert status == 413 and "4,096 bytes" in body["error"]["message"]
    assert total(admin) == 35


def test_reindex_swaps_generation(admin: FlaskClient, samples: Settings) -> None:
    job = finished(admin, admin.post("/api/admin/reindex", headers=AUTH))
    assert job["result"]["generation"] == "gen-000002" and job["result"]["documents"] == 35
    assert admin.get("/healthz").get_json()["generation"] == "gen-000002"


def spooled(settings: Settings) -> list[Path]:
    """The uploads waiting beside the catalog for their jobs."""
    return sorted((settings.catalog.parent / "jobs").glob("*.upload"))


def test_jobs_queued_behind_a_busy_lock_read_nothing_until_they_have_it(
        admin: FlaskClient, samples: Settings) -> None:
    """Queued uploads wait as files on disk: a job behind the lock has not read, parsed
    or checked its file (an invalid one is reported only once the lock is free), so
    queued uploads do not each hold a parsed file and lingua's models in memory."""
    bad = b'{"id": "b", "title": ""}\n'
    more = b'{"id": "n3", "title": "Credit unions in Kenya", "date": "2019-02-01"}\n'
    with IndexStore(samples.index_dir).lock():
        queued = [upload(admin, data, f"{n}.jsonl", organisation="ILO", wait=0)
                  for n, data in enumerate((JSONL, bad, more))]
        assert [status for status, _ in queued] == [202, 202, 202]
        for _, job in queued:
            deadline = time.monotonic() + WAIT
            while job["phase"] != WAITING and time.monotonic() < deadline:
                assert job["state"] == "queued" and job["phase"] == "queued", job
                time.sleep(0.05)
                job = admin.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).get_json()
            assert job["state"] == "queued" and job["phase"] == WAITING, job
        time.sleep(1.0)  # time enough to have read and checked one small file, had it tried
        for _, job in queued:
            job = admin.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).get_json()
            assert (job["state"], job["phase"], job["done"], job["started"], job["error"]) \
                == ("queued", WAITING, None, None, None), job
        assert sorted(path.read_bytes() for path in spooled(samples)) == sorted(
            [JSONL, bad, more])
        assert total(admin) == 35  # nothing stored while they wait
    ended = [admin.get(f"/api/admin/jobs/{job['id']}?wait={WAIT}", headers=AUTH).get_json()
             for _, job in queued]
    assert [job["state"] for job in ended] == ["succeeded", "failed", "succeeded"]
    assert ended[1]["error"]["code"] == "invalid_import"
    assert ended[1]["error"]["problems"][0]["source"] == "upload:1.jsonl"
    assert total(admin) == 38
    assert spooled(samples) == []


def test_queued_imports_run_in_the_order_they_were_sent(admin: FlaskClient,
                                                        samples: Settings) -> None:
    """Five uploads of the same item, queued behind the lock: once it is free they run
    one by one in the order they came (each polled the lock on its own before, so an
    older upload could run last and leave its older text, every job saying succeeded)."""
    versions = [json.dumps({"id": "n1", "title": f"Platform cooperatives, version {v}",
                            "date": "2018-05-01"}).encode() + b"\n" for v in range(5)]
    with IndexStore(samples.index_dir).lock():
        queued = [upload(admin, data, f"{n}.jsonl", organisation="ILO", wait=0)[1]
                  for n, data in enumerate(versions)]
    ended = [admin.get(f"/api/admin/jobs/{job['id']}?wait={WAIT}", headers=AUTH).get_json()
             for job in queued]
    assert [job["state"] for job in ended] == ["succeeded"] * 5, ended
    assert [job["started"] for job in ended] == sorted(job["started"] for job in ended)
    found = admin.get("/api/search?q=platform").get_json()["hits"]
    assert [hit["title"] for hit in found if hit["id"] == "n1"] == [
        "Platform cooperatives, version 4"]


def test_a_job_whose_process_dies_is_marked_failed(admin: FlaskClient,
                                                   samples: Settings) -> None:
    """A job killed while it waits (as a restart would) fails visibly, wrote nothing,
    and its upload is removed."""
    with IndexStore(samples.index_dir).lock():
        status, job = upload(admin, JSONL, organisation="ILO", wait=1)
        assert status == 202 and len(spooled(samples)) == 1
        from searchapp.catalog import Catalog

        with Catalog(samples.catalog) as catalog:
            recorded = catalog.job(job["id"])
        assert recorded is not None and recorded.pid
        os.kill(recorded.pid, signal.SIGKILL)
        job = admin.get(f"/api/admin/jobs/{job['id']}?wait=5", headers=AUTH).get_json()
    assert job["state"] == "failed" and job["error"]["code"] == "interrupted"
    assert total(admin) == 35
    assert spooled(samples) == []


def test_uploads_no_job_waits_for_are_removed_when_the_service_starts(
        samples: Settings) -> None:
    """A request cut off while it spooled (the server killed) leaves a file no job names:
    the next start removes it, once it is older than a request could still be writing."""
    folder = samples.catalog.parent / "jobs"
    folder.mkdir()
    stale, fresh = folder / "0123456789abcdef.0.upload", folder / "fedcba9876543210.0.upload"
    for path in (stale, fresh):
        path.write_bytes(JSONL)
    long_ago = time.time() - 3600
    os.utime(stale, (long_ago, long_ago))
    with app_over(samples, admin_token=TOKEN):
        assert spooled(samples) == [fresh]


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type, built here (Werkzeug's test
    client spools a big body to a temporary file it leaves open)."""
    boundary = "----searchapp-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             .encode() + value.encode() + b"\r\n" for name, value in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}";'
              f' filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
              .encode() + data + b"\r\n" for name, (filename, data) in files.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_form_field_over_the_limit_is_refused_naming_it(samples: Settings) -> None:
    """A 600 KB field (not a file) is a 400 that names the field and the limit, not a
    413 about the number of parts."""
    with app_over(samples, admin_token=TOKEN) as app:
        client = app.test_client()
        for name, message in (
                ("url", "the field is 600,000 characters long; the limit is 10,000"),
                ("format", "the field is 600,000 characters long; the limit is 10,000"),
                ("organisation", "organisation is 600000 characters long; the limit is 2000")):
            body, kind = multipart({name: "x" * 600_000}, {"file": ("new.jsonl", JSONL)})
            response = client.post("/api/admin/imports", headers=AUTH, data=body,
                                   content_type=kind)
            assert response.status_code == 400, response.get_json()
            assert response.get_json()["error"] == {"code": "bad_parameter",
                                                    "message": f"{name}: {message}"}
        response = client.post("/api/admin/refresh", headers=AUTH,
                               data={"source": "s" * 600_000})
        assert response.status_code == 400
        assert response.get_json()["error"]["message"].startswith("source: the field is")
        assert client.get("/api/admin/jobs", headers=AUTH).get_json() == {"jobs": []}
    assert spooled(samples) == []


def test_admin_is_not_open_to_cross_origin_reads(admin: FlaskClient) -> None:
    response = admin.post(f"/api/admin/reindex?wait={WAIT}", headers=AUTH)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in admin.get("/api/admin/jobs",
                                                          headers=AUTH).headers


def test_job_answers_match_the_description(admin: FlaskClient) -> None:
    api = ApiDescription.of(admin)
    started = admin.post("/api/admin/reindex", headers=AUTH)
    api.check("/api/admin/reindex", started, method="post")
    location = started.headers["Location"]
    api.check(location, admin.get(f"{location}?wait={WAIT}", headers=AUTH))
    bad = b'{"id": "b", "title": ""}\n'
    response = admin.post(f"/api/admin/imports?wait={WAIT}", headers=AUTH,
                          data={"file": (io.BytesIO(bad), "bad.jsonl"), "organisation": "ILO"},
                          content_type="multipart/form-data")
    failed = api.check("/api/admin/imports", response, method="post")
    assert failed["state"] == "failed" and failed["error"]["problems"][0]["line"] == 1
    listed = api.check("/api/admin/jobs", admin.get("/api/admin/jobs", headers=AUTH))
    assert len(listed["jobs"]) == 2
    api.check("/api/admin/jobs/nope", admin.get("/api/admin/jobs/nope", headers=AUTH))
    api.check("/api/admin/jobs", admin.get("/api/admin/jobs"))  # 401


def test_an_upload_the_disk_has_no_room_for_is_507_and_leaves_nothing(
        samples: Settings, tmp_path: Path) -> None:
    """The catalog's folder on a 1 MiB file system and a 2 MiB upload: the spooled part is
    removed, no job is recorded, and the answer says the disk is full."""
    small = tmp_path / "small"
    small.mkdir()
    with mounted(small, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        shutil.copy2(samples.catalog, small / samples.catalog.name)
        on_small = Settings.load({"catalog": small / samples.catalog.name,
                                  "index_dir": samples.index_dir}, environ={})
        with app_over(on_small, admin_token=TOKEN, max_upload_bytes=8 << 20) as app:
            client = app.test_client()
            body, kind = multipart({"organisation": "ILO"},
                                   {"file": ("big.jsonl", JSONL * 12_000)})
            response = client.post("/api/admin/imports", headers=AUTH, data=body,
                                   content_type=kind)
            assert response.status_code == 507, response.get_json()
            error = response.get_json()["error"]
            assert error["code"] == "disk_full" and "is full" in error["message"]
            assert spooled(on_small) == []
            assert client.get("/api/admin/jobs", headers=AUTH).get_json() == {"jobs": []}
            assert total(client) == 35


@pytest.mark.parametrize("wait", ["abc", "-1", "601", "1_0", "٦"])
def test_a_wait_that_is_not_seconds_0_to_600_is_refused(admin: FlaskClient, wait: str) -> None:
    response = admin.post(f"/api/admin/reindex?wait={wait}", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_parameter"
    assert admin.get("/api/admin/jobs", headers=AUTH).get_json() == {"jobs": []}


def test_a_job_records_its_own_process_when_the_service_could_not(
        admin: FlaskClient, samples: Settings) -> None:
    """The service writes a job's process id after starting it; should that write fail
    (the catalog's write lock held too long), the job writes it itself, so it counts in
    the order of jobs and is not reaped as never started while it waits."""
    from searchapp import jobs
    from searchapp.catalog import Catalog

    settings = Settings.load({"catalog": samples.catalog, "index_dir": samples.index_dir},
                             environ={})
    with IndexStore(samples.index_dir).lock():
        job = jobs.submit(settings, "reindex", start=False)
        pid = jobs._spawn(settings, job.id)  # started, but its pid not written here
        deadline = time.monotonic() + WAIT
        recorded = None
        while time.monotonic() < deadline:
            with Catalog(samples.catalog) as catalog:
                recorded = catalog.job(job.id)
            if recorded is not None and recorded.pid == pid:
                break
            time.sleep(0.05)
        assert recorded is not None and recorded.pid == pid
        listed = admin.get(f"/api/admin/jobs/{job.id}", headers=AUTH).get_json()
        assert listed["state"] == "queued"  # alive, not reaped
    ended = admin.get(f"/api/admin/jobs/{job.id}?wait={WAIT}", headers=AUTH).get_json()
    assert ended["state"] == "succeeded", ended


@contextlib.contextmanager
def catalog_held(catalog: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the catalog's write lock (`BEGIN IMMEDIATE`, as a sqlite3
    shell or a backup tool would) for `seconds`, then letting it go."""
    script = ("import sqlite3, sys, time\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('BEGIN IMMEDIATE')\nprint('held', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\ndb.execute('ROLLBACK')\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(catalog), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.communicate()


def queued_behind_the_lock(client: FlaskClient, samples: Settings) -> dict[str, Any]:
    """An upload whose job waits for the index lock (which the caller holds)."""
    status, job = upload(client, JSONL, organisation="ILO", wait=0)
    assert status == 202
    deadline = time.monotonic() + WAIT
    while job["phase"] != WAITING and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).get_json()
    assert job["state"] == "queued" and job["phase"] == WAITING, job
    return job


def test_a_job_whose_catalog_another_program_keeps_locked_fails_saying_so(
        samples: Settings) -> None:
    """A job that has the index lock but finds the catalog's write lock held by another
    program (a sqlite3 shell, a backup) waits for it up to `SEARCHAPP_CATALOG_WAIT`,
    still queued; past that it fails saying so (it was reported "interrupted: a restart
    or a kill"), and imports nothing."""
    with app_over(samples, admin_token=TOKEN, catalog_wait=2) as app, \
            contextlib.ExitStack() as holding:
        client = app.test_client()
        with IndexStore(samples.index_dir).lock():
            job = queued_behind_the_lock(client, samples)
            holder = holding.enter_context(catalog_held(samples.catalog, 8))
        time.sleep(1)  # the job has the index lock now, and waits for the catalog
        job = client.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).get_json()
        assert job["state"] == "queued" and job["error"] is None, job
        holder.wait(timeout=WAIT)  # it lets go by itself, after the job gave up
        job = client.get(f"/api/admin/jobs/{job['id']}?wait={WAIT}", headers=AUTH).get_json()
        assert job["state"] == "failed", job
        assert job["error"]["code"] == "catalog_busy", job
        assert job["error"]["message"].startswith(
            "another program held the catalog's write lock for 2 s (a sqlite3 shell, a"
            " backup?): the job did not start"), job
        assert total(client) == 35
        assert spooled(samples) == []
        assert list((samples.catalog.parent / "jobs").glob("*.ended")) == []


def test_a_job_waits_for_a_catalog_another_program_holds_a_while(samples: Settings) -> None:
    with app_over(samples, admin_token=TOKEN, catalog_wait=60) as app, \
            contextlib.ExitStack() as holding:
        client = app.test_client()
        with IndexStore(samples.index_dir).lock():
            job = queued_behind_the_lock(client, samples)
            holder = holding.enter_context(catalog_held(samples.catalog, 3))
        time.sleep(1)  # the job has the index lock now, and waits for the catalog
        job = client.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).get_json()
        assert job["state"] == "queued" and job["error"] is None, job
        holder.wait(timeout=WAIT)  # it lets go by itself
        job = client.get(f"/api/admin/jobs/{job['id']}?wait={WAIT}", headers=AUTH).get_json()
        assert job["state"] == "succeeded", job
        assert total(client) == 37


def until(client: FlaskClient, location: str, wanted: Any) -> dict[str, Any]:
    """The job at `location` once `wanted(job)` holds (asserted within `WAIT` seconds)."""
    deadline = time.monotonic() + WAIT
    job = client.get(location, headers=AUTH).get_json()
    while not wanted(job) and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(location, headers=AUTH).get_json()
    assert wanted(job), job
    return job  # type: ignore[no-any-return]


def left_beside(settings: Settings) -> list[str]:
    """What jobs left in their folder other than their logs."""
    return sorted(path.name for path in (settings.catalog.parent / "jobs").iterdir()
                  if path.suffix != ".log")


def test_a_job_waiting_for_the_catalog_says_so_and_reading_it_never_waits(
        samples: Settings) -> None:
    """While another program holds the catalog's write lock, a job that has the index lock
    shows it waits for the catalog (it showed it still waited for other imports). Once it
    has given up, reading it and the list answers how it ended while the lock is still
    held (a read waited 30 s to record it, then failed); the first look after the lock is
    let go records it."""
    with app_over(samples, admin_token=TOKEN, catalog_wait=1) as app:
        client = app.test_client()
        api = ApiDescription.of(client)
        with contextlib.ExitStack() as holding:
            with IndexStore(samples.index_dir).lock():
                job = queued_behind_the_lock(client, samples)
                holder = holding.enter_context(catalog_held(samples.catalog, 600))
            location = f"/api/admin/jobs/{job['id']}"
            job = until(client, location, lambda job: job["phase"] != WAITING)
            assert (job["state"], job["phase"], job["error"]) \
                == ("queued", CATALOG_WAITING, None), job
            api.check(location, client.get(location, headers=AUTH))
            job = until(client, location, lambda job: job["state"] == "failed")
            assert job["error"]["code"] == "catalog_busy", job
            assert job["phase"] == "failed" and job["finished"], job
            listed = api.check("/api/admin/jobs", client.get("/api/admin/jobs", headers=AUTH))
            assert listed["jobs"] == [job]
            assert api.check(location, client.get(location, headers=AUTH)) == job
            assert holder.poll() is None  # all answered while the lock was held
            assert left_beside(samples) == [f"{job['id']}.ended"]  # not recorded yet
        assert client.get(location, headers=AUTH).get_json() == job
        assert total(client) == 35
    from searchapp.catalog import Catalog

    with Catalog(samples.catalog) as catalog:
        stored = catalog.job(job["id"])
    assert stored is not None and stored.to_dict() == job
    assert left_beside(samples) == []


@pytest.mark.parametrize("where", ["folder", "file"])
def test_a_catalog_made_read_only_while_a_job_waits_for_it_fails_the_job_saying_so(
        samples: Settings, where: str) -> None:
    """A job waiting for the catalog's write lock when the catalog (or its folder) is made
    read-only fails with `read_only` once the lock is let go, having written nothing (it
    was reported "interrupted: a restart or a kill"). The tests run as root, for whom
    permissions are no obstacle: the catalog is bind-mounted read-only."""
    with app_over(samples, admin_token=TOKEN, catalog_wait=60) as app:
        client = app.test_client()
        api = ApiDescription.of(client)
        with contextlib.ExitStack() as holding:
            with IndexStore(samples.index_dir).lock():
                job = queued_behind_the_lock(client, samples)
                holding.enter_context(catalog_held(samples.catalog, 600))
            location = f"/api/admin/jobs/{job['id']}"
            until(client, location, lambda job: job["phase"] == CATALOG_WAITING)
            with read_only(samples.catalog.parent if where == "folder" else samples.catalog):
                holding.close()  # the other program lets go: the job finds it read-only
                job = until(client, location, lambda job: job["state"] == "failed")
                api.check(location, client.get(location, headers=AUTH))
                assert job["error"]["code"] == "read_only", job
                assert job["error"]["message"].startswith(
                    f"the catalog {samples.catalog} cannot be written"), job
                assert job["error"]["message"].endswith(
                    "; the job did not start and changed nothing"), job
                assert job["started"] is None and job["result"] is None
                assert total(client) == 35
        assert client.get(location, headers=AUTH).get_json() == job
    from searchapp.catalog import Catalog

    with Catalog(samples.catalog) as catalog:
        stored = catalog.job(job["id"])
        assert catalog.count() == 35
    assert stored is not None and stored.to_dict() == job
    assert spooled(samples) == []
    assert left_beside(samples) == []


def test_a_catalog_made_read_only_while_a_job_waits_for_the_index_lock_fails_the_job(
        samples: Settings) -> None:
    """The same for a job queued behind another import: once it has the index lock it
    finds the catalog's folder read-only, and fails with `read_only` (its process died of
    it, reported "interrupted: a restart or a kill")."""
    with app_over(samples, admin_token=TOKEN) as app:
        client = app.test_client()
        with contextlib.ExitStack() as locked:
            locked.enter_context(IndexStore(samples.index_dir).lock())
            job = queued_behind_the_lock(client, samples)
            location = f"/api/admin/jobs/{job['id']}"
            with read_only(samples.catalog.parent):
                locked.close()  # the other import ends: the job finds the catalog read-only
                job = until(client, location, lambda job: job["state"] == "failed")
                assert job["error"]["code"] == "read_only", job
                assert job["error"]["message"].endswith(
                    "; the job did not start and changed nothing"), job
        assert client.get(location, headers=AUTH).get_json() == job
        assert total(client) == 35
    assert spooled(samples) == []
    assert left_beside(samples) == []
