"""The model's reply checked against the passages it was shown: only sentences whose citations point at
a passage are kept, renumbered per article, as an `Answer` (mode "llm")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from newsbot.bot.answer.answers import CITATION_MARK, NOT_FOUND_TEXT, Answer, Citation
from newsbot.bot.answer.llm.prompt import MODEL_NOT_FOUND
from newsbot.bot.config import Settings
from newsbot.index.hits import Hit
from newsbot.index.text import sentence_spans

UNVERIFIED_MARK = "(unverified)"  # appended to uncited sentences when settings.llm_uncited == "flag"


_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_MARK_LIST = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})+)\s*\]")
_MARK_RUN = re.compile(r"^(?:\s*\[\d{1,3}\])+")
_ONLY_MARKS = re.compile(r"^(?:\s*\[\d{1,3}\])+\s*[.,;]?\s*$")
_BULLET = re.compile(r"^(\s*(?:[-*•]|\d{1,2}[.)])\s+)")
_SOURCES_HEADING = re.compile(r"^\W*(sources|references|citations)\W*$", re.IGNORECASE)
_SPACED_MARK = re.compile(r"(\s*)\[(\d{1,3})\]")


def visible_text(raw: str) -> str:
    """Model text without `<think>…</think>` reasoning blocks (also an unclosed one), stripped."""
    return _THINK.sub("", raw).strip()


def is_not_found(text: str) -> bool:
    """True when the model replied with the not-found phrase (allowing quotes, markdown, a final dot)."""
    core = re.sub(r"[\s`*\"'.]+", "", text).upper()
    return core in (MODEL_NOT_FOUND, MODEL_NOT_FOUND.replace("_", ""))


def _split_sentences(line: str) -> list[str]:
    """Sentences of one line; citation marks that open a sentence belong to the previous one."""
    sentences: list[str] = []
    for start, end, _ in sentence_spans(line):
        piece = line[start:end]
        lead = _MARK_RUN.match(piece)
        if lead and sentences:
            sentences[-1] += " " + lead.group(0).strip()
            piece = piece[lead.end():].strip()
        if piece:
            sentences.append(piece)
    return sentences


def _paragraphs(text: str) -> list[tuple[str, list[str]]]:
    """(bullet prefix, sentences) per non-empty line; stops at a "Sources:" heading; a line that
    starts with a citation mark and goes on with text is taken as a source listing and skipped."""
    lines: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if _SOURCES_HEADING.match(line):
            break
        if _ONLY_MARKS.match(line):  # "[1]" alone on a line: it cites the line before
            if lines and lines[-1][1]:
                lines[-1][1][-1] += " " + line.strip().rstrip(".,;")
            continue
        if _MARK_RUN.match(line):
            continue
        bullet = _BULLET.match(line)
        prefix = bullet.group(1).lstrip() if bullet else ""
        body = line[bullet.end():] if bullet else line
        sentences = _split_sentences(body)
        if sentences:
            lines.append((prefix, sentences))
    return lines


def check_answer(question: str, raw_text: str, included_hits: Sequence[Hit], settings: Settings, *,
                 all_hits: Sequence[Hit] | None = None) -> Answer | None:
    """Turn the model's reply into a checked `Answer` (mode "llm"), or None to fall back.

    `included_hits[i]` is passage `[i+1]` of the prompt. Citation marks that match no passage are
    removed; a sentence left without a valid mark is dropped (settings.llm_uncited == "drop") or kept
    with "(unverified)" appended ("flag"). Marks are renumbered 1..n per ARTICLE (passages with the same
    doc_id share a number) in order of first appearance; `Citation.hits` lists the cited passages of
    the article in prompt order. The not-found phrase gives found=False, NOT_FOUND_TEXT, no citations.
    None when no sentence with a valid citation remains. `all_hits` (default: included_hits) becomes
    `Answer.hits`.
    """
    retrieved = tuple(all_hits if all_hits is not None else included_hits)
    text = visible_text(raw_text)
    if is_not_found(text):
        return Answer(question=question, text=NOT_FOUND_TEXT, citations=(), hits=retrieved, found=False,
                      mode="llm")
    text = _MARK_LIST.sub(lambda m: "".join(f"[{n}]" for n in re.split(r"\s*[,;]\s*", m.group(1))), text)
    flag = settings.llm_uncited.strip().lower() == "flag"

    numbers: dict[str, int] = {}  # doc_id -> article number
    cited: dict[str, list[int]] = {}  # doc_id -> passage indexes (0-based) cited
    out_lines: list[str] = []
    any_valid = False

    def renumber(m: re.Match[str]) -> str:
        """`[n]` of the prompt -> ` [article number]`; "" (space included) when n names no passage."""
        n = int(m.group(2))
        if not 1 <= n <= len(included_hits):
            return ""
        hit = included_hits[n - 1]
        number = numbers.setdefault(hit.doc_id, len(numbers) + 1)
        if n - 1 not in cited.setdefault(hit.doc_id, []):
            cited[hit.doc_id].append(n - 1)
        return f"{m.group(1)}[{number}]"

    for prefix, sentences in _paragraphs(text):
        kept: list[str] = []
        for sentence in sentences:
            if MODEL_NOT_FOUND in sentence.upper():
                continue
            new = _dedupe_marks(_SPACED_MARK.sub(renumber, sentence)).strip()
            if CITATION_MARK.search(new):
                any_valid = True
                kept.append(new)
            elif flag and re.search(r"\w", new):
                kept.append(f"{new} {UNVERIFIED_MARK}")
        if kept:
            out_lines.append(prefix + " ".join(kept))
    if not any_valid:
        if text.lstrip("`*_\"' ").upper().startswith(MODEL_NOT_FOUND):  # "NOT_FOUND. The passages ..."
            return Answer(question=question, text=NOT_FOUND_TEXT, citations=(), hits=retrieved, found=False,
                          mode="llm")
        return None
    citations = tuple(
        Citation(number=number, hits=tuple(included_hits[i] for i in sorted(cited[doc_id])))
        for doc_id, number in sorted(numbers.items(), key=lambda kv: kv[1])
    )
    return Answer(question=question, text="\n".join(out_lines), citations=citations, hits=retrieved,
                  found=True, mode="llm")


def _dedupe_marks(sentence: str) -> str:
    """`[1][1]` or `[1] [2][1]` -> one mark per number within each run of adjacent marks."""

    def one_run(m: re.Match[str]) -> str:
        seen: list[str] = []
        for n in CITATION_MARK.findall(m.group(0)):
            if n not in seen:
                seen.append(n)
        lead = " " if m.group(0)[:1].isspace() else ""
        return lead + "".join(f"[{n}]" for n in seen)

    return re.sub(r"(?:\s*\[\d{1,3}\])+", one_run, sentence)


# --------------------------------------------------------------------------------------------------
# Entry points
