"""Searching through an import and a full rebuild, under gunicorn, with clients.

Starts `searchapp serve`-equivalent gunicorn with several workers on a
loopback port, runs concurrent client threads against /api/search, then
imports a batch and runs a full `searchapp reindex` while they search. Every
response is recorded with the phase it fell in; the caller checks that none
failed and that every total was the old or the new one.

    python bench/live.py --items 20000 --batch 2000 --clients 8 --workers 2

With ``--via-api`` the import and the rebuild go through the admin job API
instead of the command line, as an operator's script would: the batch is
uploaded to ``POST /api/admin/imports``, the rebuild asked for with ``POST
/api/admin/reindex``, and each job followed at ``GET /api/admin/jobs/<id>``
(its `Location`) until it has succeeded. The admin token is
``SEARCHAPP_ADMIN_TOKEN`` from the environment (a random one when unset); the
states and phases each job was seen in are reported. At a million items
(``--items 1000000 --max-seconds 3600``) that is the rebuild #14 asks for.

(tests/test_live_serving.py runs a short version of the same thing.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["cooperative", "worker", "housing", "energy", "credit", "farmers", "platform", "union", "market", "assembly", "members", "federation", "solidarity", "economy", "social", "report", "women", "youth", "climate", "bank", "agriculture", "insurance", "digital", "health", "education"]
QUERIES = ("", "cooperative", "housing energy", "solidarity", '"social economy"', "bank OR credit")
MAX_SECONDS = 120.0  # no run goes on longer than this, whatever happens


def write_items(path: Path, n: int, *, start: int = 0, seed: int = 7,
                language: str | None = None) -> Path:
    """JSON Lines of `n` synthetic items with ids from `start` (stating `language` if
    given; else the import detects it)."""
    rng = random.Random(seed + start)
    with path.open("w", encoding="utf-8") as out:
        for k in range(start, start + n):
            words = rng.choices(WORDS, k=14)
            record = {
                "id": f"i{k:07d}", "organisation": rng.choice(("ILO", "CECOP", "ICA", "EURICSE")),
                "title": " ".join(words[:6]), "summary": " ".join(words[6:]),
                "date": f"{rng.randint(2000, 2025)}-{rng.randint(1, 12):02d}-01",
                "type": rng.choice(("News", "Press release", "Event")),
            }
            if language is not None:
                record["language"] = language
            out.write(json.dumps(record) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(catalog: Path, index_dir: Path, *, token: str | None = None) -> dict[str, str]:
    env = {**os.environ, "SEARCHAPP_CATALOG": str(catalog), "SEARCHAPP_INDEX_DIR": str(index_dir)}
    if token is not None:
        env[TOKEN_ENV] = token
    return env


TOKEN_ENV = "SEARCHAPP_ADMIN_TOKEN"


def admin_token() -> str:
    """The operator's admin token from the environment, else a fresh one for this run."""
    return os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)


START_SECONDS = 120  # a loaded machine starts workers slowly; nothing here is timed


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int) -> Iterator[str]:
    """The app under gunicorn on a free loopback port; yields its base URL.

    Its log goes to a temporary file, never a pipe nobody reads (a full pipe would
    stop the server); a server that does not answer in time is stopped before its
    log is read into the error."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
             "-k", "searchapp.server.Worker",  # the workers `searchapp serve` runs
             "--timeout", "60", "searchapp:create_app()"],
            env=env, stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"

        def stop() -> None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=10) as r:
                        if r.status == 200:
                            break
                except OSError:  # not listening yet, or too slow to answer
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    stop()
                    log.seek(0)
                    raise RuntimeError("gunicorn did not start: "
                                       + log.read().decode(errors="replace")[-2000:])
                time.sleep(0.1)
            yield base
        finally:
            stop()


@dataclass(slots=True)
class Sample:
    at: float  # seconds since the run started, when the request was sent
    seconds: float
    status: int  # 0: no HTTP answer at all
    query: str
    total: int | None
    partial: bool = False  # the search ran out of its time and said so (`partial: true`)


@dataclass(slots=True)
class Run:
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # event → seconds since start
    # With the job API: per job kind, its id, final answer and the (state, phase) seen.
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def phase(self, at: float) -> str:
        m = self.marks
        if at < m["import_start"]:
            return "before"
        if at < m["import_end"]:
            return "import"
        if at < m["reindex_start"]:
            return "between"
        if at < m["reindex_end"]:
            return "rebuild"
        return "after"

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in ("before", "import", "between", "rebuild", "after"):
            got = [s for s in self.samples if self.phase(s.at) == name]
            times = sorted(s.seconds * 1000 for s in got)
            out[name] = {
                "requests": len(got),
                "errors": sum(1 for s in got if s.status != 200),
                "p50_ms": round(statistics.median(times), 1) if times else None,
                "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1)
                if times else None,
            }
        return out


def _client(base: str, run: Run, started: float, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        query = rng.choice(QUERIES)
        url = f"{base}/api/search?" + urllib.parse.urlencode({"q": query, "per_page": 5})
        sent = time.perf_counter()
        status, total, partial = 0, None, False
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                status = r.status
                answer = json.load(r)
                total, partial = answer["total"], bool(answer.get("partial"))
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:  # no HTTP answer: refused, reset or timed out
            status = 0
        run.samples.append(Sample(sent - started, time.perf_counter() - sent, status, query,
                                  total, partial))


def totals(base: str) -> dict[str, int]:
    """Each query's total as the service answers it now."""
    found = {}
    for query in QUERIES:
        url = f"{base}/api/search?" + urllib.parse.urlencode({"q": query})
        with urllib.request.urlopen(url, timeout=30) as r:
            found[query] = json.load(r)["total"]
    return found


class JobFailed(RuntimeError):
    """An admin job that did not succeed (or was not accepted, or did not end in time)."""


def _admin(url: str, token: str, *, data: bytes | None = None,
           content_type: str | None = None) -> tuple[int, dict[str, Any], str | None]:
    """One admin API call: status, JSON body and `Location`; an HTTP error as JobFailed."""
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers,
                                     method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(json.load(r)), r.headers.get("Location")
    except urllib.error.HTTPError as exc:
        raise JobFailed(f"{request.method} {url} answered {exc.code}:"
                        f" {exc.read().decode(errors='replace')[:500]}") from None


def multipart(path: Path) -> tuple[bytes, str]:
    """`path` as the multipart form `POST /api/admin/imports` reads (field `file`)."""
    boundary = secrets.token_hex(16)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\";"
            f" filename=\"{path.name}\"\r\nContent-Type: application/x-ndjson\r\n\r\n"
            ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def run_job(base: str, token: str, path: str, *, timeout: float, data: bytes = b"",
            content_type: str | None = None, poll: float = 0.25) -> dict[str, Any]:
    """POST an admin job, follow its `Location` until it has ended; what was seen.

    Returns {"id", "accepted" (the POST's status), "job" (its last answer), "seen"
    (each (state, phase) in the order first seen), "polls"}; raises JobFailed unless
    it was accepted with a Location and succeeded within `timeout` seconds."""
    status, job, location = _admin(f"{base}{path}", token, data=data,
                                   content_type=content_type)
    if status not in (200, 202) or not location:
        raise JobFailed(f"POST {path} answered {status} without a Location: {job}")
    follow = urllib.parse.urljoin(base + "/", location)
    seen = [(job["state"], job["phase"])]
    polls = 0
    deadline = time.monotonic() + timeout
    while job["state"] not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            raise JobFailed(f"job {job['id']} still {job['state']} after {timeout:.0f} s: {job}")
        time.sleep(poll)
        _, job, _ = _admin(follow, token)
        polls += 1
        if (job["state"], job["phase"]) != seen[-1]:
            seen.append((job["state"], job["phase"]))
    if job["state"] != "succeeded":
        raise JobFailed(f"job {job['id']} failed: {job.get('error')}")
    return {"id": job["id"], "accepted": status, "job": job, "seen": seen, "polls": polls}


def live_run(catalog: Path, index_dir: Path, batch: Path, *, workers: int, clients: int,
             settle: float = 1.5, via_api: bool = False, token: str | None = None,
             max_seconds: float = MAX_SECONDS
             ) -> tuple[Run, dict[str, int], dict[str, int], str]:
    """Search with `clients` threads while `batch` is imported and the index rebuilt:
    with the command line, or with `via_api` as admin jobs (with `token`, else
    `admin_token()`), each given `max_seconds`.

    Returns the run, each query's total before and after, and the base URL's
    last answer to /healthz (as JSON text) taken `settle`… seconds after the swap.
    """
    if via_api and token is None:
        token = admin_token()
    env = env_for(catalog, index_dir, token=token if via_api else None)
    cli = [sys.executable, "-m", "searchapp.cli"]
    with gunicorn(env, workers=workers) as base:
        before = totals(base)
        run = Run()
        stop = threading.Event()
        started = time.perf_counter()
        threads = [threading.Thread(target=_client, args=(base, run, started, stop, n),
                                    daemon=True) for n in range(clients)]
        for t in threads:
            t.start()
        try:
            time.sleep(settle)
            run.marks["import_start"] = time.perf_counter() - started
            if via_api:
                assert token is not None
                body, kind = multipart(batch)
                run.jobs["import"] = run_job(base, token, "/api/admin/imports", data=body,
                                             content_type=kind, timeout=max_seconds)
            else:
                subprocess.run([*cli, "import", str(batch)], env=env, check=True,
                               capture_output=True, timeout=max_seconds)
            run.marks["import_end"] = time.perf_counter() - started
            time.sleep(settle)
            run.marks["reindex_start"] = time.perf_counter() - started
            if via_api:
                assert token is not None
                run.jobs["reindex"] = run_job(base, token, "/api/admin/reindex",
                                              timeout=max_seconds)
            else:
                subprocess.run([*cli, "reindex"], env=env, check=True, capture_output=True,
                               timeout=max_seconds)
            run.marks["reindex_end"] = time.perf_counter() - started
            time.sleep(settle)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=35)
        after = totals(base)
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as r:
            health = r.read().decode()
    return run, before, after, health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / "out" / "live")
    parser.add_argument("--via-api", action="store_true",
                        help="import and rebuild as admin jobs over HTTP, not with the CLI")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS,
                        help="the longest the import or the rebuild may take")
    parser.add_argument("--language", default="en",
                        help="the language the items state (empty: detected at import)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    catalog, index_dir = args.dir / "catalog.sqlite3", args.dir / "index"
    for path in (catalog, index_dir):
        subprocess.run(["rm", "-rf", str(path), f"{path}-wal", f"{path}-shm"], check=True)
    env = env_for(catalog, index_dir)
    language = args.language or None
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "searchapp.cli", "import", "--quiet",
                    str(write_items(args.dir / "base.jsonl", args.items, language=language))],
                   env=env, check=True, stdout=sys.stderr)  # stdout: the JSON report alone
    base_seconds = time.perf_counter() - began
    batch = write_items(args.dir / "batch.jsonl", args.batch, start=args.items,
                        language=language)
    load = os.getloadavg()
    run, before, after, health = live_run(catalog, index_dir, batch, workers=args.workers,
                                          clients=args.clients, via_api=args.via_api,
                                          max_seconds=args.max_seconds)
    # A search cut at its time budget says so (`partial`) and counts what it reached:
    # its total is neither by design. Any other total that is neither is a wrong answer.
    partial = [s for s in run.samples if s.status == 200 and s.partial]
    wrong = [s for s in run.samples if s.status == 200 and not s.partial
             and s.total not in (before[s.query], after[s.query])]
    jobs = {kind: {"id": j["id"], "accepted": j["accepted"], "state": j["job"]["state"],
                   "seen": [f"{state}/{phase}" for state, phase in j["seen"]],
                   "polls": j["polls"], "result": j["job"]["result"],
                   "started": j["job"]["started"], "finished": j["job"]["finished"]}
            for kind, j in run.jobs.items()}
    print(json.dumps({"items": args.items, "batch": args.batch, "clients": args.clients,
                      "workers": args.workers, "via": "api" if args.via_api else "cli",
                      "base_import_s": round(base_seconds, 1),
                      "load_before": [round(x, 1) for x in load],
                      "load_after": [round(x, 1) for x in os.getloadavg()],
                      "requests": len(run.samples),
                      "errors": sum(1 for s in run.samples if s.status != 200),
                      "totals_neither_old_nor_new": len(wrong),
                      "wrong": [{"query": s.query, "total": s.total, "at_s": round(s.at, 2)}
                                for s in wrong],
                      "partial": len(partial),
                      "totals_before": before, "totals_after": after,
                      "marks_s": {k: round(v, 2) for k, v in run.marks.items()},
                      "phases": run.summary(), "jobs": jobs,
                      "health_after": json.loads(health)}, indent=2))


if __name__ == "__main__":
    main()
