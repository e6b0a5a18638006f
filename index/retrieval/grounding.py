"""Grounding: what a question names that the index does not hold, so that such a question is answered
"not found" however similar the passages retrieved for it look."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsbot.index.retrieval.query import names, unknown_outlets
from newsbot.index.retrieval.vocabulary import lexicon_for
from newsbot.index.store.base import StoreReader


@dataclass(frozen=True)
class Grounding:
    """What a question names that the index does not hold: outlets it lacks, names no passage contains.

    A question about "a Bloomberg report on Heather Knight" cannot be answered from an index without
    Bloomberg or Heather Knight, however similar its passages look: such a question is "not found".
    """

    unknown_outlets: tuple[str, ...] = ()
    unknown_names: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.unknown_outlets or self.unknown_names)

    def reason(self) -> str:
        parts = []
        if self.unknown_outlets:
            parts.append("no articles from " + ", ".join(self.unknown_outlets))
        if self.unknown_names:
            parts.append("nothing mentions " + ", ".join(self.unknown_names))
        return "; ".join(parts)


def check_grounding(reader: StoreReader, question: str) -> Grounding:
    """The outlets and names of `question` that the index has never seen (see `Grounding`)."""
    lexicon, _ = lexicon_for(reader)
    if not len(lexicon):
        return Grounding()
    outlets = tuple(unknown_outlets(question, lexicon))
    skip = [(m.start, m.end) for m in lexicon.find(question)]
    missing = tuple(
        n for n in names(question, skip)
        if n not in outlets and not reader.has_passage_with_all(re.findall(r"\w+", n.lower()))
    )
    return Grounding(outlets, missing)
