"""Stories: the articles of a period grouped by the event they report (see `stories.py`, `cluster.py`).

    find_stories(reader, Filters(since=..., until=...))  -> [Story], most outlets first, then most recent
    topic_matches(reader, embedder, "OpenAI", filters)   -> {doc_id: cosine} of the articles about a topic

The lead sentence of a story is chosen on the answer side (`newsbot.bot.digest`), like an answer's lead.
"""
