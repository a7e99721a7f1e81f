"""The Gradio chat app: a thin shell over `Assistant` (chat with sources, options, collection view, `ask` API).

`build_app` assembles the pieces: the top bar and options overlay (`ui.options`), the Chat tab (`ui.chat`), the
Collection tab (`ui.collection`) and the API endpoint (`ui.api`). Whatever depends on the collection's content is
computed on every page load (`ui.snapshot`), so a reload after an ingest shows the new papers.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rag.assistant import Assistant
from rag.errors import RagError, SettingsError
from rag.runtime import configure
from ui.api import AskEndpoint
from ui.chat import ChatHandlers, ChatView, build_chat, wire_chat
from ui.collection import CollectionHandlers, CollectionView, build_collection, table_update, wire_collection
from ui.options import Options, backend_description, build_options, filter_updates
from ui.snapshot import CollectionSnapshot

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ANSWER_CONCURRENCY = 4  # answers computed at once (chat and API together); more wait in the queue
UPLOADS = "uploads"  # folder of the data directory that receives uploaded files
# System fonts only: the default theme pulls Google Fonts, which hangs page loads offline.
_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
_MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
_uploads_set_by_us: str | None = None  # the GRADIO_TEMP_DIR this module set (a user's own value is left alone)


class _Collection:
    """The collection as last read (on a page load or after an ingest), shared by the callbacks."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self._lock = threading.Lock()
        self._snapshot = CollectionSnapshot(assistant.settings.collection, [])

    def reload(self) -> CollectionSnapshot:
        """Read the paper list again (kept as it was when the store cannot be read, with a warning)."""
        try:
            papers = self.assistant.papers()
        except RagError as exc:
            log.warning("reading the collection failed: %s", exc)
            gr.Warning(f"The collection could not be read: {exc}")
            return self.current()
        with self._lock:
            self._snapshot = CollectionSnapshot(self.assistant.settings.collection, papers)
            return self._snapshot

    def current(self) -> CollectionSnapshot:
        """The collection as last read."""
        with self._lock:
            return self._snapshot


def build_app(assistant: Assistant, *, concurrency: int = ANSWER_CONCURRENCY) -> gr.Blocks:
    """The chat app over one Assistant; `concurrency` answers run at once (chat and API together).

    An empty default collection is filled with the bundled digest first, as the Assistant would on the first
    question, so that the collection view and the example questions are not empty.
    """
    assistant.ensure_ready()
    settings = assistant.settings
    collection = _Collection(assistant)
    with gr.Blocks(title="paper-rag") as demo:
        header, clear = _top_bar()
        options = build_options(settings)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                chat = build_chat(assistant)
            with gr.Tab("Collection", id="collection", elem_id="tab-collection"):
                papers = build_collection(settings.ui_max_upload_mb)

        def collection_updates(chat_value: list[dict[str, Any]] | None = None) -> tuple[Any, ...]:
            """Everything that shows the collection, read afresh (and the chat's messages when given)."""
            snapshot = collection.reload()
            chatbot = {"examples": snapshot.examples() or None, "placeholder": snapshot.placeholder_md()}
            return (
                snapshot.header_html(),
                gr.Chatbot(**chatbot) if chat_value is None else gr.Chatbot(value=chat_value, **chatbot),
                *filter_updates(snapshot),
                snapshot.info_md(),
                "",
                table_update(snapshot.paper_table()),
            )

        collection_outputs = [
            header, chat.chatbot, *options.filter_outputs, papers.info, papers.caption, papers.table
        ]  # fmt: skip

        def load_page(saved: Any) -> tuple[Any, ...]:
            """On every page load: the collection as it is now, and the conversation kept in the browser."""
            chat_value, turns, panel = ChatHandlers.restore(saved)
            return (*collection_updates(chat_value), turns, panel)

        page = [*collection_outputs, chat.turns, chat.panel]
        demo.load(load_page, chat.saved, page, api_visibility="private", queue=False, show_progress="hidden")
        refresh = (collection_updates, collection_outputs)
        _wire(assistant, options, chat, papers, clear, concurrency, collection, refresh)
    return demo


def _top_bar() -> tuple[gr.HTML, gr.Button]:
    """The title (filled on page load), "New chat" and the Options button; return the title and New chat."""
    with gr.Row(elem_id="topbar", equal_height=True):
        header = gr.HTML(
            '<div class="rag-header"><div class="rag-logo">paper-rag</div></div>', elem_id="rag-header", js_on_load=None
        )
        clear = gr.Button("New chat", elem_id="clear", variant="secondary", size="sm", scale=0, min_width=0)
        gr.Button("⚙ Options", elem_id="options-toggle", variant="secondary", size="sm", scale=0, min_width=0)
    return header, clear


def _wire(
    assistant: Assistant,
    options: Options,
    chat: ChatView,
    papers: CollectionView,
    clear: gr.Button,
    concurrency: int,
    collection: _Collection,
    refresh: tuple[Any, list[Any]],
) -> None:
    """Connect the events of every part, and the `ask` API endpoint."""
    settings = assistant.settings
    options.backend.change(
        lambda backend: backend_description(settings, backend),
        options.backend,
        options.backend_note,
        api_visibility="private",
        queue=False,
    )
    wire_chat(chat, options, clear, ChatHandlers(assistant), concurrency)
    wire_collection(papers, options, CollectionHandlers(assistant, collection.current), refresh)
    endpoint = AskEndpoint(assistant)
    gr.api(endpoint.ask, api_name="ask", concurrency_id="answer", concurrency_limit=concurrency)


def launch(
    assistant: Assistant, host: str = "127.0.0.1", port: int = 7860, *, prevent_thread_lock: bool = False
) -> gr.Blocks:
    """Serve the chat app; off loopback, settings.ui_user and ui_password are required. Return the running app.

    Uploads are received in <data dir>/uploads. With prevent_thread_lock=True the call returns at once: read
    `.local_url`, stop it with `.close()`.
    """
    configure()
    settings = assistant.settings
    credentials = (settings.ui_user, settings.ui_password) if settings.ui_user and settings.ui_password else None
    if credentials is None and not _is_loopback(host):
        raise SettingsError(
            f"refusing to serve the chat app on {host} without a login: set RAG_UI_USER and RAG_UI_PASSWORD "
            "(or ui_user/ui_password in rag.toml), or bind 127.0.0.1"
        )
    _receive_uploads_in(settings.data_dir / UPLOADS)
    demo = build_app(assistant)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            auth=credentials,
            prevent_thread_lock=prevent_thread_lock,
            theme=theme(),
            css_paths=[STATIC / "app.css"],
            head=(STATIC / "head.html").read_text("utf-8"),
            footer_links=["api"],
            quiet=prevent_thread_lock,
            share=False,
            enable_monitoring=False,
            max_file_size=f"{settings.ui_max_upload_mb}mb",
            run_history=False,
        )
    except OSError as exc:
        raise SettingsError(f"cannot serve the chat app on {host}:{port}: {exc}; try another --port") from exc
    return demo


def theme() -> gr.themes.Base:
    """A quiet indigo theme on system fonts (nothing fetched from the network)."""
    return gr.themes.Soft(
        primary_hue="indigo", secondary_hue="slate", neutral_hue="slate", font=_FONTS, font_mono=_MONO
    )


def _receive_uploads_in(folder: Path) -> None:
    """Make Gradio write uploads into `folder` (it reads GRADIO_TEMP_DIR when the app starts); a user's own
    GRADIO_TEMP_DIR is left alone."""
    global _uploads_set_by_us
    current = os.environ.get("GRADIO_TEMP_DIR")
    if current and current != _uploads_set_by_us:
        log.info("GRADIO_TEMP_DIR is set (%s): uploads go there", current)
        return
    folder.mkdir(parents=True, exist_ok=True)
    _uploads_set_by_us = os.environ["GRADIO_TEMP_DIR"] = str(folder)


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
