"""Chunking: token limits (header included), sentence/paragraph boundaries, exact spans, overlap."""

from __future__ import annotations

from datetime import UTC, datetime

from newsbot.index.chunking import chunk_document
from newsbot.index.documents import Document
from newsbot.index.text import sentence_spans
from newsbot.index.tokens import count_tokens


def _doc(body: str, title: str = "Chip makers race to 2nm") -> Document:
    return Document(id="d", title=title, body=body, source="Fab Report",
                    published_at=datetime(2025, 3, 14, tzinfo=UTC))


def _body(paragraphs: int = 12, sentences: int = 5) -> str:
    paras = []
    for p in range(paragraphs):
        paras.append(" ".join(
            f"Paragraph {p} sentence {s} says the foundry shipped {p * 10 + s} thousand wafers to customers in Q{s % 4 + 1}."
            for s in range(sentences)
        ))
    return "\n\n".join(paras)


def test_spans_are_exact_and_limits_hold() -> None:
    doc = _doc(_body())
    chunks = chunk_document(doc, max_tokens=128, overlap=24)
    assert len(chunks) > 5
    for c in chunks:
        assert doc.body[c.start:c.end] == c.text
        assert c.passage == f"Chip makers race to 2nm — Fab Report, 2025-03-14\n{c.text}"
        assert c.n_tokens == count_tokens(c.passage) <= 128
        assert c.doc_id == "d"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.body)


def test_chunks_end_at_sentence_ends() -> None:
    doc = _doc(_body())
    for c in chunk_document(doc, max_tokens=100, overlap=0):
        assert c.text.endswith("."), c.text[-40:]
        assert c.text[0].isupper()


def test_prefers_paragraph_ends() -> None:
    doc = _doc(_body(paragraphs=6, sentences=3))
    chunks = chunk_document(doc, max_tokens=150, overlap=0)
    ends_at_paragraph = sum(doc.body[c.end:c.end + 2] in ("\n\n", "") for c in chunks)
    assert ends_at_paragraph == len(chunks)


def test_overlap_repeats_whole_sentences_within_budget() -> None:
    doc = _doc(_body())
    chunks = chunk_document(doc, max_tokens=120, overlap=40)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "consecutive chunks should overlap"
        shared = doc.body[b.start:a.end]
        assert count_tokens(shared) <= 40
        assert shared.rstrip().endswith(".")
        assert b.end > a.end, "every chunk must make progress"
    no_overlap = chunk_document(doc, max_tokens=120, overlap=0)
    for a, b in zip(no_overlap, no_overlap[1:], strict=False):
        assert b.start >= a.end


def test_overlong_sentence_is_cut_at_word_boundaries() -> None:
    words = " ".join(f"word{i}" for i in range(600))  # one "sentence" far beyond the limit
    doc = _doc(words)
    chunks = chunk_document(doc, max_tokens=64, overlap=0)
    assert len(chunks) > 5
    for c in chunks:
        assert c.n_tokens <= 64
        assert doc.body[c.start:c.end] == c.text
        assert not c.text.startswith(" ") and c.text.split()[0].startswith("word")
    rebuilt = " ".join(c.text for c in chunks)
    assert rebuilt.split() == words.split()


def test_sentence_spans_handle_abbreviations_and_lines() -> None:
    text = "Mr. Lee said U.S. sales rose 5%. Shares fell.\n• Xiaomi 16\n• POCO F8\n\nNew paragraph here."
    spans = [(text[s:e], para) for s, e, para in sentence_spans(text)]
    assert spans == [
        ("Mr. Lee said U.S. sales rose 5%.", False),
        ("Shares fell.", False),
        ("• Xiaomi 16", False),
        ("• POCO F8", True),
        ("New paragraph here.", True),
    ]


def test_title_source_date_are_in_every_passage() -> None:
    doc = _doc(_body(paragraphs=4))
    for c in chunk_document(doc, max_tokens=100, overlap=10):
        assert c.passage.startswith("Chip makers race to 2nm — Fab Report, 2025-03-14\n")


def test_a_hard_wrapped_paragraph_is_split_into_sentences_not_lines() -> None:
    from newsbot.index.text import sentence_spans

    text = ("Brightline has not yet published a revenue target, but executives have pointed to new factories in\n"
            "Hungary and Spain as a major driver. Shares rose.\n\nThe models affected are:\n- Pro 200\n- Max 300\nKey facts\nShort")
    sentences = [text[s:e] for s, e, _ in sentence_spans(text)]
    assert sentences[0].endswith("factories in\nHungary and Spain as a major driver.")
    assert sentences[1:] == ["Shares rose.", "The models affected are:", "- Pro 200", "- Max 300", "Key facts", "Short"]
