"""Query handling a ranking can trust (#12): stop-word-only queries, synonyms matched
as typed, and typo tolerance, as a program (/api/search), a reader (/) and the CLI
see them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from searchapp import operations
from searchapp.config import Settings
from searchapp.query import MAX_TYPO_TERMS, TYPO_BOOST
from tests.conftest import Cli, app_over, search

ITEMS = [
    {"id": "coop", "title": "Housing co-op opens in Leeds"},
    {"id": "cooperative", "title": "A cooperative bakery grows"},
    {"id": "cooper", "title": "Anna Cooper joins the board"},
    {"id": "cooperation", "title": "Cooperation between towns"},
    {"id": "diem", "title": "Ngo Dinh Diem remembered", "summary": "A history lecture."},
    {"id": "ngo", "title": "NGO coalition writes to ministers"},
    {"id": "nongov", "title": "A non-governmental organisation for housing"},
    {"id": "sse", "title": "SSE in Europe"},
    {"id": "social", "title": "The social and solidarity economy in Spain"},
    {"id": "guerini", "title": "Giuseppe Guerini elected", "summary": "CECOP president."},
    {"id": "women", "title": "Women in worker cooperatives"},
    {"id": "guide", "title": "What is the social economy? A guide"},
    {"id": "ranking", "title": "Ranking guerini women", "summary": "guerini, guerini, women"},
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("query-handling")
    settings = Settings.load({"catalog": root / "catalog.sqlite3", "index_dir": root / "index"},
                             environ={})
    path = root / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ITEMS), encoding="utf-8")
    operations.import_paths(settings, [path], organisation="Test")
    return settings


@pytest.fixture(scope="module", params=["arrays", "whoosh"])
def app(built: Settings, request: pytest.FixtureRequest) -> Iterator[Flask]:
    with app_over(built, engine=request.param) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def found(client: FlaskClient, q: str) -> set[str]:
    return {h["id"] for h in search(client, q=q, per_page=100)["hits"]}


def notices(client: FlaskClient, q: str) -> list[str]:
    html = client.get("/", query_string={"q": q}).get_data(as_text=True)
    return [re.sub(r"<[^>]+>", "", n) for n in re.findall(r'<p class="notice[^"]*">(.*?)</p>',
                                                            html, re.DOTALL)]


# Stop words -----------------------------------------------------------------


@pytest.mark.parametrize(("q", "words"), [
    ("the", ["the"]), ("what is the", ["what", "is", "the"]), ("-the", ["the"]),
    ("THE", ["the"]), ('"the" title:of', ["the", "of"]),
])
def test_a_query_of_stop_words_finds_nothing_and_says_why(
        client: FlaskClient, q: str, words: list[str]) -> None:
    data = search(client, q=q)
    assert data["total"] == 0 and data["hits"] == []
    assert data["too_common"] == words
    assert all(v["count"] == 0 for values in data["facets"].values() for v in values)
    quoted = ", ".join(f"“{w}”" for w in words[:-1])
    named = f"{quoted} and “{words[-1]}” are" if len(words) > 1 else f"“{words[0]}” is"
    assert notices(client, q) == [(f"{named} too common to search for, so nothing was searched."
                                   " Add a word that says what you are looking for.")]
    html = client.get("/", query_string={"q": q}).get_data(as_text=True)
    assert "Nothing matches" not in html


def test_browsing_without_words_still_lists_everything(client: FlaskClient) -> None:
    data = search(client)
    assert data["total"] == len(ITEMS) and data["too_common"] == []


def test_stop_words_beside_other_words_are_left_out_and_named(client: FlaskClient) -> None:
    data = search(client, q="what is the social economy")
    assert data["too_common"] == ["what", "is", "the"]
    assert {h["id"] for h in data["hits"]} == {"guide", "social"}
    assert not any("too common" in n for n in notices(client, "what is the social economy"))


def test_the_cli_says_the_words_are_too_common(built: Settings) -> None:
    result = Cli(built)("search", "what", "is", "the")
    assert result.exit_code == 0
    assert result.output.startswith("0 items")
    assert "too common to search for: what, is, the" in result.output


# Synonyms -------------------------------------------------------------------


@pytest.mark.parametrize("q", ["Cooper", "cooperation", "cooperate"])
def test_words_that_share_a_stem_with_an_entry_do_not_expand(client: FlaskClient,
                                                             q: str) -> None:
    assert "coop" not in found(client, q)


@pytest.mark.parametrize("q", ["co-op", "coop", "cooperative", "cooperatives", "Co-ops"])
def test_an_entry_typed_expands_to_its_group(client: FlaskClient, q: str) -> None:
    assert {"coop", "cooperative"} <= found(client, q)


def test_a_name_is_not_an_acronym(client: FlaskClient) -> None:
    assert found(client, "Ngo Dinh Diem") == {"diem"}
    assert found(client, "Ngo") == {"diem", "ngo"}  # the word itself, not the synonyms


@pytest.mark.parametrize("q", ["NGO", "ngo", "NGOs", "non-governmental organisation"])
def test_an_acronym_in_capitals_or_small_letters_expands(client: FlaskClient, q: str) -> None:
    assert {"ngo", "nongov"} <= found(client, q)


@pytest.mark.parametrize("q", ["SSE", "sse", "social and solidarity economy",
                               "Social and Solidarity Economy"])
def test_social_and_solidarity_economy_both_ways(client: FlaskClient, q: str) -> None:
    data = search(client, q=q)
    assert {h["id"] for h in data["hits"]} == {"sse", "social"}
    assert data["too_common"] == []  # "and" belongs to the entry


# Typo tolerance -------------------------------------------------------------


def test_a_mistyped_name_finds_the_items_and_marks_the_word_found(client: FlaskClient) -> None:
    data = search(client, q="guerrini")
    assert {h["id"] for h in data["hits"]} == {"guerini", "ranking"}
    assert data["typos"] == [{"word": "guerrini", "matched": ["guerini"]}]
    assert data["suggestion"] is None
    first = next(h for h in data["hits"] if h["id"] == "guerini")
    assert first["highlights"]["title"] == "Giuseppe <mark>Guerini</mark> elected"
    assert notices(client, "guerrini") == [
        "No item has “guerrini”, so close spellings were searched too: guerini."]


def test_woman_finds_women(client: FlaskClient) -> None:
    data = search(client, q="woman")
    assert {h["id"] for h in data["hits"]} == {"women", "ranking"}
    assert data["typos"] == [{"word": "woman", "matched": ["women"]}]
    women = next(h for h in data["hits"] if h["id"] == "women")
    assert women["highlights"]["title"] == "<mark>Women</mark> in worker cooperatives"


def test_swapped_letters_are_one_edit(client: FlaskClient) -> None:
    assert found(client, "wmoen") == {"women", "ranking"}
    assert found(client, "bakrey") == {"cooperative"}


def test_a_close_match_ranks_below_the_exact_word(client: FlaskClient) -> None:
    exact = {h["id"]: h["score"] for h in search(client, q="guerini")["hits"]}
    close = {h["id"]: h["score"] for h in search(client, q="guerrini")["hits"]}
    assert close.keys() == exact.keys()
    for item, score in close.items():
        assert score == pytest.approx(exact[item] * TYPO_BOOST, rel=1e-3)
    # One word typed right and one mistyped: the item with the word typed right leads.
    either = search(client, q="guerini OR womn")  # "womn": 4 letters, not widened
    assert either["typos"] == []


@pytest.mark.parametrize("q", [
    "wmn",  # under 5 letters
    "xomen",  # the first letter is wrong
    "guerrrinni",  # three edits
    '"guerrini"',  # quoted: exactly this
    "guerr*",  # a prefix
    "12345",  # not a word
])
def test_what_tolerance_does_not_widen(client: FlaskClient, q: str) -> None:
    data = search(client, q=q)
    assert data["typos"] == []
    assert data["total"] == 0


def test_an_exclusion_is_never_widened(client: FlaskClient) -> None:
    data = search(client, q="women -guerrini")
    assert {h["id"] for h in data["hits"]} == {"women", "ranking"}
    assert data["typos"] == []


def test_did_you_mean_stays_for_what_tolerance_cannot_fix(client: FlaskClient) -> None:
    short = search(client, q="wmen")
    assert short["total"] == 0 and short["suggestion"] == "women"
    two_edits = search(client, q="gurreini")  # 8 letters, two edits
    assert two_edits["total"] == 0 and two_edits["suggestion"] == "guerini"


def test_a_known_word_is_not_widened(client: FlaskClient) -> None:
    data = search(client, q="ranking")  # "banking" is one edit away, but "ranking" is known
    assert data["typos"] == [] and {h["id"] for h in data["hits"]} == {"ranking"}


def test_the_number_of_close_words_is_capped(custom_words: FlaskClient) -> None:
    data = search(custom_words, q="abcdefghix")  # ten letters: two edits
    assert len(data["typos"][0]["matched"]) == MAX_TYPO_TERMS
    assert data["total"] == MAX_TYPO_TERMS
    # The closest first: every one-edit word before any two-edit word.
    assert data["typos"][0]["matched"][:2] == ["abcdefghij", "abcdefghiz"]


@pytest.fixture
def custom_words(settings: Settings, tmp_path: Path) -> Iterator[FlaskClient]:
    """Twenty items, each with its own word one or two edits from "abcdefghix"."""
    one = ["abcdefghij", "abcdefghiz"]
    two = [f"abcdefgh{a}{b}" for a in "kl" for b in "mnopqrstu"][:18]
    records = [{"id": w, "title": f"{w} item"} for w in one + two]
    path = tmp_path / "words.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    operations.import_paths(settings, [path], organisation="Test")
    with app_over(settings) as app:
        yield app.test_client()
