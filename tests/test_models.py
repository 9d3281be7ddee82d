from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchapp.models import (
    _CONTROL,
    _DATE,
    InvalidItem,
    build_item,
    check_id,
    derive_id,
    normalise_space,
    parse_date,
)


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
    if expected:  # (the language given: detecting it could load lingua past the deadline)
        assert build_item({"title": text, "organisation": "ICA"}, language="en").title == expected


def _date_by_the_pattern(value: str) -> dt.date | str | None:
    """How `parse_date` read every string before YYYY-MM-DD had its shortcut: the date,
    or the message of the problem."""
    text = value.strip()
    if not text:
        return None
    match = _DATE.fullmatch(text)
    if not match:
        return f"date {value!r} is not an ISO date like 2017-09-27"
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        return f"date {value!r} does not exist ({exc})"


_DATE_CHARACTERS = st.sampled_from("0123456789" * 4 + "٢٠١٩ -W+T:")


@pytest.mark.parametrize("value", [
    "2024-06-01", "2024-02-29", "2023-02-29", "2024-06-31", "0000-01-01", "9999-12-31",
    "٢٠١٩-٠١-٠١", "2024-W01-1", "2024-1-1", " 2024-06-01", "2024-06-01T10:00", "20240601",
    "2024-13-01", "2024-00-10", "20x4-06-01",
])
def test_dates_read_as_the_pattern_reads_them(value: str) -> None:
    try:
        found: dt.date | str | None = parse_date(value)
    except InvalidItem as exc:
        found = str(exc)
    assert found == _date_by_the_pattern(value)


@given(st.lists(_DATE_CHARACTERS, min_size=4, max_size=4), st.lists(_DATE_CHARACTERS,
       min_size=2, max_size=2), st.lists(_DATE_CHARACTERS, min_size=2, max_size=2),
       st.sampled_from(["-", "W", " "]))
def test_dates_shaped_yyyy_mm_dd_read_as_the_pattern_reads_them(
        year: list[str], month: list[str], day: list[str], dash: str) -> None:
    # The shortcut for ten characters with dashes at 4 and 7 (fromisoformat) gives the
    # same dates and the same problems: Arabic-Indic digits, week dates, day 31 of June.
    value = f"{''.join(year)}{dash}{''.join(month)}-{''.join(day)}"
    try:
        found: dt.date | str | None = parse_date(value)
    except InvalidItem as exc:
        found = str(exc)
    assert found == _date_by_the_pattern(value)


@pytest.mark.parametrize("item_id", ["a/./b", "..", "a/..", "./a", "a/../b", "."])
def test_ids_with_dot_parts_are_refused(item_id: str) -> None:
    with pytest.raises(InvalidItem, match="'.' or '..' part"):
        check_id(item_id)


@pytest.mark.parametrize("item_id", ["a.b/c", "...", "a/.b", "b./c", "x"])
def test_ids_with_dots_inside_parts_are_kept(item_id: str) -> None:
    assert check_id(item_id) == item_id
