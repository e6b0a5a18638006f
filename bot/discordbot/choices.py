"""Autocomplete for slash command options, and the refusal of an outlet the index does not have.

`source` options offer the index's outlets; `/source id` offers articles by title (the value sent back is
the article's id). Discord's limits: at most 25 choices, a choice's name 1-100 characters, a string
value at most 100 characters; Discord drops the whole list when one choice breaks them, so a choice that
cannot be shown whole (an id longer than 100 characters) is left out and a long title is shortened.
Discord waits 3 s for choices: the engine caches outlets per index version, and a title lookup is one
indexed SQL query.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord import app_commands

from newsbot.bot.questions import UnknownOutlet
from newsbot.index.documents import Document, format_date

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

MAX_CHOICES = 25
CHOICE_CHARS = 100  # a choice's name, and a string choice's value


def clip(text: str, limit: int = CHOICE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def article_label(doc: Document) -> str:
    """`Title — Outlet, 2025-05-19`, shortened to fit a choice (the title gives way, not the outlet/date)."""
    meta = ", ".join(p for p in (doc.source, format_date(doc.published_at)) if p)
    title = " ".join((doc.title or doc.id).split())
    if not meta:
        return clip(title)
    tail = f" — {clip(meta, 60)}"
    return clip(title, CHOICE_CHARS - len(tail)) + tail


async def outlet_choices(bot: NewsBot, current: str) -> list[app_commands.Choice[str]]:
    """The index's outlets matching what the user typed (see `Engine.match_outlets`)."""
    try:
        names = await bot.run_engine(bot.engine.match_outlets, current[:CHOICE_CHARS], MAX_CHOICES)
    except Exception:  # no index yet, a database hiccup: no suggestions rather than an error
        log.warning("outlet autocomplete failed", exc_info=True)
        return []
    return [app_commands.Choice(name=clip(n), value=n) for n in names if 0 < len(n) <= CHOICE_CHARS]


async def article_choices(bot: NewsBot, current: str) -> list[app_commands.Choice[str]]:
    """Articles whose title contains what the user typed (or whose id starts with it), newest first."""
    try:
        # a few more than shown: an article whose id is too long to be a choice's value gives way to the next
        docs = await bot.run_engine(bot.engine.find_articles, current[:CHOICE_CHARS], MAX_CHOICES * 2)
    except Exception:
        log.warning("article autocomplete failed", exc_info=True)
        return []
    usable = [d for d in docs if 0 < len(d.id) <= CHOICE_CHARS]
    return [app_commands.Choice(name=article_label(d), value=d.id) for d in usable[:MAX_CHOICES]]


async def outlet_refusal(bot: NewsBot, source: str | None) -> str | None:
    """"No outlet named Reuters; known: …" when the index has no article from `source`; None otherwise."""
    if not source or not source.strip():
        return None
    try:
        await bot.run_engine(bot.engine.resolve_outlets, [source])
    except UnknownOutlet as exc:
        text = str(exc)
        return text[:1].upper() + text[1:]
    return None
