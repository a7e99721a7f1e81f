"""Ranking metrics as BEIR and MTEB compute them (trec_eval's ndcg_cut and recall), per query and averaged."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# Written out rather than llama-index's NDCG: that one is binary-only and does not cap the ideal ranking at k,
# unlike trec_eval (pytrec_eval), which the published BEIR/MTEB anchors were computed with.


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains (trec_eval ndcg_cut): DCG of the top k over the DCG of the ideal top k."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    wanted = {doc for doc, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mean_metrics(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], ndcg_k: int = 10, recall_k: int = 100
) -> dict[str, float]:
    """Mean nDCG@ndcg_k and Recall@recall_k over the judged queries (a judged query with no run scores 0)."""
    judged = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    ndcg = sum(ndcg_at_k(runs.get(q, []), qrels[q], ndcg_k) for q in judged) / len(judged)
    recall = sum(recall_at_k(runs.get(q, []), qrels[q], recall_k) for q in judged) / len(judged)
    return {f"ndcg@{ndcg_k}": ndcg, f"recall@{recall_k}": recall}
