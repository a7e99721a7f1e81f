"""Per-item scoring functions: retrieval ranks, must-include matching, citation precision/recall, latency stats."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.types import AnswerSentence, normalize_title

if TYPE_CHECKING:
    from llama_index.core.evaluation.retrieval.metrics import MRR, NDCG, HitRate, Recall

RETRIEVAL_KS = (1, 5, 10)


@cache
def _metrics() -> dict[str, Any]:
    """llama-index's retrieval metrics, imported on first use: `rag` loads this module for every command."""
    from llama_index.core.evaluation.retrieval.metrics import MRR, NDCG, HitRate, Recall

    return {"hit": HitRate(), "recall": Recall(), "mrr": MRR(), "ndcg": NDCG()}

# Number forms the answerer and the abstracts write differently: `2.8x` / `2.8×` / `2.8 times` / `2.8times`,
# `86.5 %` / `86.5%`, `1,000` / `1000`.
_TIMES = re.compile(r"(\d)\s*(?:×|x|times)(?![a-z])", re.IGNORECASE)
_PERCENT = re.compile(r"(\d)\s*(?:%|\\%|percent\b)", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_DASH = re.compile(r"\s*-\s*")
_SPACE = re.compile(r"\s+")


def retrieval_scores(gold_ids: Sequence[str], ranked_ids: Sequence[str], ks: Sequence[int] = RETRIEVAL_KS) -> dict:
    """hit@k and recall@k for each k, MRR@10 and nDCG@10 of a ranked list of paper ids against the gold ids.

    The formulas are llama-index's (HitRate, Recall, MRR, NDCG with binary relevance); it raises on an empty
    ranked list, which here scores 0. Its NDCG does not cap the ideal ranking at k, so it equals trec_eval's
    ndcg_cut@10 only up to 10 gold papers per question; gold files stay far below that (at most 4).
    """
    if not gold_ids:
        raise ValueError("retrieval scores need at least one gold id")
    scores: dict[str, float] = {}
    metric = _metrics()
    for k in ks:
        top = list(ranked_ids[:k])
        scores[f"hit_at_{k}"] = _score(metric["hit"], gold_ids, top)
        scores[f"recall_at_{k}"] = _score(metric["recall"], gold_ids, top)
    scores["mrr_at_10"] = _score(metric["mrr"], gold_ids, list(ranked_ids[:10]))
    scores["ndcg_at_10"] = _score(metric["ndcg"], gold_ids, list(ranked_ids[:10]))
    return scores


def _score(metric: HitRate | Recall | MRR | NDCG, gold_ids: Sequence[str], ranked: list[str]) -> float:
    """One llama-index retrieval metric, 0.0 when nothing was retrieved."""
    if not ranked:
        return 0.0
    return float(metric.compute(expected_ids=list(gold_ids), retrieved_ids=ranked).score)


def normalize_for_match(text: str) -> str:
    """Lower-case and unify number forms (times, percent, thousands separators) and spacing."""
    text = text.lower().replace("\u2212", "-").replace("\u2013", "-")
    text = _TIMES.sub(r"\1x", text)
    text = _PERCENT.sub(r"\1%", text)
    text = _THOUSANDS.sub("", text)
    text = _DASH.sub("-", text)
    return _SPACE.sub(" ", text).strip()


def contains(text: str, needle: str) -> bool:
    """True when `needle` occurs in `text`, case-insensitively and with number forms normalized."""
    return normalize_for_match(needle) in normalize_for_match(text)


def must_include_recall(text: str, needles: Sequence[str]) -> float | None:
    """Share of the must-include strings found in the answer text; None when there are none."""
    if not needles:
        return None
    return sum(contains(text, n) for n in needles) / len(needles)


def citation_precision_recall(cited_titles: Iterable[str], gold_titles: Iterable[str]) -> tuple[float | None, float]:
    """Precision (None when nothing is cited) and recall of the cited papers against the gold papers, by title."""
    cited = {normalize_title(t) for t in cited_titles}
    gold = {normalize_title(t) for t in gold_titles}
    if not gold:
        raise ValueError("citation precision/recall need at least one gold title")
    correct = len(cited & gold)
    return (correct / len(cited) if cited else None), correct / len(gold)


def supported_sentence_share(sentences: Sequence[AnswerSentence]) -> float | None:
    """Share of answer sentences that cite a source and that the verifier found supported; None without sentences."""
    if not sentences:
        return None
    return sum(1 for s in sentences if s.supported and s.citations) / len(sentences)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return float(sum(kept) / len(kept)) if kept else None


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    """Percentiles (linear interpolation, numpy's default) of a list of latencies, keyed 'p50', 'p95'."""
    if not values:
        return {}
    return {f"p{q:g}": float(np.percentile(np.asarray(values, dtype=float), q)) for q in qs}
