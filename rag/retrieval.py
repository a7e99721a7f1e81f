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


def _paper_ranks(ranked: Ranked) -> dict[str, int]:
    """1-based rank of each paper in a chunk ranking, by its best chunk."""
    ranks: dict[str, int] = {}
    for _, paper_id, _ in ranked:
        ranks.setdefault(paper_id, len(ranks) + 1)
    return ranks


def fuse(dense: Ranked, bm25: Ranked, *, rrf_k: int, dense_weight: float, bm25_weight: float) -> list[FusedPaper]:
    """Weighted reciprocal rank fusion at paper level: score = sum of weight / (rrf_k + rank of the paper).

    Written here because llama-index's QueryFusionRetriever(mode="reciprocal_rerank") fixes k at 60, ignores
    retriever weights and fuses chunks, not papers. The paper's chunk is the one with the best chunk-level RRF.
    """
    dense_ranks, bm25_ranks = _paper_ranks(dense), _paper_ranks(bm25)
    chunk_rrf: dict[str, float] = {}
    chunk_paper: dict[str, str] = {}
    dense_scores: dict[str, float] = {}
    bm25_scores: dict[str, float] = {}
    for ranked, weight, scores in ((dense, dense_weight, dense_scores), (bm25, bm25_weight, bm25_scores)):
        for rank, (chunk_id, paper_id, score) in enumerate(ranked, start=1):
            chunk_rrf[chunk_id] = chunk_rrf.get(chunk_id, 0.0) + weight / (rrf_k + rank)
            chunk_paper[chunk_id] = paper_id
            scores[chunk_id] = score
    best_chunk: dict[str, str] = {}
    for chunk_id, paper_id in chunk_paper.items():
        current = best_chunk.get(paper_id)
        if current is None or chunk_rrf[chunk_id] > chunk_rrf[current]:
            best_chunk[paper_id] = chunk_id
    fused = []
    for paper_id, chunk_id in best_chunk.items():
        score = 0.0
        if paper_id in dense_ranks:
            score += dense_weight / (rrf_k + dense_ranks[paper_id])
        if paper_id in bm25_ranks:
            score += bm25_weight / (rrf_k + bm25_ranks[paper_id])
        fused.append(FusedPaper(paper_id, chunk_id, score, dense_scores.get(chunk_id), bm25_scores.get(chunk_id)))
    fused.sort(key=lambda p: (-p.score, p.paper_id))
    return fused


def single(ranked: Ranked, *, dense: bool) -> list[FusedPaper]:
    """One retriever's ranking as papers (best chunk each), its own score kept as the paper's score."""
    seen: dict[str, FusedPaper] = {}
    for chunk_id, paper_id, score in ranked:
        if paper_id not in seen:
            seen[paper_id] = FusedPaper(paper_id, chunk_id, score, score if dense else None, None if dense else score)
    return list(seen.values())
