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
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from newsbot.bot.answer_plan import (
    ENTITY_KINDS,
    REQUIRED_CUE_KINDS,
    STRICT_CUE_KINDS,
    AnswerPlan,
    plan_answer,
)
from newsbot.bot.answers import NOT_FOUND_TEXT, Answer, Citation
from newsbot.index.documents import format_date
from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Hit
from newsbot.index.retrieval.grounding import Grounding
from newsbot.index.text import keyword_terms, sentence_spans, stem

TermWeights = Callable[[Sequence[str]], dict[str, float]]


@dataclass(frozen=True)
class ScoreWeights:
    """How a candidate's relevance is made up (see `score_candidates`); tuned on the benchmarks."""

    context: float = 0.9  # cosine of "title: sentence" and the question (the sentence alone adds nothing)
    lexical: float = 0.15  # share of the question's idf-weighted words in the sentence
    cue: float = 0.10  # the sentence has what the question kind asks for
    article_rank: float = 0.05  # the article's rank in the search results
    year: float = 1.0  # fit with a year the question names
    previous: float = 0.3  # share of the previous sentence's higher relevance a sentence inherits
    lede: float = 0.04  # an article's first sentence, as a lead
    lede_about: float = 0.0  # ... times the share of the question's words in the article's title
    lede_what: float = 0.2  # ... the same, more for "what happened" questions
    title_echo: float = 0.2  # restates its article's title (the story's main fact), times how much that
    # title is about the question
    part_lexical: float = 1.0  # a part's line: share of the part's idf-weighted words, plus the score above


@dataclass(frozen=True)
class ExtractiveOptions:
    max_sentences: int = 5  # sentences besides part lines
    max_words: int = 120  # length budget of the answer (the lead is always kept whole)
    min_relevance: float = 0.35  # best passage cosine below this (with weak keyword support) = not found
    passages: int = 10  # how many top hits sentences are drawn from
    redundancy: float = 0.5  # a sentence sharing this share of its words with one already chosen is skipped
    merge_similarity: float = 0.6  # ... and one this close from another article adds its citation instead
    lead_margin: float = 0.04  # a lead from a lower-ranked article must beat the top article's by this
    min_key_share: float = 0.2  # the lead must carry this share of the question's weighted key words
    other_article: float = 0.9  # a sentence of another article than the lead's joins at this share of its score
    score: ScoreWeights = field(default_factory=ScoreWeights)


@dataclass(frozen=True)
class Candidate:
    """A quotable unit of a passage: one sentence, or a list (its intro line and its items)."""

    index: int
    hit_rank: int
    doc_rank: int  # rank of the candidate's article among the retrieved articles (0 = search's first)
    hit: Hit
    start: int  # offsets within hit.text: text == hit.text[start:end]
    end: int
    text: str
    is_list: bool = False
    antecedent: int | None = None  # index of the candidate this one refers back to ("It", "The result")

    @property
    def doc_id(self) -> str:
        return self.hit.doc_id

    @property
    def position(self) -> int:
        return self.hit.start + self.start


def term_set(text: str) -> set[str]:
    """The stemmed keyword terms of `text`, irregular verb forms as their base ("sold" -> "sell") and the
    verbs news uses for one event as one word ("unveiled", "presented" -> "announc")."""
    return {canonical(t) for t in keyword_terms(text)}


def canonical(term: str) -> str:
    """A keyword term as the answer side compares it: stemmed, irregular forms and synonyms folded."""
    stemmed = stem(IRREGULAR.get(term, term))
    return SYNONYMS.get(stemmed, stemmed)


# Verbs news uses for the same event ("What did BYD announce?" is answered by "the company presented …").
SYNONYMS = {
    form: word
    for word, forms in {
        "announc": "announce unveil launch introduc present reveal debut",
        "buy": "acquir purchas",
        "fall": "dropp declin slump plung sank sink tumbl",
        "rise": "climb jump surg soar",
        "cut": "reduc slash lower",
    }.items()
    for form in forms.split()
}


# Past forms the suffix stemmer cannot bring back to the verb a question uses ("how much did X sell").
IRREGULAR = {
    past: base
    for base, forms in {
        "sell": "sold", "buy": "bought", "pay": "paid", "spend": "spent", "lose": "lost", "win": "won",
        "run": "ran", "make": "made", "take": "took taken", "say": "said", "give": "gave given", "go": "went gone",
        "rise": "rose risen", "fall": "fell fallen", "grow": "grew grown", "begin": "began begun", "bring": "brought",
        "build": "built", "choose": "chose chosen", "drive": "drove driven", "find": "found", "get": "got gotten",
        "hold": "held", "keep": "kept", "lead": "led", "leave": "left", "meet": "met", "send": "sent",
        "show": "shown", "stand": "stood", "think": "thought", "write": "wrote written", "cut": "cut", "set": "set",
        "hit": "hit", "shut": "shut", "seek": "sought", "teach": "taught", "tell": "told", "come": "came",
    }.items()
    for past in forms.split()
}


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


# ---------------------------------------------------------------------------------------------- candidates

_LETTERS = re.compile(r"[A-Za-z]")
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d{1,2}[.)])\s+\S")
# Sentences that open by pointing back at something said before them.
_REFERS = re.compile(
    r"^\W*(?:(?:firstly|secondly|thirdly|first|second|third|finally|lastly|however|also|but|and|still|yet|"
    r"meanwhile|instead|in addition|as a result|at the same time),?\s+)?"
    r"(?:it|its|this|that|these|those|they|their|them|he|she|his|her|such|both|the latter|the former|"
    r"(?:the|that|this) (?:result|total|figure|number|move|decision|deal|plan|change|drop|rise|increase|"
    r"decline|one|amount|sum|level|step))\b",
    re.I,
)
_ENUM_LATER = re.compile(r"^\W*(secondly|second,|thirdly|third,|finally|lastly)\b", re.I)
_ENUM_FIRST = re.compile(r"^\W*(firstly|first,|first of all)\b", re.I)


def candidates(hits: Sequence[Hit], limit: int) -> list[Candidate]:
    """The sentences and lists of the best `limit` hits, in hit order then text order.

    Consecutive bullet lines form one list candidate together with the line that introduces them; a
    sentence that refers back ("It", "The result") records the sentence before it as its antecedent.
    A sentence found in two overlapping passages of an article is one candidate."""
    units: list[tuple[tuple[str, int], Candidate, tuple[str, int] | None]] = []  # key, unit, antecedent key
    by_key: dict[tuple[str, int], int] = {}
    doc_ranks: dict[str, int] = {}

    def add(key: tuple[str, int], cand: Candidate, antecedent: tuple[str, int] | None) -> None:
        by_key[key] = len(units)
        units.append((key, cand, antecedent))

    for rank, hit in enumerate(hits[:limit]):
        doc_rank = doc_ranks.setdefault(hit.doc_id, len(doc_ranks))
        spans = [(s, e) for s, e, _ in sentence_spans(hit.text)]
        previous: tuple[str, int] | None = None  # the unit before this one in the passage
        i = 0
        while i < len(spans):
            s, e = spans[i]
            text = hit.text[s:e]
            if _BULLET.match(text):
                j = i
                while j + 1 < len(spans) and _BULLET.match(hit.text[spans[j + 1][0] : spans[j + 1][1]]):
                    j += 1
                start, slot = s, None
                if previous is not None and previous[1] >= hit.start:
                    intro = units[by_key[previous]][1]
                    if intro.text.endswith(":") and not intro.is_list:  # the list joins its introducing line
                        start, slot = previous[1] - hit.start, by_key[previous]
                key = (hit.doc_id, hit.start + start)
                if j > i:
                    block = Candidate(0, rank, doc_rank, hit, start, spans[j][1], hit.text[start : spans[j][1]], True)
                    if slot is not None:
                        units[slot] = (key, block, None)
                    elif key not in by_key:
                        add(key, block, None)
                previous = key if key in by_key else None
                i = j + 1
                continue
            i += 1
            stripped = text.strip()
            words = stripped.split()
            if len(words) < 5 or not _LETTERS.search(stripped) or (
                stripped[-1] not in ".!\"'”’):" and len(words) < 10  # a heading or a question, not a statement
            ):
                previous = None
                continue
            key = (hit.doc_id, hit.start + s)
            if key not in by_key:
                antecedent = previous if _REFERS.match(stripped) else None
                add(key, Candidate(0, rank, doc_rank, hit, s, e, stripped), antecedent)
            previous = key
    kept = units
    position = {key: n for n, (key, _, _) in enumerate(kept)}
    return [
        Candidate(n, c.hit_rank, c.doc_rank, c.hit, c.start, c.end, c.text, c.is_list,
                  position.get(ante) if ante is not None else None)
        for n, (_, c, ante) in enumerate(kept)
    ]


def is_vague(text: str) -> bool:
    """A short lead-in ("Secondly, the deal has a strong financial incentive.") whose point comes next."""
    return len(text.split()) < 14 or text.rstrip().endswith(":")


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class Scored:
    cands: list[Candidate]
    scores: np.ndarray  # (n,) relevance to the whole question
    vectors: np.ndarray  # (n, dim) unit vectors of "title: text"
    terms: list[set[str]] = field(default_factory=list)  # stemmed words of each candidate
    weights: ScoreWeights = field(default_factory=lambda: ScoreWeights())
    question_weights: dict[str, float] = field(default_factory=dict)  # stemmed question word -> idf


def _weights(terms: Sequence[str], term_weight: TermWeights | None) -> dict[str, float]:
    """Stemmed question word -> weight (idf when the index gives it, else 1); phrasing words left out."""
    terms = [t for t in terms if t not in QUESTION_FILLER] or list(terms)
    raw = term_weight(list(terms)) if term_weight is not None and terms else dict.fromkeys(terms, 1.0)
    out: dict[str, float] = {}
    for t, w in raw.items():
        key = canonical(t)
        out[key] = max(out.get(key, 0.0), float(w))
    return out


def _share(weights: dict[str, float], words: set[str] | frozenset[str]) -> float:
    """The weighted share of the question's words among `words` (stemmed; "funding" also finds "funders")."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = _Prefixes(words)
    return sum(w for t, w in weights.items() if found.has(t)) / total


class _Prefixes:
    """A set of stemmed words that also answers "is there a word sharing this term's first 5 letters (or
    4, for short words)?" in constant time."""

    __slots__ = ("words", "five", "four", "short")

    def __init__(self, words: set[str] | frozenset[str]) -> None:
        self.words = words
        self.five = {w[:5] for w in words if len(w) >= 5}
        self.four = {w[:4] for w in words if len(w) >= 4}
        self.short = {w for w in words if len(w) == 4}

    def has(self, term: str) -> bool:
        if term in self.words:
            return True
        if len(term) < 4:
            return False
        return (term[:5] in self.five if len(term) >= 5 else term in self.four) or term[:4] in self.short


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
        overlap = _share(weights, terms[i]) if weights else 0.0
        prior = w.article_rank * (1 - c.doc_rank / n_docs)
        boost = w.cue * plan.cue_strength(c.text)
        echo = 0.0
        if w.title_echo:
            title = _echo_terms(c.hit.title)
            if c.doc_id not in about:
                about[c.doc_id] = _share(weights, set(title)) if weights else 0.0
            echo = about[c.doc_id] * (len(title & _echo_terms(c.text)) / len(title) if title else 0.0)
        base[i] = (w.context * float(in_context[i]) + w.lexical * overlap + prior
                   + boost + w.year * _year_fit(c, plan.year) + w.title_echo * echo)
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


def _year_fit(c: Candidate, year: int | None) -> float:
    """A question about one year ("in 2025"): a sentence naming that year gains, one naming only other
    years loses (so does one of an article whose title names only another year), and an article
    published before that year began cannot report on it."""
    if year is None:
        return 0.0
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


# ---------------------------------------------------------------------------------------------- the answer


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
    prior for its article's rank. `plan` (see `bot.answer_plan`) decides the lead and the part lines.
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
    weights = _weights(keyword_terms(focus), term_weight)
    own = re.sub(r"\s*\([^()]*\)\s*$", "", focus)  # a follow-up's borrowed words are context, not its subject
    subject = subject_terms(own, hits, common_words, term_weight) if len(plan.parts) < 2 else ()
    outlet_words = {stem(t) for o in plan.outlets for t in keyword_terms(o)}
    subject = tuple(t for t in subject if t not in outlet_words)  # the outlet is the scope's job
    scored = score_candidates(cands, embedder, question_vector, weights, plan, opts.score)
    key_weights = [weights] + [_weights(keyword_terms(p.text), term_weight) for p in plan.parts]
    parts = part_leads(scored, plan, term_weight) if len(plan.parts) >= 2 else []
    asked = [t for t in weights if t not in subject and not t.isdigit() and not MEASURE_WORDS.match(t)]
    # a "who / which" answer opens with the name the evidence agrees on, quoted from a sentence naming it
    entity = answer_entity(scored, plan, hits) if plan.kind in ENTITY_KINDS else ""
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
        picker.fill(plan, budget_only=True)
    if entity and not _names(entity, " ".join(cands[i].text for i in picker.chosen)):
        entity = ""  # the name must be visible in what the answer quotes
    return compose(question, hits, picker, plan, entity)


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
# Words of how people phrase questions, not of what they ask about.
QUESTION_FILLER = frozenset(
    """much many big actually anyone anymore stuff thing things really get got getting go going goes come came
    comes put cant can't want wants like kind sort exactly now still ever yet just some any tell know please
    happen happened happening new news latest whats hows whos wheres whens whys compare compared
    special first last top next over under about around nearly almost every each per""".split()
)


def covers(words: set[str] | frozenset[str], terms: Sequence[str]) -> bool:
    """Whether every term is among `words`, allowing what the crude stemmer leaves apart: a long term as a
    word sharing its first 5 letters ("cheaply" ~ "cheap"), a term and a word one of which begins the other
    ("rul" ~ "rule", "hbm" ~ "hbm4")."""
    prefixes = {w[:5] for w in words if len(w) >= 5}

    def found(t: str) -> bool:
        if t in words or (len(t) >= 5 and t[:5] in prefixes):
            return True
        return len(t) >= 3 and any(
            len(w) >= 3 and abs(len(w) - len(t)) <= 3 and (w.startswith(t) or t.startswith(w)) for w in words
        )

    return all(found(t) for t in terms)


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
    return kind != "how_much" or not asked or any(covers(words, [t]) for t in asked)


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
    return max((max(_share(w, words), _share(dict.fromkeys(w, 1.0), words)) for w in key_weights), default=0.0)


def choose_lead(
    scored: Scored, plan: AnswerPlan, key_weights: Sequence[dict[str, float]], opts: ExtractiveOptions,
    among: Sequence[int] = (), subject: Sequence[str] = (), asked: Sequence[str] = (), entity: str = "",
) -> int | None:
    """The candidate that opens the answer, or None when none carries the question's key content.

    Only candidates from articles in the asked period and outlets may lead; one that refers back leads
    together with its antecedent, or not at all; a short lead-in does not lead. Among those that carry
    what the question kind asks for (when any does), the best one of the article search ranked first
    leads unless another scores `lead_margin` higher."""
    cands = scored.cands
    eligible = []
    for i, c in enumerate(cands):
        if not plan.in_scope(c.hit.published_at, c.hit.source, c.text):
            continue
        if c.antecedent is None and _REFERS.match(c.text):
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
    if not eligible:
        return None
    preferred = [i for i in among if i in eligible]
    if preferred:  # a multi-part question opens with the best of its part lines
        eligible = preferred
    if plan.cue is not None:
        # among the candidates that compete on relevance, those with the strongest cue
        best_score = max(float(scored.scores[i]) for i in eligible)
        strength = {i: plan.cue_strength(_lead_text(scored, i)) for i in eligible}
        competing = [i for i in eligible if float(scored.scores[i]) >= best_score - CUE_MARGIN] or eligible
        top = max(strength[i] for i in competing)
        if top == 0 and plan.kind in REQUIRED_CUE_KINDS:
            top = max(strength.values())  # only a less relevant sentence has the amount or date
            competing = eligible
        if top > 0 and plan.kind in STRICT_CUE_KINDS:
            eligible = [i for i in competing if strength[i] == top]
        elif plan.kind in REQUIRED_CUE_KINDS:
            return None  # asked for an amount or a date, and no sentence about it has one
    if plan.kind == "list":
        lists = [i for i in eligible if cands[i].is_list]
        if lists and max(scored.scores[i] for i in lists) >= max(scored.scores[i] for i in eligible) - 0.08:
            eligible = lists
    if entity:  # the sentence that names the answer leads, if one competes
        naming = [i for i in eligible if _names(entity, _lead_text(scored, i))]
        if naming:
            best = max(lead_score(scored, plan, i) for i in eligible)
            naming = [i for i in naming if lead_score(scored, plan, i) >= best - CUE_MARGIN]
            if naming:
                eligible = naming
    return max(eligible, key=lambda i: lead_score(scored, plan, i))


def _names(entity: str, text: str) -> bool:
    """Whether `text` names `entity` (in full, or by its last word: "Sam Altman" ~ "Altman")."""
    last = entity.split()[-1]
    return bool(re.search(r"(?<!\w)(?:" + re.escape(entity) + "|" + re.escape(last) + r")(?!\w)", text, re.I))


_POINTS_BACK = re.compile(r"\b(?:the|this|that) (?:announcement|news|move|deal|decision|report|result|plan)\b", re.I)


CUE_MARGIN = 0.15  # a sentence this much less relevant than the best may still lead for having the cue


def lead_score(scored: Scored, plan: AnswerPlan, i: int) -> float:
    """A candidate's score as a lead: an article's first sentence (its lede, which in news states the
    story) is preferred, most of all for "what happened" questions; one that points back at "the
    announcement" or "the move" it does not name, less."""
    c = scored.cands[i]
    s = float(scored.scores[i])
    if c.antecedent is not None:  # it needs its antecedent: a longer lead, a little less direct
        s -= 0.02
    if c.position == 0:
        about = _share(scored.question_weights, term_set(c.hit.title))
        s += scored.weights.lede + scored.weights.lede_about * about
        if plan.kind in ("what_happened", "what"):
            s += scored.weights.lede_what * about
    if _POINTS_BACK.search(c.text) and c.antecedent is None:
        s -= 0.05
    return s


def _lead_text(scored: Scored, i: int) -> str:
    c = scored.cands[i]
    return c.text if c.antecedent is None else f"{scored.cands[c.antecedent].text} {c.text}"


def part_leads(scored: Scored, plan: AnswerPlan, term_weight: TermWeights | None) -> list[int]:
    """For each part of a multi-part question, the best candidate from that part's outlets and dates.

    A part's own idf-weighted words decide, plus the candidate's relevance to the whole question (a
    part's cosine added nothing on MultiHop-RAG: its clauses paraphrase the evidence)."""
    out: list[int] = []
    for part in plan.parts:
        weights = _weights(keyword_terms(part.text), term_weight)
        wanted = {s.casefold() for s in part.sources}
        best, best_score = None, -1.0
        for i, c in enumerate(scored.cands):
            if i in out:
                continue  # each part brings a sentence of its own
            if wanted and c.hit.source.casefold() not in wanted:
                continue
            at = c.hit.published_at
            if (part.since and (at is None or at < part.since)) or (part.until and (at is None or at > part.until)):
                continue
            if c.antecedent is None and _REFERS.match(c.text):
                continue
            s = scored.weights.part_lexical * _share(weights, scored.terms[i]) + float(scored.scores[i])
            if s > best_score:
                best, best_score = i, s
        if best is not None:
            out.append(best)
    return out


class Picker:
    """The sentences of an answer being assembled: roles, word budget, one fact once."""

    def __init__(self, scored: Scored, opts: ExtractiveOptions) -> None:
        self.scored = scored
        self.opts = opts
        self.chosen: list[int] = []
        self.roles: dict[int, str] = {}
        self.groups: list[tuple[str, list[int]]] = []  # (role, candidates added together), in order
        self.also: dict[int, list[int]] = {}  # chosen index -> near-identical candidates of other articles

    def words(self) -> int:
        return sum(len(self.scored.cands[i].text.split()) for i in self.chosen)

    def _similar(self, i: int) -> tuple[int | None, float]:
        """The chosen sentence sharing the largest share of words with candidate i (Jaccard), and that share."""
        if not self.chosen:
            return None, 0.0
        mine = self.scored.terms[i]
        best, best_sim = None, 0.0
        for j in self.chosen:
            theirs = self.scored.terms[j]
            union = len(mine | theirs)
            sim = len(mine & theirs) / union if union else 0.0
            if sim > best_sim:
                best, best_sim = j, sim
        return best, best_sim

    def group_for(self, i: int) -> list[int]:
        """Candidate i with what it needs: its antecedent, the point after a lead-in, enumeration heads."""
        cands = self.scored.cands
        group = [i]
        for j in companions(cands, i):
            if j not in self.chosen and j not in group:
                group.append(j)
        for j in list(group):  # each one's antecedent ("Firstly, it …" needs "The decision is twofold.")
            a = cands[j].antecedent
            if a is not None and a not in self.chosen and a not in group:
                group.append(a)
        return sorted(group, key=lambda j: cands[j].position)

    def add(self, i: int, role: str) -> bool:
        if i in self.chosen:
            return False
        cands = self.scored.cands
        c = cands[i]
        other, sim = self._similar(i)
        if other is not None and sim >= self.opts.redundancy:
            if sim >= self.opts.merge_similarity and cands[other].doc_id != c.doc_id:
                self.also.setdefault(other, []).append(i)  # one fact once, cited to every article
            return False
        group = self.group_for(i)
        for j in group:
            self.chosen.append(j)
            self.roles[j] = role
        self.groups.append((role, group))
        return True

    def fill(self, plan: AnswerPlan, budget_only: bool = False) -> None:
        """Supporting sentences, best first, while they stay close to the best score and fit the budget."""
        scored, opts = self.scored, self.opts
        order = np.argsort(-scored.scores, kind="stable")
        best = float(scored.scores[self.chosen[0]]) if self.chosen else float(scored.scores[order[0]])
        lead_doc = scored.cands[self.chosen[0]].doc_id if self.chosen else ""
        added = 0
        for i in map(int, order):
            if budget_only and self.words() >= opts.max_words:
                break
            if added >= opts.max_sentences - 1:
                break
            s = float(scored.scores[i])
            if s < 0.8 * best:
                break
            c = scored.cands[i]
            if i in self.chosen:
                continue
            if c.antecedent is None and _REFERS.match(c.text):
                continue
            if c.doc_id != lead_doc and s < opts.other_article * best:
                continue  # another article must be nearly as relevant to join the answer
            if plan.scoped and not plan.in_scope(c.hit.published_at, c.hit.source, c.text):
                continue  # the question asked about another period or outlet
            if self.scored.cands[self.chosen[0]].is_list and (c.doc_id != lead_doc or added >= 1):
                continue  # a list answers by itself; at most one sentence of its article around it
            cost = sum(len(scored.cands[j].text.split()) for j in self.group_for(i))
            if self.words() + cost > opts.max_words:
                other, sim = self._similar(i)
                if other is not None and sim >= opts.merge_similarity and scored.cands[other].doc_id != c.doc_id:
                    self.also.setdefault(other, []).append(i)
                continue
            if self.add(i, "support"):
                added += 1
        # near-identical sentences of other articles, anywhere in the candidates: cite them too
        for i in map(int, order):
            if i in self.chosen or any(i in v for v in self.also.values()):
                continue
            other, sim = self._similar(i)
            if other is not None and sim >= opts.merge_similarity and scored.cands[other].doc_id != scored.cands[i].doc_id:
                self.also.setdefault(other, []).append(i)


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
    if not c.is_list and is_vague(c.text) and i + 1 < len(cands) and cands[i + 1].hit is c.hit:
        out.append(i + 1)
    return out


# ---------------------------------------------------------------------------------------------- entity

_NOT_ENTITY = frozenset(
    """the a an this that these those it its he she they we i you his her their our in on at of for from by as
    and or but if while with to after before according however meanwhile also both so then because could
    would should whereas here there when where why how what who current former advertisement monday tuesday
    wednesday
    thursday friday saturday sunday january february march april may june july august september october
    november december ceo cfo cto us u.s uk eu""".split()
)


_PERSON = re.compile(r"[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?(?: [A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?){1,2}")


def answer_entity(scored: Scored, plan: AnswerPlan, hits: Sequence[Hit]) -> str:
    """For a "who / which" question: the name the evidence agrees on, or "" when it does not.

    Names (capitalised phrases) of the retrieved passages that the question does not itself contain are
    counted per article and per mention; the name found in the most articles (at least two), then
    mentioned most, wins, in its longest written form ("Sam Bankman-Fried" also counts "Bankman-Fried").
    A capitalised word that only opens sentences ("Because Bankman-Fried …") is not part of a name, and
    outlet names do not count."""
    question_words = {w.lower() for w in re.findall(r"[\w'’-]+", plan.question)}
    outlets = {h.source.casefold() for h in hits}
    docs: dict[str, set[str]] = {}
    mentions: dict[str, int] = {}
    forms: dict[str, str] = {}
    inside: set[str] = set()  # phrases seen somewhere other than at the start of a sentence
    found: list[tuple[str, str, bool]] = []  # (doc id, phrase, opens its sentence)
    for h in hits:
        for sentence in [h.title] + [h.text[s_:e_] for s_, e_, _ in sentence_spans(h.text)]:
            for m in _NAME_PHRASE.finditer(sentence):
                opens = not sentence[: m.start()].strip(" \"'“‘(")
                found.append((h.doc_id, m.group(0), opens))
                if not opens:
                    inside.add(m.group(0))
    for doc_id, phrase, opens in found:
        words = phrase.split()
        if opens and len(words) > 1 and phrase not in inside:
            words = words[1:]  # "Echoing Bankman-Fried" -> "Bankman-Fried"
        while words and words[0].lower().strip("'’") in _NOT_ENTITY:
            words = words[1:]
        name = re.sub(r"(?:'s|’s)$", "", " ".join(words)).strip(" .,;:")
        key = name.casefold()
        name_words = [w.lower() for w in re.findall(r"[\w-]+", name)]
        if len(name) < 3 or key in outlets or not name_words or any(w in question_words for w in name_words):
            continue  # the question's own names (and "Xiaomi 15 Ultra" when it asks about Xiaomi)
        if len(words) == 1 and opens and name not in inside:
            continue  # a lone capitalised word opening a sentence is not evidence of a name
        docs.setdefault(key, set()).add(doc_id)
        mentions[key] = mentions.get(key, 0) + 1
        if len(name) > len(forms.get(key, "")):
            forms[key] = name
    if not docs:
        return ""
    # a surname or a short form counts for the full name that ends with it ("Altman" -> "Sam Altman")
    total_docs = {k: set(v) for k, v in docs.items()}
    total_mentions = dict(mentions)
    for short in docs:
        for long in docs:
            if long != short and long.endswith(" " + short):
                total_docs[long] |= docs[short]
                total_mentions[long] += mentions[short]
    pool = [k for k in total_docs if plan.kind != "who" or _is_person(forms[k]) or _is_surname(forms[k])]
    if not pool:
        return ""
    def rank(k: str) -> tuple[int, bool, int]:  # articles, a full name (for "who"), mentions
        return len(total_docs[k]), plan.kind == "who" and " " in forms[k], total_mentions[k]

    ranked = sorted(pool, key=lambda k: (*rank(k), len(k)), reverse=True)
    best = ranked[0]
    if len(total_docs[best]) < 2:
        return ""
    if len(ranked) > 1 and rank(ranked[1]) == rank(best):
        return ""  # a tie: the evidence does not single one out
    return forms[best]


_WORD = r"[A-Z](?:[\w&'’-]|\.(?=\w))*"  # a capitalised word ("U.S." keeps its dots, a full stop ends it)
_NAME_PHRASE = re.compile(r"(?<![\w'’-])" + _WORD + r"(?: +(?:(?:of|de|van|von|&) +)?" + _WORD + r")*")
_ORG_WORDS = frozenset(
    """inc corp corporation company co ltd llc plc group holdings capital research bank exchange news labs
    technologies systems partners university association government department court commission reserve
    league team foundation fund institute agency council ministry party network media times post journal
    club airlines motors securities""".split()
)


def _is_surname(name: str) -> bool:
    """One capitalised word that is not an acronym or an organisation word ("Bankman-Fried", "Altman")."""
    return bool(re.fullmatch(r"[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?", name)) and name.lower() not in _ORG_WORDS


def _is_person(name: str) -> bool:
    """Two or three capitalised words, none of them an organisation word ("Alameda Research" is not)."""
    return bool(_PERSON.fullmatch(name)) and not any(w.lower().strip(".") in _ORG_WORDS for w in name.split())


# ---------------------------------------------------------------------------------------------- composing


def compose(question: str, hits: tuple[Hit, ...], picker: Picker, plan: AnswerPlan, entity: str = "") -> Answer:
    """Lead first, then part lines, then support grouped by article; number the articles in that order.

    Lines of a multi-part answer and sentences from an article of another year than the lead's carry
    their outlet and date, so figures of different years are never read as one."""
    cands = picker.scored.cands
    chosen = picker.chosen
    lead_group = next(g for role, g in picker.groups if role == "lead")
    lead = lead_group[0]
    part_groups = [g for role, g in picker.groups if role == "part"]
    support = [i for role, g in picker.groups if role == "support" for i in g]
    numbers: dict[str, int] = {}
    for i in lead_group + [i for g in part_groups for i in g] + support:
        numbers.setdefault(cands[i].doc_id, len(numbers) + 1)
    for i in chosen:
        for j in picker.also.get(i, []):
            numbers.setdefault(cands[j].doc_id, len(numbers) + 1)

    def marks(i: int) -> str:
        docs = [cands[i].doc_id] + [cands[j].doc_id for j in picker.also.get(i, [])]
        return " " + "".join(f"[{n}]" for n in sorted({numbers[d] for d in docs}))

    def quote(i: int) -> str:
        c = cands[i]
        if c.is_list:  # intro and items one per line, blank lines and indentation dropped
            return "\n".join(line.strip() for line in c.text.splitlines() if line.strip()) + marks(i)
        return c.text + marks(i)

    lead_hit = cands[lead].hit
    lead_year = lead_hit.published_at.year if lead_hit.published_at else None
    multi_part = bool(part_groups)

    def label(hit: Hit) -> str:
        return f"**{', '.join(p for p in (hit.source, format_date(hit.published_at)) if p)}:** "

    # One block per article, in citation order; the lead's article first, the lead at its head, then
    # the article's other sentences in reading order from the lead on (then what came before it).
    # (sentences added together, such as a sentence and its antecedent, stay together in reading order)
    by_doc: dict[str, list[list[int]]] = {}
    for _, members in picker.groups:
        by_doc.setdefault(cands[members[0]].doc_id, []).append(sorted(members, key=lambda i: cands[i].position))
    blocks: list[str] = []
    for doc_id, groups in sorted(by_doc.items(), key=lambda x: numbers[x[0]]):
        if doc_id == lead_hit.doc_id:  # the lead, then the article's most relevant other sentences first
            rest = sorted(groups[1:], key=lambda g: -max(float(picker.scored.scores[i]) for i in g))
            group = [i for g in [groups[0], *rest] for i in g]
        else:
            group = sorted((i for g in groups for i in g), key=lambda i: cands[i].position)
        hit = cands[group[0]].hit
        year = hit.published_at.year if hit.published_at else None
        text = ""
        for n, i in enumerate(group):  # a list keeps its lines: it, and what follows it, start a new line
            breaks = n > 0 and (cands[i].is_list or cands[group[n - 1]].is_list)
            text += ("\n" if breaks else " ") + quote(i)
        text = text.strip()
        if multi_part or (doc_id != lead_hit.doc_id and year != lead_year):
            text = label(hit) + text
        blocks.append(text)
    if entity:
        blocks[0] = f"**{entity}** — {blocks[0]}"
    lists = any(cands[i].is_list for i in chosen)
    text = "\n".join(blocks) if multi_part or lists else " ".join(blocks)
    used: dict[str, list[Hit]] = {}
    for i in chosen + [j for v in picker.also.values() for j in v]:
        bucket = used.setdefault(cands[i].doc_id, [])
        if cands[i].hit not in bucket:
            bucket.append(cands[i].hit)
    citations = tuple(
        Citation(number=n, hits=tuple(used[doc_id])) for doc_id, n in sorted(numbers.items(), key=lambda x: x[1])
    )
    return Answer(question=question, text=text, citations=citations, hits=hits, found=True)


def not_found(question: str, hits: Sequence[Hit], *, related: bool = False) -> Answer:
    """"Not found"; with `related`, the closest retrieved articles (one passage each) are offered."""
    closest: list[Hit] = []
    if related:
        seen: set[str] = set()
        for h in hits:
            if h.doc_id not in seen and (h.dense_score or 0.0) >= 0.3:
                seen.add(h.doc_id)
                closest.append(h)
            if len(closest) >= 3:
                break
    return Answer(question=question, text=NOT_FOUND_TEXT, citations=(), hits=tuple(hits), found=False,
                  related=tuple(closest))
