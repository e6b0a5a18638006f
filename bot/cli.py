"""`newsbot`: build a news index, ask it questions, search it, run the Discord bot.

Every command reads settings from NEWSBOT_* environment variables and an optional newsbot.toml
(`newsbot config` shows them); flags override both.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from newsbot.bot.answer.answers import Answer, printable, safe_url
from newsbot.bot.config import Settings, load_settings
from newsbot.index.hits import Hit

EPILOG = """\
examples:
  newsbot build                              index docs_corpus/ (the bundled sample articles)
  newsbot build ~/news/ articles.jsonl       index your own files and folders
  newsbot add today.md https://example.com/a add articles to the live index (files, folders, URLs)
  newsbot feeds add https://example.com/rss  follow a feed; `newsbot update` indexes its new entries
  newsbot ask "Why is Xiaomi dropping Leica?"
  newsbot search "Leica" --source Weibo --json
  newsbot stats

settings: NEWSBOT_* environment variables or newsbot.toml; see `newsbot config`.
"""


EXIT_BUSY = 75  # `newsbot update` found another update running (EX_TEMPFAIL: try again later)


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

    from newsbot.index.embedding.base import ModelNotFound
    from newsbot.index.store.base import REBUILD_HINT, IndexProblem
    from newsbot.index.store.sql import DatabaseUnreadable

    try:
        settings = load_settings({"index_dir": args.index_dir})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except (IndexProblem, ModelNotFound, DatabaseUnreadable) as exc:
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


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot",
        description="Answer questions about industry news with checkable source citations.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--index-dir", metavar="DIR", help="index folder (default: $NEWSBOT_INDEX_DIR or ./.newsbot)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("build", help="(re)build the index from article files", description=(
        "Index articles from files and folders into a new generation, then switch to it atomically; "
        "the old index keeps answering until the new one is complete. Supported: .md (YAML front "
        "matter), .txt, .html, .json, .jsonl (MultiHop-RAG schema). Unchanged passages reuse cached vectors."
    ))
    p.add_argument("paths", nargs="*", help="files or folders (default: the corpus setting, docs_corpus/)")
    p.add_argument("--drop-fetched", action="store_true", help=(
        "do not carry over the articles added from URLs and feeds (by default a rebuild keeps them, "
        "since no file holds them)"))
    p.add_argument("--drop-added", action="store_true", help=(
        "do not carry over the articles added from files with `newsbot add` (by default a rebuild keeps "
        "them, re-read from their files, or from their stored text when a file is gone)"))
    _add_links_arg(p)
    p.set_defaults(func=cmd_build)

    _add_freshness_parsers(sub)

    p = sub.add_parser("ask", help="answer a question with cited sources", description=(
        "Answer from the indexed news, citing each sentence's source as [n]. Builds the index first "
        "if there is none. Says so plainly when the index holds nothing relevant."
    ))
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    llm = p.add_mutually_exclusive_group()
    llm.add_argument("--llm", dest="llm", action="store_true", default=None,
                     help="compose the answer with the configured language model")
    llm.add_argument("--no-llm", dest="llm", action="store_false",
                     help="quote sentences from the articles even if a model is configured")
    _add_filter_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("search", help="ranked passages with their sources", description=(
        "Hybrid search (embeddings + bm25 keywords, fused) over the indexed passages."
    ))
    p.add_argument("query")
    _add_filter_args(p)
    p.add_argument("--limit", type=int, default=10, help="number of passages (default 10)")
    p.add_argument("--json", action="store_true", help="print hits as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("stats", help="what the index holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("serve", help="run the Discord bot (needs DISCORD_TOKEN)", description=(
        "Connect to Discord and answer @mentions, DMs, thread follow-ups and slash commands. The token "
        "comes from DISCORD_TOKEN (environment or .env). NEWSBOT_DISCORD_API_BASE points the bot at "
        "another Discord API, such as the local stand-in the tests use."
    ))
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("chat", help="an interactive conversation in the terminal", description=(
        "Ask questions one after another; follow-ups use the conversation (\"what about Huawei?\"). "
        "Works offline with quoted answers, or with the configured language model. Type /new to start "
        "over, /quit (or Ctrl-D) to leave."
    ))
    llm = p.add_mutually_exclusive_group()
    llm.add_argument("--llm", dest="llm", action="store_true", default=None,
                     help="compose answers with the configured language model")
    llm.add_argument("--no-llm", dest="llm", action="store_false", help="quote sentences from the articles")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("config", help="print the effective settings (secrets masked)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)
    return parser


def _add_freshness_parsers(sub: Any) -> None:
    """The commands that keep the index fresh: add, remove, feeds, update."""
    p = sub.add_parser("add", help="add or update articles in the live index (files, folders, URLs)", description=(
        "Add articles to the live index without a rebuild; the bot keeps answering meanwhile and sees "
        "them as soon as the update commits (all of them at once, or none if interrupted). Files and "
        "folders are read like `build` reads them; http(s) URLs are fetched (timeouts, size cap and "
        "address checks from the fetch_* settings) and their main text, title, date, author and outlet "
        "extracted. An article whose id or URL is already indexed replaces it if its text changed; a copy "
        "or near-copy of a stored story is not indexed again, its outlet is recorded on the stored one. "
        "A source that fails is reported and the rest goes on. Exit status 1 if nothing could be added."
    ))
    p.add_argument("sources", nargs="+", metavar="PATH|URL", help="article files, folders, or http(s) URLs")
    _add_links_arg(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="remove articles from the live index", description=(
        "Remove articles by id (as `search --json` shows it) or by URL, atomically: they disappear from "
        "both the embedding and the keyword side. Exit status 1 if none was found."
    ))
    p.add_argument("ids", nargs="+", metavar="ID|URL")
    p.set_defaults(func=cmd_remove)

    feeds = sub.add_parser("feeds", help="the RSS/Atom feeds `update` polls", description=(
        "Manage the feeds that `newsbot update` (and the Discord bot every feed_poll_minutes) polls."
    ))
    fsub = feeds.add_subparsers(title="feed commands", metavar="ACTION")
    fp = fsub.add_parser("add", help="follow a feed (checked by fetching it once)", description=(
        "Fetch the feed once to check it is RSS, Atom or RDF, then register it. Its entries are "
        "indexed by the next `newsbot update`."
    ))
    fp.add_argument("url")
    fp.set_defaults(func=cmd_feeds_add)
    fp = fsub.add_parser("list", help="the feeds, when each was last polled and how it went")
    fp.add_argument("--json", action="store_true")
    fp.set_defaults(func=cmd_feeds_list)
    fp = fsub.add_parser("remove", help="stop following a feed (its articles stay indexed)")
    fp.add_argument("url")
    fp.set_defaults(func=cmd_feeds_remove)
    feeds.set_defaults(func=lambda args, settings: feeds.print_help() or 0)

    p = sub.add_parser("update", help="poll every feed once and index new entries (cron-friendly)", description=(
        "Poll every registered feed once. Unchanged feeds cost one request (ETag / Last-Modified, "
        "answered 304); each new or changed entry's article page is fetched (the entry's own text is "
        "used when the page fails) and indexed in one atomic update. On a terminal it shows progress "
        "and the counts of new/updated/skipped/failed entries; otherwise (cron) it prints nothing "
        "unless something failed. Exit status 1 if every feed failed, 75 if another update was running "
        "(it says which process, and since when; one that was killed is noticed and replaced at once). "
        "Example crontab line: */30 * * * * cd /srv/newsbot && .venv/bin/newsbot update"
    ))
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--wait", action="store_true", help=(
        "if another newsbot process (or bot replica) is polling the feeds right now, wait for it and then "
        "poll again; by default this run skips, since the feeds are being refreshed anyway"))
    p.set_defaults(func=cmd_update)


def _add_links_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow-links", action="store_true", help=(
        "also read symbolic links inside a folder that lead out of it (by default they are skipped and "
        "reported, so a link to /etc/passwd or a private folder is never indexed)"))


def _add_filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", default=[], metavar="OUTLET",
                   help="only articles from this outlet (repeatable; case-insensitive)")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="only articles published on or before DATE (YYYY-MM-DD)")


# ---------------------------------------------------------------------------------------- progress


def progress_bar(enabled: bool | None = None) -> Callable[[str, int, int], None]:
    """A progress callback drawing one tqdm bar per stage on a terminal (stderr), silent otherwise."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return lambda stage, done, total: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>9}", unit=" items", leave=True, file=sys.stderr)
        if total != bar.total:
            bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


# ---------------------------------------------------------------------------------------- commands


def _engine(settings: Settings):  # noqa: ANN202 - imported lazily: torch import is slow
    from newsbot.bot.engine import Engine

    return Engine(settings)


def _dates(args: argparse.Namespace) -> dict[str, Any]:
    from newsbot.bot.engine import parse_day

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
    print(f"Index: {report.summary()}.")
    done = report.added + report.updated + report.unchanged + len(report.duplicates)
    return 1 if report.errors and not done else 0


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
    from newsbot.bot.engine import QuestionRejected
    from newsbot.index.hits import Filters

    engine = _engine(settings)
    if not engine.has_index():
        print("No index yet: building one from the bundled articles first ...", file=sys.stderr)
        report = engine.ensure_index(progress=progress_bar())
        if report:
            print(f"Built {report.summary()}.", file=sys.stderr)
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
    from newsbot.bot.engine import QuestionRejected

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


class StreamPrinter:
    """Prints a model's answer as it streams, then erases it so the checked answer can replace it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = ""

    def __call__(self, text: str) -> None:
        if self.enabled and text.startswith(self.shown):
            sys.stdout.write(text[len(self.shown):])
            sys.stdout.flush()
            self.shown = text

    def erase(self) -> None:
        if not self.enabled or not self.shown:
            return
        import shutil

        cols = max(20, shutil.get_terminal_size().columns)
        rows = sum(max(1, -(-len(line) // cols)) for line in self.shown.split("\n"))
        sys.stdout.write(f"\r\033[{rows - 1}F\033[J" if rows > 1 else "\r\033[J")
        sys.stdout.flush()
        self.shown = ""


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from newsbot.bot.answer.answers import Turn
    from newsbot.bot.engine import QuestionRejected

    engine = _engine(settings)
    if not engine.has_index():
        print("No index yet: building one from the bundled articles first ...", file=sys.stderr)
        engine.ensure_index(progress=progress_bar())
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


# ---------------------------------------------------------------------------------------- rendering


def render_answer(answer: Answer) -> str:
    """The answer for a terminal: lines wrapped at 100 columns, markdown bold markers dropped, article text
    without control characters (no escape sequences from an article reach the terminal), and only http(s)
    addresses, escaped (`safe_url`)."""
    text = printable(answer.text).replace("**", "")
    lines = [textwrap.fill(line, 100, subsequent_indent="  " if line.startswith("•") else "") for line in text.splitlines()]
    if answer.related:
        lines += ["", "Closest articles:"]
        for h in answer.related:
            url = safe_url(h.url)
            lines.append(f"- {printable(h.header)}" + (f"  {url}" if url else ""))
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            lines.append(f"[{c.number}] {printable(c.label())}")
            if safe_url(c.url):
                lines.append(f"    {safe_url(c.url)}")
    for note in answer.notes:
        lines += ["", f"({printable(note)})"]
    return "\n".join(lines)


def hit_json(hit: Hit, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "doc_id": hit.doc_id,
        "chunk_id": hit.chunk_id,
        "title": hit.title,
        "source": hit.source,
        "url": hit.url,
        "published_at": hit.published_at.isoformat() if hit.published_at else None,
        "score": round(hit.score, 6),
        "dense_score": None if hit.dense_score is None else round(hit.dense_score, 4),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 4),
        "span": [hit.start, hit.end],
        "text": hit.text,
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or None,
        "found": answer.found,
        "mode": answer.mode,
        "text": answer.text,
        "citations": [
            {
                "number": c.number,
                "doc_id": c.doc_id,
                "title": c.title,
                "source": c.source,
                "published_at": c.published_at.isoformat() if c.published_at else None,
                "url": c.url,
                "passages": [hit_json(h, i) for i, h in enumerate(c.hits, 1)],
            }
            for c in answer.citations
        ],
        "notes": list(answer.notes),
        "related": [
            {"doc_id": h.doc_id, "title": h.title, "source": h.source, "url": h.url,
             "published_at": h.published_at.isoformat() if h.published_at else None}
            for h in answer.related
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
