"""The gateway: the websocket discord.py keeps open. HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats
and their ACKs, RESUME with replay of missed events, events routed by intent and by shard, and the
test-side controls (reconnect, dropped connections, raw events)."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from .protocol import API_VERSION, FLAG_EPHEMERAL, NEWS, PRIVILEGED_INTENTS, TEXT, Intent, now_iso

log = logging.getLogger("discord_standin")


class _Conn:
    """One websocket connection (a session may move between connections by RESUMEing)."""

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


class _Session:
    """An IDENTIFYed session: its intents, shard, sequence number and the events sent (for RESUME)."""

    def __init__(self, sid: str, intents: int, shard: list | None):
        self.id = sid
        self.intents = intents
        self.shard = shard
        self.seq = 0
        self.conn: _Conn | None = None
        self.buffer: list[tuple[int, str]] = []


def shard_receives(shard: list | None, guild_id: object) -> bool:
    """Discord's routing: a guild's events go to shard (guild_id >> 22) % num_shards; DMs to shard 0."""
    if not shard or len(shard) != 2 or int(shard[1]) <= 1:
        return True
    shard_id, count = int(shard[0]), int(shard[1])
    if guild_id is None:
        return shard_id == 0
    return (int(guild_id) >> 22) % count == shard_id


class Gateway:
    """The websocket side of ``DiscordStandIn`` (server.py)."""

    def _init_gateway(self) -> None:
        self._conns: list[_Conn] = []
        self._sessions: dict[str, _Session] = {}
        self.heartbeats_received = 0
        self.heartbeat_acks_sent = 0
        self.identify_count = 0
        self.resume_count = 0
        self.identify_intents: list[int] = []  # the intents of every IDENTIFY, refused ones (4014) included

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False, autoclose=True)
        await ws.prepare(request)
        conn = _Conn(ws, dict(request.query))
        self._conns.append(conn)
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
        if op == 1:
            self.heartbeats_received += 1
            if await self._send_frame(conn, {"op": 11}):
                self.heartbeat_acks_sent += 1
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op in (3, 4):
            pass  # presence / voice state update: accepted, nothing to do
        else:  # op 8 (request guild members) included: not modelled, so a test relying on it must fail
            self.errors.append(f"gateway opcode {op} is not modelled by the stand-in")
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
        self.identify_intents.append(intents)
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:  # asks for one not granted: Discord's 4014
            await self._close(conn, 4014, "Disallowed intent(s).")
            return
        self.identify_count += 1
        sess = _Session(secrets.token_hex(16), intents, d.get("shard"))
        sess.conn = conn
        conn.session = sess
        self._sessions[sess.id] = sess
        owns_guild = shard_receives(sess.shard, self.guild_id)
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
            self._channels[t] for t in self._thread_ids if not self._channels[t]["thread_metadata"]["archived"]
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
        """Send an event to every session that has ``intent`` and whose shard gets the guild (or DMs)."""
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        for sess in list(self._sessions.values()):
            if intent and not sess.intents & intent:
                continue
            if not shard_receives(sess.shard, guild_id):
                continue
            await self._send_event(sess, event, transform(sess, data) if transform else data)
        self._notify()

    # ------------------------------------------------------------------ message and thread events
    def _content_transform(self, msg: dict) -> Callable[[_Session, Any], Any]:
        """Without the MESSAGE_CONTENT intent a bot gets empty content unless mentioned, the author, or in a DM."""

        def visible(m: dict) -> bool:
            return not m.get("guild_id") or m["_author"] == self.bot_user_id or self.bot_user_id in m["_mentions"]

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

    async def _publish(self, event: str, msg: dict) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE for ``msg``; ephemeral messages are never dispatched."""
        if msg["flags"] & FLAG_EPHEMERAL:
            self._notify()
            return
        await self._dispatch(
            event,
            self._render_message(msg, gateway=True),
            intent=Intent.GUILD_MESSAGES if msg.get("guild_id") else Intent.DIRECT_MESSAGES,
            transform=self._content_transform(msg),
        )

    async def _publish_create(self, msg: dict) -> None:
        await self._publish("MESSAGE_CREATE", msg)

    async def _publish_update(self, msg: dict) -> None:
        await self._publish("MESSAGE_UPDATE", msg)

    async def _dispatch_thread_create(self, thread: dict, owner_id: int) -> None:
        data = self._render_channel(thread)
        data["newly_created"] = True
        if owner_id == self.bot_user_id:
            data["member"] = {"id": thread["id"], "user_id": str(owner_id), "join_timestamp": now_iso(), "flags": 1}
        await self._dispatch("THREAD_CREATE", data, intent=Intent.GUILDS)

    # ------------------------------------------------------------------ test-side controls
    async def dispatch_raw(self, event_name: str, data: Any) -> None:
        """Send ``{"op": 0, "t": event_name, "d": data}`` to every session, unvalidated."""
        self._action()
        await self._dispatch(event_name, data)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py closes and RESUMEs."""
        for conn in self._conns:
            if conn.session is not None:
                await self._send_frame(conn, {"op": 7, "d": None})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every connection abruptly; the sessions stay resumable."""
        for conn in list(self._conns):
            if not conn.closed:
                await self._close(conn, code, "dropped by test")
