"""The answer's text: lead first, then part lines, then support grouped by article, each sentence
followed by the numbers of the articles it came from; or "not found"."""

from __future__ import annotations

from collections.abc import Sequence

from newsbot.bot.answer.answers import NOT_FOUND_TEXT, Answer, Citation
from newsbot.bot.answer.extractive.picker import Picker
from newsbot.bot.answer.plan import AnswerPlan
from newsbot.index.documents import format_date
from newsbot.index.hits import Hit


def compose(question: str, hits: tuple[Hit, ...], picker: Picker, plan: AnswerPlan, entity: str = "") -> Answer:
    """Lead first, then part lines, then support grouped by article; number the articles in that order.

    Lines of a multi-part answer and sentences from an article of another year than the lead's carry
    their outlet and date, so figures of different years are never read as one."""
    cands = picker.scored.cands
    chosen = picker.chosen
    lead_group = next(g for role, g in picker.groups if role == "lead")
    lead = lead_group[0]
    part_groups = [g for role, g in picker.groups if role == "part"]
    support = [i for role, g in picker.groups if role == "support" for i in g]
    numbers: dict[str, int] = {}
    for i in lead_group + [i for g in part_groups for i in g] + support:
        numbers.setdefault(cands[i].doc_id, len(numbers) + 1)
    for i in chosen:
        for j in picker.also.get(i, []):
            numbers.setdefault(cands[j].doc_id, len(numbers) + 1)

    def marks(i: int) -> str:
        docs = [cands[i].doc_id] + [cands[j].doc_id for j in picker.also.get(i, [])]
        return " " + "".join(f"[{n}]" for n in sorted({numbers[d] for d in docs}))

    def quote(i: int) -> str:
        c = cands[i]
        if c.is_list:  # intro and items one per line, blank lines and indentation dropped
            return "\n".join(line.strip() for line in c.text.splitlines() if line.strip()) + marks(i)
        return c.text + marks(i)

    lead_hit = cands[lead].hit
    lead_year = lead_hit.published_at.year if lead_hit.published_at else None
    multi_part = bool(part_groups)

    def label(hit: Hit) -> str:
        return f"**{', '.join(p for p in (hit.source, format_date(hit.published_at)) if p)}:** "

    # One block per article, in citation order; the lead's article first, the lead at its head, then
    # the article's other sentences in reading order from the lead on (then what came before it).
    # (sentences added together, such as a sentence and its antecedent, stay together in reading order)
    by_doc: dict[str, list[list[int]]] = {}
    for _, members in picker.groups:
        by_doc.setdefault(cands[members[0]].doc_id, []).append(sorted(members, key=lambda i: cands[i].position))
    blocks: list[str] = []
    for doc_id, groups in sorted(by_doc.items(), key=lambda x: numbers[x[0]]):
        if doc_id == lead_hit.doc_id:  # the lead, then the article's most relevant other sentences first
            rest = sorted(groups[1:], key=lambda g: -max(float(picker.scored.scores[i]) for i in g))
            group = [i for g in [groups[0], *rest] for i in g]
        else:
            group = sorted((i for g in groups for i in g), key=lambda i: cands[i].position)
        hit = cands[group[0]].hit
        year = hit.published_at.year if hit.published_at else None
        text = ""
        for n, i in enumerate(group):  # a list keeps its lines: it, and what follows it, start a new line
            breaks = n > 0 and (cands[i].is_list or cands[group[n - 1]].is_list)
            text += ("\n" if breaks else " ") + quote(i)
        text = text.strip()
        if multi_part or (doc_id != lead_hit.doc_id and year != lead_year):
            text = label(hit) + text
        blocks.append(text)
    if entity:
        blocks[0] = f"**{entity}** — {blocks[0]}"
    lists = any(cands[i].is_list for i in chosen)
    text = "\n".join(blocks) if multi_part or lists else " ".join(blocks)
    used: dict[str, list[Hit]] = {}
    for i in chosen + [j for v in picker.also.values() for j in v]:
        bucket = used.setdefault(cands[i].doc_id, [])
        if cands[i].hit not in bucket:
            bucket.append(cands[i].hit)
    citations = tuple(
        Citation(number=n, hits=tuple(used[doc_id])) for doc_id, n in sorted(numbers.items(), key=lambda x: x[1])
    )
    return Answer(question=question, text=text, citations=citations, hits=hits, found=True)


def not_found(question: str, hits: Sequence[Hit], *, related: bool = False) -> Answer:
    """"Not found"; with `related`, the closest retrieved articles (one passage each) are offered."""
    closest: list[Hit] = []
    if related:
        seen: set[str] = set()
        for h in hits:
            if h.doc_id not in seen and (h.dense_score or 0.0) >= 0.3:
                seen.add(h.doc_id)
                closest.append(h)
            if len(closest) >= 3:
                break
    return Answer(question=question, text=NOT_FOUND_TEXT, citations=(), hits=tuple(hits), found=False,
                  related=tuple(closest))
