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

from bot.answers import CITATION_MARK, Turn
from index.query import names
from index.store import keyword_terms
from index.tokens import count_tokens

_LEANING = re.compile(
    r"^\s*(what about|how about|and\b|also\b|but\b|so\b|then\b|why\b|how\b|when\b|what else|more\b|tell me more)"
    r"|\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|same)\b",
    re.I,
)
# "what about Huawei?", "and Huawei?", "how about for Samsung", "what about Huawei then"
_ABOUT = re.compile(
    r"^\W*(?:(?:and|but|ok|okay|so)\W+)?(?:what|how)\s+about\s+(?:for\s+|with\s+)?(?P<x>.+?)\W*(?:then|instead|now)?\W*$"
    r"|^\W*(?:and|or)\s+(?:for\s+|with\s+)?(?P<y>[A-Z][\w.&'’-]*(?:\s+[A-Z0-9][\w.&'’-]*)*)\W*$",
    re.I,
)
_PRONOUN = re.compile(r"\b(?P<p>it|its|they|them|their|theirs|he|him|his|she|her|this|that)\b", re.I)
_POSSESSIVE = {"its", "their", "theirs", "his", "her"}


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


def heuristic_rewrite(question: str, history: Sequence[Turn], max_terms: int = 8, _depth: int = 0) -> str:
    """`question` made standalone from the conversation `history` (oldest first); see the module docstring."""
    if not history or not is_follow_up(question):
        return question
    previous = history[-1]
    prev_q = previous.question
    if _depth < 3:
        prev_q = heuristic_rewrite(prev_q, history[:-1], max_terms, _depth + 1)
    prev_names = [n for n in names(_without_context(prev_q)) if len(n) > 2]
    about = _ABOUT.match(question.strip())
    if about:
        new = (about.group("x") or about.group("y") or "").strip()
        new_names = names(new)
        if new_names and prev_names:
            if any(_same(n, p) for n in new_names for p in prev_names):
                return _without_context(prev_q)  # asked again about the same thing
            return _swap(_without_context(prev_q), prev_names[0], new_names[0])
        if new_names and not prev_names:
            return f"{_without_context(prev_q).rstrip(' ?.')} {new_names[0]}?"
    subject = prev_names[0] if prev_names else ""
    own_names = names(question)
    if subject and not own_names and _PRONOUN.search(question):
        resolved = _PRONOUN.sub(lambda m: _resolve(m.group("p"), subject), question, count=1)
        extra = [n for n in _lead_names(previous.answer) if not any(_same(n, p) for p in prev_names)][:4]
        context = " ".join([*_content(prev_q, resolved), *extra])
        return f"{resolved.strip()} ({_clip(context, max_terms)})" if context else resolved.strip()
    own = set(keyword_terms(question))
    borrowed = [t for t in keyword_terms(_without_context(prev_q)) if t not in own]
    for turn in reversed(history[-2:-1]):
        borrowed += [t for t in keyword_terms(turn.question) if t not in own and t not in borrowed]
    if not borrowed:
        return question
    return f"{question.strip()} ({' '.join(dict.fromkeys(borrowed[:max_terms]))})"


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


def _lead_names(answer: str) -> list[str]:
    """Names in the first sentence of an earlier answer (citation marks and labels removed)."""
    text = CITATION_MARK.sub(" ", answer)
    text = re.sub(r"\*\*[^*]*\*\*\s*(?:—\s*)?", " ", text)
    lead = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]
    return names(lead)


def _clip(context: str, max_terms: int) -> str:
    return " ".join(context.split()[: max_terms + 4])
