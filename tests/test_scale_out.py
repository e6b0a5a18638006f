"""Two newsbot processes sharing one Milvus and one PostgreSQL, as two replicas would.

Milvus is Milvus Lite's server (`python -m milvus_lite server`) on 127.0.0.1; PostgreSQL is a throwaway
cluster started by `pg_fixtures`. Each "replica" has its own local index folder (vector cache, model
export), so everything they share goes through Milvus and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import CORPUS, REPO, write_article
from tests.http_fixtures import LocalServer, Response

pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install 'newsbot[milvus]')")
pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'newsbot[postgres]')")

pytestmark = [pytest.mark.slow, pytest.mark.milvus, pytest.mark.postgres]


def _newsbot(replica: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(replica), *args], cwd=REPO, capture_output=True,
        text=True, timeout=300, env={**os.environ, **env},
    )
    assert proc.returncode in ok, proc.stderr
    return proc


FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Grid Wire</title><link>http://x.test/</link>
<description>energy</description><item><title>Hallstatt grid battery opens</title><link>{link}</link>
<guid>hallstatt-battery</guid><pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>"""

PAGE = b"""<html><head><title>Hallstatt grid battery opens | Grid Wire</title>
<meta property="og:site_name" content="Grid Wire"></head><body><article><h1>Hallstatt grid battery opens</h1>
<p>A 300-megawatt-hour grid battery built from sodium-ion cells opened near Hallstatt on Monday, the
largest of its kind in Austria, its operator said.</p><p>The Hallstatt battery will shift solar output
from midday into the evening peak for about 60,000 homes.</p></article></body></html>"""


def test_two_processes_share_articles_and_only_one_polls_a_feed(
    tmp_path: Path, milvus_server: str, postgres_url: str
) -> None:
    env = {"NEWSBOT_STORE": "milvus", "NEWSBOT_MILVUS_URI": milvus_server, "NEWSBOT_DATABASE_URL": postgres_url,
           "NEWSBOT_ALLOW_PRIVATE_URLS": "true"}
    a, b = tmp_path / "replica-a", tmp_path / "replica-b"
    seed = [p for p in sorted(CORPUS.glob("0*.md"))[:3]]
    _newsbot(a, env, "build", *map(str, seed))

    # An article added through replica A is found by replica B.
    story = write_article(tmp_path / "new", "ruby.md", title="Ruby Telecom picks Nokia for Zwieselbrunn 6G trial",
                          body="Nokia will run a 6G radio trial for Ruby Telecom in Zwieselbrunn from March.",
                          source="Signal Desk", date="2026-11-20")
    _newsbot(a, env, "add", str(story))
    hits = json.loads(_newsbot(b, env, "search", "Zwieselbrunn 6G trial", "--json").stdout)
    assert hits and hits[0]["doc_id"] == "ruby" and hits[0]["source"] == "Signal Desk"
    stats = json.loads(_newsbot(b, env, "stats", "--json").stdout)
    assert stats["documents"] == 4 and "Milvus" in stats["index_dir"]

    with LocalServer() as web:
        def slow_page(_request: object) -> Response:
            time.sleep(4)  # keeps the first poller busy while the second one starts
            return Response(body=PAGE)

        web.respond("/hallstatt", slow_page)
        web.add("/feed.xml", FEED.replace(b"{link}", web.url("/hallstatt").encode()),
                content_type="application/rss+xml")
        _newsbot(a, env, "feeds", "add", web.url("/feed.xml"))
        assert web.url("/feed.xml") in _newsbot(b, env, "feeds", "list").stdout  # shared state
        polls_before = web.hits("/feed.xml")

        results: dict[str, dict[str, object]] = {}

        def update(name: str, replica: Path) -> None:
            done = _newsbot(replica, env, "update", "--json", ok=(0, 75))  # 75: another update was running
            results[name] = {**json.loads(done.stdout), "rc": done.returncode}

        first = threading.Thread(target=update, args=("a", a))
        first.start()
        time.sleep(2.5)  # A holds the feeds lease and is fetching the slow page
        update("b", b)
        first.join()

    assert results["a"]["new"] == 1 and results["a"]["busy"] is False, json.dumps(results["a"])
    assert results["a"]["rc"] == 0
    assert results["b"]["busy"] is True and results["b"]["new"] == 0 and results["b"]["rc"] == 75
    assert results["b"]["holder"]["host"] and results["b"]["holder"]["since"]  # who polls, since when
    assert web.hits("/feed.xml") - polls_before == 1, "the feed was polled by one process only"
    assert web.hits("/hallstatt") == 1
    hits = json.loads(_newsbot(b, env, "search", "Hallstatt sodium-ion grid battery", "--json").stdout)
    assert [h["doc_id"] for h in hits].count(hits[0]["doc_id"]) >= 1 and hits[0]["source"] == "Grid Wire"
