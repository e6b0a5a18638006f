"""The one rulebook for words and sentences: every stage that splits text into keyword terms or
sentences asks this module, so the index, the search and the answers agree on what a word and a
sentence are.

* keyword terms (`keyword_terms`, `keyword_word`, `KEYWORD_WORD`, `STOPWORDS`): the words a question
  contributes to a bm25 query, and the words answers compare;
* `stem`: the crude suffix stripper the re-scoring and the answers match words with;
* `sentence_spans`: the sentences and lines of a text: where passages end, what answers quote, and the
  sentences of a model's reply that must each carry a citation ("U.S.", "Jan." and the like end none);
* `fts_query`: an FTS5 query for keyword terms.

Plain string work: deterministic, fast, no model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

KEYWORD_WORD = re.compile(r"[\w$€£¥%.-]+", re.UNICODE)  # raw keyword words (before stripping)
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just let me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves according article articles report reported reports did does said says say
    news published""".split()
)


def keyword_word(raw: str) -> str:
    """A lower-case KEYWORD_WORD match as a query word: outer dots, hyphens and quotes stripped; "" for a
    stopword or a 1-letter word."""
    word = raw.strip(".-'")
    return "" if len(word) < 2 or word in STOPWORDS else word


def keyword_terms(text: str) -> list[str]:
    """Query words for the keyword index: lower case, stopwords and 1-letter words dropped, deduplicated."""
    seen: dict[str, None] = {}
    for raw in KEYWORD_WORD.findall(text.lower()):
        word = keyword_word(raw)
        if word:
            seen.setdefault(word, None)
    return list(seen)


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of `terms` (each quoted, so no term is read as an operator)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude plural/verb-ending stripper: enough to match "phones"/"phone", "dropping"/"dropp"."""
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace and a
# character that can start a sentence; common abbreviations are not ends.
_SENTENCE_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9$€£¥])""")
_ABBREVIATIONS = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Inc|Ltd|Co|Corp|vs|etc|No|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct"
    r"|Nov|Dec|U\.S|U\.K|E\.U|a\.m|p\.m|e\.g|i\.e)\.|\b[A-Z]\.)$"
)
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n")


_BLOCK_START = re.compile(r"[ \t]*(?:[-*•+>#|]|\d{1,3}[.)])")
_LINE_END = re.compile(r"""[.!?…:;"'”’)\]]\s*$""")


def _soft_wrap(text: str, para_start: int, at: int, para_end: int) -> bool:
    """Whether the line break at `at` only wraps a long line of running text (a hard-wrapped Markdown
    paragraph): the line is long and ends mid-sentence, and the next line starts no list item or heading."""
    line = text[text.rfind("\n", para_start, at) + 1: at]
    following = text[at + 1: para_end].split("\n", 1)[0]
    return (len(line.strip()) >= 40 and not _LINE_END.search(line) and bool(following.strip())
            and not _BLOCK_START.match(following))


def sentence_spans(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, paragraph_ends_here) for each sentence or line of `text`, whitespace trimmed."""
    spans: list[tuple[int, int, bool]] = []
    para_start = 0
    paragraphs = [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text)] + [(len(text), len(text))]
    for para_end, next_start in paragraphs:
        para_spans: list[tuple[int, int]] = []
        line_start = para_start
        line_ends = [m.start() for m in _LINE.finditer(text, para_start, para_end)
                     if not _soft_wrap(text, para_start, m.start(), para_end)] + [para_end]
        for line_end in line_ends:
            cut = line_start
            for m in _SENTENCE_END.finditer(text, line_start, line_end):
                if _ABBREVIATIONS.search(text, max(cut, m.start() - 6), m.end()):
                    continue
                para_spans.append((cut, m.end()))
                cut = m.end()
            para_spans.append((cut, line_end))
            line_start = line_end + 1
        trimmed = []
        for s, e in para_spans:
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if e > s:
                trimmed.append((s, e))
        for i, (s, e) in enumerate(trimmed):
            spans.append((s, e, i == len(trimmed) - 1))
        para_start = next_start
    return spans
