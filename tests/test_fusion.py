"""Score fusion of the dense and BM25 rankings (rag.retrieval.fuse)."""

from __future__ import annotations

from rag.retrieval import fuse

DENSE = [("a#0", "a", 0.80), ("b#0", "b", 0.78), ("c#0", "c", 0.76), ("d#0", "d", 0.74)]


def test_a_paper_missing_from_a_cut_list_scores_like_its_last_candidate() -> None:
    bm25 = [("d#0", "d", 4.0), ("c#0", "c", 3.6)]  # cut at depth 2: a and b may have scored just below 3.6
    ranked = fuse(DENSE, bm25, dense_weight=0.5, bm25_weight=0.5, depth=2)
    assert ranked[0].paper_id == "d"
    by_id = {p.paper_id: p.score for p in ranked}
    assert by_id["a"] == 0.5 * 1.0 + 0.5 * (3.6 / 4.0)


def test_a_paper_missing_from_a_short_list_scored_nothing() -> None:
    # BM25 returned fewer chunks than asked: only d holds a query term, the others scored 0, not 0.9 of the best
    bm25 = [("d#0", "d", 4.0), ("c#0", "c", 3.6)]
    ranked = fuse(DENSE, bm25, dense_weight=0.5, bm25_weight=0.5, depth=50)
    assert [p.paper_id for p in ranked] == ["d", "c", "a", "b"]
    assert {p.paper_id: p.score for p in ranked}["a"] == 0.5 * 1.0
