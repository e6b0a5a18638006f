"""The Milvus store (`index.store.milvus`) against real Milvus Lite, in-process and as a gRPC server.

Store-level operations on small hand-made vectors (add, dense/keyword search, filters, remove with no
ghost hits, replace, duplicates, atomic commit/abort, generations), then the bundled corpus indexed in
both stores and searched through the shared `index.search` code, then two processes sharing one Milvus.
Article rows live in SQLite here; tests/test_state_backends.py covers the same SQL on PostgreSQL, and
one test below runs the store on PostgreSQL too when a server can be started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO
from tests.milvus_fixtures import milvus_lite_server

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'newsbot[milvus]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install 'newsbot[milvus]')")
pytest.importorskip("snowballstemmer", reason="snowballstemmer is not installed (pip install 'newsbot[milvus]')")

from newsbot.index.chunking import chunk_document  # noqa: E402
from newsbot.index.documents import Document  # noqa: E402
from newsbot.index.hits import Filters  # noqa: E402
from newsbot.index.store.base import IndexMissing, Manifest
from newsbot.index.store.embedded.reader import open_current
from newsbot.index.store.milvus.collection import analyze, chunk_id_for, filter_expr  # noqa: E402
from newsbot.index.store.milvus.store import MilvusStore
from newsbot.index.text import keyword_terms  # noqa: E402

pytestmark = pytest.mark.milvus

DIM = 8


def _vec(i: int) -> np.ndarray:
    """A unit vector pointing mostly along axis i (so a query along i finds it first)."""
    v = np.full(DIM, 0.05, dtype=np.float32)
    v[i % DIM] = 1.0
    return v / np.linalg.norm(v)


def _doc(doc_id: str, title: str, body: str, source: str, date: str | None, url: str = "") -> Document:
    published = datetime.fromisoformat(date).replace(tzinfo=UTC) if date else None
    return Document(id=doc_id, title=title, body=body, source=source, url=url, published_at=published,
                    origin=url or f"{doc_id}.md")


DOCS = [
    _doc("leica", "Xiaomi ends Leica partnership", "Xiaomi is ending its camera partnerships with Leica. "
         "The phone maker will develop imaging in house.", "Weibo", "2025-05-19", "https://weibo.example/leica"),
    _doc("tsmc", "TSMC 2nm enters volume production", "TSMC said its N2 process entered volume production. "
         "Apple is expected to be the first customer.", "Fab Report", "2025-10-02"),
    _doc("rtx", "Nvidia unveils RTX 50 at CES", "Nvidia showed Blackwell graphics cards at CES in Las Vegas.",
         "The Verge", "2025-01-07"),
    _doc("undated", "Huawei phones keep Leica-style lenses", "Huawei cameras use lenses tuned like Leica's.",
         'Quote "Wire"', None),
]


def _chunks(doc: Document) -> list:
    return chunk_document(doc, 256, 32)


def _add(writer, doc: Document, axis: int) -> list[int]:  # noqa: ANN001
    chunks = _chunks(doc)
    return writer.add(doc, chunks, np.stack([_vec(axis)] * len(chunks)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MilvusStore]:
    s = MilvusStore(str(tmp_path / "milvus.db"), database=tmp_path / "store.sqlite", prefix="t")
    yield s
    s.close()


def _build(store: MilvusStore, docs=DOCS) -> Manifest:  # noqa: ANN001
    manifest = Manifest(generation=store.new_generation_name(), model="test-model", dim=DIM, chunk_tokens=256,
                        chunk_overlap=32)
    writer = store.create_generation(manifest)
    for i, doc in enumerate(docs):
        _add(writer, doc, i)
    manifest = writer.commit()
    store.set_current(manifest.generation)
    return manifest


def _milvus_count(store: MilvusStore, name: str) -> int:
    return int(store.client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def test_analyze_and_filters_match_the_embedded_store() -> None:
    assert analyze("Partnerships ending, Leica's CAMÉRAS!") == ["partnership", "end", "leica", "s", "camera"]
    assert analyze("snake_case 2nm") == ["snake", "case", "2nm"]
    assert filter_expr(Filters()) == ""
    expr = filter_expr(Filters(("Weibo", ' the  VERGE '), datetime(2025, 1, 1, tzinfo=UTC)))
    assert expr == 'source_key in ["the verge", "weibo"] and published_ts >= 1735689600.0'
    assert 'source_key in ["quote \\"wire\\""]' in filter_expr(Filters(('Quote "Wire"',)))


def test_add_search_filter_and_read(store: MilvusStore) -> None:
    with pytest.raises(IndexMissing):
        store.reader()
    manifest = _build(store)
    assert (manifest.documents, manifest.chunks, manifest.version) == (4, 4, 1)
    reader = store.reader(expect_model="test-model")
    assert reader.manifest.generation == store.current_generation() == manifest.generation
    assert _milvus_count(store, manifest.generation) == 4

    dense = reader.dense_search(np.stack([_vec(1), _vec(2)]), 2)
    assert [reader.hits([cid])[cid].doc_id for cid, _ in dense[0]][0] == "tsmc"
    assert [reader.hits([cid])[cid].doc_id for cid, _ in dense[1]][0] == "rtx"
    assert dense[0][0][1] == pytest.approx(float(_vec(1) @ _vec(1)), abs=1e-5)

    def keyword(text: str, **filters: object) -> list[str]:
        found = reader.keyword_search(keyword_terms(text), 10, Filters(**filters))
        assert all(score > 0 for _, score in found)
        return [reader.hits([cid])[cid].doc_id for cid, _ in found]

    assert keyword("Leica partnership")[0] == "leica"  # title + body, stemmed: partnerships ~ partnership
    assert set(keyword("Leica")) == {"leica", "undated"}
    assert keyword("Leica", sources=("weibo",)) == ["leica"]
    assert keyword("Leica", sources=('QUOTE "wire"',)) == ["undated"]
    assert keyword("Leica", until=datetime(2026, 1, 1, tzinfo=UTC)) == ["leica"]  # undated never in a range
    assert keyword("Leica", since=datetime(2025, 6, 1, tzinfo=UTC)) == []
    assert keyword("Fab Report") == ["tsmc"]  # the outlet is in every passage's header line
    assert keyword("the of and") == [] and reader.keyword_search([], 10) == []
    since = datetime(2025, 2, 1, tzinfo=UTC)
    ranked = reader.dense_search(_vec(2)[None, :], 10, Filters(since=since))[0]
    assert "rtx" not in {h.doc_id for h in reader.hits([c for c, _ in ranked]).values()}

    ids = [cid for cid, _ in reader.dense_search(_vec(0)[None, :], 10)[0]]
    hits = reader.hits(ids + [12345])
    assert 12345 not in hits and len(hits) == 4
    leica = next(h for h in hits.values() if h.doc_id == "leica")
    assert leica.title == "Xiaomi ends Leica partnership" and leica.source == "Weibo"
    assert leica.date == "2025-05-19" and leica.url == "https://weibo.example/leica"
    assert leica.text == DOCS[0].body[leica.start:leica.end]
    vecs = reader.vectors([leica.chunk_id, 999])
    assert np.allclose(vecs[0], _vec(0), atol=1e-6) and not vecs[1].any()

    doc, n = reader.document("leica")
    assert doc.body == DOCS[0].body and n == 1 and reader.document("nope") is None
    assert sorted(d.id for d in reader.documents()) == ["leica", "rtx", "tsmc", "undated"]
    assert reader.document_ids() == ["leica", "rtx", "tsmc", "undated"]
    assert [d.id for d in reader.latest(10)] == ["tsmc", "leica", "rtx", "undated"]
    assert [d.id for d in reader.latest(10, terms=keyword_terms("Leica cameras"))] == ["leica", "undated"]
    assert [d.id for d in reader.latest(1, Filters(("weibo", "the verge")))] == ["leica"]
    assert reader.source_counts()[0][1] == 1 and "Fab Report" in reader.sources()
    assert reader.has_passage_with_all(["xiaomi", "cameras"]) and not reader.has_passage_with_all(["xiaomi", "nvidia"])


def test_remove_and_replace_leave_no_ghost_hits(store: MilvusStore) -> None:
    manifest = _build(store)
    reader = store.reader()
    leica_ids = set(reader.hits([c for c, _ in reader.dense_search(_vec(0)[None, :], 10)[0]]))
    tsmc_ids = {cid for cid, h in reader.hits([c for c, _ in reader.dense_search(_vec(1)[None, :], 10)[0]]).items()
                if h.doc_id == "tsmc"}

    writer = store.open_writer()
    assert writer.remove("leica") and not writer.remove("never-there")
    changed = DOCS[1].with_(body=DOCS[1].body + " Volume production began in Hsinchu.")
    new_ids = _add(writer, changed, 5)
    m2 = writer.commit()
    assert (m2.documents, m2.version) == (3, 2) and reader.stored_version() == 2 and reader.refresh()

    def everything() -> set[int]:
        found = {cid for row in reader.dense_search(np.stack([_vec(i) for i in range(DIM)]), 50) for cid, _ in row}
        found |= {cid for cid, _ in reader.keyword_search(keyword_terms("Leica TSMC Xiaomi camera volume"), 50)}
        return found

    live = everything()
    leica_hits = {cid for cid in leica_ids if reader.hits([cid]).get(cid, None) and reader.hits([cid])[cid].doc_id
                  == "leica"}
    assert not leica_hits and not (live & tsmc_ids - set(new_ids))
    assert not reader.keyword_search(keyword_terms("Xiaomi"), 10)
    assert reader.document("leica") is None and reader.document("tsmc")[0].body.endswith("Hsinchu.")
    assert set(new_ids) <= live
    assert _milvus_count(store, manifest.generation) == m2.chunks == 3  # replaced rows deleted from Milvus
    assert not store.db.query("SELECT * FROM store_garbage")

    writer = store.open_writer()  # re-adding an unchanged article is idempotent: same ids, same rows
    again = _add(writer, changed, 5)
    writer.commit()
    assert again == new_ids and _milvus_count(store, manifest.generation) == 3


def test_word_counts_follow_updates_and_a_reopened_lite_store_searches(tmp_path: Path) -> None:
    """`store_terms` (the idf counts) follows adds, removes and replacements, also of an article written
    twice by one writer; a Lite store opened again (a restart) loads its collection and searches."""
    path, database = str(tmp_path / "milvus.db"), tmp_path / "store.sqlite"
    store = MilvusStore(path, database=database, prefix="t")
    _build(store)
    reader = store.reader()
    assert reader.manifest.extra["term_counts"] is True
    assert reader.passage_frequency("Leica") == 2 and reader.passage_frequency("cameras") == 2  # stemmed
    assert reader.passage_frequency("Weibo") == 1 and reader.passage_frequency("zzzunknown") == 0
    assert reader.passage_frequency("Leica-style") == 1  # a term of several words counts as its rarest
    assert not reader.has_passage_with_all(["leica", "zzzunknown"])
    store.close()

    store = MilvusStore(path, database=database, prefix="t")  # a new process: the collection is not loaded
    try:
        reader = store.reader()
        assert reader.keyword_search(keyword_terms("Leica"), 10) and reader.dense_search(_vec(0)[None, :], 2)[0]
        writer = store.open_writer()
        writer.remove("undated")
        _add(writer, DOCS[1].with_(body="TSMC will put Leica lenses on its fab cameras."), 1)
        draft = _doc("extra", "Draft", "Zebras and giraffes roam.", "Wire", "2025-03-01")
        _add(writer, draft, 2)
        _add(writer, draft.with_(body="Elephants roam."), 2)  # the same article again, in the same writer
        writer.commit()
        reader.refresh()
        assert reader.passage_frequency("Leica") == 2  # undated gone, tsmc now mentions it
        assert reader.passage_frequency("Huawei") == 0 and reader.passage_frequency("customer") == 0
        assert reader.passage_frequency("zebras") == 0 and reader.passage_frequency("elephants") == 1
        assert reader.passage_frequency("roam") == 1 and reader.passage_frequency("TSMC") == 1
        counts = dict(store.db.query("SELECT term, df FROM store_terms WHERE generation = ?", (reader.name,)))
        assert min(counts.values()) > 0
    finally:
        store.close()


def test_duplicates_are_found(store: MilvusStore) -> None:
    from newsbot.index.ingest.dedup import minhash

    _build(store)
    writer = store.open_writer()
    copy = DOCS[0].with_(id="copy", url="")
    assert writer.find_duplicate(copy) == "leica"  # same text
    moved = DOCS[2].with_(id="other", body="Different words.", url="https://WWW.weibo.example/leica/?utm_source=x")
    assert writer.find_duplicate(moved) == "leica"  # same canonical URL
    assert writer.find_by_url("https://weibo.example/leica#top") == "leica" and writer.find_by_url("") is None
    assert writer.find_duplicate(DOCS[0]) is None  # an article is not its own duplicate
    near = DOCS[0].body.replace("house.", "house soon.")
    assert writer.find_near_duplicate("new", minhash(near), 0.5)[0] == "leica"
    assert writer.find_near_duplicate("new", minhash("Completely unrelated text about weather."), 0.5) is None
    row = writer.document_row("leica")
    assert row["content_hash"] == DOCS[0].content_hash() and row["id"] == "leica"
    writer.add_also_reported("leica", ["Signal Desk", "weibo"])
    writer.commit()
    assert store.reader().document("leica")[0].also_reported_by == ("Signal Desk",)


def test_uncommitted_passages_are_invisible_and_abort_cleans_up(store: MilvusStore) -> None:
    manifest = _build(store)
    reader = store.reader()
    fresh = _doc("fresh", "Samsung unveils Galaxy S25", "Samsung showed the Galaxy S25 Ultra in San Jose.",
                 "Signal Desk", "2025-01-22")
    writer = store.open_writer()
    ids = _add(writer, fresh, 7)
    writer._flush()  # the rows are in Milvus now, but not committed
    assert _milvus_count(store, manifest.generation) == 5
    assert not set(ids) & {c for c, _ in reader.dense_search(_vec(7)[None, :], 10)[0]}
    assert not reader.keyword_search(keyword_terms("Samsung Galaxy"), 10) and not reader.hits(ids)
    writer.abort()
    assert _milvus_count(store, manifest.generation) == 4 and store.reader().manifest.version == 1

    writer = store.open_writer()
    _add(writer, fresh, 7)
    writer.commit()
    assert {c for c, _ in reader.dense_search(_vec(7)[None, :], 1)[0]} == set(ids)
    assert reader.hits(ids)[ids[0]].doc_id == "fresh"


@pytest.mark.slow
def test_generations_switch_and_old_ones_are_dropped(store: MilvusStore) -> None:
    first = _build(store)
    second = _build(store, DOCS[:2])
    assert store.current_generation() == second.generation and store.generations() == [first.generation,
                                                                                       second.generation]
    assert store.reader().manifest.documents == 2
    third = _build(store, DOCS[:1])
    assert store.remove_stale_generations() == [first.generation]
    assert not store.client.has_collection(first.generation)
    assert store.generations() == [second.generation, third.generation]
    assert not store.db.query("SELECT 1 FROM store_documents WHERE generation = ?", (first.generation,))
    # A passage keeps its id in every generation and every process.
    assert store.reader().dense_search(_vec(0)[None, :], 1)[0][0][0] == chunk_id_for("leica", _chunks(DOCS[0])[0])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from newsbot.index.store.milvus.collection import chunk_id_for;"
            "from newsbot.index.chunking import Chunk; c = Chunk('d', 3, 0, 4, 'text', 'head\\ntext', 3);"
            "print(chunk_id_for('d', c))")
    from newsbot.index.chunking import Chunk

    other = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, check=True)
    assert int(other.stdout) == chunk_id_for("d", Chunk("d", 3, 0, 4, "text", "head\ntext", 3))


@pytest.mark.slow
@pytest.mark.postgres
def test_article_rows_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The same store with its article rows in PostgreSQL."""
    store = MilvusStore(str(tmp_path / "milvus.db"), database=postgres_url, prefix="pg")
    try:
        _build(store)
        writer = store.open_writer()
        assert writer.find_duplicate(DOCS[0].with_(id="copy")) == "leica"
        writer.remove("rtx")
        writer.commit()
        reader = store.reader()
        assert reader.manifest.documents == 3 and [d.id for d in reader.latest(2)] == ["tsmc", "leica"]
        assert not reader.keyword_search(keyword_terms("Nvidia Blackwell"), 10)
        assert [d for d, _ in reader.source_counts()] == sorted(d for d, _ in reader.source_counts())
        assert [d.id for d in store.fetched_documents()] == ["leica"]  # `LIKE 'https://%'` on PostgreSQL
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------- the corpus


@pytest.fixture(scope="module")
def corpus_pair(corpus_index: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The bundled corpus in both stores: the embedded one (built by conftest) and Milvus Lite, with the
    same passages and the same vectors."""
    faiss_reader = open_current(__import__("newsbot.index.store.embedded.layout", fromlist=["Layout"]).Layout(corpus_index))
    root = tmp_path_factory.mktemp("milvus-corpus")
    store = MilvusStore(str(root / "milvus.db"), database=root / "store.sqlite", prefix="corpus")
    m = faiss_reader.manifest
    writer = store.create_generation(Manifest(generation=store.new_generation_name(), model=m.model, dim=m.dim,
                                              chunk_tokens=m.chunk_tokens, chunk_overlap=m.chunk_overlap))
    conn = faiss_reader.conn()
    for doc in faiss_reader.documents():
        rows = conn.execute("SELECT id FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc.id,)).fetchall()
        chunks = chunk_document(doc, m.chunk_tokens, m.chunk_overlap)
        assert len(chunks) == len(rows)
        writer.add(doc, chunks, faiss_reader.vectors([r[0] for r in rows]))
    store.set_current(writer.commit().generation)
    yield faiss_reader, store.reader(expect_model=m.model)
    store.close()


def _key(reader, cid: int) -> tuple[str, int]:  # noqa: ANN001
    hit = reader.hits([cid])[cid]
    return hit.doc_id, hit.start


QUESTIONS = [
    "Why is Xiaomi dropping Leica?",
    "When does TSMC start 2nm volume production?",
    "How many cars did BYD sell in 2024 compared with Tesla?",
    "What did Nvidia announce at CES 2025?",
    "How much money is going into Stargate?",
    "Why did Nvidia shares fall after DeepSeek R1?",
]


@pytest.mark.slow
def test_corpus_searches_agree_with_the_embedded_store(corpus_pair, engine) -> None:  # noqa: ANN001
    """Dense retrieval is exact in both (same order); bm25 rankings largely agree; and the shared hybrid
    search over either store puts the same article first."""
    from newsbot.index.retrieval.search import search

    faiss_reader, milvus_reader = corpus_pair
    assert milvus_reader.manifest.chunks == faiss_reader.manifest.chunks
    assert milvus_reader.sources() == faiss_reader.sources()
    vectors = engine.embedder.encode(QUESTIONS)
    f_dense = faiss_reader.dense_search(vectors, 10)
    m_dense = milvus_reader.dense_search(vectors, 10)
    overlaps = []
    for q, fd, md in zip(QUESTIONS, f_dense, m_dense, strict=True):
        assert [_key(faiss_reader, c) for c, _ in fd] == [_key(milvus_reader, c) for c, _ in md], q
        assert np.allclose([s for _, s in fd], [s for _, s in md], atol=1e-4)
        terms = keyword_terms(q)
        fk = [_key(faiss_reader, c) for c, _ in faiss_reader.keyword_search(terms, 10)]
        mk = [_key(milvus_reader, c) for c, _ in milvus_reader.keyword_search(terms, 10)]
        assert fk[0][0] == mk[0][0] or fk[0] in mk[:3], (q, fk[:3], mk[:3])
        overlaps.append(len(set(fk) & set(mk)) / max(1, len(fk)))
    assert sum(overlaps) / len(overlaps) >= 0.8, overlaps
    for q in QUESTIONS:
        f_hits = search(faiss_reader, engine.embedder, q)
        m_hits = search(milvus_reader, engine.embedder, q)
        assert f_hits[0].doc_id == m_hits[0].doc_id, (q, [h.doc_id for h in f_hits[:3]], [h.doc_id for h in m_hits[:3]])
        assert m_hits[0].dense_score == pytest.approx(f_hits[0].dense_score, abs=1e-4)
    weibo = search(milvus_reader, engine.embedder, "camera partnership", Filters(("weibo",)))
    assert weibo and {h.source for h in weibo} == {"Weibo"}
    for word in ("leica", "partnership", "nvidia", "shares", "volume", "the", "2024", "zzzunknown"):
        assert milvus_reader.passage_frequency(word) == faiss_reader.passage_frequency(word), word


# ---------------------------------------------------------------------------------------------- processes


READER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from newsbot.index.store.milvus.store import MilvusStore
from newsbot.index.text import keyword_terms
store = MilvusStore(sys.argv[2], database=sys.argv[3], prefix="shared")
reader = store.reader()
print("versions", reader.manifest.version, flush=True)
sys.stdin.readline()  # the other process has added an article
reader.refresh()
hits = reader.hits([c for c, _ in reader.keyword_search(keyword_terms("Samsung Galaxy"), 5)])
print("found", sorted({h.doc_id for h in hits.values()}), reader.manifest.version, flush=True)
store.close()
"""


@pytest.mark.slow
def test_two_processes_share_one_milvus(tmp_path: Path) -> None:
    """Milvus Lite's gRPC server as the shared Milvus: an article added by this process is found by
    another process (Milvus Lite's file mode allows one process per file, so replicas need a server)."""
    with milvus_lite_server(tmp_path / "lite") as uri:
        database = str(tmp_path / "store.sqlite")
        store = MilvusStore(uri, database=database, prefix="shared")
        _build(store)
        reader_proc = subprocess.Popen(
            [sys.executable, "-c", READER, str(REPO), uri, database], text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
        )
        try:
            assert reader_proc.stdout is not None and reader_proc.stdin is not None
            assert reader_proc.stdout.readline().split() == ["versions", "1"]
            writer = store.open_writer()
            _add(writer, _doc("s25", "Samsung Galaxy S25 launch", "Samsung launched the Galaxy S25.",
                              "Signal Desk", "2025-01-22"), 7)
            writer.commit()
            reader_proc.stdin.write("go\n")
            reader_proc.stdin.flush()
            out, err = reader_proc.communicate(timeout=60)
            assert reader_proc.returncode == 0, err
            assert out.strip() == "found ['s25'] 2"
            store.close()
        finally:
            if reader_proc.poll() is None:
                reader_proc.kill()
                reader_proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.postgres
def test_both_backends_offer_the_same_interface(store: MilvusStore, corpus_index: Path, tmp_path: Path,
                                                 postgres_url: str) -> None:
    """Readers and writers of both stores satisfy `index.store.base`'s protocols; `open_backend` picks one;
    the build lock tells a second builder to wait, on SQLite and PostgreSQL."""
    from newsbot.index.store.backends import open_backend
    from newsbot.index.store.base import StoreReader, StoreWriter
    from newsbot.index.store.embedded.backend import EmbeddedBackend
    from tests.helpers import make_settings

    _build(store)
    embedded = EmbeddedBackend(corpus_index)
    assert isinstance(store.reader(), StoreReader) and isinstance(embedded.reader(), StoreReader)
    writer = store.open_writer()
    assert isinstance(writer, StoreWriter)
    writer.abort()
    assert isinstance(open_backend(make_settings(corpus_index)), EmbeddedBackend)
    settings = make_settings(tmp_path / "idx", store="milvus", milvus_uri=str(tmp_path / "other.db"))
    milvus = open_backend(settings)
    assert isinstance(milvus, MilvusStore) and milvus.current_generation() is None
    milvus.close()
    with pytest.raises(ValueError):
        open_backend(make_settings(tmp_path, store="cassandra"))
    pg_store = MilvusStore(str(tmp_path / "pg.db"), database=postgres_url, prefix="locks")
    try:
        for backend in (store, pg_store):
            waited: list[bool] = []
            with backend.write_lock():
                code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from newsbot.index.store.milvus.store import MilvusStore;"
                        "from newsbot.index.store.sql import Database; s = MilvusStore.__new__(MilvusStore);"
                        "s.prefix, s.lock_dir, s.db = sys.argv[3], None, Database(sys.argv[2]);"
                        "ctx = s.write_lock(lambda: print('waiting', flush=True) or os._exit(0));"
                        "ctx.__enter__(); print('got it')")
                target = str(backend.db.target)
                out = subprocess.run([sys.executable, "-c", code, str(REPO), target, backend.prefix],
                                     capture_output=True, text=True, timeout=60)
                waited.append("waiting" in out.stdout and "got it" not in out.stdout)
            assert waited == [True], out.stdout + out.stderr
    finally:
        pg_store.close()
