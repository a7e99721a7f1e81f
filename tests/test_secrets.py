"""An API key never appears in what the `rag` command prints: answers, `rag info` (text and JSON), debug logs
(-vv), and errors, even when the server echoes the key back. Real processes, a real scripted HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted_llm import Script, ScriptedLLM

from rag.cli import EXIT_ERROR, EXIT_OK

KEY = "sk-proj-TESTKEY-0123456789abcdefghijklmnop"
QUESTION = "What ImageNet-1K top-1 accuracy does MaxViT reach without extra data?"
PAPER = {"_id": "maxvit", "title": "MaxViT: Multi-Axis Vision Transformer",
         "text": "We introduce multi-axis attention. Without extra data, MaxViT attains 86.5% ImageNet-1K top-1 "
                 "accuracy."}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as s:
        yield s


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, server: ScriptedLLM) -> dict[str, str]:
    """Environment of a `rag` process with the key set, a one-paper collection and the scripted server."""
    d = tmp_path_factory.mktemp("secrets")
    source = d / "paper.jsonl"
    source.write_text(json.dumps(PAPER) + "\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))}
    values = {**base, "RAG_DATA_DIR": str(d), "RAG_CONFIG": str(d / "none.toml"), "RAG_COLLECTION": "secrets",
              "OPENAI_API_KEY": KEY, "RAG_OPENAI_BASE_URL": server.base_url, "RAG_LLM_MODEL": "scripted",
              "RAG_LLM_FALLBACK": "error"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "-vv", "ingest", str(source)], env=values,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == EXIT_OK, proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    return values


def rag(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def assert_no_key(proc: subprocess.CompletedProcess[str]) -> None:
    shown = proc.stdout + proc.stderr
    assert KEY not in shown
    assert KEY[8:30] not in shown  # not even a part of it


def test_the_key_reaches_the_server_but_not_the_output_or_the_debug_log(
    env: dict[str, str], server: ScriptedLLM
) -> None:
    server.script = Script(reply="Without extra data, MaxViT attains 86.5% ImageNet-1K top-1 accuracy [1].")
    proc = rag(["-vv", "ask", QUESTION], env)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "86.5%" in proc.stdout
    assert "DEBUG" in proc.stderr  # the debug log was on
    assert server.headers[-1]["Authorization"] == f"Bearer {KEY}"
    assert_no_key(proc)


@pytest.mark.parametrize("args", [["info", "--json"], ["-vv", "info"], ["ask", QUESTION, "--json"]])
def test_info_and_json_records_hold_no_key(env: dict[str, str], server: ScriptedLLM, args: list[str]) -> None:
    server.script = Script(reply="MaxViT attains 86.5% ImageNet-1K top-1 accuracy without extra data [1].")
    proc = rag(args, env)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert_no_key(proc)
    if args == ["info", "--json"]:
        assert Path(json.loads(proc.stdout)["data_dir"]) == Path(env["RAG_DATA_DIR"])


def test_a_server_echoing_the_key_in_its_error_does_not_leak_it(env: dict[str, str], server: ScriptedLLM) -> None:
    server.script = Script(status=401, error_message=f"Incorrect API key provided: {KEY}. You can find your key at ...")
    proc = rag(["-vv", "ask", QUESTION], env)
    assert proc.returncode == EXIT_ERROR
    assert "HTTP 401" in proc.stderr and "[API key]" in proc.stderr
    assert_no_key(proc)


def test_settings_errors_do_not_echo_the_key(env: dict[str, str]) -> None:
    proc = rag(["info"], {**env, "RAG_LLM_TIMEOUT": KEY})  # a key pasted into the wrong variable
    assert proc.returncode == EXIT_ERROR
    assert "llm_timeout" in proc.stderr
    assert_no_key(proc)
