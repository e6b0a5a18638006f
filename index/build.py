"""Documents in, a searchable index out: full builds (a new generation) and incremental updates.

Both embed only passages the vector cache has not seen, and both are all-or-nothing: a build becomes
visible when CURRENT is switched, an update when its SQLite transaction commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.chunking import Chunk, chunk_document
from index.documents import Document, canonical_url
from index.embedding import Embedder
from index.faults import checkpoint
from index.loaders import LoadError
from index.store import (
    GenerationWriter,
    IndexMismatch,
    IndexProblem,
    Layout,
    Manifest,
    now_iso,
    open_current,
    write_lock,
)
from index.vector_cache import VectorCache, embed_with_cache

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances ("chunking", "embedding", "writing")."""


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class BuildReport:
    generation: str = ""
    documents: int = 0
    chunks: int = 0
    embedded: int = 0  # passages run through the model (cache misses)
    reused: int = 0  # passages whose vectors came from the cache
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: list[str] = field(default_factory=list)  # "id: same text as other-id" lines
    errors: list[LoadError] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.documents} articles, {self.chunks} passages"]
        if self.added or self.updated or self.removed or self.unchanged:
            parts.append(
                f"{self.added} new, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed"
            )
        parts.append(f"{self.embedded} passages embedded, {self.reused} from cache")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicates merged")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"


@dataclass(frozen=True)
class BuildOptions:
    model: str
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    batch_size: int = 32


def dedupe(docs: Sequence[Document], report: BuildReport) -> list[Document]:
    """Drop exact copies (same text or canonical URL) and repeated ids, keeping the first.

    The outlets of dropped copies are kept in the survivor's `also_reported_by`.
    """
    kept: dict[str, Document] = {}
    by_hash: dict[str, str] = {}
    by_url: dict[str, str] = {}
    for doc in docs:
        h, url = doc.content_hash(), canonical_url(doc.url)
        twin = by_hash.get(h) or (by_url.get(url) if url else None)
        if doc.id in kept and twin != doc.id:
            report.errors.append(
                LoadError(doc.origin or doc.id, f"duplicate id {doc.id!r} (also used by {kept[doc.id].origin}); skipped")
            )
            continue
        if twin is not None:
            first = kept[twin]
            if doc.source and doc.source != first.source and doc.source not in first.also_reported_by:
                kept[twin] = first.with_(also_reported_by=(*first.also_reported_by, doc.source))
            report.duplicates.append(f"{doc.id}: same story as {twin}")
            continue
        kept[doc.id] = doc
        by_hash[h] = doc.id
        if url:
            by_url[url] = doc.id
    return list(kept.values())


def _chunk_all(
    docs: Sequence[Document], opts: BuildOptions, report: BuildReport, progress: Progress
) -> list[tuple[Document, list[Chunk]]]:
    out = []
    for i, doc in enumerate(docs, 1):
        try:
            chunks = chunk_document(doc, opts.chunk_tokens, opts.chunk_overlap)
        except ValueError as exc:
            report.errors.append(LoadError(doc.origin or doc.id, str(exc)))
            continue
        if chunks:
            out.append((doc, chunks))
        progress("chunking", i, len(docs))
    return out


def _embed_all(
    pairs: Sequence[tuple[Document, list[Chunk]]],
    embedder: Embedder,
    cache: VectorCache,
    opts: BuildOptions,
    report: BuildReport,
    progress: Progress,
) -> list[np.ndarray]:
    chunks = [c for _, cs in pairs for c in cs]
    texts = [c.passage for c in chunks]
    hashes = [c.passage_hash for c in chunks]
    total = len(set(hashes)) - len(cache.get_many(opts.model, hashes, embedder.dim))
    done = 0

    def step(k: int) -> None:
        nonlocal done
        done += k
        progress("embedding", done, total)

    progress("embedding", 0, total)
    t0 = time.perf_counter()
    vectors, embedded = embed_with_cache(
        texts, hashes, model=opts.model, dim=embedder.dim,
        encode=lambda batch: embedder.encode(batch, batch_size=opts.batch_size),
        cache=cache, batch_size=max(opts.batch_size, 64), on_batch=step,
    )
    report.embed_seconds += time.perf_counter() - t0
    report.embedded += embedded
    report.reused += len(chunks) - embedded
    out, pos = [], 0
    for _, cs in pairs:
        out.append(vectors[pos : pos + len(cs)])
        pos += len(cs)
    return out


def build_index(
    root: Path,
    docs: Sequence[Document],
    embedder: Embedder,
    opts: BuildOptions,
    *,
    progress: Progress = _no_progress,
    load_errors: Sequence[LoadError] = (),
    on_wait: Callable[[], None] | None = None,
) -> BuildReport:
    """Index `docs` into a new generation under `root` and make it live."""
    started = time.perf_counter()
    layout = Layout(root)
    report = BuildReport(errors=list(load_errors))
    with write_lock(layout, on_wait=on_wait):
        layout.remove_stale_generations()
        unique = dedupe(docs, report)
        pairs = _chunk_all(unique, opts, report, progress)
        if not pairs:
            failures = "; ".join(str(e) for e in report.errors[:5]) or "no article files found"
            raise IndexProblem(f"nothing to index ({failures}). The current index, if any, is unchanged.")
        cache = VectorCache(layout.cache_db)
        try:
            vectors = _embed_all(pairs, embedder, cache, opts, report, progress)
        finally:
            cache.close()
        name = layout.new_generation_name()
        manifest = Manifest(
            generation=name, model=opts.model, dim=embedder.dim, chunk_tokens=opts.chunk_tokens,
            chunk_overlap=opts.chunk_overlap, created_at=now_iso(),
        )
        writer = GenerationWriter(layout.generation_dir(name), manifest, new=True)
        try:
            for i, ((doc, chunks), vecs) in enumerate(zip(pairs, vectors, strict=True), 1):
                writer.add(doc, chunks, vecs)
                progress("writing", i, len(pairs))
                if i == len(pairs) // 2:
                    checkpoint("build-half-written")
            manifest = writer.commit()
        except BaseException:
            writer.abort()
            raise
        checkpoint("build-before-switch")
        layout.set_current(name)
        layout.remove_stale_generations()
    report.generation = name
    report.documents = manifest.documents
    report.chunks = manifest.chunks
    report.seconds = time.perf_counter() - started
    return report


def update_index(
    root: Path,
    docs: Sequence[Document],
    embedder: Embedder,
    opts: BuildOptions,
    *,
    remove_ids: Sequence[str] = (),
    progress: Progress = _no_progress,
    load_errors: Sequence[LoadError] = (),
    on_wait: Callable[[], None] | None = None,
) -> BuildReport:
    """Add, replace or remove articles in the live generation, atomically.

    An article with the id (or canonical URL) of a stored one replaces it when its text changed and is
    skipped when it did not. An exact copy of another stored article is not indexed again; its outlet
    is recorded on the stored one.
    """
    started = time.perf_counter()
    layout = Layout(root)
    report = BuildReport(errors=list(load_errors))
    with write_lock(layout, on_wait=on_wait):
        reader = open_current(layout)
        manifest = reader.manifest
        reader.close()
        if manifest.model != opts.model:
            raise IndexMismatch(
                f"the index was built with {manifest.model!r}, not {opts.model!r}: updating it would mix "
                "vectors of two models. Run `newsbot build` for a full rebuild with the new model."
            )
        opts = BuildOptions(opts.model, manifest.chunk_tokens, manifest.chunk_overlap, opts.batch_size)
        writer = GenerationWriter(layout.generation_dir(manifest.generation), manifest, new=False)
        try:
            for doc_id in remove_ids:
                if writer.remove(doc_id):
                    report.removed += 1
                else:
                    report.errors.append(LoadError(doc_id, "no article with this id in the index"))
            todo: list[tuple[Document, bool]] = []
            for doc in dedupe(docs, report):
                existing = writer.document_row(doc.id)
                if existing is not None and existing["content_hash"] == doc.content_hash():
                    report.unchanged += 1
                    continue
                twin = writer.find_duplicate(doc)
                if twin is not None:
                    twin_row = writer.document_row(twin)
                    if twin_row is not None and twin_row["content_hash"] == doc.content_hash():
                        writer.add_also_reported(twin, [doc.source])
                        report.duplicates.append(f"{doc.id}: same story as {twin}")
                        continue
                    doc = doc.with_(id=twin)  # same canonical URL, new text: an update of that article
                    existing = twin_row
                todo.append((doc, existing is not None))
            pairs = _chunk_all([d for d, _ in todo], opts, report, progress)
            cache = VectorCache(layout.cache_db)
            try:
                vectors = _embed_all(pairs, embedder, cache, opts, report, progress)
            finally:
                cache.close()
            was_stored = {d.id: existed for d, existed in todo}
            for i, ((doc, chunks), vecs) in enumerate(zip(pairs, vectors, strict=True), 1):
                writer.add(doc, chunks, vecs)
                if was_stored.get(doc.id):
                    report.updated += 1
                else:
                    report.added += 1
                progress("writing", i, len(pairs))
            if writer.changed:
                manifest = writer.commit()
            else:
                writer.abort()
        except BaseException:
            writer.abort()
            raise
    report.generation = manifest.generation
    report.documents = manifest.documents
    report.chunks = manifest.chunks
    report.seconds = time.perf_counter() - started
    return report
