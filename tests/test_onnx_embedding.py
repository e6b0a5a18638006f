"""The ONNX Runtime backends: same vectors as torch (fp32), close but separately keyed (int8), no torch
import on the query path, identical retrieval on an index built with torch, and clear export errors.

The model is exported once per session into a temporary cache folder (fp32 and int8 in one child
process), and every test here reads that folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from newsbot.bot.engine import Engine
from newsbot.index.embedding.base import BACKENDS, model_key
from newsbot.index.embedding.factory import get_embedder
from newsbot.index.embedding.onnx import (
    FP32_FILE,
    INT8_FILE,
    OnnxEmbedder,
    OnnxExportError,
    ensure_exported,
    export_dir,
    length_batches,
    local_model_dir,
)
from newsbot.index.store.base import IndexMismatch
from tests.helpers import REPO, make_settings

MODEL = "all-MiniLM-L6-v2"
LONG = " ".join(
    f"Paragraph {i}: the chip maker said demand for accelerators kept rising while smartphone sales "
    f"slowed, and analysts expect capacity to double by {2025 + i % 5}." for i in range(40)
)
TEXTS = [
    "Why is Xiaomi dropping Leica?",
    "What did TSMC say about 2nm volume production?",
    "BYD overtakes Tesla — 4.27 million cars, €1,499 phones and 東京 in one line 🚗",
    "   leading and trailing spaces   ",
    "Xiaomi is ending its high-profile camera partnership with the German optics company Leica. " * 3,
    LONG,  # ≈ 1,000 word pieces: only the first 256 count
    sorted((REPO / "docs_corpus").glob("*.md"))[0].read_text(encoding="utf-8"),  # front matter and all
]
QUESTIONS = [
    "Why is Xiaomi dropping Leica?",
    "When will TSMC start 2nm mass production?",
    "How many cars did BYD sell in 2024?",
    "What does the RTX 5090 cost?",
    "How much did Nvidia lose when DeepSeek R1 came out?",
    "What is Stargate?",
    "How fast is BYD's flash charging?",
    "What stake did the US government take in Intel?",
    "How much does T-Satellite cost per month?",
    "Which phone makers partner with Zeiss or Hasselblad?",
    "What are the EU AI Act rules for general-purpose models?",
    "Who bought EchoStar's spectrum?",
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the fp32 and int8 exports, made once for the session."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    ensure_exported(MODEL, cache, int8=True)  # the child process writes both files
    folder = export_dir(MODEL, cache)
    assert (folder / FP32_FILE).is_file() and (folder / INT8_FILE).is_file()
    return cache


@pytest.fixture(scope="session")
def torch_vectors() -> np.ndarray:
    return get_embedder(MODEL, "torch").encode(TEXTS)


@pytest.fixture(scope="session")
def torch_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled corpus indexed with the torch backend."""
    root = tmp_path_factory.mktemp("torch-index")
    report = Engine(make_settings(root, embedding_backend="torch")).build()
    assert report.documents >= 21 and not report.errors
    return root


@pytest.mark.slow
def test_fp32_vectors_equal_torch(onnx_cache: Path, torch_vectors: np.ndarray) -> None:
    emb = OnnxEmbedder(MODEL, cache_dir=onnx_cache)
    vectors = emb.encode(TEXTS)
    assert vectors.shape == torch_vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() > 0.9999, cosines
    # one at a time (no padding) gives the same vectors as a length-sorted batch
    single = np.stack([emb.encode([t])[0] for t in TEXTS])
    assert (single * vectors).sum(axis=1).min() > 0.99999


@pytest.mark.slow
def test_long_texts_are_truncated_like_sentence_transformers(onnx_cache: Path, torch_vectors: np.ndarray) -> None:
    emb = OnnxEmbedder(MODEL, cache_dir=onnx_cache)
    assert emb.max_length == 256
    ids = emb.token_ids([LONG])[0]
    assert len(ids) == 256 and len(emb._tokenizer.encode(LONG[: len(LONG) // 2]).ids) == 256
    long_vec = emb.encode([LONG])[0]
    assert float(long_vec @ torch_vectors[TEXTS.index(LONG)]) > 0.9999
    # words past the 256th word piece change nothing
    assert float(long_vec @ emb.encode([LONG + " A different ending about bananas."])[0]) > 0.99999


@pytest.mark.slow
def test_int8_is_close_but_keyed_apart(onnx_cache: Path, torch_vectors: np.ndarray, tmp_path: Path) -> None:
    emb = OnnxEmbedder(MODEL, int8=True, cache_dir=onnx_cache)
    cosines = (emb.encode(TEXTS) * torch_vectors).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    assert cosines.min() < 0.99999  # really a different model: its vectors must not share fp32's key
    assert emb.key == model_key(MODEL, "onnx-int8") != MODEL
    assert model_key(MODEL, "onnx") == model_key(MODEL, "torch") == MODEL
    assert get_embedder(MODEL, "onnx", onnx_cache).key == MODEL
    settings = make_settings(tmp_path, embedding_backend="onnx-int8", onnx_cache_dir=str(onnx_cache))
    assert Engine(settings).options().model == emb.key


@pytest.mark.slow
def test_int8_refuses_an_fp32_index(corpus_index: Path, onnx_cache: Path) -> None:
    settings = make_settings(corpus_index, embedding_backend="onnx-int8", onnx_cache_dir=str(onnx_cache))
    with pytest.raises(IndexMismatch, match="newsbot build"):
        Engine(settings).search("Leica")


@pytest.mark.slow
def test_int8_questions_search_an_fp32_index(corpus_index: Path, onnx_cache: Path) -> None:
    fp32 = Engine(make_settings(corpus_index, query_embedding_backend="onnx", onnx_cache_dir=str(onnx_cache)))
    mixed = Engine(make_settings(corpus_index, onnx_cache_dir=str(onnx_cache)))  # the default: auto
    assert mixed.query_embedder.key == model_key(MODEL, "onnx-int8") and mixed.model_key() == MODEL
    assert fp32.query_embedder is fp32.embedder
    assert mixed.embedder.key == MODEL  # passages (builds, updates) stay fp32: the index is not mixed
    agree = 0
    for question in QUESTIONS:
        want, got = fp32.search(question), mixed.search(question)
        assert got and got[0].chunk_id in {h.chunk_id for h in want[:3]}, question
        agree += len({h.chunk_id for h in got} & {h.chunk_id for h in want})
        assert got[0].dense_score == pytest.approx(next(
            (h.dense_score for h in want if h.chunk_id == got[0].chunk_id), got[0].dense_score), abs=0.03)
    assert agree >= 0.8 * 10 * len(QUESTIONS)
    answer = mixed.ask(QUESTIONS[0], use_llm=False)
    assert answer.citations and "Leica" in answer.text


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="onnx, torch, onnx-int8"):
        model_key(MODEL, "onnx-fp16")
    assert BACKENDS[0] == "onnx"


@pytest.mark.slow
def test_torch_built_index_answers_identically_with_onnx_queries(torch_index: Path, onnx_cache: Path) -> None:
    by_torch = Engine(make_settings(torch_index, embedding_backend="torch"))
    by_onnx = Engine(make_settings(torch_index, embedding_backend="onnx", query_embedding_backend="onnx",
                                   onnx_cache_dir=str(onnx_cache)))
    assert by_torch.query_embedder is by_torch.embedder  # auto: int8 questions only for the onnx backend
    for question in QUESTIONS:
        t_hits, o_hits = by_torch.search(question), by_onnx.search(question)
        assert [h.chunk_id for h in o_hits] == [h.chunk_id for h in t_hits], question
        assert len(t_hits) == 10
        for t, o in zip(t_hits, o_hits, strict=True):
            assert o.dense_score == pytest.approx(t.dense_score, abs=1e-4)
    for question in QUESTIONS[:2]:
        assert by_onnx.ask(question, use_llm=False).text == by_torch.ask(question, use_llm=False).text


@pytest.mark.slow
def test_onnx_query_path_imports_no_torch(corpus_index: Path, onnx_cache: Path) -> None:
    script = f"""
import json, sys
from newsbot.bot.config import load_settings
from newsbot.bot.engine import Engine
engine = Engine(load_settings({{"index_dir": {str(corpus_index)!r}, "embedding_backend": "onnx",
                                "onnx_cache_dir": {str(onnx_cache)!r}}}, env={{}}))
hits = engine.search("Why is Xiaomi dropping Leica?")
answer = engine.ask("Why is Xiaomi dropping Leica?", use_llm=False)
heavy = [m for m in ("torch", "sentence_transformers", "transformers", "discord", "trafilatura", "feedparser")
         if m in sys.modules]
print(json.dumps({{"hits": len(hits), "found": answer.found, "heavy": heavy}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(REPO), capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"hits": 10, "found": True, "heavy": []}


@pytest.mark.slow
def test_export_failure_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "broken-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 512}))
    (model / "model.safetensors").write_bytes(b"not a safetensors file")
    shutil.copy(local_model_dir(MODEL) / "tokenizer.json", model)
    with pytest.raises(OnnxExportError, match="(?s)cannot export .*NEWSBOT_EMBEDDING_BACKEND=torch"):
        OnnxEmbedder(str(model), cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.onnx"))  # nothing half-written is left to load later


def test_other_poolings_are_refused(tmp_path: Path) -> None:
    model = tmp_path / "cls-model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (model / "model.safetensors").write_bytes(b"x")
    with pytest.raises(Exception, match="mean pooling only"):
        OnnxEmbedder(str(model), cache_dir=tmp_path / "cache")


def test_length_batches_bound_padding() -> None:
    lengths = [10, 256, 12, 256, 100, 11, 90, 255]
    batches = length_batches(lengths, batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [1, 3, 7]  # longest first, stable, at most batch_size
    for batch in batches:
        longest = lengths[batch[0]]
        assert len(batch) <= 3 and all(lengths[i] >= 0.8 * longest for i in batch)
    assert length_batches([], 32) == []
    # Word pieces per run are capped (padding included), whatever batch_size allows: bounded memory.
    batches = length_batches([256] * 40 + [100] * 50, batch_size=32, max_tokens=4096)
    assert [len(b) for b in batches] == [16, 16, 8, 32, 18]


@pytest.mark.slow
def test_first_run_export_shows_a_status_line_on_a_terminal(corpus_index: Path, tmp_path: Path) -> None:
    """The one-time export (≈ 15-30 s) is not silent on a terminal: a spinner line with the seconds spent,
    ended by one line saying it is done. (stderr is a pseudo-terminal here.)"""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "NEWSBOT_ONNX_CACHE_DIR": str(tmp_path / "fresh-cache"), "NEWSBOT_INDEX_DIR": str(corpus_index)}
    proc = subprocess.Popen([sys.executable, "-m", "newsbot.bot.cli", "search", "Leica", "--limit", "1"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=600) == 0
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert "exporting the embedding model all-MiniLM-L6-v2 to ONNX" in screen, screen
    assert re.search(r"\r[|/\\-] exporting .* \d+ s", screen), screen  # the live status line
    assert re.search(r"to ONNX.*: done in \d+ s\r?\n", screen), screen


def test_export_status_is_one_log_line_off_a_terminal(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Off a terminal (a service's log, cron) the export says so in one INFO log line and draws nothing."""
    from newsbot.index.embedding.onnx import _run_with_status

    with caplog.at_level(logging.INFO, logger="newsbot.index.embedding"):
        proc = _run_with_status([sys.executable, "-c", "import time; time.sleep(0.6)"], "exporting X", tmp_path)
    assert proc.returncode == 0
    assert [r.getMessage() for r in caplog.records] == [f"exporting X into {tmp_path} ..."]
    assert capfd.readouterr().err == ""
