"""The sentences of an answer being assembled: the lead, part lines and support within the word budget,
each with what it needs to make sense, one fact once."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from newsbot.bot.answer.extractive.candidates import REFERS_BACK, Candidate, is_vague
from newsbot.bot.answer.extractive.options import ExtractiveOptions
from newsbot.bot.answer.extractive.scoring import Scored
from newsbot.bot.answer.plan import AnswerPlan

_ENUM_LATER = re.compile(r"^\W*(secondly|second,|thirdly|third,|finally|lastly)\b", re.I)
_ENUM_FIRST = re.compile(r"^\W*(firstly|first,|first of all)\b", re.I)


class Picker:
    """The sentences of an answer being assembled: roles, word budget, one fact once."""

    def __init__(self, scored: Scored, opts: ExtractiveOptions) -> None:
        self.scored = scored
        self.opts = opts
        self.chosen: list[int] = []
        self.roles: dict[int, str] = {}
        self.groups: list[tuple[str, list[int]]] = []  # (role, candidates added together), in order
        self.also: dict[int, list[int]] = {}  # chosen index -> near-identical candidates of other articles

    def words(self) -> int:
        return sum(len(self.scored.cands[i].text.split()) for i in self.chosen)

    def cost(self, i: int) -> int:
        """The words candidate i adds with what it needs (`group_for`)."""
        return sum(len(self.scored.cands[j].text.split()) for j in self.group_for(i))

    def _similar(self, i: int) -> tuple[int | None, float]:
        """The chosen sentence sharing the largest share of words with candidate i (Jaccard), and that share."""
        if not self.chosen:
            return None, 0.0
        mine = self.scored.terms[i]
        best, best_sim = None, 0.0
        for j in self.chosen:
            theirs = self.scored.terms[j]
            union = len(mine | theirs)
            sim = len(mine & theirs) / union if union else 0.0
            if sim > best_sim:
                best, best_sim = j, sim
        return best, best_sim

    def group_for(self, i: int) -> list[int]:
        """Candidate i with what it needs: its antecedent, the point after a lead-in, enumeration heads."""
        cands = self.scored.cands
        group = [i]
        for j in companions(cands, i):
            if j not in self.chosen and j not in group:
                group.append(j)
        for j in list(group):  # each one's antecedent ("Firstly, it …" needs "The decision is twofold.")
            a = cands[j].antecedent
            if a is not None and a not in self.chosen and a not in group:
                group.append(a)
        return sorted(group, key=lambda j: cands[j].position)

    def add(self, i: int, role: str) -> bool:
        if i in self.chosen:
            return False
        cands = self.scored.cands
        c = cands[i]
        other, sim = self._similar(i)
        if other is not None and sim >= self.opts.redundancy:
            if sim >= self.opts.merge_similarity and cands[other].doc_id != c.doc_id:
                self.also.setdefault(other, []).append(i)  # one fact once, cited to every article
            return False
        group = self.group_for(i)
        for j in group:
            self.chosen.append(j)
            self.roles[j] = role
        self.groups.append((role, group))
        return True

    def second_part_sentences(self, rankings: Sequence[Sequence[tuple[float, int]]]) -> None:
        """For each part of a multi-part question, its next best sentence (`rankings`: per part, (part
        score, candidate) best first, the part's line first) when it scores near the part's line and fits
        the budget: a part's evidence is often its article's second sentence on the point, which the
        whole question's ranking leaves out."""
        for ranked in rankings:
            if not ranked:
                continue
            top = ranked[0][0]
            for s, i in ranked[1:]:
                if s < self.opts.part_second * top:
                    break
                if i in self.chosen:
                    continue
                if self.words() + self.cost(i) > self.opts.max_words:
                    continue
                if self.add(i, "part"):
                    break

    def fill(self, plan: AnswerPlan, budget_only: bool = False) -> None:
        """Supporting sentences, best first, while they stay close to the best score and fit the budget."""
        scored, opts = self.scored, self.opts
        order = np.argsort(-scored.scores, kind="stable")
        best = float(scored.scores[self.chosen[0]]) if self.chosen else float(scored.scores[order[0]])
        lead_doc = scored.cands[self.chosen[0]].doc_id if self.chosen else ""
        added = 0
        for i in map(int, order):
            if budget_only and self.words() >= opts.max_words:
                break
            if added >= opts.max_sentences - 1:
                break
            s = float(scored.scores[i])
            if s < 0.8 * best:
                break
            c = scored.cands[i]
            if i in self.chosen:
                continue
            if c.antecedent is None and REFERS_BACK.match(c.text):
                continue
            if c.doc_id != lead_doc and s < opts.other_article * best:
                continue  # another article must be nearly as relevant to join the answer
            if plan.scoped and not plan.in_scope(c.hit.published_at, c.hit.source, c.text):
                continue  # the question asked about another period or outlet
            if self.scored.cands[self.chosen[0]].is_list and (c.doc_id != lead_doc or added >= 1):
                continue  # a list answers by itself; at most one sentence of its article around it
            if self.words() + self.cost(i) > opts.max_words:
                other, sim = self._similar(i)
                if other is not None and sim >= opts.merge_similarity and scored.cands[other].doc_id != c.doc_id:
                    self.also.setdefault(other, []).append(i)
                continue
            if self.add(i, "support"):
                added += 1
        # near-identical sentences of other articles, anywhere in the candidates: cite them too
        for i in map(int, order):
            if i in self.chosen or any(i in v for v in self.also.values()):
                continue
            other, sim = self._similar(i)
            if other is not None and sim >= opts.merge_similarity and scored.cands[other].doc_id != scored.cands[i].doc_id:
                self.also.setdefault(other, []).append(i)


def companions(cands: Sequence[Candidate], i: int) -> list[int]:
    """Sentences that must accompany sentence i to make sense: the point after a lead-in, and the
    first item of an enumeration whose later item ("Secondly, …") was chosen."""
    out = []
    c = cands[i]
    if _ENUM_LATER.search(c.text):
        for j in range(i - 1, -1, -1):
            if cands[j].hit is not c.hit:
                break
            if _ENUM_FIRST.search(cands[j].text):
                out.append(j)
                break
    if not c.is_list and is_vague(c.text) and i + 1 < len(cands) and cands[i + 1].hit is c.hit:
        out.append(i + 1)
    return out
