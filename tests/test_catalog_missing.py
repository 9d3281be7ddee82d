"""A catalog that goes missing while the service runs (moved away, deleted, a mount
gone) is never replaced by an empty one.

What only reads (pages, item pages, the feed, exports, /healthz, the jobs list,
`searchapp stats`) opens the catalog without creating it: /healthz answers 503
saying the catalog is missing and how to get it back, item pages and the APIs
that need the catalog answer 503 (the JSON error shape, an HTML page for
people), and searching goes on from the index. A first import still makes it.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES, Cli, app_over
from flask.testing import FlaskClient

from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import CatalogMissing

TOKEN = "catalog-missing-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RECOVERY = ("restore it from a backup", "searchapp recover")


@pytest.fixture
def client(samples: Settings) -> Iterator[FlaskClient]:
    """The app serving data/samples, its catalog file moved away once it serves (put
    back when the test has looked)."""
    with app_over(samples, admin_token=TOKEN) as app:
        yield app.test_client()


def move_away(settings: Settings) -> Path:
    away = settings.catalog.with_name("moved-away.sqlite3")
    shutil.move(settings.catalog, away)
    return away


def an_item(client: FlaskClient) -> str:
    found = client.get("/api/search?q=cooperatives").get_json()
    assert found["total"] > 0
    return str(found["hits"][0]["id"])


def says_missing(message: str, settings: Settings) -> None:
    assert f"the catalog {settings.catalog} is missing" in message
    for words in RECOVERY:
        assert words in message, message


def test_reading_never_makes_an_empty_catalog(client: FlaskClient, samples: Settings) -> None:
    item = an_item(client)
    move_away(samples)
    for path in ("/?q=cooperatives", "/", "/healthz", "/feed.atom", "/search.csv?q=coop",
                 "/search.jsonl?q=coop", f"/items/{item}", f"/api/items/{item}",
                 "/api/search?q=cooperatives", "/api/admin/jobs", "/api/admin/jobs/abc"):
        client.get(path, headers=AUTH)
        assert not samples.catalog.exists(), f"{path} made a catalog"
    assert not [p.name for p in samples.catalog.parent.iterdir()
                if p.name == samples.catalog.name]


def test_health_says_the_catalog_is_missing_and_how_to_get_it_back(
        client: FlaskClient, samples: Settings) -> None:
    away = move_away(samples)
    response = client.get("/healthz")
    assert response.status_code == 503
    health = response.get_json()
    assert health["status"] == "unavailable"
    says_missing(health["problem"], samples)
    assert "another catalog" not in health["problem"]
    shutil.move(away, samples.catalog)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"
    assert response.get_json()["items"] == 35


def test_item_pages_are_503_not_404_while_search_still_answers(
        client: FlaskClient, samples: Settings) -> None:
    item = an_item(client)
    before = client.get("/api/search?q=cooperatives").get_json()
    away = move_away(samples)
    # Searching goes on from the index: the same hits, on the page and in the API.
    assert client.get("/api/search?q=cooperatives").get_json()["hits"] == before["hits"]
    page = client.get("/?q=cooperatives")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"/items/{item}" in html
    assert "How current this is" not in html  # the catalog's freshness is not known
    exported = client.get("/search.csv?q=cooperatives")
    assert exported.status_code == 200 and item in exported.get_data(as_text=True)
    assert client.get("/feed.atom").status_code == 200
    # The item the search links to: 503, saying why, never "no such item".
    api = client.get(f"/api/items/{item}")
    assert api.status_code == 503
    assert api.get_json()["error"]["code"] == "catalog_missing"
    says_missing(api.get_json()["error"]["message"], samples)
    shown = client.get(f"/items/{item}")
    assert shown.status_code == 503 and shown.mimetype == "text/html"
    text = shown.get_data(as_text=True)
    assert "is missing" in text and "searchapp recover" in text
    assert "no item with id" not in text
    shutil.move(away, samples.catalog)
    assert client.get(f"/items/{item}").status_code == 200
    assert client.get(f"/api/items/{item}").get_json()["id"] == item
    assert "How current this is" in client.get("/?q=cooperatives").get_data(as_text=True)


def test_the_jobs_list_is_503_not_an_empty_list(client: FlaskClient, samples: Settings) -> None:
    move_away(samples)
    for path in ("/api/admin/jobs", "/api/admin/jobs/0123456789abcdef"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["error"]["code"] == "catalog_missing"
        says_missing(response.get_json()["error"]["message"], samples)


def test_admin_work_is_refused_beside_a_built_index(client: FlaskClient,
                                                    samples: Settings) -> None:
    """An import, rebuild or refresh into a missing catalog would start an empty one the
    index was not built from: refused, nothing spooled, nothing made."""
    move_away(samples)
    for response in (
            client.post("/api/admin/reindex", headers=AUTH),
            client.post("/api/admin/refresh", headers=AUTH),
            client.post("/api/admin/refresh?source=ica-news", headers=AUTH),
            client.post("/api/admin/imports", headers=AUTH, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(b'{"id": "x1", "title": "x"}\n'),
                                       "a.jsonl"), "organisation": "ILO"})):
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["error"]["code"] == "catalog_missing"
        assert not samples.catalog.exists()
    assert not list(samples.catalog.parent.glob("jobs/*.upload"))


def test_a_restart_without_the_catalog_makes_none(samples: Settings) -> None:
    (samples.catalog.parent / "jobs").mkdir(exist_ok=True)  # the start-up tidies jobs here
    move_away(samples)
    with app_over(samples, admin_token=TOKEN) as app:
        web = app.test_client()
        assert web.get("/healthz").status_code == 503
        assert web.get("/api/search?q=cooperatives").get_json()["total"] > 0
    assert not samples.catalog.exists()


def test_a_damaged_catalog_is_503_while_search_still_answers(
        client: FlaskClient, samples: Settings) -> None:
    """A catalog file overwritten with something that is no SQLite database: as for a
    missing one, searching and the search page go on from the index, and what needs
    the catalog says why and how to get it back (before: the search page, the item
    pages, the jobs list and admin work answered 500 "something went wrong")."""
    item = an_item(client)
    samples.catalog.write_bytes(b"this is not a database, it was overwritten by mistake\n" * 99)
    page = client.get("/?q=cooperatives")
    assert page.status_code == 200 and f"/items/{item}" in page.get_data(as_text=True)
    assert client.get("/api/search?q=cooperatives").get_json()["total"] > 0
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"
    for response in (client.get(f"/api/items/{item}"),
                     client.get("/api/admin/jobs", headers=AUTH),
                     client.post("/api/admin/reindex", headers=AUTH)):
        assert response.status_code == 503, response.get_json()
        error = response.get_json()["error"]
        assert error["code"] == "catalog_damaged"
        assert f"the catalog {samples.catalog} cannot be read" in error["message"]
        for words in RECOVERY:
            assert words in error["message"]
    shown = client.get(f"/items/{item}")
    assert shown.status_code == 503 and "searchapp recover" in shown.get_data(as_text=True)
    result = Cli(samples)("stats")
    assert result.exit_code == 1 and "cannot be read" in result.output
    assert "Traceback" not in result.output


def test_a_catalog_cut_to_nothing_is_not_advised_a_rebuild(
        client: FlaskClient, samples: Settings) -> None:
    """A catalog file cut to 0 bytes (`> catalog.sqlite3`, a failed copy) reads as an
    empty catalog. /healthz advised `searchapp reindex`, which refuses to empty the
    index: it now says what brings the items back."""
    samples.catalog.write_bytes(b"")
    for extra in samples.catalog.parent.glob(f"{samples.catalog.name}-*"):
        extra.unlink()
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded" and health["items"] == 0
    assert f"the catalog {samples.catalog} holds no items" in health["problem"]
    assert "searchapp recover" in health["problem"] and "run `searchapp reindex`" not in \
        health["problem"]
    assert client.get("/api/search?q=cooperatives").get_json()["total"] > 0
    result = Cli(samples)("recover", "--quiet")
    assert result.exit_code == 0, result.output
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_stats_says_the_catalog_is_missing(samples: Settings) -> None:
    move_away(samples)
    result = Cli(samples)("stats")
    assert result.exit_code == 1
    assert "is missing" in result.output and "searchapp recover" in result.output
    assert "Traceback" not in result.output
    assert not samples.catalog.exists()


def test_reindex_if_needed_does_not_rebuild_from_nothing(samples: Settings) -> None:
    move_away(samples)
    result = Cli(samples)("reindex", "--if-needed")
    assert result.exit_code == 1 and "is missing" in result.output
    assert not samples.catalog.exists()
    assert Cli(samples)("search", "cooperatives").exit_code == 0  # the index is untouched


def test_a_first_import_still_makes_the_catalog(settings: Settings, cli: Cli) -> None:
    assert not settings.catalog.exists() and not settings.catalog.parent.exists()
    result = cli("import", SAMPLES, "--quiet")
    assert result.exit_code == 0, result.output
    assert settings.catalog.exists()
    with Catalog(settings.catalog, reading=True) as catalog:
        assert catalog.count() > 0


def test_opening_to_read_makes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "catalog.sqlite3"
    for options in ({"reading": True}, {"create": False}):
        with pytest.raises(CatalogMissing, match="is missing"):
            Catalog(path, **options)  # type: ignore[arg-type]
    assert not path.parent.exists()
    with Catalog(path) as catalog:  # a writer (an import) makes it
        assert catalog.count() == 0
    assert path.exists()


def test_a_waiting_job_makes_no_catalog(tmp_path: Path) -> None:
    """A queued job notes that it waits for the lock straight in the jobs table: a
    catalog gone meanwhile stays gone (no empty file where it was)."""
    from searchapp import jobs

    path = tmp_path / "catalog.sqlite3"
    jobs._say_waiting(path, "0123456789abcdef")
    assert not path.exists()


def test_recover_brings_the_served_items_back(client: FlaskClient, samples: Settings) -> None:
    """What /healthz advises works while the service serves: `searchapp recover` writes
    the catalog anew from the index, and the item pages answer again."""
    item = an_item(client)
    move_away(samples)
    assert client.get(f"/items/{item}").status_code == 503
    result = Cli(samples)("recover")
    assert result.exit_code == 0, result.output
    assert client.get(f"/items/{item}").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok", health.get_json()


def made(root: Path) -> list[str]:
    """Every file and folder under `root`, relative to it."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# Every command but `import`, `restore` and `recover`, as a new user may run it in a
# folder that has no catalog (the wrong folder, before the first import).
NOT_IMPORTS = [["reindex"], ["reindex", "--if-needed"], ["reindex", "--force"], ["stats"],
               ["sources", "list"], ["sources", "remove", "news"],
               ["sources", "remove", "news", "--delete-items"], ["refresh"],
               ["refresh", "news"], ["backup", "copy.sqlite3"]]


@pytest.mark.parametrize("args", NOT_IMPORTS, ids=" ".join)
def test_no_command_but_an_import_makes_a_catalog(settings: Settings, cli: Cli,
                                                 args: list[str]) -> None:
    before = made(settings.catalog.parent.parent)
    result = cli(*args)
    assert result.exit_code == 1, result.output
    says_missing(result.stderr, settings)
    assert "rebuilt" not in result.output and "Traceback" not in result.output
    assert made(settings.catalog.parent.parent) == before  # no catalog, no index folder


@pytest.mark.parametrize("args", [*NOT_IMPORTS, ["sources", "add", "news",
                                                  "http://127.0.0.1:9/feed", "--org", "ICA"]],
                         ids=" ".join)
def test_beside_a_built_index_a_lost_catalog_stays_missing(samples: Settings,
                                                           args: list[str]) -> None:
    """The newcomer's case: `sources list` made an empty catalog, and `stats` then said
    `items: 0` instead of that the catalog was missing."""
    move_away(samples)
    result = Cli(samples)(*args)
    assert result.exit_code == 1, result.output
    says_missing(result.stderr, samples)
    assert not samples.catalog.exists()
    assert "is missing" in Cli(samples)("stats").stderr


def test_sources_add_makes_the_catalog_of_a_new_install(settings: Settings, cli: Cli) -> None:
    """Following sources can be how an install starts: no index yet, nothing was lost."""
    result = cli("sources", "add", "news", "http://127.0.0.1:9/feed", "--org", "ICA")
    assert result.exit_code == 0, result.output
    assert "news" in cli("sources", "list").stdout


def test_the_messages_name_the_absolute_places(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the wrong folder, relative settings (as `make run` has) name where they
    were looked for, and the catalog's says which setting moves it."""
    monkeypatch.chdir(tmp_path)
    cli = Cli(Settings(catalog=Path("instance/catalog.sqlite3"), index_dir=Path("index")))
    result = cli("stats")
    assert result.exit_code == 1
    assert f"the catalog {tmp_path}/instance/catalog.sqlite3 is missing" in result.stderr
    assert "SEARCHAPP_CATALOG" in result.stderr
    result = cli("search", "cooperatives")
    assert result.exit_code == 1
    assert f"no index in {tmp_path}/index: run `searchapp reindex`" in result.stderr
    assert made(tmp_path) == []


def test_admin_rebuilds_and_refreshes_make_no_catalog_on_a_new_install(
        settings: Settings) -> None:
    """Only an admin import may start a catalog; a rebuild or refresh of nothing is
    refused, and no folder is made for its job."""
    with app_over(settings, admin_token=TOKEN) as app:
        web = app.test_client()
        for path in ("/api/admin/reindex", "/api/admin/refresh"):
            response = web.post(path, headers=AUTH)
            assert response.status_code == 503, response.get_json()
            assert response.get_json()["error"]["code"] == "catalog_missing"
            says_missing(response.get_json()["error"]["message"], settings)
    assert not settings.catalog.parent.exists()
