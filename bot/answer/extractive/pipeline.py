"""Answers without a language model: the sentences of the retrieved passages that answer the question.

    hits ─candidates─> sentences and list blocks (each knows its article's rank, date, outlet, antecedent)
         ─score─> cosine with the question (alone and in its article's context) + its words + answer cue
         ─lead─> the sentence that answers: in the asked period and outlets, carrying what the question
                 kind asks for (a reason, an amount, a date, a name), from the article search put first
                 unless another clearly answers better
         ─parts─> one line per part of a multi-part / comparison question, from that part's outlet
         ─support─> the best remaining sentences within the word budget; one fact once
         ─compose─> text with [n] marks; near-identical sentences of several articles carry all their marks

Each quoted sentence is copied as written and followed by the numbers of the articles it came from, so
every statement of an extractive answer is checkable word for word. The only words that are not quoted
are labels: the outlet and date of a line (`**ChargeLine, 2025-01-03:** …`) and, for a "who / which"
question, the name the cited sentences agree on (`**Sam Altman** — …`).

Stages, one module each: candidates.py, scoring.py (with words.py), lead.py (lead and part lines),
picker.py (support), entity.py, compose.py; options.py holds what can be tuned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from newsbot.bot.answer.answers import Answer
from newsbot.bot.answer.extractive.candidates import candidates
from newsbot.bot.answer.extractive.compose import compose, not_found
from newsbot.bot.answer.extractive.entity import answer_entity, is_person, names_entity
from newsbot.bot.answer.extractive.lead import MEASURE_WORDS, choose_lead, part_rankings, subject_terms
from newsbot.bot.answer.extractive.options import ExtractiveOptions, TermWeights
from newsbot.bot.answer.extractive.picker import Picker
from newsbot.bot.answer.extractive.scoring import is_relevant, score_candidates
from newsbot.bot.answer.extractive.words import word_weights
from newsbot.bot.answer.plan import ENTITY_KINDS, AnswerPlan, plan_answer
from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Hit
from newsbot.index.retrieval.grounding import Grounding
from newsbot.index.text import keyword_terms, stem


def extractive_answer(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    opts: ExtractiveOptions = ExtractiveOptions(),
    *,
    question_vector: np.ndarray | None = None,
    grounding: Grounding | None = None,
    plan: AnswerPlan | None = None,
    term_weight: TermWeights | None = None,
    common_words: frozenset[str] = frozenset(),
) -> Answer:
    """Compose a cited answer from `hits` (best first), or a plain "not found".

    A candidate's score mixes its cosine with the question alone and in its article's context (title
    prepended: "The decision is driven by cost" says nothing alone), its share of the question's
    idf-weighted words (`term_weight`), a boost when it has what the question kind asks for, and a small
    prior for its article's rank. `plan` (see `bot.answer.plan`) decides the lead and the part lines.
    """
    hits = tuple(hits)
    plan = plan or plan_answer(question)
    if grounding is not None and not grounding.ok:  # the question is about something the index lacks
        return not_found(question, hits)
    if not hits or not is_relevant(question, hits, opts.min_relevance):
        return not_found(question, hits)
    cands = candidates(hits, opts.passages)
    if not cands:
        return not_found(question, hits)
    focus = plan.focus or question
    if question_vector is None or focus != question:  # dates are the scope's job, not the sentences'
        question_vector = embedder.encode([focus])[0]
    weights = word_weights(keyword_terms(focus), term_weight)
    own = re.sub(r"\s*\([^()]*\)\s*$", "", focus)  # a follow-up's borrowed words are context, not its subject
    subject = subject_terms(own, hits, common_words, term_weight) if len(plan.parts) < 2 else ()
    outlet_words = {stem(t) for o in plan.outlets for t in keyword_terms(o)}
    subject = tuple(t for t in subject if t not in outlet_words)  # the outlet is the scope's job
    scored = score_candidates(cands, embedder, question_vector, weights, plan, opts.score)
    key_weights = [weights] + [word_weights(keyword_terms(p.text), term_weight) for p in plan.parts]
    rankings = []
    if len(plan.parts) >= 2:
        part_vectors = embedder.encode([p.text for p in plan.parts]) if opts.score.part_cosine else None
        rankings = part_rankings(scored, plan, term_weight, part_vectors)
    parts = [r[0][1] for r in rankings if r]
    asked = [t for t in weights if t not in subject and not t.isdigit() and not MEASURE_WORDS.match(t)]
    # a "who / which" answer opens with the name the evidence agrees on, quoted from a sentence naming it
    entity = answer_entity(scored, plan, hits) if plan.kind in ENTITY_KINDS else ""
    if entity and len(plan.parts) < 2 and not (plan.kind == "who" and is_person(entity)):
        # one story asked about: a name that is not a person's must be in the sentence that answers best
        # on its own merits ("which iphone …?" is not answered by "Apple", the name every article shares)
        plain_lead = choose_lead(scored, plan, key_weights, opts, among=parts, subject=subject, asked=asked)
        if plain_lead is None or not names_entity(entity, cands[plain_lead].text):
            entity = ""
    lead = choose_lead(scored, plan, key_weights, opts, among=parts, subject=subject, asked=asked, entity=entity)
    if lead is None:
        return not_found(question, hits, related=True)
    picker = Picker(scored, opts)
    picker.add(lead, role="lead")
    for i in parts:
        picker.add(i, role="part")
    if len(plan.parts) < 2:
        picker.fill(plan)
    else:
        picker.second_part_sentences(rankings)
        picker.fill(plan, budget_only=True)
    if entity and not names_entity(entity, " ".join(cands[i].text for i in picker.chosen)):
        entity = ""  # the name must be visible in what the answer quotes
    return compose(question, hits, picker, plan, entity)
