"""Hostile input: characters XML cannot carry, huge organisations, ids whose links
would lead elsewhere, many upload parts, lone surrogates and deeply nested JSON,
a CSV header repeating one column."""

from __future__ import annotations

import html
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
from conftest import Cli, app_over
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from searchapp import importers, operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import CatalogError
from searchapp.models import MAX_FIELD, Item

TOKEN = "t0ken-for-hostile-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def web(settings: Settings) -> Iterator[FlaskClient]:
    """The app over an empty catalog, with the admin routes on."""
    with app_over(settings, admin_token=TOKEN) as app:
        yield app.test_client()


def post_files(client: FlaskClient, files: list[tuple[bytes, str]], **form: str) -> TestResponse:
    data: dict[str, object] = {"file": [(io.BytesIO(b), name) for b, name in files], **form}
    return client.post("/api/admin/imports?wait=60", headers=AUTH, data=data,
                       content_type="multipart/form-data")


def job_problems(response: TestResponse) -> list[dict[str, object]]:
    """The problems of an import job that ended rejected (nothing written)."""
    job = response.get_json()
    assert response.status_code == 200 and job["state"] == "failed", job
    assert job["error"]["code"] == "invalid_import", job
    return job["error"]["problems"]  # type: ignore[no-any-return]


def count(settings: Settings) -> int:
    with Catalog(settings.catalog) as catalog:
        return catalog.count()


# --- characters XML cannot carry ---------------------------------------------------


def test_titles_with_xml_illegal_characters_keep_the_feed_well_formed(
    settings: Settings, web: FlaskClient, tmp_path: Path,
) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"id": "odd", "organisation": "ILO", "date": "2020-01-02",
                                "title": "Odd\ufffe one\uffff out\x0b here",
                                "summary": "zebra \ufffe"}) + "\n", encoding="utf-8")
    operations.import_paths(settings, [path])
    with Catalog(settings.catalog) as catalog:
        stored = catalog.get("odd")
    assert stored is not None and stored.title == "Odd one out here"
    # Also what a catalog from before this rule may still hold, and a query carrying them.
    with Catalog(settings.catalog) as catalog:
        catalog.upsert([Item(id="old", organisation="ILO\uffff", title="Old\ufffe zebra",
                             summary="x\x01y", type="News\ufffe")])
    operations.rebuild(settings)
    for query in ("zebra", "zebra\uffff", ""):
        response = web.get("/feed.atom", query_string={"q": query})
        assert response.status_code == 200
        feed = ET.fromstring(response.data)  # raises on XML that is not well-formed
        titles = [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")]
        assert "Odd one out here" in titles


# --- organisations given outside the records --------------------------------------


def test_org_option_obeys_the_field_length_limit(settings: Settings, cli: Cli,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "a", "title": "Housing"}\n', encoding="utf-8")
    result = cli("import", path, "--org", "x" * 400_000)
    assert result.exit_code != 0
    assert "--org" in result.output
    assert f"the limit is {MAX_FIELD}" in result.output
    assert count(settings) == 0
    assert cli("import", path, "--org", "  ILO  ").exit_code == 0
    with Catalog(settings.catalog) as catalog:
        assert catalog.get("a").organisation == "ILO"  # type: ignore[union-attr]


def test_organisation_form_field_obeys_the_field_length_limit(settings: Settings,
                                                              web: FlaskClient) -> None:
    response = post_files(web, [(b'{"id": "a", "title": "Housing"}\n', "a.jsonl")],
                          organisation="x" * 400_000)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"].startswith("organisation: ")
    assert f"the limit is {MAX_FIELD}" in error["message"]
    assert count(settings) == 0


# --- ids and their links ------------------------------------------------------------

REFUSED = ["..", "x/../y", "/abs/olute", "a/./b", "."]
KEPT = ["a//b", "?x", "#x", "%2F", "x%2e%2e", "https://www.ilo.org/news/1?a=b#c", "sp ace",
        "a\\b", "trail/"]


def test_ids_whose_links_would_lead_elsewhere_are_refused_with_a_clear_message(
    settings: Settings, cli: Cli, tmp_path: Path,
) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"id": i, "title": f"Item {n}", "organisation": "ILO"})
                            + "\n" for n, i in enumerate(REFUSED)), encoding="utf-8")
    result = cli("import", path)
    assert result.exit_code == 1
    for line, item_id in enumerate(REFUSED, 1):
        assert f"{path}:{line}: id {item_id!r} " in result.output
    assert "link would" in result.output
    assert count(settings) == 0


def test_every_other_id_links_to_its_own_item_from_the_page_and_the_api(
    settings: Settings, web: FlaskClient, tmp_path: Path,
) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"id": i, "title": f"Zebra number {n}",
                                        "organisation": "ILO"}) + "\n"
                            for n, i in enumerate(KEPT)), encoding="utf-8")
    operations.import_paths(settings, [path])
    page = web.get("/", query_string={"q": "zebra", "per_page": "50"}).get_data(as_text=True)
    hrefs = [html.unescape(h) for h in re.findall(r'<h3><a href="([^"]+)"', page)]
    assert len(hrefs) == len(KEPT)
    reached = {}
    for href in hrefs:
        # Resolve the link as a browser does (RFC 3986: dot segments removed, fragment cut).
        url = urljoin("http://localhost/?q=zebra", href)
        response = web.get(url[len("http://localhost"):])
        assert response.status_code == 200, href
        title = re.search(r"<h1[^>]*>(.*?)</h1>", response.get_data(as_text=True), re.DOTALL)
        reached[href] = html.unescape(title[1]).strip() if title else None
    assert sorted(reached.values()) == sorted(f"Zebra number {n}" for n in range(len(KEPT)))
    for n, item_id in enumerate(KEPT):
        response = web.get("/api/items/" + quote(item_id, safe="/"))
        assert response.status_code == 200, item_id
        assert response.get_json()["id"] == item_id
        assert response.get_json()["title"] == f"Zebra number {n}"


# --- uploads with many file parts ---------------------------------------------------


def test_an_upload_with_many_file_parts_imports_all_of_them(settings: Settings,
                                                             web: FlaskClient) -> None:
    files = [(json.dumps({"id": f"p{n}", "title": f"Part {n}"}).encode() + b"\n", "same.jsonl")
             for n in range(900)]
    response = post_files(web, files, organisation="ICA")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"]["added"] == 900
    assert count(settings) == 900
    assert web.get("/api/search", query_string={"q": "part"}).get_json()["total"] == 900


def test_one_bad_part_refuses_the_whole_upload_and_names_the_part(settings: Settings,
                                                                  web: FlaskClient) -> None:
    files = [(b'{"id": "g1", "title": "Good"}\n', "good.jsonl"),
             (b'{"id": "b1", "title": ""}\n', "bad.jsonl"),
             (b'{"id": "g2", "title": "Also good"}\n', "good.jsonl")]
    response = post_files(web, files, organisation="ICA")
    assert job_problems(response) == [
        {"source": "upload:bad.jsonl", "line": 1, "message": "title is missing or blank"}]
    assert count(settings) == 0


# --- JSON that parses into something no item can hold -------------------------------

LONE_SURROGATE = '{"id": "s", "title": "Broken \\ud800 text", "organisation": "ILO"}\n'
DEEP = '{"id": "d", "organisation": "ILO", "title": ' + "[" * 100_000 + "]" * 100_000 + "}\n"


@pytest.mark.parametrize(("text", "message"), [
    (LONE_SURROGATE, "invalid JSON text: field 'title' has a lone surrogate \\ud800"),
    ('{"id": "s", "ti\\udfff": "x", "title": "ok", "organisation": "ILO"}\n',
     "invalid JSON text: a field name has a lone surrogate \\udfff"),
    (DEEP, "invalid JSON: arrays or objects nested too deeply"),
    ("[" + DEEP.strip() + "]\n", "invalid JSON: arrays or objects nested too deeply"),
])
def test_lone_surrogates_and_deep_nesting_are_file_line_problems(
    settings: Settings, cli: Cli, web: FlaskClient, tmp_path: Path, text: str, message: str,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text("\n" + text, encoding="utf-8")  # the record is on line 2
    result = cli("import", path)
    assert result.exit_code == 1
    assert f"{path}:2: {message}" in result.output
    assert "Traceback" not in result.output
    response = post_files(web, [(("\n" + text).encode(), "bad.json")], organisation="ILO")
    [problem] = job_problems(response)
    assert (problem["source"], problem["line"]) == ("upload:bad.json", 2)
    assert problem["message"].startswith(message)
    assert count(settings) == 0


# --- a CSV header repeating one column ----------------------------------------------


def test_a_header_repeating_a_column_is_checked_in_linear_time() -> None:
    def check(repeats: int) -> tuple[float, list[str]]:
        text = ",".join(["title"] * repeats) + "\n" + ",".join(["x"] * repeats) + "\n"
        began = time.perf_counter()
        parsed = importers.parse_bytes(text.encode(), name="h.csv")
        return time.perf_counter() - began, [str(p) for p in parsed.problems]

    small, problems = check(2_000)
    large, problems = check(20_000)
    assert problems == ["h.csv:1: CSV header names column(s) more than once: 'title' 20,000 times"]
    # Ten times the columns: about ten times the work (quadratic would be a hundred).
    assert large < max(1.0, small * 40)


# --- ids shared by two organisations -----------------------------------------------


def write_csv(path: Path, organisation: str, ids: list[str]) -> Path:
    rows = [f"{i},{organisation} news number {i},2020-01-0{n + 1}" for n, i in enumerate(ids)]
    path.write_text("id,title,date\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def organisations(settings: Settings) -> dict[str, str]:
    with Catalog(settings.catalog) as catalog:
        return {item.id: item.organisation for item in catalog.iter_items()}


def test_an_import_never_moves_items_to_another_organisation(settings: Settings, cli: Cli,
                                                             tmp_path: Path) -> None:
    ilo = write_csv(tmp_path / "ilo.csv", "ILO", ["1", "2"])
    ica = write_csv(tmp_path / "ica.csv", "ICA", ["1", "2"])
    assert cli("import", ilo, "--org", "ILO").exit_code == 0
    result = cli("import", ica, "--org", "ICA")
    assert result.exit_code == 1
    assert (f"{ica}:2: id '1' already belongs to an item of ILO; an import cannot move it to"
            " ICA") in result.output
    assert f"{ica}:3: id '2' already belongs to an item of ILO" in result.output
    assert "nothing was written" in result.output
    assert organisations(settings) == {"1": "ILO", "2": "ILO"}
    found = cli("search", "news", "--org", "ILO", "--json")
    assert json.loads(found.output)["total"] == 2
    # --skip-invalid imports the others and lists the refused ones.
    more = write_csv(tmp_path / "ica2.csv", "ICA", ["1", "ica-3"])
    result = cli("import", more, "--org", "ICA", "--skip-invalid")
    assert result.exit_code == 0
    assert f"skipped {more}:2: id '1' already belongs to an item of ILO" in result.output
    assert organisations(settings) == {"1": "ILO", "2": "ILO", "ica-3": "ICA"}


def test_one_id_for_two_organisations_in_one_import_is_refused(settings: Settings, cli: Cli,
                                                              tmp_path: Path) -> None:
    ilo = tmp_path / "ilo.jsonl"
    ica = tmp_path / "ica.jsonl"
    url = "https://example.org/news/shared"
    ilo.write_text(json.dumps({"title": "Shared story", "url": url, "organisation": "ILO"})
                   + "\n", encoding="utf-8")
    ica.write_text(json.dumps({"title": "Shared story", "url": url, "organisation": "ICA"})
                   + "\n", encoding="utf-8")
    result = cli("import", ilo, ica)
    assert result.exit_code == 1
    assert (f"{ica}:1: id '{url}' is also given to an item of ILO ({ilo}:1); an id names one"
            " item of one organisation") in result.output
    assert organisations(settings) == {}


def test_an_upload_cannot_move_items_to_another_organisation(settings: Settings,
                                                             web: FlaskClient,
                                                             tmp_path: Path) -> None:
    operations.import_paths(settings, [write_csv(tmp_path / "ilo.csv", "ILO", ["1", "2"])],
                            organisation="ILO")
    data = write_csv(tmp_path / "ica.csv", "ICA", ["1", "2"]).read_bytes()
    response = post_files(web, [(data, "ica.csv")], organisation="ICA")
    problems = job_problems(response)
    assert [(p["source"], p["line"]) for p in problems] == [("upload:ica.csv", 2),
                                                            ("upload:ica.csv", 3)]
    assert organisations(settings) == {"1": "ILO", "2": "ILO"}


def test_the_catalog_itself_refuses_to_move_an_item(settings: Settings) -> None:
    with Catalog(settings.catalog) as catalog:
        catalog.upsert([Item(id="1", organisation="ILO", title="Mine")])
        with pytest.raises(CatalogError, match="id '1' belongs to an item of ILO, not ICA"):
            catalog.upsert([Item(id="2", organisation="ICA", title="New"),
                            Item(id="1", organisation="ICA", title="Theirs")])
        assert [(i.id, i.organisation, i.title) for i in catalog.iter_items()] == [
            ("1", "ILO", "Mine")]


@pytest.mark.parametrize("field", ['"{}"', "{}"], ids=["quoted", "unquoted"])
def test_a_csv_field_too_long_for_an_item_skips_that_record_only(
        settings: Settings, cli: Cli, tmp_path: Path, field: str) -> None:
    """A 200,000-character summary stopped the csv module (its 131,072-character limit)
    and with it the file: `--skip-invalid` said "1 added, 1 skipped" and the records
    after it were silently not imported."""
    path = tmp_path / "long.csv"
    path.write_text("title,organisation,id,summary\nFirst,ILO,c1,ok\n"
                    f"Second,ILO,c2,{field.format('x' * 200_000)}\nThird,ILO,c3,ok\n",
                    encoding="utf-8")
    refused = cli("import", path, "--quiet")
    assert refused.exit_code == 1
    assert f"{path}:3: summary is 200000 characters long; the limit is 20000" in refused.output
    result = cli("import", path, "--skip-invalid", "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated, 0 unchanged, 1 skipped" in result.output
    assert organisations(settings) == {"c1": "ILO", "c3": "ILO"}


def test_a_csv_quote_left_open_says_the_rest_of_the_file_was_not_read(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_text('title,organisation,id\nFirst,ILO,o1\nSecond,ILO,"o2\n'
                    + "Next,ILO,more\n" * 100_000, encoding="utf-8")
    result = cli("import", path, "--skip-invalid", "--quiet")
    assert result.exit_code == 0, result.output
    assert (f"{path}:3: a field in the record starting on this line is longer than"
            " 1,000,000 characters (an unclosed quote?); the rest of the file was not read"
            ) in result.output
    assert organisations(settings) == {"o1": "ILO"}
