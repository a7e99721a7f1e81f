"""Turn a follow-up question into a standalone one, with the LLM or with deterministic reference resolution."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.citations import MARKER, expand_marker, strip_markers
from rag.prompts import Prompts, format_history
from rag.types import Message

if TYPE_CHECKING:
    from rag.llm import ChatBackend

log = logging.getLogger(__name__)

_ORDINALS = {"first": 0, "former": 0, "second": 1, "latter": -1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
_NOUN = r"(?:one|paper|model|method|work|approach|architecture|network|study)"
_ORDINAL_REF = re.compile(rf"\bthe\s+({'|'.join(_ORDINALS)})(?:\s+{_NOUN})?\b", re.IGNORECASE)
_NUMBER_REF = re.compile(rf"\b(?:{_NOUN}|source)\s*\[?(\d+)\]?|\[(\d+)\]", re.IGNORECASE)
_SINGULAR_REF = re.compile(rf"\b(?:(?:that|this|the\s+same)\s+{_NOUN}|it|its|itself)\b", re.IGNORECASE)
_PLURAL_REF = re.compile(
    rf"\b(?:(?:these|those|both|the)\s+(?:two\s+|three\s+)?{_NOUN}s|they|them|their|both)\b", re.IGNORECASE
)
_LEAD = re.compile(r"^\s*(?:and|so|also|ok|okay|then|well)\b[\s,]*", re.IGNORECASE)
_ELLIPTIC = re.compile(r"^\s*(?:what|how)\s+about\b|^\s*and\b|^\s*also\b", re.IGNORECASE)
_SOURCE_LINE = re.compile(r"^\s*(?:[-*•]\s*)?\[(\d+)\]\s+(.+?)\s*$", re.MULTILINE)
_NAME_COLON = re.compile(r"^\s*(?:[-*•]\s*)?([^:\n\[\]]{2,60}?):\s.*?\[(\d+)", re.MULTILINE)
_NAME_BEFORE = re.compile(r"([A-Z][\w\-.]*(?:\s+[A-Z0-9][\w\-.]*){0,3})(?:\s*\([^)\n]{1,20}\))?\s*\[(\d+)")
# "The remote-sensing work [2]": a lower-case description before the marker names the paper too.
_PHRASE_BEFORE = re.compile(
    r"(?:^|[.;:]\s+|\n)(?:the|a|an|and|while|whereas)?\s*([\w\-]+(?:\s+[\w\-]+){0,3})\s*\[(\d+)", re.IGNORECASE
)
_CAPITALIZED = re.compile(r"(?<!^)\b([A-Z][A-Za-z0-9\-]*[A-Z0-9][A-Za-z0-9\-]*|[A-Z][a-z]+[A-Z][\w\-]*)\b")
# Short follow-ups without any reference still borrow the previous question's topic.
SHORT_FOLLOW_UP_WORDS = 6


def _short_title(title: str) -> str:
    """A title's name part (before ':'), as the answerer would name the paper."""
    head = title.split(":", 1)[0].strip()
    return head if ":" in title and len(head.split()) <= 4 else title.strip()


def cited_names(answer: str) -> list[str]:
    """Names of the papers a previous answer cites, in order of first citation."""
    names: dict[int, str] = {}
    for match in _SOURCE_LINE.finditer(answer):
        names.setdefault(int(match.group(1)), _short_title(strip_markers(match.group(2))))
    for pattern in (_NAME_COLON, _NAME_BEFORE, _PHRASE_BEFORE):
        for match in pattern.finditer(answer):
            name = match.group(1).strip(" -*•")
            if name and not MARKER.search(name):
                names.setdefault(int(match.group(2)), name)
    order: dict[int, None] = {}
    for match in MARKER.finditer(answer):
        for number in expand_marker(match.group(1)):
            order.setdefault(number, None)
    ordered = [names[n] for n in order if n in names]
    return list(dict.fromkeys(ordered))


def _last(history: Sequence[Message], role: str) -> str:
    """Content of the last message of a role, or ''."""
    return next((m.content for m in reversed(history) if m.role == role), "")


def _topic_names(question: str) -> list[str]:
    """Capitalized names and acronyms of a question (MaxViT, COCO, ImageNet)."""
    return list(dict.fromkeys(_CAPITALIZED.findall(question)))


def condense_rule(question: str, history: Sequence[Message]) -> str:
    """Resolve 'the second one', 'it', 'that paper', 'they' against the previous turn; no model involved."""
    if not history:
        return question.strip()
    previous_answer = _last(history, "assistant")
    previous_question = _last(history, "user")
    names = cited_names(previous_answer) or _topic_names(previous_question)
    resolved = question.strip()
    changed = False
    if names:

        def ordinal(match: re.Match[str]) -> str:
            nonlocal changed
            index = _ORDINALS[match.group(1).lower()]
            if index < len(names):
                changed = True
                return names[index]
            return match.group(0)

        def numbered(match: re.Match[str]) -> str:
            nonlocal changed
            index = int(match.group(1) or match.group(2)) - 1
            if 0 <= index < len(names):
                changed = True
                return names[index]
            return match.group(0)

        def plural(match: re.Match[str]) -> str:
            nonlocal changed
            changed = True
            joined = " and ".join(names)
            return f"{joined}'s" if match.group(0).lower() == "their" else joined

        def singular(match: re.Match[str]) -> str:
            nonlocal changed
            changed = True
            return f"{names[0]}'s" if match.group(0).lower() == "its" else names[0]

        resolved = _ORDINAL_REF.sub(ordinal, resolved)
        resolved = _NUMBER_REF.sub(numbered, resolved)
        if len(names) > 1:
            resolved = _PLURAL_REF.sub(plural, resolved)
        resolved = _SINGULAR_REF.sub(singular, resolved)
    resolved = _LEAD.sub("", resolved) if changed else resolved
    elliptic = _ELLIPTIC.search(question) or len(question.split()) <= SHORT_FOLLOW_UP_WORDS
    if not changed and previous_question and elliptic:
        resolved = f"{_LEAD.sub('', resolved).rstrip()} (follow-up to: {previous_question.strip()})"
    return resolved[:1].upper() + resolved[1:] if resolved else question.strip()


def _clean_model_question(text: str) -> str:
    """The first non-empty line of a model's rewrite, without labels and quotes."""
    for line in text.strip().splitlines():
        line = re.sub(r"^\s*(standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE).strip(" \"'`")
        if line:
            return line
    return ""


def condense_with_llm(
    backend: ChatBackend, prompts: Prompts, question: str, history: Sequence[Message], max_chars: int
) -> str:
    """Ask the chat model to rewrite a follow-up; fall back to the rule when its reply is empty or too long."""
    prompt = prompts.condense.format(history=format_history(history), question=question.strip())
    reply = _clean_model_question(backend.complete([Message(role="user", content=prompt)]))
    if not reply or len(reply) > max_chars:
        log.info("condense: model reply unusable (%r); using the rule-based rewrite", reply[:80])
        return condense_rule(question, history)
    return reply
