"""The JSON API: the same `SearchPage` as the HTML page, as JSON."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from searchapp.catalog import Catalog
from searchapp.errors import NotFound, SearchappError
from searchapp.models import Item
from searchapp.search import Engine, SearchQuery

bp = Blueprint("api", __name__)


def engine() -> Engine:
    return current_app.extensions["searchapp.engine"]  # type: ignore[no-any-return]


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def query_from_request() -> SearchQuery:
    return SearchQuery.from_params(request.args.to_dict(flat=False))


@bp.get("/api/search")
def search() -> Response:
    return jsonify(engine().search(query_from_request()).to_dict())


def item_or_404(item_id: str) -> Item:
    found = engine().get(item_id)
    if found is None:
        raise NotFound(f"no item with id {item_id!r}")
    return found


@bp.get("/api/items/<path:item_id>")
def item(item_id: str) -> Response:
    found = item_or_404(item_id)
    related = [{**r.item.to_dict(), "score": round(r.score, 4)}
               for r in engine().related(found)]
    return jsonify({**found.to_dict(), "related": related})


@bp.get("/healthz")
def healthz() -> Response | tuple[Response, int]:
    settings = current_app.config["SEARCHAPP"]
    body: dict[str, object] = {"status": "ok"}
    try:
        with Catalog(settings.catalog) as catalog:
            body["items"] = catalog.count()
        body["documents"] = engine().doc_count()
        body["generation"] = engine().generation
    except SearchappError as exc:
        body.update(status="unavailable", problem=str(exc))
        return jsonify(body), 503
    if body["documents"] != body["items"]:
        body["status"] = "degraded"
        body["problem"] = "the index and the catalog disagree; run `searchapp reindex`"
    return jsonify(body), 200
