"""The quotable units of the retrieved passages: sentences, and lists with the line that introduces
them; each knows its article's rank and the sentence it points back at ("It", "The result")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from newsbot.index.hits import Hit
from newsbot.index.text import sentence_spans


@dataclass(frozen=True)
class Candidate:
    """A quotable unit of a passage: one sentence, or a list (its intro line and its items)."""

    index: int
    hit_rank: int
    doc_rank: int  # rank of the candidate's article among the retrieved articles (0 = search's first)
    hit: Hit
    start: int  # offsets within hit.text: text == hit.text[start:end]
    end: int
    text: str
    is_list: bool = False
    antecedent: int | None = None  # index of the candidate this one refers back to ("It", "The result")

    @property
    def doc_id(self) -> str:
        return self.hit.doc_id

    @property
    def position(self) -> int:
        return self.hit.start + self.start


_LETTERS = re.compile(r"[A-Za-z]")
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d{1,2}[.)])\s+\S")
# Sentences that open by pointing back at something said before them.
REFERS_BACK = re.compile(
    r"^\W*(?:(?:firstly|secondly|thirdly|first|second|third|finally|lastly|however|also|but|and|still|yet|"
    r"meanwhile|instead|in addition|as a result|at the same time),?\s+)?"
    r"(?:it|its|this|that|these|those|they|their|them|he|she|his|her|such|both|the latter|the former|"
    r"(?:the|that|this) (?:result|total|figure|number|move|decision|deal|plan|change|drop|rise|increase|"
    r"decline|one|amount|sum|level|step))\b",
    re.I,
)


def candidates(hits: Sequence[Hit], limit: int) -> list[Candidate]:
    """The sentences and lists of the best `limit` hits, in hit order then text order.

    Consecutive bullet lines form one list candidate together with the line that introduces them; a
    sentence that refers back ("It", "The result") records the sentence before it as its antecedent.
    A sentence found in two overlapping passages of an article is one candidate."""
    units: list[tuple[tuple[str, int], Candidate, tuple[str, int] | None]] = []  # key, unit, antecedent key
    by_key: dict[tuple[str, int], int] = {}
    doc_ranks: dict[str, int] = {}

    def add(key: tuple[str, int], cand: Candidate, antecedent: tuple[str, int] | None) -> None:
        by_key[key] = len(units)
        units.append((key, cand, antecedent))

    for rank, hit in enumerate(hits[:limit]):
        doc_rank = doc_ranks.setdefault(hit.doc_id, len(doc_ranks))
        spans = [(s, e) for s, e, _ in sentence_spans(hit.text)]
        previous: tuple[str, int] | None = None  # the unit before this one in the passage
        i = 0
        while i < len(spans):
            s, e = spans[i]
            text = hit.text[s:e]
            if _BULLET.match(text):
                j = i
                while j + 1 < len(spans) and _BULLET.match(hit.text[spans[j + 1][0] : spans[j + 1][1]]):
                    j += 1
                start, slot = s, None
                if previous is not None and previous[1] >= hit.start:
                    intro = units[by_key[previous]][1]
                    if intro.text.endswith(":") and not intro.is_list:  # the list joins its introducing line
                        start, slot = previous[1] - hit.start, by_key[previous]
                key = (hit.doc_id, hit.start + start)
                if j > i:
                    block = Candidate(0, rank, doc_rank, hit, start, spans[j][1], hit.text[start : spans[j][1]], True)
                    if slot is not None:
                        units[slot] = (key, block, None)
                    elif key not in by_key:
                        add(key, block, None)
                previous = key if key in by_key else None
                i = j + 1
                continue
            i += 1
            stripped = text.strip()
            words = stripped.split()
            if len(words) < 5 or not _LETTERS.search(stripped) or (
                stripped[-1] not in ".!\"'”’):" and len(words) < 10  # a heading or a question, not a statement
            ):
                previous = None
                continue
            key = (hit.doc_id, hit.start + s)
            if key not in by_key:
                antecedent = previous if REFERS_BACK.match(stripped) else None
                # a hard-wrapped sentence is quoted on one line
                add(key, Candidate(0, rank, doc_rank, hit, s, e, re.sub(r"\s*\n\s*", " ", stripped)), antecedent)
            previous = key
    kept = units
    position = {key: n for n, (key, _, _) in enumerate(kept)}
    return [
        Candidate(n, c.hit_rank, c.doc_rank, c.hit, c.start, c.end, c.text, c.is_list,
                  position.get(ante) if ante is not None else None)
        for n, (_, c, ante) in enumerate(kept)
    ]


def is_vague(text: str) -> bool:
    """A short lead-in ("Secondly, the deal has a strong financial incentive.") whose point comes next."""
    return len(text.split()) < 14 or text.rstrip().endswith(":")
