"""The `rag` command: help texts, --json records, exit codes, and the terminal chat, through real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, build_parser, main
from rag.types import Answer, Hit, IndexInfo, IngestSummary


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the bundled digest, ingested once for the module through the CLI itself."""
    d = tmp_path_factory.mktemp("cli-data")
    proc = _rag(["ingest", "--json"], d)
    assert proc.returncode == EXIT_OK, proc.stderr
    summary = IngestSummary.model_validate_json(proc.stdout)
    assert summary.added == 92
    return d


def _rag(args: list[str], data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `rag ARGS` in a fresh process against DATA_DIR."""
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_LLM": "extractive"}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=300)


def test_every_command_has_help_text() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) >= {"ingest", "search", "info", "ask", "chat", "eval"}
    for name, cmd in sub.choices.items():
        help_text = next(a.help for a in sub._choices_actions if a.dest == name)
        assert help_text, f"`rag {name}` has no help text"
        for action in cmd._actions:
            if action.dest != "help":
                assert action.help, f"`rag {name}` option {action.dest} has no help text"


def test_second_ingest_writes_nothing(data_dir: Path) -> None:
    proc = _rag(["ingest", "--json"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    summary = IngestSummary.model_validate_json(proc.stdout)
    assert (summary.added, summary.updated, summary.deleted, summary.skipped) == (0, 0, 0, 92)


def test_search_json_prints_hits_best_first(data_dir: Path) -> None:
    proc = _rag(["search", "multi-axis attention backbone with blocked local and dilated global attention",
                 "-k", "3", "--json"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    hits = [Hit.model_validate(h) for h in json.loads(proc.stdout)]
    assert len(hits) == 3
    assert hits[0].paper.title == "MaxViT: Multi-Axis Vision Transformer"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_info_json_counts_the_collection(data_dir: Path) -> None:
    proc = _rag(["info", "--json"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    info = IndexInfo.model_validate_json(proc.stdout)
    assert info.papers == 92
    assert info.chunks >= 92
    assert "MiniLM" in info.embedding_model


def test_ask_json_is_the_answer_record(data_dir: Path) -> None:
    proc = _rag(["ask", "What ImageNet-1K top-1 accuracy does MaxViT reach without extra data?", "--json"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    answer = Answer.model_validate_json(proc.stdout)
    assert not answer.abstained
    assert "86.5%" in answer.text
    assert any(c.paper.title.startswith("MaxViT") for c in answer.citations)


def test_ask_streams_text_then_numbered_sources(data_dir: Path) -> None:
    proc = _rag(["ask", "What ImageNet-1K top-1 accuracy does MaxViT reach without extra data?"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "86.5%" in proc.stdout
    assert "Sources:" in proc.stdout
    assert "MaxViT: Multi-Axis Vision Transformer" in proc.stdout.split("Sources:")[1]


def test_empty_question_is_a_clean_error(data_dir: Path) -> None:
    proc = _rag(["ask", "   "], data_dir)
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_missing_file_is_a_clean_error_that_names_it(data_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    proc = _rag(["ingest", str(missing)], data_dir)
    assert proc.returncode == EXIT_ERROR
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_file_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a1", "title": "Good paper", "text": "A fine abstract."}\n{"_id": "a2", "title": \n')
    proc = _rag(["ingest", str(bad)], data_dir)
    assert proc.returncode == EXIT_ERROR
    assert f"{bad}:2:" in proc.stderr  # file:line of the broken record
    info = IndexInfo.model_validate_json(_rag(["info", "--json"], data_dir).stdout)
    assert info.papers == 92  # the good first line was not written either


def test_bad_arguments_exit_with_usage_code() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == EXIT_USAGE


def test_terminal_chat_keeps_the_conversation(data_dir: Path) -> None:
    stdin = (
        "Which paper proposes multi-axis attention for vision?\n"
        "What top-1 accuracy does it reach with ImageNet-21K pre-training?\n"
    )
    proc = _rag(["ask"], data_dir, stdin=stdin)
    assert proc.returncode == EXIT_OK, proc.stderr
    first, second = proc.stdout.split("Sources:", 1)[0], proc.stdout.split("Sources:", 1)[1]
    assert "MaxViT" in first
    assert "88.7%" in second  # the follow-up's "it" was resolved to MaxViT


def test_ask_format_markdown_prints_the_answer_with_numbered_references(data_dir: Path) -> None:
    question = "What ImageNet-1K top-1 accuracy does MaxViT reach without extra data?"
    proc = _rag(["ask", question, "--format", "markdown"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    answer = Answer.model_validate_json(_rag(["ask", question, "--format", "json"], data_dir).stdout)
    assert proc.stdout.strip() == answer.to_markdown().strip()
    assert "86.5%" in proc.stdout and "MaxViT: Multi-Axis Vision Transformer" in proc.stdout


def test_ask_json_flag_is_format_json(data_dir: Path) -> None:
    question = "What ImageNet-1K top-1 accuracy does MaxViT reach without extra data?"
    by_flag = Answer.model_validate_json(_rag(["ask", question, "--json"], data_dir).stdout)
    by_format = Answer.model_validate_json(_rag(["ask", question, "--format", "json"], data_dir).stdout)
    assert by_flag.text == by_format.text and by_flag.citations == by_format.citations


def test_ingest_summary_says_unchanged_not_skipped(data_dir: Path) -> None:
    proc = _rag(["ingest"], data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert ": 0 added, 0 updated, 92 unchanged, 0 deleted" in proc.stdout
    assert "invalid" not in proc.stdout  # only counted with --skip-invalid


def test_the_rag_package_does_not_import_the_evaluation_harness() -> None:
    """`rag eval` comes from the "paper_rag.commands" entry point that evals registers, not from an import."""
    code = "import sys, rag.cli, rag.chain\nprint(sorted(m for m in sys.modules if m.startswith('evals')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert "eval" in build_parser()._subparsers._group_actions[0].choices
