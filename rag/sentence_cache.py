"""Abstract sentences and their embeddings per paper, cached in memory and on disk (keyed by paper id + content)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.chunking import split_sentences
from rag.types import Paper

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

log = logging.getLogger(__name__)

# Papers kept in memory (least recently used dropped first): about 30 KB each with MiniLM, so about 60 MB.
MEMORY_PAPERS = 2048
QUERY_CACHE = 256  # question embeddings kept in memory
_UNSAFE = re.compile(r"[^0-9A-Za-z_.-]+")


@dataclass(frozen=True)
class PaperSentences:
    """A paper's title and abstract sentences with unit-length embeddings (row 0 is the title)."""

    paper: Paper
    sentences: tuple[str, ...]
    vectors: np.ndarray

    @property
    def title_vector(self) -> np.ndarray:
        """Embedding of the title."""
        return self.vectors[0]

    @property
    def sentence_vectors(self) -> np.ndarray:
        """Embeddings of the abstract sentences, one row per sentence."""
        return self.vectors[1:]


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


class SentenceCache:
    """Embeds each paper's sentences once; later questions and new processes reuse the vectors."""

    def __init__(self, embedder: BaseEmbedding, cache_dir: Path | None = None, max_papers: int = MEMORY_PAPERS) -> None:
        self.embedder = embedder
        self.model_name: str = getattr(embedder, "model_name", "") or type(embedder).__name__
        self.cache_dir = cache_dir / _UNSAFE.sub("_", self.model_name) if cache_dir is not None else None
        self.max_papers = max_papers
        # Least recently used papers first; bounded, so a long-running app does not grow without limit.
        self._memory: OrderedDict[tuple[str, str], PaperSentences] = OrderedDict()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of texts, one row each."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: less padding
        vectors = np.asarray(self.embedder.get_text_embedding_batch([texts[i] for i in order]), dtype=np.float32)
        rows = np.empty_like(vectors)
        rows[order] = vectors
        return normalize_rows(rows)

    def embed_query(self, text: str) -> np.ndarray:
        """Unit-length embedding of a question (the last QUERY_CACHE questions are kept: a chain embeds the same
        question for evidence and for verification)."""
        cached = self._queries.get(text)
        if cached is not None:
            self._queries.move_to_end(text)
            return cached
        vector = np.asarray(self.embedder.get_query_embedding(text), dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        vector = vector / norm if norm else vector
        self._queries[text] = vector
        while len(self._queries) > QUERY_CACHE:
            self._queries.popitem(last=False)
        return vector

    def get(self, papers: Iterable[Paper]) -> list[PaperSentences]:
        """Sentences and vectors of each paper, embedding (in one batch) only those not cached yet."""
        papers = list(papers)
        found: dict[tuple[str, str], PaperSentences] = {}
        missing: list[Paper] = []
        for paper in papers:
            key = (paper.id, paper.content_hash)
            cached = self._recall(key) or self._load(paper)
            if cached is None:
                missing.append(paper)
            else:
                found[key] = cached
        if missing:
            found.update(self._compute(missing))
        return [found[(p.id, p.content_hash)] for p in papers]

    def _recall(self, key: tuple[str, str]) -> PaperSentences | None:
        """A paper from memory (marked as just used), or None."""
        with self._lock:
            cached = self._memory.get(key)
            if cached is not None:
                self._memory.move_to_end(key)
            return cached

    def _remember(self, entry: PaperSentences) -> PaperSentences:
        """Keep a paper in memory, dropping the least recently used beyond max_papers."""
        with self._lock:
            self._memory[(entry.paper.id, entry.paper.content_hash)] = entry
            self._memory.move_to_end((entry.paper.id, entry.paper.content_hash))
            while len(self._memory) > self.max_papers:
                self._memory.popitem(last=False)
        return entry

    def _path(self, paper: Paper) -> Path | None:
        """Cache file of a paper (None when there is no cache directory)."""
        if self.cache_dir is None:
            return None
        key = hashlib.sha1(paper.id.encode("utf-8")).hexdigest()[:16]
        return self.cache_dir / f"{key}-{paper.content_hash}.npz"

    def _load(self, paper: Paper) -> PaperSentences | None:
        """A paper's cached sentences from disk (kept in memory too); None if absent or stale."""
        path = self._path(paper)
        if path is None or not path.is_file():
            return None
        sentences = tuple(split_sentences(paper.abstract))
        try:
            with np.load(path, allow_pickle=False) as data:
                cached = tuple(str(s) for s in data["sentences"])
                vectors = data["vectors"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable sentence cache %s: %s", path, exc)
            return None
        if cached != sentences or vectors.shape[0] != len(sentences) + 1:
            return None
        return self._remember(PaperSentences(paper, sentences, vectors))

    def _compute(self, papers: list[Paper]) -> dict[tuple[str, str], PaperSentences]:
        """Embed titles and sentences of papers in one batch, keep them in memory and write them to disk."""
        split = [tuple(split_sentences(p.abstract)) for p in papers]
        texts = [t for paper, sentences in zip(papers, split, strict=True) for t in (paper.title, *sentences)]
        vectors = self.embed(texts)
        start = 0
        computed: dict[tuple[str, str], PaperSentences] = {}
        for paper, sentences in zip(papers, split, strict=True):
            rows = vectors[start : start + len(sentences) + 1]
            start += len(sentences) + 1
            computed[(paper.id, paper.content_hash)] = self._remember(PaperSentences(paper, sentences, rows))
            self._save(paper, sentences, rows)
        return computed

    def _save(self, paper: Paper, sentences: tuple[str, ...], vectors: np.ndarray) -> None:
        """Write one paper's cache file; a failure only costs recomputation later."""
        path = self._path(paper)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, sentences=np.array(sentences, dtype=str), vectors=vectors)
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot write sentence cache %s: %s", path, exc)
