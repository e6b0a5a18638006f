"""Outlet and date filters as numpy masks by chunk id, so that a filtered search costs in proportion to the
passages the filter selects instead of an SQL query returning every allowed id."""

from __future__ import annotations

import functools
import sqlite3

import numpy as np

from newsbot.index.hits import Filters
from newsbot.index.store.catalog import source_key


class FilterColumns:
    """Each passage's outlet (a code per source_key) and publication time, in arrays indexed by chunk id,
    so an outlet/date filter becomes a mask in numpy instead of an SQL query returning every allowed id.
    Ids of removed passages keep their values: callers drop stale ids, and pending ones have no vector."""

    def __init__(self, codes: dict[str, int], source: np.ndarray, ts: np.ndarray) -> None:
        self.codes, self.source, self.ts = codes, source, ts

    @property
    def upto(self) -> int:
        return len(self.source)

    @classmethod
    def load(cls, conn: sqlite3.Connection, previous: FilterColumns | None, upto: int) -> FilterColumns:
        start = previous.upto if previous is not None else 0
        codes = dict(previous.codes) if previous is not None else {}
        source = np.full(upto, -1, dtype=np.int32)
        ts = np.full(upto, np.nan, dtype=np.float64)
        if previous is not None:
            source[:start], ts[:start] = previous.source, previous.ts
        # one row per article: its passages' ids are consecutive (assigned together by GenerationWriter.add)
        rows = conn.execute(
            "SELECT c.doc_id, d.source_key, d.published_ts, MIN(c.id), MAX(c.id), COUNT(*) FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.id >= ? AND c.id < ? GROUP BY c.doc_id",
            (start, upto),
        ).fetchall()
        for doc_id, key, published, first, last, n in rows:
            code = codes.setdefault(key, len(codes))
            if last - first + 1 == n:
                source[first : last + 1] = code
                ts[first : last + 1] = np.nan if published is None else published
            else:  # not consecutive (never written so, but cheap to handle)
                ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ? AND id >= ? AND id < ?",
                                                  (doc_id, start, upto))]
                source[ids] = code
                ts[ids] = np.nan if published is None else published
        return cls(codes, source, ts)

    @functools.cached_property
    def _by_source(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids ordered by outlet code, start of each code's run): code c's ids are
        `ids[starts[c + 1] : starts[c + 2]]` (code -1, no article, comes first)."""
        ids = np.argsort(self.source, kind="stable")
        return ids, np.searchsorted(self.source[ids], np.arange(-1, len(self.codes) + 1))

    @functools.cached_property
    def _by_time(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(chunk ids ordered by publication time, those times, how many have one): undated ids come last."""
        ids = np.argsort(self.ts, kind="stable")
        return ids, self.ts[ids], int(np.count_nonzero(~np.isnan(self.ts)))

    def mask(self, filters: Filters) -> np.ndarray:
        """Boolean array by chunk id: the passages `filters` allow (as `Catalog.filter_sql` does in SQL).

        Costs in proportion to the passages an outlet or a date range selects (runs of ids sorted once by
        outlet and by time), not to the index size."""
        chosen: np.ndarray | None = None  # ids, None = all
        wanted = None
        if filters.sources:
            codes = sorted({self.codes[k] for k in {source_key(s) for s in filters.sources} if k in self.codes})
            wanted = np.zeros(len(self.codes) + 1, dtype=bool)  # by code; the last entry is code -1 (none)
            wanted[codes] = True
            by_source, starts = self._by_source
            chosen = np.concatenate([by_source[starts[c + 1] : starts[c + 2]] for c in codes] or [_NO_IDS])
        if filters.since or filters.until:
            by_time, times, dated = self._by_time
            lo = int(np.searchsorted(times[:dated], filters.since.timestamp(), "left")) if filters.since else 0
            hi = int(np.searchsorted(times[:dated], filters.until.timestamp(), "right")) if filters.until else dated
            if chosen is None or (wanted is not None and hi - lo < len(chosen)):
                in_range = by_time[lo:max(lo, hi)]
                chosen = in_range if wanted is None else in_range[wanted[self.source[in_range]]]
            else:
                ts = self.ts[chosen]
                with np.errstate(invalid="ignore"):
                    keep = ~np.isnan(ts)
                    if filters.since:
                        keep &= ts >= filters.since.timestamp()
                    if filters.until:
                        keep &= ts <= filters.until.timestamp()
                chosen = chosen[keep]
        if chosen is None:
            return np.ones(self.upto, dtype=bool)
        mask = np.zeros(self.upto, dtype=bool)
        mask[chosen] = True
        return mask


_NO_IDS = np.empty(0, dtype=np.int64)
