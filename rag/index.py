"""`PaperIndex`: one named collection of papers, searchable densely (Chroma) and lexically (BM25), fused by RRF."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.bm25 import Bm25Index, Bm25Params
from rag.embeddings import embedder_id
from rag.errors import IndexStoreError, ModelError, QuestionError
from rag.retrieval import FusedPaper, Ranked, fuse, single
from rag.store import MODEL_KEY, STAMP_KEY, ChromaStore, chunk_metadata, head_id, paper_from_metadata, stamp_of
from rag.types import Chunk, Hit, IndexInfo, IngestSummary, Paper, SearchFilters, normalize_space

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from rag.settings import Settings

log = logging.getLogger(__name__)


class PaperIndex:
    """A named collection: ingest papers idempotently, search them hybrid/dense/BM25, list and count them."""

    def __init__(self, settings: Settings, embedder: BaseEmbedding, collection: str | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.name = collection or settings.collection
        self.model = embedder_id(embedder)
        self._store = ChromaStore(settings, self.name)
        self._store.collection()
        self._bm25: Bm25Index | None = None
        self._bm25_dir = settings.data_dir / "bm25" / self.name
        self._bm25_params = Bm25Params(settings.bm25_k1, settings.bm25_b, settings.bm25_title_repeats)

    # --- ingest -------------------------------------------------------------------------------------------
    def sync(
        self, papers: Sequence[Paper], prune: bool = False, duplicates_merged: int = 0, progress: bool = True
    ) -> IngestSummary:
        """Make the collection hold these papers: add new, replace changed, skip unchanged, prune the rest if asked."""
        from tqdm import tqdm

        started = time.perf_counter()
        self._store.collection(create=True, model=self.model)
        if self._store.count():
            self._check_model()
        wanted = _unique(papers)
        manifest = self._store.manifest()
        hashes = {pid: self._index_hash(p) for pid, p in wanted.items()}
        changed = [
            p
            for pid, p in wanted.items()
            if pid not in manifest or not manifest[pid].complete or manifest[pid].index_hash != hashes[pid]
        ]
        gone = [pid for pid in manifest if pid not in wanted] if prune else []
        stale_ids = [cid for p in changed if p.id in manifest for cid in manifest[p.id].chunk_ids]
        stale_ids += [cid for pid in gone for cid in manifest[pid].chunk_ids]
        added = sum(p.id not in manifest for p in changed)
        summary = dict(
            collection=self.name,
            added=added,
            updated=len(changed) - added,
            skipped=len(wanted) - len(changed),
            deleted=len(gone),
            duplicates_merged=duplicates_merged + len(papers) - len(wanted),
        )
        if not changed and not gone:
            return IngestSummary(**summary, seconds=time.perf_counter() - started)

        rows = [
            (paper, chunk, len(chunks))
            for paper in tqdm(changed, desc=f"chunking {self.name}", unit="paper", disable=not progress)
            for chunks in [self._chunks(paper)]
            for chunk in chunks
        ]
        vectors = self._embed([c.embed_text(p.title) for p, c, _ in rows], progress)  # all embedded before any write

        rewritten = {p.id for p in changed} | set(gone)
        kept = [(cid, e.index_hash) for pid, e in manifest.items() if pid not in rewritten for cid in e.chunk_ids]
        stamp = stamp_of(kept + [(c.id, hashes[p.id]) for p, c, _ in rows])
        try:
            # while writing, a stamp no BM25 index has: a reader then rebuilds BM25 from whatever Chroma holds
            self._store.set_meta(**{STAMP_KEY: f"writing-{uuid.uuid4().hex}", MODEL_KEY: self.model})
            self._store.delete(stale_ids)
            self._store.add(self._nodes(rows, vectors, hashes))
            self._store.set_meta(**{STAMP_KEY: stamp})
        except IndexStoreError as exc:
            raise IndexStoreError(
                f"{exc}; collection {self.name!r} may be partly written: run the same ingest again, "
                "it skips what is already there and repairs the rest"
            ) from exc
        self._refresh_bm25(stamp)
        return IngestSummary(**summary, chunks_written=len(rows), seconds=time.perf_counter() - started)

    def _index_hash(self, paper: Paper) -> str:
        """Hash of a paper's content and the chunking settings: a change in either means it is re-indexed."""
        key = f"{paper.content_hash}:{self.settings.chunk_tokens}:{self.settings.chunk_overlap_sentences}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def _embed(self, texts: list[str], progress: bool) -> np.ndarray:
        """Embed passages batch by batch, with a progress bar; any failure leaves the collection untouched."""
        from tqdm import tqdm

        batch = self.settings.embed_batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: less padding
        vectors: np.ndarray | None = None
        with tqdm(total=len(texts), desc=f"embedding {self.name}", unit="chunk", disable=not progress) as bar:
            for start in range(0, len(texts), batch):
                rows = order[start : start + batch]
                try:
                    part = np.asarray(
                        self.embedder.get_text_embedding_batch([texts[i] for i in rows]), dtype=np.float32
                    )
                except ModelError:
                    raise
                except Exception as exc:  # the OpenAI client raises its own error types
                    raise ModelError(
                        f"embedding with {self.model} failed: {exc}; nothing was written to {self.name!r}"
                    ) from exc
                if vectors is None:
                    vectors = np.empty((len(texts), part.shape[1]), dtype=np.float32)
                vectors[rows] = part
                bar.update(len(part))
        return vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)

    def _chunks(self, paper: Paper) -> list[Chunk]:
        """The paper's chunks; a paper without abstract text gets one empty chunk, so its title is still indexed."""
        from rag.chunking import chunk_paper

        chunks = chunk_paper(paper, self.settings.chunk_tokens, self.settings.chunk_overlap_sentences)
        return chunks or [Chunk(id=head_id(paper.id), paper_id=paper.id, index=0, text="", n_tokens=0)]

    def _nodes(
        self, rows: list[tuple[Paper, Chunk, int]], vectors: np.ndarray, hashes: dict[str, str]
    ) -> Iterator[Any]:
        """llama-index TextNodes carrying each chunk's text, flat metadata and embedding, built as they are written."""
        from llama_index.core.schema import TextNode

        for i, (paper, chunk, n_chunks) in enumerate(rows):
            meta = chunk_metadata(paper, chunk, n_chunks, hashes[paper.id])
            yield TextNode(id_=chunk.id, text=chunk.text, metadata=meta, embedding=vectors[i].tolist())

    # --- BM25 kept in step with Chroma ----------------------------------------------------------------------
    def _refresh_bm25(self, stamp: str) -> Bm25Index:
        """The BM25 index for the collection's current stamp: in memory, else on disk, else rebuilt from Chroma."""
        if self._bm25 is not None and self._bm25.stamp == stamp and self._bm25.params == self._bm25_params:
            return self._bm25
        loaded = Bm25Index.load(self._bm25_dir)
        if loaded is None or loaded.stamp != stamp or loaded.params != self._bm25_params:
            log.info("building the BM25 index of %r from Chroma", self.name)
            loaded = Bm25Index.build(self._store.scan(documents=True), stamp, self._bm25_params)
            loaded.save(self._bm25_dir)
        self._bm25 = loaded
        return loaded

    def _check_model(self) -> None:
        """Refuse to mix embedding models: the collection must have been built by this embedder."""
        built_with = self._store.meta().get(MODEL_KEY, "")
        if built_with and built_with != self.model:
            raise IndexStoreError(
                f"collection {self.name!r} was built with embeddings from {built_with}, but this run uses "
                f"{self.model}; use the same RAG_EMBEDDING/RAG_EMBEDDING_MODEL, or ingest into another collection"
            )

    # --- search -------------------------------------------------------------------------------------------
    def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[Hit]:
        """The k best papers for a query (best chunk each), fused from dense and BM25 per settings.retrieval."""
        mode = self.settings.retrieval
        dense, bm25 = self.rankings(query, max(self.settings.candidates, 2 * k), filters)
        if mode == "hybrid":
            s = self.settings
            ranked = fuse(dense, bm25, rrf_k=s.rrf_k, dense_weight=s.dense_weight, bm25_weight=s.bm25_weight)
        else:
            ranked = single(dense if mode == "dense" else bm25, dense=mode == "dense")
        return self._hits(ranked[:k])

    def rankings(self, query: str, depth: int, filters: SearchFilters | None = None) -> tuple[Ranked, Ranked]:
        """The dense and BM25 chunk rankings before fusion, `depth` each (empty for a mode that skips one)."""
        query = normalize_space(query)
        if not query:
            raise QuestionError("the search query is empty; type a question or some keywords")
        if self._store.collection() is None:
            raise IndexStoreError(
                f"collection {self.name!r} does not exist in Chroma at {self._store.location}; "
                f"ingest into it first (rag ingest --collection {self.name} FILE)"
            )
        self._check_model()
        mode = self.settings.retrieval
        dense: Ranked = []
        bm25: Ranked = []
        if mode != "bm25":
            try:
                embedding = self.embedder.get_query_embedding(query)
            except Exception as exc:  # the OpenAI client raises its own error types
                raise ModelError(f"embedding the query with {self.model} failed: {exc}") from exc
            dense = self._store.query(embedding, depth, filters)
        if mode != "dense":
            bm25 = self._refresh_bm25(str(self._store.meta().get(STAMP_KEY, ""))).search(query, depth, filters)
        return dense, bm25

    def _hits(self, ranked: list[FusedPaper]) -> list[Hit]:
        """Hit records for fused papers, read back from Chroma in one request."""
        if not ranked:
            return []
        rows = self._store.get(
            list(dict.fromkeys([f.chunk_id for f in ranked] + [head_id(f.paper_id) for f in ranked]))
        )
        hits = []
        for fused in ranked:
            chunk, head = rows.get(fused.chunk_id), rows.get(head_id(fused.paper_id))
            if chunk is None or head is None:  # deleted by a concurrent ingest since the search
                continue
            hits.append(
                Hit(
                    paper=paper_from_metadata(head.metadata),
                    chunk=chunk.chunk(),
                    score=fused.score,
                    rank=len(hits) + 1,
                    dense_score=fused.dense_score,
                    bm25_score=fused.bm25_score,
                )
            )
        return hits

    # --- listing ------------------------------------------------------------------------------------------
    def papers(self) -> list[Paper]:
        """Every paper of the collection, ordered by id."""
        if self._store.collection() is None:
            return []
        return sorted(
            (paper_from_metadata(row.metadata) for row in self._store.scan(where={"chunk_index": 0})),
            key=lambda p: p.id,
        )

    def is_empty(self) -> bool:
        """True when the collection does not exist or holds no chunk."""
        return self._store.collection() is None or self._store.count() == 0

    def info(self) -> IndexInfo:
        """Collection, paper and chunk counts, embedding model, data directory, Chroma location, collections."""
        exists = self._store.collection() is not None
        papers = sum(1 for _ in self._store.scan(where={"chunk_index": 0})) if exists else 0
        return IndexInfo(
            collection=self.name,
            papers=papers,
            chunks=self._store.count(),
            embedding_model=str(self._store.meta().get(MODEL_KEY) or self.model),
            data_dir=str(self.settings.data_dir),
            chroma=self._store.location,
            collections=tuple(self._store.collection_names()),
        )


def _unique(papers: Sequence[Paper]) -> dict[str, Paper]:
    """Papers by id, the first of any repeated id kept (loaders merge duplicates; this guards direct callers)."""
    unique: dict[str, Paper] = {}
    for paper in papers:
        if paper.id in unique:
            log.warning("paper id %r appears twice in one ingest: keeping the first", paper.id)
            continue
        unique[paper.id] = paper
    return unique
