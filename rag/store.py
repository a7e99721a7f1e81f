"""The Chroma side of a collection: client, collection, chunk metadata, paper manifest and its stamp."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from rag.errors import IndexStoreError
from rag.types import Chunk, Paper, SearchFilters

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

STAMP_KEY = "rag_stamp"
MODEL_KEY = "rag_embedding_model"
READ_PAGE = 5000  # rows per `get` when scanning a whole collection

# Chroma metadata values must be str/int/float/bool: lists are stored as JSON strings, a missing year is omitted.
_HEAD_FIELDS = ("abstract", "url", "code_urls", "authors")


@dataclass(frozen=True)
class StoredChunk:
    """One chunk row as Chroma holds it: id, text and flat metadata."""

    id: str
    text: str
    metadata: dict[str, Any]

    @property
    def paper_id(self) -> str:
        """Id of the paper the chunk belongs to."""
        return str(self.metadata["paper_id"])

    def chunk(self) -> Chunk:
        """The Chunk record this row was written from."""
        m = self.metadata
        return Chunk(
            id=self.id, paper_id=self.paper_id, index=int(m["chunk_index"]), text=self.text, n_tokens=int(m["n_tokens"])
        )

    def embed_text(self) -> str:
        """The text that was embedded and is BM25-indexed: title, then the chunk."""
        return f"{self.metadata['title']}\n{self.text}"


def chunk_metadata(paper: Paper, chunk: Chunk, n_chunks: int, index_hash: str) -> dict[str, Any]:
    """Flat metadata of one chunk; the first chunk also carries the paper fields needed to rebuild the Paper."""
    meta: dict[str, Any] = {
        "paper_id": paper.id,
        "chunk_index": chunk.index,
        "n_chunks": n_chunks,
        "n_tokens": chunk.n_tokens,
        "index_hash": index_hash,
        "title": paper.title,
        "source": paper.source,
        "has_code": int(bool(paper.code_urls)),  # an int: llama-index MetadataFilter rejects bools
    }
    if paper.year is not None:
        meta["year"] = paper.year
    if chunk.index == 0:
        meta.update(
            abstract=paper.abstract,
            url=paper.url,
            code_urls=json.dumps(list(paper.code_urls)),
            authors=json.dumps(list(paper.authors)),
        )
    return meta


def paper_from_metadata(meta: dict[str, Any]) -> Paper:
    """Rebuild a Paper from the metadata of its first chunk."""
    year = meta.get("year")
    return Paper(
        id=str(meta["paper_id"]),
        title=str(meta["title"]),
        abstract=str(meta["abstract"]),
        url=str(meta.get("url", "")),
        code_urls=tuple(json.loads(meta.get("code_urls") or "[]")),
        source=str(meta.get("source", "")),
        year=int(year) if isinstance(year, int) and not isinstance(year, bool) else None,
        authors=tuple(json.loads(meta.get("authors") or "[]")),
    )


def head_id(paper_id: str) -> str:
    """Id of a paper's first chunk, the one holding the paper fields."""
    return f"{paper_id}#0"


@dataclass(frozen=True)
class PaperEntry:
    """What the collection holds for one paper: its chunk ids and the index hashes they were written with."""

    chunk_ids: tuple[str, ...]
    index_hash: str
    complete: bool


def stamp_of(rows: Sequence[tuple[str, str]]) -> str:
    """Stamp of a collection's content: a hash of its (chunk id, index hash) pairs, order-free."""
    digest = hashlib.sha256()
    for chunk_id, index_hash in sorted(rows):
        digest.update(f"{chunk_id}\x1f{index_hash}\n".encode())
    return digest.hexdigest()[:24]


def chroma_where(filters: SearchFilters | None) -> Any:
    """llama-index MetadataFilters for Chroma's `where` from our SearchFilters (None when unfiltered)."""
    if filters is None:
        return None
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

    parts: list[MetadataFilter] = []
    if filters.has_code is not None:
        parts.append(MetadataFilter(key="has_code", value=int(filters.has_code), operator="=="))
    if filters.year_min is not None:
        parts.append(MetadataFilter(key="year", value=filters.year_min, operator=">="))
    if filters.year_max is not None:
        parts.append(MetadataFilter(key="year", value=filters.year_max, operator="<="))
    if filters.source is not None:
        parts.append(MetadataFilter(key="source", value=filters.source, operator="=="))
    return MetadataFilters(filters=parts) if parts else None


class ChromaStore:
    """One named Chroma collection (embedded or on a `chroma run` server), read and written through llama-index."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.name = name
        self.remote = bool(settings.chroma_url)
        self.location = settings.chroma_url if self.remote else f"embedded:{settings.data_dir / 'chroma'}"
        self._client = self._guard("open the Chroma store", lambda: _open_client(settings))
        self._collection: Collection | None = None
        self._vector_store: ChromaVectorStore | None = None
        self._batch = self._guard("ask Chroma its batch size", self._client.get_max_batch_size)

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """Run a Chroma call, turning any failure into an IndexStoreError that names the store."""
        try:
            return call()
        except IndexStoreError:
            raise
        except Exception as exc:  # chromadb and httpx raise many unrelated types for one failure
            hint = " (is the `chroma run` server up at that address?)" if self.remote else ""
            raise IndexStoreError(f"cannot {what} in Chroma at {self.location}{hint}: {exc}") from exc

    # --- collection ---------------------------------------------------------------------------------------
    def collection(self, create: bool = False, model: str = "") -> Collection | None:
        """The collection (refetched, so its stamp is current); created in cosine space when asked and missing."""
        exists = self.name in self.collection_names()
        if create and not exists:
            self._collection = self._guard(
                f"open collection {self.name!r}",
                lambda: self._client.create_collection(
                    self.name,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={MODEL_KEY: model, STAMP_KEY: "empty"},
                    embedding_function=None,
                ),
            )
        elif exists:
            self._collection = self._guard(
                f"open collection {self.name!r}",
                lambda: self._client.get_collection(self.name, embedding_function=None),
            )
        else:
            self._collection = None
        self._vector_store = None
        return self._collection

    def collection_names(self) -> list[str]:
        """Names of every collection in this Chroma store, sorted."""
        return sorted(self._guard("list collections", lambda: [c.name for c in self._client.list_collections()]))

    def vector_store(self) -> ChromaVectorStore:
        """llama-index's ChromaVectorStore over the open collection."""
        if self._vector_store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._vector_store = ChromaVectorStore(chroma_collection=self._require())
        return self._vector_store

    def meta(self) -> dict[str, Any]:
        """The open collection's metadata (model and stamp)."""
        return dict(self._collection.metadata or {}) if self._collection is not None else {}

    def set_meta(self, **values: str) -> None:
        """Update keys of the collection's metadata."""
        coll = self._require()
        merged = {**self.meta(), **values}
        self._guard(f"update collection {self.name!r}", lambda: coll.modify(metadata=merged))

    def count(self) -> int:
        """Number of chunks in the collection (0 when it does not exist)."""
        coll = self._collection
        return 0 if coll is None else self._guard(f"count collection {self.name!r}", coll.count)

    def _require(self) -> Collection:
        """The open collection, or an IndexStoreError when it does not exist."""
        if self._collection is None:
            raise IndexStoreError(f"collection {self.name!r} does not exist in Chroma at {self.location}")
        return self._collection

    # --- reading ------------------------------------------------------------------------------------------
    def scan(self, documents: bool = False, where: dict[str, Any] | None = None) -> Iterator[StoredChunk]:
        """Every chunk row (metadata, and text when asked), page by page."""
        coll = self._require()
        include = ["metadatas", "documents"] if documents else ["metadatas"]
        offset = 0
        while True:
            page = self._guard(
                f"read collection {self.name!r}",
                lambda o=offset: coll.get(include=include, limit=READ_PAGE, offset=o, where=where),
            )
            texts = page.get("documents") or [""] * len(page["ids"])
            for cid, meta, text in zip(page["ids"], page["metadatas"], texts, strict=True):
                yield StoredChunk(cid, text or "", dict(meta or {}))
            if len(page["ids"]) < READ_PAGE:
                return
            offset += READ_PAGE

    def get(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunk rows by id (missing ids are simply absent)."""
        coll = self._require()
        page = self._guard(
            f"read collection {self.name!r}", lambda: coll.get(ids=list(ids), include=["metadatas", "documents"])
        )
        return {
            cid: StoredChunk(cid, text or "", dict(meta or {}))
            for cid, meta, text in zip(page["ids"], page["metadatas"], page["documents"], strict=True)
        }

    def manifest(self) -> dict[str, PaperEntry]:
        """What the collection holds per paper; a paper whose chunks are missing or mixed is marked incomplete."""
        rows: dict[str, list[StoredChunk]] = {}
        for row in self.scan():
            rows.setdefault(row.paper_id, []).append(row)
        manifest = {}
        for pid, chunks in rows.items():
            hashes = {str(c.metadata.get("index_hash")) for c in chunks}
            expected = {int(c.metadata.get("n_chunks", -1)) for c in chunks}
            complete = len(hashes) == 1 and expected == {len(chunks)}
            manifest[pid] = PaperEntry(tuple(sorted(c.id for c in chunks)), hashes.pop() if complete else "", complete)
        return manifest

    def query(self, embedding: list[float], n: int, filters: SearchFilters | None) -> list[tuple[str, str, float]]:
        """Dense search: (chunk id, paper id, cosine similarity) of the n nearest chunks passing the filters."""
        import math

        from llama_index.core.vector_stores.types import VectorStoreQuery

        store = self.vector_store()
        query = VectorStoreQuery(query_embedding=embedding, similarity_top_k=n, filters=chroma_where(filters))
        result = self._guard(f"search collection {self.name!r}", lambda: store.query(query))
        # ChromaVectorStore reports exp(-distance); in cosine space distance = 1 - cos, so cos = 1 + ln(score).
        return [
            (node.node_id, str(node.metadata["paper_id"]), 1.0 + math.log(score))
            for node, score in zip(result.nodes or [], result.similarities or [], strict=True)
        ]

    # --- writing ------------------------------------------------------------------------------------------
    def add(self, nodes: Iterable[Any]) -> None:
        """Add embedded TextNodes through ChromaVectorStore, in batches no larger than Chroma accepts."""
        store = self.vector_store()
        stream = iter(nodes)
        while batch := list(itertools.islice(stream, self._batch)):
            self._guard(f"write to collection {self.name!r}", lambda b=batch: store.add(b))

    def delete(self, ids: Sequence[str]) -> None:
        """Delete chunk rows by id, in batches."""
        store = self.vector_store()
        for start in range(0, len(ids), self._batch):
            batch = list(ids[start : start + self._batch])
            self._guard(f"delete from collection {self.name!r}", lambda b=batch: store.delete_nodes(node_ids=b))


def _open_client(settings: Settings) -> ClientAPI:
    """An embedded PersistentClient under data_dir/chroma, or an HttpClient for settings.chroma_url."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        path = settings.data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise IndexStoreError(f"chroma_url {settings.chroma_url!r} is not an http(s) URL like http://127.0.0.1:8000")
    port = url.port or (443 if url.scheme == "https" else 8000)
    return chromadb.HttpClient(host=url.hostname, port=port, ssl=url.scheme == "https", settings=chroma_settings)
