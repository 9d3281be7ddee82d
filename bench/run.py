#!/usr/bin/env python3
"""The speed benchmark: build, search in-process and over HTTP, compare, report.

One command per corpus size (the ones behind bench/RESULTS.md)::

    .venv/bin/python bench/run.py --items 100000 --builds 2 --passes 2
    .venv/bin/python bench/run.py --items 1000000 --engines product,fts5 --passes 1 \
        --no-spelling-cost --no-incremental --http-seconds 30

It generates the corpus (`bench/corpus.py`, cached under ``bench/out/``),
loads it into a fresh catalog and builds the index the product's way
(`searchapp.operations.rebuild`, in a child process so its peak memory is
its own), builds the same corpus into SQLite FTS5, then runs the fixed query
set (`bench/queries.jsonl`) through the product, the straightforward
``groupedby`` Whoosh baseline, FTS5 and the whole ``GET /api/search`` request
(the Flask test client of the product's app) in the same process, interleaved
query by query (the order rotates), checking that the product's totals, facet
counts and top 10 equal the baseline's, and the request's the product's. Each pass is a fresh process; with
several passes the figures are the medians of the passes. It then times an
incremental import of 1,000 new items into a copy of the index, serves the
index with ``searchapp serve`` (one gunicorn worker per core) and loads it
over HTTP at 1, 4 and 16 concurrent clients on 127.0.0.1, and writes ``bench/out/results-<N>.json``
and the ``## Speed`` section of ``bench/RESULTS.md`` (from every results file
present, so the 100k and 1M runs share one report).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpus as corpus_mod
from bench import http_load
from bench import queries as queries_mod
from bench.engines import (
    Baseline,
    BenchQuery,
    Fts5,
    Product,
    Request,
    build_fts5,
    differences,
    fts5_available,
    read_corpus,
    same_answer,
)

OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Speed"
ENGINES = ("product", "groupedby", "fts5", "request")
KINDS = queries_mod.KINDS
INCREMENTAL_ITEMS = 1_000


# Helpers ------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    return http_load.percentile(sorted(values), p)


def stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "mean": statistics.fmean(values),
            "max": max(values)}


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    import numpy
    import whoosh

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_mib": mem,
        "os": platform.platform(), "python": platform.python_version(),
        "whoosh": whoosh.versionstring(), "sqlite": sqlite3.sqlite_version,
        "numpy": numpy.__version__, "load_before": list(os.getloadavg()),
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child(*args: str) -> dict[str, Any]:
    """Run this script's hidden subcommand in a fresh process; its JSON answer."""
    done = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                          check=True)
    return dict(json.loads(done.stdout))


# Building -----------------------------------------------------------------


def load_catalog(catalog: Path, corpus: Path) -> dict[str, Any]:
    """Fresh catalog from the corpus, through the product's item rules and catalog."""
    from searchapp.catalog import Catalog
    from searchapp.models import build_item

    for suffix in ("", "-wal", "-shm"):
        Path(str(catalog) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    n = 0
    with Catalog(catalog) as cat:
        batch = []
        for record in read_corpus(corpus):
            batch.append(build_item(record, source=corpus.name))
            if len(batch) == 50_000:
                n += cat.upsert(batch, sources=[corpus.name]).added
                batch = []
        n += cat.upsert(batch, sources=[corpus.name]).added
    return {"items": n, "seconds": round(time.perf_counter() - started, 2)}


def build_index(catalog: Path, index_dir: Path, *, spelling: bool = True) -> dict[str, Any]:
    """(child process) A full rebuild, the product's way; or, without spelling
    words, the same writer on a schema without them (to measure what they cost)."""
    from whoosh import index as whoosh_index
    from whoosh.fields import Schema

    from searchapp import indexer, operations
    from searchapp.catalog import Catalog
    from searchapp.config import Settings
    from searchapp.engine import pool
    from searchapp.schema import schema, to_document

    shutil.rmtree(index_dir, ignore_errors=True)
    if spelling:
        settings = Settings.load({"catalog": catalog, "index_dir": index_dir}, environ={})
        outcome = operations.rebuild(settings)
        ix = whoosh_index.open_dir(str(index_dir / outcome.generation), schema=schema())
        count, nsegments = ix.doc_count(), len(ix._segments())
        ix.close()
        seconds, documents = outcome.seconds, outcome.documents
    else:
        fields = {}
        for name, field in schema().items():
            if name.startswith("spell_"):
                continue
            field = copy.deepcopy(field)
            if getattr(field, "spelling", False):
                field.spelling = False
            fields[name] = field
        plain = Schema(**fields)
        index_dir.mkdir(parents=True)
        started = time.perf_counter()
        ix = whoosh_index.create_in(str(index_dir), plain)
        with Catalog(catalog) as cat:
            documents = cat.count()
            workers = indexer.BUILD_WORKERS if documents >= indexer.PARALLEL_FROM else 1
            pool.build(ix, (to_document(item) for item in cat.iter_items()), workers=workers)
        seconds = time.perf_counter() - started
        count, nsegments = ix.doc_count(), len(ix._segments())
        ix.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"documents": documents, "index_documents": count, "segments": nsegments,
            "seconds": round(seconds, 2), "items_per_s": round(documents / seconds, 1),
            "peak_rss_mb": round(maxrss_mb(), 1),
            "worker_peak_rss_mb": round(children, 1) if children else None,
            "spelling": spelling}


# Whole imports and rebuilds, as an operator runs them -----------------------


def _measured(command: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """`bench/peak.py`'s measure of a command (peak resident memory summed over its
    process tree, wall and CPU seconds), with this run's catalog and index."""
    from bench import peak

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        load = os.getloadavg()[0]
        out = dict(peak.measure(list(command)))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_seconds"] = round(after.ru_utime + after.ru_stime
                               - before.ru_utime - before.ru_stime, 2)
    out["load_before"], out["load_after"] = round(load, 2), round(os.getloadavg()[0], 2)
    return out


def bulk(corpus: Path, work: Path, n: int) -> dict[str, Any]:
    """`searchapp import` of the corpus file into a fresh catalog and index, then
    `searchapp reindex` of that catalog, each from the command line under
    `bench/peak.py`'s measure; the index's document count afterwards."""
    folder = work / "bulk"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {"SEARCHAPP_CATALOG": str(folder / "catalog.sqlite3"),
           "SEARCHAPP_INDEX_DIR": str(folder / "index")}
    cli = str(Path(sys.executable).with_name("searchapp"))
    out: dict[str, Any] = {"items": n}
    for step, command in (("import", [cli, "import", "--quiet", str(corpus)]),
                          ("rebuild", [cli, "reindex", "--quiet"])):
        log(f"{step}: {' '.join(command[1:])} (bench/peak.py)")
        figures = _measured(command, env)
        figures["items_per_s"] = round(n / figures["seconds"], 1)
        figures["cpu_ms_per_item"] = round(1000 * figures["cpu_seconds"] / n, 3)
        stats = subprocess.run([cli, "stats", "--json"], stdout=subprocess.PIPE,
                               env={**os.environ, **env}, check=False)
        try:
            figures["index_documents"] = json.loads(stats.stdout).get("index_documents")
        except ValueError:
            figures["index_documents"] = None
        out[step] = figures
        log(f"{step}: {figures}")
    shutil.rmtree(folder, ignore_errors=True)
    return out


def bulk_lines(result: Mapping[str, Any]) -> list[str]:
    """The RESULTS.md lines for `bulk`."""
    found = result.get("bulk")
    if not found:
        return []
    fts = result.get("fts5_build")
    lines = [("From the command line (`bench/peak.py`: resident memory summed over the"
              " process and its index workers, sampled every 0.1 s):"), "",
             ("| step | seconds | items/s | CPU s | CPU ms/item | peak MiB summed |"
              " largest process | documents after | load before/after |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for step, label in (("import", "`searchapp import` (fresh catalog)"),
                        ("rebuild", "`searchapp reindex`")):
        f = found.get(step)
        if f:
            lines.append(f"| {label} | {f['seconds']:.1f} | {f['items_per_s']:,.0f} |"
                         f" {f['cpu_seconds']:.1f} | {f['cpu_ms_per_item']:.3f} |"
                         f" {f['peak_rss_sum_mb']:,.0f} | {f['peak_rss_largest_mb']:,.0f} |"
                         f" {f.get('index_documents') or 0:,} |"
                         f" {f['load_before']} / {f['load_after']} |")
    if fts:
        lines.append(f"| FTS5 build (same run) | {fts['seconds']:.1f} |"
                     f" {fts['items'] / fts['seconds']:,.0f} | | | | | {fts['items']:,} | |")
    return [*lines, ""]


def bulk_targets(result: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    """#14's targets, for what `bulk` measured."""
    found = result.get("bulk")
    if not found:
        return []
    n = found["items"]
    rows: list[tuple[str, str, bool | None]] = []
    for step, least in (("rebuild", 15_000), ("import", 10_000)):
        f = found.get(step)
        if not f:
            continue
        counted = f.get("index_documents") == n and f["exit_status"] == 0
        rows.append((f"{step} ≥ {least:,} items/s, count checked",
                     f"{f['items_per_s']:,.0f} items/s, {f.get('index_documents')} documents",
                     f["items_per_s"] >= least and counted))
        rows.append((f"{step}: peak memory ≤ 1 GB summed over processes",
                     f"{f['peak_rss_sum_mb']:,.0f} MiB", f["peak_rss_sum_mb"] <= 1000))
    return rows


def incremental(catalog: Path, index_dir: Path, work: Path, *, seed: int,
                sources: Sequence[Path] | None = None) -> dict[str, Any]:
    """Import 1,000 new items into a copy of the catalog and index, timed."""
    from searchapp import operations
    from searchapp.catalog import Catalog
    from searchapp.config import Settings
    from searchapp.indexer import IndexStore

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy2(catalog, work / "catalog.sqlite3")
    shutil.copytree(index_dir, work / "index", symlinks=True)
    extra = corpus_mod.write(work / "new-items.jsonl", INCREMENTAL_ITEMS, seed=seed + 1,
                             sources=sources, prefix="incremental")
    settings = Settings.load({"catalog": work / "catalog.sqlite3", "index_dir": work / "index"},
                             environ={})
    started = time.perf_counter()
    outcome = operations.import_paths(settings, [extra], fmt="jsonl")
    seconds = time.perf_counter() - started
    documents = IndexStore(work / "index").document_count()
    with Catalog(work / "catalog.sqlite3") as cat:
        items = cat.count()
    result = {"items": INCREMENTAL_ITEMS, "added": outcome.report.added,
              "index": outcome.index, "seconds": round(seconds, 2),
              "documents_after": documents, "catalog_after": items}
    shutil.rmtree(work, ignore_errors=True)
    return result


# Searching ----------------------------------------------------------------


def query_pass(index_dir: Path, fts: Path, engines: Sequence[str]) -> dict[str, Any]:
    """(child process) Every query through every engine, interleaved; timings and checks."""
    queries = [BenchQuery.from_dict(q) for q in queries_mod.load()]
    made: dict[str, Any] = {}
    if "product" in engines:
        made["product"] = Product(index_dir)
    if "groupedby" in engines:
        made["groupedby"] = Baseline(index_dir)
    if "fts5" in engines:
        made["fts5"] = Fts5(fts)
    if "request" in engines:
        made["request"] = request_engine(index_dir)
    names = [e for e in ENGINES if e in made]
    started = time.perf_counter()
    for q in queries[:10]:  # open files, build per-reader columns, warm the page cache
        for name in names:
            made[name].search(q)
    warmup = time.perf_counter() - started
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_ms: dict[str, list[float]] = {name: [] for name in names}  # this thread's CPU time
    mismatches: list[str] = []
    checked = 0
    request_mismatches: list[str] = []
    request_checks = 0
    for i, q in enumerate(queries):
        answers = {}
        for name in names[i % len(names):] + names[:i % len(names)]:
            answers[name], took, cpu = timed_search(made[name], q)
            times[name].append(took)
            cpu_ms[name].append(cpu)
        if "product" in answers and "groupedby" in answers:
            reference = made["groupedby"].reference_top(q, answers["groupedby"])
            mismatches.extend(differences(q, answers["product"], answers["groupedby"],
                                          reference))
            checked += 1
        request_checks += check_request(made, q, answers, request_mismatches)
    for engine in made.values():
        engine.close()
    return {"kinds": [q.kind for q in queries], "times_ms": times, "checked": checked,
            "mismatches": mismatches, "warmup_s": round(warmup, 2),
            "peak_rss_mb": round(maxrss_mb(), 1), "cpu_ms": cpu_ms,
            **({"request_checked": request_checks, "request_mismatches": request_mismatches,
                "request_partial": made["request"].partial} if "request" in made else {})}


def request_engine(index_dir: Path) -> Request:
    """The whole-request engine on the run's own catalog and index (beside each other in
    the size's work directory): the product's app, not a second index."""
    return Request(index_dir, index_dir.parent / "catalog.sqlite3")


def timed_search(engine: Any, q: BenchQuery) -> tuple[Any, float, float]:
    """One engine's answer, its time and the CPU time of this thread, in ms. For the
    whole request that is the request and its whole response body; reading the JSON
    back is the client's work (untimed), as FTS5's rows are read inside its own
    timing. (CPU time: what the search itself used, less distorted than the wall
    clock when other work shares the machine.)"""
    cpu = time.thread_time()
    began = time.perf_counter()
    if isinstance(engine, Request):
        response = engine.get(q)
        response.get_data()
        took = (time.perf_counter() - began) * 1000
        used = (time.thread_time() - cpu) * 1000
        return engine.answer(q, response), took, used
    answer = engine.search(q)
    return answer, (time.perf_counter() - began) * 1000, (time.thread_time() - cpu) * 1000


def check_request(made: Mapping[str, Any], q: BenchQuery, answers: Mapping[str, Any],
                  out: list[str]) -> int:
    """The whole request answered what `Engine.search` did (unless cut short by its time
    budget); 1 if compared."""
    if "request" not in answers or "product" not in answers or made["request"].last_partial:
        return 0
    out.extend(same_answer(q, answers["request"], answers["product"]))
    return 1


def request_checks(result: dict[str, Any], passes: Sequence[Mapping[str, Any]]) -> None:
    """Into the results: how many whole requests were compared with `Engine.search`,
    which differed, and how many the time budget cut short."""
    if "request_checked" in passes[0]:
        result["request_checked"] = sum(p["request_checked"] for p in passes)
        result["request_mismatches"] = sorted({m for p in passes
                                               for m in p["request_mismatches"]})
        result["request_partial"] = sum(p["request_partial"] for p in passes)
    if "cpu_ms" in passes[0]:
        result["cpu_p50_ms"] = {name: round(statistics.median(
            percentile(p["cpu_ms"][name], 50) for p in passes), 3)
            for name in passes[0]["cpu_ms"]}
        if {"request", "fts5"} <= set(passes[0]["cpu_ms"]):
            # Each pass's own ratio (CPU p50 of the request / of FTS5), for the range.
            result["request_fts5_cpu_ratios"] = [round(
                percentile(p["cpu_ms"]["request"], 50) / percentile(p["cpu_ms"]["fts5"], 50), 3)
                for p in passes]


def request_target(result: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    """#14: the whole `/api/search` request within 1.3 x FTS5's query at the median."""
    q = result.get("queries", {})
    req, fts = q.get("request"), q.get("fts5")
    if result["items"] < 100_000 or not req or not fts:
        return []
    a, b = req["all"]["p50"], fts["all"]["p50"]
    bad = len(result.get("request_mismatches", []))
    cpu = result.get("cpu_p50_ms", {})
    ratios = result.get("request_fts5_cpu_ratios") or []
    over = (f", {min(ratios):.2f}–{max(ratios):.2f} × over the {len(ratios)} passes"
            if len(ratios) > 1 else "")
    in_cpu = (f"; CPU time {cpu['request']:.2f} ms vs {cpu['fts5']:.2f} ms"
              f" ({cpu['request'] / cpu['fts5']:.2f} ×{over})"
              if cpu.get("request") and cpu.get("fts5") else "")
    return [("whole /api/search request p50 ≤ 1.3 × FTS5 p50",
             f"{a:.2f} ms vs 1.3 × {b:.2f} ms ({a / b:.2f} ×){in_cpu}", a <= 1.3 * b),
            ("whole request answers as Engine.search (total, facet counts, top ids)",
             (f"{result.get('request_checked', 0)} requests checked, {bad} differ,"
              f" {result.get('request_partial', 0)} cut short by the time budget"), bad == 0)]


def request_lines(result: Mapping[str, Any]) -> list[str]:
    """The CPU time per search (the median over passes of each engine's p50), and how
    many whole requests were checked against `Engine.search`."""
    cpu = result.get("cpu_p50_ms")
    if not cpu:
        return []
    text = ("CPU time of the searching thread per search, p50 (ms): "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()))
    if "request_checked" in result:
        text += (f"; {result['request_checked']} whole requests checked against"
                 f" `Engine.search`, {len(result.get('request_mismatches', []))} differed")
    return [text + ".", ""]


def summarise(passes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per engine and query kind: the median over passes of p50, p95, p99 and mean."""
    kinds = passes[0]["kinds"]
    out: dict[str, Any] = {}
    for name in passes[0]["times_ms"]:
        per: dict[str, Any] = {}
        for kind in ("all", *KINDS):
            figures = []
            for p in passes:
                values = [t for t, k in zip(p["times_ms"][name], kinds, strict=True)
                          if kind in ("all", k)]
                figures.append(stats(values))
            per[kind] = {key: round(statistics.median(f[key] for f in figures), 2)
                         for key in figures[0]}
        out[name] = per
    return out


# Reporting ----------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def headline(result: Mapping[str, Any]) -> dict[str, Any]:
    """One run's main figures, kept in later results files to compare runs."""
    q = result.get("queries", {})
    out: dict[str, Any] = {"date": result["machine"]["date"],
                           "load_before": result["machine"]["load_before"][0]}
    for name in ENGINES:
        if name in q:
            out[f"{name}_p50"] = q[name]["all"]["p50"]
            out[f"{name}_p95"] = q[name]["all"]["p95"]
            out[f"{name}_common_p50"] = q[name]["common"]["p50"]
    if result.get("build"):
        out["build_items_per_s"] = result["build"]["items_per_s"]
    for step in ("import", "rebuild"):
        if (result.get("bulk") or {}).get(step):
            out[f"{step}_items_per_s"] = result["bulk"][step]["items_per_s"]
            out[f"{step}_peak_sum_mb"] = result["bulk"][step]["peak_rss_sum_mb"]
    levels = {lv["clients"]: lv for lv in (result.get("http") or {}).get("levels", [])}
    if 1 in levels:
        out["http1_p50"], out["http1_p95"] = levels[1]["p50_ms"], levels[1]["p95_ms"]
    if 16 in levels:
        out["http16_rps"], out["http16_errors"] = levels[16]["rps"], levels[16]["errors"]
    return out


def targets(result: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for what this run measured."""
    rows: list[tuple[str, str, bool | None]] = []
    n = result["items"]
    q = result.get("queries", {})
    prod, fts, base = q.get("product"), q.get("fts5"), q.get("groupedby")
    if n >= 100_000 and prod and fts:
        a, b = prod["all"]["p95"], fts["all"]["p95"]
        rows.append(("faceted p95 ≤ FTS5 p95", f"{a:.1f} ms vs {b:.1f} ms", a <= b))
        a, b = prod["all"]["p50"], fts["all"]["p50"]
        rows.append(("faceted p50 ≤ 2 × FTS5 p50", f"{a:.2f} ms vs 2 × {b:.2f} ms", a <= 2 * b))
    if n >= 100_000 and prod and base:
        a, b = base["common"]["p50"], prod["common"]["p50"]
        rows.append(("common words ≥ 10 × faster than groupedby (p50)",
                     f"{a / b:.1f} × ({b:.1f} ms vs {a:.1f} ms)", a >= 10 * b))
        bad = len(result.get("mismatches", []))
        rows.append(("results identical to groupedby (totals, every facet count, top 10)",
                     f"{result.get('checked', 0)} queries checked, {bad} differ", bad == 0))
    build = result.get("build")
    if build and n >= 100_000 and n < 1_000_000:
        ok = build["index_documents"] == build["documents"] == n
        rows.append(("full rebuild ≥ 3,000 items/s, count checked",
                     (f"{build['items_per_s']:,.0f} items/s, {build['index_documents']:,}"
                      " documents"), build["items_per_s"] >= 3000 and ok))
    inc = result.get("incremental")
    if inc:
        rows.append((f"incremental import of {inc['items']:,} items < 10 s",
                     f"{inc['seconds']:.1f} s ({inc['index']})", inc["seconds"] < 10
                     and inc["documents_after"] == inc["catalog_after"]))
    if build and n >= 1_000_000:
        workers = build.get("worker_peak_rss_mb")
        rows.append(("1M: full rebuild completes",
                     (f"{build['seconds'] / 60:.1f} min ({build['items_per_s']:,.0f} items/s),"
                      f" peak RSS {build['peak_rss_mb']:,.0f} MiB"
                      + (f" + {workers:,.0f} MiB per worker" if workers else "")),
                     build["index_documents"] == n))
    rows += request_target(result)
    http = result.get("http")
    if http and n >= 1_000_000:
        levels = {lv["clients"]: lv for lv in http["levels"]}
        if 1 in levels:
            rows.append(("1M: HTTP p95 ≤ 250 ms at 1 client", f"{levels[1]['p95_ms']:.0f} ms",
                         levels[1]["p95_ms"] <= 250))
        if 16 in levels:
            rows.append(("1M: no errors at 16 clients",
                         f"{levels[16]['errors']} errors in {levels[16]['requests']:,} requests",
                         levels[16]["errors"] == 0))
    rows += bulk_targets(result)
    return rows


def render(results: Sequence[Mapping[str, Any]]) -> str:
    lines = [SECTION, ""]
    lines += [
        ("Produced by `bench/run.py` (its docstring says what it does, `--help` lists the"
         " options), one command per corpus size, from the repository root:"),
        "",
        "```sh",
        ".venv/bin/python bench/run.py --items 100000 --builds 2 --passes 2",
        ".venv/bin/python bench/run.py --items 1000000 --engines product,fts5 --passes 1 \\",
        "    --no-spelling-cost --no-incremental --http-seconds 30",
        "```",
        "",
        ("Each writes `bench/out/results-<N>.json` (every figure, raw) and rewrites this"
         " section from all the results files present. The query set is"
         " `bench/queries.jsonl` (`bench/queries.py` made it); the corpus generator is"
         " `bench/corpus.py`."),
        "",
        ("The corpus is synthetic and deterministic (`bench/corpus.py`, seed"
        f" {corpus_mod.SEED}): titles and summaries recombined from the AG News and"
        " Reuters-21578 texts in `../shared/data/`, 20 organisations, 2000-2025 (3 % undated),"
        " six types, all skewed. The 360 queries (`bench/queries.jsonl`) are 60 each of: one"
        " mid-frequency word, two words, one very common word, a quoted phrase, a word"
        " plus one filter, and a mistyped word (alone or before a word typed right: what"
        " typo tolerance answers; runs before it have no typo column). Every search"
        " returns the top 10, the exact total and the counts of organisation, year and type over all matches (disjunctive: a filtered facet is"
        " counted without its own filter). *product* is `Engine.search` (everything a request"
        " does, highlights included); *groupedby* is the same Whoosh query with"
        " `searcher.search(q, limit=10, groupedby=[...])` (plus one grouped search per"
        " filtered facet); *request* is the whole `GET /api/search` request for the same"
        " query through the Flask test client of the product's app on the same catalog and"
        " index (routing, checks, ETag, `Engine.search`, JSON, headers; its answers are"
        " checked against *product*'s); *fts5* is SQLite FTS5 (porter, bm25 with the title weighted 2,"
        " GROUP BY over one materialised set of matches). Times are per search, single"
        " process, no HTTP, engines interleaved query by query."),
        "",
        ("Where the product's speed comes from (each module's docstring has the details):"
         " a full rebuild writes whole Whoosh segments directly, in one process per core"
         " (`searchapp/engine/segments.py`), instead of sending every posting through Whoosh's"
         " writer; beside each segment it writes the segment's posting lists as flat arrays"
         " (`MAIN_<segment>.arrays`), which each serving process maps into memory. A search"
         " then takes its terms' postings from those arrays, scores them with BM25F in one"
         " vectorised step (the same scores as Whoosh's, bit for bit; `searchapp/engine/arrays.py`),"
         " counts facets with `bincount` over per-generation columns (`searchapp/facets.py`),"
         " picks the top 10 with one partition, and reads only those 10 from Whoosh."
         " Highlighting analyses each distinct word once (`searchapp/highlight.py`). What is"
         " left of a typical search at 100,000 items is fixed cost in Python: parsing,"
         " loading and highlighting the 10 hits, building the page, about 1.5-2 ms;"
         " common words add the array work on their tens of thousands of matches."),
        "",
    ]
    for result in sorted(results, key=lambda r: r["items"]):
        m = result["machine"]
        n = result["items"]
        lines += [f"### {n:,} items", "", f"`{result['command']}`", ""]
        lines += [
            (f"{m['date']} · {m['cpu']}, {m['cores']} cores, {m['memory_mib']:,} MiB ·"
            f" {m['os']} · Python {m['python']}, Whoosh {m['whoosh']}, SQLite {m['sqlite']},"
            f" numpy {m['numpy']} · load average before {m['load_before'][0]:.1f}"
            " (the machine is shared with other work; engines run interleaved, so they"
            " share its load alike)"
            + (f" · {result['passes']} query passes (medians of the passes)"
               if result.get("passes", 1) > 1 else " · 1 query pass")),
            "",
        ]
        rows = targets(result)
        if rows:
            lines += ["| target | measured | met |", "|---|---|---|"]
            for target, measured, met in rows:
                lines.append(f"| {target} | {measured} |"
                             f" {'yes' if met else 'no' if met is not None else '-'} |")
            lines.append("")
        q = result.get("queries")
        if q:
            lines += ["In-process faceted search, ms (p50 / p95 / p99):", ""]
            header = "| engine | all | " + " | ".join(KINDS) + " |"
            lines += [header, "|---" * (len(KINDS) + 2) + "|"]
            for name in ENGINES:
                if name not in q:
                    continue
                cells = [f"{q[name][k]['p50']:.2f} / {q[name][k]['p95']:.1f} /"
                         f" {q[name][k]['p99']:.1f}" if q[name].get(k) else "-"
                         for k in ("all", *KINDS)]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
            ratios = []
            if "fts5" in q and "product" in q:
                ratios.append(("product / fts5", q["product"], q["fts5"]))
            if "groupedby" in q and "product" in q:
                ratios.append(("groupedby / product", q["groupedby"], q["product"]))
            if "request" in q and "fts5" in q:
                ratios.append(("request / fts5", q["request"], q["fts5"]))
            if ratios:
                lines += ["Ratios of p50 (and p95):", "",
                          "| ratio | all | " + " | ".join(KINDS) + " |",
                          "|---" * (len(KINDS) + 2) + "|"]
                for label, a, b in ratios:
                    cells = [f"{ratio(a[k]['p50'], b[k]['p50'])} ({ratio(a[k]['p95'], b[k]['p95'])})"
                             if a.get(k) and b.get(k) else "-" for k in ("all", *KINDS)]
                    lines.append(f"| {label} | " + " | ".join(cells) + " |")
                lines.append("")
            lines += request_lines(result)
        build = result.get("build")
        if build:
            runs = build.get("runs_s") or [build["seconds"]]
            workers = build.get("worker_peak_rss_mb")
            text = (f"Build: catalog load {result['catalog']['seconds']:.0f} s; full rebuild"
                    f" (`searchapp reindex` path) {build['seconds']:.1f} s ="
                    f" **{build['items_per_s']:,.0f} items/s**"
                    + (f" (the {'slower' if len(runs) == 2 else 'median'} of {len(runs)}:"
                       f" {', '.join(f'{r:.1f}' for r in runs)} s)" if len(runs) > 1 else "")
                    + f", {build['index_documents']:,} documents checked after commit, in"
                    f" {build['segments']} segment(s); peak RSS {build['peak_rss_mb']:,.0f} MiB"
                    + (f" in the coordinating process and {workers:,.0f} MiB in the largest"
                       " of its index-writing workers" if workers else ""))
            plain = result.get("build_without_spelling")
            if plain:
                cost = build["seconds"] - plain["seconds"]
                text += (f"; without the spelling words {plain['seconds']:.1f} s"
                         f" ({plain['items_per_s']:,.0f} items/s), so did-you-mean costs"
                         f" {cost:.1f} s ({100 * cost / build['seconds']:.0f} % of the build)")
            fts = result.get("fts5_build")
            if fts:
                text += (f"; FTS5 {fts['seconds']:.1f} s ="
                         f" {fts['items'] / fts['seconds']:,.0f} items/s")
            lines += [text + ".", ""]
        lines += bulk_lines(result)
        inc = result.get("incremental")
        if inc:
            lines += [(f"Incremental import of {inc['items']:,} new items into the"
                       f" {n:,}-item index (`searchapp import` path: catalog + index update):"
                       f" {inc['seconds']:.1f} s, index {inc['index']},"
                       f" {inc['documents_after']:,} documents after."), ""]
        http = result.get("http")
        if http:
            lines += [(f"HTTP (`searchapp serve`, gunicorn, {http['workers']} workers, the same"
                       " 300 queries as `/api/search` requests on 127.0.0.1, new connection per"
                       " request, each level bounded by time and count):"), "",
                      "| clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
                      "|---|---|---|---|---|---|---|"]
            for lv in http["levels"]:
                lines.append(f"| {lv['clients']} | {lv['requests']:,} | {lv['rps']:.1f} |"
                             f" {lv['p50_ms']:.1f} | {lv['p95_ms']:.1f} | {lv['p99_ms']:.1f} |"
                             f" {lv['errors']} |")
            workers = http["memory"]["workers"]
            rss = ", ".join(f"{w.get('VmRSS', 0):,.0f} MiB resident (peak"
                            f" {w.get('VmHWM', 0):,.0f}; proportional {w.get('Pss', 0):,.0f},"
                            f" private {w.get('Private', 0):,.0f})" for w in workers)
            master = http["memory"]["master"].get("VmRSS", 0)
            lines += ["", (f"Per-worker memory after the run: {rss}; master {master:,.0f} MiB"
                           " resident. Resident memory counts the index files each worker"
                           " maps; those pages are shared by all workers (and the page"
                           " cache)."), ""]
        runs = [*result.get("history", []), headline(result)]
        if len(runs) > 1:
            lines += _runs_table(runs)
        mism = result.get("mismatches") or []
        if mism:
            lines += ["Differences from the baseline (first 10):", ""]
            lines += [f"- {m}" for m in mism[:10]]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _runs_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every kept run of this size, one line each, and their medians."""
    columns = [("product p50 / p95 ms", "product_p50", "product_p95"),
               ("fts5 p50 / p95 ms", "fts5_p50", "fts5_p95"),
               ("whole request p50 / p95 ms", "request_p50", "request_p95"),
               ("common words, groupedby / product p50", "groupedby_common_p50",
                "product_common_p50"),
               ("rebuild items/s", "build_items_per_s", None),
               ("HTTP 1 client p50 / p95 ms", "http1_p50", "http1_p95"),
               ("HTTP 16 clients req/s (errors)", "http16_rps", "http16_errors")]

    def cell(run: Mapping[str, Any], a: str, b: str | None) -> str:
        if a not in run:
            return "-"
        if a == "groupedby_common_p50":
            return f"{run[a] / run[b]:.1f} ×" if b and run.get(b) else "-"
        if b is None:
            return f"{run[a]:,.0f}"
        if b == "http16_errors":
            errors = run.get(b)
            return f"{run[a]:,.0f} ({'-' if errors is None else f'{errors:.0f}'})"
        return f"{run[a]:.2f} / {run.get(b, 0):.1f}"

    lines = ["Runs of this size (the latest above; medians last):", "",
             "| run | load | " + " | ".join(c[0] for c in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for run in runs:
        lines.append(f"| {run['date'][:16]} | {run.get('load_before', 0):.1f} | "
                     + " | ".join(cell(run, a, b) for _, a, b in columns) + " |")
    median: dict[str, Any] = {}
    for key in {k for run in runs for k in run if k not in ("date",)}:
        values = [run[key] for run in runs if isinstance(run.get(key), (int, float))]
        if values:
            median[key] = statistics.median(values)
    lines.append("| median | " + f"{median.get('load_before', 0):.1f} | "
                 + " | ".join(cell(median, a, b) for _, a, b in columns) + " |")
    return [*lines, ""]


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace only the `## Speed` section (re-reading the file first)."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        body = current.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        body = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)


def report() -> None:
    results = []
    for path in sorted(OUT.glob("results-*.json")):
        results.append(json.loads(path.read_text(encoding="utf-8")))
    if results:
        write_section(render(results))


# The command --------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "build-index":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("catalog", type=Path)
        ap.add_argument("index", type=Path)
        ap.add_argument("--no-spelling", action="store_true")
        a = ap.parse_args(argv)
        print(json.dumps(build_index(a.catalog, a.index, spelling=not a.no_spelling)))
        return 0
    if argv and argv[0] == "query-pass":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("index", type=Path)
        ap.add_argument("fts", type=Path)
        ap.add_argument("engines")
        a = ap.parse_args(argv)
        print(json.dumps(query_pass(a.index, a.fts, a.engines.split(","))))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=corpus_mod.SEED)
    ap.add_argument("--source", type=Path, action="append",
                    help="JSON Lines text to recombine (default: the news corpora)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="in-process engines to run (default: all four)")
    ap.add_argument("--passes", type=int, default=2, help="query passes (fresh processes)")
    ap.add_argument("--builds", type=int, default=1,
                    help="full rebuilds to time (the median is reported)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the catalog, index and FTS5 database of an earlier run"
                         " (and skip the import and reindex of the bulk section)")
    ap.add_argument("--no-spelling-cost", action="store_true",
                    help="skip the extra build without spelling words")
    ap.add_argument("--no-incremental", action="store_true")
    ap.add_argument("--no-bulk", action="store_true",
                    help="skip `searchapp import` and `reindex` of the corpus under bench/peak.py")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--http-seconds", type=float, default=20.0)
    ap.add_argument("--http-requests", type=int, default=20_000,
                    help="at most this many requests per concurrency level")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--no-report", action="store_true", help="do not touch bench/RESULTS.md")
    a = ap.parse_args(argv)
    command = "bench/run.py " + " ".join(argv)
    engines = [e for e in a.engines.split(",") if e]
    if "fts5" in engines and not fts5_available():
        log("this SQLite has no FTS5; leaving it out")
        engines.remove("fts5")

    n = a.items
    work = OUT / str(n)
    work.mkdir(parents=True, exist_ok=True)
    catalog, index_dir, fts = work / "catalog.sqlite3", work / "index", work / "fts5.sqlite3"
    result: dict[str, Any] = {"items": n, "seed": a.seed, "machine": machine(),
                              "command": command, "passes": a.passes}
    corpus = OUT / f"corpus-{n}-{a.seed}.jsonl"
    if not corpus.exists():
        log(f"generating {n:,} items into {corpus}")
        corpus_mod.write(corpus, n, seed=a.seed, sources=a.source)
    previous = OUT / f"results-{n}.json"
    if previous.exists():  # earlier runs' main figures stay, to compare and take medians
        earlier = json.loads(previous.read_text(encoding="utf-8"))
        result["history"] = [*earlier.get("history", []), headline(earlier)][-5:]
    if a.reuse and previous.exists() and index_dir.exists():
        old = json.loads(previous.read_text(encoding="utf-8"))
        for key in ("catalog", "build", "build_without_spelling", "fts5_build"):
            if key in old:
                result[key] = old[key]
    else:
        log("loading the catalog")
        result["catalog"] = load_catalog(catalog, corpus)
        log(f"catalog: {result['catalog']}")
        builds = []
        for b in range(a.builds):
            log(f"full rebuild {b + 1}/{a.builds} (child process)")
            builds.append(child("build-index", str(catalog), str(index_dir)))
            log(f"build: {builds[-1]}")
        # The median; of two, the slower.
        result["build"] = sorted(builds, key=lambda x: x["seconds"])[len(builds) // 2]
        result["build"]["runs_s"] = [x["seconds"] for x in builds]
        if not a.no_spelling_cost:
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                log("the same build without spelling words (child process)")
                result["build_without_spelling"] = child(
                    "build-index", str(catalog), str(Path(tmp) / "index"), "--no-spelling")
                log(f"without spelling: {result['build_without_spelling']}")
        if "fts5" in engines:
            log("building FTS5")
            items, seconds = build_fts5(fts, read_corpus(corpus))
            result["fts5_build"] = {"items": items, "seconds": round(seconds, 2)}
            log(f"fts5: {result['fts5_build']}")
    if a.reuse and not a.no_bulk:
        log("bulk: skipped with --reuse (it imports and rebuilds the whole corpus)")
    elif not a.no_bulk:
        result["bulk"] = bulk(corpus, work, n)
    if engines:
        passes = []
        for p in range(a.passes):
            log(f"query pass {p + 1}/{a.passes}: {', '.join(engines)}")
            passes.append(child("query-pass", str(index_dir), str(fts), ",".join(engines)))
            log(f"pass {p + 1}: warm-up {passes[-1]['warmup_s']} s,"
                f" {len(passes[-1]['mismatches'])} differences")
        result["queries"] = summarise(passes)
        result["checked"] = passes[0]["checked"]
        result["mismatches"] = sorted({m for p in passes for m in p["mismatches"]})
        result["query_process_rss_mb"] = max(p["peak_rss_mb"] for p in passes)
        request_checks(result, passes)
        for name, per in result["queries"].items():
            log(f"{name}: " + ", ".join(f"{k} {v['p50']:.2f}/{v['p95']:.1f}"
                                        for k, v in per.items()))
    if not a.no_incremental:
        log(f"incremental import of {INCREMENTAL_ITEMS:,} items")
        result["incremental"] = incremental(catalog, index_dir, work / "incremental",
                                            seed=a.seed, sources=a.source)
        log(f"incremental: {result['incremental']}")
    if not a.no_http:
        queries = [BenchQuery.from_dict(q).params() for q in queries_mod.load()]
        levels = [int(c) for c in a.clients.split(",") if c]
        log(f"HTTP: {a.workers} workers, clients {levels}, {a.http_seconds:.0f} s each")
        result["http"] = http_load.run(catalog, index_dir, queries, workers=a.workers,
                                       levels=levels, seconds=a.http_seconds,
                                       max_requests=a.http_requests, log=work / "server.log")
        for lv in result["http"]["levels"]:
            log(f"http {lv['clients']} clients: {lv['rps']} req/s, p50 {lv['p50_ms']} ms,"
                f" p99 {lv['p99_ms']} ms, {lv['errors']} errors")
    result["machine"]["load_after"] = list(os.getloadavg())
    previous.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    log(f"wrote {previous}")
    if not a.no_report:
        report()
        log(f"updated the {SECTION!r} section of {RESULTS}")
    for target, measured, met in targets(result):
        log(f"{'MET ' if met else 'NOT MET' if met is not None else '-'} {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
