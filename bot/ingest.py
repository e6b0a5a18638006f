"""New articles from the web by URL: pages fetched and turned into `Document`s for the index.

The network work happens here, outside the index's write lock (a slow site never blocks other
writers); `Engine` hands the documents to `index.build.update_index`, which commits them atomically.
Feeds (which fetch their entries' pages with these limits) are `bot.feed_updates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from newsbot.bot.config import Settings
from newsbot.index.build import Progress, no_progress
from newsbot.index.documents import Document
from newsbot.index.ingest.fetch import FetchError, FetchPolicy, fetch
from newsbot.index.ingest.html import document_from_html
from newsbot.index.ingest.loaders import LoadError, article_too_big

PAGE_WORKERS = 4  # article pages fetched at once (each is bounded by fetch_timeout)


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The fetch limits the settings ask for (timeouts, size cap, redirects, private addresses)."""
    networks = tuple(n.strip() for n in settings.fetch_allowed_networks.split(",") if n.strip())
    return FetchPolicy(
        timeout=settings.fetch_timeout,
        max_bytes=settings.fetch_max_bytes,
        max_redirects=settings.fetch_max_redirects,
        allow_private=settings.allow_private_urls,
        allowed_networks=networks,
        max_article_bytes=settings.max_article_bytes,
    )


def is_url(text: str) -> bool:
    """Whether a source argument is meant as a URL (anything with a scheme, so `ftp://` gets refused)."""
    head, sep, _ = str(text).partition("://")
    return bool(sep) and head.isalpha()


def split_sources(sources: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """(file and folder paths, URLs) from a mixed list of sources, each in its original order."""
    paths = [str(s) for s in sources if not is_url(str(s))]
    urls = [str(s) for s in sources if is_url(str(s))]
    return paths, urls


def fetch_page(url: str, policy: FetchPolicy) -> Document:
    """Fetch an article page and extract it; raises FetchError (network, limits) or ValueError (no text).

    The document's URL and id come from the final URL after redirects, so aliases of one page are one
    article.
    """
    result = fetch(url, policy)
    doc = document_from_html(result.body, url=result.url, origin=result.url, encoding=result.charset)
    too_big = article_too_big(doc, policy.max_article_bytes)
    if too_big:
        raise ValueError(too_big)
    return doc


def fetch_pages(
    urls: Sequence[str], policy: FetchPolicy, progress: Progress | None = None, workers: int = PAGE_WORKERS
) -> tuple[list[Document], list[LoadError]]:
    """Fetch article pages concurrently; each failure is reported by URL and the rest goes on."""
    progress = progress or no_progress
    if not urls:
        return [], []
    docs: list[Document] = []
    errors: list[LoadError] = []
    progress("fetching", 0, len(urls))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(urls)))) as pool:
        outcomes = pool.map(lambda u: _try_page(u, policy), urls)
        for i, (url, outcome) in enumerate(zip(urls, outcomes, strict=True), 1):
            if isinstance(outcome, Document):
                docs.append(outcome)
            else:
                errors.append(LoadError(url, outcome))
            progress("fetching", i, len(urls))
    return docs, errors


def _try_page(url: str, policy: FetchPolicy) -> Document | str:
    """The page's document, or the reason it failed."""
    try:
        return fetch_page(url, policy)
    except FetchError as exc:
        return str(exc)
    except ValueError as exc:  # no usable main text
        return str(exc)
