"""Follows: a channel asks for new articles about a topic (or from an outlet); when an update indexes
articles that match, the channel gets one compact card per story, and a story it was shown before is
updated ("+2 outlets") instead of posted again.

    indexed articles (a feed poll, /ingest, /feeds update: `indexed_ids(report)`)
      └─ plan_follow_posts(state, reader, embedder, doc_ids)
           per channel: which follows match each article (topic_scores: the hybrid rule /digest's topic
           uses, on these articles only, with the stricter FOLLOW_* thresholds; or the outlet), grouped with the articles the channel matched
           before (group_stories) ─> new stories (claimed, so one replica posts each) and stories shown
           before whose outlets grew (their message is edited)
      └─ the front end posts or edits, then `record_follow_message` stores the message id

Everything the channel matched is kept in the state database (follow_articles, follow_stories), so a
restart or another replica never posts a story twice. A story waiting for `min_outlets` is kept too and
posted once enough outlets ran it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from newsbot.bot.answer.extractive.options import TermWeights
from newsbot.bot.answer.extractive.story import story_lead
from newsbot.bot.digest import DigestStory, number_stories
from newsbot.bot.state import Follow, State
from newsbot.index.build import BuildReport
from newsbot.index.embedding.base import Embedder
from newsbot.index.store.base import StoreReader
from newsbot.index.store.catalog import source_key
from newsbot.index.stories.stories import Story, articles_by_id, group_stories, one_story
from newsbot.index.stories.topic import topic_scores

MAX_MIN_OUTLETS = 10
# A follow posts every match, so it is stricter than /digest's topic filter (0.5 / 0.3), which only ranks:
# calibrated with benchmarks/follow.py on MultiHop-RAG's bridge entities (33 topics, 609 articles), where
# a passage with the topic's words from cosine 0.4 (instead of 0.3) posts half as many articles per topic
# (6.8 instead of 13.9), precision 0.39 -> 0.55 (lower bound; 0.67 -> 0.79 counting articles whose body
# names the entity twice), recall of the evidence articles 0.86 -> 0.57: the best F0.5 of the grid. The
# meaning-only floor changes nothing there from 0.5 to 0.7 (entity topics are named); 0.5 is kept for
# topics that are not names ("deep-sea mining").
FOLLOW_MIN_COSINE = 0.5
FOLLOW_MIN_COSINE_WITH_WORDS = 0.4
RECENT_ARTICLES = 500  # a channel's matched articles that new ones are grouped with (newest first)
INDEXED = ("new", "updated", "duplicate")  # outcomes that may change what a follow shows


def follow_id(channel_id: str, topic: str, source: str) -> str:
    """One follow per channel, topic (ignoring case and spacing) and outlet."""
    key = "\x1f".join([channel_id, " ".join(topic.lower().split()), source_key(source)])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def indexed_ids(report: BuildReport | None) -> list[str]:
    """The stored ids of the articles an update indexed, changed or merged (a syndicated copy counts as
    its original, which gained an outlet)."""
    if report is None:
        return []
    return list(dict.fromkeys(report.stored_as.get(i, i) for i, o in report.outcomes.items() if o in INDEXED))


@dataclass(frozen=True)
class FollowStory:
    """A story of a follow card: as a digest shows it, plus outlets gained since it was first posted."""

    key: str
    story: DigestStory
    gained: int = 0


@dataclass(frozen=True)
class FollowPost:
    """One message to post (`message_id` '') or edit in `channel_id`: its stories, and the follows' topics
    that matched (for the heading). After a post succeeds, `record_follow_message(channel_id, keys, id)`."""

    channel_id: str
    message_id: str
    topics: tuple[str, ...]
    stories: tuple[FollowStory, ...]
    guild_id: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stories)


def _matches(follow: Follow, doc_outlets: Iterable[str], scores: dict[str, dict[str, float]], doc_id: str) -> bool:
    if follow.source and source_key(follow.source) not in {source_key(o) for o in doc_outlets}:
        return False
    return not follow.topic or doc_id in scores[follow.topic]


def plan_follow_posts(
    state: State, reader: StoreReader, embedder: Embedder, doc_ids: Sequence[str], *,
    term_weight: TermWeights | None = None,
) -> list[FollowPost]:
    """What to post and edit for the articles `doc_ids` (just indexed): see the module doc. New stories
    are claimed here (a second caller gets nothing for them); the caller posts, then records the message
    id, or calls `State.release_follow_story` for each key when posting failed."""
    follows = state.follows()
    ids = list(dict.fromkeys(doc_ids))
    if not follows or not ids:
        return []
    docs = {i: found[0] for i in ids if (found := reader.document(i)) is not None}
    scores = {f.topic: topic_scores(reader, embedder, f.topic, list(docs), min_cosine=FOLLOW_MIN_COSINE,
                                    min_cosine_with_words=FOLLOW_MIN_COSINE_WITH_WORDS) for f in follows if f.topic}
    by_channel: dict[str, list[Follow]] = {}
    for f in follows:
        by_channel.setdefault(f.channel_id, []).append(f)
    posts: list[FollowPost] = []
    for channel, channel_follows in by_channel.items():
        matched: dict[str, tuple[int, str]] = {}  # doc id -> (min_outlets, topic) of the laxest follow
        for doc_id, doc in docs.items():
            outlets = [doc.source, *doc.also_reported_by]
            for f in channel_follows:
                if _matches(f, outlets, scores, doc_id) and f.min_outlets <= matched.get(doc_id, (99, ""))[0]:
                    matched[doc_id] = (f.min_outlets, f.topic or f.source)
        if matched:
            guild = channel_follows[0].guild_id
            posts += [replace(p, guild_id=guild) for p in _channel_posts(state, reader, embedder, channel, matched,
                                                                         term_weight)]
    return posts


def _channel_posts(
    state: State, reader: StoreReader, embedder: Embedder, channel: str, matched: dict[str, tuple[int, str]],
    term_weight: TermWeights | None,
) -> list[FollowPost]:
    known = {a.doc_id: a for a in state.follow_articles(channel, RECENT_ARTICLES)}
    posted = state.follow_stories(channel)
    articles, vectors = articles_by_id(reader, [*matched, *(d for d in known if d not in matched)])
    new_stories: list[tuple[str, Story]] = []
    topics: list[str] = []
    edits: set[str] = set()  # messages to re-render
    for story in group_stories(articles, vectors):
        members = [a.doc.id for a in story.articles]
        touched = [m for m in members if m in matched]
        if not touched:
            continue
        shown = [known[m].story for m in members if m in known and posted.get(known[m].story, ("",))[0]]
        if shown:  # shown before: the new articles join it; its message is edited when it gained outlets
            key = shown[0]
            message_id, _, shown_outlets = posted[key]
            fresh = [m for m in touched if m not in known or known[m].story != key]
            state.record_follow_articles(channel, [(m, key, message_id, matched[m][0]) for m in fresh])
            if fresh or story.coverage != shown_outlets:
                edits.add(message_id)
            continue
        need = min([matched[m][0] for m in touched] + [known[m].min_outlets for m in members if m in known])
        key = next((known[m].story for m in members if m in known), members[0])
        rows = [(m, key, "", matched[m][0] if m in matched else known[m].min_outlets) for m in members]
        state.record_follow_articles(channel, rows)
        if story.coverage >= need and state.claim_follow_story(channel, key, story.coverage):
            new_stories.append((key, story))
            topics += [matched[m][1] for m in touched]
    posts = [_edit(state, reader, embedder, channel, m, term_weight) for m in sorted(edits)]
    if new_stories:
        chosen = [story_lead(s, embedder, term_weight=term_weight) for _, s in new_stories]
        stories = tuple(FollowStory(k, d) for (k, _), d in zip(new_stories, number_stories(chosen), strict=True))
        posts.append(FollowPost(channel, "", tuple(dict.fromkeys(topics)), stories))
    return [p for p in posts if p.stories]


def _edit(
    state: State, reader: StoreReader, embedder: Embedder, channel: str, message_id: str,
    term_weight: TermWeights | None,
) -> FollowPost:
    """The message `message_id` re-rendered: each of its stories with every article shown under it now."""
    rows = state.follow_stories(channel, message_id)
    keys, stories = [], []
    for key in rows:
        articles, vectors = articles_by_id(reader, state.story_articles(channel, key))
        story = one_story(articles, vectors)
        if story is not None:
            keys.append(key)
            stories.append(story_lead(story, embedder, term_weight=term_weight))
    shown = []
    for key, d in zip(keys, number_stories(stories), strict=True):
        state.set_follow_shown(channel, key, d.story.coverage)
        shown.append(FollowStory(key, d, max(0, d.story.coverage - rows[key][1])))
    topics = tuple(f.topic or f.source for f in state.follows(channel))
    return FollowPost(channel, message_id, topics, tuple(shown))


def record_follow_message(state: State, post: FollowPost, message_id: str) -> None:
    """The message that shows a new post's stories (so that later articles edit it)."""
    state.set_follow_message(post.channel_id, post.keys, message_id)


def release_follow_post(state: State, post: FollowPost) -> None:
    """Posting failed: the stories may be posted by the next update that matches them."""
    for key in post.keys:
        state.release_follow_story(post.channel_id, key)
