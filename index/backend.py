"""What a store backend provides, so build, search and the engine run unchanged on either backend.

Two backends implement it: the embedded store (`index.store`: FAISS + SQLite files in `index_dir`,
adapted by `EmbeddedBackend`) and the Milvus store (`index.milvus_store.MilvusStore`: Milvus + an SQL
database). `StoreReader` is the interface `index.search` calls; `StoreWriter` the one `index.build`
calls; `StoreBackend` replaces the direct uses of `Layout`, `write_lock`, `GenerationWriter`,
`current_manifest`, `fetched_documents` and `open_current` in `index.build` and `bot.engine`.

    backend = open_backend(settings)            # settings.store: "faiss" (default) or "milvus"
    with backend.write_lock(on_wait):
        writer = backend.create_generation(manifest)   # or backend.open_writer() for an update
        ...; manifest = writer.commit()
        backend.set_current(manifest.generation)
    reader = backend.reader(expect_model=settings.embedding_model)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document
from newsbot.index.hits import Filters, Hit
from newsbot.index.keyword_scores import TERM_CACHE_POSTINGS
from newsbot.index.store import (
    COMPACT_RATIO,
    GenerationReader,
    GenerationWriter,
    Layout,
    Manifest,
    article_origins,
    current_manifest,
    fetched_documents,
    open_current,
    stored_documents,
    write_lock,
)
from newsbot.index.vector_index import EXACT_MAX


@runtime_checkable
class StoreReader(Protocol):
    """Read access to the live generation: everything `index.search` and `bot.engine` call."""

    name: str
    manifest: Manifest

    def stored_version(self) -> int: ...

    def dense_search(self, vectors: np.ndarray, k: int, filters: Filters = ...) -> list[list[tuple[int, float]]]: ...

    def keyword_search(
        self, terms: Sequence[str], k: int, filters: Filters = ..., head_weight: float = ...
    ) -> list[tuple[int, float]]: ...

    def hits(self, chunk_ids: Sequence[int]) -> dict[int, Hit]: ...

    def vectors(self, chunk_ids: Sequence[int]) -> np.ndarray: ...

    def has_passage_with_all(self, words: Sequence[str]) -> bool: ...

    def passage_frequency(self, term: str) -> int: ...

    def document(self, doc_id: str) -> tuple[Document, int] | None: ...

    def documents(self) -> list[Document]: ...

    def latest(self, limit: int = ..., filters: Filters = ..., terms: Sequence[str] = ...) -> list[Document]: ...

    def source_counts(self) -> list[tuple[str, int]]: ...

    def sources(self) -> list[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class StoreWriter(Protocol):
    """Changes to one generation, visible all at once at `commit` (what `index.build` calls)."""

    manifest: Manifest
    changed: bool
    compacted: bool

    def add(self, doc: Document, chunks: Sequence[Chunk], vectors: np.ndarray,
            signature: np.ndarray | None = None) -> list[int]: ...

    def remove(self, doc_id: str) -> bool: ...

    def document_row(self, doc_id: str) -> Any: ...  # row["id"], row["content_hash"], ... or None

    def find_duplicate(self, doc: Document) -> str | None: ...

    def find_by_url(self, url: str) -> str | None: ...

    def find_near_duplicate(self, doc_id: str, sig: np.ndarray, threshold: float) -> tuple[str, float] | None: ...

    def add_also_reported(self, doc_id: str, outlets: Sequence[str]) -> None: ...

    def commit(self) -> Manifest: ...

    def abort(self) -> None: ...


class StoreBackend(Protocol):
    """Generations, writers and readers of one store."""

    cache_db: Path  # the local vector cache (index/embedding/cache.py), whatever the store

    def describe(self) -> str: ...

    def current_generation(self) -> str | None: ...

    def current_manifest(self) -> Manifest: ...

    def new_generation_name(self) -> str: ...

    def create_generation(self, manifest: Manifest) -> StoreWriter: ...

    def open_writer(self) -> StoreWriter: ...

    def set_current(self, name: str) -> None: ...

    def remove_stale_generations(self, keep: int = 2) -> list[str]: ...

    def fetched_documents(self) -> list[Document]: ...

    def article_origins(self, ids: Sequence[str] | None = None) -> dict[str, str] | None: ...

    def stored_documents(self, ids: Sequence[str]) -> list[Document]: ...

    def reader(self, expect_model: str | None = None, previous: Any = None) -> StoreReader: ...

    def write_lock(self, on_wait: Callable[[], None] | None = None) -> contextlib.AbstractContextManager[None]: ...


class EmbeddedBackend:
    """The embedded FAISS + SQLite store in `root`, behind the `StoreBackend` interface."""

    def __init__(self, root: Path, *, compact_ratio: float = COMPACT_RATIO, exact_max: int = EXACT_MAX,
                 keyword_cache_postings: int = TERM_CACHE_POSTINGS) -> None:
        self.layout = Layout(root)
        self.compact_ratio = compact_ratio
        self.exact_max = exact_max  # snapshots of this many passages or more are approximate (IVF)
        self.keyword_cache_postings = keyword_cache_postings

    @property
    def cache_db(self) -> Path:
        return self.layout.cache_db

    def describe(self) -> str:
        return str(self.layout.root)

    def current_generation(self) -> str | None:
        return self.layout.current_generation()

    def current_manifest(self) -> Manifest:
        return current_manifest(self.layout)

    def new_generation_name(self) -> str:
        return self.layout.new_generation_name()

    def create_generation(self, manifest: Manifest) -> GenerationWriter:
        return GenerationWriter(self.layout.generation_dir(manifest.generation), manifest, new=True,
                                exact_max=self.exact_max)

    def open_writer(self) -> GenerationWriter:
        manifest = current_manifest(self.layout)
        return GenerationWriter(self.layout.generation_dir(manifest.generation), manifest, new=False,
                                compact_ratio=self.compact_ratio, exact_max=self.exact_max)

    def set_current(self, name: str) -> None:
        self.layout.set_current(name)

    def remove_stale_generations(self, keep: int = 2) -> list[str]:
        return self.layout.remove_stale_generations(keep)

    def fetched_documents(self) -> list[Document]:
        return fetched_documents(self.layout)

    def article_origins(self, ids: Sequence[str] | None = None) -> dict[str, str] | None:
        """id -> origin of the live generation's articles (only `ids`, if given); None when there is no
        live generation or it cannot be read."""
        return article_origins(self.layout, ids)

    def stored_documents(self, ids: Sequence[str]) -> list[Document]:
        """The live generation's articles with these ids, bodies included."""
        return stored_documents(self.layout, ids)

    def reader(self, expect_model: str | None = None, previous: GenerationReader | None = None) -> GenerationReader:
        return open_current(self.layout, expect_model=expect_model, previous=previous,
                            keyword_cache_postings=self.keyword_cache_postings)

    @contextlib.contextmanager
    def write_lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        with write_lock(self.layout, on_wait=on_wait):
            yield


def as_backend(root: Path | StoreBackend, *, compact_ratio: float = COMPACT_RATIO) -> StoreBackend:
    """`root` itself if it is a backend, else the embedded store in that folder."""
    if isinstance(root, str | Path):
        return EmbeddedBackend(Path(root), compact_ratio=compact_ratio)
    return root


def open_backend(settings: Any) -> StoreBackend:
    """The store `settings.store` names: "faiss" (embedded, default) or "milvus"."""
    kind = (getattr(settings, "store", "") or "faiss").strip().lower()
    if kind == "faiss":
        return EmbeddedBackend(Path(settings.index_path()),
                               exact_max=int(getattr(settings, "vector_index_exact_max", EXACT_MAX)),
                               keyword_cache_postings=int(getattr(settings, "keyword_cache_postings", TERM_CACHE_POSTINGS)))
    if kind == "milvus":
        from newsbot.index.milvus_store import MilvusStore

        return MilvusStore.for_settings(settings)
    raise ValueError(f"setting store: expected 'faiss' or 'milvus', got {settings.store!r}")
