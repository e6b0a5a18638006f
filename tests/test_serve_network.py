"""`newsbot serve` without a network, or with Discord unreachable: one line per failed attempt (no
traceback), retried with doubling waits, and connected as soon as Discord answers again."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.discord_standin import DiscordStandIn
from tests.helpers import REPO

RETRY_LINE = re.compile(r"WARNING newsbot\.discord: cannot reach (\S+) \((.+)\); retrying in (\d+) s \(attempt (\d+);")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_env(index_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NEWSBOT_DISCORD_API_BASE", "NEWSBOT_CONFIG")}
    return {**env, "DISCORD_TOKEN": "standin-token", "NEWSBOT_INDEX_DIR": str(index_dir), **extra}


def _retry_lines(stderr: str) -> list[re.Match[str]]:
    return [m for m in map(RETRY_LINE.search, stderr.splitlines()) if m]


def test_unreachable_discord_is_one_line_per_attempt_then_it_connects(corpus_copy: Path) -> None:
    """Discord (the stand-in) is not listening yet: each failed attempt is one warning line, the waits
    double (1, 2, ... s), and once the stand-in comes up on that address the bot connects and answers."""
    port = _free_port()
    api_base = f"http://127.0.0.1:{port}/api/v10"

    async def scenario() -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "newsbot.bot.cli", "serve", cwd=str(REPO),
            env=_serve_env(corpus_copy, NEWSBOT_DISCORD_API_BASE=api_base),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        lines: list[str] = []
        standin = DiscordStandIn()
        try:
            while len(_retry_lines("\n".join(lines))) < 2:  # two failed attempts, then Discord comes back
                line = await asyncio.wait_for(proc.stderr.readline(), 60)
                assert line, "serve exited:\n" + "\n".join(lines)
                lines.append(line.decode())
            await standin.start(port)
            await standin.wait_for(lambda: standin.identify_count >= 1, timeout=30)
            await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")
            dm = standin.dm_channel_id(standin.user_id)

            def answered() -> bool:
                return any(int(m["author"]["id"]) == standin.bot_user_id for m in standin.messages_in(dm))

            await standin.wait_for(answered, timeout=60)
        finally:
            proc.terminate()
            rest = (await proc.communicate())[1].decode()
            await standin.stop()
        return "".join(lines) + rest

    stderr = asyncio.run(scenario())
    retries = _retry_lines(stderr)
    assert [int(m.group(4)) for m in retries[:2]] == [1, 2], stderr
    assert [int(m.group(3)) for m in retries[:2]] == [1, 2], stderr  # the wait doubles
    assert all(m.group(1) == api_base and "Connect call failed" in m.group(2) for m in retries), stderr
    assert "Traceback" not in stderr and "logging in using static token" not in stderr, stderr
    assert "standin-token" not in stderr, "the token must never be logged"


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1) for a process without a network")
def test_no_network_at_all_is_one_line_per_attempt(corpus_copy: Path) -> None:
    """No network at all (a fresh network namespace: no DNS, no route) and Discord's real address: the
    name cannot be resolved; every attempt is exactly one line and the process keeps running."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.decode().strip()}")
    proc = subprocess.Popen(["unshare", "-n", sys.executable, "-m", "newsbot.bot.cli", "serve"], cwd=REPO,
                            env=_serve_env(corpus_copy), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    deadline = time.monotonic() + 60
    lines: list[str] = []
    assert proc.stderr is not None
    try:
        while len(_retry_lines("".join(lines))) < 3 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
        assert proc.poll() is None, "serve gave up:\n" + "".join(lines)
    finally:
        proc.terminate()
        lines.append(proc.communicate()[1])
    stderr = "".join(lines)
    retries = _retry_lines(stderr)
    assert len(retries) >= 3 and all(m.group(1) == "Discord" for m in retries), stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= len(retries) + 1, stderr
