"""index.dedup: exact and near-duplicate stories (MinHash over word shingles, LSH band keys)."""

from __future__ import annotations

import numpy as np
import pytest

from newsbot.index.documents import Document
from newsbot.index.ingest.dedup import (
    NEAR_DUPLICATE,
    NUM_PERM,
    DedupIndex,
    exact_keys,
    jaccard_estimate,
    lsh_keys,
    minhash,
    shingle_hashes,
)
from tests.helpers import SAME_TOPIC, STORY, syndicate

SYNDICATED = syndicate(STORY)


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingle_hashes(a).tolist()), set(shingle_hashes(b).tolist())
    return len(sa & sb) / len(sa | sb)


def test_signature_shape_and_stability() -> None:
    sig = minhash(STORY)
    assert sig.shape == (NUM_PERM,) and sig.dtype == np.uint32
    assert np.array_equal(sig, minhash(STORY))
    # normalization: case, whitespace and punctuation do not matter
    assert np.array_equal(sig, minhash("  " + STORY.upper().replace("\n", " ").replace(",", " ,")))


def test_signature_is_pinned() -> None:
    """Signatures are stored: a change to the hashing must be deliberate (bump and rebuild)."""
    pinned = [838537450, 1034929971, 2272038618, 730252332]
    assert minhash("the quick brown fox jumps over the lazy dog")[:4].tolist() == pinned


def test_syndicated_copy_is_a_near_duplicate() -> None:
    estimate = jaccard_estimate(minhash(STORY), minhash(SYNDICATED))
    assert estimate >= NEAR_DUPLICATE
    assert abs(estimate - exact_jaccard(STORY, SYNDICATED)) < 0.1


def test_limits_of_the_threshold() -> None:
    """Where the threshold lies with 5-word shingles: the same edits weigh more in a shorter story (0.8
    missed this one; NEAR_DUPLICATE was lowered to catch it), and a rewrite in other words is not a
    near-duplicate at all (that is the embeddings' job)."""
    short = STORY[: STORY.index("The company's largest customer")]  # 400 words instead of 570
    assert NEAR_DUPLICATE <= jaccard_estimate(minhash(short), minhash(syndicate(short))) < 0.8
    words = STORY.split()
    every_tenth_word_changed = " ".join(w if i % 10 else "changed" for i, w in enumerate(words))
    assert jaccard_estimate(minhash(STORY), minhash(every_tenth_word_changed)) < 0.5


def test_different_story_on_same_topic_is_not() -> None:
    estimate = jaccard_estimate(minhash(STORY), minhash(SAME_TOPIC))
    assert estimate < 0.2
    assert jaccard_estimate(minhash(SYNDICATED), minhash(SAME_TOPIC)) < 0.2


def test_estimate_tracks_true_jaccard() -> None:
    words = STORY.split()
    for keep in (0.9, 0.7, 0.5, 0.3):
        cut = int(len(words) * keep)
        a, b = " ".join(words), " ".join(words[:cut])
        truth = exact_jaccard(a, b)
        assert abs(jaccard_estimate(minhash(a), minhash(b)) - truth) < 0.15, keep


def test_edge_cases() -> None:
    empty = minhash("")
    assert empty.shape == (NUM_PERM,)
    assert jaccard_estimate(empty, minhash("  ... ")) == 0.0  # no words: similar to nothing
    assert jaccard_estimate(empty, minhash(STORY)) == 0.0
    assert lsh_keys(empty) == []
    short = minhash("Acme raises money")  # fewer words than a shingle: one shingle
    assert jaccard_estimate(short, minhash("acme RAISES money!")) == 1.0
    assert jaccard_estimate(short, minhash("Acme raises cash")) < 0.2
    with pytest.raises(ValueError):
        jaccard_estimate(short, short[:64])


def test_lsh_keys() -> None:
    sig_a, sig_b, sig_c = minhash(STORY), minhash(SYNDICATED), minhash(SAME_TOPIC)
    keys_a = lsh_keys(sig_a)
    assert len(keys_a) == 32 and len(set(keys_a)) == 32
    assert all(k.startswith(f"b{i:02d}:") for i, k in enumerate(keys_a))
    assert keys_a == lsh_keys(sig_a.copy())
    assert set(keys_a) & set(lsh_keys(sig_b))  # the near-duplicate is a candidate
    assert not set(keys_a) & set(lsh_keys(sig_c))  # the other story is not
    assert len(lsh_keys(sig_a, bands=16)) == 16
    with pytest.raises(ValueError):
        lsh_keys(sig_a, bands=30)


def test_long_text_is_vectorized_in_blocks() -> None:
    text = " ".join(f"word{i % 9000} filler{i % 7}" for i in range(20_000))
    sig = minhash(text)
    assert sig.shape == (NUM_PERM,) and len(shingle_hashes(text)) > 4096


def _doc(
    doc_id: str, body: str, *, url: str = "", title: str = "Acme raises $120M", source: str = ""
) -> Document:
    return Document(id=doc_id, title=title, body=body, url=url, source=source)


def test_exact_keys() -> None:
    a = _doc("a", STORY, url="https://www.td.example/acme?utm_source=rss")
    b = _doc("b", "  " + STORY.upper(), url="https://td.example/acme/")
    assert exact_keys(a) == exact_keys(b)
    assert exact_keys(a)[1] == "url:https://td.example/acme"
    assert len(exact_keys(_doc("c", STORY))) == 1


def test_dedup_index() -> None:
    index = DedupIndex()
    original = _doc("orig", STORY, url="https://td.example/acme", source="TechDaily")
    index.add(original)
    index.add(_doc("other", SAME_TOPIC, url="https://other.example/acme"))

    same_url = index.match(_doc("x", "different text entirely", url="https://www.td.example/acme#top"))
    assert same_url is not None and (same_url.doc_id, same_url.kind) == ("orig", "url")

    copy = index.match(_doc("y", STORY.replace("\n", " "), url="https://mirror.example/a"))
    assert copy is not None and (copy.doc_id, copy.kind, copy.similarity) == ("orig", "content", 1.0)

    near = index.match(_doc("z", SYNDICATED, url="https://wire.example/a", title="Acme lands $120M"))
    assert near is not None and near.doc_id == "orig" and near.kind == "near"
    assert near.similarity >= NEAR_DUPLICATE

    edited = index.match(_doc("v", SAME_TOPIC.replace("In an interview,", "Speaking to reporters,")))
    assert edited is not None and (edited.doc_id, edited.kind) == ("other", "near")

    unrelated = (
        "Shares of Example Semiconductor rose sharply after it reported record quarterly revenue. " * 3
    )
    assert index.match(_doc("w", unrelated, title="Chipmaker posts record quarter")) is None
    assert index.match(original) is None  # a document does not duplicate itself
