#!/usr/bin/env python3
"""Calibrating the follow threshold on MultiHop-RAG: which articles does `/follow topic:X` post?

    python benchmarks/follow.py [--index-dir DIR] [--docs FILE] [--queries FILE]

A follow matches an article by the hybrid rule of `index.stories.topic.topic_scores`: some passage is
close to the topic in meaning (cosine >= min_cosine), or contains one of the topic's words and is not far
from it (cosine >= min_cosine_with_words). This script measures that rule over a grid of both thresholds.

Labels (honest proxies, read with care). Topics are the answers of MultiHop-RAG's inference questions
(the dev split): each names the bridge entity its evidence articles are about ("OpenAI", "Sam Altman",
"Amazon"), kept when at least 2 evidence articles name it. For a topic:
  relevant   = its evidence articles (every article some question about that entity cites): recall is
               taken over these (an article the data set says is about the entity must be posted);
  acceptable = relevant, or an article whose headline names the entity (it is about it even if no
               question uses it): precision is taken against these. An article posted that neither is
               evidence nor names the entity in its headline counts as noise, even if its body is about
               the entity, so `precision` is a lower bound; `precision_lenient` also accepts an article
               whose body names the entity at least twice (closer to what a reader would call relevant,
               but a passing mention repeated twice passes too: an upper-side estimate).
Prints ONE JSON line: per threshold pair precision, recall and F0.5 (precision weighted twice: a channel
full of noise gets unfollowed), the best pair by F0.5, and the pair follows use now (`bot.follows`).

Uses the index benchmarks/multihop.py builds (cached in benchmarks/out, shared). Progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for p in (REPO, BENCH):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
import multihop  # noqa: E402 - the shared index, stamp and helpers (it imports newsbot.index first: telemetry off)

GRID_COSINE = [0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]
GRID_WORDED = [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]


def topics_from(queries: Path, titles: dict[str, str]) -> dict[str, set[str]]:
    """bridge entity -> its evidence doc ids (inference questions; entities cited by >= 2 articles)."""
    out: dict[str, set[str]] = {}
    for line in queries.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q.get("question_type") != "inference_query":
            continue
        answer = " ".join(str(q.get("answer", "")).split())
        if not answer or len(answer) > 40 or answer.lower() in multihop.YES_NO:
            continue
        out.setdefault(answer, set()).update(e["doc_id"] for e in q["evidence"] if e["doc_id"] in titles)
    return {t: ids for t, ids in out.items() if len(ids) >= 2}


def names_in_title(topic: str, title: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(topic.lower())}(?!\w)", title.lower()) is not None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", type=Path, default=multihop.DEFAULT_INDEX)
    ap.add_argument("--docs", type=Path, default=multihop.DATA / "docs.jsonl")
    ap.add_argument("--queries", type=Path, default=multihop.DATA / "queries_dev.jsonl")
    args = ap.parse_args(argv)

    from newsbot.bot.config import load_settings
    from newsbot.bot.engine import Engine
    from newsbot.bot.follows import FOLLOW_MIN_COSINE, FOLLOW_MIN_COSINE_WITH_WORDS
    from newsbot.index.text import keyword_terms

    engine = Engine(load_settings({"index_dir": str(args.index_dir)}, env={}))
    multihop.ensure_index(engine, args.docs)
    reader = engine.reader()
    docs = {d.id: d for d in reader.documents()}
    titles = {i: d.title for i, d in docs.items()}
    topics = topics_from(args.queries, titles)
    multihop.log(f"{len(topics)} topics over {len(docs)} articles")

    ids = sorted(docs)
    passage_ids = reader.passage_ids(ids)
    flat = [(doc_id, cid) for doc_id in ids for cid in passage_ids.get(doc_id, [])]
    chunk_ids = [cid for _, cid in flat]
    hits = reader.hits(chunk_ids)
    vectors = reader.vectors(chunk_ids)
    terms = [set(keyword_terms(hits[cid].text)) if cid in hits else set() for cid in chunk_ids]
    row_doc = np.array([ids.index(d) for d, _ in flat])
    names = list(topics)
    qvecs = engine.query_embedder.encode(names)

    # per topic and article: best cosine of any passage, best cosine of a passage with one of its words
    best = np.full((len(names), len(ids)), -1.0)
    best_worded = np.full((len(names), len(ids)), -1.0)
    cos = vectors @ np.asarray(qvecs, dtype=np.float32).T  # (passages, topics)
    for t, name in enumerate(names):
        words = set(keyword_terms(name))
        worded = np.array([bool(words) and not words.isdisjoint(ws) for ws in terms])
        np.maximum.at(best[t], row_doc, cos[:, t])
        np.maximum.at(best_worded[t], row_doc, np.where(worded, cos[:, t], -1.0))

    relevant = np.zeros_like(best, dtype=bool)
    acceptable = np.zeros_like(best, dtype=bool)
    lenient = np.zeros_like(best, dtype=bool)
    for t, name in enumerate(names):
        pattern = re.compile(rf"(?<!\w){re.escape(name.lower())}(?!\w)")
        for j, doc_id in enumerate(ids):
            relevant[t, j] = doc_id in topics[name]
            acceptable[t, j] = relevant[t, j] or names_in_title(name, titles[doc_id])
            lenient[t, j] = acceptable[t, j] or len(pattern.findall(docs[doc_id].body.lower())) >= 2

    grid = []
    for c in GRID_COSINE:
        for w in GRID_WORDED:
            if w > c:
                continue
            posted = (best >= c) | (best_worded >= w)
            tp_r = int((posted & relevant).sum())
            recall = tp_r / max(1, int(relevant.sum()))
            precision = int((posted & acceptable).sum()) / max(1, int(posted.sum()))
            precision_lenient = int((posted & lenient).sum()) / max(1, int(posted.sum()))
            f05 = 1.25 * precision * recall / max(1e-9, 0.25 * precision + recall)
            f05_lenient = 1.25 * precision_lenient * recall / max(1e-9, 0.25 * precision_lenient + recall)
            grid.append({"min_cosine": c, "min_cosine_with_words": w, "precision": round(precision, 3),
                         "precision_lenient": round(precision_lenient, 3), "recall": round(recall, 3), "f05": round(f05, 3), "f05_lenient": round(f05_lenient, 3),
                         "posted_per_topic": round(float(posted.sum()) / len(names), 1)})
    best_pair = max(grid, key=lambda g: (g["f05"], g["precision"]))
    best_lenient = max(grid, key=lambda g: (g["f05_lenient"], g["precision"]))
    current = next(g for g in grid if g["min_cosine"] == FOLLOW_MIN_COSINE
                   and g["min_cosine_with_words"] == FOLLOW_MIN_COSINE_WITH_WORDS)
    print(json.dumps({"topics": len(names), "articles": len(ids), "relevant_pairs": int(relevant.sum()),
                      "best": best_pair, "best_lenient": best_lenient, "current": current, "grid": grid}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
