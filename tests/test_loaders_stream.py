"""iter_papers streams records lazily: nothing past what is consumed is read, and memory stays flat in the input."""

from __future__ import annotations

import json
import tracemalloc
from itertools import islice
from pathlib import Path

import pytest

from rag.errors import CorpusError
from rag.loaders import iter_papers, load_papers


def write_jsonl(path: Path, n: int, bad_line: int | None = None) -> Path:
    """A JSONL collection of n distinct papers (about 1 KB each); bad_line, if given, holds broken JSON."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(1, n + 1):
            if i == bad_line:
                handle.write('{"id": "broken", "title": \n')
                continue
            words = " ".join(f"w{i}x{j}" for j in range(120))
            record = {"id": f"p{i}", "title": f"Paper {i}", "abstract": f"Abstract {i}: {words}."}
            handle.write(json.dumps(record) + "\n")
    return path


def test_the_stream_reads_no_further_than_it_is_consumed(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", 3000, bad_line=2500)
    first = list(islice(iter_papers(path), 10))  # the broken line 2500 is never reached
    assert [p.id for p in first] == [f"p{i}" for i in range(1, 11)]
    with pytest.raises(CorpusError, match=r"big\.jsonl:2500: not valid JSON"):
        list(iter_papers(path))


def test_missing_files_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 3)
    with pytest.raises(CorpusError, match=r"nope\.jsonl: no such file"):
        iter_papers([good, tmp_path / "nope.jsonl"])


def test_streaming_memory_is_flat_in_the_input_size(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "large.jsonl", 2000)  # about 2 MB

    def peak(consume) -> int:
        tracemalloc.start()
        try:
            consume()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streamed = peak(lambda: sum(1 for _ in iter_papers(path)))
    listed = peak(lambda: load_papers(path))
    # The stream keeps one record at a time plus an id and an 8-byte digest per paper; the list keeps every paper.
    assert streamed < listed / 4, (streamed, listed)
    assert streamed < 1_000_000


def test_duplicates_are_merged_and_counted_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "dups.jsonl"
    rows = [
        {"id": "a", "title": "Alpha", "abstract": "First text."},
        {"id": "b", "title": "Alpha", "abstract": "First  text."},  # exact duplicate of a under another id
        {"id": "c", "title": "Gamma", "abstract": "Third text."},
        {"id": "a", "title": "Alpha", "abstract": "Revised text."},  # a again, changed: yielded again
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    stream = iter_papers(path)
    assert [(p.id, p.abstract) for p in stream] == [("a", "First text."), ("c", "Third text."), ("a", "Revised text.")]
    assert (stream.duplicates_merged, stream.count) == (1, 3)
    loaded = load_papers(path)  # the list view keeps the later record of an id, in its first place
    assert [(p.id, p.abstract) for p in loaded.papers] == [("a", "Revised text."), ("c", "Third text.")]
    assert loaded.duplicates_merged == 2
    with pytest.raises(CorpusError, match="read once"):
        list(stream)
