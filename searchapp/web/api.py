"""The JSON API: the same `SearchPage` as the HTML page, as JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, make_response, request

from searchapp.catalog import Catalog
from searchapp.engine import Budget
from searchapp.errors import (
    BadParameter,
    IndexUnavailable,
    NotFound,
    SearchappError,
    UnknownParameters,
)
from searchapp.models import Item
from searchapp.operations import sync_problem
from searchapp.request import (
    DEFAULT_FACET_SIZE,
    MAX_FACET_SIZE,
    PARAMETERS,
    did_you_mean,
    utc_today,
    whole_number,
)
from searchapp.search import MAX_QUERY_CHARS, Engine, SearchQuery
from searchapp.web.openapi import openapi as openapi_document

bp = Blueprint("api", __name__)
# Every coding flask-compress may answer in (COMPRESSION, and for a stream its own):
# the suffixes it gives ETags, and what an Accept-Encoding is read for.
ENCODINGS = ("br", "gzip", "zstd", "deflate")


def engine() -> Engine:
    return current_app.extensions["searchapp.engine"]  # type: ignore[no-any-return]


def error_response(status: int, code: str, message: str,
                   extra: dict[str, Any] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, **(extra or {})}})
    response.status_code = status
    return response


# What /api/search understands: the search's parameters and the facets' length.
API_PARAMETERS = (*PARAMETERS, "facet_size")


def query_from_request() -> SearchQuery:
    return SearchQuery.from_params(request.args.to_dict(flat=False))


def only_known(known: tuple[str, ...]) -> None:
    """A 400 naming the parameters a route does not know, and listing those it does (a
    misspelt filter silently ignored would answer a different question)."""
    unknown = [name for name in request.args if name not in known]
    if unknown:
        hints = [f"{name} (did you mean {guess}?)" if guess else name
                 for name, guess in ((n, did_you_mean(n, known)) for n in unknown)]
        raise UnknownParameters(unknown, known, f"unknown parameter{'s' * (len(unknown) > 1)}"
                                                f" {', '.join(hints)}; known parameters:"
                                                f" {', '.join(known)}")


def facet_size() -> int:
    raw = request.args.get("facet_size", "").strip()
    if not raw:
        return DEFAULT_FACET_SIZE
    size = whole_number("facet_size", raw)
    if not 1 <= size <= MAX_FACET_SIZE:
        raise BadParameter("facet_size", f"must be between 1 and {MAX_FACET_SIZE}")
    return size


def item_or_404(item_id: str) -> Item:
    """The item from the catalog, the source of truth (it has fields the index does not keep)."""
    with Catalog(current_app.config["SEARCHAPP"].catalog, reading=True) as catalog:
        found = catalog.get(item_id)
    if found is None:
        raise NotFound(f"no item with id {item_id!r}")
    return found


def revalidated(view: Callable[..., Any]) -> Callable[..., Response]:
    """An ETag tied to the index version and the request; a 304 when it still holds.

    The answer is checked before the view runs, so a revalidation costs no search.
    """
    return revalidated_with(None)(view)


def revalidated_with(stamp: Callable[[], str] | None
                     ) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """`revalidated`, with `stamp()` in the ETag too: what else the page shows that can
    change while the index does not."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            # The tag and the answer from one state of the index (one freshness check).
            found = engine()
            with found.one_look():
                key = f"{found.version()}|{request.full_path}"
                if "past" in request.args:  # "the past week" moves on every day
                    key += f"|{utc_today().isoformat()}"
                if stamp is not None:
                    key += f"|{stamp()}"
                tag = hashlib.sha256(key.encode()).hexdigest()[:24]
                # Compression appends the encoding to the tag ("…:br"); such a tag holds.
                # (The header is parsed only when sent: most requests send none.)
                held = next((t for t in (tag, *(f"{tag}:{c}" for c in ENCODINGS))
                             if t in request.if_none_match), None) \
                    if "HTTP_IF_NONE_MATCH" in request.environ else None
                if held is not None:
                    response = Response(status=304)
                    response.set_etag(held)
                else:
                    response = make_response(view(*args, **kwargs))
                    response.set_etag(tag)
            response.headers["Cache-Control"] = "public, no-cache"
            return response

        return wrapper

    return decorate


@bp.get("/api/search")
@revalidated
def search() -> Response:
    only_known(API_PARAMETERS)
    size = facet_size()
    return search_json(engine().search(query_from_request()).to_dict(facet_size=size))


def search_json(body: dict[str, Any]) -> Response:
    """The `/api/search` body exactly as `jsonify` writes it (compact, keys in their
    order, text as UTF-8 rather than escaped, a newline after), written by orjson in
    an eighth of the time. The two agree on everything this body holds; they would not
    on floats under 0.0001, and its only floats are scores rounded to 4 places."""
    return current_app.response_class(orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE),
                                      content_type="application/json")


@bp.get("/api/items/<path:item_id>")
@revalidated
def item(item_id: str) -> Response:
    found = item_or_404(item_id)
    budget = Budget(engine().time_budget)
    related = [{**r.item.to_dict(), "score": round(r.score, 4)}
               for r in engine().related(found, budget=budget)]
    return jsonify({**found.to_dict(), "related": related, "related_partial": budget.cut})


@bp.get("/api/suggest")
def suggest() -> Response:
    text = request.args.get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise BadParameter("q", f"is {len(text)} characters long; the limit is"
                                f" {MAX_QUERY_CHARS}")
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "opensearch"):
        raise BadParameter("format", f"must be json or opensearch, not {fmt!r}")
    completions = engine().complete(text)
    body: Any = [text, completions] if fmt == "opensearch" else {
        "query": text, "suggestions": completions}
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/api/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.get("/healthz")
def healthz() -> Response | tuple[Response, int]:
    """What searches need, checked: the catalog opens, the live generation opens with
    every segment's files readable and its posting arrays intact, and it holds what the
    catalog holds (by the catalog change and fingerprint it records, not by count)."""
    settings = current_app.config["SEARCHAPP"]
    body: dict[str, object] = {"status": "ok"}
    try:
        with Catalog(settings.catalog, reading=True) as catalog:
            body["items"] = catalog.count()
            documents = engine().doc_count()
            body["documents"] = documents
            body["generation"] = engine().generation
            body["engine"] = engine().stats()
            checked = engine().check()
            body["checked"] = checked.to_dict()
            if checked.broken:
                raise IndexUnavailable(str(checked.problem()))
            lagging = checked.problem() or sync_problem(engine().store, catalog, documents)
            if lagging is None and catalog.read_only:
                lagging = (f"the catalog {catalog.path} cannot be written: searches and pages"
                           " are answered, but imports, refreshes and rebuilds fail (503)")
    except SearchappError as exc:
        current_app.logger.error("health check: %s", str(exc))
        body.update(status="unavailable", problem=str(exc))
        return jsonify(body), 503
    if lagging is not None:
        current_app.logger.warning("health check: %s", lagging)
        body.update(status="degraded", problem=lagging)
    return jsonify(body), 200
