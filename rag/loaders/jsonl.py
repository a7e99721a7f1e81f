"""Reader for JSON-lines collections: BEIR corpus.jsonl (`_id`, `title`, `text`) and other shapes via field names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rag.loaders.common import Source
from rag.types import Paper

_ONE_OBJECT_A_LINE = "each line must be one JSON object (JSON lines, not one JSON array)"


def parse_line(source: Source, line_no: int, line: str) -> dict[str, Any] | None:
    """The JSON object on one line; None (after reporting it) when the line is not a JSON object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        source.invalid(line_no, f"not valid JSON ({exc.msg} at column {exc.colno}); {_ONE_OBJECT_A_LINE}")
        return None
    if not isinstance(record, dict):
        source.invalid(line_no, f"expected a JSON object, found a JSON {type(record).__name__}; {_ONE_OBJECT_A_LINE}")
        return None
    return record


def records(source: Source) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) of each non-blank line; bad lines are reported to the source."""
    for line_no, line in source.lines():
        if not line.strip():
            continue
        record = parse_line(source, line_no, line)
        if record is not None:
            yield line_no, record


def read(source: Source) -> Iterator[Paper]:
    """Papers of a JSON-lines file, one object a line (blank lines skipped), streamed."""
    for line_no, record in records(source):
        paper = source.mapped_paper(line_no, record, what="line")
        if paper is not None:
            yield paper
