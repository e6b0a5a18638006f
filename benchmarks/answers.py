#!/usr/bin/env python3
"""Answer quality of newsbot's default answers (extractive, no language model) on the bundled corpus.

    python benchmarks/answers.py [--questions FILE] [--index-dir DIR] [--corpus DIR] [--limit N]
                                 [--set K=V] [--show] [--out FILE]

1. Builds an index of `docs_corpus/` (or --corpus) with the code users run (`Engine.build`), cached in
   --index-dir (default benchmarks/out/index-corpus) and reused while the corpus files, the model and the
   chunking settings are unchanged (a stamp file, as `benchmarks/multihop.py` does).
2. Asks every question of the questions file (default benchmarks/data/corpus_questions.jsonl) through
   `Engine.ask(question, history=..., use_llm=False)`, the path `newsbot ask` and Discord use:
   - a follow-up's `history` questions are asked first, in order, each with the turns before it, and
     the question itself then gets `history=[Turn(question, answer.text), ...]` of those real answers;
   - a question with `remove` is asked on a private copy of the index folder from which those articles
     were removed with `Engine.remove` (one copy per distinct set of ids; the cached index is untouched).
3. Scores each answer against the question's key-fact regexes and the articles it must cite.

Questions file: one JSON object per line with
  id, question      a unique id and the question as a user types it
  type              why, how, when, how_much, who, which, list, yes_no, comparison, what_happened,
                    date_scoped, cross_article, follow_up, not_in_corpus or after_remove
  key               regexes (case-insensitive); the key fact is present in a text when EVERY one matches
  cite              article ids; the citation is right when at least one of them is cited
  history           (follow-ups) earlier questions of the conversation, oldest first
  remove            (after_remove) article ids removed from the private copy of the index first
  expect            "answer" or "not_found"
  note              optional, for people

The answer text is examined without its citation marks ([n]). Sentences are split with
`index.chunking.sentence_spans` (each line of a list counts as a sentence).

Prints ONE JSON line on stdout:
  lead_rate              share of expect=answer questions whose key fact is in the first two sentences
  fact_rate              share of expect=answer questions whose key fact is anywhere in the answer text
  cited_right_rate       share of expect=answer questions where one of the `cite` articles is cited
  answered_rate          share of expect=answer questions answered at all (not "not found")
  not_found_right_rate   share of expect=not_found questions answered "not found"
  follow_up_rate         share of follow_up questions whose key fact is in the answer text
  p50_ms, p95_ms         warm `Engine.ask` latency of the questions themselves on the main index (the
                         asks of history turns and the questions on removed-article copies, whose
                         first ask opens a fresh index, are not timed)
  answer_words_mean      mean words per answer (citation marks removed) over expect=answer questions
                         that were answered
  questions, answerable, expected_not_found, follow_ups    counts of the questions scored
  build_s                seconds the index build took (0.0 when a cached index was reused)
  load_1m                the machine's 1-minute load average when the questions were done (latency on
                         shared cores moves with it)
  by_type                per type: n, and lead / fact / cited (rates over its expect=answer questions)
                         and not_found_right (over its expect=not_found questions) where it has any
Progress goes to stderr. --show prints every failing question with its answer to stderr; --out writes
one JSON line per question (answer, citations, history turns, and which checks passed). Settings come from the
usual NEWSBOT_* variables / newsbot.toml, so the defaults are what users get, except that the store is
always the embedded one (after-remove questions copy its folder) and no language model is used;
`--set key=value` overrides one setting for an experiment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _p in (REPO, REPO / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import multihop  # noqa: E402  (benchmarks/multihop.py: logging, file hashes, stamps, percentiles, --set)
from multihop import log  # noqa: E402

DEFAULT_CORPUS = REPO / "docs_corpus"
DEFAULT_QUESTIONS = REPO / "benchmarks" / "data" / "corpus_questions.jsonl"
DEFAULT_INDEX = REPO / "benchmarks" / "out" / "index-corpus"
STAMP = "answers-stamp.json"
TYPES = (
    "why", "how", "when", "how_much", "who", "which", "list", "yes_no", "comparison", "what_happened",
    "date_scoped", "cross_article", "follow_up", "not_in_corpus", "after_remove",
)
LEAD_SENTENCES = 2
_MARK = re.compile(r"\s*\[\d{1,3}\]")


# ------------------------------------------------------------------ questions


def load_questions(path: Path) -> list[dict]:
    """The questions of `path`, checked: a malformed question stops the run with its line number."""
    out: list[dict] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            q = json.loads(line)
            where = f"{path}:{n}"
            for field in ("id", "question", "type", "expect"):
                if not isinstance(q.get(field), str) or not q[field].strip():
                    raise SystemExit(f"error: {where}: missing {field!r}")
            if q["id"] in seen:
                raise SystemExit(f"error: {where}: duplicate id {q['id']!r}")
            seen.add(q["id"])
            if q["type"] not in TYPES:
                raise SystemExit(f"error: {where}: unknown type {q['type']!r}")
            if q["expect"] not in ("answer", "not_found"):
                raise SystemExit(f"error: {where}: expect must be 'answer' or 'not_found'")
            for field in ("key", "cite", "history", "remove"):
                value = q.setdefault(field, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise SystemExit(f"error: {where}: {field!r} must be a list of strings")
            if q["expect"] == "answer" and not (q["key"] and q["cite"]):
                raise SystemExit(f"error: {where}: an answerable question needs 'key' and 'cite'")
            try:
                q["_key"] = [re.compile(k, re.I) for k in q["key"]]
            except re.error as exc:
                raise SystemExit(f"error: {where}: bad key regex: {exc}") from None
            out.append(q)
    return out


# ------------------------------------------------------------------ scoring


def plain_text(answer_text: str) -> str:
    """The answer text without its citation marks."""
    return _MARK.sub("", answer_text).strip()


def lead(text: str, n: int = LEAD_SENTENCES) -> str:
    """The first `n` sentences of `text` (a line without sentence punctuation counts as one)."""
    from newsbot.index.text import sentence_spans

    spans = sentence_spans(text)
    return " ".join(text[s:e] for s, e, _ in spans[:n])


def key_in(patterns: list[re.Pattern], text: str) -> bool:
    """Whether every key regex matches somewhere in `text` (False without regexes)."""
    return bool(patterns) and all(p.search(text) for p in patterns)


def score(q: dict, answer, history=()) -> dict:  # noqa: ANN001
    """Per-question result: the answer, the history turns it followed, and which checks it passed (None
    where a check does not apply)."""
    text = plain_text(answer.text) if answer.found else ""
    cited = [c.doc_id for c in answer.citations]
    row = {
        "id": q["id"], "type": q["type"], "expect": q["expect"], "question": q["question"],
        "standalone_question": answer.standalone_question or q["question"],
        "found": answer.found, "answer": answer.text, "cited": cited,
        "history": [{"question": t.question, "answer": t.answer} for t in history],
        "lead": None, "fact": None, "cited_right": None, "not_found_right": None,
    }
    if q["expect"] == "answer":
        row["lead"] = key_in(q["_key"], lead(text))
        row["fact"] = key_in(q["_key"], text)
        row["cited_right"] = any(doc_id in q["cite"] for doc_id in cited)
        row["words"] = len(text.split()) if answer.found else 0
        row["ok"] = row["lead"] and row["fact"] and row["cited_right"]
    else:
        row["not_found_right"] = not answer.found
        row["ok"] = row["not_found_right"]
    return row


def rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarise(rows: list[dict], latencies: list[float]) -> dict:
    answerable = [r for r in rows if r["expect"] == "answer"]
    not_found = [r for r in rows if r["expect"] == "not_found"]
    follow_ups = [r for r in rows if r["type"] == "follow_up"]
    words = [r["words"] for r in answerable if r["found"]]
    return {
        "lead_rate": rate([r["lead"] for r in answerable]),
        "fact_rate": rate([r["fact"] for r in answerable]),
        "cited_right_rate": rate([r["cited_right"] for r in answerable]),
        "answered_rate": rate([r["found"] for r in answerable]),
        "not_found_right_rate": rate([r["not_found_right"] for r in not_found]),
        "follow_up_rate": rate([bool(r["fact"]) for r in follow_ups]),
        "p50_ms": round(multihop.percentile(latencies, 0.5), 1),
        "p95_ms": round(multihop.percentile(latencies, 0.95), 1),
        "answer_words_mean": round(sum(words) / len(words), 1) if words else None,
        "questions": len(rows),
        "answerable": len(answerable),
        "expected_not_found": len(not_found),
        "follow_ups": len(follow_ups),
    }


def by_type(rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for qtype in sorted({r["type"] for r in rows}):
        group = [r for r in rows if r["type"] == qtype]
        ans = [r for r in group if r["expect"] == "answer"]
        nf = [r for r in group if r["expect"] == "not_found"]
        stats: dict = {"n": len(group)}
        if ans:
            stats.update(lead=rate([r["lead"] for r in ans]), fact=rate([r["fact"] for r in ans]),
                         cited=rate([r["cited_right"] for r in ans]))
        if nf:
            stats["not_found_right"] = rate([r["not_found_right"] for r in nf])
        out[qtype] = stats
    return out


def show_failure(row: dict) -> None:
    if row["expect"] == "answer":
        failed = [name for name in ("lead", "fact", "cited_right") if not row[name]]
        if not row["found"]:
            failed.insert(0, "answered")
    else:
        failed = ["not_found"]
    log(f"--- FAIL {row['id']} [{row['type']}] ({', '.join(failed)}): {row['question']}")
    if row["standalone_question"] != row["question"]:
        log(f"    asked as: {row['standalone_question']}")
    log(f"    cited: {', '.join(row['cited']) or '-'}")
    for line in row["answer"].splitlines():
        log(f"    | {line}")


# ------------------------------------------------------------------ the index


def corpus_sha(folder: Path) -> str:
    """One hash over every file of `folder` (relative path and content), so any edit rebuilds."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + multihop.file_sha(path).encode() + b"\n")
    return h.hexdigest()


def ensure_index(engine, corpus: Path) -> float:  # noqa: ANN001
    """Build the benchmark index unless the cached one matches; returns the build seconds (0 if reused)."""
    stamp_path = engine.layout.root / STAMP
    wanted = {"corpus_sha256": corpus_sha(corpus), **multihop.build_settings(engine.settings)}
    if engine.has_index() and stamp_path.is_file():
        try:
            have = json.loads(stamp_path.read_text(encoding="utf-8"))
        except ValueError:
            have = {}
        if have == wanted:
            log(f"reusing the index at {engine.layout.root}")
            return 0.0
    log(f"building the index at {engine.backend.describe()} from {corpus} ...")
    t0 = time.perf_counter()
    report = engine.build([corpus])
    seconds = time.perf_counter() - t0
    if report.errors:
        raise SystemExit(f"error: the corpus did not load cleanly: {report.errors}")
    log(f"built: {report.summary()}")
    stamp_path.parent.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(wanted) + "\n", encoding="utf-8")
    return round(seconds, 1)


def engine_without(settings, root: Path, remove: list[str], scratch: Path):  # noqa: ANN001
    """An Engine on a private copy of the index at `root` from which the articles `remove` were removed."""
    from dataclasses import replace

    from newsbot.bot.engine import Engine

    copy = scratch / f"removed-{len(list(scratch.iterdir()))}"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("*.lock"))
    engine = Engine(replace(settings, index_dir=str(copy)))
    report = engine.remove(remove)
    if report.errors or report.removed != len(set(remove)):
        raise SystemExit(f"error: removing {remove} from the copy failed: {report.errors or report.summary()}")
    log(f"  removed {', '.join(remove)} from a copy of the index")
    return engine


# ------------------------------------------------------------------ asking


def ask(engine, q: dict, latencies: list[float] | None):  # noqa: ANN001
    """Ask `q` after its history questions; returns (answer, the history turns). Only the question itself
    is timed, and only when `latencies` is given."""
    from newsbot.bot.answer.answers import Turn

    turns: list[Turn] = []
    for earlier in q["history"]:
        previous = engine.ask(earlier, history=list(turns), use_llm=False)
        turns.append(Turn(earlier, previous.text))
    t0 = time.perf_counter()
    answer = engine.ask(q["question"], history=turns, use_llm=False)
    if latencies is not None:
        latencies.append((time.perf_counter() - t0) * 1000)
    return answer, turns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="questions (jsonl)")
    ap.add_argument("--index-dir", type=Path, default=DEFAULT_INDEX,
                    help=f"benchmark index (cached); default {DEFAULT_INDEX.relative_to(REPO)}")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="articles to index (a folder)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting for this run (repeatable)")
    ap.add_argument("--show", action="store_true", help="print every failing question and its answer to stderr")
    ap.add_argument("--out", type=Path, default=None, help="write per-question results here (jsonl)")
    args = ap.parse_args(argv)

    from newsbot.bot.config import load_settings
    from newsbot.bot.engine import Engine

    overrides = multihop.parse_overrides(args.set)
    if (overrides.get("store") or "faiss").strip().lower() != "faiss":
        ap.error("only the embedded store (faiss) is supported: after-remove questions copy the index folder")
    # the embedded store in --index-dir, no shared database, and never a model endpoint
    overrides.update(store="faiss", database_url="", llm_base_url="")
    settings = load_settings({**overrides, "index_dir": str(args.index_dir)})
    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    log(f"{len(questions)} questions from {args.questions}")

    engine = Engine(settings)
    build_s = ensure_index(engine, args.corpus)
    engine.warm_up()
    engine.ask("warm up the model and the index", use_llm=False)  # cold start is not what p50/p95 measure

    rows: list[dict] = []
    latencies: list[float] = []
    copies: dict[tuple[str, ...], Engine] = {}
    with tempfile.TemporaryDirectory(prefix="answers-bench-") as scratch:
        for i, q in enumerate(questions, 1):
            if q["remove"]:
                ids = tuple(sorted(set(q["remove"])))
                if ids not in copies:
                    copies[ids] = engine_without(settings, engine.layout.root, list(ids), Path(scratch))
                answer, turns = ask(copies[ids], q, None)
            else:
                answer, turns = ask(engine, q, latencies)
            row = score(q, answer, turns)
            rows.append(row)
            if args.show and not row["ok"]:
                show_failure(row)
            if i % 25 == 0:
                log(f"  asked {i}/{len(questions)}")
        for copy in copies.values():
            close = getattr(copy.backend, "close", None)
            if close is not None:
                close()

    result = summarise(rows, latencies)
    result["build_s"] = build_s
    result["load_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    result["by_type"] = by_type(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.show:
        failing = [r["id"] for r in rows if not r["ok"]]
        log(f"{len(failing)} of {len(rows)} questions failed: {' '.join(failing) or '-'}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
