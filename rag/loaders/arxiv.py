"""Reader for the arXiv metadata snapshot (Kaggle `arxiv-metadata-oai-snapshot.json`): one JSON object a line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rag.loaders.common import Source, find_urls, parse_authors, parse_year
from rag.loaders.jsonl import records
from rag.types import Paper, normalize_space

ABS_URL = "https://arxiv.org/abs/{id}"
# Hosts whose links in the `comments` field ("Code: https://github.com/...") are code links.
_CODE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "huggingface.co")


def _authors(record: dict[str, Any]) -> tuple[str, ...]:
    """Author names 'First Last' from `authors_parsed` ([last, first, suffix]), else the `authors` string."""
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for parts in parsed:
            if isinstance(parts, list) and parts:
                last, first = str(parts[0]), str(parts[1]) if len(parts) > 1 else ""
                suffix = str(parts[2]) if len(parts) > 2 else ""
                names.append(normalize_space(f"{first} {last} {suffix}"))
        return tuple(name for name in names if name)
    authors = record.get("authors")
    # The snapshot's `authors` string separates names with commas and a final ' and '.
    return parse_authors(authors.replace(",", ";") if isinstance(authors, str) else authors)


def _year(record: dict[str, Any]) -> int | None:
    """Year of the first version (the submission), else of `update_date`."""
    versions = record.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        year = parse_year(versions[0].get("created"))
        if year is not None:
            return year
    return parse_year(record.get("update_date"))


def read(source: Source) -> Iterator[Paper]:
    """Papers of an arXiv metadata snapshot (optionally .gz), streamed line by line."""
    for line_no, record in records(source):
        arxiv_id = normalize_space(str(record.get("id") or ""))
        if not arxiv_id:
            source.invalid(line_no, "line has no 'id'; arXiv snapshot lines carry the arXiv id in 'id'")
            continue
        comments = record.get("comments")
        code_urls = tuple(
            url
            for url in find_urls(comments if isinstance(comments, str) else "")
            if any(h in url for h in _CODE_HOSTS)
        )
        paper = source.paper(
            line_no,
            id=arxiv_id,
            title=record.get("title"),
            abstract=record.get("abstract"),
            url=ABS_URL.format(id=arxiv_id),
            code_urls=code_urls,
            year=_year(record),
            authors=_authors(record),
            record=f"line (arXiv {arxiv_id})",
        )
        if paper is not None:
            yield paper
