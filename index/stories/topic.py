"""Which articles are about a topic: hybrid search (the one questions use), kept above a relevance floor.

Search always returns its best passages, relevant or not; a topic ("OpenAI", "chip export rules") must
select only articles about it. An article matches when one of its passages was found by the topic's
words (bm25) and is not far from it in meaning, or is close in meaning alone.
"""

from __future__ import annotations

from dataclasses import replace

from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Filters
from newsbot.index.retrieval.options import SearchOptions
from newsbot.index.retrieval.search import search
from newsbot.index.store.base import StoreReader

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
