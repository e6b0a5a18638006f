"""The article catalogue: the SQL both stores keep their articles in, written once.

A generation's articles are rows of an articles table (`documents`): metadata, the outlet normalised
(`source_key`), the canonical URL and content hash that find exact copies, the full text, and the
outlets of copies merged into it (`also_reported_by`); beside it, each article's MinHash signature and
LSH keys (`dedup_signatures`, `dedup_keys`: near duplicates, `index.ingest.dedup`) and which passages
are its own (`chunks`). The embedded store keeps these tables in each generation's own SQLite file; the
Milvus store keeps them in its SQL database (SQLite or PostgreSQL) with a `store_` prefix and a
`generation` column, since one database holds every generation. `Catalog` runs the same statements on
both: `prefix` names the tables and `generation` scopes every statement to one generation.

Rows come back in a fixed order wherever several may match (by id last), so both stores answer alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from newsbot.index.documents import Document, canonical_url, parse_date
from newsbot.index.hits import Filters, Hit
from newsbot.index.ingest.dedup import jaccard_estimate, lsh_keys
from newsbot.index.store.base import now_iso

DOCUMENT_COLUMNS = "id, title, body, source, url, published_at, author, tags, origin, also_reported_by"
LISTING_COLUMNS = "id, title, '' AS body, source, url, published_at, author, tags, origin, also_reported_by"  # no text
WEB_ORIGIN = "(origin LIKE 'http://%' OR origin LIKE 'https://%')"  # a fetched page or feed entry
SAME_STORY = "(content_hash = ? OR (canonical_url != '' AND canonical_url = ?))"
_TABLE_COLUMNS = """
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
    added_at TEXT NOT NULL"""


class Rows(Protocol):
    """The three calls the catalogue makes: `index.store.sql.Database` has them, and so does the
    embedded store's SQLite connection seen through `index.store.embedded.sqlite.ConnectionRows`."""

    def query(self, statement: str, params: Sequence[object] = ()) -> list[tuple]: ...

    def execute(self, statement: str, params: Sequence[object] = ()) -> Any: ...

    def executemany(self, statement: str, rows: Iterable[Sequence[object]]) -> None: ...


def documents_table(table: str, *, per_generation: bool = False) -> list[str]:
    """The CREATE statements of an articles table and its indexes (by outlet, date, content hash, URL).

    per_generation: the table holds the articles of several generations (a `generation` key column)."""
    key = "\n    generation TEXT NOT NULL,\n    id TEXT NOT NULL," if per_generation else "\n    id TEXT PRIMARY KEY,"
    primary = ",\n    PRIMARY KEY (generation, id)" if per_generation else ""
    lead = "generation, " if per_generation else ""
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ({key}{_TABLE_COLUMNS}{primary}\n)",
        *(f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table}({lead}{column})"
          for name, column in (("source", "source_key"), ("published", "published_ts"), ("hash", "content_hash"),
                               ("url", "canonical_url"))),
    ]


def source_key(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip().casefold()


def head_text(doc: Document | Hit) -> str:
    """The metadata words a passage is found by: title, outlet, date (several spellings) and tags."""
    parts = [doc.title, doc.source]
    if doc.published_at:
        d = doc.published_at
        parts.append(f"{d:%Y-%m-%d} {d:%B} {d.day} {d.year} {d:%b}")
    if isinstance(doc, Document):
        parts.extend(doc.tags)
    return " ".join(p for p in parts if p)


def document_from_row(row: Sequence[object]) -> Document:
    doc_id, title, body, source, url, published, author, tags, origin, also = row
    return Document(
        id=str(doc_id), title=str(title), body=str(body), source=str(source), url=str(url),
        published_at=parse_date(published), author=str(author), tags=tuple(json.loads(str(tags))),
        origin=str(origin), also_reported_by=tuple(json.loads(str(also))),
    )


def placeholders(n: int) -> str:
    return ",".join("?" * n)


class Catalog:
    """The articles of one generation, in SQL (see the module doc): `rows` runs the statements, `prefix`
    names the tables ("" or "store_"), `generation` scopes them (None: the tables hold one generation)."""

    def __init__(self, rows: Rows, *, prefix: str = "", generation: str | None = None) -> None:
        self.rows = rows
        self.documents_table = f"{prefix}documents"
        self.chunks_table = f"{prefix}chunks"
        self.signatures_table = f"{prefix}dedup_signatures"
        self.keys_table = f"{prefix}dedup_keys"
        self.generation = generation
        self.scope_params: tuple[object, ...] = (generation,) if generation is not None else ()

    def scope(self, alias: str = "") -> list[str]:
        """The condition that keeps to this generation ([] when the tables hold no other)."""
        return [] if self.generation is None else [f"{alias + '.' if alias else ''}generation = ?"]

    def _where(self, *conditions: str, alias: str = "") -> str:
        """`WHERE` this generation and `conditions` ('' when there is no condition at all)."""
        clauses = [*self.scope(alias), *conditions]
        return " WHERE " + " AND ".join(clauses) if clauses else ""

    def filter_sql(self, filters: Filters, alias: str = "") -> tuple[str, list[object]]:
        """The conditions (joined by AND; '' for none) and parameters that keep to this generation and
        to the outlets and dates `filters` allows. Undated articles never match a date bound."""
        p = f"{alias}." if alias else ""
        clauses, params = self.scope(alias), list(self.scope_params)
        if filters.sources:
            keys = [source_key(s) for s in filters.sources]
            clauses.append(f"{p}source_key IN ({placeholders(len(keys))})")
            params.extend(keys)
        if filters.since:
            clauses.append(f"{p}published_ts >= ?")
            params.append(filters.since.timestamp())
        if filters.until:
            clauses.append(f"{p}published_ts <= ?")
            params.append(filters.until.timestamp())
        return " AND ".join(clauses), params

    # ------------------------------------------------------------------ reading

    def document(self, doc_id: str) -> tuple[Document, int] | None:
        """An article, body included, and how many passages it has."""
        rows = self.rows.query(f"SELECT {DOCUMENT_COLUMNS} FROM {self.documents_table}{self._where('id = ?')}",
                               (*self.scope_params, doc_id))
        if not rows:
            return None
        n = self.rows.query(f"SELECT count(*) FROM {self.chunks_table}{self._where('doc_id = ?')}",
                            (*self.scope_params, doc_id))[0][0]
        return document_from_row(rows[0]), int(n)

    def documents(self) -> list[Document]:
        """Every stored article, body included."""
        rows = self.rows.query(f"SELECT {DOCUMENT_COLUMNS} FROM {self.documents_table}{self._where()} ORDER BY id",
                               self.scope_params)
        return [document_from_row(r) for r in rows]

    def document_ids(self) -> list[str]:
        """The id of every stored article, ascending (no other column read)."""
        rows = self.rows.query(f"SELECT id FROM {self.documents_table}{self._where()} ORDER BY id", self.scope_params)
        return [r[0] for r in rows]

    def latest(self, limit: int, filters: Filters = Filters(), matching: str = "",
               matching_params: Sequence[object] = ()) -> list[Document]:
        """The newest articles (bodies empty) that `filters` allow and the condition `matching` (on the
        articles table, alias `d`) holds for."""
        where, params = self.filter_sql(filters, alias="d")
        conditions = [c for c in (where, matching) if c]
        sql = f"SELECT {LISTING_COLUMNS} FROM {self.documents_table} d"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY d.published_ts IS NULL, d.published_ts DESC, d.added_at DESC, d.id LIMIT ?"
        rows = self.rows.query(sql, [*params, *matching_params, limit])
        return [document_from_row(r) for r in rows]

    def titled(self, text: str, limit: int) -> list[Document]:
        """The newest articles (bodies empty) whose title contains `text` or whose id starts with it,
        ignoring case (ASCII letters only on SQLite); the newest of all when `text` is blank."""
        text = text.strip().lower()
        if not text:
            return self.latest(limit)
        escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        return self.latest(limit, Filters(), "(LOWER(d.title) LIKE ? ESCAPE '!' OR LOWER(d.id) LIKE ? ESCAPE '!')",
                           [f"%{escaped}%", f"{escaped}%"])

    def source_counts(self) -> list[tuple[str, int]]:
        """(outlet, articles) per outlet, most articles first; spellings of one outlet count as one."""
        rows = self.rows.query(
            f"SELECT MIN(source), count(*) FROM {self.documents_table}{self._where()} GROUP BY source_key"
            " ORDER BY count(*) DESC, MIN(source)", self.scope_params,
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def sources(self) -> list[str]:
        return [s for s, _ in self.source_counts() if s]

    def fetched_documents(self) -> list[Document]:
        """The web articles (origin an http(s) URL), bodies included, oldest first."""
        rows = self.rows.query(
            f"SELECT {DOCUMENT_COLUMNS} FROM {self.documents_table}{self._where(WEB_ORIGIN)} ORDER BY added_at, id",
            self.scope_params,
        )
        return [document_from_row(r) for r in rows]

    def article_origins(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """id -> origin of the articles (only `ids`, when given)."""
        if ids is None:
            rows = self.rows.query(f"SELECT id, origin FROM {self.documents_table}{self._where()}", self.scope_params)
        else:
            rows = []
            for start in range(0, len(ids), 500):
                part = list(ids[start:start + 500])
                rows += self.rows.query(
                    f"SELECT id, origin FROM {self.documents_table}{self._where(f'id IN ({placeholders(len(part))})')}",
                    (*self.scope_params, *part),
                )
        return {str(i): str(o) for i, o in rows}

    def stored_documents(self, ids: Sequence[str]) -> list[Document]:
        """The articles with these ids, bodies included, oldest first."""
        out: list[Document] = []
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            out += [document_from_row(r) for r in self.rows.query(
                f"SELECT {DOCUMENT_COLUMNS} FROM {self.documents_table}"
                f"{self._where(f'id IN ({placeholders(len(part))})')} ORDER BY added_at, id",
                (*self.scope_params, *part),
            )]
        return out

    def passage_ids(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        """doc id -> the ids of its passages (ascending; articles without passages are absent)."""
        out: dict[str, list[int]] = {}
        for start in range(0, len(doc_ids), 500):
            part = list(doc_ids[start:start + 500])
            rows = self.rows.query(
                f"SELECT doc_id, id FROM {self.chunks_table}{self._where(f'doc_id IN ({placeholders(len(part))})')}"
                " ORDER BY doc_id, id", (*self.scope_params, *part),
            )
            for doc_id, cid in rows:
                out.setdefault(str(doc_id), []).append(int(cid))
        return out

    # ------------------------------------------------------------------ lookups a writer makes

    def document_row(self, doc_id: str) -> dict[str, Any] | None:
        """id, content_hash, canonical_url, source and also_reported_by of an article, or None."""
        rows = self.rows.query(
            "SELECT id, content_hash, canonical_url, source, also_reported_by FROM"
            f" {self.documents_table}{self._where('id = ?')}", (*self.scope_params, doc_id),
        )
        if not rows:
            return None
        return dict(zip(("id", "content_hash", "canonical_url", "source", "also_reported_by"), rows[0], strict=True))

    def find_duplicate(self, doc: Document) -> str | None:
        """Id of a stored article with the same text or the same canonical URL, if any."""
        rows = self.rows.query(
            f"SELECT id FROM {self.documents_table}{self._where('id != ?', SAME_STORY)} ORDER BY id LIMIT 1",
            (*self.scope_params, doc.id, doc.content_hash(), canonical_url(doc.url)),
        )
        return str(rows[0][0]) if rows else None

    def find_by_url(self, url: str) -> str | None:
        """Id of the stored article with this canonical URL, if any."""
        key = canonical_url(url)
        if not key:
            return None
        rows = self.rows.query(f"SELECT id FROM {self.documents_table}{self._where('canonical_url = ?')} LIMIT 1",
                               (*self.scope_params, key))
        return str(rows[0][0]) if rows else None

    def find_near_duplicate(self, doc_id: str, sig: np.ndarray, threshold: float) -> tuple[str, float] | None:
        """(id, similarity) of the stored article most similar to `sig` at or above `threshold`, if any."""
        keys = lsh_keys(sig)
        if not keys:
            return None
        sharing_a_key = (f"SELECT k.doc_id FROM {self.keys_table} k"
                         + self._where(f"k.key IN ({placeholders(len(keys))})", alias="k"))
        rows = self.rows.query(
            f"SELECT s.doc_id, s.sig FROM {self.signatures_table} s"
            + self._where("s.doc_id != ?", f"s.doc_id IN ({sharing_a_key})", alias="s"),
            (*self.scope_params, doc_id, *self.scope_params, *keys),
        )
        best: tuple[str, float] | None = None
        for other, blob in sorted(rows, key=lambda r: str(r[0])):
            score = jaccard_estimate(sig, np.frombuffer(bytes(blob), dtype="<u4"))
            if score >= threshold and (best is None or score > best[1]):
                best = (str(other), score)
        return best

    # ------------------------------------------------------------------ changes (inside a writer's transaction)

    def add_also_reported(self, doc_id: str, outlets: Iterable[str]) -> bool:
        """Record other outlets that ran article `doc_id` (not its own, each once); False if it is not stored."""
        rows = self.rows.query(f"SELECT source, also_reported_by FROM {self.documents_table}{self._where('id = ?')}",
                               (*self.scope_params, doc_id))
        if not rows:
            return False
        source, current = str(rows[0][0]), json.loads(str(rows[0][1]))
        for outlet in outlets:
            if outlet and source_key(outlet) != source_key(source) and outlet not in current:
                current.append(outlet)
        self.rows.execute(f"UPDATE {self.documents_table} SET also_reported_by = ?{self._where('id = ?')}",
                          (json.dumps(current), *self.scope_params, doc_id))
        return True

    def insert(self, doc: Document) -> None:
        """Store the article's row (its passages and signature are stored by the caller)."""
        lead = "generation, " if self.generation is not None else ""
        published = doc.published_at.isoformat() if doc.published_at else None
        self.rows.execute(
            f"INSERT INTO {self.documents_table} ({lead}id, title, source, source_key, url, canonical_url,"
            " published_at, published_ts, author, tags, origin, content_hash, also_reported_by, body, added_at)"
            f" VALUES ({placeholders(15 + len(self.scope_params))})",
            (
                *self.scope_params, doc.id, doc.title, doc.source, source_key(doc.source), doc.url,
                canonical_url(doc.url), published, doc.published_at.timestamp() if doc.published_at else None,
                doc.author, json.dumps(list(doc.tags)), doc.origin, doc.content_hash(),
                json.dumps(list(doc.also_reported_by)), doc.body, now_iso(),
            ),
        )

    def store_signature(self, doc_id: str, sig: np.ndarray) -> None:
        """Keep an article's MinHash signature and its LSH keys (replacing a signature it had)."""
        lead = "generation, " if self.generation is not None else ""
        self.rows.execute(
            f"INSERT INTO {self.signatures_table} ({lead}doc_id, sig) VALUES ({placeholders(2 + len(self.scope_params))})"
            f" ON CONFLICT ({lead}doc_id) DO UPDATE SET sig = excluded.sig",
            (*self.scope_params, doc_id, np.ascontiguousarray(sig, dtype="<u4").tobytes()),
        )
        self.rows.executemany(
            f"INSERT INTO {self.keys_table} ({lead}key, doc_id) VALUES ({placeholders(2 + len(self.scope_params))})"
            " ON CONFLICT DO NOTHING",
            [(*self.scope_params, k, doc_id) for k in lsh_keys(sig)],
        )

    def remove(self, doc_id: str) -> bool:
        """Delete an article's row, its passages' rows, its signature and keys; whether it was stored."""
        exists = bool(self.rows.query(f"SELECT 1 FROM {self.documents_table}{self._where('id = ?')}",
                                      (*self.scope_params, doc_id)))
        for table, column in ((self.chunks_table, "doc_id"), (self.keys_table, "doc_id"),
                              (self.signatures_table, "doc_id"), (self.documents_table, "id")):
            self.rows.execute(f"DELETE FROM {table}{self._where(f'{column} = ?')}", (*self.scope_params, doc_id))
        return exists


class CatalogReads:
    """The reader methods both stores answer from their catalogue alone (`self.catalog`)."""

    catalog: Catalog

    def document(self, doc_id: str) -> tuple[Document, int] | None:
        return self.catalog.document(doc_id)

    def documents(self) -> list[Document]:
        """Every stored article, body included."""
        return self.catalog.documents()

    def document_ids(self) -> list[str]:
        return self.catalog.document_ids()

    def passage_ids(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        """doc id -> the ids of its passages (ascending, which is not reading order in every store: sort
        the passages by `Hit.start`)."""
        return self.catalog.passage_ids(doc_ids)

    def source_counts(self) -> list[tuple[str, int]]:
        return self.catalog.source_counts()

    def titled(self, text: str, limit: int = 25) -> list[Document]:
        """The newest articles whose title contains `text` or whose id starts with it (see `Catalog.titled`)."""
        return self.catalog.titled(text, limit)

    def sources(self) -> list[str]:
        return self.catalog.sources()


class CatalogWrites:
    """The writer methods both stores answer from their catalogue alone (`self.catalog`); `changed` says
    whether the writer has anything to commit."""

    catalog: Catalog
    changed: bool

    def document_row(self, doc_id: str) -> dict[str, Any] | None:
        return self.catalog.document_row(doc_id)

    def find_duplicate(self, doc: Document) -> str | None:
        """Id of a stored article with the same text or the same canonical URL, if any."""
        return self.catalog.find_duplicate(doc)

    def find_by_url(self, url: str) -> str | None:
        """Id of the stored article with this canonical URL, if any."""
        return self.catalog.find_by_url(url)

    def find_near_duplicate(self, doc_id: str, sig: np.ndarray, threshold: float) -> tuple[str, float] | None:
        """(id, similarity) of the stored article most similar to `sig` at or above `threshold`, if any."""
        return self.catalog.find_near_duplicate(doc_id, sig, threshold)

    def add_also_reported(self, doc_id: str, outlets: Iterable[str]) -> None:
        if self.catalog.add_also_reported(doc_id, outlets):
            self.changed = True

    def _remove_article(self, doc_id: str) -> bool:
        """Delete the article's catalogue rows (after the store removed what else it keeps of it);
        whether it was stored, which is whether the removal changes anything."""
        exists = self.catalog.remove(doc_id)
        self.changed = self.changed or exists
        return exists
