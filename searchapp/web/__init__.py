"""The Flask application factory and what every response shares."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from searchapp.config import Settings, templates_dir
from searchapp.errors import SearchappError
from searchapp.indexer import IndexStore
from searchapp.search import Engine
from searchapp.web.api import bp as api_bp
from searchapp.web.api import error_response
from searchapp.web.pages import bp as pages_bp

ENGINE = "searchapp.engine"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask("searchapp", template_folder=str(templates_dir()))
    settings = Settings.load(test_config)
    app.config.from_mapping(SEARCHAPP=settings, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[ENGINE] = Engine(IndexStore(settings.index_dir))
    app.register_blueprint(pages_bp)
    app.register_blueprint(api_bp)

    @app.errorhandler(SearchappError)
    def _ours(exc: SearchappError) -> Response | tuple[str, int]:
        return _error(exc.status, exc.code, str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response | tuple[str, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | tuple[str, int]:
        app.logger.exception("unhandled error on %s", request.path)
        return _error(500, "internal_error", "something went wrong on our side")

    return app


def _error(status: int, code: str, message: str) -> Response | tuple[str, int]:
    from flask import render_template

    if request.path.startswith("/api/") or request.path == "/healthz":
        return error_response(status, code, message)
    return render_template("error.html", status=status, message=message), status
