"""Building and opening indexes: vector cache reuse, atomic rebuilds, clear errors, search filters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsbot.bot.engine import Engine
from newsbot.bot.questions import UnknownOutlet
from newsbot.index.store.base import IndexCorrupt, IndexMismatch, IndexMissing
from newsbot.index.store.embedded.layout import Layout
from tests.helpers import REPO, make_settings

BODY = """
{name} reported record quarterly revenue of {n} billion dollars on Tuesday. The company said demand for
its accelerators kept rising across cloud customers.

Analysts had expected a smaller figure. Shares rose {n} percent in after-hours trading as investors
welcomed the guidance for the next quarter.
"""


def _corpus(write, names=("Nvidia", "AMD", "Intel")) -> Path:  # noqa: ANN001
    for i, name in enumerate(names):
        write(f"{name.lower()}.md", title=f"{name} posts record revenue", body=BODY.format(name=name, n=10 + i),
              source=["Chip Wire", "Fab Report", "Chip Wire"][i % 3], date=f"2025-0{i + 1}-10")
    return write.folder


def test_rebuild_of_unchanged_corpus_embeds_nothing(article_writer, tmp_path: Path) -> None:
    folder = _corpus(article_writer)
    engine = Engine(make_settings(tmp_path / "idx"))
    first = engine.build([folder])
    assert first.documents == 3 and first.embedded == first.chunks > 0 and first.reused == 0
    second = engine.build([folder])
    assert second.embedded == 0 and second.reused == second.chunks == first.chunks
    assert second.generation != first.generation
    # Changing one article re-embeds only that article's passages.
    article_writer("amd.md", title="AMD posts record revenue", body=BODY.format(name="AMD", n=99),
                   source="Fab Report", date="2025-02-10")
    third = engine.build([folder])
    amd_chunks = len([h for h in engine.search("AMD revenue", limit=50) if h.doc_id == "amd"])
    assert third.embedded == amd_chunks == 1
    assert third.reused == third.chunks - 1


def test_old_generations_are_cleaned_but_previous_kept(article_writer, tmp_path: Path) -> None:
    folder = _corpus(article_writer)
    engine = Engine(make_settings(tmp_path / "idx"))
    names = [engine.build([folder]).generation for _ in range(4)]
    remaining = sorted(p.name for p in (tmp_path / "idx" / "generations").iterdir())
    assert remaining == sorted(names[-2:])
    assert Layout(tmp_path / "idx").current_generation() == names[-1]


def _spawn_paused(args: list[str], pause: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "NEWSBOT_FAULT_PAUSE": pause, **(env_extra or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsbot.bot.cli", *args], cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if f"paused at {pause}" in line:
            return proc
    proc.wait()
    raise AssertionError(f"process ended (rc={proc.returncode}) before reaching {pause}")


@pytest.mark.slow
@pytest.mark.parametrize("pause", ["build-half-written", "before-commit", "build-before-switch"])
def test_build_killed_midway_leaves_old_index_answering(corpus_copy: Path, article_writer, pause: str) -> None:
    engine = Engine(make_settings(corpus_copy))
    before = engine.stats()
    question = "Why is Xiaomi dropping Leica?"
    assert engine.ask(question).found
    folder = _corpus(article_writer)
    proc = _spawn_paused(["--index-dir", str(corpus_copy), "build", str(folder)], pause)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fresh = Engine(make_settings(corpus_copy))  # a new process's view
    after = fresh.stats()
    assert after.generation == before.generation and after.documents == before.documents
    answer = fresh.ask(question)
    assert answer.found and "$3 to $5" in answer.text
    # The next build completes and switches; the debris of the killed one is removed.
    report = fresh.build([folder])
    assert fresh.stats().documents == 3 and report.embedded == 0
    gens = {p.name for p in (corpus_copy / "generations").iterdir()}
    assert gens == {before.generation, report.generation}


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    engine = Engine(make_settings(tmp_path / "nothing"))
    with pytest.raises(IndexMissing, match="newsbot build"):
        engine.search("anything")


def test_wrong_model_is_a_clear_error(corpus_index: Path) -> None:
    engine = Engine(make_settings(corpus_index, embedding_model="intfloat/e5-small-v2"))
    with pytest.raises(IndexMismatch) as err:
        engine.search("Leica")
    message = str(err.value)
    assert "all-MiniLM-L6-v2" in message and "e5-small-v2" in message and "newsbot build" in message


def test_corrupt_vector_file_is_a_clear_error(corpus_copy: Path) -> None:
    gen = Layout(corpus_copy).current_generation()
    assert gen
    for f in (corpus_copy / "generations" / gen).glob("vectors-*.faiss"):
        f.write_bytes(b"this is not a faiss index")
    with pytest.raises(IndexCorrupt, match="unreadable.*newsbot build"):
        Engine(make_settings(corpus_copy)).search("Leica")


def test_corrupt_database_is_a_clear_error(corpus_copy: Path) -> None:
    gen = Layout(corpus_copy).current_generation()
    db = corpus_copy / "generations" / str(gen) / "index.sqlite"
    db.write_bytes(b"garbage" * 1000)
    for extra in db.parent.glob("index.sqlite-*"):
        extra.unlink()
    with pytest.raises(IndexCorrupt, match="newsbot build"):
        Engine(make_settings(corpus_copy)).search("Leica")


def test_current_pointing_nowhere_is_a_clear_error(corpus_copy: Path) -> None:
    (corpus_copy / "CURRENT").write_text("g-does-not-exist\n")
    with pytest.raises(IndexCorrupt, match="missing.*newsbot build"):
        Engine(make_settings(corpus_copy)).search("Leica")


def test_cli_reports_index_errors_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(tmp_path / "none"), "search", "Leica"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "NEWSBOT_CORPUS": str(tmp_path / "empty")},
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


def test_source_filter(engine: Engine) -> None:
    hits = engine.search("Leica", sources=["Weibo"])
    assert hits and {h.source for h in hits} == {"Weibo"}
    everyone = engine.search("Leica", limit=20)
    assert len({h.source for h in everyone}) > 1, "the corpus should mention Leica in several outlets"
    assert engine.search("Leica", sources=["weibo"]) == hits  # case-insensitive
    with pytest.raises(UnknownOutlet, match=r"^no outlet named No Such Outlet; known: AI Dispatch, "):
        engine.search("Leica", sources=["No Such Outlet"])  # said, rather than "no matching passages"


def test_date_filters(engine: Engine) -> None:
    since, until = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    hits = engine.search("smartphone cameras", since=since, until=until, limit=20)
    assert hits
    assert all(h.published_at and since <= h.published_at <= until for h in hits)
    unfiltered = engine.search("smartphone cameras", limit=20)
    assert any(h.published_at and not since <= h.published_at <= until for h in unfiltered)


def test_one_article_cannot_fill_the_results(engine: Engine) -> None:
    hits = engine.search("Xiaomi Leica partnership camera", limit=10)
    per_doc: dict[str, int] = {}
    for h in hits:
        per_doc[h.doc_id] = per_doc.get(h.doc_id, 0) + 1
    assert max(per_doc.values()) <= engine.settings.per_article_cap
    assert len(per_doc) >= 4
