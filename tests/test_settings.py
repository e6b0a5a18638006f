"""Settings that other parts read in one place: the search options and whether a model is configured."""

from __future__ import annotations

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
