"""Admin endpoints: token, upload import, reindex, limits, the shared lock."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from searchapp import create_app
from searchapp.config import Settings
from searchapp.indexer import IndexStore

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSONL = b'{"id": "n1", "title": "Platform cooperatives meet in Berlin", "date": "2018-05-01"}\n' \
        b'{"id": "n2", "title": "Housing cooperatives report", "date": "2018-06-01"}\n'


@pytest.fixture
def admin_app(samples: Settings) -> Iterator[Flask]:
    app = create_app({"catalog": samples.catalog, "index_dir": samples.index_dir,
                      "admin_token": TOKEN, "max_upload_bytes": 4096, "lock_timeout": 0.2})
    yield app
    app.extensions["searchapp.engine"].close()


@pytest.fixture
def admin(admin_app: Flask) -> FlaskClient:
    return admin_app.test_client()


def upload(client: FlaskClient, data: bytes, name: str = "new.jsonl",
           headers: dict[str, str] | None = None, **form: str) -> tuple[int, dict]:
    response = client.post("/api/admin/imports", headers=AUTH if headers is None else headers,
                           data={"file": (io.BytesIO(data), name), **form},
                           content_type="multipart/form-data")
    return response.status_code, response.get_json()


def total(client: FlaskClient) -> int:
    return client.get("/api/search").get_json()["total"]  # type: ignore[no-any-return]


def test_admin_routes_are_404_without_a_configured_token(client: FlaskClient) -> None:
    for path in ("/api/admin/imports", "/api/admin/reindex"):
        response = client.post(path, headers=AUTH)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
])
def test_wrong_or_missing_token_is_401_and_changes_nothing(admin: FlaskClient,
                                                          headers: dict[str, str]) -> None:
    status, body = upload(admin, JSONL, headers=headers, organisation="ILO")
    assert status == 401 and body["error"]["code"] == "unauthorised"
    response = admin.post("/api/admin/reindex", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert total(admin) == 35


def test_upload_imports_and_reports(admin: FlaskClient) -> None:
    status, body = upload(admin, JSONL, organisation="ICA")
    assert status == 200
    assert body == {"added": 2, "updated": 0, "unchanged": 0, "skipped": 0, "index": "updated",
                    "errors": []}
    found = admin.get("/api/search?q=housing").get_json()
    assert found["total"] == 1 and found["hits"][0]["organisation"] == "ICA"
    assert admin.get("/api/items/n1").get_json()["source"] == "upload:new.jsonl"
    again = upload(admin, JSONL, organisation="ICA")[1]
    assert (again["added"], again["unchanged"]) == (0, 2)


def test_upload_in_each_format(admin: FlaskClient) -> None:
    csv = b"id,title,date\nc1,Worker cooperatives in Spain,2019-01-02\n"
    assert upload(admin, csv, "items.csv", organisation="CECOP")[1]["added"] == 1
    page = (b"Our news\n\n1. News\n\n   Cooperatives and climate\n\n   3 March 2020\n\n"
            b"2. Event\n\n   Webinar on housing cooperatives\n")
    assert upload(admin, page, "listing.txt", organisation="ICA", format="listing")[1][
        "added"] == 2
    assert total(admin) == 38


def test_invalid_upload_is_400_with_every_problem_and_writes_nothing(admin: FlaskClient) -> None:
    bad = b'{"id": "a", "title": "Fine"}\n{"id": "b", "title": ""}\n{oops\n'
    status, body = upload(admin, bad, "bad.jsonl", organisation="ILO")
    assert status == 400 and body["error"]["code"] == "invalid_import"
    assert [(p["source"], p["line"]) for p in body["error"]["problems"]] == [
        ("upload:bad.jsonl", 2), ("upload:bad.jsonl", 3)]
    assert "upload:bad.jsonl:2: title is missing or blank" in body["error"]["message"]
    assert total(admin) == 35
    status, body = upload(admin, bad, "bad.jsonl", organisation="ILO", skip_invalid="true")
    assert status == 200 and body["added"] == 1 and len(body["errors"]) == 2


def test_bad_form_values_are_400(admin: FlaskClient) -> None:
    assert upload(admin, JSONL, format="xml")[0] == 400
    response = admin.post("/api/admin/imports", headers=AUTH, data={},
                          content_type="multipart/form-data")
    assert response.status_code == 400 and "file" in response.get_json()["error"]["message"]


def test_uploads_over_the_limit_are_413(admin: FlaskClient) -> None:
    status, body = upload(admin, b"x" * 10_000, "big.jsonl", organisation="ILO")
    assert status == 413 and "4,096 bytes" in body["error"]["message"]
    assert total(admin) == 35


def test_reindex_swaps_generation(admin: FlaskClient, samples: Settings) -> None:
    response = admin.post("/api/admin/reindex", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["generation"] == "gen-000002" and body["documents"] == 35
    assert admin.get("/healthz").get_json()["generation"] == "gen-000002"


def test_busy_lock_is_409_for_http(admin: FlaskClient, samples: Settings) -> None:
    with IndexStore(samples.index_dir).lock():
        response = admin.post("/api/admin/reindex", headers=AUTH)
        status, body = upload(admin, JSONL, organisation="ILO")
    assert response.status_code == 409 and status == 409
    assert "another import or rebuild is running" in body["error"]["message"]
    assert total(admin) == 35


def test_admin_is_not_open_to_cross_origin_reads(admin: FlaskClient) -> None:
    response = admin.post("/api/admin/reindex", headers=AUTH)
    assert "Access-Control-Allow-Origin" not in response.headers
