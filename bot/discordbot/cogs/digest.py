"""`/digest`: the period's top stories in one embed, each with its cited lead sentence and links.

It stays a plain command (Discord cannot run a command that has subcommands): daily digests are scheduled
with the separate `/digest-schedule set|list|remove` group (cogs/follow.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.digest import DEFAULT_LIMIT, MAX_LIMIT
from newsbot.bot.discordbot.choices import outlet_choices, outlet_refusal
from newsbot.bot.discordbot.common import report_command_error
from newsbot.bot.discordbot.prefs import prefs_here
from newsbot.bot.discordbot.render import NO_MENTIONS, digest_replies
from newsbot.bot.questions import PERIOD_HINT, QuestionRejected, parse_period

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")


class DigestCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="digest", description="The period's top stories, each with a cited lead sentence")
    @app_commands.describe(
        topic="Only stories about this (optional)",
        since="From 1d, 7d, 12h, 2w back from now, or a date YYYY-MM-DD (default 7d)",
        until="Up to this date YYYY-MM-DD, inclusive (default now)",
        source="Only this outlet (optional)",
        limit=f"How many stories (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})",
    )
    async def digest(
        self, interaction: discord.Interaction, topic: str | None = None, since: str | None = None,
        until: str | None = None, source: str | None = None,
        limit: app_commands.Range[int, 1, MAX_LIMIT] = DEFAULT_LIMIT,
    ) -> None:
        bot = self.bot
        prefs = await prefs_here(bot, interaction)  # the allow-list and the server's /config channels
        if prefs is None:
            return
        now = datetime.now(UTC)
        try:
            start, end = parse_period(since or "7d", now), parse_period(until, now, end=True)
        except ValueError:
            await interaction.response.send_message(
                f"I could not read that period: {PERIOD_HINT}.", ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if start and end and start > end:
            await interaction.response.send_message(
                "`since` is after `until`.", ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        limited = bot.limiter.check(interaction.user.id, interaction.guild_id)
        refusal = await outlet_refusal(bot, source) or (str(limited) if limited else None)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(ephemeral=prefs.private, thinking=True)
        try:  # grouping and lead sentences embed text: a worker thread, never the event loop
            found = await bot.run_engine(
                bot.engine.digest, topic=topic or "", sources=[source] if source else [], since=start, until=end,
                limit=limit,
            )
        except QuestionRejected as exc:
            await interaction.followup.send(str(exc), ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        for reply in digest_replies(found, embeds=prefs.embeds):
            await interaction.followup.send(**reply.kwargs())

    @digest.autocomplete("source")
    async def _source_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await outlet_choices(self.bot, current)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)
