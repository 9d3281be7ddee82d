"""`searchapp serve` against slow clients, and its throughput, at a small size.

Builds a small synthetic catalog and index once (bench/corpus.py), then, for
each run, starts `searchapp serve` twice on a free 127.0.0.1 port:

1. throughput: bench/http_load.py sends the 300 benchmark queries as
   /api/search requests at 1 and 8 clients for a bounded time;
2. slow clients: 20 connections send a request head one byte every half
   second while a probe asks /healthz and /api/search every half second; the
   report counts the probes answered 200 and the slowest answer.

    python bench/slow_clients.py --items 5000 --runs 3

With ``--before TREE`` (a source tree of an earlier commit, e.g. from
``git archive``), each run serves that code first and then this one, back to
back, so both see the same machine load; the report gives both.

``--alternate SECONDS`` (with ``--before``) instead runs both servers side by
side and sends one client's requests to each in turn, so a per-request
difference shows through a drifting machine load.

Prints a JSON report (medians and ranges over the runs, machine, date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_mod
import http_load
import queries as queries_mod
from engines import BenchQuery

SLOW_HEAD = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n"
             b"X-Padding: " + b"a" * 200 + b"\r\n\r\n")


def build(work: Path, items: int) -> tuple[Path, Path]:
    from searchapp import operations
    from searchapp.config import Settings

    catalog, index_dir = work / "catalog.sqlite3", work / "index"
    if not catalog.exists():
        data = corpus_mod.write(work / "corpus.jsonl", items)
        settings = Settings.load({"catalog": catalog, "index_dir": index_dir}, environ={})
        operations.import_paths(settings, [data])
    return catalog, index_dir


def slow_client(port: int, stop: threading.Event, interval: float, sent: list[int]) -> None:
    """One connection that sends its request head a byte at a time until `stop`."""
    try:
        sock = socket.create_connection((http_load.HOST, port), timeout=5)
    except OSError:
        return
    try:
        for byte in SLOW_HEAD:
            if stop.wait(interval):
                return
            sock.sendall(bytes([byte]))
            sent[0] += 1
    except OSError:
        pass  # the server closed it: that is what we hope for
    finally:
        sock.close()


def slow_phase(catalog: Path, index_dir: Path, log: Path, *, workers: int, slow: int,
               seconds: float) -> dict[str, Any]:
    server = http_load.Server(catalog, index_dir, workers, log)
    server.start()
    stop = threading.Event()
    sent = [0]
    threads = [threading.Thread(target=slow_client, args=(server.port, stop, 0.5, sent),
                                daemon=True) for _ in range(slow)]
    probes: list[tuple[str, int, float]] = []
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # let every slow connection be accepted and start dribbling
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for path in ("/healthz", "/api/search?q=market"):
                began = time.perf_counter()
                try:
                    status, _ = http_load.get(server.port, path, timeout=10)
                except OSError:
                    status = -1
                probes.append((path, status, time.perf_counter() - began))
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        server.stop()
    ok = [p for p in probes if p[1] == 200]
    return {"slow_connections": slow, "probes": len(probes), "answered_200": len(ok),
            "slowest_ok_s": round(max((p[2] for p in ok), default=0.0), 3),
            "slow_bytes_sent": sent[0]}


def alternate(catalog: Path, index_dir: Path, before: Path, work: Path, *, workers: int,
              seconds: float, paths: Sequence[str]) -> dict[str, Any]:
    """One client, requests sent to the before and after servers in turn."""
    os.environ["PYTHONPATH"] = str(before)
    servers = {"before": http_load.Server(catalog, index_dir, workers, work / "alt-before.log")}
    servers["before"].start()
    os.environ.pop("PYTHONPATH", None)
    servers["after"] = http_load.Server(catalog, index_dir, workers, work / "alt-after.log")
    latencies: dict[str, list[float]] = {"before": [], "after": []}
    try:
        servers["after"].start()
        for path in paths:  # every worker opens the index first
            for server in servers.values():
                http_load.get(server.port, path)
        end = time.monotonic() + seconds
        turn = 0
        while time.monotonic() < end:
            path = paths[turn % len(paths)]
            order = ("before", "after") if turn % 2 else ("after", "before")
            for name in order:
                began = time.perf_counter()
                status, _ = http_load.get(servers[name].port, path)
                if status != 200:
                    raise RuntimeError(f"{name}: {status} for {path}")
                latencies[name].append((time.perf_counter() - began) * 1000)
            turn += 1
    finally:
        for server in servers.values():
            server.stop()
    report = {}
    for name, values in latencies.items():
        values.sort()
        report[name] = {"requests": len(values),
                        "p50_ms": round(http_load.percentile(values, 50), 2),
                        "p90_ms": round(http_load.percentile(values, 90), 2),
                        "mean_ms": round(statistics.fmean(values), 2)}
    return report


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    levels = range(len(runs[0]["levels"]))
    return {
        "rps": {f"{runs[0]['levels'][i]['clients']} clients":
                spread([r["levels"][i]["rps"] for r in runs]) for i in levels},
        "p50_ms": {f"{runs[0]['levels'][i]['clients']} clients":
                   spread([r["levels"][i]["p50_ms"] for r in runs]) for i in levels},
        "errors": sum(lvl["errors"] for r in runs for lvl in r["levels"]),
        "slow_probes_answered": [f"{r['slow']['answered_200']}/{r['slow']['probes']}"
                                 for r in runs],
        "slowest_ok_s": spread([r["slow"]["slowest_ok_s"] for r in runs]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--seconds", type=float, default=8.0, help="per load level")
    ap.add_argument("--slow", type=int, default=20, help="slow-header connections")
    ap.add_argument("--slow-seconds", type=float, default=15.0)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "slow-clients")
    ap.add_argument("--before", type=Path, help="source tree of the code to compare with")
    ap.add_argument("--alternate", type=float, metavar="SECONDS",
                    help="with --before: one client alternating between both servers")
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    catalog, index_dir = build(a.work, a.items)
    queries = [BenchQuery.from_dict(q).params() for q in queries_mod.load()]
    if a.alternate:
        if not a.before:
            ap.error("--alternate needs --before")
        paths = [http_load.search_path(q) for q in queries]
        result = alternate(catalog, index_dir, a.before, a.work, workers=a.workers,
                           seconds=a.alternate, paths=paths)
        print(json.dumps({"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          "load_avg_end": round(os.getloadavg()[0], 1), **result}, indent=2))
        return 0
    variants = {"before": a.before, "after": None} if a.before else {"this": None}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for k in range(a.runs):
        for name, tree in variants.items():
            if tree is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = str(tree)  # `searchapp serve` then runs that code
            load = http_load.run(catalog, index_dir, queries, workers=a.workers,
                                 levels=[1, 8], seconds=a.seconds, max_requests=20_000,
                                 log=a.work / f"serve-load-{name}-{k}.log")
            slow = slow_phase(catalog, index_dir, a.work / f"serve-slow-{name}-{k}.log",
                              workers=a.workers, slow=a.slow, seconds=a.slow_seconds)
            runs[name].append({"levels": load["levels"], "slow": slow})
            print(name, json.dumps(runs[name][-1]), file=sys.stderr)
    os.environ.pop("PYTHONPATH", None)
    report = {
        "items": a.items, "workers": a.workers, "runs": a.runs,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python"
                   f" {platform.python_version()}, load avg {os.getloadavg()[0]:.1f} at end",
        "variants": {name: summarise(found) for name, found in runs.items()},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
