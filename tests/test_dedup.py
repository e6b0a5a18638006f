"""index.dedup: exact and near-duplicate stories (MinHash over word shingles, LSH band keys)."""

from __future__ import annotations

import numpy as np
import pytest

from index.dedup import (
    NEAR_DUPLICATE,
    NUM_PERM,
    DedupIndex,
    exact_keys,
    jaccard_estimate,
    lsh_keys,
    minhash,
    shingle_hashes,
)
from index.documents import Document

STORY = """
Acme Robotics said on Friday it had raised 120 million dollars in a Series C funding round led by
Example Ventures, valuing the warehouse automation company at about 1.4 billion dollars.

The Boston-based firm, founded in 2016 by two former university researchers, makes mobile robots that
pick items from shelves and carry them to packing stations. Its machines are used by grocery chains,
fashion retailers and third-party logistics companies in North America and Europe.

Chief executive Maria Lopez said the new money would pay for a second factory in Leipzig, Germany, and
allow the company to double its engineering staff over the next eighteen months. The Leipzig plant is
expected to start production late next year and to employ about 400 people when it is fully running.

Demand for picking robots has grown as retailers struggle to hire and keep warehouse workers, and Acme
said its order book had tripled since the start of last year. The company expects revenue of roughly
90 million dollars this year, up from 35 million dollars last year, although it is not yet profitable.

Existing investors including Northwind Capital and Harbor Growth Partners also took part in the round.
Example Ventures partner David Chen will join the board of directors, the company said.

Analysts cautioned that competition from larger rivals remains fierce and that hardware margins are
thin. Several well-funded start-ups and established industrial groups are chasing the same customers,
and some retailers have delayed automation projects as consumer spending slows.

Still, the size of the round suggests investors continue to back automation despite a cooler funding
market for technology companies. Venture funding for robotics start-ups fell by about a fifth last year,
according to data from industry researchers, but late-stage deals for companies with strong revenue
growth have held up better than the market as a whole.

Lopez said the company had no plans to go public in the near term and would focus on expanding in
Europe, where labour shortages in logistics are particularly acute. Acme also plans to open a sales
office in Tokyo next year to serve customers in Japan and South Korea.

The company's largest customer, a European grocery chain, has installed Acme robots in eleven of its
distribution centres and plans to add six more by the end of next year. Acme says a typical site sees
the cost of picking an order fall by around a third within twelve months of installation, although
independent figures are hard to come by and results vary with the size and layout of each warehouse.

Acme sells most of its robots under a subscription model, charging customers a monthly fee per machine
that includes software updates, maintenance and spare parts. Lopez said the model made automation
affordable for mid-sized retailers that could not pay several million dollars up front, and that more
than eighty percent of revenue now came from recurring contracts.

The funding comes weeks after a rival, Beta Logistics Systems, cut a fifth of its staff and said it
would concentrate on a smaller number of large customers. Industry executives say the sector is
consolidating after a boom during the pandemic, when online orders surged and warehouse operators
rushed to add capacity.

Acme was advised on the deal by a group of investment banks and law firms that it did not name. The
round is expected to close by the end of the month, subject to regulatory approvals in Germany.
"""

# The same wire story as another outlet runs it: its own header and footer, two sentences edited, one
# sentence cut, American spelling in one place. (The headline differs too, but bodies are compared.)
HEADER = "By Staff Writer and wire reports | March 14, 2025 | 4 min read\n\n"
FOOTER = (
    "\n\nCopyright 2025 Example Wire. All rights reserved. This material may not be published, broadcast,"
    " rewritten or redistributed. Sign up for our morning newsletter."
)


def syndicate(story: str) -> str:
    edited = (
        story.replace(
            "Chief executive Maria Lopez said the new money would pay for",
            "Maria Lopez, the chief executive, said the fresh funds would be spent on",
        )
        .replace("The company expects revenue of roughly", "The company forecasts revenue of about")
        .replace(
            "Example Ventures partner David Chen will join the board of directors, the company said.", ""
        )
        .replace("labour shortages", "labor shortages")
    )
    assert edited.count("\n") == story.count("\n") and edited != story
    return HEADER + edited + FOOTER


SYNDICATED = syndicate(STORY)

# A different story on the same topic (same company, same round), written independently.
SAME_TOPIC = """
Warehouse robot maker Acme Robotics has closed a 120 million dollar Series C, with Example Ventures
leading and Northwind Capital and Harbor Growth Partners returning. The deal puts the company's value at
roughly 1.4 billion dollars, according to a person familiar with the matter.

In an interview, Lopez described the Leipzig factory as the centrepiece of a push into Europe. She
said customers there had been asking for faster delivery of robots and local service teams, and that
building in Germany would cut shipping times from months to weeks.

Acme's robots compete with products from much larger automation companies, and several customers
have tested rival systems before choosing Acme's, Lopez said. She declined to comment on margins but
said the firm would reach profitability within two years.

Investors have grown more selective about hardware start-ups, which need large amounts of capital
before they earn money. Those that do raise large rounds tend to show fast-growing sales to big
retailers, as Acme does.
"""


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
