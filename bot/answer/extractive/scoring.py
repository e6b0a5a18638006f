"""How relevant each candidate is to the question, and whether the retrieved passages are relevant at
all (below that, the answer is "not found")."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from newsbot.bot.answer.extractive.candidates import Candidate
from newsbot.bot.answer.extractive.options import ScoreWeights
from newsbot.bot.answer.extractive.words import term_set, weighted_share
from newsbot.bot.answer.plan import AnswerPlan
from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Hit
from newsbot.index.text import keyword_terms, stem


def relevance(question: str, hits: Sequence[Hit]) -> tuple[float, float]:
    """(best passage cosine, share of the question's content words found in the best 3 passages)."""
    if not hits:
        return 0.0, 0.0
    best = max((h.dense_score or 0.0) for h in hits)
    q_terms = term_set(question)
    if not q_terms:
        return best, 0.0
    seen: set[str] = set()
    for h in hits[:3]:
        seen |= term_set(h.passage)
    return best, len(q_terms & seen) / len(q_terms)


def is_relevant(question: str, hits: Sequence[Hit], min_relevance: float) -> bool:
    best, coverage = relevance(question, hits)
    return best >= min_relevance or (best >= min_relevance - 0.1 and coverage >= 0.75)


@dataclass
class Scored:
    cands: list[Candidate]
    scores: np.ndarray  # (n,) relevance to the whole question
    vectors: np.ndarray  # (n, dim) unit vectors of "title: text"
    terms: list[set[str]] = field(default_factory=list)  # stemmed words of each candidate
    weights: ScoreWeights = field(default_factory=lambda: ScoreWeights())
    question_weights: dict[str, float] = field(default_factory=dict)  # stemmed question word -> idf


def score_candidates(
    cands: list[Candidate], embedder: Embedder, question_vector: np.ndarray, weights: dict[str, float],
    plan: AnswerPlan, w: ScoreWeights | None = None,
) -> Scored:
    """Relevance of each candidate to the question: cosine with the question alone and in its article's
    context, share of its idf-weighted words, the answer cue, the article's rank and the question's year;
    a sentence right after a relevant one inherits part of its relevance ("Sales were hurt by …" after
    "Tesla delivered 1.64 million cars, its second annual decline")."""
    w = w or ScoreWeights()
    n = len(cands)
    vectors = embedder.encode([f"{c.hit.title}: {c.text}" for c in cands])  # a sentence says more in context
    in_context = vectors @ question_vector
    terms = [term_set(c.text) for c in cands]
    n_docs = max(1, max((c.doc_rank for c in cands), default=0) + 1)
    base = np.zeros(n, dtype=np.float32)
    about: dict[str, float] = {}  # per article: how much its title is about the question
    for i, c in enumerate(cands):
        overlap = weighted_share(weights, terms[i]) if weights else 0.0
        prior = w.article_rank * (1 - c.doc_rank / n_docs)
        boost = w.cue * plan.cue_strength(c.text)
        echo = 0.0
        if w.title_echo:
            title = _echo_terms(c.hit.title)
            if c.doc_id not in about:
                about[c.doc_id] = weighted_share(weights, set(title)) if weights else 0.0
            echo = about[c.doc_id] * (len(title & _echo_terms(c.text)) / len(title) if title else 0.0)
        base[i] = (w.context * float(in_context[i]) + w.lexical * overlap + prior
                   + boost + w.year * _year_fit(c, plan.year, plan.years) + w.title_echo * echo)
    scores = base.copy()
    for i in range(1, n):
        if cands[i - 1].hit is cands[i].hit and cands[i - 1].end <= cands[i].start:
            scores[i] += w.previous * max(0.0, float(base[i - 1] - base[i]))
    return Scored(cands, scores, vectors, terms, w, weights)


_YEARS = re.compile(r"(?<![\w$€£¥.-])((?:19|20)\d{2})(?![\w-])")


@functools.lru_cache(maxsize=8192)
def _echo_terms(text: str) -> frozenset[str]:
    """Stemmed words and bare numbers ("$590" -> "590") of a text, for comparing a sentence with a title."""
    return frozenset(stem(t.lstrip("$€£¥")) for t in keyword_terms(text))


def _year_fit(c: Candidate, year: int | None, years: Sequence[int] = ()) -> float:
    """A question about one year ("in 2025"): a sentence naming that year gains, one naming only other
    years loses (so does one of an article whose title names only another year), and an article
    published before that year began cannot report on it. A question about a change between years
    ("from 2024 to 2025"): a sentence naming both gains most."""
    if year is None:
        if len(years) < 2:
            return 0.0
        named = {int(y) for y in _YEARS.findall(c.text)}
        return 0.03 * len(named & set(years)) - (0.03 if named and not named & set(years) else 0.0)
    at = c.hit.published_at
    if at is not None and at.year < year:
        return -0.1
    fit = 0.0
    in_title = {int(y) for y in _YEARS.findall(c.hit.title)}
    if in_title and year not in in_title:
        fit -= 0.04
    named = {int(y) for y in _YEARS.findall(c.text)}
    if named:
        fit += 0.03 if year in named else -0.05
    return fit
