"""Articles in: files, web pages and feeds become `Document`s; duplicate stories are recognised.

    loaders.py  Markdown (YAML front matter), text, HTML, JSON/JSONL files and folders
    fetch.py    one safe HTTP(S) GET (address checks, redirects, size cap, one deadline)
    html.py     article pages: main text and metadata (trafilatura, offline)
    feeds.py    RSS / Atom / RDF: parsing, conditional polling, entries as documents
    dedup.py    exact copies and near-duplicates (MinHash, LSH keys)
"""
