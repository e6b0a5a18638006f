"""`get_embedder`: the one place an embedding backend is chosen and loaded (once per process)."""

from __future__ import annotations

import threading
from pathlib import Path

from newsbot.index.embedding.base import Embedder, model_key
from newsbot.index.embedding.onnx import OnnxEmbedder
from newsbot.index.embedding.torch import TorchEmbedder

_cache: dict[tuple[str, str, str], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(model_name: str, backend: str = "onnx", cache_dir: str | Path | None = None) -> Embedder:
    """A shared embedder per (model, backend, ONNX cache folder): loading a model costs time, so do it once.

    `cache_dir` is where the onnx backends keep their exported files (default: the user's cache folder,
    see `newsbot.index.embedding.onnx.default_cache_dir`); the torch backend ignores it.
    """
    model_key(model_name, backend)  # validates the backend name
    key = (model_name, backend, str(cache_dir or ""))
    with _cache_lock:
        if key not in _cache:
            if backend == "torch":
                _cache[key] = TorchEmbedder(model_name)
            else:
                _cache[key] = OnnxEmbedder(model_name, int8=backend == "onnx-int8", cache_dir=cache_dir or None)
        return _cache[key]
