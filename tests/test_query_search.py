"""Query analysis inside search and answers, on the bundled corpus (real model, real index)."""

from __future__ import annotations

from newsbot.bot.engine import Engine
from newsbot.index.retrieval.grounding import check_grounding
from newsbot.index.retrieval.options import SearchOptions
from newsbot.index.retrieval.search import plan_query, search


def test_a_named_outlet_restricts_its_part(engine: Engine) -> None:
    hits = engine.search("What did Lens & Sensor report about Huawei's camera brand?")
    assert hits[0].source == "Lens & Sensor"
    plan = plan_query(engine.reader(), "What did Lens & Sensor report about Huawei's camera brand?")
    assert [p.sources for p in plan.parts] == [("Lens & Sensor",)]


def test_each_part_of_a_comparison_gets_evidence(engine: Engine) -> None:
    q = ("Does the ChargeLine article on BYD's flash charging agree with the Signal Desk report on "
         "T-Mobile's satellite service at $10 a month?")
    hits = engine.search(q)
    top = hits[:4]
    assert any(h.source == "ChargeLine" and "BYD" in h.title for h in top)
    assert any(h.source == "Signal Desk" and "T-Satellite" in h.title for h in top)
    # without query analysis the parts compete for the same slots
    plain = search(engine.reader(), engine.embedder, q, opts=SearchOptions(self_query=False, top_k=4))
    assert sum(h.source in ("ChargeLine", "Signal Desk") for h in hits[:4]) >= sum(
        h.source in ("ChargeLine", "Signal Desk") for h in plain
    )


def test_dates_named_in_a_part_filter_it(engine: Engine) -> None:
    reader = engine.reader()
    plan = plan_query(reader, "What did The Fab Report say about TSMC 2nm production in January 2026?")
    (part,) = plan.parts
    assert part.sources == ("The Fab Report",) and part.since is not None and part.since.year == 2025
    hits = engine.search("What did The Fab Report say about TSMC 2nm production in January 2026?")
    assert hits[0].title.startswith("Update: TSMC Confirms 2nm")


def test_grounding_flags_outlets_and_names_the_index_lacks(engine: Engine) -> None:
    reader = engine.reader()
    g = check_grounding(reader, "According to a Bloomberg report, why did Heather Knight leave Xiaomi?")
    assert g.unknown_outlets == ("Bloomberg",) and g.unknown_names == ("Heather Knight",)
    assert not g.ok and "Bloomberg" in g.reason()
    assert check_grounding(reader, "Why is Xiaomi dropping Leica, according to Weibo?").ok


def test_questions_about_what_the_index_lacks_are_not_found(engine: Engine) -> None:
    assert not engine.ask("What did the Wall Street Journal article say about Xiaomi's Leica deal?").found
    assert not engine.ask("Why did Heather Knight criticise Nvidia's Blackwell launch?").found
    assert engine.ask("What did Weibo report about Xiaomi and Leica?").found
