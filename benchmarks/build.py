#!/usr/bin/env python3
"""Build throughput: a full index build of the MultiHop-RAG corpus next to the raw model throughput.

    python benchmarks/build.py [--limit N] [--backend onnx|torch|onnx-int8] [--docs FILE]

1. Pre-pass: `Engine.build` with an instant stand-in embedder (random unit vectors) into a throwaway
   folder. It records the passage texts the build embeds and times the pipeline without the model.
2. Raw encode, part A: `embedder.encode(texts[0::2])` (one call, the configured batch size).
3. The measured build: a fresh index folder (so the vector cache is EMPTY and every passage is embedded)
   and `Engine.build` on `../shared/data/multihop_rag/docs.jsonl` (609 articles), exactly what
   `newsbot build FILE` runs. The model is loaded (and run once) before the clock starts; the wall time
   covers reading, dedup, chunking, embedding, SQLite/FTS5 and FAISS writes and the generation switch.
4. Raw encode, part B: `embedder.encode(texts[1::2])`. Raw throughput = passages / (A + B seconds): the
   two halves bracket the build in time, so a change of the machine's load during the run biases the
   ratio less.

Prints ONE JSON line on stdout:
  chunks                   passages in the built index
  chunks_per_s             chunks / build wall seconds
  raw_encode_chunks_per_s  passages / seconds of the raw encode
  ratio                    chunks_per_s / raw_encode_chunks_per_s (1.0 = the pipeline costs nothing extra)
  tokens_per_s             model word pieces (after truncation to the model's 256) per build second
  raw_tokens_per_s         the same for the raw encode
  embedded                 passages the build ran through the model (cache misses; = chunks unless some
                           passages are identical)
  build_s, raw_encode_s    wall seconds
  build_encode_s           seconds the build spent inside encode; encode_share = build_encode_s / build_s
  pipeline_only_s          the pre-pass: the same build with an instant embedder (all non-model work)
  cpu_ratio                the ratio in this process's CPU seconds instead of wall seconds: steadier
                           when other programs load the machine (it cannot show overlap gains, though)
  backend, model_key, batch_size, documents, limit, load_avg (1-minute load before/after: the machine is
  shared, so read figures with it)
`--limit N` indexes only the first N articles (quick runs). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import newsbot.index  # noqa: E402,F401 - before anything loads onnxruntime: its telemetry off (index/__init__.py)

DOCS = REPO.parent / "shared" / "data" / "multihop_rag" / "docs.jsonl"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class StubEmbedder:
    """Instant random unit vectors (seeded by the text), recording the texts: the pipeline minus the model."""

    def __init__(self, key: str, dim: int) -> None:
        self.model_name = self.key = key
        self.dim = dim
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.texts.extend(texts)
        rng = np.random.default_rng(len(self.texts))
        vectors = rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class RecordingEmbedder:
    """Passes encode calls through to `inner`, recording the texts and the seconds spent in it."""

    def __init__(self, inner) -> None:  # noqa: ANN001 - any Embedder
        self.inner = inner
        self.model_name, self.key, self.dim = inner.model_name, inner.key, inner.dim
        self.token_ids = getattr(inner, "token_ids", None)  # the build orders passages by it (onnx)
        self.texts: list[str] = []
        self.seconds = 0.0
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.encode(texts, batch_size=batch_size)
        with self._lock:
            self.seconds += time.perf_counter() - started
            self.texts.extend(texts)
        return vectors


def model_tokens(model_name: str, texts: Sequence[str]) -> int:
    """Word pieces the model sees for `texts`, [CLS]/[SEP] included, after truncation."""
    from tokenizers import Tokenizer

    from newsbot.index.embedding.onnx import local_model_dir, read_model_config

    folder = local_model_dir(model_name)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=read_model_config(folder)["max_seq_length"])
    tokenizer.no_padding()
    return sum(len(e.ids) for e in tokenizer.encode_batch(list(texts)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=DOCS, help="JSONL articles (default: MultiHop-RAG)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N articles (0 = all)")
    parser.add_argument("--backend", help="embedding backend (default: the setting, i.e. onnx)")
    args = parser.parse_args(argv)

    from newsbot.bot.config import load_settings
    from newsbot.bot.engine import Engine

    if not args.docs.is_file():
        raise SystemExit(f"no corpus at {args.docs}")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="newsbot-buildbench-") as tmp:
        docs = args.docs
        if args.limit:
            docs = Path(tmp) / "docs.jsonl"
            with args.docs.open(encoding="utf-8") as src:
                docs.write_text("".join(line for _, line in zip(range(args.limit), src, strict=False)), encoding="utf-8")
        overrides = {"index_dir": str(Path(tmp) / "index"), "corpus": str(docs)}
        if args.backend:
            overrides["embedding_backend"] = args.backend
        settings = load_settings(overrides)
        engine = Engine(settings)
        started = time.perf_counter()
        inner = engine.embedder
        inner.encode(["warm up the model before the clock starts"])
        log(f"{settings.embedding_backend} embedder loaded in {time.perf_counter() - started:.1f} s")
        last = {"stage": "", "tenth": -1}

        def progress(stage: str, done: int, total: int) -> None:
            tenth = int(10 * done / total) if total else 10
            if stage != last["stage"] or tenth != last["tenth"]:
                last.update(stage=stage, tenth=tenth)
                log(f"  {stage} {done}/{total}")

        log("pre-pass with an instant embedder (records the passages) ...")
        stub = StubEmbedder(inner.key, inner.dim)
        prepass = Engine(settings.replace(index_dir=str(Path(tmp) / "prepass")))
        prepass._embedder = stub
        started = time.perf_counter()
        prepass.build([docs])
        pipeline_only_s = time.perf_counter() - started
        texts = list(stub.texts)
        log(f"  {len(texts)} passages, {pipeline_only_s:.1f} s without the model")

        raw_cpu = 0.0

        def raw(part: list[str], name: str) -> float:
            nonlocal raw_cpu
            log(f"raw encode, part {name}: {len(part)} passages ...")
            started, cpu = time.perf_counter(), time.process_time()
            inner.encode(part, batch_size=settings.embedding_batch_size)
            raw_cpu += time.process_time() - cpu
            return time.perf_counter() - started

        raw_s = raw(texts[0::2], "A")
        recorder = RecordingEmbedder(inner)
        engine._embedder = recorder  # the build runs through the recorder; everything else is Engine.build
        log(f"building {docs} into a fresh index ...")
        started, cpu = time.perf_counter(), time.process_time()
        report = engine.build([docs], progress=progress)
        build_s, build_cpu = time.perf_counter() - started, time.process_time() - cpu
        log(f"built: {report.summary()} in {build_s:.1f} s")
        if sorted(recorder.texts) != sorted(texts):
            log("warning: the build embedded other passages than the pre-pass recorded")
        raw_s += raw(texts[1::2], "B")
    tokens = model_tokens(settings.embedding_model, texts)
    chunks_per_s = report.chunks / build_s
    raw_per_s = len(texts) / raw_s
    out = {
        "chunks": report.chunks,
        "chunks_per_s": round(chunks_per_s, 2),
        "raw_encode_chunks_per_s": round(raw_per_s, 2),
        "ratio": round(chunks_per_s / raw_per_s, 3),
        "tokens_per_s": round(tokens / build_s, 1),
        "raw_tokens_per_s": round(tokens / raw_s, 1),
        "embedded": report.embedded,
        "documents": report.documents,
        "build_s": round(build_s, 2),
        "raw_encode_s": round(raw_s, 2),
        "build_encode_s": round(recorder.seconds, 2),
        "encode_share": round(recorder.seconds / build_s, 3),
        "pipeline_only_s": round(pipeline_only_s, 2),
        "cpu_ratio": round((report.chunks / build_cpu) / (len(texts) / raw_cpu), 3),
        "backend": settings.embedding_backend,
        "model_key": inner.key,
        "batch_size": settings.embedding_batch_size,
        "limit": args.limit or None,
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
