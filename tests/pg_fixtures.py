"""pytest fixtures for a throwaway PostgreSQL server on 127.0.0.1 (no Docker, no system service).

`postgres_server` (session) runs `initdb` into a temporary folder and starts `postgres` with `pg_ctl`
on a free loopback port, with durability switched off for speed (about 1.5 s on 2 cores); it is stopped
and deleted at the end of the session. `postgres_url` (per test) creates a fresh database on it and
drops it afterwards. Tests that use them are skipped, with the reason, when the server binaries
(Debian: `apt-get install postgresql`) or psycopg (`pip install 'newsbot[postgres]'`) are missing.

Set `NEWSBOT_TEST_POSTGRES_URL=postgresql://user@host:port/db` to use an existing server instead (the
user must be allowed to CREATE DATABASE).

As root (CI), the server runs as the `postgres` user that Debian's package creates: PostgreSQL refuses
to run as root.

This module is registered in tests/conftest.py (`pytest_plugins`): a test just names the fixture, and
is marked `postgres` (`@pytest.mark.postgres`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def _pg_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (PATH first, then Debian's versioned folders)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob(_BIN_GLOB), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for folder in reversed(candidates):
        if os.path.exists(os.path.join(folder, "initdb")) and os.path.exists(os.path.join(folder, "pg_ctl")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str], owner: str | None) -> list[str]:
    if owner is None:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", owner, "--", *cmd]
    return ["su", owner, "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]


class PostgresServer:
    """A running throwaway cluster: `url(dbname)`, `create_database()`, `drop_database(name)`."""

    def __init__(self, base_url: str, admin_db: str = "postgres") -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_db = admin_db

    def url(self, dbname: str) -> str:
        return f"{self.base_url}/{dbname}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url(self.admin_db), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'newsbot[postgres]')")
    existing = os.environ.get("NEWSBOT_TEST_POSTGRES_URL", "")
    if existing:
        base, _, db = existing.rstrip("/").rpartition("/")
        yield PostgresServer(base, db or "postgres")
        return
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    owner = None
    if os.geteuid() == 0:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        owner = "postgres"
    tmp = Path(tempfile.mkdtemp(prefix="newsbot-pg-"))
    if owner:
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    data, log = tmp / "data", tmp / "server.log"
    port = _free_port()
    initdb = _as_server_user(
        [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "newsbot", "-E", "UTF8", "--no-locale",
         "--no-sync"], owner,
    )
    result = subprocess.run(initdb, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"initdb failed: {result.stderr or result.stdout}")
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=50 -c shared_buffers=32MB"
    )
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    start = _as_server_user([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"], owner)
    result = subprocess.run(start, capture_output=True, text=True, timeout=90)
    if result.returncode != 0:
        text = log.read_text(errors="replace") if log.exists() else result.stderr
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {text[-2000:]}")
    try:
        yield PostgresServer(f"postgresql://newsbot@127.0.0.1:{port}")
    finally:
        subprocess.run(_as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"], owner),
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the throwaway server, dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
