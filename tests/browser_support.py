"""Serving the app with real gunicorn and driving Debian's Chromium, for tests/test_browser.py.

No browser download: Playwright launches the system Chromium (`apt-get install chromium`).
Without one the browser tests skip, except in CI (`CI` set), where that is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from searchapp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
START_TIMEOUT = 30.0  # seconds for gunicorn to answer /healthz
STOP_TIMEOUT = 10.0


def chromium_path() -> str:
    """The system Chromium (`CHROMIUM_PATH` to use another); skips without one, fails in CI."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    missing(f"no Chromium at {path} (apt-get install chromium)")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(why: str) -> NoReturn:
    """A browser test cannot run: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(f"{why}; CI must run the browser tests", pytrace=False)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(settings: Settings, log: Path, **environ: str) -> Iterator[str]:
    """`searchapp:create_app()` under gunicorn on a free loopback port (with `environ`
    added to its environment); yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHAPP_")}
    env.update(SEARCHAPP_CATALOG=str(settings.catalog), SEARCHAPP_INDEX_DIR=str(settings.index_dir))
    env.update(environ)
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
             "--graceful-timeout", "5", "searchapp:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(base, process, log)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    pytest.fail(f"gunicorn did not serve {base}/healthz:\n"
                + log.read_text(encoding="utf-8", errors="replace")[-4000:], pytrace=False)


@dataclass
class Watch:
    """What one page did: console errors, uncaught exceptions, every request it made."""

    origin: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # substrings of errors a test expects

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", self._failed)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} at {message.location.get('url')}")

    def _failed(self, request: Any) -> None:
        if request.failure != "net::ERR_ABORTED":  # a load cut short by the next navigation
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests
                if not (u == self.origin or u.startswith((self.origin + "/", "data:")))]


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium launched headless through Playwright (a Browser); a broken
    install skips the tests, or fails them in CI."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            missing(f"Chromium at {executable} did not start: {exc}")
        yield launched
        launched.close()
