"""Writing a generation of the embedded store: a full build into a new one, or an update in place."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document, parse_date
from newsbot.index.faults import checkpoint
from newsbot.index.ingest.dedup import minhash
from newsbot.index.store.base import IndexCorrupt, Manifest, now_iso
from newsbot.index.store.catalog import Catalog, CatalogWrites, head_text
from newsbot.index.store.embedded import vector_index
from newsbot.index.store.embedded.layout import write_manifest_file
from newsbot.index.store.embedded.snapshot import read_faiss, read_pending, read_stale, write_faiss
from newsbot.index.store.embedded.sqlite import FRESHNESS_SCHEMA, SCHEMA, ConnectionRows, connect

COMPACT_RATIO = 0.1  # rewrite the FAISS snapshot once pending + stale vectors reach this share of the index


class GenerationWriter(CatalogWrites):
    """Adds and removes articles in one generation; `commit` makes the change visible atomically.

    A new generation (full build) collects vectors in memory and writes one FAISS file. An existing one
    (update) puts new vectors in `pending_vectors`, in the same transaction as everything else, and
    rewrites the FAISS snapshot only when `compact_ratio` of the index is pending or stale. Every snapshot
    written is exact below `exact_max` passages and approximate (IVF) from there on (`vector_index.py`).
    """

    def __init__(self, gen_dir: Path, manifest: Manifest, *, new: bool, compact_ratio: float = COMPACT_RATIO,
                 exact_max: int = vector_index.EXACT_MAX) -> None:
        self.dir = gen_dir
        self.manifest = manifest
        self.new = new
        self.compact_ratio = compact_ratio
        self.exact_max = exact_max
        gen_dir.mkdir(parents=True, exist_ok=True)
        self.conn = connect(gen_dir / "index.sqlite", create=True)
        if new:
            self.conn.executescript(SCHEMA)
        self.conn.executescript(FRESHNESS_SCHEMA)
        self.conn.execute("BEGIN IMMEDIATE")
        self.catalog = Catalog(ConnectionRows(lambda: self.conn))
        self._pending_remove: list[int] = []
        self._pending_add: list[tuple[np.ndarray, np.ndarray]] = []
        self._next_id = self._first_free_id()
        self.compacted = False  # whether commit() rewrote the FAISS snapshot
        self.changed = new  # whether commit() has anything to write
        if not new:
            self._backfill_signatures()

    def _first_free_id(self) -> int:
        """The next chunk id: above every id ever used (legacy generations: above the largest present)."""
        top = int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0])
        if self.manifest.next_chunk_id <= 0 and not self.new:  # written before ids were tracked
            self.manifest.vectors_upto = top + 1  # every present chunk's vector is in the snapshot
        return max(self.manifest.next_chunk_id, top + 1)

    def _backfill_signatures(self) -> None:
        """Give articles stored before near-duplicate keys existed their signature and keys."""
        rows = self.conn.execute(
            "SELECT id, body FROM documents WHERE id NOT IN (SELECT doc_id FROM dedup_signatures)"
        ).fetchall()
        for doc_id, body in rows:
            self.catalog.store_signature(doc_id, minhash(body))

    def remove(self, doc_id: str) -> bool:
        rows = self.conn.execute(
            "SELECT c.id, c.text, d.title, d.source, d.published_at, d.tags FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.doc_id = ?",
            (doc_id,),
        ).fetchall()
        for chunk_id, text, title, source, published_at, tags in rows:
            doc = Document(
                id=doc_id, title=title, body="", source=source, published_at=parse_date(published_at),
                tags=tuple(json.loads(tags)),
            )
            self.conn.execute(
                "INSERT INTO chunks_fts(chunks_fts, rowid, head, body) VALUES('delete', ?, ?, ?)",
                (chunk_id, head_text(doc), text),
            )
            self._pending_remove.append(chunk_id)
            if not self.new and chunk_id < self.manifest.vectors_upto:
                # its vector stays in the snapshot until the next compaction; readers skip it
                self.conn.execute("INSERT OR IGNORE INTO stale_vectors (chunk_id) VALUES (?)", (chunk_id,))
        self.conn.execute("DELETE FROM pending_vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
                          (doc_id,))
        return self._remove_article(doc_id)

    def add(
        self, doc: Document, chunks: Sequence[Chunk], vectors: np.ndarray, signature: np.ndarray | None = None
    ) -> list[int]:
        """Store one article (replacing any article with the same id), its passages' vectors and its
        near-duplicate signature (`index.ingest.dedup.minhash(doc.body)`, computed when not given)."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors for {doc.id!r}")
        self.remove(doc.id)
        self.catalog.insert(doc)
        head = head_text(doc)
        ids = []
        for chunk in chunks:
            chunk_id = self._next_id
            self._next_id += 1
            self.conn.execute(
                "INSERT INTO chunks (id, doc_id, ordinal, start, end, n_tokens, passage_hash, text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (chunk_id, doc.id, chunk.ordinal, chunk.start, chunk.end, chunk.n_tokens, chunk.passage_hash,
                 chunk.text),
            )
            self.conn.execute(
                "INSERT INTO chunks_fts(rowid, head, body) VALUES (?, ?, ?)", (chunk_id, head, chunk.text)
            )
            ids.append(chunk_id)
        self.changed = True
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if ids and self.new:
            self._pending_add.append((np.asarray(ids, dtype=np.int64), vectors))
        elif ids:
            self.conn.executemany(
                "INSERT INTO pending_vectors (chunk_id, vec) VALUES (?, ?)",
                [(cid, vec.tobytes()) for cid, vec in zip(ids, vectors, strict=True)],
            )
        self.catalog.store_signature(doc.id, minhash(doc.body) if signature is None else signature)
        return ids

    def commit(self) -> Manifest:
        """Make every change visible at once: write a FAISS file if needed, then commit SQLite."""
        m = self.manifest
        m.version += 1
        m.documents = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        m.chunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        m.next_chunk_id = self._next_id
        m.updated_at = now_iso()
        m.created_at = m.created_at or m.updated_at
        if self.new:
            self._write_snapshot(self._build_new_snapshot())
        else:
            m.stale = self.conn.execute("SELECT count(*) FROM stale_vectors").fetchone()[0]
            m.pending = self.conn.execute("SELECT count(*) FROM pending_vectors").fetchone()[0]
            if m.pending + m.stale > 0 and m.pending + m.stale >= self.compact_ratio * m.chunks:
                self._write_snapshot(self._compacted_snapshot())
            else:
                self._check_pending()
        checkpoint("before-commit")  # any new FAISS file is on disk, SQLite not yet committed
        self.conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)", (m.to_json(),)
        )
        self.conn.execute("COMMIT")  # the moment the new version becomes visible
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        write_manifest_file(self.dir, m)
        self._remove_old_vector_files(m.faiss_file)
        self.conn.close()
        return m

    def _build_new_snapshot(self) -> faiss.Index:
        """A full build's FAISS index, its type chosen by the number of passages."""
        dim = self.manifest.dim
        ids = np.concatenate([i for i, _ in self._pending_add]) if self._pending_add else np.zeros(0, np.int64)
        vectors = np.concatenate([v for _, v in self._pending_add]) if self._pending_add else np.zeros((0, dim))
        self._pending_add.clear()
        if self._pending_remove:
            keep = ~np.isin(ids, np.asarray(self._pending_remove, dtype=np.int64))
            ids, vectors = ids[keep], vectors[keep]
        return vector_index.build(ids, vectors, dim, self.exact_max)

    def _compacted_snapshot(self) -> faiss.Index:
        """The current snapshot without stale vectors and with the pending ones; empties pending_vectors.
        Keeps the snapshot's type unless its size calls for another (`vector_index.compact`)."""
        index = read_faiss(self.dir / self.manifest.faiss_file)
        stale = read_stale(self.conn)
        ids, vectors = read_pending(self.conn, self.manifest.dim)
        index = vector_index.compact(index, stale, ids, vectors, self.manifest.dim, self.exact_max)
        self.conn.execute("DELETE FROM pending_vectors")
        self.conn.execute("DELETE FROM stale_vectors")
        return index

    def _write_snapshot(self, index: faiss.Index) -> None:
        m = self.manifest
        if index.ntotal != m.chunks:
            self.conn.execute("ROLLBACK")
            raise IndexCorrupt(f"internal error: {m.chunks} passages but {index.ntotal} vectors; nothing changed")
        m.faiss_file = f"vectors-{m.version:06d}.faiss"
        write_faiss(index, self.dir / m.faiss_file)
        m.index_type = vector_index.describe(index)
        m.vectors_upto, m.pending, m.stale = m.next_chunk_id, 0, 0
        self.compacted = not self.new

    def _check_pending(self) -> None:
        """Every chunk added since the snapshot must have a pending vector."""
        missing = self.conn.execute(
            "SELECT count(*) FROM chunks c WHERE c.id >= ? AND NOT EXISTS "
            "(SELECT 1 FROM pending_vectors p WHERE p.chunk_id = c.id)",
            (self.manifest.vectors_upto,),
        ).fetchone()[0]
        if missing:
            self.conn.execute("ROLLBACK")
            raise IndexCorrupt(f"internal error: {missing} passages without vectors; nothing changed")

    def abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")
        self.conn.close()

    def _remove_old_vector_files(self, current: str) -> None:
        """Keep the live snapshot and the one before it (a reader may still be opening it); delete the
        rest, including orphans of crashed commits and temporary files."""
        snapshots = sorted(p.name for p in self.dir.glob("vectors-*.faiss"))
        keep = {current, *[n for n in snapshots if n < current][-1:]}
        for path in self.dir.glob("vectors-*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
