#!/usr/bin/env python3
"""Ranking quality through the product's own search, on every judged collection.

Each collection in ``shared/data/`` (Cranfield graded; CISI, MED and CACM
binary) is written as a JSON Lines file, imported with the product's importer
(`searchapp.operations.import_paths`) into a temporary catalog and index built
by the product, and every query is asked of `searchapp.search.Engine.search`
as the issue measures it: the query's words joined by `` OR ``, 100 per page.
The ranked ids are scored (nDCG@10, MAP@100, R@100) against the judgments.
There is no second index and no second query parser.

The product itself runs as the service would: `Engine.from_settings` over
the index `operations.import_paths` built. A variant changes the product in
this process only, through the engine's own knobs where it has them
(`Settings.scoring`, `Settings.bm25_b`, `Settings.bm25_k1`,
`Settings.title_boost`, `SearchQuery.feedback`, and a Whoosh weighting model
passed as `Engine(store, weighting=...)` for another IDF or normalisation),
and otherwise by patching the few places that decide ranking: the English
analysis recipe (`searchapp.analysis.CHAINS`, and `make_analyzer` for nltk's
Porter stemmer), `searchapp.query.query_weight` and `MAX_QUERY_TERMS`, how
`searchapp.query.build` turns the parsed words into the engine's query tree,
and the arrays path (`searchapp.engine.arrays.ArraysSnapshot.match` and
`rescore`, `searchapp.engine.scoring.term_scores` and `unsupported`), which
answers the bench's own query node (`Near`, for proximity).
The index is rebuilt with `searchapp.operations.rebuild` where it depends on
the change::

    .venv/bin/python bench/relevance.py                        # today's product
    .venv/bin/python bench/relevance.py --save bench/out/relevance-product.json
    .venv/bin/python bench/relevance.py --experiments          # every lever, against today
    .venv/bin/python bench/relevance.py --cv --cv-base "fields=bm25f"  # IDF/title boost/B/K1,
                                                               # leave one collection out
    .venv/bin/python bench/relevance.py --variant "b=0.75 k1=1.2 qtf=k3:8"
    .venv/bin/python bench/relevance.py --proposed             # the product with RM3 on
    .venv/bin/python bench/relevance.py --compare bench/out/a.json bench/out/b.json

Cranfield grades (lower is more relevant): gain 5 - grade for grades 1-4, and
the unexplained grade -1 (the paper a question was written from) gain 4;
MAP and R@100 count every judged document as relevant. The other collections
judge binary (gain 1). A query that finds nothing, or that the product
refuses, scores 0. Significance: a paired randomisation test
(sign flips of the per-query differences, seeded) against a saved run, and a
bootstrap of the mean against a reference engine's published figure (whose
per-query scores are not known).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import itertools
import json
import math
import multiprocessing
import operator
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", category=SyntaxWarning, module="whoosh")

import numpy as np
from nltk.stem import PorterStemmer
from whoosh import scoring
from whoosh.analysis import STOP_WORDS as WHOOSH_STOP_WORDS
from whoosh.analysis import Analyzer
from whoosh.lang.stopwords import stoplists

from searchapp import analysis, operations, schema, service
from searchapp import feedback as product_feedback
from searchapp import query as parser
from searchapp.config import Settings as AppSettings
from searchapp.engine import And, Matched, Or, Word, arrays
from searchapp.engine import scoring as engine_scoring
from searchapp.engine.arrays import ArraysSnapshot
from searchapp.errors import BadParameter
from searchapp.fields import TEXT_FIELDS
from searchapp.indexer import IndexStore
from searchapp.search import Engine, SearchQuery

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"
PER_PAGE = 100  # the API's largest page: MAP and R@100 are to this depth
CUTOFF = 10
RECALL_CUTOFF = 100
EMPTY_TITLE = "-"  # what an empty record is imported with: a title the analysis drops
PERMUTATIONS = 10_000
SEED = 12


@dataclass(frozen=True, slots=True)
class Judged:
    """A judged collection in shared/data: its files and whether it is graded."""

    name: str
    folder: Path
    docs: str
    graded: bool

    @property
    def queries(self) -> Path:
        return self.folder / "queries.jsonl"

    @property
    def qrels(self) -> Path:
        return self.folder / "qrels.tsv"


COLLECTIONS = {
    "cranfield": Judged("cranfield", DATA / "cranfield", "cranfield.jsonl", graded=True),
    "cisi": Judged("cisi", DATA / "cisi", "docs.jsonl", graded=False),
    "med": Judged("med", DATA / "med", "docs.jsonl", graded=False),
    "cacm": Judged("cacm", DATA / "cacm", "docs.jsonl", graded=False),
}

# The plain engines' figures in shared/data/README.md: nDCG@10, MAP@100, R@100.
REFERENCE = {
    "bm25s": {"cranfield": (0.528, 0.419, 0.757), "cisi": (0.386, 0.168, 0.440),
              "med": (0.705, 0.529, 0.804), "cacm": (0.494, 0.327, 0.677)},
    "fts5": {"cranfield": (0.523, 0.417, 0.753), "cisi": (0.363, 0.162, 0.436),
             "med": (0.708, 0.523, 0.807), "cacm": (0.446, 0.297, 0.644)},
    "whoosh": {"cranfield": (0.516, 0.414, 0.758), "cisi": (0.294, 0.117, 0.379),
               "med": (0.664, 0.481, 0.773), "cacm": (0.386, 0.245, 0.630)},
    "tantivy": {"cranfield": (0.491, 0.388, 0.739), "cisi": (0.287, 0.112, 0.360),
                "med": (0.615, 0.417, 0.724), "cacm": (0.408, 0.263, 0.602)},
}


def best_reference(collection: str) -> tuple[str, float]:
    """The plain engine with the best nDCG@10 on a collection, and that figure."""
    return max(((name, figures[collection][0]) for name, figures in REFERENCE.items()),
               key=operator.itemgetter(1))


# --- judgments and metrics -------------------------------------------------

Qrels = dict[str, dict[str, int]]  # query id → document id → grade (or binary gain)


def gain(grade: int) -> float:
    """Cranfield's graded gain: 4 for a complete answer (grade 1) down to 1 (grade 4);
    -1 counts 4."""
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
    """Mean of the precision at each relevant document's rank, over all relevant documents
    (to the depth of `ranking`: MAP@100 with the API's 100 hits)."""
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


def score_query(ranking: Sequence[str], judged: Mapping[str, int], *,
                graded: bool = True) -> Scores:
    """Every metric for one query's ranking against its judgments."""
    gains = {doc: gain(g) if graded else float(g) for doc, g in judged.items()}
    relevant = {doc for doc, g in gains.items() if g > 0}
    return Scores(ndcg(ranking, gains), average_precision(ranking, relevant),
                  precision(ranking, relevant), recall(ranking, relevant))


def evaluate(runs: Mapping[str, Sequence[str]], qrels: Qrels, *,
             graded: bool = True) -> dict[str, Scores]:
    """Scores of every judged query; a query without a ranking scores 0."""
    return {qid: score_query(runs.get(qid, ()), judged, graded=graded)
            for qid, judged in qrels.items()}


# --- significance ------------------------------------------------------------

def randomisation_test(a: Sequence[float], b: Sequence[float], *,
                       permutations: int = PERMUTATIONS, seed: int = SEED) -> float:
    """Two-sided p-value of a paired randomisation test on mean(b) - mean(a).

    Under the null hypothesis each query's pair is exchangeable, so each
    difference's sign is flipped at random; p is the share of the flipped
    means at least as far from zero as the observed one (the observed
    assignment counted once, so p is never 0).
    """
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    if not diffs:
        return 1.0
    observed = abs(sum(diffs))
    if observed == 0:
        return 1.0
    rng = random.Random(seed)
    at_least = 1
    for _ in range(permutations):
        flipped = abs(sum(d if rng.random() < 0.5 else -d for d in diffs))
        if flipped >= observed - 1e-12:
            at_least += 1
    return at_least / (permutations + 1)


def bootstrap_below(values: Sequence[float], reference: float, *,
                    resamples: int = PERMUTATIONS, seed: int = SEED) -> tuple[float, float, float]:
    """A 95% bootstrap interval of the mean, and the share of resampled means below
    `reference` (a one-sided p-value that the true mean is above it)."""
    rng = random.Random(seed)
    n = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(resamples))
    below = sum(m < reference for m in means) / resamples
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1], below


# --- data ------------------------------------------------------------------------

def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def write_import_file(collection: Judged, target: Path) -> int:
    """The collection as the JSON Lines the product imports (id, title, summary).

    A record with a blank title (Cranfield 471 and 995 are empty) is given the
    title "-", which the product accepts and its analysis reduces to no term:
    the document is stored and indexed with empty text, so it counts for N and
    for the average field lengths, as an empty document does in the plain
    engines. Returns how many records were written.
    """
    count = 0
    with target.open("w", encoding="utf-8") as out:
        for record in read_jsonl(collection.folder / collection.docs):
            title = (record.get("title") or "").strip() or EMPTY_TITLE
            row = {"id": str(record["id"]), "title": title, "summary": record.get("summary") or ""}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def load_queries(path: Path) -> dict[str, str]:
    """Query id → text."""
    return {str(r["qid"]): r["text"] for r in read_jsonl(path)}


def load_qrels(path: Path) -> Qrels:
    """Query id → judged document id → grade or gain, from a `qid docid rel|gain` TSV."""
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as rows:
        reader = csv.reader(rows, delimiter="\t")
        next(reader)  # header: qid, docid, and rel (Cranfield) or gain
        for qid, docid, value in reader:
            qrels.setdefault(qid, {})[docid] = int(value)
    return qrels


def api_query(text: str) -> str:
    """The query as the issue sends it: its words joined by OR.

    Words are what the product's tokenizer sees as words
    (`searchapp.analysis.TOKEN_PATTERN`), so punctuation stays out: split at
    white space, "nutrition:" would be read as an empty field prefix and
    '"Electronic' would open a phrase.
    """
    words = re.findall(analysis.TOKEN_PATTERN, text)
    return " OR ".join(words)


# --- variants ------------------------------------------------------------------

# Smaller stop list: Whoosh's own (34 words).
STOP_LISTS: dict[str, Callable[[], frozenset[str]]] = {
    "product": lambda: frozenset(analysis.STOP_WORDS),
    "snowball": lambda: frozenset(stoplists["en"]),  # Snowball's English list, with "who"
    "small": lambda: frozenset(WHOOSH_STOP_WORDS),
    "none": frozenset,
}
STEMMERS = ("product", "porter", "nltk-porter")


class PorterStemFilter(analysis.SnowballStemFilter):
    """The product's stem filter running nltk's PorterStemmer (NLTK extensions mode)."""

    def stem(self, word: str) -> str:
        if self._stem is None:
            self._stem = functools.lru_cache(maxsize=self.cachesize)(PorterStemmer().stem)
        return self._stem(word)


@dataclass(frozen=True, slots=True)
class Variant:
    """One configuration of the product; the defaults are the product as it is."""

    b: float | None = None  # BM25F B; None: the product's
    k1: float | None = None
    title_boost: float | None = None  # index-time title field boost; None: the product's
    stop: str = "product"
    stemmer: str = "product"
    qtf: str = "k3:8"  # repeated query words: k3:<k3> (the product's k3 8), once or linear
    norm: str = "bm25"  # bm25, bm25+ or bm25l (delta below)
    delta: float = 0.5
    idf: str = "product"  # the kind's own (bm25f: robertson; sum: whoosh), or
    # whoosh: log(N/(df+1))+1; robertson: log(1+(N-df+.5)/(df+.5))
    fields: str = "bm25f"  # bm25f: one BM25 over the fields' length-normalised
    # frequencies, one IDF (the product, Settings.scoring "bm25f"); sum: BM25 per field,
    # added (Settings.scoring "fields", the product before #12)
    proximity: float = 0.0  # weight of a bonus per adjacent pair of query words found
    # within `slop` positions of each other in a field
    slop: int = 3
    terms: int = 0  # a long query's analysed terms kept (0: the product's MAX_QUERY_TERMS)
    prf: str = "none"  # none, rm3 (the product's feedback=rm3) or bo1 (the bench's own)
    prf_docs: int = 10
    prf_terms: int = 10
    prf_weight: float = 0.5

    def index_key(self) -> tuple[str, str, float | None]:
        """What the index depends on; variants that share it share an index."""
        return (self.stop, self.stemmer, self.title_boost)

    def describe(self) -> str:
        default = Variant()
        changed = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)]
        return " ".join(changed) or "product"

    @classmethod
    def parse(cls, text: str) -> Variant:
        """From `name=value` pairs, as `describe` writes them ("product" for none)."""
        given: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for pair in text.split():
            if pair == "product":
                continue
            name, _, value = pair.partition("=")
            if name not in types:
                raise ValueError(f"unknown variant setting {name!r}")
            kind = types[name]
            if "float" in kind:
                given[name] = float(value)
            elif "int" in kind:
                given[name] = int(value)
            else:
                given[name] = value
        return cls(**given)


def _idf(variant: Variant, kind: str, n: int, df: int) -> float:
    idf = variant.idf if variant.idf != "product" else (
        "robertson" if kind == "bm25f" else "whoosh")
    if idf == "robertson":
        return math.log(1 + (n - df + 0.5) / (df + 0.5))
    if idf == "whoosh":
        return math.log(n / (df + 1)) + 1
    raise ValueError(f"unknown IDF {variant.idf!r}")


def _saturate(variant: Variant, idf: Any, tf: Any, norm: Any, k1: float) -> Any:
    """BM25, BM25+ or BM25L of a frequency `tf` with length normalisation `norm`."""
    if variant.norm == "bm25l":
        ctd = tf / norm
        return idf * ((k1 + 1) * (ctd + variant.delta)) / (k1 + ctd + variant.delta)
    score = idf * ((tf * (k1 + 1)) / (tf + k1 * norm))
    if variant.norm == "bm25+":
        score = score + idf * variant.delta
    elif variant.norm != "bm25":
        raise ValueError(f"unknown normalisation {variant.norm!r}")
    return score


class VariantScorer(scoring.BM25FScorer):  # type: ignore[misc]
    """BM25 of a term in one field with another IDF or length normalisation (scalar and
    array alike)."""

    def __init__(self, searcher: Any, fieldname: str, text: str, B: float, K1: float,
                 variant: Variant, kind: str) -> None:
        self.variant = variant
        super().__init__(searcher, fieldname, text, B, K1)
        parent = searcher.get_parent()
        self.idf = _idf(variant, kind, parent.doc_count_all(),
                        parent.doc_frequency(fieldname, text))

    def formula(self, tf: Any, fl: Any) -> Any:
        """The term's score from its frequency and the field's length (floats or arrays)."""
        norm = (1 - self.B) + self.B * fl / self.avgfl
        return _saturate(self.variant, self.idf, tf, norm, self.K1)

    def _score(self, weight: float, length: float) -> float:
        return float(self.formula(weight, length))

    def max_quality(self) -> float:
        return float("inf")  # never skip blocks on a bound this does not know

    def block_quality(self, matcher: Any) -> float:
        return float("inf")


class VariantBM25F(scoring.BM25F):  # type: ignore[misc]
    """Per-field BM25F (`fields=sum`) with the variant's IDF and normalisation: Whoosh's
    matchers use it when rescoring, the arrays path through `_variant_term_scores`."""

    def __init__(self, variant: Variant, B: float, K1: float) -> None:
        super().__init__(B=B, K1=K1)
        self.variant = variant

    def supports_block_quality(self) -> bool:
        return False

    def scorer(self, searcher: Any, fieldname: str, text: str, qf: int = 1) -> Any:
        if not searcher.schema[fieldname].scorable:
            return scoring.WeightScorer.for_(searcher, fieldname, text)
        return VariantScorer(searcher, fieldname, text, self._field_B.get(fieldname, self.B),
                             self.K1, self.variant, "sum")


class VariantWordBM25F(engine_scoring.WordBM25F):
    """BM25F proper (`fields=bm25f`) with the variant's IDF and normalisation. Both paths
    score words with the model's own methods (`word_idf`, `word_scores`, `word_score`),
    so overriding them changes the arrays path and Whoosh's alike."""

    def __init__(self, variant: Variant, B: float, K1: float) -> None:
        super().__init__(B=B, K1=K1)
        self.variant = variant

    def scorer(self, searcher: Any, fieldname: str, text: str, qf: int = 1) -> Any:
        if not searcher.schema[fieldname].scorable:
            return scoring.WeightScorer.for_(searcher, fieldname, text)
        return VariantScorer(searcher, fieldname, text, self.B, self.K1, self.variant,
                             "bm25f")

    def word_idf(self, n: int, df: int) -> float:
        return _idf(self.variant, "bm25f", n, df)

    def word_score(self, idf: float, tf: float) -> float:
        return float(_saturate(self.variant, idf, tf, 1.0, self.K1))

    def word_scores(self, idf: float, tf: Any) -> Any:
        return _saturate(self.variant, idf, tf, 1.0, self.K1)


def product_bm25() -> tuple[float, float]:
    """The product's BM25F B and K1 (`Settings.bm25_b`, `Settings.bm25_k1`)."""
    product = AppSettings()
    return product.bm25_b, product.bm25_k1


# What the patches replace, to put back (and for the tests to check it is back).
_PRODUCT_CHAIN = analysis.CHAINS["en"]
_PRODUCT_MAKE_ANALYZER = analysis.make_analyzer
_PRODUCT_BUILD = parser.build
_PRODUCT_MATCH = ArraysSnapshot.match
_PRODUCT_RESCORE = ArraysSnapshot.rescore
_PRODUCT_TERM_SCORES = engine_scoring.term_scores
_PRODUCT_UNSUPPORTED = engine_scoring.unsupported
_PRODUCT_HIGHLIGHT = service.highlight
_PRODUCT_QUERY_WEIGHT = parser.query_weight
_PRODUCT_MAX_TERMS = parser.MAX_QUERY_TERMS


def variant_settings(variant: Variant, app: AppSettings) -> AppSettings:
    """`app` with the variant's scoring kind, B, K1 and title boost (the product's where it
    keeps them)."""
    if variant.fields not in ("bm25f", "sum"):
        raise ValueError(f"unknown fields rule {variant.fields!r}")
    return replace(app, scoring="bm25f" if variant.fields == "bm25f" else "fields",
                   bm25_b=app.bm25_b if variant.b is None else variant.b,
                   bm25_k1=app.bm25_k1 if variant.k1 is None else variant.k1,
                   title_boost=app.title_boost if variant.title_boost is None
                   else variant.title_boost)


def _own_model(variant: Variant) -> bool:
    """Whether the variant needs a weighting model of the bench's own."""
    return variant.norm != "bm25" or variant.idf != "product"


def weighting(variant: Variant, app: AppSettings) -> Any:
    """The Whoosh weighting model the variant ranks with: the product's kind with the
    variant's B and K1 (`Settings.ranking`), or `VariantWordBM25F`/`VariantBM25F` for
    another IDF or normalisation."""
    settings = variant_settings(variant, app)
    if not _own_model(variant):
        return settings.ranking().weighting()
    model = VariantWordBM25F if variant.fields == "bm25f" else VariantBM25F
    return model(variant, settings.bm25_b, settings.bm25_k1)


def open_engine(variant: Variant, app: AppSettings) -> Engine:
    """The product's `Engine` over `app`'s index, ranking as the variant asks; for the
    product itself exactly `Engine.from_settings`."""
    settings = variant_settings(variant, app)
    if not _own_model(variant):
        return Engine.from_settings(settings)
    return Engine(IndexStore(settings.index_dir, title_boost=settings.title_boost),
                  engine=settings.engine, weighting=weighting(variant, app))


def make_variant_analyzer(stemmer: str, language: str = "en") -> Analyzer:
    """The product's analyzer (under the patched recipe) with nltk's Porter stemmer."""
    items = []
    for item in _PRODUCT_MAKE_ANALYZER(language).items:
        if isinstance(item, analysis.SnowballStemFilter) and stemmer == "nltk-porter":
            items.append(PorterStemFilter("nltk-porter"))
        else:
            items.append(item)
    return functools.reduce(operator.or_, items)


def variant_recipe(variant: Variant) -> analysis.Recipe:
    """The English analysis recipe with the variant's stop list and Snowball stemmer."""
    if variant.stemmer not in STEMMERS:
        raise ValueError(f"unknown stemmer {variant.stemmer!r}")
    if variant.stop not in STOP_LISTS:
        raise ValueError(f"unknown stop list {variant.stop!r}")
    # nltk's Porter comes in through `make_variant_analyzer`; naming Snowball's
    # Porter here keeps the chain from assuming the English stemmer's properties.
    stemmer = {"product": _PRODUCT_CHAIN.stemmer, "porter": "porter",
               "nltk-porter": "porter"}[variant.stemmer]
    return replace(_PRODUCT_CHAIN, stemmer=stemmer, stop_words=STOP_LISTS[variant.stop]())


def _clear_caches() -> None:
    """Forget everything the product computed from the analysis chain or the schema."""
    analysis._analyzer.cache_clear()
    analysis._compile.cache_clear()
    analysis._tongue.cache_clear()
    schema._schema.cache_clear()
    parser.parse.cache_clear()
    parser.synonym_groups.cache_clear()
    parser._synonym_index.cache_clear()


@contextlib.contextmanager
def index_patches(variant: Variant) -> Iterator[None]:
    """The analysis chain of `variant` (stop list, stemmer), for building and querying.

    The English recipe (`searchapp.analysis.CHAINS`) is swapped, and for nltk's
    Porter stemmer `searchapp.analysis.make_analyzer` too; the compiled chain
    (`analysis.compile`), which the segment writer and the highlighter use, is
    made from them again and checked against the analyzer as at start-up. The
    title boost is not patched: it is `Settings.title_boost` (`variant_settings`).
    """
    analysis.CHAINS["en"] = variant_recipe(variant)
    if variant.stemmer == "nltk-porter":
        analysis.make_analyzer = functools.partial(  # type: ignore[assignment]
            make_variant_analyzer, variant.stemmer)
    _clear_caches()
    try:
        yield
    finally:
        analysis.CHAINS["en"] = _PRODUCT_CHAIN
        analysis.make_analyzer = _PRODUCT_MAKE_ANALYZER  # type: ignore[assignment]
        _clear_caches()


# A new query node, answered by the arrays path in this process only -------------

@dataclass(frozen=True, slots=True)
class Near:
    """Two words within `slop` positions of each other (either order) in one field."""

    field: str
    a: str
    b: str
    slop: int
    boost: float


def _has_custom(q: Any) -> bool:
    if isinstance(q, Near):
        return True
    if isinstance(q, (And, Or)):
        return any(_has_custom(p) for p in q.parts)
    return False


def _near(self: ArraysSnapshot, q: Near, scored: bool) -> Matched:
    """Documents with the two words near each other, scored `boost` times the sum of the
    two words' scores in the field (as Whoosh scores a phrase)."""
    (ida, sa), (idb, sb) = self.term(q.field, q.a), self.term(q.field, q.b)
    both = arrays._common(ida, idb)
    empty = Matched(both[:0], np.zeros(0) if scored else None)
    if not len(both):
        return empty
    ka = self._positions(q.field, q.a, both)
    kb = self._positions(q.field, q.b, both)
    if ka is None or kb is None:
        return empty
    found = [arrays._common64(ka + d, kb) for d in range(-q.slop, q.slop + 1) if d]
    docs = np.unique(np.concatenate(found) >> 32).astype(np.int32) if found else both[:0]
    if not scored:
        return Matched(docs, None)
    scores = sa[np.searchsorted(ida, docs)] + sb[np.searchsorted(idb, docs)]
    return Matched(docs, scores * q.boost, exact=False)


def _variant_match(self: ArraysSnapshot, query: Any, *, scored: bool = True,
                   budget: Any = None) -> Matched:
    """`ArraysSnapshot.match`, knowing `Near` too (ANDs and ORs of it come back here
    through `self.match`)."""
    if isinstance(query, Near):
        return _near(self, query, scored)
    return _PRODUCT_MATCH(self, query, scored=scored, budget=budget)


def _variant_rescore(self: ArraysSnapshot, query: Any, docs: Any) -> dict[int, float]:
    """Whoosh's scores where Whoosh can match the query; the arrays' own otherwise
    (Whoosh does not know `Near`)."""
    if not _has_custom(query):
        return _PRODUCT_RESCORE(self, query, docs)
    found = _variant_match(self, query, scored=True)
    wanted = np.asarray(sorted(int(d) for d in docs), dtype=np.int64)
    if not len(found.ids) or not len(wanted):
        return {}
    at = np.searchsorted(found.ids, wanted)
    at[at == len(found.ids)] = 0
    hit = found.ids[at] == wanted
    assert found.scores is not None
    return {int(d): float(found.scores[i]) for d, i, h in zip(wanted, at, hit, strict=True)
            if h}


def _variant_unsupported(model: Any) -> str | None:
    """`searchapp.engine.scoring.unsupported`, which also lets the bench's models through
    (their arrays twins: `_variant_term_scores` and `WordBM25F`'s own methods)."""
    if type(model) in (VariantBM25F, VariantWordBM25F):
        return None
    return _PRODUCT_UNSUPPORTED(model)


def _variant_term_scores(model: Any, searcher: Any, fieldname: str, text: str, tf: Any,
                         lengths: Any, df: int | None = None) -> Any:
    if not isinstance(model, (VariantBM25F, VariantWordBM25F)):
        return _PRODUCT_TERM_SCORES(model, searcher, fieldname, text, tf, lengths, df=df)
    scorer = model.scorer(searcher, fieldname, text)
    if not isinstance(scorer, VariantScorer):
        return tf
    return scorer.formula(tf, lengths.astype(np.float64))


# The bench's own feedback (Bo1): the expansion terms of the query being run.
_EXPANSION: list[tuple[str, float]] = []


def tongue_terms(item: Any) -> list[str]:
    """An item's terms as the product indexes them (in its language, tagged)."""
    language = getattr(item, "language", "en")
    return analysis.tongue(language).analyse(f"{item.title} {item.summary}")[0]


def _variant_build(variant: Variant) -> Callable[..., parser.Built | None]:
    """`searchapp.query.build`, with proximity pairs and the bench's Bo1 expansion terms
    added as optional parts (in the issue's OR form they can bring in documents)."""

    def build(parsed: parser.ParsedQuery, vocabulary: Any, *, match: str = "all",
              budget: Any = None, languages: Sequence[str] = ("en",)) -> parser.Built | None:
        built = _PRODUCT_BUILD(parsed, vocabulary, match=match, budget=budget,
                               languages=languages)
        if built is None or (not variant.proximity and not _EXPANSION):
            return built
        parts: list[Any] = [built.query]
        if variant.proximity:
            clauses = [c for g in parsed.groups for c in g]
            words = [analysis.tag("en", c.terms[0]) for c in clauses
                     if c.plain and c.prefix is None]
            pairs = dict.fromkeys((a, b) for a, b in itertools.pairwise(words) if a != b)
            parts += [Near(f, a, b, variant.slop, variant.proximity)
                      for a, b in pairs for f in TEXT_FIELDS]
        parts += [Word(tuple((f, term) for f in TEXT_FIELDS), weight)
                  for term, weight in _EXPANSION]
        built.query = parts[0] if len(parts) == 1 else Or(tuple(parts))
        return built

    return build


def qtf_weight(rule: str, count: int) -> float:
    """A repeated query word's weight: `count` (linear), 1 (once), or BM25's k3 saturation."""
    if rule == "linear":
        return float(count)
    if rule == "once":
        return 1.0
    if rule.startswith("k3:"):
        k3 = float(rule[3:])
        return (k3 + 1) * count / (k3 + count)
    raise ValueError(f"unknown query-term-frequency rule {rule!r}")


@contextlib.contextmanager
def search_patches(variant: Variant) -> Iterator[None]:
    """The variant's query building and scoring, while searching.

    The scoring kind, B, K1 and the title boost need no patch
    (`variant_settings`); another IDF or normalisation is a weighting model of
    its own (`VariantWordBM25F`, `VariantBM25F`), which the arrays path is told
    it can score (`_variant_unsupported`, `_variant_term_scores`); `Near` is
    answered by a patched `ArraysSnapshot.match` and `rescore`; the weight of
    repeated words is `searchapp.query.query_weight`, a long query's terms
    `searchapp.query.MAX_QUERY_TERMS`; `searchapp.query.build` is wrapped for
    proximity and Bo1 terms. RM3 is the product's own (`feedback=rm3`).
    """
    if variant.qtf != Variant().qtf:
        qtf_weight(variant.qtf, 2)  # an unknown rule fails here
        parser.query_weight = functools.partial(qtf_weight, variant.qtf)
    if variant.terms:
        parser.MAX_QUERY_TERMS = variant.terms
        parser.parse.cache_clear()
    engine_scoring.unsupported = _variant_unsupported
    engine_scoring.term_scores = _variant_term_scores
    ArraysSnapshot.match = _variant_match  # type: ignore[method-assign]
    ArraysSnapshot.rescore = _variant_rescore  # type: ignore[method-assign]
    parser.build = _variant_build(variant)
    try:
        yield
    finally:
        parser.query_weight = _PRODUCT_QUERY_WEIGHT
        parser.MAX_QUERY_TERMS = _PRODUCT_MAX_TERMS
        parser.parse.cache_clear()
        engine_scoring.unsupported = _PRODUCT_UNSUPPORTED
        engine_scoring.term_scores = _PRODUCT_TERM_SCORES
        ArraysSnapshot.match = _PRODUCT_MATCH  # type: ignore[method-assign]
        ArraysSnapshot.rescore = _PRODUCT_RESCORE  # type: ignore[method-assign]
        parser.build = _PRODUCT_BUILD


def expansion_terms(engine: Engine, hits: Sequence[Any], variant: Variant
                    ) -> list[tuple[str, float]]:
    """The bench's own expansion terms (and their weights) from the first `prf_docs` hits.

    RM3 (`prf=rm3-or`): the product's `searchapp.feedback.rm3`, added as optional
    parts that can bring in documents; Bo1 (Amati): tf in the hits times
    log2((1+Pn)/Pn) + log2(1+Pn), Pn the term's mean frequency per document in
    the collection. Weights are scaled so the best term gets `prf_weight`.
    """
    top = hits[:variant.prf_docs]
    if not top:
        return []
    if variant.prf == "rm3-or":
        return product_feedback.rm3(
            [(f"{h.item.title} {h.item.summary}", h.score or 0.0,
              getattr(h.item, "language", "en")) for h in top],
            terms=variant.prf_terms, weight=variant.prf_weight)
    if variant.prf != "bo1":
        raise ValueError(f"unknown feedback {variant.prf!r}")
    texts = [tongue_terms(h.item) for h in top]
    tf_top = Counter(t for words in texts for t in words)
    with engine._lock:  # the seam has no collection frequencies: Whoosh's reader
        reader = engine._current().reader  # type: ignore[attr-defined]
        n = reader.doc_count_all()
        stats = {t: sum(reader.frequency(f, t) for f in TEXT_FIELDS) for t in tf_top}
    weights = {}
    for term, tf in tf_top.items():
        pn = max(stats[term], 1.0) / n
        weights[term] = tf * math.log2((1 + pn) / pn) + math.log2(1 + pn)
    ranked = sorted(weights.items(), key=lambda tw: (-tw[1], tw[0]))[:variant.prf_terms]
    if not ranked:
        return []
    best = ranked[0][1]
    return [(term, variant.prf_weight * w / best) for term, w in ranked]


# --- running -------------------------------------------------------------------

Runs = dict[str, list[str]]


def run_queries(engine: Engine, queries: Mapping[str, str], variant: Variant
                ) -> tuple[Runs, int]:
    """Query id → ranked ids through `Engine.search`, and how many queries were refused."""
    runs: Runs = {}
    refused = 0
    own = variant.prf not in ("none", "rm3")  # the bench's own expansion
    if variant.prf == "rm3" and (variant.prf_docs, variant.prf_terms, variant.prf_weight) != (
            product_feedback.DOCS, product_feedback.TERMS, product_feedback.WEIGHT):
        raise ValueError("prf=rm3 is the product's (10 documents, 10 terms, weight 0.5);"
                         " use prf=rm3-or for other settings")
    feedback = "rm3" if variant.prf == "rm3" else None
    for qid, text in queries.items():
        request_text = api_query(text)
        try:
            request = SearchQuery(q=request_text, per_page=PER_PAGE, feedback=feedback)
            page = engine.search(request)
            if own:
                _EXPANSION[:] = expansion_terms(engine, page.hits, variant)
                try:
                    page = engine.search(request)
                finally:
                    _EXPANSION.clear()
        except BadParameter:
            refused += 1
            runs[qid] = []
            continue
        runs[qid] = [hit.item.id for hit in page.hits]
    return runs, refused


@dataclass
class Outcome:
    """One variant on one collection: per-query scores and what it cost."""

    collection: str
    variant: str
    per_query: dict[str, Scores]
    refused: int = 0
    seconds: float = 0.0


def _no_highlight(text: str, wanted: Any, **kwargs: Any) -> str:
    return text


def run_collection(task: tuple[str, list[Variant], bool]) -> list[Outcome]:
    """Import a collection into a fresh catalog and index, then run each variant's queries.

    Variants are grouped by what their index depends on; each group gets a
    rebuild by the product under that group's analysis and title boost.
    """
    name, variants, highlights = task
    if highlights:
        return _run_collection(name, variants)
    # Hits' highlights do not change the order: skip their cost.
    service.highlight = _no_highlight  # type: ignore[assignment]
    try:
        return _run_collection(name, variants)
    finally:
        service.highlight = _PRODUCT_HIGHLIGHT


def _run_collection(name: str, variants: Sequence[Variant]) -> list[Outcome]:
    collection = COLLECTIONS[name]
    qrels = load_qrels(collection.qrels)
    # Only judged queries are scored, so only they are run.
    queries = {q: text for q, text in load_queries(collection.queries).items() if q in qrels}
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix=f"relevance-{name}-") as tmp:
        folder = Path(tmp)
        app = AppSettings(catalog=folder / "catalog.sqlite3", index_dir=folder / "index",
                          lock_timeout=60.0)
        source = folder / f"{name}.jsonl"
        expected = write_import_file(collection, source)
        imported = False
        by_index: dict[tuple[str, str, float | None], list[Variant]] = {}
        for v in variants:
            by_index.setdefault(v.index_key(), []).append(v)
        for group in by_index.values():
            built_with = variant_settings(group[0], app)
            with index_patches(group[0]):
                if not imported:
                    outcome = operations.import_paths(built_with, [source], fmt="jsonl",
                                                      organisation=name)
                    if outcome.report.added != expected:
                        raise RuntimeError(f"{name}: imported {outcome.report.added} of"
                                           f" {expected} records")
                    imported = True
                else:
                    operations.rebuild(built_with)
                for variant in group:
                    started = time.perf_counter()
                    with search_patches(variant):
                        engine = open_engine(variant, app)
                        try:
                            if engine.doc_count() != expected:
                                raise RuntimeError(f"{name}: index holds"
                                                   f" {engine.doc_count()} documents")
                            runs, refused = run_queries(engine, queries, variant)
                        finally:
                            engine.close()
                    outcomes.append(Outcome(name, variant.describe(),
                                            evaluate(runs, qrels, graded=collection.graded),
                                            refused, time.perf_counter() - started))
    return outcomes


def run_all(variants: Sequence[Variant], names: Sequence[str], *, jobs: int,
            highlights: bool = False) -> dict[str, dict[str, Outcome]]:
    """variant description → collection → outcome, each collection in its own process."""
    chunk = max(1, math.ceil(len(variants) / max(1, jobs)))
    tasks = [(name, list(variants[i:i + chunk]), highlights)
             for name in names for i in range(0, len(variants), chunk)]
    # The largest first, so the last ones to finish are short.
    tasks.sort(key=lambda t: -len(load_queries(COLLECTIONS[t[0]].queries)) * len(t[1]))
    if jobs <= 1:
        done = [run_collection(t) for t in tasks]
    else:
        done = []
        with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=1) as pool:
            for outcomes in pool.imap_unordered(run_collection, tasks, chunksize=1):
                done.append(outcomes)
                print(f"  {len(done)}/{len(tasks)} done ({outcomes[0].collection},"
                      f" {len(outcomes)} variants)", file=sys.stderr, flush=True)
    results: dict[str, dict[str, Outcome]] = {}
    for outcomes in done:
        for o in outcomes:
            results.setdefault(o.variant, {})[o.collection] = o
    return results


# --- saving and comparing -----------------------------------------------------------

def save(path: Path, variant: str, outcomes: Mapping[str, Outcome], meta: Mapping[str, Any]
         ) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"variant": variant, **meta,
            "collections": {name: {"refused": o.refused, "seconds": round(o.seconds, 2),
                                   "queries": {q: asdict(s) for q, s in o.per_query.items()}}
                            for name, o in outcomes.items()}}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def load(path: Path) -> tuple[str, dict[str, dict[str, Scores]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["variant"], {name: {q: Scores(**s) for q, s in c["queries"].items()}
                             for name, c in data["collections"].items()}


def mean_over(per_collection: Mapping[str, Mapping[str, Scores]]) -> Scores:
    """The mean over collections of each collection's mean (each collection counts once)."""
    return Scores.mean(Scores.mean(q.values()) for q in per_collection.values())


def pooled_test(base: Mapping[str, Mapping[str, Scores]],
                other: Mapping[str, Mapping[str, Scores]], metric: str = "ndcg10") -> float:
    """Randomisation test of the difference in the mean over collections.

    Each query's difference is weighted by 1/(collections x its collection's
    queries), so the statistic is the change in the mean of the collection means.
    """
    diffs: list[float] = []
    names = [n for n in base if n in other]
    for name in names:
        qids = sorted(base[name])
        w = 1 / (len(names) * len(qids))
        diffs += [w * (getattr(other[name][q], metric) - getattr(base[name][q], metric))
                  for q in qids]
    return randomisation_test([0.0] * len(diffs), diffs)


def comparison_table(rows: Sequence[tuple[str, Mapping[str, Mapping[str, Scores]]]],
                     base: Mapping[str, Mapping[str, Scores]] | None) -> str:
    """nDCG@10 / MAP@100 / R@100 per collection, the mean, and p against `base`."""
    names = [n for n in COLLECTIONS if any(n in r for _, r in rows)]
    head = ("| variant | " + " | ".join(names) + " | mean | p (nDCG@10) vs today: "
            + ", ".join(names) + ", mean |")
    lines = [head, "|---|" + "---:|" * (len(names) + 2)]
    for label, per in rows:
        cells = []
        for n in names:
            s = Scores.mean(per[n].values())
            cells.append(f"{s.ndcg10:.3f} / {s.map:.3f} / {s.r100:.3f}")
        m = mean_over({n: per[n] for n in names})
        cells.append(f"**{m.ndcg10:.3f}** / {m.map:.3f} / {m.r100:.3f}")
        if base is None or per is base:
            ps = "—"
        else:
            each = [randomisation_test([base[n][q].ndcg10 for q in sorted(base[n])],
                                       [per[n][q].ndcg10 for q in sorted(base[n])])
                    for n in names]
            ps = ", ".join(f"{p:.3f}" for p in [*each, pooled_test(base, per)])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ps} |")
    return "\n".join(lines)


def reference_table(label: str, per: Mapping[str, Mapping[str, Scores]]) -> str:
    """Against the best plain engine per collection: delta, bootstrap interval, p."""
    lines = [(f"| {label} | nDCG@10 | best plain engine | Δ | 95% bootstrap interval"
             " | p (mean ≤ engine's) |"), "|---|---:|---|---:|---|---:|"]
    known = [n for n in COLLECTIONS if n in per and n in REFERENCE["bm25s"]]
    for n in known:
        values = [s.ndcg10 for s in per[n].values()]
        mean = statistics.fmean(values)
        engine, figure = best_reference(n)
        low, high, below = bootstrap_below(values, figure)
        lines.append(f"| {n} | {mean:.3f} | {engine} {figure:.3f} | {mean - figure:+.3f}"
                     f" | {low:.3f}–{high:.3f} | {below:.3f} |")
    if not known:
        return "\n".join(lines)
    m = mean_over({n: per[n] for n in known}).ndcg10
    best_mean = statistics.fmean(best_reference(n)[1] for n in known)
    lines.append(f"| mean | {m:.3f} | best of each {best_mean:.3f} | {m - best_mean:+.3f}"
                 " | | |")
    return "\n".join(lines)


# --- experiments -------------------------------------------------------------------

def experiments(base: Variant = Variant()) -> list[tuple[str, Variant]]:
    """Every lever tried, one at a time on top of `base` (see bench/RESULTS.md)."""
    rows: list[tuple[str, Variant]] = [("today's product", Variant())]
    if base != Variant():
        rows.append((f"base: {base.describe()}", base))

    def add(label: str, **changes: Any) -> None:
        variant = replace(base, **changes)
        if variant != base:
            rows.append((label, variant))

    add("fields sum (per-field BM25, before #12)", fields="sum")
    for r in ("linear", "once", "k3:1", "k3:3", "k3:8", "k3:100"):
        add(f"qtf {r}", qtf=r)
    for b, k1 in ((0.75, 1.2), (0.75, 1.5), (0.95, 1.5)):
        add(f"B {b} K1 {k1}", b=b, k1=k1)
    for t in (1.0, 1.15, 2.0):
        add(f"title boost {t}", title_boost=t)
    for idf in ("whoosh", "robertson"):
        add(f"idf {idf}", idf=idf)
    for n in (32, 128, 1000):
        add(f"long queries: first {n} terms", terms=n)
    for n, d in (("bm25+", 0.5), ("bm25+", 1.0), ("bm25l", 0.5)):
        add(f"{n} δ {d}", norm=n, delta=d)
    for stop in ("snowball", "small", "none"):
        add(f"stop {stop}", stop=stop)
    for stemmer in ("porter", "nltk-porter"):
        add(f"stemmer {stemmer}", stemmer=stemmer)
    for w, slop in ((0.1, 3), (0.2, 5)):
        add(f"proximity {w} slop {slop}", proximity=w, slop=slop)
    add("rm3 (the product's feedback=rm3)", prf="rm3")
    for prf, k, n, w in (("rm3-or", 10, 10, 0.5), ("bo1", 3, 10, 0.5), ("bo1", 10, 20, 0.3)):
        add(f"{prf} {k} docs {n} terms w {w}", prf=prf, prf_docs=k, prf_terms=n,
            prf_weight=w)
    return rows


# The configuration bench/RESULTS.md proposed ("Relevance across collections"): since
# #12 the product's defaults, with its optional RM3 feedback on.
PROPOSED = "prf=rm3"

GRID = {"idf": "whoosh,robertson", "title_boost": "1.0,1.5", "b": "0.6,0.75,0.9",
        "k1": "1.0,1.5,2.0"}


def cv_grid(base: Variant, grid: Mapping[str, str] = GRID) -> list[Variant]:
    """Every combination of the grid's values (comma-separated), on top of `base`."""
    kinds = {f.name: f.type for f in fields(Variant)}
    axes = [[(name, float(v) if "float" in kinds[name] else v) for v in values.split(",")]
            for name, values in grid.items()]
    return [replace(base, **dict(point)) for point in itertools.product(*axes)]


def leave_one_out(grid: Sequence[Variant], results: Mapping[str, Mapping[str, Outcome]],
                  baseline: Mapping[str, Mapping[str, Scores]]) -> tuple[str, dict[str, dict[
                      str, Scores]]]:
    """For each collection, the grid point with the best mean nDCG@10 on the other three,
    scored on it; the table and the held-out per-query scores."""
    names = list(COLLECTIONS)
    lines = [("| held out | chosen on the other three | held-out nDCG@10 | today |"
             " p vs today | best on it alone |"), "|---|---|---:|---:|---:|---|"]
    held: dict[str, dict[str, Scores]] = {}

    def on(v: Variant, n: str) -> float:
        return Scores.mean(results[v.describe()][n].per_query.values()).ndcg10

    for n in names:
        rest = [m for m in names if m != n]
        chosen = max(grid, key=lambda v: statistics.fmean(on(v, m) for m in rest))
        alone = max(grid, key=lambda v: on(v, n))
        held[n] = results[chosen.describe()][n].per_query
        qids = sorted(baseline[n])
        p = randomisation_test([baseline[n][q].ndcg10 for q in qids],
                               [held[n][q].ndcg10 for q in qids])
        lines.append(f"| {n} | {chosen.describe()} | {on(chosen, n):.3f}"
                     f" | {Scores.mean(baseline[n].values()).ndcg10:.3f} | {p:.3f}"
                     f" | {alone.describe()} ({on(alone, n):.3f}) |")
    m = mean_over(held).ndcg10
    lines.append(f"| mean | | {m:.3f} | {mean_over(baseline).ndcg10:.3f}"
                 f" | {pooled_test(baseline, held):.3f} | |")
    return "\n".join(lines), held


# --- command line ----------------------------------------------------------------------

def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.node()} {platform.system()} {os.cpu_count()} cores, load"
            f" {load[0]:.1f}, Python {platform.python_version()},"
            f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collections", default=",".join(COLLECTIONS),
                   help="comma-separated (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes (default: %(default)s)")
    p.add_argument("--variant", action="append", default=[],
                   help='settings such as "b=0.75 k1=1.2 qtf=k3:8" (repeatable; default:'
                        " today's product)")
    p.add_argument("--proposed", action="store_true",
                   help="run the configuration bench/RESULTS.md proposes (PROPOSED)")
    p.add_argument("--experiments", action="store_true", help="every lever, one at a time")
    p.add_argument("--base", default="product",
                   help="settings --experiments lays each lever on (default: %(default)s)")
    p.add_argument("--skip", default=None,
                   help="leave out the --experiments rows whose label matches this regex")
    p.add_argument("--cv", action="store_true",
                   help="B x K1 x title boost, chosen leaving one collection out")
    p.add_argument("--cv-base", default="product",
                   help="settings the --cv grid is laid on (default: %(default)s)")
    for name, values in GRID.items():
        p.add_argument(f"--cv-{name.replace('_', '-')}", default=values,
                       help=f"--cv values of {name} (default: %(default)s)")
    p.add_argument("--baseline", type=Path, default=None,
                   help="a saved run to test against (default: today's product, run now)")
    p.add_argument("--save", type=Path, default=None,
                   help="save the (first) variant's per-query scores here (JSON)")
    p.add_argument("--save-dir", type=Path, default=None,
                   help="save every variant's per-query scores in this folder")
    p.add_argument("--highlights", action="store_true",
                   help="compute hits' highlights too, as the product does (slower)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                   help="compare two saved runs query by query")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.compare:
        (la, a), (lb, b) = (load(path) for path in args.compare)
        print(comparison_table([(f"A: {la}", a), (f"B: {lb}", b)], a))
        print()
        print(reference_table(f"B: {lb}", b))
        return 0
    names = [n.strip() for n in args.collections.split(",") if n.strip()]
    unknown = set(names) - set(COLLECTIONS)
    if unknown:
        raise SystemExit(f"unknown collection(s): {', '.join(sorted(unknown))}")
    rows: list[tuple[str, Variant]] = [("today's product", Variant())]
    if args.experiments:
        rows = [(label, v) for label, v in experiments(Variant.parse(args.base))
                if not args.skip or not re.search(args.skip, label)]
    if args.proposed:
        args.variant = [PROPOSED, *args.variant]
    rows += [(f"variant: {v}", Variant.parse(v)) for v in args.variant]
    grid: list[Variant] = []
    if args.cv:
        grid = cv_grid(Variant.parse(args.cv_base),
                       {name: getattr(args, f"cv_{name}") for name in GRID})
        rows += [(v.describe(), v) for v in grid]
    unique = list(dict.fromkeys(v for _, v in rows))
    results = run_all(unique, names, jobs=args.jobs, highlights=args.highlights)
    per = {v.describe(): {n: results[v.describe()][n].per_query for n in names} for v in unique}
    baseline = per[Variant().describe()]
    if args.baseline is not None:
        _, baseline = load(args.baseline)
    meta = {"machine": machine(), "query_form": "words joined by ' OR ', per_page 100"}
    print(f"{', '.join(names)}: {machine()}")
    for n in names:
        o = results[Variant().describe()][n]
        print(f"  {n}: {len(o.per_query)} judged queries, {o.refused} refused by the product,"
              f" {o.seconds:.1f} s")
    print()
    shown = [(label, per[v.describe()]) for label, v in rows if not args.cv or v not in grid]
    print(comparison_table(shown, baseline))
    if args.cv:
        table, held = leave_one_out(grid, results, baseline)
        print()
        print(table)
        print()
        print(reference_table("leave-one-collection-out", held))
    for label, scores in shown[-1:] if not args.experiments else []:
        print()
        print(reference_table(label, scores))
    if args.save is not None:
        first = unique[-1] if args.variant else unique[0]
        save(args.save, first.describe(), results[first.describe()], meta)
    if args.save_dir is not None:
        for v in unique:
            slug = "".join(c if c.isalnum() or c in ".-" else "_" for c in v.describe())
            save(args.save_dir / f"{slug}.json", v.describe(), results[v.describe()], meta)
    print(f"\n{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
