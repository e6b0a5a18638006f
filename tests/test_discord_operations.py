"""A bot an owner sets up once and does not babysit (issue 17), end to end against the Discord stand-in:
it starts without the Message Content intent when the developer portal does not grant it, feeds added
from Discord are polled on their own (and `/feeds update` polls now), the admin commands are shown to
Manage Server members only, and a conversation's quick follow-ups flow while a flood is refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from newsbot.bot.discordbot.bot import NewsBot
from newsbot.bot.discordbot.guards import RateLimiter
from newsbot.bot.engine import Engine
from tests.discord_standin import PRIVILEGED_INTENTS, DiscordStandIn, Intent
from tests.helpers import bot_factory, make_settings, ready
from tests.http_fixtures import LocalServer
from tests.standin_fixtures import run_standin
from tests.test_discord import ARTICLE_PAGE, RSS, bot_messages, message_text, wait_for_answer

NO_CONTENT_GRANTED = PRIVILEGED_INTENTS & ~Intent.MESSAGE_CONTENT
NOT_GRANTED_LINE = "Message Content intent not granted"


def _intent_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if NOT_GRANTED_LINE in r.getMessage()]


async def _quiet_for(standin: DiscordStandIn, channel_id: int, bot: NewsBot, count: int, seconds: float) -> None:
    """Assert the bot posts nothing more than `count` messages in the channel during `seconds`."""
    await asyncio.sleep(seconds)
    assert len(bot_messages(standin, channel_id, bot)) == count, [m["content"] for m in
                                                                   bot_messages(standin, channel_id, bot)]


# ------------------------------------------------------------------------- 1. Message Content intent


def test_starts_without_message_content_when_not_granted(
    corpus_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The portal's toggle is off (the application's flags say so): the bot never asks for the intent, says
    once what that turns off, and mentions, DMs and slash commands work; a thread follow-up without a
    mention arrives empty (as Discord sends it) and is left alone, one with a mention is answered."""
    caplog.set_level(logging.INFO, logger="newsbot.discord")

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        assert standin.identify_count == 1 and not standin.identify_intents[0] & Intent.MESSAGE_CONTENT
        [line] = _intent_lines(caplog)
        assert "thread follow-ups and replies without an @mention are not seen" in line
        assert "DMs and slash commands work" in line and "MESSAGE CONTENT" in line

        await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                   mention_bot=True)
        await standin.wait_for(lambda: standin.threads, timeout=30)
        tid = int(standin.threads[0]["id"])
        [answer] = await wait_for_answer(standin, tid, bot)
        assert "$3 to $5" in message_text(answer)

        await standin.send_message(tid, standin.user_id, "What about Huawei?")  # no mention: empty content
        await _quiet_for(standin, tid, bot, 1, 2.0)
        await standin.send_message(tid, standin.user_id, "What about Huawei?", mention_bot=True)
        msgs = await wait_for_answer(standin, tid, bot, count=2)
        assert "Huawei" in message_text(msgs[1]) and "Leica" in message_text(msgs[1]), "read with the thread"

        await standin.send_dm(standin.user_id, "How much market value did Nvidia lose when DeepSeek-R1 hit?")
        [dm_answer] = await wait_for_answer(standin, standin.dm_channel_id(standin.user_id), bot)
        assert "Nvidia" in message_text(dm_answer)

        rec = await standin.slash_command("ask", {"question": "What is 5G-Advanced?"}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        assert "5G-Advanced" in message_text(resp["message"])
        assert len(_intent_lines(caplog)) == 1, "said once"

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), privileged_intents=NO_CONTENT_GRANTED,
                timeout=120)


def test_reconnects_without_message_content_when_the_gateway_refuses_it(
    corpus_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The application's flags promise the intent but the gateway closes with 4014: the bot identifies
    again without it instead of crashing (`PrivilegedIntentsRequired`), and answers."""

    def make(standin: DiscordStandIn) -> NewsBot:
        standin.claimed_intents = PRIVILEGED_INTENTS
        return bot_factory(corpus_copy)(standin)

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        first, second = standin.identify_intents
        assert first & Intent.MESSAGE_CONTENT and not second & Intent.MESSAGE_CONTENT
        assert standin.identify_count == 1  # the first one was refused
        [line] = _intent_lines(caplog)
        assert "4014" in line
        await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                   mention_bot=True)
        await standin.wait_for(lambda: standin.threads, timeout=30)
        tid = int(standin.threads[0]["id"])
        [answer] = await wait_for_answer(standin, tid, bot)
        assert "$3 to $5" in message_text(answer)
        await standin.send_message(tid, standin.user_id, "What about Huawei?")
        await _quiet_for(standin, tid, bot, 1, 1.5)

    run_standin(scenario, bot_factory=make, privileged_intents=NO_CONTENT_GRANTED, timeout=120)


def test_discord_message_content_false_never_asks(corpus_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="newsbot.discord")

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        assert standin.identify_intents and not any(i & Intent.MESSAGE_CONTENT for i in standin.identify_intents)
        assert not _intent_lines(caplog)
        assert "discord_message_content=false" in caplog.text

    run_standin(scenario, bot_factory=bot_factory(corpus_copy, discord_message_content=False), timeout=60)


# ------------------------------------------------------------------------------------ 2. feed polling


def _feed_site(web: LocalServer) -> None:
    web.add("/nokia-6g", ARTICLE_PAGE)
    web.add("/feed.xml", RSS.replace(b"{link}", web.url("/nokia-6g").encode()), content_type="application/rss+xml")


def test_feeds_added_from_discord_are_polled_automatically(corpus_copy: Path) -> None:
    """`/feeds add` says when the next automatic poll is; the poll (every 1.2 s here) indexes the feed's
    entry without anyone running an update, and a question about it is answered from it."""
    with LocalServer() as web:
        _feed_site(web)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            rec = await standin.slash_command("feeds", {"url": web.url("/feed.xml")}, subcommand="add",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            text = resp["message"]["content"]
            assert text.startswith("Following Signal Desk"), text
            assert re.search(r"(Next automatic poll in ~\d s|A poll is running now).*every 2 s", text), text

            def indexed() -> bool:
                return any(f.entries_indexed for f in bot.engine.feeds())

            await standin.wait_for(indexed, timeout=60, what="the automatic poll to index the feed's entry")
            assert web.hits("/nokia-6g") >= 1
            await standin.send_dm(standin.user_id, "Where will Nokia run the first 6G radio trial for Ruby Telecom?")
            [answer] = await wait_for_answer(standin, standin.dm_channel_id(standin.user_id), bot)
            assert "Zwieselbrunn" in message_text(answer) and "Signal Desk" in message_text(answer)

        run_standin(scenario, timeout=120, bot_factory=bot_factory(
            corpus_copy, allow_private_urls=True, feed_poll_minutes=0.02))


def test_feeds_update_polls_now_and_replies_tell_when_polling_is_off(corpus_copy: Path) -> None:
    with LocalServer() as web:
        _feed_site(web)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            rec = await standin.slash_command("feeds", {}, subcommand="update", user_id=standin.admin_id,
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=30)
            assert "No feeds yet" in resp["message"]["content"]

            rec = await standin.slash_command("feeds", {"url": web.url("/feed.xml")}, subcommand="add",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            assert "Automatic polling is off" in resp["message"]["content"]
            assert "/feeds update or `newsbot update`" in resp["message"]["content"]
            await asyncio.sleep(1.0)
            assert web.hits("/nokia-6g") == 0, "nothing polls on its own"

            rec = await standin.slash_command("feeds", {}, subcommand="update", user_id=standin.admin_id,
                                              channel_id=standin.general_id)
            [status] = await standin.wait_for_response(rec.id, kind="followup", timeout=30)
            assert status["message"]["content"].startswith("Polling 1 feed(s)…")

            def finished() -> dict[str, Any] | None:
                msg = standin.get_message(int(status["message"]["id"]))
                return msg if msg and msg["content"].startswith("Polled") else None

            final = (await standin.wait_for(finished, timeout=90))["content"]
            assert "1 feeds: 1 new, 0 updated" in final and f"• {web.url('/feed.xml')} (Signal Desk): 1 new" in final
            assert "Automatic polling is off" in final
            hits = bot.engine.search("Zwieselbrunn 6G trial")
            assert hits and hits[0].source == "Signal Desk"

            rec = await standin.slash_command("feeds", {}, subcommand="list", user_id=standin.admin_id,
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id)
            embed = resp["message"]["embeds"][0]
            assert "1 indexed" in embed["description"] and "Automatic polling is off" in embed["footer"]["text"]

        run_standin(scenario, timeout=150, bot_factory=bot_factory(
            corpus_copy, allow_private_urls=True, feed_poll_minutes=0))


# ------------------------------------------------------------------------------- 3. admin visibility


ADMIN_COMMANDS = {"ingest", "feeds", "reindex", "config"}  # config: per-server settings, Manage Server
CHANNEL_COMMANDS = {"follow", "unfollow", "digest-schedule"}  # what a channel is sent: Manage Channels


def test_admin_commands_are_shown_to_manage_server_members_only(corpus_copy: Path) -> None:
    """The synced payloads carry default_member_permissions (Manage Server) on the commands that change the
    index and on no other; a member is not offered them, and where a server opens them to everyone the
    bot's own check still refuses."""

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        [put] = standin.calls_matching("PUT", r"/commands$")
        synced = {c["name"]: c for c in put.json}
        manage_guild, manage_channels = str(1 << 5), str(1 << 4)
        for name, command in synced.items():
            expected = manage_guild if name in ADMIN_COMMANDS else manage_channels if name in CHANNEL_COMMANDS else None
            got = command.get("default_member_permissions")
            assert (None if got is None else str(got)) == expected, (name, got)
        assert ADMIN_COMMANDS < set(synced) and {"ask", "search", "source", "latest", "stats"} <= set(synced)
        assert {o["name"] for o in synced["feeds"]["options"]} == {"add", "list", "remove", "update"}

        with pytest.raises(PermissionError, match="default_member_permissions"):
            await standin.slash_command("feeds", {}, subcommand="update", user_id=standin.user_id,
                                        channel_id=standin.general_id)
        standin.command_overrides = {"feeds": {standin.everyone_role_id}}
        rec = await standin.slash_command("feeds", {}, subcommand="update", user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert resp["message"]["flags"] & 64 and "Only the bot's owner" in resp["message"]["content"]

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=60)


# -------------------------------------------------------------------------------- 6. token bucket


def test_token_bucket_lets_follow_ups_through_and_says_when_to_retry() -> None:
    limiter = RateLimiter(user_refill=20, guild_per_minute=0, user_burst=3)
    assert [limiter.check(1, 10, now=t) for t in (100.0, 101.0, 102.0)] == [None, None, None]
    refusal = limiter.check(1, 10, now=103.0)
    assert refusal is not None and str(refusal) == "You're asking quickly — try again in 17 s." and not refusal.repeat
    assert limiter.check(1, 10, now=104.0).repeat, "the second refusal in a row is marked: the listener stays quiet"
    assert limiter.check(2, 10, now=104.0) is None, "other users are not affected"
    assert limiter.check(1, 10, now=120.5) is None  # one question came back after 20 s
    assert limiter.check(1, 10, now=121.0) is not None
    assert [limiter.check(1, 10, now=t) for t in (200.0, 200.1, 200.2)] == [None, None, None]  # refilled to 3
    strict = RateLimiter(user_refill=5, guild_per_minute=0, user_burst=1)  # the old 5-second cooldown
    assert strict.check(1, None, now=0.0) is None and "try again in 3 s" in str(strict.check(1, None, now=2.0))
    assert RateLimiter(user_refill=0, guild_per_minute=0, user_burst=3).check(1, None) is None  # 0 = no limit


def test_quick_follow_ups_are_answered_and_a_flood_is_refused_with_a_retry_time(corpus_copy: Path) -> None:
    """The defaults (3 questions at once, one more every 20 s): a question and two quick follow-ups in
    its thread are all answered; the flood after them gets one refusal saying when to retry, and /ask
    is refused the same way (only the asker sees it)."""
    settings = make_settings(corpus_copy, discord_guild_rate=1000)
    assert (settings.discord_user_burst, settings.discord_user_cooldown) == (3, 20.0)

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                   mention_bot=True)
        await standin.wait_for(lambda: standin.threads, timeout=30)
        tid = int(standin.threads[0]["id"])
        await wait_for_answer(standin, tid, bot)
        started = time.monotonic()
        await standin.send_message(tid, standin.user_id, "What about Huawei?")
        await standin.send_message(tid, standin.user_id, "When did Xiaomi and Leica start working together?")
        answers = await wait_for_answer(standin, tid, bot, count=3)
        assert all("try again" not in message_text(m) for m in answers)
        assert "Huawei" in message_text(answers[1]) + message_text(answers[2])

        for i in range(5):  # a flood: one refusal, then silence
            await standin.send_message(tid, standin.user_id, f"and what about question {i}?")
        msgs = await wait_for_answer(standin, tid, bot, count=4)
        retry = re.fullmatch(r"You're asking quickly — try again in (\d+) s\.", msgs[3]["content"])
        assert retry, msgs[3]["content"]
        assert 1 <= int(retry.group(1)) <= 20 - int(time.monotonic() - started) + 1
        await _quiet_for(standin, tid, bot, 4, 1.5)

        rec = await standin.slash_command("ask", {"question": "What is 5G-Advanced?"}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert resp["message"]["flags"] & 64 and re.search(r"try again in \d+ s", resp["message"]["content"])
        # Another user is not held up by the first one's flood.
        rec = await standin.slash_command("ask", {"question": "What is 5G-Advanced?"}, user_id=standin.user2_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        assert "5G-Advanced" in message_text(resp["message"])

    run_standin(scenario, bot_factory=lambda standin: NewsBot(Engine(settings), guild_ready_timeout=0.05),
                timeout=150)
