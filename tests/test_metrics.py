"""Metric code on hand-made cases whose answers were worked out by hand."""

from __future__ import annotations

import math

import pytest

from evals import metrics
from evals.compare import compare, format_table
from evals.gold_schema import GoldItem
from evals.harness import aggregate, score_item
from evals.records import ItemResult, Scores
from evals.thresholds import ThresholdError, check, load_thresholds
from rag.types import Answer, AnswerSentence, Chunk, Citation, Hit, Message, Paper


def paper(title: str) -> Paper:
    return Paper(id=title.lower().replace(" ", "-"), title=title, abstract=f"{title} abstract. It reaches 86.5%.")


def hit(title: str, rank: int) -> Hit:
    p = paper(title)
    return Hit(paper=p, chunk=Chunk(id=f"{p.id}#0", paper_id=p.id, index=0, text=p.abstract, n_tokens=8),
               score=1.0 / rank, rank=rank)


def answer(text: str, cited: list[str] = (), abstained: bool = False, sentences=()) -> Answer:
    return Answer(question="q", text=text, abstained=abstained, sentences=tuple(sentences),
                  citations=tuple(Citation(number=i, paper=paper(t)) for i, t in enumerate(cited, 1)))


def item(type_: str = "factoid", titles=("Alpha Net",), must=("86.5%",), **extra) -> GoldItem:
    return GoldItem(id=extra.pop("id", "g1"), type=type_, question="q?", gold_titles=titles, must_include=must, **extra)


# --- retrieval -----------------------------------------------------------------------------------------------
def test_ndcg_matches_hand_computation():
    # gold {a, c}; ranking b, a, d, c: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068; IDCG = 1 + 1/log2(3)
    s = metrics.retrieval_scores(["a", "c"], ["b", "a", "d", "c"])
    assert s["ndcg_at_10"] == pytest.approx(1.06161 / 1.63093, abs=1e-4)
    assert s["ndcg_at_10"] == pytest.approx(0.65093, abs=1e-4)


def test_perfect_ranking_scores_one_and_miss_scores_zero():
    assert metrics.retrieval_scores(["a", "b"], ["a", "b", "x"])["ndcg_at_10"] == pytest.approx(1.0)
    miss = metrics.retrieval_scores(["a"], ["x", "y"])
    assert miss["ndcg_at_10"] == miss["mrr_at_10"] == miss["hit_at_10"] == miss["recall_at_10"] == 0.0


def test_mrr_is_reciprocal_rank_of_first_gold_paper():
    assert metrics.retrieval_scores(["a", "c"], ["b", "a", "d", "c"])["mrr_at_10"] == pytest.approx(0.5)
    assert metrics.retrieval_scores(["c"], ["b", "a", "d", "c"])["mrr_at_10"] == pytest.approx(0.25)
    # a gold paper below rank 10 does not count for MRR@10
    assert metrics.retrieval_scores(["z"], [*"abcdefghij", "z"])["mrr_at_10"] == 0.0


def test_hit_and_recall_at_k_cut_the_ranking():
    s = metrics.retrieval_scores(["a", "c"], ["b", "a", "d", "c"], ks=(1, 2, 5))
    assert (s["hit_at_1"], s["hit_at_2"], s["hit_at_5"]) == (0.0, 1.0, 1.0)
    assert (s["recall_at_1"], s["recall_at_2"], s["recall_at_5"]) == (0.0, 0.5, 1.0)


def test_empty_ranking_scores_zero_and_empty_gold_is_an_error():
    assert set(metrics.retrieval_scores(["a"], []).values()) == {0.0}
    with pytest.raises(ValueError):
        metrics.retrieval_scores([], ["a"])


# --- must-include matching ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["Vim is 2.8x faster", "Vim is 2.8× faster", "Vim is 2.8 times faster",
                                  "Vim is 2.8times faster", "VIM IS 2.8 X FASTER"])
def test_times_forms_are_equal(text):
    assert metrics.contains(text, "2.8x")
    assert metrics.contains(text, "2.8times")


@pytest.mark.parametrize(("text", "needle"), [
    ("reaches 86.5 % top-1", "86.5%"),
    ("reaches 86.5 percent top-1", "86.5%"),
    ("stores 0.12\\% of the parameters", "0.12%"),
    ("trained on 1000 A100 GPUs", "1,000 A100 GPUs"),
    ("a 1%–2% gain", "1%-2%"),
    ("1.7x-2.7x faster", "1.7x - 2.7x"),
])
def test_number_forms_match(text, needle):
    assert metrics.contains(text, needle)


@pytest.mark.parametrize(("text", "needle"), [
    ("reaches 86.6% top-1", "86.5%"),
    ("is 28x faster", "2.8x"),
    ("with 5 max pooling", "5x"),
    ("the maxvit model", "88.7%"),
])
def test_different_numbers_do_not_match(text, needle):
    assert not metrics.contains(text, needle)


def test_must_include_recall_is_the_share_found():
    assert metrics.must_include_recall("MaxViT gets 88.7% top-1", ["88.7%", "86.5%"]) == 0.5
    assert metrics.must_include_recall("anything", []) is None


# --- citations ------------------------------------------------------------------------------------------------
def test_citation_precision_and_recall_by_normalized_title():
    p, r = metrics.citation_precision_recall(["MaxViT - Multi-Axis Vision Transformer", "CBNet"],
                                             ["MaxViT: Multi-Axis Vision Transformer", "MAXIM"])
    assert (p, r) == (0.5, 0.5)
    assert metrics.citation_precision_recall([], ["MAXIM"]) == (None, 0.0)
    # citing the same paper twice is one cited paper
    assert metrics.citation_precision_recall(["MAXIM", "maxim"], ["MAXIM"]) == (1.0, 1.0)


def test_supported_sentence_share_needs_a_citation_and_support():
    sentences = [AnswerSentence(text="a", citations=(1,), supported=True),
                 AnswerSentence(text="b", citations=(), supported=True),
                 AnswerSentence(text="c", citations=(2,), supported=False)]
    assert metrics.supported_sentence_share(sentences) == pytest.approx(1 / 3)
    assert metrics.supported_sentence_share([]) is None


# --- per-item scoring and abstention rates ---------------------------------------------------------------------
def test_abstention_rates_over_hand_made_items():
    hits = [hit("Alpha Net", 1)]
    cases = [
        (item("unanswerable", (), (), id="u1"), answer("No answer.", abstained=True)),
        (item("unanswerable", (), (), id="u2"), answer("Alpha Net reaches 86.5% [1].", ["Alpha Net"])),
        (item(id="a1"), answer("It reaches 86.5% [1].", ["Alpha Net"])),
        (item(id="a2"), answer("It reaches 86.5% [1].", ["Alpha Net"])),
        (item(id="a3"), answer("No answer.", abstained=True)),
    ]
    scores = Scores.average([score_item(i, a, hits) for i, a in cases])
    assert scores.abstention_rate_unanswerable == 0.5
    assert scores.false_abstention_rate == pytest.approx(1 / 3)
    # fully correct: u1 (abstained), a1, a2 -> 3 of 5
    assert scores.fully_correct == pytest.approx(3 / 5)
    # precision only over answerable items that cite something (a1, a2)
    assert scores.cited_paper_precision == 1.0
    assert scores.cited_paper_recall == pytest.approx(2 / 3)


def test_score_item_for_a_follow_up_with_a_wrong_citation():
    gold = item("follow_up", ("Alpha Net", "Beta Net"), ("86.5%", "2.8x"),
                history=(Message(role="user", content="hi"), Message(role="assistant", content="Alpha [1]")))
    s = score_item(gold, answer("Beta reaches 86.5 % [1] [2].", ["Beta Net", "Gamma Net"]),
                   [hit("Gamma Net", 1), hit("Beta Net", 2)])
    assert (s.must_include_recall, s.fully_correct) == (0.5, 0.0)
    assert (s.cited_paper_precision, s.cited_paper_recall) == (0.5, 0.5)
    assert (s.hit_at_1, s.hit_at_5, s.mrr_at_10) == (0.0, 1.0, 0.5)
    assert s.ndcg_at_10 == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert s.abstention_rate_unanswerable is None


def test_latency_percentiles():
    assert metrics.percentiles([10, 20, 30, 40]) == {"p50": 25.0, "p95": pytest.approx(38.5)}
    assert metrics.percentiles([]) == {}


# --- thresholds and comparison --------------------------------------------------------------------------------
def _run_metrics(fully_correct: float, hit5: float):
    result = ItemResult(id="g1", type="factoid", where="x:1", question="q", expected="e",
                        timings_ms={"total": 12.0},
                        scores=Scores(fully_correct=fully_correct, hit_at_5=hit5, false_abstention_rate=0.0))
    return aggregate([result], gold_files=["x"], collection="c", backend="extractive", model="", retrieval="hybrid",
                     k=10, judge=False)


def test_check_reports_only_missed_bounds(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text('[min]\nfully_correct = 0.5\n"factoid.hit_at_5" = 0.9\njudge_correctness = 0.1\n'
                 "[max]\nfalse_abstention_rate = 0.1\n")
    violations = check(_run_metrics(1.0, 0.8), load_thresholds(f))
    assert [(v.threshold.metric, v.actual) for v in violations] == [("factoid.hit_at_5", 0.8),
                                                                     ("judge_correctness", None)]
    assert violations[1].describe() == "judge_correctness = not measured, required >= 0.1"


def test_unknown_threshold_metric_is_a_clear_error(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text("[min]\nhit_at_7 = 0.5\n")
    with pytest.raises(ThresholdError, match=r"\[min\] 'hit_at_7' is not a metric"):
        load_thresholds(f)
    f.write_text("[floor]\nhit_at_5 = 0.5\n")
    with pytest.raises(ThresholdError, match="unknown table"):
        load_thresholds(f)


def test_checked_in_thresholds_load():
    names = {t.metric for t in load_thresholds()}
    assert {"must_include_recall", "cited_paper_precision", "abstention_rate_unanswerable",
            "false_abstention_rate"} <= names


def test_compare_gives_deltas():
    deltas = {d.metric: d for d in compare(_run_metrics(0.0, 0.5), _run_metrics(1.0, 0.75))}
    assert deltas["fully_correct"].delta == 1.0
    assert deltas["factoid.hit_at_5"].delta == 0.25
    table = format_table(list(deltas.values()), "old", "new", changed_only=True)
    assert "| fully_correct | 0.000 | 1.000 | +1.000 |" in table
    assert "false_abstention_rate" not in table


@pytest.mark.parametrize(("reply", "score"), [
    ("4", 4.0),
    ("4.5\nThe answer matches the reference.", 4.5),
    ("Score: 3. The answer misses a number.", 3.0),
    ("The answer is fine.", None),
    ("10 out of 10", None),
])
def test_judge_correctness_parser(reply, score):
    from evals.judge import parse_correctness

    assert parse_correctness(reply)[0] == score
