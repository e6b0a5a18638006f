"""What the bot and its cogs share: error ids and the apology that carries one, how much of a
conversation a follow-up sees, and how a failed slash command is reported. Cogs import this, never
`bot.py` or each other."""

from __future__ import annotations

import logging
import secrets

import discord

from newsbot.bot.discordbot.render import NO_MENTIONS

log = logging.getLogger("newsbot.discord")

HISTORY_TURNS = 6  # earlier exchanges of a conversation a follow-up question is read with


def error_id() -> str:
    return secrets.token_hex(4)


def apology(err_id: str) -> str:
    return f"Sorry — something went wrong while answering. (error id `{err_id}`)"


async def report_command_error(interaction: discord.Interaction, error: Exception) -> None:
    """Log the detail with an error id; tell the user a short apology carrying the same id."""
    err = error_id()
    log.error("command %s failed (error id %s)", getattr(interaction.command, "name", "?"), err,
              exc_info=getattr(error, "original", error))
    try:
        if interaction.response.is_done():
            await interaction.followup.send(apology(err), ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(apology(err), ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        pass
