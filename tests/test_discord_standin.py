"""Tests of the local Discord stand-in, driven by a tiny real discord.py bot defined here."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.discord_standin import DiscordStandIn, running_bot
from tests.helpers import MSG_CREATE
from tests.standin_fixtures import run_standin


# ---------------------------------------------------------------------------- the tiny bot
class PanelView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.button(label="Refresh", style=discord.ButtonStyle.primary, custom_id="panel:refresh")
    async def refresh(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content=f"refreshed by {interaction.user.name}", view=None)


class TinyBot(commands.Bot):
    def __init__(
        self, standin: DiscordStandIn, *, message_content: bool = True, members: bool = True
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        intents.members = members
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.standin = standin
        self.seen: list[discord.Message] = []
        self.errors: list[BaseException] = []
        self.slow_done = asyncio.Event()

        @app_commands.command(name="ask", description="Ask about industry news")
        @app_commands.describe(question="What you want to know", limit="How many sources to cite")
        async def ask(interaction: discord.Interaction, question: str, limit: int = 3) -> None:
            await interaction.response.defer(thinking=True)
            await asyncio.sleep(0.05)
            await interaction.followup.send(
                f"answer to {question!r} with {limit} ({type(limit).__name__}) sources"
            )
            await interaction.followup.send("a second follow-up")

        @app_commands.command(name="panel", description="Show a panel with a button")
        async def panel(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("panel", view=PanelView())

        @app_commands.command(name="slow", description="Answers too late")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.8)
            try:
                await interaction.response.send_message("too late")
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @app_commands.command(name="config", description="Admin only")
        @app_commands.default_permissions(manage_guild=True)
        async def config(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("configured", ephemeral=True)

        for cmd in (ask, panel, slow):
            self.tree.add_command(cmd)
        self.tree.add_command(config, guild=discord.Object(standin.guild_id))

        @self.tree.error
        async def on_app_command_error(interaction: discord.Interaction, error: Exception) -> None:
            self.errors.append(error)

    async def setup_hook(self) -> None:
        await self.tree.sync()
        await self.tree.sync(guild=discord.Object(self.standin.guild_id))

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        self.seen.append(message)
        try:
            if isinstance(message.channel, discord.DMChannel):
                await message.channel.send(f"dm-echo: {message.content}")
            elif isinstance(message.channel, discord.Thread):
                await message.channel.send(f"thread-echo: {message.content}")
            elif self.user in message.mentions:
                thread = await message.create_thread(name="News question")
                await thread.send("Let's discuss here.")
            elif message.content == "!slow":
                await asyncio.sleep(3.0)  # busy, but cooperative: heartbeats must keep flowing
                self.slow_done.set()
            elif message.content == "!long":
                await message.channel.send("x" * 2001)
            elif message.content == "!longembed":
                await message.channel.send(embed=discord.Embed(description="y" * 4097))
            elif message.content == "!max":
                await message.channel.send("z" * 2000)
            elif message.content.startswith("!say "):
                await message.channel.send(message.content[5:])
            else:
                await message.reply(
                    f"echo: {message.content}", allowed_mentions=discord.AllowedMentions.none()
                )
        except discord.HTTPException as exc:
            self.errors.append(exc)


def tiny_bot(standin: DiscordStandIn) -> TinyBot:
    return TinyBot(standin)


# ---------------------------------------------------------------------------- tests
def test_connect_ready_and_plumbing() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        guild = bot.get_guild(standin.guild_id)
        assert guild is not None and guild.name == "Newsroom"
        assert bot.user.id == standin.bot_user_id and bot.application_id == standin.application_id
        assert {c.name for c in guild.text_channels} == {"general", "news", "announcements"}
        assert guild.member_count == len(guild.members) == 4  # members intent: no chunking needed
        admin = guild.get_member(standin.admin_id)
        assert admin.guild_permissions.manage_guild and guild.owner_id == standin.admin_id
        assert not guild.get_member(standin.user_id).guild_permissions.manage_guild
        assert not guild.get_channel(standin.announcements_id).permissions_for(guild.me).send_messages
        paths = [(c.method, c.path) for c in standin.calls]
        assert ("GET", "/users/@me") in paths and ("GET", "/oauth2/applications/@me") in paths
        assert ("PUT", f"/applications/{standin.application_id}/commands") in paths
        assert {c["name"] for c in standin.commands} == {"ask", "panel", "slow", "config"}
        assert standin.identify_count == 1

        auth = {"Authorization": f"Bot {standin.token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{standin.api_base}/gateway/bot", headers=auth) as resp:
                assert resp.headers["Content-Type"] == "application/json"
                body = await resp.json()
                assert body["url"] == standin.gateway_url and body["shards"] == 1
            async with http.get(f"{standin.api_base}/users/@me") as resp:
                assert resp.status == 401  # no bot token
            async with http.get(f"{standin.api_base}/nope", headers=auth) as resp:
                assert resp.status == 404 and resp.headers["Content-Type"] == "application/json"
                assert await resp.json() == {"message": "Unknown route", "code": 0}
        assert [c.path for c in standin.unknown_calls] == ["/nope"]
        standin.unknown_calls.clear()  # deliberate; keep assert_clean() happy

    run_standin(scenario, bot_factory=tiny_bot)


def test_on_message_echo_reply_records_allowed_mentions() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        sent = await standin.send_message(standin.general_id, standin.user_id, f"hello <@{standin.user2_id}>")
        call = await standin.wait_for_call("POST", MSG_CREATE)
        assert call.json["content"] == f"echo: hello <@{standin.user2_id}>"
        assert call.json["allowed_mentions"] == {"parse": []}  # exactly what discord.py sent
        assert int(call.json["message_reference"]["message_id"]) == int(sent["id"])
        seen = bot.seen[-1]
        assert seen.content == sent["content"] and isinstance(seen.channel, discord.TextChannel)
        assert [m.id for m in seen.mentions] == [standin.user2_id]
        assert isinstance(seen.author, discord.Member)

        history = standin.messages_in(standin.general_id)
        reply = history[-1]
        assert reply["type"] == 19 and reply["referenced_message"]["id"] == sent["id"]
        assert reply["mentions"] == [] and reply["mention_everyone"] is False  # allowed_mentions honoured
        # Discord also dispatches MESSAGE_CREATE for the bot's own message
        await standin.wait_for(lambda: len(bot.cached_messages) >= 2)
        assert bot.cached_messages[-1].content.startswith("echo: ")

    run_standin(scenario, bot_factory=tiny_bot)


def test_mention_creates_thread_and_thread_messages_arrive_as_thread() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        q = await standin.send_message(
            standin.news_id, standin.user_id, "what about chips?", mention_bot=True
        )
        await standin.wait_for(lambda: standin.messages_in(int(q["id"]))[-1:], what="message in thread")
        (thread,) = standin.threads
        assert (
            thread["id"] == q["id"] and thread["type"] == 11 and thread["parent_id"] == str(standin.news_id)
        )
        assert (
            thread["owner_id"] == str(standin.bot_user_id) and thread["thread_metadata"]["archived"] is False
        )
        assert standin.messages_in(int(thread["id"]))[0]["content"] == "Let's discuss here."
        assert standin.get_message(int(q["id"]))["thread"]["id"] == thread["id"]
        assert bot.seen[-1].content == f"<@{standin.bot_user_id}> what about chips?"

        await standin.send_message(int(thread["id"]), standin.user2_id, "follow-up question")
        await standin.wait_for(lambda: len(standin.messages_in(int(thread["id"]))) == 3)
        assert isinstance(bot.seen[-1].channel, discord.Thread)
        assert bot.seen[-1].channel.parent_id == standin.news_id
        assert standin.messages_in(int(thread["id"]))[-1]["content"] == "thread-echo: follow-up question"

    run_standin(scenario, bot_factory=tiny_bot)


def test_dm_roundtrip() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        await standin.send_dm(standin.user_id, "psst")
        dm = standin.dm_channel_id(standin.user_id)
        await standin.wait_for(lambda: len(standin.messages_in(dm)) == 2)
        assert isinstance(bot.seen[-1].channel, discord.DMChannel) and bot.seen[-1].guild is None
        assert standin.messages_in(dm)[-1]["content"] == "dm-echo: psst"
        assert "guild_id" not in standin.messages_in(dm)[-1]

        user = await bot.fetch_user(standin.user2_id)
        await user.send("hi carol")  # bot-initiated DM: POST /users/@me/channels first
        assert (await standin.wait_for_call("POST", r"^/users/@me/channels$")).json == {
            "recipient_id": standin.user2_id
        }
        assert standin.messages_in(standin.dm_channel_id(standin.user2_id))[-1]["content"] == "hi carol"

    run_standin(scenario, bot_factory=tiny_bot)


def test_slash_command_defer_then_followups(discord_standin_run) -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        ask = next(c for c in standin.commands if c["name"] == "ask")
        assert [
            (o["name"], o["type"], o.get("required", False), o["description"]) for o in ask["options"]
        ] == [
            ("question", 3, True, "What you want to know"),
            ("limit", 4, False, "How many sources to cite"),
        ]
        rec = await standin.slash_command(
            "ask",
            {"question": "GPU prices?", "limit": 2},
            user_id=standin.user_id,
            channel_id=standin.general_id,
        )
        assert rec.payload["data"]["options"][1] == {"name": "limit", "type": 4, "value": 2}
        responses = await standin.wait_for_response(rec.id, kind="followup", count=2)
        kinds = [(r["kind"], r.get("type")) for r in standin.interaction_responses(rec.id)]
        assert kinds == [("callback", 5), ("followup", None), ("followup", None)]
        first, second = responses
        assert first["replaced_deferred"] is True  # first follow-up replaced the "thinking" message
        assert first["message"]["id"] == str(rec.original_message_id)
        assert first["message"]["content"] == "answer to 'GPU prices?' with 2 (int) sources"
        assert first["message"]["flags"] & 128 == 0
        assert (
            second["message"]["interaction_metadata"]["original_response_message_id"]
            == first["message"]["id"]
        )
        contents = [m["content"] for m in standin.messages_in(standin.general_id)]
        assert contents == ["answer to 'GPU prices?' with 2 (int) sources", "a second follow-up"]
        assert bot.errors == []

        with pytest.raises(LookupError):
            await standin.slash_command("nonexistent", user_id=standin.user_id, channel_id=standin.general_id)
        with pytest.raises(ValueError):
            await standin.slash_command("ask", {}, user_id=standin.user_id, channel_id=standin.general_id)

    discord_standin_run(scenario, bot_factory=tiny_bot)


def test_admin_only_guild_command() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        config = next(c for c in standin.commands if c["name"] == "config")
        assert config["guild_id"] == str(standin.guild_id) and config["default_member_permissions"] == "32"
        with pytest.raises(PermissionError):
            await standin.slash_command("config", user_id=standin.user_id, channel_id=standin.general_id)
        rec = await standin.slash_command("config", user_id=standin.admin_id, channel_id=standin.general_id)
        (resp,) = await standin.wait_for_response(rec.id)
        assert resp["type"] == 4 and resp["message"]["flags"] & 64  # ephemeral
        assert standin.messages_in(standin.general_id, include_ephemeral=False) == []

    run_standin(scenario, bot_factory=tiny_bot)


def test_view_button_click_edits_message() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        rec = await standin.slash_command("panel", user_id=standin.user_id, channel_id=standin.general_id)
        await standin.wait_for_response(rec.id)
        panel = standin.get_message(rec.original_message_id)
        assert (
            panel["content"] == "panel"
            and panel["components"][0]["components"][0]["custom_id"] == "panel:refresh"
        )

        click = await standin.click_button(panel["id"], "panel:refresh", user_id=standin.user2_id)
        (cb,) = await standin.wait_for_response(click.id)
        assert cb["type"] == 7
        edited = standin.get_message(panel["id"])
        assert edited["content"] == "refreshed by carol" and edited["components"] == []
        assert edited["edited_timestamp"] is not None
        with pytest.raises(LookupError):  # the button is gone now, as in the Discord UI
            await standin.click_button(panel["id"], "panel:refresh", user_id=standin.user2_id)

    run_standin(scenario, bot_factory=tiny_bot)


@pytest.mark.slow
def test_heartbeats_keep_being_acked_while_bot_is_busy() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        before_rx, before_ack = standin.heartbeats_received, standin.heartbeat_acks_sent
        await standin.send_message(standin.general_id, standin.user_id, "!slow")
        await asyncio.wait_for(bot.slow_done.wait(), 5)
        assert standin.heartbeats_received - before_rx >= 4  # 500 ms interval over ~3 s
        assert standin.heartbeat_acks_sent - before_ack >= 4
        assert standin.heartbeat_acks_sent >= standin.heartbeats_received - 1  # one may be in flight
        assert bot.latency < 1.0

    run_standin(scenario, bot_factory=tiny_bot, heartbeat_interval_ms=500)


def test_too_long_message_rejected_like_discord() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        await standin.send_message(standin.general_id, standin.user_id, "!long")
        call = await standin.wait_for_call("POST", MSG_CREATE)
        assert call.status == 400 and call.response["code"] == 50035
        assert call.response["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        await standin.wait_for(lambda: bot.errors)
        (err,) = bot.errors
        assert isinstance(err, discord.HTTPException) and err.status == 400 and err.code == 50035
        assert "In content: Must be 2000 or fewer in length." in str(err)

        await standin.send_message(standin.general_id, standin.user_id, "!longembed")
        call = await standin.wait_for_call("POST", MSG_CREATE)
        assert call.status == 400 and "description" in call.response["errors"]["embeds"]["0"]
        await standin.send_message(standin.general_id, standin.user_id, "!max")
        assert (await standin.wait_for_call("POST", MSG_CREATE)).status == 200
        assert [m["content"] for m in standin.messages_in(standin.general_id) if m["author"]["bot"]] == [
            "z" * 2000
        ]

    run_standin(scenario, bot_factory=tiny_bot)


def test_malformed_event_does_not_kill_standin(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(standin: DiscordStandIn, _: None) -> None:
        bot = TinyBot(standin)
        async with running_bot(standin, bot, raise_on_crash=False):
            await standin.dispatch_raw("SOME_FUTURE_EVENT", {"whatever": 1})  # unknown: discord.py ignores it
            await standin.send_message(standin.general_id, standin.user_id, "still alive?")
            await standin.wait_for_call("POST", MSG_CREATE)
            # A MESSAGE_CREATE missing required fields: discord.py's parser raises inside its gateway loop.
            await standin.dispatch_raw("MESSAGE_CREATE", {"id": "1", "channel_id": str(standin.general_id)})
            with pytest.raises(KeyError):  # the *bot* dies (discord.py quirk) ...
                await asyncio.wait_for(asyncio.shield(standin.bot_tasks[0]), 5)
        # ... the stand-in does not: it still serves REST and accepts a new gateway session.

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{standin.api_base}/gateway") as resp:
                assert resp.status == 200
        bot2 = TinyBot(standin)
        async with running_bot(standin, bot2):
            await standin.send_message(standin.general_id, standin.user_id, "second bot?")
            call = await standin.wait_for_call("POST", MSG_CREATE)
            assert call.json["content"] == "echo: second bot?"
        assert standin.identify_count == 2

    with caplog.at_level(logging.CRITICAL, logger="discord"):
        run_standin(scenario)


def test_interaction_double_ack_and_late_ack_rejected() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        # discord.py refuses to respond twice itself, so hit the callback route directly.
        rec = await standin.slash_command("panel", user_id=standin.user_id, channel_id=standin.general_id)
        await standin.wait_for_response(rec.id)
        url = f"{standin.api_base}/interactions/{rec.id}/{rec.token}/callback?with_response=1"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
                assert resp.status == 400 and (await resp.json())["code"] == 40060
        assert [r["ok"] for r in standin.interaction_responses(rec.id)] == [True, False]

        late = await standin.slash_command("slow", user_id=standin.user_id, channel_id=standin.general_id)
        await standin.wait_for(lambda: bot.errors)
        assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062
        assert standin.interaction_responses(late.id)[0]["status"] == 404
        assert standin.messages_in(standin.general_id)[-1]["content"] == "panel"

    run_standin(scenario, bot_factory=tiny_bot, interaction_deadline=0.5)


def test_without_message_content_intent_content_is_empty_unless_mentioned() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        await standin.send_message(standin.general_id, standin.user_id, "secret text")
        await standin.wait_for(lambda: bot.seen)
        assert bot.seen[-1].content == ""
        assert bot.get_guild(standin.guild_id).member_count == 4
        assert len(bot.get_guild(standin.guild_id).members) == 1  # only the bot without the members intent
        await standin.send_message(standin.news_id, standin.user_id, "visible", mention_bot=True)
        await standin.wait_for(lambda: len(bot.seen) == 2)
        assert bot.seen[-1].content.endswith("visible")

    run_standin(scenario, bot_factory=lambda s: TinyBot(s, message_content=False, members=False))


def test_resume_after_reconnect_replays_missed_events() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        await standin.request_reconnect()  # op 7: discord.py closes and RESUMEs
        await standin.wait_for(lambda: standin.resume_count == 1)
        await standin.send_message(standin.general_id, standin.user_id, "after resume")
        call = await standin.wait_for_call("POST", MSG_CREATE)
        assert call.json["content"] == "echo: after resume"

        await standin.drop_connections(code=4000)  # abrupt close; the session stays resumable
        await standin.send_message(standin.general_id, standin.user_id, "sent while disconnected")
        call = await standin.wait_for_call("POST", MSG_CREATE)  # buffered, replayed on RESUME
        assert call.json["content"] == "echo: sent while disconnected"
        assert standin.resume_count == 2 and standin.identify_count == 1  # resumed, never re-identified

    run_standin(scenario, bot_factory=tiny_bot)


def test_fault_injection_and_permissions() -> None:
    async def scenario(standin: DiscordStandIn, bot: TinyBot) -> None:
        standin.fail_next(
            "POST", MSG_CREATE, status=403, body={"message": "Missing Permissions", "code": 50013}
        )
        await standin.send_message(standin.general_id, standin.user_id, "!say hi")
        call = await standin.wait_for_call("POST", MSG_CREATE)
        assert call.injected and call.status == 403
        await standin.wait_for(lambda: bot.errors)
        assert isinstance(bot.errors[-1], discord.Forbidden)

        channel = bot.get_channel(standin.announcements_id)
        with pytest.raises(discord.Forbidden) as info:
            await channel.send("the bot may not post here")
        assert info.value.code == 50013
        with pytest.raises(PermissionError):  # normal users cannot post there either
            await standin.send_message(standin.announcements_id, standin.user_id, "hi")

    run_standin(scenario, bot_factory=tiny_bot)
