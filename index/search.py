"""Hybrid retrieval: dense (FAISS) and keyword (FTS5 bm25) rankings fused by weighted reciprocal rank.

    query ──embed──> dense ranking ─┐
          ──terms──> bm25 ranking  ─┴─> weighted RRF ─> per-article cap ─> Hits

The store is reached only through `GenerationReader`'s small interface (dense_search,
keyword_search, hits, vectors), which is what another backend has to provide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from index.embedding import Embedder
from index.hits import Filters, Hit
from index.store import GenerationReader, keyword_terms


@dataclass(frozen=True)
class SearchOptions:
    top_k: int = 10
    candidates: int = 60  # per retriever, before fusion
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    rrf_k: int = 60
    per_article_cap: int = 2
    head_weight: float = 1.0  # bm25 weight of the title/outlet/date column relative to the body


def rrf(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = 60) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: score(id) = sum_i w_i / (k + rank_i(id)), ranks from 1."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight <= 0:
            continue
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


def cap_per_article(hits: Sequence[Hit], cap: int, limit: int) -> list[Hit]:
    """The best `limit` hits with at most `cap` passages of any one article (cap <= 0: no cap)."""
    out: list[Hit] = []
    per_doc: dict[str, int] = {}
    for hit in hits:
        if cap > 0 and per_doc.get(hit.doc_id, 0) >= cap:
            continue
        per_doc[hit.doc_id] = per_doc.get(hit.doc_id, 0) + 1
        out.append(hit)
        if len(out) >= limit:
            break
    return out


def search(
    reader: GenerationReader,
    embedder: Embedder,
    query: str,
    filters: Filters = Filters(),
    opts: SearchOptions = SearchOptions(),
    *,
    query_vector: np.ndarray | None = None,
) -> list[Hit]:
    """The `opts.top_k` best passages for `query` (best first), honouring `filters`."""
    if query_vector is None:
        query_vector = embedder.encode([query])[0]
    dense = reader.dense_search(query_vector[None, :], opts.candidates, filters)[0]
    keyword = reader.keyword_search(keyword_terms(query), opts.candidates, filters, opts.head_weight)
    fused = rrf(
        [[cid for cid, _ in dense], [cid for cid, _ in keyword]],
        [opts.dense_weight, opts.keyword_weight],
        opts.rrf_k,
    )
    ranked = sorted(fused, key=fused.__getitem__, reverse=True)
    dense_scores = dict(dense)
    keyword_scores = dict(keyword)
    stored = reader.hits(ranked)
    ordered = [
        replace(
            stored[cid],
            score=fused[cid],
            dense_score=dense_scores.get(cid),
            keyword_score=keyword_scores.get(cid),
        )
        for cid in ranked
        if cid in stored
    ]
    hits = cap_per_article(ordered, opts.per_article_cap, opts.top_k)
    return with_dense_scores(reader, hits, query_vector)


def with_dense_scores(reader: GenerationReader, hits: Sequence[Hit], query_vector: np.ndarray) -> list[Hit]:
    """Fill in the cosine of hits that only the keyword side found (answers need it for every hit)."""
    missing = [h.chunk_id for h in hits if h.dense_score is None]
    if not missing:
        return list(hits)
    sims = reader.vectors(missing) @ query_vector
    by_id = dict(zip(missing, sims.tolist(), strict=True))
    return [h if h.dense_score is not None else replace(h, dense_score=by_id[h.chunk_id]) for h in hits]
