"""The files in deploy/ that run newsbot for real: the systemd units and the Dockerfile.

No systemd manager and no Docker engine run here, so these tests check what can be checked without
them: `systemd-analyze verify` on the units (when the tool exists), their hardening and paths, that
every command they and the Dockerfile run is one the `newsbot` CLI accepts, that the units' commands
behave as the units expect when run with the units' environment, and that the Dockerfile copies and
installs only what exists."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from newsbot.bot.cli.commands import cmd_serve, cmd_update
from newsbot.bot.cli.parser import make_parser
from tests.helpers import REPO

SYSTEMD = REPO / "deploy" / "systemd"
UNITS = ("newsbot.service", "newsbot-update.service", "newsbot-update.timer")
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]}: systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def environment(section: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for assignment in values(section, "Environment"):
        for word in shlex.split(assignment):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def cli_args(command: str) -> list[str]:
    """The arguments after the `newsbot` executable in a command line (a path or a bare name)."""
    words = shlex.split(command)
    assert Path(words[0]).name == "newsbot", command
    return words[1:]


# -------------------------------------------------------------------------------------------- systemd


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """Copies pointing at this checkout's `newsbot` (verify checks that ExecStart is executable); any
    warning (an unknown key, a value systemd cannot parse) fails the test."""
    newsbot = Path(sys.executable).with_name("newsbot")
    assert newsbot.exists(), "the editable install provides the newsbot entry point"
    for name in UNITS:
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        text = text.replace("/opt/newsbot/.venv/bin/newsbot", str(newsbot))
        text = text.replace("WorkingDirectory=/opt/newsbot", f"WorkingDirectory={tmp_path}")
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *(f"./{n}" for n in UNITS)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.parametrize(("name", "command", "handler"), [
    ("newsbot.service", ["serve"], cmd_serve),
    ("newsbot-update.service", ["update"], cmd_update),
])
def test_units_run_newsbot_hardened_with_state_in_var_lib(name: str, command: list[str], handler: object) -> None:
    service = unit(name)["Service"]
    args = cli_args(one(service, "ExecStart"))
    assert args == command
    assert make_parser().parse_args(args).func is handler  # a subcommand the CLI really has

    hardening = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                 "PrivateDevices": "yes", "DynamicUser": "yes", "User": "newsbot", "StateDirectory": "newsbot",
                 "CacheDirectory": "newsbot", "RestrictNamespaces": "yes", "CapabilityBoundingSet": "",
                 "UMask": "0077"}
    assert {key: one(service, key) for key in hardening} == hardening
    assert "AF_INET" in one(service, "RestrictAddressFamilies").split()
    env = environment(service)
    assert env["NEWSBOT_INDEX_DIR"] == "/var/lib/newsbot"  # = StateDirectory, the only writable place
    assert env["NEWSBOT_ONNX_CACHE_DIR"].startswith("/var/cache/newsbot/")  # = CacheDirectory
    assert one(service, "EnvironmentFile").lstrip("-") == "/etc/newsbot/newsbot.env"  # the token, root-only
    assert "DISCORD_TOKEN" not in env, "the token belongs in the EnvironmentFile, not the unit"


def test_bot_unit_restarts_on_failure_but_not_on_a_configuration_error() -> None:
    service = unit("newsbot.service")["Service"]
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartPreventExitStatus") == "2"
    assert unit("newsbot.service")["Install"] == [("WantedBy", "multi-user.target")]


def test_update_timer_starts_the_update_service() -> None:
    timer = unit("newsbot-update.timer")
    assert one(timer["Timer"], "Unit") == "newsbot-update.service" and one(timer["Timer"], "OnCalendar")
    assert timer["Install"] == [("WantedBy", "timers.target")]
    service = unit("newsbot-update.service")["Service"]
    assert one(service, "Type") == "oneshot"
    assert one(service, "SuccessExitStatus") == "75"  # another update was running: not a failure


def run_unit_command(name: str, tmp_path: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """ExecStart of `name` with the unit's Environment=, its /var paths moved under `tmp_path`."""
    service = unit(name)["Service"]
    env = {k: v.replace("/var/", f"{tmp_path}/var/") for k, v in environment(service).items()}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    executable = Path(sys.executable).with_name("newsbot")
    return subprocess.run([str(executable), *cli_args(one(service, "ExecStart"))], cwd=tmp_path,
                          env={**base, **env, **extra_env}, capture_output=True, text=True, timeout=300)


def test_bot_unit_command_without_a_token_exits_2_which_stops_restarts(tmp_path: Path) -> None:
    proc = run_unit_command("newsbot.service", tmp_path, {})
    assert proc.returncode == 2 and "DISCORD_TOKEN is not set" in proc.stderr


def test_update_unit_command_uses_the_state_directory(tmp_path: Path) -> None:
    proc = run_unit_command("newsbot-update.service", tmp_path, {})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")  # no feeds, no terminal: silent
    assert (tmp_path / "var" / "lib" / "newsbot" / "state.sqlite").exists()  # the feed list lives there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]  # nothing written to the working directory


# --------------------------------------------------------------------------------------------- Docker


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_copies_and_installs_what_exists() -> None:
    steps = dockerfile()
    for instruction, args in steps:
        if instruction == "COPY":
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    runs = [args for instruction, args in steps if instruction == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "pip install torch" in r)
    newsbot = next(i for i, r in enumerate(runs) if re.search(r"pip install \"?\.", r))
    assert torch < newsbot, "CPU-only torch must be installed before newsbot pulls sentence-transformers"
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    default_extras = next(a for i, a in steps if i == "ARG" and a.startswith("EXTRAS=")).split("=", 1)[1]
    known = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert default_extras and set(default_extras.split(",")) <= set(known)
    assert "${EXTRAS:+[$EXTRAS]}" in runs[newsbot]


def test_dockerfile_runs_newsbot_serve_as_a_user_with_the_index_in_a_volume() -> None:
    steps = dockerfile()
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = next(a for i, a in reversed(steps) if i == "CMD")
    assert make_parser().parse_args(cli_args(shlex.join(json.loads(cmd)))).func is cmd_serve
    env: dict[str, str] = {}
    for instruction, args in steps:
        if instruction == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(args))
    volumes = [v for i, a in steps if i == "VOLUME" for v in json.loads(a)]
    assert env["NEWSBOT_INDEX_DIR"] in volumes and env["NEWSBOT_ONNX_CACHE_DIR"].startswith(env["NEWSBOT_INDEX_DIR"])
    assert not any("DISCORD_TOKEN" in a for i, a in steps if i in ("ENV", "ARG")), "the token comes at run time"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {"**/.venv", "**/.newsbot", ".env"} <= set(ignored), "no venv, index or secrets in the build context"


def test_compose_builds_the_same_image_and_runs_commands_newsbot_has() -> None:
    compose = (REPO / "deploy" / "docker-compose.yml").read_text()
    assert "dockerfile: deploy/Dockerfile" in compose
    for command in re.findall(r'command: \["newsbot", ([^\]]*)\]', compose):
        args = [a.strip().strip('"') for a in command.split(",")]
        assert make_parser().parse_args(args).func is cmd_serve
