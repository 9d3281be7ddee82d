"""Ranking, in one place: the scoring kinds, their numpy twins, and when a twin is exact.

Two kinds (`Ranking.kind`, `Settings.scoring`):

- ``bm25f`` (the default): BM25F proper. A word searched in several fields is
  one `searchapp.engine.Word`, scored once: its frequencies in each field,
  each length-normalised in its own field, are added (the title's already
  multiplied by its boost, applied when the index is written,
  `searchapp.schema`), then saturated once, tf~·(K1 + 1)/(tf~ + K1), and
  weighted by one IDF from the documents that have the word in any of those
  fields, Lucene's ln(1 + (N − df + 0.5)/(df + 0.5)) over live documents
  (`WordBM25F`). A term in one field (``title:word``, a phrase's words) is
  BM25 in that field with the same IDF formula.
- ``fields``: what searchapp ranked with before #12, Whoosh's BM25F scored per
  field and added (`whoosh.scoring.BM25F`, a `Word` being an OR of its terms),
  with Whoosh's IDF ln(N/(df + 1)) + 1. Kept for comparison and triage.

B 0.75, K1 2.0 and the title boost 1.5 were chosen leaving one judged
collection out at a time over Cranfield, CISI, MED and CACM (issue #12,
bench/RESULTS.md "Relevance across collections").

The arrays path (`searchapp.engine.arrays`) scores a whole posting list at
once (`term_scores`, `word_scores`) with the same arithmetic, in the same
order, as the Whoosh side does one document at a time (`BM25FScorer`,
`WordBM25F.word_score` in `searchapp.engine.plain`'s matcher), so each term's
and word's scores are the same bit for bit.

The exactness rule: a sum of per-term scores is Whoosh's bit for bit when
every AND or OR it comes from has at most two parts (one IEEE addition in
the order Whoosh makes it). Larger trees may add in another order; their
matches are marked inexact and the documents around a cut are rescored by
Whoosh's own matcher (`Snapshot.rescore`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh import scoring

Scores = NDArray[np.float64]

BM25F, FIELDS = "bm25f", "fields"
KINDS = (BM25F, FIELDS)
# Chosen leaving one collection out (bench/RESULTS.md, issue #12): three of the
# four folds picked B 0.75, K1 2.0, title boost 1.5 with BM25F proper.
B = 0.75
K1 = 2.0
# The title's field boost, applied when the index is written (a reindex applies a
# new value): a word in a title counts as 1.5 occurrences in BM25F's sum.
TITLE_BOOST = 1.5
# A query word typed n times weighs (K3 + 1)·n/(K3 + n) (BM25's query-term
# saturation): 1 once, 1.8 twice, at most 9. Counting once lost on CISI and
# CACM, counting linearly on Cranfield and MED; K3 8 lost nowhere (issue #12).
K3 = 8.0
EXACT_PARTS = 2  # an AND or OR of more parts than this gives inexact sums


def query_weight(count: int) -> float:
    """The weight of a query word (or part) typed `count` times."""
    return 1.0 if count <= 1 else (K3 + 1) * count / (K3 + count)


def robertson_idf(n: int, df: int) -> float:
    """Lucene's (and bm25s's) IDF: never negative, and rarer words weigh more."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class RobertsonScorer(scoring.BM25FScorer):  # type: ignore[misc]
    """BM25 of one term in one field, with Lucene's IDF (N and df counting
    deleted documents, as Whoosh's statistics do)."""

    def __init__(self, searcher: Any, fieldname: str, text: str, B: float, K1: float,
                 qf: int = 1) -> None:
        parent = searcher.get_parent()
        self.idf = robertson_idf(int(parent.doc_count_all()),
                                 int(parent.doc_frequency(fieldname, text)))
        self.avgfl = parent.avg_field_length(fieldname) or 1
        self.B = B
        self.K1 = K1
        self.qf = qf
        self.setup(searcher, fieldname, text)


class WordBM25F(scoring.WeightingModel):  # type: ignore[misc]
    """BM25F proper (the ``bm25f`` kind) as a Whoosh weighting model.

    `scorer` scores a term in one field (Whoosh's `Term` and `Phrase`);
    a word in several fields is scored by `word_score` (Whoosh side, one
    document) and `word_scores` (arrays, many), which the seam's `Word`
    reaches through `searchapp.engine.plain.WordQuery` and the arrays path.
    """

    def __init__(self, B: float = B, K1: float = K1) -> None:
        self.B = B
        self.K1 = K1

    def supports_block_quality(self) -> bool:
        return False  # a word's matcher knows no bound on its scores

    def scorer(self, searcher: Any, fieldname: str, text: str, qf: int = 1) -> Any:
        if not searcher.schema[fieldname].scorable:
            return scoring.WeightScorer.for_(searcher, fieldname, text)
        return RobertsonScorer(searcher, fieldname, text, self.B, self.K1, qf=qf)

    def word_idf(self, n: int, df: int) -> float:
        """One IDF for a word, `df` the live documents having it in any of its
        fields, `n` the live documents."""
        return robertson_idf(n, df)

    def part(self, weight: float, length: float, avgfl: float) -> float:
        """One field's length-normalised frequency of the word in one document."""
        b = self.B
        return weight / ((1 - b) + b * length / avgfl)

    def word_score(self, idf: float, tf: float) -> float:
        """The word's score from the sum of its fields' `part`s (one saturation)."""
        k1 = self.K1
        return idf * tf * (k1 + 1) / (tf + k1)

    def parts(self, weights: Scores, lengths: NDArray[np.integer[Any]], avgfl: float
              ) -> Scores:
        """`part` of many documents at once (the same operations, in the same order)."""
        b = self.B
        found: Scores = weights / ((1 - b) + b * lengths.astype(np.float64) / avgfl)
        return found

    def word_scores(self, idf: float, tf: Scores) -> Scores:
        """`word_score` of many documents at once."""
        k1 = self.K1
        found: Scores = idf * tf * (k1 + 1) / (tf + k1)
        return found


@dataclass(frozen=True, slots=True)
class Ranking:
    """The ranking model's knobs."""

    kind: str = BM25F
    b: float = B
    k1: float = K1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"the scoring kind must be one of {', '.join(KINDS)},"
                             f" not {self.kind!r}")

    def weighting(self) -> scoring.WeightingModel:
        if self.kind == BM25F:
            return WordBM25F(B=self.b, K1=self.k1)
        return scoring.BM25F(B=self.b, K1=self.k1)


def is_bm25f(weighting: Any) -> bool:
    """Whether `weighting` scores a word in several fields as one term."""
    return isinstance(weighting, WordBM25F)


def unsupported(weighting: Any) -> str | None:
    """Why the arrays path cannot reproduce this Whoosh weighting model (None: it can)."""
    if type(weighting) is WordBM25F:
        return None
    if type(weighting) is not scoring.BM25F:
        return f"ranking model {type(weighting).__module__}.{type(weighting).__qualname__}" \
               " is neither searchapp's WordBM25F nor whoosh.scoring.BM25F"
    if weighting.use_final:
        return "the ranking model rescales final scores"
    return None


def term_scores(weighting: scoring.WeightingModel, searcher: Any, fieldname: str, text: str,
                tf: Scores, lengths: NDArray[np.integer[Any]], df: int | None = None
                ) -> Scores:
    """BM25 of one term in one field in the documents with the given weights (`tf`)
    and field lengths, as `whoosh.scoring.bm25` computes it (with the IDF of the
    model's scorer), one array operation per step.

    For the product's model (`WordBM25F`) the scorer's figures are worked out as its
    constructor does, without building it: its `setup` reads the term's info again
    for a bound on its scores that only Whoosh's own matchers use. `df`, when given,
    is the term's document frequency as Whoosh counts it (deleted documents too),
    from a table the caller already has."""
    if type(weighting) is WordBM25F and searcher.schema[fieldname].scorable:
        parent = searcher.get_parent()
        if df is None:
            df = int(parent.doc_frequency(fieldname, text))
        idf = robertson_idf(int(parent.doc_count_all()), df)
        avgfl, b, k1 = parent.avg_field_length(fieldname) or 1, weighting.B, weighting.K1
    else:
        scorer = weighting.scorer(searcher, fieldname, text)
        if not isinstance(scorer, scoring.BM25FScorer):
            return tf  # unscorable fields score their weight (WeightScorer)
        idf, avgfl, b, k1 = scorer.idf, scorer.avgfl, scorer.B, scorer.K1
    fl = lengths.astype(np.float64)
    scores: Scores = idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
    return scores


def boosted(scores: Scores, boost: float) -> Scores:
    """A boosted term's scores, as Whoosh's wrapping matcher multiplies them."""
    return scores if boost == 1.0 else scores * boost


def exact_sum(parts: int) -> bool:
    """Whether adding this many parts' scores gives Whoosh's sum bit for bit."""
    return parts <= EXACT_PARTS


def binary_sum(parts: list[Scores]) -> Scores:
    """Add arrays along the tree `whoosh.util.make_binary_tree` builds (halves,
    recursively): how Whoosh sums a phrase's words."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return binary_sum(parts[:half]) + binary_sum(parts[half:])
