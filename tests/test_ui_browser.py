"""The chat app in a real browser: Debian chromium driven by Playwright, against a real app on a free port."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rag.assistant import Assistant
from rag.settings import Settings
from ui.app import launch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"),
]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
expect = playwright_api.expect

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
NOT_LOCAL = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MAXVIT = "MaxViT: Multi-Axis Vision Transformer"
WAIT_MS = 60_000  # generous: the machine may be busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    """The app over the ingested digest; its 'openai' backend points at a port where nothing listens."""
    data_dir = tmp_path_factory.mktemp("ui-browser")
    with pytest.MonkeyPatch.context() as mp:  # module fixtures run before conftest's per-test isolation
        for name in [n for n in os.environ if n.startswith("RAG_") or n.startswith("OPENAI_")]:
            mp.delenv(name)
        mp.setenv("RAG_CONFIG", str(data_dir / "no-rag.toml"))
        settings = Settings(
            data_dir=data_dir,
            llm="extractive",
            openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
            openai_api_key="not-used",
            llm_fallback="error",
            llm_max_retries=0,
            llm_timeout=5,
        )
    assistant = Assistant(settings)
    assistant.ingest(progress=False)
    demo = launch(assistant, "127.0.0.1", free_port(), prevent_thread_lock=True)
    yield demo.local_url, assistant
    demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, app: tuple[str, Assistant]) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.route(NOT_LOCAL, lambda route: route.abort())  # no fonts or CDNs: the page must work offline
    page.goto(app[0])
    page.wait_for_selector("#question textarea", timeout=WAIT_MS)
    yield page
    page.close()


def ask(page: Page, question: str) -> Locator:
    """Type a question, send it, and wait until the answer's sources are shown; return the last bot message."""
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    expect(page.locator("#sources-panel .rag-q")).to_have_text(question, timeout=WAIT_MS)
    return page.locator("#chatbot .bot").last


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Save a screenshot in tmp_path and copy it to test-artifacts/ at the repo root."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    return path


def test_streamed_answer_cites_sources_and_links_to_them(page: Page, tmp_path: Path) -> None:
    answer = ask(page, "What is MaxViT?")
    expect(answer).to_contain_text("MaxViT", timeout=WAIT_MS)
    expect(answer.locator("a.rag-cite").first).to_have_text("[1]")
    panel = page.locator("#sources-panel")
    expect(panel.locator(".rag-card .rag-title")).to_contain_text([MAXVIT])
    card = panel.locator(".rag-card", has_text=MAXVIT).first
    card_id = card.get_attribute("id")
    expect(card.locator("mark").first).to_be_visible()  # the evidence sentence is highlighted in the abstract
    answer.locator(f'a.rag-cite[href="#{card_id}"]').first.click()
    expect(page.locator(f"#{card_id}")).to_have_class(re.compile(r"\brag-active\b"))
    assert len(page.context.pages) == 1  # the marker scrolled the panel; it did not open a tab

    follow = ask(page, "What top-1 accuracy does it reach on ImageNet-1K?")
    expect(panel).to_contain_text("Searched as:")
    expect(panel.locator(".rag-meta", has_text="Searched as:")).to_contain_text("MaxViT")
    expect(follow.locator("a.rag-cite").first).to_be_visible()
    assert screenshot(page, tmp_path, "ui-chat.png").stat().st_size > 10_000


def test_thumbs_up_writes_a_feedback_line(page: Page, app: tuple[str, Assistant]) -> None:
    feedback = app[1].settings.data_dir / "feedback.jsonl"
    before = feedback.read_text("utf-8").count("\n") if feedback.exists() else 0
    ask(page, "Which paper proposes multi-axis attention?")
    page.locator("#chatbot button[aria-label='Like']").last.click()
    expect(page.get_by_text("feedback saved")).to_be_visible(timeout=WAIT_MS)
    lines = feedback.read_text("utf-8").splitlines()
    assert len(lines) == before + 1
    record = json.loads(lines[-1])
    assert record["rating"] == 1 and record["question"] == "Which paper proposes multi-axis attention?"
    assert record["cited"]


def test_llm_failure_shows_a_clear_message_not_a_traceback(page: Page, tmp_path: Path) -> None:
    page.locator("#backend input").click()
    page.get_by_role("option", name="openai").click()
    expect(page.locator("#model-label")).to_contain_text("127.0.0.1")
    page.fill("#question textarea", "What is MaxViT?")
    page.keyboard.press("Enter")
    bubble = page.locator("#chatbot .bot").last
    expect(bubble.locator(".rag-badge-error")).to_be_visible(timeout=WAIT_MS)
    expect(bubble).to_contain_text("127.0.0.1")
    assert "Traceback" not in page.content()
    screenshot(page, tmp_path, "ui-llm-error.png")
    # the next question on the extractive backend works again
    page.locator("#backend input").click()
    page.get_by_role("option", name="extractive").click()
    expect(ask(page, "What is MaxViT?").locator("a.rag-cite").first).to_be_visible()


def test_uploaded_file_is_ingested_and_listed(page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "extra.jsonl"
    papers = [
        {
            "id": "zz-1",
            "title": "Zebrafish Tracking with Sparse Transformers",
            "abstract": "We track zebrafish larvae in video with a sparse transformer. It runs at 90 frames a second.",
            "year": 2031,
            "code_urls": ["https://github.com/example/zebrafish"],
        },
        {"id": "zz-2", "title": "Octopus Camouflage Datasets", "abstract": "A dataset of octopus skin patterns."},
    ]
    upload.write_text("\n".join(json.dumps(p) for p in papers) + "\n", encoding="utf-8")
    page.get_by_role("tab", name="Collection").click()
    page.locator("#upload-box").click()
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    page.locator("#ingest").click()
    expect(page.locator("#ingest-status")).to_contain_text("2 added", timeout=WAIT_MS)
    page.locator("#papers-table input").first.fill("Zebrafish")
    expect(page.locator("#papers-table tbody")).to_contain_text("Zebrafish Tracking with Sparse Transformers")
    screenshot(page, tmp_path, "ui-collection-table.png")
    expect(page.locator("#collection-info")).to_contain_text("2031")
    page.fill("#search-box textarea", "zebrafish larvae tracking")
    page.keyboard.press("Enter")
    expect(page.locator("#search-results")).to_contain_text("Zebrafish Tracking", timeout=WAIT_MS)
    screenshot(page, tmp_path, "ui-collection.png")
