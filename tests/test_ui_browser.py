"""The chat app in a real browser: Debian chromium driven by Playwright, against a real app on a free port.

Desktop (1400x1000) and phone (390x844): a conversation (question, follow-up, topic switch, abstention), marker
clicks, export, the conversation kept over a reload, upload then reload, the question limit, and no developer
details (paths, model ids, keys) in the default view. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
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
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
MAXVIT = "MaxViT: Multi-Axis Vision Transformer"
SECRET_KEY = "sk-test-never-shown-0123456789"
MODEL = "model-id-never-shown"
WAIT_MS = 60_000  # generous: the machine may be busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    """The app over the ingested digest; its 'openai' backend (with a key) points at a port where nothing listens."""
    data_dir = tmp_path_factory.mktemp("ui-browser")
    with pytest.MonkeyPatch.context() as mp:  # module fixtures run before conftest's per-test isolation
        for name in [n for n in os.environ if n.startswith("RAG_") or n.startswith("OPENAI_")]:
            mp.delenv(name)
        mp.delenv("GRADIO_TEMP_DIR", raising=False)
        mp.setenv("RAG_CONFIG", str(data_dir / "no-rag.toml"))
        settings = Settings(
            data_dir=data_dir,
            llm="extractive",
            openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
            openai_api_key=SECRET_KEY,
            llm_model=MODEL,
            llm_fallback="error",
            llm_max_retries=0,
            llm_timeout=5,
            ui_max_upload_mb=1,
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


def open_page(browser: Browser, url: str, viewport: dict[str, int]) -> Page:
    """A fresh browser context (own storage) on the app, loaded and ready."""
    context = browser.new_context(viewport=viewport)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
    page = context.new_page()
    page.route(NOT_LOCAL, lambda route: route.abort())  # no fonts or CDNs: the page must work offline
    page.on("dialog", lambda dialog: pytest.fail(f"the page opened a dialog: {dialog.message}"))
    page.goto(url)
    ready(page)
    return page


def ready(page: Page) -> None:
    """Wait until the page is loaded and its collection counts are filled in."""
    page.wait_for_selector("#question textarea", timeout=WAIT_MS)
    expect(page.locator("#rag-count")).to_have_count(1, timeout=WAIT_MS)


@pytest.fixture
def desktop(browser: Browser, app: tuple[str, Assistant]) -> Iterator[Page]:
    page = open_page(browser, app[0], DESKTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser: Browser, app: tuple[str, Assistant]) -> Iterator[Page]:
    page = open_page(browser, app[0], PHONE)
    yield page
    page.context.close()


def ask(page: Page, question: str) -> Locator:
    """Type a question, send it, and wait until the answer's sources are shown; return the last bot message."""
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    expect(page.locator("#sources-panel .rag-q")).to_have_text(question, timeout=WAIT_MS)
    return page.locator("#chatbot .bot").last


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save a screenshot to test-artifacts/ at the repo root."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def assert_no_developer_details(page: Page, assistant: Assistant) -> None:
    """What a reader sees (closed details and the closed options overlay excluded) holds no path, model id or key."""
    seen = page.locator("body").inner_text()
    for secret in (str(assistant.settings.data_dir), tempfile.gettempdir() + "/", SECRET_KEY, MODEL, "MiniLM"):
        assert secret not in seen, f"{secret!r} is visible"
    assert "ms" not in re.findall(r"\b\d+ (ms)\b", seen) and "follow-up to" not in seen


def test_conversation_on_desktop(desktop: Page, app: tuple[str, Assistant]) -> None:
    page = desktop
    answer = ask(page, "What is MaxViT?")
    expect(answer.locator("a.rag-cite").first).to_have_text("[1]")
    panel = page.locator("#sources-panel")
    expect(panel.locator(".rag-meta")).to_have_text(re.compile(r"^Cites \d+ papers?$"))
    numbers = [int(n) for n in panel.locator(".rag-card .rag-num").all_inner_texts()]
    assert numbers == list(range(1, len(numbers) + 1))  # cited papers in reading order, [1] first
    card = panel.locator(".rag-card", has_text=MAXVIT).first
    expect(card.locator("mark").first).to_be_visible()  # the evidence is highlighted in the abstract
    answer.locator(f'a.rag-cite[href="#{card.get_attribute("id")}"]').first.click()
    expect(card).to_have_class(re.compile(r"\brag-active\b"))
    expect(card.locator(".rag-title")).to_be_in_viewport()
    assert len(page.context.pages) == 1  # the marker showed the card; it did not open a tab

    follow = ask(page, "What top-1 accuracy does it reach on ImageNet-1K?")
    expect(follow).to_contain_text("86.5", timeout=WAIT_MS)
    expect(panel.locator(".rag-details")).to_contain_text("Searched as")  # a real follow-up says how it searched
    expect(panel.locator(".rag-details dd", has_text="MaxViT")).to_have_count(1)
    assert_no_developer_details(page, app[1])

    ask(page, "How does GroupMamba work?")  # a topic switch is searched as typed
    expect(panel.locator(".rag-card .rag-title").first).to_contain_text("GroupMamba")
    expect(panel.locator(".rag-details")).not_to_contain_text("Searched as")

    refused = ask(page, "Who won the 2018 football world cup?")
    expect(refused.locator(".rag-badge-abstain")).to_have_text("No answer in this collection")
    expect(panel.locator(".rag-meta")).to_have_text("No answer in this collection")
    expect(panel.locator(".rag-callout-abstain")).to_be_visible()
    screenshot(page, "ui-desktop-conversation.png")
    assert_no_developer_details(page, app[1])

    page.locator("#chatbot .bot").first.click()  # an earlier answer brings back its sources
    expect(panel.locator(".rag-q")).to_have_text("What is MaxViT?")
    expect(panel.locator(".rag-details")).to_contain_text("extractive")  # details stay available on demand


def test_export_copies_markdown_and_downloads_bibtex(desktop: Page) -> None:
    ask(desktop, "What is MaxViT?")
    desktop.locator(".rag-copy-md").click()
    expect(desktop.locator(".rag-copy-md")).to_have_text("Copied")
    markdown = desktop.evaluate("navigator.clipboard.readText()")
    assert "[1]" in markdown and "**References**" in markdown
    assert f"[1] {MAXVIT} · code: <https://github.com/google-research/maxvit>" in markdown  # the digest has no URL
    with desktop.expect_download() as download:
        desktop.locator(".rag-bibtex").click()
    assert download.value.suggested_filename.endswith(".bib")
    bibtex = Path(download.value.path()).read_text("utf-8")
    assert bibtex.startswith("@misc{") and "title = {{MaxViT: Multi-Axis Vision Transformer}}" in bibtex
    assert "note = {Code: https://github.com/google-research/maxvit}" in bibtex


def test_conversation_survives_a_reload_and_new_chat_clears_it(desktop: Page) -> None:
    ask(desktop, "What is MaxViT?")
    desktop.reload()
    ready(desktop)
    expect(desktop.locator("#chatbot .bot")).to_have_count(1)
    expect(desktop.locator("#sources-panel .rag-q")).to_have_text("What is MaxViT?")
    follow = ask(desktop, "What top-1 accuracy does it reach on ImageNet-1K?")  # the history came back too
    expect(follow).to_contain_text("86.5", timeout=WAIT_MS)
    desktop.locator("#clear").click()
    expect(desktop.locator("#chatbot .bot")).to_have_count(0)
    desktop.reload()
    ready(desktop)
    expect(desktop.locator("#chatbot .example").first).to_be_visible()
    expect(desktop.locator("#chatbot .bot")).to_have_count(0)


def test_too_long_question_stays_in_the_box_with_a_counter(desktop: Page, app: tuple[str, Assistant]) -> None:
    limit = app[1].settings.max_question_chars
    box = desktop.locator("#question textarea")
    box.fill("why" * (limit // 3 + 100))  # longer than the limit: the input keeps the first `limit` characters
    assert len(box.input_value()) == limit
    expect(desktop.locator("#question-counter")).to_contain_text(f"{limit:,} / {limit:,}")
    # Past the input's limit (pasted by a script): the app refuses it and keeps it in the box
    too_long = "x" * (limit + 400)
    box.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", too_long)
    expect(desktop.locator("#question-counter")).to_contain_text("too long")
    desktop.keyboard.press("Enter")
    expect(desktop.locator(".toast-body", has_text=f"the limit is {limit:,}")).to_be_visible(timeout=WAIT_MS)
    assert box.input_value() == too_long
    expect(desktop.locator("#chatbot .user")).to_have_count(0)
    screenshot(desktop, "ui-desktop-too-long.png")
    assert "RAG_MAX_QUESTION_CHARS" not in desktop.locator("body").inner_text()


def test_upload_then_reload_shows_the_new_papers(desktop: Page, app: tuple[str, Assistant], tmp_path: Path) -> None:
    before = len(app[1].papers())
    upload = tmp_path / "extra.jsonl"
    papers = [
        {
            "id": "zz-1",
            "title": "Zebrafish Tracking with Sparse Transformers",
            "abstract": "We track zebrafish larvae in video with a sparse transformer. It runs at 90 frames a second.",
            "year": 2031,
            "code_urls": ["https://github.com/example/zebrafish"],
        },
        {
            "id": "zz-2",
            "title": "<script>alert('x')</script> Octopus Camouflage Datasets",
            "abstract": "A dataset of octopus skin patterns recorded on coral reefs for camouflage research.",
        },
    ]
    upload.write_text("\n".join(json.dumps(p) for p in papers) + "\n", encoding="utf-8")
    page = desktop
    page.get_by_role("tab", name="Collection").click()
    page.locator("#upload-box").click()
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    page.locator("#ingest").click()
    expect(page.locator("#ingest-status")).to_contain_text("2 added", timeout=WAIT_MS)
    expect(page.locator("#rag-count")).to_have_text(str(before + 2))
    assert not list((Path(tempfile.gettempdir()) / "gradio").glob("**/extra.jsonl"))  # never outside the data dir

    page.reload()
    ready(page)
    expect(page.locator("#rag-count")).to_have_text(str(before + 2))
    page.get_by_role("tab", name="Collection").click()
    expect(page.locator("#collection-info")).to_contain_text(f"{before + 2} papers")
    expect(page.locator("#collection-info")).to_contain_text("2031")
    page.fill("#search-box textarea", "zebrafish larvae tracking")
    page.keyboard.press("Enter")
    expect(page.locator("#papers-table")).to_contain_text("Zebrafish Tracking", timeout=WAIT_MS)
    expect(page.locator("#papers-table")).to_contain_text("<script>alert('x')</script> Octopus")  # shown, not run
    expect(page.locator("#papers-table")).to_contain_text("2031 · extra.jsonl")  # two sources now: worth showing
    screenshot(page, "ui-desktop-collection.png")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "Which dataset records octopus skin patterns for camouflage research?")
    expect(page.locator("#sources-panel")).to_contain_text("<script>alert('x')</script> Octopus")  # text, never run

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "b1", "title": "Fine", "abstract": "A fine abstract about things."}\n{not json\n', "utf-8")
    page.get_by_role("tab", name="Collection").click()
    page.locator("#upload-box").click()
    page.locator("#upload input[type=file]").set_input_files(str(bad))
    page.locator("#ingest").click()
    status = page.locator("#ingest-status")
    expect(status).to_contain_text("Could not add bad.jsonl", timeout=WAIT_MS)
    expect(status).to_contain_text("bad.jsonl:2")
    assert "/" not in status.inner_text().replace("bad.jsonl", "")  # no temporary path
    huge = tmp_path / "huge.jsonl"  # over the app's upload limit (ui_max_upload_mb=1 here)
    huge.write_text(json.dumps({"id": "h", "title": "Huge", "abstract": "x " * 700_000}) + "\n", encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files(str(huge))
    expect(page.get_by_text("exceed the maximum allowed size")).to_be_visible(timeout=WAIT_MS)
    assert not list(app[1].settings.data_dir.glob("**/huge.jsonl"))  # refused before it was written anywhere
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    page.locator("#ingest").click()
    expect(status).not_to_contain_text("Could not add")  # the old failure is gone as soon as the next one starts
    expect(status).to_contain_text("2 already there", timeout=WAIT_MS)


def test_llm_failure_shows_a_clear_message_not_a_traceback(desktop: Page) -> None:
    page = desktop
    page.locator("#options-toggle").click()
    expect(page.locator("#options")).to_be_visible()
    page.locator("#backend input").click()
    page.get_by_role("option", name=re.compile("Language model")).click()
    expect(page.locator("#model-label")).to_contain_text("127.0.0.1")
    page.locator("#options-close").click()
    expect(page.locator("#options")).to_be_hidden()
    page.fill("#question textarea", "What is MaxViT?")
    page.keyboard.press("Enter")
    bubble = page.locator("#chatbot .bot").last
    expect(bubble.locator(".rag-badge-error")).to_be_visible(timeout=WAIT_MS)
    assert "Traceback" not in page.content() and SECRET_KEY not in page.content()


def test_thumbs_up_writes_a_feedback_line(desktop: Page, app: tuple[str, Assistant]) -> None:
    feedback = app[1].settings.data_dir / "feedback.jsonl"
    before = feedback.read_text("utf-8").count("\n") if feedback.exists() else 0
    ask(desktop, "Which paper proposes multi-axis attention?")
    desktop.locator("#chatbot button[aria-label='Like']").last.click()
    expect(desktop.get_by_text("Thanks for the feedback")).to_be_visible(timeout=WAIT_MS)
    lines = feedback.read_text("utf-8").splitlines()
    assert len(lines) == before + 1
    record = json.loads(lines[-1])
    assert record["rating"] == 1 and record["question"] == "Which paper proposes multi-axis attention?"
    assert str(feedback.parent) not in desktop.locator("body").inner_text()


def test_phone_layout(phone: Page, app: tuple[str, Assistant]) -> None:
    page = phone
    width = PHONE["width"]
    screenshot(page, "ui-phone-start.png")
    box, chat = page.locator("#question").bounding_box(), page.locator("#chatbot").bounding_box()
    assert box and chat and box["width"] >= chat["width"] - 2  # the question box is as wide as the chat
    page.locator("#options-toggle").click()
    expect(page.locator("#options")).to_be_visible()
    screenshot(page, "ui-phone-options.png")
    page.mouse.click(width / 2, PHONE["height"] - 20)  # a tap outside the overlay closes it
    expect(page.locator("#options")).to_be_hidden()

    answer = ask(page, "What is MaxViT?")
    follow = ask(page, "What top-1 accuracy does it reach on ImageNet-1K?")
    expect(follow).to_contain_text("86.5", timeout=WAIT_MS)
    panel = page.locator("#sources-panel")
    question_box = page.locator("#question").bounding_box()
    panel_box = panel.bounding_box()
    assert question_box and panel_box and panel_box["y"] > question_box["y"]  # sources come under the answer
    screenshot(page, "ui-phone-answer.png")
    follow.locator("a.rag-cite").first.click()
    card = panel.locator(".rag-card.rag-active")
    expect(card).to_have_count(1)
    page.wait_for_timeout(800)  # smooth scrolling
    title = card.locator(".rag-title").bounding_box()
    assert title and 0 <= title["y"] <= PHONE["height"] - 40  # the card's title is on screen, not under a header
    screenshot(page, "ui-phone-marker.png")
    assert_no_developer_details(page, app[1])
    assert answer.is_visible()

    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_role("tab", name="Collection").click()
    headers = page.locator("#papers-table thead th")
    expect(headers.first).to_be_visible(timeout=WAIT_MS)
    for header in headers.all():  # every column name is readable on one line ("Year" was one letter a line)
        label = header.locator("span.header").first.bounding_box()
        assert label and label["height"] < 28, header.inner_text()
    screenshot(page, "ui-phone-collection.png")
