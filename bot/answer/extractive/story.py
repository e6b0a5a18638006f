"""A story's lead: the sentence of its articles' ledes that states it, chosen as an answer's lead is.

The story's articles' titles are the "question" (what the story is about: their words, idf-weighted) and
the story's mean article vector is its meaning; candidates, scoring and `choose_lead` are the answer's,
planned as a "what happened" question, so an article's opening sentence that restates its title is
preferred and one that points back at something unsaid is not. A sentence of another of the story's
articles that says the same (the answer's `merge_similarity` test) cites that article too: the lead is
cited to every outlet that states it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from newsbot.bot.answer.extractive.candidates import REFERS_BACK, candidates
from newsbot.bot.answer.extractive.lead import choose_lead, lead_score
from newsbot.bot.answer.extractive.options import ExtractiveOptions, TermWeights
from newsbot.bot.answer.extractive.scoring import score_candidates
from newsbot.bot.answer.extractive.words import word_weights
from newsbot.bot.answer.plan import AnswerPlan
from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Hit
from newsbot.index.stories.stories import Story
from newsbot.index.text import keyword_terms, sentence_spans

LEAD_ARTICLES = 4  # the story's best articles whose ledes offer lead sentences
LEAD_SENTENCES = 6  # ... their first sentences (a news story is stated at its top; also bounds the embedding)


def story_lead(
    story: Story, embedder: Embedder, *, term_weight: TermWeights | None = None,
    opts: ExtractiveOptions = ExtractiveOptions(), articles: int = LEAD_ARTICLES, sentences: int = LEAD_SENTENCES,
) -> Story:
    """`story` with its lead sentence (quoted as written, from one of its own articles) and the ids of
    the articles that state it, the lead's own first. A story whose ledes hold no quotable sentence is
    led by its best article's first sentence as it stands."""
    hits = [_first_sentences(h, sentences) for a in story.articles[:articles] for h in a.passages[:1]]
    hits = [h for h in hits if h.text.strip()]
    cands = candidates(hits, len(hits))
    if not cands:
        return story.with_lead(_opening(story), [story.articles[0].doc.id])
    titles = " ".join(dict.fromkeys(a.doc.title for a in story.articles))
    weights = word_weights(keyword_terms(titles), term_weight)
    plan = AnswerPlan(question=story.title, kind="what_happened", focus=story.title)
    scored = score_candidates(cands, embedder, story.centroid, weights, plan, opts.score)
    lead = choose_lead(scored, plan, [weights], opts)
    if lead is None:  # no sentence carries the titles' words: the best one that stands on its own
        standing = [i for i, c in enumerate(cands) if c.antecedent is not None or not REFERS_BACK.match(c.text)]
        lead = max(standing or range(len(cands)), key=lambda i: lead_score(scored, plan, i))
    c = cands[lead]
    text = c.text if c.antecedent is None else f"{cands[c.antecedent].text} {c.text}"
    stating = [c.doc_id]
    for j, other in enumerate(cands):
        if other.doc_id in stating or j == lead:
            continue
        union = scored.terms[j] | scored.terms[lead]
        if union and len(scored.terms[j] & scored.terms[lead]) / len(union) >= opts.merge_similarity:
            stating.append(other.doc_id)  # the same fact in another outlet's words: cite it too
    return story.with_lead(text, stating)


def _first_sentences(hit: Hit, n: int) -> Hit:
    """`hit` cut after its n-th sentence."""
    spans = sentence_spans(hit.text)
    if len(spans) <= n:
        return hit
    cut = spans[n - 1][1]
    return replace(hit, text=hit.text[:cut], end=hit.start + cut)


def _opening(story: Story) -> str:
    """The best article's first sentence (or first line) as it stands."""
    text = story.articles[0].passages[0].text.strip() if story.articles[0].passages else ""
    spans: Sequence[tuple[int, int, bool]] = sentence_spans(text)
    return " ".join(text[spans[0][0]:spans[0][1]].split()) if spans else " ".join(text.split()[:40])
