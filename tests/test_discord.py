"""newsbot on Discord, end to end: real discord.py, the real engine, and the local Discord stand-in.

Each test starts the stand-in on 127.0.0.1, connects a `NewsBot` to it the way `newsbot serve` does,
acts as Discord users (mentions, thread follow-ups, DMs, slash commands, button clicks) and asserts on
what those users would see: the REST calls the bot made and the messages now in each channel.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsbot.bot.discordbot.bot import NewsBot
from newsbot.bot.discordbot.render import EMBED_DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT, MESSAGE_LIMIT
from newsbot.bot.engine import Engine
from newsbot.index.documents import Document, parse_date
from tests.discord_standin import DiscordStandIn, Intent
from tests.helpers import MSG_CREATE, REPO, bot_factory, make_settings, ready
from tests.standin_fixtures import run_standin

REFUSED = "Only the bot's owner"


def bot_messages(standin: DiscordStandIn, channel_id: int | str, bot: NewsBot) -> list[dict[str, Any]]:
    return [m for m in standin.messages_in(int(channel_id)) if int(m["author"]["id"]) == bot.user.id]


def message_text(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
    return "\n".join(parts)


async def wait_for_answer(standin: DiscordStandIn, channel_id: int, bot: NewsBot, count: int = 1,
                          timeout: float = 60) -> list[dict[str, Any]]:
    def answered() -> list[dict[str, Any]] | None:
        msgs = [m for m in bot_messages(standin, channel_id, bot) if m.get("embeds") or m.get("content")]
        return msgs if len(msgs) >= count else None

    return await standin.wait_for(answered, timeout=timeout)


# ---------------------------------------------------------------------------------------- mentions


def test_mention_opens_thread_with_cited_answer_and_follow_up_uses_context(corpus_copy: Path, caplog) -> None:  # noqa: ANN001
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        # Message Content granted (the stand-in's default): asked for, and nothing said about it.
        assert [i & Intent.MESSAGE_CONTENT for i in standin.identify_intents] == [Intent.MESSAGE_CONTENT]
        assert "Message Content" not in caplog.text
        await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                   mention_bot=True)
        await standin.wait_for(lambda: standin.threads, timeout=30)
        thread = standin.threads[0]
        assert "Xiaomi dropping Leica" in thread["name"]
        [answer] = await wait_for_answer(standin, int(thread["id"]), bot)
        text = message_text(answer)
        assert "$3 to $5" in text and "[1]" in text
        assert re.search(r"^\[1\] \[?Xiaomi is Ending its Leica.*Weibo, 2025-05-19", text, re.M)
        assert any(c.path.endswith("/typing") for c in standin.calls), "typing… while answering"
        # The answer carries 👍/👎 buttons.
        buttons = [c["custom_id"] for row in answer["components"] for c in row["components"]]
        assert any(b.startswith("newsbot:fb:up:") for b in buttons)

        # A follow-up in the bot's thread needs no mention and uses the conversation.
        await standin.send_message(int(thread["id"]), standin.user_id, "What about Huawei?")
        msgs = await wait_for_answer(standin, int(thread["id"]), bot, count=2)
        follow = message_text(msgs[1])
        assert "Huawei" in follow and "Leica" in follow
        # Only sources actually cited are listed.
        cited = set(re.findall(r"\[(\d+)\] ", follow.split("**Sources**")[0]))
        listed = set(re.findall(r"^\[(\d+)\] \[", follow.split("**Sources**")[1], re.M))
        assert cited == listed

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_reply_to_bot_message_is_a_follow_up(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        # A user's own thread (not the bot's): a mention is answered in place, not in a new thread.
        user_thread = await standin.create_thread(standin.general_id, "chat", user_id=standin.user_id)
        tid = int(user_thread["id"])
        await standin.send_message(tid, standin.user_id, "Why is Xiaomi dropping Leica?", mention_bot=True)
        [first] = await wait_for_answer(standin, tid, bot)
        assert len(standin.threads) == 1
        await standin.send_message(tid, standin.user2_id, "and Huawei?", reference_message_id=first["id"])
        msgs = await wait_for_answer(standin, tid, bot, count=2)
        assert "Huawei" in message_text(msgs[1])

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_direct_messages(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.send_dm(standin.user_id, "How much market value did Nvidia lose when DeepSeek-R1 hit?")
        dm = standin.dm_channel_id(standin.user_id)
        [answer] = await wait_for_answer(standin, dm, bot)
        text = message_text(answer)
        assert "Nvidia" in text and "[1]" in text and "**Sources**" in text and "DeepSeek" in text
        await standin.send_dm(standin.user_id, "Who won the 2022 World Cup?")
        msgs = await wait_for_answer(standin, dm, bot, count=2)
        text = message_text(msgs[1])
        assert "couldn't find" in text and "Sources" not in text
        assert not msgs[1].get("components"), "no feedback buttons on a not-found answer"

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


# ---------------------------------------------------------------------------------------- slash commands


def test_commands_are_synced_with_described_typed_options(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        names = {c["name"] for c in standin.commands}
        assert {"ask", "search", "source", "latest", "stats", "ingest", "feeds", "reindex"} <= names
        ask = next(c for c in standin.commands if c["name"] == "ask")
        assert [(o["name"], o["type"], o.get("required", False)) for o in ask["options"]] == [
            ("question", 3, True), ("private", 5, False), ("source", 3, False)]
        sources = [o for c in standin.commands for o in c.get("options", []) if o["name"] == "source"]
        assert len(sources) == 5 and all(o.get("autocomplete") for o in sources)  # /ask, /search, /latest, /digest, /follow
        [source] = [c for c in standin.commands if c["name"] == "source"]
        assert source["options"][0]["autocomplete"]  # /source id: by title
        assert all(o["description"] for c in standin.commands for o in c.get("options", []))

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=60)


def test_ask_defers_then_answers_and_private_is_ephemeral(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        rec = await standin.slash_command("ask", {"question": "Why is Xiaomi dropping Leica?"},
                                          user_id=standin.user_id, channel_id=standin.general_id)
        responses = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        kinds = [r["kind"] for r in standin.interaction_responses(rec.id)]
        assert kinds[0] == "callback" and standin.interaction_responses(rec.id)[0]["type"] == 5  # deferred
        assert "$3 to $5" in message_text(responses[0]["message"])
        assert not responses[0]["message"]["flags"] & 64

        rec = await standin.slash_command("ask", {"question": "What is 5G-Advanced?", "private": True},
                                          user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        assert resp["message"]["flags"] & 64, "private answers are ephemeral"

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_search_pages_with_buttons(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        rec = await standin.slash_command("search", {"query": "Nvidia"}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        message = resp["message"]
        embed = message["embeds"][0]
        assert embed["footer"]["text"].startswith("Page 1 of ")
        assert embed["description"].count("**") >= 10 and "**1.**" in embed["description"]
        buttons = {c["label"]: c for row in message["components"] for c in row["components"]}
        assert buttons["◀ Prev"].get("disabled") and not buttons["Next ▶"].get("disabled")
        click = await standin.click_button(message["id"], buttons["Next ▶"]["custom_id"], user_id=standin.user2_id)
        [cb] = await standin.wait_for_response(click.id)
        page2 = cb["message"]["embeds"][0]
        assert page2["footer"]["text"].startswith("Page 2 of ") and "**6.**" in page2["description"]
        assert page2["description"] != embed["description"]
        buttons = {c["label"]: c for row in cb["message"]["components"] for c in row["components"]}
        click = await standin.click_button(message["id"], buttons["◀ Prev"]["custom_id"], user_id=standin.user_id)
        [cb] = await standin.wait_for_response(click.id)
        assert cb["message"]["embeds"][0]["description"] == embed["description"]

        rec = await standin.slash_command("search", {"query": "Leica", "source": "Weibo"},
                                          user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        description = resp["message"]["embeds"][0]["description"]
        assert "Weibo" in description
        assert all("Weibo" in line for line in description.split("\n") if line.startswith("**"))

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_source_latest_and_stats(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        rec = await standin.slash_command("source", {"id": "xiaomi-ends-leica-partnership"},
                                          user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        embed = resp["message"]["embeds"][0]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert embed["title"].startswith("Xiaomi is Ending its Leica")
        assert fields["Outlet"] == "Weibo" and fields["Published"] == "2025-05-19"
        assert "passages" in fields["Indexed"]

        rec = await standin.slash_command("source", {"id": "no-such-article"}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert "No article" in resp["message"]["content"] and resp["message"]["flags"] & 64

        rec = await standin.slash_command("latest", {}, user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        lines = [ln for ln in resp["message"]["embeds"][0]["description"].split("\n") if ln.startswith("•")]
        dates = [re.search(r"(\d{4}-\d{2}-\d{2})", ln).group(1) for ln in lines]
        assert len(dates) == 10 and dates == sorted(dates, reverse=True)

        rec = await standin.slash_command("latest", {"topic": "Leica", "source": "Lens & Sensor"},
                                          user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        lines = [ln for ln in resp["message"]["embeds"][0]["description"].split("\n") if ln.startswith("•")]
        assert lines and all("Lens & Sensor" in ln for ln in lines)

        rec = await standin.slash_command("stats", {}, user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        fields = {f["name"]: f["value"] for f in resp["message"]["embeds"][0]["fields"]}
        assert fields["Articles"] == "33" and fields["Feedback"] == "👍 0 · 👎 0"

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_feedback_click_is_stored_and_counted(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")
        dm = standin.dm_channel_id(standin.user_id)
        [answer] = await wait_for_answer(standin, dm, bot)
        buttons = [c["custom_id"] for row in answer["components"] for c in row["components"]]
        up = next(b for b in buttons if ":up:" in b)
        click = await standin.click_button(answer["id"], up, user_id=standin.user_id)
        [cb] = await standin.wait_for_response(click.id)
        assert cb["message"]["flags"] & 64 and "Thanks" in cb["message"]["content"]
        answer_id = up.rsplit(":", 1)[1]
        rows = bot.engine.state.feedback_rows()
        assert [(r[0], r[1], r[2]) for r in rows] == [(answer_id, str(standin.user_id), 1)]
        # Changing one's mind replaces the vote.
        down = next(b for b in buttons if ":down:" in b)
        click = await standin.click_button(answer["id"], down, user_id=standin.user_id)
        await standin.wait_for_response(click.id)
        assert bot.engine.state.feedback().down == 1 and bot.engine.state.feedback().up == 0
        rec = await standin.slash_command("stats", {}, user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        fields = {f["name"]: f["value"] for f in resp["message"]["embeds"][0]["fields"]}
        assert fields["Feedback"] == "👍 0 · 👎 1"

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


ARTICLE_PAGE = b"""<html><head><title>Nokia wins Ruby Telecom 6G trial | Signal Desk</title>
<meta property="og:site_name" content="Signal Desk"><meta name="author" content="Ana Ruiz">
<meta property="article:published_time" content="2026-11-20T09:00:00Z"></head><body>
<nav><a href="/">Home</a> <a href="/telecom">Telecom</a></nav><article><h1>Nokia wins Ruby Telecom 6G trial</h1>
<p>Nokia will run the first 6G radio trial for Ruby Telecom in the Bavarian town of Zwieselbrunn, the
companies said on Thursday, using spectrum in the 7 GHz band.</p>
<p>The Zwieselbrunn trial starts in March and runs for nine months, with twelve test sites feeding a
cloud-native core.</p></article><footer>Subscribe to Signal Desk</footer></body></html>"""

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Signal Desk</title>
<link>http://example.test/</link><description>telecom news</description>
<item><title>Nokia wins Ruby Telecom 6G trial</title><link>{link}</link><guid>nokia-ruby-6g</guid>
<pubDate>Fri, 20 Nov 2026 09:00:00 GMT</pubDate></item></channel></rss>"""


def test_ingest_and_feeds_are_admin_only(corpus_copy: Path) -> None:
    from tests.http_fixtures import LocalServer

    with LocalServer() as web:
        web.add("/nokia-6g", ARTICLE_PAGE)
        web.add("/feed.xml", RSS.replace(b"{link}", web.url("/nokia-6g").encode()),
                content_type="application/rss+xml")

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            url = web.url("/nokia-6g")
            with pytest.raises(PermissionError, match="default_member_permissions"):  # Discord hides it
                await standin.slash_command("ingest", {"url": url}, user_id=standin.user_id,
                                            channel_id=standin.general_id)
            # A server admin opens the admin commands to everyone (Integrations): the bot still refuses.
            standin.command_overrides = {name: {standin.everyone_role_id} for name in ("ingest", "feeds")}
            rec = await standin.slash_command("ingest", {"url": url}, user_id=standin.user_id,
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id)
            assert REFUSED in resp["message"]["content"] and resp["message"]["flags"] & 64
            assert web.hits("/nokia-6g") == 0, "a refused command fetches nothing"

            rec = await standin.slash_command("ingest", {"url": url}, user_id=standin.admin_id,
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            assert resp["message"]["content"].startswith("Added 1 article"), resp["message"]["content"]
            hits = bot.engine.search("Zwieselbrunn 6G trial")
            assert hits and hits[0].source == "Signal Desk" and hits[0].url == url

            rec = await standin.slash_command("feeds", {"url": web.url("/feed.xml")}, subcommand="add",
                                              user_id=standin.user_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id)
            assert REFUSED in resp["message"]["content"]
            rec = await standin.slash_command("feeds", {"url": web.url("/feed.xml")}, subcommand="add",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            assert "Following Signal Desk" in resp["message"]["content"]
            assert re.search(r"Next automatic poll in ~\d+ min \(every 30 min\)", resp["message"]["content"])
            rec = await standin.slash_command("feeds", {}, subcommand="list", user_id=standin.admin_id,
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id)
            assert web.url("/feed.xml") in resp["message"]["embeds"][0]["description"]
            rec = await standin.slash_command("feeds", {"url": web.url("/nope.xml")}, subcommand="add",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            assert resp["message"]["content"].startswith("Could not add that feed")
            rec = await standin.slash_command("feeds", {"url": web.url("/feed.xml")}, subcommand="remove",
                                              user_id=standin.admin_id, channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id)
            assert "Stopped following" in resp["message"]["content"]
            assert bot.engine.feeds() == []

        run_standin(scenario, bot_factory=bot_factory(corpus_copy, allow_private_urls=True), timeout=120)


def _index_writers_bot(index_dir: Path, ids: dict[str, int], **overrides: Any) -> Callable[[DiscordStandIn], NewsBot]:
    """A bot whose application is owned by a user who holds no role in the server, with one more user
    listed in discord_admin_ids and a moderator (Manage Server) who is neither."""

    def make(standin: DiscordStandIn) -> NewsBot:
        ids["owner"] = standin.add_user("olga_owner")
        ids["listed"] = standin.add_user("lee_listed")
        ids["moderator"] = standin.add_user("mo_moderator", roles=[standin.admin_role_id])
        ids["developer"] = standin.add_user("dev_teammate")
        ids["reader"] = standin.add_user("rita_readonly")
        standin.application_owner_id = ids["owner"]
        # Discord shows these commands to Manage Server members only; a server admin opened them to everyone
        # (Server Settings → Integrations), so what is tested here is the bot's own check.
        standin.command_overrides = {name: {standin.everyone_role_id} for name in ("ingest", "feeds", "reindex")}
        if overrides.pop("team", False):
            standin.team_members = {ids["owner"]: "admin", ids["developer"]: "developer", ids["reader"]: "read_only"}
        return bot_factory(index_dir, discord_admin_ids=str(ids["listed"]), allow_private_urls=True,
                           **overrides)(standin)

    return make


def test_only_owners_and_listed_admins_change_the_index(corpus_copy: Path) -> None:
    """Issue #14 point 8: Manage Server in some server is not enough to change what every server is told:
    /ingest, /feeds and /reindex need the application's owner (or its team's admins and developers) or
    an id in discord_admin_ids, unless the operator opts a server in with discord_admin_guilds."""
    from tests.http_fixtures import LocalServer

    ids: dict[str, int] = {}

    async def refused(standin: DiscordStandIn, name: str, options: dict[str, str], user: int,
                      subcommand: str | None = None) -> None:
        rec = await standin.slash_command(name, options, subcommand=subcommand, user_id=user,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert resp["message"]["flags"] & 64, "only the one who asked sees the refusal"
        content = resp["message"]["content"]
        assert REFUSED in content and "discord_admin_ids" in content and "discord_admin_guilds" in content

    async def allowed(standin: DiscordStandIn, user: int) -> None:
        rec = await standin.slash_command("feeds", {}, subcommand="list", user_id=user,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert resp["message"]["embeds"][0]["title"] == "Feeds", resp["message"]

    with LocalServer() as web:
        web.add("/junk", ARTICLE_PAGE)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            before = bot.engine.stats()
            for user in (standin.admin_id, ids["moderator"], standin.user_id):  # guild owner, Manage Server, member
                await refused(standin, "ingest", {"url": web.url("/junk")}, user)
                await refused(standin, "feeds", {"url": web.url("/junk")}, user, subcommand="add")
                await refused(standin, "feeds", {}, user, subcommand="list")
                await refused(standin, "reindex", {}, user)
            assert web.hits("/junk") == 0 and bot.engine.stats() == before
            await allowed(standin, ids["owner"])
            await allowed(standin, ids["listed"])
            rec = await standin.slash_command("ingest", {"url": web.url("/junk")}, user_id=ids["owner"],
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
            assert resp["message"]["content"].startswith("Added 1 article"), resp["message"]["content"]

        run_standin(scenario, bot_factory=_index_writers_bot(corpus_copy, ids), timeout=120)

    async def opted_in(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await allowed(standin, standin.admin_id)  # Manage Server in an opted-in server
        await allowed(standin, ids["moderator"])
        await refused(standin, "feeds", {}, standin.user_id, subcommand="list")
        await allowed(standin, ids["developer"])  # a team-owned application: its admins and developers
        await allowed(standin, ids["owner"])
        await refused(standin, "feeds", {}, ids["reader"], subcommand="list")

    run_standin(opted_in, bot_factory=_index_writers_bot(corpus_copy, ids, team=True,
                                                          discord_admin_guilds=str(DiscordStandIn().guild_id)))


def test_reindex_is_admin_only_and_reports_progress(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        before = bot.engine.stats().generation
        with pytest.raises(PermissionError):  # Discord shows /reindex to Manage Server members only
            await standin.slash_command("reindex", {}, user_id=standin.user_id, channel_id=standin.general_id)

        rec = await standin.slash_command("reindex", {}, user_id=standin.admin_id, channel_id=standin.general_id)
        [status] = await standin.wait_for_response(rec.id, kind="followup", timeout=30)
        # Questions are answered while the rebuild runs.
        await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")

        def finished() -> dict[str, Any] | None:
            msg = standin.get_message(int(status["message"]["id"]))
            return msg if msg and msg["content"].startswith("Rebuilt") else None

        final = await standin.wait_for(finished, timeout=120)
        assert "33 articles" in final["content"]
        [answer] = await wait_for_answer(standin, standin.dm_channel_id(standin.user_id), bot)
        assert "$3 to $5" in message_text(answer)
        assert bot.engine.stats().generation != before

    run_standin(scenario, bot_factory=bot_factory(corpus_copy, corpus=str(REPO / "docs_corpus")), timeout=150)


# ---------------------------------------------------------------------------------------- safety


def _add_article(index_dir: Path, doc: Document) -> None:
    Engine(make_settings(index_dir)).add_documents([doc])


def test_everyone_in_an_article_never_pings(corpus_copy: Path) -> None:
    _add_article(corpus_copy, Document(
        id="acme-recall", title="Acme recalls the Roadrunner e-bike", source="Test Wire",
        published_at=parse_date("2026-11-01"),
        body=("@everyone Acme recalled 40,000 Roadrunner e-bikes on Monday after battery fires. "
              "The recall notice told <@&123456> and @here to stop riding the bikes immediately. "
              "Acme said the Roadrunner battery recall covers bikes sold since March."),
    ))

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.send_message(standin.general_id, standin.user_id, "What did Acme recall and why?",
                                   mention_bot=True)
        await standin.wait_for(lambda: standin.threads, timeout=30)
        [answer] = await wait_for_answer(standin, int(standin.threads[0]["id"]), bot)
        text = message_text(answer)
        assert "Roadrunner" in text
        assert "@everyone" not in text and "@here" not in text and "<@&123456>" not in text
        assert "@\u200beveryone" in text
        sent = [c for c in standin.calls_matching("POST", MSG_CREATE) if c.json and c.json.get("embeds")]
        assert sent
        for call in sent:
            assert call.json["allowed_mentions"]["parse"] == [], "answers may never ping anyone"
        assert not answer.get("mention_everyone") and not answer.get("mention_roles")

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_long_questions_are_refused_politely(corpus_copy: Path) -> None:
    """(Per-user rate limits: tests/test_discord_operations.py.)"""

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.send_dm(standin.user_id, "Leica " * 300)  # 1,800 chars: Discord allows 2,000
        dm = standin.dm_channel_id(standin.user_id)
        [msg] = await wait_for_answer(standin, dm, bot)
        assert "please keep it under" in msg["content"]

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=60)


def test_allow_list_keeps_the_bot_quiet_elsewhere(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                   mention_bot=True)
        await standin.send_message(standin.news_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                   mention_bot=True)
        await standin.wait_for(lambda: standin.threads, timeout=30)
        await wait_for_answer(standin, int(standin.threads[0]["id"]), bot)
        assert len(standin.threads) == 1 and standin.threads[0]["parent_id"] == str(standin.news_id)

    def make(standin: DiscordStandIn) -> NewsBot:
        settings = make_settings(corpus_copy, discord_user_cooldown=0.0,
                                 discord_allowed_channels=str(standin.news_id))
        return NewsBot(Engine(settings), guild_ready_timeout=0.05)

    run_standin(scenario, bot_factory=make, timeout=60)


def test_a_failure_gives_an_apology_with_an_error_id_and_logs_it(corpus_copy: Path, caplog) -> None:  # noqa: ANN001
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        (corpus_copy / "CURRENT").write_text("g-vanished\n")  # the index disappears under the bot
        await asyncio.sleep(0.6)
        await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")
        [msg] = await wait_for_answer(standin, standin.dm_channel_id(standin.user_id), bot)
        match = re.search(r"Sorry — something went wrong.*error id `([0-9a-f]{8})`", msg["content"])
        assert match, msg["content"]
        logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
        assert logged and logged[0].exc_info, "the log has the detail under the same id"
        assert standin.token not in caplog.text

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=60)


def test_bot_survives_a_malformed_event(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        await standin.dispatch_raw("MESSAGE_CREATE", {"id": "1", "channel_id": str(standin.general_id)})
        await standin.dispatch_raw("INTERACTION_CREATE", {"type": 2, "id": "5"})
        await standin.dispatch_raw("GUILD_MEMBER_UPDATE", {"nonsense": True})
        await asyncio.sleep(0.3)
        assert not bot.is_closed()
        await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")
        [answer] = await wait_for_answer(standin, standin.dm_channel_id(standin.user_id), bot)
        assert "$3 to $5" in message_text(answer)
        assert standin.identify_count == 1

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=60)


@pytest.mark.slow
def test_twenty_concurrent_questions_while_heartbeats_continue(corpus_copy: Path) -> None:
    questions = [
        "Why is Xiaomi dropping Leica?", "How much market value did Nvidia lose?",
        "When did TSMC start 2nm volume production?", "How much does T-Satellite cost?",
        "How fast is BYD flash charging?",
    ] * 4

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        users = [standin.add_user(f"reader{i}") for i in range(20)]
        rx0, ack0 = standin.heartbeats_received, standin.heartbeat_acks_sent
        await asyncio.gather(*(
            standin.send_message(standin.general_id, uid, q, mention_bot=True)
            for uid, q in zip(users, questions, strict=True)
        ))

        def all_answered() -> bool:
            if len(standin.threads) < 20:
                return False
            return all(bot_messages(standin, int(t["id"]), bot) for t in standin.threads)

        await standin.wait_for(all_answered, timeout=120)
        for t in standin.threads:
            [answer] = bot_messages(standin, int(t["id"]), bot)
            assert "[1]" in message_text(answer)
        beats = standin.heartbeats_received - rx0
        assert beats >= 2, "the bot kept heartbeating while it answered"
        assert standin.heartbeat_acks_sent - ack0 >= beats - 1
        assert standin.identify_count == 1 and standin.resume_count == 0, "no reconnects"

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=180, heartbeat_interval_ms=500)


# ---------------------------------------------------------------------------------------- long answers


LONG_SENTENCE = ("Xiaomi's camera strategy, as the report describes it, rests on its in-house imaging teams, "
                 "on cost savings of three to five dollars per handset, and on a plan to move money into "
                 "sensors, batteries and displays across its REDMI and POCO lines [1]. ")


@pytest.mark.parametrize("embeds", [True, False])
def test_a_6000_character_answer_is_split_within_discord_limits(corpus_copy: Path, embeds: bool) -> None:
    from tests.openai_standin import OpenAIStandin

    long_answer = LONG_SENTENCE * 25  # ≈ 6,200 characters, every sentence cited
    assert len(long_answer) > 6000

    with OpenAIStandin() as llm:
        llm.reply_text(long_answer)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")
            dm = standin.dm_channel_id(standin.user_id)

            def final() -> list[dict[str, Any]] | None:
                msgs = bot_messages(standin, dm, bot)
                return msgs if msgs and "Sources" in message_text(msgs[-1]) else None

            msgs = await standin.wait_for(final, timeout=60)
            assert len(msgs) >= 2
            for m in msgs:
                assert len(m.get("content") or "") <= MESSAGE_LIMIT
                assert len(m.get("embeds") or []) <= 10
                assert sum(len(e.get("description") or "") + len(e.get("title") or "")
                           + len((e.get("footer") or {}).get("text") or "") for e in m.get("embeds") or []) \
                    <= EMBED_TOTAL_LIMIT
                for e in m.get("embeds") or []:
                    assert len(e["description"]) <= EMBED_DESCRIPTION_LIMIT
            whole = "\n".join(
                (m.get("content") or "") + "".join(e.get("description") or "" for e in m.get("embeds") or [])
                for m in msgs)
            assert whole.count("three to five dollars") == 25, "nothing lost or repeated at the splits"
            assert re.search(r"\[1\] (\[Xiaomi is Ending.*\]\(|Xiaomi is Ending.*Weibo)", whole)
            assert not [c for c in standin.calls if c.status >= 400]

        run_standin(scenario, bot_factory=bot_factory(
            corpus_copy, llm_base_url=llm.base_url, llm_model="standin", discord_embeds=embeds), timeout=120)


# ---------------------------------------------------------------------------------------- newsbot serve


def test_serve_without_token_says_how_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "NEWSBOT_DISCORD_TOKEN")}
    proc = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "DISCORD_TOKEN is not set" in proc.stderr
    assert "discord.com/developers/applications" in proc.stderr and "MESSAGE CONTENT" in proc.stderr


@pytest.mark.slow
def test_newsbot_serve_process_answers_through_the_standin(corpus_copy: Path) -> None:
    """The real `newsbot serve` command, pointed at the stand-in by NEWSBOT_DISCORD_API_BASE."""

    async def scenario(standin: DiscordStandIn, _: None) -> None:
        env = {**os.environ, "DISCORD_TOKEN": standin.token, "NEWSBOT_DISCORD_API_BASE": standin.api_base,
               "NEWSBOT_INDEX_DIR": str(corpus_copy), "NEWSBOT_DISCORD_GUILD_ID": str(standin.guild_id)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "newsbot.bot.cli", "serve", cwd=str(REPO), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await standin.wait_for(lambda: standin.identify_count >= 1, timeout=60)
            await standin.wait_for(lambda: standin.commands, timeout=30)
            await standin.send_dm(standin.user_id, "Why is Xiaomi dropping Leica?")
            dm = standin.dm_channel_id(standin.user_id)

            def answered() -> dict[str, Any] | None:
                msgs = [m for m in standin.messages_in(dm) if int(m["author"]["id"]) == standin.bot_user_id]
                return msgs[0] if msgs else None

            answer = await standin.wait_for(answered, timeout=90)
            assert "$3 to $5" in message_text(answer)
        finally:
            proc.terminate()
            _, stderr = await proc.communicate()
        assert standin.token not in stderr.decode(), "the token must never be logged"

    run_standin(scenario, timeout=200)


@pytest.mark.slow
def test_two_sharded_replicas_answer_each_question_once(corpus_copy: Path) -> None:
    """Two bot processes' worth of shards on one token: Discord routes each event to one shard only."""
    from newsbot.bot.discordbot.bot import ShardedNewsBot, make_bot
    from tests.discord_standin import running_bot

    def replica(shard: int) -> NewsBot:
        settings = make_settings(corpus_copy, discord_user_cooldown=0.0, discord_sharded=True,
                                 discord_shard_count=2, discord_shard_ids=str(shard))
        return make_bot(Engine(settings), guild_ready_timeout=0.05)

    async def scenario(standin: DiscordStandIn, first: NewsBot) -> None:
        second = replica(1)
        async with running_bot(standin, second):
            assert isinstance(first, ShardedNewsBot) and isinstance(second, ShardedNewsBot)
            assert first.shard_ids == [0] and second.shard_ids == [1] and standin.identify_count == 2
            owner = first if first.guilds else second
            other = second if owner is first else first
            assert [g.id for g in owner.guilds] == [standin.guild_id] and not list(other.guilds)
            await ready(first)
            await ready(second)
            await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                       mention_bot=True)
            await standin.wait_for(lambda: standin.threads, timeout=30)
            [answer] = await wait_for_answer(standin, int(standin.threads[0]["id"]), owner)
            assert "$3 to $5" in message_text(answer)
            await standin.send_dm(standin.user_id, "What is 5G-Advanced?")  # DMs go to shard 0
            await wait_for_answer(standin, standin.dm_channel_id(standin.user_id), first)
            await asyncio.sleep(1.0)  # give a (wrong) second answer time to appear
            assert len(standin.threads) == 1
            assert len(bot_messages(standin, int(standin.threads[0]["id"]), owner)) == 1
            assert len(bot_messages(standin, standin.dm_channel_id(standin.user_id), first)) == 1

    run_standin(scenario, bot_factory=lambda standin: replica(0), timeout=120)
