"""Feed discovery: given a URL that may be a site's page rather than its feed, find the feed it links.

`find_feed(url, policy)` fetches `url` once. A feed is parsed as it is; an HTML page is searched for
`<link rel="alternate" type="application/rss+xml|application/atom+xml|application/rdf+xml" href=…>`
(relative hrefs resolved against the page's final URL, or its `<base href>`), and the first one is
fetched and parsed. Both requests go through `index.ingest.fetch.fetch`, so the discovered URL gets
exactly the same address, size, redirect and time checks as one typed by hand: a page cannot point the
fetcher at a private address. Discovery goes one level deep (a linked "feed" that is itself a page is
not followed further).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from newsbot.index.ingest.feeds import FeedError, FeedPoll, parse_feed, poll_feed
from newsbot.index.ingest.fetch import ACCEPT_FEED, FetchError, FetchPolicy, FetchResult, fetch

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class FeedLink:
    """A feed an HTML page links. url: absolute http(s) URL. kind: its media type. title: '' if none."""

    url: str
    kind: str
    title: str = ""


@dataclass(frozen=True)
class FoundFeed:
    """The feed behind a URL.

    url: the feed's URL to register (the one asked for, or the link found on the page). poll: its first
    poll. page: the HTML page the feed was found on, '' when `url` was a feed itself. links: every feed
    the page links, in page order (`links[0]` is the one chosen); empty when `page` is ''.
    """

    url: str
    poll: FeedPoll
    page: str = ""
    links: tuple[FeedLink, ...] = ()


def find_feed(url: str, policy: FetchPolicy | None = None) -> FoundFeed:
    """The feed at `url`, or the first feed the HTML page at `url` links.

    Raises `FetchError` when a fetch fails (the page's, or the linked feed's: its message then names
    the link) and `FeedError` when the content is not a feed and the page links none (its message
    starts "not a feed:").
    """
    result = fetch(url, policy, accept=ACCEPT_FEED)
    try:
        feed = parse_feed(result.body, url=result.url, content_type=_content_type(result))
    except FeedError:
        if not _is_html(result):
            raise
        links = feed_links(result.body, url=result.url, charset=result.charset)
        if not links:
            raise FeedError(
                f"not a feed: {result.url} is a web page that links no RSS or Atom feed "
                '(no <link rel="alternate" type="application/rss+xml"> or atom+xml)'
            ) from None
        return _follow(links, page=result.url, policy=policy)
    poll = FeedPoll(result.url, False, feed, result.etag, result.last_modified)
    return FoundFeed(url=url.strip(), poll=poll)


def feed_links(html: bytes | str, *, url: str, charset: str | None = None) -> list[FeedLink]:
    """The feeds an HTML page links with `<link rel="alternate" type=…feed type… href=…>`, in page
    order, without repeats; hrefs resolve against `<base href>` if the page has one, else `url`.
    Only http(s) URLs are returned (a `javascript:` or `file:` href is dropped)."""
    if isinstance(html, bytes):
        html = html.decode(_codec(charset), errors="replace")
    finder = _LinkFinder(url)
    finder.feed(html)
    finder.close()
    return finder.links


def _follow(links: list[FeedLink], *, page: str, policy: FetchPolicy | None) -> FoundFeed:
    chosen = links[0]
    try:
        poll = poll_feed(chosen.url, policy)
    except FetchError as exc:
        raise FetchError(f"{page} links the feed {chosen.url}, which failed: {exc}") from None
    except FeedError as exc:
        raise FeedError(f"{page} links {chosen.url} as its feed, but {exc}") from None
    return FoundFeed(url=chosen.url, poll=poll, page=page, links=tuple(links))


class _LinkFinder(HTMLParser):
    """Collects feed <link>s and the first <base href> (which, as in browsers, applies to every link)."""

    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = url
        self._base_seen = False
        self._raw: list[tuple[str, str, str]] = []  # (href, type, title) in page order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and not self._base_seen and values.get("href", "").strip():
            self._base_seen = True
            self.base = urljoin(self.base, values["href"].strip())
        elif tag == "link":
            rels = values.get("rel", "").lower().split()
            kind = values.get("type", "").split(";")[0].strip().lower()
            href = values.get("href", "").strip()
            if "alternate" in rels and kind in FEED_TYPES and href:
                self._raw.append((href, kind, " ".join(values.get("title", "").split())))

    handle_startendtag = handle_starttag

    @property
    def links(self) -> list[FeedLink]:
        seen: set[str] = set()
        out: list[FeedLink] = []
        for href, kind, title in self._raw:
            absolute = urljoin(self.base, href)
            if urlsplit(absolute).scheme not in ("http", "https") or absolute in seen:
                continue
            seen.add(absolute)
            out.append(FeedLink(absolute, kind, title))
        return out


def _is_html(result: FetchResult) -> bool:
    """HTML by its Content-Type, or, when the server sent none or text/plain, by its first bytes."""
    if result.content_type in HTML_TYPES:
        return True
    if result.content_type not in ("", "text/plain"):
        return False
    head = result.body.lstrip()[:512].lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<head" in head


def _content_type(result: FetchResult) -> str | None:
    value = result.content_type + (f"; charset={result.charset}" if result.charset else "")
    return value or None


def _codec(charset: str | None) -> str:
    import codecs

    try:
        return codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        return "utf-8"
