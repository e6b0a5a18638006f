"""Slash commands: the bot registers them (``PUT .../commands``, global or per guild, checked by
validation.py), and a test invokes one as a user would (``slash_command``), which the stand-in builds
from the *registered* definition and refuses where the Discord client would not offer the command."""

from __future__ import annotations

import copy
from typing import Any

from .protocol import (
    AUTOCOMPLETE,
    DM,
    OPT_BOOLEAN,
    OPT_CHANNEL,
    OPT_GROUP,
    OPT_INTEGER,
    OPT_NUMBER,
    OPT_STRING,
    OPT_SUB,
    ApiError,
    InteractionRecord,
    Perm,
    RecordedCall,
)
from .validation import validate_commands


class Commands:
    """Application commands of ``DiscordStandIn`` (server.py)."""

    def _init_commands(self) -> None:
        self._commands: dict[int | None, list[dict]] = {None: []}  # guild id (None: global) -> commands
        # Server Settings → Integrations: command name -> user or role ids a server admin let use it
        # whatever its default_member_permissions (Discord's per-command permission overrides).
        self.command_overrides: dict[str, set[int]] = {}

    @property
    def commands(self) -> list[dict]:
        """Every registered command (global and guild), with the ids Discord gave them."""
        return [copy.deepcopy(c) for cmds in self._commands.values() for c in cmds]

    # ------------------------------------------------------------------ route: registration
    def _cmd_list(self, gid: str | None) -> list[dict]:
        if gid is not None:
            if int(gid) != self.guild_id:
                raise ApiError(404, 10004, "Unknown Guild")
            return self._commands.setdefault(int(gid), [])
        return self._commands[None]

    def _store_command(self, c: dict, gid: str | None, old: dict | None) -> dict:
        stored = {
            "id": old["id"] if old else str(self._ids.next()),
            "application_id": str(self.application_id),
            "version": old["version"] if old else str(self._ids.next()),
            "type": c.get("type", 1),
            "name": c["name"],
            "name_localizations": c.get("name_localizations"),
            "description": c.get("description", ""),
            "description_localizations": c.get("description_localizations"),
            "options": copy.deepcopy(c.get("options") or []),
            "default_member_permissions": (
                None if c.get("default_member_permissions") is None else str(c["default_member_permissions"])
            ),
            "nsfw": bool(c.get("nsfw", False)),
            "contexts": c.get("contexts"),
            "integration_types": c.get("integration_types") or [0],
        }
        if gid is not None:
            stored["guild_id"] = str(gid)
        else:
            stored["dm_permission"] = c["dm_permission"] if c.get("dm_permission") is not None else True
        if old is not None:
            comparable = ("description", "options", "default_member_permissions", "nsfw", "contexts")
            if any(old.get(k) != stored.get(k) for k in comparable):
                stored["version"] = str(self._ids.next())
        return stored

    async def _r_commands_put(self, call: RecordedCall, app: str, gid: str | None = None) -> tuple[int, Any]:
        """Bulk overwrite (``CommandTree.sync``): the list replaces what was registered; ids are kept by name."""
        if int(app) != self.application_id:
            raise ApiError(403, 50001, "Missing Access")
        body = call.json
        validate_commands(body)
        current = self._cmd_list(gid)
        existing = {(c["name"], c["type"]): c for c in current}
        new = [self._store_command(c, gid, existing.get((c["name"], c.get("type", 1)))) for c in body]
        current[:] = new
        return 200, copy.deepcopy(new)

    # ------------------------------------------------------------------ test side: a user invokes one
    def _lookup_command(self, name: str, guild_id: int | None) -> dict:
        candidates = []
        if guild_id is not None:
            candidates += self._commands.get(guild_id, [])
        candidates += self._commands[None]
        for c in candidates:
            if c["name"] == name and c["type"] == 1:
                return c
        synced = [(c["name"], c.get("guild_id")) for c in self.commands]
        raise LookupError(
            f"command {name!r} is not synced for guild {guild_id} (a Discord user could not invoke it); "
            f"synced: {synced}"
        )

    def _option_value(self, opt: dict, value: Any, guild_id: int) -> Any:
        """``value`` for option ``opt`` as the Discord client sends it, refused where the client would
        refuse it. Strings, integers, numbers, booleans and channels (an id of a channel of the guild,
        of one of the option's ``channel_types``): users, roles and attachments as options are not modelled."""
        otype, name = opt["type"], opt["name"]
        choices = opt.get("choices") or []
        if choices:
            by_name = {c["name"]: c["value"] for c in choices}
            values = [c["value"] for c in choices]
            if value not in values:
                if value in by_name:
                    value = by_name[value]
                else:
                    raise ValueError(f"option {name!r}: {value!r} is not one of the choices {values}")
        if otype == OPT_STRING:
            if not isinstance(value, str):
                raise TypeError(f"option {name!r} expects a string")
            if len(value) < opt.get("min_length", 0) or len(value) > opt.get("max_length", 6000):
                raise ValueError(f"option {name!r}: length outside min_length/max_length")
            return value
        if otype in (OPT_INTEGER, OPT_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"option {name!r} expects a number")
            if otype == OPT_INTEGER and not isinstance(value, int):
                raise TypeError(f"option {name!r} expects an integer")
            too_small = "min_value" in opt and value < opt["min_value"]
            too_big = "max_value" in opt and value > opt["max_value"]
            if too_small or too_big:
                raise ValueError(f"option {name!r}: {value} outside min_value/max_value")
            return value if otype == OPT_INTEGER else float(value)
        if otype == OPT_BOOLEAN:
            if not isinstance(value, bool):
                raise TypeError(f"option {name!r} expects a bool")
            return value
        if otype == OPT_CHANNEL:
            ch = self._channels.get(int(value))
            if ch is None or ch["type"] == DM or int(ch.get("guild_id") or 0) != guild_id:
                raise ValueError(f"option {name!r}: {value} is not a channel of this guild")
            types = opt.get("channel_types")
            if types and ch["type"] not in types:
                raise ValueError(f"option {name!r}: channel type {ch['type']} is not one of {types}")
            return str(ch["id"])
        raise ValueError(f"option {name!r}: option type {otype} is not modelled by the stand-in")

    def _build_options(
        self, definitions: list[dict], given: dict[str, Any], guild_id: int, *, focused: str | None = None
    ) -> list[dict]:
        """The options of an invocation; with ``focused`` (autocomplete), the options typed so far: the
        focused one carries the raw text being typed, and required ones may still be missing."""
        known = {o["name"]: o for o in definitions}
        unknown = set(given) - set(known)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; command defines {sorted(known)}")
        out = []
        for opt in definitions:
            if opt["name"] == focused:
                if not opt.get("autocomplete"):
                    raise ValueError(f"option {focused!r} has no autocomplete; the Discord client would not ask")
                text = given.get(focused, "")
                if not isinstance(text, str):
                    raise TypeError("the focused option's value is the text typed so far (a string)")
                out.append({"name": opt["name"], "type": opt["type"], "value": text, "focused": True})
                continue
            if opt["name"] not in given:
                if opt.get("required") and focused is None:
                    raise ValueError(f"required option {opt['name']!r} missing (the Discord client requires it)")
                continue
            value = self._option_value(opt, given[opt["name"]], guild_id)
            out.append({"name": opt["name"], "type": opt["type"], "value": value})
        return out

    def _resolved(self, built: list[dict], user_id: int) -> dict:
        """Discord's ``resolved`` data for the channel options of an invocation."""
        channels = {}
        for o in built:
            if o["type"] == OPT_CHANNEL and not o.get("focused"):
                ch = self._channels[int(o["value"])]
                channels[str(ch["id"])] = {**self._render_channel(ch), "permissions": str(self._perms(user_id, int(ch["id"])))}
        return {"channels": channels} if channels else {}

    def _invocation(
        self, name: str, *, user_id: int, channel_id: int, subcommand: str | None
    ) -> tuple[dict, int, list[dict], list[tuple[str, int]]]:
        """(command, guild id, option definitions, subcommand wrapper) for a user invoking ``name`` in
        ``channel_id``; LookupError/PermissionError/ValueError where the Discord client would not offer it."""
        self._check_user(user_id)
        ch = self._channels.get(int(channel_id))
        if ch is None:
            raise ValueError(f"unknown channel {channel_id}")
        if ch["type"] == DM:
            raise ValueError("slash commands in DMs are not modelled by the stand-in")
        guild_id = int(ch["guild_id"])
        cmd = self._lookup_command(name, guild_id)
        contexts = cmd.get("contexts")
        if contexts is not None and 0 not in contexts:
            raise PermissionError(f"command {name!r} is not available in guilds")
        required = cmd.get("default_member_permissions")
        member_roles = {int(r) for r in self._members.get(user_id, {}).get("roles", [])}
        overridden = bool(self.command_overrides.get(name, set()) & ({user_id, self.everyone_role_id} | member_roles))
        if required is not None and not overridden:
            perms = self._perms(user_id)
            if not perms & Perm.ADMINISTRATOR and perms & int(required) != int(required):
                raise PermissionError(
                    f"user {user_id} lacks default_member_permissions={required} for {name!r}; "
                    "Discord would not show the command"
                )
        if not self._perms(user_id, int(channel_id)) & Perm.USE_APPLICATION_COMMANDS:
            raise PermissionError(f"user {user_id} cannot use application commands in {channel_id}")
        definitions = cmd.get("options") or []
        wrapper: list[tuple[str, int]] = []
        if subcommand:
            for part in subcommand.split():
                match = next(
                    (o for o in definitions if o["name"] == part and o["type"] in (OPT_SUB, OPT_GROUP)), None
                )
                if match is None:
                    raise LookupError(f"{name!r} has no subcommand/group {part!r}")
                wrapper.append((part, match["type"]))
                definitions = match.get("options") or []
            if wrapper[-1][1] != OPT_SUB:
                raise ValueError(f"{subcommand!r} names a group, not a subcommand")
        elif any(o["type"] in (OPT_SUB, OPT_GROUP) for o in definitions):
            raise ValueError(f"{name!r} has subcommands; pass subcommand=...")
        return cmd, guild_id, definitions, wrapper

    @staticmethod
    def _command_data(cmd: dict, built: list[dict], wrapper: list[tuple[str, int]], resolved: dict) -> dict:
        for part, ptype in reversed(wrapper):
            built = [{"name": part, "type": ptype, "options": built}]
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if built:
            data["options"] = built
        if resolved:
            data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return data

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        channel_id: int,
        subcommand: str | None = None,
    ) -> InteractionRecord:
        """Invoke a synced chat-input command as ``user_id`` in a guild channel (``subcommand`` may be
        ``"sub"`` or ``"group sub"``; a channel option's value is a channel id). Raises LookupError if it is
        not synced, PermissionError or ValueError where the Discord client would refuse."""
        self._action()
        cmd, guild_id, definitions, wrapper = self._invocation(
            name, user_id=user_id, channel_id=channel_id, subcommand=subcommand)
        built = self._build_options(definitions, dict(options or {}), guild_id)
        data = self._command_data(cmd, built, wrapper, self._resolved(built, user_id))
        return await self._dispatch_interaction(2, data, user_id=user_id, channel_id=int(channel_id), command=cmd)

    async def autocomplete(
        self,
        name: str,
        focused: str,
        typed: str = "",
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        channel_id: int,
        subcommand: str | None = None,
    ) -> InteractionRecord:
        """The user types ``typed`` into option ``focused`` of command ``name`` (``options``: the other
        options filled in so far): dispatches INTERACTION_CREATE type 4 (APPLICATION_COMMAND_AUTOCOMPLETE),
        which the bot answers with callback type 8 (its ``choices``: ``wait_for_choices``). ValueError if
        the option has no ``autocomplete`` (the client would not ask)."""
        self._action()
        cmd, guild_id, definitions, wrapper = self._invocation(
            name, user_id=user_id, channel_id=channel_id, subcommand=subcommand)
        given = {**dict(options or {}), focused: typed}
        built = self._build_options(definitions, given, guild_id, focused=focused)
        data = self._command_data(cmd, built, wrapper, self._resolved(built, user_id))
        return await self._dispatch_interaction(
            AUTOCOMPLETE, data, user_id=user_id, channel_id=int(channel_id), command=cmd,
            focused_option=next(o for o in definitions if o["name"] == focused),
        )

    async def wait_for_choices(self, rec: InteractionRecord, timeout: float = 5.0) -> list[dict]:
        """The choices the bot offered for an autocomplete interaction (``{"name", "value"}`` dicts)."""
        [resp] = await self.wait_for_response(rec.id, kind="callback", timeout=timeout)
        return resp["choices"]
