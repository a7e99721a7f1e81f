"""Chat backends: OpenAI or an OpenAI-compatible server, or llama.cpp in-process, all as llama-index LLMs."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import openai
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import PrivateAttr

from rag.errors import LLMError, ModelError, SettingsError
from rag.settings import Settings
from rag.tokens import count_tokens
from rag.types import Message, TokenUsage

log = logging.getLogger(__name__)

# Failures of a remote or local model that the chain turns into LLMError (anything else is a bug and propagates).
LLM_FAILURES: tuple[type[BaseException], ...] = (openai.OpenAIError, httpx.HTTPError, OSError, TimeoutError)


class LlamaCppChat(CustomLLM):
    """llama.cpp in-process (llama-cpp-python) as a llama-index chat LLM, using the GGUF's chat template."""

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 512
    temperature: float = 0.0
    _llama: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(
                "the 'local' backend needs llama-cpp-python: pip install 'paper-rag[local]' "
                "(or choose RAG_LLM=extractive / openai)"
            ) from exc
        path = Path(self.model_path)
        if not path.is_file():
            raise ModelError(f"local model file not found: {path}; set RAG_LOCAL_MODEL_PATH to a GGUF file")
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load the GGUF model {path}: {exc}") from exc

    @classmethod
    def class_name(cls) -> str:
        """Name llama-index records for this LLM."""
        return "paper_rag_llama_cpp"

    @property
    def metadata(self) -> LLMMetadata:
        """Context window, output budget and model name."""
        return LLMMetadata(
            context_window=self.n_ctx,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=Path(self.model_path).name,
        )

    def _create(self, messages: Sequence[ChatMessage], stream: bool) -> Any:
        """Run llama.cpp's chat completion over llama-index messages."""
        payload = [{"role": m.role.value, "content": m.content or ""} for m in messages]
        try:
            return self._llama.create_chat_completion(
                messages=payload, max_tokens=self.max_tokens, temperature=self.temperature, stream=stream
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMError(f"local model {Path(self.model_path).name} failed: {exc}") from exc

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """One chat completion."""
        result = self._create(messages, stream=False)
        text = result["choices"][0]["message"].get("content") or ""
        return ChatResponse(message=ChatMessage(role="assistant", content=text), raw=result)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """A streamed chat completion: responses carrying text deltas."""
        chunks = self._create(messages, stream=True)

        def gen() -> ChatResponseGen:
            text = ""
            for chunk in chunks:
                delta = chunk["choices"][0].get("delta", {}).get("content") or ""
                text += delta
                yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=delta, raw=chunk)

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """A completion, run as a one-message chat."""
        response = self.chat([ChatMessage(role="user", content=prompt)])
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """A streamed completion, run as a one-message chat."""

        def gen() -> CompletionResponseGen:
            text = ""
            for response in self.stream_chat([ChatMessage(role="user", content=prompt)]):
                text += response.delta or ""
                yield CompletionResponse(text=text, delta=response.delta, raw=response.raw)

        return gen()


class CheckedLLM(CustomLLM):
    """A llama-index LLM whose server failures raise LLMError: the chat model for callers outside the chain
    (the eval harness's LLM judge), so they need not know the HTTP clients' exception types."""

    _inner: Any = PrivateAttr(default=None)

    def __init__(self, inner: LLM, **data: Any) -> None:
        super().__init__(**data)
        self._inner = inner

    @classmethod
    def class_name(cls) -> str:
        """Name llama-index records for this LLM."""
        return "paper_rag_checked_llm"

    @property
    def metadata(self) -> LLMMetadata:
        """The wrapped model's metadata."""
        return self._inner.metadata

    def _failed(self, exc: BaseException) -> LLMError:
        """LLMError naming the model and where it runs."""
        where = getattr(self._inner, "api_base", "") or type(self._inner).__name__
        return LLMError(f"LLM {self.metadata.model_name!r} at {where} failed: {_describe(exc)}; check the server")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """One chat completion."""
        try:
            return self._inner.chat(messages, **kwargs)
        except LLM_FAILURES as exc:
            raise self._failed(exc) from exc

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """A streamed chat completion."""

        def gen() -> ChatResponseGen:
            try:
                yield from self._inner.stream_chat(messages, **kwargs)
            except LLM_FAILURES as exc:
                raise self._failed(exc) from exc

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """One completion."""
        try:
            return self._inner.complete(prompt, formatted=formatted, **kwargs)
        except LLM_FAILURES as exc:
            raise self._failed(exc) from exc

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """A streamed completion."""

        def gen() -> CompletionResponseGen:
            try:
                yield from self._inner.stream_complete(prompt, formatted=formatted, **kwargs)
            except LLM_FAILURES as exc:
                raise self._failed(exc) from exc

        return gen()


def _is_openai_host(base_url: str) -> bool:
    """True for api.openai.com (or no base URL), where the llama-index OpenAI class applies."""
    return not base_url or (urlparse(base_url).hostname or "").endswith("openai.com")


def make_llm(settings: Settings) -> LLM:
    """The llama-index LLM for settings.resolved_llm ('openai' or 'local')."""
    backend = settings.resolved_llm
    if backend == "local":
        if settings.local_model_path is None:
            raise ModelError("the 'local' backend needs a GGUF file: set RAG_LOCAL_MODEL_PATH")
        return LlamaCppChat(
            model_path=str(settings.local_model_path),
            n_ctx=settings.local_n_ctx,
            n_threads=settings.local_n_threads,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    if backend != "openai":
        raise SettingsError(f"backend {backend!r} has no LLM; make_llm serves 'openai' and 'local'")
    common: dict[str, Any] = {
        "model": settings.llm_model,
        "temperature": settings.llm_temperature,
        "max_tokens": settings.llm_max_tokens,
        "timeout": settings.llm_timeout,
        "max_retries": 0,  # ChatBackend retries itself, within the answer's deadline
    }
    if _is_openai_host(settings.openai_base_url):
        if not settings.openai_api_key:
            raise SettingsError("the 'openai' backend needs OPENAI_API_KEY (or RAG_OPENAI_BASE_URL for a local server)")
        from llama_index.llms.openai import OpenAI

        return OpenAI(api_key=settings.openai_api_key, api_base=settings.openai_base_url or None, **common)
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        api_base=settings.openai_base_url,
        api_key=settings.openai_api_key or "not-needed",
        is_chat_model=True,
        context_window=settings.llm_context_window,
        **common,
    )


def _describe(exc: BaseException) -> str:
    """A one-line reason for an LLM failure."""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | TimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"connection failed ({cause or exc})"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _retryable(exc: BaseException) -> bool:
    """True for failures worth another attempt: a refused connection, HTTP 429 or 5xx (never a timeout)."""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | TimeoutError):
        return False  # a server that accepted and went silent will not answer the next attempt either
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError)


@dataclass(frozen=True)
class Deadline:
    """The time by which the model's part of one answer must be done (retries included)."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        """Seconds since the deadline started."""
        return time.monotonic() - self.start

    def remaining(self) -> float:
        """Seconds left (0 when past it)."""
        return max(self.seconds - self.elapsed(), 0.0)


class _Silence(Exception):
    """No token arrived in time (first-token timeout or the total deadline)."""


_END = object()  # the worker's end-of-stream marker


@dataclass
class ChatBackend:
    """A chat LLM with the chain's error contract: text deltas out, LLMError on any server failure.

    Every call runs under a Deadline (one per answer when the caller passes it; else a fresh one of `timeout`
    seconds): the first token must come within `first_token_timeout`, refused connections and HTTP 429/5xx are
    retried with backoff while time is left, and the LLMError states the real time spent.
    """

    llm: LLM
    name: str
    timeout: float
    first_token_timeout: float
    max_retries: int
    last_usage: TokenUsage = field(default_factory=TokenUsage)

    @classmethod
    def from_settings(cls, llm: LLM, name: str, settings: Settings) -> ChatBackend:
        """A backend with the deadline, first-token timeout and retries of settings."""
        return cls(
            llm=llm, name=name, timeout=settings.llm_timeout, first_token_timeout=settings.llm_first_token_timeout,
            max_retries=settings.llm_max_retries,
        )  # fmt: skip

    @property
    def model(self) -> str:
        """The model name the backend reports."""
        return getattr(self.llm, "model", "") or self.llm.metadata.model_name

    @property
    def where(self) -> str:
        """Where the model runs, for error messages."""
        return getattr(self.llm, "api_base", "") or self.name

    def deadline(self) -> Deadline:
        """A fresh deadline for one answer (pass it to every call the answer makes)."""
        return Deadline(self.timeout)

    def _error(self, reason: str, partial: bool, deadline: Deadline, attempts: int) -> LLMError:
        """LLMError naming the server, the model, what went wrong, the time spent and what to try."""
        stage = "while streaming the answer" if partial else "before answering"
        tries = f", {attempts} attempts" if attempts > 1 else ""
        key = getattr(self.llm, "api_key", None) or ""
        if len(key) >= 8:  # a server may echo the key in its error message: never pass it on
            reason = reason.replace(key, "[API key]")
        return LLMError(
            f"LLM {self.model!r} at {self.where} failed {stage}: {reason} after {deadline.elapsed():.1f}s{tries} "
            f"(deadline {deadline.seconds:g}s, first token within {self.first_token_timeout:g}s); check that the "
            "server runs and the model name is right, raise RAG_LLM_TIMEOUT / RAG_LLM_FIRST_TOKEN_TIMEOUT, "
            "or set RAG_LLM_FALLBACK=extractive"
        )

    def stream(self, messages: Sequence[Message], deadline: Deadline | None = None) -> Iterator[str]:
        """Yield the reply's text deltas within the deadline; sets last_usage (server-reported or tiktoken-counted)."""
        deadline = deadline or self.deadline()
        chat = [ChatMessage(role=m.role, content=m.content) for m in messages]
        text, usage, attempt = "", None, 0
        while True:
            attempt += 1
            started = False
            try:
                for delta, raw_usage in self._attempt(chat, deadline):
                    usage = raw_usage or usage
                    if delta:
                        started = True
                        text += delta
                        yield delta
                break
            except _Silence as exc:
                raise self._error(str(exc), started, deadline, attempt) from None
            except LLM_FAILURES as exc:
                backoff = min(0.5 * 2 ** (attempt - 1), 4.0)
                if started or not _retryable(exc) or attempt > self.max_retries or deadline.remaining() <= backoff:
                    raise self._error(_describe(exc), started, deadline, attempt) from exc
                log.info("LLM request failed (%s); retrying in %.1fs", _describe(exc), backoff)
                time.sleep(backoff)
        prompt_tokens = sum(count_tokens(m.content) for m in messages)
        if usage is not None and getattr(usage, "completion_tokens", None):
            self.last_usage = TokenUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        else:
            self.last_usage = TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=count_tokens(text))

    def _attempt(self, chat: list[ChatMessage], deadline: Deadline) -> Iterator[tuple[str, Any]]:
        """One request, read by a worker thread so that a silent server cannot hold the caller past the deadline.

        Yields (delta, usage or None); raises _Silence when no token comes in time, or the request's own failure.
        """
        items: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                responses = self.llm.stream_chat(chat)
                for response in responses:
                    if stop.is_set():
                        responses.close()  # the caller gave up: end the request
                        return
                    items.put((response.delta or "", getattr(response.raw, "usage", None)))
                items.put(_END)
            except BaseException as exc:  # handed to the caller, which decides what it means
                items.put(exc)

        threading.Thread(target=work, name="llm-stream", daemon=True).start()
        first = True
        try:
            while True:
                remaining = deadline.remaining()
                first_token_limit = first and self.first_token_timeout < remaining
                try:
                    item = items.get(timeout=max(self.first_token_timeout if first_token_limit else remaining, 0.001))
                except queue.Empty:
                    if first_token_limit:
                        raise _Silence(f"timed out: no first token within {self.first_token_timeout:g}s") from None
                    raise _Silence(f"timed out: over the {deadline.seconds:g}s deadline") from None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                first = first and not item[0]
                yield item
        finally:
            stop.set()

    def complete(self, messages: Sequence[Message], deadline: Deadline | None = None) -> str:
        """The whole reply as one string."""
        return "".join(self.stream(messages, deadline))
