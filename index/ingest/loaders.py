"""Read articles from files: Markdown with YAML front matter, plain text, HTML, JSON and JSONL.

`load_paths` walks files and folders and never stops at a bad file: each file that cannot be read
becomes a `LoadError` (path and reason) and the rest goes on.

JSON/JSONL follow the MultiHop-RAG schema: `id, title, source, url, published_at, author, category,
body` (`tags` also accepted); a `.json` file holds one such object or a list of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from newsbot.index.documents import Document, bad_characters, id_from_url, parse_date, slugify

MARKDOWN = {".md", ".markdown"}
TEXT = {".txt", ".text"}
HTML = {".html", ".htm"}
JSON = {".json"}
JSONL = {".jsonl", ".ndjson"}
SUPPORTED = MARKDOWN | TEXT | HTML | JSON | JSONL
SKIPPED_NAMES = {"readme", "license", "licence", "changelog"}


@dataclass(frozen=True)
class LoadError:
    path: str  # file path, with `:LINE` for a JSONL line
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that are not articles (README, .png, ...)
    notes: list[LoadError] = field(default_factory=list)  # what was repaired or renamed, and where


class ArticleError(ValueError):
    """The file was read but is not a usable article (no body, bad front matter, bad date, ...)."""


def iter_files(
    paths: Iterable[str | Path], *, follow_links: bool = False, refused: list[LoadError] | None = None
) -> Iterator[Path]:
    """Files under `paths` in a stable order (folders recursively, hidden entries skipped).

    A symbolic link inside a folder that leads out of it (a file, or a folder, e.g. to /etc) is not
    followed unless `follow_links`; each one is added to `refused`. Links that stay inside the folder
    are read (a linked folder is not walked twice). A path given itself is read even if it is a link.
    """
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        root = path.resolve()
        found: list[Path] = []
        seen_dirs: set[Path] = set()
        for dirpath, dirnames, filenames in os.walk(path, followlinks=follow_links):
            here = Path(dirpath)
            if follow_links:  # a link to a folder above would loop: walk each real folder once
                real = here.resolve()
                if real in seen_dirs:
                    dirnames[:] = []
                    continue
                seen_dirs.add(real)
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in [*dirnames, *(f for f in filenames if not f.startswith("."))]:
                child = here / name
                if not follow_links and child.is_symlink() and not _inside(child, root):
                    if refused is not None:
                        refused.append(LoadError(str(child), (
                            f"a link to {os.path.realpath(child)}, outside {path}: not followed "
                            "(--follow-links reads it)")))
                elif name not in dirnames and child.is_file():
                    found.append(child)
        yield from sorted(found)


def _inside(link: Path, root: Path) -> bool:
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a link loop
        return False


def load_paths(
    paths: Iterable[str | Path], *, max_article_bytes: int = 0, max_page_bytes: int = 0,
    follow_links: bool = False,
) -> LoadResult:
    """Articles in `paths` (files and folders). Limits, 0 = none: `max_article_bytes` refuses a Markdown or
    text file bigger than that before reading it, and any article whose text is bigger (an HTML file's
    main text, a JSON record); `max_page_bytes` refuses bigger HTML files. `follow_links`: see iter_files."""
    result = LoadResult()
    named: dict[str, Path] = {}  # ids taken from file names -> the file that has it
    for path in iter_files(paths, follow_links=follow_links, refused=result.errors):
        if not path.exists():
            result.errors.append(LoadError(str(path), "no such file or folder"))
            continue
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED or path.stem.lower() in SKIPPED_NAMES:
            result.skipped.append(str(path))
            continue
        try:
            cap, setting = (max_page_bytes, "fetch_max_bytes") if suffix in HTML else (max_article_bytes, "max_article_bytes")
            if cap and suffix not in JSON | JSONL and (size := path.stat().st_size) > cap:
                raise ArticleError(f"{size:,} bytes, more than {setting} ({cap:,}): not read")
            if suffix in JSONL:
                docs, errors = load_jsonl(path, result.notes)
                result.errors.extend(errors)
            else:
                docs = [_own_name_id(d, path, named, result.notes) for d in load_file(path, result.notes)]
            for doc in docs:
                reason = article_too_big(doc, max_article_bytes)
                if reason:
                    result.errors.append(LoadError(doc.origin or str(path), reason))
                else:
                    result.documents.append(doc)
        except (ArticleError, OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
            result.errors.append(LoadError(str(path), _reason(exc)))
    return result


def file_id(path: Path) -> str:
    """The id an article without `id:` (or URL) gets from its file name: the slug of the name, or, for a
    name with no ASCII letters or digits (`新闻.md`), `article-` and a hash of the name."""
    return slugify(path.stem, fallback="") or _hashed_id(path.stem)


def _hashed_id(name: str) -> str:
    """`article-` and a hash of `name`: the id of a name without ASCII letters or digits (`新闻`)."""
    return "article-" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def unique_file_id(path: Path) -> str:
    """The id for a file whose name id is already another file's: the name id and a hash of the path."""
    digest = hashlib.sha1(str(path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{file_id(path)}-{digest}"


def _own_name_id(doc: Document, path: Path, named: dict[str, Path], notes: list[LoadError]) -> Document:
    """Two files whose names give the same id (`a/brief.md`, `b/brief.md`) keep two articles: the second
    one's id gets a hash of its path, and a note says so."""
    if doc.id != file_id(path):
        return doc
    first = named.setdefault(doc.id, path)
    if first == path:
        return doc
    new_id = unique_file_id(path)
    notes.append(LoadError(str(path), f"id {doc.id!r} is already {first}'s; indexed as {new_id!r}"))
    return doc.with_(id=new_id)


def article_too_big(doc: Document, max_bytes: int) -> str:
    """Why `doc` is refused under a `max_article_bytes` of `max_bytes` (its text is bigger), else ""."""
    if not max_bytes or len(doc.body) <= max_bytes // 4:  # UTF-8 takes at most 4 bytes a character
        return ""
    size = len(doc.body.encode("utf-8", "surrogatepass"))
    return f"article text of {size:,} bytes, more than max_article_bytes ({max_bytes:,})" if size > max_bytes else ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text (is it a binary file?)"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    if isinstance(exc, yaml.YAMLError):
        return "invalid YAML front matter: " + str(exc).replace("\n", " ")
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def load_file(path: Path, notes: list[LoadError] | None = None) -> list[Document]:
    """Documents in one non-JSONL file (raises ArticleError and friends on failure)."""
    suffix = path.suffix.lower()
    if suffix in MARKDOWN:
        return [parse_markdown(path.read_text(encoding="utf-8"), origin=str(path), stem=path.stem,
                               default_id=file_id(path), notes=notes)]
    if suffix in TEXT:
        return [parse_text(path.read_text(encoding="utf-8"), origin=str(path), stem=path.stem,
                           default_id=file_id(path), notes=notes)]
    if suffix in HTML:
        from newsbot.index.ingest.html import document_from_html

        try:
            doc = document_from_html(path.read_bytes(), origin=str(path), fallback_title=path.stem)
        except ValueError as exc:
            raise ArticleError(str(exc)) from None
        return [doc if doc.id.startswith("url-") else doc.with_(id=file_id(path))]
    if suffix in JSON:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = data if isinstance(data, list) else [data]
        docs = []
        for i, record in enumerate(records):
            where = f"{path}[{i}]" if isinstance(data, list) else str(path)
            docs.append(document_from_record(record, origin=where, notes=notes))
        return docs
    raise ArticleError(f"unsupported file type {suffix!r}")


def load_jsonl(path: Path, notes: list[LoadError] | None = None) -> tuple[list[Document], list[LoadError]]:
    docs, errors = [], []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                docs.append(document_from_record(json.loads(line), origin=where, notes=notes))
            except json.JSONDecodeError as exc:
                errors.append(LoadError(where, f"invalid JSON: {exc.msg}"))
            except ArticleError as exc:
                errors.append(LoadError(where, str(exc)))
    return docs, errors


def document_from_record(
    record: Any, *, origin: str, default_id: str = "", notes: list[LoadError] | None = None
) -> Document:
    """A Document from a MultiHop-RAG style mapping (also the shape of Markdown front matter).

    Text UTF-8 cannot encode (a lone surrogate such as JSON's `"\\ud800"`) is replaced by U+FFFD, and a
    note for `notes` says where."""
    if not isinstance(record, dict):
        raise ArticleError(f"expected an object with title and body, got {type(record).__name__}")
    bad = _count_bad(record)
    if bad and notes is not None:
        notes.append(LoadError(origin, f"repaired: {bad} invalid character{'s' if bad > 1 else ''} "
                                       "(lone surrogates) replaced with U+FFFD"))
    body = record.get("body", record.get("text", record.get("content")))
    if not isinstance(body, str) or not body.strip():
        raise ArticleError("article has no body text")
    title = str(record.get("title") or "").strip()
    url = str(record.get("url") or "").strip()
    try:
        published_at = parse_date(record.get("published_at", record.get("date")))
    except ValueError as exc:
        raise ArticleError(f"bad published_at: {exc}") from None
    tags = record.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    if not isinstance(tags, list):
        raise ArticleError("tags must be a list or a comma-separated string")
    category = record.get("category")
    if isinstance(category, str) and category and category not in tags:
        tags = [*tags, category]
    doc_id = str(record.get("id") or "").strip() or (id_from_url(url) if url else default_id)
    if not doc_id and title:
        doc_id = slugify(title, fallback="") or _hashed_id(title)
    if not doc_id:
        raise ArticleError("article has no id, url or title to identify it")
    return Document(
        id=doc_id,
        title=title or doc_id,
        body=body.strip(),
        source=str(record.get("source") or record.get("outlet") or "").strip(),
        url=url,
        published_at=published_at,
        author=str(record.get("author") or "").strip(),
        tags=tuple(str(t).strip() for t in tags if str(t).strip()),
        origin=origin,
    )


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


def _count_bad(value: Any) -> int:
    """Characters UTF-8 cannot encode in the strings of a record (keys, values, lists, nested)."""
    if isinstance(value, str):
        return bad_characters(value)
    if isinstance(value, dict):
        return sum(_count_bad(k) + _count_bad(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_count_bad(v) for v in value)
    return 0


def parse_markdown(
    text: str, *, origin: str, stem: str, default_id: str = "", notes: list[LoadError] | None = None
) -> Document:
    text = text.lstrip("\ufeff")
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        loaded = yaml.safe_load(match.group(1)) or {}
        if not isinstance(loaded, dict):
            raise ArticleError("front matter is not a mapping of keys to values")
        meta = loaded
        text = text[match.end() :]
    elif text.startswith("---"):
        raise ArticleError("front matter starts with '---' but has no closing '---'")
    body = text.strip()
    heading = _HEADING.match(body)
    if heading and (not meta.get("title") or heading.group(2).strip() == str(meta["title"]).strip()):
        meta.setdefault("title", heading.group(2))  # a leading "# Title" is the title, not body text
        body = body[heading.end() :].strip()
    body = _HEADING.sub(lambda m: m.group(2), body)
    body = _MD_LINK.sub(lambda m: m.group(1), body)
    body = _MD_EMPHASIS.sub(lambda m: m.group(2), body)
    record = {**meta, "body": body}
    record.setdefault("title", stem.replace("-", " ").replace("_", " "))
    return document_from_record(record, origin=origin, default_id=default_id or slugify(stem), notes=notes)


def parse_text(
    text: str, *, origin: str, stem: str, default_id: str = "", notes: list[LoadError] | None = None
) -> Document:
    """Plain text: the first non-empty line is the title, the rest the body."""
    lines = text.lstrip("\ufeff").strip().splitlines()
    if not lines:
        raise ArticleError("file is empty")
    title = lines[0].strip()
    body = "\n".join(lines[1:]).strip()
    if not body:
        raise ArticleError("file has a title line but no body text")
    return document_from_record({"title": title, "body": body}, origin=origin, default_id=default_id or slugify(stem),
                                notes=notes)
