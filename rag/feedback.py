"""Thumbs up / down on answers, appended to a JSONL file in the data directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rag.types import Answer


def record_feedback(data_dir: Path, collection: str, answer: Answer, rating: int, comment: str = "") -> Path:
    """Append one feedback line (rating +1 or -1, the question, answer and cited papers); return the file."""
    if rating not in (1, -1):
        raise ValueError(f"rating must be +1 or -1, got {rating}")
    path = Path(data_dir) / "feedback.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "collection": collection,
        "rating": rating,
        "comment": comment,
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "cited": [c.paper.id for c in answer.citations],
        "backend": answer.backend,
        "model": answer.model,
    }
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path
