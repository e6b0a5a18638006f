"""A generation's SQLite file (`index.sqlite`): its schema, and connections to it.

The articles table and the near-duplicate tables are the catalogue both stores share
(`index.store.catalog`); passages, their FTS5 keyword index and the vectors added since the FAISS
snapshot are this store's own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from newsbot.index.store.base import REBUILD_HINT, IndexCorrupt, IndexMissing
from newsbot.index.store.catalog import documents_table

SCHEMA = "\n".join([
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    *(statement + ";" for statement in documents_table("documents")),  # the catalogue's articles table
    """CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    passage_hash TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    head, body, content='', tokenize='porter unicode61 remove_diacritics 2'
);""",
])

# Tables added for incremental updates; created in older generations on their first update.
FRESHNESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vec BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stale_vectors (chunk_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dedup_signatures (
    doc_id TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    sig BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dedup_keys (
    key TEXT NOT NULL,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    PRIMARY KEY (key, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_keys_doc ON dedup_keys(doc_id);
"""


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    if not create and not path.exists():
        raise IndexMissing(f"{path} does not exist. {REBUILD_HINT}")
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:  # not a database (any more): the same words every command uses
        conn.close()
        raise IndexCorrupt(f"{path} is unreadable ({exc}). {REBUILD_HINT}") from None
    return conn


class ConnectionRows:
    """An SQLite connection (a fixed one, or one per thread) seen through the three calls the catalogue
    makes (`index.store.catalog.Rows`)."""

    def __init__(self, conn: Callable[[], sqlite3.Connection]) -> None:
        self._conn = conn

    def query(self, statement: str, params: Sequence[object] = ()) -> list[tuple]:
        return self._conn().execute(statement, tuple(params)).fetchall()

    def execute(self, statement: str, params: Sequence[object] = ()) -> Any:
        return self._conn().execute(statement, tuple(params))

    def executemany(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        self._conn().executemany(statement, [tuple(r) for r in rows])
