#!/usr/bin/env python3
"""Retrieval and answer quality of newsbot on MultiHop-RAG (Tang & Yang, COLM 2024).

    python benchmarks/multihop.py [--queries FILE] [--run-out FILE] [--index-dir DIR]

1. Builds an index of `../shared/data/multihop_rag/docs.jsonl` with the code users run (`Engine.build`),
   cached in --index-dir and reused while the corpus, model and chunking settings are unchanged.
2. Answers every question of the queries file (default: the dev split) through `Engine.search`, the
   path `newsbot search` uses, and writes a run file: per question the passages exactly as shown to a
   reader (`Hit.passage`), best first.
3. Scores the run with the shared scorer (only when the queries carry gold evidence) and asks every
   question through `Engine.ask` to measure answer behaviour.

Prints ONE JSON line on stdout: the scorer's fields plus
  p50_ms, p95_ms               warm per-question search latency (query embedding included)
  build_s                      seconds the index build took (0.0 when a cached index was reused)
  not_found_rate_null          share of null_query questions that Engine.ask answered "not found"
  answered_rate                share of the other questions that it answered
  answer_in_citations_rate     share of answerable, non yes/no questions whose gold answer (normalised)
                               appears in the answer text or its cited passages
Progress goes to stderr. Settings come from the usual NEWSBOT_* variables / newsbot.toml, so the
defaults are what users get; `--set key=value` overrides one setting for an experiment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "multihop_rag"
SCORER = SHARED / "tools" / "score_multihop.py"
DEFAULT_INDEX = REPO / "benchmarks" / "out" / "index-multihop"
STAMP = "multihop-stamp.json"
YES_NO = {"yes", "no"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_settings(settings) -> dict:  # noqa: ANN001
    """What an index depends on: when any of it changes the cached index is rebuilt."""
    return {
        "model": settings.embedding_model,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
    }


def ensure_index(engine, docs: Path) -> float:  # noqa: ANN001
    """Build the benchmark index unless the cached one matches; returns the build seconds (0 if reused)."""
    root = engine.layout.root
    stamp_path = root / STAMP
    wanted = {"docs_sha256": file_sha(docs), **build_settings(engine.settings)}
    if engine.has_index() and stamp_path.is_file():
        try:
            have = json.loads(stamp_path.read_text(encoding="utf-8"))
        except ValueError:
            have = {}
        if have == wanted:
            log(f"reusing the index at {root} ({json.dumps(wanted)})")
            return 0.0
    log(f"building the index at {root} from {docs} ...")
    last = {"t": 0.0}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last["t"] > 10 or done >= total:
            last["t"] = now
            log(f"  {stage}: {done}/{total}")

    t0 = time.perf_counter()
    report = engine.build([docs], progress=progress)
    seconds = time.perf_counter() - t0
    log(f"built: {report.summary()}")
    stamp_path.write_text(json.dumps(wanted) + "\n", encoding="utf-8")
    return round(seconds, 1)


_NORM_SPACE = re.compile(r"\s+")
_NORM_PUNCT = re.compile(r"[^\w\s$%.]")


def normalise(text: str) -> str:
    """Lower case, NFKC, punctuation (but $ % .) dropped, whitespace collapsed; a trailing period dropped."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = _NORM_PUNCT.sub(" ", text)
    return _NORM_SPACE.sub(" ", text).strip().strip(".").strip()


def answer_in(answer: str, texts: list[str]) -> bool:
    gold = normalise(answer)
    if not gold:
        return False
    pattern = re.compile(r"(?<!\w)" + re.escape(gold) + r"(?!\w)")
    return any(pattern.search(normalise(t)) for t in texts)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def parse_overrides(items: list[str]) -> dict:
    from dataclasses import fields

    from bot.config import Settings, _coerce

    kinds = {f.name: f.type for f in fields(Settings)}
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in kinds:
            raise SystemExit(f"error: unknown setting {key!r}")
        out[key] = _coerce(kinds[key], value, key)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=Path, default=DATA / "queries_dev.jsonl", help="questions (jsonl)")
    ap.add_argument("--run-out", type=Path, default=REPO / "benchmarks" / "out" / "multihop-run.jsonl",
                    help="where to write the run file")
    ap.add_argument("--index-dir", type=Path, default=DEFAULT_INDEX, help="benchmark index (cached)")
    ap.add_argument("--docs", type=Path, default=DATA / "docs.jsonl", help="articles to index")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all)")
    ap.add_argument("--no-answers", action="store_true", help="skip Engine.ask (retrieval metrics only)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting for this run (repeatable)")
    args = ap.parse_args(argv)

    from bot.config import load_settings
    from bot.engine import Engine

    settings = load_settings({"index_dir": str(args.index_dir), **parse_overrides(args.set)})
    engine = Engine(settings)
    build_s = ensure_index(engine, args.docs)

    queries = [json.loads(line) for line in open(args.queries, encoding="utf-8") if line.strip()]
    if args.limit:
        queries = queries[: args.limit]
    log(f"{len(queries)} questions from {args.queries}")

    engine.search("warm up the model and the index")  # cold start is not what p50/p95 measure
    latencies: list[float] = []
    args.run_out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.run_out, "w", encoding="utf-8") as out:
        for i, q in enumerate(queries, 1):
            t0 = time.perf_counter()
            hits = engine.search(q["question"])
            latencies.append((time.perf_counter() - t0) * 1000)
            out.write(json.dumps({"id": q["id"], "passages": [h.passage for h in hits]}) + "\n")
            if i % 100 == 0:
                log(f"  searched {i}/{len(queries)}")

    result: dict = {}
    if any(q.get("evidence") for q in queries):
        tmp_queries = args.queries
        if args.limit:
            tmp_queries = args.run_out.with_suffix(".queries.jsonl")
            tmp_queries.write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(SCORER), str(args.run_out), "--queries", str(tmp_queries)],
            capture_output=True, text=True, check=True,
        )
        result.update(json.loads(proc.stdout))
    result["p50_ms"] = round(percentile(latencies, 0.5), 1)
    result["p95_ms"] = round(percentile(latencies, 0.95), 1)
    result["build_s"] = build_s

    if not args.no_answers:
        result.update(answer_metrics(engine, queries))
    result["questions"] = len(queries)
    print(json.dumps(result))
    return 0


def answer_metrics(engine, queries: list[dict]) -> dict:  # noqa: ANN001
    null_total = null_nf = other_total = other_answered = gold_total = gold_in = 0
    by_type: dict[str, list[int]] = {}
    for i, q in enumerate(queries, 1):
        answer = engine.ask(q["question"])
        qtype = q.get("question_type", "")
        stats = by_type.setdefault(qtype, [0, 0])
        stats[0] += 1
        stats[1] += answer.found
        if qtype == "null_query":
            null_total += 1
            null_nf += not answer.found
        else:
            other_total += 1
            other_answered += answer.found
            gold = str(q.get("answer") or "")
            if gold and normalise(gold) not in YES_NO and qtype:
                gold_total += 1
                texts = [answer.text] + [h.passage for c in answer.citations for h in c.hits]
                gold_in += answer.found and answer_in(gold, texts)
        if i % 100 == 0:
            log(f"  asked {i}/{len(queries)}")
    rate = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
    return {
        "not_found_rate_null": rate(null_nf, null_total),
        "answered_rate": rate(other_answered, other_total),
        "answer_in_citations_rate": rate(gold_in, gold_total),
        "answered_by_type": {k: rate(v[1], v[0]) for k, v in sorted(by_type.items())},
    }


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
