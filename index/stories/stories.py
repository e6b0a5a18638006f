"""Stories of a period, read from a store: its articles, their ledes and vectors, grouped and ranked.

    reader.latest(period, outlets) ─> articles (newest `max_articles`)
        ─passage_ids + hits─> each article's first passage (its lede: what the story is)
        ─vectors─> one unit vector per article (its first passages' stored vectors, averaged)
        ─cluster_articles─> stories ─rank_stories─> most outlets first, then the most recent

Only stored data is read (no model): a week of a few hundred articles takes milliseconds. The lead
sentence is the answer side's job (`newsbot.bot.digest`), which fills `Story.lead`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from newsbot.index.documents import Document
from newsbot.index.hits import Filters, Hit
from newsbot.index.store.base import StoreReader
from newsbot.index.store.catalog import source_key
from newsbot.index.stories.cluster import ClusterOptions, article_names, cluster_articles

MAX_ARTICLES = 2_000  # newest articles of a period that are grouped (similarities are O(n²))
LEDE_PASSAGES = 1  # an article's first passages that make its vector and offer lead sentences


@dataclass(frozen=True)
class StoryArticle:
    """One article of a story: its listing (body empty) and its first passages in reading order."""

    doc: Document
    passages: tuple[Hit, ...]
    centrality: float = 0.0  # cosine of its vector with the story's mean vector

    @property
    def outlets(self) -> tuple[str, ...]:
        """Its outlet, then the outlets whose copies were merged into it ("also reported by")."""
        return tuple(o for o in (self.doc.source, *self.doc.also_reported_by) if o)


@dataclass(frozen=True)
class Story:
    """Articles about one event. `articles` best first (the one closest to the story's mean vector);
    `lead` is the sentence that states the story (quoted from `lead_doc_ids[0]`, empty until the answer
    side chooses it) and `lead_doc_ids` every article of the story that states it."""

    articles: tuple[StoryArticle, ...]
    centroid: np.ndarray = field(compare=False, repr=False)  # (dim,) float32 unit vector
    lead: str = ""
    lead_doc_ids: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.articles[0].doc.title

    @property
    def outlets(self) -> tuple[str, ...]:
        """Every outlet that ran the story, each once (case-insensitively), the best article's first."""
        seen: dict[str, str] = {}
        for a in self.articles:
            for outlet in a.outlets:
                seen.setdefault(source_key(outlet), outlet)
        return tuple(seen.values())

    @property
    def coverage(self) -> int:
        return len(self.outlets)

    @property
    def first_seen(self) -> datetime | None:
        dates = [a.doc.published_at for a in self.articles if a.doc.published_at]
        return min(dates) if dates else None

    @property
    def last_seen(self) -> datetime | None:
        dates = [a.doc.published_at for a in self.articles if a.doc.published_at]
        return max(dates) if dates else None

    def with_lead(self, lead: str, doc_ids: Sequence[str]) -> Story:
        return replace(self, lead=lead, lead_doc_ids=tuple(doc_ids))


def period_articles(
    reader: StoreReader, filters: Filters = Filters(), *, doc_ids: Collection[str] | None = None,
    max_articles: int = MAX_ARTICLES, lede_passages: int = LEDE_PASSAGES,
) -> tuple[list[StoryArticle], np.ndarray]:
    """The newest `max_articles` articles `filters` allow (only `doc_ids`, when given) that have passages,
    newest first, with their first `lede_passages` passages; and their vectors, shape (n, dim) float32,
    each the normalised mean of those passages' stored vectors (a zero row if the store has none)."""
    docs = reader.latest(max_articles, filters)
    if doc_ids is not None:
        wanted = set(doc_ids)
        docs = [d for d in docs if d.id in wanted]
    return _with_ledes(reader, docs, lede_passages)


def articles_by_id(
    reader: StoreReader, doc_ids: Sequence[str], *, lede_passages: int = LEDE_PASSAGES
) -> tuple[list[StoryArticle], np.ndarray]:
    """`period_articles` for the given articles whatever their date (ids the index lacks are left out),
    in the order given; for grouping a handful of new articles with those posted before (follows)."""
    docs = []
    for doc_id in dict.fromkeys(doc_ids):
        found = reader.document(doc_id)
        if found is not None:
            docs.append(replace(found[0], body=""))
    return _with_ledes(reader, docs, lede_passages)


def _with_ledes(
    reader: StoreReader, docs: Sequence[Document], lede_passages: int
) -> tuple[list[StoryArticle], np.ndarray]:
    passage_ids = reader.passage_ids([d.id for d in docs])
    hits = reader.hits([cid for ids in passage_ids.values() for cid in ids])
    by_doc: dict[str, list[Hit]] = {}
    for hit in hits.values():
        by_doc.setdefault(hit.doc_id, []).append(hit)
    articles: list[StoryArticle] = []
    for doc in docs:
        ledes = sorted(by_doc.get(doc.id, []), key=lambda h: h.start)[:lede_passages]
        if ledes:
            articles.append(StoryArticle(doc, tuple(ledes)))
    dim = reader.manifest.dim
    flat = [h.chunk_id for a in articles for h in a.passages]
    stored = reader.vectors(flat) if flat else np.zeros((0, dim), dtype=np.float32)
    vectors = np.zeros((len(articles), dim), dtype=np.float32)
    row = 0
    for i, a in enumerate(articles):
        vectors[i] = stored[row:row + len(a.passages)].mean(axis=0)
        row += len(a.passages)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return articles, np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def group_stories(
    articles: Sequence[StoryArticle], vectors: np.ndarray, opts: ClusterOptions = ClusterOptions()
) -> list[Story]:
    """The stories of `articles` (vectors: (n, dim) unit rows, as `period_articles` gives), ranked by
    `rank_stories`; each story's articles best first."""
    if not articles:
        return []
    times = np.array([a.doc.published_at.timestamp() if a.doc.published_at else np.nan for a in articles])
    names = [article_names(" ".join(h.text for h in a.passages)) for a in articles]
    labels = cluster_articles(vectors, times, names, opts)
    stories: list[Story] = []
    for label in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        centroid = vectors[members].sum(axis=0)
        norm = float(np.linalg.norm(centroid))
        centroid = (centroid / norm if norm > 0 else centroid).astype(np.float32)
        sims = vectors[members] @ centroid
        ranked = sorted(
            zip(members.tolist(), sims.tolist(), strict=True),
            key=lambda m: (-round(m[1], 6), -len(articles[m[0]].outlets), _time(articles[m[0]].doc), articles[m[0]].doc.id),
        )
        stories.append(Story(tuple(replace(articles[i], centrality=float(s)) for i, s in ranked), centroid))
    return rank_stories(stories)


def one_story(articles: Sequence[StoryArticle], vectors: np.ndarray) -> Story | None:
    """The given articles as one story (no grouping: a story shown before, with the articles shown under
    it), best first as `group_stories` orders them; None without articles."""
    if not articles:
        return None
    centroid = vectors.sum(axis=0)
    norm = float(np.linalg.norm(centroid))
    centroid = (centroid / norm if norm > 0 else centroid).astype(np.float32)
    sims = (vectors @ centroid).tolist()
    ranked = sorted(range(len(articles)), key=lambda i: (-round(sims[i], 6), -len(articles[i].outlets),
                                                         _time(articles[i].doc), articles[i].doc.id))
    return Story(tuple(replace(articles[i], centrality=float(sims[i])) for i in ranked), centroid)


def rank_stories(stories: Sequence[Story]) -> list[Story]:
    """Most outlets first; among equals the most recent (last seen), then the most articles, then by title."""
    return sorted(stories, key=lambda s: (-s.coverage, -_ts(s.last_seen), -len(s.articles), s.title))


def find_stories(
    reader: StoreReader, filters: Filters = Filters(), *, doc_ids: Collection[str] | None = None,
    opts: ClusterOptions = ClusterOptions(), max_articles: int = MAX_ARTICLES,
) -> list[Story]:
    """The ranked stories of the articles `filters` allow (and only `doc_ids`, when given); see the module doc."""
    articles, vectors = period_articles(reader, filters, doc_ids=doc_ids, max_articles=max_articles)
    return group_stories(articles, vectors, opts)


def _ts(dt: datetime | None) -> float:
    return dt.timestamp() if dt else float("-inf")


def _time(doc: Document) -> float:
    return doc.published_at.timestamp() if doc.published_at else float("inf")
