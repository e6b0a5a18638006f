"""newsbot.index (the folder index/): articles in, ranked passages out. It never imports newsbot.bot.

    files, pages, feeds ─ingest─> Documents ─chunking─> passages ─embedding─> vectors ─┐
                                                                                      ├─store─> a generation
                                            passages ─text (keyword terms)───────────┘
    question ─retrieval (query analysis, hybrid search, grounding)─> Hits

build.py runs the first row (a full build, or an update in place); docs/inside.md has one line per module.
"""
