"""Duplicate stories: exact copies (same normalized text, same canonical URL) and near-duplicates.

Near-duplicates (a syndicated story re-run with a new header, a few sentences edited) are found with
MinHash over 5-word shingles of `normalize_text(body)`: `minhash(text)` is a 128-value uint32
signature whose agreement rate with another estimates the Jaccard similarity of the two shingle sets;
`lsh_keys(sig)` cuts it into bands whose hashes are lookup keys (two documents sharing any key are
candidates; confirm with `jaccard_estimate`). With 32 bands of 4 rows a pair at Jaccard 0.8 shares a
key with probability > 0.9999, a pair at 0.7 with probability > 0.9998, a pair at 0.3 with about 0.23.

What the threshold (0.7) means with 5-word shingles: one changed word alters up to 5 shingles, so a
story stays at or above 0.7 only when most of its running text is untouched. Syndicated copies with a
new byline, boilerplate and a few edited sentences qualify, also short ones (a 400-word story with a new
header and footer, two sentences edited and one cut scores 0.73-0.76, below the earlier 0.8); a rewrite
of the same news in other words does not (that is a job for embeddings, not for this module). Measured
on the 609 MultiHop-RAG articles, no two different articles reach 0.7 (the closest pair, 0.64, is one
outlet's Black Friday and Cyber Monday deal lists) and different stories on one topic score about 0.01;
tests/test_freshness_dedup.py pins both sides.

Signatures are stable across processes and machines (fixed seed, little-endian, no `hash()`), so they
may be stored. Changing SHINGLE_WORDS, NUM_PERM or SEED invalidates stored signatures and keys.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from newsbot.index.documents import Document, canonical_url, normalize_text

NUM_PERM = 128  # signature length (hash functions)
SHINGLE_WORDS = 5  # words per shingle
LSH_BANDS = 32  # bands for candidate lookup (NUM_PERM / LSH_BANDS = 4 rows per band)
NEAR_DUPLICATE = 0.7  # default Jaccard threshold for "the same story" (see the module doc)
SEED = 20250314

_WORD = re.compile(r"\w+")
_EMPTY = np.uint32(0xFFFFFFFF)  # every slot of the signature of a text without words
_BATCH = 4096  # shingles hashed per block: bounds memory at _BATCH * NUM_PERM * 8 bytes (4 MiB)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant used to combine word hashes

_rng = np.random.default_rng(SEED)
# Multiply-add-shift hashing (Dietzfelbinger): h(x) = ((a * x + b) mod 2**64) >> 32 for 32-bit keys x,
# with a odd. Each (a, b) pair is one of the NUM_PERM independent hash functions.
_A = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)


def words(text: str) -> list[str]:
    """The words shingles are made of: runs of letters/digits of `normalize_text(text)`."""
    return _WORD.findall(normalize_text(text))


def shingle_hashes(text: str, k: int = SHINGLE_WORDS) -> np.ndarray:
    """Unique 32-bit hashes (uint64 array) of the k-word shingles of `text`.

    A text shorter than k words is one shingle; a text without words has none.
    """
    tokens = words(text)
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    vocab = {w: i for i, w in enumerate(dict.fromkeys(tokens))}
    word_hash = np.fromiter(
        (int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(), "little") for w in vocab),
        dtype=np.uint64,
        count=len(vocab),
    )
    ids = np.fromiter((vocab[w] for w in tokens), dtype=np.int64, count=len(tokens))
    hashed = word_hash[ids]
    n = max(len(tokens) - k + 1, 1)
    acc = np.zeros(n, dtype=np.uint64)
    for offset in range(min(k, len(tokens))):
        acc = acc * _MIX + hashed[offset : offset + n]  # wraps mod 2**64: intended
    acc = _fmix64(acc)
    return np.unique(acc >> np.uint64(32))


def minhash(text: str) -> np.ndarray:
    """MinHash signature of `text`: shape (NUM_PERM,), dtype uint32.

    A text without words gets all 0xFFFFFFFF, which `jaccard_estimate` treats as similar to nothing.
    """
    keys = shingle_hashes(text)
    sig = np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    for start in range(0, len(keys), _BATCH):
        block = keys[start : start + _BATCH, None]  # (n, 1)
        values = (block * _A + _B) >> np.uint64(32)  # (n, NUM_PERM), each < 2**32
        np.minimum(sig, values.min(axis=0), out=sig)
    if not len(keys):
        return np.full(NUM_PERM, _EMPTY, dtype=np.uint32)
    return sig.astype(np.uint32)


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity (0..1) of the shingle sets behind two signatures of equal length."""
    if a.shape != b.shape:
        raise ValueError(f"signatures differ in shape: {a.shape} vs {b.shape}")
    if bool(np.all(a == _EMPTY)) or bool(np.all(b == _EMPTY)):
        return 0.0
    return float(np.count_nonzero(a == b)) / a.size


def lsh_keys(sig: np.ndarray, bands: int = LSH_BANDS) -> list[str]:
    """One lookup key per band of the signature: "b<band>:<16 hex digits>".

    Keys of different bands never collide (the band number is part of the key). Signatures of texts
    without words get no keys.
    """
    if sig.size % bands:
        raise ValueError(f"{sig.size} values do not split into {bands} equal bands")
    if bool(np.all(sig == _EMPTY)):
        return []
    rows = sig.size // bands
    data = np.ascontiguousarray(sig, dtype="<u4")
    keys = []
    for band in range(bands):
        chunk = data[band * rows : (band + 1) * rows].tobytes()
        digest = hashlib.blake2b(chunk, digest_size=8, person=b"newsbot-lsh").hexdigest()
        keys.append(f"b{band:02d}:{digest}")
    return keys


def exact_keys(doc: Document) -> list[str]:
    """Keys equal for exact copies: "hash:<content hash>" and, when it has a URL, "url:<canonical URL>"."""
    keys = ["hash:" + doc.content_hash()]
    url = canonical_url(doc.url)
    if url:
        keys.append("url:" + url)
    return keys


@dataclass(frozen=True)
class Match:
    """A stored document that `doc` duplicates. kind: "url", "content" or "near"; similarity in 0..1."""

    doc_id: str
    kind: str
    similarity: float


@dataclass
class DedupIndex:
    """In-memory duplicate lookup (for one batch or as a model of a key/value table).

    `match(doc)` finds an exact copy first (canonical URL, then content hash), else the most similar
    near-duplicate at or above `threshold`; `add(doc)` records a document.
    """

    threshold: float = NEAR_DUPLICATE
    bands: int = LSH_BANDS
    _exact: dict[str, str] = field(default_factory=dict, repr=False)
    _buckets: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _sigs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def add(self, doc: Document, sig: np.ndarray | None = None) -> None:
        for key in exact_keys(doc):
            self._exact.setdefault(key, doc.id)
        sig = minhash(doc.body) if sig is None else sig
        self._sigs[doc.id] = sig
        for key in lsh_keys(sig, self.bands):
            self._buckets.setdefault(key, []).append(doc.id)

    def signature(self, doc_id: str) -> np.ndarray | None:
        """The signature recorded for `doc_id` by `add`, if any."""
        return self._sigs.get(doc_id)

    def match(self, doc: Document, sig: np.ndarray | None = None) -> Match | None:
        keys = exact_keys(doc)
        for key in reversed(keys):  # the URL key (if any) first
            other = self._exact.get(key)
            if other is not None and other != doc.id:
                return Match(other, "url" if key.startswith("url:") else "content", 1.0)
        sig = minhash(doc.body) if sig is None else sig
        best: Match | None = None
        candidates = {c for key in lsh_keys(sig, self.bands) for c in self._buckets.get(key, ())}
        for other in sorted(candidates - {doc.id}):
            score = jaccard_estimate(sig, self._sigs[other])
            if score >= self.threshold and (best is None or score > best.similarity):
                best = Match(other, "near", score)
        return best


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, vectorized: spreads every input bit over the whole output."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB93FE53A7CE3)
    return x ^ (x >> np.uint64(33))
