"""`/help` (only the asker sees it): what the bot does, questions this index answers (checked by asking
them, from its newest articles: `Engine.overview`), what the index covers, and the commands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.discordbot.common import report_command_error
from newsbot.bot.discordbot.prefs import ServerPrefs
from newsbot.bot.discordbot.render import COLOR, MESSAGE_LIMIT, NO_MENTIONS, defuse, split_text
from newsbot.bot.engine import REPORTED_ERRORS, Overview

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

FIELD_LIMIT = 1024  # characters in an embed field's value
TOP_OUTLETS = 8


def what_i_do(prefs: ServerPrefs) -> str:
    where = "" if not prefs.channels else f" (in this server: {prefs.where()})"
    mention = ("I answer in a thread; follow-ups there need no mention" if prefs.threads else
               "I answer in the channel; reply to my answer to follow up")
    return (
        "I answer questions about the news articles I have indexed, quoting them with numbered sources you can "
        f"check. Mention me with a question{where}: {mention}. You can also DM me or use /ask."
    )


def scope_text(overview: Overview) -> str:
    outlets = overview.outlets
    top = ", ".join(f"{defuse(name)} ({n})" for name, n in outlets[:TOP_OUTLETS])
    more = f" and {len(outlets) - TOP_OUTLETS} more" if len(outlets) > TOP_OUTLETS else ""
    newest = f", the newest from {overview.newest_article}" if overview.newest_article else ""
    return (f"{overview.documents:,} articles from {len(outlets):,} outlets{newest}.\n"
            f"Outlets: {top}{more}." if outlets else f"{overview.documents:,} articles{newest}.")


def examples_text(overview: Overview) -> str:
    if not overview.examples:
        return "Ask about anything in the articles; /latest shows the newest ones."
    return "\n".join(f"• {defuse(q)}" for q in overview.examples)


def command_lines(tree: app_commands.CommandTree) -> list[str]:
    """`/name — description` for every slash command (subcommands of a group each on their own line)."""
    lines = []
    for command in sorted(tree.get_commands(type=discord.AppCommandType.chat_input), key=lambda c: c.name):
        if isinstance(command, app_commands.Group):
            lines += [f"`/{sub.qualified_name}` — {sub.description}" for sub in command.walk_commands()
                      if isinstance(sub, app_commands.Command)]
        else:
            lines.append(f"`/{command.name}` — {command.description}")
    return lines


def fields_of(lines: list[str], limit: int = FIELD_LIMIT) -> list[str]:
    """`lines` joined into as few texts of at most `limit` characters as they fit in."""
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line[:limit])
    return chunks


def help_sections(overview: Overview | None, problem: str, prefs: ServerPrefs,
                  commands_: list[str]) -> list[tuple[str, str]]:
    """(heading, text) pairs, in the order shown."""
    sections = [("What I do", what_i_do(prefs))]
    if overview is None:
        sections.append(("What I know", f"My index cannot be read right now: {problem}"))
    else:
        sections += [("Try asking", examples_text(overview)), ("What I know", scope_text(overview))]
    sections += [("Commands", chunk) for chunk in fields_of(commands_)]
    return sections


class HelpCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What I can do, questions to try, what I know, my commands")
    async def help(self, interaction: discord.Interaction) -> None:
        bot = self.bot
        # checking the example questions asks them (a few seconds the first time after an index change)
        await interaction.response.defer(ephemeral=True, thinking=True)
        overview: Overview | None = None
        problem = ""
        try:
            overview = await bot.run_engine(bot.engine.overview)
        except REPORTED_ERRORS as exc:
            problem = str(exc)
        prefs = await bot.prefs(interaction.guild_id)
        sections = help_sections(overview, problem, prefs, command_lines(bot.tree))
        if prefs.embeds:
            embed = discord.Embed(title="newsbot help", color=COLOR)
            for heading, text in sections:
                embed.add_field(name=heading, value=text[:FIELD_LIMIT], inline=False)
            await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        text = "\n\n".join(f"**{heading}**\n{body}" for heading, body in sections)
        for part in split_text(text, MESSAGE_LIMIT):
            await interaction.followup.send(part, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)
