"""`SearchOptions`: how hybrid search runs (`index.retrieval.search`), with the bot's defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchOptions:
    """How hybrid search runs. These defaults are the bot's: `bot.config.Settings` takes its search
    settings' defaults from here, so anything that builds `SearchOptions()` searches like the bot (tuned
    on the MultiHop-RAG dev split; see docs/benchmarks.md)."""

    top_k: int = 10
    candidates: int = 60  # per retriever, before fusion
    dense_weight: float = 1.0
    keyword_weight: float = 4.0  # bm25 beats MiniLM on news: names, numbers, outlets
    rrf_k: int = 10
    per_article_cap: int = 3
    head_weight: float = 1.0  # bm25 weight of the title/outlet/date column relative to the body
    self_query: bool = True  # outlets/dates named in the question become per-part filtered retrievals
    part_weight: float = 1.0  # weight of each part's ranking relative to the whole question's in the merge
    part_quota: int = 2  # each part's best passages that are always kept in the result
    date_filter: bool = True  # a part's dates restrict its retrieval (else only its outlet does)
    max_parts: int = 6
    max_query_terms: int = 6  # bm25 query words per retrieval, rarest first (0 = all) ...
    max_query_postings: int = 1_000  # ... and only while their passages add up to at most this (0 = no limit) ...
    max_query_terms_from: int = 50_000  # ... in an index of at least this many passages (0 = any size)
    rerank_depth: int = 30  # fused candidates re-scored by their best sentence (0 = no re-scoring)
    rerank_lexical: float = 0.15  # weight of the best sentence's share of the query's (idf-weighted) words
    rerank_dense: float = 0.05  # weight of the best cosine between a part's vector and the passage's
