"""Messages and threads: how a message is stored (mentions honouring ``allowed_mentions``, replies,
flags), the bot's REST calls (send, edit, typing, thread from a message, open a DM) and the same
things done by users on the test's side (``send_message``, ``send_dm``, ``create_thread``)."""

from __future__ import annotations

import copy
import re
from typing import Any

from .protocol import (
    DM,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    FLAG_SUPPRESS_EMBEDS,
    NEWS,
    PUBLIC_THREAD,
    SENDABLE_FLAGS,
    TEXT,
    THREAD_TYPES,
    ApiError,
    NotModelled,
    Perm,
    RecordedCall,
    form_error,
    now_iso,
    snowflake_time_iso,
)
from .validation import check_not_empty, thread_name_check, validate_message

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE_MENTION = re.compile(r"@(?:everyone|here)\b")


class Messages:
    """Messages, threads and DMs of ``DiscordStandIn`` (server.py)."""

    # ------------------------------------------------------------------ the message model
    def _compute_mentions(
        self, author_id: int, channel: dict, content: str, allowed: dict | None, replied_author: int | None
    ) -> tuple[list[int], list[int], bool]:
        """(user ids, role ids, @everyone) the message really pings, after ``allowed_mentions``."""
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
        reference: dict | None = None,
        msg_type: int = 0,
        webhook: bool = False,
        interaction_metadata: dict | None = None,
        visible_to: int | None = None,
        extra_flags: int = 0,
    ) -> dict:
        mid = self._ids.next()
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
            "attachments": [],
            "embeds": self._normalize_embeds(payload.get("embeds")),
            "reactions": [],
            "pinned": False,
            "type": msg_type,
            "flags": (int(payload.get("flags") or 0) & SENDABLE_FLAGS) | extra_flags,
            "components": copy.deepcopy(payload.get("components") or []),
            "_author": author_id,
            "_mentions": mentions,
            "_visible_to": visible_to,  # ephemeral: the one user who sees it
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

    def _apply_edit(self, msg: dict, payload: dict) -> None:
        if payload.get("attachments"):
            raise NotModelled("attachments")
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
            msg["_mentions"], msg["mention_roles"], msg["mention_everyone"] = users, [str(r) for r in roles], everyone
        if "embeds" in payload:
            msg["embeds"] = self._normalize_embeds(payload["embeds"])
        if "components" in payload:
            msg["components"] = copy.deepcopy(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg["flags"] & ~(FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2)
            msg["flags"] = keep | (int(payload["flags"]) & (FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2))
        msg["edited_timestamp"] = now_iso()

    def _new_thread(self, parent: dict, tid: int, name: str, owner_id: int, auto_archive: int) -> dict:
        thread = {
            "id": str(tid),
            "type": PUBLIC_THREAD,
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
                "archive_timestamp": now_iso(),
                "locked": False,
                "create_timestamp": now_iso(),
            },
        }
        self._channels[tid] = thread
        self._channel_msgs[tid] = []
        self._thread_ids.append(tid)
        return thread

    # ------------------------------------------------------------------ routes: what the bot does
    def _check_bot_can_send(self, ch: dict) -> None:
        if ch["type"] == DM:
            return
        self._require_bot(ch, Perm.SEND_MESSAGES_IN_THREADS if ch["type"] in THREAD_TYPES else Perm.SEND_MESSAGES)

    def _resolve_reference(self, payload: dict, ch: dict) -> dict | None:
        """The message a reply refers to (``message_reference``), checked as Discord checks it."""
        ref = payload.get("message_reference")
        if not ref:
            return None
        if ref.get("type", 0) != 0:
            raise NotModelled("message forwarding (message_reference.type 1)")
        target = self._messages.get(int(ref.get("message_id") or 0))
        ref_channel = int(ref.get("channel_id") or ch["id"])
        if target is None or int(target["channel_id"]) != ref_channel:
            if ref.get("fail_if_not_exists", True):
                raise form_error([(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")])
            return None
        if ref_channel != int(ch["id"]):
            raise form_error(
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
        self._check_bot_can_send(ch)
        validate_message(payload, create=True)
        reference = self._resolve_reference(payload, ch)
        msg = self._store_message(
            channel=ch,
            author_id=self.bot_user_id,
            payload=payload,
            reference=reference,
            msg_type=19 if reference else 0,
        )
        await self._publish_create(msg)
        return 200, self._render_message(msg)

    async def _r_message_edit(self, call: RecordedCall, cid: str, mid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        self._require_bot(ch, Perm.VIEW_CHANNEL)
        msg = self._message(cid, mid)
        payload = call.json if isinstance(call.json, dict) else {}
        if msg["_author"] != self.bot_user_id:
            if set(payload) - {"flags"}:
                raise ApiError(403, 50005, "Cannot edit a message authored by another user")
            self._require_bot(ch, Perm.MANAGE_MESSAGES)
        validate_message(payload, create=False)
        self._apply_edit(msg, payload)
        check_not_empty(msg)
        await self._publish_update(msg)
        return 200, self._render_message(msg)

    async def _r_typing(self, call: RecordedCall, cid: str) -> tuple[int, Any]:
        ch = self._channel(cid)
        if ch["type"] != DM:
            self._require_bot(ch, Perm.SEND_MESSAGES_IN_THREADS if ch["type"] in THREAD_TYPES else Perm.SEND_MESSAGES)
        return 204, None

    async def _r_thread_from_message(self, call: RecordedCall, cid: str, mid: str) -> tuple[int, Any]:
        """``message.create_thread``: the thread gets the message's id; THREAD_CREATE comes before the reply."""
        ch = self._channel(cid)
        if ch["type"] not in (TEXT, NEWS):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        self._require_bot(ch, Perm.CREATE_PUBLIC_THREADS | Perm.READ_MESSAGE_HISTORY)
        msg = self._message(cid, mid)
        if msg.get("_thread_id"):
            raise ApiError(400, 160004, "A thread has already been created for this message")
        name, auto = thread_name_check(call.json or {})
        thread = self._new_thread(ch, int(msg["id"]), name, self.bot_user_id, auto)
        msg["_thread_id"] = int(msg["id"])
        msg["flags"] |= FLAG_HAS_THREAD
        await self._dispatch_thread_create(thread, self.bot_user_id)
        return 201, self._render_channel(thread)

    async def _r_dm_create(self, call: RecordedCall) -> tuple[int, Any]:
        body = call.json or {}
        try:
            uid = int(body.get("recipient_id"))
        except (TypeError, ValueError):
            raise form_error([(("recipient_id",), "BASE_TYPE_REQUIRED", "This field is required")]) from None
        if uid == self.bot_user_id:
            raise ApiError(400, 50007, "Cannot send messages to this user")
        return 200, self._render_channel(self._channels[self._ensure_dm(uid)])

    # ------------------------------------------------------------------ test side: what users do
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
                raise PermissionError(f"user {author_id} cannot send messages in channel {channel_id} (Discord UI)")
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        if len(content) > 2000:
            raise ValueError("Discord clients cannot send more than 2000 characters (no Nitro in the stand-in)")
        reference = None
        if reference_message_id is not None:
            reference = self._messages.get(int(reference_message_id))
            if reference is None or int(reference["channel_id"]) != int(ch["id"]):
                raise ValueError(f"message {reference_message_id} is not in channel {channel_id}")
        allowed = None if mention_replied_author else {"parse": ["users", "roles", "everyone"], "replied_user": False}
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

    async def create_thread(self, channel_id: int, name: str, *, user_id: int) -> dict:
        """A user opens a public thread (not from a message): THREAD_CREATE, then the type-18 system
        message in the parent channel, as Discord does. Returns the thread channel."""
        self._action()
        ch = self._channels[int(channel_id)]
        thread = self._new_thread(ch, self._ids.next(), name, user_id, 1440)
        await self._dispatch_thread_create(thread, user_id)
        system = self._store_message(channel=ch, author_id=user_id, payload={"content": name}, msg_type=18)
        system["message_reference"] = {"channel_id": thread["id"], "guild_id": str(self.guild_id)}
        await self._publish_create(system)
        return self._render_channel(thread)
