"""`benchmarks/answers.py`: its question set, its scoring, and a run end to end.

1. The question set itself (`benchmarks/data/corpus_questions.jsonl`): well formed, big and varied enough,
   and every key regex of an answerable question matches the body of at least one article it must cite.
2. The scoring functions on hand-made answers (no index): lead / fact / citation / not-found checks and
   the rates built from them.
3. The script as a subprocess on a tiny corpus written to tmp_path (its own index folder): a follow-up,
   a "not found", an after-remove question and a key regex that can never match; every metric of the
   JSON line is recomputed here from the per-question rows (--out) and the answers in them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import CORPUS, REPO, write_article

BENCH = REPO / "benchmarks" / "answers.py"
QUESTIONS = REPO / "benchmarks" / "data" / "corpus_questions.jsonl"
MARK = re.compile(r"\s*\[\d{1,3}\]")


def _module():
    spec = importlib.util.spec_from_file_location("answers_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def bench():
    return _module()


# ------------------------------------------------------------------ 1. the question set


def test_question_set_is_big_varied_and_well_formed(bench) -> None:
    from newsbot.index.ingest.loaders import load_paths

    docs = {d.id: d for d in load_paths([CORPUS]).documents}
    questions = bench.load_questions(QUESTIONS)  # stops on a malformed line, duplicate id or bad regex
    types = Counter(q["type"] for q in questions)

    assert len(questions) >= 80
    assert set(types) == set(bench.TYPES), set(bench.TYPES) - set(types)
    assert types["follow_up"] >= 8 and types["not_in_corpus"] >= 6 and types["after_remove"] >= 4
    assert types["date_scoped"] >= 8 and types["cross_article"] >= 6 and types["yes_no"] >= 5
    assert types["list"] + types["which"] >= 5
    assert {c for q in questions for c in q["cite"]} == set(docs), "every article should be asked about"

    for q in questions:
        assert set(q["cite"]) <= set(docs), (q["id"], q["cite"])
        assert set(q["remove"]) <= set(docs), (q["id"], q["remove"])
        assert bool(q["history"]) == (q["type"] == "follow_up"), q["id"]
        assert bool(q["remove"]) == (q["type"] == "after_remove"), q["id"]
        if q["type"] == "not_in_corpus":
            assert q["expect"] == "not_found", q["id"]
        if q["expect"] == "not_found":
            assert not q["key"] and not q["cite"], q["id"]
        else:
            assert not set(q["cite"]) & set(q["remove"]), f"{q['id']} cites an article it removes"
    assert sum(q["expect"] == "not_found" for q in questions if q["type"] == "after_remove") >= 4


def test_every_key_regex_matches_an_article_the_question_cites(bench) -> None:
    """Guards the set: a key fact must be in the articles named as its source (article bodies only)."""
    from newsbot.index.ingest.loaders import load_paths

    bodies = {d.id: d.body for d in load_paths([CORPUS]).documents}
    problems = []
    for q in bench.load_questions(QUESTIONS):
        for pattern in q["_key"]:
            if not any(pattern.search(bodies[doc_id]) for doc_id in q["cite"]):
                problems.append(f"{q['id']}: {pattern.pattern!r} is in none of {q['cite']}")
    assert not problems, "\n".join(problems)


def test_the_reported_problems_are_in_the_set(bench) -> None:
    by_text = {q["question"].lower(): q for q in bench.load_questions(QUESTIONS)}
    nvidia = by_text["what did nvidia announce in january 2025?"]
    assert nvidia["cite"] == ["nvidia-ces-2025-rtx-50-blackwell"]
    assert by_text["what did byd announce in march 2025?"]["cite"] == ["byd-megawatt-flash-charging"]
    assert by_text["why did tesla's deliveries fall in 2025?"]["cite"] == ["byd-overtakes-tesla-ev-2025"]
    price = by_text["and what about its price?"]
    assert price["type"] == "follow_up" and "ces" in price["history"][0].lower()
    assert by_text["what about huawei?"]["type"] == "follow_up"
    assert any("leica" in q["question"].lower() and q["type"] == "cross_article" for q in by_text.values())


# ------------------------------------------------------------------ 2. scoring, on hand-made answers


def _answer(text: str, cited: list[str], found: bool = True) -> SimpleNamespace:
    return SimpleNamespace(text=text, found=found, standalone_question="",
                           citations=[SimpleNamespace(doc_id=d) for d in cited])


def _question(key: list[str], cite: list[str], expect: str = "answer", qtype: str = "how_much") -> dict:
    return {"id": f"q{len(key)}-{expect}", "question": "?", "type": qtype, "expect": expect, "key": key,
            "cite": cite, "history": [], "remove": [], "_key": [re.compile(k, re.I) for k in key]}


def test_scoring_of_lead_fact_and_citations(bench) -> None:
    q = _question([r"1,?999", r"RTX 5090"], ["ces"])
    late = _answer("Nvidia held a keynote. [1] It showed new cards. [1] The RTX 5090 costs $1,999. [1]", ["ces"])
    early = _answer("The RTX 5090 costs $1,999. [1] Nvidia held a keynote. [1] It showed cards. [1]", ["gtc"])
    split = _answer("The RTX 5090 is the flagship. [1] Cards ship in January. [2] It costs $1,999. [1]",
                    ["gtc", "ces"])

    row = bench.score(q, late)
    assert (row["lead"], row["fact"], row["cited_right"], row["ok"]) == (False, True, True, False)
    row = bench.score(q, early)
    assert (row["lead"], row["fact"], row["cited_right"], row["ok"]) == (True, True, False, False)
    row = bench.score(q, split)  # every regex must match: RTX 5090 in the lead, the price only third
    assert (row["lead"], row["fact"], row["cited_right"]) == (False, True, True)
    assert row["words"] == len("The RTX 5090 is the flagship. Cards ship in January. It costs $1,999.".split())

    impossible = bench.score(_question([r"1,?999", r"no such fact anywhere"], ["ces"]), early)
    assert impossible["fact"] is False and impossible["lead"] is False
    not_found = bench.score(q, _answer("I couldn't find this in the indexed news.", [], found=False))
    assert (not_found["lead"], not_found["fact"], not_found["cited_right"], not_found["words"]) == (
        False, False, False, 0)

    nf_q = _question([], [], expect="not_found", qtype="not_in_corpus")
    assert bench.score(nf_q, _answer("I couldn't find this.", [], found=False))["not_found_right"] is True
    assert bench.score(nf_q, late)["not_found_right"] is False
    assert bench.score(nf_q, late)["fact"] is None  # fact checks do not apply to not-found questions


def test_rates_from_rows(bench) -> None:
    q = _question([r"1,?999"], ["ces"])
    fu = {**_question([r"1,?999"], ["ces"], qtype="follow_up"), "history": ["what did nvidia show?"]}
    nf = _question([], [], expect="not_found", qtype="not_in_corpus")
    rows = [
        bench.score(q, _answer("It costs $1,999. [1]", ["ces"])),  # lead, fact, cited
        bench.score(q, _answer("Nvidia met. [1] Gamers cheered. [1] It costs $1,999. [1]", ["x"])),  # fact only
        bench.score(fu, _answer("Nothing on price here. [1]", ["ces"])),  # cited only
        bench.score(nf, _answer("not found", [], found=False)),
        bench.score(nf, _answer("Some answer. [1]", ["x"])),
    ]
    result = bench.summarise(rows, [10.0, 20.0, 30.0])
    assert result["lead_rate"] == round(1 / 3, 4)
    assert result["fact_rate"] == round(2 / 3, 4)
    assert result["cited_right_rate"] == round(2 / 3, 4)
    assert result["answered_rate"] == 1.0
    assert result["not_found_right_rate"] == 0.5
    assert result["follow_up_rate"] == 0.0
    assert (result["p50_ms"], result["questions"], result["answerable"], result["expected_not_found"],
            result["follow_ups"]) == (20.0, 5, 3, 2, 1)
    assert result["answer_words_mean"] == round((3 + 7 + 4) / 3, 1)
    types = bench.by_type(rows)
    assert types["not_in_corpus"] == {"n": 2, "not_found_right": 0.5}
    assert types["follow_up"] == {"n": 1, "lead": 0.0, "fact": 0.0, "cited": 1.0}


# ------------------------------------------------------------------ 3. the script, end to end


def _corpus(folder: Path) -> None:
    write_article(folder, "acme-widgets.md", title="Acme Corp agrees to buy Widgets Ltd for $2 billion",
                  source="Harbor Times", date="2025-03-02", extra="id: acme-widgets", body="""
                  Acme Corp said on Monday it agreed to buy Widgets Ltd for $2 billion in cash. The deal
                  is expected to close in the spring. European regulators will review the purchase.""")
    write_article(folder, "lisbon-summit.md", title="Chip makers meet in Lisbon", source="Valley Ledger",
                  date="2025-04-14", extra="id: lisbon-summit", body="""
                  The annual chip summit took place in Lisbon this week. Executives discussed export rules,
                  factory subsidies and the shortage of skilled engineers.""")
    write_article(folder, "zephyr-battery.md", title="Zephyr Motors shows its Quokka battery",
                  source="Harbor Times", date="2025-05-20", extra="id: zephyr-battery", body="""
                  Zephyr Motors said its new Quokka battery stores 190 watt-hours per kilogram. The carmaker
                  plans to use the Quokka cells in a compact hatchback next year.""")


QUESTIONS_SMALL = [
    {"id": "t-price", "question": "How much is Acme paying for Widgets Ltd?", "type": "how_much",
     "key": [r"2 billion"], "cite": ["acme-widgets"], "expect": "answer"},
    {"id": "t-impossible", "question": "What is Acme Corp buying?", "type": "what_happened",
     "key": [r"Widgets", r"zq-this-regex-never-matches"], "cite": ["acme-widgets"], "expect": "answer"},
    {"id": "t-follow", "question": "what did they discuss?", "type": "follow_up",
     "key": [r"export rules|subsidies"], "cite": ["lisbon-summit"],
     "history": ["Where did the chip summit take place?"], "expect": "answer"},
    {"id": "t-nf", "question": "How many stores did Zorblatt Quuxworth open?", "type": "not_in_corpus",
     "key": [], "cite": [], "expect": "not_found"},
    {"id": "t-removed", "question": "How much energy does the Zephyr Quokka battery store?",
     "type": "after_remove", "key": [], "cite": [], "remove": ["zephyr-battery"], "expect": "not_found"},
    {"id": "t-beyond-limit", "question": "Where was the chip summit?", "type": "which",
     "key": [r"Lisbon"], "cite": ["lisbon-summit"], "expect": "answer"},
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--corpus", str(tmp_path / "corpus"), "--questions",
         str(tmp_path / "questions.jsonl"), "--index-dir", str(tmp_path / "index"), *args],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_script_end_to_end_on_a_small_corpus(tmp_path: Path) -> None:
    from newsbot.index.text import sentence_spans

    _corpus(tmp_path / "corpus")
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS_SMALL),
                                              encoding="utf-8")
    proc = _run(tmp_path, "--limit", "5", "--show", "--out", str(tmp_path / "rows.jsonl"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # ONE JSON line on stdout, progress on stderr
    result = json.loads(lines[0])
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [q["id"] for q in QUESTIONS_SMALL[:5]]
    by_id = {r["id"]: r for r in rows}
    questions = {q["id"]: q for q in QUESTIONS_SMALL}

    # each row's checks, recomputed here from its answer text
    for row in rows:
        q = questions[row["id"]]
        if q["expect"] == "not_found":
            assert row["not_found_right"] is (not row["found"])
            continue
        text = MARK.sub("", row["answer"]).strip() if row["found"] else ""
        first_two = " ".join(text[s:e] for s, e, _ in sentence_spans(text)[:2])
        assert row["fact"] is all(re.search(k, text, re.I) for k in q["key"]), row
        assert row["lead"] is all(re.search(k, first_two, re.I) for k in q["key"]), row
        assert row["cited_right"] is any(d in q["cite"] for d in row["cited"]), row
    assert by_id["t-impossible"]["fact"] is False and by_id["t-impossible"]["lead"] is False

    # the follow-up was asked after its history question, whose real answer became the turn
    turns = by_id["t-follow"]["history"]
    assert [t["question"] for t in turns] == ["Where did the chip summit take place?"] and turns[0]["answer"]
    assert all(r["history"] == [] for r in rows if r["id"] != "t-follow")
    # the removed article is never cited, and it is still in the cached index (only a copy lost it)
    assert "zephyr-battery" not in by_id["t-removed"]["cited"]
    from newsbot.bot.engine import Engine
    from tests.helpers import make_settings

    assert Engine(make_settings(tmp_path / "index")).document("zephyr-battery") is not None

    # the JSON line's metrics, recomputed from the rows
    answerable = [r for r in rows if r["expect"] == "answer"]
    expected_nf = [r for r in rows if r["expect"] == "not_found"]

    def rate(values: list) -> float | None:
        return round(sum(map(bool, values)) / len(values), 4) if values else None

    assert result["lead_rate"] == rate([r["lead"] for r in answerable])
    assert result["fact_rate"] == rate([r["fact"] for r in answerable])
    assert result["fact_rate"] <= round(2 / 3, 4)  # the impossible regex always counts against it
    assert result["cited_right_rate"] == rate([r["cited_right"] for r in answerable])
    assert result["answered_rate"] == rate([r["found"] for r in answerable])
    assert result["not_found_right_rate"] == rate([not r["found"] for r in expected_nf])
    assert result["follow_up_rate"] == rate([by_id["t-follow"]["fact"]])
    assert (result["questions"], result["answerable"], result["expected_not_found"], result["follow_ups"]) == (
        5, 3, 2, 1)
    words = [len(MARK.sub("", r["answer"]).split()) for r in answerable if r["found"]]
    assert result["answer_words_mean"] == (round(sum(words) / len(words), 1) if words else None)
    assert set(result["by_type"]) == {"how_much", "what_happened", "follow_up", "not_in_corpus", "after_remove"}
    assert result["by_type"]["after_remove"] == {
        "n": 1, "not_found_right": rate([not by_id["t-removed"]["found"]])}
    assert result["p95_ms"] >= result["p50_ms"] > 0 and result["build_s"] > 0 and result["load_1m"] >= 0
    # --show lists exactly the failing questions
    failing = [r["id"] for r in rows if not r["ok"]]
    assert f"{len(failing)} of 5 questions failed" in proc.stderr
    assert "FAIL t-impossible" in proc.stderr

    # a second run reuses the stamped index instead of rebuilding it
    again = _run(tmp_path, "--limit", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["build_s"] == 0.0 and "reusing the index" in again.stderr
