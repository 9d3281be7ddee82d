"""Full rebuilds, in one process or spread over several.

`build` writes documents with the segment writer (`searchapp.engine.segments`);
with several workers, each is a fresh interpreter writing segments of its own
from every `workers`-th chunk of documents, and their segments are then moved
into the index and listed in one new table of contents.

Workers are started isolated (``python -I``, the package's own folder as the
only addition to the import path), so a file in the current directory named
like a module (a stray ``numpy.py``) is never imported by them.
"""

from __future__ import annotations

import os
import pickle
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from whoosh.index import Index

from searchapp.engine.segments import (
    SegmentBuilder,
    StemTable,
    adopt_segments,
    cancel,
    create_index,
    segments_of,
)
from searchapp.errors import IndexUnavailable


def build(ix: Index, documents: Iterable[Mapping[str, Any]], *, workers: int = 1,
          stems: str | None = None) -> int:
    """Write `documents` into `ix`; returns how many were written.

    With `workers` > 1, that many child processes each write segments from
    every `workers`-th chunk of documents, and their segments are then moved
    into `ix` and listed in one new table of contents (see `_build_parallel`).
    With `stems`, a folder: the stems earlier builds left there are used, and
    this build's are left there (`segments.StemTable`), one file per process.
    """
    if workers > 1:
        return _build_parallel(ix, documents, workers, stems)
    builder = SegmentBuilder(ix, stems=StemTable(stems))
    try:
        for doc in documents:
            builder.add(doc)
        builder.commit()  # gathers the last batch: a bad document may fail here too
    except BaseException:
        cancel(builder)
        raise
    if stems:
        builder.save_stems(stems)
    return builder.documents


CHUNK = 500  # documents sent to a worker at a time
# Run with `python -I`: no current directory, PYTHON* variables or user site on the
# path; the folder holding this searchapp package goes first, so workers run this code.
_WORKER = ("import sys; sys.path.insert(0, sys.argv[1]);"
           " from searchapp.engine.pool import serve_part;"
           " serve_part(sys.argv[2], sys.argv[3], int(sys.argv[4]))")
_ROOT = str(Path(__file__).resolve().parent.parent.parent)


class BuildFailed(IndexUnavailable):
    """A worker process of a parallel build failed; nothing it wrote is kept."""


def _build_parallel(ix: Index, documents: Iterable[Mapping[str, Any]], workers: int,
                    stems: str | None = None) -> int:
    """Several processes each build segments of their own in a folder of their own
    (whole chunks of documents, dealt in turn); then their segment files move into
    `ix`'s folder and one new table of contents lists them all.

    The workers are fresh interpreters fed through a pipe: they hold none of
    this process's files (its index lock above all), and a worker whose feeder
    dies (even by SIGKILL) reads the end of its input and stops. A worker that
    fails makes the build fail with its error (a full disk stays an OSError);
    every worker reports how many documents it wrote, and the total must be
    what was sent.
    """
    folder = Path(ix.storage.folder)
    parts = [folder / f"part-{k}" for k in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-I", "-c", _WORKER, _ROOT, str(part),
                               stems or "", str(k)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for k, part in enumerate(parts)]

    def report(k: int) -> tuple[str, Any, str]:
        proc = procs[k]
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.close()
        except OSError:
            pass
        out = proc.stdout.read()
        proc.wait()
        try:
            status, value, message = pickle.loads(out)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError):  # it died
            return ("error", None, f"index worker {k} died (exit status {proc.returncode})")
        return (str(status), value, f"index worker {k}: {message}")

    def failed(k: int) -> BaseException:
        status, value, message = report(k)
        if status == "oserror":
            return OSError(value, message)
        return BuildFailed(message if status != "ok" else
                           f"index worker {k} stopped reading before the end")

    # One feeding thread per worker, so that a worker busy with its last chunk
    # never holds up the others: chunks wait in a short queue, not in the pipe.
    inboxes: list[queue.Queue[Any]] = [queue.Queue(maxsize=4) for _ in range(workers)]
    broken: list[bool] = [False] * workers

    def feed(k: int) -> None:
        stdin = procs[k].stdin
        assert stdin is not None
        while True:
            chunk = inboxes[k].get()
            try:
                pickle.dump(chunk, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                if chunk is None:
                    stdin.flush()
            except OSError:  # the worker is gone: its report says why
                broken[k] = True
                return
            if chunk is None:
                return

    feeders = [threading.Thread(target=feed, args=(k,), daemon=True) for k in range(workers)]
    for thread in feeders:
        thread.start()

    def send(k: int, chunk: Any) -> None:
        while True:
            if broken[k]:
                raise failed(k)
            try:
                inboxes[k].put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    try:
        for k in range(workers):
            send(k, ix.schema)
        sent = 0
        chunk: list[Mapping[str, Any]] = []
        turn = 0
        for doc in documents:
            chunk.append(doc)
            if len(chunk) == CHUNK:
                send(turn, chunk)
                sent += len(chunk)
                chunk, turn = [], (turn + 1) % workers
        if chunk:
            send(turn, chunk)
            sent += len(chunk)
        for k in range(workers):
            send(k, None)
        for k, thread in enumerate(feeders):
            thread.join()
            if broken[k]:
                raise failed(k)
        written = 0
        for k in range(workers):
            status, value, message = report(k)
            if status == "oserror":
                raise OSError(value, message)
            if status != "ok":
                raise BuildFailed(message)
            written += int(value)
        if written != sent:
            raise BuildFailed(f"the index workers wrote {written} documents of {sent}")
        found = [segment for part in parts for segment in segments_of(str(part), ix.schema)]
        for segment in found:
            for part in parts:
                for path in part.glob(f"{segment.segment_id()}.*"):
                    os.replace(path, folder / path.name)
        adopt_segments(ix, found)
        return written
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for k, thread in enumerate(feeders):
            while thread.is_alive():  # wake it (its worker is dead: it will stop)
                try:
                    inboxes[k].put_nowait(None)
                except queue.Full:
                    try:
                        inboxes[k].get_nowait()
                    except queue.Empty:
                        pass
                thread.join(timeout=0.2)
        for proc in procs:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        for part in parts:
            shutil.rmtree(part, ignore_errors=True)


def serve_part(path: str, stems: str = "", number: int = 0) -> None:
    """(a worker process of `build`) Build segments in a new index at `path` from
    the schema and document chunks pickled on stdin; pickle the outcome to stdout.
    With `stems`, a folder: use the stem tables there and leave this worker's
    (`stems-<number>.pickle`)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    outcome: tuple[str, Any, str]
    try:
        schema = pickle.load(stdin)
        os.makedirs(path)
        builder = SegmentBuilder(create_index(path, schema), stems=StemTable(stems or None))
        while (chunk := pickle.load(stdin)) is not None:
            for doc in chunk:
                builder.add(doc)
        builder.commit()
        if stems:
            builder.save_stems(stems, number)
        outcome = ("ok", builder.documents, "done")
    except EOFError:  # whoever fed us is gone: nothing to report to
        sys.exit(1)
    except OSError as exc:
        outcome = ("oserror", exc.errno, f"{exc.strerror or exc}")
    except BaseException as exc:  # noqa: BLE001 (reported to the parent, which raises it)
        outcome = ("error", None, f"{exc.__class__.__name__}: {exc}")
    try:
        stdout.write(pickle.dumps(outcome))
        stdout.flush()
    except OSError:
        sys.exit(1)