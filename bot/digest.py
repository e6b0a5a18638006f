"""Digests: a period's top stories, each with its lead sentence cited to the outlets that state it.

    Engine.digest(topic=..., sources=..., since=..., until=..., limit=...)
      └─ build_digest(reader, embedder, filters, doc_ids=topic matches)
           find_stories (index.stories: grouped, most outlets first, then most recent)
           ─> the best `limit` ─> story_lead (the answer's lead machinery) ─> numbered sources

Every number in a digest refers to one article published in the period (`Digest.sources_in_period`
holds by construction: only the period's articles are read). Numbers run through the whole digest, so
`[3]` means the same article wherever it appears; a story lists every one of its articles (up to
`MAX_LINKS`), the ones stating its lead first. A later card for a single story (a follow) can reuse
`DigestStory` and the renderers as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from newsbot.bot.answer.extractive.options import ExtractiveOptions, TermWeights
from newsbot.bot.answer.extractive.story import story_lead
from newsbot.index.documents import format_date
from newsbot.index.embedding.base import Embedder
from newsbot.index.hits import Filters
from newsbot.index.store.base import StoreReader
from newsbot.index.stories.cluster import ClusterOptions
from newsbot.index.stories.stories import MAX_ARTICLES, Story, find_stories

DEFAULT_LIMIT = 10
MAX_LIMIT = 25
MAX_LINKS = 5  # articles listed under one story (its lead's first); the rest are counted


@dataclass(frozen=True)
class DigestSource:
    """Source number `number` of a digest: one article of a story."""

    number: int
    doc_id: str
    title: str
    source: str
    url: str
    published_at: datetime | None
    also_reported_by: tuple[str, ...]
    states_lead: bool  # the article states the story's lead sentence (its number follows the lead)

    def label(self) -> str:
        """`Title — Outlet, 2025-03-14`."""
        meta = ", ".join(p for p in (self.source, format_date(self.published_at)) if p)
        return f"{self.title} — {meta}" if meta else self.title


@dataclass(frozen=True)
class DigestStory:
    story: Story
    sources: tuple[DigestSource, ...]  # the articles listed, the lead's stating ones first
    more: int = 0  # articles of the story not listed (beyond MAX_LINKS)

    @property
    def lead_numbers(self) -> list[int]:
        return [s.number for s in self.sources if s.states_lead]

    @property
    def text(self) -> str:
        """The lead sentence followed by the numbers of the articles that state it: `… [1][2]`."""
        return f"{self.story.lead} " + "".join(f"[{n}]" for n in self.lead_numbers)


@dataclass(frozen=True)
class Digest:
    """The top stories of a period (`since`..`until`, UTC, inclusive; None = open), optionally only
    about `topic` and from `outlets`; `articles` is how many articles of the period were grouped into
    `total_stories` stories, of which `stories` are the first `limit`."""

    stories: tuple[DigestStory, ...]
    since: datetime | None = None
    until: datetime | None = None
    topic: str = ""
    outlets: tuple[str, ...] = ()
    articles: int = 0
    total_stories: int = 0

    def sources_in_period(self) -> bool:
        """Whether every cited article was published inside the period (always, by construction)."""
        return all(
            s.published_at is not None and (self.since is None or s.published_at >= self.since)
            and (self.until is None or s.published_at <= self.until)
            for d in self.stories for s in d.sources
        ) if (self.since or self.until) else True


def build_digest(
    reader: StoreReader, embedder: Embedder, filters: Filters = Filters(), *, topic: str = "",
    doc_ids: Collection[str] | None = None, limit: int = DEFAULT_LIMIT, term_weight: TermWeights | None = None,
    cluster: ClusterOptions = ClusterOptions(), opts: ExtractiveOptions = ExtractiveOptions(),
    max_articles: int = MAX_ARTICLES,
) -> Digest:
    """The digest of the articles `filters` allow (and only `doc_ids`, the topic's matches, when given):
    the best `limit` stories, each with its lead chosen and its articles numbered."""
    stories = find_stories(reader, filters, doc_ids=doc_ids, opts=cluster, max_articles=max_articles)
    articles = sum(len(s.articles) for s in stories)
    chosen = [story_lead(s, embedder, term_weight=term_weight, opts=opts) for s in stories[: max(0, limit)]]
    return Digest(
        stories=tuple(number_stories(chosen)), since=filters.since, until=filters.until, topic=topic,
        outlets=filters.sources, articles=articles, total_stories=len(stories),
    )


def number_stories(stories: Sequence[Story]) -> list[DigestStory]:
    """Number the listed articles of every story through the digest, each story's lead-stating first."""
    out: list[DigestStory] = []
    number = 0
    for story in stories:
        stating = set(story.lead_doc_ids)
        ordered = sorted(story.articles, key=lambda a: (a.doc.id not in stating, story.lead_doc_ids.index(a.doc.id)
                                                         if a.doc.id in stating else 0))
        listed = ordered[:MAX_LINKS]
        sources = []
        for a in listed:
            number += 1
            d = a.doc
            sources.append(DigestSource(number, d.id, d.title, d.source, d.url, d.published_at, d.also_reported_by,
                                        d.id in stating))
        out.append(DigestStory(story, tuple(sources), more=len(ordered) - len(listed)))
    return out


# ------------------------------------------------------------------ text every front end shows


def _period_label(digest: Digest) -> str:
    since, until = format_date(digest.since), format_date(digest.until)
    if since and until:
        return f"{since} – {until}"
    return f"since {since}" if since else (f"until {until}" if until else "all dates")


def story_meta(d: DigestStory) -> str:
    """`2 outlets (A, B) · 3 articles · 2025-01-27 – 2025-01-28`."""
    s = d.story
    seen = format_date(s.first_seen)
    if format_date(s.last_seen) != seen:
        seen = f"{seen} – {format_date(s.last_seen)}"
    outlets = f"{s.coverage} outlet{'s' * (s.coverage != 1)} ({', '.join(s.outlets)})"
    return " · ".join(p for p in (outlets, f"{len(s.articles)} article{'s' * (len(s.articles) != 1)}", seen) if p)


def digest_heading(digest: Digest) -> str:
    """`Top stories, 2025-05-12 – 2025-05-19 · topic “Leica” · outlets Weibo`."""
    parts = [f"Top stories, {_period_label(digest)}"]
    if digest.topic:
        parts.append(f"topic “{digest.topic}”")
    if digest.outlets:
        parts.append(f"outlets {', '.join(digest.outlets)}")
    return " · ".join(parts)


def digest_empty_text(digest: Digest) -> str:
    what = "about that topic " if digest.topic else ""
    return (f"No articles {what}were published in this period ({_period_label(digest)}). "
            "Try a longer period (30d) or a date (2025-01-01).")
