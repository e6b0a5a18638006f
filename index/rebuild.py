"""What a full rebuild keeps besides the files it is given, and what it drops and why.

A rebuild indexes the files of its paths. Every other article of the live index is, by where it came
from (`index.store.articles` keeps that record):

* an **added file** (`newsbot add PATH`): kept, re-read from its file when the file still exists (an
  article the file no longer holds is dropped, and said so), else from its stored text;
* a **fetched article** (a web page or a feed entry): kept, with its text from the live index, or from
  the article store when the live index cannot be read;
* an article of the **previous build** that the new paths do not hold: dropped — the paths of a build
  say what it indexes — with the reason (its file is gone, or it is not under these paths).

`--drop-added` / `--drop-fetched` (`keep_added` / `keep_fetched` False) drop the first two kinds. When
the live index is damaged, only the article store knows the added and fetched articles; the previous
build's articles come back from the build's paths.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsbot.index.documents import Document
from newsbot.index.ingest.loaders import file_id, load_paths
from newsbot.index.store.articles import FILE, WEB, ArticleStore, KeptArticle, is_web, source_file
from newsbot.index.store.base import StoreBackend

# What `RebuildPlan.kept` and `.dropped` are keyed by; `describe` turns them into lines for people.
REREAD, GONE, UNREADABLE, FETCHED, FETCHED_STORED = "reread", "gone", "unreadable", "fetched", "fetched-stored"
DROP_ADDED, DROP_FETCHED, NOT_IN_FILE, FILE_GONE, NOT_IN_PATHS = (
    "drop-added", "drop-fetched", "not-in-file", "file-gone", "not-in-paths")


@dataclass
class RebuildPlan:
    docs: list[Document] = field(default_factory=list)  # carried into the build, after its own files
    kept: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # key -> article ids
    dropped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # reason key -> ids
    notes: list[str] = field(default_factory=list)
    live_unreadable: bool = False  # there is a live index, but it could not be read (damaged)
    forget: list[str] = field(default_factory=list)  # article-store ids to forget once the build is live


def plan_rebuild(
    backend: StoreBackend, docs: Sequence[Document], articles: ArticleStore | None, *,
    keep_fetched: bool, keep_added: bool,
) -> RebuildPlan:
    """Decide what a rebuild of `docs` carries over (call holding the write lock)."""
    plan = RebuildPlan()
    build_ids = {d.id for d in docs}
    live = backend.article_origins()
    plan.live_unreadable = live is None and backend.current_generation() is not None
    kinds = articles.kinds() if articles is not None else {}
    if live is not None:  # the live index is the truth; a copy it lacks was removed or never committed
        plan.forget += [i for i in kinds if i not in live]
        kinds = {i: k for i, k in kinds.items() if i in live}
    kinds = {i: k for i, k in kinds.items() if i not in build_ids}
    # Texts are read for added files (to re-read or keep), and for fetched articles only when the live
    # index cannot give them.
    files = [a for a in (articles.articles(FILE) if articles is not None else []) if a.doc.id in kinds]
    stored_webs = [i for i, k in kinds.items() if k == WEB]
    if keep_added:
        plan.docs += _reread(files, build_ids, plan)
    else:
        plan.dropped[DROP_ADDED] += [a.doc.id for a in files]
        plan.forget += [a.doc.id for a in files]

    web_ids = [i for i, origin in (live or {}).items() if is_web(origin) and i not in build_ids]
    if not keep_fetched:
        plan.dropped[DROP_FETCHED] += sorted(set(web_ids) | set(stored_webs))
        plan.forget += stored_webs
    elif live is not None:
        carried = backend.stored_documents(web_ids)
        plan.docs += carried
        plan.kept[FETCHED] += [d.id for d in carried]
    elif articles is not None:
        webs = [a.doc for a in articles.articles(WEB) if a.doc.id in kinds]
        plan.docs += webs
        plan.kept[FETCHED_STORED] += [d.id for d in webs]

    if live is not None:  # what is left is the previous build's: the new paths decide
        claimed = build_ids | {a.doc.id for a in files} | set(web_ids)
        for doc_id, origin in sorted(live.items()):
            if doc_id in claimed or is_web(origin):
                continue
            path = source_file(origin)
            plan.dropped[FILE_GONE if path is None or not path.exists() else NOT_IN_PATHS].append(doc_id)
    if plan.live_unreadable:
        plan.notes.append("the current index could not be read: added and fetched articles come from the "
                          f"article store ({len(kinds)} kept there)")
    return plan


def _reread(files: Sequence[KeptArticle], build_ids: set[str], plan: RebuildPlan) -> list[Document]:
    """The added files' articles, re-read from their files when they still exist, else as stored."""
    by_path: dict[str, list[KeptArticle]] = defaultdict(list)
    for article in files:
        by_path[article.path].append(article)
    out: list[Document] = []
    for path_text, group in by_path.items():
        path = Path(path_text) if path_text else None
        if path is None or not path.is_file():
            out += [a.doc for a in group]
            plan.kept[GONE] += [a.doc.id for a in group]
            continue
        loaded = load_paths([path])
        plan.notes += [str(n) for n in loaded.notes]
        fresh = loaded.documents
        if len(fresh) == 1 and len(group) == 1 and fresh[0].id == file_id(path):
            fresh = [fresh[0].with_(id=group[0].doc.id)]  # the id it was added under (it may have a hash)
        fresh = [d for d in fresh if d.id not in build_ids]
        fresh_ids = {d.id for d in fresh}
        missing = [a for a in group if a.doc.id not in fresh_ids]
        if loaded.errors or loaded.skipped:  # cannot tell what the file holds now: keep what was stored
            reason = "; ".join(e.reason for e in loaded.errors) or "not an article file any more"
            plan.notes.append(f"{path}: could not be re-read ({reason}); its articles are kept as stored")
            out += [a.doc for a in missing]
            plan.kept[UNREADABLE] += [a.doc.id for a in missing]
        else:
            plan.dropped[NOT_IN_FILE] += [a.doc.id for a in missing]
            plan.forget += [a.doc.id for a in missing]
        out += fresh
        plan.kept[REREAD] += sorted(fresh_ids)
    return out


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _ids(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(sorted(ids)[:limit])
    return shown + (f", … ({len(ids) - limit} more)" if len(ids) > limit else "")


def describe(kept: dict[str, list[str]], dropped: dict[str, list[str]]) -> list[str]:
    """One line per kind of kept and dropped article: `kept 2 added files (re-read from disk): a, b`."""
    labels = {
        REREAD: lambda n: f"kept {_n(n, 'added file', 'added files')} (re-read from disk)",
        GONE: lambda n: f"kept {_n(n, 'added file', 'added files')} (file gone: from its stored text)",
        UNREADABLE: lambda n: f"kept {_n(n, 'added file', 'added files')} (file unreadable: from its stored text)",
        FETCHED: lambda n: f"kept {_n(n, 'fetched article', 'fetched articles')} (web pages and feed entries)",
        FETCHED_STORED: lambda n: f"kept {_n(n, 'fetched article', 'fetched articles')} (from the article "
                                  "store: the current index could not be read)",
    }
    reasons = {
        DROP_ADDED: lambda n: f"dropped {_n(n, 'added file', 'added files')} (--drop-added)",
        DROP_FETCHED: lambda n: f"dropped {_n(n, 'fetched article', 'fetched articles')} (--drop-fetched)",
        NOT_IN_FILE: lambda n: f"dropped {_n(n, 'added article', 'added articles')} no longer in its file "
                               "(the file was re-read)",
        FILE_GONE: lambda n: f"dropped {_n(n, 'article', 'articles')} of the previous build whose file is gone",
        NOT_IN_PATHS: lambda n: f"dropped {_n(n, 'article', 'articles')} of the previous build that are not in "
                                "this build's paths (`newsbot add` them to keep them across rebuilds)",
    }
    lines = [f"{label(len(kept[k]))}: {_ids(kept[k])}" for k, label in labels.items() if kept.get(k)]
    lines += [f"{reason(len(dropped[k]))}: {_ids(dropped[k])}" for k, reason in reasons.items() if dropped.get(k)]
    return lines


def kept_summary(kept: dict[str, list[str]]) -> str:
    """`kept 3 added files, 6 fetched articles` ('' when nothing was kept)."""
    added = sum(len(kept.get(k, ())) for k in (REREAD, GONE, UNREADABLE))
    fetched = sum(len(kept.get(k, ())) for k in (FETCHED, FETCHED_STORED))
    parts = [_n(added, "added file", "added files")] if added else []
    parts += [_n(fetched, "fetched article", "fetched articles")] if fetched else []
    return "kept " + ", ".join(parts) if parts else ""
