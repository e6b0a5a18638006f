"""The FAISS index type chosen from the number of passages (index.vector_index), on real FAISS and SQLite.

A small `exact_max` forces the approximate (IVF, 8-bit) index onto a small index: it must still find
every passage by its own vector, keep its type through updates and compactions, and honour filters
exactly as the SQL filter does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from newsbot.bot.engine import Engine
from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document
from newsbot.index.hits import Filters
from newsbot.index.store.base import Manifest, now_iso
from newsbot.index.store.embedded import vector_index
from newsbot.index.store.embedded.backend import EmbeddedBackend
from newsbot.index.store.embedded.layout import Layout
from tests.helpers import make_settings

DIM = 32
OUTLETS = ("Alpha Wire", "Beta Times", "Gamma Post")


def article(i: int, rng: np.random.Generator, parts: int = 2) -> tuple[Document, list[Chunk], np.ndarray]:
    body = " ".join(f"word{i}x{j}" for j in range(parts))
    doc = Document(id=f"d{i}", title=f"Story {i}", body=body, source=OUTLETS[i % 3],
                   published_at=datetime(2025, 1, 1 + i % 28, tzinfo=UTC))
    words = body.split()
    chunks, pos = [], 0
    for j, w in enumerate(words):
        start = body.index(w, pos)
        pos = start + len(w)
        chunks.append(Chunk(doc.id, j, start, pos, w, f"{doc.title}\n{w}", 3))
    vectors = rng.standard_normal((len(chunks), DIM)).astype(np.float32)
    return doc, chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build(root: Path, n_docs: int, exact_max: int, compact_ratio: float = 0.1) -> tuple[EmbeddedBackend, dict]:
    """A generation of n_docs two-passage articles with random unit vectors; {doc id: vectors}."""
    backend = EmbeddedBackend(root, compact_ratio=compact_ratio, exact_max=exact_max)
    rng = np.random.default_rng(7)
    vectors = {}
    with backend.write_lock():
        name = Layout(root).new_generation_name()
        writer = backend.create_generation(Manifest(generation=name, model="test", dim=DIM, chunk_tokens=64,
                                                    chunk_overlap=0, created_at=now_iso()))
        for i in range(n_docs):
            doc, chunks, vecs = article(i, rng)
            writer.add(doc, chunks, vecs)
            vectors[doc.id] = vecs
        writer.commit()
        backend.set_current(name)
    return backend, vectors


def finds_itself(reader, vecs: np.ndarray) -> bool:  # noqa: ANN001
    """Each vector's best match is a passage whose stored vector is that vector (cosine ≈ 1)."""
    return all(found and found[0][1] > 0.97 for found in reader.dense_search(vecs, 5))


def test_kind_follows_size() -> None:
    assert vector_index.kind_for(49_999) == "flat" and vector_index.kind_for(50_000) == "ivf"
    assert vector_index.kind_for(10**7, exact_max=0) == "flat"
    assert vector_index.nlist_for(1_000_000) == 2048 and vector_index.nlist_for(100_000) == 512


def test_small_threshold_gives_ivf_that_still_finds_exact_matches(tmp_path: Path) -> None:
    backend, vectors = build(tmp_path / "ivf", 300, exact_max=200)
    reader = backend.reader()
    assert reader.manifest.index_type.startswith("ivf") and reader.manifest.index_type.endswith("-sq8")
    assert vector_index.kind_of(reader.base) == "ivf" and reader.base.ntotal == 600
    all_vecs = np.concatenate(list(vectors.values()))
    assert finds_itself(reader, all_vecs)
    # re-scoring reads stored vectors back by chunk id (8-bit codes: close, not equal)
    ids = [r[0] for r in reader.conn().execute("SELECT id FROM chunks WHERE doc_id = 'd5' ORDER BY ordinal")]
    assert np.allclose(reader.vectors(ids), vectors["d5"], atol=0.05)
    assert vector_index.bytes_per_vector(reader.base) < 1024

    exact_backend, _ = build(tmp_path / "flat", 300, exact_max=0)
    exact = exact_backend.reader()
    assert exact.manifest.index_type == "flat"
    # a filtered search scans more lists: every allowed passage is found as an exact search finds it
    flt = Filters(sources=("Beta Times",), since=datetime(2025, 1, 5, tzinfo=UTC))
    queries = all_vecs[:20]
    for a, b in zip(reader.dense_search(queries, 10, flt), exact.dense_search(queries, 10, flt), strict=True):
        assert len({cid for cid, _ in a} & {cid for cid, _ in b}) >= 9


def test_updates_and_compactions_keep_the_type(tmp_path: Path) -> None:
    backend, vectors = build(tmp_path / "idx", 300, exact_max=200, compact_ratio=0.0)  # every update compacts
    rng = np.random.default_rng(99)
    before = backend.reader().manifest.index_type
    with backend.write_lock():
        writer = backend.open_writer()
        doc, chunks, new_vecs = article(1000, rng)
        writer.add(doc, chunks, new_vecs)
        assert writer.remove("d3")
        writer.commit()
        assert writer.compacted
    reader = backend.reader()
    assert reader.manifest.index_type == before and vector_index.kind_of(reader.base) == "ivf"
    assert reader.manifest.pending == 0 and reader.base.ntotal == 600
    assert finds_itself(reader, new_vecs)
    removed = set(reader.hits([cid for cid, _ in reader.dense_search(vectors["d3"], 3)[0]]))
    assert not {h for h in removed if reader.hits([h])[h].doc_id == "d3"}

    # without compaction the new passages wait in pending vectors, searched exactly, next to the IVF snapshot
    backend.compact_ratio = 0.5
    with backend.write_lock():
        writer = backend.open_writer()
        doc, chunks, more = article(1001, rng)
        writer.add(doc, chunks, more)
        writer.commit()
        assert not writer.compacted
    reader = backend.reader(previous=reader)
    assert reader.manifest.pending == 2 and vector_index.kind_of(reader.base) == "ivf"
    assert finds_itself(reader, more)
    hits = reader.dense_search(more, 1, Filters(sources=(OUTLETS[1001 % 3],)))
    assert all(found and found[0][1] > 0.97 for found in hits)


def test_growing_past_the_threshold_switches_to_ivf_at_compaction(tmp_path: Path) -> None:
    backend, _ = build(tmp_path / "idx", 90, exact_max=200, compact_ratio=0.0)
    assert backend.reader().manifest.index_type == "flat"
    rng = np.random.default_rng(5)
    added = []
    with backend.write_lock():
        writer = backend.open_writer()
        for i in range(100, 160):
            doc, chunks, vecs = article(i, rng)
            writer.add(doc, chunks, vecs)
            added.append(vecs)
        writer.commit()
    reader = backend.reader()
    assert reader.manifest.chunks == 300 and vector_index.kind_of(reader.base) == "ivf"
    assert finds_itself(reader, np.concatenate(added))


def test_filter_columns_match_sql(tmp_path: Path) -> None:
    backend, _ = build(tmp_path / "idx", 60, exact_max=0, compact_ratio=0.5)
    with backend.write_lock():
        writer = backend.open_writer()
        writer.remove("d4")
        doc, chunks, vecs = article(500, np.random.default_rng(1))
        writer.add(doc, chunks, vecs)
        doc, chunks, vecs = article(501, np.random.default_rng(2))
        writer.add(doc.with_(published_at=None), chunks, vecs)  # undated: in no date range
        writer.commit()
    reader = backend.reader()
    jan = [datetime(2025, 1, d, tzinfo=UTC) for d in range(1, 32)]
    for flt in [Filters(sources=("alpha wire",)), Filters(sources=("Beta Times", "Nope")),
                Filters(since=jan[9], until=jan[19]), Filters(sources=("Nope",)), Filters(since=jan[20]),
                Filters(until=jan[3]), Filters(sources=("Gamma Post",), since=jan[4], until=jan[4]),
                Filters(sources=("alpha wire", "gamma post"), until=jan[26]), Filters(since=jan[20], until=jan[2]),
                Filters(sources=("Beta Times",), since=jan[0])]:
        mask, count = reader.allowed(flt)
        sql = reader.chunk_ids_matching(flt)
        assert count == len(sql) and np.array_equal(np.flatnonzero(mask), np.sort(sql)), flt
        assert reader.allowed(flt)[0] is mask  # kept for the next search with the same filter
    assert len(reader.chunk_ids_matching(Filters(since=jan[0]))) == reader.manifest.chunks - 2  # not the undated


@pytest.mark.slow
@pytest.mark.parametrize("exact_max", [40])
def test_engine_build_with_small_threshold(tmp_path: Path, exact_max: int) -> None:
    """The setting reaches the store: a full build of the bundled corpus with IVF answers like exact search."""
    ivf = Engine(make_settings(tmp_path / "ivf", vector_index_exact_max=exact_max))
    ivf.build()
    flat = Engine(make_settings(tmp_path / "flat", vector_index_exact_max=0))
    flat.build()
    assert ivf.reader().manifest.index_type.startswith("ivf") and flat.reader().manifest.index_type == "flat"
    question = "Which company reported record revenue from data center chips?"
    assert [h.doc_id for h in ivf.search(question)][:3] == [h.doc_id for h in flat.search(question)][:3]
