"""Scheduled digests: a channel gets the day's digest every day at HH:MM in its timezone.

A schedule remembers the last due time it was posted for (`last_due`, UTC). Whoever finds a newer due
time claims it with one conditional UPDATE (`State.claim_schedule_run`), so of several replicas (or a
replica and a restart) exactly one posts it. Only the latest due time counts: a bot that was down for
three days posts once when it starts, covering the days it missed (up to `MAX_CATCH_UP`), not three times.
A new schedule starts at its next due time (creating it at 10:00 for 09:00 posts tomorrow).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_CATCH_UP = timedelta(days=7)  # the longest period a late digest covers
DAY = timedelta(days=1)
_TIME = re.compile(r"^\s*([01]?\d|2[0-3])[:.h]([0-5]\d)\s*$")

TIME_HINT = "a time is HH:MM on a 24-hour clock, such as 09:00 or 17:30"
ZONE_HINT = "a timezone is an IANA name such as UTC, Europe/Berlin or America/New_York"


def parse_time(text: str) -> str:
    """`9:00`, `09:00`, `17.30` -> `HH:MM`; ValueError (message: TIME_HINT) otherwise."""
    m = _TIME.match(text or "")
    if not m:
        raise ValueError(TIME_HINT)
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def parse_zone(name: str | None) -> str:
    """An IANA timezone name as zoneinfo knows it (default UTC); ValueError (message: ZONE_HINT) otherwise."""
    name = (name or "UTC").strip() or "UTC"
    if ".." in name or name.startswith("/"):
        raise ValueError(ZONE_HINT)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(ZONE_HINT) from None
    return name


def schedule_id(channel_id: str, at_time: str, topic: str) -> str:
    """One schedule per channel, time and topic (ignoring case and spacing)."""
    key = "\x1f".join([channel_id, at_time, " ".join(topic.lower().split())])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def latest_due(at_time: str, zone: str, now: datetime) -> datetime:
    """The latest time at or before `now` when a daily `at_time` schedule in `zone` was due, in UTC.

    Local wall-clock time, so 09:00 stays 09:00 across daylight-saving changes (a time a change skips
    is read as zoneinfo reads it, an hour off that day)."""
    tz = ZoneInfo(zone)
    hour, minute = (int(p) for p in at_time.split(":"))
    local = now.astimezone(tz)
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due > local:
        due = (local - DAY).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return due.astimezone(UTC)


def next_due(at_time: str, zone: str, now: datetime) -> datetime:
    """The next time the schedule is due after `now`, in UTC (for telling users)."""
    tz = ZoneInfo(zone)
    hour, minute = (int(p) for p in at_time.split(":"))
    return (latest_due(at_time, zone, now).astimezone(tz) + DAY).replace(hour=hour, minute=minute).astimezone(UTC)


def digest_period(last_due: str, due: datetime) -> datetime:
    """Where the digest due at `due` starts: the last one posted (a bot that was down covers the days
    it missed), at most MAX_CATCH_UP back, and a day back for the first."""
    try:
        previous = datetime.fromisoformat(last_due) if last_due else due - DAY
    except ValueError:
        previous = due - DAY
    return max(min(previous, due - DAY), due - MAX_CATCH_UP)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")
