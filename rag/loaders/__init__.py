"""Load collection files (digest, JSONL/BEIR, CSV, BibTeX, arXiv snapshot) into Paper records."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rag.errors import CorpusError
from rag.limits import MAX_ABSTRACT_CHARS
from rag.loaders import arxiv, bibtex, csv_format, digest, jsonl
from rag.loaders.common import FIELD_ALIASES, Source
from rag.types import Paper, normalize_title

log = logging.getLogger(__name__)

# Resolved from this file, not the working directory, so it is found in a `pip install .` install too.
DEFAULT_CORPUS: Path = Path(__file__).resolve().parent.parent / "data" / "trending_papers.txt"

_READERS: dict[str, Callable[[Source], Iterator[Paper]]] = {
    "digest": digest.read,
    "jsonl": jsonl.read,
    "csv": csv_format.read,
    "bibtex": bibtex.read,
    "arxiv": arxiv.read,
}
FORMATS: tuple[str, ...] = tuple(_READERS)
_BY_SUFFIX = {
    ".txt": "digest",
    ".bib": "bibtex",
    ".bibtex": "bibtex",
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "json",
    ".json": "json",
    ".ndjson": "json",
}


@dataclass(frozen=True)
class LoadResult:
    """Papers loaded from one or more files, after merging duplicates."""

    papers: list[Paper]
    duplicates_merged: int = 0
    skipped: int = 0


def _json_format(path: Path) -> str:
    """'arxiv' when the first JSON line has arXiv snapshot keys ('abstract' and 'categories'), else 'jsonl'."""
    for _, line in Source(path).lines():
        if line.strip():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                return "jsonl"  # the JSONL reader reports the bad line with its number
            return "arxiv" if isinstance(record, dict) and {"abstract", "categories"} <= record.keys() else "jsonl"
    return "jsonl"


def detect_format(path: str | Path) -> str:
    """The format of a collection file, from its extension (.gz looked through) and, for JSON, its first line."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = _BY_SUFFIX.get(suffixes[-1]) if suffixes else None
    if kind is None:
        first = next((line.lstrip() for _, line in Source(path).lines() if line.strip()), "")
        kind = "json" if first.startswith("{") else "bibtex" if first.startswith("@") else None
    if kind is None:
        raise CorpusError(
            f"{path}: cannot tell the format from the name or content; pass fmt= (CLI: --format) "
            f"one of {', '.join(FORMATS)}"
        )
    return _json_format(path) if kind == "json" else kind


def _check_fields(fields: Mapping[str, str] | None) -> Mapping[str, str]:
    """The field mapping, after checking it names only Paper fields."""
    unknown = sorted(set(fields or {}) - set(FIELD_ALIASES))
    if unknown:
        raise CorpusError(
            f"unknown field(s) in the field mapping: {', '.join(unknown)}; map any of {', '.join(FIELD_ALIASES)}"
        )
    return dict(fields or {})


def _check_path(path: Path) -> None:
    """Raise a CorpusError with the fix when a path is missing or not a file."""
    if not path.exists():
        raise CorpusError(
            f"{path}: no such file; check the path (relative paths start at {Path.cwd()}), "
            "or give no path to load the bundled collection"
        )
    if not path.is_file():
        raise CorpusError(f"{path}: not a file; pass the collection files themselves (e.g. {path}/*.jsonl)")


def _content_key(paper: Paper) -> bytes:
    """Digest of the normalized title and abstract: papers with equal keys are exact duplicates."""
    text = normalize_title(paper.title) + "\x1f" + paper.abstract.lower()  # loaders already normalized spacing
    return hashlib.sha1(text.encode("utf-8")).digest()[:8]  # 8 bytes: a chance collision needs ~4e9 papers


class PaperStream:
    """The papers of collection files, read lazily one record at a time; counts fill in as it is consumed.

    Exact duplicates (same normalized title and abstract under another id) are dropped into the first. A paper id
    seen again is yielded again: the later record wins where it is consumed (load_papers, PaperIndex.sync), with a
    warning here when its title or abstract changed. Memory: one 8-byte content digest and the id of each paper.
    """

    def __init__(
        self,
        files: Sequence[tuple[Path, str]],
        fields: Mapping[str, str],
        skip_invalid: bool,
        progress: bool,
        max_abstract_chars: int,
    ) -> None:
        self.files = list(files)
        self.fields = fields
        self.skip_invalid = skip_invalid
        self.progress = progress
        self.max_abstract_chars = max_abstract_chars
        self.duplicates_merged = 0  # exact duplicates dropped into the first paper with that content
        self.skipped = 0  # invalid records skipped (skip_invalid)
        self.count = 0  # papers yielded
        self._started = False

    def __iter__(self) -> Iterator[Paper]:
        """Read the files in order, yielding papers as they are parsed; a second iteration is refused."""
        if self._started:
            raise CorpusError("a PaperStream is read once; call iter_papers again to read the files again")
        self._started = True
        by_content: dict[bytes, str] = {}  # content digest -> id of the paper kept for it
        content_of: dict[str, bytes] = {}  # paper id -> its latest content digest
        bar = tqdm(desc="reading papers", unit=" papers", disable=not self.progress)
        try:
            for path, kind in self.files:
                source = Source(
                    path, fields=self.fields, skip_invalid=self.skip_invalid,
                    max_abstract_chars=self.max_abstract_chars,
                )  # fmt: skip
                found = 0
                for paper in _READERS[kind](source):
                    found += 1
                    bar.update()
                    key = _content_key(paper)
                    kept_id = by_content.get(key)
                    if kept_id is not None and kept_id != paper.id:
                        self.duplicates_merged += 1
                        log.debug("%s: merged exact duplicate %s into %s", path, paper.id, kept_id)
                        continue
                    previous = content_of.get(paper.id)
                    if previous is not None and previous != key:
                        log.warning(
                            "%s: id %r appears again with different content; keeping the later one", path, paper.id
                        )
                        del by_content[previous]
                    by_content[key], content_of[paper.id] = paper.id, key
                    self.count += 1
                    yield paper
                self.skipped += source.skipped
                if found == 0:
                    raise CorpusError(f"{path}: no papers found in this {kind} file; is it the right file and format?")
        finally:
            bar.close()
        log.info("read %d papers from %d file(s), %d exact duplicates merged", self.count, len(self.files),
                 self.duplicates_merged)  # fmt: skip


def iter_papers(
    paths: Sequence[str | Path] | str | Path,
    fmt: str | None = None,
    *,
    fields: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    progress: bool = False,
    max_abstract_chars: int = MAX_ABSTRACT_CHARS,
) -> PaperStream:
    """Stream papers from files without holding them (PaperIndex.sync ingests a stream batch by batch).

    Options as load_papers. Missing files and unknown formats raise CorpusError here, before anything is read; a bad
    record raises CorpusError (file:line) when the stream reaches it. Exact duplicates are merged; a repeated id is
    yielded again (the consumer keeps the later record).
    """
    if fmt is not None and fmt not in _READERS:
        raise CorpusError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    mapping = _check_fields(fields)
    if isinstance(paths, str | Path):  # one path given bare: don't iterate over its characters
        paths = [paths]
    if not paths:
        raise CorpusError("no collection files given")
    files = []
    for raw_path in paths:
        path = Path(raw_path)
        _check_path(path)
        files.append((path, fmt or detect_format(path)))
    return PaperStream(files, mapping, skip_invalid, progress, max_abstract_chars)


def load_papers(
    paths: Sequence[str | Path] | str | Path,
    fmt: str | None = None,
    *,
    fields: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    progress: bool = False,
    max_abstract_chars: int = MAX_ABSTRACT_CHARS,
) -> LoadResult:
    """Load papers from files into a list, merging exact duplicates; raise CorpusError (file:line) on bad input.

    fmt overrides format detection for every path ('digest', 'jsonl', 'csv', 'bibtex', 'arxiv'); fields maps
    Paper fields to JSONL keys or CSV columns (e.g. {"abstract": "summary"}); skip_invalid logs and skips bad
    records instead of failing the whole load; abstracts longer than max_abstract_chars are invalid records.
    Papers with the same normalized title and abstract merge into the first; an id seen again keeps its last
    version (with a warning when its title or abstract changed). For large inputs use iter_papers.
    """
    stream = iter_papers(
        paths, fmt, fields=fields, skip_invalid=skip_invalid, progress=progress, max_abstract_chars=max_abstract_chars
    )
    by_id: dict[str, Paper] = {}
    for paper in stream:
        by_id[paper.id] = paper  # a repeated id keeps its first place and its last version
    merged = stream.duplicates_merged + stream.count - len(by_id)
    return LoadResult(papers=list(by_id.values()), duplicates_merged=merged, skipped=stream.skipped)


__all__ = ["DEFAULT_CORPUS", "FORMATS", "LoadResult", "PaperStream", "detect_format", "iter_papers", "load_papers"]
