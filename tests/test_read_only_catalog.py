"""A catalog that cannot be written (a read-only disk or mount): reading goes on.

Searching, the search page, item pages and health need no writes, so they answer
200; what must write (an admin import, rebuild or refresh) answers 503 with the
JSON error shape saying why. The tests run as root, for whom permissions are no
obstacle, so the catalog's folder is bind-mounted read-only (skipped where that is
not permitted).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from conftest import app_over, read_only
from flask.testing import FlaskClient

from searchapp.config import Settings

TOKEN = "read-only-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["folder", "file"])
def client(samples: Settings, request: pytest.FixtureRequest) -> Iterator[FlaskClient]:
    """The app over data/samples with the catalog's folder, or only the catalog file,
    read-only."""
    where = samples.catalog.parent if request.param == "folder" else samples.catalog
    with read_only(where), app_over(samples, admin_token=TOKEN) as app:
        yield app.test_client()


def test_searching_and_reading_answer_200(client: FlaskClient) -> None:
    found = client.get("/api/search?q=cooperatives").get_json()
    assert found["total"] > 0
    item = found["hits"][0]["id"]
    for path in ("/", "/?q=cooperatives", f"/items/{item}", f"/api/items/{item}",
                 "/feed.atom", "/search.csv?q=cooperatives"):
        response = client.get(path)
        body = response.get_data(as_text=True)  # read whole, as a client does (an export
        # left unread would keep its snapshot's files open until garbage collection)
        assert response.status_code == 200, (path, body[:500])
    assert "cooperative" in client.get("/?q=cooperatives").get_data(as_text=True).lower()
    assert client.get(f"/api/items/{item}").get_json()["id"] == item
    assert client.get("/items/no-such-item").status_code == 404


def test_health_says_the_catalog_cannot_be_written(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    health = response.get_json()
    assert health["status"] == "degraded" and health["items"] == 35
    assert "cannot be written" in health["problem"]


def test_what_must_write_is_a_503_saying_why(client: FlaskClient) -> None:
    for response in (
            client.post("/api/admin/reindex", headers=AUTH),
            client.post("/api/admin/refresh", headers=AUTH),
            client.post("/api/admin/imports", headers=AUTH, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(b'{"title": "x"}\n'), "a.jsonl"),
                              "organisation": "ILO"})):
        assert response.status_code == 503, response.get_json()
        error = response.get_json()["error"]
        assert error["code"] == "read_only"
        assert "cannot be written" in error["message"] and "searching and reading go on" \
            in error["message"]
    assert client.get("/api/admin/jobs", headers=AUTH).get_json() == {"jobs": []}
