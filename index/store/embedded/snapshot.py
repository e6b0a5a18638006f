"""FAISS snapshot files, and the vectors of passages added (`pending_vectors`) or removed
(`stale_vectors`) since a generation's snapshot was written."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import faiss
import numpy as np

from newsbot.index.store.base import REBUILD_HINT, IndexCorrupt
from newsbot.index.store.embedded import vector_index
from newsbot.index.store.embedded.layout import fsync_file


def new_faiss_index(dim: int) -> faiss.Index:
    """Exact inner-product search over unit vectors (= cosine), addressed by chunk id (pending vectors;
    a snapshot gets the type its size calls for, see `vector_index.py`)."""
    return vector_index.new_flat(dim)


def write_faiss(index: faiss.Index, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    fsync_file(tmp)
    os.replace(tmp, path)


def read_faiss(path: Path) -> faiss.Index:
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorrupt(f"vector file {path} is unreadable ({_first_line(exc)}). {REBUILD_HINT}") from None


def read_pending(conn: sqlite3.Connection, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, vectors of shape (n, dim)) of `pending_vectors`, in id order."""
    rows = conn.execute("SELECT chunk_id, vec FROM pending_vectors ORDER BY chunk_id").fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return ids, vectors


def read_stale(conn: sqlite3.Connection) -> np.ndarray:
    """Sorted ids of snapshot vectors whose passages were removed since the snapshot."""
    rows = conn.execute("SELECT chunk_id FROM stale_vectors ORDER BY chunk_id").fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
