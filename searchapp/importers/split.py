"""A big JSON Lines file read in two processes (#14).

Reading an item (its JSON parsed, the item checked, its language detected)
costs 55-80 µs of CPU: a million items took over a minute in one process while
the other core stayed idle. A file of `SPLIT_FROM` bytes or more is cut at the
first line break from its middle on. A second process, a new Python (not a
fork: the server and the admin jobs run threads, which a fork copies in
whatever state they hold), reads the second half into a `spool.Part` file in
the import's own folder while this process reads the first half into the spool.
The part's records and problems are then appended after the first half's, in
their order, their lines moved on by the first half's lines, and its count and
its language detections join this process's. What comes out is what reading the
file in one process gives: the same records in the same order, the same
problems on the same lines, the same refusal of undecodable input.

A second process that fails or is killed fails the import with nothing stored;
one whose parent is gone stops by itself.
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from searchapp.errors import ReadingFailed, UndecodableInput
from searchapp.importers import jsonl
from searchapp.importers.decode import BINARY, MAX_LINE, text_lines

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed
    from searchapp.importers.spool import Spool

__all__ = ["SPLIT_FROM", "main", "read_in_two"]

# Files smaller than this are read in one process. The second process costs about
# 3.5 s of CPU more than one process spends (starting Python, importing the reading
# code, loading lingua's models again). In interleaved runs at load 6-11 (3 December
# 2026, medians of 3), splitting was slower at 16 MB (40,000 items of the bench
# corpus), even at 24 MB, and faster at 40 MB: 17.0 s against 20.3, and with the
# cheaper reading that came after, 12.3 s against 13.4 (CPU 10.5 s against 7.2).
SPLIT_FROM = 40_000_000
# How far after its middle a line break is looked for: a line longer than this is
# refused anyway (`decode.MAX_LINE` characters, up to 4 bytes each), by one process.
_SEARCH = 4 * MAX_LINE + 8
_POLL = 0.25  # seconds between two looks at the second process while waiting for it
_WATCH_EVERY = 1024  # lines the second process reads between two looks at its parent

log = logging.getLogger(__name__)


def read_in_two(handle: BinaryIO, size: int, parsed: Parsed, hints: Hints,
                spool: Spool) -> bool:
    """Read the JSON Lines file open as `handle` (at its start, `size` bytes)
    into `parsed` and `spool`, taking it, as ``jsonl.parse_lines(text_lines(handle))``
    reads it in one process; False, having read nothing, where it is not split.

    Raises `UndecodableInput` as that reading does, and `ReadingFailed` when the
    second process fails or is killed.
    """
    if size < SPLIT_FROM:
        return False
    if _cpus() < 2 or not sys.executable:
        log.info("reading %s in one process: %s", parsed.source,
                 "no Python to start" if not sys.executable else "only one CPU is available")
        return False
    middle = _line_start_after(handle, size // 2, size)
    handle.seek(0)
    if middle is None:
        log.info("reading %s in one process: no line break within %s bytes after its middle",
                 parsed.source, f"{_SEARCH:,}")
        return False
    # The second process reads the file this one has open, through a descriptor of its own
    # (its own offset): the name may since name another file, or none, and /dev/stdin
    # is the second process's own standard input.
    try:
        own = os.open(f"/proc/self/fd/{handle.fileno()}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        log.info("reading %s in one process: cannot open it a second time (%s)",
                 parsed.source, exc.strerror or exc)
        return False
    job = _Job(fd=own, size=size, start=middle, name=parsed.source, source_url=parsed.source_url,
               language=parsed.language, hints=hints, folder=spool.folder,
               parent=os.getpid())
    started = time.monotonic()
    try:
        first, result, waited = _read_halves(job, handle, parsed, hints, spool)
        read = time.monotonic()
        if result.undecodable is not None:
            line, message = result.undecodable
            spool.read += result.read  # (as one process counts the records before it)
            raise UndecodableInput(line if message == BINARY else line + first.count, message)
        if not (first.text or result.text):
            raise UndecodableInput(1, "file is empty (only whitespace)")
        spool.append(parsed, job.part, line_offset=first.count, read=result.read)
        log.info("read %s in two processes in %.1f s (%.1f s of it waiting for the second);"
                 " its %s records appended in %.1f s", job.name, read - started,
                 waited, f"{result.read:,}", time.monotonic() - read)
    finally:
        os.close(own)
        for each in (job.part, job.counter, job.result):
            each.unlink(missing_ok=True)
    from searchapp import languages  # (loaded by the first item built, not before)

    languages.DETECTIONS.update(result.detections)
    return True


def _read_halves(job: _Job, handle: BinaryIO, parsed: Parsed, hints: Hints, spool: Spool
                 ) -> tuple[_Lines, _Result, float]:
    """Start the second process on the second half, read the first here, and wait for
    the second: the first half's lines, the second's result, and the seconds waited."""
    job.counter.write_bytes(bytes(8))
    process = _start(job)
    log.info("reading %s in two processes: bytes 0 to %s here, the %s after in process %d",
             job.name, f"{job.start:,}", f"{job.size - job.start:,}", process.pid)
    done = False
    with job.counter.open("rb") as file, mmap.mmap(file.fileno(), 8,
                                                    access=mmap.ACCESS_READ) as counter:
        spool.elsewhere = lambda: int.from_bytes(counter[:8], sys.byteorder)
        try:
            first = _Lines(text_lines(handle, end=job.start), lambda: _check(process, job))
            jsonl.parse_lines(first, parsed, hints)
            waiting = time.monotonic()
            result = _result(process, spool, job)
            waited = time.monotonic() - waiting
            done = True
        finally:
            spool.elsewhere = lambda: 0
            _stop(process, done=done)
    return first, result, waited


@dataclass(frozen=True, slots=True)
class _Job:
    """What the second process is to read, and where its records go."""

    fd: int  # a descriptor of the file, its own, passed to it
    size: int  # the file's size when the parent measured it
    start: int  # the byte its half starts at, just after a line break
    name: str
    source_url: str | None
    language: str | None
    hints: Hints
    folder: Path  # the import's spool folder, where its files go
    parent: int  # the process that started it

    @property
    def part(self) -> Path:
        """Its records and problems (`spool.Part`)."""
        return self.folder / "part.db"

    @property
    def counter(self) -> Path:
        """How many records it has read so far: 8 bytes, an integer in this machine's
        byte order, for the reading progress."""
        return self.folder / "part.count"

    @property
    def result(self) -> Path:
        """Its outcome, pickled: ("done", a `_Result`) or ("failed", why)."""
        return self.folder / "part.result"


@dataclass(slots=True)
class _Result:
    """What the second process read, its lines numbered from 1."""

    read: int = 0  # records written to its part
    text: bool = False  # a line held more than whitespace
    undecodable: tuple[int, str] | None = None  # (line, message) where its reading stopped
    detections: dict[str, int] = field(default_factory=dict)


class _Lines:
    """The lines of `lines`, counted, noting whether any held more than whitespace;
    `watch` is called every `_WATCH_EVERY` lines."""

    def __init__(self, lines: Iterator[str], watch: Callable[[], None] | None = None) -> None:
        self._lines = lines
        self._watch = watch
        self.count = 0
        self.text = False

    def __iter__(self) -> Iterator[str]:
        watch = self._watch
        for line in self._lines:
            self.count += 1
            if not self.text and line.strip():
                self.text = True
            if watch is not None and self.count % _WATCH_EVERY == 0:
                watch()
            yield line


_MAIN = "import sys; sys.path[:] = sys.argv[1:]; from searchapp.importers.split import main; main()"


def _start(job: _Job) -> subprocess.Popen[bytes]:
    """The second process: a new Python (no fork: this process may run threads), with
    this one's module search path, in a session of its own (Ctrl-C on a terminal stops
    this process, which ends it), told its job on its standard input."""
    process = subprocess.Popen(
        [sys.executable, "-c", _MAIN, *sys.path],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
        pass_fds=(job.fd,))
    assert process.stdin is not None
    try:
        with process.stdin:
            pickle.dump(job, process.stdin)
    except OSError:  # it ended before it read its job
        process.wait()
        raise _ended(process, job) from None
    return process


def _result(process: subprocess.Popen[bytes], spool: Spool, job: _Job) -> _Result:
    """The second process's result, once it has ended, the reading progress going on
    meanwhile; `ReadingFailed` when it failed or ended without one."""
    reported = -1
    while process.poll() is None:
        if spool.elsewhere() != reported:
            reported = spool.elsewhere()
            spool.report()
        try:
            process.wait(_POLL)
        except subprocess.TimeoutExpired:
            pass
    try:
        outcome, value = pickle.loads(job.result.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError):  # killed, or out of memory
        raise _ended(process, job) from None
    if outcome == "failed":
        log.debug("the process reading the second half of %s failed:\n%s", job.name, value)
        raise ReadingFailed(f"{job.name}: import failed, nothing stored: the process reading"
                            f" the second half of the file (from byte {job.start:,}) failed:"
                            f" {value.strip().splitlines()[-1]}")
    assert isinstance(value, _Result)
    return value


def _check(process: subprocess.Popen[bytes], job: _Job) -> None:
    """Raise `ReadingFailed` if the second process has ended without a result."""
    if process.poll() is not None and not job.result.exists():
        raise _ended(process, job)


def _ended(process: subprocess.Popen[bytes], job: _Job) -> ReadingFailed:
    code = process.returncode
    how = (f"killed by signal {signal.Signals(-code).name}" if code < 0
           else f"exit code {code}")
    return ReadingFailed(
        f"{job.name}: import failed, nothing stored: the process reading the second half of"
        f" the file (from byte {job.start:,}) ended unexpectedly ({how})")


def _stop(process: subprocess.Popen[bytes], *, done: bool) -> None:
    """End the second process unless it is `done` (it ended: the first half failed, or
    this process is being interrupted)."""
    if not done and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


class _ParentGone(Exception):
    """The process that started the second one has ended: no one will take its work."""


def main() -> None:
    """The second process: read its job's half into its part, and leave its outcome,
    ("done", a `_Result`) or ("failed", why), in its result file."""
    job = pickle.load(sys.stdin.buffer)
    outcome: tuple[str, Any]
    try:
        outcome = ("done", _read_half(job))
    except _ParentGone:
        job.part.unlink(missing_ok=True)
        job.counter.unlink(missing_ok=True)
        return
    except sqlite3.Error as exc:  # a full disk, above all
        outcome = ("failed", f"cannot write the import's working file {job.part}: {exc}")
    except Exception:  # noqa: BLE001 (said to the parent, which fails the import)
        outcome = ("failed", traceback.format_exc())
    written = job.result.with_suffix(".tmp")
    try:
        written.write_bytes(pickle.dumps(outcome))
        written.rename(job.result)
    except OSError:  # a full disk: the parent says the second process ended without one
        written.unlink(missing_ok=True)
        sys.exit(1)


def _read_half(job: _Job) -> _Result:
    from searchapp import languages
    from searchapp.importers import Parsed
    from searchapp.importers.spool import Part  # (spool imports the catalog, which imports us)

    with os.fdopen(job.fd, "rb") as handle, job.counter.open("r+b") as file, \
            mmap.mmap(file.fileno(), 8) as counter:
        handle.seek(job.start)
        parsed = Parsed(job.name, source_url=job.source_url, language=job.language)
        with Part(job.part) as part:
            part.take(parsed)

            def watch() -> None:
                if os.getppid() != job.parent:
                    raise _ParentGone
                counter[:8] = part.read.to_bytes(8, sys.byteorder)

            lines = _Lines(text_lines(handle, start=job.start), watch)
            result = _Result()
            try:
                jsonl.parse_lines(lines, parsed, job.hints)
            except UndecodableInput as exc:
                result.undecodable = (exc.line, exc.message)
            part.flush()
        counter[:8] = part.read.to_bytes(8, sys.byteorder)
    result.read, result.text = part.read, lines.text
    result.detections = dict(languages.DETECTIONS)
    return result


def _line_start_after(handle: BinaryIO, offset: int, size: int) -> int | None:
    """Where the line after the first line break from byte `offset` on starts, if that
    break is within `_SEARCH` bytes and another line follows it."""
    handle.seek(offset)
    looked = 0
    while looked < _SEARCH:
        block = handle.read(min(1 << 16, _SEARCH - looked))
        if not block:
            return None
        ends = [at for at in (block.find(b"\n"), block.find(b"\r")) if at >= 0]
        if ends:
            at = offset + looked + min(ends)
            if block[min(ends)] == ord("\r"):
                handle.seek(at + 1)
                if handle.read(1) == b"\n":
                    at += 1  # one break, \r\n
            return at + 1 if at + 1 < size else None
        looked += len(block)
    return None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
