"""The index lock: one import or rebuild at a time, across processes.

A `flock` on ``.lock`` in the index directory, released by the kernel if its
holder dies. Standard library only, so that a queued admin job can wait for
it in a small process, before it loads the importers or reads its upload
(`searchapp.jobs`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from searchapp.errors import Busy, IndexUnavailable

LOCK = ".lock"
# The phase while another import or rebuild holds the lock.
WAITING = "waiting for other imports or rebuilds to finish"


@contextlib.contextmanager
def hold(root: Path, *, timeout: float = 5.0,
         waiting: Callable[[], object] | None = None) -> Iterator[None]:
    """Hold the lock of the index directory `root`, waiting up to `timeout` seconds for
    it (then `Busy`). `waiting` is called once when the lock is busy, before waiting."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise IndexUnavailable(f"cannot write to the index directory {root}:"
                               f" {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waiting is not None:
                    waiting()
                    waiting = None
                if time.monotonic() >= deadline:
                    raise Busy("another import or rebuild is running; try again when it"
                               " has finished") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def held(root: Path) -> bool:
    """Whether an import or rebuild holds the lock of the index directory `root` now. A
    look (a shared lock tried and let go at once): an import asking for the lock at that
    moment waits one more poll; nothing is written."""
    try:
        fd = os.open(root / LOCK, os.O_RDONLY)
    except OSError:  # no lock file: nothing ever held it (or it cannot be read: say not)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
