"""The lexical side of a collection: BM25 over stemmed tokens, kept in SQLite beside Chroma, written batch by batch.

Chosen by measurement (bench/scale.py, evals/reports/scale.md): bm25s rebuilds its whole matrix on any change (minutes
at 1M chunks) and SQLite FTS5 fixes k1=1.2 and scores every match row by row; posting lists stored as numpy blobs per
(segment, term) in SQLite are transactional, append a segment per batch, merge in tiers, and score in milliseconds.
Keyed by segment first, a batch's postings go to the end of the table; keyed by term, each batch dirtied pages all over
the file, and those commits grew to most of a 1M ingest's time.

The database is also the collection's commit log: a batch is visible to readers once its transaction commits (chunk
rows, postings and the paper manifest together); Chroma rows that no committed chunk names are never shown. It keeps
the chunk texts and paper fields of what it committed, so a search reads its hits in the snapshot it ranked them in,
without a round trip to Chroma (reading ten rows back from Chroma took longer than the BM25 search itself).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from rag.errors import IndexStoreError
from rag.text import STOPWORDS, english_stemmer
from rag.types import Chunk, Paper, SearchFilters

log = logging.getLogger(__name__)
T = TypeVar("T")

_WORD = re.compile(r"(?u)\b\w\w+\b")  # the tokens bm25s indexes: words of two or more characters
NO_YEAR = np.iinfo(np.int32).min
FANOUT = 8  # segments of one level merged into one of the next
MAX_LEVEL = 3  # segments this big are never merged again: adding a batch never rewrites the whole index
SEARCH_MMAP_BYTES = 1 << 40  # the whole file (SQLite caps it, at 2 GiB in common builds); read pages only
TERM_STATS_KEPT = 100_000  # terms whose statistics a searcher keeps (a few MB)
LOOKUP_COST = 16  # a binary search costs about this many list entries filtered through a mask
PRUNE_MARGIN = 1e-3  # slack on the pruning bound, far above float32 rounding of BM25 sums
SCHEMA_VERSION = "3"  # an index written by another version is rebuilt from Chroma (rag/index.py)
_PAPER_FIELDS = ("title", "abstract", "url", "code_urls", "source", "year", "authors")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS papers(paper_id TEXT PRIMARY KEY, index_hash TEXT NOT NULL, n_chunks INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks(
    row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, paper_id TEXT NOT NULL, gen INTEGER NOT NULL,
    length INTEGER NOT NULL, year INTEGER, has_code INTEGER NOT NULL, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks(paper_id);
CREATE INDEX IF NOT EXISTS chunks_gen ON chunks(gen);
CREATE TABLE IF NOT EXISTS dead(row INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dead_gen ON dead(gen);
CREATE TABLE IF NOT EXISTS segments(seg INTEGER PRIMARY KEY, level INTEGER NOT NULL, docs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS postings(seg INTEGER NOT NULL, term TEXT NOT NULL, rows BLOB NOT NULL, tfs BLOB NOT NULL,
    PRIMARY KEY(seg, term)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending(chunk_id TEXT PRIMARY KEY, index_hash TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS texts(row INTEGER PRIMARY KEY, n_tokens INTEGER NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS paper_fields(paper_id TEXT PRIMARY KEY, fields TEXT NOT NULL);
"""
_TABLES = ("meta", "papers", "chunks", "dead", "segments", "postings", "pending", "texts", "paper_fields")


def tokenize(text: str) -> list[str]:
    """Lexical tokens of a text: lower-cased words of 2+ characters, English stop words dropped, Snowball-stemmed."""
    return english_stemmer().stemWords([w for w in _WORD.findall(text.lower()) if w not in STOPWORDS])


@dataclass(frozen=True)
class IndexedPaper:
    """One paper as a batch commits it: the paper, its chunks and the index hash it was written with."""

    paper: Paper
    chunks: Sequence[Chunk]
    index_hash: str


@dataclass(frozen=True)
class ManifestEntry:
    """What the collection holds for one paper: the index hash it was written with and its chunk count."""

    index_hash: str
    n_chunks: int


class LexicalIndex:
    """BM25 over one collection's chunks in a SQLite file; readers refresh incrementally, one writer at a time."""

    def __init__(self, path: Path, title_repeats: int) -> None:
        self.path = path
        self.title_repeats = title_repeats
        self._lock = threading.Lock()  # one connection shared by the threads of a chat app
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise IndexStoreError(
                f"cannot open the lexical index {path}: {exc}; check that the data directory is writable"
            ) from exc
        self._uuid = ""
        self._gen = -1
        self._mapped = False  # set by the first search; a writer that never searches keeps its memory small
        self._scattered: sqlite3.Connection | None = None  # see _rows_reader
        self._clear_columns()

    def _clear_columns(self) -> None:
        """Forget the in-memory per-row columns (they are reloaded from the database)."""
        self._alive = np.zeros(0, dtype=bool)
        self._n_docs, self._avgdl = 0, 1.0  # committed chunks and their mean length, for BM25
        self._rows = 0  # rows ever committed: alive ones plus dead ones
        self._dead = np.zeros(0, dtype=np.int64)  # the dead ones, ascending
        self._term_stats: dict[str, tuple[int, int]] = {}  # term -> live document frequency, highest term count
        self._norm_key: tuple[int, float, float] | None = None
        self._norm, self._shortest = np.zeros(0, dtype=np.float32), 0.0
        self._length = np.zeros(0, dtype=np.float32)
        self._year = np.zeros(0, dtype=np.int32)
        self._has_code = np.zeros(0, dtype=bool)
        self._source = np.zeros(0, dtype=np.int32)
        self._sources: dict[str, int] = {}

    # --- state --------------------------------------------------------------------------------------------
    def _meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, **values: str | int) -> None:
        self._db.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    def stamp(self) -> str:
        """'<uuid>:<generation>' of the committed content ('' for a never-written index); Chroma records it too."""
        with self._lock:
            ident, gen = self._meta("uuid"), self._meta("gen", "0")
        return f"{ident}:{gen}" if ident else ""

    def stored_title_repeats(self) -> int | None:
        """The title repetition the stored tokens were built with (None for a never-written index)."""
        with self._lock:
            value = self._meta("title_repeats")
        return int(value) if value else None

    def current_schema(self) -> bool:
        """True when the index was written by this version's schema, or never written."""
        with self._lock:
            return self._meta("schema") == SCHEMA_VERSION or not self._meta("uuid")

    def count(self) -> tuple[int, int]:
        """(papers, chunks) committed."""
        with self._lock:
            papers = self._db.execute("SELECT count(*) FROM papers").fetchone()[0]
            chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(papers), int(chunks)

    def _refresh(self) -> None:
        """Bring the in-memory columns (alive, length, filters) up to the committed generation, incrementally."""
        ident, gen = self._meta("uuid"), int(self._meta("gen", "0"))
        if ident != self._uuid:  # first open, or the index was rebuilt: load everything
            self._uuid, self._gen = ident, -1
            self._clear_columns()
        if gen == self._gen:
            return
        new = self._db.execute(
            "SELECT row, length, coalesce(year, ?), has_code, source FROM chunks WHERE gen > ?", (NO_YEAR, self._gen)
        ).fetchall()
        dead = [r for (r,) in self._db.execute("SELECT row FROM dead WHERE gen > ?", (self._gen,))]
        top = max([r[0] for r in new] + dead + [len(self._alive) - 1]) + 1
        self._grow(top)
        if new:
            rows, length, year, has_code, source = zip(*new, strict=True)
            idx = np.asarray(rows, dtype=np.int64)
            self._alive[idx] = True
            self._length[idx] = length
            self._year[idx] = year
            self._has_code[idx] = has_code
            self._source[idx] = [self._sources.setdefault(s, len(self._sources)) for s in source]
        if dead:
            self._alive[np.asarray(dead, dtype=np.int64)] = False
        self._rows = max(self._rows, top)
        self._dead = np.flatnonzero(~self._alive[: self._rows])
        self._term_stats.clear()
        self._n_docs = int(self._alive.sum())
        self._avgdl = float(self._length[self._alive].mean()) if self._n_docs else 1.0
        self._gen = gen

    def _grow(self, size: int) -> None:
        """Make the per-row columns at least `size` long (with headroom)."""
        if size <= len(self._alive):
            return
        size = max(size, int(len(self._alive) * 1.25) + 1024)
        for name in ("_alive", "_length", "_year", "_has_code", "_source"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    # --- search -------------------------------------------------------------------------------------------
    def search(
        self, query: str, n: int, filters: SearchFilters | None, k1: float, b: float
    ) -> list[tuple[str, str, float]]:
        """(chunk id, paper id, BM25 score) of the n best chunks passing the filters; zero scores dropped.

        Lucene's BM25 (as bm25s 'lucene'): idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part tf / (tf + k1 (1 - b +
        b dl / avgdl)); N, df and avgdl count the committed chunks only.
        """
        terms = list(dict.fromkeys(tokenize(query)))
        if not terms or n <= 0:
            return []
        with self._lock:
            try:
                if not self._mapped:  # searching reads posting blobs over and over: map the file instead of copying
                    self._db.execute(f"PRAGMA mmap_size={SEARCH_MMAP_BYTES}")
                    self._mapped = True
                self._db.execute("BEGIN")  # one snapshot for the columns, the postings and the names
                try:
                    self._refresh()
                    segs = [s for (s,) in self._db.execute("SELECT seg FROM segments")]
                    postings = [self._postings(t, segs) for t in terms]
                    keep = self._mask(filters)
                    best, scores = self._best(terms, postings, keep, k1, b, n)
                    names = self._names(best)
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise IndexStoreError(
                    f"cannot read the lexical index {self.path}: {exc}; check the data directory (a re-run of the "
                    "ingest rebuilds a damaged index from Chroma if you delete this file)"
                ) from exc
        return [(*names[int(r)], float(x)) for r, x in zip(best, scores, strict=True) if int(r) in names]

    def _postings(self, term: str, segs: list[int]) -> list[tuple[bytes, bytes]]:
        """A term's posting blobs, one per segment holding it (a point lookup per segment)."""
        sql = f"SELECT rows, tfs FROM postings WHERE seg IN ({','.join('?' * len(segs))}) AND term = ?"
        return self._db.execute(sql, [*segs, term]).fetchall()

    def _mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Rows that are committed and pass the filters; None when that is every row a posting names."""
        if filters is None or filters == SearchFilters():
            return None if self._rows == self._n_docs else self._alive.copy()
        keep = self._alive.copy()
        if filters.has_code is not None:
            keep &= self._has_code == filters.has_code
        if filters.year_min is not None:
            keep &= (self._year != NO_YEAR) & (self._year >= filters.year_min)
        if filters.year_max is not None:
            keep &= (self._year != NO_YEAR) & (self._year <= filters.year_max)
        if filters.source is not None:
            keep &= self._source == self._sources.get(filters.source, -1)
        if filters.paper_ids is not None:
            only = np.zeros_like(keep)
            only[self._rows_of(filters.paper_ids)] = True
            keep &= only
        return keep

    def _rows_of(self, paper_ids: Sequence[str]) -> np.ndarray:
        """Rows of the chunks of these papers."""
        rows: list[int] = []
        for start in range(0, len(paper_ids), 500):
            part = list(paper_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows += [r for (r,) in self._db.execute(f"SELECT row FROM chunks WHERE paper_id IN ({marks})", part)]
        return np.asarray(rows, dtype=np.int64)

    def _best(
        self,
        terms: list[str],
        postings: list[list[tuple[bytes, bytes]]],
        keep: np.ndarray | None,
        k1: float,
        b: float,
        n: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the n best BM25 scores among the rows passing `keep` (best first, ties by row), and the scores.

        MaxScore (Turtle and Flood, 1995), exact: terms are added rarest first, and the n best rows so far are kept
        (a row's score changes only when the term at hand holds it, so the new n best are among the old ones and the
        term's own n best). A term adds at most idf * tf_max / (tf_max + shortest norm) to a row; once the terms left
        can add less than the n-th best score so far, only rows already that close to it are scored further: they
        are looked up in the frequent terms' posting lists (binary search) instead of those lists being scored whole.
        """
        scores = np.zeros(len(self._alive), dtype=np.float32)
        best = np.zeros(0, dtype=np.int64)
        if self._n_docs == 0:
            return best, scores[best]
        norm, shortest = self._norms(k1, b)
        scored: list[tuple[float, float, list[tuple[np.ndarray, np.ndarray]]]] = []
        for term, blobs in zip(terms, postings, strict=True):
            parts = [(np.frombuffer(r, dtype=np.int32), np.frombuffer(t, dtype=np.uint16)) for r, t in blobs]
            df, tf_max = self._stats(term, parts)
            if df:
                idf = math.log(1 + (self._n_docs - df + 0.5) / (df + 0.5))
                scored.append((idf, idf * tf_max / (tf_max + shortest), parts))
        scored.sort(key=lambda term: -term[0])
        left = sum(bound for _, bound, _ in scored)  # the most the terms not yet added can add to a row
        near: np.ndarray | None = None  # once pruning starts: the rows that can still reach the n best, ascending
        mask: np.ndarray | None = None  # the same rows as a mask over all rows, made when a long list needs it
        for idf, bound, parts in scored:
            left -= bound
            if near is None:
                rows = np.concatenate([r for r, _ in parts])
                tfs = np.concatenate([t for _, t in parts])
                if keep is not None:
                    ok = keep[rows]
                    rows, tfs = rows[ok], tfs[ok]
                tf = tfs.astype(np.float32)
                scores[rows] += idf * tf / (tf + norm[rows])
                best = _top(scores, np.union1d(best, _top(scores, rows, n)), n)
            else:
                for r, t in parts:
                    if len(near) * LOOKUP_COST < len(r):  # a few near rows: binary-search them in the list
                        found, at = _lookup(r, near)
                        rows, tfs = near[found], t[at]
                    else:  # many: filter the list through a mask of them
                        if mask is None:
                            mask = np.zeros(len(scores), dtype=bool)
                            mask[near] = True
                        ok = mask[r]
                        rows, tfs = r[ok], t[ok]
                    tf = tfs.astype(np.float32)
                    scores[rows] += idf * tf / (tf + norm[rows])
                best = _top(scores, near, n)
            # rows further than `left` below the n-th best cannot reach it; the margin covers float rounding
            cut = scores[best].min() - left * (1 + PRUNE_MARGIN) - PRUNE_MARGIN if len(best) >= n else 0.0
            if cut > 0 and near is None:
                near = np.flatnonzero(scores >= cut)
            elif cut > 0:
                gone = scores[near] < cut
                if mask is not None:
                    mask[near[gone]] = False
                near = near[~gone]
        best = best[np.lexsort((best, -scores[best]))][:n]
        return best, scores[best]

    def _stats(self, term: str, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
        """A term's live document frequency and highest term count, kept until the next generation (the frequent
        terms of one query come back in the next, and counting their live rows reads every posting)."""
        found = self._term_stats.get(term)
        if found is None:
            found = (sum(self._live(r) for r, _ in parts), max((int(t.max()) for _, t in parts if len(t)), default=0))
            if len(self._term_stats) >= TERM_STATS_KEPT:
                self._term_stats.clear()
            self._term_stats[term] = found
        return found

    def _live(self, rows: np.ndarray) -> int:
        """How many of a posting list's (ascending) rows are alive: postings keep the rows of deleted chunks."""
        if not len(self._dead) or not len(rows):
            return len(rows)
        if len(self._dead) * LOOKUP_COST < len(rows):  # few deletions: find them in the list
            return len(rows) - int(np.count_nonzero(_lookup(rows, self._dead)[0]))
        return int(np.count_nonzero(self._alive[rows]))

    def _norms(self, k1: float, b: float) -> tuple[np.ndarray, float]:
        """BM25's length normalisation k1 (1 - b + b dl / avgdl) per row and its smallest value over live rows.

        Kept until the generation, k1 or b change.
        """
        key = (self._gen, k1, b)
        if self._norm_key != key:
            self._norm = (k1 * (1 - b + b * self._length / (self._avgdl or 1.0))).astype(np.float32)
            self._shortest = float(self._norm[self._alive].min()) if self._n_docs else k1
            self._norm_key = key
        return self._norm, self._shortest

    def _names(self, rows: np.ndarray) -> dict[int, tuple[str, str]]:
        """(chunk id, paper id) of rows."""
        if len(rows) == 0:
            return {}
        marks = ",".join("?" * len(rows))
        found = self._db.execute(f"SELECT row, chunk_id, paper_id FROM chunks WHERE row IN ({marks})", rows.tolist())
        return {int(r): (c, p) for r, c, p in found}

    def records(self, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, Paper]]:
        """The committed chunks with these ids, each with its paper, read in one snapshot (absent ids are left out)."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        sql = (
            "SELECT c.chunk_id, c.paper_id, t.n_tokens, t.text, f.fields FROM chunks c JOIN texts t USING(row) "
            f"JOIN paper_fields f USING(paper_id) WHERE c.chunk_id IN ({marks})"
        )
        with self._lock:
            rows = self._read(lambda: self._rows_reader().execute(sql, list(chunk_ids)).fetchall())
        return {
            cid: (Chunk(id=cid, paper_id=pid, index=_chunk_index(cid), text=text, n_tokens=n), _paper(pid, fields))
            for cid, pid, n, text, fields in rows
        }

    def papers(self, paper_ids: Sequence[str] | None = None) -> dict[str, Paper]:
        """Committed papers by id: these ones (absent ids left out), or every one when None."""
        if paper_ids is None:
            with self._lock:
                found = self._read(lambda: self._db.execute("SELECT paper_id, fields FROM paper_fields").fetchall())
            return {p: _paper(p, f) for p, f in found}
        papers: dict[str, Paper] = {}
        with self._lock:
            for start in range(0, len(paper_ids), 500):
                part = list(paper_ids[start : start + 500])
                sql = f"SELECT paper_id, fields FROM paper_fields WHERE paper_id IN ({','.join('?' * len(part))})"
                found = self._read(lambda s=sql, a=part: self._rows_reader().execute(s, a).fetchall())
                papers.update({p: _paper(p, f) for p, f in found})
        return papers

    def _rows_reader(self) -> sqlite3.Connection:
        """A second connection, never memory-mapped, for reading rows scattered over the file (a search's hits and
        their papers). The search's own connection maps the file to read posting blobs without copying them; but
        on a cold page cache each random row read through the map faulted for tens of milliseconds (ten hits of a 1M
        collection: 50-150 ms mapped, 3-5 ms read; bench/scale.py's first queries). Call under the lock."""
        if self._scattered is None:
            try:
                self._scattered = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            except sqlite3.Error as exc:
                raise IndexStoreError(f"cannot open the lexical index {self.path}: {exc}") from exc
        return self._scattered

    def _read(self, call: Callable[[], T]) -> T:
        """Run a read, turning a sqlite error into an IndexStoreError naming the file."""
        try:
            return call()
        except sqlite3.Error as exc:
            raise IndexStoreError(
                f"cannot read the lexical index {self.path}: {exc}; check the data directory (a re-run of the "
                "ingest rebuilds a damaged index from Chroma if you delete this file)"
            ) from exc

    def committed(self, chunk_ids: Sequence[str]) -> set[str]:
        """The chunk ids, among these, of committed chunks (what a reader may show)."""
        if not chunk_ids:
            return set()
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            sql = f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})"
            return {c for (c,) in self._read(lambda: self._rows_reader().execute(sql, list(chunk_ids)).fetchall())}

    # --- manifest -----------------------------------------------------------------------------------------
    def manifest(self, paper_ids: Sequence[str]) -> dict[str, ManifestEntry]:
        """The committed entries of these papers (absent ones are not in the collection)."""
        entries: dict[str, ManifestEntry] = {}
        with self._lock:
            for start in range(0, len(paper_ids), 500):
                part = list(paper_ids[start : start + 500])
                marks = ",".join("?" * len(part))
                sql = f"SELECT paper_id, index_hash, n_chunks FROM papers WHERE paper_id IN ({marks})"
                entries.update({p: ManifestEntry(h, n) for p, h, n in self._db.execute(sql, part)})
        return entries

    def paper_ids(self) -> Iterable[str]:
        """Every committed paper id (read in one snapshot)."""
        with self._lock:
            return [p for (p,) in self._db.execute("SELECT paper_id FROM papers")]

    def chunk_ids(self, paper_ids: Sequence[str]) -> list[str]:
        """Committed chunk ids of these papers."""
        ids: list[str] = []
        with self._lock:
            for start in range(0, len(paper_ids), 500):
                part = list(paper_ids[start : start + 500])
                marks = ",".join("?" * len(part))
                sql = f"SELECT chunk_id FROM chunks WHERE paper_id IN ({marks})"
                ids += [c for (c,) in self._db.execute(sql, part)]
        return ids

    # --- writing (the caller holds the collection's writer lock) --------------------------------------------
    def pending(self) -> dict[str, str]:
        """Chunk ids a batch announced but did not settle (Chroma may hold rows for them), with their index hash."""
        with self._lock:
            return dict(self._db.execute("SELECT chunk_id, index_hash FROM pending"))

    def announce(self, chunks: dict[str, str]) -> None:
        """Record, before Chroma is written, the chunk ids a batch will write (with their index hash) or delete ('')."""
        with self._lock, self._write():
            self._db.executemany(
                "INSERT OR REPLACE INTO pending(chunk_id, index_hash) VALUES (?, ?)", list(chunks.items())
            )

    def settle(self, chunk_ids: Iterable[str]) -> None:
        """Forget pending chunk ids once Chroma agrees with the committed state for them."""
        with self._lock, self._write():
            self._db.executemany("DELETE FROM pending WHERE chunk_id = ?", [(c,) for c in chunk_ids])

    def forget_hashes(self, paper_ids: Iterable[str]) -> None:
        """Clear papers' index hashes so the next ingest that names them rewrites them."""
        with self._lock, self._write():
            self._db.executemany("UPDATE papers SET index_hash = '' WHERE paper_id = ?", [(p,) for p in paper_ids])

    def commit(self, remove: Sequence[str], papers: Sequence[IndexedPaper]) -> str:
        """One batch in one transaction: drop the papers in `remove`, add papers (chunks, postings, manifest rows).

        Returns the new stamp. Readers see the whole batch or none of it.
        """
        with self._lock, self._write():
            ident = self._meta("uuid") or uuid.uuid4().hex
            gen = int(self._meta("gen", "0")) + 1
            self._drop(remove, gen)
            next_row = int(self._meta("next_row", "0"))
            postings: dict[str, list[tuple[int, int]]] = {}
            records, texts = [], []
            for item in papers:
                p = item.paper
                for chunk in item.chunks:
                    row = next_row + len(records)
                    counts = Counter(tokenize(" ".join([p.title] * self.title_repeats + [chunk.text])))
                    for term, tf in counts.items():
                        postings.setdefault(term, []).append((row, tf))
                    records.append(
                        (row, chunk.id, p.id, gen, sum(counts.values()), p.year, int(bool(p.code_urls)), p.source)
                    )
                    texts.append((row, chunk.n_tokens, chunk.text))
            self._db.executemany(
                "INSERT INTO chunks(row, chunk_id, paper_id, gen, length, year, has_code, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                records,
            )
            self._db.executemany("INSERT INTO texts(row, n_tokens, text) VALUES (?, ?, ?)", texts)
            if records:
                self._add_segment(0, len(records), postings)
            self._db.executemany(
                "INSERT INTO papers(paper_id, index_hash, n_chunks) VALUES (?, ?, ?) ON CONFLICT(paper_id) "
                "DO UPDATE SET index_hash = excluded.index_hash, n_chunks = excluded.n_chunks",
                [(i.paper.id, i.index_hash, len(i.chunks)) for i in papers],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO paper_fields(paper_id, fields) VALUES (?, ?)",
                [(i.paper.id, json.dumps([getattr(i.paper, f) for f in _PAPER_FIELDS])) for i in papers],
            )
            self._set_meta(
                uuid=ident, gen=gen, next_row=next_row + len(records), title_repeats=self.title_repeats,
                schema=SCHEMA_VERSION,
            )  # fmt: skip
        self._merge()
        return f"{ident}:{gen}"

    def _drop(self, paper_ids: Sequence[str], gen: int) -> None:
        """Delete papers and their chunks (their rows are marked dead for readers); inside a write transaction."""
        for start in range(0, len(paper_ids), 500):
            part = list(paper_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = [r for (r,) in self._db.execute(f"SELECT row FROM chunks WHERE paper_id IN ({marks})", part)]
            self._db.executemany("INSERT OR REPLACE INTO dead(row, gen) VALUES (?, ?)", [(r, gen) for r in rows])
            self._db.executemany("DELETE FROM texts WHERE row = ?", [(r,) for r in rows])
            self._db.execute(f"DELETE FROM chunks WHERE paper_id IN ({marks})", part)
            self._db.execute(f"DELETE FROM papers WHERE paper_id IN ({marks})", part)
            self._db.execute(f"DELETE FROM paper_fields WHERE paper_id IN ({marks})", part)

    def _add_segment(self, level: int, docs: int, postings: dict[str, list[tuple[int, int]]]) -> None:
        """Write one segment: per term, the rows holding it (ascending int32) and their term counts (uint16)."""
        seg = self._db.execute("INSERT INTO segments(level, docs) VALUES (?, ?) RETURNING seg", (level, docs))
        seg_id = seg.fetchone()[0]
        self._db.executemany(
            "INSERT INTO postings(seg, term, rows, tfs) VALUES (?, ?, ?, ?)",
            (
                (seg_id, term, arr[:, 0].astype(np.int32).tobytes(),
                 np.minimum(arr[:, 1], 65535).astype(np.uint16).tobytes())
                for term, pairs in sorted(postings.items())
                for arr in [np.array(pairs, dtype=np.int64)]
            ),
        )  # fmt: skip

    def _merge(self) -> None:
        """Merge FANOUT segments of a level into one of the next level, up to MAX_LEVEL (a short transaction each)."""
        for level in range(MAX_LEVEL):
            with self._lock:
                found = self._db.execute("SELECT seg FROM segments WHERE level = ? ORDER BY seg", (level,))
                segs = [s for (s,) in found]
            if len(segs) < FANOUT:
                continue
            with self._lock, self._write():
                marks = ",".join("?" * len(segs))
                merged: dict[str, tuple[list[bytes], list[bytes]]] = {}
                for term, rows, tfs in self._db.execute(
                    f"SELECT term, rows, tfs FROM postings WHERE seg IN ({marks})", segs
                ):
                    parts = merged.setdefault(term, ([], []))
                    parts[0].append(rows)
                    parts[1].append(tfs)
                docs = self._db.execute(f"SELECT sum(docs) FROM segments WHERE seg IN ({marks})", segs).fetchone()[0]
                self._db.execute(f"DELETE FROM postings WHERE seg IN ({marks})", segs)
                self._db.execute(f"DELETE FROM segments WHERE seg IN ({marks})", segs)
                seg = self._db.execute(
                    "INSERT INTO segments(level, docs) VALUES (?, ?) RETURNING seg", (level + 1, docs)
                ).fetchone()[0]
                self._db.executemany(
                    "INSERT INTO postings(seg, term, rows, tfs) VALUES (?, ?, ?, ?)",
                    ((seg, term, *_sorted_join(r, t)) for term, (r, t) in sorted(merged.items())),
                )
            log.debug("merged %d lexical segments of level %d", len(segs), level)

    def compact(self, progress: bool = False) -> bool:
        """Rewrite the file in key order (SQLite VACUUM), after a bulk load; False (logged) when that failed.

        Merges write new segments into the pages older ones freed, so a segment's postings end up scattered over the
        file and a search that is not in the page cache reads them page by page: on 1M abstracts, a cold search's
        p50 / p95 went from 38 / 89 to 19 / 51 ms after compaction. Needs free disk about twice the file's size while
        it runs (a copy and, in WAL mode, the write-ahead log); readers keep reading their snapshot. A failure leaves
        the index as it was, committed and usable, so it does not fail the ingest that asked for it.
        """
        from tqdm import tqdm

        started = time.perf_counter()
        # SQLite does not tell how far a VACUUM is (it copies whole tables in single steps): the line shows the time
        # it has taken so far, refreshed by a timer thread
        bar = tqdm(desc=f"compacting {self.path.name}", bar_format="{desc}: {elapsed}", disable=not progress)
        done = threading.Event()

        def refresh() -> None:
            while not done.wait(1.0):
                bar.refresh()

        timer = threading.Thread(target=refresh, name="compact-progress", daemon=True)
        with self._lock, bar:
            if progress:
                timer.start()
            try:
                self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning(
                    "could not compact the lexical index %s: %s; it is unchanged and usable (searches that are not in "
                    "the page cache are slower until a later bulk ingest compacts it with free disk of about twice its "
                    "size)", self.path, exc,
                )  # fmt: skip
                return False
            finally:
                done.set()
                if progress:
                    timer.join()
        log.info("compacted the lexical index %s in %.1f s", self.path.name, time.perf_counter() - started)
        return True

    def reset(self, title_repeats: int) -> None:
        """Empty the index under a new identity and the current schema (before a rebuild from Chroma).

        Readers reload on their next search.
        """
        with self._lock, self._write():
            for table in _TABLES:
                self._db.execute(f"DROP TABLE IF EXISTS {table}")  # fixed table names
            for statement in _SCHEMA.split(";"):  # not executescript: it would commit this transaction
                if statement.strip():
                    self._db.execute(statement)
            self.title_repeats = title_repeats
            self._set_meta(uuid=uuid.uuid4().hex, gen=0, next_row=0, title_repeats=title_repeats, schema=SCHEMA_VERSION)

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            self._db.close()
            if self._scattered is not None:
                self._scattered.close()


def _chunk_index(chunk_id: str) -> int:
    """The chunk index inside a chunk id '<paper id>#<index>'."""
    return int(chunk_id.rsplit("#", 1)[1])


def _paper(paper_id: str, fields: str) -> Paper:
    """A Paper from its stored fields (a JSON list in _PAPER_FIELDS order)."""
    return Paper(id=paper_id, **dict(zip(_PAPER_FIELDS, json.loads(fields), strict=True)))


def _sorted_join(rows: list[bytes], tfs: list[bytes]) -> tuple[bytes, bytes]:
    """Concatenate posting parts and sort them by row."""
    r = np.concatenate([np.frombuffer(x, dtype=np.int32) for x in rows])
    t = np.concatenate([np.frombuffer(x, dtype=np.uint16) for x in tfs])
    order = np.argsort(r, kind="stable")
    return r[order].tobytes(), t[order].tobytes()


def _lookup(rows: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the ascending `wanted` rows an ascending, non-empty posting list holds (a mask over `wanted`), and
    their positions in the list (binary search)."""
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    found = rows[at] == wanted
    return found, at[found]


def _top(scores: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Among distinct `rows`, the ones of the n highest positive scores, unordered; rows tied with the n-th stay."""
    rows = rows[scores[rows] > 0]
    if len(rows) > n:
        values = scores[rows]
        rows = rows[values >= np.partition(values, len(rows) - n)[len(rows) - n]]
    return rows


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), sqlite errors turned into IndexStoreError."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = db, path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise IndexStoreError(f"cannot write the lexical index {self.path}: {exc}") from exc

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                exc = err
        self.db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise IndexStoreError(
                f"cannot write the lexical index {self.path}: {exc}; check the data directory (space, permissions)"
            ) from exc
