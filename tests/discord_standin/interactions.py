"""Interactions: the stand-in dispatches INTERACTION_CREATE (a slash command from commands.py, or a
button click), and the bot answers through the callback route (reply, defer, update the message),
then follow-ups and edits through the interaction's webhook. Everything the bot sent in reply is
kept on the ``InteractionRecord``, rejected answers included (answered twice: 40060; too late: 10062;
follow-up before any answer: 10015)."""

from __future__ import annotations

import copy
import logging
import secrets
import time
import urllib.parse
from typing import Any

from .protocol import (
    ATTACHMENT_SIZE_LIMIT,
    DM,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_TOKEN_LIFETIME,
    ApiError,
    InteractionRecord,
    NotModelled,
    Perm,
    RecordedCall,
    form_error,
)
from .validation import check_not_empty, validate_choices, validate_message, walk_components

log = logging.getLogger("discord_standin")

# callback types Discord accepts per interaction type (2: slash command, 3: component, 4: autocomplete)
VALID_CALLBACKS = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}}
# modelled: 4 reply with a message, 5 defer ("thinking…"), 7 update the component's message,
# 8 autocomplete choices (APPLICATION_COMMAND_AUTOCOMPLETE_RESULT)
MODELLED_CALLBACKS = {4, 5, 7, 8}


class Interactions:
    """Interactions of ``DiscordStandIn`` (server.py)."""

    def _init_interactions(self) -> None:
        self._interactions: dict[int, InteractionRecord] = {}
        self._interactions_by_token: dict[str, InteractionRecord] = {}

    # ------------------------------------------------------------------ test side
    async def click_button(self, message_id: int, custom_id: str, *, user_id: int) -> InteractionRecord:
        """Click the button ``custom_id`` on ``message_id``; dispatches INTERACTION_CREATE type 3."""
        self._action()
        self._check_user(user_id)
        msg = self._messages.get(int(message_id))
        if msg is None:
            raise LookupError(f"unknown message {message_id}")
        if msg["_visible_to"] is not None and msg["_visible_to"] != user_id:
            raise PermissionError(f"message {message_id} is ephemeral for another user")
        comp = next((c for c in walk_components(msg["components"]) if c.get("custom_id") == custom_id), None)
        if comp is None:
            ids = [c.get("custom_id") for c in walk_components(msg["components"]) if c.get("custom_id")]
            raise LookupError(f"message {message_id} has no component {custom_id!r}; it has {ids}")
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a Discord user cannot use it")
        if comp.get("type") != 2:
            raise ValueError(f"component {custom_id!r} is not a button (type {comp.get('type')})")
        data = {"custom_id": custom_id, "component_type": 2}
        if "id" in comp:
            data["id"] = comp["id"]
        return await self._dispatch_interaction(
            3, data, user_id=user_id, channel_id=int(msg["channel_id"]), message=self._render_message(msg)
        )

    def interaction_responses(self, interaction_id: int) -> list[dict]:
        """Callback, follow-ups and edits for ``interaction_id``, in order, rejected ones included."""
        return list(self._interactions[int(interaction_id)].responses)

    async def wait_for_response(
        self, interaction_id: int, *, kind: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[dict]:
        """Wait until the bot has answered ``interaction_id`` ``count`` times (of ``kind``, if given)."""
        rec = self._interactions[int(interaction_id)]

        def ready() -> list[dict] | None:
            got = [r for r in rec.responses if r["ok"] and (kind is None or r["kind"] == kind)]
            return got if len(got) >= count else None

        return await self.wait_for(ready, timeout, what=f"{count} {kind or 'any'} response(s) to {interaction_id}")

    async def _dispatch_interaction(
        self,
        itype: int,
        data: dict,
        *,
        user_id: int,
        channel_id: int,
        message: dict | None = None,
        command: dict | None = None,
        focused_option: dict | None = None,
    ) -> InteractionRecord:
        ch = self._channels[int(channel_id)]
        iid = self._ids.next()
        token = "standin." + secrets.token_urlsafe(40)
        guild_id = int(ch["guild_id"]) if ch.get("guild_id") else None
        channel = self._render_channel(ch)
        if ch["type"] == DM:
            channel["permissions"] = str(Perm.BASIC & ~(Perm.CREATE_PUBLIC_THREADS | Perm.SEND_MESSAGES_IN_THREADS))
        else:
            channel["permissions"] = str(self._perms(user_id, int(ch["id"])))
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": channel,
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
        else:  # a DM: the user instead of a member
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
            focused_option=focused_option,
        )
        self._interactions[iid] = rec
        self._interactions_by_token[token] = rec
        await self._dispatch("INTERACTION_CREATE", payload)
        rec.dispatched_at = time.monotonic()
        return rec

    # ------------------------------------------------------------------ routes: the bot answers
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
        """Message type of a response: 20 (chat input command) for slash commands, 0 for button clicks."""
        return 20 if rec.type == 2 else 0

    def _log_response(self, rec: InteractionRecord, kind: str, call: RecordedCall, *, ok: bool, **extra: Any) -> dict:
        entry = {"kind": kind, "ok": ok, "at": time.monotonic(), "data": copy.deepcopy(call.json), **extra}
        rec.responses.append(entry)
        return entry

    def _callback_response(self, rec: InteractionRecord, ctype: int, msg: dict) -> dict:
        """The ``with_response`` body discord.py needs (without it ``defer()`` fails inside the command)."""
        return {
            "interaction": {
                "id": str(rec.id),
                "type": rec.type,
                "response_message_id": msg["id"],
                "response_message_loading": bool(msg["flags"] & FLAG_LOADING),
                "response_message_ephemeral": bool(msg["flags"] & FLAG_EPHEMERAL),
            },
            "resource": {"type": ctype, "message": self._render_message(msg)},
        }

    def _response_message(self, rec: InteractionRecord, payload: dict, *, extra_flags: int,
                           followup_of: int | None = None) -> dict:
        eph = int(payload.get("flags") or 0) & FLAG_EPHEMERAL or extra_flags & FLAG_EPHEMERAL
        return self._store_message(
            channel=self._channels[rec.channel_id],
            author_id=self.bot_user_id,
            payload=payload,
            msg_type=self._interaction_msg_type(rec),
            webhook=True,
            interaction_metadata=self._interaction_message_meta(rec, followup_of=followup_of),
            visible_to=rec.user_id if eph else None,
            extra_flags=extra_flags,
        )

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
                    "interaction %s answered after %.2fs (> %.1fs): 10062", rec.id, age, self.interaction_deadline
                )
                raise ApiError(404, 10062, "Unknown interaction")
            if ctype not in VALID_CALLBACKS.get(rec.type, set()):
                raise form_error(
                    [
                        (
                            ("type",),
                            "INTERACTION_RESPONSE_TYPE_INVALID",
                            f"Interaction response type {ctype} is not valid for interaction type {rec.type}",
                        )
                    ]
                )
            if ctype not in MODELLED_CALLBACKS:
                raise NotModelled(f"interaction callback type {ctype}")
            if ctype == 8:  # autocomplete choices: no message
                choices = validate_choices(data, rec.focused_option)
                rec.callback_type, rec.callback_data = ctype, copy.deepcopy(data)
        except ApiError as err:
            self._log_response(rec, "callback", call, ok=False, type=ctype, status=err.status, error=err.body())
            raise
        if ctype == 8:
            self._log_response(rec, "callback", call, ok=True, type=ctype, status=200, choices=choices)
            if call.query.get("with_response") in ("1", "true", "True"):
                return 200, {"interaction": {"id": str(rec.id), "type": rec.type}}
            return 204, None
        try:
            if ctype == 4:  # a message
                validate_message(data, create=True)
                msg = self._response_message(rec, data, extra_flags=int(data.get("flags") or 0) & FLAG_EPHEMERAL)
                rec.original_message_id = int(msg["id"])
                await self._publish_create(msg)
            elif ctype == 5:  # deferred: an empty "thinking" message the first follow-up replaces
                eph = int(data.get("flags") or 0) & FLAG_EPHEMERAL
                msg = self._response_message(rec, {}, extra_flags=FLAG_LOADING | eph)
                rec.original_message_id = int(msg["id"])
                rec.deferred_pending = True
                await self._publish_create(msg)
            else:  # 7: edit the message the button is on
                msg = self._messages[rec.message_id]
                rec.original_message_id = rec.message_id
                validate_message(data, create=False)
                self._apply_edit(msg, data)
                await self._publish_update(msg)
            rec.callback_type, rec.callback_data = ctype, copy.deepcopy(data)
        except ApiError as err:
            self._log_response(rec, "callback", call, ok=False, type=ctype, status=err.status, error=err.body())
            raise
        self._log_response(rec, "callback", call, ok=True, type=ctype, status=200, message=self._render_message(msg))
        if call.query.get("with_response") in ("1", "true", "True"):
            return 200, self._callback_response(rec, ctype, msg)
        return 204, None

    async def _r_followup_create(self, call: RecordedCall, app: str, token: str) -> tuple[int, Any]:
        rec = self._interaction_for(None, token, app=app)
        payload = call.json if isinstance(call.json, dict) else {}
        try:
            if rec.callback_type is None:
                raise ApiError(404, 10015, "Unknown Webhook")
            validate_message(payload, create=True)
            if call.query.get("thread_id"):
                raise NotModelled("follow-ups into a thread (thread_id)")
            replaced = False
            if rec.deferred_pending and rec.original_message_id is not None:
                # Discord: the first follow-up after a deferred (type 5) response replaces the "thinking" message.
                msg = self._messages[rec.original_message_id]
                eph = msg["flags"] & FLAG_EPHEMERAL
                self._apply_edit(msg, {**payload, "content": payload.get("content") or ""})
                msg["flags"] = (msg["flags"] & ~FLAG_LOADING) | eph
                msg["edited_timestamp"] = None
                rec.deferred_pending = False
                replaced = True
                await self._publish_update(msg)
            else:
                eph = int(payload.get("flags") or 0) & FLAG_EPHEMERAL
                msg = self._response_message(rec, payload, extra_flags=eph, followup_of=rec.original_message_id)
                msg["_interaction_id"] = rec.id
                await self._publish_create(msg)
        except ApiError as err:
            self._log_response(rec, "followup", call, ok=False, status=err.status, error=err.body())
            raise
        self._log_response(
            rec, "followup", call, ok=True, status=200, message=self._render_message(msg), replaced_deferred=replaced
        )
        if call.query.get("wait") in ("1", "true", "True"):
            return 200, self._render_message(msg)
        return 204, None

    def _webhook_target(self, rec: InteractionRecord, which: str) -> dict:
        """The message ``@original`` or ``<id>`` (a follow-up) of this interaction."""
        if which == "@original":
            if rec.original_message_id is None:
                raise ApiError(404, 10008, "Unknown Message")
            return self._messages[rec.original_message_id]
        msg = self._messages.get(int(which))
        if msg is None or (msg.get("_interaction_id") != rec.id and int(which) != rec.original_message_id):
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    async def _r_webhook_message_edit(self, call: RecordedCall, app: str, token: str, which: str) -> tuple[int, Any]:
        rec = self._interaction_for(None, token, app=app)
        kind = "edit_original" if which == "@original" else "edit_followup"
        payload = call.json if isinstance(call.json, dict) else {}
        try:
            msg = self._webhook_target(rec, which)
            validate_message(payload, create=False)
            self._apply_edit(msg, payload)
            if msg["flags"] & FLAG_LOADING:
                msg["flags"] &= ~FLAG_LOADING
                if which == "@original":
                    rec.deferred_pending = False
            check_not_empty(msg)
            await self._publish_update(msg)
        except ApiError as err:
            self._log_response(rec, kind, call, ok=False, status=err.status, error=err.body())
            raise
        self._log_response(rec, kind, call, ok=True, status=200, message=self._render_message(msg))
        return 200, self._render_message(msg)
