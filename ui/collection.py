"""The Collection tab: what the collection holds, one search box over it, and adding papers from a file.

Uploads land in the data directory (see `ui.app.launch`), are named by their own file name in every message and
are deleted once ingested.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from rag.assistant import Assistant
from rag.errors import RagError
from ui.options import Options, search_filters
from ui.snapshot import CollectionSnapshot, Table

log = logging.getLogger(__name__)

FILE_TYPES = [".txt", ".json", ".jsonl", ".csv", ".bib"]


@dataclass(frozen=True)
class CollectionView:
    """The components of the Collection tab."""

    info: gr.Markdown
    search_box: gr.Textbox
    caption: gr.Markdown
    table: gr.Dataframe
    upload: gr.File
    ingest: gr.Button
    status: gr.Markdown


def build_collection(max_upload_mb: int) -> CollectionView:
    """Lay out the Collection tab; its counts and table are filled on page load."""
    info = gr.Markdown(elem_id="collection-info")
    search_box = gr.Textbox(
        placeholder="Search the papers (the filters in Options apply)",
        show_label=False,
        elem_id="search-box",
        submit_btn="Search",
    )
    caption = gr.Markdown(elem_id="table-caption")
    table = gr.Dataframe(
        interactive=False,
        wrap=True,
        elem_id="papers-table",
        show_label=False,
        max_height=560,
        buttons=[],
    )
    with gr.Accordion("Add papers to this collection", open=False, elem_id="upload-box"):
        gr.Markdown(
            "Upload a collection file: the digest text format, JSON or JSONL, CSV (with a header row) or BibTeX, "
            f"up to {max_upload_mb} MB. Papers already indexed are skipped; changed ones are indexed again."
        )
        upload = gr.File(label="Collection file", elem_id="upload", file_count="single", file_types=FILE_TYPES)
        ingest = gr.Button("Add to the collection", variant="primary", elem_id="ingest")
        status = gr.Markdown(elem_id="ingest-status")
    return CollectionView(info, search_box, caption, table, upload, ingest, status)


def table_update(table: Table) -> gr.Dataframe:
    """A Dataframe update showing this table (its columns change with the collection)."""
    return gr.Dataframe(value={"headers": list(table.headers), "data": table.rows}, datatype=list(table.datatypes))


class CollectionHandlers:
    """The Collection tab's callbacks over one Assistant; `snapshot` returns the collection as last loaded."""

    def __init__(self, assistant: Assistant, snapshot: Callable[[], CollectionSnapshot]) -> None:
        self.assistant = assistant
        self.snapshot = snapshot

    def search(self, query: str, has_code: str, year_min: str, year_max: str, source: str) -> tuple[Any, Any]:
        """Rank the papers for a query (caption, table); an empty query lists the collection again."""
        snapshot = self.snapshot()
        query = " ".join((query or "").split())
        if not query:
            return "", table_update(snapshot.paper_table())
        try:
            hits = self.assistant.search(query, filters=search_filters(has_code, year_min, year_max, source))
        except RagError as exc:
            gr.Warning(str(exc))
            return gr.skip(), gr.skip()
        if not hits:
            return f"No paper matches “{escape(query)}” with these filters.", table_update(snapshot.hit_table([]))
        caption = f"The {len(hits)} papers closest to “{escape(query)}”, best first. Clear the box to list all papers."
        return caption, table_update(snapshot.hit_table(hits))

    @staticmethod
    def ingest_started(file: str | None) -> str:
        """The status line while an ingest runs (replacing any earlier result)."""
        return f"Adding the papers of **{escape(Path(file).name)}** …" if file else ""

    def ingest(self, file: str | None, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, None]:  # noqa: B008 (Gradio's progress-injection idiom)
        """Ingest an uploaded collection file with a progress bar; return the status line and clear the upload (the
        file is deleted once read)."""
        if not file:
            return "Choose a collection file first.", None
        name = Path(file).name
        progress(0, desc=f"Loading {name}")
        try:
            summary = self.assistant.ingest([file])
        except RagError as exc:
            message = _named(str(exc), file, name)
            log.warning("ingest of %s failed: %s", name, message)
            return f"**Could not add {escape(name)}:** {escape(message)}", None
        finally:
            _discard(file)
        parts = [f"{summary.added} added"]
        if summary.updated:
            parts.append(f"{summary.updated} updated")
        if summary.skipped:
            parts.append(f"{summary.skipped} already there")
        if summary.duplicates_merged:
            parts.append(f"{summary.duplicates_merged} duplicates merged")
        return f"**Added {escape(name)}:** " + ", ".join(parts) + ".", None


def _named(message: str, path: str, name: str) -> str:
    """An error message with the upload's temporary path replaced by the file's own name."""
    for form in sorted({path, str(Path(path)), str(Path(path).resolve())}, key=len, reverse=True):
        message = message.replace(form, name)
    return message


def _discard(path: str) -> None:
    """Delete an ingested upload and its folder (Gradio keeps each upload in a folder of its own)."""
    folder = Path(path).parent
    try:
        Path(path).unlink(missing_ok=True)
        if folder.is_dir() and not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
    except OSError as exc:
        log.info("could not delete the upload %s: %s", path, exc)


def wire_collection(view: CollectionView, options: Options, handlers: CollectionHandlers, refresh: Any) -> None:
    """Connect search and ingest; after an ingest, `refresh` (an event spec: fn, outputs) reloads every count."""
    view.search_box.submit(
        handlers.search, [view.search_box, *options.filters], [view.caption, view.table], api_visibility="private"
    )
    fn, outputs = refresh
    view.ingest.click(
        handlers.ingest_started, view.upload, view.status, api_visibility="private", queue=False
    ).then(
        handlers.ingest, view.upload, [view.status, view.upload], api_visibility="private", concurrency_id="ingest",
        concurrency_limit=1,
    ).then(fn, None, outputs, api_visibility="private")  # fmt: skip
