"""The article model every stage shares: `Document` (one news article) and its helpers.

Dates are timezone-aware UTC `datetime`s; a date without a time means midnight UTC.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


@dataclass(frozen=True)
class Document:
    """One news article.

    `id` is stable across rebuilds: the article's own id when it has one, else derived from its
    canonical URL, else from its file name. `source` is the outlet ("Reuters", "Weibo").
    """

    id: str
    title: str
    body: str
    source: str = ""
    url: str = ""
    published_at: datetime | None = None
    author: str = ""
    tags: tuple[str, ...] = ()
    origin: str = ""  # where it was loaded from: a file path or the fetched URL
    also_reported_by: tuple[str, ...] = field(default=())  # outlets whose copies were merged into this one

    def __post_init__(self) -> None:
        # The last line of defence against text no encoder accepts (a lone surrogate from a JSON or YAML
        # escape, or an HTML/XML character reference): loaders repair and report it first; anything that
        # still gets here is repaired, so hashing, SQLite and the tokenizer never fail on one article.
        for name in ("id", "title", "body", "source", "url", "author", "origin"):
            value = getattr(self, name)
            if isinstance(value, str) and _SURROGATE.search(value):
                object.__setattr__(self, name, repair_text(value))
        for name in ("tags", "also_reported_by"):
            values = getattr(self, name)
            if any(isinstance(v, str) and _SURROGATE.search(v) for v in values):
                object.__setattr__(self, name, tuple(repair_text(v) for v in values))

    def content_hash(self) -> str:
        """sha256 of the normalized title and body: equal for byte-different copies of the same text."""
        text = normalize_text(self.title) + "\n" + normalize_text(self.body)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def with_(self, **changes: object) -> Document:
        return replace(self, **changes)  # type: ignore[arg-type]


_WS = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_text(text: str) -> str:
    """`text` with every lone surrogate (which UTF-8 cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def bad_characters(text: str) -> int:
    """How many characters of `text` UTF-8 cannot encode (lone surrogates)."""
    return len(_SURROGATE.findall(text))


def normalize_text(text: str) -> str:
    """Unicode NFKC, lower case, whitespace collapsed: the form content hashes are taken of."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_len: int = 80, fallback: str = "article") -> str:
    """ASCII letters and digits of `text` joined by `-`; `fallback` when there are none."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _SLUG.sub("-", text).strip("-")[:max_len].strip("-") or fallback


_TRACKING_PARAMS = re.compile(r"^(utm_|fbclid$|gclid$|mc_cid$|mc_eid$|ref$|ref_src$|cmpid$|ito$)")


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no tracking parameters, no trailing slash."""
    if not url:
        return ""
    parts = urlsplit(url.strip())
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k)]
    )
    netloc = parts.netloc.lower()
    if netloc.startswith("www."):
        netloc = netloc[4:]
    path = parts.path.rstrip("/") or ""
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def id_from_url(url: str) -> str:
    return "url-" + hashlib.sha1(canonical_url(url).encode()).hexdigest()[:16]


def parse_date(value: object) -> datetime | None:
    """Parse what articles carry as a date (ISO strings, dates, datetimes, RFC 2822) into UTC.

    Returns None for empty values; raises ValueError for text that is not a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float):
        dt = datetime.fromtimestamp(float(value), tz=UTC)
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                dt = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"not a date: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_date(dt: datetime | None) -> str:
    """`2025-03-14` or '' — how dates appear in passages and citations."""
    return dt.strftime("%Y-%m-%d") if dt else ""
