"""Loaders: every supported format, and bad files reported by name while the rest still loads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from newsbot.index.ingest.loaders import load_paths

MD = """---
id: chip-story
title: "TSMC starts 2nm production"
source: Fab Report
url: https://fab.example/2nm
published_at: 2025-10-01
author: Ada Lee
tags: [chips, tsmc]
---
# TSMC starts 2nm production

TSMC began volume production of its **N2** process this quarter.

See [the filing](https://fab.example/filing) for details.
"""


def test_markdown_front_matter(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(MD, encoding="utf-8")
    result = load_paths([tmp_path])
    assert not result.errors
    [doc] = result.documents
    assert doc.id == "chip-story"
    assert doc.title == "TSMC starts 2nm production"
    assert doc.source == "Fab Report" and doc.author == "Ada Lee"
    assert doc.published_at == datetime(2025, 10, 1, tzinfo=UTC)
    assert doc.tags == ("chips", "tsmc")
    # Markdown syntax is reduced to text; the repeated title heading is not part of the body.
    assert doc.body.startswith("TSMC began volume production of its N2 process")
    assert "See the filing for details." in doc.body


def test_markdown_without_front_matter_uses_heading_and_file_name(tmp_path: Path) -> None:
    (tmp_path / "My Story.md").write_text("# Heading title\n\nBody sentence one. Body two.\n", encoding="utf-8")
    [doc] = load_paths([tmp_path]).documents
    assert doc.title == "Heading title" and doc.id == "my-story" and doc.body == "Body sentence one. Body two."


def test_plain_text_first_line_is_title(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("Nokia wins 5G deal\n\nNokia signed a contract.\nMore text.", encoding="utf-8")
    [doc] = load_paths([tmp_path]).documents
    assert doc.title == "Nokia wins 5G deal"
    assert doc.body == "Nokia signed a contract.\nMore text."


def test_html_main_text_not_raw_tags(tmp_path: Path) -> None:
    page = """<html><head><title>BYD tops EV sales | ChargeLine</title>
    <meta property="og:site_name" content="ChargeLine">
    <meta name="author" content="Sam Park">
    <meta property="article:published_time" content="2025-01-02T08:00:00Z"></head>
    <body><nav><a href="/">Home</a> <a href="/ev">EVs</a> <a href="/about">About us</a></nav>
    <article><h1>BYD tops EV sales</h1>
    <p>BYD sold 4.27 million vehicles in 2024, a record for the Chinese carmaker and well ahead of its
    own target for the year.</p>
    <p>Battery-electric models made up about 1.76 million of those sales, close to Tesla's 1.79 million
    deliveries over the same period.</p></article>
    <footer>Copyright ChargeLine. Subscribe to our newsletter.</footer></body></html>"""
    (tmp_path / "byd.html").write_text(page, encoding="utf-8")
    result = load_paths([tmp_path])
    assert not result.errors, result.errors
    [doc] = result.documents
    assert "BYD sold 4.27 million vehicles in 2024" in doc.body
    assert "<p>" not in doc.body and "Subscribe to our newsletter" not in doc.body and "About us" not in doc.body
    assert doc.title.startswith("BYD tops EV sales")
    assert doc.published_at is not None and doc.published_at.year == 2025


def test_json_and_jsonl_multihop_schema(tmp_path: Path) -> None:
    record = {
        "id": "mhr-doc-1", "title": "A title", "source": "TechCrunch", "url": "https://tc.example/a",
        "published_at": "2023-11-27T08:45:59+00:00", "author": None, "category": "technology",
        "body": "Body text here. Second sentence.",
    }
    (tmp_path / "one.json").write_text(json.dumps(record), encoding="utf-8")
    lines = [dict(record, id=f"mhr-doc-{i}", body=f"Story {i} body.") for i in range(2, 5)]
    (tmp_path / "many.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    result = load_paths([tmp_path])
    assert not result.errors
    ids = sorted(d.id for d in result.documents)
    assert ids == ["mhr-doc-1", "mhr-doc-2", "mhr-doc-3", "mhr-doc-4"]
    doc = next(d for d in result.documents if d.id == "mhr-doc-1")
    assert doc.source == "TechCrunch" and doc.tags == ("technology",) and doc.author == ""
    assert doc.published_at == datetime(2023, 11, 27, 8, 45, 59, tzinfo=UTC)


def test_malformed_files_are_reported_and_the_rest_loads(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(MD, encoding="utf-8")
    (tmp_path / "bad-yaml.md").write_text("---\ntitle: [unclosed\n---\nBody.\n", encoding="utf-8")
    (tmp_path / "no-close.md").write_text("---\ntitle: x\nBody without closing.\n", encoding="utf-8")
    (tmp_path / "empty-body.md").write_text("---\ntitle: Only a title\n---\n\n", encoding="utf-8")
    (tmp_path / "bad-date.md").write_text("---\ntitle: T\npublished_at: next tuesday\n---\nBody.\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x89PNG\x00\x00")
    (tmp_path / "broken.json").write_text('{"title": "x", "body": ', encoding="utf-8")
    (tmp_path / "empty.html").write_text("<html><body><nav>Home</nav></body></html>", encoding="utf-8")
    good = json.dumps({"id": "ok-1", "title": "Fine", "body": "Fine body."})
    (tmp_path / "mixed.jsonl").write_text(f'{good}\nnot json\n{{"id": "x", "title": "no body"}}\n', encoding="utf-8")
    (tmp_path / "README.md").write_text("# About this folder\n\nNot an article.\n", encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")

    result = load_paths([tmp_path, tmp_path / "missing.md"])
    assert sorted(d.id for d in result.documents) == ["chip-story", "ok-1"]
    reasons = {Path(e.path).name: e.reason for e in result.errors}
    assert "invalid YAML" in reasons["bad-yaml.md"]
    assert "no closing" in reasons["no-close.md"]
    assert "no body" in reasons["empty-body.md"]
    assert "bad published_at" in reasons["bad-date.md"]
    assert "UTF-8" in reasons["binary.txt"]
    assert "invalid JSON" in reasons["broken.json"]
    assert "empty.html" in reasons
    assert "invalid JSON" in reasons["mixed.jsonl:2"]
    assert "no body" in reasons["mixed.jsonl:3"]
    assert "no such file" in reasons["missing.md"]
    assert {Path(p).name for p in result.skipped} == {"README.md", "photo.png"}


def test_bundled_corpus_loads_cleanly() -> None:
    from tests.helpers import CORPUS

    result = load_paths([CORPUS])
    assert not result.errors, result.errors
    docs = result.documents
    assert len(docs) >= 21
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.title and d.source and d.published_at for d in docs)
    seed = next(d for d in docs if "Leica" in d.title and d.source == "Weibo")
    assert "$3 to $5" in seed.body
    years = {d.published_at.year for d in docs if d.published_at}
    assert len(years) >= 2
    assert len({d.source for d in docs}) >= 6
