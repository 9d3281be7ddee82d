"""The query parser on its own: what each piece of syntax becomes."""

from __future__ import annotations

import pytest

from searchapp.query import MAX_CLAUSES, parse


def shape(text: str) -> tuple[list[list[tuple[str, ...]]], list[tuple[str, ...]]]:
    parsed = parse(text)
    return ([[c.terms for c in group] for group in parsed.groups],
            [c.terms for c in parsed.negatives])


def test_words_are_and_groups_of_stems() -> None:
    assert shape("Elections refugees") == ([[("elect",)], [("refuge",)]], [])


def test_or_joins_neighbours_and_binds_tighter_than_and() -> None:
    assert shape("a1 b2 OR c3 d4") == ([[("a1",)], [("b2",), ("c3",)], [("d4",)]], [])


def test_not_and_minus_exclude() -> None:
    assert shape("refugees NOT migrants -greece") == (
        [[("refuge",)]], [("migrant",), ("greec",)])


def test_phrase_keeps_its_terms_in_order() -> None:
    (clause,), = parse('"migrants and refugees"').groups
    assert clause.expressions == (("migrant", "refuge"),)
    assert not clause.plain


def test_field_scope() -> None:
    (clause,), = parse("title:refugees").groups
    assert clause.fields == ("title",) and clause.terms == ("refuge",)


def test_prefix_needs_two_letters() -> None:
    (clause,), = parse("coop*").groups
    assert clause.prefix == "coop"
    (short,), = parse("x*").groups
    assert short.prefix is None and short.terms == ("x",)
    assert parse("*").groups == ()


REFUGEE = [[("refuge",)]]


@pytest.mark.parametrize(("text", "expected"), [
    ('"unbalanced quote', ([[("unbalanc",)], [("quot",)]], [])),  # the quote is dropped
    ("((refugees", (REFUGEE, [])), ("refugees)", (REFUGEE, [])), ("refugees OR", (REFUGEE, [])),
    ("\x00\x1b[31m", ([[("31m",)]], [])),  # control characters are spaces
    ("OR", ([], [])), ("AND AND", ([], [])), ("NOT", ([], [])), ("-", ([], [])),
    ("title:", ([], [])), ("foo:", ([], [])), ("title:title:", ([], [])), ("*", ([], [])),
    ('""', ([], [])), ("^~!@#$%", ([], [])),
])
def test_anything_parses_into_the_words_a_reader_sees(
        text: str, expected: tuple[list[list[tuple[str, ...]]], list[tuple[str, ...]]]) -> None:
    """Syntax that cannot be used is read as the plain words around it (none: browse)."""
    assert shape(text) == expected


def test_lone_operators_and_empty_fields_are_dropped() -> None:
    assert shape("OR refugees") == ([[("refuge",)]], [])
    assert shape("refugees title:") == ([[("refuge",)]], [])
    assert shape('"refugees') == ([[("refuge",)]], [])


def test_unknown_field_is_read_as_words() -> None:
    (clause,), = parse("colour:red").groups
    assert clause.terms == ("colour", "red")


def test_control_characters_are_spaces() -> None:
    assert shape("refugees\x00elections") == ([[("refuge",)], [("elect",)]], [])


def test_the_number_of_parts_is_bounded() -> None:
    parsed = parse(" ".join(f"word{n}" for n in range(500)))
    assert len(parsed.groups) == MAX_CLAUSES


def test_synonyms_join_a_run_of_words_and_expand_single_words() -> None:
    (sse,), = parse("social and solidarity economy").groups
    assert set(sse.expressions) >= {("sse",), ("social", "solidar", "economi")}
    (coop,), = parse("co-op").groups
    assert set(coop.expressions) >= {("cooper",), ("coop",), ("co", "op")}


def test_synonyms_match_the_words_as_typed_not_their_stems() -> None:
    for typed in ("Cooper", "cooperation", "cooperate"):
        (clause,), = parse(typed).groups
        assert clause.expressions == (("cooper",),)
    (coop,), = parse("cooperatives").groups  # a plural "s" is allowed
    assert ("coop",) in coop.expressions and coop.expressions[0] == ("cooper",)


def test_an_acronym_typed_as_a_name_is_a_name() -> None:
    assert [c.expressions for g in parse("Ngo Dinh Diem").groups for c in g] == [
        (("ngo",),), (("dinh",),), (("diem",),)]
    for typed in ("NGO", "ngo", "NGOs"):
        (clause,), = parse(typed).groups
        assert ("non", "government", "organis") in clause.expressions


def test_stop_words_are_reported_and_kept_inside_an_entry() -> None:
    assert parse("what is the").stopped == ("what", "is", "the")
    assert parse("what is the").only_stop_words
    assert parse("-the").only_stop_words and not parse("").only_stop_words
    sse = parse("the social and solidarity economy")
    assert sse.stopped == ("the",)
    (clause,), = sse.groups
    assert ("sse",) in clause.expressions
