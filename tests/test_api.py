from __future__ import annotations

from flask.testing import FlaskClient


def test_search_returns_the_design_shape(client: FlaskClient) -> None:
    response = client.get("/api/search?q=refugees")
    assert response.status_code == 200
    data = response.get_json()
    assert data["query"] == "refugees" and data["total"] == 2 and data["sort"] == "relevance"
    hit = data["hits"][0]
    assert set(hit) == {"id", "title", "summary", "organisation", "date", "year", "type", "url",
                        "language", "score", "highlights"}
    assert hit["language"] == "en"
    assert hit["title"] == "Declaration on migrants and refugees"
    assert hit["organisation"] == "CECOP" and hit["year"] == 2016 and hit["date"] == "2016-04-11"
    assert set(data["facets"]) == {"organisation", "year", "type", "language"}
    assert data["suggestion"] is None


def test_repeatable_filters(client: FlaskClient) -> None:
    data = client.get("/api/search?organisation=ILO&year=2017&year=undated&per_page=50").get_json()
    assert data["total"] == 9  # ILO: eight items from 2017 and the undated one
    years = {v["value"]: v for v in data["facets"]["year"]}
    assert years[2017]["selected"] and years[None]["selected"] and not years[2016]["selected"]


def test_bad_parameters_are_json_400(client: FlaskClient) -> None:
    for query, name in [("page=abc", "page"), ("per_page=1000", "per_page"),
                        ("sort=random", "sort"), ("year=soon", "year")]:
        response = client.get(f"/api/search?{query}")
        assert response.status_code == 400, query
        error = response.get_json()["error"]
        assert error["code"] == "bad_parameter" and error["message"].startswith(name)


def test_unknown_api_route_and_item_are_json_404(client: FlaskClient) -> None:
    for path in ("/api/nothing-here", "/api/items/no-such-id"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.post("/api/search")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_item_round_trip(client: FlaskClient) -> None:
    hit = client.get("/api/search?q=Agtas").get_json()["hits"][0]
    item = client.get(f"/api/items/{hit['id']}").get_json()
    assert item["title"] == "Özge Berber-Agtaş, ILO Office for Turkey in Ankara"
    assert item["type"] == "COOP Champions" and item["source"].endswith("ilo-cooperatives.txt")
    page = client.get(f"/items/{hit['id']}")
    assert page.status_code == 200 and "Özge Berber-Agtaş" in page.get_data(as_text=True)


def test_search_page_shows_hits_and_facet_links(client: FlaskClient) -> None:
    html = client.get("/?q=elections").get_data(as_text=True)
    assert "3 items" in html
    assert "<mark>Elections</mark>: Giuseppe Guerini new President of CECOP" in html
    assert 'href="/?q=elections&amp;organisation=CECOP"' in html
    assert 'href="/api/search?q=elections"' in html
    narrowed = client.get("/?q=elections&organisation=CECOP").get_data(as_text=True)
    assert "2 items" in narrowed and 'class="facet-value selected"' in narrowed


def test_html_404_outside_the_api(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.content_type and "Not found" in response.get_data(as_text=True)


def test_healthz(client: FlaskClient) -> None:
    data = client.get("/healthz").get_json()
    engine = data.pop("engine")
    assert data == {"status": "ok", "items": 35, "documents": 35, "generation": "gen-000001",
                    "checked": {"segments": 1, "files": 6, "arrays": 1}}
    assert engine["kind"] == "arrays" and isinstance(engine["fallbacks"], dict)
