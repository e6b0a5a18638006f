"""The fault matrix: real `newsbot build`, `add` and `update` processes are SIGKILLed at each named point
(index/faults.py), indexes are damaged, and rebuilds recover — and every case counts the articles before
and after: nothing is lost, nothing is indexed twice.

Every case starts from the same index of 8 articles from four origins: 3 built from files, 2 added from
files with `add`, 2 fetched from a feed, 1 added by URL (pages and feed served from 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsbot.bot.engine import Engine
from newsbot.index.documents import id_from_url
from tests.helpers import (
    HARBOR,
    LANTERN,
    ORCHARD,
    QUBIT,
    RSS_TYPE,
    TIDEWELL,
    damage,
    kill,
    make_settings,
    page,
    rss,
    spawn,
    write_article,
)
from tests.http_fixtures import LocalServer, Resource

pytestmark = pytest.mark.slow  # every case runs real processes, several rebuild the corpus

ENV = {"NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_FETCH_TIMEOUT": "3"}
KESTREL = ("Kestrel Rail ordered twelve hydrogen trains for its mountain lines, the first of them due in "
           "service by the winter timetable of next year.")
MARLOW = ("Marlow Foods will close two bakeries in Ohio and move their bread lines to a new automated plant "
          "near Columbus, the company said in a filing.")


@dataclass
class World:
    root: Path
    srv: LocalServer
    base: Path  # the build's folder
    today: Path  # the added files' folder
    expected: set[str]  # every article id of the starting index
    items: list[tuple[str, str, str, str]]  # the feed's entries
    feed: Resource

    def engine(self) -> Engine:
        return Engine(make_settings(self.root, allow_private_urls=True, fetch_timeout=3.0))

    def ids(self) -> set[str]:
        return {d.id for d in self.engine().reader().documents()}

    def count(self) -> int:
        return self.engine().stats().documents

    def run(self, *args: str, pause: str) -> None:
        """`newsbot ARGS` in its own process, SIGKILLed when it reaches `pause`."""
        proc = spawn(["--index-dir", str(self.root), *args], pause, env_extra=ENV)
        kill(proc)

    def publish(self, guid: str, path: str, title: str, body: str) -> str:
        """A new feed entry with its page; returns its article id."""
        self.srv.add(path, page(title, body, site="Grid Watch"))
        self.items.append((guid, title, self.srv.url(path), "teaser"))
        self.feed.update(rss("Grid Watch", self.items))
        return id_from_url(self.srv.url(path))


def make_world(tmp_path: Path, srv: LocalServer) -> World:
    base, today = tmp_path / "base", tmp_path / "today"
    for i, name in enumerate(["Nvidia", "AMD", "Intel"]):
        write_article(base, f"{name.lower()}.md", title=f"{name} posts record revenue", source="Chip Wire",
                      body=f"{name} reported record quarterly revenue of {10 + i} billion dollars on Tuesday.")
    write_article(today, "zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)
    write_article(today, "harbor.md", title="Harbor cranes go electric", body=HARBOR)
    srv.add("/news/tidal", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
    srv.add("/news/orchard", page("Orchard Silicon opens Dresden plant", ORCHARD, site="Grid Watch"))
    srv.add("/news/lantern", page("Lantern Mobile cuts folding phone price", LANTERN, site="Phone Desk"))
    items = [("t1", "Tidewell", srv.url("/news/tidal"), "x"), ("o1", "Orchard", srv.url("/news/orchard"), "y")]
    feed = srv.resource("/rss.xml", rss("Grid Watch", items), content_type=RSS_TYPE)
    world = World(tmp_path / "idx", srv, base, today, set(), items, feed)
    engine = world.engine()
    engine.build([base])
    assert engine.add([today]).added == 2
    engine.add_feed(srv.url("/rss.xml"))
    assert engine.update_feeds().new == 2
    assert engine.add([srv.url("/news/lantern")]).added == 1
    world.expected = world.ids()
    assert len(world.expected) == 8 and world.count() == 8
    return world


# ------------------------------------------------------------------------------------------ cases
# Each case does its faults and its recovery, and returns the ids it added on top of the 8.


def build_killed(point: str) -> Callable[[World], set[str]]:
    def case(w: World) -> set[str]:
        w.run("build", str(w.base), pause=point)
        assert w.ids() == w.expected  # the killed build changed nothing visible
        w.engine().build([w.base])
        return set()
    return case


def build_killed_before_store_then_damaged(w: World) -> set[str]:
    w.run("build", str(w.base), pause="build-before-article-store")
    assert w.ids() == w.expected  # the new generation is live and complete
    damage(w.root)
    w.engine().build([w.base])
    return set()


def add_killed(point: str, damaged: bool) -> Callable[[World], set[str]]:
    def case(w: World) -> set[str]:
        late = write_article(w.today, "kestrel.md", title="Kestrel Rail orders hydrogen trains", body=KESTREL)
        w.run("add", str(late), pause=point)
        assert w.ids() == w.expected
        if damaged:  # the recovery rebuild may bring the interrupted add's article along: not a loss
            damage(w.root)
            w.engine().build([w.base])
            assert w.ids() >= w.expected
        assert w.engine().add([late]).outcomes["kestrel"] in ("new", "unchanged")
        return {"kestrel"}
    return case


def update_killed(point: str, damaged: bool) -> Callable[[World], set[str]]:
    def case(w: World) -> set[str]:
        new_id = w.publish("k1", "/news/kestrel", "Kestrel Rail orders hydrogen trains", KESTREL)
        w.run("update", pause=point)
        assert w.ids() == w.expected | ({new_id} if point == "feeds-before-state" else set())
        if damaged:
            damage(w.root)
            w.engine().build([w.base])
        report = w.engine().update_feeds()
        assert report.failed == 0 and not report.busy  # the killed holder's lease is taken over at once
        return {new_id}
    return case


def damaged_then_rebuilt(w: World) -> set[str]:
    damage(w.root)
    report = w.engine().build([w.base])
    assert report.live_unreadable and not report.dropped
    return set()


def damaged_then_rebuild_killed(point: str) -> Callable[[World], set[str]]:
    def case(w: World) -> set[str]:
        damage(w.root)
        w.run("build", str(w.base), pause=point)
        w.engine().build([w.base])
        return set()
    return case


def rebuilt_twice_then_damaged(w: World) -> set[str]:
    (w.today / "harbor.md").unlink()  # an added file deleted: its stored text survives every step
    for _ in range(2):
        assert not w.engine().build([w.base]).dropped
    damage(w.root)
    w.engine().build([w.base])
    late = write_article(w.today, "marlow.md", title="Marlow Foods closes bakeries", body=MARLOW)
    w.engine().add([late])
    damage(w.root)
    w.engine().build([w.base])
    return {"marlow"}


CASES = {
    "build killed half-written": build_killed("build-half-written"),
    "build killed before the switch": build_killed("build-before-switch"),
    "build killed before the article store, then damaged index": build_killed_before_store_then_damaged,
    "add killed after embedding": add_killed("update-embedded", damaged=False),
    "add killed before commit": add_killed("before-commit", damaged=False),
    "add killed before commit, then damaged index": add_killed("before-commit", damaged=True),
    "update killed before commit": update_killed("before-commit", damaged=False),
    "update killed before the feed state": update_killed("feeds-before-state", damaged=False),
    "update killed before commit, then damaged index": update_killed("before-commit", damaged=True),
    "damaged index, rebuilt": damaged_then_rebuilt,
    "damaged index, rebuild killed half-written": damaged_then_rebuild_killed("build-half-written"),
    "damaged index, rebuild killed before the article store": damaged_then_rebuild_killed(
        "build-before-article-store"),
    "rebuilt twice, damaged, added, damaged again": rebuilt_twice_then_damaged,
}


@pytest.mark.parametrize("name", list(CASES))
def test_nothing_is_lost(tmp_path: Path, name: str) -> None:
    with LocalServer() as srv:
        world = make_world(tmp_path, srv)
        before = world.count()
        extra = CASES[name](world)
        after_ids = world.ids()
        assert after_ids == world.expected | extra, f"lost: {world.expected - after_ids}"
        assert world.count() == before + len(extra)  # and nothing twice
        answer = world.engine().search("Glimmerstone photonic processor")  # searchable, not just listed
        assert answer and answer[0].doc_id == "zeta"
