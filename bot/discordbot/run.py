"""`newsbot serve`: check the token, make sure an index exists, connect, and answer until stopped."""

from __future__ import annotations

import asyncio
import logging
import sys

from newsbot.bot.config import Settings
from newsbot.bot.console import build_first_index

log = logging.getLogger("newsbot.discord")

NO_TOKEN = """\
newsbot serve needs a Discord bot token, and DISCORD_TOKEN is not set.

  1. Open https://discord.com/developers/applications and create an application (or pick yours).
  2. Bot → Reset Token → copy it. Under "Privileged Gateway Intents" enable MESSAGE CONTENT (optional: without
     it thread follow-ups need an @mention; mentions, DMs and slash commands work either way).
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
    try:
        asyncio.run(run_bot(engine, settings))
    except KeyboardInterrupt:
        pass
    return 0


async def run_bot(engine: object, settings: Settings) -> None:
    import discord

    from newsbot.bot.discordbot.bot import configure_api_base, make_bot

    token = settings.discord_token
    if settings.discord_api_base:
        url = await configure_api_base(settings.discord_api_base, token)
        log.warning("using Discord API at %s (gateway %s)", settings.discord_api_base, url)
    bot = make_bot(engine)  # type: ignore[arg-type]
    try:
        async with bot:
            await bot.start(token)
    except discord.LoginFailure:
        print("Discord rejected the token (DISCORD_TOKEN). Reset it in the developer portal.", file=sys.stderr)
        raise SystemExit(2) from None
    except discord.PrivilegedIntentsRequired:  # only a sharded bot gets here: a single connection retries
        print("Discord refused the Message Content intent: enable MESSAGE CONTENT under Bot → Privileged Gateway "
              "Intents, or set NEWSBOT_DISCORD_MESSAGE_CONTENT=false.", file=sys.stderr)
        raise SystemExit(2) from None
