"""What each `newsbot` command does: `cmd_<name>(args, settings)` returns the exit status."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from newsbot.bot.answer.answers import printable, safe_url
from newsbot.bot.cli.render import (
    StreamPrinter,
    answer_json,
    digest_json,
    digest_markdown,
    hit_json,
    render_answer,
    render_digest,
)
from newsbot.bot.config import Settings
from newsbot.bot.console import build_first_index, progress_bar

EXIT_BUSY = 75  # `newsbot update` found another update running (EX_TEMPFAIL: try again later)


def _engine(settings: Settings):  # noqa: ANN202 - imported lazily: torch import is slow
    from newsbot.bot.engine import Engine

    return Engine(settings)


def _dates(args: argparse.Namespace) -> dict[str, Any]:
    from newsbot.bot.questions import parse_day

    try:
        return {"since": parse_day(args.since), "until": parse_day(args.until, end=True)}
    except ValueError as exc:
        raise SystemExit(f"error: {exc} (use YYYY-MM-DD)") from None


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    paths = args.paths or [str(p) for p in settings.corpus_paths()]
    print(f"Building the index at {engine.layout.root} from {', '.join(paths)} ...", file=sys.stderr)
    report = engine.build(
        paths, progress=progress_bar(), on_wait=_say_waiting, keep_fetched=not args.drop_fetched,
        keep_added=not args.drop_added, follow_links=args.follow_links,
    )
    _print_problems(report)
    for line in report.carry_lines():  # what else it kept, what it dropped and why
        print(f"  {line}", file=sys.stderr)
    print(f"Built {report.summary()}.")
    return 1 if report.documents == 0 else 0


def _say_waiting() -> None:
    print("waiting for another build/update to finish ...", file=sys.stderr)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    report = _engine(settings).add(
        args.sources, progress=progress_bar(), on_wait=_say_waiting, follow_links=args.follow_links
    )
    for original, outcome in report.outcomes.items():
        stored = report.stored_as.get(original, original)
        print(f"  {outcome:<9} {stored}" + (f" (from {original})" if stored != original else ""))
    _print_problems(report)
    done = report.added + report.updated + report.unchanged + len(report.duplicates)
    if report.errors and not done:  # the index was not touched: its figures would only mislead
        print(f"Nothing added: {len(report.errors)} failed (the index is unchanged).", file=sys.stderr)
        return 1
    print(f"Index: {report.summary()}.")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    report = _engine(settings).remove(args.ids, on_wait=_say_waiting)
    _print_problems(report)
    print(f"Removed {report.removed} article(s); the index has {report.documents} articles now.")
    return 0 if report.removed else 1


def _print_problems(report: Any) -> None:
    for error in report.errors:
        print(f"  failed: {error}", file=sys.stderr)
    for dup in report.duplicates:
        print(f"  duplicate: {dup}", file=sys.stderr)
    for note in report.notes:  # repaired text, renamed ids, recovered articles
        print(f"  note: {note}", file=sys.stderr)


def cmd_feeds_add(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.feed_updates import FeedProblem

    try:
        check = _engine(settings).add_feed(args.url)
    except FeedProblem as exc:
        print(f"error: not added: {exc}", file=sys.stderr)
        return 1
    print(str(check))
    return 0


def cmd_feeds_import(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.index.ingest.opml import OpmlError, parse_opml

    name = "standard input" if args.file == "-" else args.file
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        listed = parse_opml(data)
    except OSError as exc:
        print(f"error: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except OpmlError as exc:
        print(f"error: {name}: {exc}", file=sys.stderr)
        return 2
    if not listed:
        print(f"error: {name}: no feeds in it (no <outline> has an xmlUrl)", file=sys.stderr)
        return 2
    report = _engine(settings).import_feeds(listed, progress=progress_bar())
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for item in report.feeds:
            print(f"  {printable(item.line())}")
        print(f"Imported {name}: {report.summary()}." + (
            " Import it again later to retry the failed ones (the others are skipped)."
            if report.count("failed") else ""))
    return 1 if report.count("failed") else 0


def cmd_feeds_export(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.index.ingest.opml import write_opml

    feeds = _engine(settings).feeds()
    data = write_opml((f.url, f.title) for f in feeds)
    if args.file == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    target = os.path.abspath(args.file)
    partial = f"{target}.{os.getpid()}.partial"
    try:  # a new file renamed over the old one: an interrupted export leaves the old file whole
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        print(f"error: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"Exported {len(feeds)} feed(s) to {args.file}.")
    return 0


def cmd_feeds_list(args: argparse.Namespace, settings: Settings) -> int:
    feeds = _engine(settings).feeds()
    if args.json:
        print(json.dumps([f.__dict__ for f in feeds], indent=2))
        return 0
    if not feeds:
        print("No feeds yet: add one with `newsbot feeds add URL`.")
    for f in feeds:
        print(f"{f.url}\n    {f.title or '(no title yet)'}; {f.entries_indexed} articles indexed; "
              f"last poll {f.last_polled_at or 'never'}{': ' + f.last_status if f.last_status else ''}")
    return 0


def cmd_feeds_remove(args: argparse.Namespace, settings: Settings) -> int:
    if _engine(settings).remove_feed(args.url):
        print(f"Stopped following {args.url} (its articles stay in the index).")
        return 0
    print(f"error: {args.url} is not in the feed list (see `newsbot feeds list`).", file=sys.stderr)
    return 1


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    interactive = sys.stderr.isatty()
    engine = _engine(settings)
    report = engine.update_feeds(
        progress=progress_bar(interactive), on_wait=_say_waiting if interactive else None, wait=args.wait
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    elif report.busy:  # on a terminal and in cron mails alike: a stuck or overlapping update must be seen
        print(f"Update: {report.summary()}.", file=sys.stderr)
    elif not report.feeds:
        if interactive:
            print("No feeds yet: add one with `newsbot feeds add URL`.", file=sys.stderr)
    else:
        troubled = report.failed > 0
        for status in report.feeds:
            if interactive or status.status == "failed" or status.failed:
                print(status.line(), file=sys.stderr)
            for line in status.errors:
                print(f"    failed: {line}", file=sys.stderr)
        if interactive or troubled:
            print(f"Update: {report.summary()}.", file=sys.stderr if troubled and not interactive else sys.stdout)
    if report.busy:
        return EXIT_BUSY
    return 1 if report.all_failed else 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.questions import QuestionRejected
    from newsbot.index.hits import Filters

    engine = _engine(settings)
    build_first_index(engine)
    dates = _dates(args)
    printer = StreamPrinter(not args.json and sys.stdout.isatty())
    try:
        answer = engine.ask(
            args.question, use_llm=args.llm, on_text=printer,
            filters=Filters(tuple(args.source), dates["since"], dates["until"]),
        )
    except QuestionRejected as exc:
        print(str(exc), file=sys.stderr)
        return 2
    printer.erase()  # the streamed draft is replaced by the checked answer
    if args.json:
        print(json.dumps(answer_json(answer), indent=2, ensure_ascii=False))
    else:
        print(render_answer(answer))
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.questions import QuestionRejected

    engine = _engine(settings)
    engine.ensure_index(progress=progress_bar())
    try:
        hits = engine.search(args.query, sources=args.source, limit=args.limit, **_dates(args))
    except QuestionRejected as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([hit_json(h, rank) for rank, h in enumerate(hits, 1)], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("No matching passages.")
    for rank, hit in enumerate(hits, 1):
        print(f"{rank}. {printable(hit.header)}")
        if safe_url(hit.url):
            print(f"   {safe_url(hit.url)}")
        print(textwrap.indent(textwrap.fill(printable(hit.text), 100), "   "))
        print()
    return 0


def cmd_latest(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.questions import QuestionRejected

    engine = _engine(settings)
    engine.ensure_index(progress=progress_bar())
    try:
        docs = engine.latest(topic=args.topic or "", source=args.source or "", limit=args.limit)
    except QuestionRejected as exc:  # an outlet the index does not have: the message lists those it has
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        rows = [{"id": d.id, "title": d.title, "source": d.source, "url": d.url,
                 "published_at": d.published_at.isoformat() if d.published_at else None} for d in docs]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not docs:
        print("No matching articles.")
    for doc in docs:
        date = doc.published_at.date().isoformat() if doc.published_at else "undated"
        print(f"{date}  {printable(doc.title)} — {printable(doc.source) or '(no outlet)'}")
        print(f"            id {doc.id}" + (f"  {safe_url(doc.url)}" if safe_url(doc.url) else ""))
    return 0


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from newsbot.bot.questions import QuestionRejected, parse_period

    now = datetime.now(UTC)
    try:
        since, until = parse_period(args.since, now), parse_period(args.until, now, end=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if since and until and since > until:
        print("error: --since is after --until", file=sys.stderr)
        return 2
    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    engine = _engine(settings)
    build_first_index(engine)
    try:
        digest = engine.digest(topic=args.topic, sources=args.source, since=since, until=until, limit=args.limit)
    except QuestionRejected as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(digest_json(digest), indent=2, ensure_ascii=False))
    elif args.markdown:
        print(digest_markdown(digest), end="")
    else:
        print(render_digest(digest))
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    stats = _engine(settings).stats()
    if args.json:
        print(json.dumps(stats.__dict__, indent=2))
        return 0
    print(f"index:     {stats.index_dir} (generation {stats.generation}, updated {stats.updated_at})")
    print(f"model:     {stats.model}")
    print(f"articles:  {stats.documents}")
    print(f"passages:  {stats.chunks}")
    print(f"newest:    {stats.newest_article or '-'}")
    listing = ", ".join(f"{name or '(none)'} ({n})" for name, n in stats.sources)
    print(f"sources:   {listing}")
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.answer.answers import Turn
    from newsbot.bot.questions import QuestionRejected

    engine = _engine(settings)
    build_first_index(engine)
    interactive = sys.stdin.isatty()
    if isinstance(sys.stdin, io.TextIOWrapper):  # a line that is not UTF-8 must not end the conversation:
        sys.stdin.reconfigure(errors="surrogateescape")  # its bad bytes reach check_question, which repairs them
    if interactive:
        print("Ask about the indexed news. /new starts a new conversation, /quit leaves.")
    history: list[Turn] = []
    while True:
        try:
            question = input("you> " if interactive else "").strip()
        except EOFError:
            break
        if not question:
            continue
        if question in ("/quit", "/exit"):
            break
        if question == "/new":
            history = []
            print("(new conversation)")
            continue
        printer = StreamPrinter(interactive and sys.stdout.isatty())
        try:
            answer = engine.ask(question, history=history, use_llm=args.llm, on_text=printer)
        except QuestionRejected as exc:
            print(str(exc))
            continue
        printer.erase()
        if answer.standalone_question:
            print(f"(searched for: {answer.standalone_question})")
        print(render_answer(answer))
        print()
        history.append(Turn(answer.question, answer.text))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.discordbot.run import serve

    if not args.verbose:
        logging.getLogger("newsbot").setLevel(logging.INFO)
        logging.getLogger("discord").setLevel(logging.INFO)
        logging.getLogger().setLevel(logging.INFO)
    return serve(settings)


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import fields

    values = settings.masked()
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    config_file = os.environ.get("NEWSBOT_CONFIG", "newsbot.toml")
    print(f"# effective settings (env NEWSBOT_*, {config_file}, defaults); secrets masked")
    for f in fields(Settings):
        print(f"{f.name} = {values[f.name]!r}")
        print(f"    {f.metadata.get('help', '')}")
    return 0
