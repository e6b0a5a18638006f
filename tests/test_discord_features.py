"""Issue 17, points 4, 5 and 7, end to end through the local Discord stand-in (and the CLI):
`/help` drawn from the index, autocomplete of `/source id` and of `source` options, the refusal of an
outlet the index does not have, and per-server settings (`/config`) that survive a restart."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from newsbot.bot.discordbot.bot import NewsBot
from newsbot.bot.engine import Engine
from newsbot.bot.state import State
from newsbot.index.documents import Document, parse_date
from tests.discord_standin import DiscordStandIn, running_bot
from tests.helpers import HARBOR, LANTERN, ORCHARD, QUBIT, REPO, TIDEWELL, bot_factory, make_settings, ready
from tests.standin_fixtures import run_standin

OUTLETS = ["AI Dispatch", "ChargeLine", "Handset Weekly", "Lens & Sensor", "Market Circuit", "Signal Desk",
           "Silicon Ledger", "The Fab Report", "Weibo"]


def field_map(message: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for f in message["embeds"][0]["fields"]:
        fields[f["name"]] = (fields[f["name"]] + "\n" + f["value"]) if f["name"] in fields else f["value"]
    return fields


# ---------------------------------------------------------------------------------------- /help


def test_help_shows_checked_examples_scope_and_commands(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        rec = await standin.slash_command("help", {}, user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=90)
        message = resp["message"]
        assert message["flags"] & 64, "/help is only for the one who asked"
        assert standin.interaction_responses(rec.id)[0]["type"] == 5  # deferred: examples take a moment
        fields = field_map(message)
        assert "Mention me" in fields["What I do"] and "/ask" in fields["What I do"]
        known = fields["What I know"]
        assert "33 articles from 9 outlets" in known and "2026-11-24" in known and "AI Dispatch (6)" in known
        commands = fields["Commands"]
        for name in ("/ask", "/search", "/source", "/latest", "/stats", "/help", "/config", "/feeds add"):
            assert f"`{name}`" in commands, name
        examples = [line.removeprefix("• ") for line in fields["Try asking"].split("\n")]
        assert len(examples) == 3
        newest = await bot.run_engine(bot.engine.latest, limit=8)
        for question in examples:
            # drawn from one of the newest articles' headlines, and answered from that article
            source = next(d for d in newest if question.rstrip("?").split(" on ", 1)[-1] in d.title)
            answer = await bot.run_engine(bot.engine.ask, question, use_llm=False)
            assert answer.found, question
            assert source.id in {c.doc_id for c in answer.citations}, question

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=150)


def test_help_examples_come_from_this_index(article_writer, tmp_path: Path) -> None:  # noqa: ANN001
    """Another index, other examples: each built from one of its newest headlines and answered (found)."""
    stories = {
        "Zeta Quantum Unveils Glimmerstone Photonic Chip": (QUBIT, "2025-06-02"),
        "Tidewell Energy Switches On Tidal Turbine Array": (TIDEWELL, "2025-06-04"),
        "Port Authority Orders Forty Electric Cranes": (HARBOR, "2025-06-03"),
        "Orchard Silicon Opens Dresden Wafer Plant": (ORCHARD, "2025-05-01"),
        "Lantern Mobile Cuts Folding Phone Price in Brazil": (LANTERN, "2025-04-01"),
    }
    for i, (title, (body, date)) in enumerate(stories.items()):
        article_writer(f"a{i}.md", title=title, body=body, date=date, source="Grid Wire" if i % 2 else "Tech Wire")
    engine = Engine(make_settings(tmp_path / "idx"))
    engine.build([article_writer.folder])
    overview = engine.overview()
    assert overview.documents == 5 and overview.newest_article == "2025-06-04"
    assert sorted(overview.outlets) == [("Grid Wire", 2), ("Tech Wire", 3)]
    newest_three = ["Tidewell Energy", "Port Authority", "Zeta Quantum"]
    assert len(overview.examples) == 3
    for question, start in zip(overview.examples, newest_three, strict=True):
        assert start in question, (question, start)
        assert engine.ask(question, use_llm=False).found, question


# ---------------------------------------------------------------------------------------- autocomplete


def test_source_id_autocompletes_by_title(corpus_copy: Path) -> None:
    long_title = "A Very Long Headline About Satellites " + "and Phones " * 12
    doc = Document(id="l" * 120, title=long_title, body="Satellites talk to phones now. " * 20,
                   source="Signal Desk", published_at=parse_date("2027-01-01"))
    doc2 = Document(id="satellite-roundup", title=long_title + " Part Two", body="Phones talk to satellites. " * 20,
                    source="Signal Desk", published_at=parse_date("2027-01-02"))
    Engine(make_settings(corpus_copy)).add_documents([doc, doc2])

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        rec = await standin.autocomplete("source", "id", "leica", user_id=standin.user_id,
                                         channel_id=standin.general_id)
        choices = await standin.wait_for_choices(rec)
        assert choices and all("leica" in c["name"].lower() for c in choices)
        assert choices[0]["value"] == "huawei-imaging-after-leica-pura-80"  # newest first
        assert choices[0]["name"].endswith(" — Lens & Sensor, 2025-06-12")
        [xiaomi] = [c for c in choices if c["value"] == "xiaomi-ends-leica-partnership"]
        assert xiaomi["name"].startswith("Xiaomi is Ending its Leica") and xiaomi["name"].endswith("Weibo, 2025-05-19")

        # Nothing typed yet: the newest articles, at most 25; long titles shortened, too-long ids left out.
        rec = await standin.autocomplete("source", "id", "", user_id=standin.user_id, channel_id=standin.general_id)
        choices = await standin.wait_for_choices(rec)
        assert len(choices) == 25
        assert choices[0]["value"] == "satellite-roundup" and len(choices[0]["name"]) <= 100
        assert choices[0]["name"].endswith("… — Signal Desk, 2027-01-02")
        assert all(len(c["value"]) <= 100 for c in choices) and doc.id not in {c["value"] for c in choices}

        # Typing the start of an id works too; picking a choice sends its id to /source.
        rec = await standin.autocomplete("source", "id", "TSMC-2nm", user_id=standin.user_id,
                                         channel_id=standin.general_id)
        choices = await standin.wait_for_choices(rec)
        assert [c["value"] for c in choices] == ["tsmc-2nm-volume-production-update", "tsmc-2nm-on-track-2025"]
        rec = await standin.slash_command("source", {"id": choices[0]["value"]}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert resp["message"]["embeds"][0]["title"].startswith("Update: TSMC Confirms 2nm")

        rec = await standin.autocomplete("source", "id", "no such words", user_id=standin.user_id,
                                         channel_id=standin.general_id)
        assert await standin.wait_for_choices(rec) == []

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_standin_refuses_choices_discord_would_refuse() -> None:
    """The stand-in checks autocomplete results as Discord does, so the tests above can fail."""
    import discord
    from discord import app_commands
    from discord.ext import commands

    offered: dict[str, list[app_commands.Choice[str]]] = {
        "ok": [app_commands.Choice(name="Weibo", value="Weibo")],
        "many": [app_commands.Choice(name=f"n{i}", value=f"v{i}") for i in range(26)],
        "long name": [app_commands.Choice(name="x" * 101, value="v")],
        "long value": [app_commands.Choice(name="n", value="v" * 101)],
    }

    def make(standin: DiscordStandIn) -> commands.Bot:
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)

        @app_commands.command(name="pick", description="Pick one")
        @app_commands.describe(kind="What to offer", thing="The thing")
        async def pick(interaction: discord.Interaction, kind: str, thing: str) -> None:
            await interaction.response.send_message(f"{kind}: {thing}")

        @pick.autocomplete("thing")
        async def things(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return offered[interaction.namespace.kind]

        bot.tree.add_command(pick)

        async def setup_hook() -> None:
            await bot.tree.sync()

        bot.setup_hook = setup_hook  # type: ignore[method-assign]
        return bot

    async def scenario(standin: DiscordStandIn, bot: Any) -> None:
        await standin.wait_for(lambda: standin.commands)
        with pytest.raises(ValueError, match="no autocomplete"):
            await standin.autocomplete("pick", "kind", "o", user_id=standin.user_id, channel_id=standin.general_id)
        for kind in offered:
            rec = await standin.autocomplete("pick", "thing", "", {"kind": kind}, user_id=standin.user_id,
                                             channel_id=standin.general_id)
            await standin.wait_for(lambda rec=rec: rec.responses)
            [resp] = rec.responses
            assert resp["type"] == 8 and resp["ok"] == (kind == "ok"), (kind, resp)
            if kind != "ok":
                assert resp["status"] == 400 and resp["error"]["code"] == 50035

    run_standin(scenario, bot_factory=make, check_clean=False)


def test_source_options_autocomplete_outlets(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        for command, filled in (("search", {"query": "chips"}), ("latest", {}), ("ask", {"question": "why?"})):
            rec = await standin.autocomplete(command, "source", "", filled, user_id=standin.user_id,
                                             channel_id=standin.general_id)
            choices = await standin.wait_for_choices(rec)
            assert sorted(c["value"] for c in choices) == OUTLETS, command
            assert all(c["name"] == c["value"] for c in choices)
            rec = await standin.autocomplete(command, "source", "si", filled, user_id=standin.user_id,
                                             channel_id=standin.general_id)
            assert [c["value"] for c in await standin.wait_for_choices(rec)] == ["Signal Desk", "Silicon Ledger"]
            rec = await standin.autocomplete(command, "source", "REPORT", filled, user_id=standin.user_id,
                                             channel_id=standin.general_id)
            assert [c["value"] for c in await standin.wait_for_choices(rec)] == ["The Fab Report"]

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_unknown_outlet_is_named_with_known_ones_on_discord(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        for command, options in (("search", {"query": "chips"}), ("latest", {}),
                                 ("ask", {"question": "What did Nvidia lose?"})):
            rec = await standin.slash_command(command, {**options, "source": "Reuters"}, user_id=standin.user_id,
                                              channel_id=standin.general_id)
            [resp] = await standin.wait_for_response(rec.id)
            message = resp["message"]
            assert message["flags"] & 64, command
            assert message["content"].startswith("No outlet named Reuters; known: AI Dispatch, "), message["content"]
            assert all(o in message["content"] for o in OUTLETS)
            assert "couldn't find" not in message["content"]

        # Any case or spacing of a known outlet is that outlet.
        rec = await standin.slash_command("latest", {"source": "  signal   DESK "}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        description = resp["message"]["embeds"][0]["description"]
        assert "Phones That Talk to Satellites" in description and "Weibo" not in description
        rec = await standin.slash_command("ask", {"question": "Why is Xiaomi dropping Leica?", "source": "weibo"},
                                          user_id=standin.user_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
        assert "$3 to $5" in resp["message"]["embeds"][0]["description"]

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=120)


def test_unknown_outlet_is_named_with_known_ones_in_the_cli(corpus_copy: Path) -> None:
    def newsbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(corpus_copy), *args],
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    for args in (["ask", "What did Nvidia lose?", "--source", "Reuters"], ["search", "chips", "--source", "Reuters"],
                 ["latest", "--source", "Reuters"]):
        done = newsbot(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "no outlet named Reuters; known: AI Dispatch, " in done.stderr, done.stderr
        assert "couldn't find" not in done.stdout and not done.stdout.strip()
    done = newsbot("latest", "--source", "lens & SENSOR", "--limit", "2")
    assert done.returncode == 0, done.stderr
    assert re.match(r"2025-09-10  iPhone 17 Pro .* — Lens & Sensor\n", done.stdout), done.stdout
    assert len(re.findall(r"^\d{4}-\d\d-\d\d ", done.stdout, re.M)) == 2


# ---------------------------------------------------------------------------------------- /config


def test_config_is_for_manage_server_members(corpus_copy: Path) -> None:
    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        config = next(c for c in standin.commands if c["name"] == "config")
        assert config["default_member_permissions"] == str(1 << 5)  # MANAGE_GUILD: hidden from other members
        assert config["contexts"] == [0]  # servers only
        with pytest.raises(PermissionError):
            await standin.slash_command("config", {}, user_id=standin.user_id, channel_id=standin.general_id)
        # A server may show it to anyone (Integrations settings): the bot still checks Manage Server itself.
        standin.command_overrides["config"] = {standin.user_id}
        rec = await standin.slash_command("config", {"private": True}, user_id=standin.user_id,
                                          channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        assert resp["message"]["flags"] & 64 and "Manage Server" in resp["message"]["content"]
        assert (await bot.run_engine(bot.engine.server_settings, standin.guild_id)).private is None

        rec = await standin.slash_command("config", {}, user_id=standin.admin_id, channel_id=standin.general_id)
        [resp] = await standin.wait_for_response(rec.id)
        text = resp["message"]["embeds"][0]["description"]
        assert resp["message"]["flags"] & 64
        assert "**Answers in:** every channel" in text and "**A mention opens a thread:** yes (default)" in text

    run_standin(scenario, bot_factory=bot_factory(corpus_copy), timeout=90)


def test_config_is_stored_and_honoured_after_a_restart(corpus_copy: Path) -> None:
    settings = make_settings(corpus_copy, discord_user_cooldown=0.0, discord_guild_rate=1000)

    def new_bot() -> NewsBot:  # a new engine too: nothing carried over in memory
        return NewsBot(Engine(settings), guild_ready_timeout=0.05)

    async def bot_messages(standin: DiscordStandIn, channel_id: int, bot: NewsBot) -> list[dict[str, Any]]:
        return [m for m in standin.messages_in(channel_id, include_ephemeral=False) if int(m["author"]["id"]) == bot.user.id]

    async def main() -> None:
        standin = DiscordStandIn()
        await standin.start()
        try:
            async with running_bot(standin, new_bot()) as bot:
                await ready(bot)
                for options in ({"answer_in": standin.news_id}, {"private": True, "embeds": False},
                                {"threads": False}):
                    rec = await standin.slash_command("config", options, user_id=standin.admin_id,
                                                      channel_id=standin.general_id)
                    [resp] = await standin.wait_for_response(rec.id)
                    assert resp["ok"]
                text = resp["message"]["content"]  # plain text now
                assert text.startswith("**Saved.") and f"**Answers in:** <#{standin.news_id}>" in text
                assert "**Private answers by default:** yes —" in text and "**Answers as:** plain text" in text
                assert "**A mention opens a thread:** no —" in text and f"by <@{standin.admin_id}>" in text
                assert resp["data"]["data"]["allowed_mentions"] == {"parse": []}

            async with running_bot(standin, new_bot()) as bot:  # the restart
                await ready(bot)
                # Outside the chosen channels: a mention is ignored, a slash command says where to go.
                await standin.send_message(standin.general_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                           mention_bot=True)
                rec = await standin.slash_command("ask", {"question": "What is 5G-Advanced?"},
                                                  user_id=standin.user_id, channel_id=standin.general_id)
                [resp] = await standin.wait_for_response(rec.id)
                assert resp["message"]["flags"] & 64
                assert f"In this server I answer in <#{standin.news_id}>" in resp["message"]["content"]

                # In #news: the mention is answered in the channel (no thread), as plain text.
                await standin.send_message(standin.news_id, standin.user_id, "Why is Xiaomi dropping Leica?",
                                           mention_bot=True)

                async def answered() -> list[dict[str, Any]]:
                    return [m for m in await bot_messages(standin, standin.news_id, bot) if m["content"]]

                for _ in range(600):
                    if await answered():
                        break
                    await asyncio.sleep(0.1)
                [answer] = await answered()
                assert "$3 to $5" in answer["content"] and not answer["embeds"] and answer["message_reference"]
                assert not standin.threads
                assert await bot_messages(standin, standin.general_id, bot) == []

                # /ask there is private by default (and in plain text); private:false still wins.
                rec = await standin.slash_command("ask", {"question": "Why is Xiaomi dropping Leica?"},
                                                  user_id=standin.user_id, channel_id=standin.news_id)
                [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
                assert resp["message"]["flags"] & 64 and "$3 to $5" in resp["message"]["content"]
                assert not resp["message"]["embeds"]
                rec = await standin.slash_command("ask", {"question": "Why is Xiaomi dropping Leica?",
                                                          "private": False},
                                                  user_id=standin.user_id, channel_id=standin.news_id)
                [resp] = await standin.wait_for_response(rec.id, kind="followup", timeout=60)
                assert not resp["message"]["flags"] & 64
                rec = await standin.slash_command("latest", {}, user_id=standin.user_id, channel_id=standin.news_id)
                [resp] = await standin.wait_for_response(rec.id)
                assert resp["message"]["flags"] & 64

                # Back to every channel: #general answers again, in a thread when threads are on.
                rec = await standin.slash_command("config", {"all_channels": True, "threads": True},
                                                  user_id=standin.admin_id, channel_id=standin.news_id)
                await standin.wait_for_response(rec.id)
                await standin.send_message(standin.general_id, standin.user_id, "What is 5G-Advanced?",
                                           mention_bot=True)
                await standin.wait_for(lambda: standin.threads, timeout=60)
            standin.assert_clean()
        finally:
            await standin.stop()

    asyncio.run(main())


@pytest.mark.postgres
def test_server_settings_are_shared_by_replicas_on_postgresql(postgres_url: str) -> None:
    one, two = State(postgres_url), State(postgres_url)
    one.update_server_settings("42", add_channels=["7"], embeds=False, updated_by="1")
    two.update_server_settings("42", add_channels=["8"], threads=False, updated_by="2")
    seen = one.server_settings("42")
    assert seen.channels == ("7", "8") and seen.embeds is False and seen.threads is False and seen.private is None
    assert seen.updated_by == "2"
    one.update_server_settings("42", remove_channels=["7"], private=True)
    assert two.server_settings("42").channels == ("8",) and two.server_settings("42").private is True
    assert two.server_settings("43").channels == () and two.server_settings("43").embeds is None
    one.close()
    two.close()
