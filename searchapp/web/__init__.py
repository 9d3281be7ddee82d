"""The Flask application factory and what every response shares."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request
from flask_compress import Compress
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header

from searchapp import jobs
from searchapp.config import PACKAGE_DIR, Settings, templates_dir
from searchapp.errors import ImportRejected, SearchappError, UnknownParameters
from searchapp.models import xml_safe
from searchapp.search import Engine
from searchapp.web.admin import bp as admin_bp
from searchapp.web.api import ENCODINGS, error_response
from searchapp.web.api import bp as api_bp
from searchapp.web.exports import bp as exports_bp
from searchapp.web.pages import bp as pages_bp

ENGINE = "searchapp.engine"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask("searchapp", template_folder=str(templates_dir()),
                static_folder=str(PACKAGE_DIR / "static"))
    settings = Settings.load(test_config)
    app.config.from_mapping(SEARCHAPP=settings, MAX_CONTENT_LENGTH=settings.max_upload_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[ENGINE] = Engine.from_settings(settings)
    _tidy_jobs(app, settings)
    app.register_blueprint(pages_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(exports_bp)
    app.after_request(_headers)
    # Text that XML cannot carry (U+FFFE, U+FFFF, control characters) never reaches the
    # Atom feed, even from a catalog written before imports dropped it.
    app.add_template_filter(xml_safe, "xml_text")
    app.config.update(COMPRESS_ALGORITHM=COMPRESSION, COMPRESS_MIMETYPES=COMPRESSED_TYPES)
    app.before_request(_accepted_codings)
    Compress(app)

    @app.errorhandler(SearchappError)
    def _ours(exc: SearchappError) -> Response | tuple[str, int]:
        extra: dict[str, Any] = {}
        if isinstance(exc, ImportRejected):
            extra.update(exc.details())
        if isinstance(exc, UnknownParameters):
            extra.update(unknown=exc.unknown, known=exc.known)
        response = _error(exc.status, exc.code, str(exc), extra)
        if exc.status == 401 and isinstance(response, Response):
            response.headers["WWW-Authenticate"] = 'Bearer realm="searchapp admin"'
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response | tuple[str, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            message = (f"the request is larger than the limit of {settings.max_upload_bytes:,}"
                       " bytes (SEARCHAPP_MAX_UPLOAD_BYTES)")
            length = request.content_length
            if length is not None and length <= settings.max_upload_bytes:
                # Within the byte limit, so Werkzeug's limit on multipart parts refused it.
                message = (f"the upload has more than {app.config['MAX_FORM_PARTS']:,} parts"
                           " (files and fields); send the files in several uploads")
        return _error(exc.code or 500, code, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | tuple[str, int]:
        app.logger.exception("unhandled error on %s", request.path)
        return _error(500, "internal_error", "something went wrong on our side")

    return app


def _tidy_jobs(app: Flask, settings: Settings) -> None:
    """Jobs a restart interrupted are marked failed, and uploads left behind removed
    (`jobs.tidy`); a catalog that cannot be written waits for the next start."""
    try:
        removed = jobs.tidy(settings)
    except (SearchappError, OSError) as exc:
        app.logger.warning("admin jobs not tidied at start: %s", exc)
        return
    if removed:
        app.logger.info("removed %d spooled upload(s) no job waits for", removed)


# Routes read by programs rather than people: their errors are JSON, like the API's.
MACHINE_ROUTES = ("/healthz", "/feed.atom", "/opensearch.xml", "/search.csv", "/search.jsonl")
# Responses are compressed for clients that accept it, brotli first (README: Compression).
COMPRESSION = ["br", "gzip"]
COMPRESSED_TYPES = ["text/html", "text/css", "text/javascript", "application/javascript",
                    "application/json", "application/atom+xml", "image/svg+xml",
                    "application/opensearchdescription+xml", "text/csv", "application/jsonl"]

def _accepted_codings() -> None:
    """Give flask-compress an Accept-Encoding naming only the codings the client accepts:
    it reads `gzip;q=0` ("not gzip") as a wish for gzip when nothing else is wished
    for more, and a `*` as every coding even beside `br;q=0`."""
    header = request.environ.get("HTTP_ACCEPT_ENCODING", "")
    if "q=" in header:  # (without weights flask-compress reads it right)
        request.environ["HTTP_ACCEPT_ENCODING"] = acceptable_codings(header)


def acceptable_codings(header: str) -> str:
    """The Accept-Encoding `header` as the codings of `ENCODINGS` (and `identity`) it
    accepts, each with its weight: those it names with a weight over 0, and those it
    does not name when `*` has one (a weight that is not a number leaves its coding out,
    as Werkzeug reads it)."""
    weights: dict[str, float] = {}
    for value, quality in parse_accept_header(header):  # (the heaviest first)
        weights.setdefault(value.strip().lower(), quality)
    anything = weights.get("*", 0)
    accepted = [f"{coding};q={weight}" for coding in (*ENCODINGS, "identity")
                if (weight := weights.get(coding, 0 if coding == "identity" else anything)) > 0]
    return ", ".join(accepted) or "identity"


# No inline script or style anywhere: everything the page needs is served from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)


# On every response, also on the errors the HTTP server answers itself (searchapp.server).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


# Open CORS for reading the public API (not the admin routes).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match",
    "Access-Control-Expose-Headers": "ETag",
}
_SECURITY = tuple((name.lower(), name, value) for name, value in SECURITY_HEADERS.items())
_CORS = tuple((name.lower(), name, value) for name, value in CORS_HEADERS.items())


def _headers(response: Response) -> Response:
    """Security headers everywhere (unless a route set its own); open CORS for reading
    the public API. (One look at the headers already there, then appends: on every
    response, so it is kept cheap.)"""
    headers = response.headers
    present = {key.lower() for key, _ in headers.items()}
    for lowered, name, value in _SECURITY:
        if lowered not in present:
            headers.add(name, value)
    path = request.path
    if (path.startswith("/api/") and not path.startswith("/api/admin/")) or path == "/healthz":
        for lowered, name, value in _CORS:
            if lowered in present:
                headers[name] = value
            else:
                headers.add(name, value)
    return response


def _error(status: int, code: str, message: str,
           extra: dict[str, Any] | None = None) -> Response | tuple[str, int]:
    """The JSON error shape for programs (the API, health, the feed), an HTML page for people."""
    if request.path.startswith("/api/") or request.path in MACHINE_ROUTES:
        return error_response(status, code, message, extra)
    return render_template("error.html", status=status, message=message), status
