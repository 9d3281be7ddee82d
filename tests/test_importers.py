"""Import formats: the sample pages, other pages of the same layouts, every bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from searchapp.errors import BadParameter
from searchapp.importers import Hints, Parsed, collect, guess_format, parse_bytes
from searchapp.importers.decode import UndecodableInput, decode
from searchapp.models import derive_id

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def parse(content: str | bytes, *, name: str = "page.txt", org: str | None = "ACME",
          fmt: str = "auto", layout: str | None = None) -> Parsed:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return parse_bytes(data, name=name, fmt=fmt, hints=Hints(organisation=org, layout=layout))


def problems(parsed: Parsed) -> list[str]:
    return [str(problem) for problem in parsed.problems]


def items(parsed: Parsed) -> list[dict[str, object]]:
    return [record.item.to_dict() for record in parsed.records]


@pytest.fixture(scope="module")
def samples() -> list[Parsed]:
    return collect([SAMPLES])


@pytest.fixture(scope="module")
def cecop(samples: list[Parsed]) -> Parsed:
    return next(parsed for parsed in samples if parsed.source.endswith("cecop-news.txt"))


@pytest.fixture(scope="module")
def ilo(samples: list[Parsed]) -> Parsed:
    return next(parsed for parsed in samples if parsed.source.endswith("ilo-cooperatives.txt"))


# --- the sample pages -------------------------------------------------------------


def test_samples_import_all_35_items_without_problems(samples: list[Parsed]) -> None:
    assert [Path(parsed.source).name for parsed in samples] == [
        "cecop-news.txt", "ilo-cooperatives.txt"]
    assert [problem for parsed in samples for problem in parsed.problems] == []
    records = [record for parsed in samples for record in parsed.records]
    assert len(records) == 35
    assert Counter(record.item.organisation for record in records) == {"CECOP": 25, "ILO": 10}
    assert len({record.item.id for record in records}) == 35


def test_cecop_types_and_dates(cecop: Parsed) -> None:
    found = items(cecop)
    assert Counter(item["type"] for item in found) == {
        "News": 15, "Press release": 8, "Position paper": 2}
    assert [item["date"] for item in found][:3] == ["2017-03-16", "2017-01-26", "2017-01-18"]
    assert found[-1]["date"] == "2015-11-14"
    assert all(item["url"] is None and item["language"] == "en" for item in found)


def test_cecop_first_item_has_truncated_title_and_no_label_or_summary(cecop: Parsed) -> None:
    first = cecop.records[0]
    assert first.line == 7
    assert first.item.to_dict() == {
        "id": derive_id("CECOP", dt.date(2017, 3, 16), first.item.title),
        "organisation": "CECOP",
        "title": "Giuseppe Guerini, President of CECOP: “Cooperatives are a real driver of "
                 "change and one of the few systems that, in today’s world, can provide "
                 "opportunities for growth and the empowerment of",
        "summary": "", "date": "2017-03-16", "year": 2017, "type": "News", "url": None,
        "language": "en", "source": cecop.source, "source_url": None,
        "language_origin": "given", "language_confidence": None,
    }


def test_cecop_press_release_keeps_its_cut_short_summary(cecop: Parsed) -> None:
    record = cecop.records[1]
    assert record.line == 14
    item = record.item
    assert (item.title, item.type, item.date) == (
        "European Parliament calls for the promotion of cooperatives", "Press release",
        dt.date(2017, 1, 26))
    assert item.summary == (
        "CECOP welcomes the European Parliament Resolution of 19 January 2017 on a European "
        "Pillar of Social Rights, led by MEP Maria Joao Rodrigues (S&D), which recognizes that "
        "cooperatives are an integral part of the social econom...")


def test_cecop_position_paper_and_unlabelled_items(cecop: Parsed) -> None:
    by_title = {record.item.title: record for record in cecop.records}
    paper = by_title["Declaration on migrants and refugees"]
    assert (paper.line, paper.item.type, paper.item.date) == (
        142, "Position paper", dt.date(2016, 4, 11))
    assert paper.item.summary.startswith("The gravest migration and humanitarian crisis")
    assert paper.item.summary.endswith("people-centred enterpri...")
    board = by_title["18/03 : CECOP Board"]
    assert (board.item.type, board.item.summary, board.item.date) == (
        "News", "", dt.date(2016, 1, 27))
    spain = by_title["Spanish women feel better and achieve higher positions working in "
                     "cooperatives"]
    assert spain.item.type == "News"
    assert spain.item.summary.endswith("feel better working in cooperatives.")


def test_ilo_items(ilo: Parsed) -> None:
    found = items(ilo)
    assert Counter(item["type"] for item in found) == {
        "News": 5, "Spotlight Interviews with Cooperators": 2, "COOP Champions": 1,
        "Event": 1, "International Day of Cooperatives": 1}
    assert [record.line for record in ilo.records] == [3, 9, 15, 23, 27, 35, 43, 51, 59, 67]
    champion = found[2]
    assert champion["title"] == "Özge Berber-Agtaş, ILO Office for Turkey in Ankara"
    assert (champion["type"], champion["date"], champion["organisation"]) == (
        "COOP Champions", "2017-07-06", "ILO")
    assert champion["summary"] == (
        "COOP Champions features ILO colleagues from around the world working on cooperatives "
        "and other social and solidarity economy enterprises. It highlights their "
        "contributions, and shares highlights of their experiences, current work, and future "
        "aspirations.")
    assert found[0]["summary"] == "" and found[0]["date"] == "2017-09-27"
    assert ilo.records[9].item.summary.startswith("During “The Potential of Cooperatives")


def test_ilo_item_without_date_or_summary(ilo: Parsed) -> None:
    event = ilo.records[3].item
    assert event.title == "The 9th Edition of the ILO Academy on Social and Solidarity Economy"
    assert (event.type, event.date, event.year, event.summary) == ("Event", None, None, "")
    assert event.id == derive_id("ILO", None, event.title)


def test_single_sample_file_finds_its_organisation_in_the_manifest_beside_it() -> None:
    (parsed,) = collect([SAMPLES / "ilo-cooperatives.txt"])
    assert parsed.problems == [] and len(parsed.records) == 10
    assert {record.item.organisation for record in parsed.records} == {"ILO"}


def test_reimporting_gives_the_same_ids(cecop: Parsed) -> None:
    again = parse((SAMPLES / "cecop-news.txt").read_bytes(), org="CECOP")
    assert [r.item.id for r in again.records] == [r.item.id for r in cecop.records]


# --- other pages of the same layouts --------------------------------------------

OTHER_DATED = """\
Home | About us | Members
Latest updates from the federation
Search this site

   3 February 2021

   Members meet online to plan “the next decade”



   Webinar



   A two-hour session on how worker-owned firms
   weather the crisis, with speakers from
   five countries…

   Read more »

9 Mar 2020
Annual report published
Report
The board’s yearly report is out.
Read More

12 Sept 2019

Cooperatives & the future of work

Read more

© 2021 Federation · Privacy
"""


def test_dated_blocks_page_with_other_chrome_labels_and_quirks() -> None:
    parsed = parse(OTHER_DATED.replace("\n", "\r\n"), org="Federation")
    assert problems(parsed) == []
    found = [(r.line, r.item.date, r.item.type, r.item.title, r.item.summary)
             for r in parsed.records]
    assert found == [
        (5, dt.date(2021, 2, 3), "Webinar", "Members meet online to plan “the next decade”",
         ("A two-hour session on how worker-owned firms weather the crisis, with speakers from "
         "five countries…")),
        (21, dt.date(2020, 3, 9), "Report", "Annual report published",
         "The board’s yearly report is out."),
        (27, dt.date(2019, 9, 12), "News", "Cooperatives & the future of work", ""),
    ]
    assert {r.item.organisation for r in parsed.records} == {"Federation"}


def test_dated_blocks_label_or_summary_is_told_by_shape() -> None:
    page = ("1 Jan 2020\nShort summary only\n\nThis one is a sentence.\n\nRead more\n\n"
            "2 Jan 2020\nTitle two\n\nEvent\n\nRead more\n\n"
            "3 Jan 2020\nTitle three\n\nIn brief\n\nFirst part.\n\nSecond part...\n\nRead more\n")
    parsed = parse(page)
    assert [(r.item.type, r.item.summary) for r in parsed.records] == [
        ("News", "This one is a sentence."),
        ("Event", ""),
        ("In brief", "First part. Second part..."),
    ]


def test_dated_blocks_page_does_not_need_known_wording() -> None:
    # The same layout with made-up words everywhere: only the shape matters.
    page = ("Zorblat news\n\n\n07 Oct 2022\n\nQwerty zxcv\n\nMeetup\n\nLorem ipsum dolor.\n\n"
            "Read more\n\n8 October 2022\n\nAsdf ghjk\n\nRead more\n")
    parsed = parse(page, name="zorblat.txt", org="Zorblat")
    assert [(r.item.title, r.item.type, r.item.date.isoformat() if r.item.date else None)
            for r in parsed.records] == [("Qwerty zxcv", "Meetup", "2022-10-07"),
                                         ("Asdf ghjk", "News", "2022-10-08")]


OTHER_NUMBERED = """\
Stories from the Workers' Network



1. Webinar
How to start a cooperative
5 Mar 2020
An introduction for
first-time founders.

Second paragraph, “quoted”.
2. Blog post
     Notes from the 2019 assembly
3. Interview
\tA talk with Ana Müller
\t14 November 2019
\tShe explains 3. reasons why.
"""


def test_numbered_list_page_with_other_header_labels_and_quirks() -> None:
    parsed = parse(OTHER_NUMBERED.replace("\n", "\r\n"), org="Network")
    assert problems(parsed) == []
    found = [(r.line, r.item.type, r.item.title, r.item.date, r.item.summary)
             for r in parsed.records]
    assert found == [
        (5, "Webinar", "How to start a cooperative", dt.date(2020, 3, 5),
         "An introduction for first-time founders. Second paragraph, “quoted”."),
        (12, "Blog post", "Notes from the 2019 assembly", None, ""),
        (14, "Interview", "A talk with Ana Müller", dt.date(2019, 11, 14),
         "She explains 3. reasons why."),
    ]


def test_numbered_list_items_are_the_longest_run_of_numbers() -> None:
    page = "7. Menu entry\nHeader\n1. News\nTitle one\n2. Event\nTitle two\n5. Not an item\n"
    parsed = parse(page)
    assert [(r.line, r.item.type, r.item.title, r.item.summary) for r in parsed.records] == [
        (3, "News", "Title one", ""), (5, "Event", "Title two", "5. Not an item")]


def test_dated_block_without_read_more_ends_at_the_next_date() -> None:
    page = "1 May 2020\nA\n\nA short summary.\n2 May 2020\nB\nRead more\nFooter text\n"
    parsed = parse(page)
    assert [(r.line, r.item.title, r.item.summary) for r in parsed.records] == [
        (1, "A", "A short summary."), (5, "B", "")]


def test_numbered_list_with_read_more_lines_stays_a_numbered_list() -> None:
    page = ("Header\n\n1. News\nTitle one\n01 May 2020\nRead more\n\n"
            "2. Event\nTitle two\n02 May 2020\nRead more\n")
    assert guess_format("p.txt", page) == "listing"
    parsed = parse(page)
    assert [(r.item.type, r.item.title, r.item.summary) for r in parsed.records] == [
        ("News", "Title one", ""), ("Event", "Title two", "")]


def test_manifest_layout_hint_is_used() -> None:
    page = "1 May 2020\nTitle\nRead more\n"
    assert [r.item.title for r in parse(page, layout="dated-blocks").records] == ["Title"]
    assert problems(parse(page, layout="numbered-list")) == [
        "page.txt:1: no items found in this listing page (layout numbered-list)"]
    assert problems(parse(page, layout="grid")) == [
        "page.txt:1: unknown listing layout 'grid'; expected one of dated-blocks, numbered-list"]


# --- JSON Lines and JSON arrays --------------------------------------------------


def test_jsonl_records_and_organisation_fallback() -> None:
    lines = [
        {"id": "a1", "title": "First", "date": "2020-01-02", "type": "Event", "url": "https://x/1"},
        {"title": "Second", "organisation": "Other", "summary": "Text", "year": 2019,
         "date": "2019-05-06"},
    ]
    text = json.dumps(lines[0]) + "\n\n   \n" + json.dumps(lines[1]) + "\n"
    parsed = parse(text, name="items.jsonl")
    assert problems(parsed) == []
    assert [(r.line, r.item.id, r.item.organisation, r.item.type) for r in parsed.records] == [
        (1, "a1", "ACME", "Event"),
        (4, derive_id("Other", dt.date(2019, 5, 6), "Second"), "Other", "News"),
    ]
    assert parsed.records[0].item.source == "items.jsonl"


def test_pretty_printed_json_array_reports_the_line_each_object_starts_on() -> None:
    data = [{"id": "a", "title": "One"}, {"id": "b", "title": " "}, {"id": "c", "title": "Three"}]
    text = json.dumps(data, indent=2)
    parsed = parse(text, name="items.json")
    assert [r.line for r in parsed.records] == [2, 10]
    assert problems(parsed) == ["items.json:6: title is missing or blank"]


def test_pretty_printed_objects_one_after_another() -> None:
    text = (json.dumps({"title": "One"}, indent=2) + "\n\n"
            + json.dumps({"title": "Two", "date": "2017-02-30"}, indent=2) + "\n"
            + json.dumps({"title": "Three"}, indent=2) + "\n{oops\n")
    parsed = parse(text, name="items.json")
    assert [(r.line, r.item.title) for r in parsed.records] == [(1, "One"), (9, "Three")]
    assert problems(parsed) == [
        "items.json:5: date '2017-02-30' does not exist (day is out of range for month)",
        ("items.json:12: invalid JSON: Expecting property name enclosed in double quotes "
        "(column 2)"),
    ]


def test_json_array_syntax_errors() -> None:
    assert problems(parse('[\n {"title": "a"},\n]', name="a.json")) == [
        "a.json:3: invalid JSON: Expecting value (column 1)"]
    assert problems(parse('[{"title": "a"}\n {"title": "b"}]', name="a.json")) == [
        "a.json:2: invalid JSON: expected ',' or ']' after an array element, found '{'"]
    assert problems(parse('[{"title": "a"}', name="a.json")) == [
        "a.json:1: invalid JSON: the array is not closed with ']'"]
    assert problems(parse('[]\n\nx', name="a.json")) == [
        "a.json:3: invalid JSON: unexpected text after the end of the array"]
    assert problems(parse("[]", name="a.json")) == []


def test_jsonl_bad_lines_are_reported_and_the_rest_still_read() -> None:
    text = '{"title": "ok"}\n{"title": "broken",\n[1, 2]\n"text"\n{"title": "ok 2"}\n'
    parsed = parse(text, name="x.jsonl")
    assert problems(parsed) == [
        "x.jsonl:2: invalid JSON: Expecting property name enclosed in double quotes (column 20)",
        "x.jsonl:3: expected a JSON object for an item, found an array",
        "x.jsonl:4: expected a JSON object for an item, found a string",
    ]
    assert [r.line for r in parsed.records] == [1, 5]


# --- CSV ----------------------------------------------------------------------


def test_csv_header_is_case_insensitive_and_empty_cells_are_absent() -> None:
    text = (' Title ,DATE, type ,Summary\r\n'
            'Plain,2020-01-02,,\r\n'
            '"Quoted, with comma","","Event","two\r\nlines"\r\n'
            'Last,2021-03-04,Report,end\r\n')
    parsed = parse(text, name="items.csv")
    assert problems(parsed) == []
    assert [(r.line, r.item.title, r.item.date, r.item.type, r.item.summary)
            for r in parsed.records] == [
        (2, "Plain", dt.date(2020, 1, 2), "News", ""),
        (3, "Quoted, with comma", None, "Event", "two lines"),
        (5, "Last", dt.date(2021, 3, 4), "Report", "end"),
    ]


def test_csv_with_semicolons_or_tabs() -> None:
    for delimiter in (";", "\t"):
        text = f"title{delimiter}date\nOne, two{delimiter}2020-01-02\n"
        parsed = parse(text, name="a.csv")
        assert [(r.item.title, r.item.date) for r in parsed.records] == [
            ("One, two", dt.date(2020, 1, 2))]


def test_csv_header_problems() -> None:
    assert problems(parse("name,when\nx,y\n", name="a.csv")) == [
        "a.csv:1: CSV header has no title column (found: 'name', 'when')"]
    assert problems(parse("title,colour\nx,red\n", name="a.csv")) == [
        ("a.csv:1: CSV header has unknown column(s) 'colour'; expected some of id, organisation, "
        "title, summary, date, type, url, language, source, year")]
    assert problems(parse("title,Title\nx,y\n", name="a.csv")) == [
        "a.csv:1: CSV header names column(s) more than once: 'title' 2 times"]


def test_csv_unclosed_quote_is_reported_where_its_record_starts() -> None:
    text = 'title,summary\nGood,fine\nBad,"never closed\nNext,row\nMore,rows\n'
    parsed = parse(text, name="a.csv")
    assert problems(parsed) == [
        ("a.csv:3: unclosed quote: a quoted field in the record starting on this line is never "
        "closed (it runs to the end of the file)")]
    assert [r.item.title for r in parsed.records] == ["Good"]


def test_csv_row_problems_keep_physical_line_numbers() -> None:
    text = ('title,date\n"multi\nline",2020-01-01\nExtra,2020-01-01,surplus\n'
            'Wrong,2017-02-30\n"Stray"quote,2020-01-01\nFine,\n')
    parsed = parse(text, name="a.csv")
    assert problems(parsed) == [
        "a.csv:4: record has 3 cells but the header has 2 columns (an unquoted comma?)",
        "a.csv:5: date '2017-02-30' does not exist (day is out of range for month)",
        "a.csv:6: malformed CSV: ',' expected after '\"'",
    ]
    assert [(r.line, r.item.title) for r in parsed.records] == [(2, "multi line"), (7, "Fine")]


# --- format choice --------------------------------------------------------------


def test_format_is_chosen_by_extension_then_by_content() -> None:
    assert guess_format("a.jsonl", "x") == "jsonl"
    assert guess_format("a.NDJSON", "x") == "jsonl"
    assert guess_format("a.json", "x") == "jsonl"
    assert guess_format("a.csv", "x") == "csv"
    assert guess_format("a.txt", '\n  {"title": "x"}') == "jsonl"
    assert guess_format("a.txt", "[\n]") == "jsonl"
    assert guess_format("upload", "id,Title,date\n") == "csv"
    assert guess_format("a.txt", "News, views and more\n") == "listing"
    assert guess_format("a.csv", "x", hints=Hints(layout="dated-blocks")) == "listing"
    parsed = parse('{"title": "x"}\n', name="a.txt", fmt="jsonl")
    assert [r.item.title for r in parsed.records] == ["x"]
    with pytest.raises(BadParameter, match="format: must be one of .*, not 'xml'"):
        parse("x", fmt="xml")


# --- bad input: one specific message each ----------------------------------------

LONG = "x" * 2_000_000

BAD_INPUTS: list[tuple[str, bytes, str]] = [
    ("a.jsonl", b"", "a.jsonl:1: file is empty"),
    ("a.jsonl", b" \n\r\n\t \n", "a.jsonl:1: file is empty (only whitespace)"),
    ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a.txt:1: binary file, not text"),
    ("a.txt", bytes(range(1, 9)) * 50 + b"\xff\xfe\xfd" * 100, "a.txt:1: binary file, not text"),
    ("a.csv", "title\nok\nCaf\xe9 cr\xe8me\n".encode("latin-1"),
     ("a.csv:3: not UTF-8: byte 0xE9 in column 4 cannot be decoded (is the file Latin-1 or "
     "Windows-1252? save it as UTF-8)")),
    ("a.jsonl", b'{"title": "ok"}\n{"title": "no end}\n',
     "a.jsonl:2: invalid JSON: Unterminated string starting at (column 11)"),
    ("a.jsonl", b'{"title": "ok"}\n42\n',
     "a.jsonl:2: expected a JSON object for an item, found a number"),
    ("a.jsonl", b'{"title": "x", "date": "2017-02-30"}\n',
     "a.jsonl:1: date '2017-02-30' does not exist (day is out of range for month)"),
    ("a.csv", b"title,date\nx,2017-02-30\n",
     "a.csv:2: date '2017-02-30' does not exist (day is out of range for month)"),
    ("a.txt", b"Chrome\n\n30 Feb 2017\nTitle\nRead more\n",
     "a.txt:3: date '30 Feb 2017' does not exist (day is out of range for month)"),
    ("a.txt", b"Chrome\n\n1 Feb 2017\nTitle\nRead more\n\n12 Foo 2017\nTitle\nRead more\n",
     "a.txt:7: '12 Foo 2017' is not a date like '16 Mar 2017': unknown month 'Foo'"),
    ("a.txt", b"Header\n1. News\nTitle\n2017/02/03\n",
     "a.txt:4: '2017/02/03' is not a date like '16 Mar 2017' or '27 September 2017'"),
    ("a.jsonl", b'{"title": "  \\t "}\n', "a.jsonl:1: title is missing or blank"),
    ("a.csv", b"title,summary\n   ,text\n", "a.csv:2: title is missing or blank"),
    ("a.jsonl", ('{"title": "ok"}\n{"title": "' + LONG + '"}\n').encode(),
     "a.jsonl:2: line is 2,000,013 characters long; the limit is 1,000,000"),
    ("a.txt", b"Welcome to our site\n\nNothing to see here.\n",
     ("a.txt:1: no items found in this listing page (layout not recognised: expected dated "
     "blocks ending in 'Read more', or a numbered list '1. Label')")),
    ("a.jsonl", b'{"id": "x", "title": "A"}\n{"title": "B"}\n{"id": "x", "title": "C"}\n',
     "a.jsonl:3: duplicate id 'x' (first on line 1)"),
    ("a.jsonl", b'{"title": "A", "colour": "red", "tags": []}\n',
     ("a.jsonl:1: unknown field(s) 'colour', 'tags'; expected some of id, organisation, title, "
     "summary, date, type, url, language, source")),
    ("a.csv", b"title,summary,\nx,y,z\n",
     "a.csv:2: value in column 3, which has no name in the header"),
]


@pytest.mark.parametrize(("name", "data", "expected"), BAD_INPUTS,
                         ids=[expected.split(": ", 1)[1][:40] for _, _, expected in BAD_INPUTS])
def test_bad_input_gets_one_specific_problem(name: str, data: bytes, expected: str) -> None:
    assert problems(parse(data, name=name)) == [expected]


def test_bad_inputs_get_different_messages() -> None:
    messages = Counter(expected.split(": ", 1)[1] for _, _, expected in BAD_INPUTS)
    # Only the same mistake in two inputs gets the same message.
    assert {message for message, count in messages.items() if count > 1} == {
        "binary file, not text", "title is missing or blank",
        "date '2017-02-30' does not exist (day is out of range for month)"}


def test_listing_without_organisation_names_the_file() -> None:
    parsed = parse("2 Jan 2020\nTitle\nRead more\n", name="pages/news.txt", org=None)
    assert problems(parsed) == [
        ("pages/news.txt:1: cannot determine the organisation of pages/news.txt: a listing page "
        "does not name it; pass --org NAME or list the file in a manifest.toml")]
    assert parsed.records == []


def test_listing_duplicates_are_reported_as_same_item() -> None:
    page = "2 Jan 2020\nSame title\nRead more\n\n02 January 2020\nSame  title\nRead more\n"
    parsed = parse(page)
    item_id = derive_id("ACME", dt.date(2020, 1, 2), "Same title")
    assert problems(parsed) == [
        (f"page.txt:5: duplicate id '{item_id}' (first on line 1): same organisation, date "
        "and title")]
    assert len(parsed.records) == 1


def test_listing_keeps_valid_items_beside_a_bad_date() -> None:
    page = "30 Feb 2017\nBad\nRead more\n1 Mar 2017\nGood\nRead more\n"
    parsed = parse(page)
    assert problems(parsed) == [
        "page.txt:1: date '30 Feb 2017' does not exist (day is out of range for month)"]
    assert [r.item.title for r in parsed.records] == ["Good"]


def test_text_with_byte_order_marks_is_decoded() -> None:
    text = "title,organisation\r\nÖzge,ACME\r\n"
    for data in (text.encode("utf-8-sig"), text.encode("utf-16"), text.encode("utf-32")):
        parsed = parse(data, name="a.csv")
        assert problems(parsed) == []
        assert [r.item.title for r in parsed.records] == ["Özge"]


def test_decode_limits_and_line_endings() -> None:
    assert decode(b"a\r\nb\rc\n") == "a\nb\nc\n"
    with pytest.raises(UndecodableInput) as caught:
        decode(b"x" * 101, max_bytes=100)
    assert (caught.value.line, caught.value.message) == (
        1, "file is larger than the limit of 100 bytes")
    with pytest.raises(UndecodableInput) as caught:
        decode(b"ok\r\nok\r\n" + b"y" * 11, max_line=10)
    assert (caught.value.line, caught.value.message) == (
        3, "line is 11 characters long; the limit is 10")
    with pytest.raises(UndecodableInput) as caught:
        decode(b"\xff\xfe" + "ab\n".encode("utf-16-le") + b"\x00\xd8")
    assert caught.value.line == 2 and "UTF-16" in caught.value.message


# --- files, directories and manifests -------------------------------------------


def test_directory_with_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.txt").write_text("1 May 2020\nTitle A\nRead more\n", encoding="utf-8")
    (pages / "b.jsonl").write_text('{"title": "B"}\n{"title": "C", "organisation": "Own"}\n',
                                   encoding="utf-8")
    (pages / "ignored.txt").write_text("not listed", encoding="utf-8")
    (pages / "manifest.toml").write_text(
        '# pages\n[[file]]\npath = "a.txt"\norganisation = "Alpha"\nlayout = "dated-blocks"\n'
        'source_url = "https://alpha.example/news"\n\n'
        '[[file]]\npath = "b.jsonl"\n\n'
        '[[file]]\npath = "gone.txt"\norganisation = "Gamma"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = collect(["pages"], organisation="Fallback")
    assert [parsed.source for parsed in results] == [
        "pages/manifest.toml", "pages/a.txt", "pages/b.jsonl"]
    assert problems(results[0]) == [
        "pages/manifest.toml:12: file 'gone.txt' listed in the manifest does not exist"]
    assert [(r.item.organisation, r.item.title, r.item.source, r.item.url)
            for parsed in results[1:] for r in parsed.records] == [
        ("Alpha", "Title A", "pages/a.txt", None),
        ("Fallback", "B", "pages/b.jsonl", None),
        ("Own", "C", "pages/b.jsonl", None),
    ]


def test_manifest_problems(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "manifest.toml").write_text(
        '[[file]]\npath = "a.txt"\nlayout = "grid"\n\n[[file]]\npath = "a.txt"\norg = "X"\n'
        '\n[[file]]\norganisation = "Y"\n\n[[file]]\npath = "a.txt"\norganisation = 3\n',
        encoding="utf-8")
    (manifest,) = collect([tmp_path])
    assert problems(manifest) == [
        (f"{tmp_path}/manifest.toml:2: unknown layout 'grid' for 'a.txt'; expected one of "
        "dated-blocks, numbered-list"),
        (f"{tmp_path}/manifest.toml:6: unknown key(s) 'org' in [[file]]; expected some of path, "
        "organisation, layout, source_url, language"),
        f"{tmp_path}/manifest.toml:9: [[file]] has no path",
        f"{tmp_path}/manifest.toml:13: [[file]] values must be strings: organisation",
    ]
    (tmp_path / "manifest.toml").write_text('[[file]\npath = "a.txt"\n', encoding="utf-8")
    (manifest,) = collect([tmp_path])
    assert [(p.line, p.message.split(":")[0]) for p in manifest.problems] == [
        (1, "invalid TOML")]


def test_directory_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("title\nFrom CSV\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("1. News\nFrom listing\n", encoding="utf-8")
    (tmp_path / "c.md").write_text("# not imported", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("1. News\nHidden\n", encoding="utf-8")
    results = collect([tmp_path], organisation="Org")
    assert [Path(parsed.source).name for parsed in results] == ["a.txt", "b.csv"]
    assert [r.item.title for parsed in results for r in parsed.records] == [
        "From listing", "From CSV"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (result,) = collect([empty])
    assert problems(result) == [
        (f"{empty}:1: directory has no manifest.toml and no file to import (looked for .txt, "
        ".text, .jsonl, .ndjson, .json, .csv, .xml, .rss, .atom, .rdf, .html, .htm)")]


def test_missing_file_and_organisation_from_org(tmp_path: Path) -> None:
    page = tmp_path / "news.txt"
    page.write_text("1 May 2020\nTitle\nRead more\n", encoding="utf-8")
    missing, found, orphan = collect([tmp_path / "nope.txt", page, str(page)],
                                     organisation=None)
    assert problems(missing) == [f"{tmp_path}/nope.txt:1: no such file or directory"]
    assert "cannot determine the organisation" in problems(found)[0]
    (with_org,) = collect([page], organisation="Given")
    assert [r.item.organisation for r in with_org.records] == ["Given"]
    assert orphan.source == str(page)
