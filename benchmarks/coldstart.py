#!/usr/bin/env python3
"""Cold start of newsbot: a fresh `newsbot ask` process, and `newsbot serve` until it answers.

    python benchmarks/coldstart.py [--runs N] [--bot-runs N] [--backend onnx|torch|onnx-int8]

1. Builds an index of the bundled corpus (docs_corpus/) in a temporary folder with `newsbot build`
   (not timed), then runs `newsbot ask QUESTION` once untimed (it exports the ONNX model on a machine
   that has never done so, and warms the OS file cache: the state of any machine that has run newsbot).
2. ask_cold_s: median wall time of `--runs` further `newsbot ask QUESTION` processes, each a fresh Python
   process (interpreter start, imports, model and index load, retrieval, answer, exit).
3. bot_ready_s: median over `--bot-runs` of the wall time from spawning `newsbot serve`, pointed at the
   local Discord stand-in (tests/discord_standin.py, via NEWSBOT_DISCORD_API_BASE), until the stand-in
   has received the bot's answer to a DM question sent the moment the bot finished the gateway
   handshake (IDENTIFY). It therefore includes connecting, syncing slash commands, loading the model and
   index, and answering one question: the time until a user who writes at start-up gets an answer.

Prints ONE JSON line on stdout: {"ask_cold_s": …, "bot_ready_s": …} plus
  ask_runs_s, bot_runs_s        every timed run, seconds
  bot_gateway_s                 median time until IDENTIFY (connected; the DM is sent then)
  first_ask_s                   the untimed first ask (includes a one-time ONNX export if there was one)
  backend, question, load_avg   embedding backend, the question, 1-minute load average before/after
Progress goes to stderr. The machine's other load shows in load_avg: figures are medians because it is noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
import newsbot.index  # noqa: E402,F401 - before anything loads onnxruntime: its telemetry off (index/__init__.py)

QUESTION = "Why is Xiaomi dropping Leica?"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def newsbot_cmd() -> list[str]:
    """The `newsbot` console script users run (beside this interpreter), else `python -m bot.cli`."""
    script = Path(sys.executable).parent / "newsbot"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("newsbot")
    return [found] if found else [sys.executable, "-m", "newsbot.bot.cli"]


def run_timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


async def bot_ready_once(env: dict[str, str], question: str, timeout: float = 120.0) -> tuple[float, float]:
    """(seconds until IDENTIFY, seconds until the answer to a DM sent then) for one `newsbot serve`."""
    from discord_standin import DiscordStandIn

    standin = DiscordStandIn()
    await standin.start()
    proc = None
    try:
        env = {**env, "DISCORD_TOKEN": standin.token, "NEWSBOT_DISCORD_API_BASE": standin.api_base,
               "NEWSBOT_DISCORD_GUILD_ID": str(standin.guild_id)}
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *newsbot_cmd(), "serve", cwd=str(REPO), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        await standin.wait_for(lambda: standin.identify_count >= 1, timeout=timeout)
        gateway = time.perf_counter() - started
        await standin.send_dm(standin.user_id, question)
        dm = standin.dm_channel_id(standin.user_id)

        def answered() -> bool:
            return any(int(m["author"]["id"]) == standin.bot_user_id for m in standin.messages_in(dm))

        await standin.wait_for(answered, timeout=timeout)
        return gateway, time.perf_counter() - started
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            _, stderr = await proc.communicate()
            if proc.returncode not in (0, -15):
                log(stderr.decode(errors="replace")[-2000:])
        await standin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed `newsbot ask` runs (default 5)")
    parser.add_argument("--bot-runs", type=int, default=3, help="timed `newsbot serve` runs (default 3)")
    parser.add_argument("--backend", help="embedding backend (default: the setting, i.e. onnx)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--index-dir", help="use this built index instead of building one in a temp folder")
    args = parser.parse_args(argv)
    from newsbot.bot.config import load_settings

    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "NEWSBOT_DISCORD_TOKEN")}
    if args.backend:
        env["NEWSBOT_EMBEDDING_BACKEND"] = args.backend
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="newsbot-coldstart-") as tmp:
        index_dir = args.index_dir or str(Path(tmp) / "index")
        env["NEWSBOT_INDEX_DIR"] = index_dir
        cmd = newsbot_cmd()
        if not args.index_dir:
            log(f"building the docs_corpus index in {index_dir} (not timed) ...")
            run_timed([*cmd, "build", str(REPO / "docs_corpus")], env)
        first = run_timed([*cmd, "ask", args.question], env)
        log(f"first ask (untimed): {first:.2f} s")
        asks = []
        for i in range(args.runs):
            asks.append(run_timed([*cmd, "ask", args.question], env))
            log(f"ask run {i + 1}: {asks[-1]:.2f} s")
        gateways, bots = [], []
        for i in range(args.bot_runs):
            gateway, ready = asyncio.run(bot_ready_once(env, args.question))
            gateways.append(gateway)
            bots.append(ready)
            log(f"serve run {i + 1}: gateway {gateway:.2f} s, answered {ready:.2f} s")
    out = {
        "ask_cold_s": round(statistics.median(asks), 3) if asks else None,
        "bot_ready_s": round(statistics.median(bots), 3) if bots else None,
        "ask_runs_s": [round(x, 3) for x in asks],
        "bot_runs_s": [round(x, 3) for x in bots],
        "bot_gateway_s": round(statistics.median(gateways), 3) if gateways else None,
        "first_ask_s": round(first, 3),
        "backend": load_settings(env=env).embedding_backend,
        "question": args.question,
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
