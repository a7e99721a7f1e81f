"""`Assistant`: the product's one core object. The CLI, the chat app and the eval harness all call it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.naming import mentions
from rag.settings import DEFAULT_COLLECTION, Settings
from rag.types import Answer, Hit, IndexInfo, IngestSummary, Message, Paper, SearchFilters, to_messages

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.llms import LLM

    from rag.chain import AnswerChain, Prepared
    from rag.index import PaperIndex

log = logging.getLogger(__name__)

HistoryLike = Sequence[Message | dict[str, Any]] | None
NAME_SEARCH_K = 5  # hits searched for a paper's name ("And GroupMamba?"): the named paper ranks at the top


class Assistant:
    """Ingest collections, search them and answer questions with verified citations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: BaseEmbedding | None = None,
        llm: LLM | None = None,
        index: PaperIndex | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self._embedder = embedder
        self._llm = llm
        self._index = index
        self._chains: dict[str, AnswerChain] = {}

    @classmethod
    def load(cls, **overrides: Any) -> Assistant:
        """Build an Assistant from RAG_* env vars and an optional rag.toml; keyword overrides win."""
        return cls(Settings.load(**overrides))

    # --- collaborators, built lazily so that `rag info` or a UI start does not load models it won't use ----
    @property
    def embedder(self) -> BaseEmbedding:
        """The embedding model (offline MiniLM by default)."""
        if self._embedder is None:
            from rag.embeddings import make_embedder

            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def index(self) -> PaperIndex:
        """The collection's hybrid index (Chroma + BM25)."""
        if self._index is None:
            from rag.index import PaperIndex
            from rag.settings import writable_data_dir

            writable_data_dir(self.settings.data_dir)  # Chroma (embedded), BM25 and locks write there even to read
            self._index = PaperIndex(self.settings, self.embedder, self.settings.collection)
        return self._index

    def _chain(self, backend: str | None) -> AnswerChain:
        """The answer chain for a backend name (default: the configured one), built once and reused."""
        from rag.chain import AnswerChain

        settings = self.settings.model_copy(update={"llm": backend or self.settings.llm})
        name = settings.resolved_llm
        if name not in self._chains:
            self._chains[name] = AnswerChain(
                settings.model_copy(update={"llm": name}), self.embedder, self._retrieve, self._lookup, llm=self._llm,
                named=self._named,
            )
        return self._chains[name]

    # --- the API -----------------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path] | None = None,
        *,
        fmt: str | None = None,
        prune: bool = False,
        fields: dict[str, str] | None = None,
        skip_invalid: bool = False,
        progress: bool = True,
        embedding_model_id: str = "",
    ) -> IngestSummary:
        """Load collection files (default: the bundled digest) and sync them into the index, batch by batch.

        `fields` maps paper fields to source keys or columns (e.g. {"abstract": "summary"}); `skip_invalid` logs and
        skips malformed records instead of refusing the whole input; `embedding_model_id` names the model of JSONL
        records that bring an `embedding` without saying which model made it.
        """
        from rag.loaders import DEFAULT_CORPUS, iter_papers

        # Streamed: papers are read as the ingest consumes them, batch by batch (the ingest's bar shows progress).
        stream = iter_papers(
            list(paths) if paths else [DEFAULT_CORPUS], fmt=fmt, fields=fields, skip_invalid=skip_invalid,
            max_abstract_chars=self.settings.max_abstract_chars,
        )  # fmt: skip
        summary = self.index.sync(stream, prune=prune, progress=progress, embedding_model_id=embedding_model_id)
        merged = summary.duplicates_merged + stream.duplicates_merged
        return summary.model_copy(update={"invalid_skipped": stream.skipped, "duplicates_merged": merged})

    def search(self, question: str, k: int | None = None, filters: SearchFilters | None = None) -> list[Hit]:
        """The k most relevant papers for a question, best chunk per paper, best first."""
        from rag.limits import clean_question

        query = clean_question(question, self.settings.max_question_chars, what="search query")
        return self._retrieve(query, k or self.settings.search_k, filters)

    def ask(
        self,
        question: str,
        history: HistoryLike = None,
        *,
        k: int | None = None,
        filters: SearchFilters | None = None,
        backend: str | None = None,
    ) -> Answer:
        """Answer a question (a follow-up when history is given) with citations, or abstain."""
        return self._chain(backend).ask(question, to_messages(history), k=k, filters=filters)

    def stream(
        self,
        question: str,
        history: HistoryLike = None,
        *,
        k: int | None = None,
        filters: SearchFilters | None = None,
        backend: str | None = None,
    ) -> Iterator[str | Answer]:
        """Like `ask`, but yield text deltas as they are produced and then the final `Answer`."""
        return self._chain(backend).stream(question, to_messages(history), k=k, filters=filters)

    def prepare(self, question: str, history: HistoryLike = None) -> Prepared:
        """The resolved turn, numbered sources and evidence scores the answer would rest on (for evaluation and
        debugging; extractive scoring, no model call)."""
        return self._chain("extractive").prepare(question, to_messages(history))

    def chat_model(self, backend: str | None = None) -> LLM:
        """The chat LLM of a backend (default: the configured one) as a llama-index LLM whose server failures raise
        LLMError, for callers beside the answer chain (the eval judge); SettingsError when the backend has none."""
        from rag.errors import SettingsError
        from rag.llm import CheckedLLM, make_llm

        settings = self.settings.model_copy(update={"llm": backend or self.settings.llm})
        if settings.resolved_llm == "extractive":
            raise SettingsError(
                "the extractive backend has no chat model: set RAG_OPENAI_BASE_URL (an OpenAI-compatible server) "
                "or OPENAI_API_KEY, or RAG_LLM=local with RAG_LOCAL_MODEL_PATH"
            )
        return CheckedLLM(self._llm or make_llm(settings))

    def info(self) -> IndexInfo:
        """Collection, paper and chunk counts, models and data directory."""
        return self.index.info()

    def papers(self) -> list[Paper]:
        """Every paper of the collection, in a stable order."""
        return self.index.papers()

    def feedback(self, answer: Answer, rating: int, comment: str = "") -> Path:
        """Append a thumbs up (+1) or down (-1) on an answer to the feedback JSONL; return its path."""
        from rag.feedback import record_feedback

        return record_feedback(self.settings.data_dir, self.settings.collection, answer, rating, comment)

    # --- internals ---------------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Fill an empty default collection with the bundled digest, so a first question just works."""
        if self.settings.collection == DEFAULT_COLLECTION and self.index.is_empty():
            log.info("default collection is empty: ingesting the bundled digest first")
            self.ingest(progress=False)

    def _lookup(self, ids: Sequence[str]) -> list[Paper]:
        """The papers with these ids (those a previous answer cited), in the order given; unknown ids are left out."""
        return self.index.get_papers(ids)

    def _named(self, name: str) -> list[Paper]:
        """The papers a name belongs to (one of their aliases), among the best matches of a search for it."""
        return [hit.paper for hit in self._retrieve(name, NAME_SEARCH_K, None) if mentions(name, hit.paper)]

    def _retrieve(self, question: str, k: int, filters: SearchFilters | None) -> list[Hit]:
        """Search the index (after `ensure_ready`)."""
        self.ensure_ready()
        return self.index.search(question, k=k, filters=filters)

