"""Ranking, in one place: the BM25F model, its numpy twin, and when the twin is exact.

The model is Whoosh's BM25F with the knobs tuned on the Cranfield collection
(`Settings.bm25_b`, `Settings.bm25_k1`; the title boost is a field boost,
applied when the index is written, `searchapp.schema`). The arrays path
(`searchapp.engine.arrays`) scores a whole posting list at once with
`term_scores`, the same arithmetic `whoosh.scoring.bm25` does one document
at a time, so each term's scores are Whoosh's bit for bit.

The exactness rule: a sum of per-term scores is Whoosh's bit for bit when
every AND or OR it comes from has at most two parts (one IEEE addition in
the order Whoosh makes it). Larger trees may add in another order; their
matches are marked inexact and the documents around a cut are rescored by
Whoosh's own matcher (`Snapshot.rescore`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh import scoring

Scores = NDArray[np.float64]

# As tuned on the Cranfield collection (bench/RESULTS.md).
B = 0.95
K1 = 1.5
# BM25F field boost for titles. BM25F's per-field statistics already favour titles
# (a word is rarer among titles, and titles are short), so a small boost is enough
# to make a title match outrank the same word in a summary; larger ones lost
# nDCG@10 on Cranfield (bench/RESULTS.md).
TITLE_BOOST = 1.15
EXACT_PARTS = 2  # an AND or OR of more parts than this gives inexact sums


@dataclass(frozen=True, slots=True)
class Ranking:
    """The ranking model's knobs."""

    b: float = B
    k1: float = K1

    def weighting(self) -> scoring.WeightingModel:
        return scoring.BM25F(B=self.b, K1=self.k1)


def unsupported(weighting: Any) -> str | None:
    """Why `term_scores` cannot reproduce this Whoosh weighting model (None: it can)."""
    if type(weighting) is not scoring.BM25F:
        return f"ranking model {type(weighting).__module__}.{type(weighting).__qualname__}" \
               " is not whoosh.scoring.BM25F"
    if weighting.use_final:
        return "the ranking model rescales final scores"
    return None


def term_scores(weighting: scoring.BM25F, searcher: Any, fieldname: str, text: str,
                tf: Scores, lengths: NDArray[np.integer[Any]]) -> Scores:
    """BM25F of one term in the documents with the given weights (`tf`) and field
    lengths, as `whoosh.scoring.bm25` computes it, one array operation per step."""
    scorer = weighting.scorer(searcher, fieldname, text)
    if not isinstance(scorer, scoring.BM25FScorer):
        return tf  # unscorable fields score their weight (WeightScorer)
    fl = lengths.astype(np.float64)
    idf, avgfl, b, k1 = scorer.idf, scorer.avgfl, scorer.B, scorer.K1
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
