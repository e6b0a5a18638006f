"""The sentence that opens the answer, and for a multi-part question one line per part: only from the
asked period and outlets, carrying what the question kind asks for, naming what it is about."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

from newsbot.bot.answer.extractive.candidates import REFERS_BACK, Candidate
from newsbot.bot.answer.extractive.entity import names_entity
from newsbot.bot.answer.extractive.options import ExtractiveOptions, TermWeights
from newsbot.bot.answer.extractive.scoring import Scored
from newsbot.bot.answer.extractive.words import (
    QUESTION_FILLER,
    covers,
    term_set,
    weighted_share,
    word_weights,
)
from newsbot.bot.answer.plan import DATE, REQUIRED_CUE_KINDS, STRICT_CUE_KINDS, AnswerPlan
from newsbot.index.hits import Hit
from newsbot.index.text import keyword_terms, stem


def subject_terms(
    question: str, hits: Sequence[Hit], common: frozenset[str] = frozenset(), term_weight: TermWeights | None = None
) -> tuple[str, ...]:
    """The words of the names a question is about (stemmed): a lead must name them all.

    A name is a word the question capitalises ("Zoox"), a model number or the word before one ("s26",
    "h20", "pixel 10"), a word the retrieved passages mostly write capitalised ("nvidia", "echostar" as
    users type them), or a word that is neither common English (`common`: the embedding model's
    vocabulary) nor anywhere in the passages ("zoox"): the passages cannot be about it."""
    text = " ".join(h.text for h in hits).replace("-", "")  # (titles are in title case: no evidence)
    words = [w.strip(".'’-") for w in re.findall(r"[\w'’.-]+", question)]
    out: list[str] = []
    for n, word in enumerate(words):
        lower = word.lower()
        if not keyword_terms(lower) or lower in QUESTION_FILLER:
            continue
        if lower in QUALIFIERS:
            continue
        following = words[n + 1] if n + 1 < len(words) else ""
        model = (bool(re.fullmatch(r"(?=.*\d)(?=.*[a-z])[a-z0-9-]+", lower)) and not _UNIT_AMOUNT.fullmatch(lower)) or (
            lower.isalpha() and bool(re.fullmatch(r"\d{1,4}[a-z]?", following.lower()))  # "pixel 10", "rtx 5090"
        )
        name = model or (word[:1].isupper() and n > 0)
        if not name:
            stem_ = lower.replace("-", "")[:5]
            seen = re.findall(r"(?<![\w-])" + re.escape(stem_) + r"[\w-]*", text, re.I) if stem_ else []
            if seen:
                share = sum(w[:1].isupper() for w in seen) / len(seen)
                name = share >= 0.6 if lower not in common else share >= 0.9 and len(seen) >= 3
            else:
                name = bool(common) and lower.isalpha() and lower not in common
        if name:
            out.extend(stem(t) for t in keyword_terms(lower))
    ranked = list(dict.fromkeys(out))
    if term_weight is not None and ranked:  # rarest first: the passage must hold at least that one
        idf = term_weight(ranked)
        ranked.sort(key=lambda t: -idf.get(t, 0.0))
    return tuple(ranked)


_UNIT_AMOUNT = re.compile(r"\d+(?:\.\d+)?(?:tb|gb|mb|x|mp|k|m|b|nm|mm|cm|hz|ghz|mhz|w|kw|mw|gw|kwh|gwh|v|km|mph|fps|c)")
# Words that qualify a name or measure something ("15 Ultra", "8 Elite Gen 5", "200 MP"): not names themselves.
QUALIFIERS = frozenset(
    """pro max ultra plus mini lite edition series model models gen generation original vs versus mp gb tb
    ghz mhz kw kwh mw gw gwh km nm mm mph fps hz""".split()
)


@functools.lru_cache(maxsize=4096)
def _passage_terms(text: str) -> frozenset[str]:
    return frozenset(term_set(text))


def _passage_words(c: Candidate) -> set[str]:
    """The stemmed words of the candidate's passage and its article's title."""
    return set(_passage_terms(c.hit.text)) | set(_passage_terms(c.hit.title))


# Words that say an amount is asked for ("cost", "pricing"): the amount itself answers them.
MEASURE_WORDS = re.compile(r"(?:cost|pric|pay|paid|spend|money|charg|fee|worth|valu|amount|fare|much|many)")


def _states_about(scored: Scored, i: int, subject: Sequence[str], asked: Sequence[str], kind: str) -> bool:
    """For "how much / when" questions: the lead (with its antecedent and title) names the rarest subject,
    its passage every subject, and for an amount the lead has one of the question's other words ("brand"
    in "what did Apple pay for the Leica brand")."""
    words = _lead_words(scored, i)
    if not covers(words, subject[:1]) or not covers(_passage_words(scored.cands[i]), subject):
        return False
    if kind == "when" and asked:
        # in other words than the question's ("team up" / "partnership"), it must at least name every subject
        return _date_near(scored.cands[i].text, asked, DATE_WINDOW, subject_named=covers(words, subject))
    return kind != "how_much" or not asked or any(covers(words, [t]) for t in asked)


DATE_WINDOW = 8  # words between a lead's date and the asked event's word ("start" ... "production")


def _date_near(text: str, asked: Sequence[str], window: int, subject_named: bool) -> bool:
    """Whether a date in `text` lies within `window` words of one of the question's `asked` words, when
    the sentence has any ("a 2025 sales target … factories in Hungary" does not date a factory's start);
    a sentence saying it in other words ("announced their partnership in 2016" for "team up") passes when
    it names every subject of the question (`subject_named`)."""
    tokens = re.findall(r"[\w'’-]+", text)
    stems = [stem(t.lower()) for t in tokens]
    dates = [n for n, t in enumerate(tokens) if DATE.fullmatch(t)]
    near = [n for n, s_ in enumerate(stems) if any(covers({s_}, [t]) for t in asked)]
    if not near:
        return subject_named
    return any(abs(a - b) <= window for a in dates for b in near)


def _lead_words(scored: Scored, i: int) -> set[str]:
    c = scored.cands[i]
    words = scored.terms[i] | term_set(c.hit.title)
    if c.antecedent is not None:
        words |= scored.terms[c.antecedent]
    return words


def _key_share(scored: Scored, i: int, key_weights: Sequence[dict[str, float]]) -> float:
    """The largest share of the question's (or one of its parts') weighted words that candidate i, its
    antecedent and its article's title carry."""
    c = scored.cands[i]
    words = scored.terms[i] | term_set(c.hit.title)
    if c.antecedent is not None:
        words = words | scored.terms[c.antecedent]
    # weighted by idf, or not: in a small index a question's everyday verb ("runs") can outweigh the name
    # every passage shares ("Acme")
    return max((max(weighted_share(w, words), weighted_share(dict.fromkeys(w, 1.0), words)) for w in key_weights), default=0.0)


def choose_lead(
    scored: Scored, plan: AnswerPlan, key_weights: Sequence[dict[str, float]], opts: ExtractiveOptions,
    among: Sequence[int] = (), subject: Sequence[str] = (), asked: Sequence[str] = (), entity: str = "",
) -> int | None:
    """The candidate that opens the answer, or None when none carries the question's key content.

    Only candidates from articles in the asked period and outlets may lead; one that refers back leads
    together with its antecedent, or not at all; a short lead-in does not lead. Among those that carry
    what the question kind asks for (when any does), the best one of the article search ranked first
    leads unless another scores `lead_margin` higher."""
    eligible = _eligible_leads(scored, plan, key_weights, opts, subject, asked)
    if not eligible and asked and plan.kind == "how_much":
        # no sentence with an amount names what else the question says ("base", "export rules"): the
        # question's words are a preference, the subject's are the requirement
        eligible = _eligible_leads(scored, plan, key_weights, opts, subject, ())
    if not eligible:
        return None
    return _best_lead(scored, plan, eligible, among, entity)


def _eligible_leads(
    scored: Scored, plan: AnswerPlan, key_weights: Sequence[dict[str, float]], opts: ExtractiveOptions,
    subject: Sequence[str], asked: Sequence[str],
) -> list[int]:
    """The candidates that may lead: in the asked period and outlets, standing on their own, carrying the
    question's key words and (for an amount or a date) stating it about the subject."""
    cands = scored.cands
    eligible = []
    for i, c in enumerate(cands):
        if not plan.in_scope(c.hit.published_at, c.hit.source, c.text):
            continue
        if c.antecedent is None and REFERS_BACK.match(c.text):
            continue  # points back at a sentence we do not have
        if not c.is_list and c.text.endswith(":"):
            continue  # introduces something that is not there
        if _key_share(scored, i, key_weights) < opts.min_key_share:
            continue
        if subject and not (covers(_passage_words(c), subject[:1])
                            and any(covers(_lead_words(scored, i), [t]) for t in subject)):
            continue  # it does not speak of what the question is about
        if plan.kind in REQUIRED_CUE_KINDS and not _states_about(scored, i, subject, asked, plan.kind):
            continue  # an amount or a date, but not of the thing asked about
        eligible.append(i)
    return eligible


def _best_lead(scored: Scored, plan: AnswerPlan, eligible: list[int], among: Sequence[int], entity: str) -> int | None:
    """The lead among the eligible candidates: a part line first, then what the question kind asks for."""
    cands = scored.cands
    preferred = [i for i in among if i in eligible]
    if preferred:  # a multi-part question opens with the best of its part lines
        eligible = preferred
    if plan.cue is not None:
        # among the candidates that compete on relevance, those with the strongest cue
        best_score = max(float(scored.scores[i]) for i in eligible)
        strength = {i: plan.cue_strength(_lead_text(scored, i)) for i in eligible}
        margin = WHY_CUE_MARGIN if plan.kind == "why" else CUE_MARGIN  # a reason is harder to spot by its words
        competing = [i for i in eligible if float(scored.scores[i]) >= best_score - margin] or eligible
        top = max(strength[i] for i in competing)
        needed = 1.0 if plan.kind == "how_much" and plan.measure is not None else 0.0
        if top <= needed and plan.kind in REQUIRED_CUE_KINDS:
            top = max(strength.values())  # only a less relevant sentence has the amount or date
            competing = eligible
        if plan.kind in REQUIRED_CUE_KINDS and top < max(needed, 1e-9):
            return None  # a price asked for, and only other amounts found
        if top > 0 and plan.kind in STRICT_CUE_KINDS:
            eligible = [i for i in competing if strength[i] == top]
        elif plan.kind in REQUIRED_CUE_KINDS:
            return None  # asked for an amount or a date, and no sentence about it has one
    if plan.kind == "list":
        lists = [i for i in eligible if cands[i].is_list]
        if lists and max(scored.scores[i] for i in lists) >= max(scored.scores[i] for i in eligible) - 0.08:
            eligible = lists
    if entity:  # the sentence that names the answer leads, if one competes
        naming = [i for i in eligible if names_entity(entity, _lead_text(scored, i))]
        if naming:
            best = max(lead_score(scored, plan, i) for i in eligible)
            naming = [i for i in naming if lead_score(scored, plan, i) >= best - CUE_MARGIN]
            if naming:
                eligible = naming
    return max(eligible, key=lambda i: lead_score(scored, plan, i))


_POINTS_BACK = re.compile(r"\b(?:the|this|that) (?:announcement|news|move|deal|decision|report|result|plan)\b", re.I)


CUE_MARGIN = 0.15  # a sentence this much less relevant than the best may still lead for having the cue
WHY_CUE_MARGIN = 0.05  # a reason is often put in words no cue list has


def lead_score(scored: Scored, plan: AnswerPlan, i: int) -> float:
    """A candidate's score as a lead: an article's first sentence (its lede, which in news states the
    story) is preferred, most of all for "what happened" questions; one that points back at "the
    announcement" or "the move" it does not name, less."""
    c = scored.cands[i]
    s = float(scored.scores[i])
    if c.antecedent is not None:  # it needs its antecedent: a longer lead, a little less direct
        s -= 0.02
    if c.position == 0:
        about = weighted_share(scored.question_weights, term_set(c.hit.title))
        s += scored.weights.lede + scored.weights.lede_about * about
        if plan.kind in ("what_happened", "what"):
            s += scored.weights.lede_what * about
    if _POINTS_BACK.search(c.text) and c.antecedent is None:
        s -= 0.05
    return s


def _lead_text(scored: Scored, i: int) -> str:
    c = scored.cands[i]
    return c.text if c.antecedent is None else f"{scored.cands[c.antecedent].text} {c.text}"


def part_rankings(
    scored: Scored, plan: AnswerPlan, term_weight: TermWeights | None, part_vectors: np.ndarray | None = None
) -> list[list[tuple[float, int]]]:
    """For each part of a multi-part question, its candidates from that part's outlets and dates, as
    (part score, candidate index) best first; the first is the part's line, never another part's line.

    A part's own idf-weighted words, the cosine of its clause with the candidate in context
    (`part_vectors`: (n_parts, dim) unit vectors of the parts' texts) and the candidate's relevance to the
    whole question make up the part score."""
    out: list[list[tuple[float, int]]] = []
    taken: set[int] = set()
    w = scored.weights
    for k, part in enumerate(plan.parts):
        weights = word_weights(keyword_terms(part.text), term_weight)
        wanted = {s.casefold() for s in part.sources}
        cos = scored.vectors @ part_vectors[k] if part_vectors is not None and w.part_cosine else None
        ranked: list[tuple[float, int]] = []
        for i, c in enumerate(scored.cands):
            if wanted and c.hit.source.casefold() not in wanted:
                continue
            at = c.hit.published_at
            if (part.since and (at is None or at < part.since)) or (part.until and (at is None or at > part.until)):
                continue
            if c.antecedent is None and REFERS_BACK.match(c.text):
                continue
            s = w.part_lexical * weighted_share(weights, scored.terms[i]) + float(scored.scores[i])
            if cos is not None:
                s += w.part_cosine * float(cos[i])
            ranked.append((s, i))
        ranked.sort(key=lambda t: -t[0])
        first = next((t for t in ranked if t[1] not in taken), None)  # each part brings a sentence of its own
        if first is None:
            out.append([])
            continue
        taken.add(first[1])
        out.append([first] + [t for t in ranked if t != first])
    return out
