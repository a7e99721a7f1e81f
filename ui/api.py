"""The app's `ask` API endpoint, which `RemoteAssistant` (rag.client) and gradio_client call.

Every update is one `rag.wire` message: the verified answer text so far, then the final `Answer`; a paper-rag error
comes as the last message, so the client raises it as its own class.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from rag import wire
from rag.assistant import Assistant
from rag.errors import QuestionError, RagError
from rag.types import Answer, Message, SearchFilters


class AskEndpoint:
    """`ask(question, history, k, backend, filters)` over one Assistant."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def ask(
        self,
        question: str,
        history: list[dict[str, Any]] | None = None,
        k: int | None = None,
        backend: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Answer a question with citations: yields rag.wire messages, the verified text so far, then the Answer.

        `history` is a list of {role, content, papers} messages (papers: the ids an assistant turn cited, in citation
        order); `filters` a SearchFilters object. A paper-rag error is sent as the last message (kind "error").
        """
        try:
            messages = [Message.model_validate(m) for m in history or []]
            query_filters = SearchFilters.model_validate(filters) if filters else None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            yield wire.encode(
                QuestionError(
                    "history must be a list of {role, content, papers} messages and filters a SearchFilters object "
                    f"({problems})"
                )
            )
            return
        text = ""
        try:
            for item in self.assistant.stream(question, messages, k=k, filters=query_filters, backend=backend):
                if isinstance(item, Answer):
                    yield wire.encode(item)
                else:
                    text += item
                    yield wire.encode(text)
        except RagError as exc:
            yield wire.encode(exc)
