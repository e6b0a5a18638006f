"""The `newsbot` command line: commands, flags and their help, which is the reference documentation."""

from __future__ import annotations

import argparse
from typing import Any

from newsbot.bot.cli.commands import (
    cmd_add,
    cmd_ask,
    cmd_build,
    cmd_chat,
    cmd_config,
    cmd_digest,
    cmd_feeds_add,
    cmd_feeds_export,
    cmd_feeds_import,
    cmd_feeds_list,
    cmd_feeds_remove,
    cmd_latest,
    cmd_remove,
    cmd_search,
    cmd_serve,
    cmd_stats,
    cmd_update,
)

EPILOG = """\
examples:
  newsbot build                              index the sample articles that come with newsbot
  newsbot build ~/news/ articles.jsonl       index your own files and folders
  newsbot add today.md https://example.com/a add articles to the live index (files, folders, URLs)
  newsbot feeds add https://example.com/rss  follow a feed; `newsbot update` indexes its new entries
  newsbot feeds import subscriptions.opml    follow every feed a feed reader exported
  newsbot ask "Why is Xiaomi dropping Leica?"
  newsbot search "Leica" --source Weibo --json
  newsbot digest --since 7d --topic "chips"  the week's top stories, each line cited
  newsbot stats

settings: NEWSBOT_* environment variables or newsbot.toml; see `newsbot config`.
"""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot",
        description="Answer questions about industry news with checkable source citations.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--index-dir", metavar="DIR",
        help="index folder (default: $NEWSBOT_INDEX_DIR, else the user's data folder, ~/.local/share/newsbot on Linux)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("build", help="(re)build the index from article files", description=(
        "Index articles from files and folders into a new generation, then switch to it atomically; "
        "the old index keeps answering until the new one is complete. Supported: .md (YAML front "
        "matter), .txt, .html, .json, .jsonl (MultiHop-RAG schema). Unchanged passages reuse cached vectors."
    ))
    p.add_argument("paths", nargs="*", help="files or folders (default: the corpus setting: the sample articles)")
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

    p = sub.add_parser("latest", help="the newest indexed articles", description=(
        "The newest articles, newest first, optionally about a topic (words found in their text) and from "
        "one outlet; an outlet the index does not have is refused with the list of those it has."
    ))
    p.add_argument("--topic", metavar="WORDS", help="only articles with a passage containing any of these words")
    p.add_argument("--source", metavar="OUTLET", help="only articles from this outlet (case-insensitive)")
    p.add_argument("--limit", type=int, default=10, help="number of articles (default 10)")
    p.add_argument("--json", action="store_true", help="print the articles as JSON")
    p.set_defaults(func=cmd_latest)

    p = sub.add_parser("digest", help="the period's top stories, each with a cited lead sentence", description=(
        "Group the period's articles into stories (copies merged at indexing, plus articles about the same "
        "event: close in meaning, sharing names, published within days of each other), rank them by how "
        "many outlets ran them, then by recency, and show each with the sentence that states it, cited to "
        "every article that says it ([1][2]), and the story's links. Periods are by publication date."
    ))
    p.add_argument("--topic", metavar="TEXT", default="",
                   help="only articles about this (hybrid search, as `search` finds them)")
    p.add_argument("--since", metavar="PERIOD", default="7d",
                   help="from 1d, 7d, 12h, 2w back from now, or a date YYYY-MM-DD (default 7d)")
    p.add_argument("--until", metavar="PERIOD", default=None,
                   help="up to this date YYYY-MM-DD (inclusive) or period back from now (default: now)")
    p.add_argument("--source", action="append", default=[], metavar="OUTLET",
                   help="only articles from this outlet (repeatable; case-insensitive)")
    p.add_argument("--limit", type=int, default=10, help="number of stories (default 10, at most 25)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the digest as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print the digest as Markdown")
    p.set_defaults(func=cmd_digest)

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
        "indexed by the next `newsbot update`. The URL may be a site's page instead: the feed it links "
        "(<link rel=\"alternate\" type=\"application/rss+xml\">, or Atom) is found and followed; if it "
        "links several, the first is taken and the others are named."
    ))
    fp.add_argument("url", help="the feed's address, or a web page that links its feed")
    fp.set_defaults(func=cmd_feeds_add)
    fp = fsub.add_parser("list", help="the feeds, when each was last polled and how it went")
    fp.add_argument("--json", action="store_true")
    fp.set_defaults(func=cmd_feeds_list)
    fp = fsub.add_parser("remove", help="stop following a feed (its articles stay indexed)")
    fp.add_argument("url")
    fp.set_defaults(func=cmd_feeds_remove)
    fp = fsub.add_parser("import", help="follow every feed of an OPML file (a feed reader's export)", description=(
        "Follow every feed an OPML file lists (each <outline> with an xmlUrl, nested category outlines "
        "included), each checked by fetching it once, as `feeds add` does. Feeds already followed, or "
        "listed twice, are skipped; one that fails is reported and the others are added all the same. "
        "Prints one line per feed (added / skipped / failed and why). Exit status 0 when no feed failed, "
        "1 when some did (import the file again later to retry them: the others are skipped), "
        "2 when the file cannot be read or is not OPML."
    ))
    fp.add_argument("file", metavar="FILE", help="an .opml file, or - for standard input")
    fp.add_argument("--json", action="store_true", help="print the report as JSON")
    fp.set_defaults(func=cmd_feeds_import)
    fp = fsub.add_parser("export", help="write the followed feeds as an OPML file (for any feed reader)", description=(
        "Write the feeds this index follows as OPML 2.0, which feed readers import. Importing the "
        "file again adds nothing new. An existing FILE is replaced at once, never left half-written."
    ))
    fp.add_argument("file", metavar="FILE", help="the .opml file to write, or - for standard output")
    fp.set_defaults(func=cmd_feeds_export)
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
                   help="only articles from this outlet (repeatable; case-insensitive; one the index does not "
                        "have is refused with the list of those it has)")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="only articles published on or before DATE (YYYY-MM-DD)")
