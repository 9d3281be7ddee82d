"""What analysing English queries in six languages would do to English collections.

The design question of #13: if each query word matched any of its stems in the
languages present in the index (en, fr, es, it, de, pt), and every stem lived
in one shared text field, the French, Spanish, Italian, German and Portuguese
stems of an English query word could meet terms of English documents. This
counts how often that happens on the judged English collections and, with
``--rank``, measures what it does to their ranking:

- ``english``: the query analysed in English only (the product's figures);
- ``expanded, sum``: every word's stems in the six languages OR'ed together,
  a document scoring for each stem it has (Whoosh's plain OR);
- ``expanded, max``: the same stems, a document scoring for its best stem of each
  word (a disjunction-max per word over the stems, each stem summed over the fields).

Documents are indexed as the product indexes them today (English analysis).
Run from the repository root::

    python bench/language_expansion.py            # vocabulary counts, seconds
    python bench/language_expansion.py --rank     # and the ranking, about a minute per collection
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from whoosh import query as wq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import relevance  # bench/relevance.py: the product's index, queries and metrics

from searchapp import analysis
from searchapp.languages import analyse_word

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
COLLECTIONS = {
    "cranfield": SHARED / "cranfield" / "cranfield.jsonl",
    "cisi": SHARED / "cisi" / "docs.jsonl",
    "med": SHARED / "med" / "docs.jsonl",
    "cacm": SHARED / "cacm" / "docs.jsonl",
}
LANGUAGES = ("en", "fr", "es", "it", "de", "pt")
WORDS = re.compile(analysis.TOKEN_PATTERN)


def load_qrels(path: Path) -> relevance.Qrels:
    """Query id → document id → grade; the grade column is `rel` or `gain`."""
    qrels: relevance.Qrels = {}
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            qrels.setdefault(row["qid"], {})[row["docid"]] = int(row.get("rel") or row["gain"])
    return qrels


def stems(word: str) -> dict[str, str]:
    """Language → the word's term in it (stop words left out)."""
    found = {}
    for language in LANGUAGES:
        term = analyse_word(word, language)
        if term is not None:
            found[language] = term
    return found


def query_word_list(text: str) -> list[str]:
    """The query's words that English analysis keeps, each once, lowercased."""
    words = dict.fromkeys(w.lower() for w in WORDS.findall(text))
    return [w for w in words if analyse_word(w, "en") is not None]


def vocabulary_counts(name: str, items: Sequence[relevance.Item],
                      queries: dict[str, str]) -> list[str]:
    english_vocabulary = {term for item in items
                          for term in analysis.terms(f"{item.title}\n{item.summary}")}
    per_word: list[int] = []
    gained = colliding = 0
    queries_colliding = 0
    terms_english: list[int] = []
    terms_expanded: list[int] = []
    examples: Counter[tuple[str, str, str]] = Counter()
    for text in queries.values():
        words = query_word_list(text)
        collided = False
        english_terms: set[str] = set()
        all_terms: set[str] = set()
        for word in words:
            by_language = stems(word)
            english = by_language["en"]
            extra = set(by_language.values()) - {english}
            per_word.append(len(set(by_language.values())))
            english_terms.add(english)
            all_terms |= set(by_language.values())
            gained += bool(extra)
            hits = {term for term in extra if term in english_vocabulary}
            if hits:
                colliding += 1
                collided = True
                for term in hits:
                    examples[(word, english, term)] += 1
        terms_english.append(len(english_terms))
        terms_expanded.append(len(all_terms))
        queries_colliding += collided
    n = len(per_word)
    common = ", ".join(f"{w} → {e} + {t}" for (w, e, t), _ in examples.most_common(6))
    row = (f"| {name} | {len(queries)} | {n} | {statistics.fmean(per_word):.2f}"
           f" | {gained / n:.0%} | {colliding / n:.0%}"
           f" | {queries_colliding}/{len(queries)}"
           f" | {statistics.fmean(terms_english):.1f} → {statistics.fmean(terms_expanded):.1f}"
           f" | {common} |")
    return [row]


def expanded_query(text: str, combine: Callable[[list[wq.Query]], wq.Query]) -> wq.Query | None:
    clauses = []
    for word in query_word_list(text):
        terms = sorted(set(stems(word).values()))
        per_stem = [wq.Or([wq.Term(field, term) for field in relevance.TEXT_FIELDS])
                    for term in terms]
        clauses.append(combine(per_stem))
    return wq.Or(clauses) if clauses else None


def rank(name: str, bench: relevance.Bench) -> list[tuple[str, dict[str, relevance.Scores]]]:
    settings = relevance.Settings()
    rows = [("english", bench.evaluate(settings))]
    index, _analyzer = bench.index(settings)
    variants: dict[str, Callable[[list[wq.Query]], wq.Query]] = {
        "expanded, sum": wq.Or,
        "expanded, max": lambda clauses: wq.DisjunctionMax(clauses, tiebreak=0.0),
    }
    for label, combine in variants.items():
        runs: dict[str, list[str]] = {}
        with index.searcher(weighting=settings.weighting()) as searcher:
            ids = {docnum: fields["id"] for docnum, fields in searcher.reader().iter_docs()}
            for qid, text in bench.queries.items():
                query = expanded_query(text, combine)
                if query is None:
                    runs[qid] = []
                    continue
                results = searcher.search(query, limit=relevance.DEPTH)
                runs[qid] = [ids[docnum] for _, docnum in results.top_n]
        rows.append((label, relevance.evaluate(runs, bench.qrels)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rank", action="store_true", help="also measure the ranking")
    parser.add_argument("--only", nargs="*", choices=sorted(COLLECTIONS))
    args = parser.parse_args(argv)
    names = args.only or list(COLLECTIONS)
    loaded = {}
    for name in names:
        folder = COLLECTIONS[name].parent
        items = relevance.load_items(COLLECTIONS[name])
        queries = relevance.load_queries(folder / "queries.jsonl")
        loaded[name] = (items, queries, load_qrels(folder / "qrels.tsv"))
    print("| collection | queries | query words | stems per word (6 languages)"
          " | words gaining a stem | gaining one in the English vocabulary"
          " | queries with such a word | terms per query | most common |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name in names:
        items, queries, _qrels = loaded[name]
        print(*vocabulary_counts(name, items, queries), sep="\n")
    if args.rank:
        for name in names:
            items, queries, qrels = loaded[name]
            with relevance.Bench(items, queries, qrels) as bench:
                print(f"\n{name}\n")
                print(relevance.table(rank(name, bench)))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
