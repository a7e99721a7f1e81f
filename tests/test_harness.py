"""The real harness on a real extractive Assistant (embedded Chroma on tmp) over a small gold subset."""

from __future__ import annotations

import json
import os

import pytest

from evals.gold_schema import DEV_SPLIT, GoldItem, load_gold
from evals.harness import run_eval
from evals.records import ItemResult, RunMetrics
from evals.report import write_run
from rag.assistant import Assistant
from rag.cli import main
from rag.errors import RagError
from rag.loaders import DEFAULT_CORPUS, load_papers
from rag.settings import Settings
from rag.types import normalize_title

COLLECTION = "evalsubset"
TYPES = ("factoid", "which_paper", "multi_paper", "unanswerable", "follow_up")
N_DISTRACTORS = 12


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A collection of the gold papers of 5 items (one per type) plus distractors, and a gold file of those items."""
    root = tmp_path_factory.mktemp("harness")
    with pytest.MonkeyPatch.context() as mp:  # settings must not see the user's RAG_* or rag.toml
        for name in [n for n in os.environ if n.startswith("RAG_")]:
            mp.delenv(name)
        mp.setenv("RAG_CONFIG", str(root / "no-rag.toml"))
        settings = Settings(data_dir=root / "data", collection=COLLECTION, llm="extractive")
    gold = load_gold(DEV_SPLIT)
    items = [next(i for i in gold if i.type == t) for t in TYPES]
    papers = load_papers([DEFAULT_CORPUS]).papers
    wanted = {normalize_title(t) for i in items for t in i.gold_titles}
    chosen = [p for p in papers if normalize_title(p.title) in wanted]
    chosen += [p for p in papers if p not in chosen][:N_DISTRACTORS]
    corpus = root / "subset.txt"
    corpus.write_text("".join(f"{p.title}\n\n{p.abstract}\n\n" for p in chosen), encoding="utf-8")
    gold_file = root / "subset.jsonl"
    gold_file.write_text("".join(_line(i) for i in items), encoding="utf-8")
    assistant = Assistant(settings)
    assistant.ingest([corpus], progress=False)
    return assistant, gold_file


def _line(item: GoldItem) -> str:
    return item.model_dump_json(exclude={"source", "line"}) + "\n"


def test_runs_are_reproducible_and_outputs_well_formed(setup, tmp_path):
    assistant, gold_file = setup
    items = load_gold(gold_file, assistant.papers())
    first = run_eval(assistant, items, gold_files=[gold_file], progress=False)
    second = run_eval(assistant, items, gold_files=[gold_file], progress=False)
    same = {"overall", "by_type", "failures", "n_by_type", "backend", "gold_digest"}
    assert first.metrics.model_dump(include=same) == second.metrics.model_dump(include=same)
    assert [r.model_dump(exclude={"timings_ms"}) for r in first.results] == [
        r.model_dump(exclude={"timings_ms"}) for r in second.results
    ]
    m = first.metrics
    assert (m.n_items, m.backend, m.k) == (5, "extractive", 10)
    assert set(m.n_by_type) == set(TYPES)
    assert m.overall.abstention_rate_unanswerable is not None and m.overall.hit_at_10 is not None
    assert {"total", "eval_search", "eval_ask_total"} <= set(m.latency_ms)
    assert set(m.latency_by_type) == set(TYPES) and sum(s.n for s in m.latency_by_type.values()) == 5
    follow_up = next(r for r in first.results if r.type == "follow_up")
    assert follow_up.standalone_question != follow_up.question  # the history was used to condense it

    paths = write_run(first, tmp_path / "run")
    assert RunMetrics.model_validate_json(paths["metrics"].read_text()) == m
    rows = [ItemResult.model_validate(json.loads(line)) for line in paths["results"].read_text().splitlines()]
    assert [r.id for r in rows] == [i.id for i in items]
    assert all(r.question and r.expected for r in rows)
    for key in ("scores_plot", "latency_plot"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = paths["report"].read_text()
    assert "## Scores" in report and "| must_include_recall |" in report and "![latency](latency.png)" in report
    assert f"## Failures ({len(m.failures)} of 5)" in report
    for failed in m.failures:
        assert f"### {failed} (" in report


def test_cli_check_fails_on_an_impossible_threshold_and_compare_prints_deltas(setup, tmp_path, monkeypatch, capsys):
    assistant, gold_file = setup
    monkeypatch.setenv("RAG_DATA_DIR", str(assistant.settings.data_dir))
    thresholds = tmp_path / "impossible.toml"
    thresholds.write_text("[min]\nhit_at_10 = 1.01\n[max]\nfalse_abstention_rate = 1.0\n")
    out = tmp_path / "run"
    args = ["eval", "--gold", str(gold_file), "--collection", COLLECTION, "--llm", "extractive", "--out", str(out)]
    code = main([*args, "--check", "--thresholds", str(thresholds)])
    captured = capsys.readouterr()
    assert code == 3
    assert "check failed: hit_at_10 = " in captured.err and "required >= 1.01" in captured.err
    assert "false_abstention_rate" not in captured.err
    assert "| hit_at_10 |" in captured.out and f"report: {out / 'report.md'}" in captured.out
    assert "- FAILED: hit_at_10" in (out / "report.md").read_text()

    assert main(["eval", "--compare", str(out), str(out / "metrics.json")]) == 0
    captured = capsys.readouterr()
    table = captured.out
    assert "| metric | run | metrics.json | delta |" in table and "| hit_at_10 |" in table and "+0.000 |" in table
    assert "note:" not in captured.err

    other = tmp_path / "other.json"
    metrics = RunMetrics.model_validate_json((out / "metrics.json").read_text())
    other.write_text(metrics.model_copy(update={"gold_digest": "0" * 16}).model_dump_json())
    assert main(["eval", "--compare", str(out), str(other), "--changed-only"]) == 0
    captured = capsys.readouterr()
    assert "note: the two runs evaluated different gold items" in captured.err
    assert "| hit_at_10 |" not in captured.out  # nothing but the digest differs


def test_cli_reports_a_bad_thresholds_file_before_running(setup, tmp_path, monkeypatch, capsys):
    assistant, gold_file = setup
    monkeypatch.setenv("RAG_DATA_DIR", str(assistant.settings.data_dir))
    bad = tmp_path / "bad.toml"
    bad.write_text("[min]\nrecall_at_3 = 0.5\n")
    code = main(["eval", "--gold", str(gold_file), "--collection", COLLECTION, "--check", "--thresholds", str(bad)])
    assert code == 1
    assert "'recall_at_3' is not a metric of the harness" in capsys.readouterr().err


def test_judge_without_an_llm_is_a_clear_error(setup, monkeypatch, capsys):
    assistant, gold_file = setup
    monkeypatch.setenv("RAG_DATA_DIR", str(assistant.settings.data_dir))
    code = main(["eval", "--gold", str(gold_file), "--collection", COLLECTION, "--llm", "extractive", "--judge"])
    assert code == 1
    assert "error: --judge needs an LLM: set RAG_OPENAI_BASE_URL" in capsys.readouterr().err


def test_empty_named_collection_is_refused(setup, tmp_path):
    assistant, gold_file = setup
    empty = Assistant(assistant.settings.model_copy(update={"collection": "nothing-here"}),
                      embedder=assistant.embedder)
    with pytest.raises(RagError, match="collection 'nothing-here' is empty; run `rag ingest --collection"):
        run_eval(empty, load_gold(gold_file), progress=False)


@pytest.mark.llm
def test_judge_grades_with_a_real_llm_server(setup, llama_server):
    from evals.judge import Judge

    assistant, gold_file = setup
    judge_settings = Settings(llm="openai", openai_base_url=llama_server["base_url"], llm_model="smollm2",
                              llm_context_window=2048, llm_max_tokens=16, data_dir=assistant.settings.data_dir)
    judge = Judge.from_settings(judge_settings)
    items = [i for i in load_gold(gold_file) if i.type == "factoid"]
    run = run_eval(assistant, items, judge=judge, progress=False)
    assert run.metrics.judge
    assert run.metrics.overall.judge_faithfulness in (0.0, 1.0)
    correctness = run.metrics.overall.judge_correctness
    assert correctness is None or 0.2 <= correctness <= 1.0


def test_an_assistant_error_is_recorded_on_the_item_and_errors_in_a_row_stop_the_run(setup):
    assistant, gold_file = setup
    items = load_gold(gold_file)
    standalone = [i for i in items if not i.history]  # a follow-up's resolved question is longer than it is
    limit = min(len(i.question) for i in standalone) + 1  # every other question is over the limit
    strict = Assistant(assistant.settings.model_copy(update={"max_question_chars": limit}),
                       embedder=assistant.embedder)
    short = min(standalone, key=lambda i: len(i.question))
    longer = [i for i in items if i is not short]
    run = run_eval(strict, [short, longer[0]], progress=False)
    bad = run.results[1]
    assert bad.error.startswith("QuestionError: the question is") and "RAG_MAX_QUESTION_CHARS" in bad.error
    assert run.metrics.errors == (bad.id,) and bad.id in run.metrics.failures
    assert bad.scores.fully_correct == 0.0 and not run.results[0].error
    with pytest.raises(RagError, match=r"3 gold items in a row failed, the last \(subset.jsonl:\d+\) with Question"):
        run_eval(strict, longer[:3], progress=False)
