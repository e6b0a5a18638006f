"""Issue #14, resource abuse and clear errors: hostile files, pages, links and bytes, generated here.

Every test runs the real thing: the `newsbot` command as a subprocess, the real embedding model,
SQLite and FAISS, and hostile pages served over HTTP from 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from newsbot.bot.config import Settings
from newsbot.bot.engine import Engine
from newsbot.bot.questions import QuestionRejected
from tests.helpers import REPO, make_settings, write_article
from tests.http_fixtures import LocalServer


def _cli(*args: str | bytes, index_dir: Path, stdin: bytes | None = None, **env: str
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "newsbot.bot.cli", "--index-dir", str(index_dir), *args], input=stdin, cwd=REPO,
        capture_output=True, timeout=600, env={**os.environ, **env},
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )


def _filler(words: int, seed: str) -> str:
    """Readable sentences (about 6 bytes a word) that mention `seed`."""
    sentence = f"The {seed} supplier shipped more modules to handset makers this quarter than last year."
    return textwrap.fill(" ".join([sentence] * (words // 14 + 1)), 100)


# ---------------------------------------------------------------------------------------- 6. size limits


@pytest.mark.slow
def test_articles_over_max_article_bytes_are_refused_with_one_line(corpus_copy: Path, tmp_path: Path) -> None:
    """Point 6: a file or fetched page bigger than `max_article_bytes` is refused by name, in one line,
    before it costs anything; the small ones in the same command are added."""
    limit = 40_000
    folder = tmp_path / "in"
    small = write_article(folder, "small.md", title="Small Wire Story", body=_filler(300, "Plonkwerk"))
    big = folder / "big.txt"
    big.write_text("Huge Dump\n" + _filler(8_000, "Zorblatt"), encoding="utf-8")  # ≈ 50 KB
    assert big.stat().st_size > limit
    big_page = f"<html><head><title>Huge page</title></head><body><article><h1>Huge page</h1>" \
               f"<p>{_filler(8_000, 'Quiffle')}</p></article></body></html>".encode()
    ok_page = f"<html><head><title>Fine page</title></head><body><article><h1>Fine page</h1>" \
              f"<p>{_filler(300, 'Drubnic')}</p></article></body></html>".encode()
    with LocalServer() as web:
        web.add("/big", big_page)
        web.add("/ok", ok_page)
        proc = _cli("add", str(small), str(big), web.url("/big"), web.url("/ok"), index_dir=corpus_copy,
                    NEWSBOT_MAX_ARTICLE_BYTES=str(limit), NEWSBOT_ALLOW_PRIVATE_URLS="true")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    failed = [line for line in proc.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 2, proc.stderr
    assert any(str(big) in line and "max_article_bytes" in line and "40,000" in line for line in failed), failed
    assert any(web.url("/big") in line and "max_article_bytes" in line for line in failed), failed
    engine = Engine(make_settings(corpus_copy))
    assert engine.search("Plonkwerk supplier")[0].title == "Small Wire Story"
    assert engine.search("Drubnic supplier")[0].title == "Fine page"
    assert not any("Zorblatt" in h.text or "Quiffle" in h.text for h in engine.search("Zorblatt Quiffle supplier"))

    # The default is sized for a small machine: one byte over it is refused before anything is embedded.
    default = Settings().max_article_bytes
    assert 200_000 <= default <= 2_000_000
    huge = tmp_path / "huge.txt"
    huge.write_text("Default Cap\n" + _filler(default // 6, "Capstone"), encoding="utf-8")
    assert huge.stat().st_size > default
    report = Engine(make_settings(corpus_copy)).add([huge])
    assert report.embedded == 0 and len(report.errors) == 1 and "max_article_bytes" in report.errors[0].reason


@pytest.mark.slow
def test_embedding_streams_passages_in_bounded_batches(tmp_path: Path) -> None:
    """Point 6: memory while embedding does not grow with the article: the model sees (and tokenizes) the
    passages a bounded batch at a time, however many there are."""
    from newsbot.index.embedding.factory import get_embedder

    real = get_embedder("all-MiniLM-L6-v2", "onnx")
    seen: dict[str, list[int]] = {"token_ids": [], "encode": []}

    class Watched:  # the real model; only records how many texts each call hands it
        model_name, key, dim = real.model_name, real.key, real.dim

        def token_ids(self, texts):  # noqa: ANN001, ANN202
            seen["token_ids"].append(len(texts))
            return real.token_ids(texts)

        def encode(self, texts, batch_size=32):  # noqa: ANN001, ANN202
            seen["encode"].append(len(texts))
            return real.encode(texts, batch_size=batch_size)

    from newsbot.index.build import BuildOptions, build_index
    from newsbot.index.documents import Document

    body = "\n\n".join(f"Paragraph {i} says the Zorblatt modem shipped in quantity {i}." for i in range(700))
    doc = Document(id="long-one", title="Long one", body=body)
    report = build_index(tmp_path / "idx", [doc], Watched(), BuildOptions(real.key, chunk_tokens=24, chunk_overlap=0))
    assert report.chunks > 600 and report.embedded == report.chunks
    assert sum(seen["encode"]) == report.chunks
    assert max(seen["token_ids"]) <= 256, seen["token_ids"]
    assert max(seen["encode"]) <= 64, seen["encode"]


# ---------------------------------------------------------------------------------------- 9. links


SPOOF = "[https://bank.example/login](https://evil.example/phish)"
BAD_URL = "https://news.example/story)[Reset your password](https://evil.example/reset"


def _masked_links(text: str) -> list[tuple[str, str]]:
    """(shown text, target) of every masked link Discord's markdown would render in `text` (its link rule,
    with backslash escapes taking precedence as they do in its parser)."""
    out = []
    i = 0
    rule = re.compile(r"\[((?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*)\]\(\s*<?((?:\([^)]*\)|[^\s\\]|\\.)*?)>?"
                      r"(?:\s+['\"]([\s\S]*?)['\"])?\s*\)")
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        m = rule.match(text, i) if text[i] == "[" else None
        if m:
            out.append((m.group(1), m.group(2)))
            i = m.end()
        else:
            i += 1
    return out


def test_article_links_cannot_spoof_in_answers(tmp_path: Path) -> None:
    """Point 9: a masked link in article text and a `)` (or a non-web scheme) in an article's url cannot
    produce a link whose shown text differs from where it goes, on Discord or in the terminal."""
    from newsbot.bot.discordbot.render import answer_replies, document_embed, hit_block, latest_embed

    records = [
        {"id": "bank-phish", "title": "Acme Bank moves its login page", "source": "Wire", "url": BAD_URL,
         "published_at": "2025-03-01",
         "body": f"Acme Bank customers must now sign in at {SPOOF} to keep their accounts. "
                 "The Acme Bank login move was announced on Monday by the bank's security chief. "
                 "Acme Bank said the new login page uses passkeys."},
        {"id": "acme-script", "title": "Acme Bank \x1b]8;;https://evil.example/\x07outage\x1b]8;;\x07 report",
         "source": "Wire", "url": "javascript:alert(document.cookie)", "published_at": "2025-03-02",
         "body": "Acme Bank's app had an outage on Tuesday. Acme Bank blamed a login server for the outage."},
    ]
    corpus = tmp_path / "hostile.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    index_dir = tmp_path / "idx"
    engine = Engine(make_settings(index_dir))
    engine.build([corpus])
    answer = engine.ask("Where do Acme Bank customers sign in now, and what about the Acme Bank outage?")
    assert answer.found and "bank.example/login" in answer.text, answer.text
    assert {c.doc_id for c in answer.citations} == {"bank-phish", "acme-script"}

    shown: list[str] = []
    for embeds in (True, False):
        for reply in answer_replies(answer, embeds=embeds):
            shown.append(reply.content)
            shown += [e.description or "" for e in reply.embeds]
    hits = engine.search("Acme Bank login")
    shown += [hit_block(i, h) for i, h in enumerate(hits, 1)]
    docs = [engine.document("bank-phish")[0], engine.document("acme-script")[0]]
    shown.append(latest_embed(docs).description or "")
    for doc in docs:
        embed = document_embed(doc, 1)
        shown.append(embed.description or "")
        assert embed.url in (None, "") or urlsplit(embed.url).hostname == "news.example"
    links = [link for text in shown for link in _masked_links(text)]
    assert links, "the sources are still links"
    for label, target in links:
        assert urlsplit(target).scheme == "https" and urlsplit(target).hostname == "news.example", (label, target)
        assert "://" not in label, (label, target)
    joined = "\n".join(shown)
    assert "javascript:" not in joined and "evil.example/phish)" not in "".join(t for _, t in links)
    assert "bank.example/login" in joined, "the article's words are kept, only defused"

    # The terminal: no escape sequences from article text, only http(s) addresses.
    proc = _cli("ask", "Where do Acme Bank customers sign in now, and what about the Acme Bank outage?",
                index_dir=index_dir)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "javascript:" not in proc.stdout
    assert "https://news.example/story%29%5BReset" in proc.stdout


# ---------------------------------------------------------------------------------------- 10. bad bytes


@pytest.mark.slow
def test_invalid_utf8_in_questions_is_repaired_not_a_traceback(corpus_index: Path, engine: Engine) -> None:
    """Point 10: bytes that are not UTF-8 in a question (argv, a chat line, a lone surrogate through the
    API) are repaired like any other bad input; `chat` keeps going."""
    proc = _cli("ask", b"Why is Xiaomi dropping Leica? \xff", index_dir=corpus_index)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "$3 to $5" in proc.stdout

    proc = _cli("chat", index_dir=corpus_index, stdin=b"Leica \xff\xfe\nWhy is Xiaomi dropping Leica?\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "$3 to $5" in proc.stdout

    answer = engine.ask("Why is Xiaomi dropping Leica?\ud800")
    assert answer.found and "\ud800" not in answer.question
    json.dumps(answer.question, ensure_ascii=False).encode("utf-8")  # printable and storable
    assert engine.search("Leica \udcff")
    with pytest.raises(QuestionRejected):
        engine.ask("\ud800\udcff  ")


# ---------------------------------------------------------------------------------------- 11. damaged index


def _damage(index_dir: Path) -> None:
    for db in (index_dir / "generations").glob("*/index.sqlite"):
        data = bytearray(db.read_bytes())
        data[:4096] = b"\x00not a database\x00" * 256
        db.write_bytes(bytes(data))


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and proc.returncode == 2, (proc.returncode, proc.stderr)
    return lines[0]


@pytest.mark.slow
def test_every_command_on_a_damaged_index_says_rebuild(corpus_copy: Path, tmp_path: Path) -> None:
    """Point 11: add, remove, update, search, stats, ask say the same short line on a damaged index;
    `build` rebuilds it; a damaged state database gets one clear line too."""
    story = write_article(tmp_path / "in", "story.md", title="Fresh story", body=_filler(100, "Plinth"))
    with LocalServer() as web:
        web.add("/a", b"<html><body><article><h1>A</h1><p>" + _filler(200, "Gorp").encode() + b"</p></article>"
                      b"</body></html>")
        web.add("/feed.xml", f"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<link>{web.url('/')}</link><description>d</description><item><title>A</title><link>{web.url('/a')}</link>
<guid>a</guid></item></channel></rss>""".encode(), content_type="application/rss+xml")
        env = {"NEWSBOT_ALLOW_PRIVATE_URLS": "true"}
        assert _cli("feeds", "add", web.url("/feed.xml"), index_dir=corpus_copy, **env).returncode == 0
        _damage(corpus_copy)
        said = {}
        for args in (("add", str(story)), ("remove", "xiaomi-leica"), ("update",), ("search", "Leica"),
                     ("stats",), ("ask", "Why is Xiaomi dropping Leica?")):
            line = _one_line_error(_cli(*args, index_dir=corpus_copy, **env))
            assert line.startswith("error: ") and "unreadable" in line and "newsbot build" in line, (args, line)
            said[args[0]] = line
        assert len(set(said.values())) == 1, said
        proc = _cli("feeds", "list", index_dir=corpus_copy)  # the feed list is not in the damaged file
        assert proc.returncode == 0 and web.url("/feed.xml") in proc.stdout

    proc = _cli("build", str(REPO / "docs_corpus"), index_dir=corpus_copy)
    assert proc.returncode == 0, proc.stderr
    assert _cli("stats", index_dir=corpus_copy).returncode == 0

    state = corpus_copy / "state.sqlite"
    state.write_bytes(b"\x00garbage" * 512)
    for args in (("feeds", "list"), ("update",)):
        line = _one_line_error(_cli(*args, index_dir=corpus_copy))
        assert "state.sqlite" in line and "unreadable" in line, line


# ---------------------------------------------------------------------------------------- 12. symlinks


@pytest.mark.slow
def test_links_leaving_the_folder_are_skipped_unless_asked(tmp_path: Path) -> None:
    """Point 12: a symlink inside a folder given to build/add that points outside it is not followed
    (reported as skipped), unless --follow-links; links staying inside the folder are fine."""
    outside = tmp_path / "outside"
    secret = write_article(outside, "secret.md", title="Private memo", body=_filler(100, "Vexbrill"))
    folder = tmp_path / "news"
    write_article(folder, "story.md", title="Public story", body=_filler(100, "Plonkwerk"))
    (folder / "memo.md").symlink_to(secret)
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "more").symlink_to(outside, target_is_directory=True)
    (folder / "sub").mkdir()
    (folder / "sub" / "again.md").symlink_to(folder / "story.md")  # inside the folder: allowed

    index_dir = tmp_path / "idx"
    proc = _cli("build", str(folder), index_dir=index_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "memo.md" in proc.stderr and "passwd.txt" in proc.stderr and "--follow-links" in proc.stderr
    engine = Engine(make_settings(index_dir))
    passages = " ".join(h.passage for h in engine.search("root daemon bin bash Vexbrill private memo", limit=50))
    assert "root:" not in passages and "Vexbrill" not in passages
    assert engine.stats().documents == 1

    proc = _cli("add", str(folder), index_dir=index_dir)
    assert proc.returncode == 0 and "memo.md" in proc.stderr, proc.stderr
    assert Engine(make_settings(index_dir)).stats().documents == 1

    proc = _cli("add", "--follow-links", str(folder), index_dir=index_dir)
    assert proc.returncode == 0, proc.stderr
    engine = Engine(make_settings(index_dir))
    assert any("Vexbrill" in h.text for h in engine.search("Vexbrill supplier"))
    shutil.rmtree(index_dir)
    proc = _cli("build", "--follow-links", str(folder), index_dir=index_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Vexbrill" in " ".join(h.text for h in Engine(make_settings(index_dir)).search("Vexbrill supplier"))
