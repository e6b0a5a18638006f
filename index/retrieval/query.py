"""Query analysis for news questions ("self-querying"): outlets, dates and parts of a question.

News questions name where and when something was reported: "Does the TechCrunch article published on
October 2, 2023 ... while The Verge reports ...?". `analyze` turns such a question into a `QueryPlan`:

* the outlets it names, matched against the outlets actually in the index (`OutletLexicon`, built from
  `StoreReader.sources()`; "The Independent" matches "The Independent - Life and Style" etc.);
* the dates and periods it names ("on October 2, 2023", "after November 5", "in November 2023"),
  each as an inclusive UTC range;
* sub-queries: one per part of a multi-part question, each with the outlet (and date range) that part
  names, so that retrieval finds evidence for every part, not just for the most talked-about one.

Everything here is plain string work: deterministic, fast, no model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from newsbot.index.text import keyword_terms

MONTHS = {
    name: i
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
         ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
         ("october", "oct"), ("november", "nov"), ("december", "dec")],
        1,
    )
    for name in names
}
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|" \
         r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
# Relation words that may stand right before a date: what the date range means.
_REL = r"(?:(?P<rel>on or after|on or before|no later than|no earlier than|after|since|following|later than|" \
       r"before|prior to|until|by|earlier than|in|on|during|as of|from)\s+(?:the\s+)?)?"
DATE_PATTERNS = [
    # 2023-10-04 or 2023-10-04T21:11:57+00:00
    re.compile(_REL + r"(?P<iso>(?P<y>" + _YEAR + r")-(?P<m>[01]\d)-(?P<d>[0-3]\d)(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?)",
               re.I),
    # October 2, 2023 / Oct. 2nd 2023 / October 2
    re.compile(_REL + r"(?P<mon>" + _MONTH + r")\s+(?P<d>" + _DAY + r")\b(?:,?\s+(?P<y>" + _YEAR + r"))?", re.I),
    # 2 October 2023 / 2nd of October
    re.compile(_REL + r"(?P<d>" + _DAY + r")(?:\s+of)?\s+(?P<mon>" + _MONTH + r")(?!\w)(?:,?\s+(?P<y>" + _YEAR
               + r"))?", re.I),
    # November 2023 (a whole month)
    re.compile(_REL + r"(?P<mon>" + _MONTH + r")(?!\w)(?:,)?\s+(?P<y>" + _YEAR + r")\b", re.I),
]
# "published on", "the report dated", "TechCrunch's article from": the date is when articles appeared
_PUBLISHED = re.compile(r"\b(?:published|publication|dated|posted|report(?:ed)?|article)\b[^.?!]*$", re.I)
EVENT_GRACE = timedelta(days=7)  # reports of an event appear in the days after it
SINCE_WORDS = {"after", "since", "following", "later than", "on or after", "no earlier than", "from"}
UNTIL_WORDS = {"before", "prior to", "until", "by", "earlier than", "on or before", "no later than", "as of"}


@dataclass(frozen=True)
class DateMention:
    start: int  # character span in the question
    end: int
    since: datetime | None  # inclusive UTC range the mention asks for; None = open
    until: datetime | None
    text: str
    published: bool = False  # names when articles were published ("published on …"), not when things happened
    assumed_year: bool = False  # the text named no year: the index's newest year was taken


@dataclass(frozen=True)
class OutletMention:
    start: int
    end: int
    sources: tuple[str, ...]  # outlet names as stored in the index
    text: str


@dataclass(frozen=True)
class SubQuery:
    """One retrieval of a query plan: text plus the outlets and date range that part of the question names."""

    text: str
    sources: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class QueryPlan:
    question: str
    outlets: tuple[OutletMention, ...] = ()
    dates: tuple[DateMention, ...] = ()
    parts: tuple[SubQuery, ...] = ()  # one per outlet-bearing part of the question (may be empty)
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def sources(self) -> tuple[str, ...]:
        """Every outlet the question names (index spelling), in order of first mention."""
        return tuple(dict.fromkeys(s for m in self.outlets for s in m.sources))


# ---------------------------------------------------------------------------------------------- outlets


def outlet_aliases(source: str) -> set[str]:
    """Ways a question may name an outlet: "Cnbc | World Business News Leader" → {"Cnbc | ...", "Cnbc"}.

    Parts before " | ", " - " and ": " (a site's tagline or section), with and without a leading "The",
    and without ".com". Aliases shorter than 3 characters are dropped (too ambiguous).
    """
    name = re.sub(r"\s+", " ", source).strip()
    out = {name}
    for sep in (" | ", " - ", " — ", ": "):
        if sep in name:
            out.add(name.split(sep, 1)[0].strip())
    for alias in list(out):
        if alias.lower().endswith(".com"):
            out.add(alias[:-4])
        if alias.startswith("The ") and len(alias) - 4 >= 5:
            out.add(alias[4:])
    return {a for a in out if len(a) >= 3}


def _case_variants(alias: str) -> set[str]:
    """Outlet names are proper nouns: match them as written, in title case or all caps (never lower case,
    so "the age of AI" is not The Age)."""
    variants = {alias, alias.upper(), alias.title()}
    if alias.isupper() or (alias[:1].isupper() and alias[1:].islower()):
        variants |= {alias.capitalize(), alias.upper()}  # "Cnbc" <-> "CNBC"
    return {v for v in variants if any(ch.isupper() for ch in v)}


class OutletLexicon:
    """Outlet names of an index, matched in question text (longest alias first)."""

    def __init__(self, sources: Iterable[str]) -> None:
        self.sources = tuple(dict.fromkeys(s for s in sources if s and s.strip()))
        by_alias: dict[str, set[str]] = {}
        for source in self.sources:
            for alias in outlet_aliases(source):
                for variant in _case_variants(alias):
                    by_alias.setdefault(variant, set()).add(source)
        self._by_alias = {a: tuple(sorted(s)) for a, s in by_alias.items()}
        if self._by_alias:
            alternatives = sorted(self._by_alias, key=len, reverse=True)
            self._pattern: re.Pattern[str] | None = re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(a) for a in alternatives) + r")(?!\w)"
            )
        else:
            self._pattern = None

    def __len__(self) -> int:
        return len(self.sources)

    def find(self, text: str) -> list[OutletMention]:
        if self._pattern is None:
            return []
        return [
            OutletMention(m.start(), m.end(), self._by_alias[m.group(0)], m.group(0))
            for m in self._pattern.finditer(text)
        ]


# ---------------------------------------------------------------------------------------------- dates


def _day(year: int, month: int, day: int) -> datetime | None:
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def _month_end(year: int, month: int) -> datetime:
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return nxt - timedelta(microseconds=1)


def find_dates(text: str, default_year: int | None = None, slack_days: int = 1) -> list[DateMention]:
    """Dates and months named in `text`, as inclusive UTC ranges.

    "on October 2, 2023" → that day ± `slack_days` (articles' time zones differ); "after October 5" →
    from the day after on; "before October 5" → up to the day before; "in November 2023" → the month.
    A date without a year takes the year of another date in the question, else `default_year`, else it
    is ignored.
    """
    found: list[tuple[int, int, str | None, int | None, int, int | None, str]] = []
    taken: list[tuple[int, int]] = []
    for pattern in DATE_PATTERNS:
        for m in pattern.finditer(text):
            core = m.start("y") if m.groupdict().get("iso") else m.start()
            if any(s < m.end() and core < e for s, e in taken):
                continue
            gd = m.groupdict()
            month = int(gd["m"]) if gd.get("m") else MONTHS.get((gd.get("mon") or "").lower().rstrip("."))
            if not month:
                continue
            day = int(re.sub(r"\D", "", gd["d"])) if gd.get("d") else None
            year = int(gd["y"]) if gd.get("y") else None
            rel = (gd.get("rel") or "").lower() or None
            found.append((m.start(), m.end(), rel, year, month, day, m.group(0)))
            taken.append((m.start(), m.end()))
    years = [f[3] for f in found if f[3]]
    out = []
    for start, end, rel, year, month, day, raw in sorted(found):
        assumed = year is None
        year = year or (years[0] if years else default_year)
        if year is None:
            continue
        if day is None:
            first, last = datetime(year, month, 1, tzinfo=UTC), _month_end(year, month)
        else:
            d = _day(year, month, day)
            if d is None:
                continue
            first, last = d, d + timedelta(days=1) - timedelta(microseconds=1)
        if rel in SINCE_WORDS:
            inclusive = rel in ("since", "from", "on or after", "no earlier than")
            since, until = (first if inclusive else last + timedelta(microseconds=1)), None
        elif rel in UNTIL_WORDS:
            exclusive = rel in ("before", "prior to", "earlier than")
            since, until = None, (first - timedelta(microseconds=1) if exclusive else last)
        else:
            since, until = first - timedelta(days=slack_days), last + timedelta(days=slack_days)
        published = bool(_PUBLISHED.search(text[max(0, start - 40) : start]))
        out.append(DateMention(start, end, since, until, raw, published, assumed and not years))
    return out


# ---------------------------------------------------------------------------------------------- parts

_SAME_SOURCE = re.compile(r"\b(?:the\s+)?same\s+(?:news\s+)?(?:source|outlet|publication|publisher|site)\b", re.I)
_FILLER = frozenset(
    """article articles report reports reported reporting piece story coverage covered cover publication
    published source outlet featured mention mentioned mentions suggest suggests claim claims indicate
    indicates portrayal portray discuss discusses discussed another other later subsequent earlier previous
    first second third consistent consistency inconsistent inconsistency change changed compared considering
    information highlighted noted between whereas while regarding""".split()
)
# Where a question's parts meet: commas and semicolons, and conjunctions that start a new claim.
_CLAUSE_BREAK = re.compile(
    r"[,;]\s*|\s(?=(?:while|whereas|but|compared (?:to|with)|in contrast to|"
    r"(?:and|or) (?:does|did|do|is|was|has|had|are|were|have|the|then|later)\b))",
    re.I,
)
_CONTINUES = re.compile(
    r"\W*(?:(?:and|or|while|whereas|but|then)\s+)?(?:(?:the|a|an|its|their)\s+)?"
    r"(?:(?:subsequent|later|earlier|other|second|previous|following|next|latest|second)\s+)?"
    r"(?:report|article|piece|coverage|story|one)\b",
    re.I,
)
_ARTICLE = re.compile(r"(?:\b(?:the|a|an)\s+)$", re.I)


def content_words(text: str) -> list[str]:
    return [t for t in keyword_terms(text) if t not in _FILLER and not t.isdigit()]


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(" ,;:?.-'‘’\"")


def _masked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for s, e in spans:
        for i in range(s, e):
            chars[i] = "x"
    return "".join(chars)


def analyze(
    question: str,
    lexicon: OutletLexicon | None = None,
    *,
    default_year: int | None = None,
    min_part_words: int = 3,
    max_parts: int = 6,
) -> QueryPlan:
    """Outlets, dates and sub-queries of `question` (see the module docstring).

    The question is cut into clauses (commas, "while", "compared to", "and does ..."); a clause naming
    several outlets is cut between them (after each when the outlets close their claims, "... by The
    Verge and ... according to TechCrunch", else before each). A clause naming no outlet joins the next
    one that does, or continues the outlet before it ("and the report on ..."). A part whose own words
    are too few ("Did Yardbarker's coverage on December 24") searches with the whole question, filtered
    to its outlet and dates; so do outlets listed at the end ("..., as reported by Fortune and Wired?").
    "the same source" repeats the outlet named before it.
    """
    outlets = lexicon.find(question) if lexicon is not None else []
    dates = find_dates(question, default_year)
    mentions: list[tuple[int, int, tuple[str, ...]]] = [(m.start, m.end, m.sources) for m in outlets]
    for m in _SAME_SOURCE.finditer(question):
        before = [x for x in mentions if x[1] <= m.start()]
        if before and not any(s < m.end() and m.start() < e for s, e, _ in mentions):
            mentions.append((m.start(), m.end(), before[-1][2]))
    mentions.sort()
    # a "date" inside an outlet name ("Scitechdaily | ... News 2017") is part of the name
    dates = [d for d in dates if not any(s <= d.start < e for s, e, _ in mentions)]
    if not mentions:
        return QueryPlan(question, tuple(outlets), tuple(dates), ())

    masked = _masked(question, [(s, e) for s, e, _ in mentions] + [(d.start, d.end) for d in dates])
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(masked)] + [len(question)]
    clauses = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    segments: list[tuple[int, int]] = []
    for a, b in clauses:
        inside = [(s, e) for s, e, _ in mentions if a <= s < b]
        if len(inside) < 2:
            segments.append((a, b))
            continue
        if len(content_words(question[inside[-1][1] : b])) < 2:  # outlets close their claims
            points = [e for _, e in inside[:-1]]
        else:  # outlets open their claims: cut before each, keeping "the" with its outlet
            points = []
            for s, _ in inside[1:]:
                lead = _ARTICLE.search(question, a, s)
                points.append(lead.start() if lead else s)
        bounds = [a, *points, b]
        segments.extend((x, y) for x, y in zip(bounds, bounds[1:], strict=False) if y > x)

    def own(seg: tuple[int, int]) -> list[tuple[int, int, tuple[str, ...]]]:
        return [m for m in mentions if seg[0] <= m[0] < seg[1]]

    # An outlet-less clause with enough words of its own is a part too: about the outlet before it when it
    # continues that report ("and the later report on ..."), else about any outlet the question names
    # (a clue of a "which company, ..., as reported by A and B?" question). Short ones join the next part.
    everyone = tuple(dict.fromkeys(s for m in mentions for s in m[2]))
    groups: list[tuple[int, int, list[tuple[str, ...]]]] = []
    waiting: int | None = None
    for seg in segments:
        mine = own(seg)
        start = waiting if waiting is not None else seg[0]
        if mine:
            groups.append((start, seg[1], [m[2] for m in mine]))
            waiting = None
        elif (len(content_words(question[seg[0] : seg[1]])) >= min_part_words
              or any(seg[0] <= d.start < seg[1] for d in dates)):
            follows = groups and _CONTINUES.match(question, seg[0])
            groups.append((start, seg[1], [groups[-1][2][-1] if follows else everyone]))
            waiting = None
        elif waiting is None:
            waiting = seg[0]
    if waiting is not None and groups:
        last = groups.pop()
        groups.append((last[0], len(question), last[2]))
    parts: list[SubQuery] = []
    outlet_words = {w for m in mentions for w in keyword_terms(question[m[0] : m[1]])}
    for start, end, group_sources in groups:
        in_part = [d for d in dates if start <= d.start < end]
        words = [w for w in content_words(_masked(question, [(d.start, d.end) for d in in_part])[start:end])
                 if w not in outlet_words and w != "x" * len(w)]
        text = _clean(question[start:end]) if len(words) >= min_part_words else _clean(question)
        since = min((d.since for d in in_part if d.since), default=None)
        until = max((d.until for d in in_part if d.until), default=None)
        if any(d.since is None for d in in_part):
            since = None
        if any(d.until is None for d in in_part):
            until = None
        for sources in group_sources:
            parts.append(SubQuery(text, sources, since, until))
    unique = tuple(dict.fromkeys(parts))[:max_parts]
    return QueryPlan(question, tuple(outlets), tuple(dates), unique)


def describe(plan: QueryPlan) -> list[str]:
    """Human-readable lines for debugging (`newsbot search --explain`)."""
    lines = []
    for p in plan.parts:
        when = ""
        if p.since or p.until:
            when = f" [{p.since.date() if p.since else '…'} .. {p.until.date() if p.until else '…'}]"
        lines.append(f"{', '.join(p.sources) or '(any outlet)'}{when}: {p.text}")
    return lines


def parts_or_whole(plan: QueryPlan) -> Sequence[SubQuery]:
    return plan.parts or (SubQuery(plan.question),)


# ---------------------------------------------------------------------------------------------- names

_CAP_WORD = r"(?:[A-Z](?:[\w.&-]*\w)?\.?)"
_NAME = re.compile(r"(?<![\w'’-])" + _CAP_WORD + r"(?:\s+(?:(?:of|de|van|von|&)\s+)?" + _CAP_WORD + r")*")
# Capitalised words that start questions or are generic, not names of things the corpus must contain.
_NOT_NAMES = frozenset(
    """a an the which what who whom whose when where why how is was were are does did do has have had
    considering based between after before according given in on at of for from by as and or but if
    while with to this that these those there it its their his her both either neither also first second
    third article articles report reports news source sources yes no not mr mrs ms dr ceo ceos cto cfo
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split()
)
# "a Bloomberg article", "the report by Reuters", "according to CNN": where a question names an outlet.
_OUTLET_SLOT = re.compile(
    r"(?:\b(?:article|report|piece|review|story|coverage|feature|analysis|interview|editorial|column|post|"
    r"articles|reports|pieces|another)\s+(?:published\s+)?(?:from|by|in)\s+(?:the\s+)?(?:website\s+)?"
    r"|\b[Aa]ccording\s+to\s+(?:the\s+)?|\b(?:reported|covered|published|noted|highlighted|mentioned|discussed)"
    r"\s+(?:by|in)\s+"
    r"(?:the\s+)?)(?P<after>" + _CAP_WORD + r"(?:\s+(?:of\s+|&\s+)?" + _CAP_WORD + r")*)"
    r"|\b(?:a|an|the)\s+(?:'|\"|‘|“)?(?P<before>" + _CAP_WORD + r"(?:\s+(?:of\s+|&\s+)?" + _CAP_WORD + r"){0,3})"
    r"(?:'|\"|’|”)?(?:'s|’s)?\s+(?:article|report|piece|review|story|coverage|analysis|interview|editorial)s?\b"
)


def names(question: str, skip: Sequence[tuple[int, int]] = ()) -> list[str]:
    """Capitalised phrases of `question` that name someone or something ("Heather Knight", "GPT-4"),
    outside the spans in `skip` (outlet mentions). Question words and months are not names; a
    possessive ends a name ("Google's Gemini" is two)."""
    out: list[str] = []
    for m in _NAME.finditer(question):
        if any(s < m.end() and m.start() < e for s, e in skip):
            continue
        words = [re.sub(r"(?<=\w)-[a-z]+$", "", w) for w in m.group(0).split()]
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower() in _NOT_NAMES:
            words = words[:-1]
        phrase = " ".join(words).rstrip(".")
        if len(phrase) >= 3 and phrase.lower() not in _NOT_NAMES:
            out.append(phrase)
    return list(dict.fromkeys(out))


def unknown_outlets(question: str, lexicon: OutletLexicon) -> list[str]:
    """Outlets the question names ("a Bloomberg article", "according to Reuters") that the index lacks."""
    known = [(m.start, m.end) for m in lexicon.find(question)]
    out = []
    for m in _OUTLET_SLOT.finditer(question):
        group = "after" if m.group("after") else "before"
        s, e = m.start(group), m.end(group)
        if any(ks < e and s < ke for ks, ke in known):
            continue
        name = m.group(group).rstrip(".'’")
        if name.lower() in _NOT_NAMES or len(name) < 3:
            continue
        out.append(name)
    return list(dict.fromkeys(out))
