"""How the answer side compares words: keyword terms stemmed, irregular verb forms and the verbs news
uses for one event folded together, and the idf-weighted share of a question's words a text holds."""

from __future__ import annotations

from collections.abc import Sequence

from newsbot.bot.answer.extractive.options import TermWeights
from newsbot.index.text import keyword_terms, stem


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


def word_weights(terms: Sequence[str], term_weight: TermWeights | None) -> dict[str, float]:
    """Stemmed question word -> weight (idf when the index gives it, else 1); phrasing words left out."""
    terms = [t for t in terms if t not in QUESTION_FILLER] or list(terms)
    raw = term_weight(list(terms)) if term_weight is not None and terms else dict.fromkeys(terms, 1.0)
    out: dict[str, float] = {}
    for t, w in raw.items():
        key = canonical(t)
        out[key] = max(out.get(key, 0.0), float(w))
    return out


def weighted_share(weights: dict[str, float], words: set[str] | frozenset[str]) -> float:
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
