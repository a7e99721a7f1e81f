"""The BM25 side of a collection: a bm25s index of its chunks, kept beside Chroma and stamped with its content."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexStoreError
from rag.store import StoredChunk
from rag.types import SearchFilters

log = logging.getLogger(__name__)

# bm25s directly, not llama-index's BM25Retriever: that wrapper fixes its metadata filter when it is built (a new
# retriever, and a Python loop over every node, per filtered query) and persists each node's full JSON; here a
# filter is a numpy mask per query and only ids plus the filterable fields are kept.
NO_YEAR = np.iinfo(np.int32).min
CURRENT = "CURRENT"
STOPWORDS = "en"


@cache
def english_stemmer() -> Any:
    """The English Snowball stemmer (PyStemmer), built once and shared by BM25, the answerer and the verifier."""
    import Stemmer

    return Stemmer.Stemmer("english")


def _tokenize(texts: list[str]) -> Any:
    """bm25s tokens of texts: lower-cased words, English stop words removed, Snowball-stemmed."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=english_stemmer(), return_ids=False, show_progress=False)


@dataclass
class Bm25Params:
    """BM25 scoring parameters and how many times the title is repeated in the indexed text."""

    k1: float
    b: float
    title_repeats: int


class Bm25Index:
    """A bm25s index of one collection's chunks with the fields filters need, tagged with the collection stamp."""

    def __init__(self, retriever: Any, fields: dict[str, np.ndarray], stamp: str, params: Bm25Params) -> None:
        self.retriever = retriever
        self.chunk_ids: np.ndarray = fields["chunk_ids"]
        self.paper_ids: np.ndarray = fields["paper_ids"]
        self.years: np.ndarray = fields["years"]
        self.has_code: np.ndarray = fields["has_code"]
        self.sources: np.ndarray = fields["sources"]
        self.stamp = stamp
        self.params = params

    @classmethod
    def build(cls, rows: Iterable[StoredChunk], stamp: str, params: Bm25Params) -> Bm25Index:
        """Index chunk rows (title repeated params.title_repeats times, then the chunk text)."""
        import bm25s

        rows = sorted(rows, key=lambda r: r.id)
        fields = {
            "chunk_ids": np.array([r.id for r in rows], dtype=str),
            "paper_ids": np.array([r.paper_id for r in rows], dtype=str),
            "years": np.array([r.metadata.get("year", NO_YEAR) for r in rows], dtype=np.int32),
            "has_code": np.array([bool(r.metadata.get("has_code")) for r in rows], dtype=bool),
            "sources": np.array([str(r.metadata.get("source", "")) for r in rows], dtype=str),
        }
        retriever = None
        if rows:
            texts = [" ".join([str(r.metadata["title"])] * params.title_repeats + [r.text]) for r in rows]
            retriever = bm25s.BM25(method="lucene", k1=params.k1, b=params.b)
            retriever.index(_tokenize(texts), show_progress=False)
        return cls(retriever, fields, stamp, params)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def _mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """1.0 for chunks passing the filters, else 0.0 (None when unfiltered)."""
        if filters is None:
            return None
        keep = np.ones(len(self), dtype=bool)
        if filters.has_code is not None:
            keep &= self.has_code == filters.has_code
        if filters.year_min is not None:
            keep &= (self.years != NO_YEAR) & (self.years >= filters.year_min)
        if filters.year_max is not None:
            keep &= (self.years != NO_YEAR) & (self.years <= filters.year_max)
        if filters.source is not None:
            keep &= self.sources == filters.source
        return keep.astype(np.float32)

    def search(self, query: str, n: int, filters: SearchFilters | None = None) -> list[tuple[str, str, float]]:
        """(chunk id, paper id, BM25 score) of the n best-scoring chunks passing the filters; zero scores dropped."""
        if self.retriever is None or n <= 0:
            return []
        tokens = _tokenize([query])
        if not tokens[0]:
            return []
        mask = self._mask(filters)
        if mask is not None and not mask.any():
            return []
        docs, scores = self.retriever.retrieve(
            tokens, k=min(n, len(self)), weight_mask=mask, show_progress=False, n_threads=1
        )
        return [
            (str(self.chunk_ids[i]), str(self.paper_ids[i]), float(s))
            for i, s in zip(docs[0], scores[0], strict=True)
            if s > 0
        ]

    # --- persistence --------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the index under folder/<stamp>/ and point folder/CURRENT at it (atomic for readers)."""
        final = folder / self.stamp
        tmp = folder / f".{self.stamp}.tmp-{os.getpid()}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            if self.retriever is not None:
                self.retriever.save(str(tmp / "bm25s"))
            np.savez(
                tmp / "fields.npz",
                chunk_ids=self.chunk_ids,
                paper_ids=self.paper_ids,
                years=self.years,
                has_code=self.has_code,
                sources=self.sources,
            )
            (tmp / "stamp.json").write_text(json.dumps({"stamp": self.stamp, **vars(self.params)}))
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            pointer = folder / f".{CURRENT}.tmp-{os.getpid()}"
            pointer.write_text(self.stamp)
            os.replace(pointer, folder / CURRENT)
        except OSError as exc:
            raise IndexStoreError(f"cannot write the BM25 index to {folder}: {exc}; check the data directory") from exc
        for old in folder.iterdir():  # earlier versions; a reader that still has one open keeps its mmap-free copy
            if old.is_dir() and old.name != self.stamp and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> Bm25Index | None:
        """The index folder/CURRENT points at, or None when there is none or it cannot be read."""
        import bm25s

        try:
            stamp = (folder / CURRENT).read_text().strip()
            base = folder / stamp
            info = json.loads((base / "stamp.json").read_text())
            with np.load(base / "fields.npz", allow_pickle=False) as data:
                fields = {name: data[name] for name in data.files}
            retriever = bm25s.BM25.load(str(base / "bm25s")) if len(fields["chunk_ids"]) else None
        except (OSError, ValueError, KeyError) as exc:
            log.info("no usable BM25 index in %s (%s): it will be rebuilt", folder, exc)
            return None
        params = Bm25Params(k1=info["k1"], b=info["b"], title_repeats=info["title_repeats"])
        return cls(retriever, fields, info["stamp"], params)
