"""The embedded store behind the `StoreBackend` interface (`index.store.base`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from newsbot.index.documents import Document
from newsbot.index.store.base import Manifest
from newsbot.index.store.embedded.keyword_scores import TERM_CACHE_POSTINGS
from newsbot.index.store.embedded.layout import (
    Layout,
    article_origins,
    current_manifest,
    fetched_documents,
    stored_documents,
    write_lock,
)
from newsbot.index.store.embedded.reader import GenerationReader, open_current
from newsbot.index.store.embedded.vector_index import EXACT_MAX
from newsbot.index.store.embedded.writer import COMPACT_RATIO, GenerationWriter


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
