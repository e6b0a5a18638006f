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
from pathlib import Path

from newsbot.bot.cli.parser import make_parser
from newsbot.bot.config import Settings, default_index_dir, load_settings

OLD_DEFAULT = ".newsbot"  # the index folder's default before it moved to the user's data folder


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
    _note_old_index(settings)
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


def _note_old_index(settings: Settings) -> None:
    """Before the index moved to the user's data folder, it lived in ./.newsbot: when this folder holds
    one and the default folder does not, say how to keep using it (nothing is moved behind the user's back)."""
    here = Path(OLD_DEFAULT)
    if settings.index_dir == default_index_dir() and (here / "CURRENT").is_file() \
            and not (settings.index_path() / "CURRENT").exists():
        print(f"note: ./{OLD_DEFAULT} holds an index of an older newsbot, which now keeps its index in "
              f"{settings.index_path()}; to keep using ./{OLD_DEFAULT}, pass --index-dir {OLD_DEFAULT} or set "
              f"NEWSBOT_INDEX_DIR (or move the folder there).", file=sys.stderr)
