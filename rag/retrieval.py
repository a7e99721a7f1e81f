"""Fusion of the dense and BM25 rankings into one ranking of papers, best chunk per paper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (chunk id, paper id, score) best first, as each retriever returns them.
Ranked = Sequence[tuple[str, str, float]]


@dataclass(frozen=True)
class FusedPaper:
    """One paper of the fused ranking: its fused score, best chunk, and that chunk's score in each retriever."""

    paper_id: str
    chunk_id: str
    score: float
    dense_score: float | None
    bm25_score: float | None


def _normalized(ranked: Ranked, depth: int | None) -> tuple[dict[str, float], float]:
    """Each chunk's score divided by the best score of the list, and what a chunk missing from it gets: the lowest
    value when the list was cut at `depth`, 0 when it is shorter (it holds every chunk that scored at all)."""
    if not ranked:
        return {}, 0.0
    top = max(score for _, _, score in ranked)
    top = top if top > 0 else 1.0
    scaled = {chunk_id: score / top for chunk_id, _, score in ranked}
    return scaled, min(scaled.values()) if depth is None or len(ranked) >= depth else 0.0


def fuse(
    dense: Ranked,
    bm25: Ranked,
    *,
    dense_weight: float,
    bm25_weight: float,
    limit: int | None = None,
    depth: int | None = None,
) -> list[FusedPaper]:
    """Score fusion at paper level: dense_weight * dense / best dense + bm25_weight * BM25 / best BM25.

    Each retriever's scores are divided by the best score of its candidate list, so both run from 1 down; a paper
    missing from one list gets that list's lowest value (it scored no better than the last candidate), or 0 when the
    list is shorter than the `depth` asked of each retriever (BM25 drops chunks without a query term). A paper
    takes its best chunk in each list, and is shown with its chunk of best fused score. Chosen over reciprocal rank
    fusion on SciFact train (bench/retrieval.py, evals/reports/retrieval.md): ranks throw away how far ahead a
    retriever's best candidates are. The `limit` best papers are returned (all when None), ties by paper id.
    """
    dense_n, dense_floor = _normalized(dense, depth)
    bm25_n, bm25_floor = _normalized(bm25, depth)
    paper_of: dict[str, str] = {}
    raw_dense: dict[str, float] = {}
    raw_bm25: dict[str, float] = {}
    for ranked, raw in ((dense, raw_dense), (bm25, raw_bm25)):
        for chunk_id, paper_id, score in ranked:
            paper_of[chunk_id] = paper_id
            raw[chunk_id] = score
    best_dense: dict[str, float] = {}
    best_bm25: dict[str, float] = {}
    best_chunk: dict[str, tuple[float, str]] = {}
    for chunk_id, paper_id in paper_of.items():
        d, b = dense_n.get(chunk_id, dense_floor), bm25_n.get(chunk_id, bm25_floor)
        best_dense[paper_id] = max(best_dense.get(paper_id, dense_floor), d)
        best_bm25[paper_id] = max(best_bm25.get(paper_id, bm25_floor), b)
        chunk_score = dense_weight * d + bm25_weight * b
        if paper_id not in best_chunk or chunk_score > best_chunk[paper_id][0]:
            best_chunk[paper_id] = (chunk_score, chunk_id)
    order = sorted(
        (-(dense_weight * best_dense[p] + bm25_weight * best_bm25[p]), p, chunk_id)
        for p, (_, chunk_id) in best_chunk.items()
    )
    return [
        FusedPaper(paper_id, chunk_id, -negative, raw_dense.get(chunk_id), raw_bm25.get(chunk_id))
        for negative, paper_id, chunk_id in order[:limit]
    ]


def single(ranked: Ranked, *, dense: bool) -> list[FusedPaper]:
    """One retriever's ranking as papers (best chunk each), its own score kept as the paper's score."""
    seen: dict[str, FusedPaper] = {}
    for chunk_id, paper_id, score in ranked:
        if paper_id not in seen:
            seen[paper_id] = FusedPaper(paper_id, chunk_id, score, score if dense else None, None if dense else score)
    return list(seen.values())
