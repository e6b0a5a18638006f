"""What the bot says: `Answer` (text with [n] markers) and `Citation` (the article behind each [n]).

The CLI, Discord and the language-model path all produce and render these same objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from index.hits import Hit

NOT_FOUND_TEXT = "I couldn't find this in the indexed news."


@dataclass(frozen=True)
class Citation:
    """Source number `number` in the answer text: one article and the passages of it that were used."""

    number: int
    hits: tuple[Hit, ...]  # the passages of this article the answer rests on, best first

    @property
    def hit(self) -> Hit:
        return self.hits[0]

    @property
    def doc_id(self) -> str:
        return self.hit.doc_id

    @property
    def title(self) -> str:
        return self.hit.title

    @property
    def source(self) -> str:
        return self.hit.source

    @property
    def url(self) -> str:
        return self.hit.url

    @property
    def published_at(self) -> datetime | None:
        return self.hit.published_at

    def label(self) -> str:
        """`Title — Outlet, 2025-03-14` (no number, no URL)."""
        return self.hit.header


@dataclass(frozen=True)
class Answer:
    """A reply to one question.

    `text` carries citation markers `[n]` that refer to `citations[n-1]`; every marker in the text
    has a citation and every citation is referred to. `found` is False when the index holds nothing
    relevant: then `text` says so and `citations` is empty. `hits` are all passages retrieved for the
    question (what the answer was chosen from), best first.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    found: bool
    mode: str = "extractive"  # "extractive" or "llm"
    standalone_question: str = ""  # the question as rewritten from conversation history, if it was
    notes: tuple[str, ...] = field(default=())  # e.g. why a model answer fell back to extractive
    related: tuple[Hit, ...] = field(default=())  # "not found": the closest articles (one passage each)

    def cited_numbers(self) -> list[int]:
        return sorted({int(n) for n in CITATION_MARK.findall(self.text)})

    def sources_text(self) -> str:
        """Plain-text source list: one `[n] Title — Outlet, date <url>` line per citation."""
        lines = []
        for c in self.citations:
            line = f"[{c.number}] {c.label()}"
            if c.url:
                line += f" <{c.url}>"
            lines.append(line)
        return "\n".join(lines)


CITATION_MARK = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation (a Discord thread, a DM, `newsbot chat`)."""

    question: str
    answer: str  # the answer text as shown, citation markers included
