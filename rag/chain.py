"""`AnswerChain`: validate, resolve the turn, retrieve, score evidence, answer (composer or LLM), verify, cite.

Every backend goes through the same steps: the evidence model's gate decides whether the sources can answer, and
`AnswerBuilder` lets through only sentences their cited sources support, numbered in reading order. What `stream`
yields is verified text only; the final `Answer` carries the same text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag.citations import AnswerBuilder
from rag.compose import compose
from rag.constraints import parse
from rag.conversation import Turn, resolve, rewrite_with_llm
from rag.errors import LLMError
from rag.evidence import Evidence, QueryType, load_model, query_type, score
from rag.limits import clean_question
from rag.prompts import ABSTAIN_PHRASE, build_answer_prompt, load_prompts
from rag.sentence_cache import SentenceCache
from rag.settings import Settings
from rag.types import Answer, Hit, Message, Paper, SearchFilters

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.llms import LLM

    from rag.llm import ChatBackend, Deadline

log = logging.getLogger(__name__)

Retrieve = Callable[[str, int, SearchFilters | None], list[Hit]]
Lookup = Callable[[Sequence[str]], list[Paper]]
Named = Callable[[str], list[Paper]]  # the papers a name (an alias: "GroupMamba", "Vision Mamba") belongs to

NOTHING_FOUND = "No paper in the collection matches the question."
WEAK_EVIDENCE = "The closest papers do not address the question closely enough to answer it."
UNVERIFIED = "Nothing in the answer could be verified against the cited papers."


def abstain_text(reason: str) -> str:
    """The abstention message: the shared phrase, then why."""
    return f"{ABSTAIN_PHRASE}. {reason}"


def validate_question(question: str, max_chars: int) -> str:
    """The question cleaned by the shared input rule (rag.limits): QuestionError when empty or too long."""
    return clean_question(question, max_chars)


@dataclass
class _Run:
    """Per-question state: stage timings (ms) from one start time."""

    start: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    mark: float = 0.0

    def stage(self, name: str) -> None:
        """Record the stage that ran since the previous mark."""
        now = time.perf_counter()
        self.timings[name] = round((now - (self.mark or self.start)) * 1000, 2)
        self.mark = now

    def done(self) -> dict[str, float]:
        """Timings including the total."""
        self.timings["total"] = round((time.perf_counter() - self.start) * 1000, 2)
        return dict(self.timings)


@dataclass(frozen=True)
class Prepared:
    """What the chain knows before answering: the resolved turn, the sources and their evidence."""

    turn: Turn
    hits: list[Hit]
    evidence: Evidence | None


class AnswerChain:
    """Answers questions over retrieved papers with one backend (extractive, openai or local)."""

    def __init__(
        self,
        settings: Settings,
        embedder: BaseEmbedding,
        retrieve: Retrieve,
        lookup: Lookup | None = None,
        llm: LLM | None = None,
        named: Named | None = None,
    ) -> None:
        self.settings = settings
        self.retrieve = retrieve
        self.lookup = lookup
        self.named = named
        self.backend_name = settings.resolved_llm
        self.prompts = load_prompts(settings.prompts_dir)
        self.cache = SentenceCache.for_settings(embedder, settings)
        self.model = load_model()
        self._llm = llm
        self._backend: ChatBackend | None = None

    @property
    def backend(self) -> ChatBackend | None:
        """The chat model (built on first use), or None for the extractive backend."""
        if self.backend_name == "extractive":
            return None
        if self._backend is None:
            # imported here: llama-index and openai take about 4 s to import, which the extractive backend never needs
            from rag.llm import ChatBackend, make_llm

            llm = self._llm or make_llm(self.settings)
            self._backend = ChatBackend.from_settings(llm, self.backend_name, self.settings)
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
        """Yield the answer's verified text as each sentence passes the verifier, then the final Answer."""
        run = _Run()
        text = validate_question(question, self.settings.max_question_chars)
        turns = list(history)[-2 * self.settings.history_turns :] if self.settings.history_turns else []
        backend = self.backend
        deadline = backend.deadline() if backend is not None else None
        turn = self.turn(text, turns, deadline)
        run.stage("condense")
        hits = self._hits(turn, k, filters)
        run.stage("retrieve")
        base: dict[str, Any] = {
            "question": text, "standalone_question": turn.standalone, "follow_up": turn.follow_up,
            "backend": self.backend_name,
        }  # fmt: skip
        if not hits:
            yield from _finish(Answer(text=abstain_text(NOTHING_FOUND), abstained=True, timings_ms=run.done(), **base))
            return
        evidence = self._evidence(turn, hits)
        run.stage("evidence")
        if backend is None:
            yield from self._extractive(run, evidence, hits, base, model=self.cache.model_name)
            return
        if not evidence.answerable(self.model):
            # the evidence gate: no model call when the sources cannot answer
            answer = Answer(
                text=abstain_text(WEAK_EVIDENCE), abstained=True, sources=tuple(hits), model=backend.model,
                timings_ms=run.done(), **base,
            )  # fmt: skip
            yield from _finish(answer)
            return
        assert deadline is not None
        yield from self._generate(run, backend, deadline, evidence, hits, turns, base)

    def prepare(self, question: str, history: Sequence[Message] = ()) -> Prepared:
        """The turn, the numbered sources and their evidence scores for a question (no answer composed)."""
        text = validate_question(question, self.settings.max_question_chars)
        turn = resolve(text, history, self.lookup, self.named)
        hits = self._hits(turn, None, None)
        return Prepared(turn, hits, self._evidence(turn, hits) if hits else None)

    def _evidence(self, turn: Turn, hits: list[Hit]) -> Evidence:
        """The sources scored against the turn's standalone question, the papers it points at counted as named."""
        return score(turn.standalone, hits, self.cache, self.model, focus=turn.papers, references=turn.names)

    def turn(self, question: str, history: Sequence[Message], deadline: Deadline | None = None) -> Turn:
        """How the question relates to the conversation: standalone, or a follow-up over the papers it means."""
        turn = resolve(question, history, self.lookup, self.named)
        backend = self.backend if self.settings.condense_with_llm else None
        if backend is None or not turn.follow_up:
            return turn
        try:
            return rewrite_with_llm(backend, self.prompts, turn, history, self.settings.max_question_chars, deadline)
        except LLMError as exc:
            log.warning("rewriting the follow-up with the LLM failed (%s); using the rule-based rewrite", exc)
            return turn

    def _hits(self, turn: Turn, k: int | None, filters: SearchFilters | None) -> list[Hit]:
        """The numbered sources: the follow-up's papers, or a search (wider for list questions)."""
        listing = query_type(turn.standalone) is QueryType.LIST
        wanted = k or (self.settings.list_k if listing else self.settings.answer_k)
        if not turn.papers:  # "apart from X": X's words would pull in the papers the answer leaves out
            return self.retrieve(parse(turn.standalone).searched, wanted, filters)
        scoped = (filters or SearchFilters()).model_copy(update={"paper_ids": turn.papers})
        hits = [h for h in self.retrieve(turn.standalone, max(wanted, len(turn.papers)), scoped) if h.paper.id in
                turn.papers]  # fmt: skip
        return hits or self.retrieve(turn.standalone, wanted, filters)

    def _extractive(
        self, run: _Run, evidence: Evidence, hits: list[Hit], base: dict[str, Any], model: str, notice: str = ""
    ) -> Iterator[str | Answer]:
        """Compose the extractive answer from the evidence and stream it through the verifier."""
        composition = compose(evidence, self.model)
        run.stage("generate")
        extra = {**base, "notice": notice, "model": model, "backend": "extractive" if notice else base["backend"]}
        if not composition.text:
            yield from _finish(Answer(text=abstain_text(WEAK_EVIDENCE), abstained=True, sources=tuple(hits),
                                      timings_ms=run.done(), **extra))  # fmt: skip
            return
        builder = AnswerBuilder(hits, self.cache, self.settings.support_threshold)
        yield from builder.add(composition.text)
        run.stage("verify")
        yield from self._answer(builder, hits, extra, run)

    def _generate(
        self,
        run: _Run,
        backend: ChatBackend,
        deadline: Deadline,
        evidence: Evidence,
        hits: list[Hit],
        turns: list[Message],
        base: dict[str, Any],
    ) -> Iterator[str | Answer]:
        """Prompt the chat model with numbered sources and stream its reply through the verifier, sentence by
        sentence; on failure before any verified sentence, answer extractively (with a notice) or raise."""
        prompt = build_answer_prompt(
            self.prompts, evidence.question, hits, turns,
            context_window=self.settings.llm_context_window, max_new_tokens=self.settings.llm_max_tokens,
        )  # fmt: skip
        builder = AnswerBuilder(prompt.sources, self.cache, self.settings.support_threshold)
        raw, shown, notice = "", False, ""
        try:
            for delta in backend.stream(prompt.messages, deadline):
                raw += delta
                for verified in builder.feed(delta):
                    shown = True
                    yield verified
            if not raw.strip():
                raise LLMError(
                    f"the {self.backend_name} model {backend.model!r} returned an empty reply; the prompt may exceed "
                    "the server's context size: set RAG_LLM_CONTEXT_WINDOW to the server's n_ctx"
                )
        except LLMError as exc:
            if shown:
                notice = f"The {self.backend_name} model stopped early ({exc}); the answer may be incomplete."
            elif self.settings.llm_fallback == "extractive":
                log.warning("%s; answering extractively", exc)
                notice = f"The {self.backend_name} model failed ({exc}); this is the extractive answer instead."
                yield from self._extractive(run, evidence, hits, base, self.cache.model_name, notice)
                return
            else:
                raise
        yield from builder.finish()
        run.stage("generate")
        extra = {**base, "usage": backend.last_usage, "model": backend.model}
        if not builder.any_supported and ABSTAIN_PHRASE.lower() in raw.lower():
            yield from _finish(Answer(text=abstain_text(WEAK_EVIDENCE), abstained=True, sources=prompt.sources,
                                      timings_ms=run.done(), **extra))  # fmt: skip
            return
        dropped = builder.dropped
        if dropped and builder.any_supported and not notice:
            notice = (f"{dropped} sentence{'s' if dropped > 1 else ''} of the model's reply left out: the cited papers "
                      "do not support them.")  # fmt: skip
        yield from self._answer(builder, list(prompt.sources), {**extra, "notice": notice}, run)

    def _answer(
        self, builder: AnswerBuilder, hits: list[Hit], extra: dict[str, Any], run: _Run
    ) -> Iterator[str | Answer]:
        """The final Answer of a verified builder; an abstention (its text yielded first) when nothing was supported."""
        if not builder.any_supported:
            yield from _finish(Answer(text=abstain_text(UNVERIFIED), abstained=True, sources=tuple(hits),
                                      sentences=tuple(builder.sentences), timings_ms=run.done(), **extra))  # fmt: skip
            return
        yield Answer(
            text=builder.text, citations=builder.citations(), sentences=tuple(builder.sentences),
            sources=builder.ordered_sources(), timings_ms=run.done(), **extra,
        )  # fmt: skip


def _finish(answer: Answer) -> Iterator[str | Answer]:
    """Yield an answer made in one piece (an abstention): its text, then the record."""
    yield answer.text
    yield answer
