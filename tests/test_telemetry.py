"""newsbot never lets ONNX Runtime phone home: its telemetry is off in every newsbot process unless the
operator opts in (NEWSBOT_ALLOW_TELEMETRY=1).

What these tests can see, and what not: ONNX Runtime's telemetry is native code. An audit hook in the
process sees only Python's own sockets and imports; it proves the opt-out variables are set at the moment
onnxruntime is imported (which is when it matters) and that Python opened no outside connection.
strace, when installed, sees every connect(2) of the process and its children, native code included.
The footprint ONNX Runtime's telemetry leaves on disk, `~/.cache/Microsoft/DeveloperTools/`, is checked in
a fresh HOME; a control run that opts in shows that this footprint does appear when telemetry is on (so
the check can fail). The control runs only in a network namespace without any network (`unshare -n`),
so it can never send anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsbot.index.embedding.onnx import default_cache_dir

# Runs `newsbot ARGS` (the CLI's own main) with an audit hook recording the opt-out variables as they are
# when onnxruntime is first imported, and every Python-level connect / name lookup outside loopback.
WATCH = r'''
import json, os, sys
out, args = sys.argv[1], sys.argv[2:]
seen = {"ort_env_at_import": None, "outside": []}

def hook(event, a):
    if event == "import" and a[0] == "onnxruntime" and seen["ort_env_at_import"] is None:
        seen["ort_env_at_import"] = {k: os.environ.get(k) for k in ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")}
    elif event == "socket.connect" and isinstance(a[1], tuple) and a[1][0] not in ("127.0.0.1", "::1", "localhost"):
        seen["outside"].append(f"connect {a[1]}")
    elif event == "socket.getaddrinfo" and a[0] not in ("127.0.0.1", "::1", "localhost", None):
        seen["outside"].append(f"getaddrinfo {a[0]}")

sys.addaudithook(hook)
sys.argv = ["newsbot", *args]
try:
    from newsbot.bot.cli import main
    code = main(args)
finally:
    with open(out, "w") as fh:
        json.dump(seen, fh)
sys.exit(code)
'''


def _unshare_ok() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def _run_watched(tmp_path: Path, index_dir: Path, *, allow: bool = False) -> tuple[dict, list[str], Path]:
    """`newsbot ask` on `index_dir` in a fresh HOME, watched; returns (audit record, strace connects, HOME)."""
    home = tmp_path / ("home-allow" if allow else "home")
    home.mkdir()
    script, record, trace = tmp_path / "watch.py", tmp_path / "seen.json", tmp_path / "strace.txt"
    script.write_text(WATCH, encoding="utf-8")
    # ONNX Runtime sends nothing when CI is set (as on the CI machines): both runs look like a user's
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_") and k not in (
        "NEWSBOT_ALLOW_TELEMETRY", "XDG_CACHE_HOME", "CI")}
    # the exported model is reused from the usual cache (a fresh HOME would export it again: slow)
    env.update(HOME=str(home), NEWSBOT_ONNX_CACHE_DIR=str(default_cache_dir()), NEWSBOT_INDEX_DIR=str(index_dir))
    if allow:
        env["NEWSBOT_ALLOW_TELEMETRY"] = "1"
    cmd = [sys.executable, str(script), str(record), "ask", "--no-llm", "Why is Xiaomi dropping Leica?"]
    if shutil.which("strace"):
        cmd = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *cmd]
    if _unshare_ok():
        cmd = ["unshare", "-n", *cmd]  # outbound connections impossible: nothing can leave, whatever happens
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Leica" in proc.stdout
    connects = []
    if trace.exists():
        for line in trace.read_text().splitlines():
            if "AF_INET" in line and not re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"', line):
                connects.append(line)
    return json.loads(record.read_text()), connects, home


def test_no_telemetry_footprint_and_no_outside_connection(corpus_index: Path, tmp_path: Path) -> None:
    seen, connects, home = _run_watched(tmp_path, corpus_index)
    assert seen["ort_env_at_import"] == {"ORT_DISABLE_TELEMETRY": "1", "ORT_TELEMETRY_DISABLED": "1"}, seen
    assert seen["outside"] == [], seen["outside"]
    assert connects == [], connects  # native connects too (strace), when strace is installed
    assert not (home / ".cache" / "Microsoft").exists(), sorted(str(p) for p in home.rglob("*"))


@pytest.mark.skipif(not _unshare_ok(), reason="the opt-in control runs only where it cannot reach any network")
def test_opting_in_leaves_the_telemetry_footprint_the_other_test_checks(corpus_index: Path, tmp_path: Path) -> None:
    """The control: with NEWSBOT_ALLOW_TELEMETRY=1 newsbot sets nothing, and ONNX Runtime (1.29+ on Linux)
    creates its device id under ~/.cache/Microsoft/DeveloperTools/ (in a process without any network)."""
    import onnxruntime

    seen, _, home = _run_watched(tmp_path, corpus_index, allow=True)
    assert seen["ort_env_at_import"] == {"ORT_DISABLE_TELEMETRY": None, "ORT_TELEMETRY_DISABLED": None}, seen
    if tuple(int(x) for x in onnxruntime.__version__.split(".")[:2]) < (1, 29):
        pytest.skip(f"onnxruntime {onnxruntime.__version__} has no telemetry on Linux")
    assert (home / ".cache" / "Microsoft" / "DeveloperTools").is_dir()


def test_an_explicit_ort_setting_is_kept() -> None:
    """The operator's own ORT_DISABLE_TELEMETRY wins (setdefault); importing the CLI sets the rest without
    importing onnxruntime."""
    code = ("import os, sys; import newsbot.bot.cli; "
            "print(os.environ['ORT_DISABLE_TELEMETRY'], os.environ['ORT_TELEMETRY_DISABLED'], "
            "'onnxruntime' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_") and k != "NEWSBOT_ALLOW_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "ORT_DISABLE_TELEMETRY": "0"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "1", "False"]
