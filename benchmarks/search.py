#!/usr/bin/env python3
"""Search latency, concurrent throughput, memory and vector recall at N passages.

    python benchmarks/search.py --chunks N [--keep DIR] [--threads T] [--recall-queries Q]
                                [--quality-queries Q] [--set KEY=VALUE ...]

Prints ONE JSON line on stdout:
{"chunks": N, "p50_ms", "p95_ms", "p99_ms", "qps_concurrent", "vector_recall_at_10", "rss_mb", "index_type", ...}

  p50_ms, p95_ms, p99_ms   warm latency of `Engine.search(question)` with the default settings: the full
                           hybrid search of `newsbot search` / the bot (query analysis, the question's and
                           its parts' embeddings, one dense + one bm25 retrieval per part, fusion,
                           re-scoring, passages fetched), one question at a time. Questions: the MultiHop-RAG
                           dev questions after the 40 used to warm up (each asked once: its words' keyword
                           statistics are not cached beforehand)
  cpu_p50_ms, cpu_p95_ms   CPU seconds (all threads of the process) per question of that run: the work
                           done, which other jobs on a shared machine do not inflate as they do wall time
  embed_p50_ms             the embedding model alone, the same texts (question + parts) in one call
  index_p50_ms/_p95_ms     the same searches again with embeddings precomputed: the index's own share
  dense_p50_ms, keyword_p50_ms  one `reader.dense_search` / `reader.keyword_search` (whole question, k 60,
                           no filter; the keyword query is the question's rarest words when the index
                           limits them), the keyword side starting from an empty word cache (each word's
                           bm25 read from FTS5 once, then reused by later questions)
  qps_concurrent           questions per second, T threads asking at once (full path, embeddings included)
  vector_recall_at_10      share of the exact top 10 (inner product with every stored vector, in numpy)
                           that `reader.dense_search` returns, first Q questions, no filter;
                           filtered_vector_recall_at_10: the same for question parts with outlet/date filters
  rss_mb                   resident memory of the measuring process (model, index, caches) after the runs
  vector_bytes_per_chunk   FAISS memory per passage (codes, ids, id map, centroids; index/store/embedded/vector_index.py);
                           vector_file_bytes_per_chunk: size of the FAISS file / passages
  index_type               the snapshot's FAISS index, chosen by size (setting vector_index_exact_max)
  article_recall_at_10     retrieval quality at this size: per question (first Q dev questions with evidence),
  article_hits_at_10       the share of its evidence articles among its top 10's articles, a replica counting
                           as its original (same facts); _hits_: at least one found. `--set` runs change
                           settings (e.g. max_query_postings) to compare them on the same index
  query_embedding          the model key that embedded the questions (setting query_embedding_backend)
  open_s, build_s          `Engine.warm_up` time (index open, filter columns); seconds the base index took to write (0 when reused)
  load_avg                 1-minute load average before/after (a shared machine: read figures with it)

The index: exactly N passages written through the store's own code (`GenerationWriter`: SQLite rows, FTS5,
near-duplicate keys, the FAISS snapshot of the type its size calls for):
* text: REAL text. Round 0 is the MultiHop-RAG corpus itself (../shared/data/multihop_rag/docs.jsonl, read
  in place, never copied), chunked by the real chunker; round r >= 1 is a replica of every article made as
  in benchmarks/update.py (every 4th word replaced by a corpus word of the same length, title marked
  "(edition r)", own URL and id), until N passages exist (the last article may be cut short).
* vectors: round 0 = the real MiniLM vectors of the passages (vector cache of benchmarks/multihop.py, or
  embedded). Round r >= 1 = SYNTHETIC: the original's vector plus Gaussian noise shaped like the corpus's
  own vectors (their covariance, scaled by NOISE), normalized: cosine ≈ 0.85 to the original, deterministic.
--keep DIR builds the index there once and reuses it (a stamp records N and the recipe); without it the
index lives in a temporary folder that is removed at the end. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import newsbot.index  # noqa: E402,F401 - before anything loads onnxruntime: its telemetry off (index/__init__.py)

DATA = REPO.parent / "shared" / "data" / "multihop_rag"
DOCS = DATA / "docs.jsonl"
QUERIES = DATA / "queries_dev.jsonl"
MULTIHOP_CACHE = REPO / "benchmarks" / "out" / "index-multihop" / "cache" / "vectors.sqlite"
NOISE = 0.65  # scale of the covariance-shaped noise: cosine ≈ 0.85 to the original vector
SEED = 20240601
STAMP = "search-bench-stamp.json"
RECIPE = 2  # bump when the way the base index is made changes
WARM_UP = 40  # the last questions, asked before timing


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(seconds: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1000, q)), 2)


# ---------------------------------------------------------------------------------------------- the base


def corpus(engine):  # noqa: ANN001, ANN201 - Engine
    """The MultiHop articles chunked for real, and their passages' real vectors (n_passages, dim)."""
    from newsbot.index.chunking import chunk_document
    from newsbot.index.embedding.cache import VectorCache, embed_with_cache
    from newsbot.index.ingest.loaders import load_paths

    docs = [d for d in load_paths([DOCS]).documents if d.body.strip()]
    opts = engine.options()
    chunked = [(d, cs) for d in docs if (cs := chunk_document(d, opts.chunk_tokens, opts.chunk_overlap))]
    passages = [c for _, cs in chunked for c in cs]
    cache_path = MULTIHOP_CACHE if MULTIHOP_CACHE.exists() else Path(tempfile.gettempdir()) / "newsbot-search-cache.sqlite"
    cache = VectorCache(cache_path)
    try:
        vectors, embedded = embed_with_cache(
            [c.passage for c in passages], [c.passage_hash for c in passages], model=opts.model,
            dim=engine.embedder.dim, encode=engine.embedder.encode, cache=cache, batch_size=64,
        )
    finally:
        cache.close()
    if embedded:
        log(f"  embedded {embedded} passages missing from {cache_path}")
    return chunked, np.asarray(vectors, dtype=np.float32)


def noise_shape(real: np.ndarray) -> np.ndarray:
    """L with L @ L.T = covariance of the real vectors: Gaussian noise shaped like the corpus."""
    w, u = np.linalg.eigh(np.cov(real.T.astype(np.float64)))
    return (u * np.sqrt(np.maximum(w, 0))).astype(np.float32)


def round_vectors(real: np.ndarray, shape: np.ndarray, r: int) -> np.ndarray:
    """The vectors of round r (deterministic): the real ones for r = 0, perturbed copies after."""
    if r == 0:
        return real
    rng = np.random.default_rng([SEED, r])
    out = real + NOISE * (rng.standard_normal(real.shape, dtype=np.float32) @ shape.T)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def all_vectors(real: np.ndarray, n_chunks: int) -> np.ndarray:
    """Every base passage's vector in chunk-id order (row i = chunk id i + 1), as the build wrote them."""
    shape = noise_shape(real)
    out = np.empty((n_chunks, real.shape[1]), dtype=np.float32)
    for r in range(-(-n_chunks // len(real))):
        start = r * len(real)
        n = min(len(real), n_chunks - start)
        out[start : start + n] = round_vectors(real, shape, r)[:n]
    return out


def build_base(engine, root: Path, n_chunks: int) -> float:  # noqa: ANN001 - Engine
    """Write the base generation through GenerationWriter and make it live; returns seconds taken."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from update import replica, vocabulary

    from newsbot.index.ingest.dedup import minhash
    from newsbot.index.store.base import Manifest, now_iso
    from newsbot.index.store.embedded.layout import Layout

    started = time.perf_counter()
    chunked, real = corpus(engine)
    vocab = vocabulary([d for d, _ in chunked])
    signatures = {d.id: minhash(d.body) for d, _ in chunked}
    shape = noise_shape(real)
    backend = engine.backend
    opts = engine.options()
    with backend.write_lock():
        name = Layout(root).new_generation_name()
        manifest = Manifest(generation=name, model=opts.model, dim=engine.embedder.dim,
                            chunk_tokens=opts.chunk_tokens, chunk_overlap=opts.chunk_overlap, created_at=now_iso())
        writer = backend.create_generation(manifest)
        try:
            done = 0
            for r in range(-(-n_chunks // len(real))):
                vectors = round_vectors(real, shape, r)
                pos = 0
                for doc, chunks in chunked:
                    if done >= n_chunks:
                        break
                    take = min(len(chunks), n_chunks - done)
                    new, new_chunks = (doc, chunks) if r == 0 else replica(doc, chunks, r, vocab)
                    # replicas reuse their original's MinHash signature (dedup is not what is measured)
                    writer.add(new, new_chunks[:take], vectors[pos : pos + take], signatures[doc.id])
                    pos += len(chunks)
                    done += take
                    if done % 50_000 < take:
                        log(f"  base: {done:,} / {n_chunks:,} passages ({time.perf_counter() - started:.0f} s)")
            log("  writing the FAISS snapshot ...")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        backend.set_current(name)
        backend.remove_stale_generations(keep=1)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- measuring


class CachedEmbedder:
    """The engine's embedder with every text's vector remembered (to time the search without the model)."""

    def __init__(self, inner) -> None:  # noqa: ANN001 - Embedder
        self.inner = inner
        self.model_name, self.key, self.dim = inner.model_name, inner.key, inner.dim
        self.vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            found = self.inner.encode(missing, batch_size=batch_size)
            with self._lock:
                self.vectors.update(zip(missing, found, strict=True))
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def timed(fn: Callable, items: Sequence, cpu: list[float] | None = None) -> list[float]:
    """Wall seconds of fn(item) for each item (and the process's CPU seconds in `cpu`, if given)."""
    out = []
    for item in items:
        started, started_cpu = time.perf_counter(), time.process_time()
        fn(item)
        out.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.process_time() - started_cpu)
    return out


def concurrent_qps(fn: Callable, items: Sequence[str], threads: int) -> float:
    errors: list[BaseException] = []

    def worker(part: Sequence[str]) -> None:
        try:
            for q in part:
                fn(q)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(items[i::threads],)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return len(items) / (time.perf_counter() - started)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k row numbers by inner product, blockwise; `allowed` masks rows."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        block = vectors[start : start + 100_000]
        scores = queries @ block.T
        if allowed is not None:
            scores[:, ~allowed[start : start + len(block)]] = -np.inf
        s = np.concatenate([best_s, scores], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + len(block)), scores.shape)], axis=1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, axis=1), np.take_along_axis(i, top, axis=1)
    return best_i


def article_recall(engine, questions: Sequence[dict]) -> dict[str, float]:  # noqa: ANN001 - Engine
    """Retrieval quality at this size: the share of each question's evidence articles among the articles
    of its top 10 (a replica "edition r" counts as its original: it carries the same facts), and the share
    of questions with at least one. Questions: the first ones of the dev split that have evidence."""
    import re

    recall, any_found = [], []
    for q in questions:
        articles = {re.sub(r"-r\d+$", "", h.doc_id) for h in engine.search(q["question"])}
        gold = {e["doc_id"] for e in q["evidence"]}
        recall.append(len(gold & articles) / len(gold))
        any_found.append(bool(gold & articles))
    return {"article_recall_at_10": round(float(np.mean(recall)), 4),
            "article_hits_at_10": round(float(np.mean(any_found)), 4), "quality_questions": len(recall)}


def measure(root: Path, n_chunks: int, threads: int, recall_queries: int, overrides: dict | None = None,
            quality_queries: int = 300) -> dict[str, object]:
    from newsbot.bot.config import load_settings
    from newsbot.bot.engine import Engine
    from newsbot.index.hits import Filters
    from newsbot.index.retrieval.search import plan_query
    from newsbot.index.store.embedded import vector_index
    from newsbot.index.text import keyword_terms

    records = [json.loads(line) for line in QUERIES.open(encoding="utf-8")]
    questions = [r["question"] for r in records]
    timed_questions, warm_up = questions[:-WARM_UP], questions[-WARM_UP:]
    engine = Engine(load_settings({**(overrides or {}), "index_dir": str(root)}))
    inner = engine.query_embedder
    inner.encode(["warm up"])
    started = time.perf_counter()
    engine.warm_up()  # as the bot does: opens the index, loads the outlet/date columns
    open_s = time.perf_counter() - started
    reader = engine.reader()
    for q in warm_up:
        engine.search(q)

    log(f"  {len(timed_questions)} questions, full path ...")
    cpu: list[float] = []
    full = timed(engine.search, timed_questions, cpu)
    cached = CachedEmbedder(inner)
    engine._query_embedder = cached
    embed = []
    for q in timed_questions:  # what the search embeds: the question and its parts, in one call
        plan = plan_query(reader, q, engine.search_options())
        texts = list(dict.fromkeys([q, *(p.text for p in plan.parts)]))
        t0 = time.perf_counter()
        cached.encode(texts)
        embed.append(time.perf_counter() - t0)
    log("  ... and with embeddings precomputed")
    index_only = timed(engine.search, timed_questions)
    qvecs = cached.encode(timed_questions)
    dense = timed(lambda i: reader.dense_search(qvecs[i][None, :], 60), range(len(timed_questions)))
    from newsbot.index.retrieval.options import SearchOptions
    from newsbot.index.retrieval.search import _keyword_query_terms

    kw_opts = engine.search_options() if hasattr(engine, "search_options") else SearchOptions()
    terms = [_keyword_query_terms(reader, keyword_terms(q), kw_opts) for q in timed_questions]
    reader.__dict__.pop("term_scores", None)  # an empty word cache: every word's bm25 read from FTS5 again
    keyword = timed(lambda t: reader.keyword_search(t, 60), terms)
    engine._query_embedder = None
    log(f"  {threads} threads at once ...")
    qps = concurrent_qps(engine.search, timed_questions[:300], threads)

    out: dict[str, object] = {
        "chunks": n_chunks,
        "p50_ms": pct(full, 50), "p95_ms": pct(full, 95), "p99_ms": pct(full, 99),
        "qps_concurrent": round(qps, 2),
        "vector_recall_at_10": None,
        "rss_mb": round(rss_mb(), 1),
        "index_type": vector_index.describe(reader.base),
        "cpu_p50_ms": pct(cpu, 50), "cpu_p95_ms": pct(cpu, 95),
        "embed_p50_ms": pct(embed, 50), "embed_p95_ms": pct(embed, 95),
        "index_p50_ms": pct(index_only, 50), "index_p95_ms": pct(index_only, 95),
        "dense_p50_ms": pct(dense, 50), "dense_p95_ms": pct(dense, 95),
        "keyword_p50_ms": pct(keyword, 50), "keyword_p95_ms": pct(keyword, 95),
        "threads": threads,
        "questions": len(timed_questions),
        "vector_bytes_per_chunk": round(vector_index.bytes_per_vector(reader.base), 1),
        "vector_file_bytes_per_chunk": round((reader.dir / reader.manifest.faiss_file).stat().st_size / n_chunks, 1),
        "open_s": round(open_s, 3),
        "query_embedding": getattr(inner, "key", engine.settings.embedding_model),
    }

    if quality_queries > 0:
        log(f"  evidence articles found ({quality_queries} questions) ...")
        out.update(article_recall(engine, [r for r in records[:-WARM_UP] if r.get("evidence")][:quality_queries]))
        out["settings"] = overrides or {}
    if recall_queries <= 0:
        return out
    log(f"  vector recall against exact search ({recall_queries} questions) ...")
    _, real = corpus(engine)
    vectors = all_vectors(real, n_chunks)
    queries = qvecs[:recall_queries]
    exact = exact_top(vectors, queries, 10) + 1  # the base was written with chunk ids 1..n in this order
    got = reader.dense_search(queries, 10)
    out["vector_recall_at_10"] = round(float(np.mean(
        [len(set(e.tolist()) & {cid for cid, _ in g}) / 10 for e, g in zip(exact, got, strict=True)]
    )), 4)
    recalls = []
    for q in timed_questions[:recall_queries]:
        for part in plan_query(reader, q, engine.search_options()).parts:
            filters = Filters(part.sources, part.since, part.until)
            if not filters:
                continue
            mask, count = reader.allowed(filters)
            if count < 10:
                continue
            allowed = mask[1 : n_chunks + 1]
            pvec = cached.encode([part.text])
            truth = exact_top(vectors, pvec, 10, allowed)[0] + 1
            found = {cid for cid, _ in reader.dense_search(pvec, 10, filters)[0]}
            recalls.append(len(set(truth.tolist()) & found) / 10)
    out["filtered_vector_recall_at_10"] = round(float(np.mean(recalls)), 4) if recalls else None
    out["filtered_parts"] = len(recalls)
    return out


# ---------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, required=True, help="passages in the index")
    parser.add_argument("--keep", metavar="DIR", help="build the index there once and reuse it")
    parser.add_argument("--threads", type=int, default=4, help="concurrent questions for qps_concurrent")
    parser.add_argument("--recall-queries", type=int, default=200, help="questions for the recall figures")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the index, measure nothing")
    parser.add_argument("--quality-queries", type=int, default=300,
                        help="questions for article_recall_at_10 (0 = skip)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a search setting for this run (repeatable), e.g. max_query_postings=2000")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not DOCS.is_file():
        raise SystemExit(f"no corpus at {DOCS}")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="newsbot-search-bench-"))
    stamp = root / STAMP
    try:
        if args.measure_only:
            from multihop import parse_overrides

            overrides = parse_overrides(args.set)
            print(json.dumps(measure(root, args.chunks, args.threads, args.recall_queries, overrides,
                                     args.quality_queries)), flush=True)
            return 0
        from newsbot.bot.config import load_settings
        from newsbot.bot.engine import Engine

        load_before = os.getloadavg()[0]
        wanted = {"chunks": args.chunks, "recipe": RECIPE, "noise": NOISE, "seed": SEED}
        have = json.loads(stamp.read_text()) if stamp.is_file() else {}
        if {k: have.get(k) for k in wanted} != wanted or not (root / "CURRENT").is_file():
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            log(f"building an index of {args.chunks:,} passages in {root} ...")
            build_s = build_base(Engine(load_settings({"index_dir": str(root)})), root, args.chunks)
            stamp.write_text(json.dumps({**wanted, "build_s": round(build_s, 1)}))
            log(f"  built in {build_s:.0f} s")
        else:
            build_s = 0.0
            log(f"reusing the index in {root}")
        if args.build_only:
            return 0
        # measured in a fresh process: the build's memory must not count in rss_mb
        cmd = [sys.executable, __file__, "--measure-only", "--chunks", str(args.chunks), "--keep", str(root),
               "--threads", str(args.threads), "--recall-queries", str(args.recall_queries),
               "--quality-queries", str(args.quality_queries), *[f"--set={item}" for item in args.set]]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            return proc.returncode
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update({
            "build_s": round(build_s, 1),
            "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "data": ("text: real MultiHop-RAG passages (round 0) + replicas with every 4th word swapped; vectors: "
                     f"real MiniLM (round 0) + synthetic perturbed copies (covariance-shaped noise x{NOISE})"),
        })
        print(json.dumps(result), flush=True)
    finally:
        if not args.keep and not args.measure_only:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
