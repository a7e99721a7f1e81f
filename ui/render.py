"""HTML for the chat app: answers with linked [n] markers, the sources panel, Markdown cells of the collection table.

Pure formatting of records (Answer, Citation, Paper): no retrieval, no Gradio imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote

from rag.export import kept_spans, repeated_markers
from rag.text import MARKER
from rag.types import Answer, Citation, Paper

EXCERPT_CONTEXT = 220  # characters of abstract shown on each side of the evidence in a source card

PANEL_PLACEHOLDER = (
    '<div class="rag-empty"><p><b>Sources</b></p>'
    "<p>Ask a question: the papers the answer cites appear here, with the sentences it rests on "
    "highlighted. Click a marker like <span class='rag-cite-demo'>[1]</span> in an answer to jump to its source."
    "</p></div>"
)


def source_anchor(turn: int, number: int) -> str:
    """The HTML id of source [number] of answer `turn` in the sources panel."""
    return f"src-{turn}-{number}"


def answer_html(answer: Answer, turn: int) -> str:
    """An answer as a chat message: [n] markers link to its sources, one marker per run of sentences citing the
    same papers. Only verified sentences are in the text; those the verifier left out are never shown."""
    cited = {c.number for c in answer.citations}
    text = answer.text
    body = _linked(text, 0, len(text), repeated_markers(text), turn, cited)
    head = '<span class="rag-badge rag-badge-abstain">No answer in this collection</span> ' if answer.abstained else ""
    tail = f'\n\n<span class="rag-notice">ⓘ {escape(answer.notice)}</span>' if answer.notice else ""
    return head + body + tail


def streaming_html(text: str) -> str:
    """Verified answer text as it arrives: markers shown (not yet linked), one per run, and a sign that more is
    coming; before the first sentence, what the app is doing."""
    if not text.strip():
        return '<span class="rag-pending">Searching the papers and checking each sentence…</span>'
    kept = "".join(text[a:b] for a, b in kept_spans(text))
    marked = MARKER.sub(lambda m: f'<span class="rag-cite rag-cite-pending">{m.group(0)}</span>', escape(kept))
    return f'{marked}<span class="rag-typing" title="answering">…</span>'


def error_html(message: str) -> str:
    """A failed answer as a chat message: the error in plain words, no traceback."""
    return f'<span class="rag-badge rag-badge-error">Error</span> {escape(message)}'


def sources_html(answer: Answer | None, turn: int) -> str:
    """The sources panel of one answer: cited papers in reading order with evidence highlighted, the other
    retrieved papers unnumbered, export actions, and the answer's technical details folded away."""
    if answer is None:
        return PANEL_PLACEHOLDER
    out = [
        '<div class="rag-sources">',
        f'<div class="rag-sources-head"><div class="rag-q">{escape(answer.question)}</div>',
        f'<div class="rag-meta">{escape(answer_meta(answer))}</div>',
        _export_actions(answer, turn),
        "</div>",
    ]
    if answer.abstained:
        out.append(
            '<div class="rag-callout rag-callout-abstain">No paper in the collection answers this question, '
            "so the assistant did not answer.</div>"
        )
    out.extend(_citation_card(c, turn) for c in sorted(answer.citations, key=lambda c: c.number))
    cited_ids = {c.paper.id for c in answer.citations}
    others = [h for h in answer.sources if h.paper.id not in cited_ids]
    if others:
        label = "Closest papers searched" if answer.abstained else "Also retrieved, not cited"
        rows = "".join(f"<li>{_title_link(h.paper)}{_year(h.paper)}</li>" for h in others)
        out.append(f"<details class='rag-others'{' open' if answer.abstained else ''}>")
        out.append(f"<summary>{label} ({len(others)})</summary><ul>{rows}</ul></details>")
    out.append(_details(answer))
    out.append("</div>")
    return "".join(out)


def answer_meta(answer: Answer) -> str:
    """What a reader needs to know about an answer at a glance: how many papers it cites, or that it abstained."""
    if answer.abstained:
        return "No answer in this collection"
    n = len(answer.citations)
    if not n:
        return "Cites no paper"
    return f"Cites {n} paper{'s' if n != 1 else ''}"


def highlight(abstract: str, evidence: Iterable[str]) -> tuple[str, list[str]]:
    """Escape an abstract and wrap each evidence sentence in <mark>; also return the sentences not found in it."""
    ranges, missing = _evidence_ranges(abstract, evidence)
    return _marked(abstract, ranges, 0, len(abstract)), missing


def abstract_html(abstract: str, evidence: Iterable[str], context: int = EXCERPT_CONTEXT) -> tuple[str, list[str]]:
    """The evidence in its context (a few words around it, highlighted), with the full abstract one click away.

    Short abstracts, or ones whose evidence spans most of the text, are shown whole. Also returns the evidence
    sentences not found in the abstract.
    """
    ranges, missing = _evidence_ranges(abstract, evidence)
    full = _marked(abstract, ranges, 0, len(abstract))
    if ranges:
        lo, hi = _snap(abstract, ranges[0][0] - context, ranges[-1][1] + context)
    else:
        lo, hi = _snap(abstract, 0, 2 * context)
    if lo == 0 and hi == len(abstract):
        return full, missing
    excerpt = ("… " if lo else "") + _marked(abstract, ranges, lo, hi) + (" …" if hi < len(abstract) else "")
    return f"{excerpt}<details class='rag-full'><summary>Full abstract</summary>{full}</details>", missing


# --- helpers ---------------------------------------------------------------------------------------------------
def _details(answer: Answer) -> str:
    """The technical side of an answer, collapsed: backend, model, timings, tokens, the question as searched."""
    rows = [("Answered by", answer.backend or "unknown")]
    if answer.model:
        rows.append(("Model", answer.model))
    if answer.timings_ms:
        stages = [f"{name} {ms:.0f} ms" for name, ms in answer.timings_ms.items() if name != "total"]
        total = answer.timings_ms.get("total")
        rows.append(("Time", " · ".join([*stages, *([f"total {total:.0f} ms"] if total else [])])))
    if answer.usage.prompt_tokens or answer.usage.completion_tokens:
        rows.append(("Tokens", f"{answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} answer"))
    rows.append(("Papers", f"{len(answer.citations)} cited of {len(answer.sources)} retrieved"))
    if answer.follow_up and answer.standalone_question:
        rows.append(("Searched as", answer.standalone_question))
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f"<details class='rag-details'><summary>Details</summary><dl>{items}</dl></details>"


def _export_actions(answer: Answer, turn: int) -> str:
    """'Copy as Markdown' and 'BibTeX' for an answer that cites papers (nothing for an abstention)."""
    if answer.abstained or not answer.citations:
        return ""
    bibtex = quote(answer.to_bibtex())
    return (
        '<div class="rag-actions">'
        f'<button type="button" class="rag-btn rag-copy-md" data-turn="{turn}">Copy as Markdown</button>'
        f'<a class="rag-btn rag-bibtex" download="paper-rag-answer-{turn + 1}.bib" '
        f'href="data:application/x-bibtex;charset=utf-8,{bibtex}">Download BibTeX</a>'
        f'<textarea class="rag-md" hidden readonly>{escape(answer.to_markdown())}</textarea></div>'
    )


def _citation_card(citation: Citation, turn: int) -> str:
    """One cited paper: number, linked title, year and links, abstract with the evidence highlighted."""
    paper = citation.paper
    abstract, missing = abstract_html(paper.abstract, citation.evidence)
    links = [f'<a href="{escape(paper.url, quote=True)}" target="_blank" rel="noopener">paper</a>'] if paper.url else []
    links += [f'<a href="{escape(u, quote=True)}" target="_blank" rel="noopener">code</a>' for u in paper.code_urls]
    meta = " · ".join([*([str(paper.year)] if paper.year else []), *links])
    extra = "".join(f"<blockquote class='rag-evidence'>{escape(s)}</blockquote>" for s in missing)
    meta_html = f"<div class='rag-card-meta'>{meta}</div>" if meta else ""
    return (
        f'<div class="rag-card" id="{source_anchor(turn, citation.number)}" data-number="{citation.number}">'
        f'<div class="rag-card-head"><span class="rag-num">{citation.number}</span>'
        f'<span class="rag-title">{_title_link(paper)}</span></div>'
        f"{meta_html}"
        f'<div class="rag-abstract">{abstract}</div>{extra}</div>'
    )


def _title_link(paper: Paper) -> str:
    """A paper's title, linked to its page when known."""
    if not paper.url:
        return escape(paper.title)
    return f'<a href="{escape(paper.url, quote=True)}" target="_blank" rel="noopener">{escape(paper.title)}</a>'


def _year(paper: Paper) -> str:
    """' (2022)' after a title, or '' without a year."""
    return f" <span class='rag-year'>({paper.year})</span>" if paper.year else ""


def _linked(text: str, lo: int, hi: int, drops: Sequence[tuple[int, int]], turn: int, cited: set[int]) -> str:
    """text[lo:hi] escaped, without the dropped (repeated) markers, its cited markers linked to their sources."""
    out: list[str] = []
    pos = lo
    for start, end in drops:
        start, end = max(start, lo), min(end, hi)
        if start < end:
            out.append(_link_markers(text[pos:start], turn, cited))
            pos = end
    out.append(_link_markers(text[pos:hi], turn, cited))
    return "".join(out)


def _link_markers(text: str, turn: int, cited: set[int]) -> str:
    """Escape text and turn [n] markers of cited sources into links to their source cards."""
    out: list[str] = []
    pos = 0
    for match in MARKER.finditer(text):
        numbers = _marker_numbers(match.group(1))
        if not numbers or not all(n in cited for n in numbers):
            continue
        out.append(escape(text[pos : match.start()]))
        out.append(
            "".join(
                f'<a class="rag-cite" href="#{source_anchor(turn, n)}" data-turn="{turn}" data-n="{n}">[{n}]</a>'
                for n in numbers
            )
        )
        pos = match.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def _marker_numbers(inside: str) -> list[int]:
    """The source numbers of a marker's inside: '1, 3' -> [1, 3], '2-4' -> [2, 3, 4], '1 and 2' -> [1, 2]."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|\band\b)\s*", inside.strip()):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and all(b.isdigit() for b in bounds) and 0 <= int(bounds[1]) - int(bounds[0]) <= 20:
            numbers.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        elif part.isdigit():
            numbers.append(int(part))
    return numbers


def _find_loose(haystack: str, needle: str, start: int = 0) -> tuple[int, int] | None:
    """Find needle in haystack allowing any run of white space between its words."""
    words = needle.split()
    if not words:
        return None
    match = re.compile(r"\s+".join(re.escape(w) for w in words)).search(haystack, start)
    return (match.start(), match.end()) if match else None


def _evidence_ranges(abstract: str, evidence: Iterable[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """Merged character ranges of the evidence sentences in the abstract, and the sentences not found."""
    ranges: list[tuple[int, int]] = []
    missing: list[str] = []
    for sentence in evidence:
        found = _find_loose(abstract, sentence)
        if found is None:
            missing.append(sentence)
        else:
            ranges.append(found)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged, missing


def _marked(text: str, ranges: list[tuple[int, int]], lo: int, hi: int) -> str:
    """Escaped text[lo:hi] with the given ranges (clipped to the window) wrapped in <mark>."""
    out: list[str] = []
    pos = lo
    for start, end in ranges:
        start, end = max(start, lo), min(end, hi)
        if start >= end:
            continue
        out.append(escape(text[pos:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:hi]))
    return "".join(out)


def _snap(text: str, lo: int, hi: int) -> tuple[int, int]:
    """Widen [lo, hi) to whole words, clamped to the text."""
    lo, hi = max(0, lo), min(len(text), hi)
    if lo > 0:
        space = text.rfind(" ", 0, lo)
        lo = space + 1 if space >= 0 else 0
    if hi < len(text):
        space = text.find(" ", hi)
        hi = space if space >= 0 else len(text)
    return lo, hi


def md_link(text: str, url: str) -> str:
    """A Markdown link, or the bare text when there is no URL."""
    label = escape(text, quote=False).replace("[", "(").replace("]", ")")  # a title's markup is shown, never run
    return f"[{label}]({url})" if url else label


def code_md(urls: Sequence[str]) -> str:
    """Markdown links to code repositories ('' when none)."""
    return " ".join(f"[{_short_repo(u)}]({u})" for u in urls)


def _short_repo(url: str) -> str:
    """'owner/name' of a GitHub-style URL, else the URL without its scheme."""
    bare = re.sub(r"^https?://(www\.)?", "", url).rstrip("/")
    parts = bare.split("/")
    return "/".join(parts[1:3]) if len(parts) >= 3 else bare
