"""Questions in, ranked passages out.

    query.py       question analysis: outlets, dates and the parts of a multi-part question; names
    vocabulary.py  the index's own outlets (the lexicon questions are matched against) and word idf
    options.py     SearchOptions, with the bot's defaults
    search.py      hybrid search: dense + bm25 per part, fused, re-scored by best sentence, capped
    grounding.py   what a question names that the index lacks (answered "not found")
"""
