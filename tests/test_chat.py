"""`newsbot chat` and `newsbot ask --llm`: the terminal front ends, with and without a language model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO
from tests.openai_standin import OpenAIStandin


def _run(args: list[str], index_dir: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(index_dir), *args], input=stdin, cwd=REPO,
        capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )


def test_chat_without_a_model_follows_the_conversation(corpus_index: Path) -> None:
    proc = _run(["chat"], corpus_index, "Why is Xiaomi dropping Leica?\nWhat about Huawei?\n/new\nWhat about Huawei?\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "$3 to $5" in out
    # The follow-up became the first question about Huawei, and found Huawei's break with Leica.
    assert "(searched for: Why is Huawei dropping Leica?)" in out
    second = out.split("(searched for:")[1].split("(new conversation)")[0]
    assert "Huawei" in second and "XMAGE" in second
    # After /new the same words are a fresh question: nothing borrowed.
    assert out.count("(searched for:") == 1


def test_chat_with_a_model_rewrites_follow_ups_and_checks_citations(corpus_index: Path) -> None:
    with OpenAIStandin() as llm:
        llm.reply_text("Xiaomi trusts its own imaging R&D and wants to save $3 to $5 per phone [1].")
        llm.reply_text("How did Huawei's Leica partnership end and what replaced it?")  # the rewrite
        llm.reply_text("Huawei replaced Leica with its own XMAGE brand [1]. It also sells cars [42].")
        proc = _run(["chat"], corpus_index, "Why is Xiaomi dropping Leica?\nWhat about Huawei?\n",
                    NEWSBOT_LLM_BASE_URL=llm.base_url, NEWSBOT_LLM_MODEL="standin")
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "Xiaomi trusts its own imaging R&D" in out
        assert "(searched for: How did Huawei's Leica partnership end and what replaced it?)" in out
        assert "XMAGE brand [1]" in out
        assert "[42]" not in out and "sells cars" not in out, "an invented citation is dropped"
        rewrite = llm.requests[1].body["messages"]
        assert any("Why is Xiaomi dropping Leica?" in m["content"] for m in rewrite), "history was sent"
        assert any("What about Huawei?" in m["content"] for m in rewrite)


def test_ask_llm_falls_back_to_quotes_when_the_model_fails(corpus_index: Path) -> None:
    with OpenAIStandin() as llm:
        llm.reply_status(500)
        env = {"NEWSBOT_LLM_BASE_URL": llm.base_url, "NEWSBOT_LLM_MODEL": "standin"}
        proc = _run(["ask", "Why is Xiaomi dropping Leica?", "--json"], corpus_index, **env)
        data = json.loads(proc.stdout)
        assert data["mode"] == "extractive" and "$3 to $5" in data["text"]
        assert any("HTTP 500" in n for n in data["notes"])
        assert "HTTP 500" in proc.stderr  # logged as a warning
        # --no-llm never calls the model.
        before = len(llm.requests)
        proc = _run(["ask", "Why is Xiaomi dropping Leica?", "--no-llm", "--json"], corpus_index, **env)
        assert json.loads(proc.stdout)["mode"] == "extractive" and len(llm.requests) == before
