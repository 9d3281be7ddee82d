"""Bounded work per request (#11, finding 2): the issue's expensive inputs, on small data.

Each input is bounded by what it may read, not by a clock: the work counted
per search (`SearchPage.work`: posting lists and postings read, documents
rescored, related candidates) stays under the caps whatever the query asks,
deeper pages than the result window are refused, and a time budget that runs
out gives an answer marked partial, on both engine paths.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, app_over
from flask.testing import FlaskClient

from searchapp import operations, ranking, service
from searchapp.config import Settings
from searchapp.engine import BOUNDS, Budget, leaves
from searchapp.query import MAX_EXPANDED_TERMS, MAX_QUERY_TERMS, build, parse
from searchapp.search import Engine, SearchQuery

PREFIXES = ["co", "pr", "st", "re", "in", "ma", "de", "ex", "ba", "se", "tr", "ch", "pa", "fi",
            "sa", "pe", "mi", "ca", "di", "bo", "ho", "to", "gr", "fo", "ne", "wa", "po", "ra",
            "la", "su", "me", "te"]
THIRTY_TWO_PREFIXES = " OR ".join(f"{p}*" for p in PREFIXES)
ITEMS = 400


def _words() -> dict[str, list[str]]:
    """40 made-up words per prefix (stemming leaves them as they are)."""
    rng = random.Random(11)
    out = {}
    for p in PREFIXES:
        found: set[str] = set()
        while len(found) < 40:
            found.add(p + "".join(rng.choice("bdfgkmnprtvz") + rng.choice("aou")
                                  for _ in range(2)) + rng.choice("bdkmnt"))
        out[p] = sorted(found)
    return out


WORDS = _words()
EVERY_WORD = [w for ws in WORDS.values() for w in ws]
# Two-word phrases that occur: the first two words of some titles.
PHRASES: list[str] = []


def _corpus() -> list[dict[str, Any]]:
    rng = random.Random(2)
    records = []
    for n in range(ITEMS):
        title = rng.sample(EVERY_WORD, 6)
        summary = rng.sample(EVERY_WORD, 14)
        records.append({"id": f"b{n:04d}", "title": " ".join(title),
                        "summary": " ".join(summary),
                        "date": f"20{10 + n % 15}-0{1 + n % 9}-1{n % 10}",
                        # Made-up words: given a language, so that the bounds are those
                        # of a one-language index (detection would spread them over many).
                        "language": "en"})
        if n % 12 == 0 and len(PHRASES) < 32:
            PHRASES.append(" ".join(title[:2]))
    return records


@pytest.fixture
def bounded(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "bounded.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _corpus()))
    operations.import_paths(settings, [path], organisation="ICA")
    return settings


# Where a test expects a whole answer, the time budget is made long enough for any
# machine load: the bounds under test are counted, not timed.
PATIENT = 600.0


@pytest.fixture
def client(bounded: Settings) -> Iterator[FlaskClient]:
    with app_over(bounded, search_time_budget=PATIENT) as app:
        yield app.test_client()


def _engine(settings: Settings, kind: str = "arrays", **kwargs: Any) -> Engine:
    return Engine.from_settings(Settings.load({"catalog": settings.catalog,
                                               "index_dir": settings.index_dir,
                                               "engine": kind, "search_time_budget": PATIENT,
                                               **kwargs}, environ={}))


def _cli(settings: Settings) -> Cli:
    cli = Cli(settings)
    cli.env["SEARCHAPP_SEARCH_TIME_BUDGET"] = str(PATIENT)
    return cli


def _phrases() -> str:
    return " OR ".join(f'"{p}"' for p in PHRASES)


# The result window --------------------------------------------------------


def test_the_issues_deep_page_is_a_400_naming_page(client: FlaskClient) -> None:
    response = client.get("/api/search", query_string={
        "q": THIRTY_TWO_PREFIXES, "page": 1000, "per_page": 100})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"] == ("page: 1000 with 100 per page reaches past the first 10,000"
                                " results (the most a search shows): narrow the search instead")
    # The last page within the window answers.
    within = client.get("/api/search", query_string={"q": "co*", "page": 100, "per_page": 100})
    assert within.status_code == 200


def test_the_window_is_a_setting_the_page_and_the_cli_honour(bounded: Settings) -> None:
    with app_over(bounded, max_result_window=30, search_time_budget=PATIENT) as app:
        client = app.test_client()
        assert client.get("/api/search?page=3&per_page=10").status_code == 200
        refused = client.get("/api/search?page=4&per_page=10")
        assert refused.status_code == 400
        assert refused.get_json()["error"]["message"].startswith(
            "page: 4 with 10 per page reaches past the first 30 results")
        page = client.get("/?page=4&per_page=10")
        html = page.get_data(as_text=True)
        assert page.status_code == 400
        assert ("The page number 4 with 10 per page reaches past the first 30 results (the most"
                " a search shows): narrow the search instead. It was left out of this search."
                in html)
        assert f"{ITEMS} items" in html  # page 1 of the same search is shown
        # Pagination links stop at the window's last page (3), not at page 40.
        first = client.get("/?per_page=10").get_data(as_text=True)
        linked = {int(n) for n in re.findall(r'[?&;]page=(\d+)', first)}
        assert linked and max(linked) == 3
    cli = _cli(bounded)
    cli.env["SEARCHAPP_MAX_RESULT_WINDOW"] = "30"
    result = cli("search", "--page", "4", "--limit", "10")
    assert result.exit_code == 2
    assert ("Invalid value for '--page': 4 with --limit 10 reaches past the first 30 results"
            in result.stderr)
    assert "per page" not in result.stderr
    assert cli("search", "--page", "3", "--limit", "10").exit_code == 0


# The whole query's terms --------------------------------------------------


@pytest.mark.parametrize("kind", ["arrays", "whoosh"])
def test_thirty_two_prefixes_read_at_most_the_query_cap(bounded: Settings, kind: str) -> None:
    engine = _engine(bounded, kind)
    try:
        page = engine.search(SearchQuery(q=THIRTY_TWO_PREFIXES))
        one = engine.search(SearchQuery(q="co*"))
    finally:
        engine.close()
    # Each prefix alone would expand to 40 words in 2 fields: 2,560 posting lists.
    assert 32 * 40 * 2 > MAX_EXPANDED_TERMS
    assert page.work["terms"] <= MAX_EXPANDED_TERMS
    assert page.total > 0 and not page.partial
    assert page.warnings == (("co*, pr*, st*, re*, in* and 27 more: each searched for at most 8"
                              " of the words starting with it, to keep the search quick."),)
    # Alone, a prefix has the whole allowance and is not narrowed.
    assert one.warnings == () and one.work["terms"] == 80


def test_both_paths_answer_the_issues_inputs_alike(bounded: Settings) -> None:
    fast, plain = _engine(bounded), _engine(bounded, "whoosh")
    try:
        for q in (THIRTY_TWO_PREFIXES, _phrases()):
            got, expected = fast.search(SearchQuery(q=q)), plain.search(SearchQuery(q=q))
            assert (got.total, got.facets, got.warnings) == (
                expected.total, expected.facets, expected.warnings)
            assert got.work["terms"] == expected.work["terms"]
    finally:
        fast.close()
        plain.close()


def test_the_warnings_reach_the_api_the_page_and_the_cli(client: FlaskClient,
                                                        bounded: Settings) -> None:
    data = client.get("/api/search", query_string={"q": THIRTY_TWO_PREFIXES}).get_json()
    assert data["partial"] is False
    assert data["warnings"] and "co*, pr*, st*" in data["warnings"][0]
    html = client.get("/", query_string={"q": THIRTY_TWO_PREFIXES}).get_data(as_text=True)
    assert '<p class="notice bounded">co*, pr*, st*, re*, in* and 27 more' in html
    result = _cli(bounded)("search", THIRTY_TWO_PREFIXES)
    assert result.exit_code == 0
    assert "note: co*, pr*, st*, re*, in* and 27 more" in result.stderr


def test_or_parts_count_towards_the_query_caps(bounded: Settings) -> None:
    """OR parts count like any other: 300 words joined by OR are read up to #12's
    MAX_QUERY_TERMS (the answer says it was shortened), and the expanded query
    stays within MAX_EXPANDED_TERMS posting lists."""
    parts = [f"z{a}{b}" for a in "abcdefghijk" for b in "abcdefghijklmnopqrstuvwxyz"]
    many = " OR ".join(parts)  # 286 parts within the 2,000 characters
    assert len(parts) == 286 and len(many) < 2_000
    parsed = parse(many)
    assert parsed.shortened and sum(len(g) for g in parsed.groups) == MAX_QUERY_TERMS
    engine = _engine(bounded)
    try:
        page = engine.search(SearchQuery(q=many))
        built = build(parsed, engine._current().vocabulary())
    finally:
        engine.close()
    assert built is not None and leaves(built.query) <= MAX_EXPANDED_TERMS
    assert page.shortened and page.work["terms"] <= MAX_EXPANDED_TERMS


def test_languages_without_a_word_add_nothing_to_the_query(bounded: Settings) -> None:
    """In an index with items in seven languages, 40 words that only English items have
    read 80 posting lists (40 words, 2 fields), not 560 (× 7 languages), so nothing
    is cut by MAX_EXPANDED_TERMS and no warning is given (#13)."""
    others = [("fr", "Les coopératives sociales recrutent à Lyon"),
              ("es", "Las cooperativas de trabajo crecen en Valencia"),
              ("it", "Le cooperative sociali firmano il contratto"),
              ("de", "Die Genossenschaften wachsen weiter"),
              ("pt", "As cooperativas agrícolas exportam mais"),
              ("nl", "De coöperaties groeien in Utrecht")]
    path = bounded.catalog.parent / "others.jsonl"
    path.write_text("".join(json.dumps({"id": f"o-{code}", "title": title, "language": code})
                            + "\n" for code, title in others))
    operations.import_paths(bounded, [path], organisation="CECOP")
    words = EVERY_WORD[:40]
    assert 7 * 40 * 2 > MAX_EXPANDED_TERMS
    engine = _engine(bounded)
    try:
        page = engine.search(SearchQuery(q=" OR ".join(words)))
        french = engine.search(SearchQuery(q="coopérative sociale"))
    finally:
        engine.close()
    assert page.total > 0 and page.warnings == () and not page.partial
    assert page.work["terms"] <= 40 * 2
    assert {h.item.id for h in french.hits} == {"o-fr", "o-it"}  # sociale, sociali


# Rescoring ------------------------------------------------------------------


def test_rescoring_is_bounded_by_documents_times_terms(bounded: Settings) -> None:
    before = BOUNDS.snapshot().get("rescoring: over RESCORE_WORK", 0)
    engine = _engine(bounded)
    try:
        wide = engine.search(SearchQuery(q=THIRTY_TWO_PREFIXES, per_page=100))
        three = engine.search(SearchQuery(q=" OR ".join(WORDS["co"][:3])))
    finally:
        engine.close()
    # 32 prefixes: hundreds of terms, so Whoosh does not rescore; numpy's order stands.
    assert wide.work["rescored"] == 0 and wide.hits
    assert BOUNDS.snapshot()["rescoring: over RESCORE_WORK"] == before + 1
    # Three words (an OR of six terms, inexact sums): the page is rescored, within the cap.
    assert 0 < three.work["rescored"] <= ranking.RESCORE_WORK // 6
    scores = [h.score for h in three.hits]
    assert scores == sorted(scores, reverse=True)


def test_thirty_two_phrases_read_each_word_once_per_field(bounded: Settings) -> None:
    engine = _engine(bounded)
    try:
        page = engine.search(SearchQuery(q=_phrases(), per_page=100))
        deep = engine.search(SearchQuery(q=_phrases(), per_page=100, page=2))
    finally:
        engine.close()
    assert len(PHRASES) == 32
    assert page.total >= 32 and not page.partial and page.warnings == ()
    assert page.work["terms"] == 32 * 2 * 2  # 2 words, 2 fields
    # A deeper page reads no more and rescores only around its own cut.
    assert deep.work["terms"] == page.work["terms"]
    assert deep.work["rescored"] <= page.work["rescored"] + 100


# Related items ----------------------------------------------------------------


def test_related_items_weigh_at_most_the_candidate_cap(bounded: Settings,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fast, plain = _engine(bounded), _engine(bounded, "whoosh")
    try:
        item = fast.get("b0000")
        assert item is not None
        budget = Budget()
        uncapped = fast.related(item, budget=budget)
        assert uncapped and budget.candidates > 15
        monkeypatch.setattr(service, "RELATED_CANDIDATES", 15)
        before = BOUNDS.snapshot().get("related items: over RELATED_CANDIDATES", 0)
        capped, capped_plain = Budget(), Budget()
        found = fast.related(item, budget=capped)
        assert found == plain.related(item, budget=capped_plain)  # both paths, one answer
        assert found and 0 < capped.candidates <= 15
        assert BOUNDS.snapshot()["related items: over RELATED_CANDIDATES"] > before
    finally:
        fast.close()
        plain.close()


def test_related_items_through_the_api_say_whether_they_are_partial(
        client: FlaskClient) -> None:
    data = client.get("/api/items/b0000").get_json()
    assert data["related"] and data["related_partial"] is False


# The time budget ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["arrays", "whoosh"])
def test_a_spent_time_budget_answers_partial(bounded: Settings, kind: str) -> None:
    with app_over(bounded, engine=kind, search_time_budget=0.000001) as app:
        client = app.test_client()
        data = client.get("/api/search", query_string={"q": THIRTY_TWO_PREFIXES}).get_json()
        assert data["partial"] is True
        html = client.get("/", query_string={"q": _phrases()}).get_data(as_text=True)
        assert '<p class="notice partial" role="status">This search took too long' in html
        item = client.get("/api/items/b0000").get_json()
        assert item["related_partial"] is True
        page = client.get("/items/b0000").get_data(as_text=True)
        assert "Finding related items took too long" in page
    cli = Cli(bounded)
    cli.env["SEARCHAPP_SEARCH_TIME_BUDGET"] = "0.000001"
    result = cli("search", THIRTY_TWO_PREFIXES)
    assert result.exit_code == 0 and "note: the search took too long" in result.stderr


class _Checks(Budget):
    """A budget that runs out after a number of looks at it (a clock that cannot flake)."""

    def __init__(self, looks: int) -> None:
        super().__init__()
        self.looks = looks

    def over(self) -> bool:
        self.looks -= 1
        if self.looks < 0:
            self.cut = True
        return self.cut


@pytest.mark.parametrize(("kind", "looks"), [("arrays", 12), ("whoosh", 1)])
def test_a_partial_answer_holds_only_matches(bounded: Settings, kind: str, looks: int) -> None:
    """The arrays path looks at the clock before each part of an OR, plain Whoosh every
    64 matches: either way, a search cut short shows only items that match."""
    words = " OR ".join(EVERY_WORD[::40][:14])  # words of different prefixes
    engine = _engine(bounded, kind)
    try:
        whole = engine.search(SearchQuery(q=words, per_page=100))
        cut = engine.search(SearchQuery(q=words, per_page=100), budget=_Checks(looks))
        anded = engine.search(SearchQuery(q=" ".join(PHRASES[0].split() + ["-nothing"])),
                              budget=_Checks(0))
    finally:
        engine.close()
    assert not whole.partial and whole.total <= 100
    assert cut.partial and 0 < cut.total < whole.total
    assert {h.item.id for h in cut.hits} <= {h.item.id for h in whole.hits}
    # An AND cut short answers nothing rather than items missing a word.
    assert anded.partial and anded.total == 0


def test_time_budget_and_window_settings_are_checked() -> None:
    assert Settings.load(environ={"SEARCHAPP_SEARCH_TIME_BUDGET": "0.5",
                                  "SEARCHAPP_MAX_RESULT_WINDOW": "500"}).max_result_window == 500
    from searchapp.errors import ConfigError
    with pytest.raises(ConfigError, match="SEARCHAPP_MAX_RESULT_WINDOW: must be at least 1"):
        Settings.load(environ={"SEARCHAPP_MAX_RESULT_WINDOW": "0"})
    with pytest.raises(ConfigError, match="SEARCHAPP_SEARCH_TIME_BUDGET: must be a number"):
        Settings.load(environ={"SEARCHAPP_SEARCH_TIME_BUDGET": "soon"})
