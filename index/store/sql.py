"""One small database layer for SQLite and PostgreSQL, so the same SQL runs on both.

Callers write SQLite-flavoured SQL with `?` placeholders; on PostgreSQL (psycopg 3) the placeholders are
rewritten to `%s` (and a literal `%` to `%%`), `BLOB` columns become `BYTEA` and `REAL` columns
`DOUBLE PRECISION`. What both engines share is used as is: `ON CONFLICT ... DO UPDATE/NOTHING`,
`excluded.`, `COALESCE`, `LIMIT ?`.

Transactions behave like SQLite's `BEGIN IMMEDIATE` on both: a write transaction (`transaction()`) first
takes a PostgreSQL advisory transaction lock, so writers that share a lock key are serialized across
processes and machines exactly as SQLite serializes writers of one file. Reads outside a transaction
run in autocommit mode.

    db = Database.open("postgresql://newsbot@127.0.0.1:5432/newsbot")   # or a file path for SQLite
    with db.transaction() as tx:
        tx.execute("INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT(k) DO NOTHING", ("a", 1))
    db.query("SELECT v FROM t WHERE k = ?", ("a",))
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """Whether a database setting names a PostgreSQL server (else it is an SQLite file path)."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """A database URL with its password replaced by `***` (for logs and error messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock named `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%|[^'\"?%]+", re.S)


@lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """SQLite-style SQL to psycopg's: `?` -> `%s`, `%` -> `%%`, BLOB -> BYTEA, REAL -> DOUBLE PRECISION.

    Inside quoted strings and identifiers only `%` is doubled (a `?` there is not a placeholder).
    """
    out = []
    for token in _TOKENS.findall(sql):
        if token == "?":
            out.append("%s")
        elif token == "%":
            out.append("%%")
        elif token[0] in "'\"":
            out.append(token.replace("%", "%%"))  # psycopg reads `%` everywhere, even inside literals
        else:
            token = re.sub(r"\bBLOB\b", "BYTEA", token)
            token = re.sub(r"\bREAL\b", "DOUBLE PRECISION", token)
            out.append(token)
    return "".join(out)


class Cursor(Protocol):
    """What `execute` returns on both engines (a sqlite3 or psycopg cursor)."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class DatabaseUnreadable(RuntimeError):
    """A SQLite file that is not a database (any more); the message names it and says what to do."""


class Database:
    """One connection to SQLite (a file path) or PostgreSQL (a `postgresql://` URL), thread-safe.

    Every call is serialized by a re-entrant lock; `transaction()` holds it for the whole transaction.
    A PostgreSQL connection that broke (server restart) is reopened on the next call outside a
    transaction.
    """

    def __init__(self, target: str | Path, *, timeout: float = 30.0) -> None:
        self.target = target
        self.dialect = "postgresql" if is_postgres_url(target) else "sqlite"
        self.timeout = timeout
        self._lock = threading.RLock()
        self._in_tx = False
        self._conn: Any = None
        self._connect()

    @classmethod
    def open(cls, target: str | Path) -> Database:
        return cls(target)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def describe(self) -> str:
        """Where the data lives, safe to log (passwords masked)."""
        return redact_url(str(self.target)) if self.is_postgres else str(self.target)

    # ------------------------------------------------------------------ connections

    def _connect(self) -> None:
        if self.is_postgres:
            try:
                import psycopg
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise RuntimeError(
                    "a postgresql:// database needs psycopg 3: pip install 'newsbot[postgres]'"
                ) from exc
            self._conn = psycopg.connect(str(self.target), autocommit=True, connect_timeout=int(self.timeout))
        else:
            path = Path(self.target)
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=self.timeout, check_same_thread=False, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
                _set_wal(conn, self.timeout)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise DatabaseUnreadable(
                    f"{path} is unreadable ({exc}); restore it from a backup, or move it aside to start it anew."
                ) from None
            self._conn = conn

    def _ensure(self) -> None:
        if self.is_postgres and not self._in_tx and (self._conn.closed or self._conn.broken):
            self._connect()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    # ------------------------------------------------------------------ statements

    def sql(self, statement: str) -> str:
        """`statement` in this engine's dialect."""
        return to_postgres(statement) if self.is_postgres else statement

    def execute(self, statement: str, params: Sequence[object] = ()) -> Cursor:
        with self._lock:
            self._ensure()
            return self._conn.execute(self.sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        with self._lock:
            self._ensure()
            rows = [tuple(r) for r in rows]
            if not rows:
                return
            if self.is_postgres:
                with self._conn.cursor() as cur:
                    cur.executemany(self.sql(statement), rows)
            else:
                self._conn.executemany(statement, rows)

    def query(self, statement: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return [tuple(r) for r in self.execute(statement, params).fetchall()]

    def now_expr(self) -> str:
        """An SQL expression for the database's clock in seconds since the epoch (float)."""
        if self.is_postgres:
            return "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION"
        return "((julianday('now') - 2440587.5) * 86400.0)"

    # ------------------------------------------------------------------ transactions

    def begin(self, lock: str | None = "write") -> None:
        """Start a write transaction (hold the connection until `commit`/`rollback`).

        SQLite: `BEGIN IMMEDIATE` (one writer per file). PostgreSQL: `BEGIN`, then an advisory
        transaction lock on `lock` (writers with the same lock name are serialized; None = no lock).
        """
        self._lock.acquire()
        try:
            self._ensure()
            if self.is_postgres:
                self._conn.execute("BEGIN")
                self._in_tx = True
                if lock is not None:
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
            else:
                self._conn.execute("BEGIN IMMEDIATE")
                self._in_tx = True
        except BaseException:
            self._in_tx = False
            self._lock.release()
            raise

    def commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        finally:
            self._in_tx = False
            self._lock.release()

    def rollback(self) -> None:
        try:
            if not (self.is_postgres and self._conn.closed):
                self._conn.execute("ROLLBACK")
        finally:
            self._in_tx = False
            self._lock.release()

    @contextmanager
    def transaction(self, lock: str | None = "write") -> Iterator[Database]:
        """A write transaction: commits when the block ends, rolls back if it raises."""
        self.begin(lock)
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    # ------------------------------------------------------------------ schema

    def create_schema(self, statements: Sequence[str], migrations: Sequence[str] = ()) -> None:
        """Run `CREATE ... IF NOT EXISTS` statements, then `ALTER TABLE ... ADD COLUMN` migrations that
        may already have been applied. Concurrent first starts of several processes are serialized."""
        with self.transaction(lock="schema"):
            for statement in statements:
                self.execute(statement)
            for statement in migrations:
                if self.is_postgres:
                    self.execute(re.sub(r"\bADD COLUMN\b(?! IF NOT EXISTS)", "ADD COLUMN IF NOT EXISTS", statement))
                    continue
                try:
                    self.execute(statement)
                except sqlite3.OperationalError as exc:  # already applied
                    if "duplicate column" not in str(exc):
                        raise


def _set_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL. The switch takes the database's lock, and SQLite can answer "database is locked" at
    once (no busy wait) while another process opens the same new database: retry until `timeout` (s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
