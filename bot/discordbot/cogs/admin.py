"""Administration: `/ingest`, `/feeds add|list|remove|update`, `/reindex`, for the application's owner (or
team), ids in `discord_admin_ids`, and Manage Server members of the guilds in `discord_admin_guilds` only (see
`guards.is_admin`). Index work runs in worker threads; answering goes on from the current index meanwhile.

Discord shows these commands only to members with Manage Server (`default_member_permissions`; a server's
admins can grant them to others under Server Settings → Integrations); the check here is what decides."""

from __future__ import annotations

import asyncio
import logging
import math
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
# Who Discord shows the admin commands to (a server can change it); `is_admin` still decides who may run them.
ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True)


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
    feeds = app_commands.Group(name="feeds", description="RSS/Atom feeds the bot keeps indexing (admins)",
                               default_permissions=ADMIN_PERMISSIONS)

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
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(url="The article's address (http or https)")
    async def ingest(self, interaction: discord.Interaction, url: str) -> None:
        if await self._refuse_non_admin(interaction):
            return
        await interaction.response.defer(thinking=True)
        report = await self.bot.run_engine(self.bot.engine.add, [url.strip()])
        self.bot.spawn(self.bot.deliver_follows(report))  # channels following its topic get a card
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
        name = f"{result.title} <{result.url}>" if result.title else f"<{result.url}>"
        head = (f"Following {name} ({result.entries} entries now)." if result.added
                else f"Already following {name}.")
        await interaction.followup.send(f"{result.discovery()}{head} {self._when_polled()}",
                                        allowed_mentions=NO_MENTIONS)

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
        embed.set_footer(text=self._when_polled())
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @feeds.command(name="remove", description="Stop following a feed (admins)")
    @app_commands.describe(url="The feed's address, as listed by /feeds list")
    async def feeds_remove(self, interaction: discord.Interaction, url: str) -> None:
        if await self._refuse_non_admin(interaction):
            return
        removed = await self.bot.run_engine(self.bot.engine.remove_feed, url.strip())
        text = f"Stopped following <{url}>." if removed else f"<{url}> is not in the feed list."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @feeds.command(name="update", description="Poll every feed now and index new entries (admins)")
    async def feeds_update(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        await interaction.response.defer(thinking=True)
        feeds = await self.bot.run_engine(self.bot.engine.feeds)
        if not feeds:
            await interaction.followup.send("No feeds yet: add one with /feeds add.", allowed_mentions=NO_MENTIONS)
            return
        status = await interaction.followup.send(
            f"Polling {len(feeds)} feed(s)… answers keep coming from the current index meanwhile.", wait=True,
            allowed_mentions=NO_MENTIONS,
        )
        progress = Progress()
        # wait=False: if a replica or the automatic poll is polling right now, say so instead of queueing.
        job = asyncio.ensure_future(self.bot.run_engine(self.bot.engine.update_feeds, progress, None, False))
        await _show_progress(status, job, progress, "Polling the feeds…")
        try:
            report = job.result()
        except Exception as exc:
            log.exception("feed update failed")
            await _quiet_edit(status, content=f"Feed update failed ({exc}); nothing was changed.")
            return
        self.bot.spawn(self.bot.deliver_follows(report.index))
        if report.busy:
            text = f"Not polled: {report.summary()}. Its new entries are indexed when it finishes."
        else:
            lines = "".join(f"\n• {f.line()}" for f in report.feeds)
            text = f"Polled {report.summary()}.{lines}\n{self._when_polled()}"
        await _quiet_edit(status, content=text if len(text) <= 2000 else text[:1999] + "…")

    def _when_polled(self) -> str:
        """When the bot polls the feeds next, in words: what /feeds add and /feeds list tell admins."""
        schedule = self.bot.feed_schedule
        if schedule is None:
            return ("Automatic polling is off (feed_poll_minutes = 0): run /feeds update or `newsbot update` "
                    "to index new entries.")
        every = _duration(schedule.minutes * 60)
        seconds = schedule.seconds_to_next()
        if seconds is None:
            return f"Feeds are polled every {every}; /feeds update polls now."
        if seconds == 0:
            return f"A poll is running now, then every {every}; /feeds update polls now."
        return f"Next automatic poll in ~{_duration(seconds)} (every {every}); /feeds update polls now."

    @app_commands.command(name="reindex", description="Rebuild the whole index from the corpus (admins)")
    @app_commands.default_permissions(manage_guild=True)
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
            await _show_progress(status, job, progress, "Rebuilding the index…")
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


async def _show_progress(
    status: discord.WebhookMessage, job: asyncio.Future[Any], progress: Progress, label: str
) -> None:
    """Edit `status` with `label` and the latest progress every STATUS_EDIT_SECONDS until `job` is done."""
    shown = ""
    while not job.done():
        await asyncio.wait({job}, timeout=STATUS_EDIT_SECONDS)
        text = f"{label} {progress.text()}"
        if text != shown and not job.done():
            await _quiet_edit(status, content=text)
            shown = text


def _duration(seconds: float) -> str:
    """`45 s`, `2 min`, `3 h`: rounded up, so that "in ~N" is never too early."""
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} s"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


async def _quiet_edit(message: discord.WebhookMessage | discord.Message, **kwargs: Any) -> None:
    try:
        await message.edit(allowed_mentions=NO_MENTIONS, **kwargs)
    except discord.HTTPException:
        log.debug("status edit failed", exc_info=True)
