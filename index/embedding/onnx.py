"""ONNX Runtime embedding backend: sentence-transformers' vectors without importing torch.

`OnnxEmbedder(model_name).encode(texts)` returns the same float32 array of shape (len(texts), dim),
rows of L2 norm 1, that the torch backend (`embedding/torch.py`) returns (fp32: cosine 1.000000 per row), using
only onnxruntime, the `tokenizers` package and numpy at run time:

    tokenizer.json (lower-casing WordPiece), truncated to the model's `max_seq_length` word pieces
    -> ONNX graph of the transformer: last_hidden_state, shape (batch, seq, dim)
    -> mean over the tokens the attention mask keeps -> L2 normalisation

The ONNX file is exported once, offline, from the local model folder (`torch.onnx.export`, which needs
torch, transformers and the `onnx` package at export time only) in a separate process, so the serving
process never imports torch. It is cached under `<cache_dir>/<model-slug>-<fingerprint>/`:

    model.onnx         fp32 graph (vectors equal torch's: an index built with either serves the other)
    model-int8.onnx    int8 dynamic quantisation of it (per-channel int8 weights, uint8 activations:
                       the AVX-512 VNNI kernels); vectors differ slightly, so the int8 backend has its own
                       model key (`embedding/base.py`, `model_key`) and never shares an index with fp32
    source.json        what was exported from what (fingerprint of the model folder, versions)

The fingerprint covers the model's config and weight files, so a changed model is exported again.
Concurrent exporters serialise on a lock file; files appear atomically (written aside, then renamed).

Export by hand (e.g. while building a container image):

    python -m newsbot.index.embedding.onnx export [--model all-MiniLM-L6-v2] [--cache-dir DIR] [--int8]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from newsbot.index.embedding.base import ModelNotFound, model_key, resolve_model_path

log = logging.getLogger("newsbot.index.embedding")

EXPORT_FORMAT = 1  # bump when the exported graph changes, so cached files are exported again
OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
SOURCE_FILE = "source.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
PAD_SLACK = 0.8  # a batch closes when a text is shorter than this share of its longest (bounds padding)
MAX_BATCH_TOKENS = 4096  # word pieces per model run, padding included (16 passages of 256): bounds its memory


class OnnxExportError(ModelNotFound):
    """The ONNX file is not cached and could not be exported; the message says what to do."""


# ---------------------------------------------------------------------------------------- locations


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/newsbot/models` (default `~/.cache/newsbot/models`): shared by every index."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "newsbot" / "models"


def local_model_dir(model_name: str) -> Path:
    """The local sentence-transformers folder of `model_name` (bundled, a path, or the offline HF cache)."""
    path = Path(resolve_model_path(model_name))
    if path.is_dir():
        return path
    try:  # a hub name already in the local Hugging Face cache; never downloads (local_files_only)
        from huggingface_hub import snapshot_download

        for repo in (model_name, f"sentence-transformers/{model_name}"):
            with contextlib.suppress(Exception):
                return Path(snapshot_download(repo, local_files_only=True))
    except ImportError:
        pass
    raise ModelNotFound(
        f"embedding model {model_name!r} is not a local folder and not in the local Hugging Face cache; "
        "set NEWSBOT_EMBEDDING_MODEL to a local sentence-transformers folder (models cannot be downloaded here)."
    )


def model_fingerprint(model_dir: Path) -> str:
    """A short hash of what the exported graph depends on: config, weight file sizes, and their first and
    last MiB (cheap: ≈ 2 ms, run at every start)."""
    h = hashlib.sha256(f"format={EXPORT_FORMAT} opset={OPSET}".encode())
    for name in ("config.json", "sentence_bert_config.json", "modules.json"):
        p = model_dir / name
        h.update(name.encode() + (p.read_bytes() if p.is_file() else b"-"))
    weights = sorted(p for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not weights:
        raise ModelNotFound(f"no weights (*.safetensors, *.bin) in the model folder {model_dir}")
    for p in weights:
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with p.open("rb") as fh:
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def model_slug(model_name: str) -> str:
    """`all-MiniLM-L6-v2` → `all-minilm-l6-v2`; paths use their last component."""
    base = Path(model_name.rstrip("/")).name or "model"
    return re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-") or "model"


def export_dir(model_name: str, cache_dir: str | Path | None = None) -> Path:
    """Where the ONNX files of `model_name` live: `<cache_dir>/<slug>-<fingerprint>/`."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / f"{model_slug(model_name)}-{model_fingerprint(local_model_dir(model_name))}"


# ---------------------------------------------------------------------------------------- model config


def read_model_config(model_dir: Path) -> dict[str, Any]:
    """max_seq_length, lower-casing and pooling of a sentence-transformers folder, checked for support.

    Only mean pooling (optionally followed by Normalize) is reproduced; other poolings raise ModelNotFound.
    """
    def load(name: str) -> dict[str, Any]:
        p = model_dir / name
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

    st_config, hf_config = load("sentence_bert_config.json"), load("config.json")
    pooling = load("1_Pooling/config.json")
    for mod in load("modules.json") if (model_dir / "modules.json").is_file() else []:
        if mod.get("type", "").endswith("Pooling"):
            pooling = load(f"{mod.get('path', '')}/config.json")
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if pooling and set(modes) != {"pooling_mode_mean_tokens"}:
        raise ModelNotFound(
            f"the onnx backend reproduces mean pooling only; {model_dir} uses {sorted(modes)}. "
            "Use embedding_backend = torch for this model."
        )
    max_len = int(st_config.get("max_seq_length") or hf_config.get("max_position_embeddings") or 512)
    if hf_config.get("max_position_embeddings"):
        max_len = min(max_len, int(hf_config["max_position_embeddings"]))
    return {"max_seq_length": max_len, "do_lower_case": bool(st_config.get("do_lower_case", False)),
            "hidden_size": hf_config.get("hidden_size", 0)}


# ---------------------------------------------------------------------------------------- export


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _export_fp32(model_dir: Path, out: Path) -> None:
    """torch.onnx.export of the transformer (inputs (batch, seq) int64, output (batch, seq, dim) float32).

    Uses the TorchScript exporter (`dynamo=False`): it needs only the `onnx` package, while the dynamo
    exporter would also need `onnxscript`. Eager attention keeps the graph free of SDPA tracing quirks.
    """
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask"]
    if getattr(model.config, "type_vocab_size", 0):
        names.append("token_type_ids")

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.inference_mode():
        torch.onnx.export(
            LastHidden(model), sample, str(out), input_names=names, output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )


def _quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation for AVX-512 VNNI: per-channel int8 weights, uint8 activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32), str(out), per_channel=True, reduce_range=False, weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )


def export_model(model_name: str, cache_dir: str | Path | None = None, *, int8: bool = False) -> Path:
    """Export (in this process; imports torch) the ONNX file(s) for `model_name`; returns the file path.

    Idempotent: files already cached are kept. Use `ensure_exported` from serving code instead.
    """
    model_dir = local_model_dir(model_name)
    read_model_config(model_dir)  # refuse unsupported poolings before spending time on an export
    folder = export_dir(model_name, cache_dir)
    fp32, int8_path = folder / FP32_FILE, folder / INT8_FILE
    with _locked(folder):
        if not fp32.is_file():
            tmp = folder / f".{FP32_FILE}.{os.getpid()}.tmp"
            try:
                _export_fp32(model_dir, tmp)
                os.replace(tmp, fp32)
            finally:
                tmp.unlink(missing_ok=True)
        if int8 and not int8_path.is_file():
            tmp = folder / f".{INT8_FILE}.{os.getpid()}.tmp.onnx"
            try:
                _quantize_int8(fp32, tmp)
                os.replace(tmp, int8_path)
            finally:
                tmp.unlink(missing_ok=True)
        import onnxruntime

        source = {"model": model_name, "model_dir": str(model_dir), "format": EXPORT_FORMAT, "opset": OPSET,
                  "onnxruntime": onnxruntime.__version__}
        with contextlib.suppress(ImportError):
            import torch

            source["torch"] = torch.__version__
        (folder / SOURCE_FILE).write_text(json.dumps(source, indent=2), encoding="utf-8")
    return int8_path if int8 else fp32


def ensure_exported(model_name: str, cache_dir: str | Path | None = None, *, int8: bool = False) -> Path:
    """The cached ONNX file for `model_name`, exporting it first (in a child process) if missing.

    The child process keeps torch out of this one. Raises OnnxExportError with the child's last error
    lines and what to do when the export is impossible (no torch/transformers/onnx, unreadable model).
    """
    folder = export_dir(model_name, cache_dir)
    path = folder / (INT8_FILE if int8 else FP32_FILE)
    if path.is_file():
        return path
    cmd = [sys.executable, "-m", "newsbot.index.embedding.onnx", "export", "--model", model_name]
    if cache_dir:
        cmd += ["--cache-dir", str(cache_dir)]
    if int8:
        cmd.append("--int8")
    # the same interpreter imports newsbot the way this process did (it is installed, or editable)
    what = f"exporting the embedding model {model_name} to ONNX{' (and int8)' if int8 else ''}, once (≈ 15-30 s)"
    proc = _run_with_status(cmd, what, folder)
    if proc.returncode != 0 or not path.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise OnnxExportError(
            f"cannot export {model_name!r} to ONNX into {folder}: {tail or 'no output'}\n"
            "The one-time export needs torch, transformers and the onnx package (pip install onnx) and a "
            "writable cache folder (setting onnx_cache_dir). Or set NEWSBOT_EMBEDDING_BACKEND=torch."
        )
    return path


def _run_with_status(cmd: list[str], what: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run `cmd` (output captured), telling a person what is going on: on a terminal (stderr is a tty) a
    status line with a spinner and the seconds spent, replaced by one line saying it is done; otherwise
    (service logs, cron) a single INFO log line, so logs do not fill with progress."""
    if not sys.stderr.isatty():
        log.info("%s into %s ...", what, folder)
        return subprocess.run(cmd, capture_output=True, text=True)
    done = threading.Event()
    started = time.monotonic()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            sys.stderr.write(f"\r{frame} {what} ... {time.monotonic() - started:.0f} s")
            sys.stderr.flush()
            if done.wait(0.25):
                return

    spinner = threading.Thread(target=spin, name="onnx-export-status", daemon=True)
    spinner.start()
    proc: subprocess.CompletedProcess[str] | None = None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:  # interrupted (Ctrl-C) too: the status line is ended, not left half-drawn
        done.set()
        spinner.join()
        outcome = "done" if proc is not None and proc.returncode == 0 else "failed"
        sys.stderr.write(f"\r\033[K{what}: {outcome} in {time.monotonic() - started:.0f} s\n")
        sys.stderr.flush()
    return proc


# ---------------------------------------------------------------------------------------- embedding


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def length_batches(
    lengths: Sequence[int], batch_size: int, slack: float = PAD_SLACK, max_tokens: int = MAX_BATCH_TOKENS
) -> list[list[int]]:
    """Indices into `lengths` grouped into model runs, longest texts first.

    A batch holds at most `batch_size` texts and closes early when the next text is shorter than
    `slack` × the batch's longest, so padding stays under ≈ 1/slack of the real tokens, or when it would
    pass `max_tokens` word pieces padded (0 = no cap): the attention of one run grows with rows × width²,
    so 32 passages of 256 word pieces cost ≈ 260 MB of working memory against ≈ 120 MB for 16.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        if batch and (
            len(batch) >= max(1, batch_size)
            or (max_tokens and (len(batch) + 1) * lengths[batch[0]] > max_tokens)
            or lengths[i] < slack * lengths[batch[0]]
        ):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (or another mean-pooling sentence-transformers model) on ONNX Runtime, CPU.

    `int8=True` runs the dynamically quantised graph: ≈ 1.6x faster passages, vectors within cosine
    ≈ 0.99 of fp32, recorded under a different model key (`self.key`).
    """

    def __init__(self, model_name: str, *, int8: bool = False, cache_dir: str | Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_name = model_name
        self.backend = "onnx-int8" if int8 else "onnx"
        self.key = model_key(model_name, self.backend)
        model_dir = local_model_dir(model_name)
        config = read_model_config(model_dir)
        self.max_length: int = config["max_seq_length"]
        self._lower = config["do_lower_case"]
        tokenizer_file = model_dir / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelNotFound(f"the onnx backend needs {tokenizer_file} (a fast tokenizer); use the torch backend")
        self.path = ensure_exported(model_name, cache_dir, int8=int8)

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(max_length=self.max_length)  # tokenizer.json may say 128: ST uses 256
        self._tokenizer.no_padding()
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Memory patterns pay off for fixed shapes only; with a new (rows, width) per batch they keep a plan
        # per shape: ≈ 480 MB peak instead of ≈ 370 MB for 400 passages of a long article, no faster.
        opts.enable_mem_pattern = False
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise OnnxExportError(
                f"cannot load {self.path}: {exc}. Delete that folder to export it again."
            ) from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        width = self._session.get_outputs()[0].shape[-1]
        self.dim = width if isinstance(width, int) else int(config["hidden_size"])
        self._lock = threading.Lock()  # one run at a time: ONNX Runtime already uses every core

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids per text, [CLS] … [SEP], truncated to `max_length` (what the model sees)."""
        texts = [t.lower() if self._lower else t for t in texts]
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length vectors, float32 array of shape (len(texts), dim), in the order of `texts`.

        At most `batch_size` texts per model run, grouped by token length (see `length_batches`) so
        little padding is computed: sentences of mixed lengths embed ≈ 25% faster than in fixed batches.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.token_ids(texts)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for rows in length_batches([len(x) for x in ids], batch_size):
            out[rows] = self._run([ids[i] for i in rows])
        return out

    def _run(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """One padded batch through the graph, mean-pooled and normalised: shape (len(ids), dim)."""
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        with self._lock:
            (hidden,) = self._session.run(None, {k: feeds[k] for k in self._inputs})
        weights = mask.astype(np.float32)[:, :, None]
        summed = np.einsum("bsd,bsx->bd", hidden, weights, dtype=np.float32)
        pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsbot.index.embedding.onnx", description=(
        "Export the embedding model to ONNX (fp32, and optionally int8) into the cache the onnx backends read."
    ))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="export (no-op when already cached); prints the file path")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="model name or local folder")
    p.add_argument("--cache-dir", default=None, help=f"default: {default_cache_dir()}")
    p.add_argument("--int8", action="store_true", help="also write the int8 dynamically quantised file")
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")  # the TorchScript exporter's tracer warnings are expected
    try:
        print(export_model(args.model, args.cache_dir, int8=args.int8))
    except ModelNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
