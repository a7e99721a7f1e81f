"""Property: for every loader, any bytes either load into papers or raise the project's own error (a RagError
subclass naming the file), never another exception. Random bytes, plus text built from each format's own pieces
so the examples reach past the first parse error."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import RagError
from rag.loaders import load_papers
from rag.types import Paper

SUFFIX = {"digest": ".txt", "jsonl": ".jsonl", "csv": ".csv", "bibtex": ".bib", "arxiv": ".jsonl"}
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRUCTURED_PROPERTY = settings(PROPERTY, max_examples=100)  # bigger examples: fewer keep each test to seconds

# Format pieces: glued at random they make files that are almost right, the hard case for a parser.
_WORDS = ["Deep", "learning", "of", "MaxViT", "e.g.", "86.5%", "et al.", "Fig. 2", "😀", "模型", "\x00", "\ufeff",
          "\u2028", "\r", "\t", "\\", '"', "'", "{", "}", "@", ",", ";", "=", "<script>",
          "https://x.org/a_(b)"]  # fmt: skip
text_pieces = st.lists(st.sampled_from(_WORDS) | st.text(max_size=12), max_size=30).map(" ".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text_pieces,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
json_records = st.fixed_dictionaries(
    {},
    optional={
        "_id": json_values, "id": json_values, "title": json_values, "text": json_values, "abstract": json_values,
        "categories": json_values, "year": json_values, "authors": json_values, "authors_parsed": json_values,
        "versions": json_values, "comments": json_values, "metadata": json_values, "url": json_values,
    },
)  # fmt: skip
json_lines = st.lists(json_records.map(json.dumps) | text_pieces, max_size=6).map("\n".join)
csv_text = st.lists(
    st.lists(text_pieces | st.sampled_from(["id", "title", "abstract", "year", '"a,b"', '"open']), max_size=5).map(
        ",".join
    ),
    max_size=6,
).map("\n".join)
bibtex_text = st.lists(
    st.builds(
        lambda kind, key, fields: f"@{kind}{{{key},\n" + ",\n".join(f"  {k} = {{{v}}}" for k, v in fields) + "\n}",
        st.sampled_from(["article", "inproceedings", "misc", "string", "comment", "preamble", ""]),
        text_pieces,
        st.lists(st.tuples(st.sampled_from(["title", "abstract", "author", "year", "doi", "url", "x"]), text_pieces),
                 max_size=5),
    )
    | text_pieces,
    max_size=4,
).map("\n\n".join)
digest_text = st.lists(
    text_pieces | st.sampled_from(["", "", "Mar 12", "Subscribe", "new", "A Short Title", "A sentence. " * 40]),
    max_size=12,
).map("\n".join)
STRUCTURED = {"digest": digest_text, "jsonl": json_lines, "csv": csv_text, "bibtex": bibtex_text, "arxiv": json_lines}


def check_load(fmt: str, data: bytes, skip_invalid: bool, gz: bool = False) -> None:
    """Load data as fmt: papers, or a RagError that names the file; anything else fails the property."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"collection{SUFFIX[fmt]}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        try:
            result = load_papers([path], fmt=fmt, skip_invalid=skip_invalid)
        except RagError as exc:
            assert str(path) in str(exc), f"the error does not name the file: {exc}"
            return
        assert result.papers
        assert all(isinstance(p, Paper) and p.title and p.abstract and p.id for p in result.papers)


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@PROPERTY
@given(data=st.binary(max_size=2000), skip_invalid=st.booleans())
def test_any_bytes_load_or_raise_a_rag_error(fmt: str, data: bytes, skip_invalid: bool) -> None:
    check_load(fmt, data, skip_invalid)


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@STRUCTURED_PROPERTY
@given(data=st.data(), skip_invalid=st.booleans(), gz=st.booleans())
def test_almost_right_files_load_or_raise_a_rag_error(fmt: str, data: st.DataObject, skip_invalid: bool,
                                                      gz: bool) -> None:  # fmt: skip
    text = data.draw(STRUCTURED[fmt])
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]))
    check_load(fmt, text.encode(encoding, errors="replace"), skip_invalid, gz)


@PROPERTY
@given(data=st.binary(max_size=500))
def test_a_truncated_gzip_file_raises_a_rag_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "collection.jsonl.gz"
        path.write_bytes(gzip.compress(data)[: max(len(data) // 2, 1)])
        try:
            load_papers([path])
        except RagError as exc:
            assert str(path) in str(exc)


@pytest.mark.parametrize("fmt", ["jsonl", "arxiv"])
@pytest.mark.parametrize("skip_invalid", [False, True])
def test_deeply_nested_json_is_a_corpus_error(fmt: str, skip_invalid: bool) -> None:
    """json.loads raises RecursionError on 100,000 nested brackets (found while writing the properties)."""
    check_load(fmt, b"[" * 100_000 + b"\n" + json.dumps({"title": "T", "text": "An abstract."}).encode(), skip_invalid)
