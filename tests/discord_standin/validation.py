"""What real Discord refuses, checked on what discord.py sends: message bodies (content, embeds,
components, allowed mentions), application command definitions and thread names. A failed check is
Discord's own error (400 50035 ``Invalid Form Body`` with ``errors`` by field, or 50006 for an empty
message), so the bot sees what it would see in production."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from .protocol import FLAG_COMPONENTS_V2, FLAG_LOADING, OPT_GROUP, OPT_SUB, ApiError, form_error

log = logging.getLogger("discord_standin")

COMMAND_NAME = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")

Problems = list[tuple[tuple, str, str]]  # (field path, Discord's error code, message)


def max_len(items: Problems, path: tuple, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        items.append((path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."))


def walk_components(components: Iterable[dict]) -> Iterable[dict]:
    """Every component, nested ones (action rows, v2 containers, accessories) included."""
    for comp in components or ():
        if not isinstance(comp, dict):
            continue
        yield comp
        yield from walk_components(comp.get("components") or ())
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), dict):
                yield from walk_components([comp[key]])


def validate_message(payload: dict, *, create: bool) -> None:
    """Raise Discord's error for a message create (``create``) or edit body it would refuse."""
    items: Problems = []
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        items.append((("content",), "STRING_TYPE_CONVERT", "Could not interpret value as string."))
    else:
        max_len(items, ("content",), content, 2000)
    _check_embeds(items, payload.get("embeds"))
    _check_components(items, payload.get("components"), int(payload.get("flags") or 0))
    allowed = payload.get("allowed_mentions")
    if isinstance(allowed, dict):
        parse = allowed.get("parse") or []
        for key in ("users", "roles"):
            if key in parse and allowed.get(key):
                items.append(
                    (
                        ("allowed_mentions",),
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        f'parse:["{key}"] and {key}: [ids...] are mutually exclusive.',
                    )
                )
    if items:
        raise form_error(items)
    if create:
        empty = (
            not (payload.get("content") or "")
            and not payload.get("embeds")
            and not payload.get("components")
            and not payload.get("sticker_ids")
            and not payload.get("poll")
        )
        if empty:
            raise ApiError(400, 50006, "Cannot send an empty message")
    if payload.get("poll"):
        log.error("stand-in: polls are not modelled; the poll is dropped")


def _check_embeds(items: Problems, embeds: Any) -> None:
    if embeds is None:
        return
    if not isinstance(embeds, list):
        items.append((("embeds",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"))
        embeds = []
    if len(embeds) > 10:
        items.append((("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."))
    total = 0
    for i, e in enumerate(embeds):
        p = ("embeds", i)
        max_len(items, (*p, "title"), e.get("title"), 256)
        max_len(items, (*p, "description"), e.get("description"), 4096)
        max_len(items, (*p, "footer", "text"), (e.get("footer") or {}).get("text"), 2048)
        max_len(items, (*p, "author", "name"), (e.get("author") or {}).get("name"), 256)
        fields = e.get("fields") or []
        if len(fields) > 25:
            items.append(((*p, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
        for j, f in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                if not f.get(key):
                    items.append(((*p, "fields", j, key), "BASE_TYPE_REQUIRED", "This field is required"))
                max_len(items, (*p, "fields", j, key), f.get(key), limit)
            total += len(f.get("name") or "") + len(f.get("value") or "")
        for text in (
            e.get("title"),
            e.get("description"),
            (e.get("footer") or {}).get("text"),
            (e.get("author") or {}).get("name"),
        ):
            total += len(text or "")
    if total > 6000:
        items.append((("embeds",), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"))


def _check_components(items: Problems, components: Any, flags: int) -> None:
    if not components:
        return
    v2 = flags & FLAG_COMPONENTS_V2
    seen: set[str] = set()
    if not v2 and len(components) > 5:
        items.append((("components",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
    for i, row in enumerate(components):
        if v2:
            continue
        if row.get("type") != 1:
            items.append((("components", i, "type"), "UNION_TYPE_CHOICES", "Value must be one of {1}."))
            continue
        inner = row.get("components") or []
        if not inner or len(inner) > 5:
            items.append(
                (("components", i, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
            )
        if any(c.get("type") != 2 for c in inner) and len(inner) > 1:
            items.append(
                (
                    ("components", i, "components"),
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            )
    for comp in walk_components(components):
        cid = comp.get("custom_id")
        if comp.get("type") == 2:
            max_len(items, ("components", "label"), comp.get("label"), 80)
            if comp.get("style") not in (5, 6) and not cid:
                items.append((("components", "custom_id"), "BASE_TYPE_REQUIRED", "This field is required"))
        if cid is not None:
            max_len(items, ("components", "custom_id"), cid, 100)
            if cid in seen:
                items.append(
                    (("components",), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
                )
            seen.add(cid)
    if v2 and sum(1 for _ in walk_components(components)) > 40:
        items.append((("components",), "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length."))


def check_not_empty(msg: dict) -> None:
    """After an edit: a message must keep some content (a deferred "thinking" message may be empty)."""
    if not (msg["content"] or msg["embeds"] or msg["components"]) and not msg["flags"] & FLAG_LOADING:
        raise ApiError(400, 50006, "Cannot send an empty message")


def validate_commands(body: Any) -> None:
    """A bulk overwrite (``PUT .../commands``): a list of at most 100 valid, uniquely named commands."""
    if not isinstance(body, list):
        raise form_error([((), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")])
    items: Problems = []
    seen = set()
    for i, c in enumerate(body):
        _check_command(c, i, items)
        key = (c.get("name"), c.get("type", 1))
        if key in seen:
            items.append(
                ((i, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
            )
        seen.add(key)
    if len(body) > 100:
        items.append(((), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."))
    if items:
        raise form_error(items)


def _check_command(c: dict, index: int, items: Problems) -> None:
    p = (index,)
    ctype = c.get("type", 1)
    name = c.get("name") or ""
    if not COMMAND_NAME.match(name) or (ctype == 1 and name != name.lower()):
        items.append(((*p, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"))
    desc = c.get("description") or ""
    if ctype == 1 and not 1 <= len(desc) <= 100:
        items.append(((*p, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."))
    _check_options(c.get("options") or [], (*p, "options"), items)


def _check_options(options: list, path: tuple, items: Problems) -> None:
    if len(options) > 25:
        items.append(((*path,), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
    seen_optional = False
    names = set()
    for i, o in enumerate(options):
        op = (*path, i)
        oname = o.get("name") or ""
        if not COMMAND_NAME.match(oname) or oname != oname.lower():
            items.append(((*op, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"))
        if oname in names:
            items.append(
                ((*op, "name"), "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
            )
        names.add(oname)
        if not 1 <= len(o.get("description") or "") <= 100:
            items.append(((*op, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."))
        if o.get("type") in (OPT_SUB, OPT_GROUP):
            _check_options(o.get("options") or [], (*op, "options"), items)
            continue
        if o.get("required"):
            if seen_optional:
                items.append(
                    (
                        (*op, "required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
                )
        else:
            seen_optional = True
        if len(o.get("choices") or []) > 25:
            items.append(((*op, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))


def thread_name_check(body: dict) -> tuple[str, int]:
    """The ``name`` and ``auto_archive_duration`` of a thread create body, as Discord accepts them."""
    name = body.get("name") or ""
    if not 1 <= len(name) <= 100:
        raise form_error([(("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")])
    auto = int(body.get("auto_archive_duration") or 1440)
    if auto not in (60, 1440, 4320, 10080):
        raise form_error(
            [(("auto_archive_duration",), "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}.")]
        )
    return name, auto


def validate_choices(data: Any, option: dict | None) -> list[dict]:
    """The choices of an autocomplete result (callback type 8) as Discord accepts them: at most 25, each a
    name of 1-100 characters and a value of the option's type (a string of at most 100 characters)."""
    items: Problems = []
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        raise form_error([(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")])
    if len(choices) > 25:
        items.append((("data", "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
    otype = (option or {}).get("type", 3)
    for i, choice in enumerate(choices):
        path = ("data", "choices", i)
        name = choice.get("name") if isinstance(choice, dict) else None
        value = choice.get("value") if isinstance(choice, dict) else None
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            items.append(((*path, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."))
        if otype == 3:
            if not isinstance(value, str):
                items.append(((*path, "value"), "STRING_TYPE_CONVERT", "Could not interpret value as string."))
            else:
                max_len(items, (*path, "value"), value, 100)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            items.append(((*path, "value"), "NUMBER_TYPE_COERCE", "Value is not a valid number."))
    if items:
        raise form_error(items)
    return [dict(c) for c in choices]
