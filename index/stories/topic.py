"""Which articles are about a topic: hybrid search (the one questions use), kept above a relevance floor.

Search always returns its best passages, relevant or not; a topic ("OpenAI", "chip export rules") must
select only articles about it. An article matches when one of its passages was found by the topic's
words (bm25) and is not far from it in meaning, or is close in meaning alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Filters
from newsbot.index.retrieval.options import SearchOptions
from newsbot.index.retrieval.search import search
from newsbot.index.store.base import StoreReader
from newsbot.index.text import keyword_terms

TOPIC_PASSAGES = 200  # passages a topic search returns (one per article): the most articles a topic selects
MIN_COSINE_WITH_WORDS = 0.3  # a passage with the topic's words (bm25) matches from this cosine ...
MIN_COSINE = 0.5  # ... one without them from this (MiniLM; looked at on MultiHop-RAG topics)


def topic_matches(
    reader: StoreReader, embedder: Embedder, topic: str, filters: Filters = Filters(),
    opts: SearchOptions = SearchOptions(), limit: int = TOPIC_PASSAGES,
) -> dict[str, float]:
    """doc id -> its best passage's cosine with `topic`, for the articles `filters` allow that match it."""
    wide = replace(opts, top_k=limit, candidates=max(opts.candidates, limit), per_article_cap=1)
    out: dict[str, float] = {}
    for hit in search(reader, embedder, topic, filters, wide):
        cosine = hit.dense_score or 0.0
        worded = hit.keyword_score is not None and hit.keyword_score > 0
        if cosine >= MIN_COSINE or (worded and cosine >= MIN_COSINE_WITH_WORDS):
            out[hit.doc_id] = max(cosine, out.get(hit.doc_id, cosine))
    return out


def topic_scores(
    reader: StoreReader, embedder: Embedder, topic: str, doc_ids: Sequence[str],
    *, min_cosine: float = MIN_COSINE, min_cosine_with_words: float = MIN_COSINE_WITH_WORDS,
) -> dict[str, float]:
    """`topic_matches` for the given articles only, whatever else the index holds (a search's top passages
    over a large index could leave a new article out): doc id -> its best passage's cosine with `topic`,
    for those that match by the same rule (close in meaning, or a passage with one of the topic's words and
    not far in meaning). Every passage of each article is compared; a few new articles cost milliseconds."""
    passage_ids = reader.passage_ids(list(dict.fromkeys(doc_ids)))
    flat = [cid for ids in passage_ids.values() for cid in ids]
    if not flat:
        return {}
    hits = reader.hits(flat)
    vectors = reader.vectors(flat)
    query = np.asarray(embedder.encode([topic])[0], dtype=np.float32)
    cosines = vectors @ query
    words = set(keyword_terms(topic))
    out: dict[str, float] = {}
    for cid, cosine in zip(flat, cosines.tolist(), strict=True):
        hit = hits.get(cid)
        if hit is None:
            continue
        worded = bool(words) and not words.isdisjoint(keyword_terms(hit.text))
        if cosine >= min_cosine or (worded and cosine >= min_cosine_with_words):
            out[hit.doc_id] = max(cosine, out.get(hit.doc_id, cosine))
    return out
