"""Admin work as jobs: imports, rebuilds and refreshes that outlive the request.

An admin request records a job in the catalog (with any upload spooled to
disk beside it) and starts a process of its own for it, then answers at once.
The process runs the same code as the command line (`searchapp.operations`),
under the same index lock, so jobs run one at a time and queue behind each
other and behind the command line. It writes its state, phase and result
into the catalog as it goes, so any serving process can answer for it, and a
restart of the service does not stop it. A job whose process has gone away
without finishing (a reboot, a kill) is marked failed the next time anyone
looks; its effects are those of a killed import or rebuild: all or nothing.

Run by hand: ``python -m searchapp.jobs JOB_ID`` (what the service starts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import (
    CatalogError,
    ImportRejected,
    NotFound,
    SearchappError,
    StoredNotIndexed,
)

KINDS = ("import", "reindex", "refresh")
STATES = ("queued", "running", "succeeded", "failed")
FINISHED = ("succeeded", "failed")
# A job waits this long for another import or rebuild to finish before it fails.
LOCK_WAIT = 6 * 3600.0
# Seconds a progress update waits for the catalog's write lock before it is skipped.
PROGRESS_WAIT = 0.05
# A job recorded but without a process after this long never started.
START_GRACE = 60.0


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file of an import job: its name as given and where it is spooled."""

    name: str
    path: str
    organisation: str | None = None


@dataclass(slots=True)
class Job:
    """One piece of admin work and what became of it (a row of the `jobs` table)."""

    id: str
    kind: str
    state: str = "queued"
    phase: str = "queued"
    done: int | None = None
    total: int | None = None
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it (the spooled files and the pid stay inside)."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "phase": self.phase,
                "done": self.done, "total": self.total, "created": self.created,
                "started": self.started, "finished": self.finished,
                "result": self.result, "error": self.error}


# Recording -----------------------------------------------------------------


def jobs_dir(settings: Settings) -> Path:
    """Where uploads wait for their job, and each job's log: beside the catalog."""
    return settings.catalog.parent / "jobs"


def submit(settings: Settings, kind: str, *, params: dict[str, Any] | None = None,
           files: Sequence[tuple[str, bytes]] = (), start: bool = True) -> Job:
    """Record a job (spooling `files`, given as (name, bytes)) and start its process."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(id=secrets.token_hex(8), kind=kind, params=dict(params or {}))
    folder = jobs_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    uploads = []
    for n, (name, data) in enumerate(files):
        path = folder / f"{job.id}.{n}.upload"
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        uploads.append(dataclasses.asdict(Upload(name, str(path))))
    if uploads:
        job.params["uploads"] = uploads
    with Catalog(settings.catalog) as catalog:
        catalog.add_job(job)
    if start:
        job.pid = _spawn(settings, job.id)
        with Catalog(settings.catalog) as catalog:
            catalog.update_job(job.id, pid=job.pid)
    return job


def _spawn(settings: Settings, job_id: str) -> int:
    """Start ``python -P -m searchapp.jobs JOB_ID`` in a session of its own.

    `-P` keeps the working directory off the import path. The process is
    waited for by a daemon thread so it never lingers as a zombie (which
    would look alive); if this process dies first, init adopts it.
    """
    env = {k: v for k, v in os.environ.items() if k != "SEARCHAPP_ADMIN_TOKEN"}
    env.update(SEARCHAPP_CATALOG=str(settings.catalog.resolve()),
               SEARCHAPP_INDEX_DIR=str(settings.index_dir.resolve()),
               SEARCHAPP_LOCK_TIMEOUT=str(LOCK_WAIT))
    log = open(jobs_dir(settings) / f"{job_id}.log", "ab")  # noqa: SIM115 (handed to the child)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "searchapp.jobs", job_id],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, cwd=str(jobs_dir(settings)))
    finally:
        log.close()
    threading.Thread(target=proc.wait, name=f"job-{job_id}", daemon=True).start()
    return proc.pid


def get(settings: Settings, job_id: str) -> Job:
    with Catalog(settings.catalog) as catalog:
        reap(catalog)
        job = catalog.job(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    return job


def recent(settings: Settings, *, limit: int = 50) -> list[Job]:
    with Catalog(settings.catalog) as catalog:
        reap(catalog)
        return catalog.jobs(limit=limit)


def reap(catalog: Catalog) -> int:
    """Mark failed every unfinished job whose process is gone; how many were."""
    reaped = 0
    now = dt.datetime.now(dt.UTC)
    for job in catalog.jobs(states=("queued", "running"), limit=1000):
        if job.pid is None:
            age = (now - dt.datetime.fromisoformat(job.created)).total_seconds()
            if age < START_GRACE:
                continue
            reason = "the job was recorded but its process never started"
        elif _alive(job.pid, job.id):
            continue
        else:
            reason = ("interrupted: the job's process ended before it finished (a restart or"
                      " a kill); an import is all or nothing, so check /healthz and run"
                      " the job again")
        reaped += catalog.finish_job(job.id, state="failed", phase=job.phase,
                                     error={"code": "interrupted", "message": reason},
                                     only_unfinished=True)
    return reaped


def _alive(pid: int, job_id: str) -> bool:
    """Whether `pid` is still this job's process (not a zombie, not a reused pid)."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return job_id.encode() in cmdline and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Running -------------------------------------------------------------------


class _Progress:
    """Writes a job's phase (and counts) into the catalog as the work goes on.

    Best effort: while the import itself holds the catalog's write lock (it
    stores everything in one transaction), an update is skipped rather than
    waited for, and the next one after the commit brings the row up to date.
    """

    def __init__(self, settings: Settings, job_id: str) -> None:
        self.settings = settings
        self.job_id = job_id

    def __call__(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        fields: dict[str, Any] = {"phase": phase, "done": done, "total": total,
                                  "state": "running"}
        try:
            with Catalog(self.settings.catalog, timeout=PROGRESS_WAIT) as catalog:
                catalog.update_job(self.job_id, **fields)
        except CatalogError:
            pass  # the catalog is busy with this very job's transaction


def run(job_id: str, settings: Settings) -> Job:
    """Carry out a recorded job in this process and record how it ended."""
    with Catalog(settings.catalog) as catalog:
        job = catalog.job(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id!r}")
        if job.state != "queued":
            raise SearchappError(f"job {job_id} is {job.state}, not queued")
        catalog.update_job(job_id, pid=os.getpid(), started=_now(), phase="starting")
    progress = _Progress(settings, job_id)
    state, result, error = "failed", None, None
    try:
        result = _work(settings, job, progress)
        state = "succeeded"
    except ImportRejected as exc:
        error = {"code": exc.code, "message": str(exc),
                 "problems": [{"source": p.source, "line": p.line, "message": p.message}
                              for p in exc.problems]}
    except StoredNotIndexed as exc:
        # Failed, not succeeded: the items are stored but not searchable yet; what the
        # import did is the result.
        result = exc.result
        error = {"code": exc.code, "message": str(exc)}
    except SearchappError as exc:
        error = {"code": exc.code, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 (recorded for the operator; the log has the trace)
        traceback.print_exc()
        error = {"code": "internal_error",
                 "message": f"the job failed unexpectedly ({exc.__class__.__name__}: {exc});"
                            " see the job's log beside the catalog"}
    finally:
        for upload in job.params.get("uploads", []):
            Path(upload["path"]).unlink(missing_ok=True)
    with Catalog(settings.catalog) as catalog:
        catalog.finish_job(job_id, state=state, phase="done" if state == "succeeded" else
                           "failed", result=result, error=error)
        finished = catalog.job(job_id)
    assert finished is not None
    return finished


def _work(settings: Settings, job: Job, progress: _Progress) -> dict[str, Any]:
    from searchapp import importers, operations

    if job.kind == "reindex":
        return operations.rebuild(settings, progress=progress).to_dict()
    if job.kind == "import":
        hints = importers.Hints(organisation=job.params.get("organisation") or None,
                                url=job.params.get("url") or None)
        fmt = job.params.get("format", "auto")
        uploads = job.params.get("uploads", [])
        outcome = operations.import_paths(
            settings, [Path(upload["path"]) for upload in uploads], fmt=fmt, hints=hints,
            names=[upload["name"] for upload in uploads],
            skip_invalid=bool(job.params.get("skip_invalid")), progress=progress)
        return outcome.to_dict()
    from searchapp import refresh

    return refresh.refresh(settings, job.params.get("names") or (),
                           progress=progress).to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m searchapp.jobs JOB_ID", file=sys.stderr)
        return 2
    job = run(args[0], Settings.load())
    return 0 if job.state == "succeeded" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
