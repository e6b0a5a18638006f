"""Incremental updates of the live index: add, replace, remove, duplicates, pending vectors and compaction.

Everything runs on real SQLite, FAISS and the real embedding model; articles are small Markdown files.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from newsbot.bot.engine import Engine
from newsbot.index.build import BuildOptions, update_index
from newsbot.index.embedding.factory import get_embedder
from newsbot.index.store.embedded.layout import Layout, current_manifest
from newsbot.index.store.embedded.reader import open_current
from tests.helpers import QUBIT, SHORT_STORY, make_settings, small_index, syndicate
from tests.http_fixtures import LocalServer


def long_body(last: str) -> str:
    """An article of several passages whose last paragraph is `last`."""
    paragraphs = [
        f"Paragraph {i}: the semiconductor industry's capital spending plans for the coming year were revised "
        f"as foundries weighed demand for accelerators against a slower market for phones and personal "
        f"computers, while equipment makers reported order books stretching into the following year. "
        f"Executives said packaging capacity, not wafers, limited shipments in quarter number {i}."
        for i in range(1, 9)
    ]
    return "\n\n".join([*paragraphs, last])


def chunk_ids(reader, doc_id: str) -> list[int]:  # noqa: ANN001
    return [r[0] for r in reader.conn().execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]


def test_add_then_search_finds_it(corpus_copy: Path, article_writer) -> None:
    engine = Engine(make_settings(corpus_copy))
    before = engine.stats()
    assert not [h for h in engine.search("Glimmerstone photonic processor") if h.doc_id == "zeta"]
    report = engine.add([article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)])
    assert report.outcomes == {"zeta": "new"} and report.added == 1 and not report.errors
    assert report.embedded == report.chunks - before.chunks  # only the new article's passages
    hits = engine.search("Glimmerstone photonic processor")
    assert hits[0].doc_id == "zeta" and hits[0].dense_score is not None and hits[0].keyword_score is not None
    assert engine.stats().documents == before.documents + 1
    again = engine.add([article_writer.folder / "zeta.md"])
    assert again.outcomes == {"zeta": "unchanged"} and again.embedded == 0


def test_changed_text_replaces_chunks_and_embeds_only_changed_ones(corpus_copy: Path, article_writer) -> None:
    engine = Engine(make_settings(corpus_copy))
    path = article_writer("capex.md", title="Chip capex revised", body=long_body("Closing note: Quorvex wafers."))
    first = engine.add([path])
    old_ids = chunk_ids(engine.reader(), "capex")
    assert first.embedded == len(old_ids) >= 3
    article_writer("capex.md", title="Chip capex revised", body=long_body("Closing note: Brindlewick wafers."))
    second = engine.add([path])
    assert second.outcomes == {"capex": "updated"} and second.updated == 1
    assert 1 <= second.embedded < len(old_ids), "unchanged passages must come from the vector cache"
    reader = engine.reader()
    new_ids = chunk_ids(reader, "capex")
    assert len(new_ids) == len(old_ids) and not set(new_ids) & set(old_ids)  # replaced, ids never reused
    assert reader.keyword_search(["quorvex"], 10) == []
    assert {reader.hits([cid])[cid].doc_id for cid, _ in reader.keyword_search(["brindlewick"], 10)} == {"capex"}


def test_removed_article_leaves_no_ghost_hits(corpus_copy: Path, article_writer) -> None:
    engine = Engine(make_settings(corpus_copy))
    engine.add([article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)])
    reader_before = engine.reader()
    removed_ids = chunk_ids(reader_before, "zeta")
    assert removed_ids
    report = engine.remove(["zeta", "no-such-article"])
    assert report.removed == 1 and [e.path for e in report.errors] == ["no-such-article"]
    for reader in (engine.reader(), reader_before):  # a fresh reader and one opened before the removal
        assert reader.keyword_search(["glimmerstone"], 50) == []
        qvec = engine.embedder.encode(["Glimmerstone photonic processor from Zeta Quantum"])
        dense_ids = {cid for cid, _ in reader.dense_search(qvec, 200)[0]}
        assert not reader.hits(list(dense_ids & set(removed_ids)))  # whatever FAISS says, SQLite has no row
    fresh = engine.reader()
    assert fresh is not reader_before and not set(removed_ids) & {cid for cid, _ in fresh.dense_search(qvec, 500)[0]}
    hits = engine.search("Glimmerstone photonic processor Zeta Quantum", limit=50)
    assert hits and all(h.doc_id != "zeta" for h in hits)
    assert engine.document("zeta") is None


def test_same_canonical_url_is_an_update(corpus_copy: Path, article_writer) -> None:
    engine = Engine(make_settings(corpus_copy))
    engine.add([article_writer("a.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT, extra="id: a",
                               url="https://www.qubit.example/zeta?utm_source=rss")])
    count = engine.stats().documents
    edited = QUBIT.replace("ninety minutes", "two hours")
    report = engine.add([article_writer("b.md", title="Zeta Quantum unveils Glimmerstone", body=edited, extra="id: b",
                                        url="https://qubit.example/zeta/")])
    assert report.outcomes == {"b": "updated"} and report.stored_as == {"b": "a"}
    assert engine.stats().documents == count
    doc, _ = engine.document("a")
    assert "two hours" in doc.body


def test_exact_copy_from_another_outlet_is_recorded_not_indexed(corpus_copy: Path, article_writer) -> None:
    engine = Engine(make_settings(corpus_copy))
    engine.add([article_writer("a.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT, source="Qubit Times")])
    count = engine.stats().documents
    report = engine.add([article_writer("b.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT,
                                        source="Photon Daily")])
    assert report.outcomes == {"b": "duplicate"} and report.stored_as == {"b": "a"} and report.embedded == 0
    assert engine.stats().documents == count
    assert engine.document("a")[0].also_reported_by == ("Photon Daily",)


def test_near_duplicate_rewrite_is_indexed_once_in_updates(corpus_copy: Path, article_writer) -> None:
    engine = Engine(make_settings(corpus_copy))
    engine.add([article_writer("acme.md", title="Acme Robotics raises $120M", body=SHORT_STORY, source="TechDaily")])
    count = engine.stats().documents
    report = engine.add([article_writer("acme-wire.md", title="Acme lands $120 million", body=syndicate(SHORT_STORY),
                                        source="Example Wire")])
    assert report.outcomes == {"acme-wire": "duplicate"} and report.stored_as == {"acme-wire": "acme"}
    assert "near-duplicate of acme" in report.duplicates[0]
    assert engine.stats().documents == count
    assert engine.document("acme")[0].also_reported_by == ("Example Wire",)
    assert engine.document("acme-wire") is None


def test_near_duplicates_are_merged_in_full_builds(article_writer, tmp_path: Path) -> None:
    article_writer("acme.md", title="Acme Robotics raises $120M", body=SHORT_STORY, source="TechDaily")
    article_writer("wire.md", title="Acme lands $120 million", body=syndicate(SHORT_STORY), source="Example Wire")
    article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT, source="Qubit Times")
    engine = Engine(make_settings(tmp_path / "idx"))
    report = engine.build([article_writer.folder])
    assert report.documents == 2 and len(report.duplicates) == 1
    assert engine.document("acme")[0].also_reported_by == ("Example Wire",)
    # The build stored the survivors' signatures: a later update still recognizes the rewrite.
    again = engine.add([article_writer.folder / "wire.md"])
    assert again.outcomes == {"wire": "duplicate"}


def test_updates_keep_vectors_pending_until_compaction(article_writer, tmp_path: Path) -> None:
    engine = small_index(article_writer, tmp_path, n=5)
    layout = Layout(tmp_path / "idx")
    gen_dir = layout.generation_dir(layout.current_generation())
    snapshot = current_manifest(layout).faiss_file
    settings_opts = engine.options()
    # A tiny share of the index: the vectors wait in SQLite, the FAISS file is not rewritten.
    article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)
    report = update_index(layout.root, _load(article_writer, "zeta.md"), engine.embedder, settings_opts,
                          compact_ratio=0.5)
    m = current_manifest(layout)
    assert not report.compacted and m.pending == report.chunks - 5 and m.faiss_file == snapshot
    reader = open_current(layout)
    assert reader.vector_count() == m.chunks
    assert engine.search("Glimmerstone photonic processor")[0].doc_id == "zeta"
    # Removing an article from the snapshot leaves its vector there (stale) until compaction; readers drop it.
    nvidia_chunk = chunk_ids(reader, "nvidia")[0]
    removed = update_index(layout.root, [], engine.embedder, settings_opts, remove_ids=["nvidia"], compact_ratio=0.5)
    m = current_manifest(layout)
    assert not removed.compacted and m.stale == 1 and m.faiss_file == snapshot
    after = open_current(layout, previous=reader)
    assert after.base is reader.base and after.base.ntotal == 5 and after.vector_count() == m.chunks == 5
    qvec = engine.embedder.encode(["Nvidia reported record quarterly revenue"])
    assert reader.dense_search(qvec, 1)[0][0][0] == nvidia_chunk  # the old version still has it
    assert nvidia_chunk not in {cid for cid, _ in after.dense_search(qvec, 10)[0]}  # the new one skips it
    assert not after.vectors([nvidia_chunk]).any() and after.vectors(chunk_ids(after, "zeta")).any()
    # Past the ratio, the next update folds everything into a new snapshot and clears pending_vectors.
    article_writer("more.md", title="Harbor cranes go electric", body=(
        "The port authority ordered forty battery-electric cranes for its container terminals, replacing "
        "diesel machines that date from the nineteen-nineties; deliveries start in March."))
    compacted = update_index(layout.root, _load(article_writer, "more.md"), engine.embedder, settings_opts,
                             compact_ratio=0.5)
    m = current_manifest(layout)
    assert compacted.compacted and m.pending == 0 and m.stale == 0 and m.faiss_file != snapshot
    conn = sqlite3.connect(gen_dir / "index.sqlite")
    assert conn.execute("SELECT count(*) FROM pending_vectors").fetchone()[0] == 0
    assert len(list(gen_dir.glob("vectors-*"))) <= 2
    reader = open_current(layout)
    assert reader.vector_count() == m.chunks and "nvidia" not in {h.doc_id for h in engine.search("Nvidia revenue")}


def _load(writer, name: str):  # noqa: ANN001, ANN202
    from newsbot.index.ingest.loaders import load_paths

    return load_paths([writer.folder / name]).documents


def test_generation_from_before_this_change_can_be_updated(article_writer, tmp_path: Path) -> None:
    """Indexes built before pending vectors and near-duplicate keys existed are upgraded on first update."""
    article_writer("acme.md", title="Acme Robotics raises $120M", body=SHORT_STORY, source="TechDaily")
    engine = small_index(article_writer, tmp_path, n=2)
    layout = Layout(tmp_path / "idx")
    db = layout.generation_dir(layout.current_generation()) / "index.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    for table in ("pending_vectors", "dedup_keys", "dedup_signatures"):
        conn.execute(f"DROP TABLE {table}")
    manifest = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    for key in ("next_chunk_id", "vectors_upto", "pending", "stale"):
        manifest.pop(key)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (json.dumps(manifest),))
    conn.close()
    engine = Engine(make_settings(tmp_path / "idx"))
    assert engine.search("Acme Robotics funding")[0].doc_id == "acme"
    report = engine.add([article_writer("wire.md", title="Acme lands $120M", body=syndicate(SHORT_STORY),
                                        source="Example Wire")])
    assert report.outcomes == {"wire": "duplicate"}  # found through the backfilled keys
    report = engine.add([article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)])
    assert report.outcomes == {"zeta": "new"}
    assert engine.search("Glimmerstone photonic processor")[0].doc_id == "zeta"


def test_first_add_creates_the_index(article_writer, tmp_path: Path) -> None:
    engine = Engine(make_settings(tmp_path / "fresh"))
    assert not engine.has_index()
    report = engine.add([article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)])
    assert report.added == 1 and engine.stats().documents == 1
    assert engine.search("Glimmerstone")[0].doc_id == "zeta"


def test_rebuild_keeps_articles_fetched_from_the_web(article_writer, tmp_path: Path) -> None:
    engine = small_index(article_writer, tmp_path)
    engine = Engine(make_settings(tmp_path / "idx", allow_private_urls=True))
    with LocalServer() as srv:
        srv.add("/zeta", f"<html><head><title>Zeta Quantum unveils Glimmerstone</title></head><body><article>"
                         f"<h1>Zeta Quantum unveils Glimmerstone</h1><p>{QUBIT}</p></article></body></html>")
        added = engine.add([srv.url("/zeta")])
    (web_id,) = added.stored_as.values()
    rebuilt = engine.build([article_writer.folder])
    assert rebuilt.carried == 1 and rebuilt.embedded == 0 and engine.document(web_id) is not None
    fresh_only = engine.build([article_writer.folder], keep_fetched=False)
    assert fresh_only.carried == 0 and engine.document(web_id) is None


def test_engine_notices_an_update_committed_elsewhere(corpus_copy: Path, article_writer) -> None:
    searcher = Engine(make_settings(corpus_copy))
    writer = Engine(make_settings(corpus_copy))
    before = searcher.reader()
    assert all(h.doc_id != "zeta" for h in searcher.search("Glimmerstone photonic processor"))
    writer.add([article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)])
    deadline = time.monotonic() + 5
    while searcher.reader() is before:  # the engine re-checks the committed version twice a second
        assert time.monotonic() < deadline, "the searching engine never saw the update"
        time.sleep(0.1)
    assert searcher.search("Glimmerstone photonic processor")[0].doc_id == "zeta"
    after = searcher.reader()
    assert after is not before and after.manifest.version == before.manifest.version + 1
    assert after.base is before.base  # same snapshot: reopening read only the pending vectors
    hit = searcher.search("Glimmerstone photonic processor")[0]
    assert hit.dense_score is not None and hit.dense_score > 0.3  # its vector is loaded, not only keywords


def test_update_refuses_another_model(corpus_copy: Path, article_writer) -> None:
    from newsbot.index.store.base import IndexMismatch

    version = current_manifest(Layout(corpus_copy)).version
    zeta = _load(article_writer, article_writer("zeta.md", title="Zeta", body=QUBIT).name)
    with pytest.raises(IndexMismatch, match="newsbot build"):
        update_index(corpus_copy, zeta, get_embedder("all-MiniLM-L6-v2"), BuildOptions("another-model"))
    assert current_manifest(Layout(corpus_copy)).version == version
