"""The discord.py client: setup, safety nets, and the shared "answer this question" path.

Everything here is a thin layer over `bot.engine.Engine`: the engine does the work (in a worker
thread, never on the event loop), this module turns Discord events into engine calls and engine
results into messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import discord
import yarl
from discord.ext import commands

from newsbot.bot.answer.answers import Answer, Turn
from newsbot.bot.config import Settings
from newsbot.bot.discordbot.common import error_id
from newsbot.bot.discordbot.guards import RateLimiter
from newsbot.bot.discordbot.prefs import ServerPrefs, prefs_for
from newsbot.bot.discordbot.render import NO_MENTIONS, Reply, answer_replies, digest_replies, follow_reply
from newsbot.bot.engine import Engine
from newsbot.bot.freshness import PollSchedule, poll_feeds_forever
from newsbot.bot.state import process_holder
from newsbot.index.build import BuildReport
from newsbot.index.hits import Filters

log = logging.getLogger("newsbot.discord")
T = TypeVar("T")

# Send Messages, Create Public Threads, Send Messages in Threads, Embed Links, Read Message History
INVITE_PERMISSIONS = discord.Permissions(
    send_messages=True, create_public_threads=True, send_messages_in_threads=True, embed_links=True,
    read_message_history=True,
).value


class NewsBot(commands.Bot):
    """newsbot on Discord. `engine` does all retrieval and answering."""

    def __init__(self, engine: Engine, *, settings: Settings | None = None, **kwargs: Any) -> None:
        self.engine = engine
        self.settings = settings or engine.settings
        intents = discord.Intents.default()
        # Thread follow-ups and replies without an @mention need it; mentions and DMs carry their text anyway.
        intents.message_content = self.settings.discord_message_content
        kwargs.setdefault("guild_ready_timeout", 2.0)
        super().__init__(
            command_prefix=commands.when_mentioned,  # no prefix commands; slash commands only
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            **kwargs,
        )
        self.limiter = RateLimiter(self.settings.discord_user_cooldown, self.settings.discord_guild_rate,
                                   user_burst=self.settings.discord_user_burst)
        self.feed_schedule: PollSchedule | None = None  # set while the bot polls feeds on its own
        self.started_at = time.monotonic()
        self.ready_to_answer = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        _harden_parsers(self)

    # ------------------------------------------------------------------ lifecycle

    async def setup_hook(self) -> None:
        """Runs in `login`, once the application (and its flags) is known and before the gateway connects."""
        from newsbot.bot.discordbot.cogs import setup_cogs

        if not self.settings.discord_message_content:
            log.info("Message Content intent not requested (discord_message_content=false): %s", WITHOUT_CONTENT)
        elif not message_content_granted(self.application_flags):
            self._without_message_content("not enabled for this application in the developer portal")
        await setup_cogs(self)
        guild_id = self.settings.discord_guild_id
        if guild_id:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d slash commands (%s)", len(synced), f"guild {guild_id}" if guild_id else "global")
        self.spawn(self._warm_up())
        minutes = self.settings.feed_poll_minutes
        if minutes > 0:  # every round polls only if feeds exist, and only one replica at a time (a lease)
            self.feed_schedule = PollSchedule(minutes)
            self.spawn(poll_feeds_forever(self.engine, minutes, schedule=self.feed_schedule,
                                          on_report=lambda report: self.deliver_follows(report.index)))
        if self.settings.digest_schedule_seconds > 0:
            self.spawn(self._digest_schedules_forever(self.settings.digest_schedule_seconds))
        if self.settings.follow_check_seconds > 0:
            self.spawn(self._follow_other_updates_forever(self.settings.follow_check_seconds))

    async def connect(self, *, reconnect: bool = True) -> None:
        """discord.py's connect, once more without the Message Content intent if Discord refuses it (close
        code 4014: the application's flags said it was granted, the gateway says it is not)."""
        try:
            await super().connect(reconnect=reconnect)
        except discord.PrivilegedIntentsRequired:
            # The sharded client has closed itself by now: it cannot connect again.
            if not self._connection._intents.message_content or self.is_closed():
                raise
            self._without_message_content("Discord refused it (gateway close code 4014)")
            await super().connect(reconnect=reconnect)

    def _without_message_content(self, why: str) -> None:
        """Identify without the Message Content intent from now on, and say once what that turns off."""
        # discord.py reads the intents to IDENTIFY with from the connection state; `Client.intents` is a copy.
        self._connection._intents.message_content = False
        log.warning("Message Content intent not granted (%s): %s Enable MESSAGE CONTENT under Bot → Privileged "
                    "Gateway Intents to turn them on, or set discord_message_content=false.", why, WITHOUT_CONTENT)

    async def _warm_up(self) -> None:
        """Load the model and the index before the first question (in a worker thread)."""
        try:
            await self.run_engine(self.engine.warm_up)
        except Exception:
            log.exception("warm-up failed; questions will retry on demand")
        finally:
            self.ready_to_answer.set()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def run_engine(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking engine work in a worker thread so heartbeats and other events go on."""
        return await asyncio.to_thread(functools.partial(func, *args, **kwargs))

    async def on_ready(self) -> None:
        app_id = self.application_id or (self.user.id if self.user else 0)
        log.info(
            "connected as %s to %d server(s); invite link: https://discord.com/oauth2/authorize?client_id=%s"
            "&scope=bot+applications.commands&permissions=%d", self.user, len(self.guilds), app_id, INVITE_PERMISSIONS,
        )

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions are handled by AskCog's listener, commands are slash commands."""

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("unhandled error in %s (error id %s)", event_method, error_id())

    # ------------------------------------------------------------------ follows and scheduled digests

    async def deliver_follows(self, report: BuildReport | None) -> int:
        """Post (or edit) the follow cards for what an update indexed (`report`: a feed poll's, /ingest's);
        returns how many messages were posted or edited. Never raises: a failure is logged."""
        if report is None:
            return 0
        return await self._deliver_follow_posts(self.engine.follow_posts_for, report)

    async def deliver_follow_ids(self, doc_ids: Sequence[str]) -> int:
        """`deliver_follows` for articles named by id (indexed by another process)."""
        return await self._deliver_follow_posts(self.engine.follow_posts, list(doc_ids))

    async def _follow_other_updates_forever(self, seconds: float) -> None:
        """Follow cards for articles another process indexed (`newsbot add` / `update` from cron, another
        replica's feed poll): every `seconds` the index version is compared with the last one seen, and the
        articles new since then go through the same planning as this bot's own updates. Stories are claimed
        in the state database, so a card is posted once whichever process notices first."""
        version: tuple[str, int] | None = None
        known: frozenset[str] | None = None
        while not self.is_closed():
            try:
                now = await self.run_engine(self.engine.index_version)
                if now != version:
                    ids = await self.run_engine(self.engine.article_ids)
                    if known is not None and ids - known:
                        await self.deliver_follow_ids(sorted(ids - known))
                    version, known = now, ids
            except Exception:
                log.exception("looking for articles indexed elsewhere failed (error id %s)", error_id())
            await asyncio.sleep(seconds)

    async def _deliver_follow_posts(self, plan: Callable[..., list[Any]], arg: Any) -> int:
        done = 0
        try:
            posts = await self.run_engine(plan, arg)
        except Exception:
            log.exception("could not work out the follow cards of an update (error id %s)", error_id())
            return 0
        for post in posts:
            try:
                prefs = await self.prefs(int(post.guild_id) if post.guild_id.isdigit() else None)
                reply = follow_reply(post, embeds=prefs.embeds)
                channel = self.get_partial_messageable(int(post.channel_id))
                if post.message_id:
                    await channel.get_partial_message(int(post.message_id)).edit(**reply.edit_kwargs())
                else:
                    message = await channel.send(**reply.kwargs())
                    await self.run_engine(self.engine.follow_posted, post, message.id)
                done += 1
            except Exception:
                log.exception("follow card for channel %s failed (error id %s)", post.channel_id, error_id())
                await self.run_engine(self.engine.follow_post_failed, post)
        return done

    async def _digest_schedules_forever(self, seconds: float) -> None:
        """Post the scheduled digests that are due, now (a missed one posts at start) and every `seconds`.
        One replica checks at a time (the lease "digest-schedules"); each due digest is claimed in the
        state database, so it is posted once even if two replicas race."""
        holder = process_holder("digests")
        while not self.is_closed():
            try:
                if await self.run_engine(self.engine.hold_lease, "digest-schedules", holder, seconds * 3):
                    await self.post_due_digests()
            except Exception:
                log.exception("scheduled digests failed (error id %s)", error_id())
            await asyncio.sleep(seconds)

    async def post_due_digests(self) -> int:
        """Post every scheduled digest due now (each claimed first); returns how many were posted."""
        posted = 0
        for schedule, found, error in await self.run_engine(self.engine.due_digests):
            channel = self.get_partial_messageable(int(schedule.channel_id))
            try:
                if found is None:
                    log.warning("scheduled digest %s in channel %s: %s", schedule.id, schedule.channel_id, error)
                    continue
                gid = int(schedule.guild_id) if schedule.guild_id.isdigit() else None
                prefs = await self.prefs(gid)
                footer = f"newsbot · daily digest at {schedule.at_time} {schedule.timezone} (/digest-schedule)"
                for reply in digest_replies(found, embeds=prefs.embeds, footer=footer):
                    await channel.send(**reply.kwargs())
                posted += 1
            except Exception:
                log.exception("scheduled digest for channel %s failed (error id %s)", schedule.channel_id,
                              error_id())
        return posted

    # ------------------------------------------------------------------ answering

    async def answer(
        self, question: str, *, history: list[Turn], on_text: Callable[[str], None] | None = None,
        sources: tuple[str, ...] = (),
    ) -> Answer:
        """The engine's answer; `sources` keeps to those outlets (UnknownOutlet if the index lacks one)."""
        return await self.run_engine(self.engine.ask, question, history=history, on_text=on_text,
                                     filters=Filters(sources))

    async def prefs(self, guild_id: int | None) -> ServerPrefs:
        """How to behave in this server (its /config choices over the settings); read from the state
        database each time, so that every replica follows a change at once."""
        if guild_id is None:
            return prefs_for(self.settings, None)
        return prefs_for(self.settings, await self.run_engine(self.engine.server_settings, guild_id))

    def record(
        self, answer: Answer, *, answer_id: str, conversation_id: str, user_id: int,
        guild_id: int | None, channel_id: int,
    ) -> None:
        """Store the answer (for feedback) and the turn (for follow-ups). Blocking: run in a thread."""
        self.engine.record_answer(
            answer, answer_id=answer_id, conversation_id=conversation_id,
            guild_id=str(guild_id or ""), channel_id=str(channel_id), user_id=str(user_id),
        )

    def replies_for(self, answer: Answer, *, embeds: bool | None = None) -> list[Reply]:
        """The messages of an answer: embeds or plain text (`embeds`; default: the discord_embeds setting)."""
        footer = "newsbot · quoted from the sources" if answer.mode == "extractive" else "newsbot · model answer, checked"
        embeds = self.settings.discord_embeds if embeds is None else embeds
        return answer_replies(answer, embeds=embeds, footer=footer)


WITHOUT_CONTENT = (
    "thread follow-ups and replies without an @mention are not seen; @mentions, DMs and slash commands work."
)


def message_content_granted(flags: discord.ApplicationFlags) -> bool:
    """Whether the developer portal grants the Message Content intent (verified apps: GATEWAY_MESSAGE_CONTENT;
    apps in under 100 servers: GATEWAY_MESSAGE_CONTENT_LIMITED, the portal's toggle)."""
    return bool(flags.gateway_message_content or flags.gateway_message_content_limited)


class ShardedNewsBot(NewsBot, commands.AutoShardedBot):
    """NewsBot on discord.py's AutoShardedClient: one gateway connection per shard. Replicas sharing a
    token each run a disjoint set of shards (`discord_shard_ids`), so every event reaches exactly one."""


def make_bot(engine: Engine, **kwargs: Any) -> NewsBot:
    """The bot the settings ask for: sharded (`discord_sharded`) or a single connection."""
    s = engine.settings
    if not s.discord_sharded:
        return NewsBot(engine, **kwargs)
    if s.discord_shard_count:
        kwargs.setdefault("shard_count", s.discord_shard_count)
    if s.discord_shard_ids:
        if not s.discord_shard_count:
            raise ValueError("discord_shard_ids needs discord_shard_count (the total number of shards)")
        kwargs.setdefault("shard_ids", sorted(s.ids("discord_shard_ids")))
    return ShardedNewsBot(engine, **kwargs)


def _harden_parsers(bot: discord.Client) -> None:
    """Make every gateway event parser drop (and log) an event it cannot parse.

    discord.py lets a parser exception escape `Client.start()`, which would take the whole bot down
    on one malformed event. Discord does not send those, but a bot must not die if it ever does.
    """
    parsers = bot._connection.parsers

    def guard(name: str, func: Callable[[Any], None]) -> Callable[[Any], None]:
        def safe(data: Any) -> None:
            try:
                func(data)
            except Exception:
                log.exception("dropped a malformed %s event (error id %s)", name, error_id())

        return safe

    for name, func in list(parsers.items()):
        parsers[name] = guard(name, func)


async def configure_api_base(base: str, token: str) -> str:
    """Point discord.py's REST and gateway at `base` (a stand-in); returns the gateway URL used.

    REST URLs come from `Route.BASE`; a plain client dials `DEFAULT_GATEWAY` without asking
    `/gateway/bot`, so we ask it ourselves.
    """
    base = base.rstrip("/")
    discord.http.Route.BASE = base
    async with aiohttp.ClientSession() as session, session.get(
        f"{base}/gateway/bot", headers={"Authorization": f"Bot {token}"}, timeout=aiohttp.ClientTimeout(total=10)
    ) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{base}/gateway/bot answered HTTP {resp.status}")
        data = await resp.json(content_type=None)
    url = str(data["url"])
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
    return url
