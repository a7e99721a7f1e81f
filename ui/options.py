"""The options overlay: answer backend, sources per answer and the search filters the collection can use.

It sits behind the "Options" button of the top bar and closes on a tap outside it (see static/head.html). Only
configured backends are offered; a filter shows only when the collection holds values it can tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
from pydantic import ValidationError

from rag.errors import QuestionError
from rag.settings import BACKENDS, Settings
from rag.types import SearchFilters
from ui.snapshot import CollectionSnapshot

ANY_SOURCE = "Any source"
ANY_YEAR = "Any"
CODE_CHOICES = ("Any", "With code", "Without code")


@dataclass(frozen=True)
class Options:
    """The components of the overlay."""

    backend: gr.Dropdown
    backend_note: gr.Markdown
    k: gr.Slider
    filters_heading: gr.Markdown
    has_code: gr.Radio
    year_min: gr.Dropdown
    year_max: gr.Dropdown
    source: gr.Dropdown

    @property
    def filters(self) -> list[Any]:
        """The filter widgets, in the order `search_filters` takes their values."""
        return [self.has_code, self.year_min, self.year_max, self.source]

    @property
    def filter_outputs(self) -> list[Any]:
        """The components `filter_updates` returns values for."""
        return [self.filters_heading, *self.filters]


def build_options(settings: Settings) -> Options:
    """Lay out the overlay (hidden until the top bar's Options button opens it); filters are filled on page load."""
    choices = backend_choices(settings)
    with gr.Column(elem_id="options", elem_classes=["rag-options"]):
        with gr.Row(elem_classes=["rag-options-head"]):
            gr.Markdown("### Options", elem_classes=["rag-options-title"])
            gr.Button("✕", elem_id="options-close", size="sm", scale=0, min_width=40, variant="secondary")
        backend = gr.Dropdown(
            choices,
            value=default_backend(settings),
            label="Answers by",
            elem_id="backend",
            visible=len(choices) > 1,
        )
        backend_note = gr.Markdown(backend_description(settings, default_backend(settings)), elem_id="model-label")
        k = gr.Slider(1, 20, value=settings.answer_k, step=1, label="Papers per answer", elem_id="k")
        filters_heading = gr.Markdown("### Filters", elem_id="filters-heading")
        has_code = gr.Radio(list(CODE_CHOICES), value=CODE_CHOICES[0], label="Code", elem_id="filter-code")
        with gr.Row():
            year_min = gr.Dropdown([ANY_YEAR], value=ANY_YEAR, label="From year", elem_id="filter-year-min")
            year_max = gr.Dropdown([ANY_YEAR], value=ANY_YEAR, label="To year", elem_id="filter-year-max")
        source = gr.Dropdown([ANY_SOURCE], value=ANY_SOURCE, label="Source", elem_id="filter-source")
    return Options(backend, backend_note, k, filters_heading, has_code, year_min, year_max, source)


def backend_choices(settings: Settings) -> list[tuple[str, str]]:
    """(label, backend) pairs of the backends that can answer here: extractive always, an LLM when configured
    ('auto' is not offered: the configured backend is preselected)."""
    configured = {
        "extractive": True,
        "openai": bool(settings.openai_api_key or settings.openai_base_url),
        "local": settings.local_model_path is not None,
    }
    return [
        (_backend_label(settings, name), name)
        for name in BACKENDS
        if configured.get(name) or name == settings.resolved_llm
    ]


def _backend_label(settings: Settings, backend: str) -> str:
    """How the backend menu names a backend."""
    if backend == "openai":
        return f"Language model ({settings.llm_model})"
    if backend == "local":
        return f"Local model ({settings.local_model_path.name if settings.local_model_path else 'not set'})"
    return "Quotes from the abstracts (no LLM)"


def default_backend(settings: Settings) -> str:
    """The backend selected when the page opens: the configured one."""
    return settings.resolved_llm


def backend_description(settings: Settings, backend: str) -> str:
    """One line on how the chosen backend answers (no key or path is ever shown)."""
    resolved = settings.model_copy(update={"llm": backend or "auto"}).resolved_llm
    if resolved == "extractive":
        return "Answers quote the abstract sentences that best support them; no language model is used."
    if resolved == "openai":
        return f"A language model (`{escape(settings.llm_model)}` on {escape(_host(settings.openai_base_url))}) " + (
            "writes the answer; every sentence is then checked against the papers it cites."
        )
    return "A local language model writes the answer; every sentence is then checked against the papers it cites."


def filter_updates(snapshot: CollectionSnapshot) -> tuple[Any, ...]:
    """Updates of the filter widgets for this collection: only those it can use are shown, all reset to 'any'."""
    years = [ANY_YEAR, *map(str, snapshot.years)]
    show_years = snapshot.can_filter_years
    any_filter = snapshot.can_filter_code or show_years or snapshot.can_filter_sources
    return (
        gr.Markdown(visible=any_filter),
        gr.Radio(value=CODE_CHOICES[0], visible=snapshot.can_filter_code),
        gr.Dropdown(choices=years, value=ANY_YEAR, visible=show_years),
        gr.Dropdown(choices=years, value=ANY_YEAR, visible=show_years),
        gr.Dropdown(choices=[ANY_SOURCE, *snapshot.sources], value=ANY_SOURCE, visible=snapshot.can_filter_sources),
    )


def search_filters(has_code: str, year_min: str, year_max: str, source: str) -> SearchFilters | None:
    """SearchFilters from the widgets' values (None when nothing is set); QuestionError for an empty year range."""
    code = {CODE_CHOICES[1]: True, CODE_CHOICES[2]: False}.get(has_code)
    lo = int(year_min) if year_min and year_min != ANY_YEAR else None
    hi = int(year_max) if year_max and year_max != ANY_YEAR else None
    picked = source if source and source != ANY_SOURCE else None
    if code is None and lo is None and hi is None and picked is None:
        return None
    try:
        return SearchFilters(has_code=code, year_min=lo, year_max=hi, source=picked)
    except ValidationError as exc:
        reason = "; ".join(str(e.get("ctx", {}).get("error") or e["msg"]) for e in exc.errors())
        raise QuestionError(f"{reason}: change the years in Options") from exc


def _host(url: str) -> str:
    """The host (and port) of a server URL, without user, password, path or query; OpenAI's when empty."""
    if not url:
        return "api.openai.com"
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "the configured server"
