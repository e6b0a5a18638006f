"""The Milvus store: generations (one Milvus collection each; which one is live is kept in SQL), the
build lock, the SQL schema, and its readers and writers (see the package doc)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsbot.index.documents import Document
from newsbot.index.store.base import IndexMissing, IndexProblem, Manifest
from newsbot.index.store.catalog import Catalog, documents_table, placeholders
from newsbot.index.store.locks import file_lock
from newsbot.index.store.milvus.collection import connect_milvus
from newsbot.index.store.milvus.reader import MilvusReader
from newsbot.index.store.milvus.writer import MilvusWriter
from newsbot.index.store.sql import Database, lock_key, redact_url

log = logging.getLogger("newsbot.milvus")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,180}$")

SQL_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS store_generations (
        name TEXT PRIMARY KEY,
        prefix TEXT NOT NULL,
        manifest TEXT NOT NULL,
        live INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )""",
    *documents_table("store_documents", per_generation=True),  # the catalogue's articles table
    """CREATE TABLE IF NOT EXISTS store_chunks (
        generation TEXT NOT NULL,
        id BIGINT NOT NULL,
        doc_id TEXT NOT NULL,
        PRIMARY KEY (generation, id)
    )""",
    "CREATE INDEX IF NOT EXISTS store_chunks_doc ON store_chunks(generation, doc_id)",
    """CREATE TABLE IF NOT EXISTS store_dedup_signatures (
        generation TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        sig BLOB NOT NULL,
        PRIMARY KEY (generation, doc_id)
    )""",
    """CREATE TABLE IF NOT EXISTS store_dedup_keys (
        generation TEXT NOT NULL,
        key TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        PRIMARY KEY (generation, key, doc_id)
    )""",
    "CREATE INDEX IF NOT EXISTS store_dedup_keys_doc ON store_dedup_keys(generation, doc_id)",
    """CREATE TABLE IF NOT EXISTS store_garbage (
        generation TEXT NOT NULL,
        id BIGINT NOT NULL,
        PRIMARY KEY (generation, id)
    )""",
    """CREATE TABLE IF NOT EXISTS store_terms (
        generation TEXT NOT NULL,
        term TEXT NOT NULL,
        df BIGINT NOT NULL,
        PRIMARY KEY (generation, term)
    )""",
]


class MilvusStore:
    """A Milvus deployment plus the SQL database that holds articles: generations, readers, writers.

    `uri` is a Milvus server URL or a local Milvus Lite path (one process per Lite file; use Lite's
    gRPC server, `milvus-lite server --data-dir D`, to share it). `database` is an SQLite path, a
    `postgresql://` URL or an open `Database`. Several stores can share one Milvus and one database
    under different `prefix`es.
    """

    def __init__(
        self, uri: str, *, database: str | Path | Database, token: str = "", prefix: str = "newsbot",
        dense_index: str | None = None, lock_dir: Path | None = None,
    ) -> None:
        if not _NAME.match(prefix):
            raise ValueError(f"store prefix {prefix!r}: use letters, digits and underscores")
        self.uri = uri
        self.prefix = prefix
        self.lite = "://" not in uri
        self.dense_index = dense_index or ("FLAT" if self.lite else "AUTOINDEX")
        self.db = database if isinstance(database, Database) else Database(database)
        self.db.create_schema(SQL_SCHEMA)
        self.client = connect_milvus(uri, token)
        self.lock_dir = lock_dir
        self._garbage_lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Any) -> MilvusStore:
        """The store the settings ask for: `milvus_uri` (default: Milvus Lite at `<index_dir>/milvus.db`)
        and `database_url` (default: SQLite at `<index_dir>/milvus-store.sqlite`)."""
        root = Path(settings.index_path())
        uri = settings.milvus_uri or str(root / "milvus.db")
        database = settings.database_url or root / "milvus-store.sqlite"
        return cls(uri, database=database, token=settings.milvus_token, lock_dir=root)

    @property
    def cache_db(self) -> Path:
        """The local vector cache: vectors are computed here, whichever machine holds Milvus."""
        root = self.lock_dir or Path(".newsbot")
        return root / "cache" / "vectors.sqlite"

    def describe(self) -> str:
        where = self.uri if self.lite else redact_url(self.uri)
        return f"Milvus {where} + {self.db.describe()}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        self.db.close()

    def ensure_loaded(self, name: str) -> None:
        """Load collection `name` for search if it is not (Milvus Lite forgets this on restart)."""
        try:
            state = self.client.get_load_state(name).get("state")
        except Exception as exc:
            log.debug("no load state for %s: %s", name, exc)
            return
        if "NotLoad" in str(state):
            self.client.load_collection(name)

    # ------------------------------------------------------------------ generations

    def current_generation(self) -> str | None:
        rows = self.db.query("SELECT name FROM store_generations WHERE prefix = ? AND live = 1", (self.prefix,))
        return str(rows[0][0]) if rows else None

    def new_generation_name(self) -> str:
        return f"{self.prefix}_g{datetime.now(UTC):%Y%m%dT%H%M%S%f}_{os.getpid()}"

    def manifest(self, name: str | None = None) -> Manifest:
        """The committed manifest of generation `name` (default: the live one)."""
        name = name or self.current_generation()
        if name is None:
            raise IndexMissing(f"no index in {self.describe()} (prefix {self.prefix!r}). Build one with `newsbot build`.")
        rows = self.db.query("SELECT manifest FROM store_generations WHERE name = ?", (name,))
        if not rows:
            raise IndexMissing(f"generation {name} is not in {self.db.describe()}. Build one with `newsbot build`.")
        return Manifest.from_json(str(rows[0][0]))

    def current_manifest(self) -> Manifest:
        return self.manifest()

    def set_current(self, name: str) -> None:
        """Make generation `name` the live one (one SQL statement), then point the Milvus alias at it."""
        with self.db.transaction(lock=f"newsbot-store:{self.prefix}"):
            self.db.execute(
                "UPDATE store_generations SET live = CASE WHEN name = ? THEN 1 ELSE 0 END WHERE prefix = ?",
                (name, self.prefix),
            )
        try:
            if self.prefix in self.client.list_aliases().get("aliases", []):
                self.client.alter_alias(collection_name=name, alias=self.prefix)
            else:
                self.client.create_alias(collection_name=name, alias=self.prefix)
        except Exception as exc:  # the alias is a convenience for operators; SQL says what is live
            log.warning("could not point Milvus alias %s at %s: %s", self.prefix, name, exc)

    def generations(self) -> list[str]:
        return [str(r[0]) for r in self.db.query(
            "SELECT name FROM store_generations WHERE prefix = ? ORDER BY name", (self.prefix,)
        )]

    def drop_generation(self, name: str) -> None:
        """Delete a generation's Milvus collection and SQL rows (never the live one)."""
        if name == self.current_generation():
            raise IndexProblem(f"generation {name} is live; switch to another before dropping it")
        with contextlib.suppress(Exception):
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        with self.db.transaction(lock=f"newsbot-store:{self.prefix}"):
            for table in ("store_documents", "store_chunks", "store_dedup_signatures", "store_dedup_keys",
                          "store_garbage", "store_terms"):
                self.db.execute(f"DELETE FROM {table} WHERE generation = ?", (name,))
            self.db.execute("DELETE FROM store_generations WHERE name = ?", (name,))

    def remove_stale_generations(self, keep: int = 2) -> list[str]:
        """Drop generations other than the live one and the `keep - 1` newest before it."""
        live = self.current_generation()
        names = self.generations()
        older = [n for n in names if live is None or n < live]
        keepers = ({live} if live else set()) | set(older[-(keep - 1):] if keep > 1 else [])
        removed = [n for n in names if n not in keepers]
        for name in removed:
            self.drop_generation(name)
        return removed

    @contextlib.contextmanager
    def write_lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Serialize builds across processes (the equivalent of the embedded store's `write.lock`);
        `on_wait()` is called once if another build holds it.

        PostgreSQL: an advisory lock held by a transaction on a dedicated connection. SQLite: an flock
        next to the database file.
        """
        if self.db.is_postgres:
            conn = Database(self.db.target)
            try:
                with conn.transaction(lock=None):
                    key = lock_key(f"newsbot-build:{self.prefix}")
                    if not conn.query("SELECT pg_try_advisory_xact_lock(?)", (key,))[0][0]:
                        if on_wait is not None:
                            on_wait()
                        conn.execute("SELECT pg_advisory_xact_lock(?)", (key,))
                    yield
            finally:
                conn.close()
            return
        folder = self.lock_dir or Path(str(self.db.target)).parent
        with file_lock(folder / f"{self.prefix}.build.lock", on_wait):
            yield

    # ------------------------------------------------------------------ readers and writers

    def create_generation(self, manifest: Manifest) -> MilvusWriter:
        """A writer for a new, empty generation named `manifest.generation` (full build)."""
        return MilvusWriter(self, manifest, new=True)

    def open_writer(self) -> MilvusWriter:
        """A writer that updates the live generation in place."""
        manifest = self.manifest()
        self.ensure_loaded(manifest.generation)
        return MilvusWriter(self, manifest, new=False)

    def reader(self, expect_model: str | None = None, previous: object = None) -> MilvusReader:
        """A reader of the live generation (`previous` is accepted for interface parity and unused:
        Milvus rows are live, there is nothing to carry over)."""
        name = self.current_generation()
        if name is None:
            raise IndexMissing(f"no index in {self.describe()}. Build one with `newsbot build`.")
        self.ensure_loaded(name)
        return MilvusReader(self, name, expect_model=expect_model)

    def _live_catalog(self) -> Catalog | None:
        """The live generation's articles (None without a live generation)."""
        name = self.current_generation()
        return Catalog(self.db, prefix="store_", generation=name) if name is not None else None

    def fetched_documents(self) -> list[Document]:
        """The live generation's web articles (origin http(s)), bodies included; [] without an index."""
        catalog = self._live_catalog()
        return catalog.fetched_documents() if catalog is not None else []

    def article_origins(self, ids: Sequence[str] | None = None) -> dict[str, str] | None:
        """id -> origin of the live generation's articles (only `ids`, if given); None when there is no
        live generation or its rows cannot be read."""
        try:
            catalog = self._live_catalog()
            return catalog.article_origins(ids) if catalog is not None else None
        except Exception:  # noqa: BLE001 - a damaged database: the rebuild relies on the article store
            log.warning("could not read the live generation's articles", exc_info=True)
            return None

    def stored_documents(self, ids: Sequence[str]) -> list[Document]:
        """The live generation's articles with these ids, bodies included."""
        catalog = self._live_catalog()
        return catalog.stored_documents(ids) if catalog is not None and ids else []

    def delete_garbage(self, name: str) -> int:
        """Delete from Milvus the passages that committed updates replaced; returns how many."""
        with self._garbage_lock:
            ids = [int(r[0]) for r in self.db.query("SELECT id FROM store_garbage WHERE generation = ?", (name,))]
            for start in range(0, len(ids), 1000):
                part = ids[start:start + 1000]
                self.client.delete(name, ids=part)
                self.db.execute(f"DELETE FROM store_garbage WHERE generation = ? AND id IN ({placeholders(len(part))})",
                                (name, *part))
            return len(ids)

    def vacuum(self, name: str | None = None) -> int:
        """Delete Milvus rows that no committed state lists (left by writers that crashed before
        committing); returns how many. Scans the collection: run it rarely, while no writer runs."""
        name = name or self.current_generation()
        if name is None:
            return 0
        self.delete_garbage(name)
        live = {int(r[0]) for r in self.db.query("SELECT id FROM store_chunks WHERE generation = ?", (name,))}
        orphans: list[int] = []
        iterator = self.client.query_iterator(name, batch_size=1000, filter="", output_fields=["id"])
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    break
                orphans += [int(r["id"]) for r in batch if int(r["id"]) not in live]
        finally:
            iterator.close()
        for start in range(0, len(orphans), 1000):
            self.client.delete(name, ids=orphans[start:start + 1000])
        return len(orphans)
