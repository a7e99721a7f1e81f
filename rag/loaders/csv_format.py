"""Reader for CSV (and TSV) collections with a header row, read with the csv module."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from rag.loaders.common import Source
from rag.types import Paper


def _check_header(source: Source, line: int, header: list[str]) -> None:
    """Refuse a first row that names no title or abstract column: the file has no header row, or other names."""
    keys = {cell.lower(): cell for cell in header}
    missing = [name for name in ("title", "abstract") if source.key_for(name, keys) is None]
    if not missing:
        return
    shown = ", ".join(repr(cell[:40]) for cell in header[:6]) + (", ..." if len(header) > 6 else "")
    wanted = " and ".join(f"'{name}'" for name in missing)
    raise source.error(
        line,
        f"the first row is read as the header row, but it has no {wanted} column (it holds {shown}); "
        "a CSV collection starts with a header row naming its columns (title, abstract, and optionally id, url, "
        "year, authors); add one, or map your columns with --field (e.g. --field abstract=summary)",
    )


def read(source: Source) -> Iterator[Paper]:
    """Papers of a CSV file (tab-separated for .tsv), one a row, named by the header row."""
    suffixes = [s.lower() for s in source.path.suffixes]
    delimiter = "\t" if ".tsv" in suffixes else ","
    line_numbers: list[int] = []

    def numbered() -> Iterator[str]:
        """Lines for the csv module, remembering the number of each line handed over."""
        for line_no, line in source.lines(keep_ends=True):
            line_numbers.append(line_no)
            yield line

    reader = csv.reader(numbered(), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        line_numbers.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            where = line_numbers[0] if line_numbers else None
            raise source.error(where, f"bad CSV ({exc}); check the quoting of this row") from exc
        row_line = line_numbers[0]  # the csv module reads exactly the lines of one row: its first is here
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            _check_header(source, row_line, header)
            continue
        if len(row) != len(header):
            source.invalid(
                row_line,
                f"row has {len(row)} columns but the header has {len(header)}; quote fields that contain "
                f"'{delimiter}' or line breaks",
            )
            continue
        paper = source.mapped_paper(row_line, dict(zip(header, row, strict=True)), what="row")
        if paper is not None:
            yield paper
    if header is None:
        raise source.error(None, "empty CSV file: no header row")
