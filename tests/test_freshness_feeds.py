"""Feeds and URLs end to end: real HTTP servers on 127.0.0.1 serve RSS, Atom and article pages, and the
tests check what ends up in the index (real fetching, parsing, embedding, SQLite and FAISS)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from newsbot.bot.engine import Engine
from newsbot.bot.feed_updates import FeedProblem, UpdateReport
from newsbot.bot.freshness import poll_feeds_forever
from newsbot.bot.state import State
from newsbot.index.documents import id_from_url
from tests.helpers import REPO, RSS_TYPE, SHORT_STORY, TIDEWELL, make_settings, page, rss, syndicate
from tests.http_fixtures import LocalServer, Response

ATOM_TYPE = "application/atom+xml; charset=utf-8"


def atom(title: str, entries: list[tuple[str, str, str, str]]) -> bytes:
    """Atom with (id, title, link, summary) entries."""
    body = "".join(
        f'<entry><id>{i}</id><title>{t}</title><link rel="alternate" href="{link}"/>'
        f"<updated>2025-03-15T10:00:00Z</updated><summary>{summary}</summary></entry>"
        for i, t, link, summary in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:feed</id><updated>2025-03-15T10:00:00Z</updated>{body}</feed>"
    ).encode()


GLIMMER = """Zeta Quantum unveiled a photonic processor called Glimmerstone on Monday, saying the chip keeps its
qubits coherent at room temperature for ninety minutes.

The company said Glimmerstone would ship to research laboratories in the autumn and to cloud customers
next year, priced per hour of processor time."""
GLIMMER_V2 = GLIMMER.replace("ninety minutes", "three hours, after a firmware update on Thursday")
VORPALITE = ("Miners in Nevada reported a deposit of vorpalite, a lithium-bearing clay, that geologists say could "
             "supply battery makers for decades if permits are granted next spring.")
BYTEQUILL = ("Bytequill, a start-up making handwriting tablets, raised forty million dollars from schools and "
             "publishers who want digital notebooks without social media or games.")
def settings(root: Path, **extra: object):  # noqa: ANN201
    return make_settings(root, allow_private_urls=True, fetch_timeout=3.0, fetch_max_bytes=50_000, **extra)


class FeedSite:
    """A news site on 127.0.0.1: an RSS feed (with validators), an Atom feed behind a redirect chain,
    a broken feed, and the article pages the entries link to."""

    def __init__(self, srv: LocalServer) -> None:
        self.srv = srv
        srv.add("/news/glimmer", page("Zeta Quantum unveils Glimmerstone", GLIMMER, site="Qubit Times"))
        srv.add("/news/huge", page("Vorpalite find", VORPALITE + " padding" * 20_000))  # over the size cap
        srv.add("/news/acme", page("Acme Robotics raises $120M", SHORT_STORY, site="TechDaily"))
        srv.add("/news/bytequill", status=500)
        srv.add("/news/acme-wire", page("Acme lands $120 million", syndicate(SHORT_STORY)))
        self.rss_items = [
            ("g1", "Zeta Quantum unveils Glimmerstone", srv.url("/news/glimmer"), "Short teaser about Zeta."),
            ("g2", "Vorpalite find in Nevada", srv.url("/news/huge"), VORPALITE),
            ("g3", "Acme Robotics raises $120M", srv.url("/news/acme"), "Acme teaser."),
        ]
        self.rss = srv.resource("/rss.xml", rss("Chip Wire", self.rss_items), content_type=RSS_TYPE)
        srv.redirect("/syndicated/atom", "/syndicated/atom-moved", status=301)  # a redirect chain
        srv.redirect("/syndicated/atom-moved", "/atom.xml", status=302)
        self.atom = srv.resource("/atom.xml", atom("Atom Daily", [
            ("urn:1", "Bytequill raises $40M", srv.url("/news/bytequill"), BYTEQUILL),
            ("urn:2", "Acme lands $120 million", srv.url("/news/acme-wire"), "Wire copy."),
        ]), content_type=ATOM_TYPE)
        srv.add("/zz-broken.xml", b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title><item>',
                content_type=RSS_TYPE)

    def register(self, state: State) -> None:
        """Feeds are polled in `State.feeds()` order (when added, then URL): RSS, Atom, broken."""
        for path in ("/rss.xml", "/syndicated/atom", "/zz-broken.xml"):
            state.add_feed(self.srv.url(path))

    def publish_second_edition(self) -> None:
        """Entry g1 is corrected (new text on its page), g4 is new and its link goes through redirects."""
        self.srv.add("/news/glimmer", page("Zeta Quantum unveils Glimmerstone", GLIMMER_V2, site="Qubit Times"))
        self.srv.redirect("/r/tidewell", "/r/tidewell-2", status=302)
        self.srv.redirect("/r/tidewell-2", "/news/tidewell", status=301)
        self.srv.add("/news/tidewell", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        items = [self.rss_items[0][:3] + ("Corrected: now three hours.",), *self.rss_items[1:],
                 ("g4", "Tidewell switches on tidal array", self.srv.url("/r/tidewell"), "Tidal teaser.")]
        self.rss.update(rss("Chip Wire", items))


def top_doc(engine: Engine, query: str) -> str:
    hits = engine.search(query)
    return hits[0].doc_id if hits else ""


def test_feeds_end_to_end(tmp_path: Path) -> None:
    with LocalServer() as srv:
        site = FeedSite(srv)
        engine = Engine(settings(tmp_path / "idx"))
        site.register(engine.state)

        first = engine.update_feeds()
        by_url = {f.url: f for f in first.feeds}
        rss_status, atom_status, broken = (by_url[srv.url(p)] for p in ("/rss.xml", "/syndicated/atom", "/zz-broken.xml"))
        assert (rss_status.new, rss_status.skipped, rss_status.failed) == (3, 0, 0)
        assert (atom_status.new, atom_status.skipped, atom_status.failed) == (1, 1, 0)  # the wire copy: skipped
        assert broken.status == "failed" and "malformed feed" in broken.error
        assert (first.new, first.updated, first.skipped, first.failed) == (4, 0, 1, 1) and not first.all_failed
        assert engine.stats().documents == 4  # the index did not exist before: the first update created it
        glimmer, huge, acme = (id_from_url(srv.url(p)) for p in ("/news/glimmer", "/news/huge", "/news/acme"))
        assert top_doc(engine, "Glimmerstone photonic processor") == glimmer
        assert engine.document(glimmer)[0].source == "Qubit Times"
        assert top_doc(engine, "vorpalite lithium clay Nevada") == huge  # oversized page: the feed's text
        assert engine.document(huge)[0].source == "Chip Wire"
        assert top_doc(engine, "Bytequill handwriting tablets") == id_from_url(srv.url("/news/bytequill"))
        assert engine.document(acme)[0].also_reported_by == ("Atom Daily",)  # syndicated copy merged
        pages_fetched = srv.hits("/news/glimmer")

        second = engine.update_feeds()  # nothing changed: one conditional request per feed, answered 304
        assert [f.status for f in second.feeds] == ["not modified", "not modified", "failed"]
        assert (second.new, second.updated, second.skipped, second.failed) == (0, 0, 0, 1)
        assert site.rss.not_modified_count == 1 and site.atom.not_modified_count == 1
        assert srv.hits("/news/glimmer") == pages_fetched and second.index is None

        site.publish_second_edition()
        third = engine.update_feeds()
        rss_status = third.feeds[0]
        assert (rss_status.new, rss_status.updated, rss_status.skipped) == (1, 1, 2), rss_status
        assert top_doc(engine, "Tidewell tidal turbine array Scotland") == id_from_url(srv.url("/r/tidewell"))
        assert top_doc(engine, "Glimmerstone firmware update three hours") == glimmer
        assert engine.reader().keyword_search(["ninety"], 10) == []  # the corrected text replaced the old one
        assert engine.stats().documents == 5

        listed = {f.url: f for f in engine.feeds()}
        assert listed[srv.url("/rss.xml")].entries_indexed == 5 and listed[srv.url("/rss.xml")].title == "Chip Wire"
        assert listed[srv.url("/zz-broken.xml")].last_status.startswith("failed: malformed feed")


def test_failed_entry_is_retried_next_poll(tmp_path: Path) -> None:
    with LocalServer() as srv:
        srv.sequence("/news/tidewell", [Response(503), Response(200, page("Tidewell array", TIDEWELL).encode())])
        feed = srv.resource("/rss.xml", rss("Grid Watch", [
            ("t1", "", srv.url("/news/tidewell"), ""),  # no text in the feed: the page is needed
        ]).replace(b"<description>.</description>", b""), content_type=RSS_TYPE)
        engine = Engine(settings(tmp_path / "idx"))
        engine.state.add_feed(srv.url("/rss.xml"))
        first = engine.update_feeds()
        assert first.failed == 1 and "HTTP 503" in first.feeds[0].errors[0] and first.new == 0
        second = engine.update_feeds()  # the validators were not kept, so the feed is read again
        assert feed.not_modified_count == 0 and second.new == 1 and second.failed == 0
        assert top_doc(engine, "Tidewell tidal turbine array") == id_from_url(srv.url("/news/tidewell"))
        assert engine.update_feeds().feeds[0].status == "not modified"


def test_add_feed_checks_the_feed(tmp_path: Path) -> None:
    with LocalServer() as srv:
        FeedSite(srv)
        srv.add("/not-a-feed", page("Just a page", GLIMMER))
        engine = Engine(settings(tmp_path / "idx"))
        with pytest.raises(FeedProblem, match="not a feed"):
            engine.add_feed(srv.url("/not-a-feed"))
        with pytest.raises(FeedProblem, match="HTTP 404"):
            engine.add_feed(srv.url("/nowhere.xml"))
        check = engine.add_feed(srv.url("/syndicated/atom"))
        assert check.added and check.title == "Atom Daily" and check.entries == 2 and "Atom Daily" in str(check)
        assert not engine.add_feed(srv.url("/syndicated/atom")).added
        assert [f.url for f in engine.feeds()] == [srv.url("/syndicated/atom")]
        assert engine.remove_feed(srv.url("/syndicated/atom")) and not engine.remove_feed(srv.url("/syndicated/atom"))
        assert engine.feeds() == []
        assert not engine.has_index()  # checking a feed indexes nothing


def test_hostile_pages_fail_alone(tmp_path: Path) -> None:
    with LocalServer() as srv, LocalServer(host="127.0.0.2") as other:
        srv.add("/good", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        srv.add("/huge", page("Huge", GLIMMER + " x" * 40_000))
        srv.add("/huge-chunked", page("Huge", GLIMMER + " x" * 40_000), content_length=False, chunked=True)
        srv.add("/binary", bytes(range(256)) * 50, content_type="image/png")
        srv.add("/binary-as-html", b"\x00\xff\x10" * 3000)
        srv.redirect("/loop", "/loop")
        srv.drip("/drip", page("Slow", GLIMMER).encode(), interval=0.5)
        srv.redirect("/to-other-host", other.url("/good"))
        other.add("/good", page("Other", GLIMMER))
        engine = Engine(make_settings(tmp_path / "idx", fetch_timeout=1.5, fetch_max_bytes=50_000,
                                      fetch_allowed_networks="127.0.0.1/32"))
        urls = {name: srv.url(f"/{name}") for name in
                ("good", "huge", "huge-chunked", "binary", "binary-as-html", "loop", "drip", "to-other-host")}
        started = time.monotonic()
        report = engine.add([*urls.values(), "file:///etc/passwd", "ftp://127.0.0.1/x"])
        assert time.monotonic() - started < 20
        assert report.added == 1 and top_doc(engine, "Tidewell tidal array") == id_from_url(urls["good"])
        reasons = {e.path: e.reason for e in report.errors}
        assert "too large" in reasons[urls["huge"]] and "too large" in reasons[urls["huge-chunked"]]
        assert "not an HTML/XML page: image/png" in reasons[urls["binary"]]
        assert "no usable main text" in reasons[urls["binary-as-html"]]
        assert "too many redirects" in reasons[urls["loop"]]
        assert "timed out after 1.5 s" in reasons[urls["drip"]]
        assert "refused: 127.0.0.2 is a loopback address" in reasons[urls["to-other-host"]]
        assert "only http and https" in reasons["file:///etc/passwd"]
        assert "only http and https" in reasons["ftp://127.0.0.1/x"]
        assert other.hits() == 0  # the private address was refused before connecting


def test_private_addresses_are_refused_by_default(tmp_path: Path) -> None:
    with LocalServer() as srv:
        srv.add("/good", page("Tidewell switches on tidal array", TIDEWELL))
        srv.add("/feed.xml", rss("Grid Watch", []), content_type=RSS_TYPE)
        engine = Engine(make_settings(tmp_path / "idx"))  # defaults: no private addresses
        report = engine.add([srv.url("/good"), srv.url("/good", host="localhost")])
        assert report.added == 0 and len(report.errors) == 2
        assert all("refused" in e.reason and "loopback" in e.reason for e in report.errors)
        assert "the address of localhost" in report.errors[1].reason  # judged after name resolution
        with pytest.raises(FeedProblem, match="refused"):
            engine.add_feed(srv.url("/feed.xml"))
        assert srv.hits() == 0 and not engine.has_index()


def _cli(index: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSBOT_ALLOW_PRIVATE_URLS": "true", "NEWSBOT_FETCH_TIMEOUT": "3"}
    return subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(index), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_feeds_and_cron_friendly_update(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    with LocalServer() as srv:
        FeedSite(srv)
        bad = _cli(index, "feeds", "add", srv.url("/zz-broken.xml"))
        assert bad.returncode == 1 and "not added" in bad.stderr and "malformed feed" in bad.stderr
        good = _cli(index, "feeds", "add", srv.url("/rss.xml"))
        assert good.returncode == 0 and "Following Chip Wire" in good.stdout
        listed = _cli(index, "feeds", "list")
        assert listed.returncode == 0 and srv.url("/rss.xml") in listed.stdout and "never" in listed.stdout

        quiet = _cli(index, "update")  # not a terminal and nothing failed: silent
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
        assert top_doc(Engine(settings(index)), "Glimmerstone photonic processor") == id_from_url(
            srv.url("/news/glimmer"))

        State.for_index_dir(index).add_feed(srv.url("/zz-broken.xml"))  # registered before it broke, say
        partly = _cli(index, "update")
        assert partly.returncode == 0 and partly.stdout == ""
        assert "zz-broken.xml: failed: malformed feed" in partly.stderr and "0 new" in partly.stderr

        assert _cli(index, "feeds", "remove", srv.url("/rss.xml")).returncode == 0
        assert _cli(index, "feeds", "remove", srv.url("/rss.xml")).returncode == 1
        failed = _cli(index, "update")  # every feed failed: non-zero for cron
        assert failed.returncode == 1 and "1 failed" in failed.stderr
        as_json = _cli(index, "update", "--json")
        assert as_json.returncode == 1 and '"failed": 1' in as_json.stdout


@pytest.mark.slow
def test_cli_add_and_remove(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    with LocalServer() as srv:
        srv.add("/good", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        added = _cli(index, "add", srv.url("/good"), srv.url("/missing"))
        assert added.returncode == 0 and "new" in added.stdout and "HTTP 404" in added.stderr
        doc_id = id_from_url(srv.url("/good"))
        assert doc_id in added.stdout
        nothing = _cli(index, "add", srv.url("/missing"))
        assert nothing.returncode == 1
    removed = _cli(index, "remove", srv.url("/good"))  # by URL; ids work too
    assert removed.returncode == 0 and "Removed 1" in removed.stdout
    assert _cli(index, "remove", doc_id).returncode == 1


class RecordingEngine(Engine):
    """An Engine that notes which thread ran each feed update."""

    threads: list[threading.Thread]

    def update_feeds(self, progress=None, on_wait=None, wait=True) -> UpdateReport:  # noqa: ANN001
        self.threads.append(threading.current_thread())
        return super().update_feeds(progress, on_wait, wait)


@pytest.mark.slow
def test_poll_feeds_forever_runs_in_a_worker_thread(tmp_path: Path) -> None:
    with LocalServer() as srv:
        site = FeedSite(srv)
        engine = RecordingEngine(settings(tmp_path / "idx"))
        engine.threads = []
        engine.state.add_feed(srv.url("/rss.xml"))
        reports: list[UpdateReport] = []
        gaps: list[float] = []

        async def main() -> None:
            stop = asyncio.Event()
            loop_thread = threading.current_thread()

            async def on_report(report: UpdateReport) -> None:
                reports.append(report)
                if len(reports) == 1:
                    site.publish_second_edition()
                if len(reports) == 3:
                    stop.set()

            async def ticker() -> None:
                last = time.monotonic()
                while not stop.is_set():
                    await asyncio.sleep(0.02)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.create_task(ticker())
            await asyncio.wait_for(poll_feeds_forever(engine, 0.01, on_report, stop=stop), timeout=240)
            await tick
            assert all(t is not loop_thread for t in engine.threads)

        asyncio.run(main())
        assert [(r.new, r.updated) for r in reports] == [(3, 0), (1, 1), (0, 0)]
        assert reports[2].feeds[0].status == "not modified"
        assert len(engine.threads) == 3 and max(gaps) < 1.0  # the loop kept running while the polls worked
        assert top_doc(engine, "Tidewell tidal turbine array") == id_from_url(srv.url("/r/tidewell"))


def test_poll_feeds_forever_survives_failing_polls(tmp_path: Path) -> None:
    with LocalServer() as srv:
        FeedSite(srv)
        engine = Engine(settings(tmp_path / "idx", embedding_model="no-such-model"))
        engine.state.add_feed(srv.url("/rss.xml"))
        errors: list[BaseException] = []

        async def main() -> None:
            stop = asyncio.Event()

            def on_error(exc: BaseException) -> None:
                errors.append(exc)
                if len(errors) == 2:
                    stop.set()

            await asyncio.wait_for(poll_feeds_forever(engine, 0.005, on_error=on_error, stop=stop), timeout=60)

        asyncio.run(main())
        assert len(errors) == 2 and "no-such-model" in str(errors[0])
        assert asyncio.run(asyncio.wait_for(poll_feeds_forever(engine, 0), timeout=1)) is None  # 0 = off
