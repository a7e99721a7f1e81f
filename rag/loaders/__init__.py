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
    return hashlib.sha1(text.encode("utf-8")).digest()


def load_papers(
    paths: Sequence[str | Path] | str | Path,
    fmt: str | None = None,
    *,
    fields: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    progress: bool = False,
    max_abstract_chars: int = MAX_ABSTRACT_CHARS,
) -> LoadResult:
    """Load papers from files, merging exact duplicates; raise CorpusError (file:line) on bad input.

    fmt overrides format detection for every path ('digest', 'jsonl', 'csv', 'bibtex', 'arxiv'); fields maps
    Paper fields to JSONL keys or CSV columns (e.g. {"abstract": "summary"}); skip_invalid logs and skips bad
    records instead of failing the whole load; abstracts longer than max_abstract_chars are invalid records.
    Papers with the same normalized title and abstract merge into the first; an id seen again keeps its last
    version (with a warning when its title or abstract changed).
    """
    if fmt is not None and fmt not in _READERS:
        raise CorpusError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    mapping = _check_fields(fields)
    if isinstance(paths, str | Path):  # one path given bare: don't iterate over its characters
        paths = [paths]
    if not paths:
        raise CorpusError("no collection files given")
    by_id: dict[str, Paper] = {}
    by_content: dict[bytes, str] = {}  # content key -> id of the paper kept for it
    merged = skipped = 0
    bar = tqdm(desc="loading papers", unit=" papers", disable=not progress)
    try:
        for raw_path in paths:
            path = Path(raw_path)
            _check_path(path)
            kind = fmt or detect_format(path)
            source = Source(path, fields=mapping, skip_invalid=skip_invalid, max_abstract_chars=max_abstract_chars)
            found = 0
            for paper in _READERS[kind](source):
                found += 1
                bar.update()
                key = _content_key(paper)
                kept_id = by_content.get(key)
                if kept_id is not None and kept_id != paper.id:
                    merged += 1
                    log.debug("%s: merged exact duplicate %s into %s", path, paper.id, kept_id)
                    continue
                previous = by_id.get(paper.id)
                if previous is not None:  # the same id again: the later record wins
                    merged += 1
                    if kept_id is None:
                        log.warning(
                            "%s: id %r appears again with different content; keeping the later one", path, paper.id
                        )
                    del by_content[_content_key(previous)]
                by_id[paper.id] = paper
                by_content[key] = paper.id
            skipped += source.skipped
            if found == 0:
                raise CorpusError(f"{path}: no papers found in this {kind} file; is it the right file and format?")
    finally:
        bar.close()
    log.info("loaded %d papers from %d file(s), %d duplicates merged", len(by_id), len(paths), merged)
    return LoadResult(papers=list(by_id.values()), duplicates_merged=merged, skipped=skipped)


__all__ = ["DEFAULT_CORPUS", "FORMATS", "LoadResult", "detect_format", "load_papers"]
