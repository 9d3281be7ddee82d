#!/usr/bin/env python3
"""Typo tolerance's word lookup at scale: Whoosh's automaton against the close-words index.

For every word of the ``typo`` queries in ``bench/queries.jsonl`` that typo
tolerance widens (5 letters or more, unknown to the index), over the index
`bench/run.py` built (``bench/out/<N>/index``), it times, in one process:

- ``whoosh``: `IndexReader.terms_within` on each segment's spelling words
  (Whoosh's Levenshtein automaton, walked over the term index), what the
  product used before;
- ``index``: `searchapp.engine.words.CloseWords.near` (what the product uses),
  once its per-segment index is built; the build (every segment and text
  field: listing the words, then indexing them) is timed, and its peak
  memory measured, separately;
- ``close_words``: the product's whole step, `searchapp.query.close_words`
  (candidates, their stems and document counts, the cap).

Both lookups must find the same words (checked). Prints a Markdown table::

    .venv/bin/python bench/typos.py --items 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import queries as queries_mod
from searchapp.engine import open_snapshot
from searchapp.engine.words import CloseWords
from searchapp.fields import TEXT_FIELDS
from searchapp.indexer import IndexStore
from searchapp.query import allowed_edits, close_words, parse


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3, help="times each lookup is repeated")
    a = ap.parse_args(argv)
    index_dir = ROOT / "bench" / "out" / str(a.items) / "index"
    snapshot = open_snapshot(IndexStore(index_dir).open_index())
    vocabulary = snapshot.vocabulary()
    reader = snapshot.reader
    schema = reader.schema
    spell = {f: schema[f].spelling_fieldname(f) for f in TEXT_FIELDS}
    leaves = [leaf for leaf, _ in reader.leaf_readers()]

    words = []
    for q in queries_mod.load():
        if q["kind"] != "typo":
            continue
        for clause in parse(q["q"]).positives:
            word = clause.words[0] if len(clause.words) == 1 else ""
            if allowed_edits(word) and not any(
                    vocabulary.doc_frequency(f, clause.terms[0]) for f in TEXT_FIELDS):
                words.append(word)

    def build() -> dict[tuple[int, str], CloseWords]:
        return {(i, f): CloseWords(w.decode("utf-8") for w in leaf.lexicon(spell[f]))
                for i, leaf in enumerate(leaves) for f in TEXT_FIELDS}

    began = time.perf_counter()
    listed = [w for leaf in leaves for f in TEXT_FIELDS for w in leaf.lexicon(spell[f])]
    list_s = time.perf_counter() - began
    began = time.perf_counter()
    indexes = build()
    build_s = time.perf_counter() - began
    tracemalloc.start()
    build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    times: dict[str, list[float]] = {"whoosh": [], "index": [], "close_words": []}
    for word in words:
        edits = allowed_edits(word)
        for name, medians in times.items():
            runs = []
            for _ in range(a.runs):
                began = time.perf_counter()
                if name == "whoosh":
                    found = {w for leaf in leaves for f in TEXT_FIELDS
                             for w in leaf.terms_within(f, word, edits, prefix=1)}
                elif name == "index":
                    mine = {w for ix in indexes.values() for w, _ in ix.near(word, distance=edits)}
                else:
                    close_words(vocabulary, word, TEXT_FIELDS)
                runs.append((time.perf_counter() - began) * 1000)
            medians.append(statistics.median(runs))
        # Whoosh's automaton counts a swap as two edits; the index as one.
        assert found <= mine, (word, found - mine)
    snapshot.close()
    vocabulary_words = sum(len(ix) for ix in indexes.values())
    print(json.dumps({"items": a.items, "words": len(words), "segments": len(leaves),
                      "index_build_s": round(build_s, 2),
                      "of_which_listing_words_s": round(list_s, 2),
                      "words_listed": len(listed),
                      "index_words": vocabulary_words,
                      "index_peak_mib": round(peak / 2**20, 1)}))
    print()
    print("| lookup | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} |"
              f" {max(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
