"""Known answers for the benchmark's ranking metrics (hand-computed, trec_eval conventions)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is a folder of scripts, not installed

from bench.metrics import mean_metrics, ndcg_at_k, recall_at_k


def test_ndcg_known_answers() -> None:
    # relevant docs a and b; ranking puts a at 2 and b at 3: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3))
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["x", "a"], {"a": 1}, 1) == 0.0  # cut at k
    # the ideal ranking is capped at k: 3 relevant, k=1, first hit relevant -> 1.0
    assert ndcg_at_k(["a"], {"a": 1, "b": 1, "c": 1}, 1) == pytest.approx(1.0)


def test_recall_and_mean() -> None:
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1, "d": 0}, 2) == pytest.approx(1 / 3)
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has no relevant doc: not counted
    means = mean_metrics({"q1": ["a"], "q2": ["x", "b"]}, qrels, ndcg_k=10, recall_k=1)
    assert means == pytest.approx({"ndcg@10": (1 + 1 / math.log2(3)) / 2, "recall@1": 0.5})
