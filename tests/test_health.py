"""Health checks open what searches need; damaged index files answer 503 or fall back
(#11, finding 5). Each test damages the real files of a live generation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import Cli, app_over

from searchapp.config import Settings
from searchapp.engine import FALLBACKS, arrayfile
from searchapp.engine.arrayfile import DAMAGED
from searchapp.indexer import IndexStore

PHRASE = '"social economy"'


def live_file(settings: Settings, suffix: str) -> Path:
    gen = IndexStore(settings.index_dir).current()
    assert gen is not None
    (found,) = [p for p in gen.path.iterdir() if p.name.endswith(suffix)]
    return found


def hits(client: object, q: str) -> list[str]:
    response = client.get("/api/search", query_string={"q": q})  # type: ignore[attr-defined]
    assert response.status_code == 200, response.get_json()
    return [hit["id"] for hit in response.get_json()["hits"]]


@pytest.mark.parametrize("suffix", ["._stored.col", ".trm", ".pst"])
def test_a_missing_segment_file_answers_503_with_the_reason_everywhere(
        samples: Settings, cli: Cli, suffix: str) -> None:
    with app_over(samples) as app:
        some_id = hits(app.test_client(), "cooperative")[0]
    missing = live_file(samples, suffix)
    missing.unlink()
    reason = f"the index is damaged: {missing.name} is missing; run `searchapp reindex`"
    with app_over(samples) as app:  # a worker started after the damage
        client = app.test_client()
        response = client.get("/api/search?q=cooperative")
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert error["code"] == "index_unavailable" and error["message"].startswith(reason)
        health = client.get("/healthz")
        assert health.status_code == 503
        body = health.get_json()
        assert body["status"] == "unavailable" and body["problem"].startswith(reason)
        page = client.get("/?q=cooperative")
        assert page.status_code == 503 and b"Traceback" not in page.data
        assert client.get(f"/api/items/{some_id}").status_code == 503
    result = cli("search", "cooperative")
    assert result.exit_code == 1 and reason in result.output
    result = cli("stats", "--json")
    assert result.exit_code == 0 and reason in json.loads(result.stdout)["index_problem"]
    assert cli("reindex", "-q").exit_code == 0
    with app_over(samples) as app:
        assert app.test_client().get("/healthz").get_json()["status"] == "ok"


def damage(path: Path, *, where: str) -> None:
    """Random bytes over part of an arrays file: its header, or its arrays."""
    data = bytearray(path.read_bytes())
    rng = random.Random(11)
    span = range(20, 400) if where == "header" else range(len(data) - 3_000, len(data) - 16)
    for at in span:
        data[at] = rng.randrange(256)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "arrays"])
def test_random_bytes_in_an_arrays_file_fall_back_counted_and_show_in_health(
        samples: Settings, cli: Cli, where: str) -> None:
    with app_over(samples) as app:
        client = app.test_client()
        before = {q: hits(client, q) for q in (PHRASE, "cooperative", "housing OR energy")}
        assert before[PHRASE]
        FALLBACKS.clear()
        damage(live_file(samples, ".arrays"), where=where)  # while this worker serves
        after = {q: hits(client, q) for q in before}
        assert after == before  # the same answers, from Whoosh's postings
        health = client.get("/healthz")
        assert health.status_code == 200
        body = health.get_json()
        assert body["status"] == "degraded"
        assert ".arrays is damaged (" in body["problem"]
        assert "searches of those segments read Whoosh's postings instead" in body["problem"]
        assert body["engine"]["fallbacks"][DAMAGED] >= 1
        assert body["checked"]["arrays"] == 0 and body["checked"]["segments"] == 1
    result = cli("stats", "--json")
    assert ".arrays is damaged" in json.loads(result.stdout)["index_problem"]
    assert cli("reindex", "-q").exit_code == 0
    with app_over(samples) as app:
        body = app.test_client().get("/healthz").get_json()
        assert body["status"] == "ok" and body["checked"]["arrays"] == 1


def test_healthz_reports_what_it_checked(samples: Settings) -> None:
    with app_over(samples) as app:
        body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["checked"]["segments"] == 1 and body["checked"]["arrays"] == 1
    assert body["checked"]["files"] >= 4


def test_any_flipped_byte_or_cut_of_an_arrays_file_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    fields = {"title": {"terms": ["a", "b", "c"],
                        "starts": np.asarray([0, 2, 3, 5], dtype=np.int64),
                        "ids": np.asarray([0, 4, 2, 1, 3], dtype=np.int32),
                        "weights": rng.random(5).astype(np.float32),
                        "freqs": np.asarray([1, 2, 1, 1, 3], dtype=np.int32),
                        "positions": np.arange(8, dtype=np.int32),
                        "position_starts": np.asarray([0, 3, 4, 8], dtype=np.int64)}}
    arrayfile.write_arrays(str(tmp_path), "seg", 5, fields)
    path = tmp_path / "seg.arrays"
    good = path.read_bytes()
    assert arrayfile.verify(str(path), 5) is None
    assert arrayfile.verify(str(path), 6) is not None  # another segment's file
    for at in range(len(good)):
        bad = bytearray(good)
        bad[at] ^= 0x5A
        path.write_bytes(bytes(bad))
        assert arrayfile.verify(str(path), 5) is not None, f"byte {at} flipped unnoticed"
    for size in (0, 10, len(good) // 2, len(good) - 1):
        path.write_bytes(good[:size])
        assert arrayfile.verify(str(path), 5) is not None
        assert arrayfile.open_arrays(str(path), 5) is None


def test_a_stored_column_cut_short_while_serving_answers_503_with_the_reason(
        samples: Settings) -> None:
    # The page's items are read from the column file directly (`segments.StoredFields`):
    # a file cut short under a serving worker is an error the health check explains,
    # never a crash of the worker.
    with app_over(samples) as app:
        client = app.test_client()
        assert hits(client, "cooperative")
        column = live_file(samples, "._stored.col")
        with column.open("r+b") as fh:
            fh.truncate(100)
        response = client.get("/api/search?q=cooperative")
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert error["code"] == "index_unavailable"
        assert error["message"].startswith("the index is damaged")
        assert client.get("/healthz").status_code == 503
