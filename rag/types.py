"""Typed records flowing one way: Paper -> Chunk -> Hit -> Answer(citations=[Citation]). No I/O here."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalize_title(title: str) -> str:
    """Lower-case a title and fold punctuation and spacing, for matching titles across sources."""
    return _NON_WORD.sub(" ", title.lower()).strip()


def normalize_space(text: str) -> str:
    """Collapse runs of white space to one space and strip the ends."""
    return " ".join(text.split())


class Record(BaseModel):
    """Base of all records: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Paper(Record):
    """One paper of a collection, as a loader produced it."""

    id: str = Field(description="Stable id: the source's id when present, else a hash of the normalized title.")
    title: str
    abstract: str
    url: str = ""
    code_urls: tuple[str, ...] = ()
    source: str = Field(default="", description="Where the paper came from (file name or collection label).")
    year: int | None = None
    authors: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        """Hash of everything indexed about the paper; a change means the paper must be re-indexed."""
        payload = "\x1f".join(
            [
                self.title,
                self.abstract,
                self.url,
                " ".join(self.code_urls),
                self.source,
                str(self.year),
                "; ".join(self.authors),
            ]
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


class EmbeddedPaper(Paper):
    """A paper that arrives with its embedding (bring your own vectors): written without re-embedding."""

    vector: bytes = Field(description="The embedding as little-endian float32 (compact: a million of them fit).")
    embedding_model: str = Field(default="", description="Id of the model that made it ('' = the ingest option).")
    origin: str = Field(default="", description="'file:line' of the record, for error messages.")


class Chunk(Record):
    """A token-bounded piece of one paper's abstract, split on sentence boundaries."""

    id: str = Field(description="Stable chunk id: '<paper id>#<index>'.")
    paper_id: str
    index: int
    text: str = Field(description="The abstract sentences of this chunk (without the title).")
    n_tokens: int

    def embed_text(self, title: str) -> str:
        """Text that is embedded and BM25-indexed: the title carried as context, then the chunk."""
        return f"{title}\n{self.text}"


class SearchFilters(Record):
    """Metadata filters applied at retrieval time; None means 'any'."""

    has_code: bool | None = None
    year_min: int | None = None
    year_max: int | None = None
    source: str | None = None
    paper_ids: tuple[str, ...] | None = Field(default=None, description="Only these papers (a follow-up's papers).")

    @model_validator(mode="after")
    def _years_in_order(self) -> SearchFilters:
        """Refuse a year range that holds no year (from after to)."""
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise ValueError(f"the year filter is empty: from {self.year_min} is after to {self.year_max}")
        return self


class Hit(Record):
    """One retrieved paper with its best-matching chunk."""

    paper: Paper
    chunk: Chunk
    score: float = Field(description="Fused retrieval score (higher is better).")
    rank: int = Field(description="1-based rank in the result list.")
    dense_score: float | None = Field(
        default=None, description="Cosine similarity of the best chunk, if dense found it."
    )
    bm25_score: float | None = Field(default=None, description="BM25 score of the best chunk, if BM25 found it.")


class IngestSummary(Record):
    """What one ingest run did to a collection."""

    collection: str
    added: int = 0
    updated: int = 0
    skipped: int = Field(default=0, description="Papers already indexed unchanged (nothing to write).")
    invalid_skipped: int = Field(default=0, description="Malformed records left out (--skip-invalid).")
    deleted: int = 0
    duplicates_merged: int = 0
    chunks_written: int = 0
    seconds: float = 0.0

    @property
    def wrote_nothing(self) -> bool:
        """True when the run changed nothing in the index."""
        return self.added == 0 and self.updated == 0 and self.deleted == 0


class IndexInfo(Record):
    """Counts and models of one collection, for `rag info`."""

    collection: str
    papers: int
    chunks: int
    embedding_model: str
    data_dir: str
    chroma: str = Field(description="'embedded:<path>' or the URL of a chroma server.")
    collections: tuple[str, ...] = ()


class Message(Record):
    """One chat turn, in the format Gradio and OpenAI use, plus the papers an assistant turn cited."""

    role: Literal["user", "assistant", "system"]
    content: str
    papers: tuple[str, ...] = Field(
        default=(), description="Ids of the papers an assistant turn cited: papers[i] is its citation [i + 1]."
    )

    @classmethod
    def coerce(cls, value: Message | Mapping[str, Any]) -> Message:
        """A Message from a record or an OpenAI/Gradio-style dict (Gradio 6 may send content as a list of parts)."""
        if isinstance(value, Message):
            return value
        content = value.get("content", "")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content).strip()
        return cls(role=value["role"], content=str(content), papers=tuple(value.get("papers") or ()))

    @classmethod
    def from_answer(cls, answer: Answer) -> Message:
        """The assistant turn of an answer: its text and the papers it cited, [1] first."""
        return cls(role="assistant", content=answer.text, papers=tuple(c.paper.id for c in answer.citations))


def to_messages(history: Sequence[Message | Mapping[str, Any]] | None) -> list[Message]:
    """Chat history in any accepted form as Message records (the one conversion every shell uses)."""
    return [Message.coerce(m) for m in history or ()]


class Citation(Record):
    """A numbered source the answer cites, with the evidence sentence(s) it rests on."""

    number: int = Field(description="The [n] marker in the answer text.")
    paper: Paper
    evidence: tuple[str, ...] = Field(default=(), description="Abstract sentences that support the citing claims.")
    score: float = Field(default=0.0, description="Retrieval score of the source.")


class AnswerSentence(Record):
    """One sentence of an answer with the sources it cites and whether the verifier found it supported."""

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = True
    support: float = Field(default=1.0, description="Support score in [0, 1] against the cited sources.")


class TokenUsage(Record):
    """Tokens the answer cost (prompt tokens are counted with tiktoken when the server does not say)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class Answer(Record):
    """The final answer: text with [n] markers, the citations behind them, and how it was made."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    sources: tuple[Hit, ...] = Field(default=(), description="The numbered sources shown to the model, [1] first.")
    standalone_question: str = Field(default="", description="The question actually searched (after condensing).")
    follow_up: bool = Field(default=False, description="True when the question depended on the conversation.")
    sentences: tuple[AnswerSentence, ...] = ()
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Milliseconds per chain stage.")
    usage: TokenUsage = TokenUsage()
    backend: str = ""
    model: str = ""
    notice: str = Field(default="", description="A visible notice, e.g. that the extractive fallback answered.")

    @property
    def unsupported_sentences(self) -> list[AnswerSentence]:
        """Answer sentences the verifier could not back with their cited sources."""
        return [s for s in self.sentences if not s.supported]

    def to_markdown(self) -> str:
        """The answer as Markdown with its numbered references (title, link, year)."""
        from rag.export import to_markdown

        return to_markdown(self)

    def to_bibtex(self) -> str:
        """BibTeX entries of the cited papers, in citation order."""
        from rag.export import to_bibtex

        return to_bibtex(self)
