"""`benchmarks/multihop.py --llm` end to end: a subprocess against the scripted OpenAI-compatible stand-in.

A tiny corpus and question file in the benchmark's jsonl format are written to tmp_path (nothing from
../shared is copied); the stand-in answers the questions the model is asked, right or wrong, and the
test checks the answer accuracy the benchmark computes from those replies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.openai_standin import OpenAIStandin

BENCH = REPO / "benchmarks" / "multihop.py"

DOCS = [
    {"id": "t-doc-1", "title": "Acme Corp agrees to buy Widgets Ltd for $2 billion", "source": "Harbor Times",
     "url": "https://harbor.example/acme-widgets", "published_at": "2023-10-02T08:00:00+00:00",
     "author": "Ana Reis", "category": "business",
     "body": "Acme Corp said on Monday it agreed to buy Widgets Ltd for $2 billion in cash. The deal is "
             "expected to close in the spring. European regulators will review the purchase before it "
             "can go ahead, the companies said."},
    {"id": "t-doc-2", "title": "EU to review the Acme and Widgets deal", "source": "Valley Ledger",
     "url": "https://ledger.example/eu-review", "published_at": "2023-10-05T09:30:00+00:00",
     "author": "Tom Berg", "category": "business",
     "body": "The European Commission will review Acme Corp's purchase of Widgets Ltd. Regulators want to "
             "know whether the combined company would dominate the market for industrial sensors. A "
             "decision is due in February."},
    {"id": "t-doc-3", "title": "Chip makers meet in Lisbon", "source": "Harbor Times",
     "url": "https://harbor.example/chip-summit", "published_at": "2023-11-14T10:00:00+00:00",
     "author": "Ana Reis", "category": "technology",
     "body": "The annual chip summit took place in Lisbon this week. Executives discussed export rules, "
             "factory subsidies and the shortage of skilled engineers."},
]


def _q(n: int, question: str, answer: str, qtype: str, evidence: list[tuple[str, str]]) -> dict:
    titles = {d["id"]: d["title"] for d in DOCS}
    return {"id": f"t-q-{n}", "question": question, "answer": answer, "question_type": qtype,
            "evidence": [{"doc_id": d, "title": titles[d], "fact": f} for d, f in evidence]}


QUERIES = [
    _q(1, "Which company agreed to buy Widgets Ltd for $2 billion, as reported by Harbor Times?", "Acme Corp",
       "inference_query", [("t-doc-1", "Acme Corp said on Monday it agreed to buy Widgets Ltd for $2 billion")]),
    _q(2, "Do both Harbor Times and Valley Ledger report that regulators will review the Widgets deal?", "Yes",
       "comparison_query", [("t-doc-1", "European regulators will review the purchase"),
                            ("t-doc-2", "The European Commission will review Acme Corp's purchase")]),
    _q(3, "In which city did the chip summit reported by Harbor Times in November take place?", "Lisbon",
       "temporal_query", [("t-doc-3", "The annual chip summit took place in Lisbon this week.")]),
    _q(4, "What price did the bakery chain pay for the ferry operator?", "Insufficient information.",
       "null_query", []),
    # names a company no passage mentions: the grounding check answers "not found" without the model
    _q(5, "How many stores did Zorblatt Quuxworth open in the spring?", "Insufficient information.",
       "null_query", []),
    # beyond --limit 5: never asked
    _q(6, "Who wrote the Harbor Times article about the Acme deal?", "Ana Reis", "inference_query",
       [("t-doc-1", "Ana Reis")]),
]

REPLIES = [
    "Acme Corp agreed to buy Widgets Ltd for $2 billion [1].",  # right
    # right (yes/no: the first word; a bare "Yes." sentence would be dropped as uncited)
    "Yes, both outlets say the purchase will be reviewed by European regulators [1][2].",
    "The summit took place in Porto [1].",  # wrong
    "NOT_FOUND",  # right for a null question
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update(TOKENIZERS_PARALLELISM="false", **extra)
    return env


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    docs, queries = tmp_path / "docs.jsonl", tmp_path / "queries.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    return docs, queries


def _bench(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    docs, queries = _write_inputs(tmp_path)
    return subprocess.run(
        [sys.executable, str(BENCH), "--docs", str(docs), "--queries", str(queries),
         "--index-dir", str(tmp_path / "index"), "--run-out", str(tmp_path / "run.jsonl"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
def test_llm_option_scores_answers_from_the_endpoint(tmp_path: Path) -> None:
    with OpenAIStandin() as llm:
        for reply in REPLIES:
            llm.reply_text(reply)
        proc = _bench(tmp_path, "--llm", "--limit", "5",
                      env=_env(NEWSBOT_LLM_BASE_URL=llm.base_url, NEWSBOT_LLM_MODEL="standin-model",
                               NEWSBOT_LLM_TIMEOUT="20"))
        requests = list(llm.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    # questions 1-4 went to the model, in order; question 5 was "not found" before any model call
    assert len(requests) == 4, [r.message("user")[-200:] for r in requests]
    for req, q in zip(requests, QUERIES, strict=False):
        assert req.body["model"] == "standin-model"
        assert q["question"] in req.message("user")
        assert '<passage id="1">' in req.message("user")

    assert result["questions"] == 5
    assert result["answer_accuracy"] == 0.8, json.dumps(result)  # 4 of 5: the Porto answer is wrong
    assert result["answer_accuracy_by_type"] == {
        "comparison_query": 1.0, "inference_query": 1.0, "null_query": 1.0, "temporal_query": 0.0,
    }
    assert result["llm_answer_rate"] == 0.8
    assert result["llm_model"] == "standin-model"
    assert result["not_found_rate_null"] == 1.0
    assert result["answered_rate"] == 1.0
    for key in ("p50_ms", "p95_ms", "build_s", "answer_in_citations_rate", "answered_by_type"):
        assert key in result
    run = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in run] == [q["id"] for q in QUERIES[:5]] and all(r["passages"] for r in run)


@pytest.mark.slow
def test_llm_option_without_endpoint_fails_clearly(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--llm", "--limit", "1", env=_env())
    assert proc.returncode != 0
    assert "--llm needs an OpenAI-compatible endpoint" in proc.stderr
    assert "NEWSBOT_LLM_BASE_URL" in proc.stderr
    assert not (tmp_path / "index").exists()  # it stopped before building anything


@pytest.mark.slow
def test_answer_metrics_measure_the_answer_text(tmp_path: Path) -> None:
    """Without --llm: the answer fields are computed from the quoted answers on the tiny corpus."""
    proc = _bench(tmp_path, "--limit", "5", env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("answer_fact_recall", "answer_in_text_rate", "answer_in_lead_rate", "answer_words_mean",
                "answer_fact_recall_by_type"):
        assert key in result, key
    assert 0.0 <= result["answer_fact_recall"] <= 1.0
    # question 1's one gold fact is a sentence of t-doc-1 that a quoted answer can only copy whole
    assert result["answer_fact_recall_by_type"]["inference_query"] in (0.0, 1.0)


def test_fact_in_answer_rule() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("multihop_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(bench)
    answer = "**Harbor Times, 2023-10-02:** Acme Corp said on Monday it agreed to buy Widgets Ltd. [1]\nOther. [2]"
    plain = bench.plain_answer(answer)
    assert plain.splitlines()[0] == "Harbor Times, 2023-10-02: Acme Corp said on Monday it agreed to buy Widgets Ltd."
    sentences = bench.answer_sentences(plain)
    assert bench.fact_in_answer("Acme Corp said on Monday", plain, sentences)  # a substring, spaces ignored
    # 70 % of the fact's words in one sentence of the answer
    assert bench.fact_in_answer("Acme said Monday it agreed to buy Widgets Ltd for $2 billion", plain, sentences)
    assert not bench.fact_in_answer("European regulators will review the purchase", plain, sentences)
