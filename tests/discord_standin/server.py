"""``DiscordStandIn``, the object tests use: the parts (world, gateway, REST, messages, commands,
interactions) put together on one aiohttp server in the test's event loop, plus waiting helpers and
the glue that points discord.py at it (``connect_discord_py``, ``running_bot``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .commands import Commands
from .gateway import Gateway
from .interactions import Interactions
from .messages import Messages
from .protocol import API_VERSION, PRIVILEGED_INTENTS, RecordedCall
from .rest import Rest
from .world import World

log = logging.getLogger("discord_standin")


class DiscordStandIn(World, Gateway, Rest, Messages, Commands, Interactions):
    """Local Discord (REST + gateway) for discord.py tests. See the package docstring for the API."""

    def __init__(
        self,
        *,
        token: str = "standin-token",
        heartbeat_interval_ms: int = 1000,
        interaction_deadline: float = 3.0,
        privileged_intents: int = PRIVILEGED_INTENTS,
    ) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.privileged_intents = privileged_intents
        self.claimed_intents: int | None = None  # privileged intents the application's flags claim (None: granted)

        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._change: asyncio.Event | None = None  # created in start() (needs the running loop)
        self._redirected_from: tuple[Any, Any] | None = None
        self._action_mark = 0
        self.bot_tasks: list[asyncio.Task] = []

        self._init_world()
        self._init_gateway()
        self._init_rest()
        self._init_commands()
        self._init_interactions()

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

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 on `port` (0: a free port; a given one lets a bot dial it before it is up)."""
        self._change = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/gateway", self._ws_handler)
        app.router.add_route("GET", "/gateway/", self._ws_handler)
        app.router.add_route("*", "/api/v{version}/{tail:.*}", self._rest_handler)
        app.router.add_route("*", "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.info("Discord stand-in listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close every connection and the server; undo ``connect_discord_py``."""
        disconnect_discord_py(self)
        for conn in list(self._conns):
            if not conn.closed:
                conn.server_closed = True
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1001, message=b"stand-in stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def assert_clean(self) -> None:
        """Raise if the bot hit an unknown route, needed something not modelled, or a handler crashed."""
        problems = [f"unknown route {c.method} {c.path}" for c in self.unknown_calls] + list(self.errors)
        if problems:
            raise AssertionError("Discord stand-in problems:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------ waiting
    def _notify(self) -> None:
        """Wake every ``wait_for``: something changed."""
        if self._change is not None:
            self._change.set()
            self._change = asyncio.Event()

    def _action(self) -> None:
        """A test-side action starts here: ``wait_for_call`` looks at calls from now on by default."""
        self._action_mark = len(self.calls)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, *, what: str | None = None) -> Any:
        """Re-evaluate the zero-argument ``predicate`` on every change; return its first truthy value."""
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
            if (method in (None, "*") or c.method == method.upper()) and rx.search(c.path) and c.status is not None
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
        """The first matching REST call recorded at or after ``since`` (default: the latest test-side
        action, i.e. "after what I just did")."""
        start = self._action_mark if since is None else since

        def find() -> RecordedCall | None:
            for c in self.calls_matching(method, path_regex, since=start):
                if predicate is None or predicate(c):
                    return c
            return None

        return await self.wait_for(find, timeout, what=f"{method} {path_regex} (calls since #{start})")


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
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = standin._redirected_from
        standin._redirected_from = None


class BotCrashed(RuntimeError):
    """The discord.py client's ``start()`` task ended with an exception while the test was running."""


@contextlib.asynccontextmanager
async def running_bot(standin: DiscordStandIn, bot: Any, *, ready_timeout: float = 10.0, raise_on_crash: bool = True):
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
        done, _ = await asyncio.wait({task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
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
