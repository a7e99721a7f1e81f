"""The wire format of the chat app's `ask` API: typed messages the app sends and `RemoteAssistant` reads.

Each update of an `ask` job is one JSON message with a `kind`:
- `text`: the verified answer text so far (each update repeats and extends the previous one, so a dropped or
  merged update loses nothing);
- `answer`: the final `Answer` record (last);
- `error`: a paper-rag error, by kind (the table below) and message (last).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError

from rag import errors
from rag.types import Answer, Record

# Error kinds on the wire and the classes they stand for: an explicit table, so a message can only rebuild
# one of these (never an arbitrary name), and renaming a class does not change the wire.
ErrorKind = Literal["question", "settings", "corpus", "index", "model", "prompt", "llm", "remote", "error"]
ERROR_KINDS: dict[ErrorKind, type[errors.RagError]] = {
    "question": errors.QuestionError,
    "settings": errors.SettingsError,
    "corpus": errors.CorpusError,
    "index": errors.IndexStoreError,
    "model": errors.ModelError,
    "prompt": errors.PromptError,
    "llm": errors.LLMError,
    "remote": errors.RemoteError,
    "error": errors.RagError,
}


class WireText(Record):
    """The verified answer text so far."""

    kind: Literal["text"] = "text"
    text: str


class WireAnswer(Record):
    """The final Answer record."""

    kind: Literal["answer"] = "answer"
    answer: Answer


class WireError(Record):
    """A paper-rag error raised while answering."""

    kind: Literal["error"] = "error"
    error: ErrorKind
    message: str

    def exception(self) -> errors.RagError:
        """The error as its RagError subclass."""
        return ERROR_KINDS[self.error](self.message)


WireMessage = Annotated[WireText | WireAnswer | WireError, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[WireText | WireAnswer | WireError] = TypeAdapter(WireMessage)


def error_kind(exc: errors.RagError) -> ErrorKind:
    """The wire kind of an error: its own class's, else its nearest base class's in the table."""
    for cls in type(exc).__mro__:
        for kind, known in ERROR_KINDS.items():
            if cls is known:
                return kind
    return "error"


def encode(item: str | Answer | errors.RagError) -> str:
    """One wire message as JSON: answer text so far (str), the final Answer, or a RagError."""
    if isinstance(item, Answer):
        message: WireText | WireAnswer | WireError = WireAnswer(answer=item)
    elif isinstance(item, errors.RagError):
        message = WireError(error=error_kind(item), message=str(item))
    else:
        message = WireText(text=item)
    return message.model_dump_json()


def decode(payload: str) -> WireText | WireAnswer | WireError:
    """Parse one wire message; ValueError (with pydantic's reasons) when it is not one."""
    try:
        return _ADAPTER.validate_json(payload)
    except ValidationError as exc:
        raise ValueError(f"not a paper-rag wire message: {exc.error_count()} problem(s): {exc}") from exc
