#!/usr/bin/env python3
"""Ranking quality on a judged collection: nDCG@10, MAP, P@10 and R@100.

The collection (JSON Lines of ``id``, ``title``, ``summary``; Cranfield by
default) is indexed into a temporary Whoosh index with the product's schema
and analysis chain (`searchapp.schema.schema()`, `searchapp.analysis`), from
items made by `searchapp.models.build_item`. Each query runs, as IR benchmarks
do, as an OR of its analysed words over title and summary, ranked by Whoosh's
BM25F, and is scored against the judgments. (The product ANDs a person's words;
the OR form ranks every document that shares a word, which is what the
metrics need.)

A variant swaps one piece of the product's chain (the stop list, the stemmer)
or changes the scoring (BM25F B and K1, the title boost, a proximity bonus), so
each figure says what the product would get with that setting::

    .venv/bin/python bench/relevance.py                  # the product as it is
    .venv/bin/python bench/relevance.py --proposed       # the settings proposed
    .venv/bin/python bench/relevance.py --sweep          # ablation: each change alone, all
    .venv/bin/python bench/relevance.py --explore        # every alternative for each lever
    .venv/bin/python bench/relevance.py --grid --stop nltk --title-boost 1   # K1 x B
    .venv/bin/python bench/relevance.py --cv             # 2-fold cross-validated tuning

Cranfield grades (lower is more relevant): gain is 5 - grade for grades 1-4,
and the unexplained grade -1 (the paper a question was written from) counts as
gain 4. MAP, P@10 and R@100 count every judged document as relevant. Scores
are means over every judged query; a query that finds nothing scores 0.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import itertools
import json
import math
import multiprocessing
import operator
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Self

from nltk.stem import LancasterStemmer, PorterStemmer
from whoosh import query as wq
from whoosh import scoring
from whoosh.analysis import STOP_WORDS as WHOOSH_STOP_WORDS
from whoosh.analysis import Analyzer, StopFilter
from whoosh.fields import Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.index import Index
from whoosh.lang.stopwords import stoplists

from searchapp import analysis
from searchapp.models import InvalidItem, Item, build_item
from searchapp.schema import schema as product_schema
from searchapp.schema import to_document
from searchapp.search import ranking as product_ranking

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"
ORGANISATION = "Cranfield"
TEXT_FIELDS = ("title", "summary")
DEPTH = 1000  # ranks kept per query (MAP is computed to this depth, as trec_eval does)
CUTOFF = 10
RECALL_CUTOFF = 100

# The classic SMART stop list (english.stop of Cornell's SMART system), 570 distinct words.
SMART_STOP_WORDS = frozenset([
    "a", "a's", "able", "about", "above", "according", "accordingly", "across", "actually",
    "after", "afterwards", "again", "against", "ain't", "all", "allow", "allows", "almost",
    "alone", "along", "already", "also", "although", "always", "am", "among", "amongst", "an",
    "and", "another", "any", "anybody", "anyhow", "anyone", "anything", "anyway", "anyways",
    "anywhere", "apart", "appear", "appreciate", "appropriate", "are", "aren't", "around",
    "as", "aside", "ask", "asking", "associated", "at", "available", "away", "awfully", "b",
    "be", "became", "because", "become", "becomes", "becoming", "been", "before", "beforehand",
    "behind", "being", "believe", "below", "beside", "besides", "best", "better", "between",
    "beyond", "both", "brief", "but", "by", "c", "c'mon", "c's", "came", "can", "can't",
    "cannot", "cant", "cause", "causes", "certain", "certainly", "changes", "clearly", "co",
    "com", "come", "comes", "concerning", "consequently", "consider", "considering", "contain",
    "containing", "contains", "corresponding", "could", "couldn't", "course", "currently", "d",
    "definitely", "described", "despite", "did", "didn't", "different", "do", "does",
    "doesn't", "doing", "don't", "done", "down", "downwards", "during", "e", "each", "edu",
    "eg", "eight", "either", "else", "elsewhere", "enough", "entirely", "especially", "et",
    "etc", "even", "ever", "every", "everybody", "everyone", "everything", "everywhere", "ex",
    "exactly", "example", "except", "f", "far", "few", "fifth", "first", "five", "followed",
    "following", "follows", "for", "former", "formerly", "forth", "four", "from", "further",
    "furthermore", "g", "get", "gets", "getting", "given", "gives", "go", "goes", "going",
    "gone", "got", "gotten", "greetings", "h", "had", "hadn't", "happens", "hardly", "has",
    "hasn't", "have", "haven't", "having", "he", "he's", "hello", "help", "hence", "her",
    "here", "here's", "hereafter", "hereby", "herein", "hereupon", "hers", "herself", "hi",
    "him", "himself", "his", "hither", "hopefully", "how", "howbeit", "however", "i", "i'd",
    "i'll", "i'm", "i've", "ie", "if", "ignored", "immediate", "in", "inasmuch", "inc",
    "indeed", "indicate", "indicated", "indicates", "inner", "insofar", "instead", "into",
    "inward", "is", "isn't", "it", "it'd", "it'll", "it's", "its", "itself", "j", "just", "k",
    "keep", "keeps", "kept", "know", "knows", "known", "l", "last", "lately", "later",
    "latter", "latterly", "least", "less", "lest", "let", "let's", "like", "liked", "likely",
    "little", "look", "looking", "looks", "ltd", "m", "mainly", "many", "may", "maybe", "me",
    "mean", "meanwhile", "merely", "might", "more", "moreover", "most", "mostly", "much",
    "must", "my", "myself", "n", "name", "namely", "nd", "near", "nearly", "necessary", "need",
    "needs", "neither", "never", "nevertheless", "new", "next", "nine", "no", "nobody", "non",
    "none", "noone", "nor", "normally", "not", "nothing", "novel", "now", "nowhere", "o",
    "obviously", "of", "off", "often", "oh", "ok", "okay", "old", "on", "once", "one", "ones",
    "only", "onto", "or", "other", "others", "otherwise", "ought", "our", "ours", "ourselves",
    "out", "outside", "over", "overall", "own", "p", "particular", "particularly", "per",
    "perhaps", "placed", "please", "plus", "possible", "presumably", "probably", "provides",
    "q", "que", "quite", "qv", "r", "rather", "rd", "re", "really", "reasonably", "regarding",
    "regardless", "regards", "relatively", "respectively", "right", "s", "said", "same", "saw",
    "say", "saying", "says", "second", "secondly", "see", "seeing", "seem", "seemed",
    "seeming", "seems", "seen", "self", "selves", "sensible", "sent", "serious", "seriously",
    "seven", "several", "shall", "she", "should", "shouldn't", "since", "six", "so", "some",
    "somebody", "somehow", "someone", "something", "sometime", "sometimes", "somewhat",
    "somewhere", "soon", "sorry", "specified", "specify", "specifying", "still", "sub", "such",
    "sup", "sure", "t", "t's", "take", "taken", "tell", "tends", "th", "than", "thank",
    "thanks", "thanx", "that", "that's", "thats", "the", "their", "theirs", "them",
    "themselves", "then", "thence", "there", "there's", "thereafter", "thereby", "therefore",
    "therein", "theres", "thereupon", "these", "they", "they'd", "they'll", "they're",
    "they've", "think", "third", "this", "thorough", "thoroughly", "those", "though", "three",
    "through", "throughout", "thru", "thus", "to", "together", "too", "took", "toward",
    "towards", "tried", "tries", "truly", "try", "trying", "twice", "two", "u", "un", "under",
    "unfortunately", "unless", "unlikely", "until", "unto", "up", "upon", "us", "use", "used",
    "useful", "uses", "using", "usually", "uucp", "v", "value", "various", "very", "via",
    "viz", "vs", "w", "want", "wants", "was", "wasn't", "way", "we", "we'd", "we'll", "we're",
    "we've", "welcome", "well", "went", "were", "weren't", "what", "what's", "whatever",
    "when", "whence", "whenever", "where", "where's", "whereafter", "whereas", "whereby",
    "wherein", "whereupon", "wherever", "whether", "which", "while", "whither", "who", "who's",
    "whoever", "whole", "whom", "whose", "why", "will", "willing", "wish", "with", "within",
    "without", "won't", "wonder", "would", "wouldn't", "x", "y", "yes", "yet", "you", "you'd",
    "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves", "z", "zero",
])

# The Glasgow IR group's list (as scikit-learn ships it), 317 distinct one-word entries.
GLASGOW_STOP_WORDS = frozenset([
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "all",
    "almost", "alone", "along", "already", "also", "although", "always", "am", "among",
    "amongst", "amount", "an", "and", "another", "any", "anyhow", "anyone", "anything",
    "anyway", "anywhere", "are", "around", "as", "at", "back", "be", "became", "because",
    "become", "becomes", "becoming", "been", "before", "beforehand", "behind", "being",
    "below", "beside", "besides", "between", "beyond", "bill", "both", "bottom", "but", "by",
    "call", "can", "cannot", "cant", "co", "con", "could", "couldn't", "cry", "de", "describe",
    "detail", "do", "done", "down", "due", "during", "each", "eg", "eight", "either", "eleven",
    "else", "elsewhere", "empty", "enough", "etc", "even", "ever", "every", "everyone",
    "everything", "everywhere", "except", "few", "fifteen", "fifty", "fill", "find", "fire",
    "first", "five", "for", "former", "formerly", "forty", "found", "four", "from", "front",
    "full", "further", "get", "give", "go", "had", "has", "hasn't", "have", "he", "hence",
    "her", "here", "hereafter", "hereby", "herein", "hereupon", "hers", "herself", "him",
    "himself", "his", "how", "however", "hundred", "i", "ie", "if", "in", "inc", "indeed",
    "interest", "into", "is", "it", "its", "itself", "keep", "last", "latter", "latterly",
    "least", "less", "ltd", "made", "many", "may", "me", "meanwhile", "might", "mill", "mine",
    "more", "moreover", "most", "mostly", "move", "much", "must", "my", "myself", "name",
    "namely", "neither", "never", "nevertheless", "next", "nine", "no", "nobody", "none",
    "noone", "nor", "not", "nothing", "now", "nowhere", "of", "off", "often", "on", "once",
    "one", "only", "onto", "or", "other", "others", "otherwise", "our", "ours", "ourselves",
    "out", "over", "own", "part", "per", "perhaps", "please", "put", "rather", "re", "same",
    "see", "seem", "seemed", "seeming", "seems", "serious", "several", "she", "should", "show",
    "side", "since", "sincere", "six", "sixty", "so", "some", "somehow", "someone",
    "something", "sometime", "sometimes", "somewhere", "still", "such", "system", "take",
    "ten", "than", "that", "the", "their", "them", "themselves", "then", "thence", "there",
    "thereafter", "thereby", "therefore", "therein", "thereupon", "these", "they", "thick",
    "thin", "third", "this", "those", "though", "three", "through", "throughout", "thru",
    "thus", "to", "together", "too", "top", "toward", "towards", "twelve", "twenty", "two",
    "un", "under", "until", "up", "upon", "us", "very", "via", "was", "we", "well", "were",
    "what", "whatever", "when", "whence", "whenever", "where", "whereafter", "whereas",
    "whereby", "wherein", "whereupon", "wherever", "whether", "which", "while", "whither",
    "who", "whoever", "whole", "whom", "whose", "why", "will", "with", "within", "without",
    "would", "yet", "you", "your", "yours", "yourself", "yourselves",
])

STOP_LISTS: dict[str, Callable[[], frozenset[str]]] = {
    "product": lambda: frozenset(analysis.STOP_WORDS),
    "whoosh": lambda: frozenset(WHOOSH_STOP_WORDS),  # 34 words
    "nltk": lambda: frozenset(stoplists["en"]),  # Snowball's English list (NLTK's classic), 127
    "glasgow": lambda: GLASGOW_STOP_WORDS,
    "smart": lambda: SMART_STOP_WORDS,
    "none": frozenset,
}

# Data-free nltk stemmers; "product" is whatever `make_analyzer()` uses.
NLTK_STEMMERS: dict[str, Callable[[], Any]] = {
    "nltk-porter": PorterStemmer,
    "lancaster": LancasterStemmer,
}
STEMMERS = ("product", "snowball", "porter", "nltk-porter", "lancaster", "none")


class NltkStemFilter(analysis.SnowballStemFilter):
    """The product's stem filter, running one of nltk's other data-free stemmers."""

    def stem(self, word: str) -> str:
        if self._stem is None:
            stemmer = NLTK_STEMMERS[self.language]()
            self._stem = functools.lru_cache(maxsize=self.cachesize)(stemmer.stem)
        return self._stem(word)


# --- judgments and metrics -------------------------------------------------

Qrels = dict[str, dict[str, int]]  # query id → document id → grade


def gain(grade: int) -> float:
    """Graded gain: 4 for a complete answer (grade 1) down to 1 (grade 4); -1 counts 4."""
    if grade == -1:
        return 4.0
    if 1 <= grade <= 4:
        return float(5 - grade)
    raise ValueError(f"unknown Cranfield grade {grade}")


def dcg(gains: Iterable[float], k: int) -> float:
    """Discounted cumulative gain of the first `k` gains (log2 discount, rank 1 undiscounted)."""
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1) if rank <= k)


def ndcg(ranking: Sequence[str], gains: Mapping[str, float], k: int = CUTOFF) -> float:
    """nDCG@k; the ideal ranking is every judged document, best first."""
    ideal = dcg(sorted(gains.values(), reverse=True), k)
    if ideal <= 0:
        return 0.0
    return dcg((gains.get(doc, 0.0) for doc in ranking[:k]), k) / ideal


def average_precision(ranking: Sequence[str], relevant: Collection[str]) -> float:
    """Mean of the precision at each relevant document's rank, over all relevant documents."""
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for rank, doc in enumerate(ranking, start=1):
        if doc in relevant:
            found += 1
            total += found / rank
    return total / len(relevant)


def precision(ranking: Sequence[str], relevant: Collection[str], k: int = CUTOFF) -> float:
    """Relevant documents among the first `k`, divided by `k` (a short list is not excused)."""
    return sum(doc in relevant for doc in ranking[:k]) / k


def recall(ranking: Sequence[str], relevant: Collection[str], k: int = RECALL_CUTOFF) -> float:
    """Share of the relevant documents found in the first `k`."""
    if not relevant:
        return 0.0
    return sum(doc in relevant for doc in ranking[:k]) / len(relevant)


@dataclass(frozen=True, slots=True)
class Scores:
    ndcg10: float
    map: float
    p10: float
    r100: float

    @classmethod
    def mean(cls, scores: Iterable[Scores]) -> Scores:
        """Each metric's mean over the given queries' scores."""
        listed = list(scores)
        return cls(*(statistics.fmean(getattr(s, f.name) for s in listed) for f in fields(cls)))


def score_query(ranking: Sequence[str], judged: Mapping[str, int]) -> Scores:
    """Every metric for one query's ranking against its judgments."""
    gains = {doc: gain(grade) for doc, grade in judged.items()}
    relevant = judged.keys()
    return Scores(ndcg(ranking, gains), average_precision(ranking, relevant),
                  precision(ranking, relevant), recall(ranking, relevant))


def evaluate(runs: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, Scores]:
    """Scores of every judged query; a query without a ranking scores 0."""
    return {qid: score_query(runs.get(qid, ()), judged) for qid, judged in qrels.items()}


# --- data ---------------------------------------------------------------------

def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def load_items(path: Path, *, strip_repeated_title: bool = False) -> list[Item]:
    """Collection records as product items (id, title and summary; other fields ignored).

    A record the product would refuse for its blank title (Cranfield 471 and 995
    are empty) is still indexed, empty, so the collection keeps its size.
    `strip_repeated_title` drops a title repeated at the start of the summary
    (as 1396 Cranfield abstracts do, and news summaries do not): a diagnostic.
    """
    items = []
    for record in read_jsonl(path):
        title = record.get("title") or ""
        summary = record.get("summary") or ""
        if strip_repeated_title and title.strip() and summary.startswith(title):
            summary = summary[len(title):]
        fields_ = {"id": str(record["id"]), "title": title, "summary": summary}
        try:
            items.append(build_item(fields_, organisation=ORGANISATION, source=path.name))
        except InvalidItem:
            if title.strip():
                raise
            items.append(Item(id=fields_["id"], organisation=ORGANISATION, title="",
                              summary=summary.strip(), source=path.name))
    return items


def load_queries(path: Path) -> dict[str, str]:
    """Query id → text (Cranfield: `qid` and `text`)."""
    return {str(r["qid"]): r["text"] for r in read_jsonl(path)}


def load_qrels(path: Path) -> Qrels:
    """Query id → judged document id → grade, from a `qid docid rel` TSV with a header."""
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            qrels.setdefault(row["qid"], {})[row["docid"]] = int(row["rel"])
    return qrels


# --- engine settings ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Settings:
    """One engine configuration; the defaults are the product as it is."""

    stop: str = "product"
    stemmer: str = "product"
    title_boost: float | None = None  # index-time title field boost; None: the product's
    k1: float | None = None  # None: as `searchapp.search.ranking()` has it
    b: float | None = None
    title_b: float | None = None  # None: as the product has it (today: b)
    summary_b: float | None = None
    title_weight: float = 1.0  # query-time multiplier on title matches
    proximity: float = 0.0  # weight of a phrase clause per adjacent query-word pair; 0: off
    slop: int = 1

    def index_key(self) -> tuple[str, str, float | None]:
        """What the index depends on; variants that share it share an index."""
        return (self.stop, self.stemmer, self.title_boost)

    def weighting(self) -> scoring.WeightingModel:
        """The product's ranking model, with the BM25F parameters given here on top."""
        product = product_ranking()
        asked = {"title": self.title_b, "summary": self.summary_b}
        if self.k1 is None and self.b is None and all(v is None for v in asked.values()):
            return product
        if isinstance(product, scoring.BM25F):
            b, k1, per_field = product.B, product.K1, dict(product._field_B)
        else:  # the product moved to another model: BM25F from Whoosh's defaults
            b, k1, per_field = 0.75, 1.2, {}
        per_field.update({name: v for name, v in asked.items() if v is not None})
        return scoring.BM25F(B=b if self.b is None else self.b,
                             K1=k1 if self.k1 is None else self.k1,
                             **{f"{name}_B": v for name, v in per_field.items()})

    def describe(self) -> str:
        default = Settings()
        changed = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)]
        return ", ".join(changed) or "product settings"


def make_variant_analyzer(stop: str, stemmer: str) -> Analyzer:
    """The product's analyzer with its stop filter and stemmer swapped as asked."""
    items, swapped = [], set()
    for item in analysis.make_analyzer().items:
        if isinstance(item, StopFilter) and stop != "product":
            swapped.add("stop")
            words = STOP_LISTS[stop]()
            if words:
                items.append(StopFilter(stoplist=words, minsize=item.min, maxsize=item.max,
                                        renumber=item.renumber))
        elif isinstance(item, analysis.SnowballStemFilter) and stemmer != "product":
            swapped.add("stemmer")
            if stemmer == "snowball":
                items.append(analysis.SnowballStemFilter("english"))
            elif stemmer == "porter":  # Porter's original algorithm, as Snowball spells it
                items.append(analysis.SnowballStemFilter("porter"))
            elif stemmer in NLTK_STEMMERS:
                items.append(NltkStemFilter(stemmer))
            elif stemmer != "none":
                raise ValueError(f"unknown stemmer {stemmer!r}")
        else:
            items.append(item)
    asked = {name for name, value in (("stop", stop), ("stemmer", stemmer))
             if value != "product"}
    if asked - swapped:  # the product's chain changed shape: say so rather than measure it
        raise ValueError(f"make_analyzer() has no {', '.join(sorted(asked - swapped))} filter"
                         " to swap")
    return functools.reduce(operator.or_, items)


def make_schema(settings: Settings) -> Schema:
    """The product schema, or a copy of it with the variant's analyzer and title boost."""
    base = product_schema()
    if settings.index_key() == Settings().index_key():
        return base
    variant = copy.deepcopy(base)
    if (settings.stop, settings.stemmer) != ("product", "product"):
        analyzer = make_variant_analyzer(settings.stop, settings.stemmer)
        for name in TEXT_FIELDS:
            variant[name].analyzer = analyzer
    if settings.title_boost is not None:
        variant["title"].format.field_boost = float(settings.title_boost)
    return variant


def build_index(items: Iterable[Item], schema: Schema, folder: Path) -> Index:
    """An index of the items in `folder` (which must not exist yet), one segment."""
    ix = FileStorage(str(folder)).create().create_index(schema)
    with ix.writer() as writer:
        for item in items:
            writer.add_document(**to_document(item))
    return ix


def query_words(text: str, analyzer: Analyzer) -> list[str]:
    """The analysed words of a query, each once, in order."""
    return list(dict.fromkeys(t.text for t in analyzer(text)))


def make_query(words: Sequence[str], settings: Settings) -> wq.Query:
    """OR of every word in every text field, plus optional phrase clauses for adjacent pairs."""
    weights = {"title": settings.title_weight, "summary": 1.0}
    clauses: list[wq.Query] = [wq.Term(f, w, boost=weights[f]) for w in words for f in TEXT_FIELDS]
    if settings.proximity:
        clauses += [wq.Phrase(f, [a, b], slop=settings.slop,
                              boost=settings.proximity * weights[f])
                    for a, b in itertools.pairwise(words) for f in TEXT_FIELDS]
    return wq.Or(clauses)


class Bench:
    """The collection, queries and judgments, with an index per analysis variant.

    Indexes live in a temporary directory removed by `close()` (or on leaving a
    ``with`` block).
    """

    def __init__(self, items: list[Item], queries: Mapping[str, str], qrels: Qrels) -> None:
        self.items, self.queries, self.qrels = items, queries, qrels
        self._tmp = tempfile.TemporaryDirectory(prefix="relevance-")
        self._indexes: dict[tuple[str, str, float | None], tuple[Index, Analyzer]] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._indexes.clear()
        self._tmp.cleanup()

    def index(self, settings: Settings) -> tuple[Index, Analyzer]:
        key = settings.index_key()
        if key not in self._indexes:
            schema = make_schema(settings)
            # Forked workers build indexes too: the folder names the process.
            folder = Path(self._tmp.name) / f"ix-{len(self._indexes)}-{os.getpid()}"
            self._indexes[key] = (build_index(self.items, schema, folder),
                                  schema["summary"].analyzer)
        return self._indexes[key]

    def run(self, settings: Settings, *, depth: int = DEPTH) -> dict[str, list[str]]:
        """Query id → ranked document ids."""
        ix, analyzer = self.index(settings)
        runs: dict[str, list[str]] = {}
        with ix.searcher(weighting=settings.weighting()) as searcher:
            ids = {docnum: fields_["id"] for docnum, fields_ in searcher.reader().iter_docs()}
            for qid, text in self.queries.items():
                words = query_words(text, analyzer)
                if not words:
                    runs[qid] = []
                    continue
                results = searcher.search(make_query(words, settings), limit=depth)
                runs[qid] = [ids[docnum] for _, docnum in results.top_n]
        return runs

    def evaluate(self, settings: Settings, *, depth: int = DEPTH) -> dict[str, Scores]:
        """Query id → scores, for every judged query."""
        return evaluate(self.run(settings, depth=depth), self.qrels)


_SHARED: Bench | None = None  # the bench a forked worker inherits


def _evaluate_in_worker(task: tuple[list[Settings], int]) -> list[dict[str, Scores]]:
    assert _SHARED is not None
    variants, depth = task
    return [_SHARED.evaluate(settings, depth=depth) for settings in variants]


def evaluate_variants(bench: Bench, variants: Sequence[Settings], *, depth: int = DEPTH,
                      jobs: int = 1) -> list[dict[str, Scores]]:
    """Scores for each variant, in order, over `jobs` forked processes.

    Variants that share an index go to the same worker where the load allows,
    so each index is built about once; the most shared one is built before forking.
    """
    if jobs <= 1 or len(variants) <= 1:
        return [bench.evaluate(s, depth=depth) for s in variants]
    groups: dict[tuple[str, str, float | None], list[int]] = {}
    for i, settings in enumerate(variants):
        groups.setdefault(settings.index_key(), []).append(i)
    common = max(groups.values(), key=len)
    bench.index(variants[common[0]])
    most = math.ceil(len(variants) / jobs)
    chunks = sorted((members[start:start + most] for members in groups.values()
                     for start in range(0, len(members), most)), key=len, reverse=True)
    global _SHARED
    _SHARED = bench
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            done = pool.map(_evaluate_in_worker,
                            [([variants[i] for i in chunk], depth) for chunk in chunks],
                            chunksize=1)
    finally:
        _SHARED = None
    results: dict[int, dict[str, Scores]] = {}
    for chunk, scores in zip(chunks, done, strict=True):
        results.update(zip(chunk, scores, strict=True))
    return [results[i] for i in range(len(variants))]


# --- variants -----------------------------------------------------------------

# The settings proposed for the product; see bench/RESULTS.md for how they were
# chosen (--explore, --grid, --cv) and what each change does (--sweep).
PROPOSED = Settings(stop="nltk", title_boost=1.0, b=0.9)

Variants = list[tuple[str, Settings]]


def ablation(proposed: Settings = PROPOSED) -> Variants:
    """The product, each proposed change alone, then all of them together."""
    product = Settings()
    rows = [("product (baseline)", product)]
    for f in fields(Settings):
        value = getattr(proposed, f.name)
        if value != getattr(product, f.name):
            rows.append((f"only {f.name}={value}", replace(product, **{f.name: value})))
    rows.append(("proposed (all of the above)", proposed))
    return rows


def exploration(base: Settings) -> Variants:
    """`base`, then one lever at a time set to each alternative tried."""
    rows = [(f"base: {base.describe()}", base)]

    def alternative(name: str, value: Any) -> None:
        if getattr(base, name) != value:
            shown = "product" if value is None else value
            rows.append((f"{name}={shown}", replace(base, **{name: value})))

    for stop in STOP_LISTS:
        alternative("stop", stop)
    for stemmer in STEMMERS:
        if stemmer != "snowball":  # the same as the product's today
            alternative("stemmer", stemmer)
    for boost in (None, 1.0, 3.0):
        alternative("title_boost", boost)
    for weight in (0.5, 1.0, 1.5):
        alternative("title_weight", weight)
    alternative("proximity", 0.25)
    return rows


def grid(base: Settings) -> Variants:
    """BM25F K1 x B around the usual values, the rest as in `base`."""
    return [(f"k1={k1} b={b}", replace(base, k1=k1, b=b))
            for k1 in (0.9, 1.2, 1.5, 1.8) for b in (0.6, 0.75, 0.85, 0.9, 0.95, 1.0)]


def candidates() -> Variants:
    """What --cv tunes over: the levers that moved the figures (K1 stays 1.2: flat on the grid).

    The first is the product's settings, the baseline.
    """
    return [(f"stop={stop} title_boost={boost or 'product'} b={b}",
             Settings(stop=stop, title_boost=boost, b=b))
            for stop in ("product", "nltk", "smart") for boost in (None, 1.0)
            for b in (0.75, 0.9)]


def cross_validate(variants: Variants, results: Sequence[Mapping[str, Scores]],
                   baseline: Mapping[str, Scores]) -> str:
    """Two folds (queries 1st, 3rd, … and 2nd, 4th, …): pick the best variant on one, score
    it on the other.

    Every query is then scored by settings chosen without it, which estimates
    what tuning is worth beyond fitting these very queries.
    """
    qids = sorted(baseline, key=lambda q: (0, int(q), q) if q.isdigit() else (1, 0, q))
    folds = [qids[0::2], qids[1::2]]
    lines = [("| tuned on | chosen | test queries | baseline nDCG@10 | tuned nDCG@10"
              " | baseline MAP | tuned MAP |"), "|---|---|---:|---:|---:|---:|---:|"]
    held_out: dict[str, Scores] = {}
    for train, test in ((folds[0], folds[1]), (folds[1], folds[0])):
        def fit(i: int, train: Sequence[str] = train) -> tuple[float, float]:
            mean = Scores.mean(results[i][q] for q in train)
            return (mean.ndcg10, mean.map)
        best = max(range(len(variants)), key=fit)
        held_out.update({q: results[best][q] for q in test})
        base = Scores.mean(baseline[q] for q in test)
        tuned = Scores.mean(results[best][q] for q in test)
        name = "1st, 3rd, …" if train is folds[0] else "2nd, 4th, …"
        lines.append(f"| {name} | {variants[best][0]} | {len(test)} | {base.ndcg10:.3f}"
                     f" | {tuned.ndcg10:.3f} | {base.map:.3f} | {tuned.map:.3f} |")
    overall = Scores.mean(held_out.values())
    base = Scores.mean(baseline.values())
    lines.append(f"| (both folds) | | {len(held_out)} | {base.ndcg10:.3f} | {overall.ndcg10:.3f}"
                 f" | {base.map:.3f} | {overall.map:.3f} |")
    return "\n".join(lines)


def table(rows: Sequence[tuple[str, Mapping[str, Scores]]], *, top: int | None = None) -> str:
    """A Markdown table of mean scores; changes and per-query wins/losses are against row 1."""
    first = rows[0][1]
    first_mean = Scores.mean(first.values())
    lines = ["| variant | nDCG@10 | MAP | P@10 | R@100 | Δ nDCG@10 | Δ MAP | queries +/− |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    shown = list(rows)
    if top is not None:
        shown = [rows[0]] + sorted(rows[1:], key=lambda r: -Scores.mean(r[1].values()).ndcg10)
        shown = shown[:top + 1]
    for label, per_query in shown:
        s = Scores.mean(per_query.values())
        better = sum(per_query[q].ndcg10 > first[q].ndcg10 + 1e-9 for q in first)
        worse = sum(per_query[q].ndcg10 < first[q].ndcg10 - 1e-9 for q in first)
        lines.append(f"| {label} | {s.ndcg10:.3f} | {s.map:.3f} | {s.p10:.3f} | {s.r100:.3f}"
                     f" | {s.ndcg10 - first_mean.ndcg10:+.3f} | {s.map - first_mean.map:+.3f}"
                     f" | {better}/{worse} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure ranking quality (nDCG@10, MAP, P@10, R@100) on a judged collection.")
    parser.add_argument("--collection", type=Path, default=DATA / "cranfield.jsonl",
                        help="JSON Lines of id, title, summary (default: %(default)s)")
    parser.add_argument("--queries", type=Path, default=DATA / "queries.jsonl",
                        help="JSON Lines of qid, text (default: %(default)s)")
    parser.add_argument("--qrels", type=Path, default=DATA / "qrels.tsv",
                        help="TSV of qid, docid, rel with a header (default: %(default)s)")
    parser.add_argument("--depth", type=int, default=DEPTH,
                        help="ranks kept per query (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes that evaluate variants (default: %(default)s)")
    parser.add_argument("--strip-repeated-title", action="store_true",
                        help="diagnostic: drop a title repeated at the start of its summary")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sweep", action="store_true",
                      help="ablation: the product, each proposed change alone, all of them")
    mode.add_argument("--explore", action="store_true",
                      help="each alternative tried for each lever, one at a time")
    mode.add_argument("--grid", action="store_true", help="a K1 x B grid")
    mode.add_argument("--cv", action="store_true",
                      help="2-fold cross-validated choice among the candidate settings")
    engine = parser.add_argument_group(
        "engine settings (defaults: the product's; for a single run, --explore and --grid)")
    engine.add_argument("--proposed", action="store_true",
                        help=f"start from the proposed settings ({PROPOSED.describe()})")
    engine.add_argument("--stop", choices=list(STOP_LISTS), default=None,
                        help="stop list: product (searchapp.analysis.STOP_WORDS), whoosh"
                             " (whoosh.analysis.STOP_WORDS, 34 words), nltk (Snowball's English"
                             " list as whoosh.lang.stopwords has it, 127), glasgow (317),"
                             " smart (570), none")
    engine.add_argument("--stemmer", choices=STEMMERS, default=None,
                        help="stemmer: product (the one make_analyzer() has), snowball"
                             " (english), porter (Snowball's Porter), nltk-porter, lancaster,"
                             " none")
    engine.add_argument("--title-boost", type=float, default=None,
                        help="index-time title field boost (product: schema.TITLE_BOOST)")
    engine.add_argument("--title-weight", type=float, default=None,
                        help="query-time multiplier on title matches (product: 1)")
    engine.add_argument("--k1", type=float, default=None,
                        help="BM25F K1 (product: searchapp.search.ranking())")
    engine.add_argument("--b", type=float, default=None,
                        help="BM25F B (product: searchapp.search.ranking())")
    engine.add_argument("--title-b", type=float, default=None, help="BM25F B for titles")
    engine.add_argument("--summary-b", type=float, default=None, help="BM25F B for summaries")
    engine.add_argument("--proximity", type=float, default=None,
                        help="weight of a phrase clause per adjacent query-word pair (product: 0)")
    engine.add_argument("--slop", type=int, default=None,
                        help="positions a phrase clause allows between its words (default: 1)")
    parser.add_argument("--top", type=int, default=None, help="show only the best N variants")
    args = parser.parse_args(argv)
    for name in ("collection", "queries", "qrels"):
        if not getattr(args, name).is_file():
            parser.error(f"--{name}: no file {getattr(args, name)}")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    """The product's settings (or the proposed ones), with the options given on top."""
    base = PROPOSED if args.proposed else Settings()
    given = {f.name: getattr(args, f.name) for f in fields(Settings)
             if getattr(args, f.name, None) is not None}
    return replace(base, **given)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    items = load_items(args.collection, strip_repeated_title=args.strip_repeated_title)
    with Bench(items, load_queries(args.queries), load_qrels(args.qrels)) as bench:
        given = settings_from(args)
        if args.sweep:
            variants = ablation()
        elif args.explore:
            variants = exploration(given)
        elif args.grid:
            variants = [(f"base: {given.describe()}", given)] + grid(given)
        elif args.cv:
            variants = candidates()
        else:
            variants = [(given.describe(), given)]
        results = evaluate_variants(bench, [s for _, s in variants], depth=args.depth,
                                    jobs=args.jobs)
        print(f"{len(bench.items)} documents, {len(bench.queries)} queries, "
              f"{len(bench.qrels)} judged; depth {args.depth}"
              + ("; repeated titles stripped from summaries" if args.strip_repeated_title
                 else ""))
        print()
        print(table(list(zip((label for label, _ in variants), results)), top=args.top))
        if args.cv:
            print()
            print(cross_validate(variants, results, results[0]))
    print(f"\n{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
