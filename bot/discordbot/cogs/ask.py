"""Questions: @mentions (answered in a new thread), follow-ups in the bot's threads, replies to the
bot's messages, DMs, and `/ask`."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from newsbot.bot.answer.answers import Answer, Turn
from newsbot.bot.discordbot.choices import outlet_choices, outlet_refusal
from newsbot.bot.discordbot.common import HISTORY_TURNS, apology, error_id, report_command_error
from newsbot.bot.discordbot.guards import allowed_here
from newsbot.bot.discordbot.prefs import prefs_here
from newsbot.bot.discordbot.render import NO_MENTIONS, defuse, split_text, thread_name
from newsbot.bot.discordbot.views import feedback_view
from newsbot.bot.questions import QuestionRejected, length_refusal

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")

STREAM_EDIT_SECONDS = 1.0  # Discord allows ~5 edits per 5 s per channel; one a second leaves room


class Streamer:
    """Collects a model's text as it streams (from a worker thread) and shows it by editing a message
    at most once per `STREAM_EDIT_SECONDS`."""

    def __init__(self, edit: Any) -> None:
        self._edit = edit  # async callable(content: str)
        self._text = ""
        self._shown = ""
        self._task: asyncio.Task[None] | None = None

    def feed(self, text: str) -> None:  # called from the worker thread: only stores a string
        self._text = text

    async def run(self) -> None:
        while True:
            await asyncio.sleep(STREAM_EDIT_SECONDS)
            text = self._text
            if text and text != self._shown:
                preview = split_text(defuse(text), 1900)[0]
                try:
                    await self._edit(preview + " ▌")
                except discord.HTTPException:
                    log.debug("stream edit failed", exc_info=True)
                self._shown = text

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def strip_bot_mention(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", "", content).strip()


def history_from_message(message: discord.Message) -> list[Turn]:
    """The exchange shown in one of the bot's answer messages (question = embed title)."""
    if message.embeds:
        embed = message.embeds[0]
        return [Turn(embed.title or "", embed.description or "")]
    return [Turn("", message.content)]


class AskCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    # ------------------------------------------------------------------ messages

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        try:
            await self._on_message(message)
        except Exception:
            err = error_id()
            log.exception("failed to handle message %s (error id %s)", message.id, err)
            try:
                await message.channel.send(apology(err), allowed_mentions=NO_MENTIONS)
            except discord.HTTPException:
                pass

    async def _on_message(self, message: discord.Message) -> None:
        bot = self.bot
        me = bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        channel = message.channel
        in_dm = message.guild is None
        in_own_thread = isinstance(channel, discord.Thread) and channel.owner_id == me.id
        replied = await self._replied_bot_message(message)
        mentioned = me in message.mentions and not message.mention_everyone
        if not (in_dm or in_own_thread or replied is not None or mentioned):
            return
        guild_id = message.guild.id if message.guild else None
        scope_channel = channel.parent_id if isinstance(channel, discord.Thread) else channel.id
        if not allowed_here(bot.settings, guild_id, scope_channel):
            return
        prefs = await bot.prefs(guild_id)
        if not prefs.answers_in(scope_channel):  # the server chose other channels (/config): stay quiet
            return
        question = strip_bot_mention(message.content, me.id)
        if not question and not mentioned and not in_dm and not bot.intents.message_content:
            return  # without the Message Content intent Discord sends no text unless we are mentioned
        if not question:
            await message.reply(
                "Ask me a question about the news, e.g. “why is Xiaomi dropping Leica?”",
                mention_author=False, allowed_mentions=NO_MENTIONS,
            )
            return
        limited = bot.limiter.check(message.author.id, guild_id)
        if limited is not None:  # before opening a thread: a flood opens none
            if not limited.repeat:  # told once already: a flood does not get one reply per message
                await message.reply(str(limited), mention_author=False, allowed_mentions=NO_MENTIONS)
            return

        if in_dm:
            conversation_id, target = f"dm:{channel.id}", channel
        elif isinstance(channel, discord.Thread):
            conversation_id, target = f"thread:{channel.id}", channel
        elif replied is not None:
            conversation_id, target = f"msg:{replied.id}", channel
        else:
            target = await self._open_thread(message, question) if prefs.threads else channel
            conversation_id = f"thread:{target.id}" if isinstance(target, discord.Thread) else f"msg:{message.id}"

        refusal = length_refusal(question, bot.settings.max_question_chars)
        if refusal:
            await target.send(refusal, allowed_mentions=NO_MENTIONS)
            return

        history = await bot.run_engine(bot.engine.history, conversation_id, HISTORY_TURNS)
        if not history and replied is not None:
            history = history_from_message(replied)
        await self._answer_into(
            target, question, history=history, conversation_id=conversation_id, user_id=message.author.id,
            guild_id=guild_id, reference=message if target is channel and not in_dm else None, embeds=prefs.embeds,
        )

    async def _replied_bot_message(self, message: discord.Message) -> discord.Message | None:
        ref = message.reference
        if ref is None or ref.message_id is None or self.bot.user is None:
            return None
        resolved = ref.resolved
        if not isinstance(resolved, discord.Message):
            try:
                resolved = await message.channel.fetch_message(ref.message_id)
            except discord.HTTPException:
                return None
        return resolved if resolved.author.id == self.bot.user.id else None

    async def _open_thread(self, message: discord.Message, question: str) -> discord.abc.Messageable:
        """A public thread on the question, or the channel itself if a thread can't be made there."""
        if isinstance(message.channel, discord.TextChannel):
            try:
                return await message.create_thread(name=thread_name(question), auto_archive_duration=1440)
            except discord.HTTPException:
                log.info("could not create a thread in %s; answering in the channel", message.channel.id)
        return message.channel

    async def _answer_into(
        self, target: discord.abc.Messageable, question: str, *, history: list[Turn], conversation_id: str,
        user_id: int, guild_id: int | None, reference: discord.Message | None, embeds: bool,
    ) -> None:
        bot = self.bot
        placeholder: discord.Message | None = None
        streamer: Streamer | None = None
        if bot.engine.llm_configured():
            placeholder = await target.send("…", allowed_mentions=NO_MENTIONS, reference=reference,
                                            mention_author=False)
            streamer = Streamer(lambda content: placeholder.edit(content=content, allowed_mentions=NO_MENTIONS))
            streamer.start()
        try:
            async with target.typing():
                answer = await bot.answer(question, history=history, on_text=streamer.feed if streamer else None)
        except QuestionRejected as exc:
            await target.send(str(exc), allowed_mentions=NO_MENTIONS)
            return
        finally:
            if streamer:
                await streamer.stop()
        answer_id = secrets.token_hex(6)
        await self._send_answer(target, answer, answer_id, placeholder=placeholder, reference=reference,
                                embeds=embeds)
        await bot.run_engine(
            bot.record, answer, answer_id=answer_id, conversation_id=conversation_id, user_id=user_id,
            guild_id=guild_id, channel_id=getattr(target, "id", 0),
        )

    async def _send_answer(
        self, target: discord.abc.Messageable, answer: Answer, answer_id: str, *,
        placeholder: discord.Message | None, reference: discord.Message | None, embeds: bool,
    ) -> list[discord.Message]:
        replies = self.bot.replies_for(answer, embeds=embeds)
        sent: list[discord.Message] = []
        for i, reply in enumerate(replies):
            extra: dict[str, Any] = {}
            if i == len(replies) - 1 and answer.found:
                extra["view"] = feedback_view(answer_id)
            if i == 0 and placeholder is not None:
                await placeholder.edit(**reply.edit_kwargs(), **extra)
                sent.append(placeholder)
                continue
            if i == 0 and reference is not None:
                extra.update(reference=reference, mention_author=False)
            sent.append(await target.send(**reply.kwargs(), **extra))
        return sent

    # ------------------------------------------------------------------ /ask

    @app_commands.command(name="ask", description="Ask a question about the indexed news")
    @app_commands.describe(
        question="What you want to know, e.g. why is Xiaomi dropping Leica?",
        private="Only you see the answer (default: what the server chose with /config)",
        source="Only articles from this outlet (optional)",
    )
    async def ask(
        self, interaction: discord.Interaction, question: str, private: bool | None = None,
        source: str | None = None,
    ) -> None:
        bot = self.bot
        guild_id = interaction.guild_id
        prefs = await prefs_here(bot, interaction)
        if prefs is None:
            return
        private = prefs.private if private is None else private
        limited = bot.limiter.check(interaction.user.id, guild_id)
        refusal = await outlet_refusal(bot, source) or (str(limited) if limited else None) or \
            length_refusal(question, bot.settings.max_question_chars)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        streamer = None
        if bot.engine.llm_configured():
            streamer = Streamer(lambda content: interaction.edit_original_response(
                content=content, allowed_mentions=NO_MENTIONS))
            streamer.start()
        try:
            answer = await bot.answer(question, history=[], on_text=streamer.feed if streamer else None,
                                      sources=(source,) if source else ())
        except QuestionRejected as exc:
            await interaction.followup.send(str(exc), ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        finally:
            if streamer:
                await streamer.stop()
        answer_id = secrets.token_hex(6)
        replies = bot.replies_for(answer, embeds=prefs.embeds)
        for i, reply in enumerate(replies):
            extra: dict[str, Any] = {}
            if i == len(replies) - 1 and answer.found:
                extra["view"] = feedback_view(answer_id)
            if i == 0 and streamer is not None:  # replace the streamed preview with the checked answer
                await interaction.edit_original_response(**reply.edit_kwargs(), **extra)
            else:
                await interaction.followup.send(**reply.kwargs(), ephemeral=private, **extra)
        await bot.run_engine(
            bot.record, answer, answer_id=answer_id, conversation_id=f"ask:{answer_id}",
            user_id=interaction.user.id, guild_id=guild_id, channel_id=interaction.channel_id or 0,
        )

    @ask.autocomplete("source")
    async def ask_source_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await outlet_choices(self.bot, current)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_command_error(interaction, error)
