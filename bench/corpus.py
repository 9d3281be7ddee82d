#!/usr/bin/env python3
"""A deterministic synthetic corpus for the speed benchmark.

Items are recombined from real news text, so word frequencies look like news:
each title splices the start of one real headline onto the end of another,
each summary strings together one to three real sentences. Organisations,
years and types are drawn from skewed distributions (a few organisations and
types hold most items, recent years have more items than old ones, a few
items are undated). The same seed, source and N always give the same bytes,
and N = 1,000,000 streams to disk without holding the corpus in memory::

    .venv/bin/python bench/corpus.py --items 100000 --out bench/out/corpus-100000.jsonl
    .venv/bin/python bench/corpus.py --items 5000 --source my-news.jsonl --out small.jsonl

The text source is any JSON Lines file of objects with ``title`` and
``summary`` (default: the AG News and Reuters-21578 conversions in
``../shared/data/``, else ``data/samples/`` imported through the product's
importers).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_SOURCES = (SHARED / "ag_news" / "ag_news.jsonl", SHARED / "reuters21578" / "reuters.jsonl")
SEED = 20240601

# 20 organisations, Zipf-like weights (the first holds about a fifth of the items).
ORGANISATIONS = (
    "ICA", "ILO", "CECOP", "Cooperatives Europe", "COPAC", "NCBA CLUSA", "Co-operatives UK",
    "Euricse", "CICOPA", "Legacoop", "Confcooperative", "Mondragon", "Desjardins", "ICMIF",
    "WOCCU", "Coop de France", "DGRV", "Cooperatives Canada", "Ica Asia Pacific", "ACI Americas",
)
ORGANISATION_WEIGHTS = tuple(1 / (k ** 1.1) for k in range(1, len(ORGANISATIONS) + 1))
TYPES = ("News", "Press release", "Event", "Position paper",
         "Spotlight Interviews with Cooperators", "COOP Champions")
TYPE_WEIGHTS = (50, 20, 12, 8, 6, 4)
YEARS = tuple(range(2000, 2026))
YEAR_WEIGHTS = tuple(1 + (y - YEARS[0]) / 5 for y in YEARS)  # recent years have more
UNDATED_SHARE = 0.03
EMPTY_SUMMARY_SHARE = 0.04

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


@dataclass(frozen=True, slots=True)
class TextPool:
    """Headlines (as word lists) and sentences to recombine."""

    titles: tuple[tuple[str, ...], ...]
    sentences: tuple[str, ...]


def _headline(title: str) -> str:
    """Reuters headlines are in capitals; make them read like the others."""
    return title.capitalize() if title.isupper() else title


def read_records(sources: Sequence[Path]) -> Iterator[dict[str, Any]]:
    for path in sources:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def sample_records() -> list[dict[str, Any]]:
    """The items of data/samples, through the product's importers."""
    from searchapp import importers

    parsed = importers.collect([ROOT / "data" / "samples"])
    return [{"title": r.item.title, "summary": r.item.summary}
            for p in parsed for r in p.records]


def load_pool(sources: Sequence[Path] | None = None) -> TextPool:
    """The text to recombine, from `sources` (default: the news corpora, else the samples)."""
    if sources is None:
        present = [p for p in DEFAULT_SOURCES if p.is_file()]
        records = list(read_records(present)) if present else sample_records()
    else:
        records = list(read_records(sources))
    titles: list[tuple[str, ...]] = []
    sentences: list[str] = []
    for record in records:
        words = tuple(_headline(str(record.get("title") or "")).split())
        if words:
            titles.append(words)
        summary = " ".join(str(record.get("summary") or "").split())
        sentences.extend(s for s in _SENTENCE_END.split(summary) if len(s) > 20)
    if not titles or not sentences:
        raise SystemExit("the text source has no titles or no summaries to recombine")
    return TextPool(tuple(titles), tuple(sentences))


def generate(n: int, *, seed: int = SEED, pool: TextPool | None = None,
             prefix: str = "bench") -> Iterator[dict[str, Any]]:
    """`n` item records (JSON-ready dicts), the same ones for the same arguments."""
    pool = pool or load_pool()
    rng = random.Random(seed)
    titles, sentences = pool.titles, pool.sentences
    org_cum = _cumulative(ORGANISATION_WEIGHTS)
    type_cum = _cumulative(TYPE_WEIGHTS)
    year_cum = _cumulative(YEAR_WEIGHTS)
    width = max(7, len(str(n)))
    for i in range(n):
        first, second = rng.choice(titles), rng.choice(titles)
        cut = rng.randint(1, max(1, len(first) - 1))
        rest = second[min(len(second) - 1, rng.randint(1, max(1, len(second) - 1))):]
        title = " ".join(first[:cut] + rest)[:300]
        if rng.random() < EMPTY_SUMMARY_SHARE:
            summary = ""
        else:
            summary = " ".join(rng.choice(sentences) for _ in range(rng.choice((1, 1, 2, 2, 3))))
        record: dict[str, Any] = {
            "id": f"{prefix}-{i:0{width}d}",
            "organisation": ORGANISATIONS[_pick(rng, org_cum)],
            "title": title,
            "summary": summary[:1500],
            "type": TYPES[_pick(rng, type_cum)],
        }
        if rng.random() >= UNDATED_SHARE:
            year = YEARS[_pick(rng, year_cum)]
            record["date"] = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        yield record


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cumulative: Sequence[float]) -> int:
    import bisect

    return min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]),
               len(cumulative) - 1)


def write(path: Path, n: int, *, seed: int = SEED, sources: Sequence[Path] | None = None,
          prefix: str = "bench") -> Path:
    """Write the corpus as JSON Lines (through a temporary file, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pool = load_pool(sources)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in generate(n, seed=seed, pool=pool, prefix=prefix))
    tmp.replace(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, required=True, help="how many items (1k to 1M)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--source", type=Path, action="append",
                    help="JSON Lines text source (repeatable; default: the news corpora)")
    ap.add_argument("--prefix", default="bench", help="item id prefix")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    write(args.out, args.items, seed=args.seed, sources=args.source, prefix=args.prefix)
    print(f"wrote {args.items} items to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
