"""Administration: `/ingest`, `/feeds`, `/reindex`, for the application's owner (or team), ids in
`discord_admin_ids`, and Manage Server members of the guilds in `discord_admin_guilds` only (see
`guards.is_admin`). Index work runs in worker threads; answering goes on from the current index meanwhile."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.discordbot.common import report_command_error
from newsbot.bot.discordbot.guards import REFUSAL, is_admin
from newsbot.bot.discordbot.render import COLOR, NO_MENTIONS

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

STATUS_EDIT_SECONDS = 2.0


class Progress:
    """Receives progress(stage, done, total) from a worker thread; `text()` renders the latest."""

    def __init__(self) -> None:
        self.stage = "starting"
        self.done = 0
        self.total = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total

    def text(self) -> str:
        if self.total:
            pct = 100 * self.done // max(1, self.total)
            return f"{self.stage}: {self.done:,}/{self.total:,} ({pct}%)"
        return self.stage


class AdminCog(commands.Cog):
    feeds = app_commands.Group(name="feeds", description="RSS/Atom feeds the bot keeps indexing (admins)")

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self._reindexing = False

    async def _refuse_non_admin(self, interaction: discord.Interaction) -> bool:
        if is_admin(self.bot.settings, interaction.user, interaction.permissions,
                    guild_id=interaction.guild_id, owner=await self._is_owner(interaction.user)):
            return False
        log.info("refused %s to user %s in guild %s", interaction.command and interaction.command.qualified_name,
                 interaction.user.id, interaction.guild_id)
        await interaction.response.send_message(REFUSAL, ephemeral=True, allowed_mentions=NO_MENTIONS)
        return True

    async def _is_owner(self, user: discord.abc.User) -> bool:
        """The application's owner, or an admin/developer of its team (discord.py asks Discord once)."""
        try:
            return await self.bot.is_owner(user)
        except discord.HTTPException:
            log.warning("could not read the application's owner; only discord_admin_ids may change the index",
                        exc_info=True)
            return False

    @app_commands.command(name="ingest", description="Add a news article from a web page (admins)")
    @app_commands.describe(url="The article's address (http or https)")
    async def ingest(self, interaction: discord.Interaction, url: str) -> None:
        if await self._refuse_non_admin(interaction):
            return
        await interaction.response.defer(thinking=True)
        report = await self.bot.run_engine(self.bot.engine.add, [url.strip()])
        if report.errors:
            reason = "; ".join(e.reason for e in report.errors)[:1500]
            await interaction.followup.send(f"Could not add {url}: {reason}", allowed_mentions=NO_MENTIONS)
            return
        if report.duplicates:
            text = f"Already indexed (same story): {report.duplicates[0]}"
        elif report.unchanged:
            text = "Already indexed, unchanged."
        else:
            text = f"Added {report.added + report.updated} article(s), {report.chunks:,} passages in the index now."
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    @feeds.command(name="add", description="Follow an RSS/Atom feed (admins)")
    @app_commands.describe(url="The feed's address")
    async def feeds_add(self, interaction: discord.Interaction, url: str) -> None:
        if await self._refuse_non_admin(interaction):
            return
        await interaction.response.defer(thinking=True)
        try:
            result = await self.bot.run_engine(
                self.bot.engine.add_feed, url.strip(), added_by=str(interaction.user.id)
            )
        except ValueError as exc:  # FeedProblem: not reachable, not a feed, refused address, ...
            await interaction.followup.send(f"Could not add that feed: {exc}", allowed_mentions=NO_MENTIONS)
            return
        await interaction.followup.send(
            f"{result} New entries are indexed at the next feed update.", allowed_mentions=NO_MENTIONS
        )

    @feeds.command(name="list", description="Feeds the bot follows (admins)")
    async def feeds_list(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        feeds = await self.bot.run_engine(self.bot.engine.feeds)
        lines = [
            f"• <{f.url}> — {f.title or 'untitled'}; {f.entries_indexed} indexed; last poll "
            f"{f.last_polled_at or 'never'} {('(' + f.last_status + ')') if f.last_status else ''}"
            for f in feeds
        ]
        embed = discord.Embed(title="Feeds", description="\n".join(lines)[:4000] or "No feeds yet.", color=COLOR)
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @feeds.command(name="remove", description="Stop following a feed (admins)")
    @app_commands.describe(url="The feed's address, as listed by /feeds list")
    async def feeds_remove(self, interaction: discord.Interaction, url: str) -> None:
        if await self._refuse_non_admin(interaction):
            return
        removed = await self.bot.run_engine(self.bot.engine.remove_feed, url.strip())
        text = f"Stopped following <{url}>." if removed else f"<{url}> is not in the feed list."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="reindex", description="Rebuild the whole index from the corpus (admins)")
    async def reindex(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        if self._reindexing:
            await interaction.response.send_message("A rebuild is already running.", ephemeral=True)
            return
        self._reindexing = True
        try:
            await interaction.response.defer(thinking=True)
            status = await interaction.followup.send(
                "Rebuilding the index… answers keep coming from the current index meanwhile.", wait=True,
                allowed_mentions=NO_MENTIONS,
            )
            progress = Progress()
            job = asyncio.ensure_future(self.bot.run_engine(self.bot.engine.build, None, progress))
            shown = ""
            while not job.done():
                await asyncio.wait({job}, timeout=STATUS_EDIT_SECONDS)
                text = f"Rebuilding the index… {progress.text()}"
                if text != shown and not job.done():
                    await _quiet_edit(status, content=text)
                    shown = text
            try:
                report = job.result()
            except Exception as exc:  # the old index stays live: say so
                log.exception("reindex failed")
                await _quiet_edit(status, content=f"Rebuild failed ({exc}); the previous index is still in use.")
                return
            started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            details = "".join(f"\n• {line}" for line in [*report.carry_lines(), *report.notes])
            text = f"Rebuilt at {started}: {report.summary()}.{details}"
            await _quiet_edit(status, content=text if len(text) <= 2000 else text[:1999] + "…")
        finally:
            self._reindexing = False

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)


async def _quiet_edit(message: discord.WebhookMessage | discord.Message, **kwargs: Any) -> None:
    try:
        await message.edit(allowed_mentions=NO_MENTIONS, **kwargs)
    except discord.HTTPException:
        log.debug("status edit failed", exc_info=True)
