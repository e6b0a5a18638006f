"""What every front end checks of a question or a date before it reaches the engine, and the refusals
it shows when they are not usable (the messages are safe to show users)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from newsbot.index.documents import parse_date


class QuestionRejected(ValueError):
    """The question cannot be asked as it is (empty, too long); the message is safe to show users."""


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
