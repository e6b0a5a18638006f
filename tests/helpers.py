"""Plain helpers shared by the tests (fixtures are in conftest.py and the *_fixtures.py plugins it
registers): paths and settings, articles on disk, the texts several tests index, feeds and pages for
`LocalServer`, `newsbot` processes paused or killed mid-way, a damaged index, and a `NewsBot` for the
Discord stand-in. Import them as `from tests.helpers import ...`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsbot.bot.config import Settings, load_settings
from newsbot.index.ingest.fetch import FetchPolicy

if TYPE_CHECKING:  # imported where used: the engine and discord.py take a second to import
    from newsbot.bot.discordbot.bot import NewsBot
    from newsbot.bot.engine import Engine
    from tests.discord_standin import DiscordStandIn

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "docs_corpus"
MULTIHOP = REPO.parent / "shared" / "data" / "multihop_rag"


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: defaults only (no env, no newsbot.toml), plus `overrides`."""
    return load_settings({"index_dir": str(index_dir), "corpus": str(CORPUS), **overrides}, env={})


def write_article(folder: Path, name: str, *, title: str, body: str, source: str = "Test Wire",
                  date: str = "2025-01-15", url: str = "", extra: str = "") -> Path:
    """Write a Markdown article with front matter and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    front = f'title: "{title}"\nsource: "{source}"\npublished_at: {date}\nurl: "{url}"\n{extra}'
    path.write_text(f"---\n{front}\n---\n{textwrap.dedent(body).strip()}\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ shared texts
STORY = """
Acme Robotics said on Friday it had raised 120 million dollars in a Series C funding round led by
Example Ventures, valuing the warehouse automation company at about 1.4 billion dollars.

The Boston-based firm, founded in 2016 by two former university researchers, makes mobile robots that
pick items from shelves and carry them to packing stations. Its machines are used by grocery chains,
fashion retailers and third-party logistics companies in North America and Europe.

Chief executive Maria Lopez said the new money would pay for a second factory in Leipzig, Germany, and
allow the company to double its engineering staff over the next eighteen months. The Leipzig plant is
expected to start production late next year and to employ about 400 people when it is fully running.

Demand for picking robots has grown as retailers struggle to hire and keep warehouse workers, and Acme
said its order book had tripled since the start of last year. The company expects revenue of roughly
90 million dollars this year, up from 35 million dollars last year, although it is not yet profitable.

Existing investors including Northwind Capital and Harbor Growth Partners also took part in the round.
Example Ventures partner David Chen will join the board of directors, the company said.

Analysts cautioned that competition from larger rivals remains fierce and that hardware margins are
thin. Several well-funded start-ups and established industrial groups are chasing the same customers,
and some retailers have delayed automation projects as consumer spending slows.

Still, the size of the round suggests investors continue to back automation despite a cooler funding
market for technology companies. Venture funding for robotics start-ups fell by about a fifth last year,
according to data from industry researchers, but late-stage deals for companies with strong revenue
growth have held up better than the market as a whole.

Lopez said the company had no plans to go public in the near term and would focus on expanding in
Europe, where labour shortages in logistics are particularly acute. Acme also plans to open a sales
office in Tokyo next year to serve customers in Japan and South Korea.

The company's largest customer, a European grocery chain, has installed Acme robots in eleven of its
distribution centres and plans to add six more by the end of next year. Acme says a typical site sees
the cost of picking an order fall by around a third within twelve months of installation, although
independent figures are hard to come by and results vary with the size and layout of each warehouse.

Acme sells most of its robots under a subscription model, charging customers a monthly fee per machine
that includes software updates, maintenance and spare parts. Lopez said the model made automation
affordable for mid-sized retailers that could not pay several million dollars up front, and that more
than eighty percent of revenue now came from recurring contracts.

The funding comes weeks after a rival, Beta Logistics Systems, cut a fifth of its staff and said it
would concentrate on a smaller number of large customers. Industry executives say the sector is
consolidating after a boom during the pandemic, when online orders surged and warehouse operators
rushed to add capacity.

Acme was advised on the deal by a group of investment banks and law firms that it did not name. The
round is expected to close by the end of the month, subject to regulatory approvals in Germany.
"""

SHORT_STORY = STORY[: STORY.index("The company's largest customer")]  # ~400 words

# The same wire story as another outlet runs it: its own header and footer, two sentences edited, one
# sentence cut, American spelling in one place. (The headline differs too, but bodies are compared.)
HEADER = "By Staff Writer and wire reports | March 14, 2025 | 4 min read\n\n"
FOOTER = (
    "\n\nCopyright 2025 Example Wire. All rights reserved. This material may not be published, broadcast,"
    " rewritten or redistributed. Sign up for our morning newsletter."
)


def syndicate(story: str) -> str:
    """`story` as another outlet runs it (see above)."""
    edited = (
        story.replace(
            "Chief executive Maria Lopez said the new money would pay for",
            "Maria Lopez, the chief executive, said the fresh funds would be spent on",
        )
        .replace("The company expects revenue of roughly", "The company forecasts revenue of about")
        .replace(
            "Example Ventures partner David Chen will join the board of directors, the company said.", ""
        )
        .replace("labour shortages", "labor shortages")
    )
    assert edited.count("\n") == story.count("\n") and edited != story
    return HEADER + edited + FOOTER


# A different story on the same topic (same company, same round), written independently.
SAME_TOPIC = """
Warehouse robot maker Acme Robotics has closed a 120 million dollar Series C, with Example Ventures
leading and Northwind Capital and Harbor Growth Partners returning. The deal puts the company's value at
roughly 1.4 billion dollars, according to a person familiar with the matter.

In an interview, Lopez described the Leipzig factory as the centrepiece of a push into Europe. She
said customers there had been asking for faster delivery of robots and local service teams, and that
building in Germany would cut shipping times from months to weeks.

Acme's robots compete with products from much larger automation companies, and several customers
have tested rival systems before choosing Acme's, Lopez said. She declined to comment on margins but
said the firm would reach profitability within two years.

Investors have grown more selective about hardware start-ups, which need large amounts of capital
before they earn money. Those that do raise large rounds tend to show fast-growing sales to big
retailers, as Acme does.
"""


QUBIT = """
Zeta Quantum unveiled a photonic processor called Glimmerstone on Monday, saying the chip keeps its
qubits coherent at room temperature for ninety minutes, far longer than rival designs manage.

The company said Glimmerstone would ship to research laboratories in the autumn and to cloud customers
next year, priced per hour of processor time rather than sold outright.
"""


TIDEWELL = """Tidewell Energy switched on the largest tidal turbine array in Europe off the coast of Scotland
on Wednesday, with sixteen turbines feeding the grid.

The operator said the array would power about sixty thousand homes and that a second phase was planned."""


HARBOR = ("The port authority ordered forty battery-electric cranes for its container terminals, replacing "
          "diesel machines that date from the nineteen-nineties; deliveries start in March.")
ORCHARD = ("Orchard Silicon opened a wafer plant in Dresden that will make power chips for heat pumps and "
           "electric buses, hiring nine hundred engineers over three years.")
LANTERN = ("Lantern Mobile cut the price of its folding phone by a third in Brazil after sales of the first "
           "model disappointed, the company told distributors on Friday.")


# ------------------------------------------------------------------------- pages and feeds to serve
LOCAL = FetchPolicy(timeout=2.0, allowed_networks=("127.0.0.1/32",))  # fetch from LocalServer only
RSS_TYPE = "application/rss+xml; charset=utf-8"


def page(title: str, text: str, *, site: str = "", date: str = "2025-03-14T09:30:00Z") -> str:
    """An article page: navigation, a headline, paragraphs (blank-line separated in `text`), a footer."""
    paragraphs = "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n") if p.strip())
    site_meta = f'<meta property="og:site_name" content="{site}">' if site else ""
    return (
        f"<html><head><title>{title}</title>{site_meta}"
        f'<meta property="article:published_time" content="{date}"></head><body>'
        '<nav><a href="/">Home</a> <a href="/tech">Tech</a></nav>'
        f"<article><h1>{title}</h1>{paragraphs}</article><footer>Contact us</footer></body></html>"
    )


def rss(title: str, items: list[tuple[str, str, str, str]]) -> bytes:
    """RSS 2.0 with (guid, title, link, content) items."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid isPermaLink=\"false\">{g}</guid>"
        f"<pubDate>Fri, 14 Mar 2025 09:00:00 GMT</pubDate><description>{t}.</description>"
        f"<content:encoded><![CDATA[<p>{content}</p>]]></content:encoded></item>"
        for g, t, link, content in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>{title}</title><link>/</link><description>news</description>{body}</channel></rss>"
    ).encode()


# ------------------------------------------------------------------------- processes and the index
def spawn(args: list[str], pause: str = "", resume: Path | None = None,
          env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -m bot.cli ARGS`; with `pause`, return once it reports being paused there."""
    env = {**os.environ, **(env_extra or {})}
    if pause:
        env["NEWSBOT_FAULT_PAUSE"] = pause
    if resume is not None:
        env["NEWSBOT_FAULT_RESUME"] = str(resume)
    proc = subprocess.Popen([sys.executable, "-m", "newsbot.bot.cli", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if pause:
        wait_for_line(proc, f"paused at {pause}")
    return proc


def wait_for_line(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if text in line:
            return
    proc.wait()
    raise AssertionError(f"process ended (rc={proc.returncode}) before printing {text!r}")


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL, as a power cut or the OOM killer would, and reap the process."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def small_index(article_writer, tmp_path: Path, n: int = 3) -> Engine:  # noqa: ANN001
    """An engine over `n` (up to 5) one-paragraph chip-maker articles, written with `article_writer`."""
    from newsbot.bot.engine import Engine

    for i, name in enumerate(["Nvidia", "AMD", "Intel", "Qualcomm", "Arm"][:n]):
        article_writer(f"{name.lower()}.md", title=f"{name} posts record revenue", source="Chip Wire",
                       body=f"{name} reported record quarterly revenue of {10 + i} billion dollars on Tuesday. "
                            "Demand for its accelerators kept rising across cloud customers, the company said.")
    engine = Engine(make_settings(tmp_path / "idx"))
    engine.build([article_writer.folder])
    return engine


def damage(root: Path) -> Path:
    """Truncate the live generation's index.sqlite, as a full disk or a bad copy would."""
    from newsbot.index.store.embedded.layout import Layout

    layout = Layout(root)
    db = layout.generation_dir(layout.current_generation()) / "index.sqlite"
    db.write_bytes(b"")
    return db


# --------------------------------------------------------------------------------------- Discord
MSG_CREATE = r"^/channels/\d+/messages$"


def bot_factory(index_dir: Path, **overrides: Any) -> Callable[[DiscordStandIn], NewsBot]:
    """A `bot_factory` for `run_standin`: a `NewsBot` on the index in `index_dir`, as `newsbot serve`
    builds it, without per-user cooldowns or guild rate limits."""
    from newsbot.bot.discordbot.bot import NewsBot
    from newsbot.bot.engine import Engine

    settings = make_settings(index_dir, discord_user_cooldown=0.0, discord_guild_rate=1000, **overrides)

    def make(standin: DiscordStandIn) -> NewsBot:
        return NewsBot(Engine(settings), guild_ready_timeout=0.05)

    return make


async def ready(bot: NewsBot) -> None:
    """Wait until the bot has loaded the model and the index."""
    await asyncio.wait_for(bot.ready_to_answer.wait(), 60)
