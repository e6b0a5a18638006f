"""No downtime, no loss: real `python -m bot.cli` processes are paused at named points (index/faults.py),
SIGKILLed or resumed, and run concurrently, while this process reads the same index."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from newsbot.bot.engine import Engine
from newsbot.bot.state import State
from newsbot.index.store.embedded.layout import Layout, current_manifest
from tests.helpers import (
    CORPUS,
    HARBOR,
    QUBIT,
    RSS_TYPE,
    TIDEWELL,
    kill,
    make_settings,
    page,
    rss,
    small_index,
    spawn,
    wait_for_line,
)
from tests.http_fixtures import LocalServer

pytestmark = pytest.mark.slow  # real processes paused, killed and run concurrently

QUESTION = "Why is Xiaomi dropping Leica?"


def snapshot(root: Path) -> tuple[int, int, int, str]:
    m = current_manifest(Layout(root))
    return m.version, m.documents, m.chunks, m.faiss_file


def finds(engine: Engine, query: str, doc_id: str) -> bool:
    return any(h.doc_id == doc_id for h in engine.search(query, limit=5))


NEW_ARTICLES = [("Zeta Quantum unveils Glimmerstone", QUBIT), ("Tidewell switches on tidal array", TIDEWELL),
                ("Harbor cranes go electric", HARBOR)]


@pytest.mark.parametrize("pause, compaction", [
    ("update-embedded", False),  # vectors computed, nothing written yet
    ("before-commit", False),  # every row written, transaction not committed
    ("before-commit", True),  # a new FAISS snapshot on disk, transaction not committed
])
def test_update_killed_midway_changes_nothing_and_rerun_completes(
    corpus_copy: Path, article_writer, tmp_path: Path, pause: str, compaction: bool
) -> None:
    if compaction:  # a small index: three new articles are past the compaction ratio
        small_index(article_writer, tmp_path)
        root, question, answer_doc = tmp_path / "idx", "AMD quarterly revenue", "amd"
    else:
        root, question, answer_doc = corpus_copy, QUESTION, ""
    new = [article_writer(f"zeta{i}.md", title=title, body=body)
           for i, (title, body) in enumerate(NEW_ARTICLES[: 3 if compaction else 1])]
    before = snapshot(root)
    gen_dir = Layout(root).generation_dir(Layout(root).current_generation())
    proc = spawn(["--index-dir", str(root), "add", *map(str, new)], pause)
    kill(proc)
    assert snapshot(root) == before
    fresh = Engine(make_settings(root))  # a new process's view of the index
    assert not finds(fresh, "Zeta Quantum Glimmerstone photonic processor", "zeta0")
    if answer_doc:
        assert finds(fresh, question, answer_doc)
    else:
        answer = fresh.ask(question)
        assert answer.found and "$3 to $5" in answer.text
    rerun = fresh.add(new)
    assert rerun.added == len(new) and rerun.compacted == compaction
    assert finds(fresh, "Zeta Quantum Glimmerstone photonic processor", "zeta0")
    after = snapshot(root)
    assert after[0] == before[0] + 1 and after[1] == before[1] + len(new)
    assert len(list(gen_dir.glob("vectors-*"))) <= 2  # an orphan snapshot of the killed run is gone


def test_feed_update_killed_after_index_commit_is_not_duplicated(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    with LocalServer() as srv:
        srv.add("/news/tidewell", page("Tidewell switches on tidal array", TIDEWELL, site="Grid Watch"))
        feed = srv.resource("/rss.xml", rss("Grid Watch", [("t1", "Tidewell", srv.url("/news/tidewell"), "x")]),
                            content_type=RSS_TYPE)
        State.for_index_dir(root).add_feed(srv.url("/rss.xml"))
        env = {"NEWSBOT_ALLOW_PRIVATE_URLS": "1"}
        kill(spawn(["--index-dir", str(root), "update"], "feeds-before-state", env_extra=env))
        engine = Engine(make_settings(root, allow_private_urls=True))
        assert engine.stats().documents == 1  # the index committed before the kill
        assert engine.feeds()[0].last_polled_at is None  # the feed state did not
        rerun = engine.update_feeds()  # polls again (no validators stored), finds the article unchanged
        assert (rerun.new, rerun.skipped, rerun.failed) == (0, 1, 0) and feed.not_modified_count == 0
        assert engine.stats().documents == 1
        assert engine.update_feeds().feeds[0].status == "not modified"


def test_concurrent_updates_are_serialized(corpus_copy: Path, article_writer) -> None:
    first = article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)
    second = article_writer("tidal.md", title="Tidewell switches on tidal array", body=TIDEWELL)
    before = snapshot(corpus_copy)
    holder = spawn(["--index-dir", str(corpus_copy), "add", str(first)], "before-commit")  # holds the lock
    waiter = spawn(["--index-dir", str(corpus_copy), "add", str(second)])
    wait_for_line(waiter, "waiting for another build/update to finish")
    assert waiter.poll() is None and snapshot(corpus_copy) == before
    kill(holder)  # the lock goes with the process
    out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    engine = Engine(make_settings(corpus_copy))
    assert engine.document("tidal") is not None and engine.document("zeta") is None
    assert snapshot(corpus_copy)[0] == before[0] + 1
    # Two writers at once, neither paused: both land, one after the other.
    third = article_writer("acme.md", title="Acme raises", body="Acme Robotics raised money for robots in Leipzig.")
    procs = [spawn(["--index-dir", str(corpus_copy), "add", str(path)]) for path in (first, third)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    assert snapshot(corpus_copy)[0] == before[0] + 3
    assert {"zeta", "tidal", "acme"} <= {d.id for d in engine.reader().documents()}
    assert engine.reader().vector_count() == engine.stats().chunks


def test_searches_keep_answering_through_a_rebuild(corpus_copy: Path, article_writer, tmp_path: Path) -> None:
    extra = article_writer("zeta.md", title="Zeta Quantum unveils Glimmerstone", body=QUBIT)
    searcher = Engine(make_settings(corpus_copy))
    old_generation = searcher.reader().name
    results: list[tuple[float, int, str]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                hits = searcher.search("Xiaomi Leica camera partnership")
                results.append((time.monotonic(), len(hits), searcher.reader().name))
            except BaseException as exc:  # noqa: BLE001 - any failure is what the test looks for
                failures.append(exc)
            time.sleep(0.02)

    thread = threading.Thread(target=search_loop, daemon=True)
    thread.start()
    resume = tmp_path / "resume"
    build = spawn(["--index-dir", str(corpus_copy), "build", str(CORPUS), str(extra.parent)],
                  "build-half-written", resume)
    paused_at = time.monotonic()
    time.sleep(1.5)
    resume.touch()
    assert build.wait(timeout=300) == 0
    finished_at = time.monotonic()
    deadline = time.monotonic() + 10
    while not results or results[-1][2] == old_generation:
        assert time.monotonic() < deadline, "the searching engine never switched to the new generation"
        time.sleep(0.1)
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=30)
    assert not failures, failures
    assert all(n > 0 for _, n, _ in results)
    during = [r for r in results if paused_at <= r[0] <= finished_at]
    assert len(during) >= 10 and {r[2] for r in during} >= {old_generation}
    new_generation = results[-1][2]
    assert new_generation != old_generation
    assert finds(searcher, "Zeta Quantum Glimmerstone photonic processor", "zeta")
