"""Documents in, a searchable index out: full builds (a new generation) and incremental updates.

Both embed only passages the vector cache has not seen, and both are all-or-nothing: a build becomes
visible when CURRENT is switched, an update when its SQLite transaction commits. Both index a story once:
exact copies (same canonical URL or text) and near-duplicates (MinHash, `index.ingest.dedup`) are merged into
the first stored article, whose `also_reported_by` lists the other outlets.

One module on purpose (about 460 lines): builds and updates share the report, the deduplication and
the chunking and embedding steps, and each reads best beside the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from newsbot.index.chunking import Chunk, chunk_document
from newsbot.index.documents import Document, canonical_url
from newsbot.index.embedding.base import Embedder
from newsbot.index.embedding.cache import VectorCache, embed_with_cache
from newsbot.index.faults import checkpoint
from newsbot.index.ingest.dedup import NEAR_DUPLICATE, DedupIndex, minhash
from newsbot.index.ingest.loaders import LoadError
from newsbot.index.rebuild import describe, kept_summary, plan_rebuild
from newsbot.index.store.articles import ArticleStore
from newsbot.index.store.backends import as_backend
from newsbot.index.store.base import IndexMismatch, IndexProblem, Manifest, StoreBackend, StoreWriter, now_iso
from newsbot.index.store.embedded.writer import COMPACT_RATIO

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances ("chunking", "embedding", "writing")."""


def no_progress(stage: str, done: int, total: int) -> None:
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
    carried: int = 0  # articles a full build kept from the previous index (added files, fetched articles)
    kept: dict[str, list[str]] = field(default_factory=dict)  # full builds: kind -> ids (index.rebuild)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # full builds: reason -> ids (index.rebuild)
    live_unreadable: bool = False  # full builds: the previous index could not be read (damaged)
    notes: list[str] = field(default_factory=list)  # what was repaired, renamed or recovered
    removed_ids: list[str] = field(default_factory=list)  # updates: ids of the removed articles
    compacted: bool = False  # whether an update rewrote the FAISS snapshot
    # per input article id: "new", "updated", "unchanged", "duplicate" or "failed" (updates only)
    outcomes: dict[str, str] = field(default_factory=dict)
    stored_as: dict[str, str] = field(default_factory=dict)  # input id -> id of the article that holds it

    def summary(self) -> str:
        parts = [f"{self.documents} articles, {self.chunks} passages"]
        if self.added or self.updated or self.removed or self.unchanged:
            parts.append(
                f"{self.added} new, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed"
            )
        kept = kept_summary(self.kept)
        if kept:
            parts.append(kept)
        elif self.carried:
            parts.append(f"{self.carried} web articles kept")
        dropped = sum(len(v) for v in self.dropped.values())
        if dropped:
            parts.append(f"{dropped} dropped")
        parts.append(f"{self.embedded} passages embedded, {self.reused} from cache")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicates merged")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"

    def carry_lines(self) -> list[str]:
        """What a full build kept and dropped, one line per kind (`kept 2 added files (re-read ...): a, b`)."""
        return describe(self.kept, self.dropped)


@dataclass(frozen=True)
class BuildOptions:
    model: str
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    batch_size: int = 32


def dedupe(docs: Sequence[Document], report: BuildReport, near: DedupIndex | None = None) -> list[Document]:
    """Drop exact copies (same text or canonical URL), near-duplicates (MinHash similarity at or above
    `near.threshold`) and repeated ids, keeping the first.

    The outlets of dropped copies are kept in the survivor's `also_reported_by`, and `report.stored_as`
    maps each dropped copy to its survivor. `near` (filled here) ends up holding every kept article's
    signature, which the writer stores for later updates.
    """
    near = near if near is not None else DedupIndex()
    kept: dict[str, Document] = {}
    for doc in docs:
        if doc.id in kept:
            first = kept[doc.id]
            same_url = bool(doc.url) and canonical_url(doc.url) == canonical_url(first.url)
            if not same_url and doc.content_hash() != first.content_hash():
                report.errors.append(
                    LoadError(doc.origin or doc.id, f"duplicate id {doc.id!r} (also used by {first.origin}); skipped")
                )
                continue
            report.duplicates.append(f"{doc.id}: same story as {doc.id}")
            continue
        sig = minhash(doc.body)
        match = near.match(doc, sig)
        if match is not None:
            first = kept[match.doc_id]
            if doc.source and doc.source != first.source and doc.source not in first.also_reported_by:
                kept[match.doc_id] = first.with_(also_reported_by=(*first.also_reported_by, doc.source))
            report.duplicates.append(_duplicate_line(doc.id, match.doc_id, match.kind, match.similarity))
            report.outcomes[doc.id] = "duplicate"
            report.stored_as[doc.id] = match.doc_id
            continue
        kept[doc.id] = doc
        near.add(doc, sig)
    return list(kept.values())


def _duplicate_line(doc_id: str, twin: str, kind: str, similarity: float) -> str:
    if kind == "near":
        return f"{doc_id}: near-duplicate of {twin} (similarity {similarity:.2f})"
    return f"{doc_id}: same story as {twin}"


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

    # Passages are embedded longest first (see embed_with_cache), by the model's own word-piece count when
    # the embedder tells it (onnx: ≈ 0.4 ms per passage, against ≈ 70 ms to embed one), else by cl100k tokens.
    token_ids = getattr(embedder, "token_ids", None)
    if callable(token_ids):
        def lengths(batch: Sequence[str]) -> list[int]:
            return [len(ids) for ids in token_ids(batch)]
    else:
        n_tokens = {c.passage: c.n_tokens for c in chunks}

        def lengths(batch: Sequence[str]) -> list[int]:
            return [n_tokens[t] for t in batch]

    progress("embedding", 0, total)
    t0 = time.perf_counter()
    vectors, embedded = embed_with_cache(
        texts, hashes, model=opts.model, dim=embedder.dim,
        encode=lambda batch: embedder.encode(batch, batch_size=opts.batch_size),
        cache=cache, batch_size=max(opts.batch_size, 64), on_batch=step, lengths=lengths,
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
    root: Path | StoreBackend,
    docs: Sequence[Document],
    embedder: Embedder,
    opts: BuildOptions,
    *,
    progress: Progress = no_progress,
    load_errors: Sequence[LoadError] = (),
    on_wait: Callable[[], None] | None = None,
    keep_fetched: bool = False,
    keep_added: bool = False,
    articles: ArticleStore | None = None,
) -> BuildReport:
    """Index `docs` into a new generation of the store (`root`: an index folder or a backend), make it live.

    Besides `docs`, the rebuild carries over (see `index.rebuild`) what no file of `docs` can reproduce:
    keep_fetched: the web articles (pages and feed entries); keep_added: the articles added from files
    with `newsbot add`, re-read from their files (both known from `articles`, the article store, which
    also stands in for a live index that cannot be read). `report.kept` / `report.dropped` say what was
    kept and what was dropped, and why. Once the new generation is live, the article store is updated.
    """
    started = time.perf_counter()
    backend = as_backend(root)
    report = BuildReport(errors=list(load_errors))
    with backend.write_lock(on_wait):
        backend.remove_stale_generations()
        plan = plan_rebuild(backend, docs, articles, keep_fetched=keep_fetched, keep_added=keep_added)
        report.carried = len(plan.docs)
        report.kept = {k: v for k, v in plan.kept.items() if v}
        report.dropped = {k: v for k, v in plan.dropped.items() if v}
        report.live_unreadable = plan.live_unreadable
        report.notes += plan.notes
        manifest = _write_generation(backend, [*docs, *plan.docs], embedder, opts, report, progress)
        if articles is not None:
            checkpoint("build-before-article-store")  # the new generation is live, the store not updated
            written = [d for d in plan.docs if report.outcomes.get(d.id) == "new"]
            articles.record(written)
            articles.forget([*plan.forget, *(d.id for d in plan.docs if report.outcomes.get(d.id) != "new")])
    report.generation = manifest.generation
    report.documents = manifest.documents
    report.chunks = manifest.chunks
    report.seconds = time.perf_counter() - started
    return report


def nothing_to_index(errors: Sequence[object]) -> IndexProblem:
    """The error of a build that found no article to index: the first load errors say why."""
    failures = "; ".join(str(e) for e in errors[:5]) or "no article files found"
    return IndexProblem(f"nothing to index ({failures}). The current index, if any, is unchanged.")


def _write_generation(
    backend: StoreBackend, docs: Sequence[Document], embedder: Embedder, opts: BuildOptions, report: BuildReport,
    progress: Progress, before_commit: Callable[[list[Document]], None] | None = None,
) -> Manifest:
    """Write `docs` into a new generation and make it live (call holding the write lock).

    before_commit(written documents): called once every article is written, before the commit."""
    near = DedupIndex()
    unique = dedupe(docs, report, near)
    pairs = _chunk_all(unique, opts, report, progress)
    if not pairs:
        raise nothing_to_index(report.errors)
    cache = VectorCache(backend.cache_db)
    try:
        vectors = _embed_all(pairs, embedder, cache, opts, report, progress)
    finally:
        cache.close()
    name = backend.new_generation_name()
    manifest = Manifest(
        generation=name, model=opts.model, dim=embedder.dim, chunk_tokens=opts.chunk_tokens,
        chunk_overlap=opts.chunk_overlap, created_at=now_iso(),
    )
    writer = backend.create_generation(manifest)
    try:
        for i, ((doc, chunks), vecs) in enumerate(zip(pairs, vectors, strict=True), 1):
            writer.add(doc, chunks, vecs, near.signature(doc.id))
            report.outcomes[doc.id] = "new"
            report.stored_as[doc.id] = doc.id
            progress("writing", i, len(pairs))
            if i == len(pairs) // 2:
                checkpoint("build-half-written")
        if before_commit is not None:
            before_commit([doc for doc, _ in pairs])
        manifest = writer.commit()
    except BaseException:
        writer.abort()
        raise
    checkpoint("build-before-switch")
    backend.set_current(name)
    backend.remove_stale_generations()
    return manifest


def update_index(
    root: Path | StoreBackend,
    docs: Sequence[Document],
    embedder: Embedder,
    opts: BuildOptions,
    *,
    remove_ids: Sequence[str] = (),
    progress: Progress = no_progress,
    load_errors: Sequence[LoadError] = (),
    on_wait: Callable[[], None] | None = None,
    compact_ratio: float = COMPACT_RATIO,
    near_threshold: float = NEAR_DUPLICATE,
    articles: ArticleStore | None = None,
) -> BuildReport:
    """Add, replace or remove articles in the live generation, atomically (one SQLite transaction).

    An article with the id (or canonical URL) of a stored one replaces it when its text changed and is
    skipped when it did not; only passages the vector cache lacks are embedded. An exact copy or a
    near-duplicate (similarity >= `near_threshold`) of another stored article is not indexed again; its
    outlet is recorded on the stored one. `remove_ids` are article ids or URLs. Without an index yet, the
    articles become its first generation.

    articles: the article store that keeps a copy of every article an update writes (or finds
    unchanged), recorded just before the index commits, so that rebuilds keep them (`index.rebuild`);
    removed articles are forgotten there after the commit.
    """
    started = time.perf_counter()
    backend = as_backend(root, compact_ratio=compact_ratio)
    report = BuildReport(errors=list(load_errors))
    record = None
    if articles is not None:
        def record(written: list[Document]) -> None:
            unchanged = [d for d in docs if report.outcomes.get(d.id) == "unchanged"]
            articles.record([*written, *unchanged])

    with backend.write_lock(on_wait):
        if backend.current_generation() is None:
            report.errors += [LoadError(ref, "no article with this id in the index") for ref in remove_ids]
            manifest = _write_generation(backend, docs, embedder, opts, report, progress, record)
            report.added = list(report.outcomes.values()).count("new")
        else:
            manifest = _update_locked(
                backend, docs, embedder, opts, report, progress, remove_ids, near_threshold, record
            )
        if articles is not None and report.removed_ids:
            articles.forget(report.removed_ids)
    report.generation = manifest.generation
    report.documents = manifest.documents
    report.chunks = manifest.chunks
    report.seconds = time.perf_counter() - started
    return report


def _update_locked(
    backend: StoreBackend, docs: Sequence[Document], embedder: Embedder, opts: BuildOptions, report: BuildReport,
    progress: Progress, remove_ids: Sequence[str], near_threshold: float,
    record: Callable[[list[Document]], None] | None = None,
) -> Manifest:
    """The body of `update_index` for an existing index (call holding the write lock)."""
    manifest = backend.current_manifest()
    if manifest.model != opts.model:
        raise IndexMismatch(
            f"the index was built with {manifest.model!r}, not {opts.model!r}: updating it would mix "
            "vectors of two models. Run `newsbot build` for a full rebuild with the new model."
        )
    opts = BuildOptions(opts.model, manifest.chunk_tokens, manifest.chunk_overlap, opts.batch_size)
    writer = backend.open_writer()
    try:
        _remove_all(writer, remove_ids, report)
        near = DedupIndex(threshold=near_threshold)
        todo = _triage(writer, dedupe(docs, report, near), near, near_threshold, report)
        pairs = _chunk_all([d for d, _, _ in todo], opts, report, progress)
        cache = VectorCache(backend.cache_db)
        try:
            vectors = _embed_all(pairs, embedder, cache, opts, report, progress)
        finally:
            cache.close()
        checkpoint("update-embedded")
        _write_all(writer, todo, pairs, vectors, near, report, progress)
        if record is not None:
            record([doc for doc, _ in pairs])
        if writer.changed:
            manifest = writer.commit()
            report.compacted = writer.compacted
        else:
            writer.abort()
    except BaseException:
        writer.abort()
        raise
    return manifest


def _remove_all(writer: StoreWriter, refs: Sequence[str], report: BuildReport) -> None:
    """Remove articles named by id or by URL; unknown ones become errors."""
    for ref in refs:
        doc_id = ref
        if writer.document_row(ref) is None and ref.startswith(("http://", "https://")):
            doc_id = writer.find_by_url(ref) or ref
        if writer.remove(doc_id):
            report.removed += 1
            report.removed_ids.append(doc_id)
        else:
            report.errors.append(LoadError(ref, "no article with this id in the index"))


def _triage(
    writer: StoreWriter, docs: Sequence[Document], near: DedupIndex, threshold: float, report: BuildReport
) -> list[tuple[Document, bool, str]]:
    """(article to write, whether it replaces a stored one, input id) for every article that changes
    the index; unchanged articles and duplicates of stored ones are recorded in `report` instead."""
    todo: list[tuple[Document, bool, str]] = []
    for doc in docs:
        original_id = doc.id
        existing = writer.document_row(doc.id)
        twin = None
        if existing is None:
            twin = writer.find_duplicate(doc)
            if twin is not None:
                existing = writer.document_row(twin)
        if existing is not None and existing["content_hash"] == doc.content_hash():
            if twin is None:
                report.unchanged += 1
                report.outcomes[original_id] = "unchanged"
            else:  # the same text under another id or URL: another outlet ran it
                writer.add_also_reported(twin, [doc.source])
                report.duplicates.append(_duplicate_line(doc.id, twin, "content", 1.0))
                report.outcomes[original_id] = "duplicate"
            report.stored_as[original_id] = existing["id"]
            continue
        if existing is None:
            sig = near.signature(doc.id)
            match = writer.find_near_duplicate(doc.id, sig if sig is not None else minhash(doc.body), threshold)
            if match is not None:
                writer.add_also_reported(match[0], [doc.source])
                report.duplicates.append(_duplicate_line(doc.id, match[0], "near", match[1]))
                report.outcomes[original_id] = "duplicate"
                report.stored_as[original_id] = match[0]
                continue
        elif twin is not None:  # same canonical URL, new text: an update of that article
            doc = doc.with_(id=twin)
        todo.append((doc, existing is not None, original_id))
    return todo


def _write_all(
    writer: StoreWriter,
    todo: Sequence[tuple[Document, bool, str]],
    pairs: Sequence[tuple[Document, list[Chunk]]],
    vectors: Sequence[np.ndarray],
    near: DedupIndex,
    report: BuildReport,
    progress: Progress,
) -> None:
    """Store the chunked and embedded articles; articles that yielded no passages count as failed."""
    written = {doc.id for doc, _ in pairs}
    for doc, _replaces, original_id in todo:
        if doc.id not in written:
            report.outcomes[original_id] = "failed"
    info = {doc.id: (replaces, original_id) for doc, replaces, original_id in todo}
    for i, ((doc, chunks), vecs) in enumerate(zip(pairs, vectors, strict=True), 1):
        replaces, original_id = info[doc.id]
        writer.add(doc, chunks, vecs, near.signature(original_id))
        if replaces:
            report.updated += 1
        else:
            report.added += 1
        report.outcomes[original_id] = "updated" if replaces else "new"
        report.stored_as[original_id] = doc.id
        progress("writing", i, len(pairs))
