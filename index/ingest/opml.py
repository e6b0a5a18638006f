"""OPML feed lists (the format every feed reader imports and exports): `parse_opml` and `write_opml`.

Parsing goes through defusedxml: a file that declares entities (the "billion laughs" expansion bomb,
external entities that would read local files or URLs) is refused before anything is expanded. OPML
never needs entities. Every `<outline>` with an `xmlUrl` is a feed, however deeply it is nested in
category outlines; outlines without one are categories or links and are only walked through.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_OPML_BYTES = 20_000_000  # a list of feeds; tens of thousands of them fit in a few MB


class OpmlError(ValueError):
    """A file that is not usable OPML; the message says why in one line."""


@dataclass(frozen=True)
class OpmlFeed:
    """One feed of an OPML file. url: its xmlUrl, stripped. title: its title or text ('' if none).
    category: the text of the outlines it is nested in, joined with ' / ' ('' at the top level)."""

    url: str
    title: str = ""
    category: str = ""


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document (1.0 or 2.0), in document order, repeats included.

    Raises `OpmlError` for a file over MAX_OPML_BYTES, XML that is malformed or declares entities, and
    a document whose root is not `<opml>` or that has no `<body>`. A body without any feed gives [].
    """
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"too large for a feed list: more than {MAX_OPML_BYTES:,} bytes")
    if not data.strip():
        raise OpmlError("malformed OPML: the file is empty")
    try:
        root = fromstring(data)
    except DefusedXmlException as exc:
        raise OpmlError(
            f"refused: the file declares XML entities or a DTD ({type(exc).__name__}); OPML needs none, "
            "and expanding them is how entity bombs (billion laughs) and file-reading tricks work"
        ) from None
    except ET.ParseError as exc:
        raise OpmlError(f"malformed OPML: {exc}") from None
    if _local(root.tag) != "opml":
        raise OpmlError(f"not OPML: the document's root element is <{_local(root.tag)}>, not <opml>")
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError("malformed OPML: no <body> element")
    return list(_feeds(body, ()))


def write_opml(feeds: Iterable[tuple[str, str]], *, title: str = "newsbot feeds") -> bytes:
    """An OPML 2.0 document (UTF-8) listing `feeds`, given as (url, title) pairs, as flat
    `<outline type="rss" text=… title=… xmlUrl=…/>`. Characters XML 1.0 cannot hold are dropped, so
    the output always parses."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    ET.SubElement(head, "dateCreated").text = formatdate(usegmt=True)
    body = ET.SubElement(root, "body")
    for url, name in feeds:
        text = _xml_text(name) or _xml_text(url)
        ET.SubElement(body, "outline", type="rss", text=text, title=text, xmlUrl=_xml_text(url))
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


def _feeds(element: ET.Element, path: tuple[str, ...]) -> Iterator[OpmlFeed]:
    for child in element:
        if _local(child.tag) != "outline":
            continue
        attrs = {_local(k).lower(): v.strip() for k, v in child.attrib.items()}  # xmlurl, xmlURL: all seen
        label = " ".join((attrs.get("title") or attrs.get("text") or "").split())
        if attrs.get("xmlurl"):
            yield OpmlFeed(attrs["xmlurl"], label, " / ".join(path))
        yield from _feeds(child, (*path, label) if label else path)


def _local(tag: object) -> str:
    """The tag or attribute name without its {namespace}."""
    return str(tag).rsplit("}", 1)[-1]


# Characters XML 1.0 forbids (C0 controls except tab, LF, CR; surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text or "")
