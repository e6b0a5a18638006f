"""What a generation's own words tell the search: the outlets questions are matched against (with the
year of its newest article) and each word's idf. Both are cached per reader, so they are read from the
store once per index version."""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Sequence

from newsbot.index.retrieval.query import OutletLexicon
from newsbot.index.store.base import StoreReader

_lexicons: weakref.WeakKeyDictionary[StoreReader, tuple[int, OutletLexicon, int | None]] = (
    weakref.WeakKeyDictionary()
)
_lexicon_lock = threading.Lock()


def lexicon_for(reader: StoreReader) -> tuple[OutletLexicon, int | None]:
    """The outlet lexicon of a generation and the year of its newest article (cached per version)."""
    version = reader.manifest.version
    with _lexicon_lock:
        cached = _lexicons.get(reader)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
    newest = reader.latest(1)
    year = newest[0].published_at.year if newest and newest[0].published_at else None
    lexicon = OutletLexicon(reader.sources())
    with _lexicon_lock:
        _lexicons[reader] = (version, lexicon, year)
    return lexicon, year


_idf_cache: weakref.WeakKeyDictionary[StoreReader, dict[str, float]] = weakref.WeakKeyDictionary()


def term_weights(reader: StoreReader, terms: Sequence[str]) -> dict[str, float]:
    """bm25's idf of each term over the passages (cached per reader; one keyword-index count per new term)."""
    with _lexicon_lock:
        cache = _idf_cache.setdefault(reader, {})
    n = max(1, reader.manifest.chunks)
    out = {}
    for t in terms:
        value = cache.get(t)
        if value is None:
            df = reader.passage_frequency(t)
            value = math.log(1 + (n - df + 0.5) / (df + 0.5))
            if len(cache) < 200_000:
                cache[t] = value
        out[t] = value
    return out
