"""Searching through an import and a full rebuild, under gunicorn, with clients.

Starts `searchapp serve`-equivalent gunicorn with several workers on a
loopback port, runs concurrent client threads against /api/search, then
imports a batch and runs a full `searchapp reindex` while they search. Every
response is recorded with the phase it fell in; the caller checks that none
failed and that every total was the old or the new one.

    python bench/live.py --items 20000 --batch 2000 --clients 8 --workers 2

(tests/test_live_serving.py runs a short version of the same thing.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    """JSON Lines of `n` synthetic items with ids from `start`.

    Without `language` the items give none, so an import detects each one's (as
    with most real exports); with it, every item declares that language and the
    import never loads the detector.
    """
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
            if language:
                record["language"] = language
            out.write(json.dumps(record) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(catalog: Path, index_dir: Path) -> dict[str, str]:
    return {**os.environ, "SEARCHAPP_CATALOG": str(catalog), "SEARCHAPP_INDEX_DIR": str(index_dir)}


START_SECONDS = 120  # a loaded machine starts workers slowly; nothing here is timed


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int) -> Iterator[str]:
    """The app under gunicorn on a free loopback port; yields its base URL.

    Its log goes to a temporary file, never a pipe nobody reads (a full pipe would
    stop the server); a server that does not answer in time is stopped before its
    log is read into the error."""
    port = free_port()
    log = tempfile.TemporaryFile()
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
        log.close()


@dataclass(slots=True)
class Sample:
    at: float  # seconds since the run started, when the request was sent
    seconds: float
    status: int  # 0: no HTTP answer at all
    query: str
    total: int | None


@dataclass(slots=True)
class Run:
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # event → seconds since start

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
        status, total = 0, None
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                status = r.status
                total = json.load(r)["total"]
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:  # no HTTP answer: refused, reset or timed out
            status = 0
        run.samples.append(Sample(sent - started, time.perf_counter() - sent, status, query,
                                  total))


def totals(base: str) -> dict[str, int]:
    """Each query's total as the service answers it now."""
    found = {}
    for query in QUERIES:
        url = f"{base}/api/search?" + urllib.parse.urlencode({"q": query})
        with urllib.request.urlopen(url, timeout=30) as r:
            found[query] = json.load(r)["total"]
    return found


def live_run(catalog: Path, index_dir: Path, batch: Path, *, workers: int, clients: int,
             settle: float = 1.5) -> tuple[Run, dict[str, int], dict[str, int], str]:
    """Search with `clients` threads while `batch` is imported and the index rebuilt.

    Returns the run, each query's total before and after, and the base URL's
    last answer to /healthz (as JSON text) taken `settle`… seconds after the swap.
    """
    env = env_for(catalog, index_dir)
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
            subprocess.run([*cli, "import", str(batch)], env=env, check=True,
                           capture_output=True, timeout=MAX_SECONDS)
            run.marks["import_end"] = time.perf_counter() - started
            time.sleep(settle)
            run.marks["reindex_start"] = time.perf_counter() - started
            subprocess.run([*cli, "reindex"], env=env, check=True, capture_output=True,
                           timeout=MAX_SECONDS)
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
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    catalog, index_dir = args.dir / "catalog.sqlite3", args.dir / "index"
    for path in (catalog, index_dir):
        subprocess.run(["rm", "-rf", str(path), f"{path}-wal", f"{path}-shm"], check=True)
    env = env_for(catalog, index_dir)
    subprocess.run([sys.executable, "-m", "searchapp.cli", "import",
                    str(write_items(args.dir / "base.jsonl", args.items))], env=env, check=True)
    batch = write_items(args.dir / "batch.jsonl", args.batch, start=args.items)
    run, before, after, health = live_run(catalog, index_dir, batch, workers=args.workers,
                                          clients=args.clients)
    wrong = [s for s in run.samples if s.status == 200
             and s.total not in (before[s.query], after[s.query])]
    print(json.dumps({"items": args.items, "batch": args.batch, "clients": args.clients,
                      "workers": args.workers, "requests": len(run.samples),
                      "errors": sum(1 for s in run.samples if s.status != 200),
                      "totals_neither_old_nor_new": len(wrong),
                      "marks_s": {k: round(v, 2) for k, v in run.marks.items()},
                      "phases": run.summary(), "health_after": json.loads(health)}, indent=2))


if __name__ == "__main__":
    main()
