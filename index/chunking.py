"""Split article bodies into passages of at most N cl100k tokens that end at sentence or paragraph ends.

A `Chunk` is a character span of its document's body. The passage that gets embedded, keyword-indexed
and shown is `passage_header(...) + "\\n" + text`, and the header's tokens count against the size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from newsbot.index.documents import Document
from newsbot.index.hits import passage_header
from newsbot.index.text import sentence_spans
from newsbot.index.tokens import count_tokens, get_encoding


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    ordinal: int  # position within the document, from 0
    start: int  # character offsets into Document.body: text == body[start:end]
    end: int
    text: str
    passage: str  # header line + "\n" + text: what is embedded, indexed and shown
    n_tokens: int  # cl100k tokens of `passage`

    @property
    def passage_hash(self) -> str:
        return text_hash(self.passage)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Unit:
    """A sentence (or a line without sentence punctuation) of a body; `para_end` if a paragraph ends after it."""

    start: int
    end: int
    tokens: int
    para_end: bool


def split_units(text: str, max_tokens: int) -> list[Unit]:
    """Sentences with token counts; a sentence longer than `max_tokens` is cut at token boundaries."""
    units: list[Unit] = []
    enc = get_encoding()
    for start, end, para_end in sentence_spans(text):
        tokens = enc.encode(text[start:end], disallowed_special=())
        if len(tokens) <= max_tokens:
            units.append(Unit(start, end, len(tokens), para_end))
            continue
        # An over-long "sentence" (a table row dump, a list without punctuation): hard-cut it, preferring
        # to end each piece at whitespace so no word is split.
        _, offsets = enc.decode_with_offsets(tokens)
        piece_start = 0
        while piece_start < len(tokens):
            piece_end = min(piece_start + max_tokens, len(tokens))
            if piece_end < len(tokens):
                for back in range(piece_end, piece_start + max_tokens // 2, -1):
                    # cl100k tokens carry their leading space: cut before a token that starts a word
                    if text[start + offsets[back]].isspace():
                        piece_end = back
                        break
            s = start + offsets[piece_start]
            e = start + offsets[piece_end] if piece_end < len(tokens) else end
            while s < e and text[s].isspace():
                s += 1
            seg = text[s:e].rstrip()
            units.append(Unit(s, s + len(seg), piece_end - piece_start, para_end and piece_end == len(tokens)))
            piece_start = piece_end
    return units


def chunk_document(doc: Document, max_tokens: int = 256, overlap: int = 32) -> list[Chunk]:
    """Pack a document's sentences into passages of at most `max_tokens` tokens (header included).

    Consecutive passages share whole sentences worth at most `overlap` tokens. A passage ends at a
    paragraph end when one falls in its last third, else at a sentence end.
    """
    header = passage_header(doc.title, doc.source, doc.published_at)
    budget = max_tokens - count_tokens(header + "\n")
    if budget < 16:
        raise ValueError(f"chunk size {max_tokens} leaves no room after the title line of {doc.id!r}")
    units = split_units(doc.body, budget)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        # +1 per unit approximates the separator between sentences; verified exactly below.
        while j < len(units) and used + units[j].tokens + (1 if j > i else 0) <= budget:
            used += units[j].tokens + (1 if j > i else 0)
            j += 1
        j = max(j, i + 1)
        if j < len(units):
            for k in range(j - 1, i, -1):
                if units[k].para_end and k + 1 - i >= max(1, (j - i) * 2 // 3):
                    j = k + 1
                    break
        while True:
            start, end = units[i].start, units[j - 1].end
            passage = f"{header}\n{doc.body[start:end]}"
            n = count_tokens(passage)
            if n <= max_tokens or j == i + 1:
                break
            j -= 1
        chunks.append(Chunk(doc.id, len(chunks), start, end, doc.body[start:end], passage, n))
        if j >= len(units):
            break
        # Overlap: step back over whole trailing sentences that fit in `overlap` tokens.
        nxt, shared = j, 0
        while nxt - 1 > i and shared + units[nxt - 1].tokens <= overlap:
            shared += units[nxt - 1].tokens
            nxt -= 1
        i = nxt
    return chunks
