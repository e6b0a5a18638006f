"""Abuse protection and access rules: per-user token bucket, per-server rate, allow-lists, admin checks."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import discord

from newsbot.bot.config import Settings


@dataclass
class _Bucket:
    tokens: float
    updated: float
    told: bool = False  # the user was refused since the last question that went ahead


@dataclass
class Refusal:
    """Why a question may not go ahead now. `repeat`: the user was already told so since their last
    answered question (a message listener stays quiet then, so a flood does not make the bot flood)."""

    text: str
    repeat: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass
class RateLimiter:
    """Per user, a token bucket: `user_burst` questions at once, one more every `user_refill` seconds
    (0 = no per-user limit); per server, at most `guild_per_minute` questions in any 60 s (0 = no limit).

    A follow-up or two right after an answer go ahead; a flood is refused with the time to retry.
    """

    user_refill: float
    guild_per_minute: int
    user_burst: int = 1
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _recent_by_guild: dict[int, deque[float]] = field(default_factory=dict)

    def check(self, user_id: int, guild_id: int | None, now: float | None = None) -> Refusal | None:
        """None if the question may go ahead (and it is counted against both limits), else a refusal."""
        now = time.monotonic() if now is None else now
        bucket = self._refilled(user_id, now)
        if bucket is not None and bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) * self.user_refill)
            repeat, bucket.told = bucket.told, True
            return Refusal(f"You're asking quickly — try again in {wait} s.", repeat)
        if guild_id is not None and self.guild_per_minute > 0:
            recent = self._recent_by_guild.setdefault(guild_id, deque())
            while recent and now - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self.guild_per_minute:
                wait = max(1, math.ceil(60 - (now - recent[0])))
                return Refusal(f"This server has asked a lot of questions in the last minute — try again in {wait} s.")
            recent.append(now)
        if bucket is not None:
            bucket.tokens -= 1
            bucket.told = False
        return None

    def _refilled(self, user_id: int, now: float) -> _Bucket | None:
        """The user's bucket topped up for the time since it was last used (None: no per-user limit)."""
        if self.user_refill <= 0 or self.user_burst <= 0:
            return None
        capacity = float(self.user_burst)
        bucket = self._buckets.setdefault(user_id, _Bucket(capacity, now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) / self.user_refill)
        bucket.updated = now
        if len(self._buckets) > 10_000:  # forget users whose bucket is full again: it bounds the memory
            self._buckets = {
                u: b for u, b in self._buckets.items()
                if u == user_id or b.tokens + (now - b.updated) / self.user_refill < capacity
            }
        return bucket


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
