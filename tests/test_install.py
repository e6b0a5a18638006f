"""An installed newsbot works from any folder: the index lives in the user's data folder, the sample
articles come with the package, and a failed command leaves no folder behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from newsbot.bot.config import Settings, samples_dir
from newsbot.index.embedding.onnx import default_cache_dir
from tests.helpers import REPO

QUESTION = "Why is Xiaomi dropping Leica?"


def _fresh_user(tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path, Path]:
    """(env, HOME, cwd) of a user who never ran newsbot: no NEWSBOT_* settings, an empty HOME and working
    folder. The exported ONNX model is reused from the usual cache (exporting again is slow and tested
    elsewhere)."""
    home, cwd = tmp_path / "home", tmp_path / "somewhere"
    home.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "XDG_", "DISCORD_"))}
    env.update(HOME=str(home), NEWSBOT_ONNX_CACHE_DIR=str(default_cache_dir()), **extra)
    return env, home, cwd


def _tree(*folders: Path) -> list[str]:
    return sorted(str(p) for folder in folders for p in folder.rglob("*"))


def test_ask_from_any_folder_uses_the_data_folder_and_the_installed_samples(tmp_path: Path) -> None:
    env, home, cwd = _fresh_user(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "ask", QUESTION], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "building one" in proc.stderr.lower() and "$3 to $5" in proc.stdout
    assert (home / ".local" / "share" / "newsbot" / "CURRENT").is_file()
    assert list(cwd.iterdir()) == []  # nothing in the working folder (no .newsbot/)
    assert not (home / ".cache" / "Microsoft").exists()  # and no telemetry footprint
    stats = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "stats"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0 and str(home / ".local" / "share" / "newsbot") in stats.stdout, stats.stderr


def test_xdg_data_home_and_the_index_dir_setting_are_honoured(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env, _, cwd = _fresh_user(tmp_path, XDG_DATA_HOME=str(data))
    code = "from newsbot.bot.config import load_settings; s = load_settings(); print(s.index_dir); print(s.corpus)"
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [str(data / "newsbot"), str(samples_dir())]
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**env, "NEWSBOT_INDEX_DIR": "/srv/x"},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "/srv/x"


def test_the_samples_are_the_repository_docs_corpus() -> None:
    folder = samples_dir()
    assert folder is not None
    assert sorted(p.name for p in folder.glob("*.md")) == sorted(p.name for p in (REPO / "docs_corpus").glob("*.md"))
    assert Settings().corpus == str(folder)


@pytest.mark.parametrize("args", [
    ["build", "/nonexistent/articles"],
    ["add", "/nonexistent/article.md"],
    ["feeds", "remove", "https://feeds.example/rss"],
    ["remove", "some-id"],
    ["stats"],
])
def test_a_failed_command_creates_no_folder(tmp_path: Path, args: list[str]) -> None:
    env, home, cwd = _fresh_user(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout
    assert "error" in proc.stderr or "failed" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _tree(home, cwd) == []


def test_a_failed_first_ask_creates_no_folder(tmp_path: Path) -> None:
    env, home, cwd = _fresh_user(tmp_path, NEWSBOT_CORPUS=str(tmp_path / "no-such-folder"))
    proc = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "ask", QUESTION], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nothing to index" in proc.stderr, proc.stderr
    assert _tree(home, cwd) == []


@pytest.mark.slow
def test_a_wheel_installed_into_a_new_venv_answers_from_any_folder(tmp_path: Path) -> None:
    """`pip install .` for real: a wheel built from a copy of the sources (so the repository stays clean),
    installed with --no-deps into a new venv whose dependencies come from this one (a .pth line), then its
    own `newsbot` script run from an empty folder in a fresh HOME."""
    try:
        import setuptools  # noqa: F401 - the build backend, used without build isolation (offline)
    except ImportError:
        pytest.skip("setuptools is not installed in this environment")
    src = tmp_path / "src"
    for name in ("bot", "index", "docs_corpus"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("newsbot-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # dependencies from this environment; its .pth files are not read from there, so its editable
    # newsbot is not importable in the new venv: only the wheel's
    Path(purelib, "newsbot-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)

    env, home, cwd = _fresh_user(tmp_path)
    where = subprocess.run([str(python), "-c", "import newsbot.bot, newsbot.bot.config as c; "
                            "print(newsbot.bot.__file__); print(c.samples_dir())"],
                           cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert all(p.startswith(purelib) for p in where), where  # the installed copy, not the repository
    proc = subprocess.run([str(venv / "bin" / "newsbot"), "ask", QUESTION], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "$3 to $5" in proc.stdout
    assert (home / ".local" / "share" / "newsbot" / "CURRENT").is_file()
    assert list(cwd.iterdir()) == [] and not (home / ".cache" / "Microsoft").exists()


def test_an_index_in_the_old_default_folder_is_pointed_out(tmp_path: Path) -> None:
    env, home, cwd = _fresh_user(tmp_path)
    (cwd / ".newsbot").mkdir()
    (cwd / ".newsbot" / "CURRENT").write_text("g1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "stats"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "holds an index of an older newsbot" in proc.stderr and "--index-dir .newsbot" in proc.stderr
    assert _tree(home) == []


def test_an_add_where_every_source_fails_says_nothing_was_added(tmp_path: Path) -> None:
    env, home, cwd = _fresh_user(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "newsbot.bot.cli", "add", "/nonexistent/article.md"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Nothing added: 1 failed (the index is unchanged)." in proc.stderr, proc.stderr
    assert "Index:" not in proc.stdout  # no "0 articles, 0 passages" for an index that was never touched
