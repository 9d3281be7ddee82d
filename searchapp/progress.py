"""Showing long work on the terminal: a bar on a terminal, plain lines in a log.

`TerminalProgress` is an `operations.Progress`: the command line hands it to
imports and rebuilds. On a terminal (stderr is a tty) each phase gets a tqdm
bar with counts, rate and an estimate of the time left; anywhere else (a
pipe, cron, systemd's journal) it writes a plain line every few seconds while a
phase runs, and when it ends having done something, such as
``indexing: 400,000/1,000,000 items, 6,100/s`` (a phase with nothing to do, such
as reading a file that is not there, writes none); a phase without counts
(waiting for the lock) is said as it starts. Quiet, it says nothing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Self

LOG_EVERY = 5.0  # seconds between plain progress lines


class TerminalProgress:
    """Draws the phases of an import or rebuild on stderr (see the module docstring)."""

    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None,
                 bar: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.bar = self.stream.isatty() if bar is None else bar
        self._phase: str | None = None
        self._tqdm: Any = None
        self._started = 0.0
        self._logged = 0.0
        self._last: tuple[int | None, int | None] = (None, None)
        self._shown: tuple[int | None, int | None] | None = None  # in the last plain line

    def __call__(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        if self.quiet:
            return
        if phase != self._phase:
            self._end_phase()
            self._phase, self._shown = phase, None
            self._started = self._logged = time.monotonic()
            if done is None and not self.bar:
                self._line(phase, done, total)
        self._last = (done, total)
        if self.bar:
            self._draw(phase, done, total)
        elif done is not None and time.monotonic() - self._logged >= LOG_EVERY:
            self._line(phase, done, total)

    def close(self) -> None:
        """End the last phase (its bar, or its final line)."""
        if not self.quiet:
            self._end_phase()
        self._phase = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self, phase: str, done: int | None, total: int | None) -> None:
        if done is None and total is None:  # nothing to count (waiting, writing): one line
            if self._tqdm is None and self._shown is None:  # (said once)
                self._line(phase, done, total)
            return
        if self._tqdm is None:
            from tqdm import tqdm

            columns, rows = _size(self.stream)
            self._tqdm = tqdm(total=total, desc=phase, unit=f" {_unit(phase)}", file=self.stream,
                              ncols=columns, nrows=rows, mininterval=0.2, leave=True)
        if total is not None and self._tqdm.total != total:
            self._tqdm.total = total
        if done is not None and done > self._tqdm.n:
            if done == total:  # drawn once, as the phase ends (`_end_phase`)
                self._tqdm.n = done
            else:
                self._tqdm.update(done - self._tqdm.n)

    def _line(self, phase: str, done: int | None, total: int | None) -> None:
        self._logged, self._shown = time.monotonic(), (done, total)
        text = phase
        if done is not None:
            text += f": {done:,}" + (f"/{total:,}" if total is not None else "")
            text += f" {_unit(phase)}"
            elapsed = time.monotonic() - self._started
            if done and elapsed > 0.5:
                text += f", {done / elapsed:,.0f}/s"
        print(text, file=self.stream, flush=True)

    def _end_phase(self) -> None:
        if self._phase is None:
            return
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif not self.bar:
            done, total = self._last
            if done and self._shown != self._last:
                self._line(self._phase, done, total)


def _unit(phase: str) -> str:
    return "files" if "files" in phase else "items"


def _size(stream: IO[str]) -> tuple[int, int]:
    """The terminal's columns (at most 120) and rows; 80 x 24 where it reports none (a
    pseudo-terminal nobody sized says 0 x 0, and tqdm then draws nothing)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 80, 24
    return (min(size.columns, 120) if size.columns > 0 else 80,
            size.lines if size.lines > 0 else 24)
