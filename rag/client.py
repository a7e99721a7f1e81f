"""`RemoteAssistant`: ask a running chat app (`rag chat`) over its `ask` API and get the same `Answer` records back."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rag import wire
from rag.errors import RemoteError
from rag.runtime import configure
from rag.types import Answer, Message, SearchFilters

if TYPE_CHECKING:
    from gradio_client import Client

log = logging.getLogger(__name__)

API_NAME = "/ask"


class RemoteAssistant:
    """A client of the chat app's `ask` endpoint; `ask` and `stream` mirror `Assistant.ask` and `Assistant.stream`.

    History is always sent explicitly with each call (gradio_client would otherwise keep one per session).
    """

    def __init__(self, url: str, *, auth: tuple[str, str] | None = None, timeout: float = 120.0) -> None:
        configure()  # gradio_client sends telemetry unless both the env var and the argument say no
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
        """Yield verified text deltas as the remote app produces them, then the final Answer (rag.wire messages)."""
        messages = [m.model_dump() if isinstance(m, Message) else dict(m) for m in history or []]
        job = self._submit(question, messages, k, filters.model_dump(exclude_none=True) if filters else None, backend)
        text = ""
        for update in job:
            message = self._decode(update)
            if isinstance(message, wire.WireAnswer):
                yield message.answer
            elif isinstance(message, wire.WireError):
                error = message.exception()
                raise type(error)(f"{error} (from {self.url})")
            else:  # the text so far: yield what is new
                delta = message.text[len(text) :] if message.text.startswith(text) else message.text
                text = message.text
                if delta:
                    yield delta
        exc = job.exception()
        if exc is not None:
            raise RemoteError(f"the chat app at {self.url} failed: {exc}") from exc

    # --- internals ------------------------------------------------------------------------------------------
    def _submit(
        self, question: str, history: list[dict[str, Any]], k: int | None, filters: dict | None, backend: str | None
    ) -> Any:
        """Start one `ask` job on the app."""
        try:
            return self._client.submit(question, history, k, backend, filters, api_name=API_NAME)
        except Exception as exc:  # an app without the endpoint, or one that went away
            raise RemoteError(f"the chat app at {self.url} refused the question: {exc}") from exc

    def _decode(self, update: Any) -> wire.WireText | wire.WireAnswer | wire.WireError:
        """One update of the job as a wire message; RemoteError when it is not one (another app or version)."""
        try:
            return wire.decode(str(update))
        except ValueError as exc:
            raise RemoteError(
                f"the chat app at {self.url} sent a message this client cannot read ({exc}); "
                "is it a paper-rag app of the same version?"
            ) from exc
