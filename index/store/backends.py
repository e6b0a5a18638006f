"""Which store: `open_backend(settings)` for the one the settings name, `as_backend(root)` for code
that is handed an index folder or a backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from newsbot.index.store.base import StoreBackend
from newsbot.index.store.embedded.backend import EmbeddedBackend
from newsbot.index.store.embedded.keyword_scores import TERM_CACHE_POSTINGS
from newsbot.index.store.embedded.vector_index import EXACT_MAX
from newsbot.index.store.embedded.writer import COMPACT_RATIO


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
        from newsbot.index.store.milvus.store import MilvusStore

        return MilvusStore.for_settings(settings)
    raise ValueError(f"setting store: expected 'faiss' or 'milvus', got {settings.store!r}")
