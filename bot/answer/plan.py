"""What an answer to a question must contain, decided before any sentence is chosen.

`plan_answer` reads the question (and the query analysis search already made of it: outlets, dates,
parts) and returns an `AnswerPlan`:

* the question's **kind** (why / how / when / how_much / who / which / list / yes_no / comparison /
  what_happened / what): it decides what the lead sentence must carry — a reason, a date, an amount, a
  name, a list;
* the **scope** a lead may come from: the period the question names (articles published then) and the
  outlets it names;
* the **parts** to answer one line each (a multi-part or comparison question);
* whether the answer should open with a **named entity** ("Who is …?", "Which company …?").

Plain string work: deterministic, fast, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from newsbot.index.retrieval.query import EVENT_GRACE, MONTHS, DateMention, QueryPlan, SubQuery, find_dates

KINDS = (
    "why", "how", "when", "how_much", "who", "which", "list", "yes_no", "comparison", "what_happened", "what",
)

_AUX = r"(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|shall|may|might|must)"
# The question word may follow a short lead-in: "So why …", "And when …", "Tell me why …".
_LEAD_IN = r"^\W*(?:(?:and|so|but|ok|okay|then|also|tell me|do you know|any idea|can you tell me|explain)\W+)*"
_ASKS: list[tuple[str, re.Pattern[str]]] = [
    ("how_much", re.compile(
        _LEAD_IN + r"(?:how (?:much|many|large|big|fast|long|expensive|cheap|far|high|low)\b"
        r"|what(?:'s|’s| is| was| were| are)? (?:\S+(?:'s|’s) )?(?:the )?(?:price|cost|share|percentage|amount|"
        r"valuation|revenue|sales|profit|size|number|figure|fare|fee|speed|range|capacity)\b)"
        r"|\bhow much\b|\bhow many\b|\b(?:cost|price|priced|costs|pricing)\b\W*$"
        r"|^\W*what did \S+(?: \S+)? (?:pay|spend|invest|charge)\b", re.I)),
    ("why", re.compile(
        _LEAD_IN + r"(?:why\b|what (?:drove|drives|led|leads|caused|causes|motivated|is behind|was behind)\b)"
        r"|\bwhy\b|\breasons?\b|\bwhat (?:is|was|are|were) the (?:reason|cause|motive)", re.I)),
    ("when", re.compile(
        _LEAD_IN + r"(?:when\b|what (?:date|year|month|day|time)\b|by when\b|since when\b)", re.I)),
    ("who", re.compile(
        _LEAD_IN + r"(?:who(?:m|se)?\b|which (?:person|individual|executive|ceo|founder|analyst|official|"
        r"player|figure|man|woman|leader)\b|what (?:person|individual|executive)\b)", re.I)),
    ("list", re.compile(
        _LEAD_IN + r"(?:(?:which|what) (?:\w+ ){0,2}(?:phones|models|devices|companies|countries|iphones|"
        r"products|chips|cameras|features|carriers|operators|firms|brands|partners|markets|rules|obligations|"
        r"steps|ones|options)\b|list\b|name (?:the|all|some)\b|what are (?:the|all)\b)", re.I)),
    ("which", re.compile(
        _LEAD_IN + r"(?:which\b|what (?:company|organization|organisation|entity|firm|outlet|brand|product|"
        r"model|chip|team|country|city|agency|group|exchange|platform|type|kind)\b|what is the name\b)", re.I)),
    ("what_happened", re.compile(
        _LEAD_IN + r"(?:what (?:happened|did|has|have|is happening|was announced|were announced)\b"
        r"|what(?:'s| is) (?:new|the news|going on)\b)", re.I)),
    ("how", re.compile(_LEAD_IN + r"how\b", re.I)),
]
_YES_NO = re.compile(_LEAD_IN + _AUX + r"\b", re.I)
_COMPARISON = re.compile(
    r"\b(?:compare[ds]?|comparison|versus|vs\.?|differ(?:ence|ent|s)?|in contrast|whereas|while|both|"
    r"same|consistent|agree|align|more than|less than|than|earlier|later|before|after|first|bigger|"
    r"larger|cheaper|faster|higher|lower|better|worse)\b",
    re.I,
)

# What a lead sentence must carry for each kind (classic answer typing).
REASON = re.compile(
    r"\b(?:because|due to|driven by|reasons?|aims? to|in order to|so that|incentives?|motivat\w*|"
    r"as a result|thanks to|twofold|firstly|secondly|hurt by|hit by|blamed|caused by|led to|leading to|"
    r"stems? from|in response to|was meant to|is meant to|triggered|sparked|set off|fears? (?:of|that)|"
    r"worries (?:about|that)|concerns? (?:about|over|that)|led \w+(?: \w+)? to)\b",
    re.I,
)
# Weaker signs of a reason: a lead with one of these is taken only when no sentence has a REASON.
REASON_WEAK = re.compile(
    r"\b(?:amid|squeez\w*|weighed on|fuel(?:ed|led) by|prompted|after (?:the|a|an|its)|"
    r"strateg\w*|pressure|costs?|confidence|demand|wants? to|to (?:save|cut|reduce|lower|gain|boost|prove|"
    r"showcase|bolster|avoid|compete|win|protect|free|focus|build|strengthen))\b",
    re.I,
)
_NUM = r"\d[\d,.]*"
_SCALED = _NUM + r"\s?(?:(?:thousand|million|billion|trillion)\s)?"  # "10 million tokens"
AMOUNT = re.compile(
    r"[$€£¥]\s?\d|" + _NUM + r"\s?(?:%|percent|per cent|billion|million|thousand|trillion|dollars?|euros?|yuan|cents|"
    r"units|GW|GWh|kWh|kW|MW|nm|km|GHz|MHz|MP|TB|GB|megapixels?|kilometers|kilowatts|volts|amps|x\b|times|"
    r"cars|vehicles|orders|users|subscribers|phones|chips|shares|employees|people|customers|satellites|stations)"
    r"|\b\d{1,3}(?:,\d{3})+\b",
    re.I,
)
# What a "how much / how many / how fast …" question measures, and how a sentence states it.
MEASURES: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"\b(?:how fast|speed|clock|how quickly)\b", re.I),
     re.compile(_SCALED + r"(?:GHz|MHz|km/h|mph|kW|MW|kilowatts|megawatts|Gbps|Mbps|C\b|x faster|times faster|"
                r"percent faster|minutes|seconds)", re.I)),
    (re.compile(r"^\W*how much (?:is|are|was|were)\b|\b(?:cost|costs|price|priced|pricing|pay|paid|charge|charged|fee|"
                r"fees|worth|spend|spending|invest|invested|raise|raised|lose|lost|loss|revenue|valuation|fine|fines|sell for|sold for)\b", re.I),
     re.compile(r"[$€£¥]\s?\d|" + _NUM + r"\s?(?:(?:billion|million|trillion|thousand)\s)?(?:dollars?|euros?|yuan|cents|pounds)",
                re.I)),
    (re.compile(r"\bhow long\b", re.I),
     re.compile(_SCALED + r"(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|tokens?|km|miles|kilometers|"
                r"meters|inch(?:es)?)", re.I)),
    (re.compile(r"\b(?:how big|how large|share|percent|percentage|stake)\b", re.I),
     re.compile(_NUM + r"\s?(?:%|percent|per cent|billion|million|trillion|GB|TB|MB|inch|mm|dollars)|[$€£¥]\s?\d",
                re.I)),
]
# "September 24", "24 September": a day of a month, not an amount
_DAY_OF_MONTH = re.compile(
    r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\s+\d{1,2}\b"
    r"|\b\d{1,2}\s+(?:January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
DATE = re.compile(
    r"\b(?:19|20)\d{2}\b|\b(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\b|\b(?:Q[1-4]|quarter|spring|summer|autumn|"
    r"fall|winter|yesterday|today|tomorrow|next (?:year|month|week)|Monday|Tuesday|Wednesday|Thursday|Friday|"
    r"Saturday|Sunday)\b",
)
NAME = re.compile(r"(?<=[\w,;:(] )[A-Z][\w.&'’-]+|\b[A-Z]{2,}\b")  # a capitalised word inside a sentence
EVENT = re.compile(
    r"\b(?:announc\w*|unveil\w*|launch\w*|releas\w*|introduc\w*|present\w*|reveal\w*|said|says|reported|"
    r"agreed|signed|bought|sold|acquir\w*|invest\w*|started|began|opened|approved|filed|cut|raised|won|"
    r"lost|fell|rose|took|became|showed|priced|starts?)\b",
    re.I,
)
# "What did X announce?": a product or plan was made public (not a share price falling the same week)
ANNOUNCE = re.compile(
    r"\b(?:announc(?:ed|es|ing)|unveil(?:ed|s|ing)?|launch(?:ed|es|ing)|introduc(?:ed|es|ing)|present(?:ed|s|ing)|"
    r"reveal(?:ed|s|ing)?|releas(?:ed|es|ing)|show(?:ed|ed off|s)|debut(?:ed|s)?|rolled out|detailed|previewed)\b",
    re.I,
)
_ASKS_ANNOUNCE = re.compile(r"\b(?:announce|unveil|launch|introduce|present|reveal|release|show|debut)\w*\b", re.I)
_AGENT = re.compile(r"\b(?:company|firm|it|they|he|she|chief executive|ceo|founder|chairman|group|maker)\b", re.I)
_PASSIVE = re.compile(r"\b(?:is|are|was|were|be|been|being)\s+(?:\w+ly\s+)?$", re.I)


def _announced(text: str, question: str) -> float:
    """1.0 when someone the question could mean announces something in `text` ("the company presented",
    "BYD unveiled"), 0.5 for an announce verb without such an agent ("the network is rolled out")."""
    names = {w.lower() for w in re.findall(r"\b[A-Z][\w&-]+", question)[1:]}
    best = 0.0
    for m in ANNOUNCE.finditer(text):
        before = text[max(0, m.start() - 60) : m.start()]
        if _PASSIVE.search(before):
            best = max(best, 0.5)
            continue
        clause = re.split(r"[,;:]|\b(?:and|after|while|as|but|when|which|that)\b", before)[-1]  # the verb's own clause
        words = {w.lower() for w in re.findall(r"[\w&-]+", clause)}
        named = bool(re.search(r"\b[A-Z][\w&-]+", clause))
        best = max(best, 1.0 if words & names or named or _AGENT.search(clause) else 0.5)
    return best


CUES: dict[str, re.Pattern[str]] = {
    "why": REASON, "how_much": AMOUNT, "when": DATE, "who": NAME, "which": NAME, "what_happened": EVENT,
}
# Kinds whose lead must have their cue when any candidate has it (for the others it only adds to the score).
STRICT_CUE_KINDS = frozenset({"why", "how_much", "when"})
# Kinds whose question cannot be answered without their cue (an amount, a date): no such lead = not found.
REQUIRED_CUE_KINDS = frozenset({"how_much", "when"})
# Kinds whose answer is a named thing: the answer may open with it ("**Sam Altman** — …").
ENTITY_KINDS = frozenset({"who", "which"})


@dataclass(frozen=True)
class AnswerPlan:
    """What the answer to `question` must contain and where its lead may come from."""

    question: str
    kind: str = "what"  # one of KINDS
    since: datetime | None = None  # the period the question names (articles published in it lead)
    until: datetime | None = None
    outlets: tuple[str, ...] = ()  # outlets the question names (index spelling); empty = any
    parts: tuple[SubQuery, ...] = ()  # answered one line each when there are two or more
    comparison: bool = False
    focus: str = ""  # the question without the dates it names: what the sentences must be about
    published: bool = False  # the dates are the articles' publication dates ("published on …")
    year: int | None = None  # a bare year the question names ("in 2025"): a hint, not a filter
    years: tuple[int, ...] = ()  # every bare year it names ("from 2024 to 2025")
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def cue(self) -> re.Pattern[str] | None:
        """What a lead sentence must contain for this kind of question (None: no particular content)."""
        if self.kind in ("what_happened", "what") and _ASKS_ANNOUNCE.search(self.focus or self.question):
            return ANNOUNCE
        return CUES.get(self.kind)

    def cue_strength(self, text: str) -> float:
        """1.0 when `text` has what this kind of question asks for, 0.5 for a weaker sign of it, else 0."""
        cue = self.cue
        if cue is None:
            return 0.0
        if self.kind == "how_much":
            text = _DAY_OF_MONTH.sub(" ", text)
            if self.measure is not None:
                return 1.0 if self.measure.search(text) else (0.5 if cue.search(text) else 0.0)
        if cue is ANNOUNCE:
            return _announced(text, self.focus or self.question)
        if cue.search(text):
            return 1.0
        return 0.5 if self.kind == "why" and REASON_WEAK.search(text) else 0.0

    @property
    def measure(self) -> re.Pattern[str] | None:
        """How a sentence states what a "how much / how fast / how long" question measures (None: any amount)."""
        for asks, states in MEASURES:
            if asks.search(self.focus or self.question):
                return states
        return None

    @property
    def scoped(self) -> bool:
        return bool(self.since or self.until or self.outlets)

    def in_scope(self, published_at: datetime | None, source: str, text: str = "") -> bool:
        """Whether an article (its date and outlet) lies inside the period and outlets the question names.

        A period the question names as publication dates ("published on October 2") is matched against
        the article's date. One it names as the time of events ("what did the US restrict on December 2?")
        also admits reports of the following week, and any sentence (`text`) that names a date inside it."""
        if self.outlets and source.casefold() not in {o.casefold() for o in self.outlets}:
            return False
        if not (self.since or self.until):
            return True
        if published_at is not None:
            grace = timedelta(0) if self.published else EVENT_GRACE
            if (self.since is None or published_at >= self.since) and (
                self.until is None or published_at <= self.until + grace
            ):
                return True
        if text and not self.published:
            year = published_at.year if published_at else None
            for d in find_dates(text, default_year=year, slack_days=0) + _bare_months(text, published_at):
                if (self.until is None or d.since is None or d.since <= self.until) and (
                    self.since is None or d.until is None or d.until >= self.since
                ):
                    return True
        return False


_MONTH_NAME = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b(?!\s+\d)"
)


def _bare_months(text: str, published_at: datetime | None) -> list[DateMention]:
    """"At CES in January" in an article of March 2026: January 2026 (the latest such month by then)."""
    if published_at is None:
        return []
    out = []
    for m in _MONTH_NAME.finditer(text):
        month = MONTHS[m.group(1).lower()]
        year = published_at.year - (month > published_at.month)
        first = datetime(year, month, 1, tzinfo=UTC)
        last = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC) - timedelta(microseconds=1)
        out.append(DateMention(m.start(), m.end(), first, last, m.group(0)))
    return out


def question_kind(question: str) -> str:
    """The kind of a question (see KINDS); "what" when nothing more specific applies."""
    text = question.strip()
    if _YES_NO.match(text):
        return "comparison" if _COMPARISON.search(text) and _two_sides(text) else "yes_no"
    for kind, pattern in _ASKS:
        if pattern.search(text):
            return kind
    if _COMPARISON.search(text) and _two_sides(text):
        return "comparison"
    return "what"


def _two_sides(text: str) -> bool:
    """A comparison needs two things to compare: "A or B", "A and B", "A vs B", "than", "while …"."""
    return bool(re.search(r"\b(?:or|and|vs\.?|versus|than|while|whereas|between|contrast|both|same)\b", text, re.I))


def plan_answer(question: str, query: QueryPlan | None = None) -> AnswerPlan:
    """The answer plan of `question`, using the outlets, dates and parts search found in it."""
    query = query or QueryPlan(question)
    kind = question_kind(re.sub(r"\s*\([^()]*\)\s*$", "", question))  # without a follow-up's borrowed words
    since = until = None
    dates = list(query.dates)
    # "on january 27" names no year: which January 27 is a guess, so it decides no scope (the dated
    # retrieval still looks in the newest year)
    scoped = [d for d in dates if not d.assumed_year]
    if scoped:
        dates_for_scope = scoped
        starts = [d.since for d in dates_for_scope]
        ends = [d.until for d in dates_for_scope]
        since = None if any(s is None for s in starts) else min(s for s in starts if s)
        until = None if any(e is None for e in ends) else max(e for e in ends if e)
    parts = tuple(dict.fromkeys(query.parts))
    focus = question
    for d in sorted(dates, key=lambda d: d.start, reverse=True):
        focus = focus[: d.start] + focus[d.end :]
    years = _BARE_YEAR.findall(focus)
    focus = _BARE_YEAR.sub("", focus)
    focus = re.sub(r"\s+([?.!,;])", r"\1", re.sub(r"\s{2,}", " ", focus)).strip()
    return AnswerPlan(
        question=question, kind=kind, since=since, until=until, outlets=query.sources, parts=parts,
        comparison=kind == "comparison" or len({p.sources for p in parts}) >= 2,
        focus=focus if len(focus.split()) >= 2 else question,
        published=any(d.published for d in scoped),
        year=int(years[0]) if len(set(years)) == 1 else None,
        years=tuple(sorted({int(y) for y in years})),
    )


# "in 2025", "2024's": a year standing alone (not in "2025-01-03" or "$2025")
_BARE_YEAR = re.compile(r"(?:\b(?:in|during|for|of|since)\s+)?(?<![\w$€£¥.-])((?:19|20)\d{2})(?:'s|’s)?(?![\w-])")
