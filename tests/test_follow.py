"""News comes to the channel (issue 16, points 3-5), end to end through the local Discord stand-in with
real feeds served on 127.0.0.1: `/follow` posts cards for matching articles the bot's own feed polling
indexes (once; a syndicated copy edits the card; a restart posts nothing again), and `/digest-schedule`
posts a daily digest once per due time (a missed one once at start; with two replicas sharing
PostgreSQL, exactly once).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsbot.bot.discordbot.bot import NewsBot
from newsbot.bot.engine import Engine
from newsbot.bot.schedules import digest_period, latest_due, next_due, parse_time, parse_zone
from newsbot.bot.state import State
from tests.discord_standin import DiscordStandIn, running_bot
from tests.helpers import make_settings, page, ready, write_article
from tests.http_fixtures import LocalServer
from tests.standin_fixtures import run_standin

TOPIC = "deep-sea mining"
# (slug, date, title, text): three seabed-mining events a week apart, and two articles about other things.
MATCHING = [
    ("norway-seabed", "2025-03-01", "Norway opens Arctic seabed to mineral exploration",
     "Norway's parliament voted on Saturday to open part of its Arctic continental shelf to deep-sea mining "
     "exploration, the first country to do so. Licences for manganese crusts and sulphide deposits near Jan "
     "Mayen will be offered next year. Environmental groups said deep-sea mining would harm fragile ecosystems "
     "that scientists have barely studied."),
    ("collector-trial", "2025-03-07", "Seabed collector vehicle finishes Pacific nodule trial",
     "A robotic collector built by Abyssal Metals finished a three-week trial in the Clarion-Clipperton Zone, "
     "lifting 3,000 tonnes of polymetallic nodules from 4,000 metres down. The company says the deep-sea "
     "mining test shows nodules can be gathered at commercial scale; marine biologists measured sediment "
     "plumes that drifted tens of kilometres from the site."),
    ("isa-kingston", "2025-03-13", "Seabed authority ends Kingston session without a mining code",
     "Delegates at the International Seabed Authority in Kingston, Jamaica, ended their session on Thursday "
     "without agreeing the rules that would allow deep-sea mining to begin in international waters. "
     "Thirty-two countries now back a moratorium on mining the ocean floor until its effects are understood."),
]
OTHER = [
    ("transfer", "2025-03-05", "Rovers sign striker Tomas Vidal on a four-year deal",
     "Rovers signed the striker Tomas Vidal from Porto on Wednesday for a club-record fee. Vidal scored "
     "nineteen league goals last season and will wear the number nine shirt, the club said."),
    ("bakery", "2025-03-10", "Bakery chain raises bread prices as flour costs climb",
     "Crumb & Co, a bakery chain with 140 shops, will raise the price of a loaf by 20 cents next month. The "
     "company blamed flour and energy costs, which have risen by a third since last spring."),
]


def _rss(title: str, items: list[tuple[str, str, str, str]]) -> bytes:
    """RSS 2.0 with (guid, title, link, date YYYY-MM-DD) items."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid isPermaLink=\"false\">{g}</guid>"
        f"<pubDate>{datetime.fromisoformat(d).strftime('%a, %d %b %Y')} 09:00:00 GMT</pubDate>"
        f"<description>{t}.</description></item>"
        for g, t, link, d in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>/</link><description>news</description>{body}</channel></rss>").encode()


def _serve_ocean_desk(web: LocalServer) -> None:
    items = []
    for slug, date, title, text in [*MATCHING, *OTHER]:
        web.add(f"/{slug}", page(title, text, site="Ocean Desk", date=f"{date}T09:00:00Z"))
        items.append((slug, title, web.url(f"/{slug}"), date))
    web.add("/feed.xml", _rss("Ocean Desk", items), content_type="application/rss+xml")
    # Another outlet runs the Norway story word for word (syndication): a second feed.
    slug, date, title, text = MATCHING[0]
    web.add("/copy/norway", page(title, text, site="Harbor Times", date=f"{date}T11:00:00Z"))
    web.add("/copy.xml", _rss("Harbor Times", [("copy-norway", title, web.url("/copy/norway"), date)]),
            content_type="application/rss+xml")


def _cards(standin: DiscordStandIn, channel_id: int) -> list[dict[str, Any]]:
    """The follow cards the bot posted in a channel (edits applied)."""
    return [m for m in standin.messages_in(channel_id) if m.get("embeds")
            and (m["embeds"][0].get("title") or "").startswith("Following")]


async def _slash(standin: DiscordStandIn, name: str, options: dict[str, Any], user: int, channel: int,
                 subcommand: str | None = None, kind: str | None = None) -> dict[str, Any]:
    rec = await standin.slash_command(name, options, user_id=user, channel_id=channel, subcommand=subcommand)
    responses = await standin.wait_for_response(rec.id, kind=kind, timeout=60)
    return responses[0]["message"]


async def _add_feed(standin: DiscordStandIn, url: str) -> None:
    msg = await _slash(standin, "feeds", {"url": url}, standin.admin_id, standin.general_id, "add", kind="followup")
    assert msg["content"].startswith("Following"), msg["content"]


def test_follow_posts_matching_articles_once_updates_syndicated_copies_and_survives_restart(
    corpus_copy: Path,
) -> None:
    settings = make_settings(corpus_copy, allow_private_urls=True, feed_poll_minutes=0.02,
                             discord_user_cooldown=0.0, discord_guild_rate=1000)
    with LocalServer() as web:
        _serve_ocean_desk(web)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            news = standin.news_id
            synced = {c["name"]: c for c in standin.commands}
            assert {"follow", "unfollow", "follows", "digest-schedule", "digest"} <= set(synced)
            assert str(synced["follow"]["default_member_permissions"]) == str(1 << 4)  # Manage Channels
            # Shown to channel managers only; where a server opens it to everyone, the bot still refuses.
            with pytest.raises(PermissionError):
                await standin.slash_command("follow", {"topic": TOPIC}, user_id=standin.user_id, channel_id=news)
            standin.command_overrides = {"follow": {standin.everyone_role_id}}
            msg = await _slash(standin, "follow", {"topic": TOPIC}, standin.user_id, news)
            assert msg["flags"] & 64 and "Manage Channels" in msg["content"]

            msg = await _slash(standin, "follow", {"topic": TOPIC}, standin.admin_id, news)
            assert msg["content"].startswith(f"Following “{TOPIC}” in this channel"), msg["content"]
            msg = await _slash(standin, "follows", {}, standin.admin_id, news)
            assert f"“{TOPIC}”" in msg["content"]

            # The bot's own poll indexes 5 articles: one card naming exactly the 3 matching stories.
            await _add_feed(standin, web.url("/feed.xml"))
            [card] = await standin.wait_for(lambda: _cards(standin, news) or None, timeout=90,
                                            what="a follow card")
            embed = card["embeds"][0]
            text = embed["description"]
            assert embed["title"] == f"Following “{TOPIC}”"
            for slug, _, title, _ in MATCHING:
                assert title in text and f"({web.url('/' + slug)})" in text, title
            for _, _, title, _ in OTHER:
                assert title not in text
            blocks = text.split("\n\n")
            assert len(blocks) == 3
            order = [block.splitlines()[0] for block in blocks]
            for block in blocks:  # each story: its lead sentence with a citation, and the cited link
                lead = next(line for line in block.splitlines() if line.startswith("> "))
                assert re.search(r"\[\d\]$", lead.rstrip()), lead
                assert "Ocean Desk" in block and "http://127.0.0.1" in block
            posts = [c for c in standin.calls_matching("POST", rf"^/channels/{news}/messages$")]
            assert len(posts) == 1 and posts[0].json["allowed_mentions"]["parse"] == []

            # Re-polls find nothing new: nothing more is posted.
            polls = web.hits("/feed.xml")
            await standin.wait_for(lambda: web.hits("/feed.xml") >= polls + 3, timeout=30, what="three re-polls")
            assert len(_cards(standin, news)) == 1 and len(standin.calls_matching("POST", rf"^/channels/{news}/messages$")) == 1

            # A syndicated copy of the Norway story (another outlet, word for word): the card is edited.
            await _add_feed(standin, web.url("/copy.xml"))

            def edited() -> dict[str, Any] | None:
                cards = _cards(standin, news)
                return cards[0] if cards and "+1 outlet" in cards[0]["embeds"][0]["description"] else None

            card = await standin.wait_for(edited, timeout=90, what="the card edited for the syndicated copy")
            edited_blocks = card["embeds"][0]["description"].split("\n\n")
            assert [b.splitlines()[0] for b in edited_blocks] == order, "the stories keep their places"
            norway = next(b for b in edited_blocks if MATCHING[0][2] in b)
            assert "Harbor Times" in norway and "+1 outlet" in norway
            assert len(_cards(standin, news)) == 1
            assert len(standin.calls_matching("POST", rf"^/channels/{news}/messages$")) == 1
            assert standin.calls_matching("PATCH", rf"^/channels/{news}/messages/{card['id']}$")

            # Restart: a new bot process on the same state. An article of a posted story changes and is
            # indexed again (outcome "updated"): the story was shown, so nothing is posted.
            await bot.close()
            slug, date, title, text = MATCHING[1]
            web.add(f"/{slug}", page(title, text + " The trial ended a day early because of a storm.",
                                     site="Ocean Desk", date=f"{date}T09:00:00Z"))
            items = [(s, t, web.url(f"/{s}"), d) for s, d, t, _ in [*MATCHING, *OTHER]]
            items[1] = (items[1][0], items[1][1] + " (updated)", items[1][2], items[1][3])
            web.add("/feed.xml", _rss("Ocean Desk", items), content_type="application/rss+xml")
            again = NewsBot(Engine(settings), guild_ready_timeout=0.05)
            async with running_bot(standin, again):
                await ready(again)
                page_hits = web.hits(f"/{slug}")
                await standin.wait_for(lambda: web.hits(f"/{slug}") > page_hits, timeout=60,
                                       what="the restarted bot's poll re-fetching the changed entry")
                polls = web.hits("/feed.xml")
                await standin.wait_for(lambda: web.hits("/feed.xml") >= polls + 2, timeout=30)
                assert len(standin.calls_matching("POST", rf"^/channels/{news}/messages$")) == 1, "no re-post"
                assert len(_cards(standin, news)) == 1

                msg = await _slash(standin, "unfollow", {"topic": TOPIC}, standin.admin_id, news)
                assert msg["content"].startswith(f"Stopped following “{TOPIC}”")
                assert again.engine.follows(news) == []

        run_standin(scenario, bot_factory=lambda standin: NewsBot(Engine(settings), guild_ready_timeout=0.05),
                    timeout=300)


def test_articles_another_process_indexes_get_follow_cards_once(corpus_copy: Path, tmp_path: Path) -> None:
    """`newsbot add` (or a cron `newsbot update`) runs in another process: the bot notices the new index
    version within follow_check_seconds and posts one card for the matching articles, and only once."""
    settings = make_settings(corpus_copy, feed_poll_minutes=0, follow_check_seconds=0.5,
                             discord_user_cooldown=0.0, discord_guild_rate=1000)
    folder = tmp_path / "new"
    for slug, date, title, text in [*MATCHING, *OTHER]:
        write_article(folder, f"{slug}.md", title=title, body=text, source="Ocean Desk", date=date,
                      url=f"https://oceandesk.example/{slug}")

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        news = standin.news_id
        msg = await _slash(standin, "follow", {"topic": TOPIC}, standin.admin_id, news)
        assert msg["content"].startswith(f"Following “{TOPIC}” in this channel"), msg["content"]
        await asyncio.sleep(1.2)  # the bot has seen the index as it is before the other process adds
        other = Engine(settings)  # what `newsbot add new/` does in its own process
        report = await asyncio.to_thread(other.add, [str(folder)])
        assert report.added == len(MATCHING) + len(OTHER)
        [card] = await standin.wait_for(lambda: _cards(standin, news) or None, timeout=60,
                                        what="a follow card for articles indexed elsewhere")
        text = card["embeds"][0]["description"]
        assert all(title in text for _, _, title, _ in MATCHING)
        assert not any(title in text for _, _, title, _ in OTHER)
        await asyncio.sleep(2.0)  # more checks of the (unchanged) index: nothing posted again
        assert len(standin.calls_matching("POST", rf"^/channels/{news}/messages$")) == 1

    run_standin(scenario, bot_factory=lambda standin: NewsBot(Engine(settings), guild_ready_timeout=0.05),
                timeout=240)


# ------------------------------------------------------------------------------- scheduled digests


def test_schedule_times_and_zones() -> None:
    assert parse_time("9:00") == "09:00" and parse_time("17.30") == "17:30"
    for bad in ("25:00", "9", "nine", ""):
        with pytest.raises(ValueError, match="HH:MM"):
            parse_time(bad)
    assert parse_zone(None) == "UTC" and parse_zone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ValueError, match="IANA"):
        parse_zone("Mars/Olympus")
    now = datetime(2025, 3, 30, 10, 0, tzinfo=UTC)  # Berlin switched to summer time at 01:00 UTC that day
    assert latest_due("09:00", "Europe/Berlin", now) == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    assert latest_due("13:00", "Europe/Berlin", now) == datetime(2025, 3, 29, 12, 0, tzinfo=UTC)  # winter time
    assert next_due("13:00", "Europe/Berlin", now) == datetime(2025, 3, 30, 11, 0, tzinfo=UTC)
    due = datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    assert digest_period("", due) == due - timedelta(days=1)
    assert digest_period((due - timedelta(days=3)).isoformat(), due) == due - timedelta(days=3)  # missed days
    assert digest_period((due - timedelta(days=30)).isoformat(), due) == due - timedelta(days=7)


def _fresh_index(tmp_path: Path, **overrides: Any) -> Engine:
    """An index of three articles published in the last two days (so that a daily digest has stories)."""
    folder = tmp_path / "fresh"
    today = datetime.now(UTC).date()
    for n, (slug, _, title, text) in enumerate(MATCHING):
        write_article(folder, f"{slug}.md", title=title, body=text, source="Ocean Desk",
                      date=(today - timedelta(days=n % 2)).isoformat(), url=f"https://oceandesk.example/{slug}")
    engine = Engine(make_settings(tmp_path / "index", **overrides))
    engine.build([folder])
    return engine


def _schedule_missed_for_three_days(engine: Engine, state: State, channel: int, guild: int) -> None:
    """A daily schedule at the last full hour whose last digest was three days ago (the bot was down)."""
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%H:00")
    schedule, new = engine.schedule_digest(guild, channel, at_time=at, timezone="UTC")
    assert new and engine.due_digests() == [], "a new schedule first posts at its next due time"
    three_days = (datetime.fromisoformat(schedule.last_due) - timedelta(days=3)).isoformat(timespec="seconds")
    with state.db.transaction(lock="newsbot-state") as db:
        db.execute("UPDATE digest_schedules SET last_due = ? WHERE id = ?", (three_days, schedule.id))


def _digests(standin: DiscordStandIn, channel: int) -> list[dict[str, Any]]:
    return [m for m in standin.messages_in(channel) if m.get("embeds")
            and (m["embeds"][0].get("title") or "").startswith("Top stories")]


def _digest_bot(settings: Any) -> NewsBot:
    return NewsBot(Engine(settings), guild_ready_timeout=0.05)


async def _one_digest_then_quiet(standin: DiscordStandIn, channel: int) -> dict[str, Any]:
    [digest] = await standin.wait_for(lambda: _digests(standin, channel) or None, timeout=60,
                                      what="the missed digest")
    await asyncio.sleep(2.0)  # several more checks (every 0.3 s): nothing more
    assert len(_digests(standin, channel)) == 1
    return digest


def test_missed_schedule_posts_once_on_start_and_not_again_after_a_restart(tmp_path: Path) -> None:
    engine = _fresh_index(tmp_path)
    settings = make_settings(tmp_path / "index", digest_schedule_seconds=0.3, feed_poll_minutes=0)

    async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
        await ready(bot)
        msg = await _slash(standin, "digest-schedule", {"time": "9:00", "timezone": "Europe/Berlin"},
                           standin.admin_id, standin.news_id, "set")
        assert msg["content"].startswith("Scheduled: daily digest at 09:00 Europe/Berlin"), msg["content"]
        msg = await _slash(standin, "digest-schedule", {"time": "8:00", "timezone": "Moon/Base"},
                           standin.admin_id, standin.news_id, "set")
        assert "IANA" in msg["content"] and msg["flags"] & 64
        msg = await _slash(standin, "digest-schedule", {}, standin.admin_id, standin.news_id, "list")
        assert "09:00 Europe/Berlin" in msg["content"]
        msg = await _slash(standin, "digest-schedule", {"time": "09:00"}, standin.admin_id, standin.news_id, "remove")
        assert msg["content"].startswith("Removed")
        await bot.close()

        _schedule_missed_for_three_days(engine, engine.state, standin.news_id, standin.guild_id)
        async with running_bot(standin, _digest_bot(settings)):
            digest = await _one_digest_then_quiet(standin, standin.news_id)
            text = digest["embeds"][0]["description"]
            assert "Norway opens Arctic seabed" in text and "[1]" in text and "https://oceandesk.example/" in text
            assert "daily digest at" in digest["embeds"][0]["footer"]["text"]
        async with running_bot(standin, _digest_bot(settings)):  # restart: the due time was posted already
            await asyncio.sleep(2.0)
            assert len(_digests(standin, standin.news_id)) == 1

    run_standin(scenario, bot_factory=lambda standin: _digest_bot(settings), timeout=180)


@pytest.mark.postgres
def test_two_replicas_sharing_postgresql_post_a_scheduled_digest_once(tmp_path: Path, postgres_url: str) -> None:
    engine = _fresh_index(tmp_path, database_url=postgres_url)
    settings = make_settings(tmp_path / "index", database_url=postgres_url, digest_schedule_seconds=0.3,
                             feed_poll_minutes=0)

    async def scenario(standin: DiscordStandIn, _bot: None) -> None:
        _schedule_missed_for_three_days(engine, engine.state, standin.news_id, standin.guild_id)
        async with running_bot(standin, _digest_bot(settings)), running_bot(standin, _digest_bot(settings)):
            await _one_digest_then_quiet(standin, standin.news_id)
        posts = standin.calls_matching("POST", rf"^/channels/{standin.news_id}/messages$")
        assert len(posts) == 1

    run_standin(scenario, timeout=180)


def test_ingest_posts_cards_for_outlet_follows_and_waits_for_min_outlets(corpus_copy: Path) -> None:
    """`/ingest` delivers too. #news follows the topic with min_outlets 2, #general follows the outlet Harbor
    Times (no article from it yet); the first outlet's article posts nothing anywhere; the second outlet's
    word-for-word copy makes it a two-outlet story: a card in both channels, in plain text where the server
    chose no embeds."""
    settings = make_settings(corpus_copy, allow_private_urls=True, feed_poll_minutes=0,
                             discord_user_cooldown=0.0, discord_guild_rate=1000)
    with LocalServer() as web:
        _serve_ocean_desk(web)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            news, general = standin.news_id, standin.general_id
            msg = await _slash(standin, "follow", {"topic": TOPIC, "min_outlets": 2}, standin.admin_id, news)
            assert msg["content"].startswith(f"Following “{TOPIC}” (2+ outlets)"), msg["content"]
            msg = await _slash(standin, "follow", {"source": "Harbor Times"}, standin.admin_id, general)
            assert msg["content"].startswith("Following everything from Harbor Times"), msg["content"]
            msg = await _slash(standin, "follow", {}, standin.admin_id, general)
            assert "Give a topic" in msg["content"] and msg["flags"] & 64
            await bot.run_engine(bot.engine.configure_server, standin.guild_id, embeds=False)

            def posted(channel: int) -> list[Any]:
                return standin.calls_matching("POST", rf"^/channels/{channel}/messages$")

            msg = await _slash(standin, "ingest", {"url": web.url("/norway-seabed")}, standin.admin_id, general,
                               kind="followup")
            assert msg["content"].startswith("Added 1 article"), msg["content"]
            await asyncio.sleep(2.0)
            assert not posted(news) and not posted(general), "one outlet: below min_outlets; not Harbor Times"

            msg = await _slash(standin, "ingest", {"url": web.url("/copy/norway")}, standin.admin_id, general,
                               kind="followup")
            assert msg["content"].startswith("Already indexed (same story)"), msg["content"]
            await standin.wait_for(lambda: posted(news) and posted(general), timeout=60, what="two cards")
            for channel in (news, general):
                [call] = posted(channel)
                content = call.json["content"]
                assert not call.json.get("embeds") and call.json["allowed_mentions"]["parse"] == []
                assert MATCHING[0][2] in content and "Ocean Desk, Harbor Times" in content
                assert f"<{web.url('/norway-seabed')}>" in content and re.search(r"\[1\]", content)
            assert "“deep-sea mining”" in posted(news)[0].json["content"]
            assert "“Harbor Times”" in posted(general)[0].json["content"]

        run_standin(scenario, bot_factory=lambda standin: NewsBot(Engine(settings), guild_ready_timeout=0.05),
                    timeout=200)


def test_feeds_update_delivers_cards_when_polling_is_off(corpus_copy: Path) -> None:
    settings = make_settings(corpus_copy, allow_private_urls=True, feed_poll_minutes=0,
                             discord_user_cooldown=0.0, discord_guild_rate=1000)
    with LocalServer() as web:
        _serve_ocean_desk(web)

        async def scenario(standin: DiscordStandIn, bot: NewsBot) -> None:
            await ready(bot)
            await _slash(standin, "follow", {"topic": TOPIC}, standin.admin_id, standin.news_id)
            await _add_feed(standin, web.url("/feed.xml"))
            await asyncio.sleep(1.0)
            assert not _cards(standin, standin.news_id), "nothing polls on its own"
            await _slash(standin, "feeds", {}, standin.admin_id, standin.general_id, "update", kind="followup")
            [card] = await standin.wait_for(lambda: _cards(standin, standin.news_id) or None, timeout=90,
                                            what="the card of /feeds update")
            text = card["embeds"][0]["description"]
            assert all(title in text for _, _, title, _ in MATCHING) and OTHER[0][2] not in text

        run_standin(scenario, bot_factory=lambda standin: NewsBot(Engine(settings), guild_ready_timeout=0.05),
                    timeout=200)
