"""Scheduled feed polling for long-running front ends (the Discord bot).

`poll_feeds_forever(engine, minutes)` runs `Engine.update_feeds` every `minutes` in a worker thread, so
the event loop keeps serving questions while pages are fetched and embedded. Searches keep answering
from the current index throughout and see the new articles as soon as an update commits. A round with
no feed registered does nothing (feeds added meanwhile are polled at the next round); `PollSchedule`
says when that is, for telling users.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsbot.bot.engine import Engine
    from newsbot.bot.feed_updates import UpdateReport

log = logging.getLogger("newsbot.freshness")

ReportHandler = Callable[["UpdateReport"], Awaitable[Any] | Any]
ErrorHandler = Callable[[BaseException], Awaitable[Any] | Any]


@dataclass
class PollSchedule:
    """When the next automatic poll is due, as `asyncio` loop time: `next_at` is None while a poll runs
    (and before the first one is scheduled). `poll_feeds_forever` keeps it current."""

    minutes: float
    next_at: float | None = None
    polling: bool = False

    def seconds_to_next(self) -> float | None:
        """Seconds until the next poll starts (0 when one is running or overdue); None if none is scheduled."""
        if self.polling:
            return 0.0
        if self.next_at is None:
            return None
        return max(0.0, self.next_at - asyncio.get_running_loop().time())


async def poll_feeds_forever(
    engine: Engine,
    minutes: float | None = None,
    on_report: ReportHandler | None = None,
    *,
    on_error: ErrorHandler | None = None,
    stop: asyncio.Event | None = None,
    first_delay: float = 0.0,
    schedule: PollSchedule | None = None,
) -> None:
    """Poll every feed now (after `first_delay` seconds), then every `minutes`, until cancelled or `stop`.

    minutes: default the `feed_poll_minutes` setting; 0 or less returns at once (polling is off).
    A round with no registered feed polls nothing and reports nothing. A round that finds another
    process (a replica) polling skips (the report says `busy`): one poller at a time, by the feeds lease.
    on_report(report) / on_error(exception): plain functions or coroutine functions. A poll that raises
    is logged (and handed to `on_error`) and polling goes on. Cancelling the task stops the schedule; a
    poll already running in its thread finishes on its own (an update is atomic either way).
    schedule: updated with the time of the next poll, for telling users when new entries arrive.
    """
    minutes = engine.settings.feed_poll_minutes if minutes is None else minutes
    if minutes <= 0:
        return
    schedule = schedule or PollSchedule(minutes)
    if first_delay > 0 and await _wait(schedule, stop, first_delay):
        return
    while True:
        schedule.polling = True
        try:
            await _poll_once(engine, on_report, on_error)
        finally:
            schedule.polling = False
        if await _wait(schedule, stop, minutes * 60):
            return


async def _wait(schedule: PollSchedule, stop: asyncio.Event | None, seconds: float) -> bool:
    schedule.next_at = asyncio.get_running_loop().time() + seconds
    try:
        return await _stopped(stop, seconds)
    finally:
        schedule.next_at = None


def _update_if_any(engine: Engine) -> UpdateReport | None:
    """`engine.update_feeds` without waiting for another poller, or None when no feed is registered."""
    if not engine.feeds():
        return None
    return engine.update_feeds(wait=False)  # a replica polling now: skip this round


async def _poll_once(engine: Engine, on_report: ReportHandler | None, on_error: ErrorHandler | None) -> None:
    """One update in a worker thread; its report (or exception) goes to the handlers."""
    try:
        report = await asyncio.to_thread(_update_if_any, engine)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("feed update failed")
        if on_error is not None:
            await _call(on_error, exc)
        return
    if report is None:
        return
    if report.failed or report.new or report.updated or report.busy:
        log.info("feeds: %s", report.summary())
    if on_report is not None:
        try:
            await _call(on_report, report)
        except Exception:
            log.exception("on_report failed")


async def _call(handler: Callable[[Any], Any], value: Any) -> None:
    result = handler(value)
    if inspect.isawaitable(result):
        await result


async def _stopped(stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait `seconds`; True if `stop` was set meanwhile (returns as soon as it is)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
