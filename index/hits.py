"""What search returns: `Hit` (one ranked passage with its article's metadata) and `Filters`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from newsbot.index.documents import format_date


@dataclass(frozen=True)
class Filters:
    """Restrict a search to outlets and a date range (inclusive, UTC)."""

    sources: tuple[str, ...] = ()  # outlet names, matched case-insensitively; empty = any
    since: datetime | None = None
    until: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.sources or self.since or self.until)


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: a span of an article's body plus the article's metadata.

    `text` is exactly `body[start:end]`. `passage` is what a reader (or a language model) is shown:
    a header line with title, outlet and date, then the text.
    """

    chunk_id: int
    doc_id: str
    title: str
    source: str
    url: str
    published_at: datetime | None
    text: str
    start: int
    end: int
    score: float  # fused score: higher is better, comparable only within one result list
    dense_score: float | None = None  # cosine similarity of query and passage vectors
    keyword_score: float | None = None  # bm25 (higher is better)
    author: str = ""
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def date(self) -> str:
        return format_date(self.published_at)

    @property
    def header(self) -> str:
        return passage_header(self.title, self.source, self.published_at)

    @property
    def passage(self) -> str:
        return f"{self.header}\n{self.text}"


def passage_header(title: str, source: str, published_at: datetime | None) -> str:
    """`Title — Outlet, 2025-03-14`: the line that puts an article's identity into every passage."""
    meta = ", ".join(p for p in (source, format_date(published_at)) if p)
    return f"{title} — {meta}" if meta else title
