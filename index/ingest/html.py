"""Article pages → `Document`: main-text and metadata extraction with trafilatura, fully offline.

`extract_page(html, url=)` gives the raw extraction (`ExtractedPage`); `document_from_html` turns a
page into a `Document`; `fragment_text` turns an HTML fragment (a feed entry's content) into text.
Bodies are plain text, one paragraph (heading, list, table, quote) per block, blocks separated by a
blank line. Nothing here touches the network: trafilatura is only given the markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import trafilatura
from lxml import etree

from newsbot.index.documents import Document, id_from_url, normalize_text, parse_date, slugify

MIN_WORDS = 12  # fewer words than this in the extracted body is "no usable main text"
MAX_LINK_SHARE = 0.6  # a body whose text is mostly link text is navigation, not an article

_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_WORD = re.compile(r"\w+")
_BLOCK_TAGS = frozenset(
    "p div section article header footer aside main nav h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table tr "
    "blockquote pre figure figcaption hr address details summary".split()
)


@dataclass(frozen=True)
class ExtractedPage:
    """What trafilatura found in a page. `body` has blank-line separated blocks; '' fields: not found."""

    title: str
    body: str
    published_at: datetime | None
    author: str
    sitename: str  # the outlet as the page names it (og:site_name and the like)
    hostname: str  # the host of `url` without "www.", '' without a url
    tags: tuple[str, ...]
    canonical_url: str  # <link rel=canonical> / og:url when the page gives one, else ''


def extract_page(html: str | bytes, *, url: str = "", encoding: str | None = None) -> ExtractedPage:
    """Extract main text and metadata from a page; raise ValueError when it has no usable main text.

    `encoding` decodes bytes (e.g. the charset of the HTTP response); without it trafilatura sniffs.
    """
    if isinstance(html, bytes) and encoding:
        try:
            html = html.decode(encoding, errors="replace")
        except LookupError:
            pass  # unknown charset name: let trafilatura sniff the bytes
    if not (html.strip() if isinstance(html, str) else html.strip()):
        raise ValueError("no usable main text: the page is empty")
    tree = trafilatura.load_html(html)
    if tree is None:
        raise ValueError("no usable main text: not an HTML page")
    link_texts = {normalize_text(t) for a in tree.iter("a") if (t := a.text_content().strip())}
    result = trafilatura.bare_extraction(
        tree,
        url=url or None,
        with_metadata=True,
        include_comments=False,
        include_images=False,
        include_tables=True,
        date_extraction_params=_date_params(),
    )
    if result is None or result.body is None:
        raise ValueError("no usable main text: nothing that looks like an article body")
    title = _clean(result.title or "")
    blocks = _drop_leading_title(_blocks(result.body), title)
    body = "\n\n".join(blocks)
    link_share = _link_share(blocks, link_texts)
    words = len(_WORD.findall(body))
    if words < MIN_WORDS:
        raise ValueError(f"no usable main text: only {words} words (at least {MIN_WORDS} needed)")
    if link_share > MAX_LINK_SHARE:
        raise ValueError(f"no usable main text: {link_share:.0%} of the text is links (navigation)")
    return ExtractedPage(
        title=title,
        body=body,
        published_at=_date(result.date),
        author=_clean(result.author or ""),
        sitename=_site_name(result.sitename or "", url),
        hostname=_host(url),
        tags=_tags(result.tags, result.categories),
        canonical_url=str(result.url or "") if str(result.url or "") != url else "",
    )


def document_from_html(
    html: str | bytes,
    *,
    url: str = "",
    origin: str = "",
    fallback_title: str = "",
    encoding: str | None = None,
) -> Document:
    """Build a `Document` from an article page (fetched or a local .html file).

    id: `id_from_url(url)` when `url` is given, else "title-" + a slug of the title. source: the page's
    site name, else the host of `url` without "www.". title: the page's, else `fallback_title`, else the
    body's first words. Raises ValueError (with the reason) when there is no usable main text.
    """
    page = extract_page(html, url=url, encoding=encoding)
    title = page.title or _clean(fallback_title) or _first_words(page.body)
    return Document(
        id=id_from_url(url) if url else "title-" + slugify(title),
        title=title,
        body=page.body,
        source=page.sitename or page.hostname,
        url=url,
        published_at=page.published_at,
        author=page.author,
        tags=page.tags,
        origin=origin or url,
    )


def fragment_text(html: str) -> str:
    """Plain text of an HTML fragment (a feed entry's summary or content), blocks separated by blank lines.

    Scripts, styles and comments are dropped; <br> becomes a line break. Text that holds no markup is
    returned with whitespace tidied.
    """
    if not html or not html.strip():
        return ""
    if "<" not in html and "&" not in html:
        return _tidy(html)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _tidy(html)
    etree.strip_elements(root, "script", "style", "noscript", "template", etree.Comment, with_tail=False)
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() in _BLOCK_TAGS:
            el.tail = "\n\n" + (el.tail or "")
            if el.text:
                el.text = "\n\n" + el.text
    text = "".join(t for t in root.itertext() if isinstance(t, str))
    return _tidy(text)


# -- internals -------------------------------------------------------------------------------------


def _date_params() -> dict[str, Any]:
    """htmldate settings: the original (not modified) date, no guessing from free text, none in the future."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    return {
        "original_date": True,
        "extensive_search": False,
        "outputformat": "%Y-%m-%dT%H:%M:%S%z",
        "max_date": tomorrow.strftime("%Y-%m-%d"),
    }


def _blocks(body: etree._Element) -> list[str]:
    """The text of each top-level block of trafilatura's body: paragraph, heading, list, table, quote."""
    for lb in body.iter("lb"):
        lb.tail = "\n" + (lb.tail or "")
    blocks: list[str] = []
    for child in body:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "list":
            items = [_clean_lines("".join(item.itertext())) for item in child.iter("item")]
            text = "\n".join(f"- {item}" for item in items if item)
        elif child.tag == "table":
            rows = []
            for row in child.iter("row"):
                cells = [_clean("".join(cell.itertext())) for cell in row.iter("cell")]
                if any(cells):
                    rows.append(" | ".join(cells))
            text = "\n".join(rows)
        else:
            text = _clean_lines("".join(child.itertext()))
        if text:
            blocks.append(text)
    return blocks


def _link_share(blocks: list[str], link_texts: set[str]) -> float:
    """Share of body characters on lines that are nothing but the text of a link in the page."""
    total = linked = 0
    for block in blocks:
        for line in block.splitlines():
            size = len(line)
            total += size
            if normalize_text(line.removeprefix("- ")) in link_texts:
                linked += size
    return linked / total if total else 0.0


def _drop_leading_title(blocks: list[str], title: str) -> list[str]:
    """Remove the article's headline when the body repeats it as its first block."""
    if title and len(blocks) > 1 and normalize_text(blocks[0]) == normalize_text(title):
        return blocks[1:]
    return blocks


def _date(value: object) -> datetime | None:
    try:
        return parse_date(value)
    except ValueError:
        return None


def _tags(*groups: object) -> tuple[str, ...]:
    """Tags and categories, split on commas/semicolons, deduplicated case-insensitively, in order."""
    seen: dict[str, str] = {}
    for group in groups:
        if not group:
            continue
        items = [group] if isinstance(group, str) else list(group)  # type: ignore[call-overload]
        for item in items:
            for part in re.split(r"[,;]", str(item)):
                tag = _clean(part)
                if tag and tag.lower() not in seen:
                    seen[tag.lower()] = tag
    return tuple(seen.values())


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "") if url else ""
    return host[4:] if host.startswith("www.") else host


def _site_name(sitename: str, url: str) -> str:
    """The page's own site name; '' when trafilatura only echoed the URL's host[:port] back."""
    name = _clean(sitename)
    netloc = urlsplit(url).netloc.lower() if url else ""
    if name and name.lower() in (netloc, netloc.removeprefix("www.")) and ":" in netloc:
        return ""
    return name


def _first_words(body: str, n: int = 12) -> str:
    words = body.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


def _clean_lines(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _tidy(text: str) -> str:
    """Collapse spaces, strip lines, keep at most one blank line between blocks."""
    blocks = re.split(r"\n\s*\n", text)
    return "\n\n".join(b for b in (_clean_lines(block) for block in blocks) if b)
