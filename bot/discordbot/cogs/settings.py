"""`/config`: how the bot behaves in one server (channels, private answers, embeds, threads), for members
with Manage Server there. The choices live in the state database (`Engine.configure_server`), so replicas
and restarts follow them; `prefs.py` says what each one changes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.discordbot.common import report_command_error
from newsbot.bot.discordbot.prefs import ServerPrefs, prefs_for
from newsbot.bot.discordbot.render import COLOR, NO_MENTIONS

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

REFUSAL = "Only members with Manage Server can change how I behave in this server."


def _default(value: bool | None) -> str:
    return " (default)" if value is None else ""


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def settings_lines(prefs: ServerPrefs) -> list[str]:
    """What /config shows: every choice, and whether the server made it or the default applies."""
    chosen = prefs.chosen
    lines = [
        f"**Answers in:** {prefs.where()}. Mentions elsewhere are ignored; slash commands elsewhere get a private "
        "note, except /help and /config, which work everywhere.",
        f"**Private answers by default:** {_yes(prefs.private)}{_default(chosen and chosen.private)} — "
        "slash command replies only the asker sees (/ask private: still decides per question; mentions are "
        "always public).",
        f"**Answers as:** {'embeds' if prefs.embeds else 'plain text'}{_default(chosen and chosen.embeds)}",
        f"**A mention opens a thread:** {_yes(prefs.threads)}{_default(chosen and chosen.threads)} — otherwise "
        "I answer in the channel, and a reply to my answer is a follow-up.",
    ]
    if chosen and chosen.updated_at:
        who = f" by <@{chosen.updated_by}>" if chosen.updated_by.isdigit() else ""
        lines.append(f"-# Last changed{who} at {chosen.updated_at[:16].replace('T', ' ')} UTC.")
    return lines


class SettingsCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="config", description="Show or change how I behave in this server (Manage Server)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(
        answer_in="Answer in this channel; once any is added, only in the channels added",
        stop_answering_in="Stop answering in this channel (remove it from the list)",
        all_channels="True: answer in every channel again (clears the list)",
        private="Slash command replies only the asker sees, by default",
        embeds="Answers as embeds (true) or plain text (false)",
        threads="A mention opens a thread for the answer (true) or is answered in the channel (false)",
        reset="True: forget every choice made here (the defaults apply again)",
    )
    async def config(
        self, interaction: discord.Interaction, answer_in: discord.TextChannel | None = None,
        stop_answering_in: discord.TextChannel | None = None, all_channels: bool | None = None,
        private: bool | None = None, embeds: bool | None = None, threads: bool | None = None,
        reset: bool | None = None,
    ) -> None:
        guild_id = interaction.guild_id
        perms = interaction.permissions
        if guild_id is None or not (perms.manage_guild or perms.administrator):  # the server-side check
            log.info("refused /config to user %s in guild %s", interaction.user.id, guild_id)
            await interaction.response.send_message(REFUSAL, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        changes = dict(
            add_channels=[str(answer_in.id)] if answer_in else [],
            remove_channels=[str(stop_answering_in.id)] if stop_answering_in else [],
            all_channels=bool(all_channels), private=private, embeds=embeds, threads=threads, reset=bool(reset),
        )
        changing = bool(answer_in or stop_answering_in or all_channels or reset) or any(
            v is not None for v in (private, embeds, threads))
        engine = self.bot.engine
        if changing:
            chosen = await self.bot.run_engine(
                engine.configure_server, guild_id, updated_by=str(interaction.user.id), **changes
            )
            log.info("server %s settings changed by %s: %s", guild_id, interaction.user.id, chosen)
        else:
            chosen = await self.bot.run_engine(engine.server_settings, guild_id)
        prefs = prefs_for(self.bot.settings, chosen)
        title = "Saved. How I behave in this server now" if changing else "How I behave in this server"
        text = "\n".join(settings_lines(prefs))
        if prefs.embeds:
            embed = discord.Embed(title=title, description=text, color=COLOR)
            embed.set_footer(text="Change with /config answer_in: private: embeds: threads: (Manage Server)")
            await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(f"**{title}**\n{text}", ephemeral=True,
                                                    allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)
