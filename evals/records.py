"""Records of an eval run: per-item scores and results, and the aggregated metrics written to metrics.json."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from evals.metrics import mean, percentiles
from rag.types import Message, Record


class Scores(Record):
    """Scores of one item, or their means over a set of items (None: the metric does not apply)."""

    hit_at_1: float | None = None
    hit_at_5: float | None = None
    hit_at_10: float | None = None
    recall_at_1: float | None = None
    recall_at_5: float | None = None
    recall_at_10: float | None = None
    mrr_at_10: float | None = None
    ndcg_at_10: float | None = None
    must_include_recall: float | None = Field(default=None, description="Share of must_include strings in the answer.")
    fully_correct: float | None = Field(
        default=None,
        description="Answerable: not abstained, every must_include string found and no non-gold paper cited. "
        "Unanswerable: abstained.",
    )
    cited_paper_precision: float | None = Field(default=None, description="Cited papers that are gold (answerable).")
    cited_paper_recall: float | None = Field(default=None, description="Gold papers that are cited (answerable).")
    supported_sentence_share: float | None = Field(
        default=None, description="Answer sentences with a citation the verifier found supported."
    )
    answered_standalone: float | None = Field(
        default=None, description="Topic switches: searched as typed, not as a follow-up of the earlier turns."
    )
    abstention_rate_unanswerable: float | None = Field(default=None, description="Abstained, on unanswerable items.")
    false_abstention_rate: float | None = Field(default=None, description="Abstained, on answerable items.")
    judge_faithfulness: float | None = Field(default=None, description="LLM judge: answer supported by sources (0/1).")
    judge_correctness: float | None = Field(default=None, description="LLM judge: correctness score / 5.")

    @classmethod
    def average(cls, scores: Sequence[Scores]) -> Scores:
        """Field-wise mean over items, ignoring items where a metric does not apply."""
        return cls(**{name: mean(getattr(s, name) for s in scores) for name in cls.model_fields})


class ItemResult(Record):
    """What the assistant did on one gold item, and how it scored."""

    id: str
    type: str
    where: str = Field(description="Gold file and line of the item.")
    question: str
    history: tuple[Message, ...] = ()
    standalone_question: str = ""
    expected: str = Field(description="The gold reference answer.")
    gold_titles: tuple[str, ...] = ()
    must_include: tuple[str, ...] = ()
    missing: tuple[str, ...] = Field(default=(), description="must_include strings not found in the answer.")
    answer: str = ""
    abstained: bool = False
    notice: str = ""
    error: str = Field(default="", description="The RagError the assistant raised on this item, if any.")
    backend: str = Field(default="", description="Answer backend that answered.")
    model: str = ""
    cited_titles: tuple[str, ...] = ()
    retrieved_titles: tuple[str, ...] = Field(default=(), description="Titles `search` ranked, best first.")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    scores: Scores = Scores()

    @property
    def failed(self) -> bool:
        """True when the item was not answered fully correctly."""
        return self.scores.fully_correct is not None and self.scores.fully_correct < 1.0


class LatencyStats(Record):
    """Latency of one stage over the run, in milliseconds."""

    n: int
    p50: float
    p95: float
    mean: float
    max: float


class RunMetrics(Record):
    """Everything metrics.json holds: configuration, overall and per-type scores, latency, failures."""

    created: str = Field(description="UTC time the run finished (ISO 8601).")
    gold_files: tuple[str, ...]
    gold_digest: str = Field(default="", description="Hash of the evaluated items; runs to compare should share it.")
    collection: str
    backend: str = Field(description="Answer backend that answered (extractive, openai, local).")
    model: str = ""
    retrieval: str = ""
    k: int = Field(description="Depth of the `search` used for retrieval metrics.")
    judge: bool = False
    n_items: int
    n_by_type: dict[str, int]
    overall: Scores
    by_type: dict[str, Scores]
    latency_ms: dict[str, LatencyStats] = Field(description="Per chain stage (Answer.timings_ms) plus eval wall times.")
    latency_by_type: dict[str, LatencyStats] = Field(
        default_factory=dict, description="Wall time of `ask` (eval_ask_total) per item type."
    )
    failures: tuple[str, ...] = Field(default=(), description="Ids of items not fully correct.")
    errors: tuple[str, ...] = Field(default=(), description="Ids of items where the assistant raised a RagError.")

    def flat(self) -> dict[str, float]:
        """Overall scores, per-type scores ('<type>.<metric>') and latencies ('latency.<stage>.p50') as one dict."""
        out: dict[str, float] = {k: v for k, v in self.overall.model_dump().items() if v is not None}
        for type_, scores in self.by_type.items():
            out.update({f"{type_}.{k}": v for k, v in scores.model_dump().items() if v is not None})
        for stage, stats in self.latency_ms.items():
            out.update({f"latency.{stage}.p50": stats.p50, f"latency.{stage}.p95": stats.p95})
        return out


def _stats(values: Sequence[float]) -> LatencyStats:
    """Latency statistics of a non-empty list of milliseconds."""
    p = percentiles(values)
    return LatencyStats(n=len(values), p50=p["p50"], p95=p["p95"], mean=sum(values) / len(values), max=max(values))


def latency_stats(results: Sequence[ItemResult]) -> dict[str, LatencyStats]:
    """p50/p95/mean/max per timing stage across items, stages in first-seen order."""
    stages: dict[str, list[float]] = {}
    for r in results:
        for stage, ms in r.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {stage: _stats(values) for stage, values in stages.items()}


def latency_by_type(results: Sequence[ItemResult], stage: str) -> dict[str, LatencyStats]:
    """Statistics of one timing stage per item type, types in first-seen order."""
    by_type: dict[str, list[float]] = {}
    for r in results:
        if stage in r.timings_ms:
            by_type.setdefault(r.type, []).append(r.timings_ms[stage])
    return {t: _stats(values) for t, values in by_type.items()}
