"""The eval harness: ask the Assistant every gold question, search its standalone question, and score both."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from evals import metrics
from evals.gold_schema import ITEM_TYPES, GoldItem
from evals.records import ItemResult, RunMetrics, Scores, latency_by_type, latency_stats
from rag.errors import RagError
from rag.settings import DEFAULT_COLLECTION
from rag.types import Answer, Hit, Record, normalize_title

if TYPE_CHECKING:
    from evals.judge import Judge
    from rag.assistant import Assistant

log = logging.getLogger(__name__)

SEARCH_STAGE = "eval_search"
ASK_STAGE = "eval_ask_total"
MAX_ERRORS_IN_A_ROW = 3  # then the cause is systematic (server down, bad settings): stop instead of grinding on


class EvalRun(Record):
    """The outcome of one harness run: aggregated metrics and one result per gold item."""

    metrics: RunMetrics
    results: tuple[ItemResult, ...]


def _unique(titles: Sequence[str]) -> tuple[str, ...]:
    """Titles in first-seen order without repeats (by normalized title)."""
    seen: set[str] = set()
    out = []
    for t in titles:
        key = normalize_title(t)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return tuple(out)


def score_item(
    item: GoldItem,
    answer: Answer,
    hits: Sequence[Hit],
    judged: tuple[float | None, float | None] = (None, None),
) -> Scores:
    """Score one answer and one ranked hit list against a gold item (metrics that don't apply stay None)."""
    faithfulness, correctness = judged
    include = metrics.must_include_recall(answer.text, item.must_include)
    if not item.answerable:
        return Scores(
            fully_correct=float(answer.abstained),
            abstention_rate_unanswerable=float(answer.abstained),
            judge_faithfulness=faithfulness,
            judge_correctness=correctness,
        )
    gold = [normalize_title(t) for t in item.gold_titles]
    ranked = [normalize_title(h.paper.title) for h in hits]
    cited = _unique([c.paper.title for c in answer.citations])
    precision, recall = metrics.citation_precision_recall(cited, item.gold_titles)
    return Scores(
        **metrics.retrieval_scores(gold, list(dict.fromkeys(ranked))),
        must_include_recall=include,
        fully_correct=float(not answer.abstained and (include is None or include == 1.0) and precision in (None, 1.0)),
        answered_standalone=float(not answer.follow_up) if item.type == "topic_switch" else None,
        cited_paper_precision=precision,
        cited_paper_recall=recall,
        # generated answers only: an extractive sentence is a quote of the abstract it cites
        supported_sentence_share=None if answer.abstained or (answer.backend == "extractive" and not answer.notice)
        else metrics.supported_sentence_share(answer.sentences),
        false_abstention_rate=float(answer.abstained),
        judge_faithfulness=faithfulness,
        judge_correctness=correctness,
    )


def items_digest(items: Sequence[GoldItem]) -> str:
    """A short hash of the items' content (not their file locations), to tell whether two runs are comparable."""
    h = hashlib.sha256()
    for item in items:
        h.update(item.model_dump_json(exclude={"source", "line"}).encode("utf-8"))
    return h.hexdigest()[:16]


def evaluate_item(assistant: Assistant, item: GoldItem, k: int = 10, judge: Judge | None = None) -> ItemResult:
    """Ask one gold question (with its history), search the standalone question, and score the outcome.

    A RagError of the assistant (bad question, LLM failure) is recorded on the item, which then scores as a
    wrong, non-abstaining answer; the run goes on.
    """
    started = time.perf_counter()
    error = ""
    try:
        answer = assistant.ask(item.question, history=list(item.history))
    except RagError as exc:
        error = f"{type(exc).__name__}: {exc}"
        answer = Answer(question=item.question, text="")
    asked = time.perf_counter()
    standalone = answer.standalone_question or item.question
    try:
        hits = assistant.search(standalone, k=k)
    except RagError as exc:
        error = error or f"{type(exc).__name__}: {exc}"
        hits = []
    searched = time.perf_counter()
    judged = judge.score(item, answer) if judge is not None and not error else (None, None)
    timings = {**answer.timings_ms, ASK_STAGE: (asked - started) * 1000, SEARCH_STAGE: (searched - asked) * 1000}
    return ItemResult(
        id=item.id,
        type=item.type,
        where=item.where,
        question=item.question,
        history=item.history,
        standalone_question=standalone,
        expected=item.answer,
        gold_titles=item.gold_titles,
        must_include=item.must_include,
        missing=tuple(n for n in item.must_include if not metrics.contains(answer.text, n)),
        answer=answer.text,
        abstained=answer.abstained,
        notice=answer.notice,
        error=error,
        backend=answer.backend,
        model=answer.model,
        cited_titles=_unique([c.paper.title for c in answer.citations]),
        retrieved_titles=_unique([h.paper.title for h in hits]),
        timings_ms=timings,
        scores=score_item(item, answer, hits, judged),
    )


def aggregate(
    results: Sequence[ItemResult],
    *,
    gold_files: Sequence[str | Path],
    gold_digest: str = "",
    collection: str,
    backend: str,
    model: str,
    retrieval: str,
    k: int,
    judge: bool,
) -> RunMetrics:
    """Overall and per-type means, latency percentiles and the failure list of a run."""
    by_type = {t: [r for r in results if r.type == t] for t in ITEM_TYPES}
    return RunMetrics(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        gold_files=tuple(str(f) for f in gold_files),
        gold_digest=gold_digest,
        collection=collection,
        backend=backend,
        model=model,
        retrieval=retrieval,
        k=k,
        judge=judge,
        n_items=len(results),
        n_by_type={t: len(rs) for t, rs in by_type.items() if rs},
        overall=Scores.average([r.scores for r in results]),
        by_type={t: Scores.average([r.scores for r in rs]) for t, rs in by_type.items() if rs},
        latency_ms=latency_stats(results),
        latency_by_type=latency_by_type(results, ASK_STAGE),
        failures=tuple(r.id for r in results if r.failed),
        errors=tuple(r.id for r in results if r.error),
    )


def run_eval(
    assistant: Assistant,
    items: Sequence[GoldItem],
    *,
    k: int = 10,
    judge: Judge | None = None,
    gold_files: Sequence[str | Path] = (),
    progress: bool = True,
) -> EvalRun:
    """Evaluate the assistant on gold items; the collection must already hold the papers the gold set names."""
    if not items:
        raise RagError("no gold items to evaluate; pass a gold JSONL file with --gold")
    info = assistant.info()
    if info.papers == 0 and info.collection != DEFAULT_COLLECTION:  # the default one fills itself on first search
        name = info.collection
        raise RagError(f"collection {name!r} is empty; run `rag ingest --collection {name}` first")
    results: list[ItemResult] = []
    for item in tqdm(items, desc="eval", unit="q", disable=not progress):
        result = evaluate_item(assistant, item, k=k, judge=judge)
        results.append(result)
        log.debug("%s %s fully_correct=%s", item.id, item.type, result.scores.fully_correct)
        if result.error:
            log.warning("gold item %s (%s) failed: %s", item.id, item.where, result.error)
        if len(results) >= MAX_ERRORS_IN_A_ROW and all(r.error for r in results[-MAX_ERRORS_IN_A_ROW:]):
            raise RagError(
                f"{MAX_ERRORS_IN_A_ROW} gold items in a row failed, the last ({item.where}) with {result.error}; "
                "fix the cause (LLM server, settings, gold questions) and run again"
            )
    run_metrics = aggregate(
        results,
        gold_files=gold_files,
        gold_digest=items_digest(items),
        collection=assistant.settings.collection,
        backend=results[0].backend,
        model=results[0].model,
        retrieval=assistant.settings.retrieval,
        k=k,
        judge=judge is not None,
    )
    return EvalRun(metrics=run_metrics, results=tuple(results))
