"""Discord rendering: splitting within limits without breaking links or code, defused mentions, limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from newsbot.bot.answer.answers import Answer, Citation
from newsbot.bot.discordbot.guards import RateLimiter
from newsbot.bot.discordbot.render import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    MESSAGE_LIMIT,
    answer_replies,
    neutralize_mentions,
    split_text,
    thread_name,
)
from newsbot.index.hits import Hit

LINK = "[Xiaomi is Ending its Leica Camera Partnership — Weibo, 2025-05-19](https://example.com/a/b?c=d)"


def test_split_respects_limit_and_loses_nothing() -> None:
    text = " ".join(f"Sentence number {i} talks about chips and phones." for i in range(400))
    pieces = split_text(text, 2000)
    assert all(len(p) <= 2000 for p in pieces)
    assert " ".join(pieces).split() == text.split()
    assert all(p.endswith(".") for p in pieces[:-1]), "cuts fall at sentence ends"


def test_split_never_cuts_inside_a_link() -> None:
    text = ("word " * 380) + LINK + (" more" * 50)  # the link straddles the 2,000 boundary
    for limit in (1990, 2000, 2010, 2030):
        pieces = split_text(text, limit)
        assert all(len(p) <= limit for p in pieces)
        assert sum(p.count(LINK) for p in pieces) == 1, limit
        for p in pieces:
            assert p.count("[") == p.count("]") and p.count("(") == p.count(")")


def test_split_closes_and_reopens_code_blocks() -> None:
    code = "\n".join(f"line_{i} = {i} * 2" for i in range(300))
    text = "Here is code:\n```python\n" + code + "\n```\nDone."
    pieces = split_text(text, 1000)
    assert len(pieces) > 3
    for p in pieces:
        assert len(p) <= 1000
        assert p.count("```") % 2 == 0, "every piece has balanced fences"
    assert pieces[1].startswith("```python\n")
    joined = "\n".join(pieces)
    assert all(f"line_{i} = {i} * 2" in joined for i in range(300))


def test_mentions_are_defused() -> None:
    text = "@everyone look <@123> and <@!456> and <@&789> in <#42> @here"
    safe = neutralize_mentions(text)
    assert not re.search(r"@everyone|@here|<@!?\d+>|<@&\d+>", safe)
    assert safe.replace("\u200b", "") == text
    assert thread_name("<@1> @everyone Why is Xiaomi dropping Leica?") == "Why is Xiaomi dropping Leica?"
    assert len(thread_name("x" * 500)) <= 100


def _answer(text: str, n_sources: int = 3) -> Answer:
    hits = tuple(
        Hit(chunk_id=i, doc_id=f"d{i}", title=f"Title {i} @everyone", source="Outlet", url=f"https://ex.com/{i}",
            published_at=datetime(2025, 1, i + 1, tzinfo=UTC), text="t", start=0, end=1, score=1.0)
        for i in range(n_sources)
    )
    return Answer("q?", text, tuple(Citation(i + 1, (h,)) for i, h in enumerate(hits)), hits, True)


def test_long_answers_fit_embed_and_message_limits() -> None:
    body = " ".join(f"Claim {i} is supported by the reporting [1]." for i in range(300))  # ≈ 13,000 chars
    replies = answer_replies(_answer(body), embeds=True, footer="newsbot")
    assert len(replies) >= 3
    for r in replies:
        assert len(r.embeds) <= 10 and sum(len(e) for e in r.embeds) <= EMBED_TOTAL_LIMIT
        assert all(len(e.description or "") <= EMBED_DESCRIPTION_LIMIT for e in r.embeds)
    text = "".join(e.description or "" for r in replies for e in r.embeds)
    assert all(f"Claim {i} " in text for i in range(300))
    assert "**Sources**" in text and "[3] [Title 2 @\u200beveryone — Outlet, 2025-01-03](https://ex.com/2)" in text
    plain = answer_replies(_answer(body), embeds=False)
    assert all(len(r.content) <= MESSAGE_LIMIT for r in plain)
    assert "[1] Title 0 @\u200beveryone — Outlet, 2025-01-01 <https://ex.com/0>" in "".join(r.content for r in plain)
    assert all(r.kwargs()["allowed_mentions"].to_dict() == {"parse": []} for r in plain + replies)


def test_rate_limits() -> None:
    limiter = RateLimiter(user_refill=5, guild_per_minute=3)  # one question per 5 s per user
    assert limiter.check(1, 10, now=100.0) is None
    assert "try again in 3 s" in str(limiter.check(1, 10, now=102.0))
    assert limiter.check(1, 10, now=105.5) is None
    assert limiter.check(2, 10, now=106.0) is None
    assert "server" in str(limiter.check(3, 10, now=107.0))  # 4th question in a minute
    assert limiter.check(3, 11, now=107.0) is None  # another server is not affected
    assert limiter.check(3, 10, now=170.0) is None  # the window moved on
