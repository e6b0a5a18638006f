"""newsbot.index (the folder index/): articles in, ranked passages out. It never imports newsbot.bot.

    files, pages, feeds ─ingest─> Documents ─chunking─> passages ─embedding─> vectors ─┐
                                                                                      ├─store─> a generation
                                            passages ─text (keyword terms)───────────┘
    question ─retrieval (query analysis, hybrid search, grounding)─> Hits

build.py runs the first row (a full build, or an update in place); docs/inside.md has one line per module.

Importing this package turns ONNX Runtime's telemetry off for the whole process (see `_no_telemetry`):
every newsbot process (CLI, bot, benchmarks, tests) imports it before onnxruntime, since `newsbot.bot`
imports it first thing too.
"""

import os as _os

# Opt-in for operators who want ONNX Runtime's usage telemetry sent to Microsoft (off otherwise).
ALLOW_TELEMETRY_ENV = "NEWSBOT_ALLOW_TELEMETRY"
# ONNX Runtime reads these once, before its runtime initialises: 1.29+ on Linux otherwise uploads process
# information to Microsoft's telemetry endpoint and keeps a device id under ~/.cache/Microsoft/DeveloperTools/.
# ORT_DISABLE_TELEMETRY is the documented switch; newer releases also honour ORT_TELEMETRY_DISABLED.
TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1", "ORT_TELEMETRY_DISABLED": "1"}


def _no_telemetry() -> None:
    """Set ONNX Runtime's telemetry opt-out in this process's environment (inherited by its children, such as
    the ONNX export process), unless NEWSBOT_ALLOW_TELEMETRY is true. A value the operator set explicitly
    for an ORT_* variable is kept (setdefault)."""
    if _os.environ.get(ALLOW_TELEMETRY_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return
    for key, value in TELEMETRY_OFF.items():
        _os.environ.setdefault(key, value)


_no_telemetry()
