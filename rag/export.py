"""An answer for use elsewhere: Markdown with numbered references, and BibTeX entries of the papers it cites.

Pure formatting of an `Answer` record (`Answer.to_markdown()` and `Answer.to_bibtex()` call these); no I/O.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from rag.text import MARKER

if TYPE_CHECKING:
    from rag.types import Answer, Citation, Paper

# Characters with a meaning in BibTeX/LaTeX field values, and what stands for them (bibtexparser decodes these back).
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_:.\-]+")


def compact_markers(text: str) -> str:
    """Drop each citation marker the next marker of its paragraph repeats: 'A [1]. B [1].' -> 'A. B [1].'.

    Consecutive sentences resting on the same paper then carry one marker, at the end of the run.
    """
    return "".join(text[start:end] for start, end in kept_spans(text))


def kept_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) ranges of `text` that `compact_markers` keeps, in order."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for start, end in repeated_markers(text):
        spans.append((pos, start))
        pos = end
    spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if b > a]


def repeated_markers(text: str) -> list[tuple[int, int]]:
    """Ranges (with the white space before them) of markers repeated by the next marker of the same paragraph."""
    matches = list(MARKER.finditer(text))
    drop: list[tuple[int, int]] = []
    for here, after in itertools.pairwise(matches):
        between = text[here.end() : after.start()]
        if _numbers(here.group(1)) == _numbers(after.group(1)) and "\n" not in between:
            start = here.start()
            while start > 0 and text[start - 1] in " \t":
                start -= 1
            drop.append((start, here.end()))
    return drop


def to_markdown(answer: Answer) -> str:
    """The answer as Markdown: its text (one marker per run of sentences), then the numbered references."""
    lines = [compact_markers(answer.text).strip()]
    if answer.citations:
        lines += ["", "**References**", ""]
        lines += [_reference_md(c) for c in sorted(answer.citations, key=lambda c: c.number)]
    return "\n".join(lines) + "\n"


def to_bibtex(answer: Answer) -> str:
    """BibTeX @misc entries of the cited papers, in citation order: key = paper id, title, authors, year, url, code
    links (note) and abstract."""
    return "\n".join(bibtex_entry(c.paper) for c in sorted(answer.citations, key=lambda c: c.number))


def bibtex_entry(paper: Paper) -> str:
    """One @misc entry (fields that are unknown are left out)."""
    fields = [("title", "{" + _latex(paper.title) + "}")]  # double braces keep the title's capitals
    if paper.authors:
        fields.append(("author", " and ".join(_latex(a) for a in paper.authors)))
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.url:
        fields.append(("url", paper.url.replace("}", "%7D").replace("{", "%7B")))
    if paper.code_urls:
        fields.append(("note", "Code: " + ", ".join(_latex(u) for u in paper.code_urls)))
    if paper.abstract:
        fields.append(("abstract", _latex(paper.abstract)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@misc{{{bibtex_key(paper)},\n{body}\n}}\n"


def bibtex_key(paper: Paper) -> str:
    """The paper id as a BibTeX key (characters BibTeX keys cannot hold become '-')."""
    return _KEY_UNSAFE.sub("-", paper.id).strip("-") or "paper"


def _reference_md(citation: Citation) -> str:
    """'[n] [Title](url) (year) · code: <url>' for one citation (the parts that are known)."""
    paper = citation.paper
    title = paper.title.replace("[", "(").replace("]", ")")
    linked = f"[{title}]({paper.url})" if paper.url else title
    year = f" ({paper.year})" if paper.year else ""
    code = "".join(f" · code: <{u}>" for u in paper.code_urls)
    return f"[{citation.number}] {linked}{year}{code}  "


def _latex(text: str) -> str:
    """Text with BibTeX/LaTeX special characters escaped."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], " ".join(text.split()))


def _numbers(group: str) -> str:
    """One marker's inside without white space ('1, 3' -> '1,3'), to compare markers as written."""
    return re.sub(r"\s+", "", group)
