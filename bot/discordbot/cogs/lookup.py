"""Lookups: `/search` (paged passages), `/source` (one article), `/latest` (newest articles), `/stats`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.discordbot.choices import article_choices, outlet_choices, outlet_refusal
from newsbot.bot.discordbot.common import report_command_error
from newsbot.bot.discordbot.prefs import prefs_here
from newsbot.bot.discordbot.render import COLOR, NO_MENTIONS, document_embed, latest_embed
from newsbot.bot.discordbot.views import SearchPager
from newsbot.bot.questions import QuestionRejected, UnknownOutlet, parse_day

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

SEARCH_RESULTS = 25  # 5 pages of 5


class LookupCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="search", description="Ranked passages from the indexed news, with sources")
    @app_commands.describe(
        query="Words or a question to look for",
        source="Only this outlet (e.g. Weibo)",
        since="Only articles published on or after this date (YYYY-MM-DD)",
        until="Only articles published on or before this date (YYYY-MM-DD)",
    )
    async def search(
        self, interaction: discord.Interaction, query: str, source: str | None = None,
        since: str | None = None, until: str | None = None,
    ) -> None:
        try:
            start, end = parse_day(since), parse_day(until, end=True)
        except ValueError:
            await interaction.response.send_message(
                "Dates look like 2025-05-19 (year-month-day).", ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        prefs = await prefs_here(self.bot, interaction)
        if prefs is None:
            return
        refusal = await outlet_refusal(self.bot, source)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(ephemeral=prefs.private, thinking=True)
        try:
            hits = await self.bot.run_engine(
                self.bot.engine.search, query, sources=[source] if source else [], since=start, until=end,
                limit=SEARCH_RESULTS,
            )
        except QuestionRejected as exc:
            await interaction.followup.send(str(exc), ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        pager = SearchPager(query, hits)
        pager.message = await interaction.followup.send(
            embed=pager.embed(), view=pager, allowed_mentions=NO_MENTIONS, wait=True
        )

    @app_commands.command(name="source", description="Show one indexed article: title, outlet, date, link")
    @app_commands.describe(id="The article: type words of its title, or its id")
    async def source(self, interaction: discord.Interaction, id: str) -> None:
        prefs = await prefs_here(self.bot, interaction)
        if prefs is None:
            return
        found = await self.bot.run_engine(self.bot.engine.document, id.strip())
        if found is None:
            await interaction.response.send_message(
                f"No article with id `{discord.utils.escape_markdown(id)[:100]}` is indexed. "
                "Try /latest or /search to find ids.", ephemeral=True, allowed_mentions=NO_MENTIONS,
            )
            return
        doc, chunks = found
        await interaction.response.send_message(embed=document_embed(doc, chunks), ephemeral=prefs.private,
                                                allowed_mentions=NO_MENTIONS)

    @source.autocomplete("id")
    async def source_id_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await article_choices(self.bot, current)

    @app_commands.command(name="latest", description="The newest indexed articles")
    @app_commands.describe(topic="Only articles about this (optional)", source="Only this outlet (optional)")
    async def latest(
        self, interaction: discord.Interaction, topic: str | None = None, source: str | None = None
    ) -> None:
        prefs = await prefs_here(self.bot, interaction)
        if prefs is None:
            return
        try:
            docs = await self.bot.run_engine(self.bot.engine.latest, topic=topic or "", source=source or "",
                                             limit=10)
        except UnknownOutlet:
            refusal = await outlet_refusal(self.bot, source)
            await interaction.response.send_message(refusal or "Unknown outlet.", ephemeral=True,
                                                    allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.send_message(
            embed=latest_embed(docs, topic=topic or "", source=source or ""), ephemeral=prefs.private,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="stats", description="What the index holds, and answer feedback so far")
    async def stats(self, interaction: discord.Interaction) -> None:
        prefs = await prefs_here(self.bot, interaction)
        if prefs is None:
            return
        engine = self.bot.engine
        stats = await self.bot.run_engine(engine.stats)
        votes = await self.bot.run_engine(engine.feedback)
        embed = discord.Embed(title="newsbot index", color=COLOR)
        embed.add_field(name="Articles", value=f"{stats.documents:,}")
        embed.add_field(name="Passages", value=f"{stats.chunks:,}")
        embed.add_field(name="Sources", value=f"{len(stats.sources):,}")
        embed.add_field(name="Last update", value=stats.updated_at or "—")
        embed.add_field(name="Newest article", value=stats.newest_article or "—")
        embed.add_field(name="Feedback", value=f"👍 {votes.up} · 👎 {votes.down}")
        top = ", ".join(f"{name} ({n})" for name, n in stats.sources[:10] if name)
        if top:
            embed.add_field(name="Top outlets", value=top[:1024], inline=False)
        embed.set_footer(text=f"model {stats.model}")
        await interaction.response.send_message(embed=embed, ephemeral=prefs.private, allowed_mentions=NO_MENTIONS)

    @search.autocomplete("source")
    async def search_source_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await outlet_choices(self.bot, current)

    @latest.autocomplete("source")
    async def latest_source_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await outlet_choices(self.bot, current)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)


