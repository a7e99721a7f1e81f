"""The one typed settings object: RAG_* environment variables over an optional rag.toml, read once at the edge."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import SettingsError

DEFAULT_COLLECTION = "default"


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

    # --- embeddings and chunking ---------------------------------------------------------------------
    embedding: Literal["minilm", "openai"] = Field(
        default="minilm", description="'minilm' (offline all-MiniLM-L6-v2) or 'openai' (an embeddings endpoint)."
    )
    embedding_model: str = Field(default="text-embedding-3-small", description="Model name for 'openai' embeddings.")
    embed_batch_size: int = Field(default=32, ge=1, description="Passages embedded per batch.")
    embed_threads: int = Field(default=2, ge=1, description="onnxruntime intra-op threads of the MiniLM embedder.")
    chunk_tokens: int = Field(
        default=512, ge=32,
        description="Chunk budget in tiktoken tokens (title excluded); MiniLM embeds the first 256 wordpieces of each "
        "chunk (its window, as in MTEB) while BM25 indexes all of it. 512 keeps almost every abstract one chunk; "
        "chosen on SciFact train (bench/retrieval.py).",
    )
    chunk_overlap_sentences: int = Field(default=1, ge=0, description="Sentences repeated between chunks.")

    # --- retrieval -----------------------------------------------------------------------------------
    retrieval: Literal["hybrid", "dense", "bm25"] = Field(default="hybrid", description="Retrieval mode.")
    search_k: int = Field(default=10, ge=1, description="Papers returned by `search`.")
    answer_k: int = Field(default=5, ge=1, description="Papers shown to the answerer as numbered sources.")
    candidates: int = Field(default=50, ge=1, description="Chunks each retriever contributes before fusion.")
    rrf_k: int = Field(default=5, ge=1, description="Reciprocal-rank-fusion constant (tuned on SciFact train).")
    dense_weight: float = Field(default=1.0, ge=0, description="Weight of the dense ranking in fusion.")
    bm25_weight: float = Field(default=1.25, ge=0, description="Weight of the BM25 ranking in fusion (tuned on train).")
    # BM25 defaults tuned on the SciFact train split (bench/retrieval.py, evals/reports/retrieval.md).
    bm25_k1: float = Field(default=1.5, gt=0, description="BM25 term-frequency saturation (k1).")
    bm25_b: float = Field(default=0.75, ge=0, le=1, description="BM25 length normalization (b).")
    bm25_title_repeats: int = Field(default=2, ge=1, description="Times the title is repeated in BM25-indexed text.")

    # --- answering -----------------------------------------------------------------------------------
    llm: Literal["auto", "extractive", "openai", "local"] = Field(
        default="auto", description="Answer backend; 'auto' = openai when a key or base URL is set, else extractive."
    )
    openai_api_key: str = Field(
        default="", validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str = Field(
        default="", validation_alias=AliasChoices("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL", "openai_base_url")
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Chat model name on the OpenAI-compatible server.")
    llm_context_window: int = Field(default=8192, ge=512, description="Context window of the chat model, tokens.")
    llm_max_tokens: int = Field(default=512, ge=16, description="Most tokens the model may generate.")
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds before an LLM request is abandoned.")
    llm_max_retries: int = Field(default=2, ge=0, description="Retries (with backoff) of a failed LLM request.")
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
    max_question_chars: int = Field(default=2000, ge=10, description="Longer questions are refused.")
    history_turns: int = Field(default=6, ge=0, description="Chat turns kept for condensing follow-ups.")

    # --- chat app ------------------------------------------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", description="Address the chat app binds.")
    ui_port: int = Field(default=7860, ge=0, le=65535)
    ui_user: str = Field(default="", description="Chat app user; required with ui_password off loopback.")
    ui_password: str = Field(default="")

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
            raise SettingsError(f"invalid settings: {exc}") from exc

    @property
    def resolved_llm(self) -> Literal["extractive", "openai", "local"]:
        """The backend 'auto' stands for: openai when a key or base URL is configured, else extractive."""
        if self.llm != "auto":
            return self.llm
        return "openai" if (self.openai_api_key or self.openai_base_url) else "extractive"
