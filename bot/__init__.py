"""newsbot.bot (the folder bot/): the engine over newsbot.index, the answers it composes, and the front
ends that use it (the `newsbot` command, the Discord bot). docs/inside.md has one line per module."""

import newsbot.index  # noqa: F401 - first: it turns ONNX Runtime's telemetry off before anything imports it
