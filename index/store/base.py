"""What every store provides, so build, search and the engine run unchanged on either backend.

Two backends implement it: the embedded store (`index.store.embedded`: FAISS + SQLite files in
`index_dir`) and the Milvus store (`index.store.milvus`: Milvus + an SQL database). `StoreReader` is the
interface `index.retrieval` and `bot.engine` call; `StoreWriter` the one `index.build` calls;
`StoreBackend` gives generations, writers and readers (`index.store.backends.open_backend(settings)`).

    backend = open_backend(settings)            # settings.store: "faiss" (default) or "milvus"
    with backend.write_lock(on_wait):
        writer = backend.create_generation(manifest)   # or backend.open_writer() for an update
        ...; manifest = writer.commit()
        backend.set_current(manifest.generation)
    reader = backend.reader(expect_model=settings.embedding_model)

Also here: `Manifest` (what a generation records about itself) and the errors every store raises.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from newsbot.index.chunking import Chunk
from newsbot.index.documents import Document
from newsbot.index.hits import Filters, Hit

FORMAT_VERSION = 1
REBUILD_HINT = "Rebuild it with `newsbot build` (add --index-dir DIR if it is not the default)."


class IndexProblem(RuntimeError):
    """The index cannot be used as it is; the message says why and how to fix it."""


class IndexMissing(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


@dataclass
class Manifest:
    generation: str
    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    documents: int = 0
    chunks: int = 0
    version: int = 0  # bumped by every committed update
    faiss_file: str = ""
    index_type: str = ""  # the snapshot's FAISS index (store/embedded/vector_index.py, `describe`), e.g. "flat", "ivf2048-sq8"
    next_chunk_id: int = 0  # ids below this are used or retired, never reused; 0 = written before it existed
    vectors_upto: int = 0  # the FAISS snapshot holds the vectors of chunks with id < this
    pending: int = 0  # vectors in `pending_vectors` (chunks added since the snapshot)
    stale: int = 0  # snapshot vectors whose chunks were removed since
    created_at: str = ""
    updated_at: str = ""
    format: int = FORMAT_VERSION
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@runtime_checkable
class StoreReader(Protocol):
    """Read access to one generation: everything `index.retrieval` and `bot.engine` call."""

    name: str  # the generation
    manifest: Manifest
    version: int  # the committed version this reader searches

    def stored_version(self) -> int:
        """The version committed now (ahead of `version` once an update committed since)."""
        ...

    def refresh(self) -> bool:
        """Catch up with `stored_version()` in place, where the backend can: True if this reader now
        searches it (Milvus: its rows are live, only the manifest is re-read); False if it cannot (the
        embedded store searches a FAISS snapshot: open a new reader, passing this one as `previous`)."""
        ...

    def filter_columns(self) -> object | None:
        """Load what outlet and date filters need, if the backend keeps it in memory (the embedded store:
        every passage's outlet and date; None for Milvus, which filters rows itself). Called when the bot
        starts, so that the first filtered question is fast."""
        ...

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

    def document_ids(self) -> list[str]: ...  # every stored article's id, without reading the articles

    def latest(self, limit: int = ..., filters: Filters = ..., terms: Sequence[str] = ...) -> list[Document]: ...

    def passage_ids(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        """doc id -> its passages' chunk ids (ascending; sort passages by `Hit.start` for reading order)."""
        ...

    def source_counts(self) -> list[tuple[str, int]]: ...

    def titled(self, text: str, limit: int = ...) -> list[Document]: ...

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

    def document_row(self, doc_id: str) -> dict[str, Any] | None: ...  # id, content_hash, canonical_url, ...

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
