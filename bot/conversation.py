"""Follow-up questions: turn "what about Huawei?" into something retrieval can use on its own.

Without a language model we use a heuristic: a follow-up that is short or leans on the previous turn
("what about…", "and…", "it", "they", "why?") borrows the content words of the previous questions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.answers import Turn
from index.store import keyword_terms
from index.tokens import count_tokens

_LEANING = re.compile(
    r"^\s*(what about|how about|and\b|also\b|but\b|so\b|then\b|why\b|how\b|when\b|what else|more\b|tell me more)"
    r"|\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|same)\b",
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


def heuristic_rewrite(question: str, history: Sequence[Turn], max_terms: int = 8) -> str:
    """`question` plus the content words of the previous questions it seems to depend on."""
    if not history or not is_follow_up(question):
        return question
    own = set(keyword_terms(question))
    borrowed: list[str] = []
    for turn in reversed(history[-2:]):
        for term in keyword_terms(turn.question):
            if term not in own and term not in borrowed:
                borrowed.append(term)
    if not borrowed:
        return question
    return f"{question.strip()} ({' '.join(borrowed[:max_terms])})"
