"""`newsbot`: build a news index, ask it questions, search it, run the Discord bot.

Every command reads settings from NEWSBOT_* environment variables and an optional newsbot.toml
(`newsbot config` shows them); flags override both.

    parser.py    the commands and their flags (`newsbot --help`, `newsbot COMMAND --help`)
    commands.py  what each command does
    render.py    answers and hits for a terminal, and as JSON
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from newsbot.bot.cli.parser import make_parser
from newsbot.bot.config import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    import sqlite3

    from newsbot.bot.engine import REBUILD_HINT, REPORTED_ERRORS

    try:
        settings = load_settings({"index_dir": args.index_dir})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except REPORTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # damage found past opening (a malformed page): same advice, one line
        print(f"error: the index in {settings.index_path()} is unreadable ({exc}). {REBUILD_HINT}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `newsbot search … --json | head`: the reader left, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
