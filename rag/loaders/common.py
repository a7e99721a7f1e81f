"""Helpers shared by the format readers: reading lines, field aliases, ids, URLs, years, authors, errors."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import CorpusError
from rag.limits import MAX_ABSTRACT_CHARS, MAX_TITLE_CHARS
from rag.text import clean_text
from rag.types import Paper, normalize_space, normalize_title

log = logging.getLogger(__name__)

# Paper fields a record may carry, and the column/key names recognized for each without a `fields` mapping.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "_id", "paper_id", "doc_id", "docid"),
    "title": ("title",),
    "abstract": ("abstract", "text", "summary"),
    "url": ("url", "link"),
    "year": ("year", "date", "published", "update_date"),
    "authors": ("authors", "author"),
    "code_urls": ("code_urls", "code_url", "code"),
}


_URL = re.compile(r"https?://[^\s<>\"'{}|\\^`\[\]]+")
_URL_TRAILING = ".,;:!?)]}'\""
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_AUTHOR_SEPARATOR = re.compile(r"\s*;\s*|\s+and\s+", re.IGNORECASE)


def title_id(title: str) -> str:
    """Id for a paper whose source has none: 't-' and a hash of the normalized title."""
    return "t-" + hashlib.sha1(normalize_title(title).encode("utf-8")).hexdigest()[:12]


def find_urls(text: str) -> tuple[str, ...]:
    """URLs in text, in order and without repeats, with trailing sentence punctuation stripped."""
    urls: dict[str, None] = {}
    for match in _URL.finditer(text):
        url = match.group(0)
        # Strip what ends the sentence around the URL, but keep a ')' that closes a '(' inside the URL.
        while url and url[-1] in _URL_TRAILING and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if "://" in url and not url.endswith("://"):
            urls[url] = None
    return tuple(urls)


def parse_year(value: Any) -> int | None:
    """A four-digit year from an int or a date-like string ('2021', '2021-05-03', 'Mon, 2 Apr 2007'), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1800 <= value <= 2099 else None
    if isinstance(value, str):
        match = _YEAR.search(value)
        return int(match.group(1)) if match else None
    return None


def parse_authors(value: Any) -> tuple[str, ...]:
    """Author names from a list, or from a string separated by ';' or ' and ' (commas are kept, 'Last, First')."""
    if isinstance(value, list | tuple):
        names = [normalize_space(str(v)) for v in value]
    elif isinstance(value, str):
        names = [normalize_space(v) for v in _AUTHOR_SEPARATOR.split(value)]
    else:
        return ()
    return tuple(name for name in names if name)


def _text(value: Any) -> str:
    """A scalar field value as white-space-normalized text ('' for None, lists joined by spaces)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value)
    # Same result as normalize_space, several times faster on the millions of lines of an arXiv snapshot.
    return " ".join(str(value).split())


@dataclass
class Source:
    """One file being read: where errors point, how fields are named, and whether bad records are skipped."""

    path: Path
    fields: Mapping[str, str] = field(default_factory=dict)
    skip_invalid: bool = False
    max_abstract_chars: int = MAX_ABSTRACT_CHARS
    skipped: int = 0

    @property
    def label(self) -> str:
        """The value stored in Paper.source: the file name."""
        return self.path.name

    def error(self, line: int | None, message: str) -> CorpusError:
        """A CorpusError that names this file and, when known, the line."""
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        return CorpusError(f"{where}: {message}")

    def invalid(self, line: int | None, message: str) -> None:
        """Report a bad record: raise by default, or log it and count it when skipping invalid records."""
        err = self.error(line, message)
        if not self.skip_invalid:
            raise err
        self.skipped += 1
        log.warning("skipped: %s", err)

    def key_for(self, name: str, keys: Mapping[str, str]) -> str | None:
        """The record key holding Paper field `name`: the user's mapping, else the first alias present.

        `keys` maps lower-cased, stripped record keys to the record's own spelling.
        """
        if name in self.fields:
            return keys.get(self.fields[name].strip().lower())
        return next((keys[alias] for alias in FIELD_ALIASES[name] if alias in keys), None)

    def lines(self, keep_ends: bool = False) -> Iterator[tuple[int, str]]:
        """(1-based line number, text) for every line, streamed; .gz files decompressed; BOM dropped.

        Lines are decoded one by one so a UTF-8 error names its exact line. keep_ends keeps the line break
        (the csv module needs it to read quoted fields that span lines).
        """
        line_no = 0
        try:
            opener = gzip.open if self.path.suffix.lower() == ".gz" else open
            with opener(self.path, "rb") as handle:
                for line_no, raw in enumerate(handle, start=1):
                    text = raw.decode("utf-8")
                    if line_no == 1:
                        text = text.removeprefix("\ufeff")
                    yield line_no, text if keep_ends else text.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise self.error(line_no, f"not UTF-8 text ({exc.reason}); save the file as UTF-8") from exc
        except (OSError, EOFError) as exc:
            raise self.error(None, f"cannot read the file: {exc}") from exc

    def paper(
        self,
        line: int | None,
        *,
        id: Any = None,
        title: Any,
        abstract: Any,
        url: Any = None,
        code_urls: tuple[str, ...] = (),
        year: int | None = None,
        authors: tuple[str, ...] = (),
        record: str = "record",
    ) -> Paper | None:
        """A Paper with normalized text, a stable id and code URLs from the abstract; None if invalid and skipped."""
        title_text, abstract_text = clean_text(_text(title)), clean_text(_text(abstract))
        for name, value in (("title", title_text), ("abstract", abstract_text)):
            if not value:
                mapped = f" (read from '{self.fields[name]}')" if name in self.fields else ""
                self.invalid(line, f"{record} has no {name}{mapped}; every paper needs a title and an abstract")
                return None
        if len(title_text) > MAX_TITLE_CHARS:
            self.invalid(
                line,
                f"{record} has a title of {len(title_text):,} characters, over the limit of {MAX_TITLE_CHARS:,}; "
                "is the title field the right one? (map it with --field title=COLUMN, or pass --skip-invalid)",
            )
            return None
        if len(abstract_text) > self.max_abstract_chars:
            self.invalid(
                line,
                f"{record} has an abstract of {len(abstract_text):,} characters, over the limit of "
                f"{self.max_abstract_chars:,} (RAG_MAX_ABSTRACT_CHARS); is the field really an abstract? "
                "Shorten it, raise the limit, or pass --skip-invalid to leave it out",
            )
            return None
        source_id = _text(id)
        return Paper(
            id=source_id or title_id(title_text),
            title=title_text,
            abstract=abstract_text,
            url=_text(url),
            code_urls=tuple(dict.fromkeys((*code_urls, *find_urls(abstract_text)))),
            source=self.label,
            year=year,
            authors=authors,
        )

    def mapped_paper(self, line: int, record: Mapping[str, Any], what: str = "record") -> Paper | None:
        """A Paper from a key/value record (JSON object, CSV row) using the field mapping and aliases."""
        keys = {str(k).strip().lower(): k for k in record}
        metadata = record.get("metadata")
        meta_keys = {str(k).strip().lower(): k for k in metadata} if isinstance(metadata, Mapping) else {}

        def get(name: str) -> Any:
            key = self.key_for(name, keys)
            if key is not None:
                return record[key]
            # BEIR keeps optional fields (url, year, authors) in a "metadata" object.
            meta_key = self.key_for(name, meta_keys)
            return metadata[meta_key] if meta_key is not None and isinstance(metadata, Mapping) else None

        return self.paper(
            line,
            id=get("id"),
            title=get("title"),
            abstract=get("abstract"),
            url=get("url"),
            code_urls=find_urls(_text(get("code_urls"))),
            year=parse_year(get("year")),
            authors=parse_authors(get("authors")),
            record=what,
        )
