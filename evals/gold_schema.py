"""Gold Q&A files: the `GoldItem` record, loading from JSONL and validation against the collection's papers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from evals.metrics import contains
from rag.errors import RagError
from rag.loaders.common import title_id
from rag.types import Message, Paper, Record, normalize_title

ItemType = Literal["factoid", "which_paper", "multi_paper", "summary", "unanswerable", "follow_up", "topic_switch"]
ITEM_TYPES: tuple[str, ...] = (
    "factoid", "which_paper", "multi_paper", "summary", "unanswerable", "follow_up", "topic_switch"
)
# Items that come after a conversation: a follow-up depends on it, a topic switch must ignore it.
WITH_HISTORY: tuple[str, ...] = ("follow_up", "topic_switch")
GOLD_DIR = Path(__file__).parent / "gold"
# Tune on dev; report test (README, evals/reports/, the CI gate). Never fit or pick a rule on test.
DEV_SPLIT = GOLD_DIR / "dev.jsonl"
TEST_SPLIT = GOLD_DIR / "test.jsonl"
_FIELDS = {"id", "type", "question", "history", "gold_titles", "answer", "must_include"}


class GoldError(RagError):
    """A gold file is unreadable or invalid; the message names the file and line of every problem."""


class GoldItem(Record):
    """One gold question with the papers that answer it and strings a correct answer must contain."""

    id: str = Field(min_length=1)
    type: ItemType
    question: str = Field(min_length=1)
    history: tuple[Message, ...] = Field(
        default=(), description="Earlier chat turns; only for follow_up and topic_switch items."
    )
    gold_titles: tuple[str, ...] = Field(default=(), description="Titles of every paper that answers the question.")
    answer: str = Field(default="", description="Short reference answer (for reports and the LLM judge).")
    must_include: tuple[str, ...] = Field(default=(), description="Strings a correct answer contains (any case).")
    source: str = Field(default="", description="Gold file the item came from.")
    line: int = Field(default=0, description="1-based line of the item in its gold file.")

    @model_validator(mode="after")
    def _type_rules(self) -> GoldItem:
        """Follow-ups need history and only they have it; unanswerable items name no papers or strings."""
        if self.type in WITH_HISTORY and not self.history:
            raise ValueError(f"a {self.type} item needs a non-empty history")
        if self.type not in WITH_HISTORY and self.history:
            raise ValueError(f"only follow_up and topic_switch items may have a history (this one is {self.type!r})")
        if self.type == "unanswerable" and (self.gold_titles or self.must_include):
            raise ValueError("an unanswerable item must have empty gold_titles and must_include")
        if self.type != "unanswerable" and not self.gold_titles:
            raise ValueError(f"a {self.type} item needs at least one gold title")
        if any(not s.strip() for s in self.must_include):
            raise ValueError("must_include strings must not be blank")
        return self

    @property
    def answerable(self) -> bool:
        """True unless the collection is known not to answer the question."""
        return self.type != "unanswerable"

    @property
    def where(self) -> str:
        """'file:line' of the item, for error messages and reports."""
        return f"{Path(self.source).name}:{self.line}" if self.source else self.id


def _history_message(raw: object) -> object:
    """A gold history turn: `cited_titles` (the papers an assistant turn cites, [1] first) become `Message.papers`.

    Gold files name papers by title so that they stay readable; ids are those the loaders give a paper without one.
    """
    if not isinstance(raw, dict) or "cited_titles" not in raw:
        return raw
    titles = raw.get("cited_titles") or []
    if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
        raise ValueError("history cited_titles must be a list of paper titles")
    turn = {k: v for k, v in raw.items() if k != "cited_titles"}
    return {**turn, "papers": [title_id(t) for t in titles]}


def _parse_line(path: Path, line_no: int, text: str) -> GoldItem:
    """One JSONL line as a GoldItem; raises ValueError with a readable reason."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}")
    if isinstance(raw.get("history"), list):
        raw["history"] = [_history_message(m) for m in raw["history"]]
    try:
        return GoldItem.model_validate({**raw, "source": str(path), "line": line_no})
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors())
        raise ValueError(reasons) from exc


def load_gold(path: str | Path, papers: Sequence[Paper] | None = None) -> list[GoldItem]:
    """Read a gold JSONL file; with `papers`, also check titles and must_include strings against them.

    Every problem is collected and reported at once, each as 'file:line: reason'.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldError(f"cannot read gold file {path}: {exc}; pass an existing UTF-8 JSONL file") from exc
    items: list[GoldItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line_no, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            item = _parse_line(path, line_no, text)
        except ValueError as exc:
            errors.append(f"{path}:{line_no}: {exc}")
            continue
        if item.id in seen:
            errors.append(f"{path}:{line_no}: duplicate id {item.id!r} (first on line {seen[item.id]})")
            continue
        seen[item.id] = line_no
        items.append(item)
    if not items and not errors:
        errors.append(f"{path}: no gold items (expected one JSON object per line)")
    if papers is not None:
        errors.extend(corpus_errors(items, papers))
    if errors:
        raise GoldError(f"{len(errors)} problem(s) in gold file {path}:\n" + "\n".join(errors))
    return items


def corpus_errors(items: Sequence[GoldItem], papers: Sequence[Paper]) -> list[str]:
    """Problems of items against a collection: unknown gold titles, must_include strings in no gold abstract."""
    by_title = {normalize_title(p.title): p for p in papers}
    errors: list[str] = []
    for item in items:
        gold = []
        for title in item.gold_titles:
            paper = by_title.get(normalize_title(title))
            if paper is None:
                errors.append(f"{item.source}:{item.line}: gold title not in the collection: {title!r}")
            else:
                gold.append(paper)
        if len(gold) != len(item.gold_titles):
            continue
        for needle in item.must_include:
            if not any(contains(p.abstract, needle) for p in gold):
                errors.append(
                    f"{item.source}:{item.line}: must_include {needle!r} occurs in no gold abstract of {item.id}"
                )
    return errors


def gold_files(directory: Path = GOLD_DIR) -> list[Path]:
    """The checked-in gold files, sorted by name."""
    return sorted(directory.glob("*.jsonl"))
