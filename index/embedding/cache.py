"""Vectors already computed, keyed by (model, sha256 of the passage), so rebuilds embed only what changed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


class VectorCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL,"
            " vec BLOB NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID"
        )

    def get_many(self, model: str, hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                rows = self.conn.execute(
                    f"SELECT hash, vec FROM vectors WHERE model = ? AND dim = ? AND hash IN ({','.join('?' * len(part))})",
                    [model, dim, *part],
                ).fetchall()
                for h, blob in rows:
                    found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT OR REPLACE INTO vectors (model, hash, dim, vec) VALUES (?, ?, ?, ?)",
                [(model, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )
            self.conn.execute("COMMIT")

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
            return self.conn.execute("SELECT count(*) FROM vectors WHERE model = ?", (model,)).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


LENGTH_SLICE = 256  # texts measured by `lengths` at once in embed_with_cache


def embed_with_cache(
    texts: Sequence[str],
    hashes: Sequence[str],
    *,
    model: str,
    dim: int,
    encode: Callable[[Sequence[str]], np.ndarray],
    cache: VectorCache,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
    lengths: Callable[[Sequence[str]], Sequence[int]] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts` (shape (n, dim)), embedding only those not cached; returns (vectors, n_embedded).

    The uncached texts (each distinct hash once) go to `encode` in slices of `batch_size`, longest first:
    a model pads every text of a batch to the batch's longest, so slices of similar lengths compute
    fewer padding tokens than slices in document order (5-8 % of the work on news passages).
    `lengths(texts)` gives the length a text costs the model (e.g. its word-piece count); default: its
    number of characters. Every slice's vectors are cached as soon as it is embedded (an interrupted
    build keeps them), and `on_batch(k)` is called after each slice of k newly embedded texts (progress
    bars). Rows of the result follow `texts`, whatever order they were embedded in.

    Memory does not grow with the number of texts beyond their vectors (1.5 KB each for 384 dimensions):
    `lengths` sees `LENGTH_SLICE` texts at a time (a tokenizer's output for all passages of a 5 MB article
    took ≈ 190 MB) and `encode` `batch_size`.
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    cached = cache.get_many(model, hashes, dim)
    todo: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        if h in cached:
            out[i] = cached[h]
        else:
            todo.setdefault(h, []).append(i)
    pending = list(todo.items())
    if len(pending) > batch_size:
        firsts = [texts[rows[0]] for _, rows in pending]
        size: list[int] = []
        for start in range(0, len(firsts), LENGTH_SLICE):  # only the counts are kept: memory stays bounded
            part = firsts[start : start + LENGTH_SLICE]
            size += list(lengths(part)) if lengths is not None else [len(t) for t in part]
        order = sorted(range(len(pending)), key=lambda j: -size[j])  # stable: equal lengths keep their order
        pending = [pending[j] for j in order]
    for start in range(0, len(pending), batch_size):
        part = pending[start : start + batch_size]
        vectors = encode([texts[rows[0]] for _, rows in part])
        for (_, rows), vec in zip(part, vectors, strict=True):
            out[rows] = vec
        cache.put_many(model, [(h, vec) for (h, _), vec in zip(part, vectors, strict=True)])
        if on_batch:
            on_batch(len(part))
    return out, len(pending)
