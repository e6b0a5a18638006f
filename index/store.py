"""The embedded store: articles, passages and a bm25 keyword index in SQLite; passage vectors in FAISS.

Layout of an index folder (default `./.newsbot/`)::

    CURRENT                      name of the live generation (replaced atomically)
    generations/<name>/
        manifest.json            model, dimension, chunking settings, counts (mirrors the `meta` table)
        index.sqlite             documents, chunks, chunks_fts (FTS5, bm25), meta, pending_vectors,
                                 dedup_signatures + dedup_keys (MinHash near-duplicate lookup)
        vectors-<version>.faiss  snapshot of passage vectors, FAISS ids = chunk ids; exact below the
                                 `vector_index_exact_max` setting, IVF with 8-bit codes from there on
                                 (chosen by each full build and compaction: index/vector_index.py)
    cache/vectors.sqlite         vector cache keyed by (model, passage hash), shared by all generations
    write.lock                   held by whoever builds or updates (one writer at a time)

A full build writes a new generation and then replaces CURRENT, so a crash half-way leaves the old
generation live. An update changes the live generation in place, in one SQLite transaction: articles,
passages, keyword rows, near-duplicate keys and the new passages' vectors (`pending_vectors`) commit
together or not at all, so a crash (even SIGKILL) before the commit leaves the previous version intact.
The FAISS file is a snapshot: a reader searches it, skipping the vectors of passages removed since
(`stale_vectors`), plus a small in-memory index of the pending vectors; when an update commits, a reader
of the same snapshot reopens by reading only those two tables and keeps sharing the snapshot it has
in memory. An update rewrites the snapshot only when pending plus stale vectors reach `COMPACT_RATIO`
of the index ("compaction"): it writes the next FAISS file first,
then commits the transaction that names it and empties `pending_vectors`; a crash in between leaves an
orphan file that the next commit removes. So adding an article to a large index costs a few SQLite rows,
not a rewrite of every vector. Chunk ids are never reused: an id names one passage in every file.
Readers resolve every hit through SQLite, so a passage removed by an update is never returned, even by a
reader whose FAISS copy is older.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import os
import re
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from newsbot.index import vector_index
from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document, canonical_url, parse_date
from newsbot.index.faults import checkpoint
from newsbot.index.hits import Filters, Hit
from newsbot.index.ingest.dedup import jaccard_estimate, lsh_keys, minhash
from newsbot.index.keyword_scores import TERM_CACHE_POSTINGS, Postings, TermScores
from newsbot.index.text import fts_query

FORMAT_VERSION = 1
REBUILD_HINT = "Rebuild it with `newsbot build` (add --index-dir DIR if it is not the default)."
MASKS_KEPT = 16  # filter masks a reader keeps (1 byte per passage each)
DF_SAMPLE_FROM, DF_SAMPLE_SHARE, DF_SAMPLE_MIN = 50_000, 16, 256  # see GenerationReader.passage_frequency
COMPACT_RATIO = 0.1  # rewrite the FAISS snapshot once pending + stale vectors reach this share of the index


class IndexProblem(RuntimeError):
    """The index cannot be used as it is; the message says why and how to fix it."""


class IndexMissing(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


@dataclass
class Manifest:
    generation: str
    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    documents: int = 0
    chunks: int = 0
    version: int = 0  # bumped by every committed update
    faiss_file: str = ""
    index_type: str = ""  # the snapshot's FAISS index (index.vector_index.describe), e.g. "flat", "ivf2048-sq8"
    next_chunk_id: int = 0  # ids below this are used or retired, never reused; 0 = written before it existed
    vectors_upto: int = 0  # the FAISS snapshot holds the vectors of chunks with id < this
    pending: int = 0  # vectors in `pending_vectors` (chunks added since the snapshot)
    stale: int = 0  # snapshot vectors whose chunks were removed since
    created_at: str = ""
    updated_at: str = ""
    format: int = FORMAT_VERSION
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    @property
    def generations(self) -> Path:
        return self.root / "generations"

    @property
    def cache_db(self) -> Path:
        return self.root / "cache" / "vectors.sqlite"

    @property
    def lock_file(self) -> Path:
        return self.root / "write.lock"

    def current_generation(self) -> str | None:
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def generation_dir(self, name: str) -> Path:
        return self.generations / name

    def set_current(self, name: str) -> None:
        """Atomically make generation `name` the live one."""
        tmp = self.current_file.with_suffix(".tmp")
        tmp.write_text(name + "\n", encoding="utf-8")
        _fsync_file(tmp)
        os.replace(tmp, self.current_file)
        _fsync_dir(self.root)

    def new_generation_name(self) -> str:
        """Names sort in creation order (microsecond timestamps; builds are serialized by the write lock)."""
        return f"g{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}"

    def remove_stale_generations(self, keep: int = 2) -> list[str]:
        """Delete generations other than the live one and the `keep - 1` newest before it.

        Call only while holding the write lock (a generation being built is not yet live).
        """
        if not self.generations.is_dir():
            return []
        live = self.current_generation()
        names = sorted(p.name for p in self.generations.iterdir() if p.is_dir())
        keepers = {live} if live else set()
        older = [n for n in names if live is None or n < live]
        keepers.update(older[-(keep - 1) :] if keep > 1 else [])
        removed = []
        for name in names:
            if name not in keepers:
                shutil.rmtree(self.generations / name, ignore_errors=True)
                removed.append(name)
        return removed


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_lock(layout: Layout, wait: bool = True, on_wait: object = None) -> Iterator[None]:
    """Serialize builds and updates across processes (an flock on `write.lock`)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise IndexProblem("another build or update is running on this index") from None
            if callable(on_wait):
                on_wait()
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------- SQLite

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    source_key TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    canonical_url TEXT NOT NULL DEFAULT '',
    published_at TEXT,
    published_ts REAL,
    author TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    origin TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    also_reported_by TEXT NOT NULL DEFAULT '[]',
    body TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source_key);
CREATE INDEX IF NOT EXISTS documents_published ON documents(published_ts);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE INDEX IF NOT EXISTS documents_url ON documents(canonical_url);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    passage_hash TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    head, body, content='', tokenize='porter unicode61 remove_diacritics 2'
);
"""

# Tables added for incremental updates; created in older generations on their first update.
FRESHNESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vec BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stale_vectors (chunk_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dedup_signatures (
    doc_id TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    sig BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dedup_keys (
    key TEXT NOT NULL,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    PRIMARY KEY (key, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_keys_doc ON dedup_keys(doc_id);
"""


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    if not create and not path.exists():
        raise IndexMissing(f"{path} does not exist. {REBUILD_HINT}")
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:  # not a database (any more): the same words every command uses
        conn.close()
        raise IndexCorrupt(f"{path} is unreadable ({exc}). {REBUILD_HINT}") from None
    return conn


def source_key(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip().casefold()


def head_text(doc: Document | Hit) -> str:
    """The metadata words a passage is found by: title, outlet, date (several spellings) and tags."""
    parts = [doc.title, doc.source]
    if doc.published_at:
        d = doc.published_at
        parts.append(f"{d:%Y-%m-%d} {d:%B} {d.day} {d.year} {d:%b}")
    if isinstance(doc, Document):
        parts.extend(doc.tags)
    return " ".join(p for p in parts if p)


# ---------------------------------------------------------------------------------------------- FAISS


def new_faiss_index(dim: int) -> faiss.Index:
    """Exact inner-product search over unit vectors (= cosine), addressed by chunk id (pending vectors;
    a snapshot gets the type its size calls for, see `index.vector_index`)."""
    return vector_index.new_flat(dim)


def write_faiss(index: faiss.Index, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    _fsync_file(tmp)
    os.replace(tmp, path)


def read_faiss(path: Path) -> faiss.Index:
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorrupt(f"vector file {path} is unreadable ({_first_line(exc)}). {REBUILD_HINT}") from None


def read_pending(conn: sqlite3.Connection, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, vectors of shape (n, dim)) of `pending_vectors`, in id order."""
    rows = conn.execute("SELECT chunk_id, vec FROM pending_vectors ORDER BY chunk_id").fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return ids, vectors


def read_stale(conn: sqlite3.Connection) -> np.ndarray:
    """Sorted ids of snapshot vectors whose passages were removed since the snapshot."""
    rows = conn.execute("SELECT chunk_id FROM stale_vectors ORDER BY chunk_id").fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# ---------------------------------------------------------------------------------------------- writing


class GenerationWriter:
    """Adds and removes articles in one generation; `commit` makes the change visible atomically.

    A new generation (full build) collects vectors in memory and writes one FAISS file. An existing one
    (update) puts new vectors in `pending_vectors`, in the same transaction as everything else, and
    rewrites the FAISS snapshot only when `compact_ratio` of the index is pending or stale. Every snapshot
    written is exact below `exact_max` passages and approximate (IVF) from there on (`index.vector_index`).
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
            self._store_signature(doc_id, minhash(body))

    def _store_signature(self, doc_id: str, sig: np.ndarray) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO dedup_signatures (doc_id, sig) VALUES (?, ?)",
            (doc_id, np.ascontiguousarray(sig, dtype="<u4").tobytes()),
        )
        self.conn.executemany(
            "INSERT OR IGNORE INTO dedup_keys (key, doc_id) VALUES (?, ?)", [(k, doc_id) for k in lsh_keys(sig)]
        )

    def find_near_duplicate(self, doc_id: str, sig: np.ndarray, threshold: float) -> tuple[str, float] | None:
        """(id, similarity) of the stored article most similar to `sig` at or above `threshold`, if any."""
        keys = lsh_keys(sig)
        if not keys:
            return None
        rows = self.conn.execute(
            "SELECT s.doc_id, s.sig FROM dedup_signatures s WHERE s.doc_id != ? AND s.doc_id IN "
            f"(SELECT doc_id FROM dedup_keys WHERE key IN ({','.join('?' * len(keys))}))",
            (doc_id, *keys),
        ).fetchall()
        best: tuple[str, float] | None = None
        for other, blob in sorted(rows):
            score = jaccard_estimate(sig, np.frombuffer(blob, dtype="<u4"))
            if score >= threshold and (best is None or score > best[1]):
                best = (other, score)
        return best

    def find_by_url(self, url: str) -> str | None:
        """Id of the stored article with this canonical URL, if any."""
        key = canonical_url(url)
        row = self.conn.execute("SELECT id FROM documents WHERE canonical_url = ? LIMIT 1", (key,)).fetchone()
        return row[0] if key and row else None

    def document_row(self, doc_id: str) -> sqlite3.Row | None:
        self.conn.row_factory = sqlite3.Row
        try:
            return self.conn.execute(
                "SELECT id, content_hash, canonical_url, source, also_reported_by FROM documents WHERE id = ?",
                (doc_id,),
            ).fetchone()
        finally:
            self.conn.row_factory = None

    def find_duplicate(self, doc: Document) -> str | None:
        """Id of a stored article with the same text or the same canonical URL, if any."""
        row = self.conn.execute(
            "SELECT id FROM documents WHERE id != ? AND (content_hash = ? OR (canonical_url != '' AND canonical_url = ?))",
            (doc.id, doc.content_hash(), canonical_url(doc.url)),
        ).fetchone()
        return row[0] if row else None

    def add_also_reported(self, doc_id: str, outlets: Iterable[str]) -> None:
        row = self.conn.execute("SELECT source, also_reported_by FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if not row:
            return
        current = json.loads(row[1])
        for outlet in outlets:
            if outlet and source_key(outlet) != source_key(row[0]) and outlet not in current:
                current.append(outlet)
        self.conn.execute("UPDATE documents SET also_reported_by = ? WHERE id = ?", (json.dumps(current), doc_id))
        self.changed = True

    def remove(self, doc_id: str) -> bool:
        rows = self.conn.execute(
            "SELECT c.id, c.text, d.title, d.source, d.published_at, d.tags FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.doc_id = ?",
            (doc_id,),
        ).fetchall()
        exists = self.conn.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone()
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
        self.conn.execute("DELETE FROM dedup_keys WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM dedup_signatures WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        self.changed = self.changed or exists is not None
        return exists is not None

    def add(
        self, doc: Document, chunks: Sequence[Chunk], vectors: np.ndarray, signature: np.ndarray | None = None
    ) -> list[int]:
        """Store one article (replacing any article with the same id), its passages' vectors and its
        near-duplicate signature (`index.ingest.dedup.minhash(doc.body)`, computed when not given)."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors for {doc.id!r}")
        self.remove(doc.id)
        published = doc.published_at.isoformat() if doc.published_at else None
        self.conn.execute(
            "INSERT INTO documents (id, title, source, source_key, url, canonical_url, published_at, published_ts,"
            " author, tags, origin, content_hash, also_reported_by, body, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.id, doc.title, doc.source, source_key(doc.source), doc.url, canonical_url(doc.url),
                published, doc.published_at.timestamp() if doc.published_at else None, doc.author,
                json.dumps(list(doc.tags)), doc.origin, doc.content_hash(),
                json.dumps(list(doc.also_reported_by)), doc.body, now_iso(),
            ),
        )
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
        self._store_signature(doc.id, minhash(doc.body) if signature is None else signature)
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
        Keeps the snapshot's type unless its size calls for another (`index.vector_index.compact`)."""
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


def write_manifest_file(gen_dir: Path, manifest: Manifest) -> None:
    tmp = gen_dir / "manifest.json.tmp"
    tmp.write_text(manifest.to_json() + "\n", encoding="utf-8")
    os.replace(tmp, gen_dir / "manifest.json")


# ---------------------------------------------------------------------------------------------- reading


class GenerationReader:
    """Read access to one generation: FAISS in memory, SQLite through one connection per thread.

    Vectors: `base`, the FAISS snapshot (never changed once loaded, so readers of later versions of the
    same snapshot share it), minus `stale` ids, plus `delta`, the pending vectors. `previous`: the reader
    this one replaces; its snapshot is reused when the manifest still names the same file.
    """

    def __init__(
        self, layout: Layout, name: str, *, expect_model: str | None = None, previous: GenerationReader | None = None,
        keyword_cache_postings: int = TERM_CACHE_POSTINGS,
    ) -> None:
        self.layout = layout
        self.keyword_cache_postings = keyword_cache_postings
        self.name = name
        self.dir = layout.generation_dir(name)
        db = self.dir / "index.sqlite"
        if not db.exists():
            raise IndexCorrupt(f"generation {name} has no index.sqlite. {REBUILD_HINT}")
        self._local = threading.local()
        self.manifest = self._read_manifest()
        if expect_model is not None and self.manifest.model != expect_model:
            raise IndexMismatch(
                f"the index at {layout.root} was built with embedding model {self.manifest.model!r}, "
                f"but the setting asks for {expect_model!r}. Rebuild it with `newsbot build`, or set "
                f"NEWSBOT_EMBEDDING_MODEL={self.manifest.model} to use it as it is."
            )
        self.manifest, self.base, self.stale, self.delta = self._load_vectors(previous)
        # Both selectors are kept: IDSelectorNot does not keep the selector it wraps alive.
        self._stale_sel = faiss.IDSelectorBatch(self.stale) if len(self.stale) else None
        self._not_stale = faiss.IDSelectorNot(self._stale_sel) if self._stale_sel is not None else None
        self.faiss_version = self.manifest.version
        self._columns_lock = threading.Lock()
        self._columns: _FilterColumns | None = None
        self._ids_upto: int | None = None
        self._masks: OrderedDict[tuple[Filters, int], tuple[np.ndarray, int]] = OrderedDict()
        if previous is not None and previous.name == name:
            self._columns = previous._columns  # extended by the passages added since, when first needed

    # -- connections and versions

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.dir / "index.sqlite")
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    def _read_manifest(self) -> Manifest:
        try:
            row = self.conn().execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{self.dir / 'index.sqlite'} is unreadable ({exc}). {REBUILD_HINT}") from None
        if row is None:
            raise IndexCorrupt(f"generation {self.name} has no manifest (an unfinished build?). {REBUILD_HINT}")
        try:
            manifest = Manifest.from_json(row[0])
        except (ValueError, TypeError) as exc:
            raise IndexCorrupt(f"generation {self.name} has a broken manifest ({exc}). {REBUILD_HINT}") from None
        if manifest.format != FORMAT_VERSION:
            raise IndexMismatch(
                f"the index has format {manifest.format}; this newsbot reads format {FORMAT_VERSION}. {REBUILD_HINT}"
            )
        return manifest

    def _load_vectors(
        self, previous: GenerationReader | None
    ) -> tuple[Manifest, faiss.Index, np.ndarray, faiss.Index]:
        """One committed version's vectors: (manifest, snapshot, stale ids, index of pending vectors).

        Manifest, pending and stale vectors are read in one SQLite read transaction, so they belong to the
        same version even while an update commits. Retries when a compaction removed the snapshot file
        between reading the manifest and opening the file.
        """
        for attempt in range(3):
            conn = self.conn()
            conn.execute("BEGIN")
            try:
                manifest = self._read_manifest()
                pending = read_pending(conn, manifest.dim) if manifest.pending else None
                stale = read_stale(conn) if manifest.stale else np.empty(0, dtype=np.int64)
            finally:
                conn.execute("COMMIT")
            if previous is not None and previous.name == self.name and previous.manifest.faiss_file == manifest.faiss_file:
                base = previous.base
            else:
                path = self.dir / manifest.faiss_file
                if not path.exists():
                    if attempt < 2:
                        continue
                    raise IndexCorrupt(f"vector file {path} is missing. {REBUILD_HINT}")
                base = read_faiss(path)
                if base.d != manifest.dim:
                    raise IndexCorrupt(f"{path} holds {base.d}-d vectors, the manifest says {manifest.dim}. {REBUILD_HINT}")
            delta = new_faiss_index(manifest.dim)
            if pending is not None and len(pending[0]):
                delta.add_with_ids(pending[1], pending[0])
            if base.ntotal - len(stale) + delta.ntotal != manifest.chunks:
                raise IndexCorrupt(
                    f"{manifest.faiss_file} and the pending vectors hold {base.ntotal - len(stale) + delta.ntotal} "
                    f"vectors but the index has {manifest.chunks} passages. {REBUILD_HINT}"
                )
            return manifest, base, stale, delta
        raise AssertionError("unreachable")

    def vector_count(self) -> int:
        """Vectors this reader searches (equals the number of passages of its version)."""
        return self.base.ntotal - len(self.stale) + self.delta.ntotal

    def stored_version(self) -> int:
        """The committed version in SQLite (may be ahead of the FAISS copy held in memory)."""
        return self._read_manifest().version

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- retrieval

    def _filter_sql(self, filters: Filters, alias: str = "d") -> tuple[str, list[object]]:
        clauses, params = [], []
        if filters.sources:
            keys = [source_key(s) for s in filters.sources]
            clauses.append(f"{alias}.source_key IN ({','.join('?' * len(keys))})")
            params.extend(keys)
        if filters.since:
            clauses.append(f"{alias}.published_ts >= ?")
            params.append(filters.since.timestamp())
        if filters.until:
            clauses.append(f"{alias}.published_ts <= ?")
            params.append(filters.until.timestamp())
        return " AND ".join(clauses), params

    def filter_columns(self) -> _FilterColumns:
        """Every passage's outlet and date by chunk id, in memory (loaded on first use; a reader reopened
        after an update reads only the passages added since its predecessor's columns)."""
        with self._columns_lock:
            cols = self._columns
            if self._ids_upto is None:  # legacy generations have no next_chunk_id
                top = self.conn().execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0]
                self._ids_upto = max(self.manifest.next_chunk_id, int(top) + 1)
            if cols is None or cols.upto < self._ids_upto:
                cols = _FilterColumns.load(self.conn(), cols, self._ids_upto)
                self._columns = cols
            return cols

    def allowed(self, filters: Filters) -> tuple[np.ndarray, int]:
        """(read-only boolean mask by chunk id, count) of the live passages `filters` allow (numpy over the
        columns; the last few are kept: a question's parts repeat their filters in dense and keyword search)."""
        columns = self.filter_columns()
        key = (filters, columns.upto)
        with self._columns_lock:
            found = self._masks.get(key)
            if found is not None:
                self._masks.move_to_end(key)
                return found
        mask = columns.mask(filters)
        if len(self.stale):
            mask[self.stale[self.stale < len(mask)]] = False
        mask.flags.writeable = False
        found = (mask, int(np.count_nonzero(mask)))
        with self._columns_lock:
            self._masks[key] = found
            while len(self._masks) > MASKS_KEPT:
                self._masks.popitem(last=False)
        return found

    def chunk_ids_matching(self, filters: Filters) -> np.ndarray:
        where, params = self._filter_sql(filters)
        rows = self.conn().execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def dense_search(self, vectors: np.ndarray, k: int, filters: Filters = Filters()) -> list[list[tuple[int, float]]]:
        """For each query vector (shape (q, dim), unit length): up to k (chunk_id, cosine), best first.

        Searches the snapshot (without stale vectors) and the pending vectors, and merges the two."""
        empty: list[list[tuple[int, float]]] = [[] for _ in range(len(vectors))]
        if self.vector_count() == 0:
            return empty
        base_sel = self._not_stale
        delta_sel = None
        share = 1.0
        if filters:
            mask, count = self.allowed(filters)  # no stale id among them
            if count == 0:
                return empty
            bitmap = np.packbits(mask, bitorder="little")  # referenced until the searches are done
            base_sel = delta_sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            share = count / max(1, self.vector_count())
        queries = np.asarray(vectors, dtype=np.float32)
        merged = empty
        for index, sel in ((self.base, base_sel), (self.delta, delta_sel)):
            if index.ntotal == 0:
                continue
            params = vector_index.search_params(index, sel, share)
            scores, ids = index.search(queries, min(k, index.ntotal), params=params)
            merged = [row + [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
                      for row, row_ids, row_scores in zip(merged, ids, scores, strict=True)]
        return [sorted(row, key=lambda hit: -hit[1])[:k] for row in merged]

    def keyword_search(
        self, terms: Sequence[str], k: int, filters: Filters = Filters(), head_weight: float = 1.0
    ) -> list[tuple[int, float]]:
        """Up to k (chunk_id, bm25) for passages matching any term; higher bm25 is better.

        FTS5's bm25 (head column weighted by `head_weight`), summed from cached per-word scores
        (`index.keyword_scores`): the same passages and scores as one FTS5 OR query, ties by id."""
        terms = list(dict.fromkeys(t for t in terms if t))
        if not terms:
            return []
        allowed = self.allowed(filters)[0] if filters else None
        return self.term_scores.top(terms, k, head_weight, allowed)

    @functools.cached_property
    def term_scores(self) -> TermScores:
        """This version's per-word bm25 cache (a new version changes every word's idf: a new cache)."""
        return TermScores(self._word_scores, self.keyword_cache_postings)

    def _word_scores(self, word: str, head_weight: float) -> Postings:
        rows = self.conn().execute(
            "SELECT rowid, -bm25(chunks_fts, ?, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ?",
            (head_weight, fts_query([word])),
        ).fetchall()
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=2 * len(rows))
        return flat[0::2].astype(np.int64), flat[1::2].copy()

    def hits(self, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        """Hits (score 0) for the chunk ids that still exist; ids removed since are simply absent."""
        if not chunk_ids:
            return {}
        out: dict[int, Hit] = {}
        ids = list(dict.fromkeys(int(i) for i in chunk_ids))
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self.conn().execute(
                "SELECT c.id, c.doc_id, d.title, d.source, d.url, d.published_at, c.text, c.start, c.end, d.author "
                f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
            for cid, doc_id, title, source, url, published, text, s, e, author in rows:
                out[cid] = Hit(
                    chunk_id=cid, doc_id=doc_id, title=title, source=source, url=url,
                    published_at=parse_date(published), text=text, start=s, end=e, score=0.0, author=author,
                )
        return out

    def vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of chunks (shape (n, dim)); chunks the FAISS copy lacks get zero rows."""
        out = np.zeros((len(chunk_ids), self.manifest.dim), dtype=np.float32)
        stale = set(self.stale.tolist())
        for row, cid in enumerate(int(c) for c in chunk_ids):
            for index in (self.delta,) if cid in stale else (self.delta, self.base):
                try:
                    out[row] = index.reconstruct(cid)
                    break
                except RuntimeError:  # not in this part
                    continue
        return out

    # -- articles

    def document(self, doc_id: str) -> tuple[Document, int] | None:
        row = self.conn().execute(
            "SELECT id, title, body, source, url, published_at, author, tags, origin, also_reported_by "
            "FROM documents WHERE id = ?",
            (doc_id,),
        ).fetchone()
        if row is None:
            return None
        n = self.conn().execute("SELECT count(*) FROM chunks WHERE doc_id = ?", (doc_id,)).fetchone()[0]
        return _document_from_row(row), n

    def documents(self) -> list[Document]:
        """Every stored article, body included (used to carry articles over into a rebuild)."""
        rows = self.conn().execute(
            "SELECT id, title, body, source, url, published_at, author, tags, origin, also_reported_by FROM documents"
        ).fetchall()
        return [_document_from_row(r) for r in rows]

    def latest(self, limit: int = 10, filters: Filters = Filters(), terms: Sequence[str] = ()) -> list[Document]:
        where, params = self._filter_sql(filters)
        sql = (
            "SELECT d.id, d.title, '' AS body, d.source, d.url, d.published_at, d.author, d.tags, d.origin,"
            " d.also_reported_by FROM documents d"
        )
        conditions = [where] if where else []
        if terms:
            conditions.append(
                "d.id IN (SELECT c.doc_id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ?)"
            )
            params.append(fts_query(terms))
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY d.published_ts IS NULL, d.published_ts DESC, d.added_at DESC LIMIT ?"
        rows = self.conn().execute(sql, [*params, limit]).fetchall()
        return [_document_from_row(r) for r in rows]

    def source_counts(self) -> list[tuple[str, int]]:
        return [
            (r[0], r[1])
            for r in self.conn().execute(
                "SELECT source, count(*) FROM documents GROUP BY source_key ORDER BY count(*) DESC, source"
            )
        ]

    def sources(self) -> list[str]:
        return [s for s, _ in self.source_counts() if s]

    def passage_frequency(self, term: str) -> int:
        """How many passages contain `term` (as the keyword index tokenizes and stems it).

        Exact, except for common words in large indexes (>= DF_SAMPLE_FROM passages): a word found in at least
        DF_SAMPLE_MIN passages of the oldest 1/DF_SAMPLE_SHARE of chunk ids is counted there and scaled up
        (standard error ≈ 6 %; the count reads one posting per passage, 40 ms for a word in every passage
        of a 1M index). Counts weigh words (idf) and pick a question's rarest ones; bm25 itself counts exactly."""
        query = '"' + term.replace('"', '""') + '"'
        conn = self.conn()
        if self.manifest.chunks >= DF_SAMPLE_FROM:
            upto = max(1, self.manifest.next_chunk_id // DF_SAMPLE_SHARE)
            sample = conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid < ?",
                                  (query, upto)).fetchone()[0]
            if sample >= DF_SAMPLE_MIN:
                return min(self.manifest.chunks, int(sample) * DF_SAMPLE_SHARE)
        return int(conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (query,)).fetchone()[0])

    def has_passage_with_all(self, words: Sequence[str]) -> bool:
        """Whether some passage (text or title line) contains every one of `words` (keyword index)."""
        words = [w for w in words if w]
        if not words:
            return True
        query = " AND ".join('"' + w.replace('"', '""') + '"' for w in words)
        row = self.conn().execute("SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", (query,)).fetchone()
        return row is not None


class _FilterColumns:
    """Each passage's outlet (a code per source_key) and publication time, in arrays indexed by chunk id,
    so an outlet/date filter becomes a mask in numpy instead of an SQL query returning every allowed id.
    Ids of removed passages keep their values: callers drop stale ids, and pending ones have no vector."""

    def __init__(self, codes: dict[str, int], source: np.ndarray, ts: np.ndarray) -> None:
        self.codes, self.source, self.ts = codes, source, ts

    @property
    def upto(self) -> int:
        return len(self.source)

    @classmethod
    def load(cls, conn: sqlite3.Connection, previous: _FilterColumns | None, upto: int) -> _FilterColumns:
        start = previous.upto if previous is not None else 0
        codes = dict(previous.codes) if previous is not None else {}
        source = np.full(upto, -1, dtype=np.int32)
        ts = np.full(upto, np.nan, dtype=np.float64)
        if previous is not None:
            source[:start], ts[:start] = previous.source, previous.ts
        # one row per article: its passages' ids are consecutive (assigned together by GenerationWriter.add)
        rows = conn.execute(
            "SELECT c.doc_id, d.source_key, d.published_ts, MIN(c.id), MAX(c.id), COUNT(*) FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.id >= ? AND c.id < ? GROUP BY c.doc_id",
            (start, upto),
        ).fetchall()
        for doc_id, key, published, first, last, n in rows:
            code = codes.setdefault(key, len(codes))
            if last - first + 1 == n:
                source[first : last + 1] = code
                ts[first : last + 1] = np.nan if published is None else published
            else:  # not consecutive (never written so, but cheap to handle)
                ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ? AND id >= ? AND id < ?",
                                                  (doc_id, start, upto))]
                source[ids] = code
                ts[ids] = np.nan if published is None else published
        return cls(codes, source, ts)

    @functools.cached_property
    def _by_source(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids ordered by outlet code, start of each code's run): code c's ids are
        `ids[starts[c + 1] : starts[c + 2]]` (code -1, no article, comes first)."""
        ids = np.argsort(self.source, kind="stable")
        return ids, np.searchsorted(self.source[ids], np.arange(-1, len(self.codes) + 1))

    @functools.cached_property
    def _by_time(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(chunk ids ordered by publication time, those times, how many have one): undated ids come last."""
        ids = np.argsort(self.ts, kind="stable")
        return ids, self.ts[ids], int(np.count_nonzero(~np.isnan(self.ts)))

    def mask(self, filters: Filters) -> np.ndarray:
        """Boolean array by chunk id: the passages `filters` allow (as `GenerationReader._filter_sql`).

        Costs in proportion to the passages an outlet or a date range selects (runs of ids sorted once by
        outlet and by time), not to the index size."""
        chosen: np.ndarray | None = None  # ids, None = all
        wanted = None
        if filters.sources:
            codes = sorted({self.codes[k] for k in {source_key(s) for s in filters.sources} if k in self.codes})
            wanted = np.zeros(len(self.codes) + 1, dtype=bool)  # by code; the last entry is code -1 (none)
            wanted[codes] = True
            by_source, starts = self._by_source
            chosen = np.concatenate([by_source[starts[c + 1] : starts[c + 2]] for c in codes] or [_NO_IDS])
        if filters.since or filters.until:
            by_time, times, dated = self._by_time
            lo = int(np.searchsorted(times[:dated], filters.since.timestamp(), "left")) if filters.since else 0
            hi = int(np.searchsorted(times[:dated], filters.until.timestamp(), "right")) if filters.until else dated
            if chosen is None or (wanted is not None and hi - lo < len(chosen)):
                in_range = by_time[lo:max(lo, hi)]
                chosen = in_range if wanted is None else in_range[wanted[self.source[in_range]]]
            else:
                ts = self.ts[chosen]
                with np.errstate(invalid="ignore"):
                    keep = ~np.isnan(ts)
                    if filters.since:
                        keep &= ts >= filters.since.timestamp()
                    if filters.until:
                        keep &= ts <= filters.until.timestamp()
                chosen = chosen[keep]
        if chosen is None:
            return np.ones(self.upto, dtype=bool)
        mask = np.zeros(self.upto, dtype=bool)
        mask[chosen] = True
        return mask


_NO_IDS = np.empty(0, dtype=np.int64)


def _document_from_row(row: Sequence[object]) -> Document:
    doc_id, title, body, source, url, published, author, tags, origin, also = row
    return Document(
        id=str(doc_id), title=str(title), body=str(body), source=str(source), url=str(url),
        published_at=parse_date(published), author=str(author), tags=tuple(json.loads(str(tags))),
        origin=str(origin), also_reported_by=tuple(json.loads(str(also))),
    )


def current_manifest(layout: Layout) -> Manifest:
    """The live generation's committed manifest, read without loading any vectors."""
    name = layout.current_generation()
    if name is None:
        raise IndexMissing(f"no index at {layout.root}. Build one with `newsbot build`.")
    db = layout.generation_dir(name) / "index.sqlite"
    if not db.exists():
        raise IndexCorrupt(f"generation {name} has no index.sqlite. {REBUILD_HINT}")
    conn = connect(db)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IndexCorrupt(f"{db} is unreadable ({exc}). {REBUILD_HINT}") from None
    finally:
        conn.close()
    if row is None:
        raise IndexCorrupt(f"generation {name} has no manifest (an unfinished build?). {REBUILD_HINT}")
    return Manifest.from_json(row[0])


def fetched_documents(layout: Layout) -> list[Document]:
    """The live generation's web articles (origin an http(s) URL), bodies included; [] without an index.

    A full rebuild carries these over: no file can reproduce them. An unreadable index yields [] (the
    rebuild that repairs it must not fail on it).
    """
    name = layout.current_generation()
    db = layout.generation_dir(name) / "index.sqlite" if name else None
    if db is None or not db.exists():
        return []
    try:
        conn = connect(db)
        try:
            rows = conn.execute(
                "SELECT id, title, body, source, url, published_at, author, tags, origin, also_reported_by "
                "FROM documents WHERE origin LIKE 'http://%' OR origin LIKE 'https://%' ORDER BY added_at, id"
            ).fetchall()
        finally:
            conn.close()
    except (sqlite3.DatabaseError, IndexProblem):
        return []
    return [_document_from_row(r) for r in rows]


def _live_db(layout: Layout) -> Path | None:
    name = layout.current_generation()
    db = layout.generation_dir(name) / "index.sqlite" if name else None
    return db if db is not None and db.exists() else None


def article_origins(layout: Layout, ids: Sequence[str] | None = None) -> dict[str, str] | None:
    """id -> origin of the live generation's articles (only `ids`, when given); None when there is no
    live generation or it cannot be read (a rebuild then relies on the article store)."""
    db = _live_db(layout)
    if db is None:
        return None
    try:
        conn = connect(db)
        try:
            if ids is None:
                rows = conn.execute("SELECT id, origin FROM documents").fetchall()
            else:
                rows = []
                for start in range(0, len(ids), 500):
                    part = list(ids[start:start + 500])
                    rows += conn.execute(
                        f"SELECT id, origin FROM documents WHERE id IN ({','.join('?' * len(part))})", part
                    ).fetchall()
        finally:
            conn.close()
    except (sqlite3.DatabaseError, IndexCorrupt):
        return None
    return {str(i): str(o) for i, o in rows}


def stored_documents(layout: Layout, ids: Sequence[str]) -> list[Document]:
    """The live generation's articles with these ids, bodies included ([] if it cannot be read)."""
    db = _live_db(layout)
    if db is None or not ids:
        return []
    out: list[Document] = []
    try:
        conn = connect(db)
        try:
            for start in range(0, len(ids), 500):
                part = list(ids[start:start + 500])
                out += [_document_from_row(r) for r in conn.execute(
                    "SELECT id, title, body, source, url, published_at, author, tags, origin, also_reported_by "
                    f"FROM documents WHERE id IN ({','.join('?' * len(part))}) ORDER BY added_at, id", part
                ).fetchall()]
        finally:
            conn.close()
    except (sqlite3.DatabaseError, IndexCorrupt):
        return []
    return out


def open_current(
    layout: Layout, expect_model: str | None = None, previous: GenerationReader | None = None,
    keyword_cache_postings: int = TERM_CACHE_POSTINGS,
) -> GenerationReader:
    name = layout.current_generation()
    if name is None:
        raise IndexMissing(f"no index at {layout.root}. Build one with `newsbot build`.")
    if not layout.generation_dir(name).is_dir():
        raise IndexCorrupt(f"{layout.current_file} names generation {name}, which is missing. {REBUILD_HINT}")
    return GenerationReader(layout, name, expect_model=expect_model, previous=previous,
                            keyword_cache_postings=keyword_cache_postings)
