"""Passages and questions to unit-length vectors.

    base.py     the `Embedder` protocol, `model_key`, model folders, `common_words`
    factory.py  `get_embedder`: the backend the settings name, loaded once per process
    onnx.py     ONNX Runtime (default; no torch at run time) and the one-time ONNX export
    torch.py    sentence-transformers on torch
    cache.py    vectors already computed, keyed by (model, passage hash)
"""
