from __future__ import annotations

import pytest

from searchapp.config import Settings
from searchapp.errors import BadParameter
from searchapp.indexer import IndexStore
from searchapp.search import Engine, SearchPage, SearchQuery


@pytest.fixture
def engine(samples: Settings) -> Engine:
    engine = Engine(IndexStore(samples.index_dir))
    yield engine  # type: ignore[misc]
    engine.close()


def counts(page: SearchPage, facet: str) -> dict[object, int]:
    return {v.value: v.count for v in page.facets[facet]}


def titles(page: SearchPage) -> list[str]:
    return [h.item.title for h in page.hits]


def test_stemming_finds_other_forms(engine: Engine) -> None:
    page = engine.search(SearchQuery(q="elections"))
    assert page.total == 3
    assert titles(page)[0] == "Elections: Giuseppe Guerini new President of CECOP"
    assert any("elected president of Social Economy Europe" in t for t in titles(page))


def test_browse_everything_newest_first_with_facets(engine: Engine) -> None:
    page = engine.search(SearchQuery(per_page=100))
    assert page.total == 35 and page.sort == "newest"
    assert counts(page, "organisation") == {"CECOP": 25, "ILO": 10}
    assert counts(page, "year") == {2017: 12, 2016: 17, 2015: 5, None: 1}
    assert [v.value for v in page.facets["year"]] == [2017, 2016, 2015, None]
    dates = [h.item.date for h in page.hits]
    assert dates[0] is not None and dates[0].isoformat() == "2017-09-27"
    assert dates[-1] is None  # the undated ILO event sorts last
    assert counts(page, "type")["Press release"] == 8


def test_facet_counts_are_disjunctive(engine: Engine) -> None:
    page = engine.search(SearchQuery(q="cooperatives", organisation=("ILO",)))
    everywhere = engine.search(SearchQuery(q="cooperatives"))
    assert page.total == counts(everywhere, "organisation")["ILO"]
    assert counts(page, "organisation") == counts(everywhere, "organisation")
    assert {h.item.organisation for h in page.hits} == {"ILO"}
    assert sum(counts(page, "year").values()) == page.total
    selected = [v for v in page.facets["organisation"] if v.selected]
    assert [v.value for v in selected] == ["ILO"]


def test_filters_or_within_and_across_facets(engine: Engine) -> None:
    both = engine.search(SearchQuery(year=(2015, 2017)))
    assert both.total == 17
    narrowed = engine.search(SearchQuery(year=(2015, 2017), organisation=("CECOP",)))
    assert narrowed.total == 9  # CECOP: four items from 2017, five from 2015
    assert {h.item.year for h in narrowed.hits} <= {2015, 2017}


def test_undated_items_can_be_filtered(engine: Engine) -> None:
    page = engine.search(SearchQuery(year=(None,)))
    assert titles(page) == ["The 9th Edition of the ILO Academy on Social and Solidarity Economy"]


def test_selected_value_stays_listed_at_zero(engine: Engine) -> None:
    page = engine.search(SearchQuery(q="refugees", type=("Event",)))
    assert page.total == 0
    assert {"value": "Event", "label": "Event", "count": 0, "selected": True} in \
        [v.to_dict() for v in page.facets["type"]]


def test_pagination_and_sort(engine: Engine) -> None:
    first = engine.search(SearchQuery(q="cooperatives", sort="oldest", per_page=5))
    second = engine.search(SearchQuery(q="cooperatives", sort="oldest", per_page=5, page=2))
    assert first.total == second.total and first.pages == -(-first.total // 5)
    dated = [h.item.date for h in first.hits + second.hits if h.item.date]
    assert dated == sorted(dated)
    assert not set(titles(first)) & set(titles(second))


def test_highlights_mark_stemmed_matches_on_escaped_text(engine: Engine) -> None:
    page = engine.search(SearchQuery(q="elections"))
    top = page.hits[0].highlights
    assert top["title"] == "<mark>Elections</mark>: Giuseppe Guerini new President of CECOP"
    assert "has <mark>elected</mark> Beppe Guerini" in top["summary"]


def test_parser_failures_become_plain_words(engine: Engine) -> None:
    for text in ['"refugees', "refugees)", "refugees title:", "OR refugees", "refugees AND"]:
        page = engine.search(SearchQuery(q=text))
        assert page.total >= 1, text


@pytest.mark.parametrize(("params", "name"), [
    ({"page": ["abc"]}, "page"), ({"per_page": ["1000"]}, "per_page"),
    ({"sort": ["random"]}, "sort"), ({"year": ["twenty"]}, "year"),
    ({"q": ["x" * 20_001]}, "q"), ({"feedback": ["bo1"]}, "feedback"), ({"match": ["some"]}, "match"),
    ({"year_from": ["2017"], "year_to": ["2015"]}, "year_from"), ({"year_to": ["soon"]}, "year_to"), ({"page": ["0"]}, "page"),
])
def test_bad_parameters_name_themselves(params: dict[str, list[str]], name: str) -> None:
    with pytest.raises(BadParameter) as info:
        SearchQuery.from_params(params)
    assert info.value.name == name
