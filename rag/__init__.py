"""paper-rag: question answering over research-paper abstracts, with verified citations."""

from rag.assistant import Assistant
from rag.errors import (
    CorpusError,
    IndexStoreError,
    LLMError,
    ModelError,
    PromptError,
    QuestionError,
    RagError,
    RemoteError,
    SettingsError,
)
from rag.settings import Settings
from rag.types import (
    Answer,
    AnswerSentence,
    Chunk,
    Citation,
    Hit,
    IndexInfo,
    IngestSummary,
    Message,
    Paper,
    SearchFilters,
)

__all__ = [
    "Answer",
    "AnswerSentence",
    "Assistant",
    "Chunk",
    "Citation",
    "CorpusError",
    "Hit",
    "IndexInfo",
    "IndexStoreError",
    "IngestSummary",
    "LLMError",
    "Message",
    "ModelError",
    "Paper",
    "PromptError",
    "QuestionError",
    "RagError",
    "RemoteError",
    "SearchFilters",
    "Settings",
    "SettingsError",
]
