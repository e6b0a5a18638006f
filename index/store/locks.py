"""The one file lock: an exclusive flock that serializes processes on one machine.

Used for the embedded store's `write.lock` (builds and updates), the Milvus store's build lock when its
database is an SQLite file, and the bot's `feeds.lock` (one feed update per index at a time). The kernel
drops an flock when its holder dies, so a killed process never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (its folder and the file are made if missing) for the block.

    If another process holds it, `on_wait()` is called once (to say so, or to raise instead of waiting),
    then this waits for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
