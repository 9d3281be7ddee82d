"""The HTML pages through Flask's client: what the browser tests need not drive."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import app_over
from flask.testing import FlaskClient

from searchapp import operations
from searchapp.config import Settings


def test_the_search_box_keeps_filters_only_within(client: FlaskClient) -> None:
    kept = client.get("/?q=elections&box=1&within=1&organisation=ILO&sort=newest&page=3")
    assert kept.status_code == 303
    assert kept.headers["Location"] == "/?q=elections&organisation=ILO&sort=newest"
    dropped = client.get("/?q=elections&box=1&organisation=ILO&year_from=2015&sort=newest")
    assert dropped.status_code == 303
    assert dropped.headers["Location"] == "/?q=elections&sort=newest"


def test_bad_page_parameters_are_a_400_page_with_the_search(client: FlaskClient) -> None:
    response = client.get("/?q=refugees&sort=sideways&per_page=0")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'value="refugees"' in html
    assert re.search(r'<select id="sort" name="sort" aria-invalid="true"'
                     r' aria-describedby="error-sort">', html)
    assert "The order must be one of relevance, newest, oldest, not &#39;sideways&#39;." in html
    assert "The number of items per page must be between 1 and 100." in html
    assert "2 items for “refugees”" in html


@pytest.mark.parametrize("year", ["100000000", "0", "-5", "9" * 30, "２０１７"])
def test_a_year_no_date_can_have_is_refused_not_charted(client: FlaskClient, year: str) -> None:
    # A selected year no item has is still listed (and charted) with 0: one beyond any
    # date would have the page build a row per year up to it, or overflow the JSON.
    api = client.get(f"/api/search?year={year}")
    assert api.status_code == 400
    assert api.get_json()["error"]["code"] == "bad_parameter"
    assert "must be a year from 1 to 9999" in api.get_json()["error"]["message"]
    page = client.get(f"/?q=refugees&year={year}")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert "must be a year from 1 to 9999" in html and "2 items for “refugees”" in html
    assert client.get("/api/search?year=0815").status_code == 200  # leading zeros: 815


@pytest.mark.parametrize("query", ["year_from=٢٠١٧", "year_to=1_999", "page=２",
                                   "per_page=1_0", "facet_size=５"])
def test_numbers_are_ascii_digits(client: FlaskClient, query: str) -> None:
    # Python's int() reads other scripts' digits and underscores; a parameter does not.
    response = client.get(f"/api/search?{query}")
    assert response.status_code == 400, response.get_json()
    assert "must be a whole number" in response.get_json()["error"]["message"]


def test_a_facet_selects_at_most_50_values(client: FlaskClient) -> None:
    # Each filter chip links to the search without it: 399 years gave 2.3 MB of page.
    years = "&".join(f"year={1900 + k}" for k in range(51))
    api = client.get(f"/api/search?{years}")
    assert api.status_code == 400
    assert api.get_json()["error"]["message"] == "year: selects 51 values; the limit is 50"
    page = client.get(f"/?q=refugees&{years}")
    assert page.status_code == 400 and len(page.get_data()) < 200_000
    fifty = "&".join(f"year={1900 + k}" for k in range(50))
    assert client.get(f"/api/search?{fifty}").status_code == 200


def test_the_api_still_refuses_what_the_page_sets_right(client: FlaskClient) -> None:
    reversed_range = client.get("/api/search?year_from=2017&year_to=2015")
    assert reversed_range.status_code == 400
    assert reversed_range.get_json()["error"]["code"] == "bad_parameter"
    page = client.get("/?year_from=2017&year_to=2015")
    assert page.status_code == 200
    assert "The year range 2017–2015 was reversed: showing 2015–2017." in page.get_data(
        as_text=True)


def test_unknown_parameters_are_named_up_to_a_few(client: FlaskClient) -> None:
    html = client.get("/?a=1&b=2&organization=ILO&d=4&e=" + "x" * 500).get_data(as_text=True)
    assert "?a=1 was ignored." in html
    assert "?organization=ILO was ignored: did you mean organisation?" in html
    assert "2 more unknown parameters were ignored." in html
    assert "x" * 100 not in html


def test_item_links_carry_the_search_back(client: FlaskClient) -> None:
    html = client.get("/?q=refugees&organisation=CECOP&show=type").get_data(as_text=True)
    link = re.search(r'<h3><a href="([^"]+)"', html)
    assert link and link.group(1).endswith("?back=q%3Drefugees%26organisation%3DCECOP")
    item = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert '<a href="/?q=refugees&amp;organisation=CECOP">← Back to search</a>' in item
    # Only search parameters come back, whatever `back` holds.
    odd = client.get(link.group(1).split("?")[0] + "?back=q%3Dx%26evil%3D1%26show%3Dtype")
    assert '<a href="/?q=x">← Back to search</a>' in odd.get_data(as_text=True)


def test_the_very_first_etag_revalidates(client: FlaskClient) -> None:
    first = client.get("/api/search?q=cooperatives")  # the engine's first request
    again = client.get("/api/search?q=cooperatives",
                       headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_responses_are_compressed_and_still_revalidate(client: FlaskClient) -> None:
    for path in ("/?q=cooperatives", "/api/search?q=cooperatives", "/feed.atom"):
        for encoding in ("br", "gzip"):
            response = client.get(path, headers={"Accept-Encoding": encoding})
            assert response.headers["Content-Encoding"] == encoding, path
            assert "Accept-Encoding" in response.headers["Vary"]
            again = client.get(path, headers={"Accept-Encoding": encoding,
                                              "If-None-Match": response.headers["ETag"]})
            assert again.status_code == 304, path
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert b"<title>Cooperative news search</title>" in plain.data


@pytest.mark.parametrize(("accepted", "refused", "expected"), [
    ("br;q=0", {"br"}, None),  # before: br, the one coding the client refused
    ("gzip;q=0", {"gzip"}, None),
    ("gzip;q=0, br;q=0", {"br", "gzip"}, None),
    ("br;q=0, *", {"br"}, "gzip"),  # before: br
    ("gzip;q=0, *", {"gzip"}, "br"),
    ("br;q=nonsense", {"br"}, None),  # before: br, as if weighted 1
    ("br;q=0.5, gzip;q=0.8", set(), "gzip"),
    ("identity;q=1, *;q=0", {"br", "gzip", "zstd", "deflate"}, None),
])
def test_a_coding_the_client_refuses_is_never_answered_in(
        client: FlaskClient, accepted: str, refused: set[str], expected: str | None) -> None:
    for path in ("/?q=cooperatives", "/api/search?q=cooperatives", "/feed.atom"):
        response = client.get(path, headers={"Accept-Encoding": accepted})
        assert response.status_code == 200
        assert response.headers.get("Content-Encoding") == expected, path
    # An export streams in a coding of its own choice, never a refused one.
    with client.get("/search.jsonl", headers={"Accept-Encoding": accepted}) as export:
        export.get_data()
        assert export.headers.get("Content-Encoding") not in refused


def test_a_query_too_long_stays_in_the_box_and_is_marked(client: FlaskClient) -> None:
    text = "co-op " * 4000  # 24,000 characters
    html = client.get("/", query_string={"q": text, "organisation": "ILO"}).get_data(
        as_text=True)
    assert f'value="{text}"' in html
    assert 'aria-describedby="q-help error-q"' in html and 'aria-invalid="true"' in html
    assert "The search is 24000 characters long; the limit is 20000." in html
    assert re.search(r'<h2 id="count" tabindex="-1">\d+ items <span class="in-filters">'
                     r'\(filters: ILO\)</span></h2>', html)  # the search ran without the words


def test_chips_remove_a_filter_however_it_was_spelt(client: FlaskClient) -> None:
    html = client.get("/?organisation=+CECOP+&year=none&year=2016").get_data(as_text=True)
    assert '<a class="chip" href="/?year=none&amp;year=2016">' in html
    assert '<a class="chip" href="/?organisation=+CECOP+&amp;year=2016">' in html
    assert '<a class="chip" href="/?organisation=+CECOP+&amp;year=none">' in html


def test_every_count_on_the_page_has_thousands_separators(settings: Settings,
                                                          tmp_path: Path) -> None:
    """The heading, the facet counts and the any-words offer write 1,200 alike (the
    heading had separators, the facets and the offer none)."""
    items = tmp_path / "many.jsonl"
    items.write_text("".join(
        json.dumps({"id": f"m{k}", "title": f"{'alpha' if k % 2 else 'beta'} report {k}",
                    "date": "2020-05-01", "language": "en"}) + "\n" for k in range(2_400)))
    operations.import_paths(settings, [items], organisation="ICA")
    with app_over(settings) as app:
        soup = BeautifulSoup(app.test_client().get("/?q=alpha+beta").get_data(as_text=True),
                             "html.parser")
        assert soup.select_one("p.any-words a").get_text() == \
            "Show the 2,400 items with any of them"
        everything = BeautifulSoup(app.test_client().get("/").get_data(as_text=True),
                                   "html.parser")
    assert everything.select_one("h2#count").get_text(strip=True) == "2,400 items"
    counts = {c.get_text() for c in everything.select("section.facet .count")}
    assert counts == {"2,400"}, counts
