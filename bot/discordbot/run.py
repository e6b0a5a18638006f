"""`newsbot serve`: check the token, make sure an index exists, connect, and answer until stopped.

Without a network (or with Discord unreachable) it does what a daemon should: one log line per failed
attempt, then it tries again, waiting 1 s, 2 s, 4 s ... up to RETRY_MAX_SECONDS between attempts, for as
long as it runs (the network usually comes back; a service manager restarting a crashed process would only
loop faster). Once connected, discord.py reconnects on its own; its reconnect messages are shortened to one
line too. A rejected token is not retried: it exits with status 2 and says what to do.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from newsbot.bot.config import Settings
from newsbot.bot.console import build_first_index

log = logging.getLogger("newsbot.discord")

RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0  # at most 5 minutes between attempts to reach Discord

NO_TOKEN = """\
newsbot serve needs a Discord bot token, and DISCORD_TOKEN is not set.

  1. Open https://discord.com/developers/applications and create an application (or pick yours).
  2. Bot → Reset Token → copy it. Optional: under "Privileged Gateway Intents" enable MESSAGE CONTENT
     (follow-ups in the bot's threads then need no @mention).
  3. export DISCORD_TOKEN=<the token>   (or put DISCORD_TOKEN=<the token> in a .env file here)
  4. Invite the bot: see "Running the Discord bot" in README.md for the invite URL and permissions.
"""


def serve(settings: Settings) -> int:
    if not settings.discord_token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    from newsbot.bot.engine import Engine

    engine = Engine(settings)
    build_first_index(engine)
    _shorten_reconnect_logs()
    try:
        asyncio.run(run_bot(engine, settings))
    except KeyboardInterrupt:
        pass
    return 0


async def run_bot(engine: object, settings: Settings) -> None:
    """Connect and run until the bot is closed; retry (see the module docstring) while Discord is unreachable."""
    import discord

    attempt = 0
    delay = RETRY_FIRST_SECONDS
    while True:
        attempt += 1
        try:
            await _run_once(engine, settings)
            return
        except discord.LoginFailure:
            print("Discord rejected the token (DISCORD_TOKEN). Reset it in the developer portal.", file=sys.stderr)
            raise SystemExit(2) from None
        except discord.PrivilegedIntentsRequired:  # only a sharded bot gets here: a single connection retries
            print("Discord refused the Message Content intent: enable MESSAGE CONTENT under Bot → Privileged "
                  "Gateway Intents, or set NEWSBOT_DISCORD_MESSAGE_CONTENT=false.", file=sys.stderr)
            raise SystemExit(2) from None
        except _unreachable_errors() as exc:
            where = settings.discord_api_base or "Discord"
            log.warning("cannot reach %s (%s); retrying in %.0f s (attempt %d; waits double up to %.0f min, "
                        "retrying until connected or stopped)",
                        where, _one_line(exc), delay, attempt, RETRY_MAX_SECONDS / 60)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_SECONDS)


async def _run_once(engine: object, settings: Settings) -> None:
    """One connection: a fresh client each time (a closed discord.py client cannot start again)."""
    from newsbot.bot.discordbot.bot import configure_api_base, make_bot

    token = settings.discord_token
    if settings.discord_api_base:
        url = await configure_api_base(settings.discord_api_base, token)
        log.warning("using Discord API at %s (gateway %s)", settings.discord_api_base, url)
    bot = make_bot(engine)  # type: ignore[arg-type]
    async with bot:
        await bot.start(token)


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """What a missing network or an unreachable (or failing) Discord raises before the bot is connected:
    DNS and connection errors (OSError, aiohttp's), timeouts, Discord's 5xx answers, no gateway."""
    import aiohttp
    import discord

    return (OSError, aiohttp.ClientError, asyncio.TimeoutError, discord.GatewayNotFound, discord.DiscordServerError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


class _OneLineReconnects(logging.Filter):
    """discord.py logs each reconnect attempt of a running bot with a full traceback (`Attempting a
    reconnect in N s`): keep the message, with the error as one line instead of the traceback. Its
    "logging in using static token" (every attempt, says nothing an operator needs) is dropped, so a
    failed attempt is one line, and so are its warnings that voice is not supported."""

    PREFIXES = ("Attempting a reconnect", "Failed to connect for shard_id")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "logging in using static token" or str(record.msg).endswith("voice will NOT be supported"):
            return False  # newsbot has no voice features
        if record.exc_info and str(record.msg).startswith(self.PREFIXES):
            exc = record.exc_info[1]
            error = f"{type(exc).__name__}: {_one_line(exc)}" if exc else "unknown error"
            record.msg = f"{record.msg} ({error.replace('%', '%%')})"  # msg is %-formatted with record.args
            record.exc_info = None
            record.exc_text = None
        return True


def _shorten_reconnect_logs() -> None:
    for name in ("discord.client", "discord.shard"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLineReconnects) for f in logger.filters):
            logger.addFilter(_OneLineReconnects())
