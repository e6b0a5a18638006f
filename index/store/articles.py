"""The article store: copies of the articles no build path can reproduce, kept outside the index.

`newsbot build` indexes the files it is given. Articles that came any other way — files added with
`newsbot add`, web pages, feed entries — exist only in the index, so a rebuild must carry them over,
and a damaged index must not take them along. Every add and feed update therefore records the
articles it writes here, in the state database (SQLite next to the index, or the PostgreSQL of
`database_url`), whatever the store backend: one row per article with its full text, its kind
("file" or "web") and, for a file, the absolute path it was read from.

Records are written under the index's write lock, just before the index commits (a crash in between
leaves a copy of an article the index lacks, which a rebuild from a healthy index ignores), and
forgotten after a removal commits. `index.rebuild` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsbot.index.documents import Document, id_from_url, parse_date
from newsbot.index.store.base import StoreBackend, now_iso
from newsbot.index.store.sql import Database

if TYPE_CHECKING:
    from newsbot.index.ingest.loaders import LoadError

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS kept_articles (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        path TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL,
        doc TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
]

FILE, WEB = "file", "web"


def is_web(origin: str) -> bool:
    return origin.startswith(("http://", "https://"))


def source_file(origin: str) -> Path | None:
    """The file an article was read from, given its `origin` (`path`, `path:LINE` for JSONL, `path[i]` for
    a JSON list); None for web articles."""
    if not origin or is_web(origin):
        return None
    head, sep, tail = origin.rpartition(":")
    if sep and tail.isdigit() and head:
        return Path(head)
    if origin.endswith("]") and "[" in origin:
        head, _, index = origin[:-1].rpartition("[")
        if index.isdigit() and head:
            return Path(head)
    return Path(origin)


def file_path(origin: str) -> str:
    """The absolute path of the file behind `origin` ('' for web articles)."""
    path = source_file(origin)
    return str(path.absolute()) if path is not None else ""


@dataclass(frozen=True)
class KeptArticle:
    doc: Document
    kind: str  # FILE or WEB
    path: str  # absolute path of the file (FILE), '' for WEB


def _to_json(doc: Document) -> str:
    return json.dumps({
        "id": doc.id, "title": doc.title, "body": doc.body, "source": doc.source, "url": doc.url,
        "published_at": doc.published_at.isoformat() if doc.published_at else None, "author": doc.author,
        "tags": list(doc.tags), "origin": doc.origin, "also_reported_by": list(doc.also_reported_by),
    }, ensure_ascii=False)


def _from_json(text: str) -> Document:
    d = json.loads(text)
    return Document(
        id=d["id"], title=d["title"], body=d["body"], source=d.get("source", ""), url=d.get("url", ""),
        published_at=parse_date(d.get("published_at")), author=d.get("author", ""),
        tags=tuple(d.get("tags") or ()), origin=d.get("origin", ""),
        also_reported_by=tuple(d.get("also_reported_by") or ()),
    )


class ArticleStore:
    """The `kept_articles` table of a database (see the module doc). Thread-safe like `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create_schema(SCHEMA)

    def record(self, docs: Iterable[Document]) -> int:
        """Keep (or replace) a copy of each article; returns how many."""
        rows = []
        for doc in docs:
            kind = WEB if is_web(doc.origin) else FILE
            rows.append((doc.id, kind, file_path(doc.origin) if kind == FILE else "", doc.content_hash(),
                         _to_json(doc), now_iso()))
        if rows:
            with self.db.transaction(lock="newsbot-articles") as tx:
                tx.executemany(
                    "INSERT INTO kept_articles (id, kind, path, content_hash, doc, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET kind = excluded.kind,"
                    " path = excluded.path, content_hash = excluded.content_hash, doc = excluded.doc,"
                    " recorded_at = excluded.recorded_at",
                    rows,
                )
        return len(rows)

    def forget(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            with self.db.transaction(lock="newsbot-articles") as tx:
                tx.executemany("DELETE FROM kept_articles WHERE id = ?", [(i,) for i in ids])

    def articles(self, kind: str | None = None) -> list[KeptArticle]:
        """The kept articles (of one kind, if given), texts included, oldest first."""
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        rows = self.db.query(f"SELECT doc, kind, path FROM kept_articles {where} ORDER BY recorded_at, id", params)
        return [KeptArticle(_from_json(doc), kind, path) for doc, kind, path in rows]

    def kinds(self) -> dict[str, str]:
        """id -> kind of every kept article (no texts read)."""
        return {str(i): str(k) for i, k in self.db.query("SELECT id, kind FROM kept_articles")}

    def get_many(self, ids: Sequence[str]) -> dict[str, KeptArticle]:
        out: dict[str, KeptArticle] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            rows = self.db.query(
                f"SELECT doc, kind, path FROM kept_articles WHERE id IN ({','.join('?' * len(part))})", part
            )
            for doc, kind, path in rows:
                article = KeptArticle(_from_json(doc), kind, path)
                out[article.doc.id] = article
        return out

    def count(self) -> int:
        return int(self.db.query("SELECT count(*) FROM kept_articles")[0][0])


def claim_file_ids(
    docs: Sequence[Document], backend: StoreBackend, articles: ArticleStore | None, notes: list[str]
) -> tuple[list[Document], list[LoadError]]:
    """Articles that `add` read from files, checked against the ids the index already gives to articles
    of *other* files: such an id is never taken over. An id that came from the file name (`brief.md` in
    two folders) gets a hash of the path instead, and `notes` says so; an explicit `id:` is refused with
    an error. Taking over is allowed when the other file no longer exists (a moved file) and for ids
    derived from the article's URL (the same URL is the same article)."""
    from newsbot.index.ingest.loaders import LoadError, file_id, unique_file_id

    ids = [d.id for d in docs if not is_web(d.origin)]
    stored = articles.get_many(ids) if articles is not None and ids else {}
    live = (backend.article_origins(ids) or {}) if ids else {}
    out: list[Document] = []
    errors: list[LoadError] = []
    for doc in docs:
        path = source_file(doc.origin)
        owner = _owner(doc.id, stored, live) if path is not None else None
        if owner is None or owner == str(path.absolute()) or not Path(owner).exists():
            out.append(doc)
        elif doc.url and doc.id == id_from_url(doc.url):
            out.append(doc)
        elif doc.id == file_id(path):
            new_id = unique_file_id(path)
            notes.append(f"{doc.origin}: id {doc.id!r} is taken by {owner}; added as {new_id!r}")
            out.append(doc.with_(id=new_id))
        else:
            errors.append(LoadError(doc.origin, f"id {doc.id!r} is already used by {owner}; not added (give it "
                                                f"another id, or `newsbot remove {doc.id}` first)"))
    return out, errors


def _owner(doc_id: str, stored: dict[str, KeptArticle], live: dict[str, str]) -> str | None:
    """The absolute path of the file whose article holds `doc_id` now (None: nobody's, or a web article)."""
    if doc_id in stored:
        article = stored[doc_id]
        return (article.path or None) if article.kind == FILE else None
    origin = live.get(doc_id, "")
    return file_path(origin) or None
