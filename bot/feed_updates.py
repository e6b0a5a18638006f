"""RSS/Atom feeds: registering one (`check_feed`, which also finds the feed a site's page links) or
many (`import_feeds`, from OPML), and updating the index from all of them (`update_feeds`).

Every registered feed is polled once with its ETag / Last-Modified, so an unchanged feed costs one
request answered 304. Entries not seen before (or whose title/summary/content changed since) get their
article page fetched, falling back to the entry's own content when the page cannot be fetched or has
no usable text. Commit order: the index first, then the feed state (validators, seen entries). A
crash between the two makes the next poll fetch those entries again and find them unchanged; nothing is
lost or indexed twice. A feed with a failed entry keeps its old validators, so the next poll retries
that entry.

Longer than the ~450 lines other modules keep to (≈ 555): registering, importing and polling share the
fetch-and-index path and its commit order above, which is easier to check in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from newsbot.bot.ingest import PAGE_WORKERS
from newsbot.bot.state import LeaseInfo, State, holder_is_dead, process_holder
from newsbot.index.build import BuildReport, Progress, no_progress
from newsbot.index.documents import Document
from newsbot.index.faults import checkpoint
from newsbot.index.ingest.discovery import FoundFeed, find_feed
from newsbot.index.ingest.feeds import Feed, FeedEntry, FeedError, entry_document, poll_feed
from newsbot.index.ingest.fetch import FetchError, FetchPolicy, fetch
from newsbot.index.ingest.loaders import article_too_big
from newsbot.index.ingest.opml import OpmlFeed
from newsbot.index.store.locks import file_lock

log = logging.getLogger("newsbot.ingest")

IndexUpdate = Callable[[Sequence[Document], Progress | None], BuildReport]
"""index_update(documents, progress) -> report: how `update_feeds` writes to the index."""


class FeedProblem(ValueError):
    """A feed URL that cannot be registered; the message says why."""


@dataclass(frozen=True)
class FeedCheck:
    """What polling a feed once found: its title and how many entries it has now."""

    url: str
    title: str
    entries: int
    added: bool  # False: it was registered already
    page: str = ""  # the web page the feed was found on ('' when the URL given was the feed)
    others: tuple[str, ...] = ()  # the page's other feed links, not followed

    def __str__(self) -> str:
        return self.discovery() + self._outcome()

    def discovery(self) -> str:
        """'' when the URL given was a feed; else which feed the page links and which one was taken."""
        if not self.page:
            return ""
        if not self.others:
            return f"<{self.page}> is a web page; it links the feed <{self.url}>. "
        rest = ", ".join(f"<{u}>" for u in self.others[:5]) + (" …" if len(self.others) > 5 else "")
        return (f"<{self.page}> links {len(self.others) + 1} feeds; took the first, <{self.url}> "
                f"(the others: {rest}; add one by its own URL to follow it instead). ")

    def _outcome(self) -> str:
        name = f"{self.title} <{self.url}>" if self.title else f"<{self.url}>"
        if not self.added:
            return f"Already following {name}."
        return (f"Following {name} ({self.entries} entries now); new articles are indexed at the next "
                "`newsbot update` (or the running bot's next automatic poll).")


@dataclass
class FeedStatus:
    """The outcome of polling one feed. status: "ok", "not modified" or "failed" (see `error`)."""

    url: str
    title: str = ""
    status: str = "ok"
    error: str = ""
    new: int = 0
    updated: int = 0
    skipped: int = 0  # seen before, unchanged, or a duplicate of a stored article
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # one line per failed entry

    def outcome(self) -> str:
        """`2 new, 1 updated, 3 skipped`, `not modified` or `failed: reason`."""
        if self.status == "failed":
            return f"failed: {self.error}"
        if self.status == "not modified":
            return "not modified"
        counts = f"{self.new} new, {self.updated} updated, {self.skipped} skipped"
        return counts + (f", {self.failed} failed" if self.failed else "")

    def line(self) -> str:
        """One line for people: `url (title): 2 new, 1 updated, 3 skipped` or the failure."""
        name = f"{self.url} ({self.title})" if self.title else self.url
        return f"{name}: {self.outcome()}"


@dataclass
class UpdateReport:
    """The outcome of one `update_feeds`: per-feed status and entry counts over all feeds."""

    feeds: list[FeedStatus] = field(default_factory=list)
    index: BuildReport | None = None  # None when there was nothing to write
    seconds: float = 0.0
    busy: bool = False  # another process was polling the feeds, so this call did nothing
    holder: LeaseInfo | None = None  # who was polling them (when busy)

    @property
    def new(self) -> int:
        return sum(f.new for f in self.feeds)

    @property
    def updated(self) -> int:
        return sum(f.updated for f in self.feeds)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.feeds)

    @property
    def failed(self) -> int:
        """Failed entries plus feeds that could not be polled at all."""
        return sum(f.failed for f in self.feeds) + len(self.failed_feeds)

    @property
    def failed_feeds(self) -> list[FeedStatus]:
        return [f for f in self.feeds if f.status == "failed"]

    @property
    def all_failed(self) -> bool:
        """Every feed failed (False when there are no feeds): what makes `newsbot update` exit non-zero."""
        return bool(self.feeds) and len(self.failed_feeds) == len(self.feeds)

    def summary(self) -> str:
        if self.busy:
            who = f" ({self.holder.describe()})" if self.holder else ""
            return f"another update is running{who}; nothing done"
        return (
            f"{len(self.feeds)} feeds: {self.new} new, {self.updated} updated, {self.skipped} skipped, "
            f"{self.failed} failed ({self.seconds:.1f} s)"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "new": self.new, "updated": self.updated, "skipped": self.skipped, "failed": self.failed,
            "seconds": round(self.seconds, 3), "busy": self.busy,
            "holder": self.holder.to_json() if self.holder else None,
            "feeds": [f.__dict__ for f in self.feeds],
        }


def entry_fingerprint(entry: FeedEntry) -> str:
    """A hash of what the feed says about an entry: when it changes, the entry is fetched again."""
    parts = [entry.link, entry.title, entry.summary, entry.content_html,
             entry.published_at.isoformat() if entry.published_at else ""]
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


def check_feed(url: str, policy: FetchPolicy) -> FoundFeed:
    """Poll `url` once (no validators), or, when it is a web page, the first feed it links (see
    `index.ingest.discovery`); raise FeedProblem with the reason when neither gives a usable feed."""
    try:
        found = find_feed(url, policy)
    except (FetchError, FeedError) as exc:
        raise FeedProblem(f"{url}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever a hostile feed makes go wrong, say so in one line
        log.warning("feed %s could not be checked", url, exc_info=True)
        raise FeedProblem(f"{url}: {_one_line(exc)}") from None
    assert found.poll.feed is not None
    return found


def register_feed(state: State, found: FoundFeed, *, added_by: str = "", title: str = "") -> FeedCheck:
    """Register the feed `check_feed` found (`title`: the name to use when the feed has none)."""
    feed = found.poll.feed
    assert feed is not None
    name = feed.title or title
    added = state.add_feed(found.url, added_by=added_by, title=name)
    others = tuple(link.url for link in found.links[1:])
    return FeedCheck(url=found.url, title=name, entries=len(feed.entries), added=added, page=found.page,
                     others=others)


@dataclass(frozen=True)
class ImportedFeed:
    """One feed of an import. outcome: "added", "skipped" (followed already, or listed twice) or
    "failed"; detail says why it was skipped or failed, or which feed a page led to."""

    url: str
    outcome: str
    title: str = ""
    detail: str = ""

    def line(self) -> str:
        """`added    URL (Title): 12 entries now` and the like, for a terminal."""
        name = f"{self.url} ({self.title})" if self.title and self.outcome != "failed" else self.url
        return f"{self.outcome:<8} {name}" + (f": {self.detail}" if self.detail else "")


@dataclass
class FeedImport:
    """The outcome of `import_feeds`, one `ImportedFeed` per feed of the list, in list order."""

    feeds: list[ImportedFeed] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.feeds if f.outcome == outcome)

    def summary(self) -> str:
        return f"{self.count('added')} added, {self.count('skipped')} skipped, {self.count('failed')} failed"

    def to_json(self) -> dict[str, object]:
        return {"added": self.count("added"), "skipped": self.count("skipped"), "failed": self.count("failed"),
                "feeds": [f.__dict__ for f in self.feeds]}


def import_feeds(
    state: State, policy: FetchPolicy, feeds: Sequence[OpmlFeed], *, added_by: str = "",
    progress: Progress | None = None,
) -> FeedImport:
    """Register every feed of a list (an OPML file's), each checked like `check_feed` checks one.

    A feed already followed, or listed twice, is skipped without a request. The others are fetched
    concurrently; one that fails is reported and not registered, and the rest go on. The report
    lists the feeds in list order; they are registered one at a time, by the calling thread."""
    progress = progress or no_progress
    followed = {f.url for f in state.feeds()}
    results: list[ImportedFeed | None] = []
    to_check: list[tuple[int, OpmlFeed]] = []
    listed: set[str] = set()
    for item in feeds:
        if item.url in followed:
            results.append(ImportedFeed(item.url, "skipped", item.title, "followed already"))
        elif item.url in listed:
            results.append(ImportedFeed(item.url, "skipped", item.title, "listed twice in the file"))
        else:
            to_check.append((len(results), item))
            results.append(None)
        listed.add(item.url)
    if to_check:
        progress("feeds", 0, len(to_check))
        with ThreadPoolExecutor(max_workers=min(PAGE_WORKERS, len(to_check))) as pool:
            checks = pool.map(lambda job: _checked(job[1].url, policy), to_check)
            for n, ((i, item), found) in enumerate(zip(to_check, checks, strict=True), 1):
                results[i] = _imported(state, item, found, added_by)
                progress("feeds", n, len(to_check))
    return FeedImport([r for r in results if r is not None])


def _checked(url: str, policy: FetchPolicy) -> FoundFeed | FeedProblem:
    try:
        return check_feed(url, policy)
    except FeedProblem as exc:
        return exc


def _imported(state: State, item: OpmlFeed, found: FoundFeed | FeedProblem, added_by: str) -> ImportedFeed:
    if isinstance(found, FeedProblem):
        reason = str(found)
        reason = reason[len(item.url) + 2:] if reason.startswith(item.url + ": ") else reason
        return ImportedFeed(item.url, "failed", item.title, reason)
    check = register_feed(state, found, added_by=added_by, title=item.title)
    entries = f"{check.entries} entr{'y' if check.entries == 1 else 'ies'} now"
    if check.page:
        if not check.added:
            return ImportedFeed(item.url, "skipped", check.title, f"a web page linking {check.url}, followed already")
        return ImportedFeed(item.url, "added", check.title, f"a web page; added the feed it links, {check.url} "
                                                             f"({entries})")
    if not check.added:  # added meanwhile by someone else
        return ImportedFeed(item.url, "skipped", check.title, "followed already")
    return ImportedFeed(item.url, "added", check.title, entries)


def _one_line(exc: BaseException) -> str:
    """`TypeName: first line of the message`, for errors nobody anticipated."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


@dataclass
class _Entry:
    """A new or changed entry on its way into the index.

    outcome: "" (pending), then "new", "updated", "unchanged", "duplicate" or "failed".
    doc_id: the id of the article that holds it, once known.
    """

    entry: FeedEntry
    fingerprint: str
    feed: Feed
    doc: Document | None = None
    outcome: str = ""
    doc_id: str = ""
    error: str = ""


@dataclass
class _Work:
    """One feed's part of an update."""

    status: FeedStatus
    etag: str | None = None
    last_modified: str | None = None
    entries: list[_Entry] = field(default_factory=list)


def feeds_lock(root: Path) -> contextlib.AbstractContextManager[None]:
    """One feed update at a time per index (an flock on `feeds.lock`): a second one waits, then finds
    the feeds unchanged instead of fetching the same entries again."""
    return file_lock(root / "feeds.lock")


FEEDS_LEASE = "feed-update"
LEASE_SECONDS = 120.0  # renewed every third of this while polling; a dead holder's lease lapses after it


@dataclass
class LeaseOutcome:
    """Whether this process got the feeds lease; if not, who holds it (None if it lapsed meanwhile)."""

    mine: bool
    holder: LeaseInfo | None = None

    def __bool__(self) -> bool:
        return self.mine


def _take_lease(state: State, holder: str) -> LeaseOutcome:
    """Take the feeds lease, or take it over from a holder that provably died on this machine."""
    if state.try_lease(FEEDS_LEASE, holder, LEASE_SECONDS):
        return LeaseOutcome(True)
    info = state.lease_info(FEEDS_LEASE)
    if info is not None and holder_is_dead(info.holder):
        if state.take_over_lease(FEEDS_LEASE, info.holder, holder, LEASE_SECONDS):
            log.warning("took over the feeds lease of %s: that process no longer exists", info.describe())
            return LeaseOutcome(True)
        info = state.lease_info(FEEDS_LEASE)
    return LeaseOutcome(False, info)


@contextlib.contextmanager
def feeds_lease(state: State, *, wait: bool) -> Iterator[LeaseOutcome]:
    """The right to poll feeds, shared by every process using the same state database (bot replicas on
    several machines included): yields a false outcome (naming the holder) at once when another holds
    it and `wait` is False.

    The lease is renewed in a background thread while the holder works. A holder that died on this
    machine (kill -9, a crash) is recognized by its pid and replaced at once; one on another machine
    lapses LEASE_SECONDS after it died, so a crashed replica never blocks polling for long.
    """
    holder = process_holder(str(threading.get_ident()))  # threads of one process are distinct holders
    while not (outcome := _take_lease(state, holder)):
        if not wait:
            yield outcome
            return
        time.sleep(1.0)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 3):
            state.try_lease(FEEDS_LEASE, holder, LEASE_SECONDS)

    renewer = threading.Thread(target=renew, name="feeds-lease", daemon=True)
    renewer.start()
    try:
        yield outcome
    finally:
        stop.set()
        renewer.join()
        state.release_lease(FEEDS_LEASE, holder)


def update_feeds(
    state: State, policy: FetchPolicy, index_update: IndexUpdate, *, root: Path, progress: Progress | None = None,
    wait: bool = True,
) -> UpdateReport:
    """Poll every registered feed once and index its new and changed entries (see the module doc).

    Only one process polls at a time: on this machine (a file lock) and among all processes sharing the
    state database (a lease). With `wait` False, a call that finds another poll running returns at once
    with `busy` set instead of polling the same feeds again."""
    started = time.perf_counter()
    progress = progress or no_progress
    with feeds_lease(state, wait=wait) as mine, contextlib.ExitStack() as stack:
        if not mine:
            return UpdateReport(busy=True, holder=mine.holder, seconds=time.perf_counter() - started)
        stack.enter_context(feeds_lock(root))
        feeds = state.feeds()
        works = [_Work(FeedStatus(f.url, f.title)) for f in feeds]
        if feeds:  # concurrently (a slow feed does not hold up the others); results stay in feed order
            progress("feeds", 0, len(works))
            with ThreadPoolExecutor(max_workers=min(PAGE_WORKERS, len(works))) as pool:
                polls = pool.map(lambda wf: _poll(wf[0], state, policy, wf[1].etag, wf[1].last_modified),
                                 zip(works, feeds, strict=True))
                for i, _ in enumerate(polls, 1):
                    progress("feeds", i, len(works))
        pending = [e for w in works for e in w.entries]
        _fetch_entry_pages(pending, policy, progress)
        docs = _unique_docs(pending)
        index = index_update(docs, progress) if docs else None
        checkpoint("feeds-before-state")  # the index is committed; the feed state is not yet recorded
        for work in works:
            _settle(work, index)
            _record(state, work)
    return UpdateReport(feeds=[w.status for w in works], index=index, seconds=time.perf_counter() - started)


def _poll(work: _Work, state: State, policy: FetchPolicy, etag: str | None, last_modified: str | None) -> None:
    """Poll one feed and keep the entries that are new or changed since they were last seen; whatever
    goes wrong fails this feed alone (its status says why) and the other feeds go on."""
    try:
        _poll_feed(work, state, policy, etag, last_modified)
    except (FetchError, FeedError) as exc:
        work.status.status, work.status.error = "failed", str(exc)
        work.entries.clear()
    except Exception as exc:  # noqa: BLE001 - one hostile feed must not stop the others
        log.warning("feed %s failed", work.status.url, exc_info=True)
        work.status.status, work.status.error = "failed", _one_line(exc)
        work.entries.clear()


def _poll_feed(work: _Work, state: State, policy: FetchPolicy, etag: str | None, last_modified: str | None) -> None:
    status = work.status
    poll = poll_feed(status.url, policy, etag=etag, last_modified=last_modified)
    work.etag, work.last_modified = poll.etag, poll.last_modified
    if poll.not_modified or poll.feed is None:
        status.status = "not modified"
        return
    status.title = poll.feed.title or status.title
    seen = state.seen_fingerprints(status.url)
    for entry in poll.feed.entries:
        fingerprint = entry_fingerprint(entry)
        if entry.id in seen and seen[entry.id] in (fingerprint, ""):
            status.skipped += 1
        else:
            work.entries.append(_Entry(entry, fingerprint, poll.feed))


def _fetch_entry_pages(entries: Sequence[_Entry], policy: FetchPolicy, progress: Progress) -> None:
    """Give every entry its Document (its page when usable, else the feed's text) or an error."""
    if not entries:
        return
    progress("pages", 0, len(entries))
    with ThreadPoolExecutor(max_workers=min(PAGE_WORKERS, len(entries))) as pool:
        results = pool.map(lambda e: _entry_doc(e.entry, e.feed, policy), entries)
        for n, (item, result) in enumerate(zip(entries, results, strict=True), 1):
            if isinstance(result, Document):
                item.doc = result
            else:
                item.outcome, item.error = "failed", result
            progress("pages", n, len(entries))


def _entry_doc(entry: FeedEntry, feed: Feed, policy: FetchPolicy) -> Document | str:
    """The entry's document, or why neither its page nor the feed's text gave one."""
    try:
        return _entry_document(entry, feed, policy)
    except Exception as exc:  # noqa: BLE001 - one hostile entry fails alone (and is retried next poll)
        log.warning("entry %s failed", entry.link or entry.id, exc_info=True)
        return _one_line(exc)


def _entry_document(entry: FeedEntry, feed: Feed, policy: FetchPolicy) -> Document | str:
    html: str | bytes | None = None
    page_error = ""
    if entry.link:
        try:
            result = fetch(entry.link, policy)
            html = _decoded(result.body, result.charset)
        except FetchError as exc:
            page_error = str(exc)
            log.info("entry page %s failed (%s); using the feed's text", entry.link, exc)
    try:
        doc = entry_document(entry, feed, html)
    except ValueError as exc:
        return f"page: {page_error}; {exc}" if page_error else str(exc)
    return article_too_big(doc, policy.max_article_bytes) or doc


def _decoded(body: bytes, charset: str | None) -> str | bytes:
    if not charset:
        return body
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body


def _unique_docs(entries: Sequence[_Entry]) -> list[Document]:
    """One document per article id (two feeds may carry the same link); repeats count as duplicates."""
    docs: dict[str, Document] = {}
    for item in entries:
        if item.doc is None:
            continue
        if item.doc.id in docs:
            item.outcome, item.doc_id = "duplicate", item.doc.id
        else:
            docs[item.doc.id] = item.doc
    return list(docs.values())


def _settle(work: _Work, index: BuildReport | None) -> None:
    """Give each entry its outcome from the index report, and count the outcomes on the feed."""
    status = work.status
    errors = {e.path: e.reason for e in index.errors} if index is not None else {}
    for item in work.entries:
        if not item.outcome and item.doc is not None:
            outcome = index.outcomes.get(item.doc.id, "failed") if index is not None else "failed"
            item.outcome = outcome
            item.doc_id = index.stored_as.get(item.doc.id, item.doc.id) if index is not None else ""
            if outcome == "failed":
                item.error = errors.get(item.doc.origin) or errors.get(item.doc.id) or "could not be indexed"
        if item.outcome == "new":
            status.new += 1
        elif item.outcome == "updated":
            status.updated += 1
        elif item.outcome in ("unchanged", "duplicate"):
            status.skipped += 1
        else:
            status.failed += 1
            status.errors.append(f"{item.entry.link or item.entry.id}: {item.error}")


def _record(state: State, work: _Work) -> None:
    """Store what this poll learnt: seen entries, validators (unless an entry failed), status line.

    Failed entries are not marked seen, and a feed with one keeps its old validators, so the next poll
    downloads the feed again and retries them.
    """
    status = work.status
    if status.status == "failed":
        state.record_poll(status.url, status=status.outcome())
        return
    state.mark_seen(
        status.url, [(e.entry.id, e.doc_id, e.fingerprint) for e in work.entries if e.outcome != "failed"]
    )
    keep = status.failed == 0
    state.record_poll(
        status.url,
        status=status.outcome(),
        etag=work.etag if keep else None,
        last_modified=work.last_modified if keep else None,
        title=status.title or None,
        indexed=status.new + status.updated,
    )
