"""Bot state that outlives one process: feeds, feedback on answers, conversation memory.

Stored in SQLite (`<index_dir>/state.sqlite`) by default. The SQL is deliberately plain so that the
same statements run on PostgreSQL (`database_url = postgresql://...`), where several bot replicas share
it; `index.store.sql.Database` translates placeholders and serializes write transactions on both engines.
`try_lease` lets replicas agree on who does a job (such as polling a feed) for a while.

Longer than the ~450 lines other modules keep to (≈ 760): one class per database, one section per table
group (leases, feeds, feedback, conversations, per-server settings, follows, schedules), so every SQL
statement of the state database is in this file. Splitting it into one module per section (a `state/`
package) is the next step when a section grows again.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from newsbot.bot.answer.answers import Turn
from newsbot.index.store.base import now_iso
from newsbot.index.store.sql import Database, is_postgres_url

if TYPE_CHECKING:
    from newsbot.bot.config import Settings

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS feeds (
        url TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        etag TEXT,
        last_modified TEXT,
        added_by TEXT NOT NULL DEFAULT '',
        added_at TEXT NOT NULL,
        last_polled_at TEXT,
        last_status TEXT NOT NULL DEFAULT '',
        entries_indexed INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS feed_entries (
        feed_url TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        doc_id TEXT NOT NULL DEFAULT '',
        seen_at TEXT NOT NULL,
        fingerprint TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (feed_url, entry_id)
    )""",
    """CREATE TABLE IF NOT EXISTS answers (
        id TEXT PRIMARY KEY,
        question TEXT NOT NULL,
        text TEXT NOT NULL,
        citations TEXT NOT NULL,
        found INTEGER NOT NULL,
        guild_id TEXT NOT NULL DEFAULT '',
        channel_id TEXT NOT NULL DEFAULT '',
        user_id TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS feedback (
        answer_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        vote INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (answer_id, user_id)
    )""",
    # One row per Discord server that changed something with /config. NULL = not chosen there: the global
    # setting applies. channels: JSON list of channel ids the bot answers in ([] = every channel).
    """CREATE TABLE IF NOT EXISTS server_settings (
        guild_id TEXT PRIMARY KEY,
        channels TEXT NOT NULL DEFAULT '[]',
        private INTEGER,
        embeds INTEGER,
        threads INTEGER,
        updated_by TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS conversation_turns (
        conversation_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (conversation_id, turn)
    )""",
    # Topic follows (/follow): per channel; id = a hash of channel, topic and outlet (one row per triple).
    """CREATE TABLE IF NOT EXISTS follows (
        id TEXT PRIMARY KEY,
        guild_id TEXT NOT NULL DEFAULT '',
        channel_id TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        min_outlets INTEGER NOT NULL DEFAULT 1,
        created_by TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    )""",
    # Articles a channel's follows matched: story = the key article of the story they were shown under;
    # message_id = the Discord message showing it ('' = matched, not posted yet: below min_outlets).
    """CREATE TABLE IF NOT EXISTS follow_articles (
        channel_id TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        story TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        min_outlets INTEGER NOT NULL DEFAULT 1,
        matched_at TEXT NOT NULL,
        PRIMARY KEY (channel_id, doc_id)
    )""",
    # One row per story posted (or being posted: message_id '') in a channel; outlets = how many it had
    # when first posted (a later edit says "+N outlets"), shown = how many its message shows now.
    """CREATE TABLE IF NOT EXISTS follow_stories (
        channel_id TEXT NOT NULL,
        story TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        outlets INTEGER NOT NULL DEFAULT 0,
        shown INTEGER NOT NULL DEFAULT 0,
        posted_at TEXT NOT NULL,
        PRIMARY KEY (channel_id, story)
    )""",
    # Scheduled digests (/digest-schedule): `last_due` = the scheduled time (UTC ISO) last posted (or
    # skipped when the schedule was made), so each due time is claimed by one replica exactly once.
    """CREATE TABLE IF NOT EXISTS digest_schedules (
        id TEXT PRIMARY KEY,
        guild_id TEXT NOT NULL DEFAULT '',
        channel_id TEXT NOT NULL,
        at_time TEXT NOT NULL,
        timezone TEXT NOT NULL DEFAULT 'UTC',
        topic TEXT NOT NULL DEFAULT '',
        last_due TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    )""",
]


# Columns added after the first release, for state databases created before them.
MIGRATIONS = [
    "ALTER TABLE feed_entries ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE leases ADD COLUMN acquired_at REAL",
]


# Leases: who may do a shared job (poll a feed, run a rebuild) until when (database clock, epoch seconds).
LEASE_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL,
        acquired_at REAL
    )""",
]


def default_holder() -> str:
    """A lease holder name unique to this process: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_namespace() -> str:
    """This process's PID namespace (Linux), so that a pid is only judged in the namespace it belongs to."""
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return ""


def process_holder(tag: str = "") -> str:
    """A holder name that says which process holds a lease: `host:pid:tag:pid-namespace`."""
    return f"{default_holder()}:{tag}:{_pid_namespace()}"


def holder_process(holder: str) -> tuple[str, int] | None:
    """(host, pid) of a holder named `host:pid[:...]` (see `process_holder`); None for other names."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return (host, int(pid)) if host and pid.isdigit() else None


def holder_is_dead(holder: str) -> bool:
    """Whether `holder` names a process of this host (and PID namespace) that no longer exists.

    False whenever that cannot be proven: another host, another namespace, or a pid that exists (even if
    it was reused by an unrelated process: its lease then lapses by itself)."""
    parsed = holder_process(holder)
    if parsed is None or parsed[0] != socket.gethostname():
        return False
    parts = holder.split(":")
    if len(parts) >= 4 and parts[3] != _pid_namespace():
        return False
    try:
        os.kill(parsed[1], 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a lease, since when and until when (epoch seconds on the database's clock)."""

    name: str
    holder: str
    acquired_at: float | None
    expires_at: float

    def describe(self) -> str:
        """`pid 123 on host, since 2025-01-15 09:30:12 UTC` (or the holder's name when not a process)."""
        parsed = holder_process(self.holder)
        who = f"pid {parsed[1]} on {parsed[0]}" if parsed else self.holder
        if self.acquired_at:
            when = datetime.fromtimestamp(self.acquired_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            who += f", since {when}"
        return who

    def to_json(self) -> dict[str, object]:
        parsed = holder_process(self.holder)
        since = datetime.fromtimestamp(self.acquired_at, UTC).isoformat(timespec="seconds") if self.acquired_at else None
        return {"holder": self.holder, "host": parsed[0] if parsed else None, "pid": parsed[1] if parsed else None,
                "since": since}


@dataclass(frozen=True)
class Feed:
    url: str
    title: str
    etag: str | None
    last_modified: str | None
    added_by: str
    added_at: str
    last_polled_at: str | None
    last_status: str
    entries_indexed: int


@dataclass(frozen=True)
class FeedbackCounts:
    up: int
    down: int


@dataclass(frozen=True)
class ServerSettings:
    """One Discord server's choices (/config); None = not chosen there, the global setting applies.

    channels: ids of the channels the bot answers in (threads count as their parent channel); empty = all.
    private: answers only the asker sees by default; embeds: embeds (True) or plain text (False);
    threads: an @mention opens a thread for the answer (True) or is answered in the channel (False)."""

    guild_id: str
    channels: tuple[str, ...] = ()
    private: bool | None = None
    embeds: bool | None = None
    threads: bool | None = None
    updated_by: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class Follow:
    """A channel's follow: articles about `topic` (may be empty when `source` is given) from `source`
    (an outlet, '' = any), posted once their story has at least `min_outlets` outlets."""

    id: str
    guild_id: str
    channel_id: str
    topic: str
    source: str
    min_outlets: int
    created_by: str = ""
    created_at: str = ""

    def describe(self) -> str:
        """`“chip export rules” from Reuters (2+ outlets)`."""
        parts = [f"“{self.topic}”" if self.topic else "everything"]
        if self.source:
            parts.append(f"from {self.source}")
        if self.min_outlets > 1:
            parts.append(f"({self.min_outlets}+ outlets)")
        return " ".join(parts)


@dataclass(frozen=True)
class FollowArticle:
    """An article a channel's follow matched (see the follow_articles table)."""

    doc_id: str
    story: str
    message_id: str
    min_outlets: int


@dataclass(frozen=True)
class DigestSchedule:
    """A daily digest posted in `channel_id` at `at_time` (HH:MM) in `timezone` (an IANA name)."""

    id: str
    guild_id: str
    channel_id: str
    at_time: str
    timezone: str
    topic: str
    last_due: str
    created_by: str = ""
    created_at: str = ""


class State:
    """Thread-safe access to the state database (one connection, serialized).

    `target` is an SQLite file path or a `postgresql://` URL. Write transactions are serialized across
    processes on both engines (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory transaction lock).
    """

    def __init__(self, target: Path | str) -> None:
        if not is_postgres_url(target):
            target = Path(target)
        self.path = target
        self._db = Database(target)
        self._conn = self._db  # execute/executemany/query with `?` placeholders on either engine
        self._db.create_schema([*SCHEMA, *LEASE_SCHEMA], MIGRATIONS)

    @classmethod
    def for_index_dir(cls, index_dir: Path) -> State:
        return cls(index_dir / "state.sqlite")

    @classmethod
    def for_settings(cls, settings: Settings) -> State:
        """`database_url` when set (PostgreSQL URL or SQLite path), else `<index_dir>/state.sqlite`."""
        if settings.database_url:
            return cls(settings.database_url)
        return cls.for_index_dir(settings.index_path())

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._db.dialect

    @property
    def db(self) -> Database:
        """The database itself, for tables kept by other modules (`index.store.articles`)."""
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[Database]:
        with self._db.transaction(lock="newsbot-state") as db:
            yield db

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return self._db.query(sql, params)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ leases

    def try_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease `name` for `seconds`; True if `holder` now holds it.

        Atomic on both engines (one INSERT ... ON CONFLICT DO UPDATE ... WHERE): the lease goes to
        `holder` only if nobody holds it, `holder` already does (a renewal), or the last holder's
        lease expired. Expiry is judged by the database's clock, so replicas on machines with skewed
        clocks still agree. A holder that may run longer than `seconds` must renew before it expires.
        """
        if seconds <= 0:
            raise ValueError("a lease needs a positive duration")
        now = self._db.now_expr()
        with self._tx() as db:
            cur = db.execute(
                f"INSERT INTO leases (name, holder, expires_at, acquired_at) VALUES (?, ?, {now} + ?, {now})"
                " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,"
                " acquired_at = CASE WHEN leases.holder = excluded.holder"
                " THEN COALESCE(leases.acquired_at, excluded.acquired_at) ELSE excluded.acquired_at END"
                f" WHERE leases.holder = excluded.holder OR leases.expires_at <= {now}",
                (name, holder, float(seconds)),
            )
            return cur.rowcount == 1

    def take_over_lease(self, name: str, old_holder: str, holder: str, seconds: float) -> bool:
        """Give the lease `name` to `holder` if `old_holder` still holds it (for a holder known to be dead);
        True if `holder` now holds it. Atomic: of several processes taking over, one wins."""
        now = self._db.now_expr()
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE leases SET holder = ?, expires_at = {now} + ?, acquired_at = {now}"
                " WHERE name = ? AND holder = ?",
                (holder, float(seconds), name, old_holder),
            )
            return cur.rowcount == 1

    def lease_info(self, name: str) -> LeaseInfo | None:
        """Who holds the lease `name` now, since when and until when (None if nobody or it expired)."""
        rows = self._query(
            "SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?"
            f" AND expires_at > {self._db.now_expr()}", (name,)
        )
        if not rows:
            return None
        holder, acquired, expires = rows[0]
        return LeaseInfo(name, str(holder), None if acquired is None else float(acquired), float(expires))

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up early; False if `holder` did not hold it (any more)."""
        with self._tx() as db:
            return db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)).rowcount == 1

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease `name` now (None if nobody or it expired)."""
        rows = self._query(
            f"SELECT holder FROM leases WHERE name = ? AND expires_at > {self._db.now_expr()}", (name,)
        )
        return rows[0][0] if rows else None

    @contextmanager
    def lease(self, name: str, seconds: float, holder: str | None = None) -> Iterator[bool]:
        """`with state.lease("feed:URL", 300) as mine: if mine: poll()` — released when the block ends."""
        holder = holder or default_holder()
        mine = self.try_lease(name, holder, seconds)
        try:
            yield mine
        finally:
            if mine:
                self.release_lease(name, holder)

    # ------------------------------------------------------------------ feeds

    def add_feed(self, url: str, *, added_by: str = "", title: str = "") -> bool:
        """Register a feed; False if it was already registered."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO feeds (url, title, added_by, added_at) VALUES (?, ?, ?, ?) ON CONFLICT(url) DO NOTHING",
                (url, title, added_by, now_iso()),
            )
            return cur.rowcount == 1

    def remove_feed(self, url: str) -> bool:
        with self._tx() as db:
            db.execute("DELETE FROM feed_entries WHERE feed_url = ?", (url,))
            return db.execute("DELETE FROM feeds WHERE url = ?", (url,)).rowcount == 1

    def feeds(self) -> list[Feed]:
        rows = self._query(
            "SELECT url, title, etag, last_modified, added_by, added_at, last_polled_at, last_status,"
            " entries_indexed FROM feeds ORDER BY added_at, url"
        )
        return [Feed(*r) for r in rows]

    def feed(self, url: str) -> Feed | None:
        return next((f for f in self.feeds() if f.url == url), None)

    def record_poll(
        self, url: str, *, status: str, etag: str | None = None, last_modified: str | None = None,
        title: str | None = None, indexed: int = 0,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE feeds SET last_polled_at = ?, last_status = ?, etag = COALESCE(?, etag),"
                " last_modified = COALESCE(?, last_modified), title = COALESCE(?, title),"
                " entries_indexed = entries_indexed + ? WHERE url = ?",
                (now_iso(), status, etag, last_modified, title, indexed, url),
            )

    def seen_entries(self, feed_url: str) -> set[str]:
        return {r[0] for r in self._query("SELECT entry_id FROM feed_entries WHERE feed_url = ?", (feed_url,))}

    def seen_fingerprints(self, feed_url: str) -> dict[str, str]:
        """entry_id -> fingerprint of the entry when it was indexed ('' if recorded without one)."""
        rows = self._query("SELECT entry_id, fingerprint FROM feed_entries WHERE feed_url = ?", (feed_url,))
        return {r[0]: r[1] for r in rows}

    def mark_seen(self, feed_url: str, entries: Sequence[tuple[str, str, str]]) -> None:
        """Remember (entry_id, doc_id, fingerprint) triples as indexed; a changed fingerprint replaces the
        old one (the entry was indexed again)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO feed_entries (feed_url, entry_id, doc_id, seen_at, fingerprint) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(feed_url, entry_id) DO UPDATE SET doc_id = excluded.doc_id,"
                " seen_at = excluded.seen_at, fingerprint = excluded.fingerprint",
                [(feed_url, entry_id, doc_id, now_iso(), fp) for entry_id, doc_id, fp in entries],
            )

    def forget_entries_not_in(self, doc_ids: set[str]) -> dict[str, int]:
        """Forget the seen entries whose article is not among `doc_ids` (lost with a damaged index), so the
        next poll fetches them again: their feeds lose their validators and their indexed counts shrink.
        Returns feed URL -> entries forgotten."""
        rows = self._query("SELECT feed_url, entry_id, doc_id FROM feed_entries")
        lost = [(f, e) for f, e, d in rows if d and d not in doc_ids]
        counts: dict[str, int] = {}
        for feed_url, _ in lost:
            counts[feed_url] = counts.get(feed_url, 0) + 1
        with self._tx() as db:
            db.executemany("DELETE FROM feed_entries WHERE feed_url = ? AND entry_id = ?", lost)
            for feed_url, n in counts.items():
                db.execute(
                    "UPDATE feeds SET etag = NULL, last_modified = NULL,"
                    " entries_indexed = CASE WHEN entries_indexed > ? THEN entries_indexed - ? ELSE 0 END"
                    " WHERE url = ?", (n, n, feed_url),
                )
        return counts

    def mark_entries(self, feed_url: str, entries: Sequence[tuple[str, str]]) -> None:
        """Remember (entry_id, doc_id) pairs as indexed, so the next poll skips them."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO feed_entries (feed_url, entry_id, doc_id, seen_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(feed_url, entry_id) DO NOTHING",
                [(feed_url, entry_id, doc_id, now_iso()) for entry_id, doc_id in entries],
            )

    # ------------------------------------------------------------------ answers and feedback

    def record_answer(
        self, answer_id: str, *, question: str, text: str, citations: Sequence[str], found: bool,
        guild_id: str = "", channel_id: str = "", user_id: str = "",
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (id, question, text, citations, found, guild_id, channel_id, user_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (answer_id, question, text, json.dumps(list(citations)), int(found), guild_id, channel_id, user_id,
                 now_iso()),
            )

    def record_feedback(self, answer_id: str, user_id: str, vote: int) -> None:
        """One vote per user and answer; voting again replaces the earlier vote."""
        if vote not in (1, -1):
            raise ValueError("vote must be 1 or -1")
        with self._tx() as db:
            db.execute(
                "INSERT INTO feedback (answer_id, user_id, vote, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(answer_id, user_id) DO UPDATE SET vote = excluded.vote, created_at = excluded.created_at",
                (answer_id, user_id, vote, now_iso()),
            )

    def feedback(self, answer_id: str | None = None) -> FeedbackCounts:
        where, params = ("WHERE answer_id = ?", (answer_id,)) if answer_id else ("", ())
        rows = self._query(
            f"SELECT COALESCE(SUM(CASE WHEN vote > 0 THEN 1 ELSE 0 END), 0),"
            f" COALESCE(SUM(CASE WHEN vote < 0 THEN 1 ELSE 0 END), 0) FROM feedback {where}",
            params,
        )
        return FeedbackCounts(int(rows[0][0]), int(rows[0][1]))

    def feedback_rows(self) -> list[tuple[str, str, int, str]]:
        return [tuple(r) for r in self._query(
            "SELECT answer_id, user_id, vote, created_at FROM feedback ORDER BY created_at"
        )]

    # ------------------------------------------------------------------ conversations

    def add_turn(self, conversation_id: str, question: str, answer: str, keep: int = 20) -> None:
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(turn), 0) FROM conversation_turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            turn = int(row[0]) + 1
            db.execute(
                "INSERT INTO conversation_turns (conversation_id, turn, question, answer, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (conversation_id, turn, question, answer, now_iso()),
            )
            db.execute(
                "DELETE FROM conversation_turns WHERE conversation_id = ? AND turn <= ?", (conversation_id, turn - keep)
            )

    def turns(self, conversation_id: str, limit: int = 6) -> list[Turn]:
        rows = self._query(
            "SELECT question, answer FROM conversation_turns WHERE conversation_id = ? ORDER BY turn DESC LIMIT ?",
            (conversation_id, limit),
        )
        return [Turn(q, a) for q, a in reversed(rows)]

    # ------------------------------------------------------------------ per-server settings (Discord /config)

    def server_settings(self, guild_id: str) -> ServerSettings:
        """What `guild_id` chose; a server that never used /config gets an all-default ServerSettings."""
        rows = self._query(
            "SELECT channels, private, embeds, threads, updated_by, updated_at FROM server_settings"
            " WHERE guild_id = ?", (guild_id,)
        )
        return _server_settings(guild_id, rows[0]) if rows else ServerSettings(guild_id)

    def update_server_settings(
        self, guild_id: str, *, add_channels: Sequence[str] = (), remove_channels: Sequence[str] = (),
        all_channels: bool = False, private: bool | None = None, embeds: bool | None = None,
        threads: bool | None = None, reset: bool = False, updated_by: str = "",
    ) -> ServerSettings:
        """Change what `guild_id` chose and return the result. None leaves a choice as it is; `all_channels`
        empties the channel list (every channel) before `add_channels`; `reset` forgets every choice first.

        Read and written in one write transaction, serialized across processes (as feeds are), so two
        replicas changing one server at once both keep their change."""
        with self._tx() as db:
            row = db.execute(
                "SELECT channels, private, embeds, threads, updated_by, updated_at FROM server_settings"
                " WHERE guild_id = ?", (guild_id,)
            ).fetchone()
            current = _server_settings(guild_id, row) if row and not reset else ServerSettings(guild_id)
            channels = [] if all_channels else [c for c in current.channels if c not in set(remove_channels)]
            channels += [c for c in add_channels if c not in channels]
            new = ServerSettings(
                guild_id, tuple(channels),
                current.private if private is None else private,
                current.embeds if embeds is None else embeds,
                current.threads if threads is None else threads,
                updated_by, now_iso(),
            )
            db.execute(
                "INSERT INTO server_settings (guild_id, channels, private, embeds, threads, updated_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(guild_id) DO UPDATE SET channels = excluded.channels,"
                " private = excluded.private, embeds = excluded.embeds, threads = excluded.threads,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (guild_id, json.dumps(list(new.channels)), _flag(new.private), _flag(new.embeds),
                 _flag(new.threads), new.updated_by, new.updated_at),
            )
        return new


    # ------------------------------------------------------------------ follows (Discord /follow)

    def add_follow(self, follow: Follow) -> bool:
        """Store a follow; False when the channel already follows that topic from that outlet (the stored
        one's min_outlets is updated then)."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO follows (id, guild_id, channel_id, topic, source, min_outlets, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (follow.id, follow.guild_id, follow.channel_id, follow.topic, follow.source, follow.min_outlets,
                 follow.created_by, follow.created_at or now_iso()),
            )
            if cur.rowcount == 1:
                return True
            db.execute("UPDATE follows SET min_outlets = ? WHERE id = ?", (follow.min_outlets, follow.id))
            return False

    def remove_follow(self, follow_id: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM follows WHERE id = ?", (follow_id,)).rowcount == 1

    def follows(self, channel_id: str | None = None) -> list[Follow]:
        """The follows of one channel (every channel's when None), oldest first."""
        where, params = ("WHERE channel_id = ?", (channel_id,)) if channel_id is not None else ("", ())
        rows = self._query(
            "SELECT id, guild_id, channel_id, topic, source, min_outlets, created_by, created_at FROM follows"
            f" {where} ORDER BY created_at, id", params)
        return [Follow(*r[:5], int(r[5]), *r[6:]) for r in rows]

    def follow_articles(self, channel_id: str, limit: int = 500) -> list[FollowArticle]:
        """The channel's most recently matched articles (posted or waiting for more outlets)."""
        rows = self._query(
            "SELECT doc_id, story, message_id, min_outlets FROM follow_articles WHERE channel_id = ?"
            " ORDER BY matched_at DESC, doc_id LIMIT ?", (channel_id, limit))
        return [FollowArticle(str(d), str(s), str(m or ""), int(n)) for d, s, m, n in rows]

    def record_follow_articles(self, channel_id: str, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Remember (doc_id, story, message_id, min_outlets) rows; an article already remembered is moved to
        the story and message given (a story that was waiting got posted, or joined a posted one)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO follow_articles (channel_id, doc_id, story, message_id, min_outlets, matched_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(channel_id, doc_id) DO UPDATE SET story = excluded.story,"
                " message_id = excluded.message_id",
                [(channel_id, d, s, m, n, now_iso()) for d, s, m, n in rows],
            )

    def claim_follow_story(self, channel_id: str, story: str, outlets: int) -> bool:
        """Claim the right to post `story` in the channel (True once per channel and story, whichever
        replica asks first); `set_follow_message` records the message, `release_follow_story` gives up."""
        with self._tx() as db:
            return db.execute(
                "INSERT INTO follow_stories (channel_id, story, message_id, outlets, shown, posted_at)"
                " VALUES (?, ?, '', ?, ?, ?) ON CONFLICT(channel_id, story) DO NOTHING",
                # microseconds: a message's stories are shown again in the order they were claimed (posted)
                (channel_id, story, outlets, outlets, datetime.now(UTC).isoformat(timespec="microseconds")),
            ).rowcount == 1

    def set_follow_message(self, channel_id: str, stories: Sequence[str], message_id: str) -> None:
        with self._tx() as db:
            db.executemany("UPDATE follow_stories SET message_id = ? WHERE channel_id = ? AND story = ?",
                           [(message_id, channel_id, s) for s in stories])
            db.executemany("UPDATE follow_articles SET message_id = ? WHERE channel_id = ? AND story = ?",
                           [(message_id, channel_id, s) for s in stories])

    def release_follow_story(self, channel_id: str, story: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM follow_stories WHERE channel_id = ? AND story = ? AND message_id = ''",
                       (channel_id, story))

    def set_follow_shown(self, channel_id: str, story: str, shown: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE follow_stories SET shown = ? WHERE channel_id = ? AND story = ?",
                       (shown, channel_id, story))

    def follow_stories(self, channel_id: str, message_id: str | None = None) -> dict[str, tuple[str, int, int]]:
        """story -> (message_id, outlets when first posted, outlets shown now) of the channel's posted
        stories (of one message), oldest first."""
        sql = "SELECT story, message_id, outlets, shown FROM follow_stories WHERE channel_id = ?"
        params: tuple[object, ...] = (channel_id,)
        if message_id is not None:
            sql, params = sql + " AND message_id = ?", (channel_id, message_id)
        rows = self._query(sql + " ORDER BY posted_at, story", params)
        return {str(s): (str(m or ""), int(o), int(n)) for s, m, o, n in rows}

    def story_articles(self, channel_id: str, story: str) -> list[str]:
        """The doc ids shown under `story` in the channel."""
        rows = self._query("SELECT doc_id FROM follow_articles WHERE channel_id = ? AND story = ?"
                           " ORDER BY matched_at, doc_id", (channel_id, story))
        return [str(r[0]) for r in rows]

    # ------------------------------------------------------------------ scheduled digests

    def add_schedule(self, schedule: DigestSchedule) -> bool:
        """Store (or replace: same id) a schedule; True when it is new."""
        with self._tx() as db:
            existed = db.execute("SELECT 1 FROM digest_schedules WHERE id = ?", (schedule.id,)).fetchone()
            db.execute(
                "INSERT INTO digest_schedules (id, guild_id, channel_id, at_time, timezone, topic, last_due,"
                " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                " at_time = excluded.at_time, timezone = excluded.timezone, topic = excluded.topic,"
                " last_due = excluded.last_due, created_by = excluded.created_by, created_at = excluded.created_at",
                (schedule.id, schedule.guild_id, schedule.channel_id, schedule.at_time, schedule.timezone,
                 schedule.topic, schedule.last_due, schedule.created_by, schedule.created_at or now_iso()),
            )
            return existed is None

    def remove_schedule(self, schedule_id: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM digest_schedules WHERE id = ?", (schedule_id,)).rowcount == 1

    def schedules(self, channel_id: str | None = None) -> list[DigestSchedule]:
        where, params = ("WHERE channel_id = ?", (channel_id,)) if channel_id is not None else ("", ())
        rows = self._query(
            "SELECT id, guild_id, channel_id, at_time, timezone, topic, last_due, created_by, created_at"
            f" FROM digest_schedules {where} ORDER BY channel_id, at_time, id", params)
        return [DigestSchedule(*(str(v or "") for v in r)) for r in rows]

    def claim_schedule_run(self, schedule_id: str, previous_due: str, due: str) -> bool:
        """Move a schedule's last_due from `previous_due` to `due`; True for exactly one caller (the one
        that posts), whichever replica or process asks."""
        with self._tx() as db:
            return db.execute(
                "UPDATE digest_schedules SET last_due = ? WHERE id = ? AND last_due = ?",
                (due, schedule_id, previous_due),
            ).rowcount == 1


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _server_settings(guild_id: str, row: Sequence[object]) -> ServerSettings:
    channels, private, embeds, threads, updated_by, updated_at = row

    def flag(value: object) -> bool | None:
        return None if value is None else bool(value)

    return ServerSettings(
        guild_id, tuple(str(c) for c in json.loads(str(channels or "[]"))), flag(private), flag(embeds),
        flag(threads), str(updated_by or ""), str(updated_at or ""),
    )
