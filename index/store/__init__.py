"""Where the index lives: articles, passages, their vectors and keyword index, by generation.

    base.py       what every store provides (StoreReader, StoreWriter, StoreBackend), Manifest, errors
    catalog.py    the articles in SQL: the statements both stores share, written once
    locks.py      the one file lock (builds, updates, feed updates)
    sql.py        one database layer for SQLite and PostgreSQL
    articles.py   the article store: copies of added and fetched articles, in the state database
    backends.py   open_backend(settings): the embedded store or Milvus
    embedded/     FAISS + SQLite files in the index folder (the default)
    milvus/       Milvus + an SQL database (scaling out)
"""
