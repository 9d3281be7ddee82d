"""`searchapp serve` under load: start it, drive it from client threads, stop it.

Only ever on 127.0.0.1, on a free port, for a bounded time and number of
requests. Each client thread sends the query set in its own rotation, one
request at a time on a fresh connection, and records the latency and status
of each.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `searchapp serve` process (gunicorn) started for the benchmark."""

    catalog: Path
    index_dir: Path
    workers: int
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 300.0) -> None:
        searchapp = Path(sys.executable).with_name("searchapp")
        env = {**os.environ, "SEARCHAPP_CATALOG": str(self.catalog),
               "SEARCHAPP_INDEX_DIR": str(self.index_dir)}
        env.pop("SEARCHAPP_ADMIN_TOKEN", None)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(searchapp), "serve", "--host", HOST, "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"searchapp serve exited with {self.process.returncode};"
                                   f" see {self.log}")
            try:
                status, _ = get(self.port, "/healthz", timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"searchapp serve did not answer /healthz within {timeout:.0f}s")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:  # no children file: look for processes whose parent is the master
            found = []
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    found.append(int(stat.parent.name))
            return sorted(found)

    def memory(self) -> dict[str, Any]:
        """Memory of the master and of each worker, in MiB: resident now and at peak
        (VmRSS, VmHWM), proportional (Pss: shared pages, such as the index files all
        workers map, divided among their users) and private to the process."""
        def status(pid: int) -> dict[str, float]:
            found: dict[str, float] = {}
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM"):
                        found[key] = round(int(value.split()[0]) / 1024, 1)
                private = 0
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key == "Pss":
                        found["Pss"] = round(int(value.split()[0]) / 1024, 1)
                    elif key in ("Private_Clean", "Private_Dirty"):
                        private += int(value.split()[0])
                found["Private"] = round(private / 1024, 1)
            except (OSError, ValueError, IndexError):
                pass
            return found

        assert self.process is not None
        return {"master": status(self.process.pid),
                "workers": [status(pid) for pid in self.worker_pids()]}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def get(port: int, path: str, *, timeout: float = 60.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def search_path(params: Sequence[tuple[str, str]]) -> str:
    return "/api/search?" + urllib.parse.urlencode(list(params))


@dataclass
class LoadResult:
    clients: int
    seconds: float
    requests: int
    errors: int
    latencies_ms: list[float]
    statuses: dict[int, int]
    first_error: str | None = None

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "clients": self.clients, "seconds": round(self.seconds, 2),
            "requests": self.requests, "errors": self.errors,
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
            "p99_ms": round(percentile(lat, 99), 1),
            "mean_ms": round(statistics.fmean(lat), 1) if lat else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "first_error": self.first_error,
        }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))
    return float(sorted_values[int(rank) - 1])


def load(port: int, paths: Sequence[str], *, clients: int, seconds: float,
         max_requests: int) -> LoadResult:
    """`clients` threads send `paths` in rotation until `seconds` or `max_requests`."""
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    first_error: list[str] = []
    sent = 0
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        nonlocal errors, sent
        i = k * max(1, len(paths) // clients)
        while time.monotonic() < stop_at:
            with lock:
                if sent >= max_requests:
                    return
                sent += 1
            path = paths[i % len(paths)]
            i += 1
            began = time.perf_counter()
            try:
                status, body = get(port, path)
                ok = status == 200 and body[:1] == b"{"
            except OSError as exc:
                status, ok = -1, False
                body = repr(exc).encode()
            took = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(took)
                statuses[status] = statuses.get(status, 0) + 1
                if not ok:
                    errors += 1
                    if not first_error:
                        first_error.append(f"{status} {path}: {body[:200]!r}")

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.perf_counter() - began
    return LoadResult(clients, elapsed, len(latencies), errors, latencies, statuses,
                      first_error[0] if first_error else None)


def run(catalog: Path, index_dir: Path, queries: Sequence[Sequence[tuple[str, str]]], *,
        workers: int, levels: Sequence[int], seconds: float, max_requests: int,
        log: Path, warmup: int = 40) -> dict[str, Any]:
    """Start the server, load it at each concurrency level, stop it; a JSON-ready report."""
    paths = [search_path(q) for q in queries]
    server = Server(catalog, index_dir, workers, log)
    started = time.perf_counter()
    server.start()
    report: dict[str, Any] = {"workers": workers, "port": server.port,
                              "startup_s": round(time.perf_counter() - started, 2)}
    try:
        # Every worker opens the index and builds its columns on its first search.
        warm = load(server.port, paths[::-1], clients=workers, seconds=120,
                    max_requests=max(warmup, workers * 4))
        report["warmup"] = warm.summary()
        report["memory_after_warmup"] = server.memory()
        report["levels"] = []
        for clients in levels:
            result = load(server.port, paths, clients=clients, seconds=seconds,
                          max_requests=max_requests)
            report["levels"].append(result.summary())
        report["memory"] = server.memory()
    finally:
        server.stop()
    return report


if __name__ == "__main__":  # a quick manual check: python bench/http_load.py CATALOG INDEX
    result = run(Path(sys.argv[1]), Path(sys.argv[2]), [[("q", "bank")], [("q", "market")]],
                 workers=2, levels=[1, 4], seconds=3, max_requests=200,
                 log=Path("bench/out/http-check.log"))
    print(json.dumps(result, indent=2))
