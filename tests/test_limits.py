"""Limits and edge cases of the `rag` command: each gives a clean error (exit 1) that says what to do, never a
traceback. Run through the real CLI (`main([...])` in-process, or a subprocess where a process matters)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.chunking import split_sentences
from rag.cli import EXIT_ERROR, EXIT_OK, main
from rag.types import Answer, Hit, IngestSummary

QUESTION = "Which vision backbone uses multi-axis attention with blocked local and dilated global attention?"
PAPERS = [
    {"_id": "maxvit", "title": "MaxViT: Multi-Axis Vision Transformer",
     "text": "We introduce multi-axis attention, with blocked local and dilated global attention. MaxViT reaches "
             "86.5% ImageNet-1K top-1 accuracy without extra data."},
    {"_id": "mamba", "title": "Vision Mamba: Efficient Visual Representation Learning",
     "text": "Vision Mamba uses bidirectional state space models for visual representation learning."},
    {"_id": "nerf", "title": "Neural Radiance Fields for View Synthesis",
     "text": "A neural radiance field represents a scene as a continuous volumetric function for view synthesis."},
]  # fmt: skip


def jsonl(path: Path, records: list[dict | str]) -> Path:
    """Write records (dicts as JSON, strings as they are) one a line."""
    path.write_text("".join((json.dumps(r) if isinstance(r, dict) else r) + "\n" for r in records))
    return path


def rag(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `rag ARGS` in-process: exit code, stdout, stderr."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the three papers above in the collection 'limits'."""
    d = tmp_path_factory.mktemp("limits")
    source = jsonl(d / "papers.jsonl", PAPERS)
    env = {**os.environ, "RAG_DATA_DIR": str(d), "RAG_COLLECTION": "limits"}
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(source)], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == EXIT_OK, proc.stderr
    return d


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The 'limits' collection, extractive answers."""
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RAG_COLLECTION", "limits")
    monkeypatch.setenv("RAG_LLM", "extractive")
    yield


# --- questions and queries ---------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\t\n", "\x00\x07"])
def test_an_empty_question_is_an_error_not_the_terminal_chat(env: None, question: str, capsys) -> None:
    code, out, err = rag(["ask", question], capsys)
    assert code == EXIT_ERROR
    assert err.startswith("error: the question is empty")
    assert "paper-rag chat" not in err
    assert out == ""


def test_an_empty_search_query_is_an_error(env: None, capsys) -> None:
    code, _, err = rag(["search", "  "], capsys)
    assert code == EXIT_ERROR
    assert err.startswith("error: the search query is empty")


def test_ask_and_search_share_one_length_limit(env: None, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("RAG_MAX_QUESTION_CHARS", "40")
    long = "multi-axis attention " * 3  # 62 characters after normalizing
    for command, what in (("ask", "question"), ("search", "search query")):
        code, out, err = rag([command, long], capsys)
        assert code == EXIT_ERROR, command
        assert f"error: the {what} is 62 characters long, over the limit of 40" in err
        assert "RAG_MAX_QUESTION_CHARS" in err and out == ""
    code, _, _ = rag(["search", long[:40]], capsys)
    assert code == EXIT_OK


def test_a_100k_character_query_is_refused_by_default(env: None, capsys) -> None:
    code, _, err = rag(["search", "attention " * 10_000], capsys)
    assert code == EXIT_ERROR
    assert "over the limit of 2,000" in err


def test_control_characters_are_stripped_from_questions_and_queries(env: None, capsys) -> None:
    code, out, _ = rag(["search", "multi-axis\x00attention\x1b[31m backbone", "--json"], capsys)
    assert code == EXIT_OK
    hits = [Hit.model_validate(h) for h in json.loads(out)]
    assert hits[0].paper.id == "maxvit"
    code, out, _ = rag(["ask", "Which backbone uses multi-axis\x00 attention?\x7f", "--json"], capsys)
    assert code == EXIT_OK
    answer = Answer.model_validate_json(out)
    assert answer.question == "Which backbone uses multi-axis attention?"


# --- settings and the data directory -----------------------------------------------------------------


def test_an_empty_data_dir_setting_is_an_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", "")
    for command in (["info"], ["search", QUESTION]):
        code, _, err = rag(command, capsys)
        assert code == EXIT_ERROR
        assert "RAG_DATA_DIR is set but empty" in err and "unset it" in err
        assert not Path("chroma").exists()  # nothing written to the working directory


def _read_only(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`rag ARGS` in a process that cannot write data_dir (mode 0555; for root, a read-only bind mount of it in a
    private mount namespace, since root writes through modes)."""
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_COLLECTION": "limits", "RAG_LLM": "extractive"}
    command = [sys.executable, "-m", "rag.cli", *args]
    if os.geteuid() == 0:
        mount = f"mount --bind -o ro {shlex.quote(str(data_dir))} {shlex.quote(str(data_dir))} && exec \"$@\""
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def read_only_copy(data_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the data dir with every folder 0555 and file 0444 (restored afterwards)."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield copy
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("command", [["info"], ["search", QUESTION], ["ask", QUESTION]])
def test_a_read_only_data_dir_names_the_path_and_the_fix(read_only_copy: Path, command: list[str]) -> None:
    proc = _read_only(command, read_only_copy)
    assert proc.returncode == EXIT_ERROR, proc.stdout + proc.stderr
    reason = "is on a read-only file system" if os.geteuid() == 0 else "is not writable by this user"
    assert proc.stderr.startswith(f"error: the data directory {read_only_copy} {reason}")
    assert "set RAG_DATA_DIR to a writable folder" in proc.stderr
    assert "Traceback" not in proc.stderr and "readonly database" not in proc.stderr


# --- collection files --------------------------------------------------------------------------------


def test_a_csv_without_a_header_row_says_so(env: None, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "no_header.csv"
    csv.write_text("p1,Deep Residual Learning,We present a residual learning framework.\n"
                   "p2,Attention Is All You Need,We propose the Transformer.\n")  # fmt: skip
    code, _, err = rag(["ingest", str(csv)], capsys)
    assert code == EXIT_ERROR
    assert f"error: {csv}:1: the first row is read as the header row" in err
    assert "no 'title' and 'abstract' column" in err and "'Deep Residual Learning'" in err
    assert "--field" in err


def test_skip_invalid_counts_the_skipped_records(env: None, tmp_path: Path, capsys, caplog) -> None:
    source = jsonl(tmp_path / "mixed.jsonl", [
        {"_id": "ok1", "title": "Graph Attention Networks", "text": "We present graph attention networks."},
        '{"_id": "broken", "title": ',
        {"_id": "no-abstract", "title": "A Title Alone"},
    ])  # fmt: skip
    code, out, err = rag(["ingest", str(source), "--skip-invalid"], capsys)
    assert code == EXIT_OK, err
    assert "2 invalid records skipped" in out
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped: ")]
    assert [m.split(": ")[1] for m in skipped] == [f"{source}:2", f"{source}:3"]  # each logged with file:line
    code, out, _ = rag(["ingest", str(source), "--skip-invalid", "--json"], capsys)
    assert IngestSummary.model_validate_json(out).invalid_skipped == 2


def test_an_oversized_abstract_is_refused_naming_the_record(env: None, tmp_path: Path, capsys) -> None:
    huge = "Attention is computed over very long inputs. " * 2_500  # 112,499 characters once stripped
    source = jsonl(tmp_path / "huge.jsonl", [PAPERS[0], {"_id": "huge", "title": "Huge", "text": huge}])
    code, _, err = rag(["ingest", str(source)], capsys)
    assert code == EXIT_ERROR
    assert f"error: {source}:2: line has an abstract of 112,499 characters, over the limit of 100,000" in err
    assert "RAG_MAX_ABSTRACT_CHARS" in err and "--skip-invalid" in err
    code, out, err = rag(["ingest", str(source), "--skip-invalid", "--json"], capsys)
    assert code == EXIT_OK, err
    assert IngestSummary.model_validate_json(out).invalid_skipped == 1


def test_an_oversized_title_is_refused_naming_the_record(env: None, tmp_path: Path, capsys) -> None:
    source = jsonl(tmp_path / "long_title.jsonl", [{"_id": "t", "title": "word " * 500, "text": "An abstract."}])
    code, _, err = rag(["ingest", str(source)], capsys)
    assert code == EXIT_ERROR
    assert f"error: {source}:1: line has a title of 2,499 characters, over the limit of 2,000" in err


def test_sentence_splitting_of_a_huge_unbroken_text_is_bounded() -> None:
    text = "x" * 5_000_000 + " and then. " + "Some more words here. " * 50_000  # 6 MB, no structure at first
    start = time.monotonic()
    sentences = split_sentences(text)
    assert time.monotonic() - start < 30
    assert sentences[-1] == "Some more words here."
    assert sum(len(s) for s in sentences) >= len(" ".join(text.split())) - len(sentences)
