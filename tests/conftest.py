"""Shared fixtures: one real embedding model per test session, and the bundled corpus indexed once.

Plain helpers (paths, settings, articles, shared texts) are in tests/helpers.py. The fixture modules
below are registered here, once, so a test just names the fixture it needs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import newsbot.index  # noqa: F401 - first: it turns ONNX Runtime's telemetry off for this process and its children
from tests.helpers import make_settings, write_article

pytest_plugins = [
    "tests.http_fixtures",  # server: a LocalServer on 127.0.0.1
    "tests.milvus_fixtures",  # milvus_server: a Milvus Lite server
    "tests.pg_fixtures",  # postgres_server, postgres_url: a throwaway PostgreSQL
    "tests.standin_fixtures",  # discord_standin_run: a bot against the local Discord stand-in
]


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG_DATA_HOME of the session (and of the processes it starts): the default index_dir is the user's
    data folder, and no test may build into the real one."""
    folder = tmp_path_factory.mktemp("xdg-data")
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled docs_corpus built once for the whole session. Treat as read-only."""
    from newsbot.bot.engine import Engine

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
    from newsbot.bot.engine import Engine

    return Engine(make_settings(corpus_index))


@pytest.fixture
def article_writer(tmp_path: Path) -> Callable[..., Path]:
    """`write(name, title=..., body=..., ...)`: a Markdown article in this test's `article_writer.folder`."""
    folder = tmp_path / "articles"

    def write(name: str, **kwargs: object) -> Path:
        return write_article(folder, name, **kwargs)  # type: ignore[arg-type]

    write.folder = folder  # type: ignore[attr-defined]
    return write
