"""A local Discord stand-in that real, unmodified discord.py (2.7) connects to over 127.0.0.1.

It serves Discord's REST API (``/api/v10/...``, plain HTTP) and the gateway (``/gateway``,
websocket, plain-text JSON frames) from an aiohttp server running in the *test's* event loop, keeps a
small world model (one guild, roles, channels, users, DMs, threads, messages, app commands,
interactions) and records everything the bot does so end-to-end tests can assert on what a Discord
user would see.

Connecting a bot
----------------
::

    standin = DiscordStandIn()
    await standin.start()
    connect_discord_py(standin)   # Route.BASE = standin.api_base; DEFAULT_GATEWAY = standin.gateway_url
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
    async with running_bot(standin, bot):      # bot.start(standin.token) + wait_until_ready(); closes on exit
        ...
    await standin.stop()                       # also undoes connect_discord_py

``connect_discord_py`` is exactly these two lines (newsbot does the same from ``GET {base}/gateway/bot``)::

    discord.http.Route.BASE = standin.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(standin.gateway_url)

The world (ids are deterministic attributes of the instance)
------------------------------------------------------------
guild ``"Newsroom"`` (``guild_id``, owner = admin); roles ``@everyone`` (``everyone_role_id``, basic
permissions), ``Admin`` (``admin_role_id``: MANAGE_GUILD, MANAGE_MESSAGES, MANAGE_THREADS,
MENTION_EVERYONE), ``newsbot`` (``bot_role_id``, managed bot role); text channels ``#general``
(``general_id``), ``#news`` (``news_id``), ``#announcements`` (``announcements_id``: only Admin may
send, so the bot gets 403 50013 there); users ``bot_user_id`` (== ``application_id``), ``admin_id``
(owner + Admin role), ``user_id``, ``user2_id``. DM channels are created on demand.

Test-side API (all ``async`` unless noted)
-------------------------------------------
Lifecycle / addresses:
  ``DiscordStandIn(*, token="standin-token", heartbeat_interval_ms=1000, interaction_deadline=3.0,
  privileged_intents=PRIVILEGED_INTENTS, strict=False)`` -- create (nothing listens yet).
  ``start()`` / ``stop()`` / ``async with DiscordStandIn() as s`` -- bind 127.0.0.1:<free port>.
  ``api_base``, ``gateway_url``, ``base_url``, ``token`` -- addresses (sync attributes).
Acting as Discord users (each dispatches the gateway event(s) real Discord would send):
  ``send_message(channel_id, author_id, content, *, mention_bot=False, reference_message_id=None,
  embeds=None, mention_replied_author=True) -> dict`` -- user posts in a guild channel/thread/DM.
  ``send_dm(author_id, content, **kw) -> dict`` -- user DMs the bot (DM channel created on demand).
  ``edit_user_message(message_id, content) -> dict`` / ``delete_user_message(message_id)``.
  ``add_reaction(message_id, emoji, *, user_id)`` -- user reacts (MESSAGE_REACTION_ADD).
  ``create_thread(channel_id, name, *, user_id, message_id=None) -> dict`` -- user opens a thread.
  ``slash_command(name, options=None, *, user_id, channel_id, guild_id=None, subcommand=None)
  -> InteractionRecord`` -- INTERACTION_CREATE type 2 built from the *synced* definition; raises
  LookupError if not synced, PermissionError/ValueError when the Discord client would refuse.
  ``click_button(message_id, custom_id, *, user_id) -> InteractionRecord`` -- component type 2.
  ``select_option(message_id, custom_id, values, *, user_id) -> InteractionRecord``.
  ``submit_modal(interaction_id, values, *, user_id=None) -> InteractionRecord`` -- answer a modal.
  ``dispatch_raw(event_name, data)`` -- send an arbitrary (even malformed) DISPATCH to every session.
  ``send_raw_gateway(frame)`` -- send any dict/str frame as-is.
Gateway control: ``request_reconnect()`` (op 7), ``invalidate_sessions(resumable=False)`` (op 9),
  ``drop_connections(code=4000)``; attribute ``ack_heartbeats`` (set False to stop acking).
World changes (sync): ``add_user(name, *, bot=False, roles=()) -> int``, ``set_member_roles(uid, roles)``,
  ``set_role_permissions(role_id, perms)``, ``set_accepts_dms(uid, bool)``. The application's owner
  (``GET /oauth2/applications/@me``, what ``Bot.is_owner`` asks): attribute ``application_owner_id``
  (default ``admin_id``), or a team: ``team_members = {user_id: "admin" | "developer" | "read_only"}``
  (set them before the bot connects).
Waiting: ``wait_for(predicate, timeout=5.0)`` -- re-evaluates the zero-argument predicate on every
  state change, returns its truthy value; ``wait_for_call(method, path_regex, timeout=5.0, *,
  since=None, predicate=None) -> RecordedCall`` -- first matching REST call recorded at/after
  ``since`` (default: the index of the latest test-side action, i.e. "after what I just did");
  ``wait_for_response(interaction_id, *, kind=None, count=1, timeout=5.0) -> list[dict]``;
  ``mark() -> int`` (sync) -- current ``len(calls)`` for use as ``since``.
Inspection (sync):
  ``calls`` (list[RecordedCall]: method, path (relative to api_base), query, json (also parsed from
  multipart ``payload_json``), files, status, response, ...), ``unknown_calls``, ``errors``,
  ``calls_matching(method, path_regex)``, ``messages_in(channel_id, *, include_ephemeral=True,
  include_deleted=False)`` (current state, edits applied, oldest first), ``get_message(mid)``,
  ``threads`` (created threads), ``commands`` (synced, with ids), ``interactions``,
  ``interaction_responses(interaction_id)`` (callback + follow-ups + edits, in order, incl. rejected),
  ``dm_channel_id(user_id)``, ``heartbeats_received``, ``heartbeat_acks_sent``, ``identify_count``,
  ``resume_count``, ``gateway_received`` (frames from the bot), ``events_dispatched``, ``user(uid)``,
  ``assert_clean()`` (raises if unknown routes were hit or a stand-in handler crashed).
  ``InteractionRecord``: ``id``, ``token``, ``payload`` (as dispatched), ``callback_type``,
  ``original_message_id``, ``responses``, ``followups``. Each response entry is a dict with ``kind``
  (callback | followup | edit_original | edit_followup | delete_original | delete_followup), ``ok``,
  ``status``, ``type`` (callbacks), ``data`` (JSON the bot sent), ``files``, ``message`` (the message as a
  user sees it afterwards), ``error`` (when rejected), ``replaced_deferred`` (follow-ups).
Fault injection (sync): ``fail_next(method, path_regex, *, status=500, body=None, times=1,
  headers=None)`` -- 429s automatically get ``Via``/``Retry-After`` headers and a ``retry_after`` body.

Fidelity notes (what real Discord does and the stand-in models)
--------------------------------------------------------------
* Every JSON response has ``Content-Type: application/json`` exactly. Errors use Discord's shapes:
  content > 2000, > 10 embeds, embed field limits, embeds > 6000 in total, too many components ->
  400 code 50035 ``Invalid Form Body`` with ``errors``; empty message -> 50006; missing permission ->
  403 50013; unknown channel/message -> 404 10003/10008; second interaction callback -> 400 40060;
  callback after ``interaction_deadline`` s -> 404 10062; follow-up before any callback -> 404 10015.
* A bot's REST message create also dispatches MESSAGE_CREATE; edits MESSAGE_UPDATE; deletes
  MESSAGE_DELETE. Ephemeral messages are never dispatched. Without the MESSAGE_CONTENT intent the bot
  gets empty content/embeds/attachments/components unless it is mentioned, the author, or in a DM.
  GUILD_MESSAGES / DIRECT_MESSAGES / reaction intents gate the matching events.
* Without the GUILD_MEMBERS intent GUILD_CREATE carries only the bot's member (as on Discord); with it,
  all members and ``member_count == len(members)`` so discord.py does not chunk.
* Threads created from a message get the message's id; THREAD_CREATE (``newly_created``) is sent
  before the REST response. ``POST /channels/{id}/threads`` also posts the type-18 system message.
* A type-5 (deferred) callback creates the "thinking" message (empty, flags LOADING=128, dispatched as
  MESSAGE_CREATE unless ephemeral); the *first* follow-up replaces it (same id, ephemeral-ness taken
  from the defer), as Discord does; later follow-ups are new messages.
* Interaction response messages: author = bot, ``webhook_id`` = ``application_id``, type 20 for slash
  commands, 0 for component/modal responses (approximation), with ``interaction_metadata``.
* Handler bugs in the stand-in return 503 (not 500: discord.py would retry 500s for ~25 s) and are
  recorded in ``errors``; unknown routes return 404 ``{"message": "Unknown route", "code": 0}``, are
  logged at ERROR level and recorded in ``unknown_calls``.
* Sharding: a session that IDENTIFYs with ``shard: [id, n]`` gets the guild (READY, GUILD_CREATE and its
  events) only if ``(guild_id >> 22) % n == id``, and DMs only on shard 0, as Discord routes them.
* Not modelled: rate limits (except injected 429s), voice, stickers, polls, forum channels, per-user
  read visibility, audit logs, autocomplete, pins. Only one stand-in should be redirected at a time
  (``Route.BASE`` / ``DEFAULT_GATEWAY`` are process-global).

discord.py 2.7 quirks worth knowing when writing tests
------------------------------------------------------
* A plain ``Client``/``commands.Bot`` never calls ``/gateway/bot``; it dials ``DEFAULT_GATEWAY``.
* ``guild_ready_timeout`` defaults to 2 s, delaying ``on_ready``; pass e.g. ``guild_ready_timeout=0.05``.
* A parser error on a malformed DISPATCH (e.g. MESSAGE_CREATE without ``type``) is not caught: it
  propagates out of ``Client.start()`` and the bot is dead (``running_bot`` then raises ``BotCrashed``).
* After INVALID_SESSION (op 9, ``false``) discord.py sleeps 5 s before re-IDENTIFYing
  (``Client.before_identify_hook``); RESUME is immediate.
* discord.py silently retries 500/502/504/524 with 1+2n s sleeps, and treats a 429 without a ``Via``
  header as a Cloudflare ban (raises instead of retrying).
* discord.py refuses a second interaction response itself (``InteractionResponded``), so 40060 is only
  reachable with raw HTTP; it also needs the ``with_response`` JSON body or ``defer()`` fails.
* ``message_reference.message_id`` is sent as an int; ``AllowedMentions.none()`` on a reply is sent as
  ``{"parse": []}`` (no ``replied_user`` key, which Discord treats as false).
* ``Client.login`` calls ``GET /oauth2/applications/@me`` and needs its ``owner``/``verify_key``/... fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as _dt
import json
import logging
import re
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("discord_standin")

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
_WORLD_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: fixed world ids are deterministic
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
INTERACTION_TOKEN_LIFETIME = 15 * 60


class Perm:
    """Discord permission bits used by the stand-in."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 53) - 1

    BASIC = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
    )
    ADMIN_ROLE = MANAGE_GUILD | MANAGE_MESSAGES | MANAGE_THREADS | MENTION_EVERYONE | KICK_MEMBERS


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT

# channel types
TEXT, DM, NEWS, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 5, 11, 12
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)

# message flags
FLAG_SUPPRESS_EMBEDS, FLAG_HAS_THREAD, FLAG_EPHEMERAL, FLAG_LOADING = 1 << 2, 1 << 5, 1 << 6, 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS, FLAG_COMPONENTS_V2 = 1 << 12, 1 << 15
_SENDABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2

# app command option types
OPT_SUB, OPT_GROUP, OPT_STRING, OPT_INTEGER, OPT_BOOLEAN = 1, 2, 3, 4, 5
OPT_USER, OPT_CHANNEL, OPT_ROLE, OPT_MENTIONABLE, OPT_NUMBER, OPT_ATTACHMENT = 6, 7, 8, 9, 10, 11

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE_MENTION = re.compile(r"@(?:everyone|here)\b")
_COMMAND_NAME = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")


def snowflake_at(ms: int, seq: int = 0) -> int:
    return ((ms - DISCORD_EPOCH_MS) << 22) | (seq & 0x3FFFFF)


def snowflake_time_iso(sf: int) -> str:
    ms = (int(sf) >> 22) + DISCORD_EPOCH_MS
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).isoformat(timespec="microseconds")


def _now_iso() -> str:
    return _dt.datetime.now(tz=_dt.UTC).isoformat(timespec="microseconds")


class _Snowflakes:
    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        value = max(snowflake_at(int(time.time() * 1000)), self._last + 1)
        self._last = value
        return value


class ApiError(Exception):
    """Raised inside route handlers; becomes a Discord-shaped JSON error response."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None, **extra: Any):
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors, self.extra = status, code, message, errors, extra

    def body(self) -> dict:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            out["errors"] = self.errors
        out.update(self.extra)
        return out


def _form_error(items: list[tuple[tuple, str, str]]) -> ApiError:
    root: dict = {}
    for path, code, message in items:
        node = root
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return ApiError(400, 50035, "Invalid Form Body", root)


def _max_len(items: list, path: tuple, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        items.append((path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."))


@dataclass
class UploadedFile:
    field_name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedCall:
    """One REST request the bot made (``path`` is relative to ``api_base``, percent-decoded)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: dict[str, str]
    at: float
    status: int | None = None
    response: Any = None
    route: str | None = None
    injected: bool = False

    def __repr__(self) -> str:
        return f"<RecordedCall {self.method} {self.path} -> {self.status}>"


@dataclass
class InteractionRecord:
    """An interaction the stand-in dispatched, and everything the bot did in reply."""

    id: int
    token: str
    type: int
    payload: dict
    user_id: int
    channel_id: int
    guild_id: int | None
    dispatched_at: float
    message_id: int | None = None  # component/modal: the message the component is on
    command: dict | None = None
    callback_type: int | None = None
    callback_data: Any = None
    original_message_id: int | None = None
    deferred_pending: bool = False  # type-5 defer whose thinking message is not yet replaced
    modal: dict | None = None
    responses: list[dict] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.callback_type is not None

    @property
    def followups(self) -> list[dict]:
        return [r for r in self.responses if r["kind"] == "followup" and r["ok"]]


class _Conn:
    _ids = 0

    def __init__(self, ws: web.WebSocketResponse, query: dict[str, str]):
        _Conn._ids += 1
        self.id = _Conn._ids
        self.ws = ws
        self.query = query
        self.session: _Session | None = None
        self.closed = False
        self.server_closed = False  # we initiated the close (aiohttp then reports a transient 1000)
        self.client_close_code: int | None = None


def _shard_receives(shard: list | None, guild_id: object) -> bool:
    """Discord's routing: a guild's events go to shard (guild_id >> 22) % num_shards; DMs to shard 0."""
    if not shard or len(shard) != 2 or int(shard[1]) <= 1:
        return True
    shard_id, count = int(shard[0]), int(shard[1])
    if guild_id is None:
        return shard_id == 0
    return (int(guild_id) >> 22) % count == shard_id


class _Session:
    def __init__(self, sid: str, intents: int, shard: list | None):
        self.id = sid
        self.intents = intents
        self.shard = shard
        self.seq = 0
        self.conn: _Conn | None = None
        self.buffer: list[tuple[int, str]] = []


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204 or body is None:
        return web.Response(status=status, headers=headers)
    # Exactly "application/json" -- discord.py only parses bodies whose content-type matches exactly.
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


def _parse_emoji(raw: str) -> dict:
    parts = raw.split(":")
    if len(parts) == 2 and parts[1].isdigit():
        return {"id": parts[1], "name": parts[0]}
    if len(parts) == 3 and parts[2].isdigit():
        return {"id": parts[2], "name": parts[1], "animated": True}
    return {"id": None, "name": raw}


def _walk_components(components: Iterable[dict]) -> Iterable[dict]:
    for comp in components or ():
        if not isinstance(comp, dict):
            continue
        yield comp
        yield from _walk_components(comp.get("components") or ())
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), dict):
                yield from _walk_components([comp[key]])


class DiscordStandIn:
    """Local Discord (REST + gateway) for discord.py tests. See the module docstring for the API."""

    def __init__(
        self,
        *,
        token: str = "standin-token",
        heartbeat_interval_ms: int = 1000,
        interaction_deadline: float = 3.0,
        privileged_intents: int = PRIVILEGED_INTENTS,
        strict: bool = False,
    ) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.privileged_intents = privileged_intents
        self.strict = strict
        self.ack_heartbeats = True

        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._ids = _Snowflakes()
        self._change: asyncio.Event | None = None  # created in start() (needs the running loop)
        self._redirected_from: tuple[Any, Any] | None = None

        # recording
        self.calls: list[RecordedCall] = []
        self.unknown_calls: list[RecordedCall] = []
        self.errors: list[str] = []
        self.gateway_received: list[dict] = []
        self.events_dispatched: list[dict] = []
        self.heartbeats_received = 0
        self.heartbeat_acks_sent = 0
        self.identify_count = 0
        self.resume_count = 0
        self.connections_opened = 0
        self.bot_tasks: list[asyncio.Task] = []
        self._action_mark = 0
        self._faults: list[dict] = []

        # gateway
        self._conns: list[_Conn] = []
        self._sessions: dict[str, _Session] = {}

        # world
        self._users: dict[int, dict] = {}
        self._accepts_dms: dict[int, bool] = {}
        self._members: dict[int, dict] = {}
        self._roles: dict[int, dict] = {}
        self._channels: dict[int, dict] = {}
        self._dm_by_user: dict[int, int] = {}
        self._messages: dict[int, dict] = {}
        self._channel_msgs: dict[int, list[int]] = {}
        self._blobs: dict[int, tuple[bytes, str | None]] = {}
        self._commands: dict[int | None, list[dict]] = {None: []}
        self._interactions: dict[int, InteractionRecord] = {}
        self._interactions_by_token: dict[str, InteractionRecord] = {}
        self._thread_ids: list[int] = []
        self._build_world()
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ world
    def _build_world(self) -> None:
        n = iter(range(1, 1000))

        def fixed() -> int:
            return snowflake_at(_WORLD_EPOCH_MS, next(n))

        self.guild_id = fixed()
        self.bot_user_id = fixed()
        self.application_id = self.bot_user_id
        self.admin_id, self.user_id, self.user2_id = fixed(), fixed(), fixed()
        self.everyone_role_id = self.guild_id
        self.admin_role_id, self.bot_role_id = fixed(), fixed()
        self.general_id, self.news_id, self.announcements_id = fixed(), fixed(), fixed()
        self.owner_id = self.admin_id
        # The application's owner as `GET /oauth2/applications/@me` reports it (discord.py's
        # `Bot.is_owner`): a user, or, when `team_members` is set, a team whose members have roles.
        self.application_owner_id = self.admin_id
        self.team_members: dict[int, str] = {}  # user id -> "admin" | "developer" | "read_only"
        self.team_id = fixed()

        self._roles[self.everyone_role_id] = self._role_payload(
            self.everyone_role_id, "@everyone", Perm.BASIC, 0
        )
        self._roles[self.admin_role_id] = self._role_payload(
            self.admin_role_id, "Admin", Perm.BASIC | Perm.ADMIN_ROLE, 2, hoist=True, color=0xE74C3C
        )
        bot_role = self._role_payload(self.bot_role_id, "newsbot", Perm.BASIC, 1)
        bot_role["managed"] = True
        bot_role["tags"] = {"bot_id": str(self.bot_user_id)}
        self._roles[self.bot_role_id] = bot_role

        self._add_user(self.bot_user_id, "newsbot", bot=True, roles=[self.bot_role_id])
        self._add_user(self.admin_id, "alice_admin", global_name="Alice", roles=[self.admin_role_id])
        self._add_user(self.user_id, "bob", global_name="Bob")
        self._add_user(self.user2_id, "carol", global_name="Carol")

        self._add_text_channel(self.general_id, "general", 0, topic="General chat")
        self._add_text_channel(self.news_id, "news", 1, topic="Industry news")
        self._add_text_channel(
            self.announcements_id,
            "announcements",
            2,
            topic="Read-only",
            overwrites=[
                {"id": str(self.everyone_role_id), "type": 0, "allow": "0", "deny": str(Perm.SEND_MESSAGES)},
                {"id": str(self.admin_role_id), "type": 0, "allow": str(Perm.SEND_MESSAGES), "deny": "0"},
            ],
        )

    @staticmethod
    def _role_payload(
        rid: int, name: str, perms: int, position: int, *, hoist: bool = False, color: int = 0
    ) -> dict:
        return {
            "id": str(rid),
            "name": name,
            "color": color,
            "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
            "hoist": hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(perms),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _add_user(
        self,
        uid: int,
        username: str,
        *,
        bot: bool = False,
        global_name: str | None = None,
        roles: Iterable[int] = (),
    ) -> None:
        self._users[uid] = {
            "id": str(uid),
            "username": username,
            "global_name": global_name,
            "discriminator": "0" if not bot else "4321",
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
            "bot": bot,
            "system": False,
        }
        self._accepts_dms[uid] = True
        self._members[uid] = {
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in roles],
            "joined_at": snowflake_time_iso(uid),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "avatar_decoration_data": None,
        }

    def _add_text_channel(
        self, cid: int, name: str, position: int, *, topic: str | None = None, overwrites: list | None = None
    ) -> None:
        self._channels[cid] = {
            "id": str(cid),
            "type": TEXT,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "parent_id": None,
            "topic": topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "permission_overwrites": overwrites or [],
            "last_message_id": None,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }
        self._channel_msgs[cid] = []

    # world mutation API (sync)
    def add_user(self, username: str, *, bot: bool = False, roles: Iterable[int] = ()) -> int:
        """Add a guild member (no event is dispatched; do it before the bot connects)."""
        uid = self._ids.next()
        self._add_user(uid, username, bot=bot, roles=roles)
        return uid

    def set_member_roles(self, user_id: int, role_ids: Iterable[int]) -> None:
        self._members[user_id]["roles"] = [str(r) for r in role_ids]

    def set_role_permissions(self, role_id: int, permissions: int) -> None:
        self._roles[role_id]["permissions"] = str(permissions)

    def set_accepts_dms(self, user_id: int, accepts: bool) -> None:
        self._accepts_dms[user_id] = accepts

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def start(self) -> None:
        self._change = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/gateway", self._ws_handler)
        app.router.add_route("GET", "/gateway/", self._ws_handler)
        app.router.add_route("GET", "/attachments/{cid}/{aid}/{filename}", self._attachment_handler)
        app.router.add_route("*", "/api/v{version}/{tail:.*}", self._rest_handler)
        app.router.add_route("*", "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.info("Discord stand-in listening on %s", self.base_url)

    async def stop(self) -> None:
        disconnect_discord_py(self)
        for conn in list(self._conns):
            if not conn.closed:
                conn.server_closed = True
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1001, message=b"stand-in stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.strict:
            self.assert_clean()

    def assert_clean(self) -> None:
        problems = [f"unknown route {c.method} {c.path}" for c in self.unknown_calls] + list(self.errors)
        if problems:
            raise AssertionError("Discord stand-in problems:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------ change notification / waiting
    def _notify(self) -> None:
        if self._change is not None:
            self._change.set()
            self._change = asyncio.Event()

    def mark(self) -> int:
        return len(self.calls)

    def _action(self) -> None:
        self._action_mark = len(self.calls)

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, *, what: str | None = None
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n    ".join(repr(c) for c in self.calls[-10:]) or "(none)"
                raise TimeoutError(
                    f"stand-in: timed out after {timeout}s waiting for {what or predicate!r}; "
                    f"last REST calls:\n    {recent}"
                )
            event = self._change
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.1))

    def calls_matching(self, method: str | None, path_regex: str, *, since: int = 0) -> list[RecordedCall]:
        rx = re.compile(path_regex)
        return [
            c
            for c in self.calls[since:]
            if (method in (None, "*") or c.method == method.upper())
            and rx.search(c.path)
            and c.status is not None
        ]

    async def wait_for_call(
        self,
        method: str | None,
        path_regex: str,
        timeout: float = 5.0,
        *,
        since: int | None = None,
        predicate: Callable[[RecordedCall], bool] | None = None,
    ) -> RecordedCall:
        start = self._action_mark if since is None else since

        def find() -> RecordedCall | None:
            for c in self.calls_matching(method, path_regex, since=start):
                if predicate is None or predicate(c):
                    return c
            return None

        return await self.wait_for(find, timeout, what=f"{method} {path_regex} (calls since #{start})")

    async def wait_for_response(
        self, interaction_id: int, *, kind: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[dict]:
        rec = self._interactions[int(interaction_id)]

        def ready() -> list[dict] | None:
            got = [r for r in rec.responses if r["ok"] and (kind is None or r["kind"] == kind)]
            return got if len(got) >= count else None

        return await self.wait_for(
            ready, timeout, what=f"{count} {kind or 'any'} response(s) to {interaction_id}"
        )

    # ------------------------------------------------------------------ accessors
    @property
    def threads(self) -> list[dict]:
        return [self._render_channel(self._channels[t]) for t in self._thread_ids]

    @property
    def commands(self) -> list[dict]:
        return [copy.deepcopy(c) for cmds in self._commands.values() for c in cmds]

    @property
    def interactions(self) -> list[InteractionRecord]:
        return list(self._interactions.values())

    def interaction_responses(self, interaction_id: int) -> list[dict]:
        return list(self._interactions[int(interaction_id)].responses)

    def messages_in(
        self, channel_id: int, *, include_ephemeral: bool = True, include_deleted: bool = False
    ) -> list[dict]:
        out = []
        for mid in self._channel_msgs.get(int(channel_id), []):
            msg = self._messages[mid]
            if msg["_deleted"] and not include_deleted:
                continue
            if msg["flags"] & FLAG_EPHEMERAL and not include_ephemeral:
                continue
            rendered = self._render_message(msg)
            if msg["_deleted"]:
                rendered["deleted"] = True
            out.append(rendered)
        return out

    def get_message(self, message_id: int) -> dict:
        return self._render_message(self._messages[int(message_id)])

    def dm_channel_id(self, user_id: int) -> int:
        return self._ensure_dm(int(user_id))

    def user(self, user_id: int) -> dict:
        return dict(self._users[int(user_id)])

    # ------------------------------------------------------------------ permissions
    def _perms(self, user_id: int, channel_id: int | None = None) -> int:
        if user_id == self.owner_id:
            return Perm.ALL
        member = self._members.get(user_id)
        if member is None:
            return 0
        perms = int(self._roles[self.everyone_role_id]["permissions"])
        role_ids = [int(r) for r in member["roles"]]
        for rid in role_ids:
            if rid in self._roles:
                perms |= int(self._roles[rid]["permissions"])
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        if channel_id is None:
            return perms
        ch = self._channels.get(channel_id)
        if ch is None or ch["type"] == DM:
            return perms
        if ch["type"] in THREAD_TYPES:
            ch = self._channels[int(ch["parent_id"])]
        ows = {int(o["id"]): o for o in ch.get("permission_overwrites", [])}
        if self.everyone_role_id in ows:
            o = ows[self.everyone_role_id]
            perms = (perms & ~int(o["deny"])) | int(o["allow"])
        allow = deny = 0
        for rid in role_ids:
            o = ows.get(rid)
            if o is not None and o["type"] == 0:
                allow |= int(o["allow"])
                deny |= int(o["deny"])
        perms = (perms & ~deny) | allow
        o = ows.get(user_id)
        if o is not None and o["type"] == 1:
            perms = (perms & ~int(o["deny"])) | int(o["allow"])
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        return perms

    def _require_bot(self, channel: dict, needed: int) -> None:
        if channel["type"] == DM:
            return
        perms = self._perms(self.bot_user_id, int(channel["id"]))
        if not perms & Perm.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise ApiError(403, 50013, "Missing Permissions")

    # ------------------------------------------------------------------ rendering
    def _user(self, uid: int) -> dict:
        return copy.deepcopy(self._users[uid])

    def _member(self, uid: int, *, with_user: bool = True, channel_id: int | None = None) -> dict:
        m = copy.deepcopy(self._members[uid])
        if with_user:
            m["user"] = self._user(uid)
        if channel_id is not None:
            m["permissions"] = str(self._perms(uid, channel_id))
        return m

    def _render_channel(self, ch: dict, *, for_guild_create: bool = False) -> dict:
        out = {k: copy.deepcopy(v) for k, v in ch.items() if not k.startswith("_")}
        if ch["type"] == DM:
            out["recipients"] = [self._user(ch["_recipient"])]
        if for_guild_create:
            out.pop("guild_id", None)
        return out

    def _render_message(self, msg: dict, *, gateway: bool = False, with_ref: bool = True) -> dict:
        out = {k: copy.deepcopy(v) for k, v in msg.items() if not k.startswith("_")}
        guild_id = int(msg["guild_id"]) if msg.get("guild_id") else None
        out["author"] = self._user(msg["_author"])
        mentions = []
        for uid in msg["_mentions"]:
            u = self._user(uid)
            if gateway and guild_id and uid in self._members:
                u["member"] = self._member(uid, with_user=False)
            mentions.append(u)
        out["mentions"] = mentions
        if gateway and guild_id and msg["_author"] in self._members:
            out["member"] = self._member(msg["_author"], with_user=False)
        ref = msg.get("message_reference")
        if with_ref and ref and ref.get("type", 0) == 0 and msg["type"] == 19:
            target = self._messages.get(int(ref["message_id"]))
            out["referenced_message"] = (
                None if target is None or target["_deleted"] else self._render_message(target, with_ref=False)
            )
        thread_id = msg.get("_thread_id")
        if thread_id:
            out["thread"] = self._render_channel(self._channels[thread_id])
        return out

    # ------------------------------------------------------------------ gateway
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False, autoclose=True)
        await ws.prepare(request)
        conn = _Conn(ws, dict(request.query))
        self._conns.append(conn)
        self.connections_opened += 1
        log.debug("gateway connection #%s opened (query=%s)", conn.id, conn.query)
        try:
            await self._send_frame(conn, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        await self._on_frame(conn, msg.data)
                    except Exception as exc:  # a stand-in bug must not kill the connection silently
                        log.exception("stand-in gateway handler crashed")
                        self.errors.append(f"gateway handler crashed: {exc!r}")
                elif msg.type == WSMsgType.BINARY:
                    await self._close(conn, 4002, "Error while decoding payload.")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed = True
            if not conn.server_closed:
                conn.client_close_code = ws.close_code
            sess = conn.session
            if sess is not None and sess.conn is conn:
                sess.conn = None
                if conn.client_close_code in (1000, 1001):
                    self._sessions.pop(sess.id, None)  # Discord invalidates sessions closed with 1000/1001
            self._notify()
        return ws

    async def _send_frame(self, conn: _Conn, frame: dict | str) -> bool:
        if conn.closed or conn.ws.closed:
            return False
        text = frame if isinstance(frame, str) else json.dumps(frame)
        try:
            await conn.ws.send_str(text)
            return True
        except (ConnectionError, RuntimeError) as exc:
            log.debug("gateway send failed on #%s: %r", conn.id, exc)
            conn.closed = True
            return False

    async def _close(self, conn: _Conn, code: int, reason: str) -> None:
        conn.server_closed = True
        log.warning("stand-in closing gateway connection #%s with %s (%s)", conn.id, code, reason)
        with contextlib.suppress(Exception):
            await conn.ws.close(code=code, message=reason.encode())

    async def _on_frame(self, conn: _Conn, text: str) -> None:
        try:
            frame = json.loads(text)
            op = frame["op"]
        except (ValueError, KeyError, TypeError):
            await self._close(conn, 4002, "Error while decoding payload.")
            return
        data = frame.get("d")
        recorded = copy.deepcopy(frame)
        if op in (2, 6) and isinstance(recorded.get("d"), dict) and "token" in recorded["d"]:
            recorded["d"]["token"] = "<redacted>"
        self.gateway_received.append(recorded)
        if op == 1:
            self.heartbeats_received += 1
            if self.ack_heartbeats and await self._send_frame(conn, {"op": 11}):
                self.heartbeat_acks_sent += 1
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op == 8:
            await self._request_members(conn, data or {})
        elif op in (3, 4):
            pass  # presence / voice state update: recorded only
        else:
            await self._close(conn, 4001, "Unknown opcode.")
        self._notify()

    async def _identify(self, conn: _Conn, d: dict) -> None:
        if conn.session is not None:
            await self._close(conn, 4005, "Already authenticated.")
            return
        if d.get("token") != self.token:
            await self._close(conn, 4004, "Authentication failed.")
            return
        intents = int(d.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await self._close(conn, 4014, "Disallowed intent(s).")
            return
        self.identify_count += 1
        sess = _Session(secrets.token_hex(16), intents, d.get("shard"))
        sess.conn = conn
        conn.session = sess
        self._sessions[sess.id] = sess
        owns_guild = _shard_receives(sess.shard, self.guild_id)
        ready = {
            "v": API_VERSION,
            "user": self._me_payload(),
            "guilds": [{"id": str(self.guild_id), "unavailable": True}] if owns_guild else [],
            "session_id": sess.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["standin"],
            "_trace": ["discord-standin"],
        }
        if sess.shard is not None:
            ready["shard"] = sess.shard
        await self._send_event(sess, "READY", ready)
        if owns_guild:
            await self._send_event(sess, "GUILD_CREATE", self._guild_create_payload(sess))

    async def _resume(self, conn: _Conn, d: dict) -> None:
        sess = self._sessions.get(str(d.get("session_id")))
        if sess is None or d.get("token") != self.token:
            await self._send_frame(conn, {"op": 9, "d": False})
            return
        if sess.conn is not None and sess.conn is not conn:
            old = sess.conn
            sess.conn = None
            await self._close(old, 4000, "Session resumed elsewhere.")
        sess.conn = conn
        conn.session = sess
        self.resume_count += 1
        last = int(d.get("seq") or 0)
        for seq, text in sess.buffer:
            if seq > last:
                await self._send_frame(conn, text)
        await self._send_event(sess, "RESUMED", {"_trace": ["discord-standin"]})

    async def _request_members(self, conn: _Conn, d: dict) -> None:
        if conn.session is None:
            await self._close(conn, 4003, "Not authenticated.")
            return
        query = (d.get("query") or "").lower()
        user_ids = {int(u) for u in (d.get("user_ids") or []) if str(u).isdigit()}
        limit = int(d.get("limit") or 0) or len(self._members)
        members = []
        for uid in self._members:
            name = self._users[uid]["username"].lower()
            if (user_ids and uid in user_ids) or (not user_ids and name.startswith(query)):
                members.append(self._member(uid))
        payload = {
            "guild_id": str(self.guild_id),
            "members": members[:limit],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if d.get("nonce") is not None:
            payload["nonce"] = d["nonce"]
        if d.get("presences"):
            payload["presences"] = []
        await self._send_event(conn.session, "GUILD_MEMBERS_CHUNK", payload)

    def _me_payload(self) -> dict:
        me = self._user(self.bot_user_id)
        me.update(
            {"verified": True, "mfa_enabled": False, "locale": "en-US", "email": None, "premium_type": 0}
        )
        return me

    def _application_flags(self) -> int:
        flags = 1 << 23  # APPLICATION_COMMAND_BADGE
        if self.privileged_intents & Intent.GUILD_PRESENCES:
            flags |= 1 << 13
        if self.privileged_intents & Intent.GUILD_MEMBERS:
            flags |= 1 << 15
        if self.privileged_intents & Intent.MESSAGE_CONTENT:
            flags |= 1 << 19
        return flags

    def _guild_payload(self) -> dict:
        return {
            "id": str(self.guild_id),
            "name": "Newsroom",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": [copy.deepcopy(r) for r in self._roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": str(self.general_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
        }

    def _guild_create_payload(self, sess: _Session) -> dict:
        g = self._guild_payload()
        if sess.intents & Intent.GUILD_MEMBERS:
            member_ids = list(self._members)
            member_count = len(member_ids)
        else:
            member_ids = [self.bot_user_id]  # like Discord: only ourselves without the members intent
            member_count = len(self._members)
        guild_channels = [c for c in self._channels.values() if c["type"] in (TEXT, NEWS)]
        active_threads = [
            self._channels[t]
            for t in self._thread_ids
            if not self._channels[t]["thread_metadata"]["archived"]
        ]
        g.update(
            {
                "unavailable": False,
                "joined_at": self._members[self.bot_user_id]["joined_at"],
                "large": False,
                "member_count": member_count,
                "members": [self._member(uid) for uid in member_ids],
                "channels": [self._render_channel(c, for_guild_create=True) for c in guild_channels],
                "threads": [self._render_channel(c) for c in active_threads],
                "presences": [],
                "voice_states": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
        return g

    async def _send_event(self, sess: _Session, event: str, data: Any) -> None:
        sess.seq += 1
        text = json.dumps({"op": 0, "t": event, "s": sess.seq, "d": data})
        sess.buffer.append((sess.seq, text))
        del sess.buffer[:-2000]
        if sess.conn is not None:
            await self._send_frame(sess.conn, text)

    async def _dispatch(
        self,
        event: str,
        data: Any,
        *,
        intent: int = 0,
        transform: Callable[[_Session, Any], Any] | None = None,
    ) -> None:
        self.events_dispatched.append({"t": event, "d": data})
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        for sess in list(self._sessions.values()):
            if intent and not sess.intents & intent:
                continue
            if not _shard_receives(sess.shard, guild_id):
                continue
            await self._send_event(sess, event, transform(sess, data) if transform else data)
        self._notify()

    # raw / control API
    async def dispatch_raw(self, event_name: str, data: Any) -> None:
        """Send ``{"op": 0, "t": event_name, "d": data}`` to every session, unvalidated."""
        self._action()
        await self._dispatch(event_name, data)

    async def send_raw_gateway(self, frame: dict | str) -> None:
        self._action()
        for conn in self._conns:
            await self._send_frame(conn, frame)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py closes and RESUMEs."""
        for conn in self._conns:
            if conn.session is not None:
                await self._send_frame(conn, {"op": 7, "d": None})

    async def invalidate_sessions(self, resumable: bool = False) -> None:
        for conn in self._conns:
            if conn.session is not None:
                if not resumable:
                    self._sessions.pop(conn.session.id, None)
                await self._send_frame(conn, {"op": 9, "d": resumable})

    async def drop_connections(self, code: int = 4000) -> None:
        for conn in list(self._conns):
            if not conn.closed:
                await self._close(conn, code, "dropped by test")

    # ------------------------------------------------------------------ message event helpers
    def _content_transform(self, msg: dict) -> Callable[[_Session, Any], Any]:
        def visible(m: dict) -> bool:
            return (
                not m.get("guild_id")
                or m["_author"] == self.bot_user_id
                or self.bot_user_id in m["_mentions"]
            )

        def strip(d: dict) -> dict:
            d = dict(d)
            d.update({"content": "", "embeds": [], "attachments": [], "components": []})
            d.pop("poll", None)
            return d

        def transform(sess: _Session, data: Any) -> Any:
            if sess.intents & Intent.MESSAGE_CONTENT:
                return data
            out = data if visible(msg) else strip(data)
            ref = data.get("referenced_message") if isinstance(data, dict) else None
            if ref:
                target = self._messages.get(int(ref["id"]))
                if target is not None and not visible(target):
                    out = dict(out)
                    out["referenced_message"] = strip(ref)
            return out

        return transform

    def _message_intent(self, msg: dict) -> int:
        return Intent.GUILD_MESSAGES if msg.get("guild_id") else Intent.DIRECT_MESSAGES

    async def _publish_create(self, msg: dict) -> None:
        if msg["flags"] & FLAG_EPHEMERAL:
            self._notify()
            return
        await self._dispatch(
            "MESSAGE_CREATE",
            self._render_message(msg, gateway=True),
            intent=self._message_intent(msg),
            transform=self._content_transform(msg),
        )

    async def _publish_update(self, msg: dict) -> None:
        if msg["flags"] & FLAG_EPHEMERAL:
            self._notify()
            return
        await self._dispatch(
            "MESSAGE_UPDATE",
            self._render_message(msg, gateway=True),
            intent=self._message_intent(msg),
            transform=self._content_transform(msg),
        )

    async def _publish_delete(self, msg: dict) -> None:
        if msg["flags"] & FLAG_EPHEMERAL:
            self._notify()
            return
        data = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if msg.get("guild_id"):
            data["guild_id"] = msg["guild_id"]
        await self._dispatch("MESSAGE_DELETE", data, intent=self._message_intent(msg))

    # ------------------------------------------------------------------ message model
    def _compute_mentions(
        self,
        author_id: int,
        channel: dict,
        content: str,
        allowed: dict | None,
        replied_author: int | None,
    ) -> tuple[list[int], list[int], bool]:
        users: list[int] = []
        for m in _USER_MENTION.finditer(content):
            uid = int(m.group(1))
            if uid in self._users and uid not in users:
                users.append(uid)
        in_guild = channel["type"] != DM
        roles = [int(r) for r in _ROLE_MENTION.findall(content) if in_guild and int(r) in self._roles]
        everyone = bool(
            in_guild
            and _EVERYONE_MENTION.search(content)
            and self._perms(author_id, int(channel["id"])) & Perm.MENTION_EVERYONE
        )
        replied_user = True
        if allowed is not None:
            parse = set(allowed.get("parse") or [])
            ok_users = {int(u) for u in allowed.get("users") or []}
            ok_roles = {int(r) for r in allowed.get("roles") or []}
            users = [u for u in users if "users" in parse or u in ok_users]
            roles = [r for r in roles if "roles" in parse or r in ok_roles]
            everyone = everyone and "everyone" in parse
            replied_user = bool(allowed.get("replied_user", False))
        if replied_author is not None and replied_user and replied_author not in users:
            users.append(replied_author)
        return users, roles, everyone

    def _make_attachments(
        self, channel_id: int, declared: list | None, files: list[UploadedFile]
    ) -> list[dict]:
        out = []
        by_index = {}
        for f in files:
            m = re.match(r"files\[(\d+)\]", f.field_name)
            if m:
                by_index[int(m.group(1))] = f
        for entry in declared or [{"id": i} for i in sorted(by_index)]:
            try:
                index = int(entry["id"])
            except (KeyError, ValueError, TypeError):
                continue
            f = by_index.get(index)
            if f is None:
                continue
            aid = self._ids.next()
            filename = entry.get("filename") or f.filename or f"file{index}"
            self._blobs[aid] = (f.data, f.content_type)
            url = f"{self.base_url}/attachments/{channel_id}/{aid}/{urllib.parse.quote(filename)}"
            att = {
                "id": str(aid),
                "filename": filename,
                "size": len(f.data),
                "url": url,
                "proxy_url": url,
                "content_type": f.content_type,
            }
            if entry.get("description"):
                att["description"] = entry["description"]
            out.append(att)
        return out

    @staticmethod
    def _normalize_embeds(embeds: list | None) -> list[dict]:
        out = []
        for e in embeds or []:
            e = copy.deepcopy(e)
            e.setdefault("type", "rich")
            out.append(e)
        return out

    def _store_message(
        self,
        *,
        channel: dict,
        author_id: int,
        payload: dict,
        files: Iterable[UploadedFile] = (),
        reference: dict | None = None,
        msg_type: int = 0,
        webhook: bool = False,
        interaction_metadata: dict | None = None,
        visible_to: int | None = None,
        extra_flags: int = 0,
        message_id: int | None = None,
    ) -> dict:
        mid = message_id or self._ids.next()
        cid = int(channel["id"])
        content = payload.get("content") or ""
        replied_author = reference["_author"] if reference else None
        mentions, roles, everyone = self._compute_mentions(
            author_id, channel, content, payload.get("allowed_mentions"), replied_author
        )
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(cid),
            "content": content,
            "timestamp": snowflake_time_iso(mid),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts")),
            "mention_everyone": everyone,
            "mention_roles": [str(r) for r in roles],
            "attachments": self._make_attachments(cid, payload.get("attachments"), list(files)),
            "embeds": self._normalize_embeds(payload.get("embeds")),
            "reactions": [],
            "pinned": False,
            "type": msg_type,
            "flags": (int(payload.get("flags") or 0) & _SENDABLE_FLAGS) | extra_flags,
            "components": copy.deepcopy(payload.get("components") or []),
            "_author": author_id,
            "_mentions": mentions,
            "_visible_to": visible_to,
            "_deleted": False,
        }
        if channel.get("guild_id"):
            msg["guild_id"] = channel["guild_id"]
        if payload.get("nonce") is not None:
            msg["nonce"] = payload["nonce"]
        if reference is not None:
            ref = {"type": 0, "message_id": reference["id"], "channel_id": reference["channel_id"]}
            if reference.get("guild_id"):
                ref["guild_id"] = reference["guild_id"]
            msg["message_reference"] = ref
        if webhook:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
        if interaction_metadata is not None:
            msg["interaction_metadata"] = interaction_metadata
        if channel["type"] in THREAD_TYPES:
            msg["position"] = channel["total_message_sent"]
            channel["total_message_sent"] += 1
            channel["message_count"] += 1
        self._messages[mid] = msg
        self._channel_msgs.setdefault(cid, []).append(mid)
        if not msg["flags"] & FLAG_EPHEMERAL:
            channel["last_message_id"] = str(mid)
        return msg

    def _apply_edit(self, msg: dict, payload: dict, files: list[UploadedFile]) -> None:
        if "content" in payload:
            msg["content"] = payload["content"] or ""
            channel = self._channels[int(msg["channel_id"])]
            ref = msg.get("message_reference")
            replied = None
            if ref and msg["type"] == 19 and int(ref["message_id"]) in self._messages:
                replied = self._messages[int(ref["message_id"])]["_author"]
            users, roles, everyone = self._compute_mentions(
                msg["_author"], channel, msg["content"], payload.get("allowed_mentions"), replied
            )
            msg["_mentions"], msg["mention_roles"], msg["mention_everyone"] = (
                users,
                [str(r) for r in roles],
                everyone,
            )
        if "embeds" in payload:
            msg["embeds"] = self._normalize_embeds(payload["embeds"])
        if "components" in payload:
            msg["components"] = copy.deepcopy(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg["flags"] & ~(FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2)
            msg["flags"] = keep | (int(payload["flags"]) & (FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2))
        if "attachments" in payload or files:
            declared = payload.get("attachments")
            if declared is None:
                kept, new_decl = msg["attachments"], None
            else:
                existing = {a["id"]: a for a in msg["attachments"]}
                kept = [existing[str(a["id"])] for a in declared if str(a.get("id")) in existing]
                new_decl = [a for a in declared if str(a.get("id")) not in existing]
            msg["attachments"] = kept + self._make_attachments(int(msg["channel_id"]), new_decl, files)
        msg["edited_timestamp"] = _now_iso()

    @staticmethod
    def _validate_message(payload: dict, files: list[UploadedFile], *, create: bool) -> None:
        items: list[tuple[tuple, str, str]] = []
        content = payload.get("content")
        if content is not None and not isinstance(content, str):
            items.append((("content",), "STRING_TYPE_CONVERT", "Could not interpret value as string."))
        else:
            _max_len(items, ("content",), content, 2000)
        embeds = payload.get("embeds")
        if embeds is not None:
            if not isinstance(embeds, list):
                items.append((("embeds",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"))
                embeds = []
            if len(embeds) > 10:
                items.append((("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."))
            total = 0
            for i, e in enumerate(embeds):
                p = ("embeds", i)
                _max_len(items, (*p, "title"), e.get("title"), 256)
                _max_len(items, (*p, "description"), e.get("description"), 4096)
                _max_len(items, (*p, "footer", "text"), (e.get("footer") or {}).get("text"), 2048)
                _max_len(items, (*p, "author", "name"), (e.get("author") or {}).get("name"), 256)
                fields = e.get("fields") or []
                if len(fields) > 25:
                    items.append(((*p, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
                for j, f in enumerate(fields):
                    for key, limit in (("name", 256), ("value", 1024)):
                        if not f.get(key):
                            items.append(
                                ((*p, "fields", j, key), "BASE_TYPE_REQUIRED", "This field is required")
                            )
                        _max_len(items, (*p, "fields", j, key), f.get(key), limit)
                    total += len(f.get("name") or "") + len(f.get("value") or "")
                for text in (
                    e.get("title"),
                    e.get("description"),
                    (e.get("footer") or {}).get("text"),
                    (e.get("author") or {}).get("name"),
                ):
                    total += len(text or "")
            if total > 6000:
                items.append(
                    (("embeds",), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
                )
        components = payload.get("components")
        if components:
            v2 = int(payload.get("flags") or 0) & FLAG_COMPONENTS_V2
            seen: set[str] = set()
            if not v2 and len(components) > 5:
                items.append((("components",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
            for i, row in enumerate(components):
                if not v2:
                    if row.get("type") != 1:
                        items.append(
                            (("components", i, "type"), "UNION_TYPE_CHOICES", "Value must be one of {1}.")
                        )
                        continue
                    inner = row.get("components") or []
                    if not inner or len(inner) > 5:
                        items.append(
                            (
                                ("components", i, "components"),
                                "BASE_TYPE_BAD_LENGTH",
                                "Must be between 1 and 5 in length.",
                            )
                        )
                    if any(c.get("type") != 2 for c in inner) and len(inner) > 1:
                        items.append(
                            (
                                ("components", i, "components"),
                                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                                "The specified component exceeds the maximum width",
                            )
                        )
            for comp in _walk_components(components):
                cid = comp.get("custom_id")
                if comp.get("type") == 2:
                    _max_len(items, ("components", "label"), comp.get("label"), 80)
                    if comp.get("style") not in (5, 6) and not cid:
                        items.append(
                            (("components", "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
                        )
                if cid is not None:
                    _max_len(items, ("components", "custom_id"), cid, 100)
                    if cid in seen:
                        items.append(
                            (
                                ("components",),
                                "COMPONENT_CUSTOM_ID_DUPLICATED",
                                "Component custom id cannot be duplicated",
                            )
                        )
                    seen.add(cid)
            if v2 and sum(1 for _ in _walk_components(components)) > 40:
                items.append((("components",), "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length."))
        allowed = payload.get("allowed_mentions")
        if isinstance(allowed, dict):
            parse = allowed.get("parse") or []
            for key in ("users", "roles"):
                if key in parse and allowed.get(key):
                    items.append(
                        (
                            ("allowed_mentions",),
                            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                            f'parse:["{key}"] and {key}: [ids...] are mutually exclusive.',
                        )
                    )
        if items:
            raise _form_error(items)
        if sum(len(f.data) for f in files) > ATTACHMENT_SIZE_LIMIT:
            raise ApiError(413, 40005, "Request entity too large")
        if create:
            empty = (
                not (payload.get("content") or "")
                and not payload.get("embeds")
                and not files
                and not payload.get("components")
                and not payload.get("sticker_ids")
                and not payload.get("poll")
            )
            if empty:
                raise ApiError(400, 50006, "Cannot send an empty message")
        if payload.get("poll"):
            log.error("stand-in: polls are not modelled; the poll is dropped")

    # ------------------------------------------------------------------ REST plumbing
    def _build_routes(self) -> list[tuple[str, re.Pattern, Callable, bool]]:
        s = r"(\d+)"
        tok = r"([^/]+)"
        table = [
            ("GET", "/users/@me", self._r_me, True),
            ("GET", f"/users/{s}", self._r_user, True),
            ("GET", "/gateway", self._r_gateway, False),
            ("GET", "/gateway/bot", self._r_gateway_bot, True),
            ("GET", "/oauth2/applications/@me", self._r_application, True),
            ("GET", "/applications/@me", self._r_application, True),
            ("GET", f"/applications/{s}/commands", self._r_commands_get, True),
            ("PUT", f"/applications/{s}/commands", self._r_commands_put, True),
            ("POST", f"/applications/{s}/commands", self._r_command_post, True),
            ("GET", f"/applications/{s}/commands/{s}", self._r_command_get, True),
            ("PATCH", f"/applications/{s}/commands/{s}", self._r_command_patch, True),
            ("DELETE", f"/applications/{s}/commands/{s}", self._r_command_delete, True),
            ("GET", f"/applications/{s}/guilds/{s}/commands", self._r_commands_get, True),
            ("PUT", f"/applications/{s}/guilds/{s}/commands", self._r_commands_put, True),
            ("POST", f"/applications/{s}/guilds/{s}/commands", self._r_command_post, True),
            ("GET", f"/applications/{s}/guilds/{s}/commands/{s}", self._r_command_get, True),
            ("PATCH", f"/applications/{s}/guilds/{s}/commands/{s}", self._r_command_patch, True),
            ("DELETE", f"/applications/{s}/guilds/{s}/commands/{s}", self._r_command_delete, True),
            ("GET", f"/channels/{s}", self._r_channel_get, True),
            ("PATCH", f"/channels/{s}", self._r_channel_patch, True),
            ("GET", f"/channels/{s}/messages", self._r_history, True),
            ("POST", f"/channels/{s}/messages", self._r_message_create, True),
            ("GET", f"/channels/{s}/messages/{s}", self._r_message_get, True),
            ("PATCH", f"/channels/{s}/messages/{s}", self._r_message_edit, True),
            ("DELETE", f"/channels/{s}/messages/{s}", self._r_message_delete, True),
            ("POST", f"/channels/{s}/typing", self._r_typing, True),
            ("POST", f"/channels/{s}/messages/{s}/threads", self._r_thread_from_message, True),
            ("POST", f"/channels/{s}/threads", self._r_thread_create, True),
            ("PUT", f"/channels/{s}/messages/{s}/reactions/{tok}/@me", self._r_reaction_put, True),
            ("DELETE", f"/channels/{s}/messages/{s}/reactions/{tok}/@me", self._r_reaction_delete, True),
            ("PUT", f"/channels/{s}/thread-members/@me", self._r_thread_join, True),
            ("DELETE", f"/channels/{s}/thread-members/@me", self._r_thread_join, True),
            ("POST", "/users/@me/channels", self._r_dm_create, True),
            ("GET", f"/guilds/{s}", self._r_guild, True),
            ("GET", f"/guilds/{s}/channels", self._r_guild_channels, True),
            ("GET", f"/guilds/{s}/roles", self._r_guild_roles, True),
            ("GET", f"/guilds/{s}/members/{s}", self._r_guild_member, True),
            ("GET", f"/guilds/{s}/threads/active", self._r_active_threads, True),
            ("POST", f"/interactions/{s}/{tok}/callback", self._r_interaction_callback, False),
            ("POST", f"/webhooks/{s}/{tok}", self._r_followup_create, False),
            ("GET", f"/webhooks/{s}/{tok}/messages/(@original|\\d+)", self._r_webhook_message_get, False),
            ("PATCH", f"/webhooks/{s}/{tok}/messages/(@original|\\d+)", self._r_webhook_message_edit, False),
            (
                "DELETE",
                f"/webhooks/{s}/{tok}/messages/(@original|\\d+)",
                self._r_webhook_message_delete,
                False,
            ),
        ]
        return [(m, re.compile(f"^{p}$"), h, auth) for m, p, h, auth in table]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 500,
        body: Any = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` matching REST calls fail with ``status`` (before any route logic)."""
        hdrs = dict(headers or {})
        if status == 429:
            body = body or {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}
            hdrs.setdefault("Via", "1.1 google")
            hdrs.setdefault("Retry-After", "1")
        if body is None:
            body = {"message": f"{status}: injected by test", "code": 0}
        self._faults.append(
            {
                "method": method.upper(),
                "rx": re.compile(path_regex),
                "status": status,
                "body": body,
                "times": times,
                "headers": hdrs,
            }
        )

    async def _attachment_handler(self, request: web.Request) -> web.StreamResponse:
        blob = self._blobs.get(int(request.match_info["aid"]))
        if blob is None:
            return web.Response(status=404)
        return web.Response(body=blob[0], content_type=blob[1] or "application/octet-stream")

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        prefix = f"/api/v{API_VERSION}"
        raw_path = request.path
        path = raw_path[len(prefix) :] if raw_path.startswith(prefix + "/") else raw_path
        call = RecordedCall(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            files=[],
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("authorization", "x-audit-log-reason", "content-type", "user-agent")
            },
            at=time.monotonic(),
        )
        self.calls.append(call)
        status, body, headers = await self._handle_call(
            request, call, under_api=raw_path.startswith(prefix + "/")
        )
        call.status, call.response = status, body
        self._notify()
        return _json_response(status, body, headers)

    async def _read_body(self, request: web.Request, call: RecordedCall) -> None:
        ctype = request.content_type or ""
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                name = getattr(part, "name", None)
                if name == "payload_json":
                    call.json = json.loads(await part.text())
                else:
                    data = await part.read(decode=False)
                    call.files.append(
                        UploadedFile(
                            name or "",
                            getattr(part, "filename", None),
                            part.headers.get("Content-Type"),
                            data,
                        )
                    )
            return
        raw = await request.read()
        if not raw:
            return
        if ctype == "application/json":
            call.json = json.loads(raw)
        else:
            call.json = raw.decode("utf-8", "replace")

    async def _handle_call(
        self, request: web.Request, call: RecordedCall, *, under_api: bool
    ) -> tuple[int, Any, dict[str, str] | None]:
        try:
            await self._read_body(request, call)
        except ValueError:
            return 400, {"message": "The request body contains invalid JSON.", "code": 50109}, None
        for fault in self._faults:
            if fault["times"] > 0 and fault["method"] in (call.method, "*") and fault["rx"].search(call.path):
                fault["times"] -= 1
                call.injected = True
                return fault["status"], fault["body"], fault["headers"]
        if under_api:
            for method, rx, handler, needs_auth in self._routes:
                if method != call.method:
                    continue
                m = rx.match(call.path)
                if not m:
                    continue
                call.route = rx.pattern
                if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                    return 401, {"message": "401: Unauthorized", "code": 0}, None
                try:
                    status, body = await handler(call, *m.groups())
                    return status, body, None
                except ApiError as err:
                    return err.status, err.body(), None
                except Exception as exc:
                    log.exception("stand-in route handler crashed for %s %s", call.method, call.path)
                    self.errors.append(f"{call.method} {call.path}: {exc!r}")
                    # 503 rather than 500: discord.py silently retries 500s with multi-second sleeps.
                    return 503, {"message": f"stand-in internal error: {exc!r}", "code": 0}, None
        self.unknown_calls.append(call)
        log.error(
            "DISCORD STAND-IN: UNKNOWN ROUTE %s %s (query=%s body=%s) -> 404. Add it to tests/discord_standin.py "
            "if the bot really needs it.",
            call.method,
            call.path,
            call.query,
            str(call.json)[:300],
        )
        return 404, {"message": "Unknown route", "code": 0}, None

    # ------------------------------------------------------------------ lookups
    def _channel(self, cid: str | int) -> dict:
        ch = self._channels.get(int(cid))
        if ch is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return ch

    def _message(self, cid: str | int, mid: str | int, *, allow_ephemeral: bool = False) -> dict:
        msg = self._messages.get(int(mid))
        if (
            msg is None
            or msg["_deleted"]
            or int(msg["channel_id"]) != int(cid)
            or (msg["flags"] & FLAG_EPHEMERAL and not allow_ephemeral)
        ):
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    def _check_guild(self, gid: str | int) -> None:
        if int(gid) != self.guild_id:
            raise ApiError(404, 10004, "Unknown Guild")

    def _check_app(self, app: str | int) -> None:
        if int(app) != self.application_id:
            raise ApiError(403, 50001, "Missing Access")

    # ------------------------------------------------------------------ REST: users / gateway / app
    async def _r_me(self, call: RecordedCall) -> tuple[int, Any]:
        return 200, self._me_payload()

    async def _r_user(self, call: RecordedCall, uid: str) -> tuple[int, Any]:
        if int(uid) not in self._users:
            raise ApiError(404, 10013, "Unknown User")
        return 200, self._user(int(uid))

    async def _r_gateway(self, call: RecordedCall) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _r_gateway_bot(self, call: RecordedCall) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    async def _r_application(self, call: RecordedCall) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": "newsbot",
            "icon": None,
            "description": "Industry news answers (stand-in)",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self._application_flags(),
            "owner": self._application_owner(),
            "team": self._team(),
            "bot": self._user(self.bot_user_id),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
            "approximate_guild_count": 1,
            "integration_types_config": {"0": {}},
        }

    def _application_owner(self) -> dict:
        if not self.team_members:
            return self._user(self.application_owner_id)
        # A team-owned application reports a pseudo-user named after the team as its owner.
        return {"id": str(self.team_id), "username": f"team{self.team_id}", "global_name": None,
                "discriminator": "0000", "avatar": None, "public_flags": 1024, "flags": 1024}

    def _team(self) -> dict | None:
        if not self.team_members:
            return None
        return {
            "id": str(self.team_id),
            "name": "Newsroom developers",
            "icon": None,
            "owner_user_id": str(next(iter(self.team_members))),
            "members": [
                {"user": self._user(uid), "team_id": str(self.team_id), "membership_state": 2,
                 "permissions": ["*"], "role": role}
                for uid, role in self.team_members.items()
            ],
        }

    # ------------------------------------------------------------------ REST: application commands
    def _cmd_list(self, gid: str | None) -> list[dict]:
        if gid is not None:
            self._check_guild(gid)
            return self._commands.setdefault(int(gid), [])
        return self._commands[None]

    @staticmethod
    def _validate_command(c: dict, index: int | None, items: list) -> None:
        p: tuple = () if index is None else (index,)
        ctype = c.get("type", 1)
        name = c.get("name") or ""
        if not _COMMAND_NAME.match(name) or (ctype == 1 and name != name.lower()):
            items.append(((*p, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"))
        desc = c.get("description") or ""
        if ctype == 1 and not 1 <= len(desc) <= 100:
            items.append(
                ((*p, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            )

        def check_options(options: list, path: tuple) -> None:
            if len(options) > 25:
                items.append(((*path,), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
            seen_optional = False
            names = set()
            for i, o in enumerate(options):
                op = (*path, i)
                oname = o.get("name") or ""
                if not _COMMAND_NAME.match(oname) or oname != oname.lower():
                    items.append(
                        ((*op, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
                    )
                if oname in names:
                    items.append(
                        (
                            (*op, "name"),
                            "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                            "Option names must be unique",
                        )
                    )
                names.add(oname)
                if not 1 <= len(o.get("description") or "") <= 100:
                    items.append(
                        ((*op, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
                    )
                if o.get("type") in (OPT_SUB, OPT_GROUP):
                    check_options(o.get("options") or [], (*op, "options"))
                    continue
                if o.get("required"):
                    if seen_optional:
                        items.append(
                            (
                                (*op, "required"),
                                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                "Required options must be placed before non-required options",
                            )
                        )
                else:
                    seen_optional = True
                if len(o.get("choices") or []) > 25:
                    items.append(((*op, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))

        check_options(c.get("options") or [], (*p, "options"))

    def _store_command(self, c: dict, gid: str | None, old: dict | None) -> dict:
        stored = {
            "id": old["id"] if old else str(self._ids.next()),
            "application_id": str(self.application_id),
            "version": old["version"] if old else str(self._ids.next()),
            "type": c.get("type", 1),
            "name": c["name"],
            "name_localizations": c.get("name_localizations"),
            "description": c.get("description", ""),
            "description_localizations": c.get("description_localizations"),
            "options": copy.deepcopy(c.get("options") or []),
            "default_member_permissions": (
                None if c.get("default_member_permissions") is None else str(c["default_member_permissions"])
            ),
            "nsfw": bool(c.get("nsfw", False)),
            "contexts": c.get("contexts"),
            "integration_types": c.get("integration_types") or [0],
        }
        if gid is not None:
            stored["guild_id"] = str(gid)
        else:
            stored["dm_permission"] = c["dm_permission"] if c.get("dm_permission") is not None else True
        if old is not None:
            comparable = ("description", "options", "default_member_permissions", "nsfw", "contexts")
            if any(old.get(k) != stored.get(k) for k in comparable):
                stored["version"] = str(self._ids.next())
        return stored

    async def _r_commands_get(self, call: RecordedCall, app: str, gid: str | None = None) -> tuple[int, Any]:
        self._check_app(app)
        return 200, copy.deepcopy(self._cmd_list(gid))

    async def _r_commands_put(self, call: RecordedCall, app: str, gid: str | None = None) -> tuple[int, Any]:
        self._check_app(app)
        body = call.json
        if not isinstance(body, list):
            raise _form_error([((), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")])
        items: list = []
        seen = set()
        for i, c in enumerate(body):
            self._validate_command(c, i, items)
            key = (c.get("name"), c.get("type", 1))
            if key in seen:
                items.append(
                    (
                        (i, "name"),
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        "Application command names must be unique",
                    )
                )
            seen.add(key)
        if len(body) > 100:
            items.append(((), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."))
        if items:
            raise _form_error(items)
        current = self._cmd_list(gid)
        existing = {(c["name"], c["type"]): c for c in current}
        new = [self._store_command(c, gid, existing.get((c["name"], c.get("type", 1)))) for c in body]
        current[:] = new
        return 200, copy.deepcopy(new)

    async def _r_command_post(self, call: RecordedCall, app: str, gid: str | None = None) -> tuple[int, Any]:
        self._check_app(app)
        c = call.json or {}
        items: list = []
        self._validate_command(c, None, items)
        if items:
            raise _form_error(items)
        current = self._cmd_list(gid)
        for i, old in enumerate(current):
            if old["name"] == c.get("name") and old["type"] == c.get("type", 1):
                current[i] = self._store_command(c, gid, old)
                return 200, copy.deepcopy(current[i])
        stored = self._store_command(c, gid, None)
        current.append(stored)
        return 201, copy.deepcopy(stored)

    def _find_command(self, app: str, a: str, b: str | None) -> tuple[list[dict], int]:
        self._check_app(app)
        gid, cmd_id = (None, a) if b is None else (a, b)
        current = self._cmd_list(gid)
        for i, c in enumerate(current):
            if c["id"] == cmd_id:
                return current, i
        raise ApiError(404, 10063, "Unknown application command")

    async def _r_command_get(
        self, call: RecordedCall, app: str, a: str, b: str | None = None
    ) -> tuple[int, Any]:
        current, i = self._find_command(app, a, b)
        return 200, copy.deepcopy(current[i])

    async def _r_command_patch(
        self, call: RecordedCall, app: str, a: str, b: str | None = None
    ) -> tuple[int, Any]:
        current, i = self._find_command(app, a, b)
        merged = {**current[i], **(call.json or {})}
        current[i] = self._store_command(merged, current[i].get("guild_id"), current[i])
        return 200, copy.deepcopy(current[i])

    async def _r_command_delete(
        self, call: RecordedCall, app: str, a: str, b: str | None = None
    ) -> tuple[int, Any]:
        current, i = self._find_command(app, a, b)
        del current[i]
        return 204, None

    # ------------------------------------------------------------------ REST: channels & messages
    async def _r_channel_get(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        self._require_bot(ch, Perm.VIEW_CHANNEL)
        return 200, self._render_channel(ch)

    async def _r_channel_patch(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        body = call.json or {}
        if ch["type"] in THREAD_TYPES:
            if ch["owner_id"] != str(self.bot_user_id):
                self._require_bot(ch, Perm.MANAGE_THREADS)
            meta = ch["thread_metadata"]
            for key in ("archived", "locked", "auto_archive_duration", "invitable"):
                if key in body:
                    meta[key] = body[key]
            if "archived" in body:
                meta["archive_timestamp"] = _now_iso()
        else:
            self._require_bot(ch, Perm.MANAGE_CHANNELS)
        for key in ("name", "topic", "rate_limit_per_user"):
            if key in body:
                ch[key] = body[key]
        event = "THREAD_UPDATE" if ch["type"] in THREAD_TYPES else "CHANNEL_UPDATE"
        await self._dispatch(event, self._render_channel(ch), intent=Intent.GUILDS)
        return 200, self._render_channel(ch)

    async def _r_history(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        self._require_bot(ch, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        try:
            limit = int(call.query.get("limit", 50))
        except ValueError:
            limit = 50
        if not 1 <= limit <= 100:
            raise _form_error([(("limit",), "NUMBER_TYPE_MAX", "int value should be between 1 and 100.")])
        ids = [
            int(m)
            for m in self._channel_msgs.get(int(cid), [])
            if not self._messages[m]["_deleted"] and not self._messages[m]["flags"] & FLAG_EPHEMERAL
        ]
        q = call.query
        if "around" in q:
            around = int(q["around"])
            older = [i for i in ids if i <= around][-((limit + 1) // 2) :]
            newer = [i for i in ids if i > around][: limit - len(older)]
            selected = older + newer
        elif "after" in q:
            selected = [i for i in ids if i > int(q["after"])][:limit]
        else:
            before = int(q["before"]) if "before" in q else None
            selected = [i for i in ids if before is None or i < before][-limit:]
        return 200, [self._render_message(self._messages[i]) for i in sorted(selected, reverse=True)]

    def _check_bot_can_send(self, ch: dict, has_files: bool) -> None:
        if ch["type"] == DM:
            if not self._accepts_dms.get(ch["_recipient"], True):
                raise ApiError(403, 50007, "Cannot send messages to this user")
            return
        needed = Perm.SEND_MESSAGES_IN_THREADS if ch["type"] in THREAD_TYPES else Perm.SEND_MESSAGES
        if has_files:
            needed |= Perm.ATTACH_FILES
        self._require_bot(ch, needed)
        if ch["type"] in THREAD_TYPES:
            meta = ch["thread_metadata"]
            if meta.get("locked") and not self._perms(self.bot_user_id, int(ch["id"])) & Perm.MANAGE_THREADS:
                raise ApiError(403, 50083, "Thread is archived")
            meta["archived"] = False

    def _resolve_reference(self, payload: dict, ch: dict) -> dict | None:
        ref = payload.get("message_reference")
        if not ref:
            return None
        if ref.get("type", 0) != 0:
            raise ApiError(
                400, 50035, "Invalid Form Body (message forwarding is not modelled by the stand-in)"
            )
        target = self._messages.get(int(ref.get("message_id") or 0))
        ref_channel = int(ref.get("channel_id") or ch["id"])
        if target is None or target["_deleted"] or int(target["channel_id"]) != ref_channel:
            if ref.get("fail_if_not_exists", True):
                raise _form_error(
                    [(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")]
                )
            return None
        if ref_channel != int(ch["id"]):
            raise _form_error(
                [
                    (
                        ("message_reference",),
                        "MESSAGE_REFERENCE_INVALID_CHANNEL",
                        "Cannot reply to a message in another channel",
                    )
                ]
            )
        return target

    async def _r_message_create(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        payload = call.json if isinstance(call.json, dict) else {}
        self._check_bot_can_send(ch, bool(call.files))
        self._validate_message(payload, call.files, create=True)
        reference = self._resolve_reference(payload, ch)
        msg = self._store_message(
            channel=ch,
            author_id=self.bot_user_id,
            payload=payload,
            files=call.files,
            reference=reference,
            msg_type=19 if reference else 0,
        )
        await self._publish_create(msg)
        return 200, self._render_message(msg)

    async def _r_message_get(self, call: RecordedCall, cid: str, mid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        self._require_bot(ch, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        return 200, self._render_message(self._message(cid, mid))

    async def _r_message_edit(self, call: RecordedCall, cid: str, mid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        self._require_bot(ch, Perm.VIEW_CHANNEL)
        msg = self._message(cid, mid)
        payload = call.json if isinstance(call.json, dict) else {}
        if msg["_author"] != self.bot_user_id:
            if set(payload) - {"flags"}:
                raise ApiError(403, 50005, "Cannot edit a message authored by another user")
            self._require_bot(ch, Perm.MANAGE_MESSAGES)
        self._validate_message(payload, call.files, create=False)
        self._apply_edit(msg, payload, call.files)
        self._check_not_empty(msg)
        await self._publish_update(msg)
        return 200, self._render_message(msg)

    @staticmethod
    def _check_not_empty(msg: dict) -> None:
        if not (msg["content"] or msg["embeds"] or msg["attachments"] or msg["components"]) and not (
            msg["flags"] & FLAG_LOADING
        ):
            raise ApiError(400, 50006, "Cannot send an empty message")

    async def _r_message_delete(self, call: RecordedCall, cid: str, mid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        msg = self._message(cid, mid)
        if msg["_author"] != self.bot_user_id:
            if ch["type"] == DM:
                raise ApiError(403, 50003, "Cannot execute action on a DM channel")
            self._require_bot(ch, Perm.MANAGE_MESSAGES)
        msg["_deleted"] = True
        await self._publish_delete(msg)
        return 204, None

    async def _r_typing(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        if ch["type"] != DM:
            self._require_bot(
                ch, Perm.SEND_MESSAGES_IN_THREADS if ch["type"] in THREAD_TYPES else Perm.SEND_MESSAGES
            )
        return 204, None

    def _new_thread(
        self, parent: dict, tid: int, name: str, owner_id: int, ttype: int, auto_archive: int
    ) -> dict:
        thread = {
            "id": str(tid),
            "type": ttype,
            "guild_id": str(self.guild_id),
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive,
                "archive_timestamp": _now_iso(),
                "locked": False,
                "create_timestamp": _now_iso(),
                **({"invitable": True} if ttype == PRIVATE_THREAD else {}),
            },
        }
        self._channels[tid] = thread
        self._channel_msgs[tid] = []
        self._thread_ids.append(tid)
        return thread

    async def _dispatch_thread_create(self, thread: dict, owner_id: int) -> None:
        data = self._render_channel(thread)
        data["newly_created"] = True
        if owner_id == self.bot_user_id:
            data["member"] = {
                "id": thread["id"],
                "user_id": str(owner_id),
                "join_timestamp": _now_iso(),
                "flags": 1,
            }
        await self._dispatch("THREAD_CREATE", data, intent=Intent.GUILDS)

    @staticmethod
    def _thread_name_check(body: dict) -> tuple[str, int]:
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise _form_error([(("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")])
        auto = int(body.get("auto_archive_duration") or 1440)
        if auto not in (60, 1440, 4320, 10080):
            raise _form_error(
                [
                    (
                        ("auto_archive_duration",),
                        "BASE_TYPE_CHOICES",
                        "Value must be one of {60, 1440, 4320, 10080}.",
                    )
                ]
            )
        return name, auto

    async def _r_thread_from_message(self, call: RecordedCall, cid: str, mid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        if ch["type"] not in (TEXT, NEWS):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        self._require_bot(ch, Perm.CREATE_PUBLIC_THREADS | Perm.READ_MESSAGE_HISTORY)
        msg = self._message(cid, mid)
        if msg.get("_thread_id"):
            raise ApiError(400, 160004, "A thread has already been created for this message")
        name, auto = self._thread_name_check(call.json or {})
        thread = self._new_thread(ch, int(msg["id"]), name, self.bot_user_id, PUBLIC_THREAD, auto)
        msg["_thread_id"] = int(msg["id"])
        msg["flags"] |= FLAG_HAS_THREAD
        await self._dispatch_thread_create(thread, self.bot_user_id)
        return 201, self._render_channel(thread)

    async def _r_thread_create(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        if ch["type"] not in (TEXT, NEWS):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        body = call.json or {}
        ttype = int(body.get("type") or PUBLIC_THREAD)
        self._require_bot(
            ch, Perm.CREATE_PRIVATE_THREADS if ttype == PRIVATE_THREAD else Perm.CREATE_PUBLIC_THREADS
        )
        name, auto = self._thread_name_check(body)
        thread = await self._open_thread(ch, name, self.bot_user_id, ttype, auto)
        return 201, self._render_channel(thread)

    async def _open_thread(self, ch: dict, name: str, owner_id: int, ttype: int, auto: int) -> dict:
        thread = self._new_thread(ch, self._ids.next(), name, owner_id, ttype, auto)
        await self._dispatch_thread_create(thread, owner_id)
        if ttype == PUBLIC_THREAD:
            system = self._store_message(
                channel=ch, author_id=owner_id, payload={"content": name}, msg_type=18
            )
            system["message_reference"] = {"channel_id": thread["id"], "guild_id": str(self.guild_id)}
            await self._publish_create(system)
        return thread

    async def _react(self, cid: str | int, mid: str | int, raw_emoji: str, user_id: int, add: bool) -> None:
        msg = self._message(cid, mid)
        emoji = _parse_emoji(urllib.parse.unquote(raw_emoji))
        if emoji["id"] is not None:
            raise ApiError(400, 10014, "Unknown Emoji")
        reactions = msg["reactions"]
        entry = next((r for r in reactions if r["emoji"]["name"] == emoji["name"]), None)
        users = msg.setdefault("_reactors", {}).setdefault(emoji["name"], [])
        if add:
            if user_id in users:
                return
            users.append(user_id)
            if entry is None:
                entry = {
                    "emoji": emoji,
                    "count": 0,
                    "me": False,
                    "me_burst": False,
                    "burst_colors": [],
                    "count_details": {"burst": 0, "normal": 0},
                }
                reactions.append(entry)
        else:
            if user_id not in users or entry is None:
                return
            users.remove(user_id)
        entry["count"] = len(users)
        entry["count_details"]["normal"] = len(users)
        entry["me"] = self.bot_user_id in users
        if not users:
            reactions.remove(entry)
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": msg["channel_id"],
            "message_id": msg["id"],
            "emoji": emoji,
            "burst": False,
            "type": 0,
        }
        if add:
            data["message_author_id"] = str(msg["_author"])
        guild = msg.get("guild_id")
        if guild:
            data["guild_id"] = guild
            if add:
                data["member"] = self._member(user_id)
        intent = Intent.GUILD_MESSAGE_REACTIONS if guild else Intent.DIRECT_MESSAGE_REACTIONS
        await self._dispatch(
            "MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", data, intent=intent
        )

    async def _r_reaction_put(self, call: RecordedCall, cid: str, mid: str, emoji: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        self._require_bot(ch, Perm.ADD_REACTIONS | Perm.READ_MESSAGE_HISTORY)
        await self._react(cid, mid, emoji, self.bot_user_id, True)
        return 204, None

    async def _r_reaction_delete(self, call: RecordedCall, cid: str, mid: str, emoji: str) -> tuple[int, Any]:
        self._channel(cid)
        await self._react(cid, mid, emoji, self.bot_user_id, False)
        return 204, None

    async def _r_thread_join(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        if ch["type"] not in THREAD_TYPES:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        return 204, None

    def _ensure_dm(self, user_id: int) -> int:
        if user_id not in self._users:
            raise ApiError(404, 10013, "Unknown User")
        cid = self._dm_by_user.get(user_id)
        if cid is None:
            cid = self._ids.next()
            self._channels[cid] = {
                "id": str(cid),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "_recipient": user_id,
            }
            self._channel_msgs[cid] = []
            self._dm_by_user[user_id] = cid
        return cid

    async def _r_dm_create(self, call: RecordedCall) -> tuple[int, Any]:
        body = call.json or {}
        try:
            uid = int(body.get("recipient_id"))
        except (TypeError, ValueError):
            raise _form_error([(("recipient_id",), "BASE_TYPE_REQUIRED", "This field is required")]) from None
        if uid == self.bot_user_id:
            raise ApiError(400, 50007, "Cannot send messages to this user")
        return 200, self._render_channel(self._channels[self._ensure_dm(uid)])

    # ------------------------------------------------------------------ REST: guild
    async def _r_guild(self, call: RecordedCall, gid: str) -> tuple[int, Any]:
        self._check_guild(gid)
        g = self._guild_payload()
        if call.query.get("with_counts") in ("true", "True", "1"):
            g["approximate_member_count"] = len(self._members)
            g["approximate_presence_count"] = len(self._members)
        return 200, g

    async def _r_guild_channels(self, call: RecordedCall, gid: str) -> tuple[int, Any]:
        self._check_guild(gid)
        return 200, [self._render_channel(c) for c in self._channels.values() if c["type"] in (TEXT, NEWS)]

    async def _r_guild_roles(self, call: RecordedCall, gid: str) -> tuple[int, Any]:
        self._check_guild(gid)
        return 200, [copy.deepcopy(r) for r in self._roles.values()]

    async def _r_guild_member(self, call: RecordedCall, gid: str, uid: str) -> tuple[int, Any]:
        self._check_guild(gid)
        if int(uid) not in self._members:
            raise ApiError(404, 10007, "Unknown Member")
        return 200, self._member(int(uid))

    async def _r_active_threads(self, call: RecordedCall, gid: str) -> tuple[int, Any]:
        self._check_guild(gid)
        active = [
            self._render_channel(self._channels[t])
            for t in self._thread_ids
            if not self._channels[t]["thread_metadata"]["archived"]
        ]
        return 200, {"threads": active, "members": []}

    # ------------------------------------------------------------------ REST: interactions & webhooks
    def _interaction_for(self, iid: str | None, token: str, *, app: str | None = None) -> InteractionRecord:
        rec = self._interactions_by_token.get(urllib.parse.unquote(token))
        if rec is None or (iid is not None and rec.id != int(iid)):
            if iid is not None:
                raise ApiError(404, 10062, "Unknown interaction")
            raise ApiError(404, 10015, "Unknown Webhook")
        if app is not None and int(app) != self.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        if app is not None and time.monotonic() - rec.dispatched_at > INTERACTION_TOKEN_LIFETIME:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return rec

    def _interaction_message_meta(self, rec: InteractionRecord, *, followup_of: int | None = None) -> dict:
        meta: dict[str, Any] = {
            "id": str(rec.id),
            "type": rec.type,
            "user": self._user(rec.user_id),
            "authorizing_integration_owners": rec.payload.get("authorizing_integration_owners", {}),
        }
        if rec.command is not None:
            meta["name"] = rec.command["name"]
            meta["command_type"] = rec.command.get("type", 1)
        if rec.message_id is not None:
            meta["interacted_message_id"] = str(rec.message_id)
        if followup_of is not None:
            meta["original_response_message_id"] = str(followup_of)
        return meta

    def _interaction_msg_type(self, rec: InteractionRecord) -> int:
        if rec.type == 2:
            return 20 if (rec.command or {}).get("type", 1) == 1 else 23
        return 0

    def _log_response(
        self, rec: InteractionRecord, kind: str, call: RecordedCall, *, ok: bool, **extra: Any
    ) -> dict:
        entry = {
            "kind": kind,
            "ok": ok,
            "at": time.monotonic(),
            "data": copy.deepcopy(call.json),
            "files": [f.filename for f in call.files],
            **extra,
        }
        rec.responses.append(entry)
        return entry

    def _callback_response(self, rec: InteractionRecord, ctype: int, msg: dict | None) -> dict:
        body: dict[str, Any] = {
            "interaction": {
                "id": str(rec.id),
                "type": rec.type,
                "response_message_id": msg["id"] if msg else None,
                "response_message_loading": bool(msg and msg["flags"] & FLAG_LOADING),
                "response_message_ephemeral": bool(msg and msg["flags"] & FLAG_EPHEMERAL),
            },
        }
        if ctype in (4, 5, 7) and msg is not None:
            body["resource"] = {"type": ctype, "message": self._render_message(msg)}
        elif ctype in (6,):
            body["resource"] = {"type": ctype}
        return body

    async def _r_interaction_callback(self, call: RecordedCall, iid: str, token: str) -> tuple[int, Any]:
        rec = self._interaction_for(iid, token)
        body = call.json if isinstance(call.json, dict) else {}
        ctype = body.get("type")
        data = body.get("data") or {}
        try:
            if rec.callback_type is not None:
                raise ApiError(400, 40060, "Interaction has already been acknowledged.")
            age = time.monotonic() - rec.dispatched_at
            if age > self.interaction_deadline:
                log.warning(
                    "interaction %s answered after %.2fs (> %.1fs): 10062",
                    rec.id,
                    age,
                    self.interaction_deadline,
                )
                raise ApiError(404, 10062, "Unknown interaction")
            allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}.get(rec.type, set())
            if ctype not in allowed:
                raise _form_error(
                    [
                        (
                            ("type",),
                            "INTERACTION_RESPONSE_TYPE_INVALID",
                            f"Interaction response type {ctype} is not valid for interaction type {rec.type}",
                        )
                    ]
                )
            msg: dict | None = None
            channel = self._channels[rec.channel_id]
            if ctype == 4:
                self._validate_message(data, call.files, create=True)
                msg = self._store_message(
                    channel=channel,
                    author_id=self.bot_user_id,
                    payload=data,
                    files=call.files,
                    msg_type=self._interaction_msg_type(rec),
                    webhook=True,
                    interaction_metadata=self._interaction_message_meta(rec),
                    visible_to=rec.user_id if int(data.get("flags") or 0) & FLAG_EPHEMERAL else None,
                    extra_flags=int(data.get("flags") or 0) & FLAG_EPHEMERAL,
                )
                rec.original_message_id = int(msg["id"])
                await self._publish_create(msg)
            elif ctype == 5:
                eph = int(data.get("flags") or 0) & FLAG_EPHEMERAL
                msg = self._store_message(
                    channel=channel,
                    author_id=self.bot_user_id,
                    payload={},
                    msg_type=self._interaction_msg_type(rec),
                    webhook=True,
                    interaction_metadata=self._interaction_message_meta(rec),
                    visible_to=rec.user_id if eph else None,
                    extra_flags=FLAG_LOADING | eph,
                )
                rec.original_message_id = int(msg["id"])
                rec.deferred_pending = True
                await self._publish_create(msg)
            elif ctype in (6, 7):
                msg = self._messages[rec.message_id] if rec.message_id else None
                if msg is None:
                    raise _form_error(
                        [
                            (
                                ("type",),
                                "INTERACTION_RESPONSE_TYPE_INVALID",
                                "There is no message to update for this interaction",
                            )
                        ]
                    )
                rec.original_message_id = rec.message_id
                if ctype == 7 and msg is not None:
                    self._validate_message(data, call.files, create=False)
                    self._apply_edit(msg, data, call.files)
                    await self._publish_update(msg)
            elif ctype == 9:
                if not data.get("custom_id") or not data.get("title") or not data.get("components"):
                    raise _form_error(
                        [(("data",), "BASE_TYPE_REQUIRED", "Modal needs custom_id, title, components")]
                    )
                rec.modal = copy.deepcopy(data)
            rec.callback_type, rec.callback_data = ctype, copy.deepcopy(data)
        except ApiError as err:
            self._log_response(
                rec, "callback", call, ok=False, type=ctype, status=err.status, error=err.body()
            )
            raise
        self._log_response(
            rec,
            "callback",
            call,
            ok=True,
            type=ctype,
            status=200,
            message=self._render_message(msg) if msg else None,
        )
        if call.query.get("with_response") in ("1", "true", "True"):
            return 200, self._callback_response(rec, ctype, msg)
        return 204, None

    async def _r_followup_create(self, call: RecordedCall, app: str, token: str) -> tuple[int, Any]:
        rec = self._interaction_for(None, token, app=app)
        payload = call.json if isinstance(call.json, dict) else {}
        try:
            if rec.callback_type is None or (rec.callback_type == 9 and rec.original_message_id is None):
                raise ApiError(404, 10015, "Unknown Webhook")
            self._validate_message(payload, call.files, create=True)
            thread_id = call.query.get("thread_id")
            channel = self._channel(thread_id) if thread_id else self._channels[rec.channel_id]
            replaced = False
            if rec.deferred_pending and rec.original_message_id is not None:
                # Discord: the first follow-up after a deferred (type 5) response replaces the "thinking" message.
                msg = self._messages[rec.original_message_id]
                eph = msg["flags"] & FLAG_EPHEMERAL
                self._apply_edit(msg, {**payload, "content": payload.get("content") or ""}, call.files)
                msg["flags"] = (msg["flags"] & ~FLAG_LOADING) | eph
                msg["edited_timestamp"] = None
                rec.deferred_pending = False
                replaced = True
                await self._publish_update(msg)
            else:
                eph = int(payload.get("flags") or 0) & FLAG_EPHEMERAL
                msg = self._store_message(
                    channel=channel,
                    author_id=self.bot_user_id,
                    payload=payload,
                    files=call.files,
                    msg_type=self._interaction_msg_type(rec),
                    webhook=True,
                    interaction_metadata=self._interaction_message_meta(
                        rec, followup_of=rec.original_message_id
                    ),
                    visible_to=rec.user_id if eph else None,
                    extra_flags=eph,
                )
                msg["_interaction_id"] = rec.id
                await self._publish_create(msg)
        except ApiError as err:
            self._log_response(rec, "followup", call, ok=False, status=err.status, error=err.body())
            raise
        self._log_response(
            rec,
            "followup",
            call,
            ok=True,
            status=200,
            message=self._render_message(msg),
            replaced_deferred=replaced,
        )
        if call.query.get("wait") in ("1", "true", "True"):
            return 200, self._render_message(msg)
        return 204, None

    def _webhook_target(self, rec: InteractionRecord, which: str) -> dict:
        if which == "@original":
            if rec.original_message_id is None:
                raise ApiError(404, 10008, "Unknown Message")
            msg = self._messages[rec.original_message_id]
        else:
            msg = self._messages.get(int(which))
            if msg is None or (
                msg.get("_interaction_id") != rec.id and int(which) != rec.original_message_id
            ):
                raise ApiError(404, 10008, "Unknown Message")
        if msg["_deleted"]:
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    async def _r_webhook_message_get(
        self, call: RecordedCall, app: str, token: str, which: str
    ) -> tuple[int, Any]:
        rec = self._interaction_for(None, token, app=app)
        return 200, self._render_message(self._webhook_target(rec, which))

    async def _r_webhook_message_edit(
        self, call: RecordedCall, app: str, token: str, which: str
    ) -> tuple[int, Any]:
        rec = self._interaction_for(None, token, app=app)
        kind = "edit_original" if which == "@original" else "edit_followup"
        payload = call.json if isinstance(call.json, dict) else {}
        try:
            msg = self._webhook_target(rec, which)
            self._validate_message(payload, call.files, create=False)
            self._apply_edit(msg, payload, call.files)
            if msg["flags"] & FLAG_LOADING:
                msg["flags"] &= ~FLAG_LOADING
                if which == "@original":
                    rec.deferred_pending = False
            self._check_not_empty(msg)
            await self._publish_update(msg)
        except ApiError as err:
            self._log_response(rec, kind, call, ok=False, status=err.status, error=err.body())
            raise
        self._log_response(rec, kind, call, ok=True, status=200, message=self._render_message(msg))
        return 200, self._render_message(msg)

    async def _r_webhook_message_delete(
        self, call: RecordedCall, app: str, token: str, which: str
    ) -> tuple[int, Any]:
        rec = self._interaction_for(None, token, app=app)
        kind = "delete_original" if which == "@original" else "delete_followup"
        try:
            msg = self._webhook_target(rec, which)
        except ApiError as err:
            self._log_response(rec, kind, call, ok=False, status=err.status, error=err.body())
            raise
        msg["_deleted"] = True
        await self._publish_delete(msg)
        self._log_response(rec, kind, call, ok=True, status=204, message_id=msg["id"])
        return 204, None

    # ------------------------------------------------------------------ test-side: users act
    def _check_user(self, user_id: int) -> None:
        if user_id not in self._users:
            raise ValueError(f"unknown user id {user_id}")

    async def send_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        mention_bot: bool = False,
        reference_message_id: int | None = None,
        embeds: list[dict] | None = None,
        mention_replied_author: bool = True,
    ) -> dict:
        """A user posts ``content``; returns the stored message (REST shape). Dispatches MESSAGE_CREATE."""
        self._action()
        self._check_user(author_id)
        ch = self._channels.get(int(channel_id))
        if ch is None:
            raise ValueError(f"unknown channel {channel_id}")
        if ch["type"] == DM:
            if ch["_recipient"] != author_id:
                raise PermissionError(f"user {author_id} is not a recipient of DM channel {channel_id}")
        else:
            needed = Perm.SEND_MESSAGES_IN_THREADS if ch["type"] in THREAD_TYPES else Perm.SEND_MESSAGES
            if self._perms(author_id, int(ch["id"])) & needed != needed:
                raise PermissionError(
                    f"user {author_id} cannot send messages in channel {channel_id} (Discord UI)"
                )
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        if len(content) > 2000:
            raise ValueError(
                "Discord clients cannot send more than 2000 characters (no Nitro in the stand-in)"
            )
        reference = None
        if reference_message_id is not None:
            reference = self._messages.get(int(reference_message_id))
            if reference is None or int(reference["channel_id"]) != int(ch["id"]):
                raise ValueError(f"message {reference_message_id} is not in channel {channel_id}")
        allowed = (
            None
            if mention_replied_author
            else {"parse": ["users", "roles", "everyone"], "replied_user": False}
        )
        msg = self._store_message(
            channel=ch,
            author_id=author_id,
            payload={"content": content, "embeds": embeds or [], "allowed_mentions": allowed},
            reference=reference,
            msg_type=19 if reference is not None else 0,
        )
        await self._publish_create(msg)
        return self._render_message(msg)

    async def send_dm(self, author_id: int, content: str, **kwargs: Any) -> dict:
        """The user DMs the bot (creating the DM channel on demand)."""
        cid = self._ensure_dm(author_id)
        return await self.send_message(cid, author_id, content, **kwargs)

    async def edit_user_message(self, message_id: int, content: str) -> dict:
        self._action()
        msg = self._messages[int(message_id)]
        self._apply_edit(msg, {"content": content}, [])
        await self._publish_update(msg)
        return self._render_message(msg)

    async def delete_user_message(self, message_id: int) -> None:
        self._action()
        msg = self._messages[int(message_id)]
        msg["_deleted"] = True
        await self._publish_delete(msg)

    async def add_reaction(self, message_id: int, emoji: str, *, user_id: int) -> None:
        self._action()
        msg = self._messages[int(message_id)]
        await self._react(msg["channel_id"], msg["id"], emoji, user_id, True)

    async def create_thread(
        self, channel_id: int, name: str, *, user_id: int, message_id: int | None = None
    ) -> dict:
        """A user opens a public thread (from ``message_id`` or standalone). Returns the thread channel."""
        self._action()
        ch = self._channels[int(channel_id)]
        if message_id is not None:
            msg = self._messages[int(message_id)]
            if msg.get("_thread_id"):
                raise ValueError("message already has a thread")
            thread = self._new_thread(ch, int(msg["id"]), name, user_id, PUBLIC_THREAD, 1440)
            msg["_thread_id"] = int(msg["id"])
            msg["flags"] |= FLAG_HAS_THREAD
            await self._dispatch_thread_create(thread, user_id)
            await self._publish_update(msg)
        else:
            thread = await self._open_thread(ch, name, user_id, PUBLIC_THREAD, 1440)
        return self._render_channel(thread)

    # ------------------------------------------------------------------ test-side: interactions
    def _interaction_channel_payload(self, ch: dict, user_id: int) -> dict:
        out = self._render_channel(ch)
        if ch["type"] == DM:
            out["permissions"] = str(
                Perm.BASIC & ~(Perm.CREATE_PUBLIC_THREADS | Perm.SEND_MESSAGES_IN_THREADS)
            )
        else:
            out["permissions"] = str(self._perms(user_id, int(ch["id"])))
        return out

    async def _dispatch_interaction(
        self,
        itype: int,
        data: dict,
        *,
        user_id: int,
        channel_id: int,
        message: dict | None = None,
        command: dict | None = None,
    ) -> InteractionRecord:
        ch = self._channels[int(channel_id)]
        iid = self._ids.next()
        token = "standin." + secrets.token_urlsafe(40)
        guild_id = int(ch["guild_id"]) if ch.get("guild_id") else None
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": self._interaction_channel_payload(ch, user_id),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id:
            payload.update(
                {
                    "guild_id": str(guild_id),
                    "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                    "guild_locale": "en-US",
                    "member": self._member(user_id, channel_id=int(channel_id)),
                    "app_permissions": str(self._perms(self.bot_user_id, int(channel_id))),
                    "authorizing_integration_owners": {"0": str(guild_id)},
                    "context": 0,
                }
            )
        else:
            payload.update(
                {
                    "user": self._user(user_id),
                    "app_permissions": str(Perm.BASIC),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                }
            )
        if message is not None:
            payload["message"] = message
        rec = InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            payload=copy.deepcopy(payload),
            user_id=user_id,
            channel_id=int(channel_id),
            guild_id=guild_id,
            dispatched_at=time.monotonic(),
            message_id=int(message["id"]) if message else None,
            command=command,
        )
        self._interactions[iid] = rec
        self._interactions_by_token[token] = rec
        await self._dispatch("INTERACTION_CREATE", payload)
        rec.dispatched_at = time.monotonic()
        return rec

    def _lookup_command(self, name: str, guild_id: int | None, ctype: int = 1) -> dict:
        candidates = []
        if guild_id is not None:
            candidates += self._commands.get(guild_id, [])
        candidates += self._commands[None]
        for c in candidates:
            if c["name"] == name and c["type"] == ctype:
                return c
        synced = [(c["name"], c.get("guild_id")) for c in self.commands]
        raise LookupError(
            f"command {name!r} is not synced for guild {guild_id} (a Discord user could not invoke it); "
            f"synced: {synced}"
        )

    def _resolve_option(self, opt: dict, value: Any, resolved: dict, guild_id: int | None) -> Any:
        otype = opt["type"]
        name = opt["name"]
        choices = opt.get("choices") or []
        if choices:
            by_name = {c["name"]: c["value"] for c in choices}
            values = [c["value"] for c in choices]
            if value not in values:
                if value in by_name:
                    value = by_name[value]
                else:
                    raise ValueError(f"option {name!r}: {value!r} is not one of the choices {values}")
        if otype == OPT_STRING:
            if not isinstance(value, str):
                raise TypeError(f"option {name!r} expects a string")
            if len(value) < opt.get("min_length", 0) or len(value) > opt.get("max_length", 6000):
                raise ValueError(f"option {name!r}: length outside min_length/max_length")
            return value
        if otype in (OPT_INTEGER, OPT_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"option {name!r} expects a number")
            if otype == OPT_INTEGER and not isinstance(value, int):
                raise TypeError(f"option {name!r} expects an integer")
            too_small = "min_value" in opt and value < opt["min_value"]
            too_big = "max_value" in opt and value > opt["max_value"]
            if too_small or too_big:
                raise ValueError(f"option {name!r}: {value} outside min_value/max_value")
            return value if otype == OPT_INTEGER else float(value)
        if otype == OPT_BOOLEAN:
            if not isinstance(value, bool):
                raise TypeError(f"option {name!r} expects a bool")
            return value
        if otype in (OPT_USER, OPT_MENTIONABLE) and int(value) in self._users:
            uid = int(value)
            resolved.setdefault("users", {})[str(uid)] = self._user(uid)
            if guild_id and uid in self._members:
                member = self._member(uid, with_user=False)
                member["permissions"] = str(self._perms(uid))
                resolved.setdefault("members", {})[str(uid)] = member
            return str(uid)
        if otype in (OPT_ROLE, OPT_MENTIONABLE) and int(value) in self._roles:
            resolved.setdefault("roles", {})[str(int(value))] = copy.deepcopy(self._roles[int(value)])
            return str(int(value))
        if otype == OPT_CHANNEL and int(value) in self._channels:
            ch = self._channels[int(value)]
            allowed_types = opt.get("channel_types")
            if allowed_types and ch["type"] not in allowed_types:
                raise ValueError(f"option {name!r}: channel type {ch['type']} not in {allowed_types}")
            entry = self._render_channel(ch)
            entry["permissions"] = str(self._perms(self.bot_user_id, int(value)))
            resolved.setdefault("channels", {})[str(int(value))] = entry
            return str(int(value))
        if otype == OPT_ATTACHMENT and isinstance(value, dict):
            aid = self._ids.next()
            data = value.get("content", b"")
            if isinstance(data, str):
                data = data.encode()
            filename = value.get("filename", "file.txt")
            self._blobs[aid] = (data, value.get("content_type"))
            url = f"{self.base_url}/attachments/0/{aid}/{urllib.parse.quote(filename)}"
            resolved.setdefault("attachments", {})[str(aid)] = {
                "id": str(aid),
                "filename": filename,
                "size": len(data),
                "url": url,
                "proxy_url": url,
                "content_type": value.get("content_type"),
                "ephemeral": True,
            }
            return str(aid)
        raise ValueError(f"option {name!r}: cannot resolve {value!r} for option type {otype}")

    def _build_options(
        self, definitions: list[dict], given: dict[str, Any], resolved: dict, guild_id: int | None
    ) -> list[dict]:
        known = {o["name"]: o for o in definitions}
        unknown = set(given) - set(known)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; command defines {sorted(known)}")
        out = []
        for opt in definitions:
            if opt["name"] not in given:
                if opt.get("required"):
                    raise ValueError(
                        f"required option {opt['name']!r} missing (the Discord client requires it)"
                    )
                continue
            value = self._resolve_option(opt, given[opt["name"]], resolved, guild_id)
            out.append({"name": opt["name"], "type": opt["type"], "value": value})
        return out

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        channel_id: int,
        guild_id: int | None = None,
        subcommand: str | None = None,
    ) -> InteractionRecord:
        """Invoke a synced chat-input command as ``user_id`` (``subcommand`` may be ``"sub"`` or ``"group sub"``)."""
        self._action()
        self._check_user(user_id)
        ch = self._channels.get(int(channel_id))
        if ch is None:
            raise ValueError(f"unknown channel {channel_id}")
        chan_guild = int(ch["guild_id"]) if ch.get("guild_id") else None
        if guild_id is not None and guild_id != chan_guild:
            raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
        if ch["type"] == DM and ch["_recipient"] != user_id:
            raise PermissionError(f"user {user_id} is not in DM channel {channel_id}")
        cmd = self._lookup_command(name, chan_guild)
        if chan_guild is None:
            contexts = cmd.get("contexts")
            if (
                cmd.get("guild_id")
                or cmd.get("dm_permission") is False
                or (contexts is not None and 1 not in contexts)
            ):
                raise PermissionError(f"command {name!r} is not available in DMs")
        else:
            contexts = cmd.get("contexts")
            if contexts is not None and 0 not in contexts:
                raise PermissionError(f"command {name!r} is not available in guilds")
            required = cmd.get("default_member_permissions")
            if required is not None:
                perms = self._perms(user_id)
                if not perms & Perm.ADMINISTRATOR and perms & int(required) != int(required):
                    raise PermissionError(
                        f"user {user_id} lacks default_member_permissions={required} for {name!r}; "
                        "Discord would not show the command"
                    )
            if not self._perms(user_id, int(channel_id)) & Perm.USE_APPLICATION_COMMANDS:
                raise PermissionError(f"user {user_id} cannot use application commands in {channel_id}")
        resolved: dict = {}
        definitions = cmd.get("options") or []
        given = dict(options or {})
        wrapper: list[tuple[str, int]] = []
        if subcommand:
            for part in subcommand.split():
                match = next(
                    (o for o in definitions if o["name"] == part and o["type"] in (OPT_SUB, OPT_GROUP)), None
                )
                if match is None:
                    raise LookupError(f"{name!r} has no subcommand/group {part!r}")
                wrapper.append((part, match["type"]))
                definitions = match.get("options") or []
            if wrapper[-1][1] != OPT_SUB:
                raise ValueError(f"{subcommand!r} names a group, not a subcommand")
        elif any(o["type"] in (OPT_SUB, OPT_GROUP) for o in definitions):
            raise ValueError(f"{name!r} has subcommands; pass subcommand=...")
        built = self._build_options(definitions, given, resolved, chan_guild)
        for part, ptype in reversed(wrapper):
            built = [{"name": part, "type": ptype, "options": built}]
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if built:
            data["options"] = built
        if resolved:
            data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._dispatch_interaction(
            2, data, user_id=user_id, channel_id=int(channel_id), command=cmd
        )

    def _component_on(self, message_id: int, custom_id: str, user_id: int) -> tuple[dict, dict]:
        self._check_user(user_id)
        msg = self._messages.get(int(message_id))
        if msg is None or msg["_deleted"]:
            raise LookupError(f"unknown message {message_id}")
        if msg["_visible_to"] is not None and msg["_visible_to"] != user_id:
            raise PermissionError(f"message {message_id} is ephemeral for another user")
        comp = next((c for c in _walk_components(msg["components"]) if c.get("custom_id") == custom_id), None)
        if comp is None:
            ids = [c.get("custom_id") for c in _walk_components(msg["components"]) if c.get("custom_id")]
            raise LookupError(f"message {message_id} has no component {custom_id!r}; it has {ids}")
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a Discord user cannot use it")
        return msg, comp

    async def click_button(self, message_id: int, custom_id: str, *, user_id: int) -> InteractionRecord:
        """Click the button ``custom_id`` on ``message_id``; dispatches INTERACTION_CREATE type 3."""
        self._action()
        msg, comp = self._component_on(message_id, custom_id, user_id)
        if comp.get("type") != 2:
            raise ValueError(f"component {custom_id!r} is not a button (type {comp.get('type')})")
        data = {"custom_id": custom_id, "component_type": 2}
        if "id" in comp:
            data["id"] = comp["id"]
        return await self._dispatch_interaction(
            3, data, user_id=user_id, channel_id=int(msg["channel_id"]), message=self._render_message(msg)
        )

    async def select_option(
        self, message_id: int, custom_id: str, values: list[Any], *, user_id: int
    ) -> InteractionRecord:
        self._action()
        msg, comp = self._component_on(message_id, custom_id, user_id)
        ctype = comp.get("type")
        if ctype not in (3, 5, 6, 7, 8):
            raise ValueError(f"component {custom_id!r} is not a select menu")
        if not comp.get("min_values", 1) <= len(values) <= comp.get("max_values", 1):
            raise ValueError("number of values outside min_values/max_values")
        data: dict[str, Any] = {
            "custom_id": custom_id,
            "component_type": ctype,
            "values": [str(v) for v in values],
        }
        if ctype == 3:
            allowed = [o["value"] for o in comp.get("options", [])]
            if any(v not in allowed for v in values):
                raise ValueError(f"values {values} not all in {allowed}")
        else:
            resolved: dict = {}
            otype = {5: OPT_USER, 6: OPT_ROLE, 7: OPT_MENTIONABLE, 8: OPT_CHANNEL}[ctype]
            for v in values:
                self._resolve_option({"name": custom_id, "type": otype}, v, resolved, self.guild_id)
            data["resolved"] = resolved
        return await self._dispatch_interaction(
            3, data, user_id=user_id, channel_id=int(msg["channel_id"]), message=self._render_message(msg)
        )

    async def submit_modal(
        self, interaction_id: int, values: dict[str, Any], *, user_id: int | None = None
    ) -> InteractionRecord:
        """Submit the modal the bot opened (callback type 9) in reply to ``interaction_id``."""
        self._action()
        rec = self._interactions[int(interaction_id)]
        if rec.modal is None:
            raise LookupError(f"interaction {interaction_id} did not open a modal")
        user = user_id or rec.user_id

        def answer(comp: dict) -> dict:
            t = comp.get("type")
            if t == 1:
                return {"type": 1, "components": [answer(c) for c in comp.get("components", [])]}
            if t == 18:
                return {"type": 18, "component": answer(comp["component"])}
            cid = comp.get("custom_id")
            if t == 4:
                value = values.get(cid, "")
                if comp.get("required", True) and not value:
                    raise ValueError(f"modal field {cid!r} is required")
                return {"type": 4, "custom_id": cid, "value": value}
            if t in (3, 5, 6, 7, 8):
                return {"type": t, "custom_id": cid, "values": [str(v) for v in values.get(cid, [])]}
            return {"type": t, **({"custom_id": cid} if cid else {})}

        data = {
            "custom_id": rec.modal["custom_id"],
            "components": [answer(c) for c in rec.modal["components"]],
        }
        message = self._render_message(self._messages[rec.message_id]) if rec.message_id else None
        return await self._dispatch_interaction(
            5, data, user_id=user, channel_id=rec.channel_id, message=message
        )


# ---------------------------------------------------------------------- discord.py glue
def connect_discord_py(standin: DiscordStandIn) -> None:
    """Point discord.py's REST base and default gateway at ``standin`` (undone by ``standin.stop()``)."""
    import discord.gateway
    import discord.http
    import yarl

    if standin._redirected_from is None:
        standin._redirected_from = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = standin.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(standin.gateway_url)


def disconnect_discord_py(standin: DiscordStandIn) -> None:
    import discord.gateway
    import discord.http

    if standin._redirected_from is not None:
        if discord.http.Route.BASE == standin.api_base:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                standin._redirected_from
            )
        standin._redirected_from = None


class BotCrashed(RuntimeError):
    """The discord.py client's ``start()`` task ended with an exception while the test was running."""


@contextlib.asynccontextmanager
async def running_bot(
    standin: DiscordStandIn, bot: Any, *, ready_timeout: float = 10.0, raise_on_crash: bool = True
):
    """Start ``bot`` against ``standin``, wait for ``on_ready``, yield it, and always close it.

    The ``bot.start()`` task is appended to ``standin.bot_tasks``. If it died with an exception (e.g. a
    parser KeyError on a malformed event) ``BotCrashed`` is raised on exit unless ``raise_on_crash=False``.
    """
    connect_discord_py(standin)
    task = asyncio.create_task(bot.start(standin.token), name="standin-bot")
    standin.bot_tasks.append(task)
    ready = asyncio.create_task(bot.wait_until_ready())
    started = False
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # re-raise the startup error (LoginFailure, PrivilegedIntentsRequired, ...)
            raise TimeoutError(f"bot did not become ready within {ready_timeout}s")
        started = True
        yield bot
    finally:
        ready.cancel()
        with contextlib.suppress(Exception):
            await bot.close()
        crash: BaseException | None = None
        try:
            await asyncio.wait_for(asyncio.shield(task), 5.0)
        except TimeoutError:
            task.cancel()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            crash = exc
        if crash is not None and raise_on_crash and started:
            raise BotCrashed(f"discord.py client task crashed: {crash!r}") from crash
