"""Settings that other parts read in one place: the search options and whether a model is configured;
`newsbot config` masks what must not be shown; secrets put in newsbot.toml are reported, not used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from newsbot.bot.config import Settings, llm_enabled, search_options
from newsbot.index.retrieval.options import SearchOptions


def test_search_options_built_by_hand_search_like_the_bot() -> None:
    assert search_options(Settings()) == SearchOptions()
    custom = search_options(Settings(top_k=4, candidates=30, max_query_terms=2, keyword_weight=2.0), limit=50)
    assert (custom.top_k, custom.candidates, custom.max_query_terms, custom.keyword_weight) == (50, 50, 2, 2.0)


def test_a_model_name_of_whitespace_is_no_model() -> None:
    assert not llm_enabled(Settings(llm_base_url="http://x/v1", llm_model="   "))
    assert not llm_enabled(Settings(llm_base_url=" ", llm_model="m"))
    assert llm_enabled(Settings(llm_base_url="http://x/v1", llm_model="m"))


def _config(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    return subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "config", *args], cwd=tmp_path,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_config_masks_passwords_in_url_settings(tmp_path: Path) -> None:
    proc = _config(tmp_path, "--json", NEWSBOT_DATABASE_URL="postgresql://newsbot:s3cret-pw@db.example:5432/newsbot",
                   NEWSBOT_MILVUS_URI="https://root:milvus-pw@milvus.example:19530", NEWSBOT_LLM_API_KEY="sk-abc")
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout)
    assert values["database_url"] == "postgresql://newsbot:***@db.example:5432/newsbot"
    assert values["milvus_uri"] == "https://root:***@milvus.example:19530"
    assert values["llm_api_key"] == "***"
    text = _config(tmp_path, NEWSBOT_DATABASE_URL="postgresql://newsbot:s3cret-pw@db.example/newsbot").stdout
    assert "s3cret-pw" not in text and "postgresql://newsbot:***@db.example/newsbot" in text
    assert Settings(database_url="postgresql://db.example/newsbot").masked()["database_url"] == (
        "postgresql://db.example/newsbot")  # nothing to hide: unchanged


def test_fetch_timeout_help_says_it_bounds_the_whole_fetch(tmp_path: Path) -> None:
    text = _config(tmp_path).stdout
    help_line = text.split("fetch_timeout = ", 1)[1].splitlines()[1]
    assert "whole fetch" in help_line and "per HTTP request" not in help_line


def test_a_secret_in_newsbot_toml_is_ignored_with_a_clear_warning(tmp_path: Path) -> None:
    (tmp_path / "newsbot.toml").write_text(
        'top_k = 7\n[discord]\ndiscord_token = "MTIz.from-the-file"\n[llm]\nllm_api_key = "sk-file"\n', encoding="utf-8")
    proc = _config(tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout)
    assert values["top_k"] == 7 and values["discord_token"] == "" and values["llm_api_key"] == ""
    warnings = [line for line in proc.stderr.splitlines() if "IGNORED" in line]
    assert len(warnings) == 2, proc.stderr
    (discord,) = [w for w in warnings if " discord_token " in w]
    (llm,) = [w for w in warnings if " llm_api_key " in w]
    assert "DISCORD_TOKEN" in discord and ".env" in discord and "NEWSBOT_LLM_API_KEY" in llm
    assert "MTIz.from-the-file" not in proc.stderr and "sk-file" not in proc.stderr  # never echoed
    # the environment still supplies it, and the warning still tells the file's copy is not used
    proc = _config(tmp_path, "--json", DISCORD_TOKEN="MTIz.from-env")
    assert json.loads(proc.stdout)["discord_token"] == "***" and "IGNORED" in proc.stderr
