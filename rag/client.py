"""`RemoteAssistant`: ask a running chat app (`rag chat`) over its `ask` API and get the same `Answer` records back."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rag import errors
from rag.errors import RagError, RemoteError
from rag.types import Answer, Message, SearchFilters

if TYPE_CHECKING:
    from gradio_client import Client

log = logging.getLogger(__name__)

API_NAME = "/ask"
_ANSWER_PREFIX = '{"question":'  # Answer.model_dump_json() starts with its first field


class RemoteAssistant:
    """A client of the chat app's `ask` endpoint; `ask` and `stream` mirror `Assistant.ask` and `Assistant.stream`.

    History is always sent explicitly with each call (gradio_client would otherwise keep one per session).
    """

    def __init__(self, url: str, *, auth: tuple[str, str] | None = None, timeout: float = 120.0) -> None:
        # gradio_client sends telemetry unless both the env var and the argument say no.
        for name, value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1")):
            os.environ.setdefault(name, value)
        from gradio_client import Client

        self.url = url
        try:
            self._client: Client = Client(
                url,
                auth=auth,
                verbose=False,
                analytics_enabled=False,
                download_files=False,
                httpx_kwargs={"timeout": timeout},
            )
        except Exception as exc:  # httpx, ValueError, JSON errors: all mean "no usable app at this URL"
            raise RemoteError(
                f"cannot reach the paper-rag chat app at {url}: {exc}. Is `rag chat` running there "
                "(and are the user and password right)?"
            ) from exc

    def ask(
        self,
        question: str,
        history: Sequence[Message | dict[str, Any]] | None = None,
        *,
        k: int | None = None,
        filters: SearchFilters | None = None,
        backend: str | None = None,
    ) -> Answer:
        """Answer a question (a follow-up when history is given) on the remote app; return its Answer."""
        answer = None
        for item in self.stream(question, history, k=k, filters=filters, backend=backend):
            if isinstance(item, Answer):
                answer = item
        if answer is None:
            raise RemoteError(f"the chat app at {self.url} ended the answer without a final Answer record")
        return answer

    def stream(
        self,
        question: str,
        history: Sequence[Message | dict[str, Any]] | None = None,
        *,
        k: int | None = None,
        filters: SearchFilters | None = None,
        backend: str | None = None,
    ) -> Iterator[str | Answer]:
        """Yield text deltas as the remote app produces them, then the final Answer."""
        messages = [m.model_dump() if isinstance(m, Message) else dict(m) for m in history or []]
        job = self._submit(question, messages, k, filters.model_dump(exclude_none=True) if filters else None, backend)
        text = ""
        for update in job:
            if isinstance(update, str) and update.startswith(_ANSWER_PREFIX):
                yield self._answer(update)
                continue
            # Each text update is the answer so far; yield what is new.
            current = str(update)
            delta = current[len(text) :] if current.startswith(text) else current
            text = current
            if delta:
                yield delta
        self._raise_failure(job)

    # --- internals ------------------------------------------------------------------------------------------
    def _submit(
        self, question: str, history: list[dict[str, Any]], k: int | None, filters: dict | None, backend: str | None
    ) -> Any:
        """Start one `ask` job on the app."""
        try:
            return self._client.submit(question, history, k, backend, filters, api_name=API_NAME)
        except Exception as exc:  # an app without the endpoint, or one that went away
            raise RemoteError(f"the chat app at {self.url} refused the question: {exc}") from exc

    def _raise_failure(self, job: Any) -> None:
        """Turn a failed job into the RagError subclass the app reported (its message starts with the class)."""
        exc = job.exception()
        if exc is None:
            return
        message = str(exc)
        name, _, rest = message.partition(": ")
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, RagError):
            raise cls(f"{rest} (from {self.url})") from exc
        raise RemoteError(f"the chat app at {self.url} failed: {message}") from exc

    def _answer(self, payload: str) -> Answer:
        """Parse the final Answer record."""
        try:
            return Answer.model_validate_json(payload)
        except ValidationError as exc:
            raise RemoteError(f"the chat app at {self.url} sent an Answer this client cannot read: {exc}") from exc
