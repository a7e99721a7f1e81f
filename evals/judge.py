"""Optional LLM-as-judge scores (faithfulness, correctness) with llama-index's evaluators and the configured LLM."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from llama_index.core.evaluation import CorrectnessEvaluator, FaithfulnessEvaluator

from rag import Assistant, LLMError, Settings, SettingsError

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from evals.gold_schema import GoldItem
    from rag.types import Answer

log = logging.getLogger(__name__)

CORRECTNESS_MAX = 5.0  # CorrectnessEvaluator scores 1..5; reported as score / 5
_SCORE = re.compile(r"\b([1-5](?:\.\d+)?)\b")


def parse_correctness(reply: str) -> tuple[float | None, str]:
    """The first 1..5 score in a judge reply and the reply as reasoning (None when there is no score).

    Written here because llama-index's default parser raises on a one-line reply and misses 'Score: 4'.
    """
    match = _SCORE.search(reply)
    return (float(match.group(1)) if match else None), reply.strip()


class Judge:
    """Grades answers with an LLM: faithful to the shown sources (0/1) and correct against the reference (0..1)."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self._faithfulness = FaithfulnessEvaluator(llm=llm)
        self._correctness = CorrectnessEvaluator(llm=llm, parser_function=parse_correctness)

    @classmethod
    def from_settings(cls, settings: Settings) -> Judge:
        """A judge on the configured LLM (even when answers are extractive); SettingsError when there is none."""
        if settings.resolved_llm == "extractive":
            settings = settings.model_copy(update={"llm": "auto"})
        if settings.resolved_llm == "extractive":
            raise SettingsError(
                "--judge needs an LLM: set RAG_OPENAI_BASE_URL (an OpenAI-compatible server) or OPENAI_API_KEY"
            )
        return cls(Assistant(settings).chat_model())

    def score(self, item: GoldItem, answer: Answer) -> tuple[float | None, float | None]:
        """(faithfulness to the cited papers, correctness against the reference); None for abstentions."""
        if answer.abstained or not answer.text.strip():
            return None, None
        cited = answer.citations or tuple(answer.sources)
        contexts = [f"{c.paper.title}\n{c.paper.abstract}" for c in cited]
        try:
            faithful = self._faithfulness.evaluate(query=item.question, response=answer.text, contexts=contexts)
            correct = self._correctness.evaluate(query=item.question, response=answer.text, reference=item.answer)
        except LLMError as exc:
            raise LLMError(f"the judge LLM failed on gold item {item.id} ({item.where}): {exc} "
                           "(or run without --judge)") from exc
        correctness = None if correct.score is None else float(correct.score) / CORRECTNESS_MAX
        return (None if faithful.score is None else float(faithful.score)), correctness
