"""Whether the language detector answers exactly as an earlier revision's did.

`searchapp.languages._by_stop_words` (the stop-word shortcut) and
`searchapp.languages.detect` of this tree are run beside the same functions of
``--against`` (a git revision, loaded from ``git show``) on every text of every
collection at hand: the judged titles (tests/data/language_titles.jsonl, titles
alone and with their summaries), the bench corpora named with ``--corpus``, the
English collections in ../shared/data (AG News, Reuters-21578, Cranfield, CISI,
MED, CACM), the sample data and test feeds (read by the product's importers),
and seeded mixtures of the 13 languages' stop words, which put the shortcut's
margins to work as real news rarely does. Each answer, language and confidence,
must be equal: the shortcut's bit for bit, and lingua's up to its own jitter from
call to call (`LINGUA_JITTER`); the script prints a table and exits 1 on any
difference.

lingua's models are loaded once and shared by both revisions' `detect` (the
older module is pointed at this one's detectors), so a difference can only come
from the code around them.

    .venv/bin/python bench/detect_equivalence.py \\
        --corpus /work/wt-bench/bench/out/corpus-100000-20240601.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from searchapp import importers, languages

ROOT = Path(__file__).resolve().parent.parent
# main before the shortcut counted with packed counters (the rule as first written).
BEFORE = "572969b"
SHARED = (
    ("AG News", "../shared/data/ag_news/ag_news.jsonl"),
    ("Reuters-21578", "../shared/data/reuters21578/reuters.jsonl"),
    ("Cranfield", "../shared/data/cranfield/cranfield.jsonl"),
    ("CISI", "../shared/data/cisi/docs.jsonl"),
    ("MED", "../shared/data/med/docs.jsonl"),
    ("CACM", "../shared/data/cacm/docs.jsonl"),
)
MIXTURES = 100_000
# lingua's confidences differ from call to call in their last bits (it sums over hash
# maps, whose order each call draws afresh: one text, one detector, 20 calls, 13 to 16
# values apart by about 1e-15), so two answers of lingua's are the same when the
# language is, the confidences are this close, and they round alike to the 3 decimals
# an item keeps. The stop-word shortcut's answers are compared bit for bit.
LINGUA_JITTER = 1e-12

Texts = list[tuple[str, str]]  # (title, summary)


def load_revision(revision: str) -> types.ModuleType:
    """`searchapp/languages.py` as it was at `revision`, as a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:searchapp/languages.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"languages_at_{revision}")
    sys.modules[module.__name__] = module  # (dataclasses look their module up)
    code = compile(source, f"{revision}:searchapp/languages.py", "exec")
    exec(code, module.__dict__)  # noqa: S102 (our own file, as it was)
    return module


def _jsonl(path: Path) -> Texts:
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    return [(r.get("title") or "", r.get("summary") or "") for r in records]


def _imported(paths: list[Path]) -> Texts:
    """The titles and summaries of the items the product's importers read from `paths`
    (their language given, so nothing is detected while reading)."""
    found = importers.collect(paths, organisation="Sample",
                              defaults=importers.Hints(language="en"))
    return [(r.item.title, r.item.summary) for parsed in found for r in parsed.records]


def _mixtures(count: int, seed: int = 14) -> Texts:
    """Texts of 1 to 40 words drawn from the analysed languages' stop words (one or two
    languages' lists weighted up in each text) and a few words of no list."""
    rng = random.Random(seed)
    lists = {code: sorted(language.stop_words)
             for code, language in languages.LANGUAGES.items()}
    plain = ["Cooperative", "Genossenschaft", "coopérative", "2024", "Legacoop", "ÉTÉ",
             "Straße", "kooperativ", "кооператив", "_"]
    texts: Texts = []
    for _ in range(count):
        main = rng.sample(sorted(lists), rng.choice((1, 2)))
        words = []
        for _ in range(rng.randint(1, 40)):
            pick = rng.random()
            if pick < 0.55:
                words.append(rng.choice(lists[rng.choice(main)]))
            elif pick < 0.8:
                words.append(rng.choice(lists[rng.choice(sorted(lists))]))
            else:
                words.append(rng.choice(plain))
        if rng.random() < 0.3:
            words = [w.upper() if rng.random() < 0.5 else w.capitalize() for w in words]
        text = rng.choice((" ", ", ", "  ", "\n", "'")).join(words)
        texts.append((text[:len(text) // 2], text[len(text) // 2:]))
    return texts


def collections(corpora: list[Path]) -> Iterator[tuple[str, Texts]]:
    judged = [json.loads(line) for line in
              (ROOT / "tests/data/language_titles.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    yield "judged titles", [(r["title"], "") for r in judged]
    yield "judged titles + summaries", [(r["title"], r["summary"]) for r in judged]
    for corpus in corpora:
        yield f"bench corpus {corpus.name}", _jsonl(corpus)
    for label, path in SHARED:
        full = (ROOT / path).resolve()
        if full.exists():
            yield label, _jsonl(full)
        else:
            print(f"(skipped {label}: {full} is missing)")
    yield "data/samples", _imported([ROOT / "data" / "samples"])
    feeds = sorted(p for p in (ROOT / "tests/data/feeds").iterdir() if p.is_file())
    yield "tests/data/feeds", _imported(feeds)
    yield f"stop-word mixtures (seeded, {MIXTURES:,})", _mixtures(MIXTURES)


def compare(old: types.ModuleType, new: types.ModuleType, texts: Texts, *,
            detect: bool) -> dict[str, Any]:
    settled = shortcut_differ = detect_differ = jitter = 0
    shown: list[str] = []
    for title, summary in texts:
        text = f"{title.strip()}\n{summary.strip()}".strip()
        answer = new._by_stop_words(text)
        settled += answer is not None
        if answer != old._by_stop_words(text):
            shortcut_differ += 1
            shown.append(f"_by_stop_words {text[:60]!r}: {old._by_stop_words(text)} → {answer}")
        if detect:
            before, after = old.detect(title, summary), new.detect(title, summary)
            jitter += before != after
            if before[0] != after[0] or abs(before[1] - after[1]) > LINGUA_JITTER \
                    or round(before[1], 3) != round(after[1], 3):
                detect_differ += 1
                shown.append(f"detect {text[:60]!r}: {before} → {after}")
    return {"texts": len(texts), "settled": settled, "shortcut_differ": shortcut_differ,
            "detect_differ": detect_differ if detect else None,
            "jitter": jitter if detect else None, "shown": shown}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=BEFORE, help="git revision to compare with")
    parser.add_argument("--corpus", type=Path, action="append", default=[],
                        help="a bench corpus (bench/corpus.py); may be given more than once")
    parser.add_argument("--no-detect", action="store_true",
                        help="compare the stop-word shortcut only (no lingua)")
    args = parser.parse_args()

    old = load_revision(args.against)
    # One set of lingua models for both: the older module asks this one's detectors.
    old._detector_built, old._detector_lock = languages._detector_built, languages._detector_lock
    print(f"this tree against {args.against}: _by_stop_words"
          f"{'' if args.no_detect else ' and detect'} on every text\n")
    print("| texts | count | settled by stop words | _by_stop_words differing"
          " | detect differing | lingua's last-bit jitter | s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    differ = 0
    for label, texts in collections(args.corpus):
        started = time.perf_counter()
        found = compare(old, languages, texts, detect=not args.no_detect)
        took = time.perf_counter() - started
        detect_differ, jitter = (("-", "-") if found["detect_differ"] is None
                                 else (found["detect_differ"], found["jitter"]))
        print(f"| {label} | {found['texts']:,} | {found['settled']:,} |"
              f" {found['shortcut_differ']} | {detect_differ} | {jitter} | {took:.0f} |",
              flush=True)
        for line in found["shown"][:5]:
            print(f"    {line}")
        differ += found["shortcut_differ"] + (found["detect_differ"] or 0)
    print("\nidentical" if not differ else f"\n{differ} answers differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
