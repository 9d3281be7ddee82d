"""Serving the app with gunicorn from `searchapp serve`.

Workers are gevent workers (`Worker` below): a connection still sending its
request head costs a greenlet, not a whole worker, so slow or stalled clients
cannot starve everyone else (gunicorn's own advice for serving without a
buffering proxy). Each worker holds at most `WORKER_CONNECTIONS` connections,
and a connection that has not delivered a complete request head within
`HEAD_TIMEOUT` seconds (also between keep-alive requests) is closed.

Errors gunicorn answers itself, before the app sees a request (a malformed
request line or header, a URI or header over the limits, a worker timeout),
use the app's JSON error shape and security headers instead of gunicorn's
bare HTML page.
"""

from __future__ import annotations

import json
from typing import Any

import gevent
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

# Seconds a connection has to deliver each complete request head.
HEAD_TIMEOUT = 10
# Connections one worker holds open at once; more wait in the listen backlog.
WORKER_CONNECTIONS = 500


def error_answer(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP response in the app's JSON error shape, with its security headers."""
    from searchapp.web import SECURITY_HEADERS

    code = reason.lower().replace(" ", "_")
    if status == 500:  # an error of ours, whose details belong in the log only
        code, message = "internal_error", "something went wrong on our side"
    body = json.dumps({"error": {"code": code, "message": message or reason}},
                      ensure_ascii=False).encode("utf-8")
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close",
            "Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in SECURITY_HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, error_answer(status_int, reason, mesg))


class Worker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with a deadline per request head and JSON error answers."""

    def init_process(self) -> None:
        # gunicorn writes its own error answers with util.write_error and has no
        # setting for their shape; this worker process writes ours instead.
        util.write_error = _write_error
        super().init_process()

    def handle_abort(self, sig: int, frame: Any) -> None:
        # The arbiter's timeout signal. One heartbeat first, so the arbiter gives
        # this worker time to answer 500 before it escalates to SIGKILL.
        self.notify()
        super().handle_abort(sig, frame)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        # GeventWorker drops a request ended by the worker timeout (SIGABRT raises
        # SystemExit) without a word; the async base class lets it reach handle_error,
        # which answers 500 when nothing has been sent yet.
        try:
            return AsyncWorker.handle_request(self, listener_name, req, sock, addr)
        except gevent.GreenletExit:
            return None

    def timeout_ctx(self) -> Any:
        # gunicorn reads every request head (the first one too) inside this.
        return gevent.Timeout(HEAD_TIMEOUT, False)


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn 27 opens a control socket in $HOME/.gunicorn, one path that every
        # server of the user shares (the last to exit removes it); nothing here uses it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        from searchapp import create_app
        from searchapp.web import ENGINE

        app = create_app()
        app.extensions[ENGINE].warm()  # each worker warms the live generation as it starts
        app.extensions[ENGINE].watch()  # and opens the next one when it is swapped in
        return app


def run(*, host: str, port: int, workers: int) -> None:
    _Server({
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "searchapp.server.Worker",
        "worker_connections": WORKER_CONNECTIONS,
        # Non-zero so gunicorn reads each request head under `Worker.timeout_ctx`.
        "keepalive": HEAD_TIMEOUT,
        "accesslog": "-",
        "timeout": 60,
        "graceful_timeout": 10,
    }).run()
