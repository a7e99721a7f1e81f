"""Streaming, durable ingest into a PaperIndex: read, chunk, embed and commit one batch of papers at a time.

Per batch: announce its chunk ids (lexical `pending`), upsert them into Chroma, commit chunks + postings + manifest in
one lexical transaction (the moment readers see the batch), delete the chunks it replaced, settle, stamp Chroma.
A killed ingest keeps every committed batch; the next run first removes what an unfinished batch left in Chroma,
then embeds only the papers the manifest lacks. Memory holds one batch, plus the set of ids seen in this run.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.embeddings import MiniLMEmbedding, Pooled, compatible_model_ids, make_embedder
from rag.errors import CorpusError, ModelError
from rag.lexical import IndexedPaper
from rag.sentence_cache import SentenceCache, empty_pooled, merge_pooled
from rag.store import MODEL_KEY, STAMP_KEY, chunk_metadata, head_id
from rag.types import Chunk, EmbeddedPaper, IngestSummary, Paper

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.index import PaperIndex
    from rag.settings import Settings

log = logging.getLogger(__name__)

Row = tuple[Paper, Chunk, int]  # a paper, one of its chunks, and its chunk count


class Ingest:
    """One ingest run into an index whose writer lock the caller holds."""

    def __init__(self, index: PaperIndex, progress: bool, embedding_model_id: str = "") -> None:
        self.index = index
        self.settings = index.settings
        self.store = index.store
        self.lex = index.lexical(writer=True)
        self.progress = progress
        self.embedding_model_id = embedding_model_id
        self._embedder = _Embedder(index.embedder, index.settings)
        # sentence vectors pooled from the chunks' own passes (MiniLM): the first question need not embed them
        cache = SentenceCache.for_settings(index.embedder, index.settings)
        self._sentences = cache if cache.chunking is not None and self.settings.sentence_vectors_at_ingest else None
        self._dimension: int | None = None
        self.counts = dict(added=0, updated=0, skipped=0, deleted=0, duplicates_merged=0, chunks_written=0)

    def run(self, papers: Iterable[Paper], prune: bool, duplicates_merged: int) -> IngestSummary:
        """Ingest every paper batch by batch, prune if asked, repair the stamp; return what was done."""
        from tqdm import tqdm

        started = time.perf_counter()
        self.counts["duplicates_merged"] = duplicates_merged
        self._repair()
        seen: set[str] = set()
        total = len(papers) if isinstance(papers, Sequence) else None
        bar = tqdm(total=total, desc=f"ingesting {self.index.name}", unit=" papers", disable=not self.progress)
        try:
            for batch in _batches(self._unique(papers, seen), self.settings.ingest_batch_size):
                self._batch(batch)
                bar.update(len(batch))
        finally:
            bar.close()
            self._embedder.close()
        if prune:
            self._prune(seen)
        self._stamp()
        return IngestSummary(collection=self.index.name, **self.counts, seconds=time.perf_counter() - started)

    def _unique(self, papers: Iterable[Paper], seen: set[str]) -> Iterator[Paper]:
        """The papers, counting an id seen before in this run as merged: the later record wins, as in load_papers.

        A repeat inside one batch replaces the earlier record there (`_batch`); a repeat of an earlier batch's paper
        rewrites it when it differs.
        """
        for paper in papers:
            if paper.id in seen:
                log.debug("paper id %r appears again in this ingest: the later record wins", paper.id)
                self.counts["duplicates_merged"] += 1
            seen.add(paper.id)
            yield paper

    # --- repair ---------------------------------------------------------------------------------------------
    def _repair(self) -> None:
        """Undo what an unfinished batch left: drop Chroma rows no committed chunk names, rewrite half-written papers.

        A pending chunk whose paper is committed with the hash the batch announced was finished (only its settle was
        lost); one committed with another hash may hold uncommitted text in Chroma: its paper is written again.
        """
        pending = self.lex.pending()
        if not pending:
            return
        committed = self.lex.committed(list(pending))
        log.warning("repairing %r: %d chunk rows of an unfinished batch", self.index.name, len(pending))
        self.store.delete([c for c in pending if c not in committed])
        papers = {c.rsplit("#", 1)[0]: h for c, h in pending.items() if c in committed}
        manifest = self.lex.manifest(list(papers))
        self.lex.forget_hashes([p for p, h in papers.items() if p in manifest and manifest[p].index_hash != h])
        self.lex.settle(pending)

    def _stamp(self) -> None:
        """Record the lexical stamp (and model) in Chroma's metadata when it differs: any run repairs it."""
        stamp = self.lex.stamp()
        meta = self.store.meta()
        if stamp and (meta.get(STAMP_KEY) != stamp or not meta.get(MODEL_KEY)):
            self.store.set_meta(**{STAMP_KEY: stamp, MODEL_KEY: self.index.model})
            self.store.collection(refresh=True)

    # --- one batch ------------------------------------------------------------------------------------------
    def _batch(self, papers: list[Paper]) -> None:
        """Chunk, embed and commit the papers of one batch that are new or changed."""
        papers = list({p.id: p for p in papers}.values())  # an id repeated in the batch: its last record
        hashes = {p.id: self._index_hash(p) for p in papers}
        manifest = self.lex.manifest(list(hashes))
        changed = [p for p in papers if p.id not in manifest or manifest[p.id].index_hash != hashes[p.id]]
        self.counts["skipped"] += len(papers) - len(changed)
        if not changed:
            return
        chunked = {p.id: self._chunks(p) for p in changed}
        rows = [(p, c, len(chunked[p.id])) for p in changed for c in chunked[p.id]]
        n_chunks = {p.id: n for p, _, n in rows}
        vectors, pooled = self._vectors(rows, done=self.counts["added"] + self.counts["updated"])
        stale = [
            f"{p.id}#{i}" for p in changed if p.id in manifest for i in range(n_chunks[p.id], manifest[p.id].n_chunks)
        ]
        ids = [c.id for _, c, _ in rows]
        self.lex.announce({**dict.fromkeys(stale, ""), **{c.id: hashes[p.id] for p, c, _ in rows}})
        self.store.upsert(
            ids,
            vectors,
            [c.text for _, c, _ in rows],
            [chunk_metadata(p, c, n, hashes[p.id]) for p, c, n in rows],
        )
        self.lex.commit(
            [p.id for p in changed if p.id in manifest], [IndexedPaper(p, chunked[p.id], hashes[p.id]) for p in changed]
        )
        self.store.delete(stale)
        self.lex.settle(ids + stale)
        self._stamp()
        if self._sentences is not None and pooled:  # after the commit: a crash before it costs a pass later
            with_rows = [p for p in changed if p.id in pooled]
            self._sentences.add_pooled(with_rows, {(p.id, p.content_hash): pooled[p.id] for p in with_rows})
        added = sum(p.id not in manifest for p in changed)
        self.counts["added"] += added
        self.counts["updated"] += len(changed) - added
        self.counts["chunks_written"] += len(rows)

    def _index_hash(self, paper: Paper) -> str:
        """Hash of a paper's content and the chunking settings: a change in either means it is re-indexed."""
        key = f"{paper.content_hash}:{self.settings.chunk_tokens}:{self.settings.chunk_overlap_sentences}"
        if isinstance(paper, EmbeddedPaper):  # supplied vectors: one chunk, whatever the chunking settings
            key = f"{paper.content_hash}:supplied:{hashlib.sha256(paper.vector).hexdigest()[:16]}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def _chunks(self, paper: Paper) -> list[Chunk]:
        """The paper's chunks; a supplied vector covers the whole abstract (one chunk); an empty abstract one chunk."""
        from rag.chunking import chunk_paper
        from rag.tokens import count_tokens

        if isinstance(paper, EmbeddedPaper):
            return [Chunk(id=head_id(paper.id), paper_id=paper.id, index=0, text=paper.abstract,
                          n_tokens=count_tokens(paper.abstract))]  # fmt: skip
        chunks = chunk_paper(paper, self.settings.chunk_tokens, self.settings.chunk_overlap_sentences)
        return chunks or [Chunk(id=head_id(paper.id), paper_id=paper.id, index=0, text="", n_tokens=0)]

    # --- vectors --------------------------------------------------------------------------------------------
    def _vectors(self, rows: list[Row], done: int) -> tuple[np.ndarray, dict[str, Pooled]]:
        """One vector per row: supplied ones after a model and dimension check, the rest embedded longest-last; and
        the sentence vectors and piece states pooled from those passes, per paper (title row first; NaN for sentences
        not reached)."""
        vectors: np.ndarray | None = None
        pooled: dict[str, Pooled] = {}
        todo = [i for i, (p, _, _) in enumerate(rows) if not isinstance(p, EmbeddedPaper)]
        if todo:
            texts = [rows[i][1].embed_text(rows[i][0].title) for i in todo]
            spans = [self._sentences.pooled_inputs(rows[i][0], t) for i, t in zip(todo, texts, strict=True)] if (
                self._sentences is not None) else None  # fmt: skip
            try:
                embedded, span_vectors = self._embedder.embed(texts, spans)
            except ModelError:
                raise
            except Exception as exc:  # the OpenAI client raises its own error types
                raise ModelError(
                    f"embedding with {self.index.model} failed: {exc}; nothing was written to {self.index.name!r} "
                    f"for this batch ({done} papers of earlier batches are kept); run the same ingest again"
                ) from exc
            vectors = np.empty((len(rows), embedded.shape[1]), dtype=np.float32)
            vectors[todo] = embedded
            for i, found in zip(todo, span_vectors, strict=True) if span_vectors is not None else ():
                merge_pooled(pooled.setdefault(rows[i][0].id, empty_pooled(len(found.vectors))), found)
        for i, (paper, _, _) in enumerate(rows):
            if isinstance(paper, EmbeddedPaper):
                vector = self._supplied(paper)
                if vectors is None:
                    vectors = np.empty((len(rows), len(vector)), dtype=np.float32)
                vectors[i] = vector
        assert vectors is not None  # rows is never empty
        return vectors, pooled

    def _supplied(self, paper: EmbeddedPaper) -> np.ndarray:
        """A supplied vector, after checking its model matches the collection's and its dimension the embedder's."""
        where = paper.origin or f"paper {paper.id!r}"
        model = paper.embedding_model or self.embedding_model_id
        if not model:
            raise CorpusError(
                f"{where}: the record carries an embedding but no model id; add \"embedding_model\" to the record "
                "or pass --embedding-model-id"
            )
        accepted = compatible_model_ids(self.index.embedder)
        if model not in accepted:
            raise CorpusError(
                f"{where}: the embedding was made by {model!r}, but queries of collection {self.index.name!r} are "
                f"embedded by {self.index.model}; supply vectors from one of {sorted(accepted)} or let ingest embed"
            )
        vector = np.frombuffer(paper.vector, dtype="<f4")
        if self._dimension is None:
            self._dimension = len(self.index.embedder.get_query_embedding("dimension check"))
        if len(vector) != self._dimension:
            raise CorpusError(
                f"{where}: the embedding has {len(vector)} dimensions, {self.index.model} makes {self._dimension}"
            )
        return vector

    # --- prune ----------------------------------------------------------------------------------------------
    def _prune(self, seen: set[str]) -> None:
        """Delete the papers this run did not name."""
        gone = [pid for pid in self.lex.paper_ids() if pid not in seen]
        if not gone:
            return
        ids = self.lex.chunk_ids(gone)
        self.lex.announce(dict.fromkeys(ids, ""))
        self.lex.commit(gone, [])
        self.store.delete(ids)
        self.lex.settle(ids)
        self.counts["deleted"] = len(gone)


def _batches(papers: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    """Consecutive lists of `size` papers."""
    stream = iter(papers)
    while batch := list(itertools.islice(stream, size)):
        yield batch


class _Embedder:
    """Embeds texts sorted by length (less padding), in this process or in `ingest_workers` processes."""

    def __init__(self, embedder: Embedder, settings: Settings) -> None:
        self.embedder = embedder
        self.batch = settings.embed_batch_size
        self.workers = settings.ingest_workers
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None

    def embed(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None = None
    ) -> tuple[np.ndarray, list[Pooled] | None]:
        """Unit vectors of texts, in their order; with `spans` (MiniLM), also each text's spans pooled from its pass."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts = [
            ([texts[i] for i in order[s : s + self.batch]], [spans[i] for i in order[s : s + self.batch]] if spans
             else None)
            for s in range(0, len(texts), self.batch)
        ]  # fmt: skip
        if self.workers > 1:
            if self._pool is None:
                import multiprocessing

                threads = max(1, self.settings.embed_threads // self.workers)
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.settings.model_copy(update={"embed_threads": threads}),),
                )
            done = list(self._pool.map(_embed_in_worker, parts))
        else:
            done = [_embed_with(self.embedder, part) for part in parts]
        stacked = np.concatenate([v for v, _ in done]) if done else np.zeros((0, 0), dtype=np.float32)
        vectors = np.empty_like(stacked)
        vectors[order] = stacked
        if spans is None:
            return vectors, None
        at = dict(zip(order, (pooled for _, part in done for pooled in part or []), strict=True))
        return vectors, [at[i] for i in range(len(texts))]

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


Part = tuple[list[str], list[list[tuple[int, int]]] | None]  # texts, and the spans to pool from each (MiniLM)


def _embed_with(embedder: Any, part: Part) -> tuple[np.ndarray, list[Pooled] | None]:
    """Vectors of texts (MiniLM's own numpy path when available) and, when asked, their pooled spans."""
    texts, spans = part
    if isinstance(embedder, MiniLMEmbedding):
        if spans is not None:
            vectors, pooled = embedder.embed_spans(texts, spans)
            return vectors.astype(np.float32, copy=False), pooled
        return embedder.embed(texts).astype(np.float32, copy=False), None
    return np.asarray(embedder.get_text_embedding_batch(texts), dtype=np.float32), None


_WORKER: dict[str, Any] = {}


def _start_worker(settings: Settings) -> None:
    """Build the embedder once in a worker process."""
    _WORKER["embedder"] = make_embedder(settings)


def _embed_in_worker(part: Part) -> tuple[np.ndarray, list[Pooled] | None]:
    """Embed in a worker process."""
    return _embed_with(_WORKER["embedder"], part)
