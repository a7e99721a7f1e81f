"""Abstract sentences and their embeddings per paper, cached in memory and on disk (keyed by paper id + content).

With MiniLM a sentence's vector is pooled from the forward pass over the chunk that holds it (late pooling: its own
tokens, in the context of the title and the sentences around it), so ingest writes them for free while it embeds the
chunks, plus one pass over the sentences past the model's 256 tokens; a paper ingested without them is pooled the
same way at the first question that needs it. The same passes give the states of the paper's content word pieces
(int8, one scale per row; how many each sentence holds), which a question's own pieces are matched against, the
whole abstract's and each sentence's (`rag.evidence`). Other embedders embed each sentence alone, and keep no piece
states.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.chunking import chunk_paper, split_sentences
from rag.embeddings import MINILM_DIMENSION, Pooled, normalize_rows
from rag.types import Paper

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from rag.settings import Settings

log = logging.getLogger(__name__)

# Papers kept in memory (least recently used dropped first): about 110 KB each with MiniLM (30 KB of sentence vectors,
# 80 KB of int8 piece states), so about 110 MB.
MEMORY_PAPERS = 1024
QUERY_CACHE = 256  # question embeddings kept in memory
SPAN_BATCH = 16  # texts per forward pass when pooling sentences (sorted by length: little padding)
TAIL_TOKENS = 250  # word pieces per pass over the sentences a chunk's pass did not reach (the model sees 256)
# cache-directory suffix of pooled vectors and piece states: they differ from sentences embedded alone
LATE = "late-pieces"
_UNSAFE = re.compile(r"[^0-9A-Za-z_.-]+")


_NO_STATES = np.zeros((0, MINILM_DIMENSION), dtype=np.int8)
_NO_SCALES = np.zeros(0, dtype=np.float32)
_NO_ROWS = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True)
class PaperSentences:
    """A paper's title and abstract sentences with unit-length embeddings (row 0 is the title), and the states of its
    content word pieces (int8 rows, each times its scale, in text order; none for an embedder without token states)
    with how many of them each row (title, then each sentence) holds."""

    paper: Paper
    sentences: tuple[str, ...]
    vectors: np.ndarray
    states: np.ndarray = field(default_factory=lambda: _NO_STATES)
    state_scales: np.ndarray = field(default_factory=lambda: _NO_SCALES)
    state_rows: np.ndarray = field(default_factory=lambda: _NO_ROWS)

    @property
    def piece_states(self) -> np.ndarray:
        """The content word pieces' states, float32, one row each (about unit length)."""
        return self.states.astype(np.float32) * self.state_scales[:, None]

    def sentence_pieces(self) -> list[slice]:
        """Each abstract sentence's rows of `piece_states` (an empty slice for every sentence when there are none)."""
        if len(self.state_rows) != len(self.sentences) + 1:
            return [slice(0, 0)] * len(self.sentences)
        bounds = np.cumsum(self.state_rows)
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    @property
    def title_vector(self) -> np.ndarray:
        """Embedding of the title."""
        return self.vectors[0]

    @property
    def sentence_vectors(self) -> np.ndarray:
        """Embeddings of the abstract sentences, one row per sentence."""
        return self.vectors[1:]


class SentenceCache:
    """Embeds each paper's sentences once; later questions and new processes reuse the vectors."""

    def __init__(
        self,
        embedder: BaseEmbedding,
        cache_dir: Path | None = None,
        max_papers: int = MEMORY_PAPERS,
        chunking: tuple[int, int] | None = None,
    ) -> None:
        self.embedder = embedder
        self.model_name: str = getattr(embedder, "model_name", "") or type(embedder).__name__
        # late pooling needs the model's token states (MiniLM) and the chunking the index embedded
        self.chunking = chunking if chunking is not None and hasattr(embedder, "embed_spans") else None
        name = _UNSAFE.sub("_", self.model_name) + (f"-{LATE}" if self.chunking else "")
        self.cache_dir = cache_dir / name if cache_dir is not None else None
        self.max_papers = max_papers
        # Least recently used papers first; bounded, so a long-running app does not grow without limit.
        self._memory: OrderedDict[tuple[str, str], PaperSentences] = OrderedDict()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_states: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, embedder: BaseEmbedding, settings: Settings) -> SentenceCache:
        """The cache of a data directory, pooling sentences from the chunks as the settings cut them."""
        chunking = (settings.chunk_tokens, settings.chunk_overlap_sentences)
        return cls(embedder, settings.data_dir / "sentence_cache", chunking=chunking)

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

        def unit() -> np.ndarray:
            vector = np.asarray(self.embedder.get_query_embedding(text), dtype=np.float32)
            norm = float(np.linalg.norm(vector))
            return vector / norm if norm else vector

        return _kept(self._queries, text, unit)

    def query_states(self, text: str) -> np.ndarray:
        """The states of a question's content word pieces (the last QUERY_CACHE kept); none for an embedder without
        token states."""
        if self.chunking is None:
            return np.zeros((0, MINILM_DIMENSION), dtype=np.float32)
        return _kept(self._query_states, text, lambda: self.embedder.piece_states(text))  # type: ignore[attr-defined]

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
            found.update(self._compute(missing, {}))
        return [found[(p.id, p.content_hash)] for p in papers]

    def add_pooled(self, papers: Sequence[Paper], pooled: dict[tuple[str, str], Pooled]) -> None:
        """Keep the vectors and piece states ingest pooled from its chunk passes (title row first, NaN rows for the
        sentences past the model's window), after one pass over those sentences."""
        self._compute(list(papers), pooled)

    def pooled_inputs(self, paper: Paper, chunk_text: str) -> list[tuple[int, int]]:
        """Character spans, in a chunk's embedded text ("title\\nchunk"), of the title and of every sentence of the
        paper (a sentence the chunk does not hold gets the empty span (0, 0))."""
        return _spans(paper.title, tuple(split_sentences(paper.abstract)), chunk_text)

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
                # a cache written by an embedder without token states may predate them: it has none
                states = data["states"] if "states" in data.files else _NO_STATES
                scales = data["state_scales"] if "state_scales" in data.files else _NO_SCALES
                rows = data["state_rows"] if "state_rows" in data.files else _NO_ROWS
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable sentence cache %s: %s", path, exc)
            return None
        if cached != sentences or vectors.shape[0] != len(sentences) + 1:
            return None
        if len(states) and (len(rows) != len(vectors) or int(rows.sum()) != len(states)):
            return None  # written before the states were kept per sentence: pooled again
        return self._remember(PaperSentences(paper, sentences, vectors, states, scales, rows))

    def _compute(
        self, papers: list[Paper], partial: dict[tuple[str, str], Pooled]
    ) -> dict[tuple[str, str], PaperSentences]:
        """Vectors of the titles and sentences of papers (completing the rows ingest pooled) and their piece states,
        kept in memory and written to disk."""
        split = [tuple(split_sentences(p.abstract)) for p in papers]
        if self.chunking is None:
            texts = [t for paper, sentences in zip(papers, split, strict=True) for t in (paper.title, *sentences)]
            flat = self.embed(texts)
            bounds = np.cumsum([0] + [len(sentences) + 1 for sentences in split])
            entries = [PaperSentences(p, ss, flat[a:b]) for p, ss, (a, b) in
                       zip(papers, split, itertools.pairwise(bounds), strict=True)]  # fmt: skip
        else:
            pooled_rows = self._pool(papers, split, partial)
            entries = [PaperSentences(p, ss, pooled.vectors, *_quantized(np.vstack(pooled.states)),
                                      np.array([len(s) for s in pooled.states], dtype=np.int32))
                       for p, ss, pooled in zip(papers, split, pooled_rows, strict=True)]  # fmt: skip
        computed: dict[tuple[str, str], PaperSentences] = {}
        for entry in entries:
            computed[(entry.paper.id, entry.paper.content_hash)] = self._remember(entry)
            self._save(entry)
        return computed

    def _pool(
        self, papers: list[Paper], split: list[tuple[str, ...]], partial: dict[tuple[str, str], Pooled]
    ) -> list[Pooled]:
        """Late-pooled vectors and piece states: the chunks' passes as ingest ran them (for papers ingest did not
        pool), then one pass per run of sentences those passes did not reach."""
        assert self.chunking is not None
        budget, overlap = self.chunking
        rows = [partial.get((p.id, p.content_hash)) for p in papers]
        texts: list[str] = []
        spans: list[list[tuple[int, int]]] = []
        owners: list[int] = []
        for n, (paper, sentences) in enumerate(zip(papers, split, strict=True)):
            if rows[n] is None:
                rows[n] = empty_pooled(len(sentences) + 1)
                for chunk in chunk_paper(paper, budget, overlap) or []:
                    text = chunk.embed_text(paper.title)
                    texts.append(text)
                    spans.append(_spans(paper.title, sentences, text))
                    owners.append(n)
        self._fill(rows, texts, spans, owners)
        texts, spans, owners = [], [], []
        for n, sentences in enumerate(split):
            for text, window in _tails(rows[n].vectors, (papers[n].title, *sentences), self.embedder.count_tokens):
                texts.append(text)
                spans.append(window)
                owners.append(n)
        self._fill(rows, texts, spans, owners, last=True)
        return [r for r in rows if r is not None]

    def _fill(
        self,
        rows: list[Pooled | None],
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        owners: list[int],
        last: bool = False,
    ) -> None:
        """Pool the spans of texts (SPAN_BATCH per pass, by length) into their papers' empty rows, the first text
        holding a span whole winning (a paper's chunks in order, as at ingest); with `last`, a row still empty (a
        sentence longer than the model's window) is set to zeros: it matches nothing."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pooled: dict[int, Pooled] = {}
        for start in range(0, len(order), SPAN_BATCH):
            part = order[start : start + SPAN_BATCH]
            _, vectors = self.embedder.embed_spans([texts[i] for i in part], [spans[i] for i in part])
            pooled.update(zip(part, vectors, strict=True))
        for i in range(len(texts)):
            target = rows[owners[i]]
            assert target is not None
            merge_pooled(target, pooled[i])
        if last:
            for target in rows:
                if target is not None and np.isnan(target.vectors).any():
                    target.vectors[np.isnan(target.vectors).any(axis=1)] = 0.0

    def _save(self, entry: PaperSentences) -> None:
        """Write one paper's cache file; a failure only costs recomputation later."""
        path = self._path(entry.paper)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, sentences=np.array(entry.sentences, dtype=str), vectors=entry.vectors, states=entry.states,
                     state_scales=entry.state_scales, state_rows=entry.state_rows)  # fmt: skip
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot write sentence cache %s: %s", path, exc)


def _kept(store: OrderedDict[str, np.ndarray], key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """store[key], computed on a miss; the last QUERY_CACHE keys stay (the least recently used dropped first)."""
    cached = store.get(key)
    if cached is not None:
        store.move_to_end(key)
        return cached
    value = store[key] = compute()
    while len(store) > QUERY_CACHE:
        store.popitem(last=False)
    return value


def empty_pooled(rows: int) -> Pooled:
    """Nothing pooled yet for a paper's title and sentences: NaN vectors, no states."""
    return Pooled(np.full((rows, MINILM_DIMENSION), np.nan, dtype=np.float32),
                  [np.zeros((0, MINILM_DIMENSION), dtype=np.float32) for _ in range(rows)])  # fmt: skip


def merge_pooled(target: Pooled, found: Pooled) -> None:
    """Fill the rows of `target` still empty (NaN) with the rows `found` holds, and their piece states: the first
    pass to see a sentence whole gives its vector (a paper's chunks in order, at ingest and at question time alike)."""
    fill = np.isnan(target.vectors).any(axis=1) & ~np.isnan(found.vectors).any(axis=1)
    target.vectors[fill] = found.vectors[fill]
    for row in np.flatnonzero(fill):
        target.states[row] = found.states[row]


def _quantized(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows as int8 times a per-row scale (a quarter of the float32 size; a cosine moves by at most about 0.001)."""
    scales = np.abs(states).max(axis=1) / 127.0 if len(states) else np.zeros(0, dtype=np.float32)
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    return np.round(states / scales[:, None]).astype(np.int8), scales


def _spans(title: str, sentences: Sequence[str], text: str) -> list[tuple[int, int]]:
    """Spans of the title (at the start) and of each sentence found, in order, in an embedded text; (0, 0) for a
    sentence the text does not hold."""
    spans = [(0, len(title))] if text.startswith(title) else [(0, 0)]
    cursor = len(title)
    for sentence in sentences:
        at = text.find(sentence, cursor)
        if at < 0:
            spans.append((0, 0))
            continue
        spans.append((at, at + len(sentence)))
        cursor = at + len(sentence)
    return spans


def _tails(
    rows: np.ndarray | None, parts: Sequence[str], count: Callable[[str], int]
) -> list[tuple[str, list[tuple[int, int]]]]:
    """Texts of the parts (title, sentences) whose rows are still empty, consecutive ones packed up to TAIL_TOKENS
    word pieces per text, with every part's span in each text ((0, 0) for parts not in it)."""
    if rows is None:
        return []
    groups: list[list[int]] = []
    size = 0
    for i in (i for i in range(len(parts)) if np.isnan(rows[i]).any()):
        n = count(parts[i])
        if groups and groups[-1][-1] == i - 1 and size + n <= TAIL_TOKENS:
            groups[-1].append(i)
            size += n
        else:
            groups.append([i])
            size = n
    out = []
    for group in groups:
        text = " ".join(parts[j] for j in group)
        spans, at = [(0, 0)] * len(parts), 0
        for j in group:
            spans[j] = (at, at + len(parts[j]))
            at += len(parts[j]) + 1
        out.append((text, spans))
    return out
