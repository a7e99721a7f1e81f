"""The one typed settings object: RAG_* environment variables over an optional rag.toml, read once at the edge."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import SettingsError
from rag.limits import MAX_ABSTRACT_CHARS

DEFAULT_COLLECTION = "default"
# BM25 and fusion defaults chosen on the SciFact train split, written by `python bench/retrieval.py`.
TUNED_RETRIEVAL: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "retrieval_tuned.json").read_text(encoding="utf-8")
)["settings"]
Backend = Literal["auto", "extractive", "openai", "local"]
BACKENDS: tuple[str, ...] = get_args(Backend)  # the answer backends, for CLI choices and the app's menu


def default_data_dir() -> Path:
    """Per-user data directory: $XDG_DATA_HOME/paper-rag, else ~/.local/share/paper-rag."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paper-rag"


class Settings(BaseSettings):
    """Every knob of paper-rag, with its env var RAG_<NAME> and its rag.toml key <name>."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_default=True)

    # --- storage -------------------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=default_data_dir, description="Where Chroma, BM25 and feedback live.")
    collection: str = Field(default=DEFAULT_COLLECTION, description="Named collection to ingest into and ask.")
    chroma_url: str = Field(default="", description="URL of a `chroma run` server; empty = embedded Chroma.")
    chroma_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before a request to a `chroma run` server is abandoned (server mode)."
    )
    ingest_batch_size: int = Field(
        default=512, ge=1,
        description="Papers chunked, embedded and committed together; a killed ingest keeps every finished batch. "
        "512 is about half a minute of MiniLM work on 2 cores (a minute when they are busy).",
    )

    # --- embeddings and chunking ---------------------------------------------------------------------
    embedding: Literal["minilm", "openai"] = Field(
        default="minilm", description="'minilm' (offline all-MiniLM-L6-v2) or 'openai' (an embeddings endpoint)."
    )
    embedding_model: str = Field(default="text-embedding-3-small", description="Model name for 'openai' embeddings.")
    embed_batch_size: int = Field(default=32, ge=1, description="Passages embedded per batch.")
    embed_threads: int = Field(default=2, ge=1, description="onnxruntime intra-op threads of the MiniLM embedder.")
    ingest_workers: int = Field(
        default=1, ge=1, description="Embedding processes during ingest (each with embed_threads // workers threads)."
    )
    chunk_tokens: int = Field(
        default=512, ge=32,
        description="Chunk budget in tiktoken tokens (title excluded); MiniLM embeds the first 256 wordpieces of each "
        "chunk (its window, as in MTEB) while BM25 indexes all of it. 512 keeps almost every abstract one chunk; "
        "chosen on SciFact train (bench/retrieval.py).",
    )
    chunk_overlap_sentences: int = Field(default=1, ge=0, description="Sentences repeated between chunks.")
    sentence_vectors_at_ingest: bool = Field(
        default=True,
        description="With MiniLM, ingest also keeps each abstract sentence's vector, pooled from its chunk's own "
        "forward pass, plus one pass over the sentences past the model's 256-token window (a quarter to a half more "
        "embedding, by abstract length; 1.5 KB per sentence in <data dir>/sentence_cache), so a first question "
        "embeds nothing but itself. Off (large collections): they are pooled at the first question that needs them.",
    )

    # --- retrieval -----------------------------------------------------------------------------------
    retrieval: Literal["hybrid", "dense", "bm25"] = Field(default="hybrid", description="Retrieval mode.")
    search_k: int = Field(default=10, ge=1, description="Papers returned by `search`.")
    answer_k: int = Field(default=5, ge=1, description="Papers shown to the answerer as numbered sources.")
    # 15: the list questions' gold papers are 88% among a search's best 8 papers, 95% among its best 15; by 2-fold CV
    # on the 1,397 dev items (a refit per fold), must-include recall 0.798 at 8, 0.816 at 10, 0.815 at 12, 0.817 at
    # 15, 0.818 at 20 (cited precision 0.952 / 0.953 / 0.955 / 0.959 / 0.959): flat from 10 on; 15 is its middle.
    list_k: int = Field(default=15, ge=1, description="Papers shown to the answerer for 'which papers…' questions.")
    # Defaults tuned on the SciFact train split (rag/data/retrieval_tuned.json, evals/reports/retrieval.md).
    candidates: int = Field(
        default=TUNED_RETRIEVAL["candidates"], ge=1, description="Chunks each retriever contributes before fusion."
    )
    dense_weight: float = Field(
        default=TUNED_RETRIEVAL["dense_weight"], ge=0,
        description="Weight of the dense scores (divided by the best one) in fusion.",
    )  # fmt: skip
    bm25_weight: float = Field(
        default=TUNED_RETRIEVAL["bm25_weight"], ge=0,
        description="Weight of the BM25 scores (divided by the best one) in fusion.",
    )  # fmt: skip
    bm25_k1: float = Field(default=TUNED_RETRIEVAL["bm25_k1"], gt=0, description="BM25 term-frequency saturation (k1).")
    bm25_b: float = Field(default=TUNED_RETRIEVAL["bm25_b"], ge=0, le=1, description="BM25 length normalization (b).")
    bm25_title_repeats: int = Field(
        default=TUNED_RETRIEVAL["bm25_title_repeats"], ge=1, description="Times the title is repeated in BM25 text."
    )

    # --- answering -----------------------------------------------------------------------------------
    llm: Backend = Field(
        default="auto", description="Answer backend; 'auto' = openai when a key or base URL is set, else extractive."
    )
    openai_api_key: str = Field(
        default="",
        validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key"),
        repr=False,
        exclude=True,  # never in repr(), model_dump() or JSON: a key must not reach logs, errors or `rag info`
        description="API key of the OpenAI(-compatible) server; kept out of every dump and message.",
    )
    openai_base_url: str = Field(
        default="", validation_alias=AliasChoices("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL", "openai_base_url")
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Chat model name on the OpenAI-compatible server.")
    llm_context_window: int = Field(default=8192, ge=512, description="Context window of the chat model, tokens.")
    llm_max_tokens: int = Field(default=512, ge=16, description="Most tokens the model may generate.")
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_timeout: float = Field(
        default=60.0, gt=0,
        description="Total deadline in seconds for the model's part of one answer, retries included; past it the "
        "answer falls back (RAG_LLM_FALLBACK) or fails, stating the time spent.",
    )  # fmt: skip
    llm_first_token_timeout: float = Field(
        default=30.0, gt=0,
        description="Seconds an LLM request may wait for the first streamed token (a hung server is detected this "
        "fast; a CPU llama.cpp server on a busy machine needs 20 s for a long prompt); a timeout is not retried.",
    )  # fmt: skip
    llm_max_retries: int = Field(
        default=2, ge=0, description="Retries (with backoff) of a refused connection or a 429/5xx, within llm_timeout."
    )
    llm_fallback: Literal["error", "extractive"] = Field(
        default="extractive", description="When the LLM fails: raise, or answer extractively with a notice."
    )
    condense_with_llm: bool = Field(default=True, description="Use the LLM to rewrite follow-ups when there is one.")
    local_model_path: Path | None = Field(default=None, description="GGUF file for the in-process 'local' backend.")
    local_n_ctx: int = Field(default=4096, ge=512)
    local_n_threads: int = Field(default=2, ge=1)
    abstain_threshold: float = Field(
        default=0.38, description="Below this evidence score the answerer abstains (calibrated on evals/gold)."
    )
    support_threshold: float = Field(default=0.5, description="A cited sentence scoring below this is unsupported.")
    prompts_dir: Path | None = Field(
        default=None, description="Folder of replacement prompt files (same names and placeholders as prompts/)."
    )
    max_question_chars: int = Field(
        default=2000, ge=10,
        description="Longer questions and search queries are refused (ask, search, chat app and API alike).",
    )  # fmt: skip
    max_abstract_chars: int = Field(
        default=MAX_ABSTRACT_CHARS, ge=1000,
        description="Longer abstracts are refused by the loaders, naming the record (--skip-invalid skips them); "
        "real abstracts have a few thousand characters.",
    )  # fmt: skip
    history_turns: int = Field(default=6, ge=0, description="Chat turns kept for condensing follow-ups.")

    # --- chat app ------------------------------------------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", description="Address the chat app binds.")
    ui_port: int = Field(default=7860, ge=0, le=65535)
    ui_user: str = Field(default="", description="Chat app user; required with ui_password off loopback.")
    ui_password: str = Field(default="")
    ui_max_upload_mb: int = Field(
        default=50, ge=1, description="Largest collection file the chat app accepts for upload, in MB."
    )

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: Any) -> Any:
        """Refuse an empty RAG_DATA_DIR (Path('') would silently mean the working directory)."""
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "RAG_DATA_DIR is set but empty; unset it to use the default "
                f"({default_data_dir()}) or set it to a folder"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, then RAG_* env vars, then rag.toml."""
        toml_path = Path(os.environ.get("RAG_CONFIG", "rag.toml"))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read settings from the environment and rag.toml ($RAG_CONFIG), applying explicit overrides."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )  # the problems without the input values, which may hold a key
            config = os.environ.get("RAG_CONFIG", "rag.toml")
            raise SettingsError(f"invalid settings: {problems} (from RAG_<NAME> env vars or {config})") from exc

    @property
    def resolved_llm(self) -> Literal["extractive", "openai", "local"]:
        """The backend 'auto' stands for: openai when a key or base URL is configured, else extractive."""
        if self.llm != "auto":
            return self.llm
        return "openai" if (self.openai_api_key or self.openai_base_url) else "extractive"


def writable_data_dir(path: Path) -> Path:
    """The data directory, created if missing, after checking it can be written; SettingsError saying what to do."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable by this user",
                  errno.EPERM: "is not writable by this user"}.get(exc.errno, f"cannot be written ({exc.strerror})")
        raise SettingsError(
            f"the data directory {path} {reason}; paper-rag keeps its index there and must write to it even to "
            "search: set RAG_DATA_DIR to a writable folder (or copy the folder somewhere writable), or fix its "
            "permissions"
        ) from exc
    return path
