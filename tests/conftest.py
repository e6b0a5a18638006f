"""Shared fixtures: one real embedding model per test session, and the bundled corpus indexed once."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "docs_corpus"
MULTIHOP = REPO.parent / "shared" / "data" / "multihop_rag"


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: defaults only (no env, no newsbot.toml), plus `overrides`."""
    return load_settings({"index_dir": str(index_dir), "corpus": str(CORPUS), **overrides}, env={})


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled docs_corpus built once for the whole session. Treat as read-only."""
    from bot.engine import Engine

    root = tmp_path_factory.mktemp("corpus-index")
    report = Engine(make_settings(root)).build()
    assert report.documents >= 21 and not report.errors, report.errors
    return root


@pytest.fixture
def corpus_copy(corpus_index: Path, tmp_path: Path) -> Path:
    """A private copy of the built corpus index that a test may change."""
    dest = tmp_path / "index"
    shutil.copytree(corpus_index, dest)
    return dest


@pytest.fixture(scope="session")
def engine(corpus_index: Path):
    from bot.engine import Engine

    return Engine(make_settings(corpus_index))


def write_article(folder: Path, name: str, *, title: str, body: str, source: str = "Test Wire",
                  date: str = "2025-01-15", url: str = "", extra: str = "") -> Path:
    """Write a Markdown article with front matter and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    front = f'title: "{title}"\nsource: "{source}"\npublished_at: {date}\nurl: "{url}"\n{extra}'
    path.write_text(f"---\n{front}\n---\n{textwrap.dedent(body).strip()}\n", encoding="utf-8")
    return path


@pytest.fixture
def article_writer(tmp_path: Path) -> Callable[..., Path]:
    folder = tmp_path / "articles"

    def write(name: str, **kwargs: object) -> Path:
        return write_article(folder, name, **kwargs)  # type: ignore[arg-type]

    write.folder = folder  # type: ignore[attr-defined]
    return write
