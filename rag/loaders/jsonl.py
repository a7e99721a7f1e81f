"""Reader for JSON-lines collections: BEIR corpus.jsonl (`_id`, `title`, `text`) and other shapes via field names.

A record may bring its own vector: `embedding` (a list of numbers) and optionally `embedding_model` (the model id;
else the ingest's --embedding-model-id). Such papers are written without re-embedding (rag/ingest.py checks the
model and dimension against the collection).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rag.loaders.common import Source
from rag.types import EmbeddedPaper, Paper

_ONE_OBJECT_A_LINE = "each line must be one JSON object (JSON lines, not one JSON array)"


def parse_line(source: Source, line_no: int, line: str) -> dict[str, Any] | None:
    """The JSON object on one line; None (after reporting it) when the line is not a JSON object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        source.invalid(line_no, f"not valid JSON ({exc.msg} at column {exc.colno}); {_ONE_OBJECT_A_LINE}")
        return None
    except RecursionError:  # thousands of nested brackets: no paper record looks like that
        source.invalid(line_no, f"JSON nested too deeply to read; {_ONE_OBJECT_A_LINE}")
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
    """Papers of a JSON-lines file, one object a line (blank lines skipped), streamed; with their vectors if given."""
    for line_no, record in records(source):
        paper = source.mapped_paper(line_no, record, what="line")
        if paper is None:
            continue
        if "embedding" not in record:
            yield paper
        elif (embedded := _embedded(source, line_no, paper, record)) is not None:
            yield embedded


def _embedded(source: Source, line_no: int, paper: Paper, record: dict[str, Any]) -> EmbeddedPaper | None:
    """The paper with its supplied vector; None (after reporting it) when `embedding` is not a list of numbers."""
    import numpy as np

    vector = record["embedding"]
    model = record.get("embedding_model", "")
    if (
        not isinstance(vector, list)
        or not vector
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)
    ):
        source.invalid(line_no, "\"embedding\" must be a non-empty list of numbers (the paper's vector)")
        return None
    if not isinstance(model, str):
        source.invalid(line_no, "\"embedding_model\" must be a string (the id of the model that made the vector)")
        return None
    array = np.asarray(vector, dtype="<f4")
    if not np.isfinite(array).all():
        source.invalid(line_no, "\"embedding\" holds a value that is not a finite number")
        return None
    return EmbeddedPaper(
        **paper.model_dump(), vector=array.tobytes(), embedding_model=model, origin=f"{source.path}:{line_no}"
    )
