"""What the bot says: `Answer` (text with [n] markers) and `Citation` (the article behind each [n]).

The CLI, Discord and the language-model path all produce and render these same objects.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlsplit, urlunsplit

from newsbot.index.hits import Hit

NOT_FOUND_TEXT = "I couldn't find this in the indexed news."


@dataclass(frozen=True)
class Citation:
    """Source number `number` in the answer text: one article and the passages of it that were used."""

    number: int
    hits: tuple[Hit, ...]  # the passages of this article the answer rests on, best first

    @property
    def hit(self) -> Hit:
        return self.hits[0]

    @property
    def doc_id(self) -> str:
        return self.hit.doc_id

    @property
    def title(self) -> str:
        return self.hit.title

    @property
    def source(self) -> str:
        return self.hit.source

    @property
    def url(self) -> str:
        return self.hit.url

    @property
    def published_at(self) -> datetime | None:
        return self.hit.published_at

    def label(self) -> str:
        """`Title — Outlet, 2025-03-14` (no number, no URL)."""
        return self.hit.header


@dataclass(frozen=True)
class Answer:
    """A reply to one question.

    `text` carries citation markers `[n]` that refer to `citations[n-1]`; every marker in the text
    has a citation and every citation is referred to. `found` is False when the index holds nothing
    relevant: then `text` says so and `citations` is empty. `hits` are all passages retrieved for the
    question (what the answer was chosen from), best first.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    found: bool
    mode: str = "extractive"  # "extractive" or "llm"
    standalone_question: str = ""  # the question as rewritten from conversation history, if it was
    notes: tuple[str, ...] = field(default=())  # e.g. why a model answer fell back to extractive
    related: tuple[Hit, ...] = field(default=())  # "not found": the closest articles (one passage each)

    def cited_numbers(self) -> list[int]:
        return sorted({int(n) for n in CITATION_MARK.findall(self.text)})

    def sources_text(self) -> str:
        """Plain-text source list: one `[n] Title — Outlet, date <url>` line per citation."""
        lines = []
        for c in self.citations:
            line = f"[{c.number}] {printable(c.label())}"
            if safe_url(c.url):
                line += f" <{safe_url(c.url)}>"
            lines.append(line)
        return "\n".join(lines)


CITATION_MARK = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation (a Discord thread, a DM, `newsbot chat`)."""

    question: str
    answer: str  # the answer text as shown, citation markers included


# ---------------------------------------------------------------------------------------- safe output

# Characters that end or nest a link in Markdown (and Discord's), or are unsafe in a URL, percent-encoded
# in the path, query and fragment of `safe_url`; letters, digits and the rest of printable ASCII stay.
_URL_SAFE = "!$%&*+,-./:;=?@_~#"
_HOST = re.compile(r"^(?:[\w-]+(?:\.[\w-]+)*\.?|\[[0-9A-Fa-f:.]+\])$")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe_url(url: str) -> str:
    """`url` fit to show or to put in `[text](url)`: an http(s) address with a plain host name, its path,
    query and fragment percent-encoded where a character could end or nest a Markdown link (`(`, `)`,
    `[`, `]`, `<`, `>`, spaces, quotes, backslashes) or is not ASCII; "" for anything else (other schemes
    such as javascript:, a user name before the host, control characters, an unparsable address)."""
    url = (url or "").strip()
    if not url or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in url):
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return ""
    if not parts.hostname or not _HOST.match(parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc):
        return ""
    return urlunsplit((
        parts.scheme.lower(), parts.netloc, quote(parts.path, safe=_URL_SAFE),
        quote(parts.query, safe=_URL_SAFE), quote(parts.fragment, safe=_URL_SAFE),
    ))


def printable(text: str) -> str:
    """`text` without control characters (terminal escape sequences, bidirectional overrides) that would
    let article text restyle a terminal or disguise what it shows; newlines and tabs stay."""
    return _CONTROLS.sub("", text or "")
