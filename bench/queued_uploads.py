#!/usr/bin/env python3
"""Memory of queued admin uploads: `searchapp serve` with uploads waiting behind a held
index lock (#14, stop 22).

Serves data/samples from a temporary folder with the checkout `--code` (its folder
first on PYTHONPATH, with this venv), takes the index lock itself (as a long
import or rebuild would), posts `--uploads` JSON Lines files of `--mb` MB each to
`POST /api/admin/imports` (the titles of tests/data/language_titles.jsonl, in six
languages, without their language, so an import that reads them detects it), and
then watches for
`--seconds` seconds. Every 0.1 s the resident set (VmRSS) of every process of the
server is read from /proc: the server's own processes (gunicorn's arbiter and its
workers) and the job processes they started. Prints one JSON object per checkout:
the peak of each sum, the largest single job process, the largest server process's
own peak (VmHWM, which catches what sampling misses), and the jobs' states and
phases at the end::

    .venv/bin/python bench/queued_uploads.py --code before=/tmp/before --code after=.

Each run has a fresh folder under `--work`. The lock is then released and the
server stopped (the jobs are killed: only the queue is measured).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "bench-token"
_CLI = "import sys; from searchapp.cli import main; sys.argv[0] = 'searchapp'; sys.exit(main())"
# Titles and summaries in six languages (their `language` left out, so that an import
# detects it: by stop words, else with lingua's models).
TITLES = ROOT / "tests" / "data" / "language_titles.jsonl"


def upload_file(path: Path, megabytes: float, seed: int) -> int:
    """A JSON Lines file of about `megabytes` MB of the titles in turn, each with an id of
    its own; how many records."""
    records = [json.loads(line) for line in TITLES.read_text("utf-8").splitlines()]
    random.Random(seed).shuffle(records)
    size, n = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while size < megabytes * 1_000_000:
            record = records[n % len(records)]
            line = json.dumps({"id": f"q{seed}-{n}", "title": record["title"],
                               "summary": record.get("summary", ""), "date": "2020-01-01"},
                              ensure_ascii=False) + "\n"
            out.write(line)
            size += len(line.encode())
            n += 1
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(root: int) -> list[int]:
    """`root` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """The process's resident set now (or, with "VmHWM", its peak so far), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def is_job(pid: int) -> bool:
    try:
        return b"searchapp.jobs" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def post(port: int, path: Path) -> dict[str, Any]:
    """POST the file as a multipart upload with curl (which streams it from disk)."""
    done = subprocess.run(
        ["curl", "-s", "-H", f"Authorization: Bearer {TOKEN}", "-F", f"file=@{path}",
         "-F", "organisation=Bench", f"http://127.0.0.1:{port}/api/admin/imports"],
        capture_output=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def job(port: int, job_id: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/admin/jobs/{job_id}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def run(name: str, code: Path, work: Path, files: list[Path], seconds: float) -> dict[str, Any]:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(code.resolve()),
           "SEARCHAPP_CATALOG": str(folder / "instance" / "catalog.sqlite3"),
           "SEARCHAPP_INDEX_DIR": str(folder / "index"), "SEARCHAPP_ADMIN_TOKEN": TOKEN}
    subprocess.run([sys.executable, "-c", _CLI, "import", "--quiet", str(ROOT / "data/samples")],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    log = (folder / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-c", _CLI, "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "2"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    lock = os.open(folder / "index" / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        ids = [post(port, path)["id"] for path in files]
        peak_server = peak_jobs = peak_job = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = tree(server.pid)
            jobs = [rss_kib(pid) for pid in pids if is_job(pid)]
            peak_server = max(peak_server, sum(rss_kib(pid) for pid in pids if not is_job(pid)))
            peak_jobs, peak_job = max(peak_jobs, sum(jobs)), max(peak_job, max(jobs, default=0))
            time.sleep(0.1)
        states = [(found["state"], found["phase"]) for found in (job(port, i) for i in ids)]
        server_hwm = [rss_kib(pid, "VmHWM") for pid in tree(server.pid) if not is_job(pid)]
    finally:
        for pid in tree(server.pid):
            if is_job(pid):
                os.kill(pid, signal.SIGKILL)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        os.close(lock)
        log.close()
    return {"code": name, "uploads": len(files),
            "upload_mb": round(sum(p.stat().st_size for p in files) / len(files) / 1e6, 1),
            "seconds_watched": seconds,
            "peak_server_mb": round(peak_server / 1024, 1),
            "server_hwm_largest_mb": round(max(server_hwm) / 1024, 1),
            "peak_jobs_sum_mb": round(peak_jobs / 1024, 1),
            "peak_one_job_mb": round(peak_job / 1024, 1), "jobs": states}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", action="append", default=[],
                        help="NAME=CHECKOUT (repeatable; default: after=this checkout)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/queued-uploads"))
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    codes = [entry.split("=", 1) for entry in args.code] or [["after", str(ROOT)]]
    args.work.mkdir(parents=True, exist_ok=True)
    files = [args.work / f"upload-{n}.jsonl" for n in range(args.uploads)]
    for n, path in enumerate(files):
        upload_file(path, args.mb, seed=n)
    for name, code in codes:
        print(json.dumps(run(name, Path(code), args.work, files, args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
