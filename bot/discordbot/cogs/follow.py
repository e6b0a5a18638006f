"""`/follow`, `/unfollow`, `/follows` and `/digest-schedule set|list|remove`: news comes to the channel.

A follow makes the bot post a compact card in the channel whenever an update (its own feed polling,
/ingest, /feeds update) indexes articles that match (see `bot.follows`); a scheduled digest posts the
day's top stories at a time of day (see `bot.schedules`). Both are per channel and kept in the state
database. `/digest` itself stays a plain command (Discord cannot run a command that has subcommands),
so schedules have their own `/digest-schedule` group.

Who: members with Manage Channels (Discord shows the commands to them by default; the check here is what
decides, whatever a server's integration settings show). Servers only (not DMs). Everything goes
through `Engine`, in a worker thread.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import available_timezones

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.discordbot.choices import outlet_choices
from newsbot.bot.discordbot.common import report_command_error
from newsbot.bot.discordbot.prefs import prefs_here
from newsbot.bot.discordbot.render import NO_MENTIONS, defuse
from newsbot.bot.follows import MAX_MIN_OUTLETS
from newsbot.bot.questions import QuestionRejected
from newsbot.bot.schedules import next_due

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

CHANNEL_MANAGERS = discord.Permissions(manage_channels=True)
REFUSAL = "Only members who can manage channels (Manage Channels) can change what this channel follows."


def _manages_channels(interaction: discord.Interaction) -> bool:
    perms = interaction.permissions
    return bool(perms and (perms.manage_channels or perms.administrator))


async def _say(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    text = defuse(text)
    text = text if len(text) <= 2000 else text[:1999] + "…"
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)


class FollowCog(commands.Cog):
    schedule = app_commands.Group(
        name="digest-schedule", description="A daily digest posted in this channel (channel managers)",
        default_permissions=CHANNEL_MANAGERS, guild_only=True,
    )

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    async def _allowed(self, interaction: discord.Interaction, *, manage: bool = True) -> bool:
        """The channel is one the bot works in (allow-lists, /config) and, for changes, the member manages
        channels; otherwise the member is told why (privately) and False."""
        if interaction.guild_id is None:
            await _say(interaction, "Follows and scheduled digests are for server channels.")
            return False
        if await prefs_here(self.bot, interaction) is None:
            return False
        if manage and not _manages_channels(interaction):
            log.info("refused %s to user %s in guild %s", getattr(interaction.command, "qualified_name", "?"),
                     interaction.user.id, interaction.guild_id)
            await _say(interaction, REFUSAL)
            return False
        return True

    # ------------------------------------------------------------------ follows

    @app_commands.command(name="follow", description="Post new articles about a topic in this channel")
    @app_commands.default_permissions(manage_channels=True)
    @app_commands.guild_only()
    @app_commands.describe(
        topic="What to follow, e.g. chip export rules (matched like /digest's topic)",
        source="Only articles from this outlet (alone: every article from it)",
        min_outlets=f"Post a story only once this many outlets ran it (1-{MAX_MIN_OUTLETS}, default 1)",
    )
    async def follow(
        self, interaction: discord.Interaction, topic: str | None = None, source: str | None = None,
        min_outlets: app_commands.Range[int, 1, MAX_MIN_OUTLETS] = 1,
    ) -> None:
        if not await self._allowed(interaction):
            return
        try:
            follow, new = await self.bot.run_engine(
                self.bot.engine.follow, interaction.guild_id or 0, interaction.channel_id or 0, topic=topic or "",
                source=source or "", min_outlets=min_outlets, created_by=str(interaction.user.id))
        except QuestionRejected as exc:
            await _say(interaction, str(exc))
            return
        head = f"Following {follow.describe()} in this channel" if new else f"Already following {follow.describe()}"
        await _say(interaction, f"{head}: new matching articles get a card here as they are indexed "
                                f"({self._when()}). /follows lists this channel's follows, /unfollow stops one.",
                   ephemeral=False)

    @follow.autocomplete("source")
    async def _follow_sources(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await outlet_choices(self.bot, current)

    @app_commands.command(name="unfollow", description="Stop posting a followed topic in this channel")
    @app_commands.default_permissions(manage_channels=True)
    @app_commands.guild_only()
    @app_commands.describe(topic="The follow to stop, as /follows lists it")
    async def unfollow(self, interaction: discord.Interaction, topic: str) -> None:
        if not await self._allowed(interaction):
            return
        removed = await self.bot.run_engine(self.bot.engine.unfollow, interaction.channel_id or 0, topic)
        if removed is None:
            await _say(interaction, f"This channel does not follow “{topic}”. /follows lists what it follows.")
            return
        await _say(interaction, f"Stopped following {removed.describe()} in this channel.", ephemeral=False)

    @unfollow.autocomplete("topic")
    async def _channel_follows(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        follows = await self.bot.run_engine(self.bot.engine.follows, interaction.channel_id or 0)
        key = current.lower().strip()
        return [app_commands.Choice(name=f.describe()[:100], value=f.id) for f in follows
                if key in f.describe().lower()][:25]

    @app_commands.command(name="follows", description="What this channel follows, and its scheduled digests")
    @app_commands.guild_only()
    async def follows(self, interaction: discord.Interaction) -> None:
        if not await self._allowed(interaction, manage=False):
            return
        channel = interaction.channel_id or 0
        follows = await self.bot.run_engine(self.bot.engine.follows, channel)
        schedules = await self.bot.run_engine(self.bot.engine.digest_schedules, channel)
        lines = [f"• {f.describe()}" for f in follows] or ["• nothing yet: /follow topic:…"]
        lines += ["", "**Scheduled digests**"]
        lines += [_schedule_line(s.at_time, s.timezone, s.topic) for s in schedules] or [
            "• none: /digest-schedule set time:09:00"]
        await _say(interaction, "**This channel follows**\n" + "\n".join(lines))

    def _when(self) -> str:
        schedule = self.bot.feed_schedule
        if schedule is None:
            return "feeds are polled by /feeds update or `newsbot update`"
        return f"feeds are polled every {schedule.minutes:g} min"

    # ------------------------------------------------------------------ scheduled digests

    @schedule.command(name="set", description="Post the day's digest here every day at a time")
    @app_commands.describe(
        time="Time of day, HH:MM on a 24-hour clock (e.g. 09:00)",
        topic="Only stories about this (optional)",
        timezone="IANA timezone of that time, e.g. Europe/Berlin (default UTC)",
    )
    async def schedule_set(
        self, interaction: discord.Interaction, time: str, topic: str | None = None, timezone: str | None = None
    ) -> None:
        if not await self._allowed(interaction):
            return
        try:
            sch, new = await self.bot.run_engine(
                self.bot.engine.schedule_digest, interaction.guild_id or 0, interaction.channel_id or 0,
                at_time=time, timezone=timezone or "UTC", topic=topic or "", created_by=str(interaction.user.id))
        except (ValueError, QuestionRejected) as exc:
            await _say(interaction, f"I could not set that schedule: {exc}.")
            return
        first = next_due(sch.at_time, sch.timezone, datetime.now(UTC))
        verb = "Scheduled" if new else "Updated"
        await _say(interaction, f"{verb}: {_schedule_line(sch.at_time, sch.timezone, sch.topic)[2:]}. "
                                f"The first one is posted <t:{int(first.timestamp())}:R>.", ephemeral=False)

    @schedule_set.autocomplete("timezone")
    async def _zones(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        key = current.lower().replace(" ", "_")
        zones = sorted(z for z in _zone_names() if key in z.lower())
        return [app_commands.Choice(name=z, value=z) for z in zones[:25]]

    @schedule.command(name="list", description="The scheduled digests of this channel")
    async def schedule_list(self, interaction: discord.Interaction) -> None:
        if not await self._allowed(interaction, manage=False):
            return
        schedules = await self.bot.run_engine(self.bot.engine.digest_schedules, interaction.channel_id or 0)
        lines = [_schedule_line(s.at_time, s.timezone, s.topic) for s in schedules]
        await _say(interaction, "\n".join(lines) if lines else
                   "No scheduled digest in this channel: /digest-schedule set time:09:00")

    @schedule.command(name="remove", description="Stop a scheduled digest of this channel")
    @app_commands.describe(time="The schedule's time (HH:MM), as /digest-schedule list shows it")
    async def schedule_remove(self, interaction: discord.Interaction, time: str) -> None:
        if not await self._allowed(interaction):
            return
        removed = await self.bot.run_engine(self.bot.engine.remove_digest_schedule, interaction.channel_id or 0, time)
        if removed is None:
            await _say(interaction, f"No scheduled digest at {time} in this channel.")
            return
        await _say(interaction, f"Removed: {_schedule_line(removed.at_time, removed.timezone, removed.topic)[2:]}.",
                   ephemeral=False)

    @schedule_remove.autocomplete("time")
    async def _schedules(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        schedules = await self.bot.run_engine(self.bot.engine.digest_schedules, interaction.channel_id or 0)
        return [app_commands.Choice(name=_schedule_line(s.at_time, s.timezone, s.topic)[2:][:100], value=s.id)
                for s in schedules if current.strip() in s.at_time][:25]

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)


def _schedule_line(at_time: str, zone: str, topic: str) -> str:
    """`• daily at 09:00 Europe/Berlin, topic “chips”`."""
    return f"• daily digest at {at_time} {zone}" + (f", topic “{topic}”" if topic else "")


_ZONES: list[str] = []


def _zone_names() -> list[str]:
    if not _ZONES:
        _ZONES.extend(sorted(available_timezones()))
    return _ZONES
