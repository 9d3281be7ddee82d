"""Admin endpoints: import uploaded files, refresh sources, rebuild the index, follow
the jobs.

Each piece of work is a job (`searchapp.jobs`): the request records it and
answers 202 with where to follow it; the job runs the same code as `searchapp
import`, `searchapp refresh` and `searchapp reindex`, under the same lock, in a process of its
own. The routes exist only while SEARCHAPP_ADMIN_TOKEN is set (404
otherwise) and want `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import time
from pathlib import PurePath

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from searchapp import importers, jobs
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import BadParameter, NotFound, Unauthorised
from searchapp.models import InvalidItem, check_organisation
from searchapp.request import whole_number
from searchapp.urls import BadUrl, absolute_url

bp = Blueprint("admin", __name__, url_prefix="/api/admin")

MAX_WAIT = 600  # seconds a request may ask to wait for its job (`wait`)
MAX_FIELD = 10_000  # characters a form field (not a file) may have
# Fields refused with a shorter limit of their own (and its message) by their route.
OWN_LIMIT = ("organisation",)


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
    _check_fields()


def _check_fields() -> None:
    """Refuse a form field over `MAX_FIELD` characters with a 400 naming it (the
    fields in `OWN_LIMIT` are checked by their route against a shorter limit).

    Werkzeug's own limit (500,000 bytes a field) is lifted here so that it cannot
    answer first with a bare 413 that names nothing; the whole request stays within
    SEARCHAPP_MAX_UPLOAD_BYTES.
    """
    request.max_form_memory_size = _settings().max_upload_bytes
    for name, value in request.form.items(multi=True):
        if len(value) > MAX_FIELD and name not in OWN_LIMIT:
            raise BadParameter(name, f"the field is {len(value):,} characters long; the"
                                     f" limit is {MAX_FIELD:,}")


@bp.post("/imports")
def imports() -> tuple[Response, int, dict[str, str]]:
    """Spool every uploaded file and start one import job for all of them."""
    wait = _wait()
    uploads = [u for u in request.files.getlist("file") if u.filename]
    if not uploads:
        raise BadParameter("file", "upload the file to import as multipart field 'file'")
    unknown = sorted(set(request.files) - {"file"})
    if unknown:
        raise BadParameter(unknown[0], "only 'file' parts are read; send each file as 'file'")
    fmt = request.form.get("format", "auto")
    if fmt not in importers.FORMATS:
        raise BadParameter("format", f"must be one of {', '.join(importers.FORMATS)},"
                                     f" not {fmt!r}")
    organisation = request.form.get("organisation") or None
    if organisation is not None:
        try:
            organisation = check_organisation(organisation) or None
        except InvalidItem as exc:
            raise BadParameter("organisation", str(exc)) from None
    skip = request.form.get("skip_invalid", "false").lower() in ("1", "true", "yes", "on")
    page_url = request.form.get("url") or None
    if page_url:
        try:
            absolute_url(page_url)
        except BadUrl as exc:
            raise BadParameter("url", f"must be an absolute http(s) address: {exc}") from None
    files = []
    seen: dict[str, int] = {}
    for upload in uploads:
        name = f"upload:{PurePath(upload.filename or 'upload').name}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two parts with one file name: keep their problems apart
            name = f"{name}#{seen[name]}"
        files.append((name, upload.stream))
    job = jobs.submit(_settings(), "import", files=files, params={
        "format": fmt, "organisation": organisation, "url": page_url, "skip_invalid": skip})
    return _accepted(job, wait)


@bp.post("/refresh")
def refresh() -> tuple[Response, int, dict[str, str]]:
    """Refresh the sources named by `source` (repeatable, query or form), else the due
    ones, as a job; its result has one entry per source, even when some failed."""
    wait = _wait()
    names = request.args.getlist("source") + request.form.getlist("source")
    if any(not name.strip() for name in names):
        raise BadParameter("source", "a source name must not be empty")
    with Catalog(_settings().catalog, reading=True) as catalog:
        unknown = [name for name in names if catalog.source(name) is None]
    if unknown:
        raise NotFound(f"no source named {unknown[0]!r} (`searchapp sources list` shows them)")
    return _accepted(jobs.submit(_settings(), "refresh", params={"names": names}), wait)


@bp.post("/reindex")
def reindex() -> tuple[Response, int, dict[str, str]]:
    wait = _wait()
    return _accepted(jobs.submit(_settings(), "reindex"), wait)


@bp.get("/jobs")
def job_list() -> Response:
    limit = _whole("limit", default=50, low=1, high=500)
    return jsonify({"jobs": [j.to_dict() for j in jobs.recent(_settings(), limit=limit)]})


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> tuple[Response, int]:
    found = _waited(jobs.get(_settings(), job_id), _wait())
    return jsonify(found.to_dict()), 200


def _accepted(job: jobs.Job, wait: int) -> tuple[Response, int, dict[str, str]]:
    """202 with the job and where to follow it; 200 when `wait` saw it finish."""
    found = _waited(job, wait)
    status = 200 if found.state in jobs.FINISHED else 202
    return jsonify(found.to_dict()), status, {
        "Location": url_for("admin.job", job_id=job.id)}


def _wait() -> int:
    """The `wait` request parameter: seconds to wait for a job to end before answering."""
    return _whole("wait", default=0, low=0, high=MAX_WAIT)


def _waited(job: jobs.Job, wait: int) -> jobs.Job:
    """The job after waiting up to `wait` seconds for it to end."""
    deadline = time.monotonic() + wait
    while job.state not in jobs.FINISHED and time.monotonic() < deadline:
        time.sleep(0.05)
        job = jobs.get(_settings(), job.id)
    return job


def _whole(name: str, *, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    value = whole_number(name, raw)
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}")
    return value
