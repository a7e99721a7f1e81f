"""Prompt files (prompts/*.txt) loaded with placeholder checks, and the token-budgeted answer prompt built from them."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag.errors import PromptError
from rag.tokens import count_tokens, truncate_to_tokens
from rag.types import Hit, Message

# The one abstention phrase: the system prompt tells the model to reply with it, the chain answers with it when the
# evidence is weak, and the tests look for it.
ABSTAIN_PHRASE = "The collection does not say"

# name -> (placeholders a file may use, placeholders it must use)
PROMPT_SPECS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "system": (frozenset({"abstain_phrase"}), frozenset()),
    "answer": (frozenset({"sources", "question", "abstain_phrase"}), frozenset({"sources", "question"})),
    "source": (frozenset({"number", "title", "text"}), frozenset({"number", "text"})),
    "condense": (frozenset({"history", "question"}), frozenset({"history", "question"})),
}

_FENCE_TAG = re.compile(r"<(/?\s*source\b)", re.IGNORECASE)
# Below this many tokens a truncated source is not worth showing.
MIN_SOURCE_TOKENS = 40


def bundled_prompts_dir() -> Path:
    """prompts/ next to the package in a checkout, or rag/prompts inside an installed wheel."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "prompts", package_dir.parent / "prompts"):
        if (candidate / "system.txt").is_file():
            return candidate
    raise PromptError(f"no prompts directory found next to {package_dir}; reinstall paper-rag")


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt file: its text and the placeholders it uses (checked against PROMPT_SPECS at load)."""

    name: str
    path: Path
    text: str
    placeholders: frozenset[str]

    def format(self, **values: object) -> str:
        """Fill the placeholders this file uses; values it does not use are ignored."""
        return self.text.format(**{k: v for k, v in values.items() if k in self.placeholders})


@dataclass(frozen=True)
class Prompts:
    """The set of prompt templates the chain uses."""

    system: PromptTemplate
    answer: PromptTemplate
    source: PromptTemplate
    condense: PromptTemplate


def _placeholders(name: str, path: Path, text: str) -> frozenset[str]:
    """Named placeholders of a template, refusing positional, attribute and index fields."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise PromptError(f"prompt {path}: bad braces ({exc}); write literal braces as {{{{ and }}}}") from exc
    bad = [f for f in fields if not f.isidentifier()]
    if bad:
        raise PromptError(f"prompt {path}: placeholders must be plain names, got {{{bad[0]}}}")
    return frozenset(fields)


def load_prompt(name: str, directory: Path | None = None) -> PromptTemplate:
    """Read prompts/<name>.txt and check that it uses only (and all required) placeholders of its kind."""
    if name not in PROMPT_SPECS:
        raise PromptError(f"unknown prompt {name!r}; known: {', '.join(sorted(PROMPT_SPECS))}")
    path = (directory or bundled_prompts_dir()) / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"cannot read prompt {path}: {exc}") from exc
    allowed, required = PROMPT_SPECS[name]
    used = _placeholders(name, path, text)
    unknown = sorted(used - allowed)
    if unknown:
        raise PromptError(
            f"prompt {path} uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"allowed: {', '.join('{' + a + '}' for a in sorted(allowed))}"
        )
    missing = sorted(required - used)
    if missing:
        raise PromptError(f"prompt {path} lacks required placeholder(s) {', '.join('{' + m + '}' for m in missing)}")
    return PromptTemplate(name=name, path=path, text=text, placeholders=used)


@cache
def load_prompts(directory: Path | None = None) -> Prompts:
    """All prompt templates from a directory (default: the bundled prompts/), checked once and cached."""
    return Prompts(**{name: load_prompt(name, directory) for name in PROMPT_SPECS})


def fence(text: str) -> str:
    """Neutralize <source>/</source> tags inside untrusted text so it cannot close or open a source fence."""
    return _FENCE_TAG.sub(r"&lt;\1", text)


def format_source(prompts: Prompts, number: int, hit: Hit, max_tokens: int | None = None) -> str:
    """One numbered, fenced source: the paper's title and abstract (cut to max_tokens if given)."""
    abstract = hit.paper.abstract
    if max_tokens is not None:
        abstract = truncate_to_tokens(abstract, max_tokens)
    return prompts.source.format(number=number, title=fence(hit.paper.title), text=fence(abstract)).strip()


def format_history(history: Sequence[Message]) -> str:
    """Chat turns as 'User: ...' / 'Assistant: ...' lines for the condense prompt."""
    return "\n".join(f"{m.role.capitalize()}: {m.content.strip()}" for m in history if m.role != "system")


@dataclass(frozen=True)
class AnswerPrompt:
    """The chat messages of one answer request and the sources that fit in them, numbered [1] first."""

    messages: tuple[Message, ...]
    sources: tuple[Hit, ...]
    prompt_tokens: int


def build_answer_prompt(
    prompts: Prompts,
    question: str,
    hits: Sequence[Hit],
    history: Sequence[Message],
    *,
    context_window: int,
    max_new_tokens: int,
) -> AnswerPrompt:
    """Messages for the answer model: system rules, recent history, then fenced sources trimmed to the window."""
    system = prompts.system.format(abstain_phrase=ABSTAIN_PHRASE).strip()
    empty_user = prompts.answer.format(sources="", question=question, abstain_phrase=ABSTAIN_PHRASE)
    turns = [m for m in history if m.role != "system"]
    fixed = count_tokens(system) + count_tokens(empty_user) + max_new_tokens + 8 * (len(turns) + 2)
    # Older turns go first when even the fixed part does not fit.
    while turns and fixed + sum(count_tokens(m.content) for m in turns) > context_window // 2:
        turns = turns[1:]
    budget = context_window - fixed - sum(count_tokens(m.content) for m in turns)
    blocks: list[str] = []
    shown: list[Hit] = []
    for hit in hits:
        block = format_source(prompts, len(shown) + 1, hit)
        cost = count_tokens(block) + 2
        if cost > budget:
            room = budget - (cost - count_tokens(hit.paper.abstract)) - 2
            if room >= MIN_SOURCE_TOKENS:
                block = format_source(prompts, len(shown) + 1, hit, max_tokens=room)
                blocks.append(block)
                shown.append(hit)
            break
        blocks.append(block)
        shown.append(hit)
        budget -= cost
    user = prompts.answer.format(sources="\n\n".join(blocks), question=question, abstain_phrase=ABSTAIN_PHRASE)
    messages = (Message(role="system", content=system), *turns, Message(role="user", content=user.strip()))
    used = sum(count_tokens(m.content) for m in messages) + 8 * len(messages)
    return AnswerPrompt(messages=messages, sources=tuple(shown), prompt_tokens=used)
