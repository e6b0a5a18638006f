"""Answers, hits and digests for a terminal (wrapped, control characters removed, only http(s) links),
as the JSON that `--json` prints, and digests as Markdown (`--markdown`)."""

from __future__ import annotations

import sys
import textwrap
from typing import Any

from newsbot.bot.answer.answers import Answer, printable, safe_url
from newsbot.bot.digest import Digest, DigestSource, digest_empty_text, digest_heading, story_meta
from newsbot.index.hits import Hit


class StreamPrinter:
    """Prints a model's answer as it streams, then erases it so the checked answer can replace it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = ""

    def __call__(self, text: str) -> None:
        if self.enabled and text.startswith(self.shown):
            sys.stdout.write(text[len(self.shown):])
            sys.stdout.flush()
            self.shown = text

    def erase(self) -> None:
        if not self.enabled or not self.shown:
            return
        import shutil

        cols = max(20, shutil.get_terminal_size().columns)
        rows = sum(max(1, -(-len(line) // cols)) for line in self.shown.split("\n"))
        sys.stdout.write(f"\r\033[{rows - 1}F\033[J" if rows > 1 else "\r\033[J")
        sys.stdout.flush()
        self.shown = ""


def render_answer(answer: Answer) -> str:
    """The answer for a terminal: lines wrapped at 100 columns, markdown bold markers dropped, article text
    without control characters (no escape sequences from an article reach the terminal), and only http(s)
    addresses, escaped (`safe_url`)."""
    text = printable(answer.text).replace("**", "")
    lines = [textwrap.fill(line, 100, subsequent_indent="  " if line.startswith("•") else "") for line in text.splitlines()]
    if answer.related:
        lines += ["", "Closest articles:"]
        for h in answer.related:
            url = safe_url(h.url)
            lines.append(f"- {printable(h.header)}" + (f"  {url}" if url else ""))
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            lines.append(f"[{c.number}] {printable(c.label())}")
            if safe_url(c.url):
                lines.append(f"    {safe_url(c.url)}")
    for note in answer.notes:
        lines += ["", f"({printable(note)})"]
    return "\n".join(lines)


def hit_json(hit: Hit, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "doc_id": hit.doc_id,
        "chunk_id": hit.chunk_id,
        "title": hit.title,
        "source": hit.source,
        "url": hit.url,
        "published_at": hit.published_at.isoformat() if hit.published_at else None,
        "score": round(hit.score, 6),
        "dense_score": None if hit.dense_score is None else round(hit.dense_score, 4),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 4),
        "span": [hit.start, hit.end],
        "text": hit.text,
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or None,
        "found": answer.found,
        "mode": answer.mode,
        "text": answer.text,
        "citations": [
            {
                "number": c.number,
                "doc_id": c.doc_id,
                "title": c.title,
                "source": c.source,
                "published_at": c.published_at.isoformat() if c.published_at else None,
                "url": c.url,
                "passages": [hit_json(h, i) for i, h in enumerate(c.hits, 1)],
            }
            for c in answer.citations
        ],
        "notes": list(answer.notes),
        "related": [
            {"doc_id": h.doc_id, "title": h.title, "source": h.source, "url": h.url,
             "published_at": h.published_at.isoformat() if h.published_at else None}
            for h in answer.related
        ],
    }


# ------------------------------------------------------------------------------------------ digests


def _source_suffix(s: DigestSource) -> str:
    return f" (also reported by {', '.join(s.also_reported_by)})" if s.also_reported_by else ""


def render_digest(digest: Digest) -> str:
    """The digest for a terminal: numbered stories, each with its outlets, dates, cited lead and articles."""
    lines = [printable(digest_heading(digest)),
             f"{digest.articles} articles in {digest.total_stories} stories; the top {len(digest.stories)} by outlets and recency"
             if digest.stories else printable(digest_empty_text(digest))]
    for rank, d in enumerate(digest.stories, 1):
        lines += ["", printable(f"{rank}. {d.story.title}"), "   " + printable(story_meta(d))]
        lines.append(textwrap.fill(printable(d.text), 100, initial_indent="   ", subsequent_indent="   ",
                                   break_on_hyphens=False))
        for s in d.sources:
            lines.append(f"   [{s.number}] {printable(s.label() + _source_suffix(s))}")
            if safe_url(s.url):
                lines.append(f"       {safe_url(s.url)}")
        if d.more:
            lines.append(f"   (+{d.more} more articles)")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Article text for Markdown: no control characters, no masked links, no HTML."""
    return printable(text).replace("](", "]\\(").replace("<", "&lt;")


def digest_markdown(digest: Digest) -> str:
    """The digest as Markdown (a newsletter, a wiki page, a chat that renders it)."""
    lines = [f"## {_md(digest_heading(digest))}", ""]
    if not digest.stories:
        return "\n".join(lines + [_md(digest_empty_text(digest))])
    for rank, d in enumerate(digest.stories, 1):
        url = safe_url(d.story.articles[0].doc.url)
        title = _md(d.story.title).replace("[", "(").replace("]", ")")
        lines.append(f"**{rank}. [{title}]({url})**" if url else f"**{rank}. {title}**")
        lines.append(f"*{_md(story_meta(d))}*  ")
        lines.append(f"{_md(d.text)}  ")
        refs = []
        for s in d.sources:
            label = _md(s.label() + _source_suffix(s)).replace("[", "(").replace("]", ")")
            refs.append(f"[{s.number}] [{label}]({safe_url(s.url)})" if safe_url(s.url) else f"[{s.number}] {label}")
        if d.more:
            refs.append(f"+{d.more} more")
        lines += ["  \n".join(refs), ""]
    return "\n".join(lines).rstrip() + "\n"


def digest_json(digest: Digest) -> dict[str, Any]:
    def when(dt: Any) -> str | None:
        return dt.isoformat() if dt else None

    return {
        "since": when(digest.since),
        "until": when(digest.until),
        "topic": digest.topic or None,
        "sources": list(digest.outlets),
        "articles": digest.articles,
        "stories_total": digest.total_stories,
        "stories": [
            {
                "rank": rank,
                "title": d.story.title,
                "lead": d.story.lead,
                "text": d.text,
                "lead_citations": d.lead_numbers,
                "outlets": list(d.story.outlets),
                "coverage": d.story.coverage,
                "articles": len(d.story.articles),
                "first_seen": when(d.story.first_seen),
                "last_seen": when(d.story.last_seen),
                "citations": [
                    {"number": s.number, "doc_id": s.doc_id, "title": s.title, "source": s.source, "url": s.url,
                     "published_at": when(s.published_at), "also_reported_by": list(s.also_reported_by),
                     "states_lead": s.states_lead}
                    for s in d.sources
                ],
                "more_articles": d.more,
            }
            for rank, d in enumerate(digest.stories, 1)
        ],
    }
