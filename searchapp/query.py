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
(`searchapp.engine.Term`, `Word`, `Phrase`, `And`, `Or`, `Every`, `Nothing`): a
plain word in both text fields is one `Word`, scored once across them.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Generic, TypeVar

from searchapp.analysis import TOKEN_PATTERN, analyzer, fold, tag, tongue
from searchapp.analysis import compile as compile_chain
from searchapp.engine import (
    And,
    Budget,
    Every,
    Nothing,
    Or,
    Phrase,
    Query,
    Term,
    Vocabulary,
    Word,
)
from searchapp.engine.scoring import query_weight
from searchapp.engine.words import edit_distance
from searchapp.fields import TEXT_FIELDS

MAX_CLAUSES = 32  # parts of a query beyond this are ignored
# A long query (a pasted paragraph) is answered with its first this many analysed
# terms, and says it was shortened (issue #12).
MAX_QUERY_TERMS = 64
# Once expanded (prefixes, synonyms, each word in each field searched), a query reads
# at most this many posting lists; prefixes share what the other parts leave (#11).
MAX_EXPANDED_TERMS = 512
MAX_PREFIX_TERMS = 64  # a prefix matches at most this many (most frequent) words
PREFIX_SCAN_LIMIT = 20_000  # and at most this many words are looked at to choose them,
# shared by all the prefixes of one query: index terms (cheap to list) ...
QUERY_SCAN_LIMIT = 20_000
# ... and unstemmed spelling words (each stemmed to find its term: dearer).
QUERY_WORD_SCAN_LIMIT = 1_000
# A prefix whose share of spelling words is smaller than this looks at none: its
# words come from the index terms that start with it (a prefix of a stem).
MIN_WORD_SCAN = 64
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
    # The words as typed, lowercased and accents folded, stop words kept: what
    # synonyms are matched on (`co-op` is ("co", "op")), and typo tolerance.
    words: tuple[str, ...] = ()
    start: int = 0  # where a stop word stood in the query (to report them in order)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.expressions[0] if self.expressions else ()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """AND of groups, each group an OR of clauses; minus the negative clauses."""

    groups: tuple[tuple[Clause, ...], ...] = ()
    negatives: tuple[Clause, ...] = ()
    shortened: bool = False  # words past MAX_CLAUSES or MAX_QUERY_TERMS were left out
    # Words left out because they are stop words (folded, in order, once each).
    stopped: tuple[str, ...] = ()

    @property
    def only_stop_words(self) -> bool:
        """Whether every word typed was a stop word (nothing left to search for)."""
        return bool(self.stopped) and not self.has_words

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
    # What of the query was narrowed to bound its work, for the reader (#11).
    warnings: list[str] = field(default_factory=list)
    # Words the index does not know, matched by typo tolerance: each one as
    # typed (folded) → the vocabulary words it matched, closest first.
    typos: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def everything(self) -> bool:
        """Whether every document matches (only exclusions were given)."""
        return isinstance(self.query, Every)


# Parsing ------------------------------------------------------------------


def _expression(text: str) -> Expression:
    return tuple(t.text for t in analyzer()(text))


def typed_words(text: str) -> tuple[str, ...]:
    """The words of `text` as typed, lowercased and accents folded; stop words kept."""
    return tuple(fold(w) for w in compile_chain().tokens.findall(text))


def _stop_words(words: tuple[str, ...]) -> tuple[str, ...]:
    stops = compile_chain().stop_words
    return tuple(w for w in words if w in stops)


def _clause(raw_word: str | None, phrase: str | None, field_name: str | None) -> Clause | None:
    fields = (field_name.lower(),) if field_name else TEXT_FIELDS
    if phrase is not None:
        terms = _expression(phrase)
        if not terms:
            return None
        return Clause(f'"{phrase}"', (terms,), fields=fields, plain=False,
                      words=typed_words(phrase))
    assert raw_word is not None
    word = raw_word
    if re.fullmatch(r"\w+:", word):  # `title:` or `foo:` with nothing after it
        return None
    if word.endswith("*"):
        core = word.rstrip("*")
        if len(core) >= MIN_PREFIX and re.fullmatch(r"\w+", core):
            stemmed = [t.text for t in analyzer()(core, removestops=False)] or [core.lower()]
            return Clause(word, prefix=fold(core), fields=fields,
                          plain=False, expressions=((stemmed[0],),), words=(fold(core),))
        word = core
    terms = _expression(word)
    if not terms:
        return None
    plain = field_name is None and len(terms) == 1
    return Clause(word, (terms,), fields=fields, plain=plain, words=typed_words(word))


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> ParsedQuery:
    """Read a query string; never raises. Cached: a request reads it several times."""
    text = _CONTROL.sub(" ", text)
    groups: list[list[Clause]] = []
    negatives: list[Clause] = []
    stopped: list[tuple[int, str]] = []  # (where, word): stop words left out
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
            words = typed_words(word if phrase is None else phrase)
            stops = _stop_words(words)
            if not stops or negated or phrase is not None or match["field"]:
                stopped.extend((match.start(), w) for w in stops)
                continue
            # A bare stop word holds its place, so that synonyms spanning it
            # ("social and solidarity economy") are found; dropped after that.
            if full:
                stopped.extend((match.start(), w) for w in stops)
                continue
            clause = Clause(word, words=words, start=match.start())
        if clause.expressions or clause.prefix is not None:  # a stop word uses no terms
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
    merged = []
    for group in _apply_synonyms(groups):
        kept = tuple(c for c in group if c.expressions or c.prefix is not None)
        stopped.extend((c.start, w) for c in group if c not in kept for w in c.words)
        if kept:
            merged.append(kept)
    left_out = tuple(dict.fromkeys(w for _, w in sorted(stopped)))
    return ParsedQuery(tuple(merged), tuple(negatives), shortened, left_out)


# Synonyms -----------------------------------------------------------------
#
# Entries are matched on the words as typed (lowercased, accents folded), not
# on their stems: stems would make "Cooper" and "cooperation" (stem "cooper")
# expand like "cooperative". A whole entry must be typed, word for word, with
# one liberty, an English plural "s" on its last word ("NGOs", "co-ops"). An
# entry written in capitals is an acronym: it does not match a word typed as a
# name, a capital and then small letters ("Ngo" in "Ngo Dinh Diem"; "NGO" and
# "ngo" match).


@dataclass(frozen=True, slots=True)
class _Entry:
    expressions: tuple[Expression, ...]  # every expression of its group(s), analysed
    acronym: bool  # written in capitals in the synonyms file


@functools.cache
def synonym_groups() -> tuple[tuple[tuple[tuple[str, ...], Expression, bool], ...], ...]:
    """The synonym groups of searchapp/data/synonyms.txt: for each expression, its
    words as typed (folded), its terms, and whether it is an acronym."""
    text = resources.files("searchapp").joinpath("data/synonyms.txt").read_text("utf-8")
    groups = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        entries: dict[tuple[str, ...], tuple[tuple[str, ...], Expression, bool]] = {}
        for part in line.split(","):
            part = part.strip()
            words, terms = typed_words(part), _expression(part)
            if words and terms:
                acronym = len(words) == 1 and part.isupper() and len(part) > 1
                entries.setdefault(words, (words, terms, acronym))
        if len({terms for _, terms, _ in entries.values()}) > 1:
            groups.append(tuple(entries.values()))
    return tuple(groups)


@functools.cache
def _synonym_index() -> dict[tuple[str, ...], _Entry]:
    """Each expression's typed words (and their plural) → its entry."""
    found: dict[tuple[str, ...], tuple[list[Expression], bool]] = {}
    for group in synonym_groups():
        expressions = list(dict.fromkeys(terms for _, terms, _ in group))
        for words, _, acronym in group:
            *head, last = words
            keys = [words]
            if not last.endswith("s"):
                keys.append((*head, last + "s"))
            elif not acronym and len(last) > 3 and not last.endswith("ss"):
                keys.append((*head, last[:-1]))  # "Sustainable Development Goal"
            for key in keys:
                known, was_acronym = found.setdefault(key, ([], acronym))
                known.extend(e for e in expressions if e not in known)
                found[key] = (known, was_acronym and acronym)
    return {k: _Entry(tuple(v), acronym) for k, (v, acronym) in found.items()}


def _name_cased(typed: str) -> bool:
    """Written like a name: a capital, then small letters ("Ngo", not "NGO" or "NGOs")."""
    word = typed.strip('"')
    if len(word) > 2 and word.endswith("s") and word[:-1].isupper():
        return False
    return word[:1].isupper() and any(c.islower() for c in word[1:])


def _synonyms_of(words: tuple[str, ...], typed: str) -> tuple[Expression, ...] | None:
    entry = _synonym_index().get(words)
    if entry is None or (entry.acronym and _name_cased(typed)):
        return None
    return entry.expressions


def _apply_synonyms(groups: list[list[Clause]]) -> list[list[Clause]]:
    """Join runs of bare words that spell a synonym entry, then expand it."""
    index = _synonym_index()
    longest = max((len(k) for k in index), default=1)
    out: list[list[Clause]] = []
    i = 0
    while i < len(groups):
        group = groups[i]
        if len(group) == 1 and _bare(group[0]):
            matched = 0
            for size in range(len(groups) - i, 0, -1):
                run = groups[i:i + size]
                if not all(len(g) == 1 and _bare(g[0]) for g in run):
                    continue
                key = tuple(w for g in run for w in g[0].words)
                if len(key) > longest:
                    continue
                text = " ".join(g[0].text for g in run)
                expressions = _synonyms_of(key, text)
                if expressions is not None:
                    own = tuple(t for g in run for t in g[0].terms)
                    expressions = tuple(dict.fromkeys((own, *expressions)))
                    out.append([Clause(text, expressions, plain=size == 1 and run[0][0].plain,
                                       words=key)])
                    matched = size
                    break
            if not matched:
                out.append(group)
                matched = 1
            i += matched
        else:
            out.append([_expand_single(c) for c in group])
            i += 1
    return out


def _bare(clause: Clause) -> bool:
    """Typed as a bare word: not quoted, not a prefix, not scoped to a field."""
    return (clause.prefix is None and clause.fields == TEXT_FIELDS
            and not clause.text.startswith('"'))


def _expand_single(clause: Clause) -> Clause:
    if clause.prefix is None and len(clause.expressions) == 1:
        expressions = _synonyms_of(clause.words, clause.text)
        if expressions is not None:
            return replace(clause, expressions=tuple(dict.fromkeys(
                (*clause.expressions, *expressions))))
    return clause


# Building -----------------------------------------------------------------


class _Allowance:
    """What one query may still expand into (`MAX_EXPANDED_TERMS` posting lists,
    `QUERY_SCAN_LIMIT` index terms and `QUERY_WORD_SCAN_LIMIT` spelling words
    looked at), shared fairly among its prefixes, and what was narrowed."""

    def __init__(self, parsed: ParsedQuery, budget: Budget | None = None,
                 languages: int = 1) -> None:
        self.budget = budget
        clauses = [*parsed.positives, *parsed.negatives]
        prefixes = [c for c in clauses if c.prefix is not None]
        # Each clause is asked in every language searched: its lists count that often.
        fixed = languages * sum(len(c.fields) * max(1, len(c.expressions))
                                for c in clauses if c.prefix is None)
        self.terms = MAX_EXPANDED_TERMS
        room = max(0, MAX_EXPANDED_TERMS - fixed)
        per_field = sum(len(c.fields) for c in prefixes) or 1
        # The posting lists are shared among the languages too; the scans are not (a
        # prefix's words are read once per language, and the scan is what is bounded).
        self.prefix_terms = min(MAX_PREFIX_TERMS, max(1, room // (languages * per_field)))
        self.term_scan = min(PREFIX_SCAN_LIMIT, max(1, QUERY_SCAN_LIMIT // per_field))
        self.word_scan = min(PREFIX_SCAN_LIMIT, max(1, QUERY_WORD_SCAN_LIMIT // per_field))
        self.narrowed: list[str] = []  # prefixes that reached their share
        self.cut: list[str] = []  # parts whose alternatives were left out

    def take(self, lists: int) -> bool:
        """`lists` more posting lists, if the query may still read them."""
        if self.terms < lists:
            return False
        self.terms -= lists
        return True

    def warnings(self) -> list[str]:
        out = []
        if self.narrowed:
            named = ", ".join(self.narrowed[:5])
            more = f" and {len(self.narrowed) - 5} more" if len(self.narrowed) > 5 else ""
            share = self.prefix_terms
            out.append(f"{named}{more}: each searched for at most {share} of the words"
                       f" starting with it, to keep the search quick.")
        if self.cut:
            out.append(f"Some alternatives of {', '.join(self.cut[:5])} were left out: one"
                       f" search reads at most {MAX_EXPANDED_TERMS} terms once expanded.")
        return out


def build(parsed: ParsedQuery, vocabulary: Vocabulary, *, match: str = "all",
          languages: Sequence[str] = ("en",), budget: Budget | None = None) -> Built | None:
    """The engine's query for `parsed` (None: no words, list everything).

    `match="any"` joins the groups with OR instead of AND. A part typed more
    than once (``flutter flutter``, ``a OR b OR a``) is asked once, its scores
    weighted by BM25's query-term saturation (`scoring.query_weight`). Each
    clause is looked for in every language of `languages` (those of the index,
    or those a `language` filter selects): its terms in each language's
    namespace (`searchapp.analysis.tag`), one word across them all.
    The query is bounded as a whole once expanded (`MAX_EXPANDED_TERMS`, the scan
    limits); what was narrowed is said in `Built.warnings`. With a `budget`
    whose time runs out, prefixes stop looking for more words.
    """
    if not parsed.has_words:
        return None
    built = Built(Nothing())
    languages = tuple(dict.fromkeys(languages)) or ("en",)
    allowance = _Allowance(parsed, budget, len(languages))
    groups = [(_group(g, vocabulary, built, allowance, languages), n)
              for g, n in Counter(parsed.groups).items()]
    # A group of only stop words in a language asks nothing of its items: within an AND
    # it lets them through, unscored; not when every group is such a one there (the
    # query would list every item of that language), nor within an OR.
    everywhere = set.intersection(*(free for (_, free), _ in groups)) if groups else set()
    parts = [weighted(_let_through(q, free - everywhere if match == "all" else set()),
                      query_weight(n))
             for (q, free), n in groups]
    positive: Query
    if not parts:
        positive = Every()
    elif len(parts) == 1:
        positive = parts[0]
    else:
        positive = And(tuple(parts)) if match == "all" else Or(tuple(parts))
    if parsed.negatives:
        built.exclude = Or(tuple(_clause_query(c, vocabulary, set(), None, languages,
                                               allowance=allowance)
                                 for c in parsed.negatives))
    built.query = positive
    built.warnings = allowance.warnings()
    return built


def _group(group: tuple[Clause, ...], vocabulary: Vocabulary, built: Built,
           allowance: _Allowance, languages: tuple[str, ...] = ("en",)
           ) -> tuple[Query, set[str]]:
    """The group's query, and the languages in which every clause of it is only stop
    words (it asks nothing of their items)."""
    queries = []
    free: set[str] | None = None
    for clause, n in Counter(group).items():
        stops: set[str] = set()
        queries.append(weighted(_clause_query(clause, vocabulary, built.wanted, built.typos,
                                              languages, allowance=allowance, free=stops),
                                query_weight(n)))
        free = stops if free is None else free & stops
    return (queries[0] if len(queries) == 1 else Or(tuple(queries))), free or set()


def _let_through(query: Query, languages: set[str]) -> Query:
    """`query`, or any item of `languages` (unscored)."""
    through = [Term(LANGUAGE_FIELD, language, boost=0.0) for language in sorted(languages)]
    if not through:
        return query
    parts = through if isinstance(query, Nothing) else [query, *through]
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


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
                  typos: dict[str, tuple[str, ...]] | None = None,
                  languages: tuple[str, ...] = ("en",), *,
                  allowance: _Allowance | None = None, free: set[str] | None = None) -> Query:
    """One clause in every language searched; with `typos` (positive clauses), a word
    no item has in any language also matches close words (`close_words`), recorded
    there.

    The words as typed are analysed in each language; when they make one term,
    its terms in every language and field are one `Word` (one IDF for the
    word, whatever the language of the items that have it). English also has
    the clause's other expressions (synonyms) as parsed. A language in which
    every word is a stop word asks nothing of its items: it is added to `free`
    (the caller decides what that means), so "die Genossenschaft" need not ask
    German items for "die", and "-die" excludes none of them. Every
    alternative counts against the query's `allowance` (`MAX_EXPANDED_TERMS`).
    """
    if allowance is None:  # a clause on its own
        allowance = _Allowance(ParsedQuery(((clause,),)), languages=len(languages))
    alternatives: list[Query] = []
    lists = len(clause.fields)  # posting lists per word: one per field
    cut = False
    if clause.prefix is not None:
        for language in languages:
            # Another language's stems starting with the prefix as typed count too.
            starting, more = _expand(vocabulary, clause.prefix,
                                  clause.terms[0] if language == "en" else clause.prefix,
                                  clause.fields, language=language,
                                  limit=allowance.prefix_terms, scan=allowance.term_scan,
                                  word_scan=allowance.word_scan, budget=allowance.budget)
            if more and allowance.prefix_terms < MAX_PREFIX_TERMS \
                    and clause.text not in allowance.narrowed:
                allowance.narrowed.append(clause.text)
            for term in starting:
                if allowance.take(lists):
                    wanted.add(term)
                    alternatives.append(_word(term, clause.fields))
                else:
                    cut = True
        if not alternatives:  # nothing starts with it: a term that matches nothing
            alternatives.append(Term(clause.fields[0], clause.prefix))
        if cut:
            allowance.cut.append(clause.text)
        return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))
    words = _WORDS.findall(clause.text)
    pairs: list[tuple[str, str]] = []  # the typed word in every language and field
    typed_english: tuple[str, ...] = ()
    # (Leaving out the languages where a word is `absent`: nothing to ask of their items.)
    for language in present_in(vocabulary, words, languages):
        analyse = tongue(language)
        terms = tuple(t for w in words if (t := analyse.query_term(w)) is not None)
        if language == "en":
            typed_english = terms
        if not terms:  # only stop words in this language: its items are not asked for them
            if free is not None:
                free.add(language)
            continue
        # Only the fields where every term is in some item: a term no item has matches
        # nothing and adds nothing to the word's score or IDF, and most languages of a
        # many-language index have none of a query's terms.
        fields = [f for f in clause.fields
                  if all(vocabulary.doc_frequency(f, t) for t in terms)]
        if not fields:
            continue
        if not allowance.take(len(fields) * len(terms)) and (alternatives or pairs):
            cut = True
            continue
        wanted.update(terms)
        if len(terms) == 1:
            pairs.extend((f, terms[0]) for f in fields)
        else:
            alternatives.extend(Phrase(f, terms) for f in fields)
    if "en" in languages:
        for expression in clause.expressions:
            terms = tuple(tag("en", t) for t in expression)
            if terms == typed_english:
                continue  # asked above
            if not allowance.take(lists * len(terms)) and (alternatives or pairs):
                cut = True
                continue
            wanted.update(terms)
            if len(terms) == 1:
                alternatives.append(_word(terms[0], clause.fields))
            else:
                alternatives.extend(Phrase(f, terms) for f in clause.fields)
    if pairs:
        alternatives.insert(0, Term(*pairs[0]) if len(pairs) == 1 else Word(tuple(pairs)))
    # `pairs` holds only terms some item has: none means no item has the word as typed.
    if typos is not None and not pairs and _tolerant(clause):
        close = close_words(vocabulary, clause.words[0], clause.fields, languages)
        if close:
            typos[clause.words[0]] = tuple(dict.fromkeys(w for w, _, _ in close))
        # A close word's terms in every language are one word (one IDF), as a typed
        # word's are.
        grouped: dict[str, tuple[list[str], int]] = {}
        for near, term, edits in close:
            if term not in wanted:
                grouped.setdefault(near, ([], edits))[0].append(term)
        for near, (listed, edits) in grouped.items():
            terms = tuple(dict.fromkeys(t for t in listed if t not in wanted))
            if not terms:
                continue
            if not allowance.take(len(clause.fields) * len(terms)):
                cut = True
                break
            wanted.update(terms)
            pairs_near = tuple((f, t) for t in terms for f in clause.fields)
            alternatives.append(Term(*pairs_near[0], TYPO_BOOST ** edits)
                                if len(pairs_near) == 1
                                else Word(pairs_near, TYPO_BOOST ** edits))
    if cut:
        allowance.cut.append(clause.text)
    if not alternatives:
        return Nothing()
    return _either(alternatives)


def _either(alternatives: list[Query]) -> Query:
    """Any of the alternatives, as a balanced tree of two-way ORs: sums of two parts
    are Whoosh's bit for bit (`searchapp.engine.scoring.exact_sum`), so the arrays
    path needs no rescoring for a word with many alternatives (synonyms, close
    words)."""
    if len(alternatives) <= 2:
        return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))
    half = len(alternatives) // 2
    return Or((_either(alternatives[:half]), _either(alternatives[half:])))


# Small languages ----------------------------------------------------------
#
# Stemming a word is the dear part of looking it up (nltk's Snowball, in Python:
# 10-40 µs a word and language), and a query is looked up in every language of
# the index. A language with few items has few terms, and the stemmers of these
# languages rewrite only the end of a word, so a term begins as its word does
# (`head`: the first two letters of the folded word, a "y" read as "i"; or the
# whole term, when it is shorter). A word whose start begins none of a small
# language's terms cannot have a term there: it is not stemmed in that language.
# Russian (whose stemmer spells Latin letters in Cyrillic) is always stemmed; so
# are English (a large language in practice, with its own chain), words with an
# apostrophe (elided articles), and in Finnish, which undoubles a word's first
# letters ("ppo" → "po"), words that begin with a doubled letter.
#
# In the languages of `THREE_LETTERS` a term keeps its word's first three letters
# (or is the word's first one or two, when it is that short), so the test is on
# three letters, which rules out many more words:
# - Danish, Norwegian, Swedish, German: every step deletes or rewrites a suffix that
#   lies in R1, which these stemmers start after the third letter at the earliest
#   (the Snowball rule "adjusted so that the region before it has at least three
#   letters"). German's ß → ss and umlauts → plain vowels are what folding does to
#   the word too; the u/y marked between vowels only change case.
# - Spanish, Italian, Portuguese: RV starts after the third letter at the earliest;
#   the steps on R1 (from the third letter) only delete ("-amente"), and R2 starts
#   later still. Accents dropped from a stem are dropped by folding too.
# - French: RV and R1 can start at the third letter, but a suffix there is deleted,
#   leaving a two-letter term, or rewritten to a string that begins with the same
#   letter ("-aux" → "-al", "-euse" → "-eux", "-amment" → "-ant", "-emment" →
#   "-ent", "-ier" → "-i"); the other steps act on the last letters (undoubling
#   "-enn", "-ell"...: the third letter stays) or on accents and marked vowels.
# Dutch (which undoubles a vowel anywhere in the last syllable: "wool" → "wol"),
# Finnish and Hungarian keep the two-letter test.
# tests/test_multilingual.py checks both properties on every language's words and on
# every suffix of each stemmer after short prefixes (the same check over 2.5 million
# words per language found no exception, #13).

HEADED = frozenset({"fr", "es", "it", "de", "pt", "nl", "da", "sv", "no", "hu", "fi"})
THREE_LETTERS = frozenset({"fr", "es", "it", "de", "pt", "da", "sv", "no"})
UNDOUBLING = frozenset({"fi"})
# A language with more terms than this (over the text fields) is not small: looking
# its terms over would cost more than stemming saves.
SMALL_LANGUAGE_TERMS = 5_000


V = TypeVar("V")


class _PerVocabulary(Generic[V]):
    """A dict per vocabulary, for what is worked out once per vocabulary and dropped with
    it (weakly keyed). The last vocabulary asked for is remembered (weakly too): nearly
    every look is for the live snapshot's, and a weak-keyed look costs a new weak
    reference each time (asked for every word in every language of a query)."""

    def __init__(self) -> None:
        self._table: weakref.WeakKeyDictionary[Vocabulary, dict[str, V]] = \
            weakref.WeakKeyDictionary()
        self._last: tuple[Callable[[], Vocabulary | None], dict[str, V]] = (
            lambda: None, {})

    def of(self, vocabulary: Vocabulary) -> dict[str, V]:
        alive, known = self._last
        if alive() is vocabulary:
            return known
        found = self._table.get(vocabulary)
        if found is None:
            found = self._table.setdefault(vocabulary, {})
        self._last = (weakref.ref(vocabulary), found)
        return found


_HEADS: _PerVocabulary[frozenset[str] | None] = _PerVocabulary()


def start_letters(language: str) -> int:
    """How many of a word's first letters its terms in `language` keep (`HEADED`)."""
    return 3 if language in THREE_LETTERS else 2


def starts(folded: str, letters: int) -> str:
    """A folded word's first `letters` letters, a "y" read as "i" (`head` for two)."""
    return folded[:letters].replace("y", "i")


def language_heads(vocabulary: Vocabulary, language: str) -> frozenset[str] | None:
    """The `starts` of a small language's terms in the text fields, on
    `start_letters(language)` letters (kept with the vocabulary); None when the
    language is not small or not `HEADED`."""
    if language not in HEADED:
        return None
    known = _HEADS.of(vocabulary)
    if language not in known:
        heads: set[str] | None = set()
        tag_length = len(tag(language, ""))
        letters = start_letters(language)
        seen = 0
        for f in TEXT_FIELDS:
            for term in vocabulary.terms(f, tag(language, "")):
                seen += 1
                if seen > SMALL_LANGUAGE_TERMS:
                    heads = None
                    break
                heads.add(starts(term[tag_length:], letters))  # type: ignore[union-attr]
            if heads is None:
                break
        known[language] = None if heads is None else frozenset(heads)
    return known[language]


@dataclass(frozen=True, slots=True)
class _Shape:
    """What `absent` needs of a word, whatever the language."""

    lowered: str
    elided: bool  # has an apostrophe
    doubled: bool  # its folded form begins with a doubled letter
    one: str  # `starts` on one, two and three letters
    two: str
    three: str


@functools.lru_cache(maxsize=65_536)
def _shape(word: str) -> _Shape:
    lowered = word.lower()
    folded = _fold_other(lowered)
    three = starts(folded, 3)
    return _Shape(lowered, "'" in word or "’" in word, folded[:1] == folded[1:2],
                  three[:1], three[:2], three)


def absent(vocabulary: Vocabulary, word: str, language: str) -> bool:
    """Whether `word` (as typed, or a spelling word) surely has no term that items in
    `language` have, known without stemming it: the language is small, and the word's
    first letters (`start_letters`) begin none of its terms, nor is any of its terms
    the word's first letter or two. False for a stop word there (it has no term, and
    says so), an elided word, a Finnish word beginning with a doubled letter, or a
    language that is not small or not `HEADED`."""
    if language not in HEADED:
        return False
    heads = language_heads(vocabulary, language)
    if heads is None:
        return False
    shape = _shape(word)
    if shape.elided or shape.lowered in _stop_words_of(language) \
            or (shape.doubled and language in UNDOUBLING):
        return False
    if language in THREE_LETTERS and shape.three in heads:
        return False
    return shape.two not in heads and shape.one not in heads


class _HeadIndex:
    """Every small language's `language_heads` of one vocabulary at once: which small
    languages have a head, and which have a stop word (`present_in`)."""

    __slots__ = ("by_head", "made_with", "not_small", "stops")

    def __init__(self, vocabulary: Vocabulary) -> None:
        # What it was made with (tests change these to ask every language).
        self.made_with = (HEADED, THREE_LETTERS, UNDOUBLING)
        self.not_small: set[str] = set()  # HEADED, but with too many terms to look over
        by_head: dict[str, set[str]] = {}
        stops: dict[str, set[str]] = {}
        for language in HEADED:
            heads = language_heads(vocabulary, language)
            if heads is None:
                self.not_small.add(language)
                continue
            for found in heads:
                by_head.setdefault(found, set()).add(language)
            for word in _stop_words_of(language):
                stops.setdefault(word, set()).add(language)
        self.by_head = {k: frozenset(v) for k, v in by_head.items()}
        self.stops = {k: frozenset(v) for k, v in stops.items()}


_HEAD_INDEXES: _PerVocabulary[_HeadIndex] = _PerVocabulary()
_NONE: frozenset[str] = frozenset()


def present_in(vocabulary: Vocabulary, words: Sequence[str],
               languages: Sequence[str]) -> list[str]:
    """The languages of `languages` (in order) in which no word of `words` is `absent`:
    the same answer, from one look per word at the heads of every small language
    (`_HeadIndex`) rather than one call of `absent` per word and language."""
    known = _HEAD_INDEXES.of(vocabulary)
    index = known.get("")
    if index is None or index.made_with != (HEADED, THREE_LETTERS, UNDOUBLING):
        index = known[""] = _HeadIndex(vocabulary)
    can: set[str] | None = None  # small languages no word is absent from, so far
    for word in words:
        shape = _shape(word)
        if shape.elided:
            continue  # absent nowhere
        heads = index.by_head
        found = (heads.get(shape.two, _NONE) | heads.get(shape.one, _NONE)
                 | index.stops.get(shape.lowered, _NONE))
        if shape.three != shape.two:  # only a THREE_LETTERS language has 3-letter heads
            found |= heads.get(shape.three, _NONE) & THREE_LETTERS
        if shape.doubled:
            found |= UNDOUBLING
        can = set(found) if can is None else can & found
    if can is None:
        return list(languages)
    return [code for code in languages
            if code not in HEADED or code in index.not_small or code in can]


_PEAKS: _PerVocabulary[dict[str, int] | None] = _PerVocabulary()


def _language_peaks(vocabulary: Vocabulary, language: str) -> dict[str, int] | None:
    """For each of a small language's `language_heads`, the most documents a term
    beginning so is in, added over the text fields (kept with the vocabulary); None
    when the language is not small or not `HEADED`."""
    if language_heads(vocabulary, language) is None:
        return None
    known = _PEAKS.of(vocabulary)
    if language not in known:
        documents: Counter[str] = Counter()
        for f in TEXT_FIELDS:
            for term in vocabulary.terms(f, tag(language, "")):
                documents[term] += vocabulary.doc_frequency(f, term)
        tag_length = len(tag(language, ""))
        letters = start_letters(language)
        peaks: dict[str, int] = {}
        for term, count in documents.items():
            key = starts(term[tag_length:], letters)
            peaks[key] = max(peaks.get(key, 0), count)
        known[language] = peaks
    return known[language]


def most_documents(vocabulary: Vocabulary, word: str, language: str) -> int | None:
    """A bound on the documents (added over the text fields) that `word`'s term in a
    small language is in, known without stemming it: the most of any of that
    language's terms that begin as the word's term must (`absent`); None when the
    language is not small or not `HEADED` (nothing is known without stemming)."""
    peaks = _language_peaks(vocabulary, language)
    if peaks is None:
        return None
    shape = _shape(word)
    if shape.elided or (shape.doubled and language in UNDOUBLING):
        return max(peaks.values(), default=0)  # its term may begin otherwise
    most = max(peaks.get(shape.two, 0), peaks.get(shape.one, 0))
    if language in THREE_LETTERS:
        most = max(most, peaks.get(shape.three, 0))
    return most


@functools.cache
def _stop_words_of(language: str) -> frozenset[str]:
    from searchapp.languages import LANGUAGES

    return LANGUAGES[language].stop_words


def _fold_other(lowered: str) -> str:
    from searchapp.languages import fold as fold_accents

    return fold_accents(lowered)


def term_if_present(vocabulary: Vocabulary, word: str, language: str) -> str | None:
    """`word`'s query term in `language`, or None: a stop word there, or a word
    `absent` from a small language (its term would match nothing)."""
    if absent(vocabulary, word, language):
        return None
    return tongue(language).query_term(word)


# Typo tolerance -----------------------------------------------------------
#
# As Meilisearch and Typesense do it: a word of 5 letters or more that the index
# does not know also matches the words of the index within one edit (two from 9
# letters), each weighted TYPO_BOOST per edit, so an item found through a close
# word ranks below one found through the word itself. An edit is a letter
# added, dropped or changed, or two neighbours swapped; the first letter must be
# right (Meilisearch counts a typo there as two), which is also what keeps the
# lookup small (`searchapp.engine.words`). Numbers, prefixes, quoted phrases and
# exclusions are never widened. "Did you mean" is left for what this cannot
# reach (`searchapp.spelling`).

TYPO_EDITS = ((9, 2), (5, 1))  # (from this many letters, this many edits)
# A mistyped word matches at most this many index terms (Typesense's max_candidates
# default): each one is a term more to score, and to rescore at the cut.
MAX_TYPO_TERMS = 4
TYPO_BOOST = 0.5  # a close word's score is multiplied by this once per edit


def allowed_edits(word: str) -> int:
    """How many edits typo tolerance allows in a word (0: none)."""
    if not word.isalpha():
        return 0
    return next((edits for letters, edits in TYPO_EDITS if len(word) >= letters), 0)


def _tolerant(clause: Clause) -> bool:
    """Whether the clause is one word, typed bare or field-scoped, long enough for typo
    tolerance (the caller knows whether any item has it)."""
    return not (clause.prefix is not None or len(clause.expressions) != 1
                or len(clause.terms) != 1 or len(clause.words) != 1
                or clause.text.startswith('"') or not allowed_edits(clause.words[0]))


def close_words(vocabulary: Vocabulary, word: str, fields: tuple[str, ...],
                languages: Sequence[str] = ("en",)) -> list[tuple[str, str, int]]:
    """(word, its index term, edits) for the vocabulary's words close to `word` (a
    folded word), a term for each of `languages` whose items have the word: fewest
    edits first, then most documents; at most MAX_TYPO_TERMS distinct terms.

    A close word is stemmed in a small language only when its term there could be
    among those kept: when it could come before the last of them is found (what its
    documents there can be is bounded, `most_documents`), or when a term of that
    language is kept (it could be the same one). The answer is the one stemming every
    close word in every language gives."""
    edits = allowed_edits(word)
    if not edits:
        return []
    found: dict[str, int] = {}
    for f in fields:
        for near in vocabulary.near(f, word, distance=edits, prefix=1):
            if near not in found:
                found[near] = edit_distance(word, near, edits)
    found.pop(word, None)
    ranked: list[tuple[int, int, str, str]] = []  # (edits, -documents, word, term)
    later: list[tuple[int, int, str, str]] = []  # (edits, -most documents, word, language)

    def look_up(near: str, n: int, language: str) -> None:
        term = _stem_of(near) if language == "en" else tongue(language).query_term(near)
        if term and (frequency := sum(vocabulary.doc_frequency(f, term) for f in fields)):
            ranked.append((n, -frequency, near, term))

    for near, n in found.items():
        for language in languages:
            if absent(vocabulary, near, language):
                continue
            most = most_documents(vocabulary, near, language)
            if most is None:
                look_up(near, n, language)
            elif most:
                later.append((n, -most, near, language))
    later.sort()
    while later:
        ranked.sort()
        kept = _kept(ranked)
        last = kept[-1] if len(kept) == MAX_TYPO_TERMS else None
        if last is not None and later[0][:3] > last[:3]:
            break  # none of the rest can come before the last term kept
        n, _, near, language = later.pop(0)
        look_up(near, n, language)
    ranked.sort()
    keeping = {term.split(":", 1)[0] for *_, term in _kept(ranked)}
    for n, _, near, language in later:
        if language in keeping:  # its term may be one of those kept
            look_up(near, n, language)
    ranked.sort()
    out: list[tuple[str, str, int]] = []
    terms: set[str] = set()
    for n, _, near, term in ranked:
        if term not in terms and len(terms) >= MAX_TYPO_TERMS:
            continue
        terms.add(term)
        out.append((near, term, n))
    return out


def _kept(ranked: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    """The entries of sorted `ranked` that bring each of the first MAX_TYPO_TERMS
    distinct terms."""
    kept = []
    terms: set[str] = set()
    for entry in ranked:
        if entry[3] not in terms:
            if len(terms) == MAX_TYPO_TERMS:
                break
            terms.add(entry[3])
            kept.append(entry)
    return kept



def _word(term: str, fields: tuple[str, ...], boost: float = 1.0) -> Query:
    """One word in some fields: a `Word` (scored once across them) or, in one, a `Term`."""
    if len(fields) == 1:
        return Term(fields[0], term, boost)
    return Word(tuple((f, term) for f in fields), boost)


def _expand(vocabulary: Vocabulary, folded: str, stemmed: str | None, fields: tuple[str, ...],
            *, language: str = "en", limit: int = MAX_PREFIX_TERMS, scan: int = PREFIX_SCAN_LIMIT,
            word_scan: int = PREFIX_SCAN_LIMIT, budget: Budget | None = None
            ) -> tuple[list[str], bool]:
    """The index terms (in `language`'s namespace) of the most frequent words starting
    with the prefix: at most `limit`, chosen among the first `scan` terms and
    `word_scan` words of each field; and whether there were more to choose from.

    Words are looked up unstemmed (the spelling words beside each field), so
    `cooperat*` finds "cooperatives" although its stem is "cooper"; stems that
    start with the prefix count too.
    """
    frequency: dict[str, int] = {}
    more = False
    analyse = tongue(language)

    def count(term: str | None) -> None:
        if term and term not in frequency:
            frequency[term] = sum(vocabulary.doc_frequency(g, term) for g in fields)

    def stop(n: int, most: int) -> bool:
        return n >= most or (n % 64 == 63 and budget is not None and budget.over())

    for f in fields:
        if stemmed is not None:
            for n, term in enumerate(vocabulary.terms(f, tag(language, stemmed))):
                if stop(n, scan):
                    more = True
                    break
                count(term)
        for n, word in enumerate(vocabulary.words(f, folded) if word_scan >= MIN_WORD_SCAN
                                 else ()):
            if stop(n, word_scan):
                more = True
                break
            count(analyse.query_term(word) if language != "en" else _stem_of(word))
    ranked = sorted((t for t in frequency if frequency[t]), key=lambda t: (-frequency[t], t))
    return ranked[:limit], more or len(ranked) > limit


@functools.lru_cache(maxsize=65_536)
def _stem_of(word: str) -> str:
    found = [t.text for t in analyzer()(word, removestops=False)]
    return tag("en", found[0]) if len(found) == 1 else ""
