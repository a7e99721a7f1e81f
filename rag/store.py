"""The Chroma side of a collection: client (with a request timeout for a server), collection, chunk rows, stamp."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from rag.errors import IndexStoreError
from rag.types import Chunk, Paper, SearchFilters

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

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
        "has_code": int(bool(paper.code_urls)),  # an int, as collections written before store it
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


def paper_of(chunk_id: str) -> str:
    """The paper id inside a chunk id '<paper id>#<chunk index>' (a paper id may itself hold '#')."""
    return chunk_id.rsplit("#", 1)[0]


def chroma_where(filters: SearchFilters | None) -> dict[str, Any] | None:
    """Chroma's `where` clause for our SearchFilters (None when unfiltered)."""
    if filters is None:
        return None
    parts: list[dict[str, Any]] = []
    if filters.has_code is not None:
        parts.append({"has_code": {"$eq": int(filters.has_code)}})
    if filters.year_min is not None:
        parts.append({"year": {"$gte": filters.year_min}})
    if filters.year_max is not None:
        parts.append({"year": {"$lte": filters.year_max}})
    if filters.source is not None:
        parts.append({"source": {"$eq": filters.source}})
    if filters.paper_ids is not None:
        parts.append({"paper_id": {"$in": list(filters.paper_ids) or [""]}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


class ChromaStore:
    """One named Chroma collection (embedded or on a `chroma run` server); the handle is opened once and reused.

    Server mode: Chroma itself serializes requests, but nothing stops two writers on two hosts from interleaving
    batches; the writer lock (rag/writelock.py) lives in the data directory, so ingests queue only when they share
    it. Run every ingest of a collection from one host (the one holding the lexical index).
    """

    def __init__(self, settings: Settings, name: str) -> None:
        self.name = name
        self.remote = bool(settings.chroma_url)
        self.location = settings.chroma_url if self.remote else f"embedded:{settings.data_dir / 'chroma'}"
        self.timeout = settings.chroma_timeout
        self._client = self._guard("open the Chroma store", lambda: _open_client(settings))
        self._collection: Collection | None = None
        self._batch = self._guard("ask Chroma its batch size", self._client.get_max_batch_size)

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """Run a Chroma call, turning any failure into an IndexStoreError that names the store."""
        try:
            return call()
        except IndexStoreError:
            raise
        except Exception as exc:  # chromadb and httpx raise many unrelated types for one failure
            hint = " (is the `chroma run` server up at that address?)" if self.remote else ""
            if "timed out" in str(exc).lower() or type(exc).__name__.endswith("Timeout"):
                hint = f" (no answer within {self.timeout:g}s, RAG_CHROMA_TIMEOUT: is the server overloaded or hung?)"
            if "failed to apply logs" in str(exc).lower():
                hint = (
                    " (Chroma's own files are damaged: a known Chroma bug when a process is killed while Chroma "
                    "flushes its vector index, chroma-core/chroma#7678; re-ingest into a new collection or data "
                    "directory, your source files are untouched)"
                )
            raise IndexStoreError(f"cannot {what} in Chroma at {self.location}{hint}: {exc}") from exc

    # --- collection ---------------------------------------------------------------------------------------
    def collection(self, create: bool = False, model: str = "", refresh: bool = False) -> Collection | None:
        """The collection, opened once and cached; created in cosine space when asked and missing.

        refresh=True refetches it (its metadata, i.e. the stamp, is then current).
        """
        if self._collection is not None and not refresh and not create:
            return self._collection
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
        return self._collection

    def collection_names(self) -> list[str]:
        """Names of every collection in this Chroma store, sorted."""
        return sorted(self._guard("list collections", lambda: [c.name for c in self._client.list_collections()]))

    def meta(self) -> dict[str, Any]:
        """The open collection's metadata (model and stamp) as last fetched."""
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

    def query(self, embedding: list[float], n: int, filters: SearchFilters | None) -> list[tuple[str, str, float]]:
        """Dense search: (chunk id, paper id, cosine similarity) of the n nearest chunks passing the filters.

        Chroma's own query (llama-index's ChromaVectorStore adds nothing here but its import time and node objects).
        Only distances are asked for: reading the metadata of the results back from Chroma cost four times the
        nearest-neighbour search itself (bench/retrieval.py), and a chunk id names its paper (`paper_of`).
        """
        coll = self._require()
        result = self._guard(
            f"search collection {self.name!r}",
            lambda: coll.query(
                query_embeddings=[embedding], n_results=n, where=chroma_where(filters), include=["distances"]
            ),
        )
        ids, distances = result["ids"][0], (result["distances"] or [[]])[0]
        # cosine space: distance = 1 - cosine similarity
        return [(cid, paper_of(cid), 1.0 - float(d)) for cid, d in zip(ids, distances, strict=True)]

    # --- writing ------------------------------------------------------------------------------------------
    def upsert(
        self, ids: Sequence[str], embeddings: Any, documents: Sequence[str], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        """Write chunk rows (insert or overwrite by id), in batches no larger than Chroma accepts.

        Upsert, not add: a re-run after a crash overwrites what a killed batch wrote.
        """
        coll = self._require()
        for start in range(0, len(ids), self._batch):
            end = start + self._batch
            self._guard(
                f"write to collection {self.name!r}",
                lambda s=start, e=end: coll.upsert(
                    ids=list(ids[s:e]), embeddings=embeddings[s:e], documents=list(documents[s:e]),
                    metadatas=list(metadatas[s:e]),
                ),
            )  # fmt: skip

    def delete(self, ids: Sequence[str]) -> None:
        """Delete chunk rows by id, in batches."""
        coll = self._require()
        for start in range(0, len(ids), self._batch):
            batch = list(ids[start : start + self._batch])
            self._guard(f"delete from collection {self.name!r}", lambda b=batch: coll.delete(ids=b))


def _open_client(settings: Settings) -> ClientAPI:
    """An embedded PersistentClient under data_dir/chroma, or an HttpClient for settings.chroma_url.

    chromadb's HttpClient sends every request with no timeout (a hung server would hang every search): the server
    is first probed with settings.chroma_timeout, then the client's HTTP session gets that timeout.
    """
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
    import httpx

    port = url.port or (443 if url.scheme == "https" else 8000)
    base = f"{url.scheme}://{url.hostname}:{port}"
    try:
        httpx.get(f"{base}/api/v2/heartbeat", timeout=settings.chroma_timeout).raise_for_status()
    except httpx.TimeoutException as exc:
        raise IndexStoreError(
            f"the Chroma server at {settings.chroma_url} did not answer within {settings.chroma_timeout:g}s "
            "(RAG_CHROMA_TIMEOUT); check that `chroma run` is healthy"
        ) from exc
    client = chromadb.HttpClient(host=url.hostname, port=port, ssl=url.scheme == "https", settings=chroma_settings)
    client._server._session.timeout = httpx.Timeout(settings.chroma_timeout)  # type: ignore[attr-defined]
    return client
