"""Hybrid retrieval with query analysis: each part of a question retrieved on its own, then merged.

    question ─analyze─> parts (text + outlet + dates)          (retrieval/query.py)
       │                   │
       └─ whole question   └─ one retrieval per part, filtered to the part's outlet / dates
             │                    │
    each retrieval: dense (FAISS) + bm25 (FTS5's, head column weighted; store/embedded/keyword_scores.py) ─> weighted RRF
             └──────────── merged by weighted RRF ─> best 30 re-scored by their best sentence
                               ─> per-article cap, every part keeps its best passages ─> Hits

Questions about news name where and when things were reported and often ask about several reports at
once ("Does the TechCrunch article ... while The Verge ..."). A single retrieval for the whole question
returns passages about its most talked-about part; retrieving each part separately, restricted to the
outlet that part names, finds evidence for all of them.

The store is reached only through `StoreReader` (`index.store.base`: dense_search, keyword_search, hits,
vectors, sources, latest, has_passage_with_all, passage_frequency for the re-scoring's idf), which is
what every backend provides. Nothing here loops in Python over the whole index: the store does the
scanning. Options: `index.retrieval.options`; the index's outlets and idf: `vocabulary.py`; whether a
question names what the index lacks: `grounding.py`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Filters, Hit
from newsbot.index.retrieval.options import SearchOptions
from newsbot.index.retrieval.query import (
    EVENT_GRACE,
    QueryPlan,
    SubQuery,
    analyze,
)
from newsbot.index.retrieval.vocabulary import lexicon_for, term_weights
from newsbot.index.store.base import StoreReader
from newsbot.index.text import KEYWORD_WORD, keyword_terms, keyword_word, sentence_spans, stem


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


# ---------------------------------------------------------------------------------------------- analysis

def plan_query(reader: StoreReader, query: str, opts: SearchOptions = SearchOptions()) -> QueryPlan:
    if not opts.self_query:
        return QueryPlan(query)
    lexicon, year = lexicon_for(reader)
    return analyze(query, lexicon, default_year=year, max_parts=opts.max_parts)


def _narrow(base: Filters, part: SubQuery, use_dates: bool) -> Filters | None:
    """The user's filters further restricted to a part's outlet and dates; None if they exclude each other."""
    sources = base.sources
    if part.sources:
        if base.sources:
            wanted = {s.casefold() for s in base.sources}
            sources = tuple(s for s in part.sources if s.casefold() in wanted)
            if not sources:
                return None
        else:
            sources = part.sources
    since, until = base.since, base.until
    if use_dates:
        if part.since and (since is None or part.since > since):
            since = part.since
        if part.until and (until is None or part.until < until):
            until = part.until
        if since and until and since > until:
            return None
    return Filters(sources, since, until)


# ---------------------------------------------------------------------------------------------- search


@dataclass
class _Retrieval:
    text: str
    filters: Filters
    weight: float
    quota: int
    vector: np.ndarray | None = None
    ranking: list[int] | None = None


def _keyword_rankings(reader: StoreReader, retrievals: Sequence[_Retrieval],
                      opts: SearchOptions) -> list[list[tuple[int, float]]]:
    """Each retrieval's bm25 ranking: up to `opts.candidates` (chunk_id, bm25), best first."""
    return [
        reader.keyword_search(_keyword_query_terms(reader, keyword_terms(r.text), opts), opts.candidates,
                              r.filters, opts.head_weight)
        for r in retrievals
    ]


def _keyword_query_terms(reader: StoreReader, terms: list[str], opts: SearchOptions) -> list[str]:
    """The words of a bm25 query: all of them, or in a large index (`max_query_terms_from` passages) the
    `max_query_terms` rarest, taken rarest first while the passages holding them add up to at most
    `max_query_postings` (none when even the rarest word is in more passages: the dense side answers).

    The rarest words carry the query; a word costs in proportion to the passages holding it (its bm25 is
    read from FTS5 once per index version, ~2 µs a passage, then summed in numpy), so a common word costs
    the most and adds the least. The budget bounds a query's cost whatever the index size. bm25 of the
    words kept is exact; word frequencies come from the cached idf (common words' sampled in large indexes)."""
    limit_terms = 0 < opts.max_query_terms < len(terms)
    if not terms or not (limit_terms or opts.max_query_postings > 0) or reader.manifest.chunks < opts.max_query_terms_from:
        return terms
    idf = term_weights(reader, terms)
    n = max(1, reader.manifest.chunks)
    keep: set[str] = set()
    total = 0.0
    for t in sorted(terms, key=idf.__getitem__, reverse=True)[: opts.max_query_terms or None]:
        x = math.expm1(idf[t])  # idf = log(1 + (n - df + 0.5) / (df + 0.5)), solved for df
        df = (n + 0.5 - 0.5 * x) / (1 + x)
        if opts.max_query_postings > 0 and total + df > opts.max_query_postings:
            break
        keep.add(t)
        total += df
    return [t for t in terms if t in keep]


def search(
    reader: StoreReader,
    embedder: Embedder,
    query: str,
    filters: Filters = Filters(),
    opts: SearchOptions = SearchOptions(),
    *,
    query_vector: np.ndarray | None = None,
    plan: QueryPlan | None = None,
) -> list[Hit]:
    """The `opts.top_k` best passages for `query` (best first), honouring `filters`."""
    if plan is None:
        plan = plan_query(reader, query, opts)
    retrievals = [_Retrieval(query, filters, 1.0, 0, query_vector)]
    for part in plan.parts or _dated_whole(plan, opts):
        narrowed = _narrow(filters, part, opts.date_filter)
        if narrowed is not None:
            retrievals.append(_Retrieval(part.text, narrowed, opts.part_weight, opts.part_quota))
    todo = list(dict.fromkeys(r.text for r in retrievals if r.vector is None))
    if todo:
        vectors = dict(zip(todo, embedder.encode(todo), strict=True))
        for r in retrievals:
            if r.vector is None:
                r.vector = vectors[r.text]
    if query_vector is None:
        query_vector = retrievals[0].vector
    assert query_vector is not None
    dense = [reader.dense_search(r.vector[None, :], opts.candidates, r.filters)[0] for r in retrievals]
    keyword = _keyword_rankings(reader, retrievals, opts)

    keyword_scores: dict[int, float] = {}
    for r, dense_ranking, keyword_ranking in zip(retrievals, dense, keyword, strict=True):
        fused = rrf(
            [[cid for cid, _ in dense_ranking], [cid for cid, _ in keyword_ranking]],
            [opts.dense_weight, opts.keyword_weight],
            opts.rrf_k,
        )
        r.ranking = sorted(fused, key=fused.__getitem__, reverse=True)
        for cid, score in keyword_ranking:
            keyword_scores[cid] = max(score, keyword_scores.get(cid, score))
    rankings = [r.ranking or [] for r in retrievals]
    fused = rrf(rankings, [r.weight for r in retrievals], opts.rrf_k)
    ranked = sorted(fused, key=fused.__getitem__, reverse=True)
    must = {cid for r in retrievals if r.quota > 0 for cid in (r.ranking or [])[: r.quota]}
    head = max(opts.rerank_depth, opts.top_k * 3)  # passages read first; enough unless few articles fill them
    stored = reader.hits(ranked[:head] + sorted(must))
    if opts.rerank_depth > 0 and (opts.rerank_lexical > 0 or opts.rerank_dense > 0):
        fused, ranked = _rerank(reader, ranked, retrievals, opts, stored)
    found_by: dict[int, list[int]] = {}
    for i, ranking in enumerate(rankings):
        for cid in ranking[: opts.top_k]:
            found_by.setdefault(cid, []).append(i)

    def result() -> list[Hit]:
        ordered = [
            replace(stored[cid], score=fused[cid], keyword_score=keyword_scores.get(cid),
                    extra={"parts": tuple(found_by.get(cid, ()))})
            for cid in ranked
            if cid in stored
        ]
        return _with_quotas(ordered, retrievals, opts)

    hits = result()
    if len(hits) < opts.top_k and len(ranked) > head:  # the per-article cap left gaps: read further down
        stored.update(reader.hits(ranked[head : max(100, opts.top_k * 8)]))
        hits = result()
    return with_dense_scores(reader, hits, query_vector)


def _dated_whole(plan: QueryPlan, opts: SearchOptions) -> tuple[SubQuery, ...]:
    """A question that names a period but no outlet ("What did Nvidia announce in January 2025?") is also
    retrieved within that period, so the articles published then are among the hits."""
    if not (opts.date_filter and plan.dates):
        return ()
    starts, ends = [d.since for d in plan.dates], [d.until for d in plan.dates]
    since = None if None in starts else min(s for s in starts if s is not None)
    until = None if None in ends else max(e for e in ends if e is not None)
    if until is not None and not any(d.published for d in plan.dates):
        until += EVENT_GRACE  # what happened on a day is reported in the days after it
    return (SubQuery(plan.question, (), since, until),) if since or until else ()


_stems: dict[str, str] = {}  # a raw word (lower case) -> its stemmed keyword term, "" for stopwords


def _stemmed(raw: str) -> str:
    word = keyword_word(raw)
    term = stem(word) if word else ""
    if len(_stems) < 500_000:
        _stems[raw] = term
    return term


@functools.lru_cache(maxsize=4096)
def _sentence_terms(text: str) -> tuple[frozenset[str], ...]:
    """The stemmed keyword terms (`stem(w) for w in keyword_terms(sentence)`) of each sentence of a passage
    (cached: passages recur across questions)."""
    out = []
    for s, e, _ in sentence_spans(text):
        raws = KEYWORD_WORD.findall(text[s:e].lower())
        terms = set(map(_stems.get, raws))  # known words at C speed; None marks a word not seen before
        if None in terms:
            terms = {_stems[r] if r in _stems else _stemmed(r) for r in raws}
        terms.discard("")
        out.append(frozenset(terms))
    return tuple(out)


def _rerank(
    reader: StoreReader, ranked: list[int], retrievals: Sequence[_Retrieval], opts: SearchOptions,
    texts: dict[int, Hit],
) -> tuple[dict[int, float], list[int]]:
    """Re-score the best `rerank_depth` fused candidates by their best sentence.

    A passage holding one sentence that says what a part of the question asks beats a passage that
    mentions the same words scattered over a long text: the lexical feature is the largest share of a
    query's idf-weighted words that one sentence of the passage contains (over the whole question and
    each part); the dense feature the best cosine of the passage with any part. Candidates below the
    depth keep their order after the re-scored ones. `texts`: the passages, by chunk id.
    """
    head = ranked[: opts.rerank_depth]
    base = {cid: 1.0 / (opts.rrf_k + rank) for rank, cid in enumerate(ranked, 1)}
    scores = dict(base)
    if opts.rerank_lexical > 0:
        queries = []
        for r in retrievals:
            terms = {stem(t): w for t, w in term_weights(reader, keyword_terms(r.text)).items()}
            total = sum(terms.values())
            if total > 0:
                queries.append((terms, total))
        for cid in head:
            hit = texts.get(cid)
            if hit is None or not queries:
                continue
            best = 0.0
            for words in _sentence_terms(hit.text):
                for terms, total in queries:
                    if not words.isdisjoint(terms):  # summed in the query's order: deterministic
                        best = max(best, sum(w for t, w in terms.items() if t in words) / total)
            scores[cid] += opts.rerank_lexical * best
    if opts.rerank_dense > 0:
        vectors = reader.vectors(head)
        parts = np.stack([r.vector for r in retrievals if r.vector is not None])
        best_cos = (vectors @ parts.T).max(axis=1)
        for cid, c in zip(head, best_cos.tolist(), strict=True):
            scores[cid] += opts.rerank_dense * c
    reordered = sorted(head, key=scores.__getitem__, reverse=True) + ranked[len(head) :]
    return scores, reordered


def _with_quotas(ordered: list[Hit], retrievals: Sequence[_Retrieval], opts: SearchOptions) -> list[Hit]:
    """The capped top-k of `ordered`, but every part keeps its `quota` best passages in it.

    A passage a part insists on replaces the lowest-ranked passage that no part insists on.
    """
    hits = cap_per_article(ordered, opts.per_article_cap, opts.top_k)
    by_id = {h.chunk_id: h for h in ordered}
    must: list[int] = []  # round robin: every part's best passage, then every part's second best, ...
    ranked_parts = [[cid for cid in r.ranking or [] if cid in by_id][: r.quota] for r in retrievals if r.quota > 0]
    for depth in range(max((len(p) for p in ranked_parts), default=0)):
        for p in ranked_parts:
            if depth < len(p) and p[depth] not in must:
                must.append(p[depth])
    if not must:
        return hits
    chosen = {h.chunk_id for h in hits}
    missing = [cid for cid in must if cid not in chosen]
    if not missing:
        return hits
    protected = set(must)
    result = list(hits)
    for cid in missing:
        for i in range(len(result) - 1, -1, -1):
            if result[i].chunk_id not in protected:
                result.pop(i)
                break
        else:
            if len(result) >= opts.top_k:
                break
        result.append(by_id[cid])
    rank = {h.chunk_id: i for i, h in enumerate(ordered)}
    result.sort(key=lambda h: rank[h.chunk_id])
    return result[: opts.top_k]


def with_dense_scores(reader: StoreReader, hits: Sequence[Hit], query_vector: np.ndarray) -> list[Hit]:
    """Fill in the cosine of hits that only the keyword side found (answers need it for every hit).

    Every hit's `dense_score` is its cosine with the whole question (parts retrieve with their own text).
    """
    ids = [h.chunk_id for h in hits]
    if not ids:
        return []
    sims = reader.vectors(ids) @ query_vector
    return [replace(h, dense_score=float(s)) for h, s in zip(hits, sims.tolist(), strict=True)]
