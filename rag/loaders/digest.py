"""Reader for the 'trending papers' digest: a saved web page of title lines each followed by an abstract paragraph."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator

from rag.loaders.common import Source
from rag.types import Paper

# Page furniture of the trending-papers page, dropped wherever it appears (pages may be pasted one after another).
_HEADER_LINES = frozenset(
    {"new", "get trending papers in your email inbox!", "subscribe", "byak and the research community"}
)
_DATE_LINE = re.compile(
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}(st|nd|rd|th)?(,? \d{4})?",
    re.IGNORECASE,
)
# A title is one line of at most this many words; a longer first line means the paragraphs are out of step.
MAX_TITLE_WORDS = 60


def _is_page_furniture(line: str) -> bool:
    """True for the page's header lines and date separators ('Mar 12')."""
    text = line.strip()
    return text.lower() in _HEADER_LINES or _DATE_LINE.fullmatch(text) is not None


def _paragraphs(source: Source) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) of each blank-line-separated paragraph, page furniture removed."""
    start, lines = 0, []
    for line_no, line in source.lines():
        if not line.strip():
            if lines:
                yield start, lines
            start, lines = 0, []
        elif not _is_page_furniture(line):
            if not lines:
                start = line_no
            lines.append(line.strip())
    if lines:
        yield start, lines


def _looks_like_title(lines: list[str]) -> bool:
    """True for a paragraph that reads as a title: one short line, not ending as a sentence, no sentence break."""
    text = lines[0]
    return len(lines) == 1 and len(text.split()) <= 30 and not text.endswith(".") and ". " not in text


def _cannot_be_title(lines: list[str]) -> bool:
    """True for a paragraph whose first line is too long to be a title."""
    return len(lines[0].split()) > MAX_TITLE_WORDS


def read(source: Source) -> Iterator[Paper]:
    """Papers of a digest: each a title line, then its abstract (the next paragraph, or the lines under the title)."""
    stream = _paragraphs(source)
    lookahead: deque[tuple[int, list[str]]] = deque()

    def take() -> tuple[int, list[str]] | None:
        """The next paragraph, from the lookahead first."""
        return lookahead.popleft() if lookahead else next(stream, None)

    previous = "the start of the file"  # the last title read, for error messages
    while (paragraph := take()) is not None:
        line_no, lines = paragraph
        title = lines[0]
        if _cannot_be_title(lines):
            source.invalid(
                line_no,
                f"expected a title line but found a {len(title.split())}-word paragraph (after {previous}); "
                "a title is missing, or an abstract was split by a blank line. Each paper is a title line, "
                "a blank line, then one abstract paragraph",
            )
            continue
        previous = f"'{title}' at line {line_no}"
        if len(lines) > 1:  # the abstract is written right under the title, without a blank line
            abstract = lines[1:]
        else:
            following = take()
            after = take()
            if after is not None:
                lookahead.append(after)
            # A title-like paragraph followed by an abstract-like one: this title has lost its abstract.
            lost = after is not None and _looks_like_title(following[1]) and _cannot_be_title(after[1])
            if following is None or lost:
                if following is not None:
                    lookahead.appendleft(following)
                nxt = f" (the next paragraph, line {following[0]}, is another title)" if following else ""
                source.invalid(
                    line_no, f"title '{title}' has no abstract after it{nxt}; add the abstract or remove the title"
                )
                continue
            abstract = following[1]
        paper = source.paper(line_no, title=title, abstract=" ".join(abstract), record=f"paper '{title}'")
        if paper is not None:
            yield paper
