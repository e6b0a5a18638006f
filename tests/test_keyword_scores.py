"""Keyword search from cached per-word bm25 (index.keyword_scores) equals FTS5's own OR query."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from newsbot.index.hits import Filters
from newsbot.index.store.embedded.keyword_scores import TermScores, top_k
from newsbot.index.store.embedded.layout import Layout
from newsbot.index.store.embedded.reader import open_current
from newsbot.index.text import fts_query, keyword_terms

QUESTIONS = [
    "Why is Xiaomi dropping Leica for its camera partnership?",
    "What did Nvidia say about Blackwell GPU shipments and data center revenue in 2025?",
    "gpt-4 U.S. regulators $3 price cut, 5G chips",  # phrases FTS5 reads as several tokens
    "Samsung Galaxy smartphone sales Apple iPhone market share",
    "the of and",  # stopwords only: no query
]


def _fts5_top(reader, terms: list[str], k: int, head_weight: float, filters: Filters) -> list[tuple[int, float]]:
    """FTS5's own ranking of the OR query, filtered in SQL (what keyword_search did before the cache)."""
    where, params = reader.catalog.filter_sql(filters, alias="d")
    sql = (
        "SELECT f.rowid, -bm25(chunks_fts, ?, 1.0) FROM chunks_fts f "
        + ("JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.doc_id " if where else "")
        + "WHERE chunks_fts MATCH ? " + (f"AND {where} " if where else "")
        + "ORDER BY bm25(chunks_fts, ?, 1.0), f.rowid LIMIT ?"
    )
    rows = reader.conn().execute(sql, [head_weight, fts_query(terms), *params, head_weight, k]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


@pytest.mark.parametrize("head_weight", [1.0, 3.0])
def test_same_passages_and_scores_as_fts5(corpus_index: Path, head_weight: float) -> None:
    reader = open_current(Layout(corpus_index))
    source = reader.sources()[0]
    filters = [Filters(), Filters((source,)), Filters(since=datetime(2025, 1, 1, tzinfo=UTC))]
    compared = 0
    for question in QUESTIONS:
        terms = keyword_terms(question)
        for f in filters:
            for k in (1, 5, 60):
                want = _fts5_top(reader, terms, k, head_weight, f) if terms else []
                got = reader.keyword_search(terms, k, f, head_weight)
                assert [c for c, _ in got] == [c for c, _ in want], (question, f, k)
                assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-12, atol=0)
                compared += bool(want)
    assert compared >= 20  # the corpus answers most of these: the comparison is not vacuous
    assert reader.term_scores.size > 0


def test_budget_drops_least_recently_used_words() -> None:
    fetched: list[str] = []
    postings = {"a": ([1, 2, 3], [1.0, 2.0, 3.0]), "b": ([2, 4], [5.0, 1.0]), "c": ([9], [0.5])}

    def fetch(word: str, weight: float) -> tuple[np.ndarray, np.ndarray]:
        fetched.append(word)
        ids, scores = postings[word]
        return np.array(ids, dtype=np.int64), np.array(scores) * weight

    cache = TermScores(fetch, budget=5)
    assert cache.top(["a", "b"], 2) == [(2, 7.0), (3, 3.0)]  # 2 holds both words: 2.0 + 5.0
    assert cache.top(["a", "b"], 3) == [(2, 7.0), (3, 3.0), (1, 1.0)]
    assert fetched == ["a", "b"] and cache.size == 5  # both kept: 3 + 2 postings
    cache.top(["a"], 1)  # "a" used last: "b" is the least recently used
    cache.top(["c"], 1)  # 6 postings > budget: "b" goes
    assert cache.size == 4
    cache.top(["a", "c"], 1)
    assert fetched == ["a", "b", "c"]
    cache.top(["b"], 1)
    assert fetched == ["a", "b", "c", "b"]  # fetched again
    assert cache.top(["a"], 2, head_weight=2.0) == [(3, 6.0), (2, 4.0)]  # another weight: another entry


def test_top_k_ties_filters_and_empty() -> None:
    ids = np.array([5, 7, 9, 11], dtype=np.int64)
    parts = [(ids, np.array([1.0, 2.0, 2.0, 2.0])), (np.array([5], dtype=np.int64), np.array([1.0]))]
    assert top_k(parts, 2) == [(5, 2.0), (7, 2.0)]  # four tied at 2.0: the lowest ids
    allowed = np.zeros(10, dtype=bool)
    allowed[[9, 5]] = True  # id 11 lies beyond the mask: not allowed
    assert top_k(parts, 5, allowed) == [(5, 2.0), (9, 2.0)]
    assert top_k(parts, 0) == [] and top_k([], 3) == []
    assert top_k(parts, 3, np.zeros(3, dtype=bool)) == []


def test_common_word_counts_are_sampled_in_large_indexes(corpus_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import newsbot.index.store.embedded.reader as store

    reader = open_current(Layout(corpus_index))
    words = ["the", "xiaomi", "leica", "said", "nvidia", "2025", "zzzunknown"]
    exact = {w: reader.passage_frequency(w) for w in words}
    assert exact["zzzunknown"] == 0 and exact["the"] > exact["leica"] > 0
    monkeypatch.setattr(store, "DF_SAMPLE_FROM", 1)
    monkeypatch.setattr(store, "DF_SAMPLE_SHARE", 2)
    monkeypatch.setattr(store, "DF_SAMPLE_MIN", 8)
    half = reader.manifest.next_chunk_id // 2
    sampled = 0
    for w in words:
        in_half = reader.conn().execute(
            "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid < ?", (f'"{w}"', half)
        ).fetchone()[0]
        got = reader.passage_frequency(w)
        if in_half >= 8:  # common: counted in the older half of the ids, doubled
            assert got == min(reader.manifest.chunks, 2 * in_half)
            assert 0.5 * exact[w] <= got <= 2 * exact[w]
            sampled += 1
        else:  # rare: exact
            assert got == exact[w]
    assert sampled >= 2 and exact["zzzunknown"] == reader.passage_frequency("zzzunknown")
