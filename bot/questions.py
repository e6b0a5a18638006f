"""What every front end checks of a question or a date before it reaches the engine, and the refusals
it shows when they are not usable (the messages are safe to show users)."""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timedelta

from newsbot.index.documents import parse_date


class QuestionRejected(ValueError):
    """The question cannot be asked as it is (empty, too long); the message is safe to show users."""


class UnknownOutlet(QuestionRejected):
    """An outlet filter names no outlet of the index; the message says which ones it has."""


def unknown_outlet_message(name: str, known: list[str], shown: int = 12) -> str:
    """`no outlet named Reuters; known: AI Dispatch, ChargeLine, …`: the closest spellings first, then the
    outlets with the most articles (`known` is in that order), at most `shown` of them."""
    close = difflib.get_close_matches(name.casefold(), [k.casefold() for k in known], n=3, cutoff=0.6)
    ordered = [k for c in close for k in known if k.casefold() == c] + known
    listed = list(dict.fromkeys(ordered))
    more = f" and {len(listed) - shown:,} more" if len(listed) > shown else ""
    name = " ".join(name.split())[:100]
    if not listed:
        return f"no outlet named {name}: the index has no outlets yet"
    return f"no outlet named {name}; known: {', '.join(listed[:shown])}{more}"


_SURROGATES = re.compile("[\ud800-\udfff]")


def check_question(text: str, max_chars: int) -> str:
    """The question ready to search, or QuestionRejected with a message safe to show.

    Bytes that were not UTF-8 (argv and stdin decode them to lone surrogates, and an API caller can pass
    one) become U+FFFD, so the rest of the question is still asked; nothing left to ask is refused."""
    text, repaired = _SURROGATES.subn("\ufffd", text or "")
    text = text.strip()
    if repaired and not text.replace("\ufffd", "").strip():
        raise QuestionRejected("Please ask a question: the text was not readable (not UTF-8).")
    if not text:
        raise QuestionRejected("Please ask a question: the text was empty.")
    refusal = length_refusal(text, max_chars)
    if refusal:
        raise QuestionRejected(refusal)
    return text


def length_refusal(question: str, max_chars: int) -> str | None:
    """The polite refusal of a question longer than `max_chars` characters; None when it is not."""
    if len(question) > max_chars:
        return f"That question is {len(question):,} characters long; please keep it under {max_chars:,}."
    return None


def parse_day(text: str | None, *, end: bool = False) -> datetime | None:
    """`2025-03-14` → that day's first second (or last second with end=True), UTC; full ISO kept as is."""
    if not text:
        return None
    dt = parse_date(text)
    assert dt is not None
    if end and len(text.strip()) <= 10:
        dt = dt + timedelta(days=1) - timedelta(microseconds=1)
    return dt


def question_about(title: str, max_chars: int = 90) -> str | None:
    """An example question about an article, from its headline: "What's the latest on <headline>?".

    A headline in parts ("Nvidia GTC 2026 Preview: Vera Rubin Is the Main Event", "Story | Site") gives its
    first part, or the second when the first is a label of one or two words ("Update: ..."); a headline that
    is a question is asked as it is. None when what is left is one word or longer than `max_chars`: an
    example should be short enough to read and retype. Whether the index answers it is for the caller to
    check (`Engine.overview` does)."""
    parts = [p.strip() for p in re.split(r"[:;]\s+|\s+[|\u2014\u2013]\s+", " ".join(title.split())) if p.strip()]
    if not parts:
        return None
    head = parts[1] if len(parts) > 1 and len(parts[0].split()) < 3 else parts[0]
    head = head.rstrip(" .!,")
    if len(head.split()) < 2 or len(head) > max_chars:
        return None
    return head if head.endswith("?") else f"What's the latest on {head}?"


_RELATIVE = re.compile(r"^\s*(\d{1,4})\s*([hdw])\s*$", re.I)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
PERIOD_HINT = "a period is 1d, 7d, 12h, 2w (back from now) or a date: 2025-05-19"


def parse_period(text: str | None, now: datetime, *, end: bool = False) -> datetime | None:
    """A digest's bound: `7d`, `12h`, `2w` (that long before `now`) or a date as `parse_day` reads it
    (with end=True a bare date means its last second). None for empty; ValueError (message: PERIOD_HINT)
    for anything else."""
    if not text or not text.strip():
        return None
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(hours=int(m.group(1)) * _UNIT_HOURS[m.group(2).lower()])
    try:
        return parse_day(text.strip(), end=end)
    except ValueError:
        raise ValueError(f"not a period: {text.strip()[:40]!r} ({PERIOD_HINT})") from None
