"""Abuse protection and access rules: per-user cooldown, per-server rate, allow-lists, admin checks."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import discord

from newsbot.bot.config import Settings


@dataclass
class RateLimiter:
    """`user_cooldown` seconds between one user's questions; at most `guild_per_minute` per server."""

    user_cooldown: float
    guild_per_minute: int
    _last_by_user: dict[int, float] = field(default_factory=dict)
    _recent_by_guild: dict[int, deque[float]] = field(default_factory=dict)

    def check(self, user_id: int, guild_id: int | None, now: float | None = None) -> str | None:
        """None if the question may go ahead (and it is counted), else a polite refusal."""
        now = time.monotonic() if now is None else now
        last = self._last_by_user.get(user_id)
        if last is not None and self.user_cooldown > 0 and now - last < self.user_cooldown:
            wait = self.user_cooldown - (now - last)
            return f"You're asking quickly — please wait {wait:.0f} s before the next question."
        if guild_id is not None and self.guild_per_minute > 0:
            recent = self._recent_by_guild.setdefault(guild_id, deque())
            while recent and now - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self.guild_per_minute:
                return "This server has asked a lot of questions in the last minute — please try again shortly."
            recent.append(now)
        self._last_by_user[user_id] = now
        return None


def allowed_here(settings: Settings, guild_id: int | None, channel_id: int | None) -> bool:
    """Whether the allow-list settings let the bot answer in this server/channel (DMs always pass)."""
    if guild_id is None:
        return True
    guilds = settings.ids("discord_allowed_guilds")
    channels = settings.ids("discord_allowed_channels")
    if guilds and guild_id not in guilds:
        return False
    return not channels or channel_id in channels


def is_admin(
    settings: Settings, user: discord.abc.User, permissions: discord.Permissions | None, *,
    guild_id: int | None = None, owner: bool = False,
) -> bool:
    """Whether `user` may change the index, which every server shares (/ingest, /feeds, /reindex).

    Allowed: the application's owner or a team admin/developer (`owner`, from `Bot.is_owner`), a user or
    role id listed in `discord_admin_ids`, and members with Manage Server (or Administrator) in a guild
    listed in `discord_admin_guilds`. Manage Server anywhere else is not enough: the bot is public by
    default, and whoever can add it to a server of their own would otherwise rewrite every server's answers.
    """
    if owner:
        return True
    ids = settings.ids("discord_admin_ids")
    if user.id in ids:
        return True
    if isinstance(user, discord.Member) and any(role.id in ids for role in user.roles):
        return True
    manages = bool(permissions and (permissions.manage_guild or permissions.administrator))
    return manages and guild_id is not None and guild_id in settings.ids("discord_admin_guilds")


REFUSAL = (
    "Only the bot's owner can change the index, and the users or roles listed in discord_admin_ids; "
    "Manage Server counts only in the servers listed in discord_admin_guilds (the index is shared by every "
    "server the bot is in)."
)
