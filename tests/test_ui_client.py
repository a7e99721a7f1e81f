"""The chat app's `ask` API end to end: a real app on a free port, gradio_client and RemoteAssistant against it."""

from __future__ import annotations

import itertools
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from rag import wire
from rag.assistant import Assistant
from rag.client import RemoteAssistant
from rag.errors import QuestionError, RagError, SettingsError
from rag.settings import Settings
from rag.types import Answer, Message
from ui.app import launch

MAXVIT = "MaxViT: Multi-Axis Vision Transformer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings from nothing but the arguments (module fixtures run before conftest's per-test isolation)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("RAG_") or n.startswith("OPENAI_")]:
            mp.delenv(name)
        mp.setenv("RAG_CONFIG", str(data_dir / "no-rag.toml"))
        return Settings(data_dir=data_dir, llm="extractive", **overrides)


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    assistant = Assistant(isolated_settings(tmp_path_factory.mktemp("ui-client")))
    assistant.ingest(progress=False)
    return assistant


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    demo = launch(assistant, "127.0.0.1", free_port(), prevent_thread_lock=True)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def remote(url: str) -> RemoteAssistant:
    return RemoteAssistant(url)


def test_gradio_client_ask_ends_with_the_answer_json(url: str, assistant: Assistant) -> None:
    client = Client(url, verbose=False, analytics_enabled=False)
    assert "/ask" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    final = wire.decode(client.predict("What is MaxViT?", [], api_name="/ask"))
    assert isinstance(final, wire.WireAnswer)
    answer = final.answer
    titles = {p.title for p in assistant.papers()}
    assert answer.question == "What is MaxViT?" and not answer.abstained
    assert answer.citations and {c.paper.title for c in answer.citations} <= titles
    assert MAXVIT in {c.paper.title for c in answer.citations}
    assert "[1]" in answer.text


def test_gradio_client_stream_sends_growing_text_then_json(url: str) -> None:
    client = Client(url, verbose=False, analytics_enabled=False)
    job = client.submit("How does MaxViT attend globally and locally?", api_name="/ask")
    updates = [wire.decode(u) for u in job]
    assert len(updates) >= 2, updates  # at least one text update before the final record
    texts, final = updates[:-1], updates[-1]
    assert all(isinstance(t, wire.WireText) for t in texts) and isinstance(final, wire.WireAnswer)
    for before, after in itertools.pairwise(texts):
        assert after.text.startswith(before.text)  # each update is the verified answer so far
    assert texts[-1].text == final.answer.text


def test_remote_assistant_returns_answer_with_real_titles(remote: RemoteAssistant, assistant: Assistant) -> None:
    answer = remote.ask("What is MaxViT?")
    assert isinstance(answer, Answer)
    assert {c.paper.title for c in answer.citations} <= {p.title for p in assistant.papers()}
    assert MAXVIT in {c.paper.title for c in answer.citations}
    local = assistant.ask("What is MaxViT?")
    assert [c.paper.id for c in answer.citations] == [c.paper.id for c in local.citations]


def test_remote_stream_yields_deltas_then_answer(remote: RemoteAssistant) -> None:
    items = list(remote.stream("Which paper proposes multi-axis attention?"))
    deltas, final = items[:-1], items[-1]
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, Answer) and "".join(deltas) == final.text


def test_follow_up_uses_the_history_passed_and_no_hidden_session(remote: RemoteAssistant) -> None:
    first = remote.ask("What is MaxViT?")
    follow = "What top-1 accuracy does it reach on ImageNet-1K?"
    with_history = remote.ask(follow, [Message(role="user", content=first.question), Message.from_answer(first)])
    assert with_history.follow_up and "MaxViT" in with_history.standalone_question
    assert MAXVIT in {c.paper.title for c in with_history.citations}
    without = remote.ask(follow)  # the same client: gradio_client's session must not carry the first turn
    assert "MaxViT" not in without.standalone_question


def test_bad_questions_come_back_as_the_same_rag_errors(remote: RemoteAssistant) -> None:
    with pytest.raises(QuestionError, match="empty"):
        remote.ask("   ")
    with pytest.raises(QuestionError, match="history must be a list"):
        remote.ask("What is MaxViT?", [{"role": "robot", "content": "hi"}])
    assert remote.ask("What is MaxViT?").citations  # the app still answers afterwards


def test_the_api_key_never_reaches_the_browser(assistant: Assistant) -> None:
    key = "sk-test-app-never-shows-this-key"
    settings = assistant.settings.model_copy(update={"openai_api_key": key, "llm_model": "gpt-test"})
    keyed = Assistant(settings, embedder=assistant.embedder, index=assistant.index)
    demo = launch(keyed, "127.0.0.1", free_port(), prevent_thread_lock=True)
    try:
        for path in ("", "config", "gradio_api/info"):
            with urllib.request.urlopen(demo.local_url + path, timeout=30) as response:
                body = response.read().decode("utf-8")
            assert key not in body, path
        assert "gpt-test" in urllib.request.urlopen(demo.local_url + "config", timeout=30).read().decode()  # offered
    finally:
        demo.close()


def test_dead_url_gives_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(RagError, match=rf"cannot reach the paper-rag chat app at http://127.0.0.1:{port}.*rag chat"):
        RemoteAssistant(f"http://127.0.0.1:{port}")


def test_launch_off_loopback_requires_a_login(assistant: Assistant) -> None:
    port = free_port()
    with pytest.raises(SettingsError, match="RAG_UI_USER and RAG_UI_PASSWORD"):
        launch(assistant, "0.0.0.0", port, prevent_thread_lock=True)
    with socket.socket() as s:  # nothing was started on the port
        s.bind(("0.0.0.0", port))


def test_login_is_enforced_when_set(assistant: Assistant) -> None:
    settings = assistant.settings.model_copy(update={"ui_user": "ada", "ui_password": "s3cret"})
    guarded = Assistant(settings, embedder=assistant.embedder, index=assistant.index)
    demo = launch(guarded, "127.0.0.1", free_port(), prevent_thread_lock=True)
    try:
        with pytest.raises(RagError, match="cannot reach"):
            RemoteAssistant(demo.local_url)
        answer = RemoteAssistant(demo.local_url, auth=("ada", "s3cret")).ask("What is MaxViT?")
        assert MAXVIT in {c.paper.title for c in answer.citations}
    finally:
        demo.close()


@pytest.mark.llm
def test_llm_answer_streams_verified_text_only(assistant: Assistant, llama_server: dict) -> None:
    settings = assistant.settings.model_copy(
        update={
            "openai_base_url": llama_server["base_url"],
            "openai_api_key": "none",
            "llm_model": "smollm2",
            "llm_context_window": 2048,  # the server's n_ctx: a longer prompt comes back empty
            "llm_max_tokens": 96,
            "answer_k": 2,
        }
    )
    with_llm = Assistant(settings, embedder=assistant.embedder, index=assistant.index)
    demo = launch(with_llm, "127.0.0.1", free_port(), prevent_thread_lock=True)
    try:
        items = list(RemoteAssistant(demo.local_url).stream("What is MaxViT?", backend="openai"))
    finally:
        demo.close()
    deltas, final = items[:-1], items[-1]
    assert isinstance(final, Answer) and final.backend == "openai"
    assert final.usage.completion_tokens > 0  # the question reached the model
    # the client receives the verified sentences as they pass (or the abstention), and nothing else
    assert all(isinstance(d, str) for d in deltas) and "".join(deltas) == final.text
