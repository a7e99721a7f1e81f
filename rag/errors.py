"""The error family of paper-rag: every failure a user can cause or fix derives from `RagError`."""

from __future__ import annotations


class RagError(Exception):
    """Root of all paper-rag errors; the CLI turns these (and only these) into a one-line message."""


class SettingsError(RagError):
    """A setting is invalid (bad env var, bad rag.toml)."""


class CorpusError(RagError):
    """A collection file cannot be read or parsed; the message names the file and line."""


class IndexStoreError(RagError):
    """The Chroma store or the BM25 index cannot be opened, read or written."""


class ModelError(RagError):
    """A local model file is missing, corrupt (sha256 mismatch) or cannot be loaded."""


class PromptError(RagError):
    """A prompt file is missing or uses placeholders the code does not provide."""


class LLMError(RagError):
    """The LLM server failed: unreachable, timed out, or returned an error."""


class QuestionError(RagError):
    """The question itself is unusable (empty, or longer than the configured limit)."""


class RemoteError(RagError):
    """The remote chat app (`rag chat`) cannot be reached or sent something unreadable."""
