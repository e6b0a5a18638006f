#!/usr/bin/env python3
"""Retrieval and answer quality of newsbot on MultiHop-RAG (Tang & Yang, COLM 2024).

    python benchmarks/multihop.py [--queries FILE] [--run-out FILE] [--index-dir DIR]
                                  [--store faiss|milvus] [--llm] [--no-answers] [--limit N] [--set K=V]

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
  answer_fact_recall           mean share of an answerable question's gold facts quoted in the answer
                               itself (citation marks removed; "not found" quotes none): a fact counts when,
                               whitespace removed, it is a substring of the answer, or when >= 70 % of its
                               distinct words fall in one sentence of the answer (answer_fact_recall_by_type:
                               the same per question type)
  answer_in_text_rate          share of answerable, non yes/no questions whose gold answer (normalised) is in
                               the answer text (citation marks removed)
  answer_in_lead_rate          the same, in the answer's first sentence
  answer_words_mean            mean words of the answers given (citation marks removed; "not found" left out)
With --llm, questions are answered through the configured OpenAI-compatible endpoint (NEWSBOT_LLM_BASE_URL
and NEWSBOT_LLM_MODEL, or --set llm_base_url=... --set llm_model=...; it stops with an error when none is
set), the answer fields above describe those answers, and the line also holds
  answer_accuracy              share of questions answered correctly: for null_query questions the bot said
                               "not found"; for the others it answered and the gold answer (normalised)
                               appears in the answer text (citation marks removed); a yes/no gold answer
                               must be the answer's first word
  answer_accuracy_by_type      the same per question type
  llm_answer_rate              share of questions the model itself answered (no fallback to extractive)
  llm_model                    the model name sent to the endpoint

--store milvus runs everything on the Milvus backend (index/store/milvus/) instead of the embedded
FAISS + SQLite store: by default Milvus Lite in a file of its own index folder
(benchmarks/out/index-multihop-milvus/milvus.db, articles in SQLite next to it). NEWSBOT_MILVUS_URI and
NEWSBOT_DATABASE_URL are ignored here so that a benchmark never rebuilds a live deployment's collection;
`--set milvus_uri=http://host:19530` (and `--set database_url=...`) point it at a server on purpose (it
builds into the `newsbot` alias there: use a server of its own). A Milvus build reuses the vectors the
FAISS benchmark index already computed (its vector cache is copied when the Milvus folder has none).

Progress goes to stderr. Settings come from the usual NEWSBOT_* variables / newsbot.toml, so the
defaults are what users get; `--set key=value` overrides one setting for an experiment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import newsbot.index  # noqa: E402,F401 - before anything loads onnxruntime: its telemetry off (index/__init__.py)

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "multihop_rag"
SCORER = SHARED / "tools" / "score_multihop.py"
DEFAULT_INDEX = REPO / "benchmarks" / "out" / "index-multihop"
DEFAULT_INDEX_MILVUS = REPO / "benchmarks" / "out" / "index-multihop-milvus"
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
    out = {
        "model": settings.embedding_model,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
    }
    if (settings.store or "faiss").strip().lower() != "faiss":  # (faiss stamps stay as they were)
        from newsbot.index.store.sql import redact_url

        out["store"] = settings.store
        out["milvus_uri"] = redact_url(settings.milvus_uri) if settings.milvus_uri else "milvus.db"
    return out


def seed_vector_cache(target: Path, source: Path) -> bool:
    """Copy the vector cache `source` to `target` when `target` does not exist yet (vectors are keyed by
    model and passage hash, whatever the store): a Milvus build then embeds nothing the FAISS benchmark
    index already embedded. Returns whether it copied."""
    if target.exists() or not source.is_file() or target.resolve() == source.resolve():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # a consistent copy even while the source is open in WAL mode
    finally:
        dst.close()
        src.close()
    return True


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
    if build_settings(engine.settings).get("store"):
        faiss_cache = DEFAULT_INDEX / "cache" / "vectors.sqlite"
        if seed_vector_cache(engine.backend.cache_db, faiss_cache):
            log(f"copied the vector cache of {faiss_cache.parent.parent} (no re-embedding of its passages)")
    log(f"building the index at {engine.backend.describe()} from {docs} ...")
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

    from newsbot.bot.config import Settings, _coerce

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
    ap.add_argument("--index-dir", type=Path, default=None,
                    help=f"benchmark index (cached); default {DEFAULT_INDEX.relative_to(REPO)}, or "
                         f"{DEFAULT_INDEX_MILVUS.relative_to(REPO)} with --store milvus")
    ap.add_argument("--docs", type=Path, default=DATA / "docs.jsonl", help="articles to index")
    ap.add_argument("--store", choices=("faiss", "milvus"), default=None,
                    help="store backend (default: the store setting, normally faiss)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all)")
    ap.add_argument("--no-answers", action="store_true", help="skip Engine.ask (retrieval metrics only)")
    ap.add_argument("--llm", action="store_true",
                    help="answer through the configured OpenAI-compatible endpoint and report answer_accuracy")
    ap.add_argument("--answers-out", type=Path, default=None,
                    help="also write every question's answer (text, found, cited doc ids) to this jsonl file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting for this run (repeatable)")
    args = ap.parse_args(argv)
    if args.llm and args.no_answers:
        ap.error("--llm measures answers; it cannot be combined with --no-answers")

    from newsbot.bot.config import load_settings
    from newsbot.bot.engine import Engine

    overrides = parse_overrides(args.set)
    store = (args.store or overrides.get("store") or load_settings(overrides).store or "faiss").strip().lower()
    index_dir = args.index_dir or (DEFAULT_INDEX if store == "faiss" else DEFAULT_INDEX_MILVUS)
    if store != "faiss":  # never the deployment's Milvus/database from the environment, unless --set asks
        overrides.setdefault("milvus_uri", "")
        overrides.setdefault("database_url", "")
    settings = load_settings({**overrides, "index_dir": str(index_dir), "store": store})
    engine = Engine(settings)
    if args.llm and not engine.llm_configured():
        raise SystemExit(
            "error: --llm needs an OpenAI-compatible endpoint and model: set NEWSBOT_LLM_BASE_URL (e.g. "
            "http://127.0.0.1:8080/v1) and NEWSBOT_LLM_MODEL, or pass --set llm_base_url=... --set llm_model=..."
        )
    try:
        return run(engine, args)
    finally:
        close = getattr(engine.backend, "close", None)
        if close is not None:
            close()


def run(engine, args: argparse.Namespace) -> int:  # noqa: ANN001
    log(f"store: {engine.settings.store} ({engine.backend.describe()})")
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
        if not SCORER.is_file():
            log(f"warning: the scorer {SCORER} is missing: no retrieval metrics")
        else:
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
        result.update(answer_metrics(engine, queries, use_llm=args.llm, answers_out=args.answers_out))
    result["questions"] = len(queries)
    print(json.dumps(result))
    return 0


def answer_correct(answer, q: dict) -> bool:  # noqa: ANN001
    """Whether `answer` (an `Answer`) is right for question `q`: "not found" for a null_query question;
    otherwise found, with the gold answer (normalised) in the answer text without its citation marks,
    and a yes/no gold answer as the text's first word."""
    if q.get("question_type") == "null_query":
        return not answer.found
    gold = normalise(str(q.get("answer") or ""))
    if not answer.found or not gold:
        return False
    text = normalise(re.sub(r"\[\d{1,3}\]", " ", answer.text))
    if gold in YES_NO:
        return text.split(" ", 1)[0] == gold
    return answer_in(gold, [text])


_CITATION_MARKS = re.compile(r"\s*\[\d{1,3}\]")
_WORD = re.compile(r"\w+")


def plain_answer(text: str) -> str:
    """The answer as a reader reads it: citation marks and markdown bold markers removed, spaces collapsed
    (line breaks kept: each line of a multi-part answer is read on its own)."""
    text = _CITATION_MARKS.sub("", text).replace("**", "")
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines() if line.strip())


def answer_sentences(text: str) -> list[str]:
    """The sentences of a plain answer text (the splitter the index uses for passages)."""
    from newsbot.index.text import sentence_spans

    return [text[s:e] for s, e, _ in sentence_spans(text)]


def fact_in_answer(fact: str, text: str, sentences: list[str]) -> bool:
    """Whether a gold fact is quoted in an answer: whitespace removed, a substring of it; or at least 70 %
    of the fact's distinct words (lower case) in one of its sentences."""
    squashed = re.sub(r"\s+", "", fact)
    if squashed and squashed in re.sub(r"\s+", "", text):
        return True
    words = set(_WORD.findall(fact.lower()))
    if not words:
        return False
    return any(len(words & set(_WORD.findall(s.lower()))) >= 0.7 * len(words) for s in sentences)


def answer_metrics(engine, queries: list[dict], *, use_llm: bool = False,  # noqa: ANN001
                   answers_out: Path | None = None) -> dict:
    null_total = null_nf = other_total = other_answered = gold_total = gold_in = 0
    in_text = in_lead = 0
    correct = by_model = 0
    words: list[int] = []
    fact_recall: dict[str, list[float]] = {}
    by_type: dict[str, list[int]] = {}
    out_fh = open(answers_out, "w", encoding="utf-8") if answers_out else None  # noqa: SIM115
    for i, q in enumerate(queries, 1):
        answer = engine.ask(q["question"], use_llm=use_llm)
        qtype = q.get("question_type", "")
        stats = by_type.setdefault(qtype, [0, 0, 0])
        stats[0] += 1
        stats[1] += answer.found
        ok = answer_correct(answer, q)
        stats[2] += ok
        correct += ok
        by_model += answer.mode == "llm"
        plain = plain_answer(answer.text) if answer.found else ""
        sentences = answer_sentences(plain) if plain else []
        if answer.found:
            words.append(len(plain.split()))
        facts = [e["fact"] for e in q.get("evidence") or []]
        if facts:
            share = sum(fact_in_answer(f, plain, sentences) for f in facts) / len(facts) if plain else 0.0
            fact_recall.setdefault(qtype, []).append(share)
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
                in_text += bool(plain) and answer_in(gold, [plain])
                in_lead += bool(sentences) and answer_in(gold, sentences[:1])
        if out_fh is not None:
            out_fh.write(json.dumps({
                "id": q["id"], "question": q["question"], "type": qtype, "found": answer.found,
                "answer": answer.text, "cited": [c.doc_id for c in answer.citations],
            }) + "\n")
        if i % 100 == 0 or (use_llm and i % 10 == 0):
            log(f"  asked {i}/{len(queries)}")
    if out_fh is not None:
        out_fh.close()
    rate = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    out = {
        "not_found_rate_null": rate(null_nf, null_total),
        "answered_rate": rate(other_answered, other_total),
        "answer_in_citations_rate": rate(gold_in, gold_total),
        "answer_fact_recall": mean([x for xs in fact_recall.values() for x in xs]),
        "answer_in_text_rate": rate(in_text, gold_total),
        "answer_in_lead_rate": rate(in_lead, gold_total),
        "answer_words_mean": round(sum(words) / len(words), 1) if words else None,
        "answer_fact_recall_by_type": {k: mean(v) for k, v in sorted(fact_recall.items())},
        "answered_by_type": {k: rate(v[1], v[0]) for k, v in sorted(by_type.items())},
    }
    if use_llm:
        out["answer_accuracy"] = rate(correct, len(queries))
        out["answer_accuracy_by_type"] = {k: rate(v[2], v[0]) for k, v in sorted(by_type.items())}
        out["llm_answer_rate"] = rate(by_model, len(queries))
        out["llm_model"] = engine.settings.llm_model
    return out


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
