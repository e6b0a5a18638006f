"""An index folder: its generations, which one is live, the write lock, and what can be read from
the live generation without opening it for search (its manifest, its articles)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsbot.index.documents import Document
from newsbot.index.store.base import REBUILD_HINT, IndexCorrupt, IndexMissing, IndexProblem, Manifest
from newsbot.index.store.catalog import Catalog
from newsbot.index.store.embedded.sqlite import ConnectionRows, connect
from newsbot.index.store.locks import file_lock


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    @property
    def generations(self) -> Path:
        return self.root / "generations"

    @property
    def cache_db(self) -> Path:
        return self.root / "cache" / "vectors.sqlite"

    @property
    def lock_file(self) -> Path:
        return self.root / "write.lock"

    def current_generation(self) -> str | None:
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def generation_dir(self, name: str) -> Path:
        return self.generations / name

    def set_current(self, name: str) -> None:
        """Atomically make generation `name` the live one."""
        tmp = self.current_file.with_suffix(".tmp")
        tmp.write_text(name + "\n", encoding="utf-8")
        fsync_file(tmp)
        os.replace(tmp, self.current_file)
        fsync_dir(self.root)

    def new_generation_name(self) -> str:
        """Names sort in creation order (microsecond timestamps; builds are serialized by the write lock)."""
        return f"g{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}"

    def remove_stale_generations(self, keep: int = 2) -> list[str]:
        """Delete generations other than the live one and the `keep - 1` newest before it.

        Call only while holding the write lock (a generation being built is not yet live).
        """
        if not self.generations.is_dir():
            return []
        live = self.current_generation()
        names = sorted(p.name for p in self.generations.iterdir() if p.is_dir())
        keepers = {live} if live else set()
        older = [n for n in names if live is None or n < live]
        keepers.update(older[-(keep - 1) :] if keep > 1 else [])
        removed = []
        for name in names:
            if name not in keepers:
                shutil.rmtree(self.generations / name, ignore_errors=True)
                removed.append(name)
        return removed


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def write_lock(layout: Layout, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Serialize builds and updates across processes (an flock on `write.lock`)."""
    with file_lock(layout.lock_file, on_wait):
        yield


def write_manifest_file(gen_dir: Path, manifest: Manifest) -> None:
    tmp = gen_dir / "manifest.json.tmp"
    tmp.write_text(manifest.to_json() + "\n", encoding="utf-8")
    os.replace(tmp, gen_dir / "manifest.json")


def current_manifest(layout: Layout) -> Manifest:
    """The live generation's committed manifest, read without loading any vectors."""
    name = layout.current_generation()
    if name is None:
        raise IndexMissing(f"no index at {layout.root}. Build one with `newsbot build`.")
    db = layout.generation_dir(name) / "index.sqlite"
    if not db.exists():
        raise IndexCorrupt(f"generation {name} has no index.sqlite. {REBUILD_HINT}")
    conn = connect(db)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IndexCorrupt(f"{db} is unreadable ({exc}). {REBUILD_HINT}") from None
    finally:
        conn.close()
    if row is None:
        raise IndexCorrupt(f"generation {name} has no manifest (an unfinished build?). {REBUILD_HINT}")
    return Manifest.from_json(row[0])


def _live_db(layout: Layout) -> Path | None:
    name = layout.current_generation()
    db = layout.generation_dir(name) / "index.sqlite" if name else None
    return db if db is not None and db.exists() else None


@contextmanager
def _live_catalog(layout: Layout) -> Iterator[Catalog | None]:
    """The live generation's articles on a connection of their own (None without a live generation);
    the errors of an unreadable index pass on to the caller."""
    db = _live_db(layout)
    if db is None:
        yield None
        return
    conn = connect(db)
    try:
        yield Catalog(ConnectionRows(lambda: conn))
    finally:
        conn.close()


def fetched_documents(layout: Layout) -> list[Document]:
    """The live generation's web articles (origin an http(s) URL), bodies included; [] without an index.

    A full rebuild carries these over: no file can reproduce them. An unreadable index yields [] (the
    rebuild that repairs it must not fail on it).
    """
    try:
        with _live_catalog(layout) as catalog:
            return catalog.fetched_documents() if catalog is not None else []
    except (sqlite3.DatabaseError, IndexProblem):
        return []


def article_origins(layout: Layout, ids: Sequence[str] | None = None) -> dict[str, str] | None:
    """id -> origin of the live generation's articles (only `ids`, when given); None when there is no
    live generation or it cannot be read (a rebuild then relies on the article store)."""
    try:
        with _live_catalog(layout) as catalog:
            return catalog.article_origins(ids) if catalog is not None else None
    except (sqlite3.DatabaseError, IndexCorrupt):
        return None


def stored_documents(layout: Layout, ids: Sequence[str]) -> list[Document]:
    """The live generation's articles with these ids, bodies included ([] if it cannot be read)."""
    if not ids:
        return []
    try:
        with _live_catalog(layout) as catalog:
            return catalog.stored_documents(ids) if catalog is not None else []
    except (sqlite3.DatabaseError, IndexCorrupt):
        return []
