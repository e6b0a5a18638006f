"""Feed discovery (`feeds add` on a site's page) and OPML import/export, end to end through the CLI
(`newsbot ...` run in this process) and `/feeds add` through the Discord stand-in, against real HTTP
servers on 127.0.0.1. Only 127.0.0.1 is allowed (`fetch_allowed_networks`), so a page that links a
feed on another loopback address shows the address rules holding for discovered URLs."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from newsbot.bot.cli import main
from newsbot.bot.state import State
from newsbot.index.ingest.discovery import feed_links
from tests.helpers import REPO, RSS_TYPE, bot_factory, rss
from tests.http_fixtures import LocalServer

ATOM_TYPE = "application/atom+xml"
ATOM = (b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Side</title>'
        b"<id>urn:a</id><updated>2025-03-15T10:00:00Z</updated><entry><id>urn:a1</id><title>One</title>"
        b'<link href="http://example.test/1"/><updated>2025-03-15T10:00:00Z</updated><summary>s</summary>'
        b"</entry></feed>")


def site_page(*links: str, base: str = "") -> str:
    """A home page whose <head> holds `links` (raw <link> tags) and optionally a <base href>."""
    base_tag = f'<base href="{base}">' if base else ""
    return (f"<!DOCTYPE html><html><head><title>Site</title>{base_tag}"
            '<link rel="stylesheet" href="/style.css">' + "".join(links) +
            "</head><body><h1>Welcome</h1><p>News every day.</p></body></html>")


def rss_link(href: str, kind: str = "application/rss+xml", title: str = "") -> str:
    return f'<link rel="alternate" type="{kind}" title="{title}" href="{href}">'


def one_item_rss(title: str, srv: LocalServer) -> bytes:
    return rss(title, [("i1", f"{title} story", srv.url("/story"), "Text of the story.")])


@pytest.fixture
def newsbot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    """`newsbot(*args) -> (exit status, stdout, stderr)` on a fresh index that may fetch from 127.0.0.1 only."""
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOWED_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("NEWSBOT_FETCH_TIMEOUT", "3")
    monkeypatch.delenv("NEWSBOT_ALLOW_PRIVATE_URLS", raising=False)
    index = tmp_path / "idx"

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(["--index-dir", str(index), *args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    run.index = index  # type: ignore[attr-defined]
    return run


def followed(index: Path) -> list[str]:
    return [f.url for f in State.for_index_dir(index).feeds()]


# ------------------------------------------------------------------------------------------- discovery


def test_feed_links_resolve_relative_hrefs_and_skip_what_is_not_a_feed() -> None:
    html = site_page(
        rss_link("feed.xml", title="Main  feed"),
        rss_link("/atom", kind="Application/Atom+XML; charset=utf-8"),  # case and parameters ignored
        rss_link("feed.xml"),  # a repeat
        '<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">',  # a translation, not a feed
        rss_link("javascript:alert(1)"),
        '<link rel="alternate stylesheet" type="text/css" href="/dark.css">',
        '<link rel="ALTERNATE feed" type="application/rss+xml" href="//cdn.example/comments.rss">',
    )
    links = feed_links(html.encode(), url="https://site.example/news/index.html")
    assert [(link.url, link.kind, link.title) for link in links] == [
        ("https://site.example/news/feed.xml", "application/rss+xml", "Main feed"),
        ("https://site.example/atom", "application/atom+xml", ""),
        ("https://cdn.example/comments.rss", "application/rss+xml", ""),
    ]
    based = feed_links(site_page(rss_link("rss"), base="https://other.example/blog/"), url="https://site.example/")
    assert [link.url for link in based] == ["https://other.example/blog/rss"]  # <base href> wins, as in browsers


def test_feeds_add_on_a_page_follows_the_feed_it_links(newsbot) -> None:  # noqa: ANN001
    with LocalServer() as srv, LocalServer(host="127.0.0.2") as other:
        srv.add("/site/", site_page(rss_link("feeds/main.xml", title="Main")))
        srv.add("/site/feeds/main.xml", one_item_rss("Harbour Wire", srv), content_type=RSS_TYPE)
        srv.add("/multi/", site_page(rss_link("/multi/rss.xml"), rss_link("/multi/atom.xml", ATOM_TYPE),
                                     rss_link("/multi/comments.xml")))
        srv.add("/multi/rss.xml", one_item_rss("Multi News", srv), content_type=RSS_TYPE)
        srv.add("/multi/atom.xml", ATOM, content_type=ATOM_TYPE)
        srv.add("/plain/", site_page())
        srv.add("/evil/", site_page(rss_link(other.url("/feed.xml"))))  # a page pointing at a private address
        other.add("/feed.xml", one_item_rss("Internal", other), content_type=RSS_TYPE)
        srv.add("/loop/", site_page(rss_link("/loop/also-a-page")))
        srv.add("/loop/also-a-page", site_page(rss_link("/loop/deeper.xml")))
        srv.add("/dead/", site_page(rss_link("/dead/gone.xml")))

        rc, out, err = newsbot("feeds", "add", srv.url("/site/"))
        assert rc == 0, err
        assert f"<{srv.url('/site/')}> is a web page; it links the feed <{srv.url('/site/feeds/main.xml')}>" in out
        assert "Following Harbour Wire" in out
        assert followed(newsbot.index) == [srv.url("/site/feeds/main.xml")]  # the feed, not the page

        rc, out, err = newsbot("feeds", "add", srv.url("/site/"))  # again: the same feed is found, not re-added
        assert rc == 0 and "Already following Harbour Wire" in out

        rc, out, err = newsbot("feeds", "add", srv.url("/multi/"))
        assert rc == 0, err
        assert f"links 3 feeds; took the first, <{srv.url('/multi/rss.xml')}>" in out
        assert srv.url("/multi/atom.xml") in out and srv.url("/multi/comments.xml") in out
        assert srv.hits("/multi/atom.xml") == 0  # only the chosen one is fetched

        rc, out, err = newsbot("feeds", "add", srv.url("/plain/"))
        assert rc == 1 and "not a feed" in err and "links no RSS or Atom feed" in err

        rc, out, err = newsbot("feeds", "add", srv.url("/evil/"))
        assert rc == 1 and "refused: 127.0.0.2 is a loopback address" in err, err
        assert other.hits() == 0  # the discovered URL went through the same address checks

        rc, out, err = newsbot("feeds", "add", srv.url("/loop/"))  # one level deep only
        assert rc == 1 and "as its feed, but not a feed" in err and srv.hits("/loop/deeper.xml") == 0

        rc, out, err = newsbot("feeds", "add", srv.url("/dead/"))
        assert rc == 1 and f"links the feed {srv.url('/dead/gone.xml')}, which failed: HTTP 404" in err

        assert set(followed(newsbot.index)) == {srv.url("/site/feeds/main.xml"), srv.url("/multi/rss.xml")}


def test_discord_feeds_add_on_a_page(tmp_path: Path) -> None:
    from newsbot.bot.discordbot.bot import NewsBot
    from tests.discord_standin import DiscordStandIn
    from tests.standin_fixtures import run_standin

    with LocalServer() as web:
        web.add("/", site_page(rss_link("/rss")))
        web.add("/rss", one_item_rss("Signal Desk", web), content_type=RSS_TYPE)
        web.add("/bare", site_page())

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            rec = await standin.slash_command("feeds", {"url": web.url("/")}, subcommand="add",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            text = resp["message"]["content"]
            assert f"links the feed <{web.url('/rss')}>" in text and "Signal Desk" in text, text
            assert [f.url for f in bot.engine.feeds()] == [web.url("/rss")]
            rec = await standin.slash_command("feeds", {"url": web.url("/bare")}, subcommand="add",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            assert "links no RSS or Atom feed" in resp["message"]["content"]

        run_standin(scenario, bot_factory=bot_factory(tmp_path / "idx", fetch_allowed_networks="127.0.0.1/32",
                                                     feed_poll_minutes=0),
                    timeout=90)


# ------------------------------------------------------------------------------------------------ OPML

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Tech">
      <outline text="Chips" title="Chip Wire" type="rss" xmlUrl="{chips}" htmlUrl="{home}"/>
      <outline text="Deeper">
        <outline text="Atom Side" type="rss" xmlUrl="{atom}"/>
      </outline>
    </outline>
    <outline text="A site page" xmlURL="{page}"/>
    <outline text="Chips again" type="rss" xmlUrl="{chips}"/>
    <outline text="Gone" type="rss" xmlUrl="{gone}"/>
    <outline text="Not a feed" type="rss" xmlUrl="{plain}"/>
    <outline text="Local file" type="rss" xmlUrl="file:///etc/passwd"/>
    <outline text="Just a link" url="{home}"/>
  </body>
</opml>
"""


def write_opml_file(path: Path, srv: LocalServer) -> Path:
    path.write_text(OPML.format(chips=srv.url("/chips.xml"), home=srv.url("/"), atom=srv.url("/atom.xml"),
                                page=srv.url("/site/"), gone=srv.url("/gone.xml"), plain=srv.url("/plain")),
                    encoding="utf-8")
    return path


def test_opml_import_export_round_trip(newsbot, tmp_path: Path) -> None:  # noqa: ANN001
    with LocalServer() as srv:
        srv.add("/chips.xml", one_item_rss("Chip Wire", srv), content_type=RSS_TYPE)
        srv.add("/atom.xml", ATOM, content_type=ATOM_TYPE)
        srv.add("/site/", site_page(rss_link("/site/rss")))
        srv.add("/site/rss", one_item_rss("Site Feed", srv), content_type=RSS_TYPE)
        srv.add("/plain", site_page())
        srv.add("/already.xml", one_item_rss("Already", srv), content_type=RSS_TYPE)
        assert newsbot("feeds", "add", srv.url("/already.xml"))[0] == 0
        listed = write_opml_file(tmp_path / "subs.opml", srv)
        listed.write_text(listed.read_text().replace(
            "</body>", f'<outline text="Already" xmlUrl="{srv.url("/already.xml")}"/></body>'))

        rc, out, err = newsbot("feeds", "import", str(listed))
        assert rc == 1, (out, err)  # some feeds failed; the others are added all the same
        lines = [line.strip() for line in out.splitlines()]
        assert f"added    {srv.url('/chips.xml')} (Chip Wire): 1 entry now" in lines
        assert f"added    {srv.url('/atom.xml')} (Atom Side): 1 entry now" in lines  # two levels deep
        assert any(line.startswith(f"added    {srv.url('/site/')} (Site Feed): a web page; added the feed it "
                                   f"links, {srv.url('/site/rss')} (1 entry now)") for line in lines), lines
        assert f"skipped  {srv.url('/chips.xml')} (Chips again): listed twice in the file" in lines
        assert f"skipped  {srv.url('/already.xml')} (Already): followed already" in lines
        assert f"failed   {srv.url('/gone.xml')}: HTTP 404" in lines
        assert any(line.startswith(f"failed   {srv.url('/plain')}: not a feed") for line in lines)
        assert "failed   file:///etc/passwd: refused: only http and https URLs are fetched, not 'file:'" in lines
        assert f"Imported {listed}: 3 added, 2 skipped, 3 failed." in out
        assert srv.hits("/already.xml") == 1 and srv.hits("/chips.xml") == 1  # skipped ones cost no request
        assert set(followed(newsbot.index)) == {srv.url(p) for p in ("/already.xml", "/chips.xml", "/atom.xml", "/site/rss")}

        exported = tmp_path / "out.opml"
        exported.write_text("old content")  # replaced whole
        rc, out, err = newsbot("feeds", "export", str(exported))
        assert rc == 0 and "Exported 4 feed(s)" in out
        root = ET.fromstring(exported.read_bytes())
        assert root.tag == "opml" and root.get("version") == "2.0" and root.find("head/title") is not None
        outlines = root.findall("body/outline")
        assert {(o.get("xmlUrl"), o.get("text"), o.get("type")) for o in outlines} == {
            (srv.url("/already.xml"), "Already", "rss"), (srv.url("/chips.xml"), "Chip Wire", "rss"),
            (srv.url("/atom.xml"), "Atom Side", "rss"), (srv.url("/site/rss"), "Site Feed", "rss")}

        requests_before = len(srv.requests)
        rc, out, err = newsbot("feeds", "import", str(exported))  # the round trip adds nothing new
        assert rc == 0 and "0 added, 4 skipped, 0 failed" in out, (out, err)
        assert len(srv.requests) == requests_before and len(followed(newsbot.index)) == 4

        rc, out, err = newsbot("feeds", "import", str(exported), "--json")
        assert rc == 0 and '"skipped": 4' in out


def test_opml_export_to_stdout_and_import_from_stdin(tmp_path: Path) -> None:
    """`-` on both sides, through real `newsbot` processes and a pipe."""
    index = tmp_path / "idx"
    State.for_index_dir(index).add_feed("https://news.example/rss", title="Bits & <Bytes> \x07")
    cli = [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(index)]
    exported = subprocess.run([*cli, "feeds", "export", "-"], cwd=REPO, capture_output=True, timeout=120)
    assert exported.returncode == 0 and exported.stderr == b""
    outline = ET.fromstring(exported.stdout).find("body/outline")
    assert outline is not None and outline.get("text") == "Bits & <Bytes> " and outline.get("xmlUrl") == (
        "https://news.example/rss")
    again = subprocess.run([*cli, "feeds", "import", "-"], input=exported.stdout, cwd=REPO, capture_output=True,
                           timeout=120)
    assert again.returncode == 0 and b"0 added, 1 skipped, 0 failed" in again.stdout


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><head/><body><outline text="&lol9;" xmlUrl="https://a.example/rss"/></body></opml>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><head/><body><outline text="&secret;" xmlUrl="https://a.example/rss"/></body></opml>
"""


@pytest.mark.parametrize(("content", "message"), [
    (BILLION_LAUGHS, "refused: the file declares XML entities or a DTD"),
    (EXTERNAL_ENTITY, "refused: the file declares XML entities or a DTD"),
    ('<opml version="2.0"><body><outline xmlUrl="https://a.example/rss"></body></opml>',
     "malformed OPML: mismatched tag: line 1, column"),
    ("", "malformed OPML: the file is empty"),
    ('<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "not OPML: the document's root element is <rss>"),
    ('<opml version="2.0"><head/></opml>', "malformed OPML: no <body> element"),
    ('<opml version="2.0"><head/><body><outline text="Tech"/></body></opml>', "no feeds in it (no <outline> has an xmlUrl)"),
])
def test_opml_import_refuses_bad_files_clearly(newsbot, tmp_path: Path, content: str, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "bad.opml"
    path.write_text(content, encoding="utf-8")
    started = time.monotonic()
    rc, out, err = newsbot("feeds", "import", str(path))
    assert time.monotonic() - started < 10  # an entity bomb is refused, not expanded
    assert rc == 2 and out == "" and message in err and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: ")
    assert followed(newsbot.index) == []


def test_opml_import_of_a_missing_file_and_export_to_a_missing_folder(newsbot, tmp_path: Path) -> None:  # noqa: ANN001
    rc, out, err = newsbot("feeds", "import", str(tmp_path / "nope.opml"))
    assert rc == 2 and "cannot read" in err and "No such file" in err
    rc, out, err = newsbot("feeds", "export", str(tmp_path / "no-such-dir" / "out.opml"))
    assert rc == 2 and "cannot write" in err and not (tmp_path / "no-such-dir").exists()
