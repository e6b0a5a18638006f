"""RSS 2.0 / Atom / RDF feeds: parse bytes with feedparser, poll a feed URL, turn entries into Documents.

feedparser only ever sees bytes we fetched ourselves (wrapped in a BytesIO, because given a plain
string or bytes it would fetch URLs and open local file paths). Polling goes through `index.ingest.fetch`, so
the same address, size, redirect and time limits apply. Dates are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser

from newsbot.index.documents import Document, id_from_url, parse_date, slugify
from newsbot.index.ingest.fetch import ACCEPT_FEED, FetchPolicy, fetch
from newsbot.index.ingest.html import document_from_html, fragment_text

log = logging.getLogger(__name__)


class FeedError(Exception):
    """Bytes that are not a usable feed; the message starts "not a feed:" or "malformed feed:"."""


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed.

    id: the entry's guid/id, else its link (else a hash of its title and summary). link: absolute http(s)
    URL of the article, '' when the entry has none. summary: plain text. content_html: the full content
    (Atom <content>, RSS <content:encoded>) as sanitized HTML, '' when the feed carries only a summary.
    """

    id: str
    link: str
    title: str
    published_at: datetime | None
    author: str
    summary: str
    content_html: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Feed:
    """A parsed feed. link: the site's home page (absolute). warnings: what the parser tolerated."""

    title: str
    link: str
    entries: list[FeedEntry]
    url: str = ""  # where the feed was fetched from
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class FeedPoll:
    """The outcome of one poll. url: the final URL after redirects. feed: None when not_modified."""

    url: str
    not_modified: bool
    feed: Feed | None
    etag: str | None
    last_modified: str | None


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> Feed:
    """Parse RSS / Atom / RDF `body` fetched from `url` (relative links resolve against it).

    `content_type`: the HTTP Content-Type header, if known (its charset helps decoding). Raises
    `FeedError` for input that is not a feed or is too broken to yield entries; a feed that feedparser
    flags as ill-formed but that still yields entries is returned with the problem in `warnings`.
    """
    if not body or not body.strip():
        raise FeedError("not a feed: the body is empty")
    # Without a Content-Type feedparser flags every document as NonXMLContentType; assume XML.
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    body, repaired = _repair_references(body)
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as exc:  # noqa: BLE001 - a hostile feed must fail alone, whatever the parser raises
        raise FeedError(f"malformed feed: {type(exc).__name__}: {_first_line(exc)}") from None
    problem = _bozo_message(parsed) if parsed.get("bozo") else ""
    entries = []
    for i, raw in enumerate(parsed.get("entries") or [], 1):
        try:
            entry = _entry(raw, url)
        except Exception as exc:  # noqa: BLE001 - one broken entry is skipped, the others are read
            log.warning("feed %s: entry %d skipped (%s: %s)", url, i, type(exc).__name__, _first_line(exc))
            continue
        if entry is not None:
            entries.append(entry)
    if repaired:
        log.warning("feed %s: %d invalid character references replaced with U+FFFD", url, repaired)
    if not entries:
        if not parsed.get("version"):
            if problem and _looks_like_xml(body):
                raise FeedError(f"malformed feed: {problem}")
            detail = f" ({problem})" if problem else ""
            raise FeedError(f"not a feed: no RSS, Atom or RDF document found{detail}")
        if problem:
            raise FeedError(f"malformed feed: {problem}")
    meta = parsed.get("feed") or {}
    warnings = (problem,) if problem else ()
    if problem:
        log.warning("feed %s is not well-formed but usable (%d entries): %s", url, len(entries), problem)
    return Feed(
        title=_one_line(_detail_text(meta.get("title") or "", meta.get("title_detail"))),
        link=_absolute(url, meta.get("link") or ""),
        entries=entries,
        url=url,
        warnings=warnings,
    )


def poll_feed(
    url: str,
    policy: FetchPolicy | None = None,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FeedPoll:
    """Fetch and parse the feed at `url`; with the validators of the last poll, a 304 costs one request.

    Raises `index.ingest.fetch.FetchError` for fetch failures and `FeedError` for unusable content.
    """
    result = fetch(url, policy, etag=etag, last_modified=last_modified, accept=ACCEPT_FEED)
    if result.not_modified:
        return FeedPoll(result.url, True, None, result.etag, result.last_modified)
    content_type = result.content_type + (f"; charset={result.charset}" if result.charset else "")
    feed = parse_feed(result.body, url=result.url, content_type=content_type or None)
    return FeedPoll(result.url, False, feed, result.etag, result.last_modified)


def entry_document(entry: FeedEntry, feed: Feed, html: str | bytes | None = None) -> Document:
    """A `Document` for a feed entry: from its article page `html` when given and extractable, else from
    the entry's own content or summary.

    The page's values come first; the entry fills what the page lacks (title, date, author, tags), and
    the feed's title is the outlet when the page names none. id: `id_from_url(entry.link)` (the same id
    `document_from_html` gives the page), else derived from the entry id. Raises ValueError when neither
    the page nor the entry has any text.
    """
    if html:
        try:
            doc = document_from_html(html, url=entry.link, origin=entry.link, fallback_title=entry.title)
        except ValueError as exc:
            log.info("entry %s: page not usable (%s); using the feed's text", entry.link or entry.id, exc)
        else:
            outlet = doc.source
            if not _page_named_outlet(doc, entry.link):
                outlet = feed.title or doc.source
            return doc.with_(
                id=_entry_doc_id(entry),
                source=outlet,
                published_at=doc.published_at or entry.published_at,
                author=doc.author or entry.author,
                tags=doc.tags or entry.tags,
            )
    body = fragment_text(entry.content_html) if entry.content_html else ""
    if not body:
        body = entry.summary
    if not body.strip():
        raise ValueError(f"entry {entry.link or entry.id!r} has no text (no usable page, content or summary)")
    title = entry.title or " ".join(body.split()[:12])
    return Document(
        id=_entry_doc_id(entry),
        title=title,
        body=body,
        source=feed.title or _host(entry.link or feed.link or feed.url),
        url=entry.link,
        published_at=entry.published_at,
        author=entry.author,
        tags=entry.tags,
        origin=entry.link or feed.url,
    )


# -- internals -------------------------------------------------------------------------------------


def _entry(raw: Any, feed_url: str) -> FeedEntry | None:
    link = _absolute(feed_url, raw.get("link") or "")
    if not link:  # some feeds only give <link rel="alternate"> among several links
        for candidate in raw.get("links") or []:
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = _absolute(feed_url, candidate["href"])
                if link:
                    break
    title = _one_line(_detail_text(raw.get("title") or "", raw.get("title_detail")))
    summary = _detail_text(raw.get("summary") or "", raw.get("summary_detail"))
    content_html = ""
    for content in raw.get("content") or []:
        value = content.get("value") or ""
        if not _is_markup(content):
            value = "".join(f"<p>{escape(p)}</p>" for p in value.split("\n\n") if p.strip())
        if value.strip() and len(value) > len(content_html):
            content_html = value
    if not (link or title or summary or content_html):
        return None
    entry_id = (raw.get("id") or "").strip() or link
    if not entry_id:
        entry_id = "sha1:" + hashlib.sha1((title + "\n" + summary).encode("utf-8")).hexdigest()
    return FeedEntry(
        id=entry_id,
        link=link,
        title=title,
        published_at=_entry_date(raw),
        author=_one_line(raw.get("author") or ""),
        summary=summary,
        content_html=content_html,
        tags=tuple(t for t in (_one_line(tag.get("term") or "") for tag in raw.get("tags") or []) if t),
    )


def _entry_date(raw: Any) -> datetime | None:
    for key in ("published", "updated", "created"):
        parsed = raw.get(key + "_parsed")
        if parsed:
            return datetime(*parsed[:6], tzinfo=UTC)
        text = raw.get(key)
        if text:
            try:
                return parse_date(text)
            except ValueError:
                continue
    return None


def _entry_doc_id(entry: FeedEntry) -> str:
    if entry.link:
        return id_from_url(entry.link)
    if entry.id.startswith(("http://", "https://")):
        return id_from_url(entry.id)
    return (
        "entry-" + hashlib.sha1(entry.id.encode("utf-8")).hexdigest()[:16]
        if entry.id
        else slugify(entry.title)
    )


def _page_named_outlet(doc: Document, url: str) -> bool:
    """Whether the page gave a site name (document_from_html falls back to the bare host name)."""
    return bool(doc.source) and doc.source != _host(url)


def _is_markup(detail: Any) -> bool:
    kind = (detail or {}).get("type") or "text/html"
    return "html" in kind or "xml" in kind


def _detail_text(value: str, detail: Any) -> str:
    """Plain text of a title/summary: HTML ones are stripped of markup, plain-text ones kept as they are."""
    return fragment_text(value) if _is_markup(detail) else value.strip()


def _bozo_message(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    if exc is None:
        return "ill-formed document"
    if isinstance(exc, SAXParseException):
        return f"{exc.getMessage()} at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Numeric character references to code points no text can hold: surrogates (&#xD800;) and values past
# U+10FFFF. feedparser turns them into characters that then fail to encode (or raises outright).
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,20}));")


def _repair_references(body: bytes) -> tuple[bytes, int]:
    """`body` with every character reference to a surrogate or an out-of-range code point replaced by
    `&#xFFFD;`, and how many there were."""
    count = 0

    def fix(match: re.Match[bytes]) -> bytes:
        nonlocal count
        value = int(match.group(1), 16) if match.group(1) else int(match.group(2))
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            count += 1
            return b"&#xFFFD;"
        return match.group(0)

    return _CHAR_REF.sub(fix, body), count


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _looks_like_xml(body: bytes) -> bool:
    head = body.lstrip()[:200].lower()
    return head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf"))


def _absolute(base: str, link: str) -> str:
    """`link` resolved against `base`; '' unless the result is an http(s) URL."""
    link = link.strip()
    if not link:
        return ""
    absolute = urljoin(base, link) if base else link
    return absolute if urlsplit(absolute).scheme in ("http", "https") else ""


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "") if url else ""
    return host[4:] if host.startswith("www.") else host


def _one_line(text: str) -> str:
    return " ".join(text.split())
