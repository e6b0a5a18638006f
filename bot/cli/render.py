"""Answers and hits for a terminal (wrapped, control characters removed, only http(s) links), and as
the JSON that `--json` prints."""

from __future__ import annotations

import sys
import textwrap
from typing import Any

from newsbot.bot.answer.answers import Answer, printable, safe_url
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
