"""`AnswerChain`: validate, condense, retrieve, number sources, generate, verify citations, answer or abstain."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag.citations import verify_answer
from rag.condense import condense_rule, condense_with_llm
from rag.errors import LLMError, QuestionError
from rag.extractive import PaperEvidence, compose, score_sources
from rag.llm import ChatBackend, make_llm
from rag.prompts import ABSTAIN_PHRASE, build_answer_prompt, load_prompts
from rag.sentence_cache import SentenceCache
from rag.settings import Settings
from rag.types import Answer, Hit, Message, SearchFilters, normalize_space

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

Retrieve = Callable[[str, int, SearchFilters | None], list[Hit]]

NOTHING_FOUND = "No paper in the collection matches the question."
WEAK_EVIDENCE = "The closest papers do not address the question closely enough to answer it."
UNVERIFIED = "Nothing in the answer could be verified against the cited papers."


def abstain_text(reason: str) -> str:
    """The abstention message: the shared phrase, then why."""
    return f"{ABSTAIN_PHRASE}. {reason}"


def validate_question(question: str, max_chars: int) -> str:
    """The question with white space normalized; QuestionError when empty or longer than max_chars."""
    text = normalize_space(question or "")
    if not text:
        raise QuestionError("the question is empty: type a question about the papers in the collection")
    if len(text) > max_chars:
        raise QuestionError(
            f"the question is {len(text)} characters long, over the limit of {max_chars}; "
            "shorten it or raise RAG_MAX_QUESTION_CHARS"
        )
    return text


@dataclass
class _Run:
    """Per-question state: stage timings (ms) from one start time."""

    start: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)

    def stage(self, name: str, since: float) -> float:
        """Record a stage that began at `since`; return now."""
        now = time.perf_counter()
        self.timings[name] = round((now - since) * 1000, 2)
        return now

    def done(self) -> dict[str, float]:
        """Timings including the total."""
        self.timings["total"] = round((time.perf_counter() - self.start) * 1000, 2)
        return dict(self.timings)


class AnswerChain:
    """Answers questions over retrieved papers with one backend (extractive, openai or local)."""

    def __init__(self, settings: Settings, embedder: BaseEmbedding, retrieve: Retrieve, llm: LLM | None = None) -> None:
        self.settings = settings
        self.retrieve = retrieve
        self.backend_name = settings.resolved_llm
        self.prompts = load_prompts(settings.prompts_dir)
        self.cache = SentenceCache(embedder, settings.data_dir / "sentence_cache")
        self._llm = llm
        self._backend: ChatBackend | None = None

    @property
    def backend(self) -> ChatBackend | None:
        """The chat model (built on first use), or None for the extractive backend."""
        if self.backend_name == "extractive":
            return None
        if self._backend is None:
            llm = self._llm or make_llm(self.settings)
            self._backend = ChatBackend(llm=llm, name=self.backend_name, timeout=self.settings.llm_timeout)
        return self._backend

    def ask(
        self, question: str, history: Sequence[Message] = (), k: int | None = None, filters: SearchFilters | None = None
    ) -> Answer:
        """Answer a question (a follow-up when history is given) with verified citations, or abstain."""
        *_, answer = self.stream(question, history, k=k, filters=filters)
        assert isinstance(answer, Answer)  # stream() always ends with the Answer
        return answer

    def stream(
        self, question: str, history: Sequence[Message] = (), k: int | None = None, filters: SearchFilters | None = None
    ) -> Iterator[str | Answer]:
        """Yield answer text deltas as they are produced, then the final verified Answer.

        With an LLM the deltas are the model's raw reply; the final Answer's text is the verified one (citations
        to missing sources removed, unsupported sentences marked): a UI should show it in place of the deltas.
        """
        run = _Run()
        text = validate_question(question, self.settings.max_question_chars)
        turns = list(history)[-2 * self.settings.history_turns :] if self.settings.history_turns else []
        mark = run.start
        standalone = self.condense(text, turns)
        mark = run.stage("condense", mark)
        hits = self.retrieve(standalone, k or self.settings.answer_k, filters)
        mark = run.stage("retrieve", mark)
        base = {"question": text, "standalone_question": standalone, "backend": self.backend_name}
        if not hits:
            answer = Answer(text=abstain_text(NOTHING_FOUND), abstained=True, timings_ms=run.done(), **base)
            yield answer.text
            yield answer
            return
        evidence = score_sources(standalone, hits, self.cache)
        backend = self.backend
        if backend is None:
            yield from self._extractive(run, mark, standalone, hits, evidence, base, model=self.cache.model_name)
            return
        if not compose(standalone, evidence, self.settings.abstain_threshold).text:
            # the same evidence gate as the extractive answerer: no model call when the sources cannot answer
            answer = Answer(
                text=abstain_text(WEAK_EVIDENCE), abstained=True, sources=tuple(hits), model=backend.model,
                timings_ms=run.done(), **base,
            )  # fmt: skip
            yield answer.text
            yield answer
            return
        yield from self._generate(run, mark, backend, standalone, hits, turns, evidence, base)

    def condense(self, question: str, history: Sequence[Message]) -> str:
        """The standalone form of a follow-up (the question itself when there is no history)."""
        if not history:
            return question
        backend = self.backend if self.settings.condense_with_llm else None
        if backend is None:
            return condense_rule(question, history)
        try:
            return condense_with_llm(backend, self.prompts, question, history, self.settings.max_question_chars)
        except LLMError as exc:
            log.warning("condensing with the LLM failed (%s); using the rule-based rewrite", exc)
            return condense_rule(question, history)

    def _extractive(
        self,
        run: _Run,
        mark: float,
        standalone: str,
        hits: list[Hit],
        evidence: list[PaperEvidence],
        base: dict[str, str],
        model: str,
        notice: str = "",
    ) -> Iterator[str | Answer]:
        """Compose, verify and stream the extractive answer."""
        result = compose(standalone, evidence, self.settings.abstain_threshold)
        mark = run.stage("generate", mark)
        sources = tuple(hits)
        extra = {"notice": notice, "model": model, **base, "backend": "extractive" if notice else base["backend"]}
        if not result.text:
            answer = Answer(text=abstain_text(WEAK_EVIDENCE), abstained=True, sources=sources, **extra)
            answer = answer.model_copy(update={"timings_ms": run.done()})
            yield answer.text
            yield answer
            return
        verification = verify_answer(result.text, sources, self.cache, self.settings.support_threshold)
        run.stage("verify", mark)
        if not verification.any_supported:
            answer = Answer(text=abstain_text(UNVERIFIED), abstained=True, sources=sources, **extra)
        else:
            answer = Answer(
                text=verification.text, citations=verification.citations, sentences=verification.sentences,
                sources=sources, **extra,
            )  # fmt: skip
        answer = answer.model_copy(update={"timings_ms": run.done()})
        lines = answer.text.split("\n")
        for i, line in enumerate(lines):
            yield line + ("\n" if i < len(lines) - 1 else "")
        yield answer

    def _generate(
        self,
        run: _Run,
        mark: float,
        backend: ChatBackend,
        standalone: str,
        hits: list[Hit],
        turns: list[Message],
        evidence: list[PaperEvidence],
        base: dict[str, str],
    ) -> Iterator[str | Answer]:
        """Prompt the chat model with numbered sources, stream its reply, verify it; fall back on failure."""
        prompt = build_answer_prompt(
            self.prompts, standalone, hits, turns,
            context_window=self.settings.llm_context_window, max_new_tokens=self.settings.llm_max_tokens,
        )  # fmt: skip
        raw = ""
        try:
            for delta in backend.stream(prompt.messages):
                raw += delta
                yield delta
            if not raw.strip():
                raise LLMError(
                    f"the {self.backend_name} model {backend.model!r} returned an empty reply; the prompt may exceed "
                    "the server's context size: set RAG_LLM_CONTEXT_WINDOW to the server's n_ctx"
                )
        except LLMError as exc:
            if self.settings.llm_fallback != "extractive":
                raise
            log.warning("%s; answering extractively", exc)
            notice = f"The {self.backend_name} model failed ({exc}); this is the extractive answer instead."
            yield f"\n\n[{notice}]\n\n"
            yield from self._extractive(run, mark, standalone, hits, evidence, base, self.cache.model_name, notice)
            return
        mark = run.stage("generate", mark)
        sources = prompt.sources
        usage = backend.last_usage
        verification = verify_answer(raw, sources, self.cache, self.settings.support_threshold)
        run.stage("verify", mark)
        common = {"sources": sources, "usage": usage, "model": backend.model, **base}
        if not verification.any_supported:
            said_so = ABSTAIN_PHRASE.lower() in raw.lower()
            answer = Answer(text=abstain_text(WEAK_EVIDENCE if said_so else UNVERIFIED), abstained=True, **common)
        else:
            answer = Answer(
                text=verification.text, citations=verification.citations, sentences=verification.sentences, **common
            )
        yield answer.model_copy(update={"timings_ms": run.done()})
