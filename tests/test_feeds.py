"""index.feeds: RSS / Atom / RDF parsing, polling over real local HTTP, entries → Documents."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsbot.index.documents import id_from_url
from newsbot.index.ingest.feeds import Feed, FeedEntry, FeedError, entry_document, parse_feed, poll_feed
from newsbot.index.ingest.fetch import FetchError
from tests.helpers import LOCAL, RSS_TYPE
from tests.http_fixtures import LocalServer


def rss(items: list[tuple[str, str, str]], *, title: str = "TechDaily &amp; Co") -> bytes:
    """An RSS 2.0 feed with (guid, title, pubDate) items; links are relative to the feed."""
    body = "".join(
        f"""<item><title>{t}</title><link>/news/{g}</link><guid isPermaLink="false">{g}</guid>
        <pubDate>{d}</pubDate><dc:creator>Jane Doe</dc:creator><category>Robotics</category>
        <description>&lt;p&gt;Summary of &lt;b&gt;{t}&lt;/b&gt;.&lt;/p&gt;</description>
        <content:encoded><![CDATA[<p>Full text of {t}, first paragraph.</p><p>Second paragraph.</p>
        <script>alert(1)</script>]]></content:encoded></item>"""
        for g, t, d in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>{title}</title><link>/</link><description>News</description>{body}</channel></rss>""".encode()


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://chips.example/">
  <title type="text">Chip News</title>
  <link rel="alternate" href="https://chips.example/"/>
  <link rel="self" href="https://chips.example/atom.xml"/>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2025-02-01T10:00:00Z</updated>
  <entry>
    <title type="html">Record quarter for &lt;em&gt;Example Semi&lt;/em&gt;</title>
    <link rel="alternate" href="2025/02/record-quarter"/>
    <id>tag:chips.example,2025:1</id>
    <published>2025-02-01T09:00:00+09:00</published>
    <updated>2025-02-01T12:00:00Z</updated>
    <author><name>Kenji Sato</name></author>
    <summary>Revenue rose 31 percent.</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Revenue rose 31 percent.</p>
      <p>The forecast was raised.</p></div></content>
  </entry>
  <entry>
    <title>Only updated</title>
    <link href="https://chips.example/2025/01/only-updated"/>
    <id>tag:chips.example,2025:2</id>
    <updated>2025-01-15T08:00:00Z</updated>
    <summary type="text">A plain text summary &amp; no markup.</summary>
  </entry>
</feed>"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example/"><title>RDF Wire</title><link>https://rdf.example/</link>
    <description>d</description></channel>
  <item rdf:about="https://rdf.example/1"><title>First wire story</title><link>https://rdf.example/1</link>
    <description>Wire text.</description><dc:date>2024-12-24T18:00:00Z</dc:date></item>
</rdf:RDF>"""


PAGE = """<html><head><title>Acme Robotics raises $120M | TechDaily</title>
<meta property="og:site_name" content="TechDaily Online">
<meta property="article:published_time" content="2025-03-14T09:30:00Z">
</head><body><nav><a href="/">Home</a> <a href="/tech">Tech</a></nav><article>
<h1>Acme Robotics raises $120M</h1>
<p>Acme Robotics said on Friday it had raised 120 million dollars in a Series C round led by Example
Ventures, valuing the warehouse automation company at 1.4 billion dollars.</p>
<p>The company will use the money to open a second factory in Leipzig, chief executive Maria Lopez said.</p>
</article><footer>Copyright TechDaily</footer></body></html>"""


# -- parsing -----------------------------------------------------------------------------------------


def test_rss() -> None:
    feed = parse_feed(
        rss([("a1", "Acme raises $10M", "Fri, 14 Mar 2025 09:30:00 +0200")]),
        url="https://www.td.example/feed",
    )
    assert feed.title == "TechDaily & Co"
    assert feed.link == "https://www.td.example/"
    assert feed.url == "https://www.td.example/feed" and feed.warnings == ()
    [entry] = feed.entries
    assert entry.id == "a1"
    assert entry.link == "https://www.td.example/news/a1"  # made absolute against the feed URL
    assert entry.title == "Acme raises $10M"
    assert entry.published_at == datetime(2025, 3, 14, 7, 30, tzinfo=UTC)
    assert entry.author == "Jane Doe"
    assert entry.summary == "Summary of Acme raises $10M."  # plain text
    assert "<p>Full text of Acme raises $10M" in entry.content_html
    assert "<script" not in entry.content_html  # feedparser sanitizes
    assert entry.tags == ("Robotics",)


def test_atom() -> None:
    feed = parse_feed(ATOM, url="https://chips.example/atom.xml")
    assert feed.title == "Chip News" and feed.link == "https://chips.example/"
    first, second = feed.entries
    assert first.title == "Record quarter for Example Semi"  # type="html" title stripped of markup
    assert first.link == "https://chips.example/2025/02/record-quarter"  # xml:base resolved
    assert first.id == "tag:chips.example,2025:1"
    assert first.published_at == datetime(2025, 2, 1, 0, 0, tzinfo=UTC)
    assert first.author == "Kenji Sato"
    assert "The forecast was raised." in first.content_html
    assert second.published_at == datetime(2025, 1, 15, 8, 0, tzinfo=UTC)  # falls back to <updated>
    assert second.summary == "A plain text summary & no markup."
    assert second.content_html == ""


def test_rdf() -> None:
    feed = parse_feed(RDF, url="https://rdf.example/index.rdf")
    assert feed.title == "RDF Wire"
    [entry] = feed.entries
    assert entry.link == entry.id == "https://rdf.example/1"
    assert entry.published_at == datetime(2024, 12, 24, 18, 0, tzinfo=UTC)


def test_entry_without_guid_or_link_gets_a_stable_id() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>No link here</title><description>Words.</description></item>
    <item><title>JS link</title><link>javascript:alert(1)</link></item></channel></rss>"""
    a = parse_feed(body, url="https://x.example/f").entries
    b = parse_feed(body, url="https://x.example/f").entries
    assert a[0].link == "" and a[0].id.startswith("sha1:") and a[0].id == b[0].id
    assert a[1].link == ""  # non-http links are dropped


def test_empty_but_valid_feed() -> None:
    feed = parse_feed(
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>', url=""
    )
    assert feed.entries == [] and feed.title == "t"


def test_bozo_feed_with_entries_is_tolerated_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # an unescaped & and a missing closing tag: not well-formed XML, but the loose parser copes
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Loose & Co</title>
    <item><title>Story one</title><link>https://x.example/1</link></item>
    <item><title>Story two</title><link>https://x.example/2</link></item>"""
    feed = parse_feed(body, url="https://x.example/feed")
    assert [e.link for e in feed.entries] == ["https://x.example/1", "https://x.example/2"]
    assert len(feed.warnings) == 1 and "line" in feed.warnings[0]
    assert "not well-formed but usable" in caplog.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "^not a feed: the body is empty"),
        (b"  \n ", "^not a feed: the body is empty"),
        (b"<html><head><title>x</title></head><body><p>A web page</p></body></html>", "^not a feed"),
        (b'{"items": []}', "^not a feed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "^not a feed"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><ti', "^malformed feed"),
        (b'<?xml version="1.0"?><rss version="2.0"><chan', "^malformed feed"),
    ],
)
def test_broken_input_raises(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_feed(body, url="https://x.example/feed")


def test_body_naming_a_file_is_not_opened(tmp_path: Path) -> None:
    """Handed bytes directly, feedparser would open them as a path; parse_feed must not."""
    path = tmp_path / "feed.xml"
    path.write_bytes(RDF)
    with pytest.raises(FeedError, match="^not a feed"):
        parse_feed(str(path).encode(), url="https://x.example/feed")


def test_parsing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    body = b"""<?xml version="1.0"?>
    <!DOCTYPE rss SYSTEM "http://dtd.example/rss-0.91.dtd">
    <rss version="2.0"><channel><title>t</title><item><title>i</title><link>http://x.example/1</link>
    <description>&lt;img src="http://tracker.example/p.gif"&gt;text</description></item></channel></rss>"""
    assert parse_feed(body, url="http://x.example/feed").entries[0].summary == "text"


# -- polling over HTTP ---------------------------------------------------------------------------


def test_poll_feed_whose_entries_change(server: LocalServer) -> None:
    v1 = rss([("a1", "First story", "Mon, 10 Mar 2025 08:00:00 GMT")])
    v2 = rss(
        [
            ("a2", "Second story", "Tue, 11 Mar 2025 08:00:00 GMT"),
            ("a1", "First story", "Mon, 10 Mar 2025 08:00:00 GMT"),
        ]
    )
    res = server.resource("/feed.xml", v1, content_type=RSS_TYPE)

    first = poll_feed(server.url("/feed.xml"), LOCAL)
    assert not first.not_modified and first.feed is not None
    assert [e.id for e in first.feed.entries] == ["a1"]
    assert first.etag == res.etag and first.last_modified == res.last_modified

    res.update(v2)
    second = poll_feed(server.url("/feed.xml"), LOCAL, etag=first.etag, last_modified=first.last_modified)
    assert not second.not_modified and second.feed is not None
    assert [e.id for e in second.feed.entries] == ["a2", "a1"]
    assert second.etag != first.etag
    assert server.requests[1].header("If-None-Match") == first.etag


def test_second_poll_of_unchanged_feed_is_one_cheap_request(server: LocalServer) -> None:
    res = server.resource(
        "/feed.xml", rss([("a1", "First", "Mon, 10 Mar 2025 08:00:00 GMT")]), content_type=RSS_TYPE
    )
    first = poll_feed(server.url("/feed.xml"), LOCAL)
    before = server.hits()
    second = poll_feed(server.url("/feed.xml"), LOCAL, etag=first.etag, last_modified=first.last_modified)
    assert server.hits() - before == 1
    assert res.not_modified_count == 1
    assert second.not_modified and second.feed is None
    assert second.etag == first.etag and second.last_modified == first.last_modified


def test_poll_with_last_modified_only(server: LocalServer) -> None:
    server.resource("/f", RDF, content_type="application/rdf+xml", etag=False)
    first = poll_feed(server.url("/f"), LOCAL)
    assert first.etag is None and first.last_modified
    assert poll_feed(server.url("/f"), LOCAL, last_modified=first.last_modified).not_modified


def test_poll_follows_a_moved_feed(server: LocalServer) -> None:
    server.redirect("/old.xml", "/new.xml", status=301)
    server.add("/new.xml", ATOM, content_type="application/atom+xml")
    poll = poll_feed(server.url("/old.xml"), LOCAL)
    assert poll.url == server.url("/new.xml")
    assert poll.feed is not None and poll.feed.title == "Chip News"
    assert "application/atom+xml" in (server.requests[0].header("Accept") or "")


def test_poll_feed_served_as_text_html_still_parses(server: LocalServer) -> None:
    server.add("/feed", rss([("a1", "x", "Mon, 10 Mar 2025 08:00:00 GMT")]), content_type="text/html")
    poll = poll_feed(server.url("/feed"), LOCAL)
    assert poll.feed is not None and len(poll.feed.entries) == 1


def test_poll_broken_feed(server: LocalServer) -> None:
    server.add("/broken.xml", b'<?xml version="1.0"?><rss version="2.0"><chan', content_type=RSS_TYPE)
    server.add("/page", PAGE)
    with pytest.raises(FeedError, match="^malformed feed"):
        poll_feed(server.url("/broken.xml"), LOCAL)
    with pytest.raises(FeedError, match="^not a feed"):
        poll_feed(server.url("/page"), LOCAL)


def test_poll_refuses_what_fetch_refuses(server: LocalServer) -> None:
    server.add("/feed.xml", RDF, content_type="application/rdf+xml")
    with pytest.raises(FetchError, match="^refused: 127.0.0.1 is a loopback address"):
        poll_feed(server.url("/feed.xml"))  # default policy
    server.add("/img", b"\x89PNG", content_type="image/png")
    with pytest.raises(FetchError, match="^not an HTML/XML page"):
        poll_feed(server.url("/img"), LOCAL)
    assert server.hits("/feed.xml") == 0


# -- entries → Documents ---------------------------------------------------------------------------


def _feed_and_entry() -> tuple[Feed, FeedEntry]:
    feed = parse_feed(
        rss([("a1", "Acme raises $120M", "Fri, 14 Mar 2025 09:30:00 GMT")]), url="https://td.example/rss"
    )
    return feed, feed.entries[0]


def test_entry_document_from_fetched_page(server: LocalServer) -> None:
    from newsbot.index.ingest.fetch import fetch

    server.add("/news/a1", PAGE)
    feed = parse_feed(
        rss([("a1", "Acme raises $120M", "Thu, 13 Mar 2025 07:00:00 GMT")]), url=server.url("/rss")
    )
    entry = feed.entries[0]
    page = fetch(entry.link, LOCAL)
    doc = entry_document(entry, feed, page.body)
    assert doc.id == id_from_url(entry.link)
    assert doc.title == "Acme Robotics raises $120M"  # the page's headline
    assert doc.source == "TechDaily Online"  # the page's site name wins over the feed's title
    assert doc.published_at == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)  # the page's date wins
    assert doc.author == "Jane Doe"  # the page has none: the entry's
    assert doc.tags == ("Robotics",)
    assert "second factory in Leipzig" in doc.body and "Home" not in doc.body
    assert doc.url == entry.link


def test_entry_document_page_without_site_name_uses_feed_title() -> None:
    feed, entry = _feed_and_entry()
    html = PAGE.replace('<meta property="og:site_name" content="TechDaily Online">', "")
    html = html.replace('<meta property="article:published_time" content="2025-03-14T09:30:00Z">', "")
    doc = entry_document(entry, feed, html)
    assert doc.source == "TechDaily & Co"
    assert doc.published_at == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)  # the entry's date


def test_entry_document_from_feed_content_when_page_unusable() -> None:
    feed, entry = _feed_and_entry()
    doc = entry_document(entry, feed, "<html><body><nav><a href='/'>Home</a></nav></body></html>")
    assert doc.body == "Full text of Acme raises $120M, first paragraph.\n\nSecond paragraph."
    assert doc.title == "Acme raises $120M"
    assert doc.source == "TechDaily & Co"
    assert doc.published_at == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert doc.author == "Jane Doe" and doc.tags == ("Robotics",)
    assert doc.id == id_from_url("https://td.example/news/a1")
    assert entry_document(entry, feed, None) == doc


def test_entry_document_from_summary_only() -> None:
    feed = parse_feed(ATOM, url="https://chips.example/atom.xml")
    doc = entry_document(feed.entries[1], feed, None)
    assert doc.body == "A plain text summary & no markup."
    assert doc.source == "Chip News"


def test_entry_without_any_text_raises() -> None:
    feed = Feed("F", "https://f.example/", [])
    entry = FeedEntry("id1", "https://f.example/1", "Title only", None, "", "", "")
    with pytest.raises(ValueError, match="has no text"):
        entry_document(entry, feed, None)
