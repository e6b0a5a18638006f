"""The embedded store: articles, passages and a bm25 keyword index in SQLite; passage vectors in FAISS.

Layout of an index folder (default `./.newsbot/`)::

    CURRENT                      name of the live generation (replaced atomically)
    generations/<name>/
        manifest.json            model, dimension, chunking settings, counts (mirrors the `meta` table)
        index.sqlite             documents, chunks, chunks_fts (FTS5, bm25), meta, pending_vectors,
                                 dedup_signatures + dedup_keys (MinHash near-duplicate lookup)
        vectors-<version>.faiss  snapshot of passage vectors, FAISS ids = chunk ids; exact below the
                                 `vector_index_exact_max` setting, IVF with 8-bit codes from there on
                                 (chosen by each full build and compaction: vector_index.py)
    cache/vectors.sqlite         vector cache keyed by (model, passage hash), shared by all generations
    write.lock                   held by whoever builds or updates (one writer at a time)

A full build writes a new generation and then replaces CURRENT, so a crash half-way leaves the old
generation live. An update changes the live generation in place, in one SQLite transaction: articles,
passages, keyword rows, near-duplicate keys and the new passages' vectors (`pending_vectors`) commit
together or not at all, so a crash (even SIGKILL) before the commit leaves the previous version intact.
The FAISS file is a snapshot: a reader searches it, skipping the vectors of passages removed since
(`stale_vectors`), plus a small in-memory index of the pending vectors; when an update commits, a reader
of the same snapshot reopens by reading only those two tables and keeps sharing the snapshot it has
in memory. An update rewrites the snapshot only when pending plus stale vectors reach `COMPACT_RATIO`
of the index ("compaction"): it writes the next FAISS file first,
then commits the transaction that names it and empties `pending_vectors`; a crash in between leaves an
orphan file that the next commit removes. So adding an article to a large index costs a few SQLite rows,
not a rewrite of every vector. Chunk ids are never reused: an id names one passage in every file.
Readers resolve every hit through SQLite, so a passage removed by an update is never returned, even by a
reader whose FAISS copy is older.

    layout.py        the folder: generations, CURRENT, the write lock, manifests, the live generation's articles
    sqlite.py        a generation's SQLite file: schema and connections
    snapshot.py      FAISS snapshot files and the vectors added (`pending_vectors`) or removed since
    vector_index.py  which FAISS index a snapshot is, by size (exact or IVF with 8-bit codes)
    keyword_scores.py  bm25 top k from cached per-word FTS5 scores
    filters.py       outlet/date filters as numpy masks by chunk id
    writer.py        GenerationWriter: full builds and updates
    reader.py        GenerationReader: dense and keyword search, passages, articles
    backend.py       EmbeddedBackend: all of it behind `index.store.base.StoreBackend`
"""
