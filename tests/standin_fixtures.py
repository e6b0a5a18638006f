"""pytest helpers for running a real discord.py bot against the local Discord stand-in.

pytest-asyncio is not required: every scenario runs inside its own ``asyncio.run`` loop, and the
stand-in, the bot and all cleanup live in that loop.

Registered in tests/conftest.py (`pytest_plugins`). In a test::

    def test_answers_question(discord_standin_run):
        async def scenario(standin, bot):
            await standin.send_message(standin.general_id, standin.user_id, "what happened?", mention_bot=True)
            call = await standin.wait_for_call("POST", r"^/channels/\\d+/messages$")
            assert "citation" in call.json["content"]

        discord_standin_run(scenario, bot_factory=lambda standin: build_newsbot(...))

Or call ``run_standin`` directly (``from tests.standin_fixtures import run_standin``).
``bot_factory(standin)`` must return a discord.py ``Client``/``Bot`` (or an awaitable of one) built with a
low ``guild_ready_timeout`` (e.g. 0.05) so ``on_ready`` fires quickly.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.discord_standin import DiscordStandIn, running_bot

Scenario = Callable[[DiscordStandIn, Any], Awaitable[Any]]


def run_standin(
    scenario: Scenario,
    *,
    bot_factory: Callable[[DiscordStandIn], Any] | None = None,
    timeout: float = 30.0,
    ready_timeout: float = 10.0,
    check_clean: bool = True,
    raise_on_crash: bool = True,
    **standin_kwargs: Any,
) -> Any:
    """Start a stand-in (and a bot from ``bot_factory``), run ``scenario(standin, bot)``, clean up.

    ``bot`` is ``None`` without a factory. After the scenario the bot is closed, the stand-in stopped
    (which restores discord.py's Route.BASE / DEFAULT_GATEWAY), and, with ``check_clean``, the test
    fails if the bot hit a route the stand-in does not know or a stand-in handler crashed.
    ``standin_kwargs`` go to ``DiscordStandIn`` (token, heartbeat_interval_ms, interaction_deadline,
    privileged_intents, ...).
    """

    async def main() -> Any:
        standin = DiscordStandIn(**standin_kwargs)
        await standin.start()
        try:
            if bot_factory is None:
                result = await asyncio.wait_for(scenario(standin, None), timeout)
            else:
                bot = bot_factory(standin)
                if inspect.isawaitable(bot):
                    bot = await bot
                async with running_bot(
                    standin, bot, ready_timeout=ready_timeout, raise_on_crash=raise_on_crash
                ):
                    result = await asyncio.wait_for(scenario(standin, bot), timeout)
        finally:
            await standin.stop()
        if check_clean:  # only after a successful scenario, so it never masks the real failure
            standin.assert_clean()
        return result

    return asyncio.run(main())


@pytest.fixture
def discord_standin_run() -> Callable[..., Any]:
    """The ``run_standin`` function (see its docstring); each call gets a fresh stand-in and event loop."""
    return run_standin
