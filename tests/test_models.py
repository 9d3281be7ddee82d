from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchapp.models import _CONTROL, InvalidItem, build_item, derive_id, normalise_space


def test_defaults_and_normalisation() -> None:
    item = build_item({"title": "  Two\n  spaces ", "date": "2017-09-27"}, organisation="ILO")
    assert item.title == "Two spaces"
    assert item.organisation == "ILO"
    assert item.type == "News"
    assert item.language == "en"
    assert item.date == dt.date(2017, 9, 27)
    assert item.year == 2017
    assert item.summary == ""


def test_id_from_record_then_url_then_derived() -> None:
    assert build_item({"id": "a1", "title": "T", "url": "https://x"}, organisation="O").id == "a1"
    assert build_item({"title": "T", "url": "https://x"}, organisation="O").id == "https://x"
    derived = build_item({"title": "T", "date": "2016-01-01"}, organisation="O").id
    assert derived == derive_id("o", dt.date(2016, 1, 1), " t ")
    assert derived != build_item({"title": "T"}, organisation="O").id


def test_record_organisation_wins_over_fallback() -> None:
    assert build_item({"title": "T", "organisation": "CECOP"}, organisation="ILO").organisation \
        == "CECOP"


@pytest.mark.parametrize(("record", "message"), [
    ({"title": "   "}, "title is missing or blank"),
    ({"title": "T", "date": "2017-02-30"}, "does not exist"),
    ({"title": "T", "date": "27/09/2017"}, "is not an ISO date"),
    ({"title": "T", "language": "english"}, "two-letter"),
    ({"title": "T", "colour": "red"}, "unknown field(s) 'colour'"),
    ({"title": ["list"]}, "title must be text"),
    ({"title": "T", "year": 2016, "date": "2017-01-01"}, "does not match date"),
])
def test_invalid_records_name_the_problem(record: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidItem, match=None) as info:
        build_item(record, organisation="ILO")
    assert message in str(info.value)


def test_missing_organisation() -> None:
    with pytest.raises(InvalidItem, match="organisation is missing"):
        build_item({"title": "T"})


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text(alphabet=" ab\t\x1f\xa0"))
def test_plain_ascii_text_is_cleaned_as_any_text(text: str) -> None:
    """build_item's shortcut for printable ASCII gives what the general rule gives."""
    expected = normalise_space(_CONTROL.sub(" ", text))
    if expected:
        assert build_item({"title": text, "organisation": "ICA"}).title == expected
