"""Pseudo-relevance feedback (RM3): words from the first hits, added to rank again.

Optional (`Settings.feedback`, `SEARCHAPP_FEEDBACK`, or `feedback=rm3` on one
search). After a search ranked by relevance, the first `DOCS` hits' titles and
summaries are analysed with the product's chain; each term weighs the sum over
those hits of (the hit's share of their scores) × (the term's share of the
hit's terms), Lavrenko and Croft's relevance model. The `TERMS` best are added
as optional words (`searchapp.engine.Word` over the text fields), the best with
weight `WEIGHT` relative to a typed word's 1, the others in proportion. They
only reorder what the typed words matched: the matched set, the total and the
facet counts stay the typed query's.

Measured on four judged collections (bench/RESULTS.md, issue #12): +0.015
mean nDCG@10 on BM25F proper, helping on each; 10 documents and 10 terms are
Anserini's RM3 defaults, the weight 0.5 was not tuned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from searchapp.analysis import tongue
from searchapp.engine import Or, Query, Word
from searchapp.fields import TEXT_FIELDS

NONE, RM3 = "none", "rm3"
CHOICES = (NONE, RM3)
DOCS = 10  # hits the expansion is taken from
TERMS = 10  # terms added
WEIGHT = 0.5  # the best added term's weight (a typed word weighs 1)


def rm3(hits: Iterable[tuple[str, float] | tuple[str, float, str]], *, terms: int = TERMS,
        weight: float = WEIGHT) -> list[tuple[str, float]]:
    """The expansion terms (best first) and their weights, from the first hits' texts
    (title and summary), scores and languages (English when not given): each text
    is analysed in its language, its terms tagged with it (`searchapp.analysis`)."""
    top = [(tongue(hit[2] if len(hit) > 2 else "en").analyse(hit[0])[0],
            max(hit[1], 0.0)) for hit in hits]
    total = sum(score for _, score in top) or 1.0
    weights: dict[str, float] = {}
    for words, score in top:
        if not words:
            continue
        share = score / total
        for term, tf in Counter(words).items():
            weights[term] = weights.get(term, 0.0) + share * tf / len(words)
    ranked = sorted(weights.items(), key=lambda tw: (-tw[1], tw[0]))[:terms]
    if not ranked or ranked[0][1] <= 0:
        return []
    best = ranked[0][1]
    return [(term, weight * w / best) for term, w in ranked]


def expansion(weighted: list[tuple[str, float]]) -> Query | None:
    """The added words as one query (None: nothing to add)."""
    words = [Word(tuple((f, term) for f in TEXT_FIELDS), w) for term, w in weighted if w > 0]
    if not words:
        return None
    return words[0] if len(words) == 1 else Or(tuple(words))
