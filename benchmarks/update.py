#!/usr/bin/env python3
"""How long adding one article to a live index of N passages takes, and how much of it is embedding.

    python benchmarks/update.py --chunks N [--repeats K] [--keep DIR]

Prints ONE JSON line on stdout, starting with {"chunks": N, "add_one_s": ..., "embed_s": ...}:
  add_one_s      median wall time of `Engine.add_documents([article])` (the path `newsbot add`, feeds and
                 Discord use): write lock, triage and near-duplicate lookup, chunking, embedding, writing,
                 commit. The embedding model is loaded beforehand (a running bot has it loaded).
  embed_s        median of the part of that spent embedding the article's passages (all cache misses)
  add_one_max_s  slowest of the K adds; passages_per_add: mean passages embedded per add
  reader_reopen_s  time a running Engine takes to switch to the updated index on its next question
  compaction_s   one update that rewrites the FAISS snapshot (forced; normally once per 10 % growth)
  base           exactly how the base index was made (below)
Progress goes to stderr.

The base index has exactly N passages and is written with the same store code the builder uses
(`GenerationWriter`: SQLite rows, FTS5 keyword index, near-duplicate keys, one FAISS snapshot). Embedding
N passages for real would take hours on a CPU, so:
* text: the MultiHop-RAG articles (../shared/data/multihop_rag/docs.jsonl; docs_corpus/ if absent),
  chunked by the real chunker, replicated until N passages exist. Replica r of an article has every
  4th word replaced by another corpus word of the same length (so offsets and passage spans stay
  valid), a title marked "(edition r)" and its own URL; replicas are not near-duplicates of each other.
* vectors: 128 of those passages embedded with the real model; every base passage gets one of them
  plus Gaussian noise (cosine about 0.96 to it), normalized.
The K articles added (timed) are real articles held out of the base, embedded with the real model
(the vector cache is emptied first, so every passage is embedded).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from newsbot.bot.config import load_settings  # noqa: E402
from newsbot.bot.engine import Engine  # noqa: E402
from newsbot.index.build import update_index  # noqa: E402
from newsbot.index.chunking import Chunk, chunk_document  # noqa: E402
from newsbot.index.documents import Document  # noqa: E402
from newsbot.index.hits import passage_header  # noqa: E402
from newsbot.index.ingest.dedup import minhash  # noqa: E402
from newsbot.index.ingest.loaders import load_paths  # noqa: E402
from newsbot.index.store.base import Manifest, now_iso  # noqa: E402
from newsbot.index.store.embedded.layout import Layout, current_manifest, write_lock  # noqa: E402
from newsbot.index.store.embedded.writer import GenerationWriter  # noqa: E402

MULTIHOP = REPO.parent / "shared" / "data" / "multihop_rag" / "docs.jsonl"
SAMPLE_VECTORS = 128
NOISE = 0.3  # norm of the noise added to a sample vector (before normalizing): cosine ~0.96
_WORD = re.compile(r"[A-Za-z]{3,}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_articles() -> tuple[list[Document], str]:
    source = MULTIHOP if MULTIHOP.exists() else REPO / "docs_corpus"
    loaded = load_paths([source])
    docs = [d for d in loaded.documents if len(d.body) > 500]
    return docs, str(source.relative_to(REPO.parent) if MULTIHOP.exists() else "docs_corpus/")


def vocabulary(docs: Sequence[Document]) -> dict[int, list[str]]:
    """Corpus words (lower case) by length, for same-length substitutions."""
    words: dict[int, set[str]] = {}
    for doc in docs:
        for w in _WORD.findall(doc.body):
            words.setdefault(len(w), set()).add(w.lower())
    return {n: sorted(ws) for n, ws in words.items()}


def perturb(body: str, vocab: dict[int, list[str]], rng: np.random.Generator) -> str:
    """Every 4th word replaced by a random corpus word of the same length (case of the first letter kept)."""
    out = list(body)
    for i, match in enumerate(_WORD.finditer(body)):
        if i % 4:
            continue
        word = match.group()
        pool = vocab[len(word)]
        new = pool[int(rng.integers(len(pool)))]
        new = new.capitalize() if word[0].isupper() else new
        out[match.start() : match.end()] = new
    return "".join(out)


def replica(doc: Document, chunks: Sequence[Chunk], r: int, vocab: dict[int, list[str]]) -> tuple[Document, list[Chunk]]:
    """Edition r of an article: perturbed body with the original's passage spans."""
    rng = np.random.default_rng(r * 1_000_003 + hash(doc.id) % 1_000_003)
    body = perturb(doc.body, vocab, rng)
    new = doc.with_(id=f"{doc.id}-r{r}", title=f"{doc.title} (edition {r})", body=body,
                    url=f"https://bench.example/{doc.id}?edition={r}", origin="benchmark")
    header = passage_header(new.title, new.source, new.published_at)
    out = [Chunk(new.id, c.ordinal, c.start, c.end, body[c.start : c.end], header + "\n" + body[c.start : c.end],
                 c.n_tokens) for c in chunks]
    return new, out


def sample_vectors(engine: Engine, chunked: Sequence[tuple[Document, list[Chunk]]]) -> np.ndarray:
    passages = [cs[0].passage for _, cs in chunked[:SAMPLE_VECTORS]]
    while len(passages) < SAMPLE_VECTORS:
        passages += [c.passage for _, cs in chunked for c in cs[1:]][: SAMPLE_VECTORS - len(passages)]
    return engine.embedder.encode(passages)


def noisy(samples: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    picks = samples[rng.integers(len(samples), size=n)]
    noise = rng.standard_normal(picks.shape).astype(np.float32)
    noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    out = picks + noise
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def base_articles(
    chunked: Sequence[tuple[Document, list[Chunk]]], n_chunks: int, vocab: dict[int, list[str]]
) -> Iterator[tuple[Document, list[Chunk]]]:
    """Replicas of the articles, in rounds, until exactly n_chunks passages (the last one cut short)."""
    left, r = n_chunks, 0
    while left > 0:
        for doc, chunks in chunked:
            if left <= 0:
                return
            new, new_chunks = replica(doc, chunks, r, vocab)
            yield new, new_chunks[:left]
            left -= min(left, len(new_chunks))
        r += 1


def build_base(engine: Engine, chunked: list[tuple[Document, list[Chunk]]], n_chunks: int,
               vocab: dict[int, list[str]]) -> float:
    """Write the base generation through GenerationWriter and make it live; returns seconds taken."""
    started = time.perf_counter()
    layout = engine.layout
    samples = sample_vectors(engine, chunked)
    rng = np.random.default_rng(7)
    opts = engine.options()
    with write_lock(layout):
        name = layout.new_generation_name()
        manifest = Manifest(generation=name, model=opts.model, dim=engine.embedder.dim,
                            chunk_tokens=opts.chunk_tokens, chunk_overlap=opts.chunk_overlap, created_at=now_iso())
        writer = GenerationWriter(layout.generation_dir(name), manifest, new=True)
        done = 0
        for doc, chunks in base_articles(chunked, n_chunks, vocab):
            writer.add(doc, chunks, noisy(samples, len(chunks), rng), minhash(doc.body))
            done += len(chunks)
            if done % 5000 < len(chunks):
                log(f"  base: {done:,} / {n_chunks:,} passages")
        writer.commit()
        layout.set_current(name)
        layout.remove_stale_generations(keep=1)
    return time.perf_counter() - started


def measure(engine: Engine, held_out: Sequence[Document]) -> dict[str, object]:
    """Add the held-out articles one by one (timed), then time a reader reopen and a compaction."""
    cache = engine.layout.cache_db
    for path in (cache, cache.with_name(cache.name + "-wal"), cache.with_name(cache.name + "-shm")):
        path.unlink(missing_ok=True)
    engine.embedder.encode(["warm up"])
    engine.reader()
    adds, embeds, passages, compacted = [], [], [], []
    for doc in held_out:
        started = time.perf_counter()
        report = engine.add_documents([doc])
        adds.append(time.perf_counter() - started)
        embeds.append(report.embed_seconds)
        passages.append(report.embedded)
        compacted.append(report.compacted)
        log(f"  added {doc.id}: {adds[-1]:.3f} s, of which embedding {report.embed_seconds:.3f} s "
            f"({report.embedded} passages){' (compacted)' if report.compacted else ''}")
    started = time.perf_counter()
    engine.reader()
    reopen = time.perf_counter() - started
    started = time.perf_counter()
    update_index(engine.layout.root, [], engine.embedder, engine.options(), remove_ids=[held_out[0].id],
                 compact_ratio=0.0)
    compaction = time.perf_counter() - started
    return {
        "add_one_s": round(statistics.median(adds), 4),
        "embed_s": round(statistics.median(embeds), 4),
        "add_one_max_s": round(max(adds), 4),
        "passages_per_add": round(statistics.mean(passages), 2),
        "compacted_during_adds": sum(compacted),
        "reader_reopen_s": round(reopen, 4),
        "compaction_s": round(compaction, 4),
    }


def reusable(root: Path, n_chunks: int, held_out: Sequence[Document]) -> bool:
    """Whether --keep DIR holds a base of n_chunks passages (after removing earlier runs' additions)."""
    try:
        manifest = current_manifest(Layout(root))
    except Exception:  # noqa: BLE001 - anything unusable is simply rebuilt
        return False
    if manifest.chunks != n_chunks:
        engine = Engine(load_settings({"index_dir": str(root)}))
        engine.remove([d.id for d in held_out])
        manifest = current_manifest(Layout(root))
    return manifest.chunks == n_chunks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, required=True, help="passages in the base index")
    parser.add_argument("--repeats", type=int, default=5, help="articles added one by one (median reported)")
    parser.add_argument("--keep", metavar="DIR", help="build the base here and reuse it next time")
    args = parser.parse_args(argv)
    articles, source = load_articles()
    held_out, base_docs = articles[-args.repeats :], articles[: -args.repeats]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="newsbot-update-bench-"))
    engine = Engine(load_settings({"index_dir": str(root)}))
    try:
        build_s = 0.0
        if not reusable(root, args.chunks, held_out):
            log(f"building a base of {args.chunks:,} passages in {root} ...")
            opts = engine.options()
            chunked = [(d, chunk_document(d, opts.chunk_tokens, opts.chunk_overlap)) for d in base_docs]
            build_s = build_base(engine, chunked, args.chunks, vocabulary(articles))
            log(f"  base built in {build_s:.1f} s")
        engine = Engine(load_settings({"index_dir": str(root)}))
        result: dict[str, object] = {"chunks": args.chunks}
        result.update(measure(engine, held_out))
        result.update({
            "repeats": args.repeats,
            "base_build_s": round(build_s, 1),
            "base": (f"text: {source} articles chunked for real, replicated with every 4th word swapped for a "
                     f"same-length corpus word; vectors: {SAMPLE_VECTORS} real passage embeddings plus noise "
                     f"(norm {NOISE}), written with GenerationWriter"),
            "added": f"{args.repeats} held-out real articles from {source}, embedded with the real model",
        })
        print(json.dumps(result), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
