"""The distributed store: passages in Milvus (dense vectors + BM25 + metadata), articles in SQL.

The search code (`index.search`) reaches a store only through the reader interface that
`index.store.GenerationReader` defines: `dense_search`, `keyword_search`, `hits`, `vectors`, `document`,
`documents`, `latest`, `source_counts`, `sources`, `has_passage_with_all`, `manifest`, `stored_version`.
`MilvusReader` implements the same methods, so query analysis, fusion, diversity and answers are shared.
`MilvusWriter` offers the writer operations `index.build` uses on `GenerationWriter` (add, remove,
find_duplicate, find_by_url, find_near_duplicate, document_row, add_also_reported, commit, abort).

Where things live
-----------------
* **Milvus, one collection per generation** (`<prefix>_g<timestamp>`; the alias `<prefix>` points at the
  live one): one row per passage with its text, the article's metadata (doc id, title, outlet and its
  case-folded key, url, author, `published_ts` as epoch seconds, `MISSING_DATE` when undated), a
  `FLOAT_VECTOR` (inner product of unit vectors = cosine) and a `SPARSE_FLOAT_VECTOR` that Milvus's BM25
  function computes from `search_text` on insert. Every search runs in Milvus only.
* **SQL (`index.sql.Database`: SQLite file or PostgreSQL)**: article bodies and the bookkeeping an
  update needs: which passages of which article are live (`store_chunks`), content hashes and canonical
  URLs (exact duplicates), MinHash signatures and LSH keys (near duplicates), manifests and which
  generation is live. Article bodies are unbounded (Milvus VARCHAR stops at 65,535 bytes), these lookups
  are relational (GROUP BY outlet, newest first, joins of keys), and — the main reason — SQL gives the
  transaction that makes an update atomic, which Milvus does not have.

Atomic updates without Milvus transactions
------------------------------------------
A passage is *visible* only while `store_chunks` lists it; readers drop every other Milvus row. A writer
streams new passages into Milvus (invisible), then commits one SQL transaction that switches the
article rows and `store_chunks` over and records the replaced passages in `store_garbage`; only then are
those deleted from Milvus (and the garbage rows with them). A crash before the commit leaves invisible
rows (deleted by the next `abort`/`vacuum`); a crash after it leaves garbage that the next writer
deletes. Writers are serialized by the SQL write transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL
advisory lock), across processes and machines.

Chunk ids are int64 and stable across processes: a hash of (article id, ordinal, passage hash), so two
bot processes (or a rebuild) give a passage the same id, and re-adding the same article is idempotent.

Keyword matching: the embedded store's FTS5 index uses the Porter stemmer; Milvus Lite only has a plain
`standard` tokenizer. So `search_text` holds the passage's header line and text already lower-cased,
stripped of accents and Porter-stemmed by us (`analyze`), and queries are analyzed the same way: the
behaviour is identical on Milvus Lite and on a Milvus server. `head_weight` other than 1 is not
supported (one BM25 field holds head and text). With head_weight 1, FTS5's bm25 is plain BM25 over the
head and text together, so the rankings agree closely (MultiHop-RAG dev, `benchmarks/multihop.py
--store milvus`: every retrieval metric within 0.003 of the embedded store's): the BM25 index uses FTS5's
k1 = 1.2, b = 0.75 (Milvus Lite's default k1 is 1.5), a query keeps a stem that two query words share
twice (FTS5 scores each quoted word), and the remaining difference is Milvus's idf,
log(1 + (N - n + 0.5) / (n + 0.5)) against FTS5's log((N - n + 0.5) / (n + 0.5)).

Word statistics: `passage_frequency` (the idf of the re-scoring and of query-word selection) reads
`store_terms`, how many live passages hold each stem, which writers keep up to date in the same SQL
transaction as `store_chunks` (a `text_match` count in Milvus Lite scans every passage: about a second
per word on 8,000 passages). Generations built before this table existed have no `term_counts` flag in
their manifest and keep counting with `text_match`.

Milvus Lite keeps a collection's rows in memory until it flushes them into a segment, and searches the
unflushed rows by rebuilding their indexes on every search; it also forgets on restart that a
collection was loaded. So with Lite a commit flushes, and readers and writers load the collection.

Tested against Milvus Lite (pure-Python milvus-lite 3.x, in-process from a local path, or its gRPC
server for several processes). Milvus Lite returns BM25 scores as negative distances, a server as
positive scores; both are reported here as positive bm25 (higher is better), in Milvus's order.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document, canonical_url, parse_date
from newsbot.index.hits import Filters, Hit
from newsbot.index.ingest.dedup import jaccard_estimate, lsh_keys, minhash
from newsbot.index.sql import Database, lock_key, redact_url
from newsbot.index.store import (
    IndexMismatch,
    IndexMissing,
    IndexProblem,
    Manifest,
    head_text,
    now_iso,
    source_key,
)

log = logging.getLogger("newsbot.milvus")

MISSING_DATE = -1.0e18  # published_ts of undated articles (Milvus scalars here are not nullable)
QUERY_WINDOW = 16384  # Milvus caps offset + limit of one query/search at this
BATCH = 256  # passages per Milvus upsert
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,180}$")

# ---------------------------------------------------------------------------------------------- SQL

SQL_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS store_generations (
        name TEXT PRIMARY KEY,
        prefix TEXT NOT NULL,
        manifest TEXT NOT NULL,
        live INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS store_documents (
        generation TEXT NOT NULL,
        id TEXT NOT NULL,
        title TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        source_key TEXT NOT NULL DEFAULT '',
        url TEXT NOT NULL DEFAULT '',
        canonical_url TEXT NOT NULL DEFAULT '',
        published_at TEXT,
        published_ts REAL,
        author TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]',
        origin TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL,
        also_reported_by TEXT NOT NULL DEFAULT '[]',
        body TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (generation, id)
    )""",
    "CREATE INDEX IF NOT EXISTS store_documents_source ON store_documents(generation, source_key)",
    "CREATE INDEX IF NOT EXISTS store_documents_published ON store_documents(generation, published_ts)",
    "CREATE INDEX IF NOT EXISTS store_documents_hash ON store_documents(generation, content_hash)",
    "CREATE INDEX IF NOT EXISTS store_documents_url ON store_documents(generation, canonical_url)",
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
BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}  # SQLite FTS5's bm25 constants
TERM_COUNTS = "term_counts"  # manifest.extra flag: store_terms is maintained for this generation

_DOC_COLUMNS = "id, title, body, source, url, published_at, author, tags, origin, also_reported_by"


def _document_from_row(row: Sequence[object]) -> Document:
    doc_id, title, body, source, url, published, author, tags, origin, also = row
    return Document(
        id=str(doc_id), title=str(title), body=str(body), source=str(source), url=str(url),
        published_at=parse_date(published), author=str(author), tags=tuple(json.loads(str(tags))),
        origin=str(origin), also_reported_by=tuple(json.loads(str(also))),
    )


def _in(n: int) -> str:
    return ",".join("?" * n)


# ---------------------------------------------------------------------------------------------- text


_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_stemmers = threading.local()


def _stemmer() -> Any:
    stemmer = getattr(_stemmers, "porter", None)
    if stemmer is None:
        try:
            import snowballstemmer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise IndexProblem("the Milvus store needs snowballstemmer: pip install 'newsbot[milvus]'") from exc
        stemmer = _stemmers.porter = snowballstemmer.stemmer("porter")
    return stemmer


def analyze(text: str) -> list[str]:
    """Keyword tokens as the embedded store's FTS5 `porter unicode61 remove_diacritics` makes them:
    words of letters and digits, lower case, accents removed, Porter-stemmed."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = _WORDS.findall(folded)
    if not words:
        return []
    return [stem or word for word, stem in zip(words, _stemmer().stemWords(words), strict=True)]


def query_text(terms: Sequence[str], *, unique: bool = True) -> str:
    """A query for any of `terms` (analyzed like passages), each stem once unless `unique` is False:
    BM25 then weighs a stem that two terms share twice, as FTS5 does with one quoted phrase per term."""
    tokens = analyze(" ".join(terms))
    return " ".join(dict.fromkeys(tokens) if unique else tokens)


def chunk_id_for(doc_id: str, chunk: Chunk) -> int:
    """A positive int64 id for a passage, the same in every process: hash of article id, position, text."""
    key = f"{doc_id}\x00{chunk.ordinal}\x00{chunk.passage_hash}".encode()
    value = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF
    return value or 1


def _clip(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= max_bytes else data[:max_bytes].decode("utf-8", errors="ignore")


def _literal(text: str) -> str:
    """A Milvus expression string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expr(filters: Filters) -> str:
    """`Filters` as a Milvus boolean expression ('' = no restriction). Undated articles never match a
    date bound, as in the embedded store (NULL comparisons are false there)."""
    clauses = []
    if filters.sources:
        keys = sorted({source_key(s) for s in filters.sources})
        clauses.append(f"source_key in [{', '.join(_literal(k) for k in keys)}]")
    if filters.since:
        clauses.append(f"published_ts >= {filters.since.timestamp()!r}")
    if filters.until:
        clauses.append(f"(published_ts <= {filters.until.timestamp()!r} and published_ts > {MISSING_DATE!r})")
    return " and ".join(clauses)


def _and(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


# ---------------------------------------------------------------------------------------------- Milvus


def connect_milvus(uri: str, token: str = "") -> Any:
    """A `MilvusClient` for a server URL (`http://host:19530`) or a local Milvus Lite path (`./x.db`)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise IndexProblem("the Milvus store needs pymilvus: pip install 'newsbot[milvus]'") from exc
    if "://" not in uri:
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return MilvusClient(str(Path(uri).expanduser()))
    return MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)


def _create_collection(client: Any, name: str, dim: int, dense_index: str) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    schema.add_field("ordinal", DataType.INT64)
    schema.add_field("span_start", DataType.INT64)
    schema.add_field("span_end", DataType.INT64)
    schema.add_field("title", DataType.VARCHAR, max_length=4096)
    schema.add_field("source", DataType.VARCHAR, max_length=1024)
    schema.add_field("source_key", DataType.VARCHAR, max_length=1024)
    schema.add_field("url", DataType.VARCHAR, max_length=4096)
    schema.add_field("author", DataType.VARCHAR, max_length=1024)
    schema.add_field("published_at", DataType.VARCHAR, max_length=64)
    schema.add_field("published_ts", DataType.DOUBLE)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field(
        "search_text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, enable_match=True,
        analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]},
    )
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(
        name="bm25", function_type=FunctionType.BM25, input_field_names=["search_text"],
        output_field_names=["sparse"],
    ))
    index = client.prepare_index_params()
    index.add_index("dense", index_type=dense_index, metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=dict(BM25_PARAMS))
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result]


# ---------------------------------------------------------------------------------------------- store


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
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{self.prefix}.build.lock", "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

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

    def fetched_documents(self) -> list[Document]:
        """The live generation's web articles (origin http(s)), bodies included; [] without an index."""
        name = self.current_generation()
        if name is None:
            return []
        rows = self.db.query(
            f"SELECT {_DOC_COLUMNS} FROM store_documents WHERE generation = ?"
            " AND (origin LIKE 'http://%' OR origin LIKE 'https://%') ORDER BY added_at, id",
            (name,),
        )
        return [_document_from_row(r) for r in rows]

    def article_origins(self, ids: Sequence[str] | None = None) -> dict[str, str] | None:
        """id -> origin of the live generation's articles (only `ids`, if given); None when there is no
        live generation or its rows cannot be read."""
        try:
            name = self.current_generation()
            if name is None:
                return None
            if ids is None:
                rows = self.db.query("SELECT id, origin FROM store_documents WHERE generation = ?", (name,))
            else:
                rows = []
                for start in range(0, len(ids), 500):
                    part = list(ids[start:start + 500])
                    rows += self.db.query(
                        f"SELECT id, origin FROM store_documents WHERE generation = ? AND id IN ({_in(len(part))})",
                        (name, *part),
                    )
        except Exception:  # noqa: BLE001 - a damaged database: the rebuild relies on the article store
            log.warning("could not read the live generation's articles", exc_info=True)
            return None
        return {str(i): str(o) for i, o in rows}

    def stored_documents(self, ids: Sequence[str]) -> list[Document]:
        """The live generation's articles with these ids, bodies included."""
        name = self.current_generation()
        out: list[Document] = []
        for start in range(0, len(ids), 500) if name else ():
            part = list(ids[start:start + 500])
            out += [_document_from_row(r) for r in self.db.query(
                f"SELECT {_DOC_COLUMNS} FROM store_documents WHERE generation = ? AND id IN ({_in(len(part))})"
                " ORDER BY added_at, id", (name, *part),
            )]
        return out

    def delete_garbage(self, name: str) -> int:
        """Delete from Milvus the passages that committed updates replaced; returns how many."""
        with self._garbage_lock:
            ids = [int(r[0]) for r in self.db.query("SELECT id FROM store_garbage WHERE generation = ?", (name,))]
            for start in range(0, len(ids), 1000):
                part = ids[start:start + 1000]
                self.client.delete(name, ids=part)
                self.db.execute(f"DELETE FROM store_garbage WHERE generation = ? AND id IN ({_in(len(part))})",
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


# ---------------------------------------------------------------------------------------------- writer


class MilvusWriter:
    """Adds and removes articles in one generation; `commit` makes the change visible atomically.

    Holds an SQL write transaction (and so the store's write lock) from creation to commit/abort.
    """

    def __init__(self, store: MilvusStore, manifest: Manifest, *, new: bool) -> None:
        self.store = store
        self.manifest = manifest
        self.name = manifest.generation
        self.new = new
        self.client = store.client
        self.compacted = False  # for BuildReport; Milvus compacts on its own
        self.changed = new
        if new:
            manifest.extra = {**manifest.extra, "backend": "milvus", "collection": self.name, TERM_COUNTS: True}
            _create_collection(self.client, self.name, manifest.dim, store.dense_index)
            store.db.execute(
                "INSERT INTO store_generations (name, prefix, manifest, live, created_at) VALUES (?, ?, ?, 0, ?)",
                (self.name, store.prefix, manifest.to_json(), now_iso()),
            )
        else:
            store.delete_garbage(self.name)
        self.db = Database(store.db.target)  # its own connection: the transaction spans the whole update
        self.db.begin(lock=f"newsbot-store:{store.prefix}")
        self._buffer: list[dict[str, Any]] = []
        self._flushed: dict[int, str] = {}  # ids upserted into Milvus by this writer -> doc id
        self._garbage: set[int] = set()  # ids whose rows must go once the commit is durable
        self._count_terms = bool(manifest.extra.get(TERM_COUNTS))
        self._term_delta: dict[str, int] = {}  # stem -> change of its passage count, written at commit
        self._closed = False

    # -- lookups (the same as GenerationWriter's, used by index.build)

    def document_row(self, doc_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            "SELECT id, content_hash, canonical_url, source, also_reported_by FROM store_documents"
            " WHERE generation = ? AND id = ?", (self.name, doc_id),
        )
        if not rows:
            return None
        return dict(zip(("id", "content_hash", "canonical_url", "source", "also_reported_by"), rows[0], strict=True))

    def find_duplicate(self, doc: Document) -> str | None:
        """Id of a stored article with the same text or the same canonical URL, if any."""
        rows = self.db.query(
            "SELECT id FROM store_documents WHERE generation = ? AND id != ? AND (content_hash = ?"
            " OR (canonical_url != '' AND canonical_url = ?)) ORDER BY id LIMIT 1",
            (self.name, doc.id, doc.content_hash(), canonical_url(doc.url)),
        )
        return str(rows[0][0]) if rows else None

    def find_by_url(self, url: str) -> str | None:
        key = canonical_url(url)
        if not key:
            return None
        rows = self.db.query(
            "SELECT id FROM store_documents WHERE generation = ? AND canonical_url = ? LIMIT 1", (self.name, key)
        )
        return str(rows[0][0]) if rows else None

    def find_near_duplicate(self, doc_id: str, sig: np.ndarray, threshold: float) -> tuple[str, float] | None:
        keys = lsh_keys(sig)
        if not keys:
            return None
        rows = self.db.query(
            "SELECT s.doc_id, s.sig FROM store_dedup_signatures s WHERE s.generation = ? AND s.doc_id != ?"
            " AND s.doc_id IN (SELECT k.doc_id FROM store_dedup_keys k WHERE k.generation = ?"
            f" AND k.key IN ({_in(len(keys))}))",
            (self.name, doc_id, self.name, *keys),
        )
        best: tuple[str, float] | None = None
        for other, blob in sorted(rows, key=lambda r: str(r[0])):
            score = jaccard_estimate(sig, np.frombuffer(bytes(blob), dtype="<u4"))
            if score >= threshold and (best is None or score > best[1]):
                best = (str(other), score)
        return best

    def add_also_reported(self, doc_id: str, outlets: Sequence[str]) -> None:
        row = self.db.query(
            "SELECT source, also_reported_by FROM store_documents WHERE generation = ? AND id = ?", (self.name, doc_id)
        )
        if not row:
            return
        source, current = str(row[0][0]), json.loads(str(row[0][1]))
        for outlet in outlets:
            if outlet and source_key(outlet) != source_key(source) and outlet not in current:
                current.append(outlet)
        self.db.execute(
            "UPDATE store_documents SET also_reported_by = ? WHERE generation = ? AND id = ?",
            (json.dumps(current), self.name, doc_id),
        )
        self.changed = True

    # -- changes

    def remove(self, doc_id: str) -> bool:
        """Remove an article; its passages disappear from searches at commit."""
        ids = [int(r[0]) for r in self.db.query(
            "SELECT id FROM store_chunks WHERE generation = ? AND doc_id = ?", (self.name, doc_id)
        )]
        exists = bool(self.db.query("SELECT 1 FROM store_documents WHERE generation = ? AND id = ?",
                                    (self.name, doc_id)))
        if self._count_terms and ids:
            self._count(self._search_texts(ids), -1)
        self._garbage.update(ids)
        self._garbage.update(cid for cid, owner in self._flushed.items() if owner == doc_id)
        self._buffer = [row for row in self._buffer if row["doc_id"] != doc_id]
        for table, column in (("store_chunks", "doc_id"), ("store_dedup_keys", "doc_id"),
                              ("store_dedup_signatures", "doc_id"), ("store_documents", "id")):
            self.db.execute(f"DELETE FROM {table} WHERE generation = ? AND {column} = ?", (self.name, doc_id))
        self.changed = self.changed or exists
        return exists

    def add(
        self, doc: Document, chunks: Sequence[Chunk], vectors: np.ndarray, signature: np.ndarray | None = None
    ) -> list[int]:
        """Store one article (replacing any with the same id), its passages and vectors and its MinHash."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors for {doc.id!r}")
        if len(vectors) and np.asarray(vectors).shape[1] != self.manifest.dim:
            raise IndexMismatch(f"{np.asarray(vectors).shape[1]}-d vectors for a {self.manifest.dim}-d index")
        self.remove(doc.id)
        published_ts = doc.published_at.timestamp() if doc.published_at else None
        published = doc.published_at.isoformat() if doc.published_at else None
        self.db.execute(
            "INSERT INTO store_documents (generation, id, title, source, source_key, url, canonical_url,"
            " published_at, published_ts, author, tags, origin, content_hash, also_reported_by, body, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.name, doc.id, doc.title, doc.source, source_key(doc.source), doc.url, canonical_url(doc.url),
             published, published_ts, doc.author, json.dumps(list(doc.tags)), doc.origin, doc.content_hash(),
             json.dumps(list(doc.also_reported_by)), doc.body, now_iso()),
        )
        head = head_text(doc)
        ids = [chunk_id_for(doc.id, c) for c in chunks]
        if len(set(ids)) != len(ids):
            raise IndexProblem(f"chunk id collision inside article {doc.id!r}")
        self.db.executemany(
            "INSERT INTO store_chunks (generation, id, doc_id) VALUES (?, ?, ?)",
            [(self.name, cid, doc.id) for cid in ids],
        )
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        for cid, chunk, vec in zip(ids, chunks, vecs, strict=True):
            self._buffer.append({
                "id": cid, "doc_id": _clip(doc.id, 1024), "ordinal": chunk.ordinal, "span_start": chunk.start,
                "span_end": chunk.end, "title": _clip(doc.title, 4096), "source": _clip(doc.source, 1024),
                "source_key": _clip(source_key(doc.source), 1024), "url": _clip(doc.url, 4096),
                "author": _clip(doc.author, 1024), "published_at": published or "",
                "published_ts": published_ts if published_ts is not None else MISSING_DATE,
                "text": _clip(chunk.text, 65535),
                "search_text": _clip(" ".join(analyze(head + "\n" + chunk.text)), 65535),
                "dense": vec.tolist(),
            })
        self._garbage.difference_update(ids)  # an unchanged passage keeps its id and row
        if self._count_terms:
            self._count([row["search_text"] for row in self._buffer[-len(ids):]] if ids else [], +1)
        sig = minhash(doc.body) if signature is None else signature
        self.db.execute(
            "INSERT INTO store_dedup_signatures (generation, doc_id, sig) VALUES (?, ?, ?)",
            (self.name, doc.id, np.ascontiguousarray(sig, dtype="<u4").tobytes()),
        )
        self.db.executemany(
            "INSERT INTO store_dedup_keys (generation, key, doc_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(self.name, k, doc.id) for k in lsh_keys(sig)],
        )
        self.changed = True
        if len(self._buffer) >= BATCH:
            self._flush()
        return ids

    def _count(self, search_texts: Sequence[str], sign: int) -> None:
        """Add `sign` to the passage count of every stem of each passage's `search_text`."""
        delta = self._term_delta
        for text in search_texts:
            for term in set(text.split()):
                delta[term] = delta.get(term, 0) + sign

    def _search_texts(self, ids: Sequence[int]) -> list[str]:
        """The `search_text` of passages `ids` as last written: this writer's buffer, else Milvus."""
        buffered = {int(row["id"]): str(row["search_text"]) for row in self._buffer}
        texts = [buffered[cid] for cid in ids if cid in buffered]
        rest = [cid for cid in ids if cid not in buffered]
        for start in range(0, len(rest), 500):
            rows = _rows(self.client.get(self.name, ids=rest[start:start + 500], output_fields=["search_text"]))
            texts += [str(r["search_text"]) for r in rows]
        return texts

    def _write_term_counts(self) -> None:
        changed = sorted((t, d) for t, d in self._term_delta.items() if d)
        for start in range(0, len(changed), 5000):
            self.db.executemany(
                "INSERT INTO store_terms (generation, term, df) VALUES (?, ?, ?) ON CONFLICT (generation, term)"
                " DO UPDATE SET df = store_terms.df + excluded.df",
                [(self.name, t, d) for t, d in changed[start:start + 5000]],
            )
        if any(d < 0 for _, d in changed):
            self.db.execute("DELETE FROM store_terms WHERE generation = ? AND df <= 0", (self.name,))
        self._term_delta = {}

    def _flush(self) -> None:
        """Upsert buffered passages into Milvus (invisible to readers until the SQL commit)."""
        while self._buffer:
            batch, self._buffer = self._buffer[:BATCH], self._buffer[BATCH:]
            self.client.upsert(self.name, batch)
            for row in batch:
                self._flushed[int(row["id"])] = str(row["doc_id"])

    def commit(self) -> Manifest:
        """Write the remaining passages to Milvus, then commit SQL: the moment the update becomes visible."""
        try:
            self._flush()
            m = self.manifest
            m.version += 1
            m.documents = int(self.db.query("SELECT count(*) FROM store_documents WHERE generation = ?",
                                            (self.name,))[0][0])
            m.chunks = int(self.db.query("SELECT count(*) FROM store_chunks WHERE generation = ?",
                                         (self.name,))[0][0])
            m.updated_at = now_iso()
            m.created_at = m.created_at or m.updated_at
            self.db.executemany(
                "INSERT INTO store_garbage (generation, id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(self.name, cid) for cid in sorted(self._garbage)],
            )
            if self._count_terms:
                self._write_term_counts()
            self.db.execute("UPDATE store_generations SET manifest = ? WHERE name = ?", (m.to_json(), self.name))
            if self.store.lite:  # searches then use the sealed segment's cached indexes
                self.client.flush(self.name)
        except BaseException:
            self.abort()
            raise
        self.db.commit()  # the moment the new version becomes visible
        self._closed = True
        self.db.close()
        try:
            self.store.delete_garbage(self.name)
        except Exception as exc:  # retried by the next writer
            log.warning("could not delete %d replaced passages from Milvus yet: %s", len(self._garbage), exc)
        return self.manifest

    def abort(self) -> None:
        """Forget every change; passages already written to Milvus are deleted (a new generation is dropped)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.db.rollback()
        self.db.close()
        if self.new:
            with contextlib.suppress(Exception):
                self.store.drop_generation(self.name)
            return
        flushed = list(self._flushed)
        if flushed:
            live = set()
            for start in range(0, len(flushed), 500):
                part = flushed[start:start + 500]
                live.update(int(r[0]) for r in self.store.db.query(
                    f"SELECT id FROM store_chunks WHERE generation = ? AND id IN ({_in(len(part))})",
                    (self.name, *part),
                ))
            orphans = [cid for cid in flushed if cid not in live]
            with contextlib.suppress(Exception):
                for start in range(0, len(orphans), 1000):
                    self.client.delete(self.name, ids=orphans[start:start + 1000])


# ---------------------------------------------------------------------------------------------- reader


class MilvusReader:
    """Read access to one generation, with the same methods as `index.store.GenerationReader`.

    Milvus rows are live data, so one reader serves every version; `stored_version()` tells callers
    (caches keyed by version) when an update committed, and `refresh()` re-reads the manifest.
    """

    def __init__(self, store: MilvusStore, name: str, *, expect_model: str | None = None) -> None:
        self.store = store
        self.name = name
        self.client = store.client
        self.db = store.db
        self.manifest = store.manifest(name)
        if expect_model is not None and self.manifest.model != expect_model:
            raise IndexMismatch(
                f"the index in {store.describe()} was built with embedding model {self.manifest.model!r}, "
                f"but the setting asks for {expect_model!r}. Rebuild it with `newsbot build`, or set "
                f"NEWSBOT_EMBEDDING_MODEL={self.manifest.model} to use it as it is."
            )
        self.version = self.faiss_version = self.manifest.version

    # -- versions

    def stored_version(self) -> int:
        return self.store.manifest(self.name).version

    def refresh(self) -> bool:
        """Re-read the manifest; True if an update committed since."""
        manifest = self.store.manifest(self.name)
        changed = manifest.version != self.version
        self.manifest, self.version, self.faiss_version = manifest, manifest.version, manifest.version
        return changed

    def close(self) -> None:
        pass

    # -- retrieval

    def _visible(self, ids: Sequence[int]) -> set[int]:
        """The ids that committed state lists (rows of in-flight or crashed writers are not)."""
        out: set[int] = set()
        ids = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            out.update(int(r[0]) for r in self.db.query(
                f"SELECT id FROM store_chunks WHERE generation = ? AND id IN ({_in(len(part))})", (self.name, *part)
            ))
        return out

    def _keep_visible(self, rows: list[list[tuple[int, float]]]) -> list[list[tuple[int, float]]]:
        visible = self._visible([cid for row in rows for cid, _ in row])
        return [[(cid, s) for cid, s in row if cid in visible] for row in rows]

    def dense_search(self, vectors: np.ndarray, k: int, filters: Filters = Filters()) -> list[list[tuple[int, float]]]:
        """For each query vector (shape (q, dim), unit length): up to k (chunk_id, cosine), best first."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) == 0 or k <= 0:
            return [[] for _ in range(len(vectors))]
        result = self.client.search(
            self.name, data=vectors.tolist(), anns_field="dense", limit=min(k, QUERY_WINDOW),
            filter=filter_expr(filters), search_params={"metric_type": "IP"}, output_fields=["doc_id"],
        )
        rows = [[(int(h["id"]), float(h["distance"])) for h in row] for row in result]
        return self._keep_visible(rows)

    def keyword_search(
        self, terms: Sequence[str], k: int, filters: Filters = Filters(), head_weight: float = 1.0
    ) -> list[tuple[int, float]]:
        """Up to k (chunk_id, bm25) for passages matching any term, best first (Milvus's BM25)."""
        text = query_text(terms, unique=False)
        if not text or k <= 0:
            return []
        result = self.client.search(
            self.name, data=[text], anns_field="sparse", limit=min(k, QUERY_WINDOW),
            filter=filter_expr(filters), search_params={"metric_type": "BM25"}, output_fields=["doc_id"],
        )
        row = [(int(h["id"]), abs(float(h["distance"]))) for h in result[0]] if result else []
        return self._keep_visible([row])[0]

    def hits(self, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        """Hits (score 0) for the chunk ids that are live; others are simply absent."""
        visible = sorted(self._visible(chunk_ids))
        out: dict[int, Hit] = {}
        fields = ["doc_id", "title", "source", "url", "published_at", "text", "span_start", "span_end", "author"]
        for start in range(0, len(visible), 500):
            for r in _rows(self.client.get(self.name, ids=visible[start:start + 500], output_fields=fields)):
                cid = int(r["id"])
                out[cid] = Hit(
                    chunk_id=cid, doc_id=str(r["doc_id"]), title=str(r["title"]), source=str(r["source"]),
                    url=str(r["url"]), published_at=parse_date(r["published_at"] or None), text=str(r["text"]),
                    start=int(r["span_start"]), end=int(r["span_end"]), score=0.0, author=str(r["author"]),
                )
        return out

    def vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of chunks (shape (n, dim)); unknown chunks get zero rows."""
        out = np.zeros((len(chunk_ids), self.manifest.dim), dtype=np.float32)
        ids = list(dict.fromkeys(int(i) for i in chunk_ids))
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            for r in _rows(self.client.get(self.name, ids=ids[start:start + 500], output_fields=["dense"])):
                found[int(r["id"])] = np.asarray(r["dense"], dtype=np.float32)
        for row, cid in enumerate(chunk_ids):
            vec = found.get(int(cid))
            if vec is not None:
                out[row] = vec
        return out

    def _term_counts(self, tokens: Sequence[str]) -> dict[str, int]:
        """Live passages per stem, from `store_terms` (stems no passage holds are 0)."""
        rows = self.db.query(
            f"SELECT term, df FROM store_terms WHERE generation = ? AND term IN ({_in(len(tokens))})",
            (self.name, *tokens),
        )
        found = {str(r[0]): int(r[1]) for r in rows}
        return {t: found.get(t, 0) for t in tokens}

    def passage_frequency(self, term: str) -> int:
        """How many passages contain `term` (after the same analysis as the BM25 field), for idf weights.

        A term of several words (`u.s.`, `co-founder`) counts as its rarest word. Generations without
        `store_terms` count in Milvus (rows not yet committed or already replaced too)."""
        tokens = list(dict.fromkeys(analyze(term)))
        if not tokens:
            return 0
        if self.manifest.extra.get(TERM_COUNTS):
            return min(self._term_counts(tokens).values())
        expr = " and ".join(f"text_match(search_text, {_literal(t)})" for t in tokens)
        rows = _rows(self.client.query(self.name, filter=expr, output_fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def has_passage_with_all(self, words: Sequence[str]) -> bool:
        """Whether some live passage (text or header line) contains every one of `words`."""
        tokens = list(dict.fromkeys(t for w in words for t in analyze(w)))
        if not tokens:
            return True
        if self.manifest.extra.get(TERM_COUNTS):  # a word no live passage holds settles it without Milvus
            counts = self._term_counts(tokens)
            if min(counts.values()) == 0:
                return False
            if len(tokens) == 1:
                return True
        expr = " and ".join(f"text_match(search_text, {_literal(t)})" for t in tokens)
        rows = _rows(self.client.query(self.name, filter=expr, output_fields=["id"], limit=50))
        return bool(self._visible([int(r["id"]) for r in rows]))

    # -- articles

    def document(self, doc_id: str) -> tuple[Document, int] | None:
        rows = self.db.query(
            f"SELECT {_DOC_COLUMNS} FROM store_documents WHERE generation = ? AND id = ?", (self.name, doc_id)
        )
        if not rows:
            return None
        n = self.db.query("SELECT count(*) FROM store_chunks WHERE generation = ? AND doc_id = ?",
                          (self.name, doc_id))[0][0]
        return _document_from_row(rows[0]), int(n)

    def documents(self) -> list[Document]:
        rows = self.db.query(f"SELECT {_DOC_COLUMNS} FROM store_documents WHERE generation = ? ORDER BY id",
                             (self.name,))
        return [_document_from_row(r) for r in rows]

    def _filter_sql(self, filters: Filters) -> tuple[str, list[object]]:
        clauses, params = ["generation = ?"], [self.name]
        if filters.sources:
            keys = [source_key(s) for s in filters.sources]
            clauses.append(f"source_key IN ({_in(len(keys))})")
            params.extend(keys)
        if filters.since:
            clauses.append("published_ts >= ?")
            params.append(filters.since.timestamp())
        if filters.until:
            clauses.append("published_ts <= ?")
            params.append(filters.until.timestamp())
        return " AND ".join(clauses), params

    def latest(self, limit: int = 10, filters: Filters = Filters(), terms: Sequence[str] = ()) -> list[Document]:
        """The newest articles (bodies empty), optionally only those with a passage matching any term."""
        where, params = self._filter_sql(filters)
        columns = "id, title, '' AS body, source, url, published_at, author, tags, origin, also_reported_by"
        order = " ORDER BY published_ts IS NULL, published_ts DESC, added_at DESC, id"
        if not terms:
            rows = self.db.query(f"SELECT {columns} FROM store_documents WHERE {where}{order} LIMIT ?",
                                 (*params, limit))
            return [_document_from_row(r) for r in rows]
        text = query_text(terms)
        if not text:
            return []
        expr = _and(f"text_match(search_text, {_literal(text)})", filter_expr(filters))
        matched = _rows(self.client.query(self.name, filter=expr, output_fields=["doc_id"], limit=QUERY_WINDOW))
        doc_ids = sorted({str(r["doc_id"]) for r in matched})
        found = []
        for start in range(0, len(doc_ids), 500):
            part = doc_ids[start:start + 500]
            found += self.db.query(
                f"SELECT {columns}, published_ts, added_at FROM store_documents WHERE {where}"
                f" AND id IN ({_in(len(part))})", (*params, *part),
            )
        found.sort(key=lambda r: str(r[0]))  # stable sorts: newest first, then latest added, then id
        found.sort(key=lambda r: str(r[11]), reverse=True)
        found.sort(key=lambda r: (r[10] is None, -(r[10] or 0.0)))
        return [_document_from_row(r[:10]) for r in found[:limit]]

    def source_counts(self) -> list[tuple[str, int]]:
        rows = self.db.query(
            "SELECT MIN(source), count(*) FROM store_documents WHERE generation = ? GROUP BY source_key"
            " ORDER BY count(*) DESC, MIN(source)", (self.name,),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def sources(self) -> list[str]:
        return [s for s, _ in self.source_counts() if s]
