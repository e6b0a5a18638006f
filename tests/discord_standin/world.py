"""The world the bot sees: one guild ("Newsroom") with roles, text channels and members, DM channels
made on demand, Discord's permission arithmetic, and how users, members, channels and messages look
on the wire. Messages and threads themselves are stored by messages.py."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from .protocol import (
    DM,
    FLAG_EPHEMERAL,
    TEXT,
    THREAD_TYPES,
    WORLD_EPOCH_MS,
    ApiError,
    Intent,
    Perm,
    Snowflakes,
    snowflake_at,
    snowflake_time_iso,
)


class World:
    """State of the guild, its members and channels. Part of ``DiscordStandIn`` (server.py)."""

    privileged_intents: int  # set by DiscordStandIn.__init__

    def _init_world(self) -> None:
        self._ids = Snowflakes()
        self._users: dict[int, dict] = {}
        self._members: dict[int, dict] = {}
        self._roles: dict[int, dict] = {}
        self._channels: dict[int, dict] = {}  # text channels, DMs and threads
        self._dm_by_user: dict[int, int] = {}
        self._messages: dict[int, dict] = {}
        self._channel_msgs: dict[int, list[int]] = {}
        self._thread_ids: list[int] = []
        n = iter(range(1, 1000))

        def fixed() -> int:
            return snowflake_at(WORLD_EPOCH_MS, next(n))

        self.guild_id = fixed()
        self.bot_user_id = fixed()
        self.application_id = self.bot_user_id
        self.admin_id, self.user_id, self.user2_id = fixed(), fixed(), fixed()
        self.everyone_role_id = self.guild_id
        self.admin_role_id, self.bot_role_id = fixed(), fixed()
        self.general_id, self.news_id, self.announcements_id = fixed(), fixed(), fixed()
        self.owner_id = self.admin_id
        # The application's owner as `GET /oauth2/applications/@me` reports it (discord.py's
        # `Bot.is_owner`): a user, or, when `team_members` is set, a team whose members have roles.
        self.application_owner_id = self.admin_id
        self.team_members: dict[int, str] = {}  # user id -> "admin" | "developer" | "read_only"
        self.team_id = fixed()

        self._roles[self.everyone_role_id] = self._role_payload(self.everyone_role_id, "@everyone", Perm.BASIC, 0)
        self._roles[self.admin_role_id] = self._role_payload(
            self.admin_role_id, "Admin", Perm.BASIC | Perm.ADMIN_ROLE, 2, hoist=True, color=0xE74C3C
        )
        bot_role = self._role_payload(self.bot_role_id, "newsbot", Perm.BASIC, 1)
        bot_role["managed"] = True
        bot_role["tags"] = {"bot_id": str(self.bot_user_id)}
        self._roles[self.bot_role_id] = bot_role

        self._add_user(self.bot_user_id, "newsbot", bot=True, roles=[self.bot_role_id])
        self._add_user(self.admin_id, "alice_admin", global_name="Alice", roles=[self.admin_role_id])
        self._add_user(self.user_id, "bob", global_name="Bob")
        self._add_user(self.user2_id, "carol", global_name="Carol")

        self._add_text_channel(self.general_id, "general", 0, topic="General chat")
        self._add_text_channel(self.news_id, "news", 1, topic="Industry news")
        self._add_text_channel(
            self.announcements_id,
            "announcements",
            2,
            topic="Read-only",
            overwrites=[
                {"id": str(self.everyone_role_id), "type": 0, "allow": "0", "deny": str(Perm.SEND_MESSAGES)},
                {"id": str(self.admin_role_id), "type": 0, "allow": str(Perm.SEND_MESSAGES), "deny": "0"},
            ],
        )

    @staticmethod
    def _role_payload(
        rid: int, name: str, perms: int, position: int, *, hoist: bool = False, color: int = 0
    ) -> dict:
        return {
            "id": str(rid),
            "name": name,
            "color": color,
            "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
            "hoist": hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(perms),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _add_user(
        self,
        uid: int,
        username: str,
        *,
        bot: bool = False,
        global_name: str | None = None,
        roles: Iterable[int] = (),
    ) -> None:
        self._users[uid] = {
            "id": str(uid),
            "username": username,
            "global_name": global_name,
            "discriminator": "0" if not bot else "4321",
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
            "bot": bot,
            "system": False,
        }
        self._members[uid] = {
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in roles],
            "joined_at": snowflake_time_iso(uid),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "avatar_decoration_data": None,
        }

    def _add_text_channel(
        self, cid: int, name: str, position: int, *, topic: str | None = None, overwrites: list | None = None
    ) -> None:
        self._channels[cid] = {
            "id": str(cid),
            "type": TEXT,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "parent_id": None,
            "topic": topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "permission_overwrites": overwrites or [],
            "last_message_id": None,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }
        self._channel_msgs[cid] = []

    def add_user(self, username: str, *, bot: bool = False, roles: Iterable[int] = ()) -> int:
        """Add a guild member (no event is dispatched; do it before the bot connects)."""
        uid = self._ids.next()
        self._add_user(uid, username, bot=bot, roles=roles)
        return uid

    def _ensure_dm(self, user_id: int) -> int:
        """The DM channel between the bot and ``user_id``, created on first use."""
        if user_id not in self._users:
            raise ApiError(404, 10013, "Unknown User")
        cid = self._dm_by_user.get(user_id)
        if cid is None:
            cid = self._ids.next()
            self._channels[cid] = {
                "id": str(cid),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "_recipient": user_id,
            }
            self._channel_msgs[cid] = []
            self._dm_by_user[user_id] = cid
        return cid

    # ------------------------------------------------------------------ inspection (tests)
    @property
    def threads(self) -> list[dict]:
        return [self._render_channel(self._channels[t]) for t in self._thread_ids]

    def messages_in(self, channel_id: int, *, include_ephemeral: bool = True) -> list[dict]:
        """The channel's messages as they are now (edits applied), oldest first."""
        out = []
        for mid in self._channel_msgs.get(int(channel_id), []):
            msg = self._messages[mid]
            if msg["flags"] & FLAG_EPHEMERAL and not include_ephemeral:
                continue
            out.append(self._render_message(msg))
        return out

    def get_message(self, message_id: int) -> dict:
        return self._render_message(self._messages[int(message_id)])

    def dm_channel_id(self, user_id: int) -> int:
        return self._ensure_dm(int(user_id))

    # ------------------------------------------------------------------ lookups (route handlers)
    def _channel(self, cid: str | int) -> dict:
        ch = self._channels.get(int(cid))
        if ch is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return ch

    def _message(self, cid: str | int, mid: str | int) -> dict:
        msg = self._messages.get(int(mid))
        if msg is None or int(msg["channel_id"]) != int(cid) or msg["flags"] & FLAG_EPHEMERAL:
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    def _check_user(self, user_id: int) -> None:
        if user_id not in self._users:
            raise ValueError(f"unknown user id {user_id}")

    # ------------------------------------------------------------------ permissions
    def _perms(self, user_id: int, channel_id: int | None = None) -> int:
        """Discord's computation: @everyone, then roles, then channel overwrites (threads: the parent's)."""
        if user_id == self.owner_id:
            return Perm.ALL
        member = self._members.get(user_id)
        if member is None:
            return 0
        perms = int(self._roles[self.everyone_role_id]["permissions"])
        role_ids = [int(r) for r in member["roles"]]
        for rid in role_ids:
            if rid in self._roles:
                perms |= int(self._roles[rid]["permissions"])
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        if channel_id is None:
            return perms
        ch = self._channels.get(channel_id)
        if ch is None or ch["type"] == DM:
            return perms
        if ch["type"] in THREAD_TYPES:
            ch = self._channels[int(ch["parent_id"])]
        ows = {int(o["id"]): o for o in ch.get("permission_overwrites", [])}
        if self.everyone_role_id in ows:
            o = ows[self.everyone_role_id]
            perms = (perms & ~int(o["deny"])) | int(o["allow"])
        allow = deny = 0
        for rid in role_ids:
            o = ows.get(rid)
            if o is not None and o["type"] == 0:
                allow |= int(o["allow"])
                deny |= int(o["deny"])
        perms = (perms & ~deny) | allow
        o = ows.get(user_id)
        if o is not None and o["type"] == 1:
            perms = (perms & ~int(o["deny"])) | int(o["allow"])
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        return perms

    def _require_bot(self, channel: dict, needed: int) -> None:
        if channel["type"] == DM:
            return
        perms = self._perms(self.bot_user_id, int(channel["id"]))
        if not perms & Perm.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise ApiError(403, 50013, "Missing Permissions")

    # ------------------------------------------------------------------ wire shapes
    def _user(self, uid: int) -> dict:
        return copy.deepcopy(self._users[uid])

    def _member(self, uid: int, *, with_user: bool = True, channel_id: int | None = None) -> dict:
        m = copy.deepcopy(self._members[uid])
        if with_user:
            m["user"] = self._user(uid)
        if channel_id is not None:
            m["permissions"] = str(self._perms(uid, channel_id))
        return m

    def _render_channel(self, ch: dict, *, for_guild_create: bool = False) -> dict:
        out = {k: copy.deepcopy(v) for k, v in ch.items() if not k.startswith("_")}
        if ch["type"] == DM:
            out["recipients"] = [self._user(ch["_recipient"])]
        if for_guild_create:
            out.pop("guild_id", None)
        return out

    def _render_message(self, msg: dict, *, gateway: bool = False, with_ref: bool = True) -> dict:
        out = {k: copy.deepcopy(v) for k, v in msg.items() if not k.startswith("_")}
        guild_id = int(msg["guild_id"]) if msg.get("guild_id") else None
        out["author"] = self._user(msg["_author"])
        mentions = []
        for uid in msg["_mentions"]:
            u = self._user(uid)
            if gateway and guild_id and uid in self._members:
                u["member"] = self._member(uid, with_user=False)
            mentions.append(u)
        out["mentions"] = mentions
        if gateway and guild_id and msg["_author"] in self._members:
            out["member"] = self._member(msg["_author"], with_user=False)
        ref = msg.get("message_reference")
        if with_ref and ref and ref.get("type", 0) == 0 and msg["type"] == 19:
            target = self._messages.get(int(ref["message_id"]))
            out["referenced_message"] = None if target is None else self._render_message(target, with_ref=False)
        thread_id = msg.get("_thread_id")
        if thread_id:
            out["thread"] = self._render_channel(self._channels[thread_id])
        return out

    def _me_payload(self) -> dict:
        me = self._user(self.bot_user_id)
        me.update({"verified": True, "mfa_enabled": False, "locale": "en-US", "email": None, "premium_type": 0})
        return me

    def _application_flags(self) -> int:
        """The application's flags: the *_LIMITED intent flags for the granted privileged intents (the
        developer portal's toggles), or for ``claimed_intents`` when a test sets it (flags that promise
        what the gateway then refuses)."""
        flags = 1 << 23  # APPLICATION_COMMAND_BADGE
        granted = self.privileged_intents if self.claimed_intents is None else self.claimed_intents
        if granted & Intent.GUILD_PRESENCES:
            flags |= 1 << 13
        if granted & Intent.GUILD_MEMBERS:
            flags |= 1 << 15
        if granted & Intent.MESSAGE_CONTENT:
            flags |= 1 << 19
        return flags

    def _guild_payload(self) -> dict:
        return {
            "id": str(self.guild_id),
            "name": "Newsroom",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": [copy.deepcopy(r) for r in self._roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": str(self.general_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
        }
