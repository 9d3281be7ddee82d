"""From what a person typed to a Whoosh query.

The syntax is small and forgiving: words (all must match), ``"phrases"``,
``OR`` between two parts, ``NOT part`` or ``-part``, ``title:`` / ``summary:``
before a part, and ``prefix*`` with at least two letters. Whatever does not fit
(an unbalanced quote, a lone ``OR``, ``title:`` with nothing after it, a bare
``*``, control characters, unknown ``field:`` names) is read as plain words, so
parsing never fails.

Parsing (`parse`) needs no index; building the query (`build`) needs the
index's vocabulary (`searchapp.engine.Vocabulary`), to expand prefixes into a
bounded number of real terms. The query built is the engine's own small tree
(`searchapp.engine.Term`, `Phrase`, `And`, `Or`, `Every`, `Nothing`).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

from searchapp.analysis import TOKEN_PATTERN, analyzer, fold, tag, tongue
from searchapp.engine import And, Every, Nothing, Or, Phrase, Query, Term, Vocabulary, Word
from searchapp.engine.scoring import query_weight
from searchapp.fields import TEXT_FIELDS

MAX_CLAUSES = 32  # parts of a query beyond this are ignored
# A long query (a pasted paragraph) is answered with its first this many analysed
# terms, and says it was shortened (issue #12).
MAX_QUERY_TERMS = 64
MAX_PREFIX_TERMS = 64  # a prefix matches at most this many (most frequent) words
PREFIX_SCAN_LIMIT = 20_000  # and at most this many words are looked at to choose them
MIN_PREFIX = 2
LANGUAGE_FIELD = "language"

_WORDS = re.compile(TOKEN_PATTERN)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TOKEN = re.compile(
    r"""(?P<neg>-(?=[^\s-]))?                 # -word
        (?:(?P<field>""" + "|".join(TEXT_FIELDS) + r"""):(?=\S))?  # field:part
        (?:"(?P<phrase>[^"]*)"                # "a phrase"
          |(?P<word>[^\s"]+))                 # a word
      |(?P<quote>")                           # an unbalanced quote: ignored
    """,
    re.VERBOSE | re.IGNORECASE,
)

# One way of saying something: its terms in order (a phrase when more than one).
# Stop words leave no gap: Whoosh's StopFilter renumbers positions.
Expression = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Clause:
    """One part of a query: any of its expressions, or a prefix."""

    text: str  # as typed, for messages and spelling suggestions
    expressions: tuple[Expression, ...] = ()
    prefix: str | None = None
    fields: tuple[str, ...] = TEXT_FIELDS
    plain: bool = True  # a bare word (not a phrase, prefix or field-scoped part)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.expressions[0] if self.expressions else ()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """AND of groups, each group an OR of clauses; minus the negative clauses."""

    groups: tuple[tuple[Clause, ...], ...] = ()
    negatives: tuple[Clause, ...] = ()
    shortened: bool = False  # words past MAX_CLAUSES or MAX_QUERY_TERMS were left out

    @property
    def has_words(self) -> bool:
        return bool(self.groups or self.negatives)

    @property
    def ranked(self) -> bool:
        """Whether there are words to rank by (not only exclusions)."""
        return bool(self.groups)

    @property
    def positives(self) -> list[Clause]:
        return [c for group in self.groups for c in group]


@dataclass(slots=True)
class Built:
    """A query and the index terms it looks for (for highlighting)."""

    query: Query  # what must match; Every() when only exclusions were given
    wanted: set[str] = field(default_factory=set)
    # What must not match. Kept apart rather than as an AndNot query: Whoosh
    # 2.7.4's AndNotMatcher lets excluded documents through.
    exclude: Query | None = None

    @property
    def everything(self) -> bool:
        """Whether every document matches (only exclusions were given)."""
        return isinstance(self.query, Every)


# Parsing ------------------------------------------------------------------


def _expression(text: str) -> Expression:
    return tuple(t.text for t in analyzer()(text))


def _clause(raw_word: str | None, phrase: str | None, field_name: str | None) -> Clause | None:
    fields = (field_name.lower(),) if field_name else TEXT_FIELDS
    if phrase is not None:
        terms = _expression(phrase)
        if not terms:
            return None
        return Clause(f'"{phrase}"', (terms,), fields=fields, plain=False)
    assert raw_word is not None
    word = raw_word
    if re.fullmatch(r"\w+:", word):  # `title:` or `foo:` with nothing after it
        return None
    if word.endswith("*"):
        core = word.rstrip("*")
        if len(core) >= MIN_PREFIX and re.fullmatch(r"\w+", core):
            stemmed = [t.text for t in analyzer()(core, removestops=False)] or [core.lower()]
            return Clause(word, prefix=fold(core), fields=fields,
                          plain=False, expressions=((stemmed[0],),))
        word = core
    terms = _expression(word)
    if not terms:
        return None
    plain = field_name is None and len(terms) == 1
    return Clause(word, (terms,), fields=fields, plain=plain)


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> ParsedQuery:
    """Read a query string; never raises. Cached: a request reads it several times."""
    text = _CONTROL.sub(" ", text)
    groups: list[list[Clause]] = []
    negatives: list[Clause] = []
    pending_or = False
    pending_not = False
    used = 0  # analysed terms in the clauses kept
    full = False  # a cap was reached: what follows is only looked at, for `shortened`
    shortened = False
    for match in _TOKEN.finditer(text):
        if match["quote"]:
            continue
        word, phrase = match["word"], match["phrase"]
        if word in ("OR", "||"):
            pending_or = bool(groups)
            continue
        if word in ("AND", "&&"):
            continue
        if word == "NOT":
            pending_not = True
            continue
        clause = _clause(word, phrase, match["field"])
        negated = bool(match["neg"]) or pending_not
        pending_not = False
        if clause is None:
            continue
        size = max(1, len(clause.terms))
        if full or used + size > MAX_QUERY_TERMS:
            shortened = True
            break
        used += size
        if negated:
            negatives.append(clause)
        elif pending_or:
            groups[-1].append(clause)
        else:
            groups.append([clause])
        pending_or = False
        if len(groups) + len(negatives) >= MAX_CLAUSES:
            full = True
    merged = _apply_synonyms(groups)
    return ParsedQuery(tuple(tuple(g) for g in merged), tuple(negatives), shortened)


# Synonyms -----------------------------------------------------------------


@functools.cache
def synonym_groups() -> tuple[tuple[Expression, ...], ...]:
    """The synonym groups from searchapp/data/synonyms.txt, analysed."""
    text = resources.files("searchapp").joinpath("data/synonyms.txt").read_text("utf-8")
    groups = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        expressions = tuple(dict.fromkeys(
            e for part in line.split(",") if (e := _expression(part.strip()))))
        if len(expressions) > 1:
            groups.append(expressions)
    return tuple(groups)


@functools.cache
def _synonym_index() -> dict[tuple[str, ...], tuple[Expression, ...]]:
    """Each expression's terms → every expression of its group(s)."""
    index: dict[tuple[str, ...], list[Expression]] = {}
    for group in synonym_groups():
        for terms in group:
            index.setdefault(terms, [])
            index[terms].extend(e for e in group if e not in index[terms])
    return {k: tuple(v) for k, v in index.items()}


def _apply_synonyms(groups: list[list[Clause]]) -> list[list[Clause]]:
    """Join runs of plain words that spell a synonym expression, then expand it."""
    index = _synonym_index()
    longest = max((len(k) for k in index), default=1)
    out: list[list[Clause]] = []
    i = 0
    while i < len(groups):
        group = groups[i]
        if len(group) == 1 and group[0].plain:
            for size in range(min(longest, len(groups) - i), 0, -1):
                run = groups[i:i + size]
                if not all(len(g) == 1 and g[0].plain for g in run):
                    continue
                key = tuple(t for g in run for t in g[0].terms)
                if key in index:
                    text = " ".join(g[0].text for g in run)
                    out.append([Clause(text, index[key], plain=size == 1)])
                    i += size
                    break
            else:
                out.append(group)
                i += 1
        else:
            out.append([_expand_single(c, index) for c in group])
            i += 1
    return out


def _expand_single(clause: Clause, index: dict[tuple[str, ...], tuple[Expression, ...]]
                   ) -> Clause:
    if clause.prefix is None and clause.terms in index and len(clause.expressions) == 1:
        return replace(clause, expressions=index[clause.terms])
    return clause


# Building -----------------------------------------------------------------


def build(parsed: ParsedQuery, vocabulary: Vocabulary, *, match: str = "all",
          languages: Sequence[str] = ("en",)) -> Built | None:
    """The engine's query for `parsed` (None: no words, list everything).

    `match="any"` joins the groups with OR instead of AND. A part typed more
    than once (``flutter flutter``, ``a OR b OR a``) is asked once, its scores
    weighted by BM25's query-term saturation (`scoring.query_weight`). Each
    clause is looked for in every language of `languages` (those of the index,
    or those a `language` filter selects): its terms in each language's
    namespace (`searchapp.analysis.tag`), one word across them all.
    """
    if not parsed.has_words:
        return None
    built = Built(Nothing())
    languages = tuple(dict.fromkeys(languages)) or ("en",)
    parts = [weighted(_group(g, vocabulary, built.wanted, languages), query_weight(n))
             for g, n in Counter(parsed.groups).items()]
    positive: Query
    if not parts:
        positive = Every()
    elif len(parts) == 1:
        positive = parts[0]
    else:
        positive = And(tuple(parts)) if match == "all" else Or(tuple(parts))
    if parsed.negatives:
        built.exclude = Or(tuple(_clause_query(c, vocabulary, set(), languages)
                                 for c in parsed.negatives))
    built.query = positive
    return built


def _group(group: tuple[Clause, ...], vocabulary: Vocabulary, wanted: set[str],
           languages: tuple[str, ...] = ("en",)) -> Query:
    queries = [weighted(_clause_query(c, vocabulary, wanted, languages), query_weight(n))
               for c, n in Counter(group).items()]
    return queries[0] if len(queries) == 1 else Or(tuple(queries))


def weighted(q: Query, weight: float) -> Query:
    """`q` with its scores multiplied by `weight` (boosts pushed down to its leaves)."""
    if weight == 1.0:
        return q
    if isinstance(q, (Term, Word, Phrase)):
        return replace(q, boost=q.boost * weight)
    if isinstance(q, (And, Or)):
        return type(q)(tuple(weighted(p, weight) for p in q.parts))
    return q


def _clause_query(clause: Clause, vocabulary: Vocabulary, wanted: set[str],
                  languages: tuple[str, ...] = ("en",)) -> Query:
    """One clause in every language searched.

    The words as typed are analysed in each language; when they make one term,
    its terms in every language and field are one `Word` (one IDF for the
    word, whatever the language of the items that have it). English also has
    the clause's other expressions (synonyms) as parsed. A language in which
    every word is a stop word asks nothing of its items (they match, unscored),
    so "die Genossenschaft" does not need German items to hold "die".
    """
    alternatives: list[Query] = []
    if clause.prefix is not None:
        for language in languages:
            for term in expand_prefix(vocabulary, clause.prefix,
                                      clause.terms[0] if language == "en" else None,
                                      clause.fields, language=language):
                wanted.add(term)
                alternatives.append(_word(term, clause.fields))
        if not alternatives:  # nothing starts with it: a term that matches nothing
            alternatives.append(Term(clause.fields[0], clause.prefix))
        return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))
    words = _WORDS.findall(clause.text)
    pairs: list[tuple[str, str]] = []  # the typed word in every language and field
    typed_english: tuple[str, ...] = ()
    for language in languages:
        analyse = tongue(language)
        terms = tuple(t for w in words if (t := analyse.query_term(w)) is not None)
        if language == "en":
            typed_english = terms
        if not terms:  # only stop words in this language: its items are not asked for them
            alternatives.append(Term(LANGUAGE_FIELD, language, boost=0.0))
            continue
        wanted.update(terms)
        if len(terms) == 1:
            pairs.extend((f, terms[0]) for f in clause.fields)
        else:
            alternatives.extend(Phrase(f, terms) for f in clause.fields)
    if "en" in languages:
        for expression in clause.expressions:
            terms = tuple(tag("en", t) for t in expression)
            if terms == typed_english:
                continue  # asked above
            wanted.update(terms)
            if len(terms) == 1:
                alternatives.append(_word(terms[0], clause.fields))
            else:
                alternatives.extend(Phrase(f, terms) for f in clause.fields)
    if pairs:
        alternatives.insert(0, Term(*pairs[0]) if len(pairs) == 1 else Word(tuple(pairs)))
    if not alternatives:
        return Nothing()
    return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))


def _word(term: str, fields: tuple[str, ...], boost: float = 1.0) -> Query:
    """One word in some fields: a `Word` (scored once across them) or, in one, a `Term`."""
    if len(fields) == 1:
        return Term(fields[0], term, boost)
    return Word(tuple((f, term) for f in fields), boost)


def expand_prefix(vocabulary: Vocabulary, folded: str, stemmed: str | None,
                  fields: tuple[str, ...], *, language: str = "en") -> list[str]:
    """The index terms (in `language`'s namespace) of the most frequent words starting
    with the prefix.

    Words are looked up unstemmed (the spelling words beside each field), so
    `cooperat*` finds "cooperatives" although its stem is "cooper"; stems that
    start with the prefix count too.
    """
    frequency: dict[str, int] = {}
    analyse = tongue(language)

    def count(term: str | None) -> None:
        if term and term not in frequency:
            frequency[term] = sum(vocabulary.doc_frequency(g, term) for g in fields)

    for f in fields:
        if stemmed is not None:
            for n, term in enumerate(vocabulary.terms(f, tag(language, stemmed))):
                if n >= PREFIX_SCAN_LIMIT:
                    break
                count(term)
        for n, word in enumerate(vocabulary.words(f, folded)):
            if n >= PREFIX_SCAN_LIMIT:
                break
            count(analyse.query_term(word) if language != "en" else _stem_of(word))
    ranked = sorted((t for t in frequency if frequency[t]), key=lambda t: (-frequency[t], t))
    return ranked[:MAX_PREFIX_TERMS]


def _stem_of(word: str) -> str:
    found = [t.text for t in analyzer()(word, removestops=False)]
    return tag("en", found[0]) if len(found) == 1 else ""


def like(key_terms: list[tuple[str, float]]) -> Query:
    """Any of some weighted terms, in either text field (for related items)."""
    return Or(tuple(_word(term, TEXT_FIELDS, weight) for term, weight in key_terms))
