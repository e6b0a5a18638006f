"""Turn `Answer`s, `Hit`s and `Digest`s into Discord message payloads that respect Discord's limits.

Pure functions over plain dicts (`{"content": ..., "embeds": [discord.Embed, ...]}`) so they can be
tested without a connection. Limits: 2,000 characters of content per message, 4,096 per embed
description, 10 embeds and 6,000 embed characters per message. Text is split at paragraph, line,
sentence or word boundaries, never inside a markdown link or an inline code span, and a code block
that must be split is closed and reopened. Mentions in article text are neutralised on top of the
`allowed_mentions` that every send uses, and so are masked links (`[shown](target)`) in quoted text;
addresses put into links are http(s) only and escaped (`bot.answer.answers.safe_url`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from newsbot.bot.answer.answers import Answer, Citation, printable, safe_url
from newsbot.bot.digest import Digest, DigestStory, digest_empty_text, digest_heading, story_meta
from newsbot.bot.follows import FollowPost
from newsbot.index.documents import Document, format_date
from newsbot.index.hits import Hit

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_LIMIT = 6000
EMBED_TITLE_LIMIT = 256
THREAD_NAME_LIMIT = 100
COLOR = 0x2B6CB0
NOT_FOUND_COLOR = 0x718096

NO_MENTIONS = discord.AllowedMentions.none()

_MENTION = re.compile(r"@(everyone|here)|<@[!&]?(\d+)>|<#(\d+)>")


def neutralize_mentions(text: str) -> str:
    """Break @everyone/@here and <@id>/<@&id> so they render as text and can never ping anyone."""

    def fix(m: re.Match[str]) -> str:
        return m.group(0).replace("@", "@\u200b", 1).replace("<#", "<\u200b#", 1)

    return _MENTION.sub(fix, text)


def escape_link_text(text: str) -> str:
    """Text for the visible part of `[text](url)`: no brackets or newlines, and no address of its own
    (`://` is broken), so a title cannot pose as the link's destination."""
    return printable(text).replace("[", "(").replace("]", ")").replace("\n", " ").replace("://", ":\u200b//")


def escape_markdown_links(text: str) -> str:
    """Article (or model) text in which `[shown](target)` no longer renders as a masked link: `](` gets a
    backslash, so Discord shows the brackets and the real address instead of a link that says one address
    and goes to another. Citation markers `[n]` are untouched."""
    return text.replace("](", "]\\(")


def defuse(text: str) -> str:
    """Quoted text as Discord should show it: no control characters, masked links or mentions."""
    return neutralize_mentions(escape_markdown_links(printable(text)))


def link(label: str, url: str) -> str:
    """`[label](url)` when `url` is a safe web address (see `safe_url`), else the label alone."""
    target = safe_url(url)
    return f"[{escape_link_text(label)}]({target})" if target else escape_link_text(label)


# ------------------------------------------------------------------------------------------ splitting

_LINK = re.compile(r"\[[^\]\n]*\]\([^)\s]*\)|<https?://[^>\s]+>|https?://\S+")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_FENCE = re.compile(r"^```(\w*)\s*$", re.M)


def _protected_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _LINK.finditer(text)] + [m.span() for m in _INLINE_CODE.finditer(text)]


def _safe_cut(text: str, limit: int) -> int:
    """The best index <= limit to cut `text` at: paragraph > line > sentence > word > hard."""
    if len(text) <= limit:
        return len(text)
    window = text[:limit]
    spans = _protected_spans(text)

    def ok(i: int) -> bool:
        return 0 < i <= limit and not any(s < i < e for s, e in spans)

    for pattern in ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "):
        i = window.rfind(pattern)
        while i > 0:
            cut = i + len(pattern)
            if ok(cut) and cut > limit // 3:
                return cut
            i = window.rfind(pattern, 0, i)
    for s, e in spans:  # a protected span straddles the limit: cut before it if we can
        if s < limit < e and s > 0:
            return s
    return limit


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` characters at safe places.

    A fenced code block cut in two is closed at the end of the first piece and reopened (same
    language) at the start of the next, so both pieces render as code.
    """
    pieces: list[str] = []
    rest = text.strip()
    reopen = ""
    while rest:
        rest = reopen + rest
        budget = limit - 4  # room to close an open fence
        if len(rest) <= limit and not _open_fence(rest):
            pieces.append(rest)
            break
        cut = _safe_cut(rest, budget if len(rest) > budget else len(rest))
        piece = rest[:cut].rstrip()
        fence = _open_fence(piece)
        if fence is not None:
            piece += "\n```"
            reopen = f"```{fence}\n"
        else:
            reopen = ""
        pieces.append(piece)
        rest = rest[cut:].lstrip()
        if not rest:
            break
    return [p for p in pieces if p.strip()]


def _open_fence(text: str) -> str | None:
    """The language of a fenced code block left open at the end of `text`, else None."""
    fences = _FENCE.findall(text)
    return fences[-1] if len(fences) % 2 == 1 else None


# ------------------------------------------------------------------------------------------ answers


def citation_line(c: Citation, *, markdown_links: bool) -> str:
    label = f"{c.title} — {', '.join(p for p in (c.source, format_date(c.published_at)) if p)}"
    url = safe_url(c.url)
    if markdown_links:
        return f"[{c.number}] {link(label, url)}"
    if url:
        return f"[{c.number}] {escape_link_text(label)} <{url}>"
    return f"[{c.number}] {escape_link_text(label)}"


def related_line(hit: Hit, *, markdown_links: bool) -> str:
    """`- Title — Outlet, date` (a link with embeds) for an article offered when nothing answered."""
    label = printable(hit.header)
    url = safe_url(hit.url)
    if markdown_links:
        return f"- {link(label, url)}"
    return f"- {escape_link_text(label)}" + (f" <{url}>" if url else "")


@dataclass
class Reply:
    """One Discord message to send: content and/or embeds (already within limits)."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
        if self.content:
            out["content"] = self.content
        if self.embeds:
            out["embeds"] = self.embeds
        return out

    def edit_kwargs(self) -> dict[str, Any]:
        """For editing an existing message into this reply (clears what is not set)."""
        return {"content": self.content or None, "embeds": self.embeds, "allowed_mentions": NO_MENTIONS}


def answer_replies(answer: Answer, *, embeds: bool = True, footer: str = "") -> list[Reply]:
    """The messages that show `answer`: its text, then the numbered list of cited sources."""
    text = escape_markdown_links(printable(answer.text))
    notes = "\n".join(f"*{escape_markdown_links(printable(n))}*" for n in answer.notes)
    if answer.related:  # "not found", and the articles that came closest
        text += "\n\n**Closest articles**\n" + "\n".join(related_line(h, markdown_links=embeds) for h in answer.related)
    if embeds:
        lines = [citation_line(c, markdown_links=True) for c in answer.citations]
        body = text + (("\n\n**Sources**\n" + "\n".join(lines)) if lines else "") + (f"\n\n{notes}" if notes else "")
        return _embed_replies(
            neutralize_mentions(body), title=neutralize_mentions(printable(answer.question)), footer=footer,
            color=COLOR if answer.found else NOT_FOUND_COLOR,
        )
    lines = [citation_line(c, markdown_links=False) for c in answer.citations]
    body = text + (("\n\n**Sources**\n" + "\n".join(lines)) if lines else "") + (f"\n\n{notes}" if notes else "")
    return [Reply(content=p) for p in split_text(neutralize_mentions(body), MESSAGE_LIMIT)]


def _embed_replies(body: str, *, title: str, footer: str, color: int) -> list[Reply]:
    pieces = split_text(body, EMBED_DESCRIPTION_LIMIT)
    replies: list[Reply] = []
    current: list[discord.Embed] = []
    used = 0
    title = _truncate(title, EMBED_TITLE_LIMIT)
    for i, piece in enumerate(pieces):
        embed = discord.Embed(description=piece, color=color)
        if i == 0 and title:
            embed.title = title
        if i == len(pieces) - 1 and footer:
            embed.set_footer(text=footer)
        size = len(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or used + size > EMBED_TOTAL_LIMIT):
            replies.append(Reply(embeds=current))
            current, used = [], 0
        current.append(embed)
        used += size
    if current:
        replies.append(Reply(embeds=current))
    return replies


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def thread_name(question: str) -> str:
    """A thread title from the question: mentions removed, one line, ≤ 100 characters."""
    cleaned = re.sub(r"<@[!&]?\d+>|@(everyone|here)", "", question)
    cleaned = " ".join(cleaned.split()) or "Question"
    return _truncate(cleaned, THREAD_NAME_LIMIT - 1)


# ------------------------------------------------------------------------------------------ search pages


def hit_block(rank: int, hit: Hit, *, width: int = 350) -> str:
    text = " ".join(printable(hit.text).split())
    if len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return f"**{rank}.** {link(hit.header, hit.url)}\n> {defuse(text)}"


def search_page(query: str, hits: Sequence[Hit], page: int, per_page: int = 5) -> discord.Embed:
    """Page `page` (from 0) of ranked passages as one embed."""
    pages = max(1, -(-len(hits) // per_page))
    start = page * per_page
    shown = hits[start : start + per_page]
    if shown:
        description = "\n\n".join(hit_block(start + i + 1, h) for i, h in enumerate(shown))
    else:
        description = "No matching passages."
    embed = discord.Embed(
        title=_truncate(f"Search: {neutralize_mentions(query)}", EMBED_TITLE_LIMIT),
        description=description[:EMBED_DESCRIPTION_LIMIT], color=COLOR,
    )
    embed.set_footer(text=f"Page {page + 1} of {pages} · {len(hits)} passages")
    return embed


def document_embed(doc: Document, chunks: int, *, lead_chars: int = 600) -> discord.Embed:
    lead = " ".join(printable(doc.body).split())
    if len(lead) > lead_chars:
        lead = lead[:lead_chars].rsplit(" ", 1)[0] + "…"
    embed = discord.Embed(
        title=_truncate(neutralize_mentions(printable(doc.title)), EMBED_TITLE_LIMIT), url=safe_url(doc.url) or None,
        description=defuse(lead), color=COLOR,
    )
    embed.add_field(name="Outlet", value=defuse(doc.source)[:1024] or "—")
    embed.add_field(name="Published", value=format_date(doc.published_at) or "—")
    embed.add_field(name="Indexed", value=f"{chunks} passages, {len(doc.body.split()):,} words")
    if doc.also_reported_by:
        embed.add_field(name="Also reported by", value=defuse(", ".join(doc.also_reported_by))[:1024], inline=False)
    if doc.author:
        embed.add_field(name="Author", value=defuse(doc.author)[:1024])
    embed.set_footer(text=f"id: {doc.id}")
    return embed


def latest_embed(docs: Sequence[Document], *, topic: str = "", source: str = "") -> discord.Embed:
    scope = " · ".join(p for p in (topic and f"topic “{topic}”", source and f"outlet {source}") if p)
    lines = []
    for d in docs:
        label = f"{d.title} — {', '.join(p for p in (d.source, format_date(d.published_at)) if p)}"
        lines.append(f"• {link(label, d.url)}")
        lines.append(f"  `{printable(d.id).replace('`', '')}`")
    embed = discord.Embed(
        title=_truncate(f"Latest articles{' · ' + scope if scope else ''}", EMBED_TITLE_LIMIT),
        description=neutralize_mentions("\n".join(lines) or "No articles match.")[:EMBED_DESCRIPTION_LIMIT],
        color=COLOR,
    )
    return embed


# ------------------------------------------------------------------------------------------ digests

DIGEST_FOOTER = "newsbot · lead sentences quoted from the sources"


def _story_refs(d: DigestStory, *, embeds: bool) -> str:
    """`[1] [Outlet, 2025-03-10 (also X)](url) · [2] …` (plain text: the addresses in <>, no preview)."""
    refs = []
    for s in d.sources:
        label = f"{s.source or s.title}, {format_date(s.published_at)}".strip(", ")
        if s.also_reported_by:
            label += f" (also {', '.join(s.also_reported_by)})"
        url = safe_url(s.url)
        refs.append(f"[{s.number}] " + (link(label, url) if embeds else escape_link_text(label) + (f" <{url}>" if url else "")))
    if d.more:
        refs.append(f"+{d.more} more")
    return " · ".join(refs)


FOLLOW_FOOTER = "newsbot · followed here (/follows lists them) · lead quoted from the sources"


def follow_reply(post: FollowPost, *, embeds: bool = True) -> Reply:
    """One message for a follow card: per story its title linked to its best article, outlet(s) and date
    (and "+N outlets" gained since it was first posted), the lead sentence with the numbers of the articles
    that state it, and their links. Always ONE message (it may be edited later): stories that do not fit
    are counted at the end instead."""
    topics = ", ".join(f"“{t}”" for t in post.topics[:3]) + (" …" if len(post.topics) > 3 else "")
    title = neutralize_mentions(_truncate(printable(f"Following {topics}" if topics else "Following"),
                                          EMBED_TITLE_LIMIT))
    limit = EMBED_DESCRIPTION_LIMIT - 100 if embeds else MESSAGE_LIMIT - len(title) - 100
    blocks: list[str] = []
    for n, fs in enumerate(post.stories):
        d = fs.story
        best = d.story.articles[0].doc
        head = link(d.story.title, best.url) if embeds else f"**{escape_link_text(d.story.title)}**"
        meta = " · ".join(p for p in (", ".join(d.story.outlets), format_date(d.story.first_seen)) if p)
        if fs.gained:
            meta += f" · +{fs.gained} outlet{'s' * (fs.gained != 1)}"
        block = "\n".join([f"**{head}**" if embeds else head, f"*{defuse(meta)}*", f"> {defuse(d.text)}",
                           _story_refs(d, embeds=embeds)])
        if sum(len(b) + 2 for b in blocks) + len(block) > limit:
            rest = len(post.stories) - n
            blocks.append(f"*+{rest} more {'story' if rest == 1 else 'stories'} matched: /digest lists them*")
            break
        blocks.append(block)
    body = neutralize_mentions("\n\n".join(blocks))
    if embeds:
        embed = discord.Embed(title=title, description=body[:EMBED_DESCRIPTION_LIMIT], color=COLOR)
        embed.set_footer(text=FOLLOW_FOOTER)
        return Reply(embeds=[embed])
    return Reply(content=f"**{title}**\n{body}"[:MESSAGE_LIMIT])


def digest_replies(digest: Digest, *, embeds: bool = True, footer: str = DIGEST_FOOTER) -> list[Reply]:
    """The messages that show `digest`: one embed (split like an answer when it is longer than one may
    be), each story a numbered title linked to its best article, its outlets and dates, its lead sentence
    with the numbers of the articles that state it, and its articles' links."""
    title = neutralize_mentions(printable(digest_heading(digest)))
    if not digest.stories:
        body = defuse(digest_empty_text(digest))
        return _embed_replies(body, title=title, footer=footer, color=NOT_FOUND_COLOR) if embeds else [
            Reply(content=p) for p in split_text(f"**{title}**\n{body}", MESSAGE_LIMIT)]
    blocks = [defuse(f"{digest.articles} articles in {digest.total_stories} stories; the top "
                     f"{len(digest.stories)} by outlets and recency")]
    for rank, d in enumerate(digest.stories, 1):
        head = f"**{rank}.** " + (link(d.story.title, d.story.articles[0].doc.url) if embeds
                                  else f"**{escape_link_text(d.story.title)}**")
        blocks.append("\n".join([head, f"*{defuse(story_meta(d))}*", f"> {defuse(d.text)}", _story_refs(d, embeds=embeds)]))
    body = neutralize_mentions("\n\n".join(blocks))
    if embeds:
        return _embed_replies(body, title=title, footer=footer, color=COLOR)
    return [Reply(content=p) for p in split_text(f"**{title}**\n{body}", MESSAGE_LIMIT)]
