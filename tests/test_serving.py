"""`searchapp serve` against hostile clients: real processes on 127.0.0.1, raw sockets.

Slow clients must not starve everyone else, and the errors the HTTP server
answers itself (before the app sees a request) use the app's JSON error shape
and security headers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.indexer import IndexStore
from searchapp.web import CONTENT_SECURITY_POLICY

HOST = "127.0.0.1"
TOKEN = "serving-test-token"
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100 + b"\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def exchange(port: int, raw: bytes, *, timeout: float = 20.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a fresh connection; the status, headers and body of the answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def _expected_length(data: bytes) -> int:
    head, sep, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + len(sep) + int(value)
    return 1 << 30  # no length: read until the server closes


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                    .encode())


def wait_until_up(proc: subprocess.Popen[bytes], port: int, log: Path, *,
                  path: str = "/healthz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-3000:]}")
        try:
            if get(port, path)[0] == 200:
                return
        except (OSError, IndexError):  # not listening yet, or closed before answering
            time.sleep(0.2)
    raise AssertionError(f"server did not start: {log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def start(settings: Settings, log: Path, *, home: Path | None = None
          ) -> tuple[subprocess.Popen[bytes], int]:
    """The real `searchapp serve` (two workers) over `settings`, in a process group of its
    own (with `home` as its HOME), once it answers; the process and its port."""
    port = free_port()
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir), "SEARCHAPP_ADMIN_TOKEN": TOKEN}
    if home is not None:
        env["HOME"] = str(home)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("searchapp")), "serve", "--host", HOST,
             "--port", str(port), "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(proc, port, log)
    except BaseException:
        stop(proc)
        raise
    return proc, port


@pytest.fixture
def served(samples: Settings, tmp_path: Path) -> Iterator[int]:
    """The real `searchapp serve` (two workers) over data/samples; yields its port."""
    proc, port = start(samples, tmp_path / "serve.log")
    try:
        yield port
    finally:
        stop(proc)


def test_twenty_slow_header_clients_do_not_stop_health_or_search(served: int) -> None:
    stop_dribbling = threading.Event()
    closed_by_server: list[float] = []
    started = time.monotonic()

    def slow_client() -> None:
        sock = socket.create_connection((HOST, served), timeout=30)
        try:
            for byte in SLOW_HEAD:
                if stop_dribbling.wait(0.25):
                    return
                sock.sendall(bytes([byte]))
        except OSError:  # reset: the server gave up on this connection
            closed_by_server.append(time.monotonic() - started)
        finally:
            sock.close()

    slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(20)]
    for thread in slow:
        thread.start()
    time.sleep(1.0)  # every slow connection is open and has sent a few bytes
    answers = []
    for _ in range(6):
        for path in ("/healthz", "/api/search?q=cooperatives"):
            began = time.monotonic()
            status, _, body = get(served, path)
            answers.append((path, status, json.loads(body), time.monotonic() - began))
        time.sleep(0.3)
    assert all(alive.is_alive() for alive in slow), "slow clients ended early"
    assert [a[1] for a in answers] == [200] * 12
    assert all(a[2]["status"] == "ok" for a in answers if a[0] == "/healthz")
    assert all(a[2]["total"] > 0 for a in answers if a[0].startswith("/api/search"))
    assert max(a[3] for a in answers) < 5.0  # generous: each answer is milliseconds when idle
    # A head still unfinished after ten seconds is cut off, so stalled clients do not pile up.
    for thread in slow:
        thread.join(30)
    stop_dribbling.set()
    assert len(closed_by_server) == 20
    assert all(8 <= at <= 25 for at in closed_by_server)


def test_imports_and_rebuilds_over_http_work_in_the_gevent_workers(served: int) -> None:
    status, answer = post(served, "/api/admin/imports?wait=60", *multipart([
        ("organisation", None, b"ICA"),
        ("file", "a.jsonl",
         b'{"id": "gev-1", "title": "Greenlets in the cooperative", "language": "en"}\n')]))
    assert status == 200, answer
    assert json.loads(answer)["result"]["added"] == 1
    status, answer = post(served, "/api/admin/reindex?wait=60", "text/plain", b"")
    assert status == 200, answer
    assert json.loads(answer)["result"]["generation"] == "gen-000002"
    status, _, answer = get(served, "/api/search?q=greenlets")
    assert [hit["id"] for hit in json.loads(answer)["hits"]] == ["gev-1"]


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[str, bytes]:
    """A multipart/form-data body of (field, file name or None, content) parts."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += (f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n").encode()
        body += content + b"\r\n"
    return "multipart/form-data; boundary=XyZ", body + b"--XyZ--\r\n"


def post(port: int, path: str, content_type: str, body: bytes) -> tuple[int, bytes]:
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    # The client waits longer than the server may hold the answer (`?wait=60`): on a
    # loaded machine a job takes longer than the usual 20 s.
    status, _, answer = exchange(port, head + body, timeout=90.0)
    return status, answer


def test_an_upload_with_more_parts_than_the_limit_is_refused_whole(served: int) -> None:
    parts: list[tuple[str, str | None, bytes]] = [("organisation", None, b"ICA")]
    parts += [("file", "p.jsonl", json.dumps({"id": f"p{n}", "title": f"Zorblax {n}"}).encode())
              for n in range(1_100)]
    status, answer = post(served, "/api/admin/imports", *multipart(parts))
    assert status == 413
    assert json.loads(answer)["error"]["message"] == (
        "the upload has more than 1,000 parts (files and fields); send the files in several"
        " uploads")
    status, answer = get(served, "/api/search?q=zorblax")[::2]
    assert json.loads(answer)["total"] == 0


def test_a_restore_while_serving_is_what_the_server_answers_next(served: int,
                                                                  samples: Settings,
                                                                  tmp_path: Path) -> None:
    env = {**os.environ, "SEARCHAPP_CATALOG": str(samples.catalog),
           "SEARCHAPP_INDEX_DIR": str(samples.index_dir)}
    backup = tmp_path / "before-zorblax.sqlite3"
    cli = str(Path(sys.executable).with_name("searchapp"))
    subprocess.run([cli, "backup", str(backup)], env=env, check=True, capture_output=True)
    items = json.loads(get(served, "/healthz")[2])["items"]
    status, answer = post(served, "/api/admin/imports?wait=60", *multipart([
        ("organisation", None, b"ICA"),
        ("file", "z.jsonl", b'{"id": "z1", "title": "Zorblax arrives", "language": "en"}\n')]))
    assert status == 200 and json.loads(answer)["state"] == "succeeded", answer
    assert json.loads(get(served, "/api/search?q=zorblax")[2])["total"] == 1
    subprocess.run([cli, "restore", str(backup)], env=env, check=True, capture_output=True)
    assert json.loads(get(served, "/api/search?q=zorblax")[2])["total"] == 0
    health = json.loads(get(served, "/healthz")[2])
    assert (health["status"], health["items"], health["documents"]) == ("ok", items, items)
    assert get(served, "/api/items/z1")[0] == 404


SECURITY = {"content-security-policy": CONTENT_SECURITY_POLICY,
            "x-content-type-options": "nosniff", "x-frame-options": "DENY"}


@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"THIS IS NOT HTTP\r\n\r\n", 400, "bad_request"),
    (b"GET /api/search HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400, "bad_request"),
    (b"GET /api/search HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
    (b"GET /api/search?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
     "uri_too_long"),
    (b"GET /api/search HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(150))
     + b"\r\n", 431, "request_header_fields_too_large"),
])
def test_errors_the_server_answers_itself_are_json_with_security_headers(
    served: int, raw: bytes, status: int, code: str,
) -> None:
    got, headers, body = exchange(served, raw)
    assert got == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    assert {k: headers.get(k) for k in SECURITY} == SECURITY
    # The server is still answering afterwards.
    assert get(served, "/healthz")[0] == 200


BUSY_APP = '''
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/ready":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ready"]
    end = time.monotonic() + 60  # far past the worker timeout
    while time.monotonic() < end:
        pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"too late"]
'''


def test_worker_timeout_answers_json_500_with_security_headers(tmp_path: Path) -> None:
    """searchapp's gunicorn worker class, with a WSGI app that never yields, timeout 6 s.

    The worker answers in the second timeout the arbiter grants after its SIGABRT; 3 s
    was too short for a starved worker on a loaded machine (the arbiter then SIGKILLed
    it and the client got no answer at all)."""
    (tmp_path / "busy_app.py").write_text(BUSY_APP)
    port = free_port()
    log = tmp_path / "busy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "searchapp.server.Worker", "--timeout", "6",
             "-w", "1", "-b", f"{HOST}:{port}", "--chdir", str(tmp_path), "busy_app:app"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(proc, port, log, path="/ready")
        status, headers, body = exchange(port, b"GET /api/search?q=x HTTP/1.1\r\nHost: "
                                         + HOST.encode() + b"\r\nConnection: close\r\n\r\n",
                                         timeout=60.0)
    finally:
        stop(proc)
    assert status == 500
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": {"code": "internal_error",
                                          "message": "something went wrong on our side"}}
    assert {k: headers.get(k) for k in SECURITY} == SECURITY
    assert "WORKER TIMEOUT" in log.read_text()


def test_a_killed_server_and_job_leave_no_upload_behind_once_restarted(
        samples: Settings, tmp_path: Path) -> None:
    """The server and the job it started both killed with SIGKILL while the job waits
    (a power cut, the whole service killed): the restarted service marks the job failed
    and removes its spooled upload as it starts, before anyone asks about the job."""
    jobs_dir = samples.catalog.parent / "jobs"
    with IndexStore(samples.index_dir).lock():  # the job waits, its upload spooled
        proc, port = start(samples, tmp_path / "first.log")
        try:
            status, answer = post(port, "/api/admin/imports", *multipart([
                ("organisation", None, b"ICA"),
                ("file", "a.jsonl", b'{"id": "k1", "title": "Killed mid-job"}\n')]))
            assert status == 202, answer
            job_id = json.loads(answer)["id"]
            pid = None
            deadline = time.monotonic() + 30
            while pid is None and time.monotonic() < deadline:
                with Catalog(samples.catalog) as catalog:
                    job = catalog.job(job_id)
                pid = job.pid if job is not None else None
                time.sleep(0.05)
            assert pid is not None
            assert len(list(jobs_dir.glob("*.upload"))) == 1
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        os.kill(pid, signal.SIGKILL)
    proc, port = start(samples, tmp_path / "second.log")
    try:
        assert list(jobs_dir.glob("*.upload")) == []
        status, _, answer = exchange(port, (
            f"GET /api/admin/jobs/{job_id} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
        job_seen = json.loads(answer)
        assert status == 200 and job_seen["state"] == "failed", job_seen
        assert job_seen["error"]["code"] == "interrupted"
        assert json.loads(get(port, "/api/search?q=killed")[2])["total"] == 0
    finally:
        stop(proc)


def test_workers_start_without_a_monkey_patch_warning(samples: Settings, tmp_path: Path) -> None:
    """Each gevent worker patches the standard library (ssl among it) as it starts. It was
    forked from a master that had imported modules holding ssl's classes (urllib3, by
    way of the importers), and each printed gevent's MonkeyPatchWarning."""
    log = tmp_path / "serve.log"
    proc, port = start(samples, log)
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("Booting worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert get(port, "/api/search?q=cooperative")[0] == 200
    finally:
        stop(proc)
    text = log.read_text()
    assert text.count("Booting worker") == 2, text
    assert "MonkeyPatchWarning" not in text, text


def test_two_servers_share_no_control_socket_in_home(samples: Settings, tmp_path: Path) -> None:
    """gunicorn 27 opens a control socket at $HOME/.gunicorn/gunicorn.ctl by default: two
    servers shared it, the first to exit removed the other's, and a HOME that did not
    exist was made. `searchapp serve` turns it off."""
    home = tmp_path / "home"
    home.mkdir()
    first, first_port = start(samples, tmp_path / "first.log", home=home)
    try:
        second, _ = start(samples, tmp_path / "second.log", home=home)
        stop(second)
        assert get(first_port, "/healthz")[0] == 200
    finally:
        stop(first)
    assert list(home.iterdir()) == []
