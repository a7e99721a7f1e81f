"""The Chat tab: the conversation, the question box with its length counter, and the sources panel.

Each callback makes one Assistant call and formats its records with `ui.render`. The conversation lives in the
browser's storage (`gr.BrowserState`), so a reload keeps it and "New chat" clears it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr
from pydantic import ValidationError

from rag.assistant import Assistant
from rag.errors import QuestionError, RagError
from rag.limits import clean_question
from rag.types import Answer, Message, normalize_space
from ui import render
from ui.options import Options, search_filters

log = logging.getLogger(__name__)

SAVED_TURNS = 20  # turns kept in the browser's storage (about 25 kB each)
CHAT_CONCURRENCY_ID = "answer"  # answers computed at once, chat and API together, share one limit


@dataclass(frozen=True)
class Turn:
    """One question of the conversation and what came of it: an Answer, or an error message."""

    question: str
    answer: Answer | None = None
    error: str = ""

    def messages(self, turn: int) -> list[dict[str, str]]:
        """The turn's two chat bubbles (turn = its position in the conversation)."""
        if self.answer is not None:
            reply = render.answer_html(self.answer, turn)
        else:
            reply = render.error_html(self.error or "No answer.")
        return [{"role": "user", "content": escape(self.question)}, {"role": "assistant", "content": reply}]

    def to_json(self) -> dict[str, Any]:
        """The turn as JSON-ready data for the browser's storage."""
        answer = self.answer.model_dump(mode="json") if self.answer is not None else None
        return {"question": self.question, "answer": answer, "error": self.error}

    @classmethod
    def from_json(cls, data: Any) -> Turn | None:
        """A stored turn, or None when it cannot be read (e.g. saved by an older version)."""
        try:
            answer = Answer.model_validate(data["answer"]) if data.get("answer") else None
            return cls(question=str(data["question"]), answer=answer, error=str(data.get("error") or ""))
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            log.info("dropping a stored chat turn that cannot be read: %s", exc)
            return None


@dataclass(frozen=True)
class ChatView:
    """The components of the Chat tab."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    counter: gr.HTML
    panel: gr.HTML
    turns: gr.State
    saved: gr.BrowserState


def build_chat(assistant: Assistant) -> ChatView:
    """Lay out the Chat tab: conversation and question box, then the sources (beside on a wide screen, below on a
    phone). Examples and placeholder are filled on page load."""
    settings = assistant.settings
    turns = gr.State([])
    saved = gr.BrowserState([], storage_key=f"paper-rag-chat-{settings.collection}")
    with gr.Row(equal_height=False, elem_id="chat-row"):
        with gr.Column(scale=3, min_width=360, elem_id="chat-column"):
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                label="Chat",
                show_label=False,
                height="64vh",
                latex_delimiters=[],
                buttons=[],
                layout="bubble",
                feedback_options=("Like", "Dislike"),
            )
            question = gr.Textbox(
                placeholder="Ask about the papers…",
                show_label=False,
                elem_id="question",
                submit_btn="Ask",
                autofocus=True,
                max_length=settings.max_question_chars,
                lines=1,
                max_lines=6,
            )
            counter = gr.HTML("", elem_id="question-count", padding=False)
        with gr.Column(scale=2, min_width=320, elem_id="sources-column"):
            panel = gr.HTML(render.PANEL_PLACEHOLDER, elem_id="sources-panel", padding=False)
    return ChatView(chatbot, question, counter, panel, turns, saved)


class ChatHandlers:
    """The Chat tab's callbacks over one Assistant."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def respond(
        self,
        question: str,
        chat: list[dict[str, Any]],
        turns: list[Turn],
        backend: str,
        k: float,
        has_code: str,
        year_min: str,
        year_max: str,
        source: str,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream the verified answer into the chat, then show it with linked citations and its sources.

        Yields (chat, turns, panel, question box, counter, saved conversation). A question that cannot be asked
        (empty, too long, impossible filters) stays in the box with a warning.
        """
        keep = (gr.skip(),) * 6
        limit = self.assistant.settings.max_question_chars
        try:
            text = clean_question(question, limit)
        except QuestionError:
            n = len(normalize_space(question or ""))
            gr.Warning(
                f"This question is {n:,} characters long; the limit is {limit:,}. Shorten it to ask."
                if n
                else "Type a question first."
            )
            yield keep
            return
        try:
            filters = search_filters(has_code, year_min, year_max, source)
        except RagError as exc:
            gr.Warning(str(exc))
            yield keep
            return
        history = [
            m
            for t in turns
            if t.answer is not None
            for m in (Message(role="user", content=t.question), Message.from_answer(t.answer))
        ]
        index = len(turns)
        chat = [
            *chat,
            {"role": "user", "content": escape(text)},
            {"role": "assistant", "content": render.streaming_html("")},
        ]
        yield chat, gr.skip(), gr.skip(), "", "", gr.skip()
        streamed = ""
        try:
            for item in self.assistant.stream(text, history, k=int(k), filters=filters, backend=backend or None):
                if isinstance(item, Answer):
                    turns = [*turns, Turn(text, item)]
                    chat[-1] = {"role": "assistant", "content": render.answer_html(item, index)}
                    yield chat, turns, render.sources_html(item, index), gr.skip(), gr.skip(), _saved(turns)
                else:
                    streamed += item
                    chat[-1] = {"role": "assistant", "content": render.streaming_html(streamed)}
                    yield chat, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except RagError as exc:
            log.warning("answer failed: %s", exc)
            turns = [*turns, Turn(text, error=str(exc))]
            chat[-1] = {"role": "assistant", "content": render.error_html(str(exc))}
            yield chat, turns, gr.skip(), gr.skip(), gr.skip(), _saved(turns)

    def pick_example(self, evt: gr.SelectData) -> str:
        """Put a clicked example question into the question box."""
        value = evt.value
        return value.get("text", "") if isinstance(value, dict) else str(value)

    def show_sources(self, turns: list[Turn], evt: gr.SelectData) -> Any:
        """Show the sources of the answer whose message was clicked."""
        turn = _turn_of(evt.index)
        answer = turns[turn].answer if 0 <= turn < len(turns) else None
        return render.sources_html(answer, turn) if answer is not None else gr.skip()

    def record_feedback(self, turns: list[Turn], evt: gr.LikeData) -> None:
        """Save a thumbs up or down on an answer to the collection's feedback file."""
        turn = _turn_of(evt.index)
        answer = turns[turn].answer if 0 <= turn < len(turns) else None
        if answer is None or not isinstance(evt.liked, bool):
            return
        try:
            self.assistant.feedback(answer, 1 if evt.liked else -1)
        except (RagError, OSError) as exc:
            log.warning("saving feedback failed: %s", exc)
            gr.Warning("Your feedback could not be saved.")
            return
        gr.Info("Thanks for the feedback.", duration=3)

    @staticmethod
    def clear() -> tuple[Any, ...]:
        """Start a new conversation: (chat, turns, panel, question box, counter, saved conversation)."""
        return [], [], render.PANEL_PLACEHOLDER, "", "", []

    @staticmethod
    def restore(saved: Any) -> tuple[Any, ...]:
        """The conversation kept in the browser: (chat, turns, panel)."""
        turns = [t for t in (Turn.from_json(d) for d in (saved or []) if isinstance(d, dict)) if t is not None]
        chat = [m for i, t in enumerate(turns) for m in t.messages(i)]
        last = next(((i, t.answer) for i, t in reversed(list(enumerate(turns))) if t.answer is not None), None)
        panel = render.sources_html(last[1], last[0]) if last else render.PANEL_PLACEHOLDER
        return chat, turns, panel


def wire_chat(view: ChatView, options: Options, clear: gr.Button, handlers: ChatHandlers, concurrency: int) -> None:
    """Connect the Chat tab's events (asking, examples, clicks on messages, feedback, New chat)."""
    inputs = [view.question, view.chatbot, view.turns, options.backend, options.k, *options.filters]
    outputs = [view.chatbot, view.turns, view.panel, view.question, view.counter, view.saved]
    answering = {
        "api_visibility": "private",
        "concurrency_id": CHAT_CONCURRENCY_ID,
        "concurrency_limit": concurrency,
        "show_progress": "hidden",
    }
    asked = view.question.submit(handlers.respond, inputs, outputs, **answering)
    picked = view.chatbot.example_select(
        handlers.pick_example, None, view.question, api_visibility="private", queue=False
    ).then(handlers.respond, inputs, outputs, **answering)
    view.chatbot.select(handlers.show_sources, view.turns, view.panel, api_visibility="private", queue=False)
    view.chatbot.like(handlers.record_feedback, view.turns, None, api_visibility="private")
    clear_outputs = [view.chatbot, view.turns, view.panel, view.question, view.counter, view.saved]
    # "New chat" stops an answer still streaming, so it cannot write into the new conversation
    clear.click(handlers.clear, None, clear_outputs, api_visibility="private", queue=False, cancels=[asked, picked])


def _saved(turns: list[Turn]) -> list[dict[str, Any]]:
    """The last SAVED_TURNS turns for the browser's storage."""
    return [t.to_json() for t in turns[-SAVED_TURNS:]]


def _turn_of(index: Any) -> int:
    """The conversation turn of a chat message index (each turn is a question and its reply)."""
    message = index if isinstance(index, int) else index[0]
    return int(message) // 2
