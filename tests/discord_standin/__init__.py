"""A local Discord stand-in that real, unmodified discord.py (2.7) connects to over 127.0.0.1.

It serves Discord's REST API (``/api/v10/...``, plain HTTP) and the gateway (``/gateway``, websocket,
plain-text JSON frames) from an aiohttp server running in the *test's* event loop, keeps a small world
(one guild, roles, channels, users, DMs, threads, messages, slash commands, interactions) and records
everything the bot does, so end-to-end tests can assert on what a Discord user would see.

Where things are
----------------
===================  ===================================================================================
``server.py``        ``DiscordStandIn`` (start/stop, waiting), ``connect_discord_py``, ``running_bot``
``world.py``         the guild, roles, channels, members, DMs; permissions; wire shapes
``gateway.py``       websocket: HELLO/IDENTIFY/READY, heartbeats, RESUME, shards, event dispatch
``rest.py``          request recording, the route table, fault injection, ``/users``, ``/gateway``
``messages.py``      messages and threads: the bot's REST calls and what users do
``commands.py``      slash command registration and invocation
``interactions.py``  interactions, callbacks, follow-ups, webhook edits, button clicks
``validation.py``    Discord's refusals of what discord.py sends (lengths, embeds, components, commands)
``protocol.py``      constants (permissions, intents, types, flags), snowflakes, errors, records
===================  ===================================================================================

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

In pytest, ``tests/standin_fixtures.py`` does all of this (``run_standin`` / the ``discord_standin_run``
fixture). ``connect_discord_py`` is exactly these two lines (newsbot does the same from
``GET {base}/gateway/bot``)::

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
  privileged_intents=PRIVILEGED_INTENTS)`` -- create (nothing listens yet). ``privileged_intents`` are the
  ones the developer portal grants: an IDENTIFY asking for another is closed with 4014 (Disallowed
  intents), and the application's flags (``GET /oauth2/applications/@me``, READY) show the granted ones,
  or ``claimed_intents`` (attribute, default None) when a test wants flags that promise more.
  ``start()`` / ``stop()`` -- bind 127.0.0.1:<free port> / close.
  ``api_base``, ``gateway_url``, ``base_url``, ``token`` -- addresses (sync attributes).
Acting as Discord users (each dispatches the gateway event(s) real Discord would send):
  ``send_message(channel_id, author_id, content, *, mention_bot=False, reference_message_id=None,
  embeds=None, mention_replied_author=True) -> dict`` -- user posts in a guild channel/thread/DM.
  ``send_dm(author_id, content, **kw) -> dict`` -- user DMs the bot (DM channel created on demand).
  ``create_thread(channel_id, name, *, user_id) -> dict`` -- user opens a thread.
  ``slash_command(name, options=None, *, user_id, channel_id, subcommand=None) -> InteractionRecord``
  -- INTERACTION_CREATE type 2 built from the *synced* definition, in a guild channel (a channel option's
  value is a channel id; ``resolved`` is filled in); raises LookupError if not synced,
  PermissionError/ValueError when the Discord client would refuse.
  ``autocomplete(name, focused, typed="", options=None, *, user_id, channel_id, subcommand=None) ->
  InteractionRecord`` -- the user types ``typed`` into option ``focused`` (which must have ``autocomplete``):
  INTERACTION_CREATE type 4; ``wait_for_choices(rec) -> list[dict]`` -- the choices the bot answered with
  (callback type 8, checked as Discord does: at most 25, names 1-100 characters, string values <= 100).
  ``click_button(message_id, custom_id, *, user_id) -> InteractionRecord`` -- component type 2.
  ``dispatch_raw(event_name, data)`` -- send an arbitrary (even malformed) DISPATCH to every session.
Gateway control: ``request_reconnect()`` (op 7), ``drop_connections(code=4000)``.
World changes (sync): ``add_user(name, *, bot=False, roles=()) -> int``; ``command_overrides[name] =
  {user or role ids}`` lets them invoke a command whatever its ``default_member_permissions`` (what a
  server admin sets under Server Settings → Integrations; ``everyone_role_id`` = everybody). The application's owner
  (``GET /oauth2/applications/@me``, what ``Bot.is_owner`` asks): attribute ``application_owner_id``
  (default ``admin_id``), or a team: ``team_members = {user_id: "admin" | "developer" | "read_only"}``
  (set them before the bot connects). ``command_overrides = {"name": {user_id, ...}}``: a server's
  Integrations override letting those users run a command whatever its ``default_member_permissions``.
Waiting: ``wait_for(predicate, timeout=5.0)`` -- re-evaluates the zero-argument predicate on every
  state change, returns its truthy value; ``wait_for_call(method, path_regex, timeout=5.0, *,
  since=None, predicate=None) -> RecordedCall`` -- first matching REST call recorded at/after
  ``since`` (default: the index of the latest test-side action, i.e. "after what I just did");
  ``wait_for_response(interaction_id, *, kind=None, count=1, timeout=5.0) -> list[dict]``.
Inspection (sync):
  ``calls`` (list[RecordedCall]: method, path (relative to api_base), query, json, status, response,
  ...), ``unknown_calls``, ``errors``, ``calls_matching(method, path_regex)``, ``messages_in(channel_id,
  *, include_ephemeral=True)`` (current state, edits applied, oldest first), ``get_message(mid)``,
  ``threads`` (created threads), ``commands`` (synced, with ids), ``interaction_responses(interaction_id)``
  (callback + follow-ups + edits, in order, incl. rejected), ``dm_channel_id(user_id)``,
  ``heartbeats_received``, ``heartbeat_acks_sent``, ``identify_count`` (accepted IDENTIFYs),
  ``identify_intents`` (the intents of every IDENTIFY, refused ones too), ``resume_count``, ``bot_tasks``,
  ``assert_clean()`` (raises if unknown routes were hit, something not modelled was asked for, or a
  stand-in handler crashed).
  ``InteractionRecord``: ``id``, ``token``, ``payload`` (as dispatched), ``callback_type``,
  ``original_message_id``, ``responses``. Each response entry is a dict with ``kind`` (callback |
  followup | edit_original | edit_followup), ``ok``, ``status``, ``type`` (callbacks), ``data`` (JSON
  the bot sent), ``message`` (the message as a user sees it afterwards), ``error`` (when rejected),
  ``replaced_deferred`` (follow-ups).
Fault injection (sync): ``fail_next(method, path_regex, *, status=500, body=None, times=1,
  headers=None)`` -- 429s automatically get ``Via``/``Retry-After`` headers and a ``retry_after`` body.

Fidelity notes (what real Discord does and the stand-in models)
--------------------------------------------------------------
* Every JSON response has ``Content-Type: application/json`` exactly. Errors use Discord's shapes:
  content > 2000, > 10 embeds, embed field limits, embeds > 6000 in total, too many components ->
  400 code 50035 ``Invalid Form Body`` with ``errors``; empty message -> 50006; missing permission ->
  403 50013; unknown channel/message -> 404 10003/10008; second interaction callback -> 400 40060;
  callback after ``interaction_deadline`` s -> 404 10062; follow-up before any callback -> 404 10015.
* A bot's REST message create also dispatches MESSAGE_CREATE; edits MESSAGE_UPDATE. Ephemeral
  messages are never dispatched. Without the MESSAGE_CONTENT intent the bot gets empty
  content/embeds/components unless it is mentioned, the author, or in a DM. GUILD_MESSAGES /
  DIRECT_MESSAGES intents gate the matching events.
* Without the GUILD_MEMBERS intent GUILD_CREATE carries only the bot's member (as on Discord); with it,
  all members and ``member_count == len(members)`` so discord.py does not chunk.
* Threads created from a message get the message's id; THREAD_CREATE (``newly_created``) is sent
  before the REST response. A user's ``create_thread`` also posts the type-18 system message.
* A type-5 (deferred) callback creates the "thinking" message (empty, flags LOADING=128, dispatched as
  MESSAGE_CREATE unless ephemeral); the *first* follow-up replaces it (same id, ephemeral-ness taken
  from the defer), as Discord does; later follow-ups are new messages.
* Interaction response messages: author = bot, ``webhook_id`` = ``application_id``, type 20 for slash
  commands, 0 for button responses (approximation), with ``interaction_metadata``.
* Handler bugs in the stand-in return 503 (not 500: discord.py would retry 500s for ~25 s) and are
  recorded in ``errors``; unknown routes return 404 ``{"message": "Unknown route", "code": 0}``, are
  logged at ERROR level and recorded in ``unknown_calls``.
* Sharding: a session that IDENTIFYs with ``shard: [id, n]`` gets the guild (READY, GUILD_CREATE and its
  events) only if ``(guild_id >> 22) % n == id``, and DMs only on shard 0, as Discord routes them.
* Not modelled, and reported by ``assert_clean()`` if the bot asks for it: file uploads and
  attachments, reactions, modals, select menus, deferred message updates (callback type 6), message
  deletes, member chunking (op 8), follow-ups into threads, message forwarding. Routes not in
  ``rest.py``'s table (channel or guild reads, history, pins, ...) are unknown routes. Nor modelled:
  rate limits (except injected 429s), voice, stickers, polls, forum channels, audit logs, user/role/
  attachment options, slash commands in DMs. Only one stand-in should be redirected at a time (``Route.BASE`` /
  ``DEFAULT_GATEWAY`` are process-global).

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

from .protocol import (
    API_VERSION,
    PRIVILEGED_INTENTS,
    ApiError,
    Intent,
    InteractionRecord,
    NotModelled,
    Perm,
    RecordedCall,
    snowflake_at,
    snowflake_time_iso,
)
from .server import BotCrashed, DiscordStandIn, connect_discord_py, disconnect_discord_py, running_bot

__all__ = [
    "API_VERSION",
    "PRIVILEGED_INTENTS",
    "ApiError",
    "BotCrashed",
    "DiscordStandIn",
    "Intent",
    "InteractionRecord",
    "NotModelled",
    "Perm",
    "RecordedCall",
    "connect_discord_py",
    "disconnect_discord_py",
    "running_bot",
    "snowflake_at",
    "snowflake_time_iso",
]
