"""`bot.state.State` on both engines: SQLite (a file) and PostgreSQL (a throwaway server on 127.0.0.1).

Every test runs against both; the PostgreSQL runs are skipped, with the reason, where the server
binaries or psycopg are missing (see tests/pg_fixtures.py). Leases are checked with real processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsbot.bot.state import State
from newsbot.index.store.sql import Database, to_postgres
from tests.helpers import REPO, make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a State lives: an SQLite file path or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def test_placeholders_are_translated_outside_literals() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE x = ? AND y LIKE 'a%' AND z = ? -- 5 % 2"
    assert to_postgres(sql) == "SELECT '?', \"a?\" FROM t WHERE x = %s AND y LIKE 'a%%' AND z = %s -- 5 %% 2"
    assert to_postgres("CREATE TABLE t (b BLOB, r REAL NOT NULL)") == (
        "CREATE TABLE t (b BYTEA, r DOUBLE PRECISION NOT NULL)"
    )


def test_feeds_answers_feedback_and_turns(target: str) -> None:
    state = State(target)
    assert state.backend == ("postgresql" if target.startswith("postgresql://") else "sqlite")
    assert state.add_feed("https://a.example/feed", added_by="u1", title="A") is True
    assert state.add_feed("https://a.example/feed") is False
    state.add_feed("https://b.example/rss")
    state.record_poll("https://a.example/feed", status="ok", etag='"e1"', indexed=3)
    state.record_poll("https://a.example/feed", status="ok again", indexed=2)
    feed = state.feed("https://a.example/feed")
    assert feed is not None and feed.etag == '"e1"' and feed.entries_indexed == 5 and feed.title == "A"
    assert feed.last_status == "ok again" and feed.last_polled_at
    state.mark_seen("https://a.example/feed", [("e1", "doc-1", "fp1"), ("e2", "doc-2", "fp2")])
    state.mark_seen("https://a.example/feed", [("e1", "doc-1", "fp1b")])
    state.mark_entries("https://a.example/feed", [("e2", "other"), ("e3", "doc-3")])
    assert state.seen_fingerprints("https://a.example/feed") == {"e1": "fp1b", "e2": "fp2", "e3": ""}
    assert state.seen_entries("https://a.example/feed") == {"e1", "e2", "e3"}
    assert state.remove_feed("https://a.example/feed") is True and state.remove_feed("https://a.example/feed") is False
    assert [f.url for f in state.feeds()] == ["https://b.example/rss"]
    assert state.seen_entries("https://a.example/feed") == set()

    state.record_answer("ans-1", question="q?", text="a [1]", citations=["doc-1"], found=True, user_id="u1")
    state.record_answer("ans-1", question="dup", text="ignored", citations=[], found=False)
    state.record_feedback("ans-1", "u1", 1)
    state.record_feedback("ans-1", "u2", -1)
    state.record_feedback("ans-1", "u2", 1)  # a second vote replaces the first
    state.record_feedback("ans-2", "u3", -1)
    assert (state.feedback().up, state.feedback().down) == (2, 1)
    assert (state.feedback("ans-1").up, state.feedback("ans-1").down) == (2, 0)
    assert (state.feedback("nothing").up, state.feedback("nothing").down) == (0, 0)
    assert sorted((r[0], r[1], r[2]) for r in state.feedback_rows()) == [
        ("ans-1", "u1", 1), ("ans-1", "u2", 1), ("ans-2", "u3", -1)
    ]
    with pytest.raises(ValueError):
        state.record_feedback("ans-1", "u1", 0)

    for i in range(5):
        state.add_turn("conv", f"q{i}", f"a{i}", keep=3)
    assert [t.question for t in state.turns("conv", limit=10)] == ["q2", "q3", "q4"]
    assert [t.answer for t in state.turns("conv", limit=2)] == ["a3", "a4"]
    state.close()


def test_two_connections_see_each_others_updates(target: str) -> None:
    """Two replicas (two State objects, two connections) share feeds, votes and conversations."""
    one, two = State(target), State(target)
    one.add_feed("https://shared.example/feed", added_by="replica-1")
    two.record_feedback("ans", "u", -1)
    one.add_turn("thread-9", "what happened?", "this [1]")
    assert [f.url for f in two.feeds()] == ["https://shared.example/feed"]
    assert one.feedback().down == 1
    assert [t.question for t in two.turns("thread-9")] == ["what happened?"]
    assert two.add_feed("https://shared.example/feed") is False
    one.close()
    two.close()


def test_old_database_gets_new_columns(target: str) -> None:
    """A state database created before `feed_entries.fingerprint` existed is migrated on open, twice safely."""
    db = Database(target)
    db.execute(
        "CREATE TABLE feed_entries (feed_url TEXT NOT NULL, entry_id TEXT NOT NULL, doc_id TEXT NOT NULL DEFAULT '',"
        " seen_at TEXT NOT NULL, PRIMARY KEY (feed_url, entry_id))"
    )
    db.execute("INSERT INTO feed_entries (feed_url, entry_id, seen_at) VALUES (?, ?, ?)", ("f", "old", "2025"))
    db.close()
    State(target).close()
    state = State(target)
    assert state.seen_fingerprints("f") == {"old": ""}
    state.close()


def test_lease_take_renew_expire_release(target: str) -> None:
    state = State(target)
    assert state.lease_holder("feed:x") is None
    assert state.try_lease("feed:x", "A", 30)
    assert not state.try_lease("feed:x", "B", 30)
    assert state.try_lease("feed:x", "A", 30)  # renewal by the holder
    assert state.lease_holder("feed:x") == "A"
    assert state.try_lease("feed:y", "B", 30)  # another lease is independent
    assert not state.release_lease("feed:x", "B")
    assert state.release_lease("feed:x", "A")
    assert state.try_lease("feed:x", "B", 0.3)
    assert not state.try_lease("feed:x", "A", 30)
    time.sleep(0.45)  # B's lease expires without being released (a crashed replica)
    assert state.lease_holder("feed:x") is None
    assert state.try_lease("feed:x", "A", 30)
    with State(target).lease("job", 30, holder="C") as mine:
        assert mine and state.lease_holder("job") == "C"
        with state.lease("job", 30, holder="D") as theirs:
            assert not theirs
    assert state.lease_holder("job") is None
    with pytest.raises(ValueError):
        state.try_lease("job", "A", 0)
    state.close()


CONTENDER = r"""
import json, sys, time
from newsbot.bot.state import State

target, name, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
state = State(target)
held = []
print("ready", flush=True)
sys.stdin.readline()  # start together
stop = time.time() + seconds
while time.time() < stop:
    if state.try_lease("feed:https://shared.example/feed", name, 10):
        start = time.time()
        time.sleep(0.01)  # "poll the feed"
        end = time.time()
        assert state.release_lease("feed:https://shared.example/feed", name)
        held.append((start, end))
    time.sleep(0.002)
with open(out, "w") as fh:
    json.dump(held, fh)
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_two_processes_never_hold_a_lease_at_once(target: str, tmp_path: Path) -> None:
    """Two replicas hammer one lease for ~1.5 s: each holds it many times, never both at the same time."""
    procs = [_spawn(CONTENDER, target, f"replica-{i}", "1.5", str(tmp_path / f"held-{i}.json")) for i in range(2)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    held = [json.loads((tmp_path / f"held-{i}.json").read_text()) for i in range(2)]
    assert all(len(h) >= 3 for h in held), [len(h) for h in held]
    intervals = sorted((s, e, who) for who, spans in enumerate(held) for s, e in spans)
    for (_s1, e1, w1), (s2, _e2, w2) in zip(intervals, intervals[1:], strict=False):
        assert e1 <= s2, f"replica-{w1} held the lease until {e1} but replica-{w2} took it at {s2}"


HOLDER = r"""
import sys, time
from newsbot.bot.state import State

state = State(sys.argv[1])
assert state.try_lease("feed:https://shared.example/feed", "crashing-replica", float(sys.argv[2]))
print("holding", flush=True)
time.sleep(60)
"""


def test_lease_of_a_killed_replica_expires(target: str) -> None:
    """A replica SIGKILLed while polling never releases its lease; another takes over after expiry."""
    proc = _spawn(HOLDER, target, "1.0")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        state = State(target)
        assert state.lease_holder("feed:https://shared.example/feed") == "crashing-replica"
        assert not state.try_lease("feed:https://shared.example/feed", "survivor", 10)
        deadline = time.time() + 10
        while not state.try_lease("feed:https://shared.example/feed", "survivor", 10):
            assert time.time() < deadline, "the dead replica's lease never expired"
            time.sleep(0.05)
        assert state.lease_holder("feed:https://shared.example/feed") == "survivor"
        state.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_settings_choose_the_backend(target: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "idx", database_url=target)
    state = State.for_settings(settings)
    assert state.backend == ("postgresql" if target.startswith("postgresql://") else "sqlite")
    state.close()
    default = State.for_settings(make_settings(tmp_path / "idx2"))
    assert default.backend == "sqlite" and default.path == tmp_path / "idx2" / "state.sqlite"
    default.close()


DEAD_HOLDER = r"""
import sys, time
from newsbot.bot.state import State, process_holder

state = State(sys.argv[1])
assert state.try_lease("feed-update", process_holder("worker"), float(sys.argv[2]))
print(process_holder("worker"), flush=True)
time.sleep(60)
"""


def test_lease_says_who_and_since_when_and_a_dead_holder_is_replaced_at_once(target: str) -> None:
    from newsbot.bot.state import holder_is_dead, process_holder

    state = State(target)
    assert state.try_lease("job", "someone-else.example:123:t:4026531836", 30)
    first = state.lease_info("job")
    assert first is not None and first.acquired_at and first.expires_at > first.acquired_at
    time.sleep(0.05)
    assert state.try_lease("job", "someone-else.example:123:t:4026531836", 30)  # a renewal keeps "since"
    assert state.lease_info("job").acquired_at == first.acquired_at
    assert "pid 123 on someone-else.example, since " in first.describe()
    assert not holder_is_dead("someone-else.example:123:t:4026531836")  # another host: cannot tell
    assert not holder_is_dead(process_holder("me"))  # this very process

    proc = _spawn(DEAD_HOLDER, target, "120")  # a lease that would block for two minutes
    try:
        assert proc.stdout is not None
        holder = proc.stdout.readline().strip()
        assert not holder_is_dead(holder)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        info = state.lease_info("feed-update")
        assert info is not None and info.holder == holder and f"pid {proc.pid} on " in info.describe()
        assert holder_is_dead(holder)
        assert state.take_over_lease("feed-update", holder, "survivor", 30)
        assert not state.take_over_lease("feed-update", holder, "another", 30)  # one taker wins
        assert state.lease_holder("feed-update") == "survivor"
    finally:
        if proc.poll() is None:
            proc.kill()
    state.close()


def test_article_store_and_lost_feed_entries(target: str) -> None:
    from newsbot.index.documents import Document
    from newsbot.index.store.articles import ArticleStore

    state = State(target)
    store = ArticleStore(state.db)
    web = Document(id="url-1", title="T", body="B", url="https://a.example/1", origin="https://a.example/1")
    local = Document(id="f", title="F", body="x", origin="today/f.jsonl:3", tags=("a",))
    assert store.record([web, local]) == 2
    store.record([local.with_(body="y")])
    kept = {a.doc.id: a for a in store.articles()}
    assert kept["url-1"].kind == "web" and kept["url-1"].path == ""
    assert kept["f"].kind == "file" and kept["f"].path == str(Path("today/f.jsonl").absolute())
    assert kept["f"].doc.body == "y" and kept["f"].doc.tags == ("a",) and store.count() == 2
    store.forget(["url-1"])
    assert list(store.get_many(["url-1", "f"])) == ["f"]

    state.add_feed("https://a.example/feed")
    state.record_poll("https://a.example/feed", status="ok", etag='"e"', indexed=3)
    state.mark_seen("https://a.example/feed", [("e1", "d1", "x"), ("e2", "d2", "y"), ("e3", "d3", "z")])
    assert state.forget_entries_not_in({"d1"}) == {"https://a.example/feed": 2}
    feed = state.feed("https://a.example/feed")
    assert feed.etag is None and feed.entries_indexed == 1
    assert state.seen_entries("https://a.example/feed") == {"e1"}
    state.close()


def test_follows_posted_stories_and_schedule_claims(target: str) -> None:
    """Follows, the stories a channel was shown and schedules, on both engines; a story and a due time are
    claimed by one connection only (two State objects stand for two replicas)."""
    from newsbot.bot.state import DigestSchedule, Follow

    a, b = State(target), State(target)
    follow = Follow("f1", "g", "c1", "deep-sea mining", "", 2, "u", "2025-01-01T00:00:00+00:00")
    assert a.add_follow(follow) is True
    assert b.add_follow(Follow("f1", "g", "c1", "deep-sea mining", "", 3)) is False  # min_outlets updated
    [got] = b.follows("c1")
    assert got.topic == "deep-sea mining" and got.min_outlets == 3 and b.follows("c2") == []

    a.record_follow_articles("c1", [("d1", "d1", "", 2), ("d2", "d1", "", 2)])
    assert [x.doc_id for x in b.follow_articles("c1")] and {x.story for x in b.follow_articles("c1")} == {"d1"}
    assert a.claim_follow_story("c1", "d1", 2) is True
    assert b.claim_follow_story("c1", "d1", 2) is False, "the other replica does not post it again"
    b.set_follow_message("c1", ["d1"], "m1")
    assert a.follow_stories("c1") == {"d1": ("m1", 2, 2)} and a.follow_stories("c1", "m1") == {"d1": ("m1", 2, 2)}
    assert sorted(a.story_articles("c1", "d1")) == ["d1", "d2"]
    assert {x.message_id for x in a.follow_articles("c1")} == {"m1"}
    a.set_follow_shown("c1", "d1", 3)
    assert b.follow_stories("c1")["d1"] == ("m1", 2, 3)
    a.claim_follow_story("c1", "d9", 1)
    a.release_follow_story("c1", "d9")  # a failed post gives the claim back
    assert "d9" not in b.follow_stories("c1") and b.claim_follow_story("c1", "d9", 1) is True
    assert a.remove_follow("f1") is True and b.follows() == []

    sch = DigestSchedule("s1", "g", "c1", "09:00", "Europe/Berlin", "", "2025-01-01T08:00:00+00:00")
    assert a.add_schedule(sch) is True and b.schedules("c1")[0].timezone == "Europe/Berlin"
    due = "2025-01-02T08:00:00+00:00"
    wins = [a.claim_schedule_run("s1", sch.last_due, due), b.claim_schedule_run("s1", sch.last_due, due)]
    assert wins == [True, False] and b.schedules()[0].last_due == due
    assert b.remove_schedule("s1") is True and a.schedules() == []
    a.close()
    b.close()
