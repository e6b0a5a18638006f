"""The torch embedding backend: sentence-transformers on torch, CPU (`embedding_backend = torch`).

Importing torch costs every process 6-10 s, which is why the default backend is ONNX Runtime
(`newsbot.index.embedding.onnx`); the vectors are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from newsbot.index.embedding.base import ModelNotFound, model_key, resolve_model_path


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
