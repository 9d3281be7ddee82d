"""A real file whose reads fail part-way: one read-only file on a FUSE file system served
by a thread of the test process, answering `EIO` (as a failing disk or a network mount
that went away does) for every read from a given byte on.

The kernel's FUSE protocol is spoken directly on /dev/fuse (no libfuse), and the file
system is mounted with mount(2), so it needs root or CAP_SYS_ADMIN: `faulty_file`
skips the test where mounting is not permitted.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_IN_HEADER = struct.Struct("<IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, …
_OUT_HEADER = struct.Struct("<IiQ")  # len, error, unique
_ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr
_READ_IN = struct.Struct("<QQIIQII")  # fh, offset, size, read_flags, lock_owner, flags, pad
_LOOKUP, _FORGET, _GETATTR, _OPEN, _READ, _RELEASE, _FLUSH, _INIT = 1, 2, 3, 14, 15, 18, 25, 26
_INTERRUPT, _DESTROY, _BATCH_FORGET = 36, 38, 42
_NO_REPLY = (_FORGET, _BATCH_FORGET, _INTERRUPT)
_ROOT, _FILE = 1, 2
_DIRECT_IO = 1  # FOPEN_DIRECT_IO: every read reaches the server, none is served from a cache
_BUFFER = 1 << 20


class _Server:
    """Serves one file, `name`, holding `data`, whose bytes from `fail_at` on fail (EIO)."""

    def __init__(self, fd: int, name: str, data: bytes, fail_at: int) -> None:
        self.fd, self.name, self.data, self.fail_at = fd, name.encode(), data, fail_at
        self.failed_reads = 0

    def serve(self) -> None:
        while True:
            try:
                request = os.read(self.fd, _BUFFER)
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.ENOENT):  # (ENOENT: an interrupted one)
                    continue
                return  # ENODEV: unmounted
            length, opcode, unique, node, *_ = _IN_HEADER.unpack_from(request)
            body = request[_IN_HEADER.size:length]
            if opcode in _NO_REPLY:
                continue
            try:
                error, payload = self.answer(opcode, node, body)
            except Exception:  # noqa: BLE001 (a dead server would leave the reader hanging)
                error, payload = errno.EIO, b""
            with contextlib.suppress(OSError):  # (a request interrupted meanwhile)
                os.write(self.fd, _OUT_HEADER.pack(_OUT_HEADER.size + len(payload), -error,
                                                   unique) + payload)
            if opcode == _DESTROY:
                return

    def answer(self, opcode: int, node: int, body: bytes) -> tuple[int, bytes]:
        if opcode == _INIT:
            (readahead,) = struct.unpack_from("<I", body, 8)  # after major, minor
            # fuse_init_out: major, minor 31, max_readahead, flags, max_background,
            # congestion_threshold, max_write, time_gran, max_pages, map_alignment, …
            return 0, struct.pack("<IIIIHHIIHH", 7, 31, readahead, 0, 16, 12, 1 << 17, 1,
                                  0, 0).ljust(64, b"\0")
        if opcode == _LOOKUP:
            if node != _ROOT or body.rstrip(b"\0") != self.name:
                return errno.ENOENT, b""
            return 0, struct.pack("<QQQQII", _FILE, 0, 0, 0, 0, 0) + self.attr(_FILE)
        if opcode == _GETATTR:
            return 0, struct.pack("<QII", 0, 0, 0) + self.attr(node)
        if opcode == _OPEN:
            return (0, struct.pack("<QIi", 0, _DIRECT_IO, 0)) if node == _FILE \
                else (errno.EISDIR, b"")
        if opcode == _READ:
            _, offset, size, *_ = _READ_IN.unpack_from(body)
            if offset >= self.fail_at and offset < len(self.data):
                self.failed_reads += 1
                return errno.EIO, b""
            return 0, self.data[offset:min(offset + size, self.fail_at)]
        if opcode in (_RELEASE, _FLUSH, _DESTROY):
            return 0, b""
        return errno.ENOSYS, b""

    def attr(self, node: int) -> bytes:
        if node == _FILE:
            mode, size, links = stat.S_IFREG | 0o444, len(self.data), 1
        else:
            mode, size, links = stat.S_IFDIR | 0o555, 0, 2
        return _ATTR.pack(node, size, (size + 511) // 512, 0, 0, 0, 0, 0, 0, mode, links,
                          os.getuid(), os.getgid(), 0, 4096, 0)


@contextlib.contextmanager
def faulty_file(folder: Path, name: str, data: bytes, *, fail_at: int) -> Iterator[Path]:
    """`folder/name` holding `data`, whose reads from byte `fail_at` on fail with EIO,
    for the length of the block (`folder` is made and mounted over)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
    except OSError as exc:
        pytest.skip(f"no FUSE here: {exc}")
    options = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    if libc.mount(b"searchapp-faulty", str(folder).encode(), b"fuse", 0,
                  options.encode()) != 0:
        os.close(fd)
        pytest.skip(f"cannot mount a FUSE file system here: {os.strerror(ctypes.get_errno())}")
    server = _Server(fd, name, data, fail_at)
    thread = threading.Thread(target=server.serve, name="faulty-fs", daemon=True)
    thread.start()
    try:
        yield folder / name
        assert server.failed_reads, "nothing read past the failing byte"
    finally:
        libc.umount2(str(folder).encode(), 2)  # MNT_DETACH: the server then reads ENODEV
        thread.join(timeout=10)
        os.close(fd)
