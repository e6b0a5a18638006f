"""What the extractive answerer can be tuned with: the make-up of a sentence's score and the answer's
budget and thresholds (defaults tuned on the benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

TermWeights = Callable[[Sequence[str]], dict[str, float]]


@dataclass(frozen=True)
class ScoreWeights:
    """How a candidate's relevance is made up (see `score_candidates`); tuned on the benchmarks."""

    context: float = 0.9  # cosine of "title: sentence" and the question (the sentence alone adds nothing)
    lexical: float = 0.15  # share of the question's idf-weighted words in the sentence
    cue: float = 0.10  # the sentence has what the question kind asks for
    article_rank: float = 0.05  # the article's rank in the search results
    year: float = 1.0  # fit with a year the question names
    previous: float = 0.3  # share of the previous sentence's higher relevance a sentence inherits
    lede: float = 0.04  # an article's first sentence, as a lead
    lede_about: float = 0.0  # ... times the share of the question's words in the article's title
    lede_what: float = 0.2  # ... the same, more for "what happened" questions
    title_echo: float = 0.2  # restates its article's title (the story's main fact), times how much that
    # title is about the question
    part_lexical: float = 1.0  # a part's line: share of the part's idf-weighted words, plus the score above
    part_cosine: float = 0.6  # ... plus the cosine of the part's clause with "title: sentence"


@dataclass(frozen=True)
class ExtractiveOptions:
    max_sentences: int = 5  # sentences besides part lines
    max_words: int = 120  # length budget of the answer (the lead is always kept whole)
    min_relevance: float = 0.35  # best passage cosine below this (with weak keyword support) = not found
    passages: int = 10  # how many top hits sentences are drawn from
    redundancy: float = 0.5  # a sentence sharing this share of its words with one already chosen is skipped
    merge_similarity: float = 0.6  # ... and one this close from another article adds its citation instead
    lead_margin: float = 0.04  # a lead from a lower-ranked article must beat the top article's by this
    min_key_share: float = 0.2  # the lead must carry this share of the question's weighted key words
    part_second: float = 0.8  # a part's second sentence joins at this share of its line's part score
    other_article: float = 0.9  # a sentence of another article than the lead's joins at this share of its score
    score: ScoreWeights = field(default_factory=ScoreWeights)
