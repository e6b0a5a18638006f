"""The engine every front end uses: build and update the index, search it, answer questions.

`Engine` methods are synchronous and thread-safe; they do CPU work (embedding, FAISS) and disk I/O,
so async callers (the Discord bot) run them in a worker thread. The engine notices when another
process rebuilds or updates the index and switches to the new version on its own. Conversation history
and answer feedback go through it too, so no front end touches the state database or a store directly.

Longer than the ~450 lines other modules keep to (≈ 750) because it is the one facade: every operation a
front end has (CLI, Discord cogs) is one short method here that delegates to the module doing the work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from newsbot.bot.answer.answers import Answer, Turn
from newsbot.bot.answer.conversation import heuristic_rewrite, trim_history
from newsbot.bot.answer.extractive.options import ExtractiveOptions
from newsbot.bot.answer.extractive.pipeline import extractive_answer
from newsbot.bot.answer.plan import plan_answer
from newsbot.bot.config import Settings, llm_enabled, search_options
from newsbot.bot.digest import DEFAULT_LIMIT, MAX_LIMIT, Digest, build_digest
from newsbot.bot.follows import (
    MAX_MIN_OUTLETS,
    FollowPost,
    follow_id,
    indexed_ids,
    plan_follow_posts,
    record_follow_message,
    release_follow_post,
)
from newsbot.bot.questions import (
    QuestionRejected,
    UnknownOutlet,
    check_question,
    question_about,
    unknown_outlet_message,
)
from newsbot.bot.schedules import digest_period, iso, latest_due, parse_time, parse_zone, schedule_id
from newsbot.bot.state import DigestSchedule, Feed, FeedbackCounts, Follow, ServerSettings, State
from newsbot.index.build import (
    BuildOptions,
    BuildReport,
    Progress,
    build_index,
    nothing_to_index,
    update_index,
)
from newsbot.index.documents import Document
from newsbot.index.embedding.base import BUNDLED_NAMES, Embedder, ModelNotFound, common_words, model_key
from newsbot.index.embedding.factory import get_embedder
from newsbot.index.hits import Filters, Hit
from newsbot.index.ingest.fetch import FetchPolicy
from newsbot.index.ingest.loaders import LoadResult, load_paths
from newsbot.index.retrieval.grounding import Grounding, check_grounding
from newsbot.index.retrieval.options import SearchOptions
from newsbot.index.retrieval.search import plan_query, search
from newsbot.index.retrieval.vocabulary import term_weights
from newsbot.index.store.articles import ArticleStore, claim_file_ids
from newsbot.index.store.backends import open_backend
from newsbot.index.store.base import REBUILD_HINT as REBUILD_HINT  # re-exported for front ends' messages
from newsbot.index.store.base import IndexMissing, IndexProblem, StoreBackend, StoreReader, now_iso
from newsbot.index.store.catalog import source_key
from newsbot.index.store.embedded.layout import Layout
from newsbot.index.store.sql import DatabaseUnreadable
from newsbot.index.stories.topic import topic_matches
from newsbot.index.text import keyword_terms

if TYPE_CHECKING:  # bot.ingest and bot.feed_updates pull in trafilatura and feedparser (≈ 0.4 s): imported when fetching
    from newsbot.bot.feed_updates import FeedCheck, FeedImport, UpdateReport
    from newsbot.index.ingest.opml import OpmlFeed

log = logging.getLogger("newsbot.engine")

# What a front end reports in one line, the message saying what to do (the index, the embedding model, a
# database that is not one): named here so that front ends need not reach into the layers below.
REPORTED_ERRORS = (IndexProblem, ModelNotFound, DatabaseUnreadable)


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    sources: list[tuple[str, int]]
    model: str
    generation: str
    updated_at: str
    newest_article: str
    index_dir: str


@dataclass(frozen=True)
class Overview:
    """What `/help` shows about the index: its size and reach, and questions it answers."""

    documents: int
    outlets: list[tuple[str, int]]  # (outlet, articles), most articles first
    newest_article: str  # YYYY-MM-DD, '' when no article is dated
    examples: list[str]  # questions about the newest articles that the index answers (each checked)


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layout = Layout(settings.index_path())  # local files: vector cache, state, model exports
        self._backend: StoreBackend | None = None
        self._embedder: Embedder | None = None
        self._query_embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self._reader: StoreReader | None = None
        self._reader_lock = threading.Lock()
        self._checked_at = 0.0
        self._state: State | None = None
        self._articles: ArticleStore | None = None
        # per index version (reader name, version): outlets (autocomplete asks on every keystroke) and the
        # checked example questions of `overview` (a few answers' work)
        self._cache_lock = threading.Lock()
        self._outlets: tuple[tuple[str, int], list[tuple[str, int]]] | None = None
        self._examples: tuple[tuple[str, int, int], list[str]] | None = None

    # ------------------------------------------------------------------ components

    @property
    def backend(self) -> StoreBackend:
        """The store `settings.store` names: embedded FAISS + SQLite (default) or Milvus."""
        if self._backend is None:
            with self._embedder_lock:
                if self._backend is None:
                    self._backend = open_backend(self.settings)
        return self._backend

    @property
    def state(self) -> State:
        """Feeds, feedback, conversation memory and leases (`database_url`, default `<index_dir>/state.sqlite`)."""
        if self._state is None:
            with self._embedder_lock:
                if self._state is None:
                    self._state = State.for_settings(self.settings)
        return self._state

    @property
    def articles(self) -> ArticleStore:
        """Copies of the added and fetched articles, in the state database (`index.store.articles`)."""
        if self._articles is None:
            state = self.state
            with self._embedder_lock:
                if self._articles is None:
                    self._articles = ArticleStore(state.db)
        return self._articles

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    s = self.settings
                    self._embedder = get_embedder(s.embedding_model, s.embedding_backend, s.onnx_cache_dir or None)
        return self._embedder

    @property
    def query_embedder(self) -> Embedder:
        """What embeds questions: `query_embedding_backend` (the same model), else the passages' embedder."""
        if self._query_embedder is not None:
            return self._query_embedder
        s = self.settings
        backend = s.query_embedding_backend.strip().lower() or "auto"
        auto = backend == "auto"
        if auto:
            bundled = s.embedding_model.strip().lower() in BUNDLED_NAMES
            backend = "onnx-int8" if s.embedding_backend == "onnx" and bundled else s.embedding_backend
        if backend == s.embedding_backend:
            return self.embedder
        try:
            return get_embedder(s.embedding_model, backend, s.onnx_cache_dir or None)  # loaded once, then shared
        except ModelNotFound as exc:
            if not auto:
                raise
            log.warning("questions use %s: %s", s.embedding_backend, exc)
            self._query_embedder = self.embedder
            return self.embedder

    def reader(self) -> StoreReader:
        """The live generation, reopened when it changed or an update committed (checked ≤ 2×/s)."""
        with self._reader_lock:
            reader = self._reader
            now = time.monotonic()
            if reader is not None and now - self._checked_at < 0.5:
                return reader
            self._checked_at = now
            live = self.backend.current_generation()
            if reader is not None and live == reader.name:
                # Milvus rows are live: only the manifest needs re-reading; the embedded store reopens
                if reader.stored_version() == reader.version or reader.refresh():
                    return reader
            for attempt in range(3):
                try:
                    self._reader = self.backend.reader(self.model_key(), previous=reader)
                    break
                except IndexMissing:
                    if attempt == 2 or self.backend.current_generation() is None:
                        raise
                    time.sleep(0.05)  # an update replaced the file between our two reads; try again
            if reader is not None and reader is not self._reader:
                log.info("switched to index %s v%s", self._reader.name, self._reader.manifest.version)
            return self._reader

    def warm_up(self) -> None:
        """Load the embedding model and open the index now, so the first question is fast."""
        self.query_embedder.encode(["warm up"])
        if self.has_index():
            self.reader().filter_columns()  # outlets and dates of every passage, for filtered searches

    def llm_configured(self) -> bool:
        return llm_enabled(self.settings)

    def has_index(self) -> bool:
        return self.backend.current_generation() is not None

    def model_key(self) -> str:
        """What the index records as its model: torch and onnx share the model name, onnx-int8 does not."""
        return model_key(self.settings.embedding_model, self.settings.embedding_backend)

    def options(self) -> BuildOptions:
        s = self.settings
        return BuildOptions(self.model_key(), s.chunk_tokens, s.chunk_overlap, s.embedding_batch_size)

    def search_options(self, limit: int | None = None) -> SearchOptions:
        """How this engine searches (`bot.config.search_options`)."""
        return search_options(self.settings, limit)

    # ------------------------------------------------------------------ building

    def build(
        self, paths: Sequence[str | Path] | None = None, progress: Progress | None = None,
        on_wait: Callable[[], None] | None = None, keep_fetched: bool = True, keep_added: bool = True,
        follow_links: bool = False,
    ) -> BuildReport:
        """Full rebuild from `paths` (default: the corpus setting) into a new generation.

        keep_fetched: carry over the articles added from URLs and feeds (no file holds them);
        keep_added: carry over the articles added from files with `add`, re-read from their files;
        follow_links: read symbolic links that lead out of a folder given (by default they are skipped).
        `report.kept` / `report.dropped` say what else was kept and dropped (see `index.rebuild`). When
        the previous index could not be read and fetched articles had no stored copy, their feed entries
        are forgotten so that the next feed update fetches them again (`report.notes` says so)."""
        loaded = self.load(paths or self.settings.corpus_paths(), follow_links=follow_links)
        if not loaded.documents and self._nothing_stored():  # fail before the store creates any folder or file
            raise nothing_to_index(loaded.errors)
        kwargs = {"progress": progress} if progress else {}
        report = build_index(
            self.backend, loaded.documents, self.embedder, self.options(),
            load_errors=loaded.errors, on_wait=on_wait, keep_fetched=keep_fetched, keep_added=keep_added,
            articles=self.articles, **kwargs,
        )
        report.notes[:0] = [str(n) for n in loaded.notes]
        if report.live_unreadable and keep_fetched:
            live = set(self.backend.article_origins() or ())
            lost = self.state.forget_entries_not_in(live)
            if lost:
                report.notes.append(
                    f"{sum(lost.values())} feed entries are not in the rebuilt index (the damaged index held "
                    f"them and the article store had no copy): the next `newsbot update` fetches them again "
                    f"({', '.join(f'{url}: {n}' for url, n in lost.items())})")
        self._checked_at = 0.0
        return report

    def load(self, paths: Sequence[str | Path], *, follow_links: bool = False) -> LoadResult:
        """Articles from files and folders, within the size settings (max_article_bytes; HTML files up to
        fetch_max_bytes, like pages); links leaving a folder are skipped unless `follow_links`."""
        s = self.settings
        return load_paths(
            paths, max_article_bytes=s.max_article_bytes, max_page_bytes=s.fetch_max_bytes, follow_links=follow_links
        )

    def _nothing_stored(self) -> bool:
        """True when neither an index nor a state database can exist yet (no index_dir, no database_url),
        so a build without documents has nothing to carry over either: it fails, creating nothing."""
        return not self.settings.database_url and not self.settings.index_path().exists()

    def ensure_index(self, progress: Progress | None = None) -> BuildReport | None:
        """Build from the corpus if there is no index yet (first use)."""
        if self.has_index():
            return None
        return self.build(progress=progress)

    def add_documents(
        self, docs: Sequence[Document], *, remove_ids: Sequence[str] = (), progress: Progress | None = None,
        load_errors: Sequence = (), on_wait: Callable[[], None] | None = None,
    ) -> BuildReport:
        """Add or replace articles (and remove others) in the live index, atomically.

        Without an index yet, the articles become its first generation."""
        if not docs and not self.has_index():
            raise IndexMissing(f"no index in {self.backend.describe()}. Build one first with `newsbot build`.")
        kwargs = {"progress": progress} if progress else {}
        report = update_index(
            self.backend, docs, self.embedder, self.options(), remove_ids=remove_ids,
            load_errors=load_errors, on_wait=on_wait, articles=self.articles, **kwargs,
        )
        self._checked_at = 0.0
        return report

    # ------------------------------------------------------------------ keeping the index fresh

    def fetch_policy(self) -> FetchPolicy:
        """Limits for fetching pages and feeds, from the fetch_* and allow_private_urls settings."""
        from newsbot.bot.ingest import fetch_policy

        return fetch_policy(self.settings)

    def add(
        self, sources: Sequence[str | Path], progress: Progress | None = None,
        on_wait: Callable[[], None] | None = None, follow_links: bool = False,
    ) -> BuildReport:
        """Add or update articles from files, folders and http(s) URLs of article pages, atomically.

        A source that cannot be read or fetched (or is bigger than max_article_bytes) is reported in
        `errors`; the others are indexed. The model is loaded only when there is something to index.
        """
        from newsbot.bot.ingest import fetch_pages, split_sources

        paths, urls = split_sources(sources)
        loaded = self.load(paths, follow_links=follow_links)
        notes = [str(n) for n in loaded.notes]
        files, refused = (  # no documents, no state database opened: a failed add creates no folder
            claim_file_ids(loaded.documents, self.backend, self.articles, notes) if loaded.documents else ([], []))
        pages, failures = fetch_pages(urls, self.fetch_policy(), progress)
        docs, errors = [*files, *pages], [*loaded.errors, *refused, *failures]
        if not docs:
            return BuildReport(errors=errors, notes=notes)
        report = self.add_documents(docs, progress=progress, load_errors=errors, on_wait=on_wait)
        report.notes[:0] = notes
        return report

    def remove(
        self, refs: Sequence[str], progress: Progress | None = None, on_wait: Callable[[], None] | None = None
    ) -> BuildReport:
        """Remove articles by id or URL, atomically; unknown ones are reported in `errors`."""
        return self.add_documents([], remove_ids=refs, progress=progress, on_wait=on_wait)

    def add_feed(self, url: str, *, added_by: str = "") -> FeedCheck:
        """Register an RSS/Atom feed after polling it once; raises FeedProblem when it is not usable.

        `url` may be a site's web page: the first feed it links (`<link rel="alternate" …>`) is
        registered instead, and the result says so (`FeedCheck.page`). Its entries are indexed by the
        next `update_feeds`."""
        from newsbot.bot.feed_updates import check_feed, register_feed

        found = check_feed(url.strip(), self.fetch_policy())
        return register_feed(self.state, found, added_by=added_by)

    def import_feeds(
        self, feeds: Sequence[OpmlFeed], *, added_by: str = "", progress: Progress | None = None
    ) -> FeedImport:
        """Register every feed of a list (an OPML file's), each checked as `add_feed` checks one; one that
        fails is reported in the result and the others go on (see `bot.feed_updates.import_feeds`)."""
        from newsbot.bot.feed_updates import import_feeds

        return import_feeds(self.state, self.fetch_policy(), feeds, added_by=added_by, progress=progress)

    def remove_feed(self, url: str) -> bool:
        """Stop polling a feed (its articles stay in the index); False if it was not registered."""
        if self._nothing_stored():  # no state database yet: nothing registered, and none is created
            return False
        return self.state.remove_feed(url.strip())

    def feeds(self) -> list[Feed]:
        """The registered feeds ([] without creating a state database where none exists yet)."""
        if self._nothing_stored():
            return []
        return self.state.feeds()

    # ------------------------------------------------------------------ conversations and feedback

    def history(self, conversation_id: str, limit: int = 6) -> list[Turn]:
        """The newest `limit` exchanges of a conversation (a Discord thread, a DM), oldest first."""
        return self.state.turns(conversation_id, limit)

    def record_answer(
        self, answer: Answer, *, answer_id: str, conversation_id: str, guild_id: str = "", channel_id: str = "",
        user_id: str = "",
    ) -> None:
        """Keep an answer given (so that feedback on it can be counted) and the exchange (so that a
        follow-up in the same conversation is read with it)."""
        self.state.record_answer(
            answer_id, question=answer.question, text=answer.text,
            citations=[c.doc_id for c in answer.citations], found=answer.found,
            guild_id=guild_id, channel_id=channel_id, user_id=user_id,
        )
        self.state.add_turn(conversation_id, answer.question, answer.text)

    def record_feedback(self, answer_id: str, user_id: str, vote: int) -> None:
        """A user's vote on an answer: +1 or -1 (a second vote replaces the first)."""
        self.state.record_feedback(answer_id, user_id, vote)

    def feedback(self) -> FeedbackCounts:
        """Votes on every answer so far."""
        return self.state.feedback()

    def update_feeds(
        self, progress: Progress | None = None, on_wait: Callable[[], None] | None = None, wait: bool = True,
    ) -> UpdateReport:
        """Poll every feed once and index new and changed entries (see `bot.feed_updates`); thread-safe, and
        serialized with other feed updates of this index, in this process or another."""
        from newsbot.bot.feed_updates import update_feeds

        def index_update(docs: Sequence[Document], prog: Progress | None) -> BuildReport:
            return self.add_documents(docs, progress=prog, on_wait=on_wait)

        return update_feeds(
            self.state, self.fetch_policy(), index_update, root=self.layout.root, progress=progress, wait=wait
        )

    # ------------------------------------------------------------------ reading

    def search(
        self, query: str, *, sources: Sequence[str] = (), since: datetime | None = None,
        until: datetime | None = None, limit: int | None = None,
    ) -> list[Hit]:
        query = check_question(query, self.settings.max_question_chars)
        filters = Filters(self.resolve_outlets(sources), since, until)
        return search(self.reader(), self.query_embedder, query, filters, self.search_options(limit))

    def ask(
        self, question: str, *, history: Sequence[Turn] = (), use_llm: bool | None = None,
        on_text: Callable[[str], None] | None = None, filters: Filters = Filters(),
    ) -> Answer:
        """Answer `question` (a follow-up to `history`, if any) with citations, or say it was not found.

        An outlet in `filters` that the index lacks raises UnknownOutlet (a QuestionRejected) instead."""
        question = check_question(question, self.settings.max_question_chars)
        if filters.sources:
            filters = replace(filters, sources=self.resolve_outlets(filters.sources))
        s = self.settings
        llm_on = llm_enabled(s) if use_llm is None else (use_llm and llm_enabled(s))
        standalone = question
        if history:
            turns = trim_history(history, s.history_tokens)
            common = common_words(s.embedding_model)
            standalone = _llm_rewrite(question, turns, s) if llm_on else heuristic_rewrite(question, turns, common=common)
        reader = self.reader()
        qvec = self.query_embedder.encode([standalone])[0]
        opts = self.search_options()
        query_plan = plan_query(reader, standalone, opts)
        hits = search(reader, self.query_embedder, standalone, filters, opts, query_vector=qvec, plan=query_plan)
        grounding = check_grounding(reader, standalone) if s.grounding_check else Grounding()
        notes: tuple[str, ...] = ()
        if llm_on and grounding.ok:  # a question about what the index lacks is "not found", model or not
            from newsbot.bot.answer.llm.answer import llm_answer

            answer, reason = llm_answer(standalone, hits, s, on_text=on_text)
            if answer is not None:
                return _with_question(answer, question, standalone)
            notes = (f"model answer unavailable ({reason}); showing quoted sentences instead",)
        answer = extractive_answer(
            standalone, hits, self.query_embedder,
            ExtractiveOptions(max_sentences=s.answer_sentences, max_words=s.answer_words,
                              min_relevance=s.min_relevance),
            question_vector=qvec, grounding=grounding, plan=plan_answer(standalone, query_plan),
            term_weight=lambda terms: term_weights(reader, terms), common_words=common_words(s.embedding_model),
        )
        if notes:
            answer = Answer(**{**answer.__dict__, "notes": notes})
        return _with_question(answer, question, standalone)

    def digest(
        self, *, topic: str = "", sources: Sequence[str] = (), since: datetime | None = None,
        until: datetime | None = None, limit: int = DEFAULT_LIMIT,
    ) -> Digest:
        """The period's top stories (most outlets first, then the most recent), each with its lead
        sentence cited to every article that states it (see `bot.digest`). `topic` keeps the articles
        that match it in hybrid search (`index.stories.topic`); `sources` keeps those outlets; the
        period is by publication date, inclusive (undated articles are left out once a bound is given).
        `limit` is clamped to 1..MAX_LIMIT. Raises QuestionRejected for an unusable topic."""
        reader = self.reader()
        filters = Filters(tuple(s.strip() for s in sources if s and s.strip()), since, until)
        topic = topic.strip()
        ids = None
        if topic:
            topic = check_question(topic, self.settings.max_question_chars)
            ids = topic_matches(reader, self.query_embedder, topic, filters, self.search_options())
        return build_digest(
            reader, self.query_embedder, filters, topic=topic, doc_ids=ids, limit=min(max(1, limit), MAX_LIMIT),
            term_weight=lambda terms: term_weights(reader, terms),
        )

    def document(self, doc_id: str) -> tuple[Document, int] | None:
        return self.reader().document(doc_id)

    def latest(self, *, topic: str = "", source: str = "", limit: int = 10) -> list[Document]:
        """The newest articles (about `topic`, from `source`); UnknownOutlet for an outlet the index lacks."""
        filters = Filters(self.resolve_outlets([source]))
        return self.reader().latest(limit, filters, keyword_terms(topic) if topic else ())

    def stats(self) -> IndexStats:
        reader = self.reader()
        m = reader.manifest
        newest = reader.latest(1)
        return IndexStats(
            documents=m.documents, chunks=m.chunks, sources=reader.source_counts(), model=m.model,
            generation=m.generation, updated_at=m.updated_at,
            newest_article=newest[0].published_at.date().isoformat() if newest and newest[0].published_at else "",
            index_dir=self.backend.describe(),
        )


    # ------------------------------------------------------------------ outlets, titles, help

    def _outlet_counts(self) -> list[tuple[str, int]]:
        """(outlet, articles), most articles first; read once per index version."""
        reader = self.reader()
        key = (reader.name, reader.version)
        cached = self._outlets
        if cached is not None and cached[0] == key:
            return cached[1]
        counts = [(name, n) for name, n in reader.source_counts() if name]
        self._outlets = (key, counts)
        return counts

    def outlets(self) -> list[str]:
        """The index's outlets as it spells them, most articles first."""
        return [name for name, _ in self._outlet_counts()]

    def resolve_outlets(self, names: Sequence[str]) -> tuple[str, ...]:
        """`names` (blank ones dropped) as the index spells them, ignoring case and spacing; UnknownOutlet
        (a QuestionRejected whose message lists known outlets) for a name the index has no article from."""
        wanted = [n for n in names if n and n.strip()]
        if not wanted:
            return ()
        known = self.outlets()
        by_key = {source_key(k): k for k in known}
        resolved = []
        for name in wanted:
            match = by_key.get(source_key(name))
            if match is None:
                raise UnknownOutlet(unknown_outlet_message(name, known))
            resolved.append(match)
        return tuple(dict.fromkeys(resolved))

    def match_outlets(self, text: str, limit: int = 25) -> list[str]:
        """Outlets for autocomplete: those starting with `text` (ignoring case), then those containing it,
        each group most articles first; every outlet (up to `limit`) when `text` is blank."""
        key = source_key(text)
        known = self.outlets()
        starts = [k for k in known if source_key(k).startswith(key)]
        inside = [k for k in known if key in source_key(k) and k not in starts]
        return [*starts, *inside][:limit]

    def find_articles(self, text: str, limit: int = 25) -> list[Document]:
        """Articles for autocomplete (bodies empty), newest first: titles containing `text` or ids starting
        with it, ignoring case; the newest articles when `text` is blank."""
        return self.reader().titled(text, limit)

    def overview(self, examples: int = 3) -> Overview:
        """The index's size and reach, and up to `examples` questions it answers (see `example_questions`),
        computed once per index version."""
        reader = self.reader()
        key = (reader.name, reader.version, examples)
        with self._cache_lock:  # one computation at a time: a second caller waits and reuses it
            cached = self._examples
            if cached is None or cached[0] != key:
                cached = (key, self.example_questions(examples))
                self._examples = cached
        newest = reader.latest(1)
        return Overview(
            documents=reader.manifest.documents, outlets=self._outlet_counts(),
            newest_article=newest[0].published_at.date().isoformat() if newest and newest[0].published_at else "",
            examples=cached[1][:examples],
        )

    def example_questions(self, count: int = 3, tries: int = 8) -> list[str]:
        """Up to `count` questions about the newest articles that this index answers: each is built from a
        headline (`questions.question_about`) and kept only if asking it (quoting, no model) finds an answer
        that cites that article. At most `tries` of the newest articles are tried, which bounds the work."""
        found: list[str] = []
        for doc in self.reader().latest(tries):
            question = question_about(doc.title)
            if question is None or question in found:
                continue
            try:
                answer = self.ask(question, use_llm=False)
            except QuestionRejected:
                continue
            if answer.found and doc.id in {c.doc_id for c in answer.citations}:
                found.append(question)
                if len(found) == count:
                    break
        return found

    # ------------------------------------------------------------------ per-server settings (Discord)

    def server_settings(self, guild_id: int | str) -> ServerSettings:
        """What a Discord server chose with /config (nothing chosen: the global settings apply)."""
        return self.state.server_settings(str(guild_id))

    def configure_server(self, guild_id: int | str, **changes: object) -> ServerSettings:
        """Change a server's choices (see `State.update_server_settings`) and return them all."""
        return self.state.update_server_settings(str(guild_id), **changes)  # type: ignore[arg-type]


    # ------------------------------------------------------------------ follows and scheduled digests (Discord)

    def follow(
        self, guild_id: int | str, channel_id: int | str, *, topic: str = "", source: str = "", min_outlets: int = 1,
        created_by: str = "",
    ) -> tuple[Follow, bool]:
        """Make a channel follow `topic` (and/or the outlet `source`); (the follow, whether it is new).

        QuestionRejected when both are empty or the topic is unusable (too long, no words); an outlet the
        index has no article from yet is kept as written (a feed just added). min_outlets: 1..MAX_MIN_OUTLETS."""
        topic = " ".join(topic.split())
        source = " ".join(source.split())
        if not topic and not source:
            raise QuestionRejected("Give a topic to follow, an outlet (source), or both.")
        if topic:
            topic = check_question(topic, min(200, self.settings.max_question_chars))
        if source and self.has_index():
            try:
                source = self.resolve_outlets([source])[0]
            except UnknownOutlet:
                pass  # no article from it yet: matched by name when its articles arrive
        channel = str(channel_id)
        follow = Follow(follow_id(channel, topic, source), str(guild_id), channel, topic, source,
                        min(max(1, int(min_outlets)), MAX_MIN_OUTLETS), created_by, now_iso())
        return follow, self.state.add_follow(follow)

    def unfollow(self, channel_id: int | str, follow_ref: str) -> Follow | None:
        """Stop a channel's follow, named by its id or its topic (or outlet, for an outlet-only follow),
        ignoring case; the follow removed, or None when the channel has none of that name."""
        ref = " ".join(follow_ref.split()).lower()
        for f in self.follows(channel_id):
            if ref in (f.id, f.topic.lower(), f.describe().lower()) or (not f.topic and ref == f.source.lower()):
                return f if self.state.remove_follow(f.id) else None
        return None

    def follows(self, channel_id: int | str) -> list[Follow]:
        """A channel's follows, oldest first."""
        if self._nothing_stored():
            return []
        return self.state.follows(str(channel_id))

    def follow_posts(self, doc_ids: Sequence[str]) -> list[FollowPost]:
        """The follow cards to post or edit for articles just indexed (`indexed_ids(report)` of an update;
        see `bot.follows`). New stories are claimed in the state database: post them, then call
        `follow_posted` with the message id (or `follow_post_failed`)."""
        if not doc_ids or self._nothing_stored() or not self.state.follows() or not self.has_index():
            return []
        reader = self.reader()
        return plan_follow_posts(self.state, reader, self.query_embedder, doc_ids,
                                 term_weight=lambda terms: term_weights(reader, terms))

    def index_version(self) -> tuple[str, int] | None:
        """(generation, version) of the live index, None without one: changes whenever any process builds,
        adds, removes or polls feeds into it."""
        if not self.has_index():
            return None
        reader = self.reader()
        return reader.name, reader.version

    def article_ids(self) -> frozenset[str]:
        """The ids of every article in the live index (empty without one)."""
        return frozenset(self.reader().document_ids()) if self.has_index() else frozenset()

    def follow_posts_for(self, report: BuildReport | None) -> list[FollowPost]:
        """`follow_posts` for what an update (`add`, `update_feeds().index`) indexed."""
        return self.follow_posts(indexed_ids(report))

    def follow_posted(self, post: FollowPost, message_id: int | str) -> None:
        record_follow_message(self.state, post, str(message_id))

    def follow_post_failed(self, post: FollowPost) -> None:
        if not post.message_id:
            release_follow_post(self.state, post)

    def schedule_digest(
        self, guild_id: int | str, channel_id: int | str, *, at_time: str, timezone: str = "UTC", topic: str = "",
        created_by: str = "", now: datetime | None = None,
    ) -> tuple[DigestSchedule, bool]:
        """A daily digest in a channel at `at_time` (HH:MM) in `timezone` (IANA); (schedule, whether new).
        ValueError (message: what is wrong) for a bad time or timezone, QuestionRejected for a bad topic.
        It first posts at the next due time, not now."""
        at = parse_time(at_time)
        zone = parse_zone(timezone)
        topic = " ".join(topic.split())
        if topic:
            topic = check_question(topic, min(200, self.settings.max_question_chars))
        channel = str(channel_id)
        schedule = DigestSchedule(schedule_id(channel, at, topic), str(guild_id), channel, at, zone, topic,
                                  iso(latest_due(at, zone, now or utcnow())), created_by, now_iso())
        return schedule, self.state.add_schedule(schedule)

    def digest_schedules(self, channel_id: int | str | None = None) -> list[DigestSchedule]:
        """A channel's scheduled digests (every channel's when None)."""
        if self._nothing_stored():
            return []
        return self.state.schedules(None if channel_id is None else str(channel_id))

    def remove_digest_schedule(self, channel_id: int | str, ref: str) -> DigestSchedule | None:
        """Remove a channel's schedule named by its id or its time (HH:MM; the first at that time)."""
        ref = ref.strip()
        try:
            at = parse_time(ref)
        except ValueError:
            at = ""
        for sch in self.digest_schedules(channel_id):
            if ref == sch.id or at == sch.at_time:
                return sch if self.state.remove_schedule(sch.id) else None
        return None

    def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease `name` (a job only one replica does at a time) for `seconds`; True if
        `holder` holds it now (see `State.try_lease`)."""
        return self.state.try_lease(name, holder, seconds)

    def due_digests(self, now: datetime | None = None) -> list[tuple[DigestSchedule, Digest | None, str]]:
        """The scheduled digests due now, each claimed for this caller (no other replica or later call gets
        it): (schedule, digest, error). Only each schedule's latest due time counts (see `bot.schedules`);
        error is a one-line reason when the digest could not be built (digest None)."""
        if self._nothing_stored():
            return []
        now = now or utcnow()
        out: list[tuple[DigestSchedule, Digest | None, str]] = []
        for sch in self.state.schedules():
            due = latest_due(sch.at_time, sch.timezone, now)
            if sch.last_due and sch.last_due >= iso(due):
                continue
            if not self.state.claim_schedule_run(sch.id, sch.last_due, iso(due)):
                continue  # another replica took it
            try:
                found = self.digest(topic=sch.topic, since=digest_period(sch.last_due, due), until=now)
            except (QuestionRejected, *REPORTED_ERRORS) as exc:
                out.append((sch, None, str(exc)))
                continue
            out.append((sch, found, ""))
        return out


def _llm_rewrite(question: str, history: Sequence[Turn], settings: Settings) -> str:
    try:
        from newsbot.bot.answer.llm.rewrite import rewrite_question

        return rewrite_question(question, history, settings)
    except Exception:  # the model is optional: never let it break a follow-up
        log.warning("model rewrite failed; using the heuristic", exc_info=True)
        return heuristic_rewrite(question, history)


def _with_question(answer: Answer, question: str, standalone: str) -> Answer:
    fields = dict(answer.__dict__)
    fields["question"] = question
    fields["standalone_question"] = standalone if standalone != question else ""
    return Answer(**fields)


def utcnow() -> datetime:
    return datetime.now(UTC)
