"""The three ways of answering a benchmark query, and how their answers compare.

- `Product`: `searchapp.search.Engine.search`, the whole pipeline a request
  runs (parse, match, filter, count facets, rank, load and highlight the page).
- `Baseline`: the straightforward Whoosh way. The same Whoosh query object
  (`searchapp.query.build`) on one reused searcher with the product's
  weighting, ``searcher.search(q, limit=10, groupedby=[organisation, year,
  type], filter=...)``, counts read from the groups. Facet counts are
  disjunctive in the product (a facet's counts ignore that facet's own
  filter), so for every filtered facet the baseline runs one more grouped
  search without that facet's filter, as a straightforward implementation
  must.
- `Request`: a whole `GET /api/search` request through the Flask test client of
  the product's own app (`searchapp.web.create_app` on the same catalog and
  index): routing, parameter checks, the ETag, `Engine.search`, the JSON body
  and the response headers; what `Product` times plus everything around it.
- `Fts5`: SQLite FTS5 from the standard library (porter stemmer, bm25 with
  the title weighted twice, as the product's BM25F does), top 10 by rank and
  every facet counted with GROUP BY over one materialised set of matches.

Each returns an `Answer`; `differences` says where the product and the
baseline disagree (FTS5 analyses text differently, so it is timed, not
compared).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whoosh import query as wq
from whoosh import sorting
from whoosh.searching import Searcher

from searchapp import query as parser
from searchapp.config import Settings
from searchapp.engine.plain import WhooshVocabulary, to_whoosh
from searchapp.indexer import IndexStore
from searchapp.schema import UNDATED, year_term
from searchapp.search import Engine, SearchQuery, ranking

TOP = 10
# The facets every engine counts (the product counts language too; it is left out of
# the comparison, so results stay comparable with earlier runs).
FACET_FIELDS = ("organisation", "year", "type")


@dataclass(frozen=True, slots=True)
class BenchQuery:
    kind: str
    q: str
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchQuery:
        return cls(data["kind"], data["q"], dict(data.get("filters") or {}))

    def request(self) -> SearchQuery:
        f = self.filters
        return SearchQuery(q=self.q, organisation=tuple(f.get("organisation", ())),
                           type=tuple(f.get("type", ())),
                           year=tuple(None if y == UNDATED else int(y)
                                      for y in f.get("year", ())),
                           per_page=TOP)

    def terms(self) -> dict[str, list[str]]:
        """The selected values as index terms (years as text), per facet."""
        return {name: [year_term(v) if name == "year" else str(v) for v in values]
                for name, values in self.filters.items() if values}

    def params(self) -> list[tuple[str, str]]:
        """The query as /api/search parameters."""
        out = [("q", self.q), ("per_page", str(TOP))]
        for name, values in self.terms().items():
            out.extend((name, v) for v in values)
        return out


@dataclass(slots=True)
class Answer:
    total: int
    facets: dict[str, dict[str, int]]  # facet → value (as index term) → count
    top: list[tuple[str, float | None]]  # (id, score), best first


class Product:
    name = "product"

    def __init__(self, index_dir: Path) -> None:
        # SEARCHAPP_FEEDBACK=rm3 measures RM3 feedback (its order then differs from
        # the groupedby baseline's, which has none).
        self.engine = Engine(IndexStore(index_dir), feedback=Settings.load().feedback)

    def search(self, query: BenchQuery) -> Answer:
        page = self.engine.search(query.request())
        facets = {name: {("undated" if v.value is None else str(v.value)): v.count
                         for v in values if v.count}
                  for name, values in page.facets.items() if name in FACET_FIELDS}
        return Answer(page.total, facets, [(h.item.id, h.score) for h in page.hits])

    def close(self) -> None:
        self.engine.close()


class Request:
    """The whole `/api/search` request, in-process, through the product's own app."""

    name = "request"

    def __init__(self, index_dir: Path, catalog: Path) -> None:
        from searchapp.web import create_app

        self.app = create_app({"catalog": catalog, "index_dir": index_dir})
        self.client = self.app.test_client()
        self.partial = 0  # answers cut short by the time budget (not compared)
        self.last_partial = False

    def get(self, query: BenchQuery) -> Any:
        """The response (timed by the caller: the request and its whole body)."""
        return self.client.get("/api/search", query_string=query.params())

    def search(self, query: BenchQuery) -> Answer:
        return self.answer(query, self.get(query))

    def answer(self, query: BenchQuery, response: Any) -> Answer:
        if response.status_code != 200:
            raise RuntimeError(f"/api/search {query.params()} answered {response.status_code}:"
                               f" {response.get_data(as_text=True)[:300]}")
        body = response.get_json()
        self.last_partial = bool(body["partial"])
        self.partial += self.last_partial
        facets = {name: {("undated" if v["value"] is None else str(v["value"])): v["count"]
                         for v in values if v["count"]}
                  for name, values in body["facets"].items() if name in FACET_FIELDS}
        return Answer(body["total"], facets, [(h["id"], h["score"]) for h in body["hits"]])

    def close(self) -> None:
        self.app.extensions["searchapp.engine"].close()


def same_answer(query: BenchQuery, request: Answer, product: Answer) -> list[str]:
    """Where the whole request answered otherwise than `Engine.search` (empty: the same
    total, facet counts and top ids; scores are rounded to 4 places in the JSON)."""
    found = []
    if request.total != product.total:
        found.append(f"total {request.total} != {product.total}")
    if request.facets != product.facets:
        found.append("facet counts differ")
    if [i for i, _ in request.top] != [i for i, _ in product.top]:
        found.append(f"top ids {[i for i, _ in request.top]} != {[i for i, _ in product.top]}")
    return [f"request {query.kind} {query.q!r} {query.filters}: {d}" for d in found]


class Baseline:
    name = "groupedby"

    def __init__(self, index_dir: Path) -> None:
        self.ix = IndexStore(index_dir).open_index()
        self.searcher: Searcher = self.ix.searcher(weighting=ranking())
        # The product analyses a query in every language its items are in (no bench
        # query filters by language): asked in English alone, a word that is also a
        # word of another language's items (`bank` in Danish and German titles) would
        # match fewer documents here than there.
        self.languages = tuple(self.searcher.reader().field_terms("language")) or ("en",)

    @staticmethod
    def _filter(selected: Mapping[str, Sequence[str]], skip: str | None = None
                ) -> wq.Query | None:
        parts = [wq.Or([wq.Term(name, v) for v in values])
                 for name, values in selected.items() if name != skip]
        return None if not parts else parts[0] if len(parts) == 1 else wq.And(parts)

    def _built(self, query: BenchQuery) -> tuple[wq.Query, wq.Query | None]:
        """The Whoosh query the product's parser builds, and its exclusions."""
        built = parser.build(parser.parse(query.q), WhooshVocabulary(self.searcher.reader()),
                             languages=self.languages)
        assert built is not None, query
        return (to_whoosh(built.query),
                None if built.exclude is None else to_whoosh(built.exclude))

    def search(self, query: BenchQuery) -> Answer:
        positive, exclude = self._built(query)
        selected = query.terms()
        facets = [sorting.FieldFacet(name, maptype=sorting.Count) for name in FACET_FIELDS]
        results = self.searcher.search(positive, limit=TOP, groupedby=facets,
                                       filter=self._filter(selected), mask=exclude)
        counts = {name: dict(results.groups(name)) for name in FACET_FIELDS}
        for name in selected:  # disjunctive: this facet's counts without its own filter
            others = self.searcher.search(
                positive, limit=TOP, groupedby=[sorting.FieldFacet(name, maptype=sorting.Count)],
                filter=self._filter(selected, skip=name), mask=exclude)
            counts[name] = dict(others.groups(name))
        top = [(hit["id"], hit.score) for hit in results[:TOP]]
        return Answer(len(results), counts, top)

    def reference_top(self, query: BenchQuery, answer: Answer) -> list[tuple[str, float | None]]:
        """The top 10 in the product's order (score, then newest, then id), from
        every match scored (no block-quality skipping), and every other match tied with
        the tenth; used untimed, to check. (The product puts items in the query's likely
        language first among equal scores, which this order does not know: `differences`
        compares equal scores as sets.)"""
        if answer.total <= TOP or not answer.top:
            ranked = answer.top
            cut = -math.inf
        else:
            cut = min(s for _, s in answer.top if s is not None)
            positive, exclude = self._built(query)
            every = self.searcher.search(positive, limit=None,
                                         filter=self._filter(query.terms()), mask=exclude)
            ranked = [(hit["id"], hit.score) for hit in every
                      if hit.score is not None and hit.score >= cut - 1e-9]
        dates = {item_id: (self.searcher.document(id=item_id) or {}).get("date") or ""
                 for item_id, _ in ranked}

        def key(entry: tuple[str, float | None]) -> tuple[float, int, str]:
            item_id, score = entry
            return (-(score or 0.0), -int(dates[item_id].replace("-", "") or 0), item_id)

        ordered = sorted(ranked, key=key)
        if len(ordered) <= TOP:
            return ordered
        last = round(ordered[TOP - 1][1] or 0.0, 6)
        return ordered[:TOP] + [e for e in ordered[TOP:] if round(e[1] or 0.0, 6) == last]

    def close(self) -> None:
        self.searcher.close()
        self.ix.close()


def same_top(top: Sequence[tuple[str, float | None]],
             reference: Sequence[tuple[str, float | None]]) -> bool:
    """Whether `top` is `reference`'s first len(top) in order, but for the order among
    equal scores: the same ids at each score, and at the lowest score of `top` (where
    the page may cut a tie) ids from `reference`'s tie."""
    if [i for i, _ in top] == [i for i, _ in reference[:len(top)]]:
        return True

    def at(entries: Sequence[tuple[str, float | None]]) -> dict[float, set[str]]:
        found: dict[float, set[str]] = {}
        for item_id, score in entries:
            found.setdefault(round(score or 0.0, 6), set()).add(item_id)
        return found

    mine, theirs = at(top), at(reference)
    if not mine:
        return not reference
    lowest = min(mine)
    return all(ids == theirs.get(score) if score != lowest else ids <= theirs.get(score, set())
               for score, ids in mine.items()) and \
        [round(s or 0.0, 6) for _, s in top] == [round(s or 0.0, 6) for _, s in reference[:len(top)]]


def differences(query: BenchQuery, product: Answer, baseline: Answer,
                reference: list[tuple[str, float | None]]) -> list[str]:
    """What the product got differently from the baseline (empty: identical)."""
    found = []
    if product.total != baseline.total:
        found.append(f"total {product.total} != {baseline.total}")
    for name in FACET_FIELDS:
        if product.facets.get(name, {}) != baseline.facets.get(name, {}):
            found.append(f"{name} counts {product.facets.get(name)} != {baseline.facets.get(name)}")
    mine = sorted((round(s or 0.0, 6) for _, s in product.top), reverse=True)
    theirs = sorted((round(s or 0.0, 6) for _, s in baseline.top), reverse=True)
    if mine != theirs:
        found.append(f"top scores {mine} != {theirs}")
    if not same_top(product.top, reference):
        found.append(f"top ids {[i for i, _ in product.top]} != {[i for i, _ in reference]}")
    return [f"{query.kind} {query.q!r} {query.filters}: {d}" for d in found]


# SQLite FTS5 ---------------------------------------------------------------

FTS_SCHEMA = """
CREATE TABLE items (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, organisation TEXT NOT NULL,
                    year TEXT NOT NULL, type TEXT NOT NULL, date TEXT NOT NULL);
CREATE VIRTUAL TABLE fts USING fts5(title, summary, tokenize = 'porter unicode61');
"""


def fts5_available() -> bool:
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(a)")
    except sqlite3.OperationalError:
        return False
    return True


def build_fts5(path: Path, records: Iterator[Mapping[str, Any]]) -> tuple[int, float]:
    """Load the corpus into a fresh FTS5 database; returns (items, seconds)."""
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + FTS_SCHEMA)
    db.execute("BEGIN")
    n = 0
    batch: list[tuple[Any, ...]] = []
    texts: list[tuple[Any, ...]] = []

    def flush() -> None:
        db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", batch)
        db.executemany("INSERT INTO fts (rowid, title, summary) VALUES (?, ?, ?)", texts)
        batch.clear()
        texts.clear()

    for record in records:
        n += 1
        date = record.get("date") or ""
        batch.append((n, record["id"], record["organisation"], date[:4] or UNDATED,
                      record.get("type") or "News", date))
        texts.append((n, record["title"], record.get("summary") or ""))
        if len(batch) >= 10_000:
            flush()
    flush()
    db.execute("COMMIT")
    db.close()
    return n, time.perf_counter() - started


class Fts5:
    name = "fts5"

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    @staticmethod
    def match(q: str) -> str:
        """The query in FTS5 syntax: a quoted phrase stays one, words become quoted terms."""
        q = q.strip()
        if q.startswith('"') and q.endswith('"'):
            return q
        return " ".join('"' + w.replace('"', "") + '"' for w in q.split())

    def search(self, query: BenchQuery) -> Answer:
        selected = query.terms()
        args: list[Any] = [self.match(query.q)]

        def where(skip: str | None) -> str:
            parts = []
            for name, values in selected.items():
                if name != skip:
                    parts.append(f"{name[0]} IN ({', '.join('?' * len(values))})")
                    args.extend(values)
            return (" WHERE " + " AND ".join(parts)) if parts else ""

        columns = {"organisation": "o", "year": "y", "type": "t"}
        selects = [f"SELECT 'total', NULL, count(*) FROM m{where(None)}"]
        for name in FACET_FIELDS:
            c = columns[name]
            selects.append(f"SELECT '{name}', {c}, count(*) FROM m{where(name)} GROUP BY {c}")
        sql = ("WITH m AS MATERIALIZED (SELECT i.organisation AS o, i.year AS y, i.type AS t"
               " FROM fts JOIN items i ON i.rowid = fts.rowid WHERE fts MATCH ?) "
               + " UNION ALL ".join(selects))
        total = 0
        facets: dict[str, dict[str, int]] = {name: {} for name in FACET_FIELDS}
        for facet, value, count in self.db.execute(sql, args):
            if facet == "total":
                total = count
            else:
                facets[facet][value] = count
        top_args: list[Any] = [self.match(query.q)]
        filters = ""
        for name, values in selected.items():
            filters += f" AND i.{name} IN ({', '.join('?' * len(values))})"
            top_args.extend(values)
        rows = self.db.execute(
            "SELECT i.id, bm25(fts, 2.0, 1.0) AS s FROM fts JOIN items i ON i.rowid = fts.rowid"
            f" WHERE fts MATCH ?{filters} ORDER BY s, i.date DESC, i.id LIMIT {TOP}", top_args)
        return Answer(total, facets, [(item_id, -score) for item_id, score in rows])

    def close(self) -> None:
        self.db.close()


def read_corpus(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)
