"""For a "who / which" question: the name the retrieved passages agree on, which then opens the answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

from newsbot.bot.answer.extractive.scoring import Scored
from newsbot.bot.answer.plan import AnswerPlan
from newsbot.index.hits import Hit
from newsbot.index.text import sentence_spans

_NOT_ENTITY = frozenset(
    """the a an this that these those it its he she they we i you his her their our in on at of for from by as
    and or but if while with to after before according however meanwhile also both so then because could
    would should whereas here there when where why how what who current former advertisement monday tuesday
    wednesday
    thursday friday saturday sunday january february march april may june july august september october
    november december ceo cfo cto us u.s uk eu""".split()
)


_PERSON = re.compile(r"[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?(?: [A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?){1,2}")


def answer_entity(scored: Scored, plan: AnswerPlan, hits: Sequence[Hit]) -> str:
    """For a "who / which" question: the name the evidence agrees on, or "" when it does not.

    Names (capitalised phrases) of the retrieved passages that the question does not itself contain are
    counted per article and per mention; the name found in the most articles (at least two), then
    mentioned most, wins, in its longest written form ("Sam Bankman-Fried" also counts "Bankman-Fried").
    A capitalised word that only opens sentences ("Because Bankman-Fried …") is not part of a name, and
    outlet names do not count."""
    question_words = {re.sub(r"['’]s$", "", w.lower()) for w in re.findall(r"[\w'’-]+", plan.question)}
    outlets = {h.source.casefold() for h in hits}
    docs: dict[str, set[str]] = {}
    mentions: dict[str, int] = {}
    forms: dict[str, str] = {}
    inside: set[str] = set()  # phrases seen somewhere other than at the start of a sentence
    found: list[tuple[str, str, bool]] = []  # (doc id, phrase, opens its sentence)
    for h in hits:
        for sentence in [h.title] + [h.text[s_:e_] for s_, e_, _ in sentence_spans(h.text)]:
            for m in _NAME_PHRASE.finditer(sentence):
                opens = not sentence[: m.start()].strip(" \"'“‘(")
                found.append((h.doc_id, m.group(0), opens))
                if not opens:
                    inside.add(m.group(0))
    for doc_id, phrase, opens in found:
        words = phrase.split()
        if opens and len(words) > 1 and phrase not in inside:
            words = words[1:]  # "Echoing Bankman-Fried" -> "Bankman-Fried"
        while words and words[0].lower().strip("'’") in _NOT_ENTITY:
            words = words[1:]
        name = re.sub(r"(?:'s|’s)$", "", " ".join(words)).strip(" .,;:")
        key = name.casefold()
        name_words = [w.lower() for w in re.findall(r"[\w-]+", name)]
        if len(name) < 3 or key in outlets or not name_words or any(w in question_words for w in name_words):
            continue  # the question's own names (and "Xiaomi 15 Ultra" when it asks about Xiaomi)
        if len(words) == 1 and opens and name not in inside:
            continue  # a lone capitalised word opening a sentence is not evidence of a name
        docs.setdefault(key, set()).add(doc_id)
        mentions[key] = mentions.get(key, 0) + 1
        if len(name) > len(forms.get(key, "")):
            forms[key] = name
    if not docs:
        return ""
    # a surname or a short form counts for the full name that ends with it ("Altman" -> "Sam Altman")
    total_docs = {k: set(v) for k, v in docs.items()}
    total_mentions = dict(mentions)
    for short in docs:
        for long in docs:
            if long != short and long.endswith(" " + short):
                total_docs[long] |= docs[short]
                total_mentions[long] += mentions[short]
    pool = [k for k in total_docs if plan.kind != "who" or is_person(forms[k]) or _is_surname(forms[k])]
    if not pool:
        return ""
    def rank(k: str) -> tuple[int, bool, int]:  # articles, a full name (for "who"), mentions
        return len(total_docs[k]), plan.kind == "who" and " " in forms[k], total_mentions[k]

    ranked = sorted(pool, key=lambda k: (*rank(k), len(k)), reverse=True)
    best = ranked[0]
    if len(total_docs[best]) < 2:
        return ""
    if len(plan.parts) < 2:
        # one story asked about: its name must be in two of the articles search clearly put first (the best
        # three, or any scoring near the best when the scores are flat)
        best_score = max(h.score for h in hits)
        top = {h.doc_id for h in hits if _doc_rank(hits, h.doc_id) < 3 or h.score >= _NEAR_BEST * best_score}
        if len(total_docs[best] & top) < 2:
            return ""
    if len(ranked) > 1 and rank(ranked[1]) == rank(best):
        return ""  # a tie: the evidence does not single one out
    return forms[best]


_NEAR_BEST = 0.85  # share of the best article score that still counts as "first"
_WORD = r"[A-Z](?:[\w&'’-]|\.(?=\w))*"  # a capitalised word ("U.S." keeps its dots, a full stop ends it)
_NAME_PHRASE = re.compile(r"(?<![\w'’-])" + _WORD + r"(?: +(?:(?:of|de|van|von|&) +)?" + _WORD + r")*")
_ORG_WORDS = frozenset(
    """inc corp corporation company co ltd llc plc group holdings capital research bank exchange news labs
    technologies systems partners university association government department court commission reserve
    league team foundation fund institute agency council ministry party network media times post journal
    club airlines motors securities""".split()
)


def _doc_rank(hits: Sequence[Hit], doc_id: str) -> int:
    """The rank of an article among the retrieved articles (0 = the first one retrieved)."""
    return list(dict.fromkeys(h.doc_id for h in hits)).index(doc_id)


def _is_surname(name: str) -> bool:
    """One capitalised word that is not an acronym or an organisation word ("Bankman-Fried", "Altman")."""
    return bool(re.fullmatch(r"[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?", name)) and name.lower() not in _ORG_WORDS


def is_person(name: str) -> bool:
    """Two or three capitalised words, none of them an organisation word ("Alameda Research" is not)."""
    return bool(_PERSON.fullmatch(name)) and not any(w.lower().strip(".") in _ORG_WORDS for w in name.split())


def names_entity(entity: str, text: str) -> bool:
    """Whether `text` names `entity` (in full, or by its last word: "Sam Altman" ~ "Altman")."""
    last = entity.split()[-1]
    return bool(re.search(r"(?<!\w)(?:" + re.escape(entity) + "|" + re.escape(last) + r")(?!\w)", text, re.I))
