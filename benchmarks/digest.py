#!/usr/bin/env python3
"""Story digests on MultiHop-RAG's 609 dated news articles (Sep-Dec 2023), week by week.

    python benchmarks/digest.py [--index-dir DIR] [--docs FILE] [--queries FILE] [--limit N] [--set K=V]

Uses the index benchmarks/multihop.py builds (same folder, same stamp: reused while the corpus, model and
chunking are unchanged, built with `Engine.build` when missing or stale; --index-dir points at another,
e.g. an existing build, which is only read when its stamp matches). Then builds one digest per week
(Monday 00:00 to Sunday 23:59:59 UTC, 2023-09-25 to 2023-12-31) through `Engine.digest`, the path
`newsbot digest` and `/digest` take, and prints ONE JSON line:

  weeks                       weeks digested
  stories_per_week            stories the week's articles were grouped into, per week (and _mean)
  articles_per_week           articles published in each week
  citations_in_period         share of digest lines (one per story shown) whose every cited article was
                              published inside the week (must be 1.0)
  near_duplicate_story_pairs  share of pairs of stories shown in one digest that are near-duplicates of each
                              other: some article of one and some article of the other are near-duplicate
                              texts (MinHash Jaccard >= the index's near-duplicate threshold, 0.7), or
                              their lead sentences share >= 60 % of their words (must be <= 0.02)
  lead_from_own_article       share of stories whose lead sentence is quoted word for word from an article of
                              the story that it cites (must be 1.0)
  p50_build_s, p95_build_s    seconds to build a week's digest (warm: model loaded, index open)
  clustering                  agreement with MultiHop-RAG's inference questions (dev split), whose evidence
                              articles are about one bridge entity ("Sam Altman", "OpenAI"):
    pair_recall               of the pairs of evidence articles of one question published within 3 days of
                              each other (the clustering's window) in the same week, the share put in one story
    pair_precision            of the pairs of articles put in one story where both are evidence of some
                              inference question, the share linked by those questions (same question, or a
                              chain of questions sharing evidence). A pair is counted wrong when its two
                              articles answer unrelated questions; articles no question uses are not judged.
    positive_pairs, judged_pairs  how many pairs each share is taken over (small numbers: read with care)
  Both are proxies: one bridge entity is not always one event (a recall miss can be right), and two
  articles no question connects can still report one event (a precision miss can be right too).

Progress goes to stderr. No article text is written anywhere.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for p in (REPO, BENCH):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
import multihop  # noqa: E402 - the shared index, stamp and helpers (it imports newsbot.index first: telemetry off)

FIRST_WEEK = datetime(2023, 9, 25, tzinfo=UTC)  # a Monday; the corpus starts on 2023-09-26
END = datetime(2024, 1, 1, tzinfo=UTC)
WINDOW_DAYS = 3
LEAD_SIMILAR = 0.6


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def weeks() -> list[tuple[datetime, datetime]]:
    out = []
    start = FIRST_WEEK
    while start < END:
        out.append((start, start + timedelta(days=7) - timedelta(microseconds=1)))
        start += timedelta(days=7)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, default=multihop.DEFAULT_INDEX,
                    help=f"benchmark index (cached; default {multihop.DEFAULT_INDEX.relative_to(REPO)}, shared "
                         "with benchmarks/multihop.py)")
    ap.add_argument("--docs", type=Path, default=multihop.DATA / "docs.jsonl", help="articles to index")
    ap.add_argument("--queries", type=Path, default=multihop.DATA / "queries_dev.jsonl",
                    help="questions whose evidence groups judge the clustering")
    ap.add_argument("--limit", type=int, default=10, help="stories per digest (default 10)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting for this run (repeatable)")
    args = ap.parse_args(argv)

    from newsbot.bot.config import load_settings
    from newsbot.bot.engine import Engine

    overrides = multihop.parse_overrides(args.set)
    engine = Engine(load_settings({**overrides, "index_dir": str(args.index_dir), "store": "faiss"}))
    multihop.ensure_index(engine, args.docs)
    engine.warm_up()
    reader = engine.reader()
    queries = [json.loads(line) for line in open(args.queries, encoding="utf-8") if line.strip()]

    digests, seconds = [], []
    for since, until in weeks():
        t0 = time.perf_counter()
        digest = engine.digest(since=since, until=until, limit=args.limit)
        seconds.append(time.perf_counter() - t0)
        digests.append(digest)
        log(f"  week of {since:%Y-%m-%d}: {digest.articles} articles, {digest.total_stories} stories, "
            f"{seconds[-1]:.2f} s")

    bodies: dict[str, str] = {}

    def body(doc_id: str) -> str:
        if doc_id not in bodies:
            found = reader.document(doc_id)
            bodies[doc_id] = found[0].body if found else ""
        return bodies[doc_id]

    result = {
        "weeks": len(digests),
        "stories_per_week": [d.total_stories for d in digests],
        "stories_per_week_mean": round(sum(d.total_stories for d in digests) / max(1, len(digests)), 2),
        "articles_per_week": [d.articles for d in digests],
        "citations_in_period": citations_in_period(digests),
        "near_duplicate_story_pairs": near_duplicate_pairs(digests, body),
        "lead_from_own_article": leads_from_own_articles(digests, body),
        "p50_build_s": round(multihop.percentile(seconds, 0.5), 3),
        "p95_build_s": round(multihop.percentile(seconds, 0.95), 3),
        "clustering": clustering_agreement(engine, queries),
    }
    print(json.dumps(result))
    return 0


def citations_in_period(digests: list) -> float:  # noqa: ANN001
    lines = ok = 0
    for d in digests:
        for story in d.stories:
            lines += 1
            ok += all(s.published_at is not None and d.since <= s.published_at <= d.until for s in story.sources)
    return round(ok / lines, 4) if lines else 1.0


def near_duplicate_pairs(digests: list, body) -> float:  # noqa: ANN001
    from newsbot.bot.answer.extractive.words import term_set
    from newsbot.index.ingest.dedup import NEAR_DUPLICATE, jaccard_estimate, minhash

    signatures: dict[str, object] = {}

    def sig(doc_id: str):  # noqa: ANN202
        if doc_id not in signatures:
            signatures[doc_id] = minhash(body(doc_id))
        return signatures[doc_id]

    pairs = dup = 0
    for d in digests:
        for a, b in itertools.combinations(d.stories, 2):
            pairs += 1
            ta, tb = term_set(a.story.lead), term_set(b.story.lead)
            same_lead = bool(ta | tb) and len(ta & tb) / len(ta | tb) >= LEAD_SIMILAR
            same_text = any(jaccard_estimate(sig(x.doc.id), sig(y.doc.id)) >= NEAR_DUPLICATE
                            for x in a.story.articles for y in b.story.articles)
            dup += same_lead or same_text
    return round(dup / pairs, 4) if pairs else 0.0


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def leads_from_own_articles(digests: list, body) -> float:  # noqa: ANN001
    """A lead counts when it is cited to articles of its own story and every sentence of it (a lead may be a
    sentence with the one it points back at) is in the body of the first article it cites."""
    from newsbot.index.text import sentence_spans

    stories = ok = 0
    for d in digests:
        for story in d.stories:
            stories += 1
            own = {a.doc.id for a in story.story.articles}
            cited = [s.doc_id for s in story.sources if s.states_lead]
            if not story.story.lead or not cited or not set(story.story.lead_doc_ids) <= own:
                continue
            text = _squash(body(story.story.lead_doc_ids[0]))
            lead = story.story.lead
            pieces = [_squash(lead[s:e]) for s, e, _ in sentence_spans(lead)] or [_squash(lead)]
            ok += all(p in text for p in pieces)
    return round(ok / stories, 4) if stories else 1.0


def clustering_agreement(engine, queries: list[dict]) -> dict:  # noqa: ANN001
    """Pair precision and recall against the inference questions' evidence (see the module doc), over the
    full clustering of each week (every story, not only those shown)."""
    from newsbot.index.hits import Filters
    from newsbot.index.stories.stories import find_stories

    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    positives: set[tuple[str, str]] = set()
    for q in queries:
        if q.get("question_type") != "inference_query":
            continue
        ids = sorted({e["doc_id"] for e in q.get("evidence", []) if e.get("doc_id")})
        for a, b in itertools.combinations(ids, 2):
            parent[root(a)] = root(b)
            positives.add((a, b))
    labelled = set(parent)
    reader = engine.reader()
    hit = total = right = judged = 0
    for since, until in weeks():
        stories = find_stories(reader, Filters((), since, until))
        story_of = {a.doc.id: n for n, s in enumerate(stories) for a in s.articles}
        when = {a.doc.id: a.doc.published_at for s in stories for a in s.articles}
        for a, b in positives:
            if a in story_of and b in story_of and abs((when[a] - when[b]).total_seconds()) <= WINDOW_DAYS * 86400:
                total += 1
                hit += story_of[a] == story_of[b]
        for s in stories:
            ids = [a.doc.id for a in s.articles if a.doc.id in labelled]
            for a, b in itertools.combinations(ids, 2):
                judged += 1
                right += root(a) == root(b)
    return {
        "pair_precision": round(right / judged, 4) if judged else None,
        "pair_recall": round(hit / total, 4) if total else None,
        "positive_pairs": total,
        "judged_pairs": judged,
    }


if __name__ == "__main__":
    sys.exit(main())
