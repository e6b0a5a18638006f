"""Per-server behaviour: a server's `/config` choices (kept in the state database, so every replica and
every restart sees them) laid over the global settings, and the channel check every command makes.

Cogs import this, never each other. What a choice changes:
- channels: mentions, thread follow-ups and replies elsewhere are ignored (quietly, like the global
  allow-list); slash commands elsewhere get a private note saying where the bot answers. `/help` and
  `/config` work in every channel, so that nobody is locked out of the setting itself.
- private: `/ask`, `/search`, `/source`, `/latest` and `/stats` reply so only the asker sees it (`/ask
  private:` still decides per question). Mentions cannot be private: Discord has no private messages in
  a channel.
- embeds: answers as embeds or plain text (the global `discord_embeds` is the default).
- threads: whether an @mention opens a thread for the answer or is answered in the channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from newsbot.bot.config import Settings
from newsbot.bot.discordbot.guards import allowed_here
from newsbot.bot.discordbot.render import NO_MENTIONS
from newsbot.bot.state import ServerSettings

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot


@dataclass(frozen=True)
class ServerPrefs:
    """How the bot behaves in one server (or a DM): its choices, else the global settings."""

    channels: tuple[int, ...]  # channels the bot answers in; () = every channel
    private: bool
    embeds: bool
    threads: bool
    chosen: ServerSettings | None = None  # what the server chose (None: a DM)

    def answers_in(self, channel_id: int | None) -> bool:
        """Whether the bot answers in `channel_id` (a thread's parent channel for a thread)."""
        return not self.channels or channel_id in self.channels

    def where(self) -> str:
        """`<#1>, <#2>` or "every channel" (channel mentions never ping anyone)."""
        return ", ".join(f"<#{c}>" for c in self.channels) if self.channels else "every channel"

    def refusal(self) -> str:
        return (f"In this server I answer in {self.where()} (a server admin can change that with /config). "
                "/help works everywhere.")


def prefs_for(settings: Settings, chosen: ServerSettings | None) -> ServerPrefs:
    """`chosen` (a server's /config choices; None for a DM) over the global settings."""
    if chosen is None:
        return ServerPrefs((), False, settings.discord_embeds, True)
    return ServerPrefs(
        channels=tuple(int(c) for c in chosen.channels if c.isdigit()),
        private=bool(chosen.private),
        embeds=settings.discord_embeds if chosen.embeds is None else chosen.embeds,
        threads=True if chosen.threads is None else chosen.threads,
        chosen=chosen,
    )


def scope_channel(interaction: discord.Interaction) -> int | None:
    """The channel an interaction counts as in: a thread's parent, else its own channel."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return interaction.channel_id


async def prefs_here(bot: NewsBot, interaction: discord.Interaction) -> ServerPrefs | None:
    """The prefs of the interaction's server, or None after telling the user (privately) that the bot does
    not answer in this channel (the global allow-list or the server's /config channels)."""
    channel = scope_channel(interaction)
    if not allowed_here(bot.settings, interaction.guild_id, channel):
        await interaction.response.send_message("I'm not enabled in this channel.", ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
        return None
    prefs = await bot.prefs(interaction.guild_id)
    if not prefs.answers_in(channel):
        await interaction.response.send_message(prefs.refusal(), ephemeral=True, allowed_mentions=NO_MENTIONS)
        return None
    return prefs
