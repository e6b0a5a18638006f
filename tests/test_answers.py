"""Answers: cited sentences that come from real hits, and an honest "not found"."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from newsbot.bot.answer.answers import CITATION_MARK, NOT_FOUND_TEXT, Answer
from newsbot.bot.engine import Engine
from newsbot.bot.questions import QuestionRejected
from tests.helpers import REPO

QUESTIONS = [
    "Why is Xiaomi dropping Leica?",
    "What about Huawei and Leica?",
    "How did DeepSeek affect Nvidia's share price?",
    "When does TSMC start 2nm mass production?",
    "How many cars did BYD sell?",
    "What is 5G-Advanced?",
]


LABEL = re.compile(r"\*\*[^*\n]+?\*\*(?: — )?\s*")  # "**Sam Altman** — " and "**ChargeLine, 2025-01-05:** "
QUOTE = re.compile(r"(.+?)\s*((?:\[\d+\])+)(?=\s|$)", re.S)


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def quoted(answer: Answer) -> list[tuple[str, list[int]]]:
    """Each quote of an extractive answer (labels removed) with the citation numbers after it."""
    out = []
    for m in QUOTE.finditer(LABEL.sub("", answer.text)):
        out.append((squash(m.group(1)), [int(n) for n in CITATION_MARK.findall(m.group(2))]))
    return out


def assert_citations_point_at_real_hits(answer: Answer) -> None:
    """Every [n] has a citation, every citation is used, and each quote is copied from a cited passage."""
    numbers = [int(n) for n in CITATION_MARK.findall(answer.text)]
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert set(numbers) == {c.number for c in answer.citations}
    hit_ids = {h.chunk_id for h in answer.hits}
    for c in answer.citations:
        assert c.hits and all(h.chunk_id in hit_ids for h in c.hits)
        assert len({h.doc_id for h in c.hits}) == 1
    if answer.mode == "extractive":
        quotes = quoted(answer)
        assert quotes and squash("".join(q for q, _ in quotes)) != ""
        for sentence, cited in quotes:
            sources = [h for n in cited for h in answer.citations[n - 1].hits]
            assert any(sentence in squash(h.text) for h in sources), sentence


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_cite_real_hits(engine: Engine, question: str) -> None:
    answer = engine.ask(question)
    assert answer.found, question
    assert 1 <= len(CITATION_MARK.findall(answer.text))
    words = len(LABEL.sub("", CITATION_MARK.sub("", answer.text)).split())
    assert words <= 1.5 * engine.settings.answer_words, answer.text  # the length budget (lead kept whole)
    assert_citations_point_at_real_hits(answer)


def test_xiaomi_answer_gives_both_reasons(engine: Engine) -> None:
    answer = engine.ask("Why is Xiaomi dropping Leica?")
    assert "$3 to $5" in answer.text
    assert re.search(r"research and development|R&D", answer.text)
    first = answer.citations[0]
    assert first.source == "Weibo" and first.published_at is not None
    assert any(c.source == "Weibo" for c in answer.citations if "$3 to $5" in " ".join(h.text for h in c.hits))


@pytest.mark.parametrize("question", [
    "Who won the 2022 World Cup?",
    "What is the best recipe for banana bread?",
    "How tall is the Eiffel Tower?",
])
def test_unanswerable_questions_say_not_found(engine: Engine, question: str) -> None:
    answer = engine.ask(question)
    assert not answer.found
    assert answer.text == NOT_FOUND_TEXT
    assert answer.citations == ()
    assert not CITATION_MARK.search(answer.text)


def test_empty_and_huge_questions_are_refused(engine: Engine) -> None:
    with pytest.raises(QuestionRejected, match="empty"):
        engine.ask("   ")
    with pytest.raises(QuestionRejected, match="under 1,000"):
        engine.ask("Leica " * 400)


def test_follow_up_uses_the_conversation(engine: Engine) -> None:
    from newsbot.bot.answer.answers import Turn

    first = engine.ask("Why is Xiaomi dropping Leica?")
    follow = engine.ask("What about Huawei?", history=[Turn(first.question, first.text)])
    assert follow.found
    assert "leica" in follow.standalone_question.lower()
    joined = " ".join(h.passage for h in follow.hits[:5]).lower()
    assert "huawei" in joined and "leica" in joined


def _cli(*args: str, index_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(index_dir), *args],
        cwd=REPO, capture_output=True, text=True, env={**os.environ}, timeout=300,
    )


def test_cli_ask_search_stats(corpus_index: Path) -> None:
    proc = _cli("ask", "Why is Xiaomi dropping Leica?", index_dir=corpus_index)
    assert proc.returncode == 0, proc.stderr
    assert "$3 to $5" in proc.stdout and "Weibo" in proc.stdout and "Sources:" in proc.stdout
    assert re.search(r"\[1\] .*Weibo, \d{4}-\d{2}-\d{2}", proc.stdout)

    proc = _cli("ask", "Who won the 2022 World Cup?", "--json", index_dir=corpus_index)
    data = json.loads(proc.stdout)
    assert data["found"] is False and data["citations"] == [] and "couldn't find" in data["text"]

    proc = _cli("search", "Leica", "--source", "Weibo", "--json", index_dir=corpus_index)
    hits = json.loads(proc.stdout)
    assert hits and {h["source"] for h in hits} == {"Weibo"}

    proc = _cli("stats", "--json", index_dir=corpus_index)
    stats = json.loads(proc.stdout)
    assert stats["documents"] >= 21 and stats["model"] == "all-MiniLM-L6-v2"


def test_cli_output_into_a_closed_pipe_is_not_an_error(corpus_index: Path) -> None:
    """`newsbot search … --json | head -c 100`: the reader leaves early; no traceback, exit status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(corpus_index), "search", "Leica", "--json",
         "--limit", "100"],  # ≈ 90 KB: more than a pipe buffer holds
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(100)
    proc.stdout.close()  # like `head -c 100` exiting
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert first.startswith(b"[") and "Traceback" not in err and "BrokenPipe" not in err
