"""The REST API: every request the bot makes is recorded, checked for the bot token, routed through one
table (below: the whole API the stand-in answers), and answered with Discord's JSON or Discord's
error shapes. Unknown routes get 404 and are reported by ``assert_clean()``; so is anything the
stand-in does not model. Also the routes about the bot itself: ``/users``, ``/gateway``, the application."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .protocol import API_VERSION, ApiError, NotModelled, RecordedCall

log = logging.getLogger("discord_standin")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204 or body is None:
        return web.Response(status=status, headers=headers)
    # Exactly "application/json" -- discord.py only parses bodies whose content-type matches exactly.
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


class Rest:
    """The HTTP side of ``DiscordStandIn`` (server.py); the handlers live with their subject."""

    def _init_rest(self) -> None:
        self.calls: list[RecordedCall] = []
        self.unknown_calls: list[RecordedCall] = []
        self.errors: list[str] = []  # stand-in crashes and things it does not model
        self._faults: list[dict] = []
        self._routes = self._build_routes()

    def _build_routes(self) -> list[tuple[str, re.Pattern, Callable, bool]]:
        """(method, path, handler, needs the bot token) for every route; paths are relative to /api/v10."""
        s = r"(\d+)"
        tok = r"([^/]+)"
        table = [
            # the bot itself (here)
            ("GET", "/users/@me", self._r_me, True),
            ("GET", f"/users/{s}", self._r_user, True),
            ("GET", "/gateway", self._r_gateway, False),
            ("GET", "/gateway/bot", self._r_gateway_bot, True),
            ("GET", "/oauth2/applications/@me", self._r_application, True),
            # slash command registration (commands.py)
            ("PUT", f"/applications/{s}/commands", self._r_commands_put, True),
            ("PUT", f"/applications/{s}/guilds/{s}/commands", self._r_commands_put, True),
            # messages, threads, DMs (messages.py)
            ("POST", f"/channels/{s}/messages", self._r_message_create, True),
            ("PATCH", f"/channels/{s}/messages/{s}", self._r_message_edit, True),
            ("POST", f"/channels/{s}/typing", self._r_typing, True),
            ("POST", f"/channels/{s}/messages/{s}/threads", self._r_thread_from_message, True),
            ("POST", "/users/@me/channels", self._r_dm_create, True),
            # interaction responses (interactions.py); authorised by the interaction token, not the bot's
            ("POST", f"/interactions/{s}/{tok}/callback", self._r_interaction_callback, False),
            ("POST", f"/webhooks/{s}/{tok}", self._r_followup_create, False),
            ("PATCH", f"/webhooks/{s}/{tok}/messages/(@original|\\d+)", self._r_webhook_message_edit, False),
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
        if status == 429:  # without `Via`, discord.py takes a 429 for a Cloudflare ban and raises
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

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        prefix = f"/api/v{API_VERSION}"
        raw_path = request.path
        path = raw_path[len(prefix) :] if raw_path.startswith(prefix + "/") else raw_path
        call = RecordedCall(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("authorization", "x-audit-log-reason", "content-type", "user-agent")
            },
            at=time.monotonic(),
        )
        self.calls.append(call)
        status, body, headers = await self._handle_call(request, call, under_api=raw_path.startswith(prefix + "/"))
        call.status, call.response = status, body
        self._notify()
        return json_response(status, body, headers)

    async def _read_body(self, request: web.Request, call: RecordedCall) -> None:
        ctype = request.content_type or ""
        if ctype.startswith("multipart/"):  # discord.py sends multipart only with files
            raise NotModelled("file uploads (multipart bodies)")
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
        except NotModelled as exc:
            return self._not_modelled(call, exc)
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
                except NotModelled as exc:
                    return self._not_modelled(call, exc)
                except Exception as exc:
                    log.exception("stand-in route handler crashed for %s %s", call.method, call.path)
                    self.errors.append(f"{call.method} {call.path}: {exc!r}")
                    # 503 rather than 500: discord.py silently retries 500s with multi-second sleeps.
                    return 503, {"message": f"stand-in internal error: {exc!r}", "code": 0}, None
        self.unknown_calls.append(call)
        log.error(
            "DISCORD STAND-IN: UNKNOWN ROUTE %s %s (query=%s body=%s) -> 404. Add it to tests/discord_standin/ "
            "if the bot really needs it.",
            call.method,
            call.path,
            call.query,
            str(call.json)[:300],
        )
        return 404, {"message": "Unknown route", "code": 0}, None

    def _not_modelled(self, call: RecordedCall, exc: NotModelled) -> tuple[int, Any, None]:
        """A request real Discord would accept but the stand-in does not model: fail the test, loudly."""
        log.error("DISCORD STAND-IN: %s %s needs %s, which the stand-in does not model. Add it to "
                  "tests/discord_standin/ if the bot really needs it.", call.method, call.path, exc)
        self.errors.append(f"{call.method} {call.path}: not modelled: {exc}")
        return 503, {"message": f"stand-in: not modelled: {exc}", "code": 0}, None

    # ------------------------------------------------------------------ routes: the bot itself
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
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
        }

    async def _r_application(self, call: RecordedCall) -> tuple[int, Any]:
        """What ``Client.login`` and ``Bot.is_owner`` ask: the application, its owner or team."""
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
