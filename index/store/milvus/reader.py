"""Reading a generation of the Milvus store: searches run in Milvus, articles come from SQL, and only
passages that committed state lists are ever returned (see the package doc)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from newsbot.index.documents import Document, parse_date
from newsbot.index.hits import Filters, Hit
from newsbot.index.store.base import IndexMismatch
from newsbot.index.store.catalog import (
    LISTING_COLUMNS,
    Catalog,
    CatalogReads,
    document_from_row,
    placeholders,
)
from newsbot.index.store.milvus.collection import (
    QUERY_WINDOW,
    TERM_COUNTS,
    all_of,
    analyze,
    as_dicts,
    filter_expr,
    literal,
    query_text,
)

if TYPE_CHECKING:
    from newsbot.index.store.milvus.store import MilvusStore


class MilvusReader(CatalogReads):
    """Read access to one generation (`index.store.base.StoreReader`), like the embedded store's.

    Milvus rows are live data, so one reader serves every version; `stored_version()` tells callers
    (caches keyed by version) when an update committed, and `refresh()` re-reads the manifest.
    """

    def __init__(self, store: MilvusStore, name: str, *, expect_model: str | None = None) -> None:
        self.store = store
        self.name = name
        self.client = store.client
        self.db = store.db
        self.manifest = store.manifest(name)
        if expect_model is not None and self.manifest.model != expect_model:
            raise IndexMismatch(
                f"the index in {store.describe()} was built with embedding model {self.manifest.model!r}, "
                f"but the setting asks for {expect_model!r}. Rebuild it with `newsbot build`, or set "
                f"NEWSBOT_EMBEDDING_MODEL={self.manifest.model} to use it as it is."
            )
        self.version = self.manifest.version
        self.catalog = Catalog(self.db, prefix="store_", generation=name)

    # -- versions

    def stored_version(self) -> int:
        return self.store.manifest(self.name).version

    def refresh(self) -> bool:
        """Re-read the manifest: Milvus rows are live, so this reader then searches the stored version."""
        manifest = self.store.manifest(self.name)
        self.manifest, self.version = manifest, manifest.version
        return True

    def filter_columns(self) -> None:
        """None: Milvus filters rows itself, there is nothing to load."""
        return None

    def close(self) -> None:
        pass

    # -- retrieval

    def _visible(self, ids: Sequence[int]) -> set[int]:
        """The ids that committed state lists (rows of in-flight or crashed writers are not)."""
        out: set[int] = set()
        ids = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            out.update(int(r[0]) for r in self.db.query(
                f"SELECT id FROM store_chunks WHERE generation = ? AND id IN ({placeholders(len(part))})", (self.name, *part)
            ))
        return out

    def _keep_visible(self, rows: list[list[tuple[int, float]]]) -> list[list[tuple[int, float]]]:
        visible = self._visible([cid for row in rows for cid, _ in row])
        return [[(cid, s) for cid, s in row if cid in visible] for row in rows]

    def dense_search(self, vectors: np.ndarray, k: int, filters: Filters = Filters()) -> list[list[tuple[int, float]]]:
        """For each query vector (shape (q, dim), unit length): up to k (chunk_id, cosine), best first."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) == 0 or k <= 0:
            return [[] for _ in range(len(vectors))]
        result = self.client.search(
            self.name, data=vectors.tolist(), anns_field="dense", limit=min(k, QUERY_WINDOW),
            filter=filter_expr(filters), search_params={"metric_type": "IP"}, output_fields=["doc_id"],
        )
        rows = [[(int(h["id"]), float(h["distance"])) for h in row] for row in result]
        return self._keep_visible(rows)

    def keyword_search(
        self, terms: Sequence[str], k: int, filters: Filters = Filters(), head_weight: float = 1.0
    ) -> list[tuple[int, float]]:
        """Up to k (chunk_id, bm25) for passages matching any term, best first (Milvus's BM25)."""
        text = query_text(terms, unique=False)
        if not text or k <= 0:
            return []
        result = self.client.search(
            self.name, data=[text], anns_field="sparse", limit=min(k, QUERY_WINDOW),
            filter=filter_expr(filters), search_params={"metric_type": "BM25"}, output_fields=["doc_id"],
        )
        row = [(int(h["id"]), abs(float(h["distance"]))) for h in result[0]] if result else []
        return self._keep_visible([row])[0]

    def hits(self, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        """Hits (score 0) for the chunk ids that are live; others are simply absent."""
        visible = sorted(self._visible(chunk_ids))
        out: dict[int, Hit] = {}
        fields = ["doc_id", "title", "source", "url", "published_at", "text", "span_start", "span_end", "author"]
        for start in range(0, len(visible), 500):
            for r in as_dicts(self.client.get(self.name, ids=visible[start:start + 500], output_fields=fields)):
                cid = int(r["id"])
                out[cid] = Hit(
                    chunk_id=cid, doc_id=str(r["doc_id"]), title=str(r["title"]), source=str(r["source"]),
                    url=str(r["url"]), published_at=parse_date(r["published_at"] or None), text=str(r["text"]),
                    start=int(r["span_start"]), end=int(r["span_end"]), score=0.0, author=str(r["author"]),
                )
        return out

    def vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of chunks (shape (n, dim)); unknown chunks get zero rows."""
        out = np.zeros((len(chunk_ids), self.manifest.dim), dtype=np.float32)
        ids = list(dict.fromkeys(int(i) for i in chunk_ids))
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            for r in as_dicts(self.client.get(self.name, ids=ids[start:start + 500], output_fields=["dense"])):
                found[int(r["id"])] = np.asarray(r["dense"], dtype=np.float32)
        for row, cid in enumerate(chunk_ids):
            vec = found.get(int(cid))
            if vec is not None:
                out[row] = vec
        return out

    def _term_counts(self, tokens: Sequence[str]) -> dict[str, int]:
        """Live passages per stem, from `store_terms` (stems no passage holds are 0)."""
        rows = self.db.query(
            f"SELECT term, df FROM store_terms WHERE generation = ? AND term IN ({placeholders(len(tokens))})",
            (self.name, *tokens),
        )
        found = {str(r[0]): int(r[1]) for r in rows}
        return {t: found.get(t, 0) for t in tokens}

    def passage_frequency(self, term: str) -> int:
        """How many passages contain `term` (after the same analysis as the BM25 field), for idf weights.

        A term of several words (`u.s.`, `co-founder`) counts as its rarest word. Generations without
        `store_terms` count in Milvus (rows not yet committed or already replaced too)."""
        tokens = list(dict.fromkeys(analyze(term)))
        if not tokens:
            return 0
        if self.manifest.extra.get(TERM_COUNTS):
            return min(self._term_counts(tokens).values())
        expr = " and ".join(f"text_match(search_text, {literal(t)})" for t in tokens)
        rows = as_dicts(self.client.query(self.name, filter=expr, output_fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def has_passage_with_all(self, words: Sequence[str]) -> bool:
        """Whether some live passage (text or header line) contains every one of `words`."""
        tokens = list(dict.fromkeys(t for w in words for t in analyze(w)))
        if not tokens:
            return True
        if self.manifest.extra.get(TERM_COUNTS):  # a word no live passage holds settles it without Milvus
            counts = self._term_counts(tokens)
            if min(counts.values()) == 0:
                return False
            if len(tokens) == 1:
                return True
        expr = " and ".join(f"text_match(search_text, {literal(t)})" for t in tokens)
        rows = as_dicts(self.client.query(self.name, filter=expr, output_fields=["id"], limit=50))
        return bool(self._visible([int(r["id"]) for r in rows]))

    # -- articles (the rest: `CatalogReads`)

    def latest(self, limit: int = 10, filters: Filters = Filters(), terms: Sequence[str] = ()) -> list[Document]:
        """The newest articles (bodies empty), optionally only those with a passage matching any term."""
        if not terms:
            return self.catalog.latest(limit, filters)
        where, params = self.catalog.filter_sql(filters)
        text = query_text(terms)
        if not text:
            return []
        expr = all_of(f"text_match(search_text, {literal(text)})", filter_expr(filters))
        matched = as_dicts(self.client.query(self.name, filter=expr, output_fields=["doc_id"], limit=QUERY_WINDOW))
        doc_ids = sorted({str(r["doc_id"]) for r in matched})
        found = []
        for start in range(0, len(doc_ids), 500):
            part = doc_ids[start:start + 500]
            found += self.db.query(
                f"SELECT {LISTING_COLUMNS}, published_ts, added_at FROM store_documents WHERE {where}"
                f" AND id IN ({placeholders(len(part))})", (*params, *part),
            )
        found.sort(key=lambda r: str(r[0]))  # stable sorts: newest first, then latest added, then id
        found.sort(key=lambda r: str(r[11]), reverse=True)
        found.sort(key=lambda r: (r[10] is None, -(r[10] or 0.0)))
        return [document_from_row(r[:10]) for r in found[:limit]]

