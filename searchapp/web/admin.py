"""Admin endpoints: import an uploaded file, refresh sources, rebuild the index.

They run the same code as `searchapp import`, `searchapp refresh` and
`searchapp reindex`, under
the same lock. They exist only while SEARCHAPP_ADMIN_TOKEN is set (404
otherwise) and want `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from pathlib import PurePath

from flask import Blueprint, Response, current_app, jsonify, request

from searchapp import importers, operations
from searchapp import refresh as refreshing
from searchapp.config import Settings
from searchapp.errors import BadParameter, NotFound, Unauthorised

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


def _settings() -> Settings:
    return current_app.config["SEARCHAPP"]  # type: ignore[no-any-return]


@bp.before_request
def _authorise() -> None:
    token = _settings().admin_token
    if not token:
        raise NotFound("admin routes are off (SEARCHAPP_ADMIN_TOKEN is not set)")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise Unauthorised("a valid 'Authorization: Bearer <token>' header is required")


@bp.post("/imports")
def imports() -> tuple[Response, int]:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadParameter("file", "upload the file to import as multipart field 'file'")
    fmt = request.form.get("format", "auto")
    if fmt not in importers.FORMATS:
        raise BadParameter("format", f"must be one of {', '.join(importers.FORMATS)},"
                                     f" not {fmt!r}")
    skip = request.form.get("skip_invalid", "false").lower() in ("1", "true", "yes", "on")
    name = f"upload:{PurePath(upload.filename).name}"
    parsed = importers.parse_bytes(
        upload.read(), name=name, fmt=fmt,
        hints=importers.Hints(organisation=request.form.get("organisation") or None))
    outcome = operations.import_parsed(_settings(), [parsed], skip_invalid=skip)
    return jsonify(outcome.to_dict()), 200


@bp.post("/refresh")
def refresh() -> tuple[Response, int]:
    """Refresh the sources named by `source` (repeatable, query or form), else the due ones.

    200 with one result per source even when some failed (`failed` counts them).
    """
    names = request.args.getlist("source") + request.form.getlist("source")
    if any(not name.strip() for name in names):
        raise BadParameter("source", "a source name must not be empty")
    return jsonify(refreshing.refresh(_settings(), names).to_dict()), 200


@bp.post("/reindex")
def reindex() -> tuple[Response, int]:
    return jsonify(operations.rebuild(_settings()).to_dict()), 200
