"""Issue #14, data loss: one test per numbered point (1-5, 7). Hostile files and feeds are generated here
and served from 127.0.0.1; the index, the state database, the model and the processes are real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from newsbot.bot.cli import main
from newsbot.bot.engine import Engine
from newsbot.bot.state import State
from newsbot.index.documents import id_from_url
from tests.helpers import (
    HARBOR,
    LANTERN,
    ORCHARD,
    QUBIT,
    REPO,
    RSS_TYPE,
    TIDEWELL,
    damage,
    kill,
    make_settings,
    page,
    rss,
    small_index,
    spawn,
    write_article,
)
from tests.http_fixtures import LocalServer


def settings(root: Path, **extra: object):  # noqa: ANN201
    return make_settings(root, allow_private_urls=True, fetch_timeout=3.0, **extra)


def ids(engine: Engine) -> set[str]:
    engine._checked_at = 0.0  # look at the live index now, not at the version seen up to 0.5 s ago
    return {d.id for d in engine.reader().documents()}


def cli(capsys, *args: str) -> tuple[int, str, str]:  # noqa: ANN001
    """`newsbot ARGS` in this process (the model stays loaded): exit status, stdout, stderr."""
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


# ------------------------------------------------------------------------------------------ point 1


def test_rebuild_keeps_articles_added_from_files(article_writer, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    engine = small_index(article_writer, tmp_path)  # nvidia, amd, intel built from articles/
    today = tmp_path / "today"
    write_article(today, "zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)
    tidal = write_article(today, "tidal.md", title="Tidewell switches on tidal array", body=TIDEWELL)
    harbor = write_article(today, "harbor.md", title="Harbor cranes go electric", body=HARBOR)
    added = engine.add([today])
    assert added.added == 3 and not added.errors
    tidal.write_text(tidal.read_text().replace("sixteen turbines", "twenty turbines"), encoding="utf-8")
    harbor.unlink()  # its text is still in the index; a rebuild must not lose it

    rc, out, err = cli(capsys, "--index-dir", str(tmp_path / "idx"), "build", str(article_writer.folder))
    assert rc == 0, err
    assert ids(engine) == {"nvidia", "amd", "intel", "zeta", "tidal", "harbor"}
    assert "twenty turbines" in engine.document("tidal")[0].body  # re-read from its file
    assert engine.search("battery-electric cranes container terminals")[0].doc_id == "harbor"
    assert "kept 2 added files (re-read from disk)" in err
    assert "kept 1 added file (file gone: from its stored text): harbor" in err
    assert "kept 3 added files" in out and "6 articles" in out

    # Told to drop them: they go, and the output says why.
    rc, out, err = cli(capsys, "--index-dir", str(tmp_path / "idx"), "build", "--drop-added",
                       str(article_writer.folder))
    assert rc == 0 and ids(engine) == {"nvidia", "amd", "intel"}
    assert "dropped 3 added files (--drop-added): harbor, tidal, zeta" in err


# ------------------------------------------------------------------------------------------ point 2


@pytest.mark.slow
def test_rebuild_from_a_damaged_index_keeps_fetched_articles(article_writer, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    small_index(article_writer, tmp_path)
    root = tmp_path / "idx"
    engine = Engine(settings(root))
    with LocalServer() as srv:
        srv.add("/news/zeta", page("Zeta Quantum unveils Glimmerstone", QUBIT, site="Qubit Times"))
        srv.add("/news/tidal", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        srv.add("/news/harbor", page("Harbor cranes go electric", HARBOR, site="Port News"))
        srv.resource("/rss.xml", rss("Grid Watch", [("t1", "Tidewell", srv.url("/news/tidal"), "x"),
                                                    ("h1", "Harbor", srv.url("/news/harbor"), "y")]),
                     content_type=RSS_TYPE)
        engine.add_feed(srv.url("/rss.xml"))
        assert engine.update_feeds().new == 2
        assert engine.add([srv.url("/news/zeta")]).added == 1
        fetched = {id_from_url(srv.url(p)) for p in ("/news/zeta", "/news/tidal", "/news/harbor")}
        assert fetched <= ids(engine) and len(ids(engine)) == 6

        damage(root)
        rc, out, err = cli(capsys, "--index-dir", str(root), "build", str(article_writer.folder))
        assert rc == 0, err
        after = Engine(settings(root))
        assert ids(after) == {"nvidia", "amd", "intel", *fetched}
        assert "kept 3 fetched articles" in err and "from the article store" in err
        assert after.search("Glimmerstone photonic processor")[0].doc_id == id_from_url(srv.url("/news/zeta"))
        assert after.feeds()[0].entries_indexed == 2  # still true
        again = after.update_feeds()  # the feed is unchanged: nothing to fetch, nothing missing
        assert (again.new, again.failed) == (0, 0) and len(ids(after)) == 6


def test_damaged_index_without_stored_copies_resets_the_feed_state(article_writer, tmp_path: Path,
                                                                    capsys) -> None:  # noqa: ANN001
    """An index older than the article store (or a lost state database): the fetched articles cannot be
    kept, so their feed entries are forgotten and the next update fetches them again; the output says so."""
    small_index(article_writer, tmp_path)
    root = tmp_path / "idx"
    engine = Engine(settings(root))
    with LocalServer() as srv:
        srv.add("/news/tidal", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        srv.add("/news/harbor", page("Harbor cranes go electric", HARBOR, site="Port News"))
        feed = srv.resource("/rss.xml", rss("Grid Watch", [("t1", "Tidewell", srv.url("/news/tidal"), "x"),
                                                           ("h1", "Harbor", srv.url("/news/harbor"), "y")]),
                            content_type=RSS_TYPE)
        engine.add_feed(srv.url("/rss.xml"))
        assert engine.update_feeds().new == 2
        State.for_index_dir(root)._db.execute("DELETE FROM kept_articles")  # as before this version
        damage(root)
        rc, out, err = cli(capsys, "--index-dir", str(root), "build", str(article_writer.folder))
        assert rc == 0, err
        assert "2 feed entries are not in the rebuilt index" in err and "next `newsbot update`" in err
        after = Engine(settings(root))
        assert after.feeds()[0].entries_indexed == 0 and after.feeds()[0].etag is None
        again = after.update_feeds()
        assert again.new == 2 and feed.not_modified_count == 0
        assert len(ids(after)) == 5


# ------------------------------------------------------------------------------------------ point 3


def test_file_names_that_slugify_alike_keep_their_own_articles(article_writer, tmp_path: Path) -> None:  # noqa: ANN001
    engine = small_index(article_writer, tmp_path)
    news = tmp_path / "cn"
    write_article(news, "新闻.md", title="Orchard Silicon opens Dresden plant", body=ORCHARD)
    write_article(news, "报道.md", title="Lantern Mobile cuts folding phone price", body=LANTERN)
    first = engine.add([news / "新闻.md"])
    second = engine.add([news / "报道.md"])
    assert list(first.outcomes.values()) == ["new"] and list(second.outcomes.values()) == ["new"]
    (orchard_id,), (lantern_id,) = first.stored_as.values(), second.stored_as.values()
    assert orchard_id != lantern_id and len(ids(engine)) == 5
    assert engine.search("Dresden wafer plant heat pumps")[0].doc_id == orchard_id
    assert engine.search("folding phone price Brazil")[0].doc_id == lantern_id
    again = engine.add([news])  # both at once, the same ids as before
    assert sorted(again.outcomes.values()) == ["unchanged", "unchanged"]

    # Same file name in two folders: the second file does not replace the first one's article.
    write_article(tmp_path / "a", "brief.md", title="Harbor cranes go electric", body=HARBOR)
    write_article(tmp_path / "b", "brief.md", title="Tidewell switches on tidal array", body=TIDEWELL)
    assert engine.add([tmp_path / "a" / "brief.md"]).outcomes == {"brief": "new"}
    other = engine.add([tmp_path / "b" / "brief.md"])
    assert list(other.outcomes.values()) == ["new"] and "brief" not in other.stored_as.values()
    assert any("brief" in note and "a/brief.md" in note for note in other.notes), other.notes
    assert "cranes" in engine.document("brief")[0].body
    # An explicit id that belongs to another file's article is refused, not overwritten.
    write_article(tmp_path / "c", "x.md", title="Other", body=LANTERN + " Again.", extra="id: brief\n")
    refused = engine.add([tmp_path / "c" / "x.md"])
    assert not refused.outcomes and "already used by" in str(refused.errors[0])
    assert "cranes" in engine.document("brief")[0].body


# ------------------------------------------------------------------------------------------ point 4


def test_a_lone_surrogate_record_does_not_stop_the_build(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    folder = tmp_path / "records"
    folder.mkdir()
    good = [{"id": "orchard", "title": "Orchard Silicon opens Dresden plant", "body": ORCHARD},
            {"id": "lantern", "title": "Lantern Mobile cuts folding phone price", "body": LANTERN}]
    lines = [json.dumps(good[0]), '{"id": "bad", "title": "Bad \\ud800 text", "body": "Harbor \\udfff ' + HARBOR
             + '"}', json.dumps(good[1])]
    (folder / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "one.json").write_text('{"id": "tidal", "title": "Tidal \\ud83d", "body": ' + json.dumps(TIDEWELL)
                                     + "}", encoding="utf-8")
    rc, out, err = cli(capsys, "--index-dir", str(tmp_path / "idx"), "build", str(folder))
    assert rc == 0, err
    engine = Engine(make_settings(tmp_path / "idx"))
    assert ids(engine) == {"orchard", "lantern", "bad", "tidal"}
    doc = engine.document("bad")[0]
    assert "\ufffd" in doc.title and doc.body.startswith("Harbor \ufffd")
    assert "repaired" in err and "feed.jsonl:2" in err
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "zeta", "title": "Zeta \\udc00", "body": ' + json.dumps(QUBIT) + "}\n", encoding="utf-8")
    assert engine.add([more]).outcomes == {"zeta": "new"}


# ------------------------------------------------------------------------------------------ point 5


def hostile_rss(srv: LocalServer) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Hostile &#xD800; Wire</title>'
        f"<item><title>Tidewell switches on tidal array</title><link>{srv.url('/news/tidal')}</link>"
        "<guid>t1</guid><description>Tidal.</description></item>"
        "<item><title>Broken &#xD800; headline &#x110000;</title><guid>b1</guid>"
        f"<description>Harbor cranes &#55296; {HARBOR}</description>"
        "<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'><![CDATA[<p>Harbor cranes "
        f"&#xDC00; {HARBOR}</p>]]></content:encoded></item></channel></rss>"
    ).encode()


def _cli(index: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSBOT_ALLOW_PRIVATE_URLS": "true", "NEWSBOT_FETCH_TIMEOUT": "3"}
    return subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(index), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_one_hostile_feed_does_not_stop_the_others(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    with LocalServer() as srv:
        srv.add("/news/tidal", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        srv.add("/news/zeta", page("Zeta Quantum unveils Glimmerstone", QUBIT, site="Qubit Times"))
        srv.add("/hostile.xml", hostile_rss(srv), content_type=RSS_TYPE)
        srv.resource("/good.xml", rss("Qubit Times", [("z1", "Zeta", srv.url("/news/zeta"), "z")]),
                     content_type=RSS_TYPE)
        added = _cli(root, "feeds", "add", srv.url("/hostile.xml"))
        assert "Traceback" not in added.stderr, added.stderr
        assert added.returncode == 0, added.stderr
        assert _cli(root, "feeds", "add", srv.url("/good.xml")).returncode == 0
        update = _cli(root, "update")
        assert "Traceback" not in update.stderr and update.returncode == 0, update.stderr
        engine = Engine(settings(root))
        assert {id_from_url(srv.url("/news/zeta")), id_from_url(srv.url("/news/tidal"))} <= ids(engine)
        broken = [d for d in engine.reader().documents() if "cranes" in d.body]
        assert broken and "\ud800" not in broken[0].title  # repaired, not lost
        listed = _cli(root, "feeds", "list")
        assert "2 new" in listed.stdout and "1 new" in listed.stdout


# ------------------------------------------------------------------------------------------ point 7


@pytest.mark.slow
def test_a_killed_update_does_not_block_the_next_one(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    env = {"NEWSBOT_ALLOW_PRIVATE_URLS": "1"}
    with LocalServer() as srv:
        srv.add("/news/tidal", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        srv.resource("/rss.xml", rss("Grid Watch", [("t1", "Tidewell", srv.url("/news/tidal"), "x")]),
                     content_type=RSS_TYPE)
        State.for_index_dir(root).add_feed(srv.url("/rss.xml"))
        kill(spawn(["--index-dir", str(root), "update"], "feeds-before-state", env_extra=env))
        rerun = _cli(root, "update", "--json")  # at once, well within the dead holder's lease time
        assert rerun.returncode == 0, rerun.stderr
        report = json.loads(rerun.stdout)
        assert report["busy"] is False and report["skipped"] == 1  # it polled (the article was committed)

        # A live holder: the next run says who holds it and since when, and exits non-zero (cron mails it).
        holder = spawn(["--index-dir", str(root), "update"], "feeds-before-state", env_extra=env)
        try:
            busy = _cli(root, "update")
            assert busy.returncode != 0
            assert "another update is running" in busy.stderr
            assert f"pid {holder.pid} on {socket.gethostname()}" in busy.stderr and "since" in busy.stderr
            as_json = _cli(root, "update", "--json")
            data = json.loads(as_json.stdout)
            assert as_json.returncode != 0 and data["busy"] is True and data["holder"]["pid"] == holder.pid
        finally:
            kill(holder)


def test_discord_reindex_says_what_it_kept(article_writer, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.helpers import bot_factory, ready
    from tests.standin_fixtures import run_standin

    small_index(article_writer, tmp_path)
    extra = write_article(tmp_path / "today", "zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)

    async def scenario(standin, bot) -> None:  # noqa: ANN001
        await ready(bot)
        assert bot.engine.add([extra]).added == 1
        rec = await standin.slash_command("reindex", {}, user_id=standin.admin_id, channel_id=standin.general_id)
        [status] = await standin.wait_for_response(rec.id, kind="followup", timeout=30)

        def finished() -> dict | None:
            msg = standin.get_message(int(status["message"]["id"]))
            return msg if msg and msg["content"].startswith("Rebuilt") else None

        final = await standin.wait_for(finished, timeout=120)
        assert "4 articles" in final["content"] and "kept 1 added file" in final["content"]
        assert "kept 1 added file (re-read from disk): zeta" in final["content"]
        assert bot.engine.document("zeta") is not None

    run_standin(scenario, bot_factory=bot_factory(tmp_path / "idx", corpus=str(article_writer.folder)), timeout=150)


@pytest.mark.slow
@pytest.mark.milvus
def test_rebuilds_keep_added_and_fetched_articles_on_the_milvus_store(article_writer, tmp_path: Path) -> None:  # noqa: ANN001
    """Points 1 and 2 on the other store backend: the article store is in the state database, so it works
    the same whatever holds the passages; here the Milvus store's own SQL database is damaged."""
    import pytest

    for module in ("pymilvus", "milvus_lite", "snowballstemmer"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install 'newsbot[milvus]')")
    for i, name in enumerate(["Nvidia", "AMD"]):
        article_writer(f"{name.lower()}.md", title=f"{name} posts record revenue", source="Chip Wire",
                       body=f"{name} reported record quarterly revenue of {10 + i} billion dollars on Tuesday.")
    root = tmp_path / "idx"
    engine = Engine(settings(root, store="milvus"))
    engine.build([article_writer.folder])
    zeta = write_article(tmp_path / "today", "zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)
    with LocalServer() as srv:
        srv.add("/news/tidal", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        assert engine.add([zeta, srv.url("/news/tidal")]).added == 2
    tidal = id_from_url(srv.url("/news/tidal"))
    expected = {"nvidia", "amd", "zeta", tidal}
    assert ids(engine) == expected
    rebuilt = engine.build([article_writer.folder])
    assert ids(engine) == expected and rebuilt.kept == {"reread": ["zeta"], "fetched": [tidal]}
    engine.backend.db.close()
    (root / "milvus-store.sqlite").write_bytes(b"")  # the Milvus store's article rows are gone
    fresh = Engine(settings(root, store="milvus"))
    recovered = fresh.build([article_writer.folder])
    assert ids(fresh) == expected and recovered.kept == {"reread": ["zeta"], "fetched-stored": [tidal]}
