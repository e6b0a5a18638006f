"""index.html: article pages → Documents (pages served by a real local HTTP server and read from files)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsbot.index.documents import id_from_url
from newsbot.index.ingest.fetch import fetch
from newsbot.index.ingest.html import document_from_html, extract_page, fragment_text
from tests.helpers import LOCAL
from tests.http_fixtures import LocalServer

NAV = """
<header class="site-header">
  <a class="logo" href="/">TechDaily</a>
  <nav><ul>
    <li><a href="/">Home</a></li><li><a href="/tech">Technology</a></li>
    <li><a href="/markets">Markets</a></li>
    <li><a href="/opinion">Opinion</a></li><li><a href="/subscribe">Subscribe to our newsletter</a></li>
  </ul></nav>
  <div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
</header>
"""

FOOTER = """
<aside class="most-read"><h3>Most read</h3><ul>
  <li><a href="/a1">Ten gadgets you need this summer</a></li>
  <li><a href="/a2">Why the chip shortage is not over yet</a></li>
</ul></aside>
<footer><p>Copyright 2025 TechDaily Media Group. All rights reserved.</p>
  <a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a> |
  <a href="/contact">Contact us</a>
</footer>
"""

PARAGRAPHS = [
    "Acme Robotics said on Friday it had raised 120 million dollars in a Series C round led by Example "
    "Ventures, valuing the warehouse automation company at 1.4 billion dollars.",
    "The company will use the money to open a second factory in Leipzig and to double its engineering "
    "staff over the next eighteen months, chief executive Maria Lopez told reporters.",
    "Demand for picking robots has grown as retailers struggle to hire warehouse workers, and Acme said "
    "its order book had tripled since the start of last year.",
    "Analysts cautioned that competition from larger rivals remains fierce and that hardware margins are "
    "thin, but said the round showed investors still back automation despite a cooler funding market.",
]

ARTICLE = f"""<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Acme Robotics raises $120M to build robots in Leipzig | TechDaily</title>
<meta property="og:site_name" content="TechDaily">
<meta property="og:title" content="Acme Robotics raises $120M to build robots in Leipzig">
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2025-03-14T09:30:00+01:00">
<meta property="article:modified_time" content="2025-03-15T12:00:00+01:00">
<meta name="keywords" content="robotics, funding; Leipzig">
<link rel="canonical" href="https://www.techdaily.example/2025/03/acme-robotics-raises">
<link rel="stylesheet" href="https://cdn.techdaily.example/site.css">
<script src="https://cdn.techdaily.example/tracker.js"></script>
</head><body>
{NAV}
<main><article>
  <h1>Acme Robotics raises $120M to build robots in Leipzig</h1>
  <p class="byline">By Jane Doe</p>
  {"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}
  <img src="https://cdn.techdaily.example/acme.jpg" alt="A robot">
</article></main>
{FOOTER}
</body></html>"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to resolve a name or open a connection fail loudly."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_article_page_over_http(server: LocalServer) -> None:
    server.add("/2025/03/acme", ARTICLE)
    result = fetch(server.url("/2025/03/acme"), LOCAL)
    doc = document_from_html(result.body, url=result.url, encoding=result.charset)

    assert doc.id == id_from_url(server.url("/2025/03/acme"))
    assert doc.title == "Acme Robotics raises $120M to build robots in Leipzig"
    assert doc.source == "TechDaily"
    assert doc.author == "Jane Doe"
    assert doc.published_at == datetime(2025, 3, 14, 8, 30, tzinfo=UTC)  # the original, not the modified date
    assert doc.url == result.url and doc.origin == result.url
    assert set(doc.tags) == {"robotics", "funding", "Leipzig"}
    # body: the paragraphs, one per block, separated by blank lines
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.body
    assert doc.body.split("\n\n") == PARAGRAPHS  # byline and headline are not body text
    # boilerplate stays out
    for junk in (
        "Subscribe",
        "cookies",
        "Copyright",
        "Privacy policy",
        "Most read",
        "chip shortage",
        "Markets",
    ):
        assert junk not in doc.body, junk
    # the headline is the title, not repeated as the body's first block
    assert not doc.body.startswith("Acme Robotics raises")


def test_extraction_is_offline(no_network: None) -> None:
    doc = document_from_html(ARTICLE, url="https://www.techdaily.example/2025/03/acme")
    assert doc.source == "TechDaily"
    page = extract_page(ARTICLE, url="https://www.techdaily.example/2025/03/acme")
    assert page.canonical_url == "https://www.techdaily.example/2025/03/acme-robotics-raises"


MINIMAL = """<html><head><title>Chipmaker posts record quarter</title></head><body>
<div id="menu"><a href="/">Start</a> <a href="/news">News</a></div>
<div class="story">
<h2>Chipmaker posts record quarter</h2>
<p>Posted <time datetime="2024-11-02">2 November 2024</time></p>
<p>Example Semiconductor reported record revenue for the third quarter on Thursday, helped by strong
demand for data centre chips and a recovery in its smartphone business.</p>
<p>Revenue rose 31 percent from a year earlier, beating analyst estimates, and the company raised its
forecast for the full year.</p>
</div></body></html>"""


def test_outlet_falls_back_to_host_without_www(server: LocalServer) -> None:
    server.add("/chips", MINIMAL, content_type="text/html")  # no charset: trafilatura sniffs
    result = fetch(server.url("/chips"), LOCAL)
    doc = document_from_html(result.body, url="https://www.chipnews.example/chips")
    assert doc.source == "chipnews.example"
    assert doc.title == "Chipmaker posts record quarter"
    assert doc.published_at == datetime(2024, 11, 2, tzinfo=UTC)
    assert "record revenue" in doc.body and "Revenue rose 31 percent" in doc.body
    assert "Start" not in doc.body


def test_id_from_title_slug_without_url() -> None:
    doc = document_from_html(MINIMAL)
    assert doc.id == "title-chipmaker-posts-record-quarter"
    assert doc.source == "" and doc.url == ""


def test_fallback_title_when_page_has_none() -> None:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    doc = document_from_html(f"<html><body><div>{body}</div></body></html>", fallback_title="acme-story")
    assert doc.title == "acme-story"
    assert doc.id == "title-acme-story"


def test_local_html_file(tmp_path: Path) -> None:
    path = tmp_path / "acme.html"
    path.write_text(ARTICLE, encoding="utf-8")
    doc = document_from_html(path.read_bytes(), origin=str(path), fallback_title=path.stem)
    assert doc.origin == str(path)
    assert doc.title.startswith("Acme Robotics raises")
    assert PARAGRAPHS[1] in doc.body


def test_legacy_charset_from_http_header(server: LocalServer) -> None:
    text = MINIMAL.replace("Example Semiconductor", "Société Générale Électronique")
    server.add("/latin", text.encode("iso-8859-1"), content_type="text/html; charset=ISO-8859-1")
    result = fetch(server.url("/latin"), LOCAL)
    doc = document_from_html(result.body, url=result.url, encoding=result.charset)
    assert "Société Générale Électronique" in doc.body


def test_meta_charset_in_bytes() -> None:
    html = MINIMAL.replace("<head>", '<head><meta charset="windows-1252">').replace("Example", "Café")
    doc = document_from_html(html.encode("cp1252"))
    assert "Café Semiconductor" in doc.body


@pytest.mark.parametrize("html", ["", "   \n", b"", "<html></html>", "<html><body></body></html>"])
def test_empty_pages_raise(html: str | bytes) -> None:
    with pytest.raises(ValueError, match="^no usable main text"):
        document_from_html(html, url="https://x.example/")


def test_navigation_only_page_raises() -> None:
    links = "".join(f"<li><a href='/s{i}'>Section number {i} of the site</a></li>" for i in range(30))
    html = f"<html><head><title>Portal</title></head><body>{NAV}<nav><ul>{links}</ul></nav>{FOOTER}</body>"
    with pytest.raises(ValueError, match="^no usable main text"):
        document_from_html(html, url="https://x.example/")


def test_too_short_page_raises() -> None:
    with pytest.raises(ValueError, match=r"only \d+ words"):
        document_from_html("<html><body><article><p>Breaking: more soon.</p></article></body></html>")


def test_binary_garbage_raises() -> None:
    with pytest.raises(ValueError, match="^no usable main text"):
        document_from_html(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def test_lists_and_tables_keep_their_rows() -> None:
    html = f"""<html><body><article><h1>Results</h1><p>{PARAGRAPHS[0]}</p>
    <ul><li>Revenue rose to 4.1 billion dollars</li><li>Margins improved to 38 percent</li></ul>
    <table><tr><th>Quarter</th><th>Revenue</th></tr><tr><td>Q1</td><td>3.2</td></tr></table>
    <p>{PARAGRAPHS[1]}</p></article></body></html>"""
    body = document_from_html(html).body
    assert "- Revenue rose to 4.1 billion dollars\n- Margins improved to 38 percent" in body
    assert "Quarter | Revenue\nQ1 | 3.2" in body


def test_fragment_text() -> None:
    html = (
        "<p>Hello <b>world</b> &amp; more</p><p>Second<br>line</p><script>alert(1)</script>"
        "<!-- hidden --><ul><li>one</li><li>two</li></ul>"
    )
    assert fragment_text(html) == "Hello world & more\n\nSecond\nline\n\none\n\ntwo"
    assert fragment_text("plain   text\n\n\n  again ") == "plain text\n\nagain"
    assert fragment_text("") == ""
