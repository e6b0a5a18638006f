"""Discord's numbers and shapes: API version, permission and intent bits, channel/message/option types,
snowflake ids, the error a route raises, and the records a test inspects."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
WORLD_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: fixed world ids are deterministic
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # sent in every interaction (discord.py requires the field)
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
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT

# channel types
TEXT, DM, NEWS, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 5, 11, 12
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)

# message flags
FLAG_SUPPRESS_EMBEDS, FLAG_HAS_THREAD, FLAG_EPHEMERAL, FLAG_LOADING = 1 << 2, 1 << 5, 1 << 6, 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS, FLAG_COMPONENTS_V2 = 1 << 12, 1 << 15
SENDABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2

# app command option types
OPT_SUB, OPT_GROUP, OPT_STRING, OPT_INTEGER, OPT_BOOLEAN, OPT_NUMBER = 1, 2, 3, 4, 5, 10
OPT_CHANNEL = 7
# interaction types: 2 slash command, 3 component, 4 autocomplete (the user is typing an option)
AUTOCOMPLETE = 4


def snowflake_at(ms: int, seq: int = 0) -> int:
    return ((ms - DISCORD_EPOCH_MS) << 22) | (seq & 0x3FFFFF)


def snowflake_time_iso(sf: int) -> str:
    ms = (int(sf) >> 22) + DISCORD_EPOCH_MS
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return _dt.datetime.now(tz=_dt.UTC).isoformat(timespec="microseconds")


class Snowflakes:
    """New ids from the clock, strictly increasing."""

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


class NotModelled(Exception):
    """Raised where the bot asks for something real Discord does but the stand-in does not model; the
    request gets 503 and is reported by ``assert_clean()``, so a test never passes on a guess."""


def form_error(items: list[tuple[tuple, str, str]]) -> ApiError:
    """Discord's 400 50035 "Invalid Form Body" with ``errors`` nested by field path."""
    root: dict = {}
    for path, code, message in items:
        node = root
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return ApiError(400, 50035, "Invalid Form Body", root)


@dataclass
class RecordedCall:
    """One REST request the bot made (``path`` is relative to ``api_base``, percent-decoded)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
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
    message_id: int | None = None  # button click: the message the button is on
    command: dict | None = None
    callback_type: int | None = None
    callback_data: Any = None
    original_message_id: int | None = None
    deferred_pending: bool = False  # type-5 defer whose thinking message is not yet replaced
    focused_option: dict | None = None  # autocomplete: the option definition being typed into
    responses: list[dict] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.callback_type is not None

    @property
    def followups(self) -> list[dict]:
        return [r for r in self.responses if r["kind"] == "followup" and r["ok"]]
