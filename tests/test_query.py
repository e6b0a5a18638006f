"""Query analysis (index/query.py): outlets, dates, parts of multi-part questions, names. No model, no index."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsbot.index.retrieval.query import (
    OutletLexicon,
    analyze,
    find_dates,
    names,
    outlet_aliases,
    unknown_outlets,
)

SOURCES = [
    "TechCrunch", "The Verge", "Fortune", "The Age", "Polygon", "Wired", "Sporting News", "CBSSports.com",
    "Cnbc | World Business News Leader", "The Independent - Life and Style", "The Independent - Sports",
    "Live Science: The Most Interesting Articles", "The New York Times", "The Guardian", "Yardbarker",
]
LEX = OutletLexicon(SOURCES)


def day(y: int, m: int, d: int, end: bool = False) -> datetime:
    return datetime(y, m, d, 23, 59, 59, 999999, tzinfo=UTC) if end else datetime(y, m, d, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- outlets


def test_aliases_drop_taglines_sections_and_the() -> None:
    assert outlet_aliases("Cnbc | World Business News Leader") >= {"Cnbc | World Business News Leader", "Cnbc"}
    assert "The Independent" in outlet_aliases("The Independent - Sports")
    assert "Live Science" in outlet_aliases("Live Science: The Most Interesting Articles")
    assert {"CBSSports.com", "CBSSports"} <= outlet_aliases("CBSSports.com")
    assert "Verge" in outlet_aliases("The Verge")
    assert "Age" not in outlet_aliases("The Age")  # too short to stand alone


def test_lexicon_finds_outlets_as_proper_nouns_only() -> None:
    found = LEX.find("Did CNBC and 'The Verge' agree, as the TechCrunch article says, in the age of AI?")
    assert [m.sources for m in found] == [
        ("Cnbc | World Business News Leader",), ("The Verge",), ("TechCrunch",),
    ]
    assert LEX.find("fortune favours the bold in the age of wired homes") == []


def test_a_section_less_name_matches_every_section_and_the_longest_name_wins() -> None:
    (m,) = LEX.find("Does The Independent report on it?")
    assert set(m.sources) == {"The Independent - Life and Style", "The Independent - Sports"}
    (m,) = LEX.find('Does "The Independent - Life and Style" say so?')
    assert m.sources == ("The Independent - Life and Style",)


# ---------------------------------------------------------------------------------------------- dates


def test_dates_on_after_before_and_months() -> None:
    on, after, before, month = find_dates(
        "published on October 2, 2023, reported after Nov. 5th, before 2023-12-01 and in December 2023"
    )
    assert (on.since, on.until) == (day(2023, 10, 1), day(2023, 10, 3, end=True))  # ±1 day: time zones
    assert (after.since, after.until) == (day(2023, 11, 6), None)
    assert before.since is None and before.until == day(2023, 11, 30, end=True)
    assert (month.since, month.until) == (day(2023, 11, 30), day(2024, 1, 1, end=True))


def test_a_date_without_year_borrows_one() -> None:
    (a, b) = find_dates("between September 28 and December 19, 2024")
    assert a.since == day(2024, 9, 27) and b.until == day(2024, 12, 20, end=True)
    (c,) = find_dates("the game on October 14th", default_year=2023)
    assert c.since == day(2023, 10, 13)
    assert find_dates("the game on October 14th") == []  # no year anywhere: ignored


def test_iso_timestamps_and_impossible_dates() -> None:
    (d,) = find_dates("the report published at 2023-12-12T22:38:05+00:00")
    assert d.since == day(2023, 12, 11)
    assert find_dates("on February 30, 2023") == []


# ---------------------------------------------------------------------------------------------- parts


def parts(question: str) -> list[tuple[tuple[str, ...], str]]:
    return [(p.sources, p.text) for p in analyze(question, LEX, default_year=2023).parts]


def test_comparison_of_two_outlets_gives_one_part_each() -> None:
    got = parts("Does the TechCrunch article on Vivek Ramaswamy's TikTok plans suggest a different strategy "
                "compared to The Verge article on Nicki Minaj trying to trend songs on TikTok?")
    assert [s for s, _ in got] == [("TechCrunch",), ("The Verge",)]
    assert "Ramaswamy" in got[0][1] and "Minaj" not in got[0][1]
    assert "Minaj" in got[1][1] and "Ramaswamy" not in got[1][1]


def test_outlets_that_close_their_claims_own_the_text_before_them() -> None:
    got = parts("Who is the individual portrayed as a trustworthy figure in crypto by The Verge and alleged "
                "by the prosecution to have committed fraud for personal gain according to TechCrunch?")
    assert [s for s, _ in got] == [("The Verge",), ("TechCrunch",)]
    assert "trustworthy" in got[0][1] and "fraud" not in got[0][1]
    assert "fraud" in got[1][1] and "trustworthy" not in got[1][1]


def test_outlets_listed_at_the_end_share_the_question_and_its_clues() -> None:
    q = "Which company made 300 updates to its handheld, launched an OLED model on November 16, 2023, and " \
        "rivals Epic's store, as reported by Polygon, Wired, and Fortune?"
    got = analyze(q, LEX).parts
    everyone = ("Polygon", "Wired", "Fortune")
    # each clue is retrieved on its own from any of the named outlets ...
    clues = [p for p in got if p.sources == everyone]
    assert [p.text for p in clues] == [
        "Which company made 300 updates to its handheld", "launched an OLED model on November 16, 2023",
        "and rivals Epic's store",
    ]
    assert clues[1].since == day(2023, 11, 15) and clues[0].since is None
    # ... and the whole question from each outlet in turn
    whole = [p for p in got if p.sources != everyone]
    assert [p.sources for p in whole] == [("Polygon",), ("Wired",), ("Fortune",)]
    assert all(p.text == q.rstrip("?") for p in whole)


def test_a_clue_before_the_only_outlet_is_about_that_outlet() -> None:
    got = parts("Which platform is favored by Keira Megan for fan engagement, and has also been in the news on "
                "TechCrunch for altering its revenue split?")
    assert got == [
        (("TechCrunch",), "Which platform is favored by Keira Megan for fan engagement"),
        (("TechCrunch",), "and has also been in the news on TechCrunch for altering its revenue split"),
    ]


def test_same_source_repeats_the_outlet_and_dates_go_to_their_part() -> None:
    plan = analyze(
        "After TechCrunch reported on Starz laying off 10% of its staff on September 28, 2023, did the same "
        "news source report a larger percentage of layoffs at Synapse on October 8, 2023?", LEX,
    )
    assert [p.sources for p in plan.parts] == [("TechCrunch",), ("TechCrunch",)]
    first, second = plan.parts
    assert "Starz" in first.text and first.since == day(2023, 9, 27)
    assert "Synapse" in second.text and second.since == day(2023, 10, 7)


def test_a_part_with_too_few_words_searches_with_the_whole_question() -> None:
    plan = analyze("Did Yardbarker's coverage on December 24, 2023, contradict The Age's report on Travis "
                   "Kelce's Super Bowl victories on September 26, 2023?", LEX)
    yard = plan.parts[0]
    assert yard.sources == ("Yardbarker",) and yard.text.startswith("Did Yardbarker")
    assert "Kelce" in yard.text  # its own words ("coverage") say nothing: the whole question is used
    assert yard.since == day(2023, 12, 23) and yard.until == day(2023, 12, 25, end=True)
    assert plan.parts[1].sources == ("The Age",) and plan.parts[1].since == day(2023, 9, 25)


def test_questions_without_outlets_have_no_parts() -> None:
    plan = analyze("Why is Xiaomi dropping Leica?", LEX)
    assert plan.parts == () and plan.outlets == ()
    assert analyze("What did TechCrunch say?", None).parts == ()


def test_outlet_name_with_a_year_is_not_a_date() -> None:
    lex = OutletLexicon(["Scitechdaily | Science Space And Technology News 2017"])
    plan = analyze("What did Scitechdaily | Science Space And Technology News 2017 report on comets?", lex)
    assert plan.dates == ()


# ---------------------------------------------------------------------------------------------- names


def test_names_are_capitalised_phrases_not_question_words() -> None:
    q = "Considering the article on Heather Knight's century, which team did Google's Gemini beat in October?"
    assert names(q) == ["Heather Knight", "Google", "Gemini"]
    assert names("Did Taylor Swift-inspired props and GPT-3.5 appear?") == ["Taylor Swift", "GPT-3.5"]


@pytest.mark.parametrize("question, expected", [
    ("Considering a Bloomberg article and a report by Reuters on BHP, what changed?", ["Bloomberg", "Reuters"]),
    ("According to CNN and the BBC article, who won?", ["CNN", "BBC"]),
    ("Does the TechCrunch article on Google's deal agree with 'The Verge'?", []),
    ("What did the report by The Guardian say about the Epic Games case?", []),
])
def test_unknown_outlets(question: str, expected: list[str]) -> None:
    assert unknown_outlets(question, LEX) == expected
