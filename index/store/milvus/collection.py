"""The Milvus side of the Milvus store: the client, one collection per generation (dense vectors and a
BM25 field), the keyword analysis that makes Milvus's BM25 match FTS5's, and filters as Milvus
expressions (see the package doc)."""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from newsbot.index.chunking import Chunk
from newsbot.index.hits import Filters
from newsbot.index.store.base import IndexProblem
from newsbot.index.store.catalog import source_key

MISSING_DATE = -1.0e18  # published_ts of undated articles (Milvus scalars here are not nullable)
QUERY_WINDOW = 16384  # Milvus caps offset + limit of one query/search at this
BATCH = 256  # passages per Milvus upsert
BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}  # SQLite FTS5's bm25 constants
TERM_COUNTS = "term_counts"  # manifest.extra flag: store_terms is maintained for this generation


_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_stemmers = threading.local()


def _stemmer() -> Any:
    stemmer = getattr(_stemmers, "porter", None)
    if stemmer is None:
        try:
            import snowballstemmer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise IndexProblem("the Milvus store needs snowballstemmer: pip install 'newsbot[milvus]'") from exc
        stemmer = _stemmers.porter = snowballstemmer.stemmer("porter")
    return stemmer


def analyze(text: str) -> list[str]:
    """Keyword tokens as the embedded store's FTS5 `porter unicode61 remove_diacritics` makes them:
    words of letters and digits, lower case, accents removed, Porter-stemmed."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = _WORDS.findall(folded)
    if not words:
        return []
    return [stem or word for word, stem in zip(words, _stemmer().stemWords(words), strict=True)]


def query_text(terms: Sequence[str], *, unique: bool = True) -> str:
    """A query for any of `terms` (analyzed like passages), each stem once unless `unique` is False:
    BM25 then weighs a stem that two terms share twice, as FTS5 does with one quoted phrase per term."""
    tokens = analyze(" ".join(terms))
    return " ".join(dict.fromkeys(tokens) if unique else tokens)


def chunk_id_for(doc_id: str, chunk: Chunk) -> int:
    """A positive int64 id for a passage, the same in every process: hash of article id, position, text."""
    key = f"{doc_id}\x00{chunk.ordinal}\x00{chunk.passage_hash}".encode()
    value = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF
    return value or 1


def clip(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= max_bytes else data[:max_bytes].decode("utf-8", errors="ignore")


def literal(text: str) -> str:
    """A Milvus expression string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expr(filters: Filters) -> str:
    """`Filters` as a Milvus boolean expression ('' = no restriction). Undated articles never match a
    date bound, as in the embedded store (NULL comparisons are false there)."""
    clauses = []
    if filters.sources:
        keys = sorted({source_key(s) for s in filters.sources})
        clauses.append(f"source_key in [{', '.join(literal(k) for k in keys)}]")
    if filters.since:
        clauses.append(f"published_ts >= {filters.since.timestamp()!r}")
    if filters.until:
        clauses.append(f"(published_ts <= {filters.until.timestamp()!r} and published_ts > {MISSING_DATE!r})")
    return " and ".join(clauses)


def all_of(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def connect_milvus(uri: str, token: str = "") -> Any:
    """A `MilvusClient` for a server URL (`http://host:19530`) or a local Milvus Lite path (`./x.db`)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise IndexProblem("the Milvus store needs pymilvus: pip install 'newsbot[milvus]'") from exc
    if "://" not in uri:
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return MilvusClient(str(Path(uri).expanduser()))
    return MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)


def create_collection(client: Any, name: str, dim: int, dense_index: str) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    schema.add_field("ordinal", DataType.INT64)
    schema.add_field("span_start", DataType.INT64)
    schema.add_field("span_end", DataType.INT64)
    schema.add_field("title", DataType.VARCHAR, max_length=4096)
    schema.add_field("source", DataType.VARCHAR, max_length=1024)
    schema.add_field("source_key", DataType.VARCHAR, max_length=1024)
    schema.add_field("url", DataType.VARCHAR, max_length=4096)
    schema.add_field("author", DataType.VARCHAR, max_length=1024)
    schema.add_field("published_at", DataType.VARCHAR, max_length=64)
    schema.add_field("published_ts", DataType.DOUBLE)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field(
        "search_text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, enable_match=True,
        analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]},
    )
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(
        name="bm25", function_type=FunctionType.BM25, input_field_names=["search_text"],
        output_field_names=["sparse"],
    ))
    index = client.prepare_index_params()
    index.add_index("dense", index_type=dense_index, metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=dict(BM25_PARAMS))
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def as_dicts(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result]
