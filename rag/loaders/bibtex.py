"""Reader for BibTeX files, parsed with bibtexparser 2: entries with a title and an abstract."""

from __future__ import annotations

from collections.abc import Iterator

import bibtexparser
from bibtexparser.middlewares import (
    LatexDecodingMiddleware,
    MergeNameParts,
    NormalizeFieldKeys,
    SeparateCoAuthors,
    SplitNameParts,
)
from bibtexparser.model import DuplicateBlockKeyBlock, Entry, ParsingFailedBlock

from rag.loaders.common import Source, parse_year
from rag.types import Paper, normalize_space

DOI_URL = "https://doi.org/{doi}"


def _middleware() -> list:
    """Lower-case field names, decode LaTeX accents, and turn 'Last, First and ...' into ['First Last', ...]."""
    return [
        NormalizeFieldKeys(),
        LatexDecodingMiddleware(),
        SeparateCoAuthors(),
        SplitNameParts(),
        MergeNameParts(style="first"),
    ]


def _entries(source: Source, text: str, first_line: int = 1) -> Iterator[tuple[int, Entry]]:
    """(line, entry) of BibTeX text in file order; entries repeating a key are kept (the loader keeps the last)."""
    library = bibtexparser.parse_string(text, append_middleware=_middleware())
    for block in library.blocks:
        line = (block.start_line or 0) + first_line
        if isinstance(block, DuplicateBlockKeyBlock):
            # bibtexparser sets a repeated key aside unparsed; parse it alone so the loader can keep the last one.
            yield from _entries(source, block.raw, line)
        elif isinstance(block, ParsingFailedBlock):
            first = block.raw.strip().splitlines()[0] if block.raw.strip() else ""
            reason = normalize_space(getattr(block.error, "abort_reason", "") or str(block.error)) or "syntax error"
            source.invalid(line, f"BibTeX parse failure in the block starting '{first[:80]}': {reason}")
        elif isinstance(block, Entry):
            yield line, block


def read(source: Source) -> Iterator[Paper]:
    """Papers of a BibTeX file: id = citation key, url = url field or the DOI link, year, authors."""
    lines = [line for _, line in source.lines(keep_ends=True)]  # BibTeX is parsed whole; files are small
    for line, entry in _entries(source, "".join(lines)):
        fields = {key: field.value for key, field in entry.fields_dict.items()}
        doi = normalize_space(str(fields.get("doi", "")))
        doi_url = doi if doi.startswith(("http://", "https://")) else DOI_URL.format(doi=doi)
        url = normalize_space(str(fields.get("url", ""))) or (doi_url if doi else "")
        authors = fields.get("author", [])
        paper = source.paper(
            line,
            id=entry.key or doi,
            title=fields.get("title"),
            abstract=fields.get("abstract"),
            url=url,
            year=parse_year(str(fields.get("year", ""))),
            authors=tuple(normalize_space(a) for a in authors) if isinstance(authors, list) else (),
            record=f"entry '{entry.key}'",
        )
        if paper is not None:
            yield paper
