"""`PaperIndex`: one named collection of papers, searchable densely (Chroma) and lexically (BM25), fused by score.

Chroma holds vectors, texts and paper fields; the lexical index (rag/lexical.py, in the data directory) holds BM25
postings, a copy of the committed texts and paper fields, and is the commit log: a search shows only chunks it has
committed, so a reader never sees the two sides disagree while an ingest writes (rag/ingest.py), and reads its hits
from it. Chroma's metadata records the lexical stamp of the last batch; the lexical side can be rebuilt from Chroma.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from rag.embeddings import embedder_id
from rag.errors import IndexStoreError, ModelError, QuestionError
from rag.lexical import IndexedPaper, LexicalIndex
from rag.retrieval import FusedPaper, Ranked, fuse, single
from rag.store import MODEL_KEY, STAMP_KEY, ChromaStore, StoredChunk, paper_from_metadata
from rag.types import Hit, IndexInfo, IngestSummary, Paper, SearchFilters, normalize_space
from rag.writelock import writer_lock

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.settings import Settings

log = logging.getLogger(__name__)

REBUILD_BATCH = 2000  # chunks per lexical commit when rebuilding from Chroma
COMPACT_SHARE = 0.25  # an ingest that writes this share of the collection's chunks compacts the lexical file
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")  # Chroma's rule for collection names


class PaperIndex:
    """A named collection: ingest papers idempotently, search them hybrid/dense/BM25, list and count them."""

    def __init__(self, settings: Settings, embedder: Embedder, collection: str | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.name = collection or settings.collection
        if not _NAME.fullmatch(self.name):  # it also names files in the data dir: no separators, no leading dot
            raise IndexStoreError(
                f"collection name {self.name!r} is not valid: use 3-512 letters, digits, '.', '_' or '-', starting "
                "and ending with a letter or digit"
            )
        self.model = embedder_id(embedder)
        self.store = ChromaStore(settings, self.name)
        self.store.collection()
        self.lexical_path = settings.data_dir / "lexical" / f"{self.name}.sqlite"
        self._lexical: LexicalIndex | None = None
        self._in_step = False  # the lexical side was checked against Chroma's stamp by this process
        # a hybrid search runs BM25 here while the caller's thread embeds the query (see rankings)
        self._bm25_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bm25-{self.name}")

    # --- ingest -------------------------------------------------------------------------------------------
    def sync(
        self,
        papers: Iterable[Paper],
        prune: bool = False,
        duplicates_merged: int = 0,
        progress: bool = True,
        embedding_model_id: str = "",
    ) -> IngestSummary:
        """Make the collection hold these papers, batch by batch: add new, replace changed, skip unchanged, prune.

        Streams: papers may be a generator. Each finished batch is durable; a re-run after a crash embeds only what
        is missing. `embedding_model_id` names the model of supplied vectors (EmbeddedPaper) that do not say it.
        """
        from rag.ingest import Ingest

        with writer_lock(self.settings.data_dir, self.name):
            self.store.collection(create=True, model=self.model)
            if self.store.count():
                self.check_model()
            lex = self.lexical(writer=True)
            summary = Ingest(self, progress, embedding_model_id).run(papers, prune, duplicates_merged)
            if summary.chunks_written >= COMPACT_SHARE * lex.count()[1]:  # a bulk load: lay the postings out afresh
                lex.compact(progress)
            return summary

    def lexical(self, writer: bool = False) -> LexicalIndex:
        """The lexical index, checked once against Chroma's stamp and rebuilt from Chroma when out of step."""
        if self._lexical is None:
            self._lexical = LexicalIndex(self.lexical_path, self.settings.bm25_title_repeats)
        lex = self._lexical
        if not self._in_step or writer:
            if not self._agrees(lex):
                if writer:  # the caller holds the writer lock
                    self._rebuild(lex)
                else:
                    with writer_lock(self.settings.data_dir, self.name, wait=False) as held:
                        if not held:  # an ingest is writing: it brings both sides in step, search what is committed
                            return lex
                        self.store.collection(refresh=True)
                        if not self._agrees(lex):
                            self._rebuild(lex)
            self._in_step = True
        return lex

    def _agrees(self, lex: LexicalIndex) -> bool:
        """True when the lexical index holds what Chroma holds (same identity, same or later batch, same tokens)."""
        chroma = str(self.store.meta().get(STAMP_KEY, ""))
        mine = lex.stamp()
        if lex.stored_title_repeats() not in (None, self.settings.bm25_title_repeats) or not lex.current_schema():
            return False
        if chroma in ("", "empty"):
            return self.store.count() == 0 and lex.count() == (0, 0)
        ident, _, gen = chroma.partition(":")
        my_ident, _, my_gen = mine.partition(":")
        return bool(mine) and ident == my_ident and gen.isdigit() and int(my_gen) >= int(gen)

    def _rebuild(self, lex: LexicalIndex) -> None:
        """Rebuild the lexical index (and the paper manifest) from Chroma's rows; the caller holds the writer lock."""
        log.warning("rebuilding the lexical index of %r from Chroma (%d chunks)", self.name, self.store.count())
        lex.reset(self.settings.bm25_title_repeats)
        if self.store.collection() is None:
            return
        by_paper: dict[str, list[StoredChunk]] = {}
        ready: list[list[StoredChunk]] = []
        pending = 0
        for row in self.store.scan(documents=True):
            rows = by_paper.setdefault(row.paper_id, [])
            rows.append(row)
            if len(rows) == int(row.metadata.get("n_chunks", 1)):
                ready.append(by_paper.pop(row.paper_id))
                pending += len(rows)
            if pending >= REBUILD_BATCH:
                self._commit_stored(lex, ready)
                ready, pending = [], 0
        self._commit_stored(lex, ready)
        lex.compact()
        if by_paper:
            log.warning("%d papers of %r have missing chunks in Chroma: re-ingest them", len(by_paper), self.name)
        if self.store.collection() is not None and (stamp := lex.stamp()):
            self.store.set_meta(**{STAMP_KEY: stamp})

    @staticmethod
    def _commit_stored(lex: LexicalIndex, papers: list[list[StoredChunk]]) -> None:
        """Commit complete papers read back from Chroma to the lexical index (a paper whose chunks disagree on
        their index hash gets none, so the next ingest that names it rewrites it)."""
        indexed = []
        for rows in papers:
            rows = sorted(rows, key=lambda r: int(r.metadata.get("chunk_index", 0)))
            hashes = {str(r.metadata.get("index_hash", "")) for r in rows}
            paper = paper_from_metadata(rows[0].metadata)
            indexed.append(IndexedPaper(paper, [r.chunk() for r in rows], hashes.pop() if len(hashes) == 1 else ""))
        if indexed:
            lex.commit([], indexed)

    def check_model(self) -> None:
        """Refuse to mix embedding models: the collection must have been built by this embedder."""
        built_with = self.store.meta().get(MODEL_KEY, "")
        if built_with and built_with != self.model:
            raise IndexStoreError(
                f"collection {self.name!r} was built with embeddings from {built_with}, but this run uses "
                f"{self.model}; use the same RAG_EMBEDDING/RAG_EMBEDDING_MODEL, or ingest into another collection"
            )

    # --- search -------------------------------------------------------------------------------------------
    def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[Hit]:
        """The k best papers for a query (best chunk each), fused from dense and BM25 per settings.retrieval."""
        mode = self.settings.retrieval
        depth = max(self.settings.candidates, 2 * k)
        dense, bm25 = self.rankings(query, depth, filters)
        if mode == "hybrid":
            s = self.settings
            ranked = fuse(dense, bm25, dense_weight=s.dense_weight, bm25_weight=s.bm25_weight, limit=k, depth=depth)
        else:
            ranked = single(dense if mode == "dense" else bm25, dense=mode == "dense")[:k]
        return self._hits(ranked)

    def rankings(self, query: str, depth: int, filters: SearchFilters | None = None) -> tuple[Ranked, Ranked]:
        """The dense and BM25 chunk rankings before fusion, `depth` each (empty for a mode that skips one)."""
        query = normalize_space(query)
        if not query:
            raise QuestionError("the search query is empty; type a question or some keywords")
        if self.store.collection() is None and self.store.collection(refresh=True) is None:
            raise IndexStoreError(
                f"collection {self.name!r} does not exist in Chroma at {self.store.location}; "
                f"ingest into it first (rag ingest --collection {self.name} FILE)"
            )
        if not self._in_step:
            self.check_model()
        lex = self.lexical()
        mode, s = self.settings.retrieval, self.settings
        if mode == "dense":
            return self._dense(lex, query, depth, filters), []
        if mode == "bm25":
            return [], lex.search(query, depth, filters, s.bm25_k1, s.bm25_b)
        # BM25 does not need the query vector: it runs in a worker thread while this one embeds the query and asks
        # Chroma (onnxruntime releases the GIL), which took it off the critical path (about 1.5 ms a SciFact search)
        bm25 = self._bm25_worker.submit(lex.search, query, depth, filters, s.bm25_k1, s.bm25_b)
        return self._dense(lex, query, depth, filters), bm25.result()

    def _dense(self, lex: LexicalIndex, query: str, depth: int, filters: SearchFilters | None) -> Ranked:
        """The dense chunk ranking: embed the query, ask Chroma, keep the chunks the lexical index has committed."""
        try:
            embedding = self.embedder.get_query_embedding(query)
        except Exception as exc:  # the OpenAI client raises its own error types
            raise ModelError(f"embedding the query with {self.model} failed: {exc}") from exc
        found = self.store.query(embedding, depth, filters)
        shown = lex.committed([cid for cid, _, _ in found])  # rows of an unfinished batch stay hidden
        return [row for row in found if row[0] in shown]

    def _hits(self, ranked: list[FusedPaper]) -> list[Hit]:
        """Hit records for fused papers, their chunk and paper read from the lexical index's committed rows."""
        if not ranked:
            return []
        records = self.lexical().records([f.chunk_id for f in ranked])
        hits = []
        for fused in ranked:
            if fused.chunk_id not in records:  # deleted by a concurrent ingest since the search
                continue
            chunk, paper = records[fused.chunk_id]
            hits.append(
                Hit(
                    paper=paper,
                    chunk=chunk,
                    score=fused.score,
                    rank=len(hits) + 1,
                    dense_score=fused.dense_score,
                    bm25_score=fused.bm25_score,
                )
            )
        return hits

    # --- listing ------------------------------------------------------------------------------------------
    def get_papers(self, ids: Sequence[str]) -> list[Paper]:
        """The papers with these ids, in the order given (unknown ids are left out)."""
        if not ids or self.store.collection() is None:
            return []
        found = self.lexical().papers(ids)
        return [found[pid] for pid in ids if pid in found]

    def papers(self) -> list[Paper]:
        """Every committed paper of the collection, ordered by id (a batch still being written is left out)."""
        if self.store.collection(refresh=True) is None:
            return []
        return sorted(self.lexical().papers().values(), key=lambda p: p.id)

    def is_empty(self) -> bool:
        """True when the collection does not exist or holds no chunk."""
        return self.store.collection() is None or self.store.count() == 0

    def info(self) -> IndexInfo:
        """Collection, paper and chunk counts, embedding model, data directory, Chroma location, collections.

        The paper count is the lexical manifest's (a count query), not a scan of Chroma.
        """
        exists = self.store.collection(refresh=True) is not None
        papers = self.lexical().count()[0] if exists else 0
        return IndexInfo(
            collection=self.name,
            papers=papers,
            chunks=self.store.count(),
            embedding_model=str(self.store.meta().get(MODEL_KEY) or self.model),
            data_dir=str(self.settings.data_dir),
            chroma=self.store.location,
            collections=tuple(self.store.collection_names()),
        )
