"""Grouping articles into stories: plain functions over numpy arrays (no store, no model).

Two articles are about the same story when their vectors are very close, or close and they share a
name (a capitalised word of their ledes that few articles of the period use), and they were published
within `window_days` of each other. Groups grow by average link: a group joins another only while the
mean cosine over every pair across the two stays at or above `min_cosine`, so one article about two
events cannot chain two stories into one. (Exact copies and near-duplicates never get here as two
articles: the index merged them when they were added, recording the copy's outlet in
`Document.also_reported_by`.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class ClusterOptions:
    """When two articles are one story (calibrated on MultiHop-RAG's evidence groups: benchmarks/digest.py)."""

    strong_cosine: float = 0.7  # this close, the vectors alone say it is one story
    min_cosine: float = 0.45  # with a shared name this close is enough; also the average-link floor
    window_days: float = 3.0  # articles further apart in publication time are not linked directly
    name_share: float = 0.25  # a name used by more than this share of the period's articles links nothing
    name_min_count: int = 3  # ... unless it is used by at most this many (small periods)


# Capitalised words that are not names of anything a story is about (sentence openers, dates, titles).
_NOT_NAMES = frozenset(
    """a an the this that these those it its he she they we i you his her their our my in on at for of to
    and but or as by with from after before when while if what who why how where which there here
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july
    august september october november december jan feb mar apr jun jul aug sep sept oct nov dec
    mr mrs ms dr ceo cfo cto inc ltd llc co corp plc sr jr us u.s said says according however also
    read more image photo getty images ap reuters""".split()
)
_WORD = re.compile(r"[A-Za-z][\w'’&.-]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?…:]\s+|\n\s*)$")


def article_names(text: str) -> frozenset[str]:
    """The names in `text` (a lede): lower-cased words written with a capital (or an inner capital or
    digit: "iPhone", "GPT-4") that do not open a sentence and are not on the stop list ("Monday", "CEO")."""
    names: set[str] = set()
    for m in _WORD.finditer(text):
        word = m.group(0).rstrip(".-'’").removesuffix("'s").removesuffix("’s")
        if len(word) < 2:
            continue
        lower = word.lower()
        shaped = word[0].isupper() or any(ch.isupper() for ch in word[1:]) or any(ch.isdigit() for ch in word)
        if not shaped or lower in _NOT_NAMES:
            continue
        if word[0].isupper() and _SENTENCE_START.search(text[max(0, m.start() - 3):m.start()]):
            continue  # a sentence's first word is capitalised whatever it is
        names.add(lower)
    return frozenset(names)


def cluster_articles(
    vectors: np.ndarray, times: np.ndarray, names: Sequence[frozenset[str]], opts: ClusterOptions = ClusterOptions()
) -> np.ndarray:
    """Story labels of n articles.

    vectors: (n, dim) float32, one unit vector per article (e.g. its first passage's); a zero row (no
    vector) links by nothing. times: (n,) float64 publication times in seconds since the epoch, NaN for
    undated (undated articles are linked by content alone). names: n sets of names (`article_names`).
    Returns (n,) int64 labels 0..k-1, numbered in order of each story's first article (input order).
    Cost: O(n²·dim) for the similarities (n ≤ a few thousand)."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    vecs = np.asarray(vectors, dtype=np.float32)
    sims = vecs @ vecs.T  # (n, n) cosines
    t = np.asarray(times, dtype=np.float64)
    gap = np.abs(t[:, None] - t[None, :])  # (n, n) seconds; NaN where either is undated
    near_in_time = ~(gap > opts.window_days * DAY_SECONDS)  # NaN compares False: undated pairs pass
    shared = _shared_rare_names(names, opts)
    strong = sims >= opts.strong_cosine
    named = (sims >= opts.min_cosine) & shared
    linked = np.triu((strong | named) & near_in_time, k=1)
    rows, cols = np.nonzero(linked)
    order = np.argsort(-sims[rows, cols], kind="stable")  # closest pairs first

    parent = np.arange(n)
    sums = vecs.astype(np.float64).copy()  # per root: the sum of its members' vectors
    sizes = np.ones(n, dtype=np.int64)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for k in order:
        a, b = root(int(rows[k])), root(int(cols[k]))
        if a == b:
            continue
        mean_cos = float(sums[a] @ sums[b]) / float(sizes[a] * sizes[b])  # mean cosine over all cross pairs
        if mean_cos < opts.min_cosine:
            continue
        if sizes[a] < sizes[b]:
            a, b = b, a
        parent[b] = a
        sums[a] += sums[b]
        sizes[a] += sizes[b]
    roots = np.array([root(i) for i in range(n)])
    _, first, labels = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")  # label by first appearance
    return rank[labels].astype(np.int64)


def _shared_rare_names(names: Sequence[frozenset[str]], opts: ClusterOptions) -> np.ndarray:
    """(n, n) bool: the two articles share a name that at most max(name_min_count, name_share·n) articles
    use (a name in every article of the week, such as the outlet's country, tells nothing)."""
    n = len(names)
    counts: dict[str, int] = {}
    for found in names:
        for name in found:
            counts[name] = counts.get(name, 0) + 1
    limit = max(opts.name_min_count, int(opts.name_share * n))
    vocab = {name: j for j, name in enumerate(sorted(nm for nm, c in counts.items() if 2 <= c <= limit))}
    if not vocab:
        return np.zeros((n, n), dtype=bool)
    m = np.zeros((n, len(vocab)), dtype=np.float32)
    for i, found in enumerate(names):
        for name in found:
            j = vocab.get(name)
            if j is not None:
                m[i, j] = 1.0
    return (m @ m.T) > 0
