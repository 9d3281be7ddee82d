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

An import or rebuild job waits for the index lock first, in a small process
(the standard library and `searchapp.lockfile`: about 20 MB), and only then
loads the importers and reads its upload: queued uploads wait as files on
disk, not parsed in memory. A job's uploads are removed when it ends, when it
is found interrupted, and, for any left behind, when the service starts
(`tidy`).

Run by hand: ``python -m searchapp.jobs JOB_ID`` (what the service starts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import logging
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from searchapp import lockfile
from searchapp.errors import (
    Busy,
    CatalogBusy,
    CatalogError,
    CatalogMissing,
    DiskFull,
    ImportRejected,
    NotFound,
    ReadOnly,
    SearchappError,
    StoredNotIndexed,
)

# Imported where used, not here: a job waiting for the index lock runs this module with
# no more than the standard library (`main`); the catalog module brings nltk, numpy and
# the importers (some 60 MB a process).
if TYPE_CHECKING:
    from searchapp.catalog import Catalog
    from searchapp.config import Settings

log = logging.getLogger(__name__)

KINDS = ("import", "reindex", "refresh")
STATES = ("queued", "running", "succeeded", "failed")
FINISHED = ("succeeded", "failed")
# A job waits this long for another import or rebuild to finish before it fails.
LOCK_WAIT = 6 * 3600.0
# Seconds a progress update waits for the catalog's write lock before it is skipped.
PROGRESS_WAIT = 0.05
# The phase while a job waits for another program to let go of the catalog's write lock
# (up to `Settings.catalog_wait`); shown from a file beside the uploads (`_waiting_path`),
# as the catalog cannot be written to say so.
CATALOG_WAITING = "waiting for the catalog (another program holds its write lock)"
# What starts the line a job's process ends its log with when it can record how it ended
# nowhere else (`_end`).
ENDED_LINE = "searchapp job ended:"
# A job recorded but without a process after this long never started; a spooled upload
# no unfinished job names, this old, was left by a request cut off while spooling it.
START_GRACE = 60.0
# Jobs that wait for the index lock before they start their work (a refresh fetches its
# sources first and takes the lock only to store what it found).
LOCK_FIRST = ("import", "reindex")


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


def _catalog(path: Path, **options: Any) -> Catalog:
    """The catalog the jobs are recorded in; never made here (`create`), unless asked:
    a catalog gone while serving is `CatalogMissing`, not an empty one in its place."""
    from searchapp.catalog import Catalog

    options.setdefault("create", False)
    return Catalog(path, **options)


def jobs_dir(settings: Settings) -> Path:
    """Where uploads wait for their job, and each job's log: beside the catalog. Made
    absolute here: a job's process runs in this folder, and an upload's path recorded
    relative to where the server started (a relative `SEARCHAPP_CATALOG`, as `make run`
    has) would name nothing from there."""
    return _jobs_folder(settings.catalog)


def submit(settings: Settings, kind: str, *, params: dict[str, Any] | None = None,
           files: Sequence[tuple[str, IO[bytes]]] = (), start: bool = True) -> Job:
    """Record a job (spooling `files`, given as (name, readable file), to disk a chunk at
    a time) and start its process.

    Nothing is left behind when this fails: a full disk is `DiskFull`, a folder
    that cannot be written `ReadOnly`, and the files spooled so far are removed.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    make = _may_make_catalog(settings, kind)
    if not make and not settings.catalog.exists():  # before the jobs folder is made
        raise CatalogMissing(settings.catalog)
    job = Job(id=secrets.token_hex(8), kind=kind, params=dict(params or {}))
    folder = jobs_dir(settings)
    spooled: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        uploads = []
        for n, (name, stream) in enumerate(files):
            path = folder / f"{job.id}.{n}.upload"
            spooled.append(path)
            with open(path, "wb") as fh:
                shutil.copyfileobj(stream, fh, 1 << 20)
                fh.flush()
                os.fsync(fh.fileno())
            uploads.append(dataclasses.asdict(Upload(name, str(path))))
        if uploads:
            job.params["uploads"] = uploads
        with _catalog(settings.catalog, create=make) as catalog:
            catalog.add_job(job)
    except OSError as exc:
        _remove(spooled)
        refused = _refused(folder, exc)
        if refused is None:
            raise
        raise refused from exc
    except BaseException:
        _remove(spooled)
        raise
    if start:
        job.pid = _spawn(settings, job.id)
        try:  # (the job's process records it too, first thing: `main`)
            with _catalog(settings.catalog) as catalog:
                catalog.update_job(job.id, pid=job.pid)
        except (SearchappError, sqlite3.Error) as exc:
            log.warning("job %s: its process id not recorded here (%s); the job records it",
                        job.id, exc)
    return job


def _may_make_catalog(settings: Settings, kind: str) -> bool:
    """Whether a job may make a missing catalog: an import, on a new install
    (`operations.new_install`); a rebuild or refresh of nothing is refused."""
    from searchapp import operations

    return kind == "import" and operations.new_install(settings)


def _refused(folder: Path, exc: OSError) -> SearchappError | None:
    """What to say when a job cannot be recorded because the disk refused a write."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"the disk holding {folder} is full: the upload was not kept and no"
                        " job was started; free some room and send it again")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnly(f"{folder} cannot be written ({exc.strerror}): searching and reading"
                        " go on, but imports, refreshes and rebuilds need the catalog's"
                        " folder writable")
    return None


def _remove(paths: Iterable[Path | str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            Path(path).unlink(missing_ok=True)


def _remove_uploads(job: Job | None) -> None:
    if job is not None:
        _remove(upload["path"] for upload in job.params.get("uploads", []))


def _spawn(settings: Settings, job_id: str) -> int:
    """Start ``python -P -m searchapp.jobs JOB_ID`` in a session of its own.

    `-P` keeps the working directory off the import path. The process is
    waited for by a daemon thread so it never lingers as a zombie (which
    would look alive); if this process dies first, init adopts it.
    """
    env = {k: v for k, v in os.environ.items() if k != "SEARCHAPP_ADMIN_TOKEN"}
    env.update(SEARCHAPP_CATALOG=str(settings.catalog.resolve()),
               SEARCHAPP_INDEX_DIR=str(settings.index_dir.resolve()),
               SEARCHAPP_LOCK_TIMEOUT=str(LOCK_WAIT),
               SEARCHAPP_CATALOG_WAIT=str(settings.catalog_wait))
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
    """The job as it is now; never waits for the catalog's write lock."""
    with _catalog(settings.catalog, reading=True) as catalog:
        job = reap(catalog).get(job_id) or catalog.job(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    return _as_seen(settings.catalog, job)


def recent(settings: Settings, *, limit: int = 50) -> list[Job]:
    """The most recent jobs as they are now; never waits for the catalog's write lock."""
    with _catalog(settings.catalog, reading=True) as catalog:
        ended = reap(catalog)
        return [_as_seen(settings.catalog, ended.get(job.id, job))
                for job in catalog.jobs(limit=limit)]


def reap(catalog: Catalog) -> dict[str, Job]:
    """Every unfinished job whose process is gone, by id, as it ended: what its process
    left (`_end`), else failed `interrupted`. Each is recorded so and its uploads
    removed, unless the catalog cannot be written at once (another program holds its
    write lock, or it is read-only): a later look records it then."""
    ended: dict[str, Job] = {}
    now = dt.datetime.now(dt.UTC)
    for job in catalog.jobs(states=("queued", "running"), limit=1000):
        if _unfinished(job.id, job.pid, job.created, now):
            continue
        outcome = _left(catalog.path, job.id) or _interrupted(job)
        ended[job.id] = dataclasses.replace(job, **outcome)
        if catalog.read_only:
            continue
        try:
            with catalog.writing(wait=0):
                recorded = catalog.finish_job(job.id, **outcome, only_unfinished=True)
        except CatalogError:
            continue
        if recorded:
            _remove_uploads(job)
        _remove([_ended_path(catalog.path, job.id), _waiting_path(catalog.path, job.id)])
    return ended


def _interrupted(job: Job) -> dict[str, Any]:
    """How a job ended whose process left nothing to say so."""
    if job.pid is None:
        reason = "the job was recorded but its process never started"
    else:
        reason = ("interrupted: the job's process ended before it finished (a restart"
                  " or a kill); an import is all or nothing, so check /healthz and"
                  " run the job again")
    return {"state": "failed", "phase": job.phase, "result": None,
            "error": {"code": "interrupted", "message": reason}, "finished": _now()}


def _as_seen(catalog: Path, job: Job) -> Job:
    """`job` with the phase its process could not record: waiting for the catalog."""
    if job.state in FINISHED or not _waiting_path(catalog, job.id).exists():
        return job
    return dataclasses.replace(job, phase=CATALOG_WAITING)


def _ended_path(catalog: Path, job_id: str) -> Path:
    """Where a job's process leaves how it ended when the catalog could not be written
    then (another program holding its write lock, or read-only): for `reap` to record."""
    return _jobs_folder(catalog) / f"{job_id}.ended"


def _waiting_path(catalog: Path, job_id: str) -> Path:
    """The file that is there while a job's process waits for the catalog's write lock."""
    return _jobs_folder(catalog) / f"{job_id}.waiting"


def _jobs_folder(catalog: Path) -> Path:
    """`jobs_dir` of the catalog at `catalog`."""
    return catalog.resolve().parent / "jobs"


def _left(catalog: Path, job_id: str) -> dict[str, Any] | None:
    """How a job ended, as its process left it where the catalog could not be written
    (`_end`): in its `.ended` file, else as the last line of its log. None: nothing
    usable there."""
    try:
        text = _ended_path(catalog, job_id).read_text(encoding="utf-8")
    except OSError:
        last = _last_line(_jobs_folder(catalog) / f"{job_id}.log")
        if not last.startswith(ENDED_LINE):
            return None
        text = last.removeprefix(ENDED_LINE)
    try:
        outcome = json.loads(text)
    except ValueError:
        return None
    if not isinstance(outcome, dict) or outcome.get("state") not in FINISHED:
        return None
    return {key: outcome.get(key) for key in ("state", "phase", "result", "error", "finished")}


def _last_line(path: Path, *, most: int = 1 << 16) -> str:
    """The last line of the file at `path` (of its last `most` bytes); "" if none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - most))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def tidy(settings: Settings) -> int:
    """What the service does as it starts: mark failed the jobs whose process has gone
    (a restart after a kill), removing their uploads, and remove every spooled upload no
    unfinished job waits for (older than `START_GRACE`: a request still spooling is
    not disturbed). How many files were removed."""
    folder = jobs_dir(settings)
    if not folder.is_dir():
        return 0
    before = set(folder.glob("*.upload"))
    with _catalog(settings.catalog) as catalog:
        reap(catalog)
        waited_for = {Path(upload["path"]).name
                      for job in catalog.jobs(states=("queued", "running"), limit=1000)
                      for upload in job.params.get("uploads", [])}
    now = time.time()
    for path in folder.glob("*.upload"):
        with contextlib.suppress(OSError):
            if path.name not in waited_for and now - path.stat().st_mtime > START_GRACE:
                path.unlink()
    return len(before - set(folder.glob("*.upload")))


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
            with _catalog(self.settings.catalog, timeout=PROGRESS_WAIT) as catalog:
                catalog.update_job(self.job_id, **fields)
        except CatalogError:
            pass  # the catalog is busy with this very job's transaction


def run(job_id: str, settings: Settings, *, locked: bool = False) -> Job:
    """Carry out a recorded job in this process and record how it ended. `locked`: this
    process holds the index lock already (`main`)."""
    with _catalog(settings.catalog, reading=True) as catalog:
        job = catalog.job(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id!r}")
        if job.state != "queued":
            raise SearchappError(f"job {job_id} is {job.state}, not queued")
    try:
        _record(settings, job_id, pid=os.getpid(), started=_now(), state="running",
                phase="starting")
    except CatalogError as exc:  # busy past the wait, read-only, gone
        _remove_uploads(job)
        return _end(settings, job, state="failed",
                    error={"code": exc.code, "message": _not_started(exc)})
    progress = _Progress(settings, job_id)
    state, result, error = "failed", None, None
    try:
        result = _work(settings, job, progress, locked=locked)
        state = "succeeded"
    except ImportRejected as exc:
        error = {"code": exc.code, "message": str(exc), **exc.details()}
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
        _remove_uploads(job)
    return _end(settings, job, state=state, result=result, error=error)


def _not_started(exc: CatalogError) -> str:
    """The message of a job that failed before it started, for `exc`."""
    if isinstance(exc, CatalogBusy):
        return (f"{exc}: the job did not start and changed nothing; send it again once the"
                " catalog is free (SEARCHAPP_CATALOG_WAIT says how long a job waits)")
    return f"{exc}; the job did not start and changed nothing"


def _record(settings: Settings, job_id: str, **fields: Any) -> None:
    """Write some of a job's fields, waiting up to `Settings.catalog_wait` seconds for
    another program holding the catalog's write lock: `CatalogBusy` past that."""
    with _catalog_waited(settings, job_id) as catalog:
        catalog.update_job(job_id, **fields)


@contextlib.contextmanager
def _catalog_waited(settings: Settings, job_id: str) -> Iterator[Catalog]:
    """The catalog in one write transaction for job `job_id`, had once another program
    holding its write lock lets go, waiting up to `Settings.catalog_wait` seconds
    (`CatalogBusy` past that; the job shows `CATALOG_WAITING` meanwhile). A catalog made
    read-only while the job waited is `ReadOnly`."""
    began = time.monotonic()
    waiting = _waiting_path(settings.catalog, job_id)
    try:
        with _catalog(settings.catalog, timeout=settings.catalog_wait) as catalog, \
                catalog.writing(waiting=lambda: _touch(waiting)):
            yield catalog
    except CatalogError as exc:
        if not _locked(exc):
            raise
        raise CatalogBusy(time.monotonic() - began) from exc
    finally:
        _remove([waiting])


def _touch(path: Path) -> None:
    """Make an empty file at `path`, if the disk lets us (best effort)."""
    with contextlib.suppress(OSError):
        path.touch()


def _locked(exc: CatalogError) -> bool:
    """Whether a catalog write failed because another connection held the write lock."""
    return str(getattr(exc.__cause__, "sqlite_errorname", "")).startswith("SQLITE_BUSY")


def _end(settings: Settings, job: Job, *, state: str, result: dict[str, Any] | None = None,
         error: dict[str, Any] | None = None, only_unfinished: bool = False) -> Job:
    """Record how a job ended. When the catalog cannot be written (another program keeps
    its write lock past `Settings.catalog_wait`, it is read-only), it is left for `reap`
    to show and, once it can, record after this process is gone (else the job would read
    as killed): in a file beside the uploads, else as the last line of the job's log."""
    outcome: dict[str, Any] = {"state": state, "result": result, "error": error,
                               "phase": "done" if state == "succeeded" else "failed",
                               "finished": _now()}
    try:
        with _catalog_waited(settings, job.id) as catalog:
            catalog.finish_job(job.id, **outcome, only_unfinished=only_unfinished)
            finished = catalog.job(job.id)
    except CatalogError as exc:
        text = json.dumps(outcome, ensure_ascii=False)
        ended = _ended_path(settings.catalog, job.id)
        temporary = ended.with_suffix(".tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, ended)
        except OSError as unwritten:
            _remove([temporary])
            print(f"job {job.id} {state}, not recorded in the catalog ({exc}) nor in {ended}"
                  f" ({unwritten.strerror}): how it ended is the next line, for the service"
                  f" to show and record\n{ENDED_LINE} {text}", file=sys.stderr, flush=True)
        else:
            print(f"job {job.id} {state}, not recorded in the catalog ({exc}): left in"
                  f" {ended} for the service to record", file=sys.stderr)
        return dataclasses.replace(job, **outcome)
    if finished is None:
        raise NotFound(f"no job with id {job.id!r}")
    return finished


def _work(settings: Settings, job: Job, progress: _Progress, *,
          locked: bool) -> dict[str, Any]:
    from searchapp import importers, operations

    if job.kind == "reindex":
        return operations.rebuild(settings, progress=progress, locked=locked).to_dict()
    if job.kind == "import":
        hints = importers.Hints(organisation=job.params.get("organisation") or None,
                                url=job.params.get("url") or None)
        fmt = job.params.get("format", "auto")
        uploads = job.params.get("uploads", [])
        outcome = operations.import_paths(
            settings, [Path(upload["path"]) for upload in uploads], fmt=fmt, hints=hints,
            names=[upload["name"] for upload in uploads],
            skip_invalid=bool(job.params.get("skip_invalid")), progress=progress,
            locked=locked)
        return outcome.to_dict()
    from searchapp import refresh

    return refresh.refresh(settings, job.params.get("names") or (),
                           progress=progress).to_dict()


def _give_up(settings: Settings, job_id: str, exc: SearchappError) -> Job:
    """Record that a job never had the index lock (`exc` says why), removing its uploads."""
    with _catalog(settings.catalog, reading=True) as catalog:
        job = catalog.job(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    _remove_uploads(job)
    return _end(settings, job, state="failed", only_unfinished=True,
                error={"code": exc.code, "message": str(exc)})


# Waiting for the lock ----------------------------------------------------------
#
# Plain sqlite3 on the catalog's jobs table, not `Catalog`: see the imports above.


def _places() -> tuple[Path, Path, float]:
    """The catalog, the index directory and the lock timeout: from the environment the
    service gives a job (`_spawn`), else (run by hand) from the settings."""
    env = os.environ
    try:
        return (Path(env["SEARCHAPP_CATALOG"]), Path(env["SEARCHAPP_INDEX_DIR"]),
                float(env["SEARCHAPP_LOCK_TIMEOUT"]))
    except (KeyError, ValueError):
        from searchapp.config import Settings

        settings = Settings.load()
        return settings.catalog, settings.index_dir, settings.lock_timeout


def _jobs_sql(catalog: Path, sql: str, params: Sequence[Any], *, write: bool = False,
              timeout: float = 30) -> list[Any] | None:
    """One statement on the jobs table with plain sqlite3 (a waiting job loads nothing
    more), its rows; None when it failed. Never makes a catalog (`mode=rw`/`ro`): one gone
    meanwhile is left gone."""
    uri = f"{catalog.resolve().as_uri()}?mode={'rw' if write else 'ro'}"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=timeout)) as db, db:
            return db.execute(sql, tuple(params)).fetchall()
    except sqlite3.Error:
        return None


def _queued_kind(catalog: Path, job_id: str) -> str | None:
    """The kind of job `job_id` while it is queued (None: no such job, or not queued)."""
    rows = _jobs_sql(catalog, "SELECT kind FROM jobs WHERE id = ? AND state = 'queued'",
                     (job_id,))
    return str(rows[0][0]) if rows else None


def _record_pid(catalog: Path, job_id: str) -> None:
    """Record this process as the job's, where the service could not (its write waited
    for the catalog in vain): a job without a process id stops counting in the order of
    jobs (`_older`) and is reaped as never started. Best effort."""
    _jobs_sql(catalog, "UPDATE jobs SET pid = ? WHERE id = ? AND pid IS NULL",
              (os.getpid(), job_id), write=True)


def _say_waiting(catalog: Path, job_id: str) -> None:
    """Record that a queued job waits for another import or rebuild (best effort)."""
    _jobs_sql(catalog, "UPDATE jobs SET phase = ? WHERE id = ? AND state = 'queued'",
              (lockfile.WAITING, job_id), write=True, timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m searchapp.jobs JOB_ID", file=sys.stderr)
        return 2
    job_id = args[0]
    catalog, index_dir, timeout = _places()
    _record_pid(catalog, job_id)
    if _queued_kind(catalog, job_id) not in LOCK_FIRST:
        job = run(job_id, _settings())
        return 0 if job.state == "succeeded" else 1
    # Queued until the lock is had: the upload waits on disk, nothing is read or loaded.
    # Jobs take the lock in the order they were submitted: the older ones first.
    deadline = time.monotonic() + timeout
    with contextlib.ExitStack() as held:
        try:
            _wait_for_older(catalog, job_id, deadline)
            held.enter_context(lockfile.hold(
                index_dir, timeout=max(0.0, deadline - time.monotonic()),
                waiting=lambda: _say_waiting(catalog, job_id)))
        except SearchappError as exc:  # `Busy` after `timeout`, or an unwritable index
            job = _give_up(_settings(), job_id, exc)
        else:
            job = run(job_id, _settings(), locked=True)
    return 0 if job.state == "succeeded" else 1


def _wait_for_older(catalog: Path, job_id: str, deadline: float) -> None:
    """Wait until no import or rebuild job submitted before `job_id` is still to run
    (then `Busy` past `deadline`). Each waiting job polled the lock on its own, so they
    ran in any order, and an older upload could overwrite a newer one's items. An older
    job counts while its process lives, or, not started yet, for `START_GRACE` seconds
    after it was recorded (a dead one is marked failed when next listed)."""
    said = False
    while _older(catalog, job_id):
        if not said:
            _say_waiting(catalog, job_id)
            said = True
        if time.monotonic() >= deadline:
            raise Busy("earlier imports or rebuilds are still queued; try again when they"
                       " have finished")
        time.sleep(0.05)


def _older(catalog: Path, job_id: str) -> bool:
    """Whether an import or rebuild job recorded before `job_id` is still to finish."""
    rows = _jobs_sql(
        catalog, "SELECT id, pid, created FROM jobs WHERE rowid < (SELECT rowid FROM jobs"
        " WHERE id = ?) AND state IN ('queued', 'running') AND kind IN"
        f" ({', '.join('?' * len(LOCK_FIRST))})", (job_id, *LOCK_FIRST))
    if rows is None:
        return False  # (the lock still keeps them apart)
    now = dt.datetime.now(dt.UTC)
    return any(_unfinished(str(other), None if pid is None else int(pid), created, now)
               for other, pid, created in rows)


def _unfinished(job_id: str, pid: int | None, created: str, now: dt.datetime) -> bool:
    """Whether a job not marked finished may still run: its process lives, or, without
    one recorded, it was recorded under `START_GRACE` seconds ago (its process starting)."""
    if pid is not None:
        return _alive(pid, job_id)
    try:
        return (now - dt.datetime.fromisoformat(created)).total_seconds() < START_GRACE
    except (ValueError, TypeError):
        return False


def _settings() -> Settings:
    from searchapp.config import Settings

    return Settings.load()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
