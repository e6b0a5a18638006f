"""Reading a generation of the embedded store: vector and keyword search, passages and articles."""

from __future__ import annotations

import functools
import itertools
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence

import faiss
import numpy as np

from newsbot.index.documents import Document, parse_date
from newsbot.index.hits import Filters, Hit
from newsbot.index.store.base import (
    FORMAT_VERSION,
    REBUILD_HINT,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    Manifest,
)
from newsbot.index.store.catalog import Catalog, CatalogReads
from newsbot.index.store.embedded import vector_index
from newsbot.index.store.embedded.filters import FilterColumns
from newsbot.index.store.embedded.keyword_scores import TERM_CACHE_POSTINGS, Postings, TermScores
from newsbot.index.store.embedded.layout import Layout
from newsbot.index.store.embedded.snapshot import new_faiss_index, read_faiss, read_pending, read_stale
from newsbot.index.store.embedded.sqlite import ConnectionRows, connect
from newsbot.index.text import fts_query

MASKS_KEPT = 16  # filter masks a reader keeps (1 byte per passage each)
DF_SAMPLE_FROM, DF_SAMPLE_SHARE, DF_SAMPLE_MIN = 50_000, 16, 256  # see GenerationReader.passage_frequency


class GenerationReader(CatalogReads):
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
        self.version = self.manifest.version  # the committed version whose vectors this reader holds
        self.catalog = Catalog(ConnectionRows(self.conn))
        self._columns_lock = threading.Lock()
        self._columns: FilterColumns | None = None
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

    def refresh(self) -> bool:
        """False: the vectors are a snapshot held in memory, so a later version needs a new reader (which
        reuses this one's snapshot when it is still current: `previous`)."""
        return False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- retrieval

    def filter_columns(self) -> FilterColumns:
        """Every passage's outlet and date by chunk id, in memory (loaded on first use; a reader reopened
        after an update reads only the passages added since its predecessor's columns)."""
        with self._columns_lock:
            cols = self._columns
            if self._ids_upto is None:  # legacy generations have no next_chunk_id
                top = self.conn().execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0]
                self._ids_upto = max(self.manifest.next_chunk_id, int(top) + 1)
            if cols is None or cols.upto < self._ids_upto:
                cols = FilterColumns.load(self.conn(), cols, self._ids_upto)
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
        where, params = self.catalog.filter_sql(filters, alias="d")
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
        (keyword_scores.py): the same passages and scores as one FTS5 OR query, ties by id."""
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

    # -- articles (the rest: `CatalogReads`)

    def latest(self, limit: int = 10, filters: Filters = Filters(), terms: Sequence[str] = ()) -> list[Document]:
        """The newest articles (bodies empty), optionally only those with a passage matching any term."""
        if not terms:
            return self.catalog.latest(limit, filters)
        return self.catalog.latest(
            limit, filters,
            "d.id IN (SELECT c.doc_id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ?)",
            [fts_query(terms)],
        )


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
