"""Assistant.ingest streams files into the index batch by batch: duplicates merged, the later record of an id wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import Assistant, CorpusError, Settings
from rag.embeddings import MiniLMEmbedding


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedding:
    return MiniLMEmbedding()


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_streamed_ingest_keeps_the_later_record_across_batches(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    first = write(tmp_path / "first.jsonl", [
        {"id": "a", "title": "Glacier melt", "abstract": "Glaciers lose mass every summer."},
        {"id": "b", "title": "Coral bleaching", "abstract": "Warm water bleaches reef corals."},
        {"id": "c", "title": "Coral bleaching", "abstract": "Warm  water bleaches reef corals."},  # exact duplicate
    ])  # fmt: skip
    second = write(tmp_path / "second.jsonl", [
        {"id": "d", "title": "Soil carbon", "abstract": "Tilling releases soil carbon."},
        {"id": "a", "title": "Glacier melt", "abstract": "Glaciers lose mass every summer and winter."},
    ])  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data", collection="stream", ingest_batch_size=2)
    assistant = Assistant(settings, embedder=embedder)
    summary = assistant.ingest([first, second], progress=False)
    # a and b form the first batch; a's later record (third batch) rewrites it
    assert (summary.added, summary.updated, summary.duplicates_merged) == (3, 1, 2)
    papers = {p.id: p.abstract for p in assistant.papers()}
    assert papers == {
        "a": "Glaciers lose mass every summer and winter.",
        "b": "Warm water bleaches reef corals.",
        "d": "Tilling releases soil carbon.",
    }
    assert assistant.search("glacier mass winter", k=1)[0].chunk.text.endswith("summer and winter.")


def test_a_bad_record_stops_the_stream_naming_its_line(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    good = {"id": "a", "title": "Glacier melt", "abstract": "Glaciers lose mass every summer."}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + '{"id": "b", "title": "No abstract"}\n', encoding="utf-8")
    assistant = Assistant(Settings(data_dir=tmp_path / "data", collection="stream"), embedder=embedder)
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: line has no abstract"):
        assistant.ingest([path], progress=False)
