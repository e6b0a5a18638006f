"""Answers without a language model: the sentences of the retrieved passages that best answer the question.

Each chosen sentence is quoted as written and followed by the number of the article it came from, so
every statement in an extractive answer is checkable word for word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.answers import NOT_FOUND_TEXT, Answer, Citation
from index.chunking import sentence_spans
from index.embedding import Embedder
from index.hits import Hit
from index.query import stem
from index.search import Grounding
from index.store import keyword_terms


@dataclass(frozen=True)
class ExtractiveOptions:
    max_sentences: int = 5
    min_relevance: float = 0.35  # best passage cosine below this (with weak keyword support) = not found
    passages: int = 6  # how many top hits sentences are drawn from
    redundancy: float = 0.82  # a sentence this similar (cosine) to one already chosen is skipped


@dataclass(frozen=True)
class Candidate:
    hit_rank: int
    hit: Hit
    start: int  # offsets within hit.text
    end: int
    text: str


def term_set(text: str) -> set[str]:
    return {stem(t) for t in keyword_terms(text)}


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


_LETTERS = re.compile(r"[A-Za-z]")


def candidates(hits: Sequence[Hit], limit: int) -> list[Candidate]:
    out: list[Candidate] = []
    seen: set[str] = set()
    for rank, hit in enumerate(hits[:limit]):
        for s, e, _ in sentence_spans(hit.text):
            text = hit.text[s:e].strip()
            words = text.split()
            if len(words) < 5 or not _LETTERS.search(text):
                continue
            if text[-1] not in ".!?\"'”’)" and len(words) < 10:
                continue  # a heading or a list fragment, not a statement
            key = text.lower()
            if key in seen:  # the same sentence in two overlapping passages
                continue
            seen.add(key)
            out.append(Candidate(rank, hit, s, e, text))
    return out


# Words that mark a sentence as the kind of statement a question type asks for (classic answer typing).
ANSWER_CUES: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"^\W*why\b|\breasons?\b|\bwhat (drove|drives|led|caused|motivated)\b", re.I),
     re.compile(r"\b(because|due to|driven by|reasons?|aims? to|in order to|so that|incentives?|motivat\w*|"
                r"strateg\w*|to (save|cut|reduce|lower|gain|boost|prove|showcase|bolster|avoid|compete)|costs?|"
                r"as a result|thanks to|amid|twofold|firstly|secondly|confidence|pressure|demand)\b", re.I)),
    (re.compile(r"\bhow (much|many|large|big|fast|long)\b|\bwhat (price|share|percentage)\b", re.I),
     re.compile(r"[$€£¥]\s?\d|\d+(\.\d+)?\s?(%|percent|billion|million|thousand|units|GW|GWh|kWh|nm|km)|\b\d{2,}\b",
                re.I)),
    (re.compile(r"^\W*when\b|\bwhat (date|year|month|day)\b", re.I),
     re.compile(r"\b(19|20)\d{2}\b|\b(January|February|March|April|May|June|July|August|September|October|"
                r"November|December|Q[1-4]|quarter|spring|summer|autumn|fall|winter)\b")),
    (re.compile(r"^\W*who\b|\bwhich (company|firm|executive|person)\b", re.I),
     re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b|\b(CEO|chief|founder|president|said|told)\b")),
]
CUE_BOOST = 0.1
_CONTINUES = re.compile(r"^\W*(firstly|secondly|thirdly|first|second|finally|this|that|these|it|they|such)\b", re.I)


def answer_cue(question: str) -> re.Pattern[str] | None:
    for asks, marks in ANSWER_CUES:
        if asks.search(question):
            return marks
    return None


def is_vague(text: str) -> bool:
    """A short lead-in ("Secondly, the deal has a strong financial incentive.") whose point comes next."""
    return len(text.split()) < 14 or text.rstrip().endswith(":")


def extractive_answer(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    opts: ExtractiveOptions = ExtractiveOptions(),
    *,
    question_vector: np.ndarray | None = None,
    grounding: Grounding | None = None,
) -> Answer:
    """Compose a cited answer from `hits` (best first), or a plain "not found".

    A sentence's score mixes its cosine with the question alone and in its article's context
    (title prepended: a sentence like "The decision is driven by cost" says nothing alone), its share
    of the question's words, a boost when it has what the question type asks for (a reason, a number,
    a date, a name), and a small prior for the passage's rank.
    """
    hits = tuple(hits)
    if grounding is not None and not grounding.ok:  # the question is about something the index lacks
        return not_found(question, hits)
    if not hits or not is_relevant(question, hits, opts.min_relevance):
        return not_found(question, hits)
    cands = candidates(hits, opts.passages)
    if not cands:
        return not_found(question, hits)
    if question_vector is None:
        question_vector = embedder.encode([question])[0]
    n = len(cands)
    vectors = embedder.encode([c.text for c in cands] + [f"{c.hit.title}: {c.text}" for c in cands])
    alone, in_context = vectors[:n] @ question_vector, vectors[n:] @ question_vector
    q_terms = term_set(question)
    cue = answer_cue(question)
    scores = []
    for i, c in enumerate(cands):
        overlap = len(q_terms & term_set(c.text)) / len(q_terms) if q_terms else 0.0
        prior = 0.05 * (1 - c.hit_rank / max(1, opts.passages))
        boost = CUE_BOOST if cue is not None and cue.search(c.text) else 0.0
        scores.append(0.45 * float(alone[i]) + 0.55 * float(in_context[i]) + 0.15 * overlap + prior + boost)
    order = np.argsort(scores)[::-1]
    sentence_vectors = vectors[:n]
    chosen: list[int] = []
    best = scores[order[0]]

    def redundant(i: int) -> bool:
        return bool(chosen) and float(np.max(sentence_vectors[chosen] @ sentence_vectors[i])) >= opts.redundancy

    for i in order:
        if len(chosen) >= opts.max_sentences:
            break
        if scores[i] < 0.8 * best and len(chosen) >= 2:
            break
        if i in chosen or redundant(i):
            continue
        if chosen and cands[i].hit.doc_id != cands[chosen[0]].hit.doc_id and scores[i] < 0.9 * best:
            continue  # another article must be nearly as relevant to join the answer
        chosen.append(int(i))
        for j in companions(cands, int(i)):
            if len(chosen) < opts.max_sentences and j not in chosen and not redundant(j):
                chosen.append(j)
    return compose(question, hits, [cands[i] for i in chosen])


_ENUM_LATER = re.compile(r"^\W*(secondly|second,|thirdly|third,|finally|lastly)\b", re.I)
_ENUM_FIRST = re.compile(r"^\W*(firstly|first,|first of all)\b", re.I)


def companions(cands: Sequence[Candidate], i: int) -> list[int]:
    """Sentences that must accompany sentence i to make sense: the point after a lead-in, and the
    first item of an enumeration whose later item ("Secondly, …") was chosen."""
    out = []
    c = cands[i]
    if _ENUM_LATER.search(c.text):
        for j in range(i - 1, -1, -1):
            if cands[j].hit is not c.hit:
                break
            if _ENUM_FIRST.search(cands[j].text):
                out.append(j)
                break
    if is_vague(c.text) and i + 1 < len(cands) and cands[i + 1].hit is c.hit:
        out.append(i + 1)
    return out


def compose(question: str, hits: tuple[Hit, ...], chosen: Sequence[Candidate]) -> Answer:
    """Order sentences by article (most relevant article first), then by position; number the articles."""
    numbers: dict[str, int] = {}
    for c in chosen:  # chosen is in relevance order: the best article gets [1]
        numbers.setdefault(c.hit.doc_id, len(numbers) + 1)
    ordered = sorted(chosen, key=lambda c: (numbers[c.hit.doc_id], c.hit.start + c.start))
    text = " ".join(f"{c.text} [{numbers[c.hit.doc_id]}]" for c in ordered)
    used: dict[str, list[Hit]] = {}
    for c in chosen:
        bucket = used.setdefault(c.hit.doc_id, [])
        if c.hit not in bucket:
            bucket.append(c.hit)
    citations = tuple(
        Citation(number=n, hits=tuple(used[doc_id])) for doc_id, n in sorted(numbers.items(), key=lambda x: x[1])
    )
    return Answer(question=question, text=text, citations=citations, hits=hits, found=True)


def not_found(question: str, hits: Sequence[Hit]) -> Answer:
    return Answer(question=question, text=NOT_FOUND_TEXT, citations=(), hits=tuple(hits), found=False)
