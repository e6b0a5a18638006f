"""The distributed store: passages in Milvus (dense vectors + BM25 + metadata), articles in SQL.

The search code (`index.retrieval`) reaches a store only through the reader interface that
`index.store.base.StoreReader` declares: `dense_search`, `keyword_search`, `hits`, `vectors`, `document`,
`documents`, `latest`, `source_counts`, `sources`, `has_passage_with_all`, `manifest`, `stored_version`.
`MilvusReader` implements the same methods, so query analysis, fusion, diversity and answers are shared.
`MilvusWriter` offers the writer operations `index.build` uses (`StoreWriter`) (add, remove,
find_duplicate, find_by_url, find_near_duplicate, document_row, add_also_reported, commit, abort).

Where things live
-----------------
* **Milvus, one collection per generation** (`<prefix>_g<timestamp>`; the alias `<prefix>` points at the
  live one): one row per passage with its text, the article's metadata (doc id, title, outlet and its
  case-folded key, url, author, `published_ts` as epoch seconds, `MISSING_DATE` when undated), a
  `FLOAT_VECTOR` (inner product of unit vectors = cosine) and a `SPARSE_FLOAT_VECTOR` that Milvus's BM25
  function computes from `search_text` on insert. Every search runs in Milvus only.
* **SQL (`index.store.sql.Database`: SQLite file or PostgreSQL)**: article bodies and the bookkeeping an
  update needs: which passages of which article are live (`store_chunks`), content hashes and canonical
  URLs (exact duplicates), MinHash signatures and LSH keys (near duplicates), manifests and which
  generation is live. Article bodies are unbounded (Milvus VARCHAR stops at 65,535 bytes), these lookups
  are relational (GROUP BY outlet, newest first, joins of keys), and — the main reason — SQL gives the
  transaction that makes an update atomic, which Milvus does not have.

Atomic updates without Milvus transactions
------------------------------------------
A passage is *visible* only while `store_chunks` lists it; readers drop every other Milvus row. A writer
streams new passages into Milvus (invisible), then commits one SQL transaction that switches the
article rows and `store_chunks` over and records the replaced passages in `store_garbage`; only then are
those deleted from Milvus (and the garbage rows with them). A crash before the commit leaves invisible
rows (deleted by the next `abort`/`vacuum`); a crash after it leaves garbage that the next writer
deletes. Writers are serialized by the SQL write transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL
advisory lock), across processes and machines.

Chunk ids are int64 and stable across processes: a hash of (article id, ordinal, passage hash), so two
bot processes (or a rebuild) give a passage the same id, and re-adding the same article is idempotent.

Keyword matching: the embedded store's FTS5 index uses the Porter stemmer; Milvus Lite only has a plain
`standard` tokenizer. So `search_text` holds the passage's header line and text already lower-cased,
stripped of accents and Porter-stemmed by us (`analyze`), and queries are analyzed the same way: the
behaviour is identical on Milvus Lite and on a Milvus server. `head_weight` other than 1 is not
supported (one BM25 field holds head and text). With head_weight 1, FTS5's bm25 is plain BM25 over the
head and text together, so the rankings agree closely (MultiHop-RAG dev, `benchmarks/multihop.py
--store milvus`: every retrieval metric within 0.003 of the embedded store's): the BM25 index uses FTS5's
k1 = 1.2, b = 0.75 (Milvus Lite's default k1 is 1.5), a query keeps a stem that two query words share
twice (FTS5 scores each quoted word), and the remaining difference is Milvus's idf,
log(1 + (N - n + 0.5) / (n + 0.5)) against FTS5's log((N - n + 0.5) / (n + 0.5)).

Word statistics: `passage_frequency` (the idf of the re-scoring and of query-word selection) reads
`store_terms`, how many live passages hold each stem, which writers keep up to date in the same SQL
transaction as `store_chunks` (a `text_match` count in Milvus Lite scans every passage: about a second
per word on 8,000 passages). Generations built before this table existed have no `term_counts` flag in
their manifest and keep counting with `text_match`.

Milvus Lite keeps a collection's rows in memory until it flushes them into a segment, and searches the
unflushed rows by rebuilding their indexes on every search; it also forgets on restart that a
collection was loaded. So with Lite a commit flushes, and readers and writers load the collection.

Tested against Milvus Lite (pure-Python milvus-lite 3.x, in-process from a local path, or its gRPC
server for several processes). Milvus Lite returns BM25 scores as negative distances, a server as
positive scores; both are reported here as positive bm25 (higher is better), in Milvus's order.

    collection.py  the Milvus side: client, one collection per generation, keyword analysis, filters
    store.py       MilvusStore: generations (which one is live), the build lock, the SQL schema
    writer.py      MilvusWriter: adds and removes articles, visible at commit
    reader.py      MilvusReader: search, passages, articles
"""
