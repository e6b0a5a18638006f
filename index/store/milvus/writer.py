"""Writing a generation of the Milvus store: passages into Milvus (invisible until the commit), articles
and the bookkeeping into SQL, one transaction (see the package doc)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document
from newsbot.index.ingest.dedup import minhash
from newsbot.index.store.base import IndexMismatch, IndexProblem, Manifest, now_iso
from newsbot.index.store.catalog import Catalog, CatalogWrites, head_text, placeholders, source_key
from newsbot.index.store.milvus.collection import (
    BATCH,
    MISSING_DATE,
    TERM_COUNTS,
    analyze,
    as_dicts,
    chunk_id_for,
    clip,
    create_collection,
)
from newsbot.index.store.sql import Database

if TYPE_CHECKING:
    from newsbot.index.store.milvus.store import MilvusStore

log = logging.getLogger("newsbot.milvus")


class MilvusWriter(CatalogWrites):
    """Adds and removes articles in one generation; `commit` makes the change visible atomically.

    Holds an SQL write transaction (and so the store's write lock) from creation to commit/abort.
    """

    def __init__(self, store: MilvusStore, manifest: Manifest, *, new: bool) -> None:
        self.store = store
        self.manifest = manifest
        self.name = manifest.generation
        self.new = new
        self.client = store.client
        self.compacted = False  # for BuildReport; Milvus compacts on its own
        self.changed = new
        if new:
            manifest.extra = {**manifest.extra, "backend": "milvus", "collection": self.name, TERM_COUNTS: True}
            create_collection(self.client, self.name, manifest.dim, store.dense_index)
            store.db.execute(
                "INSERT INTO store_generations (name, prefix, manifest, live, created_at) VALUES (?, ?, ?, 0, ?)",
                (self.name, store.prefix, manifest.to_json(), now_iso()),
            )
        else:
            store.delete_garbage(self.name)
        self.db = Database(store.db.target)  # its own connection: the transaction spans the whole update
        self.db.begin(lock=f"newsbot-store:{store.prefix}")
        self.catalog = Catalog(self.db, prefix="store_", generation=self.name)
        self._buffer: list[dict[str, Any]] = []
        self._flushed: dict[int, str] = {}  # ids upserted into Milvus by this writer -> doc id
        self._garbage: set[int] = set()  # ids whose rows must go once the commit is durable
        self._count_terms = bool(manifest.extra.get(TERM_COUNTS))
        self._term_delta: dict[str, int] = {}  # stem -> change of its passage count, written at commit
        self._closed = False

    # -- changes (lookups: `CatalogWrites`)

    def remove(self, doc_id: str) -> bool:
        """Remove an article; its passages disappear from searches at commit."""
        ids = [int(r[0]) for r in self.db.query(
            "SELECT id FROM store_chunks WHERE generation = ? AND doc_id = ?", (self.name, doc_id)
        )]
        if self._count_terms and ids:
            self._count(self._search_texts(ids), -1)
        self._garbage.update(ids)
        self._garbage.update(cid for cid, owner in self._flushed.items() if owner == doc_id)
        self._buffer = [row for row in self._buffer if row["doc_id"] != doc_id]
        return self._remove_article(doc_id)

    def add(
        self, doc: Document, chunks: Sequence[Chunk], vectors: np.ndarray, signature: np.ndarray | None = None
    ) -> list[int]:
        """Store one article (replacing any with the same id), its passages and vectors and its MinHash."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors for {doc.id!r}")
        if len(vectors) and np.asarray(vectors).shape[1] != self.manifest.dim:
            raise IndexMismatch(f"{np.asarray(vectors).shape[1]}-d vectors for a {self.manifest.dim}-d index")
        self.remove(doc.id)
        published_ts = doc.published_at.timestamp() if doc.published_at else None
        published = doc.published_at.isoformat() if doc.published_at else None
        self.catalog.insert(doc)
        head = head_text(doc)
        ids = [chunk_id_for(doc.id, c) for c in chunks]
        if len(set(ids)) != len(ids):
            raise IndexProblem(f"chunk id collision inside article {doc.id!r}")
        self.db.executemany(
            "INSERT INTO store_chunks (generation, id, doc_id) VALUES (?, ?, ?)",
            [(self.name, cid, doc.id) for cid in ids],
        )
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        for cid, chunk, vec in zip(ids, chunks, vecs, strict=True):
            self._buffer.append({
                "id": cid, "doc_id": clip(doc.id, 1024), "ordinal": chunk.ordinal, "span_start": chunk.start,
                "span_end": chunk.end, "title": clip(doc.title, 4096), "source": clip(doc.source, 1024),
                "source_key": clip(source_key(doc.source), 1024), "url": clip(doc.url, 4096),
                "author": clip(doc.author, 1024), "published_at": published or "",
                "published_ts": published_ts if published_ts is not None else MISSING_DATE,
                "text": clip(chunk.text, 65535),
                "search_text": clip(" ".join(analyze(head + "\n" + chunk.text)), 65535),
                "dense": vec.tolist(),
            })
        self._garbage.difference_update(ids)  # an unchanged passage keeps its id and row
        if self._count_terms:
            self._count([row["search_text"] for row in self._buffer[-len(ids):]] if ids else [], +1)
        self.catalog.store_signature(doc.id, minhash(doc.body) if signature is None else signature)
        self.changed = True
        if len(self._buffer) >= BATCH:
            self._flush()
        return ids

    def _count(self, search_texts: Sequence[str], sign: int) -> None:
        """Add `sign` to the passage count of every stem of each passage's `search_text`."""
        delta = self._term_delta
        for text in search_texts:
            for term in set(text.split()):
                delta[term] = delta.get(term, 0) + sign

    def _search_texts(self, ids: Sequence[int]) -> list[str]:
        """The `search_text` of passages `ids` as last written: this writer's buffer, else Milvus."""
        buffered = {int(row["id"]): str(row["search_text"]) for row in self._buffer}
        texts = [buffered[cid] for cid in ids if cid in buffered]
        rest = [cid for cid in ids if cid not in buffered]
        for start in range(0, len(rest), 500):
            rows = as_dicts(self.client.get(self.name, ids=rest[start:start + 500], output_fields=["search_text"]))
            texts += [str(r["search_text"]) for r in rows]
        return texts

    def _write_term_counts(self) -> None:
        changed = sorted((t, d) for t, d in self._term_delta.items() if d)
        for start in range(0, len(changed), 5000):
            self.db.executemany(
                "INSERT INTO store_terms (generation, term, df) VALUES (?, ?, ?) ON CONFLICT (generation, term)"
                " DO UPDATE SET df = store_terms.df + excluded.df",
                [(self.name, t, d) for t, d in changed[start:start + 5000]],
            )
        if any(d < 0 for _, d in changed):
            self.db.execute("DELETE FROM store_terms WHERE generation = ? AND df <= 0", (self.name,))
        self._term_delta = {}

    def _flush(self) -> None:
        """Upsert buffered passages into Milvus (invisible to readers until the SQL commit)."""
        while self._buffer:
            batch, self._buffer = self._buffer[:BATCH], self._buffer[BATCH:]
            self.client.upsert(self.name, batch)
            for row in batch:
                self._flushed[int(row["id"])] = str(row["doc_id"])

    def commit(self) -> Manifest:
        """Write the remaining passages to Milvus, then commit SQL: the moment the update becomes visible."""
        try:
            self._flush()
            m = self.manifest
            m.version += 1
            m.documents = int(self.db.query("SELECT count(*) FROM store_documents WHERE generation = ?",
                                            (self.name,))[0][0])
            m.chunks = int(self.db.query("SELECT count(*) FROM store_chunks WHERE generation = ?",
                                         (self.name,))[0][0])
            m.updated_at = now_iso()
            m.created_at = m.created_at or m.updated_at
            self.db.executemany(
                "INSERT INTO store_garbage (generation, id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(self.name, cid) for cid in sorted(self._garbage)],
            )
            if self._count_terms:
                self._write_term_counts()
            self.db.execute("UPDATE store_generations SET manifest = ? WHERE name = ?", (m.to_json(), self.name))
            if self.store.lite:  # searches then use the sealed segment's cached indexes
                self.client.flush(self.name)
        except BaseException:
            self.abort()
            raise
        self.db.commit()  # the moment the new version becomes visible
        self._closed = True
        self.db.close()
        try:
            self.store.delete_garbage(self.name)
        except Exception as exc:  # retried by the next writer
            log.warning("could not delete %d replaced passages from Milvus yet: %s", len(self._garbage), exc)
        return self.manifest

    def abort(self) -> None:
        """Forget every change; passages already written to Milvus are deleted (a new generation is dropped)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.db.rollback()
        self.db.close()
        if self.new:
            with contextlib.suppress(Exception):
                self.store.drop_generation(self.name)
            return
        flushed = list(self._flushed)
        if flushed:
            live = set()
            for start in range(0, len(flushed), 500):
                part = flushed[start:start + 500]
                live.update(int(r[0]) for r in self.store.db.query(
                    f"SELECT id FROM store_chunks WHERE generation = ? AND id IN ({placeholders(len(part))})",
                    (self.name, *part),
                ))
            orphans = [cid for cid in flushed if cid not in live]
            with contextlib.suppress(Exception):
                for start in range(0, len(orphans), 1000):
                    self.client.delete(self.name, ids=orphans[start:start + 1000])
