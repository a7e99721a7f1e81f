"""The Gradio chat app: a thin shell over `Assistant` (chat, sources panel, settings, collection view, API).

Every callback makes one Assistant call and formats its records with `ui.render`; no retrieval or prompting here.
The `ask` API endpoint streams the answer text so far and ends with the `Answer` as JSON (see `rag.client`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from rag.assistant import Assistant
from rag.errors import QuestionError, RagError, SettingsError
from rag.examples import example_questions
from rag.types import Answer, Message, Paper, SearchFilters
from ui import render

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
BACKENDS = ("auto", "extractive", "openai", "local")
ANY_SOURCE = "(any source)"
ANY_YEAR = "any"
CODE_CHOICES = ("any", "with code", "without code")
ANSWER_CONCURRENCY = 4  # answers computed at once (chat and API together); more wait in the queue
TABLE_ROWS = 1000  # papers listed in the collection tab; the search box reaches the rest
# System fonts only: the default theme pulls Google Fonts, which hangs page loads offline.
_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
_MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")


def build_app(assistant: Assistant, *, concurrency: int = ANSWER_CONCURRENCY) -> gr.Blocks:
    """The chat app over one Assistant; `concurrency` answers run at once (chat and API together).

    An empty default collection is filled with the bundled digest first, as the Assistant would on the first
    question, so that the collection view and the example questions are not empty.
    """
    view = _ChatApp(assistant)
    view.prepare()
    settings = assistant.settings
    with gr.Blocks(title="paper-rag") as demo:
        answers = gr.State([])  # one entry per chat message: the Answer behind a bot message, else None
        header = gr.HTML(view.header_html(), elem_id="rag-header")
        with gr.Sidebar(label="Settings", open=True, elem_id="settings"):
            gr.Markdown("### Answering")
            backend = gr.Dropdown(
                list(BACKENDS),
                value=settings.llm,
                label="Backend",
                elem_id="backend",
                info="auto = OpenAI-compatible server when configured, else extractive",
            )
            model_md = gr.Markdown(view.model_label(settings.llm), elem_id="model-label")
            k = gr.Slider(1, 20, value=settings.answer_k, step=1, label="Sources per answer (k)", elem_id="k")
            gr.Markdown("### Filters")
            has_code = gr.Radio(list(CODE_CHOICES), value="any", label="Code", elem_id="filter-code")
            with gr.Row():
                year_min = gr.Dropdown(
                    **view.year_choices(), label="From year", elem_id="filter-year-min", min_width=80
                )
                year_max = gr.Dropdown(**view.year_choices(), label="To year", elem_id="filter-year-max", min_width=80)
            source = gr.Dropdown(view.source_choices(), value=ANY_SOURCE, label="Source", elem_id="filter-source")
        filters = [has_code, year_min, year_max, source]
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=360):
                    chatbot = gr.Chatbot(
                        elem_id="chatbot",
                        label="Chat",
                        show_label=False,
                        height="68vh",
                        latex_delimiters=[],
                        buttons=["copy"],
                        layout="bubble",
                        placeholder=view.placeholder_md(),
                        examples=view.chat_examples(),
                        feedback_options=("Like", "Dislike"),
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask about the papers…",
                            show_label=False,
                            elem_id="question",
                            scale=8,
                            submit_btn="Ask",
                            autofocus=True,
                        )
                        clear = gr.Button("New chat", elem_id="clear", scale=0, min_width=130, variant="secondary")
                with gr.Column(scale=2, min_width=320):
                    panel = gr.HTML(render.PANEL_PLACEHOLDER, elem_id="sources-panel", js_on_load=None)
            with gr.Tab("Collection", id="collection", elem_id="tab-collection"):
                info_md = gr.Markdown(view.info_md(), elem_id="collection-info")
                with gr.Row():
                    search_box = gr.Textbox(
                        placeholder="Search the collection (uses the filters in the sidebar)",
                        show_label=False,
                        elem_id="search-box",
                        scale=8,
                        submit_btn="Search",
                    )
                hits_df = gr.Dataframe(
                    headers=["#", "Title", "Score", "Source", "Year", "Code"],
                    datatype=["number", "markdown", "number", "str", "number", "markdown"],
                    interactive=False,
                    wrap=True,
                    visible=False,
                    elem_id="search-results",
                    label="Search results",
                    column_widths=["5%", "50%", "9%", "14%", "7%", "15%"],
                )
                papers_df = gr.Dataframe(
                    value=view.paper_table(),
                    headers=["Title", "Source", "Year", "Code"],
                    datatype=["markdown", "str", "number", "markdown"],
                    interactive=False,
                    wrap=True,
                    elem_id="papers-table",
                    label="Papers",
                    show_search="filter",
                    max_height=520,
                    column_widths=["58%", "17%", "7%", "18%"],
                )
                with gr.Accordion("Add papers to this collection", open=False, elem_id="upload-box"):
                    gr.Markdown(
                        "Upload a collection file (the digest text format, JSON/JSONL, CSV or BibTeX). "
                        "Papers already indexed are skipped; changed ones are re-indexed."
                    )
                    upload = gr.File(label="Collection file", elem_id="upload", file_count="single")
                    ingest_btn = gr.Button("Ingest", variant="primary", elem_id="ingest")
                    ingest_md = gr.Markdown(elem_id="ingest-status")
                refresh = gr.Button("Refresh", size="sm", elem_id="refresh", variant="secondary")

        # --- wiring --------------------------------------------------------------------------------------
        chat_inputs = [question, chatbot, answers, backend, k, *filters]
        chat_outputs = [chatbot, answers, panel, question]
        question.submit(
            view.respond,
            chat_inputs,
            chat_outputs,
            api_visibility="private",
            concurrency_id="answer",
            concurrency_limit=concurrency,
            show_progress="minimal",
        )
        chatbot.example_select(view.pick_example, None, question, api_visibility="private", queue=False).then(
            view.respond,
            chat_inputs,
            chat_outputs,
            api_visibility="private",
            concurrency_id="answer",
            concurrency_limit=concurrency,
            show_progress="minimal",
        )
        chatbot.select(view.show_sources, answers, panel, api_visibility="private", queue=False)
        chatbot.like(view.record_feedback, answers, None, api_visibility="private")
        clear.click(view.clear, None, [chatbot, answers, panel, question], api_visibility="private", queue=False)
        chatbot.clear(view.clear, None, [chatbot, answers, panel, question], api_visibility="private", queue=False)
        backend.change(view.model_label, backend, model_md, api_visibility="private", queue=False)
        search_box.submit(view.search, [search_box, *filters], hits_df, api_visibility="private")
        collection_outputs = [header, info_md, papers_df, source, year_min, year_max, chatbot]
        ingest_btn.click(
            view.ingest,
            upload,
            [ingest_md, *collection_outputs],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )
        refresh.click(view.refresh, None, collection_outputs, api_visibility="private")
        gr.api(view.ask, api_name="ask", concurrency_id="answer", concurrency_limit=concurrency)
    return demo


def launch(
    assistant: Assistant, host: str = "127.0.0.1", port: int = 7860, *, prevent_thread_lock: bool = False
) -> gr.Blocks:
    """Serve the chat app; off loopback, settings.ui_user and ui_password are required. Return the running app.

    With prevent_thread_lock=True the call returns at once: read `.local_url`, stop it with `.close()`.
    """
    settings = assistant.settings
    credentials = (settings.ui_user, settings.ui_password) if settings.ui_user and settings.ui_password else None
    if credentials is None and not _is_loopback(host):
        raise SettingsError(
            f"refusing to serve the chat app on {host} without a login: set RAG_UI_USER and RAG_UI_PASSWORD "
            "(or ui_user/ui_password in rag.toml), or bind 127.0.0.1"
        )
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
            footer_links=["api", "settings"],
            quiet=prevent_thread_lock,
            share=False,
            enable_monitoring=False,
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


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _ChatApp:
    """The callbacks of the app, each one Assistant call plus formatting."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.papers: list[Paper] = []

    # --- collection state -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load the paper list, first filling an empty default collection with the bundled digest."""
        self.assistant.ensure_ready()
        self.papers = self.assistant.papers()

    def header_html(self) -> str:
        """The title bar: name, collection and counts."""
        n = len(self.papers)
        collection = escape(self.assistant.settings.collection)
        return (
            '<div class="rag-header"><div class="rag-logo">paper-rag</div>'
            f'<div class="rag-sub">Answers from <b>{n}</b> paper abstract{"s" if n != 1 else ""} in collection '
            f"<code>{collection}</code>, citing the papers they rest on; each sentence is checked against its "
            "sources.</div></div>"
        )

    def placeholder_md(self) -> str:
        """What the empty chat shows."""
        if not self.papers:
            return "### The collection is empty\nAdd papers in the **Collection** tab, then ask about them."
        return (
            f"### Ask about {len(self.papers)} papers\nAnswers cite their sources as [1], [2]; "
            "the panel on the right shows each source with the supporting sentences highlighted."
        )

    def chat_examples(self) -> list[dict[str, str]]:
        """Example questions drawn from the collection, as chat example cards."""
        return [{"text": q} for q in example_questions(self.papers, n=4)]

    def source_choices(self) -> list[str]:
        """The source filter's choices: any, then each source of the collection."""
        return [ANY_SOURCE, *sorted({p.source for p in self.papers if p.source})]

    def year_choices(self) -> dict[str, Any]:
        """Choices of a year filter: any, then the years the collection holds (disabled when it holds none)."""
        years = sorted({p.year for p in self.papers if p.year})
        return {"choices": [ANY_YEAR, *map(str, years)], "value": ANY_YEAR, "interactive": bool(years)}

    def paper_table(self) -> list[list[Any]]:
        """Rows of the papers table (the first TABLE_ROWS papers)."""
        return render.paper_rows(self.papers[:TABLE_ROWS])

    def info_md(self) -> str:
        """Counts of the collection, or why they are missing."""
        try:
            info = self.assistant.info()
        except RagError as exc:
            return f"**Collection unavailable:** {escape(str(exc))}"
        shown = (
            f"\n\nShowing the first {TABLE_ROWS} papers; search to reach the rest." if info.papers > TABLE_ROWS else ""
        )
        return render.info_markdown(info, self.papers) + shown

    def refresh(self) -> tuple[Any, ...]:
        """Re-read the collection (after an ingest here or from the CLI)."""
        try:
            self.papers = self.assistant.papers()
        except RagError as exc:
            gr.Warning(str(exc))
            return tuple(gr.skip() for _ in range(7))
        return (
            self.header_html(),
            self.info_md(),
            self.paper_table(),
            gr.Dropdown(choices=self.source_choices()),
            gr.Dropdown(**self.year_choices()),
            gr.Dropdown(**self.year_choices()),
            gr.Chatbot(examples=self.chat_examples(), placeholder=self.placeholder_md()),
        )

    def model_label(self, backend: str) -> str:
        """What answers with the chosen backend: the resolved backend and its model."""
        settings = self.assistant.settings
        resolved = settings.model_copy(update={"llm": backend}).resolved_llm
        if resolved == "extractive":
            return "**Model:** extractive: quotes the best-supported abstract sentences (no LLM)"
        if resolved == "openai":
            where = settings.openai_base_url or "api.openai.com"
            return f"**Model:** `{settings.llm_model}` on {escape(where)}"
        local = settings.local_model_path.name if settings.local_model_path else "default local GGUF"
        return f"**Model:** llama.cpp in process, `{escape(local)}`"

    # --- chat -------------------------------------------------------------------------------------------
    def respond(
        self,
        question: str,
        chat: list[dict[str, Any]],
        answers: list[Answer | None],
        backend: str,
        k: float,
        has_code: str,
        year_min: str,
        year_max: str,
        source: str,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream an answer into the chat, then show it with linked citations and its sources panel."""
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield chat, answers, gr.skip(), gr.skip()
            return
        history = _history(answers)
        chat = [*chat, {"role": "user", "content": escape(question)}, {"role": "assistant", "content": "…"}]
        answers = [*answers, None, None]
        turn = len(chat) - 1
        yield chat, answers, gr.skip(), ""
        text = ""
        try:
            query_filters = _filters(has_code, year_min, year_max, source)
            for item in self.assistant.stream(question, history, k=int(k), filters=query_filters, backend=backend):
                if isinstance(item, Answer):
                    chat[-1] = {"role": "assistant", "content": render.answer_html(item, turn)}
                    answers[-1] = item
                    yield chat, answers, render.sources_html(item, turn), gr.skip()
                else:
                    text += item
                    chat[-1] = {"role": "assistant", "content": escape(text)}
                    yield chat, answers, gr.skip(), gr.skip()
        except RagError as exc:
            log.warning("answer failed: %s", exc)
            gr.Warning(str(exc))
            chat[-1] = {"role": "assistant", "content": render.error_html(str(exc))}
            yield chat, answers, gr.skip(), gr.skip()

    def pick_example(self, evt: gr.SelectData) -> str:
        """Put a clicked example question into the question box."""
        value = evt.value
        return value.get("text", "") if isinstance(value, dict) else str(value)

    def show_sources(self, answers: list[Answer | None], evt: gr.SelectData) -> Any:
        """Show the sources of the answer whose message was clicked."""
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        answer = answers[index] if 0 <= index < len(answers) else None
        return render.sources_html(answer, index) if answer is not None else gr.skip()

    def record_feedback(self, answers: list[Answer | None], evt: gr.LikeData) -> None:
        """Save a thumbs up or down on an answer to the feedback file."""
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        answer = answers[index] if 0 <= index < len(answers) else None
        if answer is None or not isinstance(evt.liked, bool):
            return
        path = self.assistant.feedback(answer, 1 if evt.liked else -1)
        gr.Info(f"Thanks: feedback saved to {path}")

    def clear(self) -> tuple[Any, ...]:
        """Start a new conversation."""
        return [], [], render.PANEL_PLACEHOLDER, ""

    # --- collection -------------------------------------------------------------------------------------
    def search(self, query: str, has_code: str, year_min: str, year_max: str, source: str) -> Any:
        """Search the collection and show the hits."""
        if not (query or "").strip():
            return gr.Dataframe(visible=False)
        try:
            query_filters = _filters(has_code, year_min, year_max, source)
            hits = self.assistant.search(query, filters=query_filters)
        except RagError as exc:
            gr.Warning(str(exc))
            return gr.skip()
        if not hits:
            gr.Info("No paper matches this search and these filters.")
        return gr.Dataframe(value=render.hit_rows(hits), visible=True)

    def ingest(self, file: str | None, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008 (Gradio's progress-injection idiom)
        """Ingest an uploaded collection file with a progress bar, then refresh the collection view."""
        if not file:
            gr.Warning("Choose a collection file first.")
            return (gr.skip(), *(gr.skip() for _ in range(7)))
        progress(0, desc="Loading papers")
        try:
            summary = self.assistant.ingest([file])
        except RagError as exc:
            log.warning("ingest failed: %s", exc)
            gr.Warning(str(exc))
            return (f"**Ingest failed:** {escape(str(exc))}", *(gr.skip() for _ in range(7)))
        status = (
            f"**Ingested {Path(file).name}:** {summary.added} added, {summary.updated} updated, "
            f"{summary.skipped} unchanged, {summary.duplicates_merged} duplicates merged, "
            f"{summary.chunks_written} chunks written in {summary.seconds:.1f} s."
        )
        return (status, *self.refresh())

    # --- API --------------------------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        history: list[dict[str, Any]] | None = None,
        k: int | None = None,
        backend: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Answer a question with citations: yields the answer text so far, then the Answer as JSON (last)."""
        try:
            messages = [Message.model_validate(m) for m in history or []]
            query_filters = SearchFilters.model_validate(filters) if filters else None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise gr.Error(
                f"QuestionError: history must be a list of {{role, content}} messages and filters a SearchFilters "
                f"object ({problems})",
                print_exception=False,
            ) from exc
        text = ""
        try:
            for item in self.assistant.stream(question, messages, k=k, filters=query_filters, backend=backend):
                if isinstance(item, Answer):
                    yield item.model_dump_json()
                else:
                    text += item
                    yield text
        except RagError as exc:
            raise gr.Error(f"{type(exc).__name__}: {exc}", print_exception=False) from exc


def _history(answers: list[Answer | None]) -> list[Message]:
    """The conversation so far as plain question/answer messages (without the chat's HTML)."""
    messages: list[Message] = []
    for answer in answers:
        if answer is not None:
            messages += [Message(role="user", content=answer.question), Message(role="assistant", content=answer.text)]
    return messages


def _filters(has_code: str, year_min: str, year_max: str, source: str) -> SearchFilters | None:
    """Search filters from the sidebar widgets (None when nothing is set)."""
    code = {"with code": True, "without code": False}.get(has_code)
    lo = int(year_min) if year_min and year_min != ANY_YEAR else None
    hi = int(year_max) if year_max and year_max != ANY_YEAR else None
    if lo and hi and lo > hi:
        raise QuestionError(f"the year filter is empty: 'from' {lo} is after 'to' {hi}")
    picked = source if source and source != ANY_SOURCE else None
    if code is None and lo is None and hi is None and picked is None:
        return None
    return SearchFilters(has_code=code, year_min=lo, year_max=hi, source=picked)
