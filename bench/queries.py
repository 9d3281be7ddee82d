#!/usr/bin/env python3
"""The fixed query set of the speed benchmark: 300 queries of five kinds.

Chosen once from the text the corpus is recombined from (so their frequencies
carry over to any N), with a fixed seed, and kept in ``bench/queries.jsonl``:

- ``mid``: one word found in 0.05-0.5 % of items;
- ``two``: two words from the same headline (both must match);
- ``common``: one of the most frequent words (2-30 % of items);
- ``phrase``: two adjacent words of a headline, quoted;
- ``filter``: a mid-frequency or common word plus one facet filter
  (an organisation, a type or a year);
- ``typo``: a word of the kinds above mistyped (one edit after its first
  letter, two from 9 letters, into a word the text never has), alone or before
  a word typed right: what typo tolerance (#12) answers. Added later, by
  ``bench/queries.py --add-typos``, which appends them and leaves the other
  kinds as they are.

Words of the SMART stop list (bench/relevance.py) are never chosen, so tuning
the product's stop list does not empty a query. Each line is ``{"kind", "q",
"filters"}``; ``filters`` maps a facet to its selected values, as
`searchapp.search.SearchQuery` takes them. The file is committed so that every
run uses the same queries; ``.venv/bin/python bench/queries.py`` regenerates it
(differently if the analysis chain has changed since).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import ORGANISATIONS, TYPES, YEARS, load_pool
from searchapp.analysis import STOP_WORDS, terms

try:  # words a longer stop list would drop make poor benchmark queries
    from bench.relevance import SMART_STOP_WORDS as AVOID
except ImportError:  # pragma: no cover
    AVOID = frozenset()
SKIP = STOP_WORDS | AVOID

QUERIES = Path(__file__).resolve().parent / "queries.jsonl"
KINDS = ("mid", "two", "common", "phrase", "filter", "typo")
PER_KIND = 60
SEED = 7
TYPO_SEED = 12
_WORD = re.compile(r"^[A-Za-z][a-z]{2,}$")  # plain words only: no tickers, numbers, initials


def _doc_frequencies(texts: Sequence[str]) -> tuple[Counter[str], dict[str, str]]:
    """Documents per stem, and each stem's most frequent written form."""
    df: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for text in texts:
        seen = set()
        for word in text.split():
            word = word.strip(".,;:!?\"'()[]<>")
            if not _WORD.match(word) or word.lower() in SKIP:
                continue
            stems = terms(word)
            if len(stems) != 1:
                continue
            forms.setdefault(stems[0], Counter())[word.lower()] += 1
            seen.add(stems[0])
        df.update(seen)
    return df, {stem: c.most_common(1)[0][0] for stem, c in forms.items()}


def build() -> list[dict[str, Any]]:
    pool = load_pool()
    rng = random.Random(SEED)
    # Texts shaped like corpus items: a headline and one or two sentences.
    texts = [" ".join(t) + " " + " ".join(rng.choice(pool.sentences)
                                          for _ in range(rng.choice((1, 2))))
             for t in pool.titles]
    df, form = _doc_frequencies(texts)
    n = len(texts)
    by_share = sorted(df, key=lambda s: (-df[s], s))
    common = [s for s in by_share if 0.02 <= df[s] / n <= 0.30]
    mid = [s for s in by_share if 0.0005 <= df[s] / n <= 0.005]
    moderate = {s for s in by_share if 0.0005 <= df[s] / n <= 0.05}

    queries: list[dict[str, Any]] = []

    def add(kind: str, q: str, filters: dict[str, list[Any]] | None = None) -> None:
        queries.append({"kind": kind, "q": q, "filters": filters or {}})

    for stem in rng.sample(mid, PER_KIND):
        add("mid", form[stem])
    headlines = list(pool.titles)
    rng.shuffle(headlines)
    pairs: set[tuple[str, str]] = set()
    for words in headlines:
        if len(pairs) >= PER_KIND:
            break
        usable = list(dict.fromkeys(
            w.lower() for w in words if _WORD.match(w) and w.lower() not in SKIP
            and len(terms(w)) == 1 and terms(w)[0] in moderate))
        if len(usable) >= 2:
            first, second = rng.sample(usable, 2)
            if (first, second) not in pairs and terms(first) != terms(second):
                pairs.add((first, second))
                add("two", f"{first} {second}")
    for stem in rng.sample(common[:100], PER_KIND):
        add("common", form[stem])
    bigrams: Counter[tuple[str, str]] = Counter()
    for words in pool.titles:
        clean = [w.lower() for w in words]
        for a, b in itertools.pairwise(clean):
            if (_WORD.match(a) and _WORD.match(b) and a not in SKIP
                    and b not in SKIP and a != b):
                bigrams[(a, b)] += 1
    frequent = sorted(b for b, c in bigrams.items() if c >= 5)
    for a, b in rng.sample(frequent, PER_KIND):
        add("phrase", f'"{a} {b}"')
    words = rng.sample(mid, PER_KIND // 2) + rng.sample(common[:100], PER_KIND // 2)
    rng.shuffle(words)
    for i, stem in enumerate(words):
        which = i % 3
        if which == 0:
            filters: dict[str, list[Any]] = {"organisation": [rng.choice(ORGANISATIONS[:8])]}
        elif which == 1:
            filters = {"type": [rng.choice(TYPES[:4])]}
        else:
            filters = {"year": [rng.choice(YEARS)]}
        add("filter", form[stem], filters)
    return queries


def _mistype(word: str, rng: random.Random, known: set[str]) -> str | None:
    """`word` with one edit after its first letter (two from 9 letters), or None
    when that makes a word the text has."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    typed = word
    for _ in range(2 if len(word) >= 9 else 1):
        at = rng.randrange(1, len(typed) - 1)
        edit = rng.choice(("swap", "drop", "add", "change"))
        if edit == "swap":
            typed = typed[:at] + typed[at + 1] + typed[at] + typed[at + 2:]
        elif edit == "drop":
            typed = typed[:at] + typed[at + 1:]
        elif edit == "add":
            typed = typed[:at] + rng.choice(letters) + typed[at:]
        else:
            typed = typed[:at] + rng.choice(letters.replace(typed[at], "")) + typed[at + 1:]
    stems = terms(typed)
    if typed == word or typed in known or len(stems) != 1 or stems[0] in known:
        return None
    return typed


def typo_queries(existing: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """PER_KIND mistyped queries from the words of `existing` (the other kinds)."""
    pool = load_pool()
    known: set[str] = set()
    for words in pool.titles:
        known.update(w.lower() for w in words)
    for sentence in pool.sentences:
        known.update(w.strip(".,;:!?\"'()[]<>").lower() for w in sentence.split())
    known |= {t for w in list(known) for t in terms(w)}
    rng = random.Random(TYPO_SEED)
    singles = sorted({q["q"] for q in existing if q["kind"] in ("mid", "common", "filter")
                      and len(q["q"]) >= 5 and q["q"].isalpha()})
    pairs = sorted({q["q"] for q in existing if q["kind"] == "two"})
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(out) < PER_KIND:
        if len(out) % 4 == 3:  # one in four: a mistyped word before a word typed right
            first, second = rng.choice(pairs).split()
            if len(first) < 5 or not first.isalpha():
                continue
            typed = _mistype(first, rng, known)
            q = f"{typed} {second}" if typed else None
        else:
            q = _mistype(rng.choice(singles), rng, known)
        if q and q not in seen:
            seen.add(q)
            out.append({"kind": "typo", "q": q, "filters": {}})
    return out


def load(path: Path = QUERIES) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main() -> int:
    if sys.argv[1:] == ["--add-typos"]:
        kept = [q for q in load() if q["kind"] != "typo"]
        queries = kept + typo_queries(kept)
        with open(QUERIES, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
        print(f"wrote {len(queries) - len(kept)} typo queries to {QUERIES}", file=sys.stderr)
        return 0
    queries = build()
    queries += typo_queries(queries)
    with open(QUERIES, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    counts = Counter(q["kind"] for q in queries)
    print(f"wrote {len(queries)} queries to {QUERIES}: {dict(counts)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
