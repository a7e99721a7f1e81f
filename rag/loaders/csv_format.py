"""Reader for CSV (and TSV) collections with a header row, read with the csv module."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from rag.loaders.common import Source
from rag.types import Paper


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
