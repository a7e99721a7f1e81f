"""Example questions drawn from a collection's papers: deterministic, so the same collection shows the same examples."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Sequence

from rag.text import STOPWORDS
from rag.types import Paper

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
# A method name before a colon: one to three words, at most 30 characters ("MaxViT", "Vision Mamba", "A-SDM").
_NAMED = re.compile(r"^\s*([^:]{2,30}?)\s*:\s*\S")
_NAME_TEMPLATES = (
    "What is {name} and what problem does it address?",
    "How does {name} work?",
    "What results does {name} report?",
)
_TOPIC_TEMPLATE = "Which papers work on {topic}?"


def example_questions(papers: Sequence[Paper], n: int = 5) -> list[str]:
    """Up to n questions about the collection: one on its commonest title topic, the rest on named methods."""
    if n <= 0 or not papers:
        return []
    questions: list[str] = []
    topic = top_topic(papers)
    if topic:
        questions.append(_TOPIC_TEMPLATE.format(topic=topic))
    names = _method_names(papers)
    for i, name in enumerate(names[: n - len(questions)]):
        questions.append(_NAME_TEMPLATES[i % len(_NAME_TEMPLATES)].format(name=name))
    return questions[:n]


def top_topic(papers: Sequence[Paper]) -> str:
    """The two-word phrase most titles share (ties broken alphabetically), or '' when none repeats."""
    counts: Counter[str] = Counter()
    for paper in papers:
        words = [w.lower() for w in _WORD.findall(paper.title)]
        bigrams = {f"{a} {b}" for a, b in itertools.pairwise(words) if a not in STOPWORDS and b not in STOPWORDS}
        counts.update(bigrams)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[0][0] if ranked and ranked[0][1] > 1 else ""


def _method_names(papers: Sequence[Paper]) -> list[str]:
    """Distinct method names from 'Name: description' titles, in a stable order spread over the collection."""
    seen: set[str] = set()
    names: list[str] = []
    for paper in sorted(papers, key=_spread_key):
        match = _NAMED.match(paper.title)
        if not match or len(match.group(1).split()) > 3:
            continue
        name = match.group(1)
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


def _spread_key(paper: Paper) -> str:
    """A hash of the paper id: a stable order that does not favour the start of the file."""
    return hashlib.sha256(paper.id.encode("utf-8")).hexdigest()
