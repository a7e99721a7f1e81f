"""The chat app's wire format (rag.wire): typed messages, and errors rebuilt only from an explicit table."""

from __future__ import annotations

import pytest

from rag import errors, wire
from rag.types import Answer


def test_text_answer_and_error_round_trip() -> None:
    answer = Answer(question="q?", text="A verified sentence [1].")
    assert wire.decode(wire.encode("so far")) == wire.WireText(text="so far")
    assert wire.decode(wire.encode(answer)) == wire.WireAnswer(answer=answer)
    error = wire.decode(wire.encode(errors.QuestionError("the question is empty")))
    assert error == wire.WireError(error="question", message="the question is empty")
    rebuilt = error.exception()
    assert type(rebuilt) is errors.QuestionError and str(rebuilt) == "the question is empty"


def test_every_rag_error_class_has_a_kind_and_subclasses_travel_as_their_base() -> None:
    for cls in (errors.SettingsError, errors.CorpusError, errors.IndexStoreError, errors.ModelError,
                errors.PromptError, errors.LLMError, errors.QuestionError, errors.RemoteError):  # fmt: skip
        assert wire.ERROR_KINDS[wire.error_kind(cls("x"))] is cls

    class LockTimeout(errors.IndexStoreError):
        pass

    assert wire.error_kind(LockTimeout("busy")) == "index"
    assert wire.error_kind(errors.RagError("x")) == "error"


@pytest.mark.parametrize(
    "payload",
    [
        '{"kind": "error", "error": "SystemExit", "message": "x"}',  # only table kinds, never a name to look up
        '{"question": "q", "text": "raw"}',  # the old JSON-prefix format
        '{"kind": "text"}',
        "HACKED",
    ],
)
def test_anything_else_is_refused(payload: str) -> None:
    with pytest.raises(ValueError, match="not a paper-rag wire message"):
        wire.decode(payload)
