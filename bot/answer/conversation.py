"""Follow-up questions: turn "what about Huawei?" into a question that retrieval can use on its own.

Without a language model (`heuristic_rewrite`), a follow-up is resolved against the previous turn:

* "what about Huawei?" / "and Huawei?" / "how about for Samsung?" → the previous question with the new
  name in place of its first name ("Why is Xiaomi dropping Leica?" → "Why is Huawei dropping Leica?");
* "and its price?", "why did they do it?" → the pronoun replaced by the previous question's subject,
  with the names the previous answer's lead brought in added as context ("… (Nvidia GeForce RTX 50)");
* any other short or leaning follow-up borrows the previous question's content words.

The previous question is itself resolved first (recursively), so a chain of follow-ups stays on topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from newsbot.bot.answer.answers import CITATION_MARK, Turn
from newsbot.index.retrieval.query import names
from newsbot.index.text import keyword_terms
from newsbot.index.tokens import count_tokens

_LEANING = re.compile(
    r"^\s*(what about|how about|and\b|also\b|but\b|so\b|then\b|why\b|how\b|when\b|what else|more\b|tell me more)"
    r"|\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|same)\b",
    re.I,
)
_PRONOUN = re.compile(r"\b(?P<p>it|its|they|them|their|theirs|he|him|his|she|her|this|that)\b", re.I)
_POSSESSIVE = {"its", "their", "theirs", "his", "her"}
# "what about Huawei?", "and Huawei?", "how about for Samsung", "what about Huawei then"
_ABOUT = re.compile(
    r"^\W*(?:(?:and|but|ok|okay|so)\W+)?(?:what|how)\s+about\s+(?:for\s+|with\s+)?(?P<x>.+?)\W*(?:then|instead|now)?\W*$"
    r"|^\W*(?:and|or)\s+(?:for\s+|with\s+)?(?P<y>[\w.&'’-]+(?:\s+[\w.&'’-]+){0,2})\W*$",
    re.I,
)


def trim_history(history: Sequence[Turn], max_tokens: int) -> list[Turn]:
    """The newest turns whose questions and answers fit in `max_tokens` (oldest dropped first)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(history):
        cost = count_tokens(turn.question) + count_tokens(turn.answer)
        if kept and used + cost > max_tokens:
            break
        kept.append(turn)
        used += cost
    return list(reversed(kept))


def is_follow_up(question: str) -> bool:
    return len(keyword_terms(question)) <= 3 or bool(_LEANING.search(question))


def heuristic_rewrite(
    question: str, history: Sequence[Turn], max_terms: int = 8, common: frozenset[str] = frozenset(), _depth: int = 0
) -> str:
    """`question` made standalone from the conversation `history` (oldest first); see the module docstring.

    `common`: common English words (the embedding model's vocabulary), so that names typed in lower
    case ("byd", "nvidia") are still recognised as names."""
    if not history or not is_follow_up(question):
        return question
    previous = history[-1]
    prev_q = previous.question
    if _depth < 3:
        prev_q = heuristic_rewrite(prev_q, history[:-1], max_terms, common, _depth + 1)
    prev_q = _without_context(prev_q)
    prev_topics = topics(prev_q, common)
    about = _ABOUT.match(question.strip())
    if about and _PRONOUN.search(about.group("x") or about.group("y") or ""):
        about = None  # "what about its price?": a pronoun to resolve, not a new topic
    qualifiers = _QUALIFIERS.search(question)
    products = [t for t in prev_topics if re.search(r"\d", t)]
    if qualifiers and products and not topics(question, common):  # "how much is the pro max?"
        base = _QUALIFIERS.sub("", products[0]).strip()
        return f"{question[: qualifiers.start()]}{base} {qualifiers.group(0)}{question[qualifiers.end():]}"
    if about:
        new = (about.group("x") or about.group("y") or "").strip()
        new_topics = topics(new, common) or ([new] if len(new.split()) <= 3 else [])
        if new_topics and prev_topics:
            if any(_same(n, p) for n in new_topics for p in prev_topics):
                return prev_q  # asked again about the same thing
            return _swap(prev_q, prev_topics[0], new_topics[0])
        if new_topics:
            return f"{prev_q.rstrip(' ?.')} {new_topics[0]}?"
    pronoun = _PRONOUN.search(question)
    if pronoun and not topics(question, common):
        referent = _referent(pronoun.group("p"), prev_q, previous.answer, prev_topics, common)
        if referent:
            resolved = _PRONOUN.sub(lambda m: _resolve(m.group("p"), referent), question, count=1)
            extra = [n for n in _lead_names(previous.answer) if not any(_same(n, p) for p in [referent, *prev_topics])]
            context = " ".join([*_content(prev_q, resolved), *extra[:3]])
            return f"{resolved.strip()} ({_clip(context, max_terms)})" if context else resolved.strip()
    own = set(keyword_terms(question))
    borrowed = [t for t in keyword_terms(prev_q) if t not in own]
    for turn in reversed(history[-2:-1]):
        borrowed += [t for t in keyword_terms(turn.question) if t not in own and t not in borrowed]
    if not borrowed:
        return question
    return f"{question.strip()} ({' '.join(dict.fromkeys(borrowed[:max_terms]))})"


# "galaxy s25 ultra", "rtx 5090", "xiaomi 15 ultra", "llama 4 scout": a product and its model number
_PRODUCT = re.compile(
    r"(?<![\w-])(?:[a-z][\w&-]*\s+)?(?:[a-z]+\d[\w-]*|\d{1,4}[a-z]?)(?![\w-])"
    r"(?:\s+(?:pro|ultra|max|plus|mini|edge|ti|series|scout|maverick|elite|gen \d+))*",
    re.I,
)
_QUALIFIERS = re.compile(r"\b(?:pro|ultra|max|plus|mini|edge)(?:\s+(?:pro|ultra|max|plus|mini|edge))*\b", re.I)
_MONTHS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun jul aug "
    "sep sept oct nov dec".split()
)
_NOT_PEOPLE = frozenset(
    """house street valley bank court department university group council ministry agency chief officer executive
    financial operating president director minister secretary chairman""".split()
)
_PERSON_NAME = re.compile(r"\b[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?(?:\s+[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?){1,2}\b")
_NOT_TOPIC = frozenset(
    """what who when where why how which does did do is are was were the a an and or of in on at for to much many
    about it its they their this that there price cost""".split()
)


def topics(text: str, common: frozenset[str] = frozenset()) -> list[str]:
    """What a question is about, most specific first: products with model numbers ("galaxy s25 ultra"),
    capitalised names ("Huawei"), and words that are not common English ("byd", "nvidia")."""
    out: list[str] = []
    for m in _PRODUCT.finditer(text):
        phrase = m.group(0).strip()
        words = phrase.split()
        if words and (words[0].lower() in _NOT_TOPIC or words[0].lower() in _MONTHS):
            phrase = " ".join(words[1:])
        number = re.search(r"\d+", phrase)
        if phrase and number and not re.fullmatch(r"(?:19|20)\d{2}", number.group(0)) and not phrase.isdigit():
            out.append(phrase)
    out += [n for n in names(text) if n.lower() not in _NOT_TOPIC]
    if common:
        for word in re.findall(r"[A-Za-z][\w&-]+", text):
            lower = word.lower()
            if len(lower) >= 3 and lower not in common and lower not in _NOT_TOPIC and keyword_terms(lower):
                out.append(word)
    kept: list[str] = []
    for t in out:
        if not any(_same(t, k) for k in kept):
            kept.append(t)
    return kept


def _referent(pronoun: str, prev_q: str, answer: str, prev_topics: list[str], common: frozenset[str]) -> str:
    """What "it", "its", "he", "they" … in a follow-up stands for: a person of the previous answer's lead
    for he/she, else the product or name the previous question was about, else one its answer led with."""
    lead = _lead_text(answer)
    if pronoun.lower() in ("he", "him", "his", "she", "her"):
        people = [m.group(0) for m in _PERSON_NAME.finditer(lead)
                  if not any(w.lower() in _NOT_PEOPLE for w in m.group(0).split())]
        return people[0] if people else (prev_topics[0] if prev_topics else "")
    products = [t for t in prev_topics if re.search(r"\d", t)] or [t for t in topics(lead, common) if re.search(r"\d", t)]
    if products:
        return products[0]
    return prev_topics[0] if prev_topics else ""


def _without_context(question: str) -> str:
    """A rewritten question without the "(…)" of borrowed words at its end."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", question)


def _same(a: str, b: str) -> bool:
    return a.casefold() in b.casefold() or b.casefold() in a.casefold()


def _swap(question: str, old: str, new: str) -> str:
    return re.sub(r"(?<!\w)" + re.escape(old) + r"(?!\w)", new, question, count=1)


def _resolve(pronoun: str, subject: str) -> str:
    return f"{subject}'s" if pronoun.lower() in _POSSESSIVE else subject


def _content(previous: str, resolved: str) -> list[str]:
    own = set(keyword_terms(resolved))
    return [t for t in keyword_terms(_without_context(previous)) if t not in own]


def _lead_text(answer: str) -> str:
    """The first sentence of an earlier answer, citation marks and labels removed."""
    text = CITATION_MARK.sub(" ", answer)
    text = re.sub(r"\*\*[^*]*\*\*\s*(?:—\s*)?", " ", text)
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]


def _lead_names(answer: str) -> list[str]:
    """Names in the first sentence of an earlier answer."""
    return names(_lead_text(answer))


def _clip(context: str, max_terms: int) -> str:
    return " ".join(context.split()[: max_terms + 4])
