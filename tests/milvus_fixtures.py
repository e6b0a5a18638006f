"""Milvus Lite's gRPC server on 127.0.0.1 for tests: the shared Milvus of several processes.

Milvus Lite's file mode allows one process per data folder, so tests of several processes (replicas)
run `python -m milvus_lite server` and connect to its URL.

    from tests.milvus_fixtures import milvus_lite_server
    with milvus_lite_server(tmp_path / "milvus") as uri:   # "http://127.0.0.1:PORT"
        ...

or the `milvus_server` fixture (this module is registered in tests/conftest.py): one server per test.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path, timeout: float = 60) -> Iterator[str]:
    """Start the server on a free loopback port, yield its URL once it accepts connections, stop it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir), "--host", "127.0.0.1",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "milvus-lite server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[str]:
    """The URL of a Milvus Lite server of this test's own."""
    with milvus_lite_server(tmp_path / "milvus") as uri:
        yield uri
