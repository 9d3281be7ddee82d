"""The rebuild's segment writer writes what Whoosh's own writer writes."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import textwrap
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLES
from whoosh import index as whoosh_index
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.index import Index

from searchapp import importers, operations
from searchapp.analysis import Multilingual, MultilingualAnalyzer, marked, word_entries
from searchapp.config import Settings
from searchapp.engine import FALLBACKS, arrayfile, pool, segments
from searchapp.indexer import IndexStore
from searchapp.models import build_item
from searchapp.schema import schema, to_document
from searchapp.search import Engine, SearchQuery

TRICKY = [
    {"id": "t1", "title": "The the THE elections: elected, electing!", "summary": "",
     "date": "2017-01-02"},
    {"id": "t2", "title": "Özge Berber-Agtaş won’t say co-op’s “news”",
     "summary": "A a a. Cooperatives cooperative COOPERATIVE co-operatives; and and 2017 2017"},
    {"id": "t3", "title": "x", "summary": "of the and", "type": "Event"},
    {"id": "t4", "title": "Refugees refugees refugee", "summary": "to be or not to be refugees"},
    {"id": "t5", "title": "１２３ ＡＢＣ Ｆｕｌｌｗｉｄｔｈ", "summary": "ünïcödé naïve café"},
    # Other languages: accented words index a second term at their position.
    {"id": "t6", "title": "Les salariées des coopératives, l'économie sociale",
     "summary": "Économie économie salariés salariée", "language": "fr"},
    {"id": "t7", "title": "Energiegenossenschaften der Ärzte an der Straße",
     "summary": "Die Genossenschaft", "language": "de"},
    {"id": "t8", "title": "合作社 cooperativa", "language": "zh"},
    # Elisions, hyphens, digits, apostrophes straight and curly, dotted capitals,
    # stop words only, an empty text, a language searchapp has no stemmer for.
    {"id": "t9", "title": "Dell'Alleanza cooperativa: l’economia sociale nell'Unione",
     "summary": "Le cooperative di comunità e l'80% dei soci, 2024-2025", "language": "it"},
    {"id": "t10", "title": "İstanbul’s co-operatives rock'n'roll '90s O'Neill",
     "summary": "Größe STRASSE straße naïve Ça ça 3½ x²"},
    {"id": "t11", "title": "Кооперативы и общество", "summary": "кооперативов ёлка",
     "language": "ru"},
    {"id": "t12", "title": "und der die", "summary": "", "language": "de"},
    {"id": "t13", "title": "Las cooperativas españolas", "summary": "Año de la economía",
     "language": "es"},
    {"id": "t14", "title": "Coöperaties in Nederland", "summary": "ÉÉN coöperatie",
     "language": "nl"},
    {"id": "t15", "title": "Kooperatiivit ja yhteiskunta", "summary": "Ääni", "language": "fi"},
    {"id": "t16", "title": "Spółdzielnie pracy", "summary": "Łódź żółw", "language": "pl"},
]


def documents() -> list[dict[str, Any]]:
    parsed = importers.collect([SAMPLES])
    items = [r.item for p in parsed for r in p.records]
    items += [build_item(r, organisation="Test") for r in TRICKY]
    # Enough repetitions of one word for several posting blocks (128 postings each).
    items += [build_item({"id": f"r{k:04d}", "title": f"cooperative report {k % 7}",
                          "summary": "Cooperatives in the social economy " * (k % 3),
                          "date": f"{2000 + k % 26}-05-0{1 + k % 9}"},
                         organisation=("ILO", "CECOP", "ICA")[k % 3]) for k in range(300)]
    return [to_document(item) for item in items]


def with_whoosh(path: Path, docs: Iterable[dict[str, Any]], s: Schema | None = None) -> Index:
    path.mkdir(exist_ok=True)
    ix = whoosh_index.create_in(str(path), s or schema())
    writer = ix.writer()
    for doc in docs:
        writer.add_document(**for_whoosh(doc, ix.schema))
    writer.commit()
    return ix


def for_whoosh(doc: dict[str, Any], s: Schema) -> dict[str, Any]:
    """A document as the indexer hands it to Whoosh's writer (`schema.for_whoosh`):
    texts marked with their language for the product's analyzer."""
    out = dict(doc)
    for name, value in doc.items():
        if name in s and isinstance(s[name].analyzer, MultilingualAnalyzer):
            out[f"_stored_{name}"] = value
            out[name] = marked(value, doc.get("language", "en"))
    return out


def with_builder(path: Path, docs: Iterable[dict[str, Any]], s: Schema | None = None,
                 **options: Any) -> Index:
    path.mkdir(exist_ok=True)
    ix = whoosh_index.create_in(str(path), s or schema())
    builder = segments.SegmentBuilder(ix, **options)
    for doc in docs:
        builder.add(doc)
    builder.commit()
    return ix


def contents(ix: Index) -> dict[str, Any]:
    """Everything a reader can see: terms and their statistics, every posting (id,
    weight, value, block lengths), stored fields, field lengths and columns."""
    out: dict[str, Any] = {}
    with ix.reader() as r:
        out["documents"] = r.doc_count_all()
        for name in r.schema.names():
            field = r.schema[name]
            if not field.indexed:
                continue
            for term in r.lexicon(name):
                info = r.term_info(name, term)
                out[(name, term)] = (info.doc_frequency(), info.weight(), info.min_length(),
                                     info.max_length(), info.max_weight(), info.min_id(),
                                     info.max_id())
                if name.startswith("spell_"):
                    continue  # only the words and their counts are ever read
                m = r.postings(name, term)
                found = []
                while m.is_active():
                    found.append((m.id(), m.weight(), m.value(), m.block_min_length(),
                                  m.block_max_length(), m.block_max_weight()))
                    m.next()
                out[("postings", name, term)] = found
            if field.scorable:
                out[("length", name)] = (r.field_length(name), r.min_field_length(name),
                                         r.max_field_length(name))
        for d in range(r.doc_count_all()):
            out[("stored", d)] = r.stored_fields(d)
            for name in ("title", "summary"):
                out[("dfl", d, name)] = r.doc_field_length(d, name)
        for name in r.schema.names():
            if r.has_column(name):
                out[("column", name)] = list(r.column_reader(name))
    return out


def test_the_builder_writes_what_whoosh_writes(tmp_path: Path) -> None:
    docs = documents()
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    got = contents(with_builder(tmp_path / "builder", docs))
    assert got.keys() == expected.keys()
    different = [k for k in expected if got[k] != expected[k]]
    assert not different, different[:5]


def test_other_analyzers_and_several_segments_too(tmp_path: Path) -> None:
    other = Schema(id=ID(stored=True, unique=True),
                   title=TEXT(analyzer=StemmingAnalyzer(), stored=True, spelling=True),
                   summary=TEXT(stored=True, field_boost=1.5),
                   organisation=ID(stored=True, sortable=True), type=ID(stored=True),
                   year=ID(stored=True, sortable=True), date=ID(stored=True, sortable=True),
                   url=STORED(), language=STORED(), source=STORED(), source_url=STORED(),
                   language_origin=STORED(), language_confidence=STORED())
    docs = documents()
    expected = with_whoosh(tmp_path / "whoosh", docs, other)
    before = FALLBACKS.snapshot().get("analyzer not compiled", 0)
    built = with_builder(tmp_path / "builder", docs, other, segment_postings=1500)
    # Whoosh's own analysis for the fields whose analyzer is not a compiled chain: said.
    assert FALLBACKS.snapshot()["analyzer not compiled"] == before + 2
    assert len(built._segments()) > 2
    with expected.searcher() as a, built.searcher() as b:
        for q in ("cooperative", "social", "refugee", "elections", "cafe"):
            for f in ("title", "summary"):
                ra = [(h["id"], round(h.score, 9)) for h in a.search(
                    a_query(f, q), limit=None)]
                rb = [(h["id"], round(h.score, 9)) for h in b.search(
                    a_query(f, q), limit=None)]
                assert sorted(ra) == sorted(rb)
        assert a.doc_count() == b.doc_count()
        assert sorted(a.reader().lexicon("spell_title")) == sorted(
            b.reader().lexicon("spell_title"))


def a_query(field: str, text: str) -> Any:
    from whoosh.qparser import QueryParser

    return QueryParser(field, schema=None).parse(text)


def test_posting_arrays_match_the_postings(tmp_path: Path) -> None:
    ix = with_builder(tmp_path, documents(), segment_postings=2000)
    with ix.reader() as reader:
        assert len(reader.leaf_readers()) > 1
        for leaf, _ in reader.leaf_readers():
            where = segments.arrays_path(leaf)
            assert where is not None
            arrays = arrayfile.open_arrays(*where)
            assert arrays is not None
            assert "id" not in arrays.fields  # unique ids are never looked up this way
            for name, field in arrays.fields.items():
                assert sorted(field.terms) == [t.decode() for t in leaf.lexicon(name)]
                for text in field.terms:
                    m = leaf.postings(name, text)
                    ids, weights, places = [], [], []
                    while m.is_active():
                        ids.append(m.id())
                        weights.append(m.weight())
                        if m.supports("positions"):
                            places.extend((m.id() << 32) | p for p in m.value_as("positions"))
                        m.next()
                    got = field.postings(text)
                    assert got is not None
                    assert got[0].tolist() == ids and got[1].tolist() == weights
                    if field.freqs is not None:
                        keys = field.keys(text, np.asarray(ids, dtype=np.int64))
                        assert keys is not None and keys.tolist() == places
            arrays.close()


def test_a_damaged_arrays_file_is_ignored(tmp_path: Path) -> None:
    ix = with_builder(tmp_path, documents())
    (path,) = tmp_path.glob("*.arrays")
    path.write_bytes(b"not arrays")
    with ix.reader() as reader:
        where = segments.arrays_path(reader)
        assert where is not None and where[0] == str(path)
        assert arrayfile.open_arrays(*where) is None


@pytest.mark.parametrize("fail_at", [0, 5])
def test_an_error_while_adding_leaves_no_segment(tmp_path: Path, fail_at: int) -> None:
    ix = whoosh_index.create_in(str(tmp_path), schema())

    def failing() -> Iterable[dict[str, Any]]:
        for k, doc in enumerate(documents()):
            if k == fail_at:
                raise RuntimeError("the catalog went away")
            yield doc

    with pytest.raises(RuntimeError):
        pool.build(ix, failing())
    assert ix.doc_count() == 0
    assert pool.build(ix, documents()[:3]) == 3
    assert ix.doc_count() == 3


def test_a_parallel_build_holds_the_same_documents(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "CHUNK", 40)
    docs = documents()
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = whoosh_index.create_in(str(tmp_path / "one"), schema())
    two = whoosh_index.create_in(str(tmp_path / "two"), schema())
    assert pool.build(one, docs) == len(docs)
    assert pool.build(two, docs, workers=2) == len(docs)
    assert len(two._segments()) == 2
    assert not list((tmp_path / "two").glob("part-*"))
    assert len(list((tmp_path / "two").glob("*.arrays"))) == 2
    with one.searcher() as a, two.searcher() as b:
        assert b.doc_count() == len(docs)
        by_id = {f["id"]: f for f in b.all_stored_fields()}
        assert by_id == {f["id"]: f for f in a.all_stored_fields()}
        for word in ("cooperative", "social", "elect", "refugee", "2017"):
            for field in ("title", "summary"):
                hits_a = {h["id"]: h.score for h in a.search(a_query(field, word), limit=None)}
                hits_b = {h["id"]: h.score for h in b.search(a_query(field, word), limit=None)}
                assert hits_a == hits_b


def test_a_failing_worker_fails_the_build(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "CHUNK", 40)
    docs = documents()
    docs[200] = {**docs[200], "nosuchfield": "x"}  # the worker's writer rejects it
    ix = whoosh_index.create_in(str(tmp_path), schema())
    with pytest.raises(pool.BuildFailed, match="worker 1: UnknownFieldError.*nosuchfield"):
        pool.build(ix, docs, workers=2)
    assert ix.doc_count() == 0
    assert not list(tmp_path.glob("part-*"))


def test_build_workers_never_import_from_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "CHUNK", 40)
    here = tmp_path / "cwd"
    here.mkdir()
    marker = tmp_path / "imported"
    for name in ("numpy", "whoosh", "searchapp"):
        (here / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('{name}')\n"
                                         "raise SystemExit('a module from the cwd ran')\n")
    monkeypatch.chdir(here)
    monkeypatch.setenv("PYTHONPATH", str(here))
    (tmp_path / "ix").mkdir()
    ix = whoosh_index.create_in(str(tmp_path / "ix"), schema())
    docs = documents()[:120]
    assert pool.build(ix, docs, workers=2) == len(docs)
    assert not marker.exists()
    assert ix.doc_count() == len(docs)


def test_parallel_rebuilds_keep_the_generation_rules(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from searchapp import indexer
    from searchapp.errors import IndexUnavailable
    from searchapp.indexer import IndexStore
    from searchapp.search import Engine, SearchQuery

    monkeypatch.setattr(indexer, "PARALLEL_FROM", 1)
    monkeypatch.setattr(indexer, "BUILD_WORKERS", 2)
    monkeypatch.setattr(pool, "CHUNK", 25)
    items = [build_item({"id": f"p{k:04d}", "title": f"cooperative news {k}",
                         "date": f"{2000 + k % 20}-01-01"}, organisation="ILO")
             for k in range(300)]
    store = IndexStore(tmp_path)
    live = store.rebuild(items, expected=300)

    def failing() -> Iterable[Any]:
        yield from items[:120]
        raise RuntimeError("the catalog went away")

    with pytest.raises(RuntimeError, match="went away"):
        store.rebuild(failing(), expected=300)
    with pytest.raises(IndexUnavailable, match="catalog has 301"):
        store.rebuild(items, expected=301)
    assert store.current() == live
    assert not list(tmp_path.glob("*.tmp"))
    engine = Engine(store)
    page = engine.search(SearchQuery(q="cooperative", per_page=100))
    assert page.total == 300 and len({h.item.id for h in page.hits}) == 100
    engine.close()


def test_whoosh_merges_what_the_builder_wrote(tmp_path: Path) -> None:
    docs = documents()
    expected = with_whoosh(tmp_path / "whoosh", docs[:200])
    built = with_builder(tmp_path / "builder", docs[:200])
    for ix in (expected, built):
        writer = ix.writer()
        for doc in docs[200:]:
            writer.add_document(**for_whoosh(doc, ix.schema))
        writer.commit(optimize=True)  # Whoosh reads every posting back and rewrites it
        assert len(ix._segments()) == 1
    a, b = contents(expected), contents(built)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def workers_of(folder: Path) -> list[int]:
    """Processes still running a parallel build's worker for `folder`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "serve_part" in text and str(folder) in text:
            found.append(int(cmdline.parent.name))
    return found


def test_killing_a_parallel_rebuild_stops_its_workers_and_frees_the_lock(tmp_path: Path) -> None:
    from searchapp.indexer import IndexStore

    store = IndexStore(tmp_path / "index")
    live = store.rebuild([build_item({"id": "x", "title": "t"}, organisation="ILO")], expected=1)
    script = textwrap.dedent(f"""
        import time
        from searchapp import indexer
        from searchapp.engine import pool
        from searchapp.models import build_item
        indexer.PARALLEL_FROM, indexer.BUILD_WORKERS, pool.CHUNK = 1, 2, 50
        store = indexer.IndexStore({str(tmp_path / "index")!r})
        def items():
            for k in range(100_000):
                if k == 300:
                    print("feeding", flush=True)
                if k >= 300:
                    time.sleep(0.001)
                # A language given: the detector's models would load in this process.
                yield build_item({{"id": str(k), "title": "word"}}, organisation="X",
                                 language="en")
        with store.lock():
            store.rebuild(items(), expected=100_000)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "feeding"
        assert len(workers_of(tmp_path)) == 2
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while workers_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers_of(tmp_path) == []
    with store.lock(timeout=1):  # no worker inherited it
        pass
    assert store.current() == live


def test_values_whoosh_takes_as_sequences_of_terms_too(tmp_path: Path) -> None:
    # A field's value given as a list of terms (which Whoosh's writer accepts) goes
    # through Whoosh's own analysis; the same field's texts are gathered flat, and
    # both meet in one term list per term, in document order.
    docs = documents()[:40]
    docs[3] = {**docs[3], "organisation": ["ILO", "ICA"]}
    docs[7] = {**docs[7], "type": ["News", "Zeta"]}
    docs[9] = {**docs[9], "organisation": ["ICA"]}
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    before = FALLBACKS.snapshot().get("value analysed by Whoosh", 0)
    got = contents(with_builder(tmp_path / "builder", docs))
    # Said (log + counter): each such value went through Whoosh's analysis.
    assert FALLBACKS.snapshot()["value analysed by Whoosh"] == before + 3
    assert got.keys() == expected.keys()
    assert [k for k in expected if got[k] != expected[k]] == []
    ica = [posting[0] for posting in got[("postings", "organisation", b"ICA")]]
    assert 3 in ica and 9 in ica and ica == sorted(ica)


def test_blocks_either_side_of_the_compression_threshold_and_long_stored_fields(
        tmp_path: Path) -> None:
    # Terms in 1, COMPRESS_FROM - 1, COMPRESS_FROM, + 1 and 128 + COMPRESS_FROM - 1
    # documents (their last block short of the threshold), a positions value of many
    # positions, and stored fields longer than one zlib stored block (65,535 bytes):
    # what a reader sees is what Whoosh wrote.
    edge = segments.COMPRESS_FROM
    counts = [1, edge - 1, edge, edge + 1, 128 + edge - 1]
    items = [build_item({"id": f"e{k:04d}", "date": "2020-01-01", "language": "en",
                         "title": " ".join(f"word{c}x" for c in counts if k < c),
                         "summary": "tally " * (k % 40)}, organisation="ICA")
             for k in range(max(counts))]
    docs = [to_document(item) for item in items]
    # Longer than an item may be (the builder takes any document).
    docs[-1]["summary"] = " ".join(f"w{k}" for k in range(40_000))
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    got = contents(with_builder(tmp_path / "builder", docs))
    assert got.keys() == expected.keys()
    assert [k for k in expected if got[k] != expected[k]] == []
    for c in counts:
        assert len(got[("postings", "title", f"en:word{c}x".encode())]) == c


def test_positions_far_apart_and_texts_holding_the_separator_are_what_whoosh_writes(
        tmp_path: Path) -> None:
    # A word's positions far apart (deltas pickled in one, two and four bytes), a word
    # more times than pickle puts in one batch of a list, texts holding the character
    # that joins a batch's texts, and languages mixed in one batch.
    # Items hold neither (their checks cap texts and drop control characters), but the
    # builder takes any document.
    far = "cooperative " + "w " * 300 + "cooperative " + "x " * 66_000 + "cooperative"
    texts = [("far apart", far, "en"),
             ("many times", "tally " * 1_001 + "tally", "en"),
             ("nul\x00inside the\x00title", "alpha\x00beta alpha", "en"),
             ("les coopératives", "économie\x00économie", "fr"),
             ("cooperatives cooperative", "", "en")]
    docs = []
    for k, (title, summary, language) in enumerate(texts):
        doc = to_document(build_item({"id": f"p{k}", "title": "x", "language": language},
                                     organisation="ICA"))
        doc.update(title=title, summary=summary)
        docs.append(doc)
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    for batch in (1, 2, 5):
        got = contents(with_builder(tmp_path / f"builder-{batch}", docs, batch=batch))
        assert got.keys() == expected.keys()
        assert [k for k in expected if got[k] != expected[k]] == []
    assert len(expected[("postings", "summary", b"en:talli")][0][2]) > 1_000


def test_a_rebuild_takes_the_stems_the_last_one_left(tmp_path: Path) -> None:
    # The first build stems every word and leaves its stems in the folder; the next
    # stems none of the same words, and both write what Whoosh's writer writes.
    docs = documents()
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    folder = tmp_path / "stems"
    folder.mkdir()
    stemmed = []
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        ix = whoosh_index.create_in(str(tmp_path / run), schema())
        builder = segments.SegmentBuilder(ix, stems=segments.StemTable(str(folder)))
        for doc in docs:
            builder.add(doc)
        builder.commit()
        builder.save_stems(str(folder))
        stemmed.append(builder.stems_computed)
        got = contents(ix)
        assert [k for k in expected if got.get(k) != expected[k]] == []
    assert stemmed[0] > 500 and stemmed[1] == 0
    assert [p.name for p in folder.iterdir()] == ["stems-0.pickle"]


def test_a_stem_table_that_disagrees_with_the_stemmer_is_not_used(tmp_path: Path) -> None:
    docs = documents()
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    folder = tmp_path / "stems"
    folder.mkdir()
    (tmp_path / "first").mkdir()
    builder = segments.SegmentBuilder(
        whoosh_index.create_in(str(tmp_path / "first"), schema()))
    for doc in docs:
        builder.add(doc)
    builder.commit()
    builder.save_stems(str(folder))
    path = folder / "stems-0.pickle"
    table = stem_table_file(path)
    english = table["tables"]["multilingual-en"]
    assert english["cooperatives"] == "en:cooper"
    english.update({word: "en:wrong" for word in english})  # what another stemmer might give
    write_stem_table_file(path, table)
    (folder / "stems-1.pickle").write_bytes(b"not a pickle")
    before = FALLBACKS.snapshot().get("stem table discarded", 0)
    (tmp_path / "second").mkdir()
    ix = whoosh_index.create_in(str(tmp_path / "second"), schema())
    builder = segments.SegmentBuilder(ix, stems=segments.StemTable(str(folder)))
    for doc in docs:
        builder.add(doc)
    builder.commit()
    # Said (log + counter): the unreadable file, and the table that failed its check.
    assert FALLBACKS.snapshot()["stem table discarded"] == before + 2
    assert builder.stems_computed > 500  # every word stemmed afresh
    got = contents(ix)
    assert [k for k in expected if got.get(k) != expected[k]] == []


def test_a_table_from_other_analysis_code_is_passed_over(tmp_path: Path) -> None:
    folder = tmp_path / "stems"
    folder.mkdir()
    write_stem_table_file(folder / "stems-0.pickle", {
        "fingerprint": "another nltk", "tables": {"multilingual-en": {"cats": "en:dog"}}})
    # A table as searchapp wrote them before they had a checksum: a bare pickle.
    (folder / "stems-1.pickle").write_bytes(pickle.dumps(
        {"fingerprint": segments._stems_fingerprint(),
         "tables": {"multilingual-en": {"cats": "en:dog"}}}))
    before = FALLBACKS.snapshot().get("stem table discarded", 0)
    assert segments.StemTable(str(folder)).known == {}
    assert FALLBACKS.snapshot().get("stem table discarded", 0) == before  # not damaged
    assert segments.StemTable(None).known == {}


def test_parallel_rebuilds_leave_a_stem_table_per_worker(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from searchapp import indexer
    from searchapp.indexer import IndexStore

    monkeypatch.setattr(indexer, "PARALLEL_FROM", 1)
    monkeypatch.setattr(indexer, "BUILD_WORKERS", 2)
    monkeypatch.setattr(pool, "CHUNK", 40)
    parsed = importers.collect([SAMPLES])
    items = [r.item for p in parsed for r in p.records]
    store = IndexStore(tmp_path / "index")
    store.rebuild(items, expected=len(items))
    names = sorted(p.name for p in (tmp_path / "index").glob("stems-*"))
    assert names == ["stems-0.pickle", "stems-1.pickle"]
    known = segments.StemTable(str(tmp_path / "index")).known["multilingual-en"]
    assert known["cooperatives"] == "en:cooper"
    store.rebuild(items, expected=len(items))  # with them
    assert store.document_count() == len(items)


@pytest.mark.parametrize("count", [1, 300, 20_000])
def test_the_term_index_hash_tables_find_every_key(tmp_path: Path, count: int) -> None:
    """The builder lays out a term index's hash tables itself (numpy, entries that wrap
    around a table's end one by one): every key is found, an absent one is not."""
    from whoosh.filedb.filestore import FileStorage
    from whoosh.filedb.filetables import OrderedHashReader, OrderedHashWriter

    storage = FileStorage(str(tmp_path))
    keys = [f"term{k:06d}".encode() for k in range(count)]
    writer = OrderedHashWriter(storage.create_file("t.trm"))
    for k, key in enumerate(keys):
        writer.add(key, str(k).encode())
    segments._fast_hashes(writer)
    writer.close()
    reader = OrderedHashReader.open(storage, "t.trm")
    assert [reader[key] for key in keys] == [str(k).encode() for k in range(count)]
    assert b"absent" not in reader
    assert list(reader.keys()) == keys
    reader.close()


def test_batched_analysis_is_the_chain_word_by_word() -> None:
    """The builder's batched analysis (each distinct word analysed once, stop words,
    positions and second terms worked out with numpy) gives each text the terms,
    positions and spelling words of the language's own analyser."""
    from searchapp.analysis import MultilingualAnalyzer, chain_for, tongue

    texts = [(d.get("title", ""), d.get("language", "en")) for d in documents()]
    texts += [(d.get("summary", ""), d.get("language", "en")) for d in documents()]
    texts += [(r.get("summary", ""), lang) for r in TRICKY for lang in ("en", "fr", "de", "xx")]
    texts += [(r["title"], lang) for r in TRICKY for lang in ("it", "ru", "es", "sv", "zh")]
    registry, spelling = segments._Registry(), segments._Registry()
    field = segments._TextField(chain_for(MultilingualAnalyzer()), {}, registry, spelling)
    for at in range(0, len(texts), 50):  # batches of mixed languages
        batch = texts[at:at + 50]
        terms, positions, rows, (kept_of, spelled) = field.gather(
            [t for t, _ in batch], [lang for _, lang in batch])
        ends = np.cumsum(rows)
        for k, (text, lang) in enumerate(batch):
            stems, first, words, extra = tongue(lang).analyser()(text)
            expected = sorted([(s, first + j) for j, s in enumerate(stems)] + extra)
            got = sorted(zip([registry.texts[t] for t in terms[ends[k] - rows[k]:ends[k]]],
                             positions[ends[k] - rows[k]:ends[k]].tolist(), strict=True))
            assert got == expected, text
            assert {spelling.texts[w] for w in spelled[kept_of == k]} == set(words), text


def test_a_bad_document_in_the_last_batch_leaves_no_segment(tmp_path: Path) -> None:
    # Documents are gathered a batch at a time, so a document with a field the schema
    # does not have fails when its batch is gathered: here at the end, in `commit`.
    ix = whoosh_index.create_in(str(tmp_path), schema())
    docs = documents()[:5] + [{"id": "bad", "title": "x", "colour": "red"}]
    with pytest.raises(Exception, match="colour"):
        pool.build(ix, docs)
    assert ix.doc_count() == 0
    assert pool.build(ix, documents()[:3]) == 3  # the writer's lock was given back
    assert ix.doc_count() == 3


def test_a_write_that_fails_half_way_gives_the_lock_back(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk while the segment's files are written (here: its arrays file): the
    # build fails with the disk's error, no segment is added, and the index can be
    # written again at once, not only once the failed writer is garbage-collected.
    ix = whoosh_index.create_in(str(tmp_path), schema())
    real = segments.write_arrays

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(segments, "write_arrays", full_disk)
    with pytest.raises(OSError, match="No space left") as failed:
        pool.build(ix, documents()[:5])
    assert ix.doc_count() == 0
    monkeypatch.setattr(segments, "write_arrays", real)
    # The error (kept, as a caller logging it keeps it) still refers to the writer.
    assert failed.traceback
    writer = ix.writer(timeout=0)  # raises LockError while a writer still holds it
    writer.cancel()
    assert pool.build(ix, documents()[:3]) == 3


def test_terms_of_one_posting_are_written_at_once_as_the_loop_writes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The id field (a term per document, weight 1, no value) goes through
    # `_single_postings`: the same bytes as the term-by-term loop, so the postings
    # files are equal, and both read as Whoosh's writer's.
    docs = documents()
    at_once = with_builder(tmp_path / "at-once", docs)
    monkeypatch.setattr(segments, "SINGLES_AT_ONCE", False)
    by_term = with_builder(tmp_path / "by-term", docs)
    [a] = at_once._segments()
    [b] = by_term._segments()
    for ext in (".pst", ".trm"):
        assert (tmp_path / "at-once" / f"{a.segment_id()}{ext}").read_bytes() == (
            tmp_path / "by-term" / f"{b.segment_id()}{ext}").read_bytes()
    assert len(docs) > 256  # ids pickled in one byte and in two
    expected = contents(with_whoosh(tmp_path / "whoosh", docs))
    got = contents(at_once)
    assert [k for k in expected if got[k] != expected[k]] == []


@pytest.mark.parametrize("number", [0, 1, 255, 256, 65_535, 65_536, 2**24, 2**31 - 1])
def test_a_one_posting_block_from_templates_is_what_pickle_gives(number: int) -> None:
    # Ids in each of the three widths a pickled int takes, with any weight and lengths.
    from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC
    from whoosh.system import pack_int

    body, sizes = segments._single_postings(np.array([number, 7]), np.array([1.0, 2.5]),
                                            np.array([3, 0]), np.array([200, 255]))
    expected = b""
    for doc, weight, low, high in ((number, 1.0, 3, 200), (7, 2.5, 0, 255)):
        head = pickle.dumps((1, doc, weight, 0, low, high), 2)
        data = pickle.dumps(((doc,), None, None), 4)
        expected += WHOOSH3_HEADER_MAGIC + pack_int(-(len(head) + len(data))) + head + data
    assert body == expected
    assert sizes.tolist() == [len(expected) - 54, 54]
    with pytest.raises(ValueError):
        segments._single_postings(np.array([2**31]), np.array([1.0]), np.array([0]),
                                  np.array([0]))


def stem_table_file(path: Path) -> dict[str, Any]:
    """The table a `stems-*.pickle` file holds (its header checked)."""
    found: dict[str, Any] = pickle.loads(segments._stems_payload(path.read_bytes()))
    return found


def write_stem_table_file(path: Path, table: dict[str, Any]) -> None:
    """A stem table file as `save_stems` writes one, whole, of any table."""
    payload = pickle.dumps(table)
    path.write_bytes(segments._STEMS_MAGIC
                     + segments._STEMS_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)


def hits_for(settings: Settings, words: list[str]) -> dict[str, list[tuple[str, Any]]]:
    """Each search's hits: id and score."""
    engine = Engine(IndexStore(settings.index_dir))
    try:
        return {q: [(hit.item.id, hit.score)
                    for hit in engine.search(SearchQuery(q=q, per_page=100)).hits]
                for q in words}
    finally:
        engine.close()


def test_a_flipped_byte_in_a_stem_table_is_caught_and_the_next_rebuild_writes_a_sound_one(
        samples: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The adversary's finding: one byte changed inside a stem of the table a real rebuild
    # kept. The sample check re-stems 32 entries, so a stem outside them went unnoticed:
    # its word was indexed under the damaged term, and the table saved again as it was.
    operations.rebuild(samples)  # the samples' table, as a rebuild leaves it
    path = samples.index_dir / "stems-0.pickle"
    english = stem_table_file(path)["tables"]["multilingual-en"]
    entries = list(english.items())
    sampled = set(range(0, len(entries), max(1, len(entries) // segments._STEMS_CHECKED)))
    terms = Counter(english.values())
    data = path.read_bytes()
    word, term = next((w, t) for k, (w, t) in enumerate(entries)
                      if k not in sampled and terms[t] == 1 and len(t) >= 8 and t.isascii()
                      and data.count(t.encode()) == 1)
    at = data.index(term.encode()) + len(term) - 1
    path.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])  # one bit
    words = [word, "cooperatives", "elections", f"{word} cooperative"]
    fresh = tmp_path / "fresh"
    fresh_settings = Settings.load({"catalog": samples.catalog, "index_dir": fresh},
                                   environ={})
    operations.rebuild(fresh_settings)  # no stem table there: every word stemmed afresh
    expected = hits_for(fresh_settings, words)
    assert expected[word], f"{word!r} finds nothing even in a fresh index"

    before = FALLBACKS.snapshot().get("stem table discarded", 0)
    with caplog.at_level(logging.WARNING, logger="searchapp.engine.segments"):
        operations.rebuild(samples)
    # Said (log + counter) and not used: the rebuild answers as a fresh index does.
    assert FALLBACKS.snapshot()["stem table discarded"] == before + 1
    assert f"stem table {path} cannot be read (ValueError: damaged: its contents do not" \
           " match their checksum)" in caplog.text
    assert hits_for(samples, words) == expected
    # The table it wrote in its place is whole and every stem in it is the stemmer's.
    table = stem_table_file(path)["tables"]
    chain = Multilingual()
    for key, stems in table.items():
        language = key.removeprefix("multilingual-")
        stem = word_entries(chain, language)
        assert [w for w, t in stems.items() if stem(w)[0] != (t,)] == [], key
    assert table["multilingual-en"][word] == term
    operations.rebuild(samples)  # and the next rebuild takes it without a word
    assert FALLBACKS.snapshot()["stem table discarded"] == before + 1
    assert hits_for(samples, words) == expected


@pytest.mark.parametrize("terms", [1, 65_536, 65_537, 300_000])
def test_rows_are_ordered_as_a_stable_sort_orders_them(terms: int) -> None:
    # More terms than 16 bits number (a large segment's) are ordered in two passes.
    keys = np.random.default_rng(terms).integers(0, terms, 200_000).astype(np.int32)
    assert (segments._stable_order(keys, terms) == np.argsort(keys, kind="stable")).all()
