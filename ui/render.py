"""HTML and table rows for the chat app: answers with linked [n] markers, the sources panel, collection tables.

Pure formatting of records (Answer, Citation, Hit, Paper, IndexInfo): no retrieval, no Gradio imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

from rag.types import Answer, AnswerSentence, Citation, Hit, IndexInfo, Paper

EXCERPT_CONTEXT = 220  # characters of abstract shown on each side of the evidence in a source card
# "[1]", "[1, 3]" or "[1,2]" citation markers in answer text.
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

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
    """An answer as a chat message: [n] markers link to the sources panel, unsupported sentences are marked."""
    cited = {c.number for c in answer.citations}
    spans = _sentence_spans(answer.text, answer.unsupported_sentences)
    parts: list[str] = []
    pos = 0
    for start, end, sentence in spans:
        parts.append(_link_markers(answer.text[pos:start], turn, cited))
        body = _link_markers(answer.text[start:end], turn, cited)
        tip = escape(f"Not supported by the cited sources (support {sentence.support:.2f})", quote=True)
        parts.append(f'<span class="rag-unsupported" title="{tip}">{body}</span><sup class="rag-flag">⚠</sup>')
        pos = end
    parts.append(_link_markers(answer.text[pos:], turn, cited))
    body = "".join(parts)
    head = '<span class="rag-badge rag-badge-abstain">No answer in this collection</span> ' if answer.abstained else ""
    tail = f'\n\n<span class="rag-notice">ⓘ {escape(answer.notice)}</span>' if answer.notice else ""
    if spans:
        n = len(spans)
        plural = "s" if n > 1 else ""
        tail += f'\n\n<span class="rag-notice">⚠ {n} sentence{plural} not supported by the cited sources.</span>'
    return head + body + tail


def error_html(message: str) -> str:
    """A failed answer as a chat message: the error in plain words, no traceback."""
    return f'<span class="rag-badge rag-badge-error">Error</span> {escape(message)}'


def sources_html(answer: Answer | None, turn: int) -> str:
    """The sources panel of one answer: cited papers with evidence highlighted, then the other retrieved papers."""
    if answer is None:
        return PANEL_PLACEHOLDER
    out = [
        '<div class="rag-sources">',
        f'<div class="rag-sources-head"><div class="rag-q">{escape(answer.question)}</div>',
        f'<div class="rag-meta">{escape(_answer_meta(answer))}</div>',
    ]
    if answer.standalone_question and answer.standalone_question != answer.question:
        out.append(f'<div class="rag-meta">Searched as: <i>{escape(answer.standalone_question)}</i></div>')
    out.append("</div>")
    if answer.abstained:
        out.append(
            '<div class="rag-callout rag-callout-abstain">No paper in the collection answers this question, '
            "so the assistant did not answer.</div>"
        )
    unsupported = answer.unsupported_sentences
    if unsupported:
        items = "".join(f"<li>{escape(s.text)}</li>" for s in unsupported)
        out.append(
            '<div class="rag-callout rag-callout-warn"><b>Not supported by the cited sources:</b>'
            f"<ul>{items}</ul></div>"
        )
    out.extend(_citation_card(c, turn) for c in sorted(answer.citations, key=lambda c: c.number))
    cited_ids = {c.paper.id for c in answer.citations}
    others = [h for h in answer.sources if h.paper.id not in cited_ids]
    if others:
        label = "Closest papers searched" if answer.abstained else "Also retrieved, not cited"
        rows = "".join(
            f"<li>{_title_link(h.paper)} <span class='rag-score'>score {h.score:.3f}</span></li>" for h in others
        )
        out.append(f"<details class='rag-others'{' open' if answer.abstained else ''}>")
        out.append(f"<summary>{label} ({len(others)})</summary><ul>{rows}</ul></details>")
    out.append("</div>")
    return "".join(out)


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


def paper_rows(papers: Sequence[Paper]) -> list[list[str | int | None]]:
    """Rows of the collection table: title (linked), source, year, code link(s)."""
    return [[_md_link(p.title, p.url), p.source, p.year, _code_md(p.code_urls)] for p in papers]


def hit_rows(hits: Sequence[Hit]) -> list[list[str | int | float | None]]:
    """Rows of the search results table: rank, title (linked), score, source, year, code link(s)."""
    return [
        [
            h.rank,
            _md_link(h.paper.title, h.paper.url),
            round(h.score, 4),
            h.paper.source,
            h.paper.year,
            _code_md(h.paper.code_urls),
        ]
        for h in hits
    ]


def info_markdown(info: IndexInfo, papers: Sequence[Paper]) -> str:
    """Counts of the collection as one Markdown line."""
    with_code = sum(1 for p in papers if p.code_urls)
    sources = sorted({p.source for p in papers if p.source})
    years = sorted(p.year for p in papers if p.year)
    span = f"{years[0]}–{years[-1]}" if years else "no publication years"
    return (
        f"**{info.papers}** papers · **{info.chunks}** chunks · **{with_code}** with code · {span} · "
        f"{len(sources)} source file{'s' if len(sources) != 1 else ''} · collection `{info.collection}` · "
        f"embeddings `{info.embedding_model}` · store `{info.chroma}`"
    )


# --- helpers ---------------------------------------------------------------------------------------------------
def _answer_meta(answer: Answer) -> str:
    """'extractive · 12 ms · 3 sources' style line under the question."""
    bits = [answer.backend or "unknown backend"]
    if answer.model:
        bits.append(answer.model)
    total = answer.timings_ms.get("total") or sum(answer.timings_ms.values())
    if total:
        bits.append(f"{total:.0f} ms")
    if answer.usage.prompt_tokens or answer.usage.completion_tokens:
        bits.append(f"{answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens")
    bits.append(f"{len(answer.citations)} cited of {len(answer.sources)} retrieved")
    return " · ".join(bits)


def _citation_card(citation: Citation, turn: int) -> str:
    """One cited paper: number, linked title, code links, score, abstract with the evidence highlighted."""
    paper = citation.paper
    abstract, missing = abstract_html(paper.abstract, citation.evidence)
    links = [f'<a href="{escape(paper.url, quote=True)}" target="_blank" rel="noopener">paper</a>'] if paper.url else []
    links += [f'<a href="{escape(u, quote=True)}" target="_blank" rel="noopener">code</a>' for u in paper.code_urls]
    meta = " · ".join(str(x) for x in (paper.source, paper.year) if x)
    extra = "".join(f"<blockquote class='rag-evidence'>{escape(s)}</blockquote>" for s in missing)
    return (
        f'<div class="rag-card" id="{source_anchor(turn, citation.number)}" data-number="{citation.number}">'
        f'<div class="rag-card-head"><span class="rag-num">{citation.number}</span>'
        f'<span class="rag-title">{_title_link(paper)}</span></div>'
        f'<div class="rag-card-meta"><span class="rag-score">score {citation.score:.3f}</span>'
        f"{' · ' + escape(meta) if meta else ''}{' · ' + ' · '.join(links) if links else ''}</div>"
        f'<div class="rag-abstract">{abstract}</div>{extra}</div>'
    )


def _title_link(paper: Paper) -> str:
    """A paper's title, linked to its page when known."""
    if not paper.url:
        return escape(paper.title)
    return f'<a href="{escape(paper.url, quote=True)}" target="_blank" rel="noopener">{escape(paper.title)}</a>'


def _link_markers(text: str, turn: int, cited: set[int]) -> str:
    """Escape text and turn [n] markers of cited sources into links to the panel."""
    out: list[str] = []
    pos = 0
    for match in _MARKER.finditer(text):
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        if not all(n in cited for n in numbers):
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


def _sentence_spans(text: str, sentences: Sequence[AnswerSentence]) -> list[tuple[int, int, AnswerSentence]]:
    """Where each given sentence sits in the answer text, in order, skipping any not found."""
    spans: list[tuple[int, int, AnswerSentence]] = []
    pos = 0
    for sentence in sentences:
        found = _find_loose(text, sentence.text, start=pos)
        if found is not None:
            spans.append((found[0], found[1], sentence))
            pos = found[1]
    return spans


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


def _md_link(text: str, url: str) -> str:
    """A Markdown link, or the bare text when there is no URL."""
    label = text.replace("[", "(").replace("]", ")")
    return f"[{label}]({url})" if url else label


def _code_md(urls: Sequence[str]) -> str:
    """Markdown links to code repositories ('' when none)."""
    return " ".join(f"[{_short_repo(u)}]({u})" for u in urls)


def _short_repo(url: str) -> str:
    """'owner/name' of a GitHub-style URL, else the URL without its scheme."""
    bare = re.sub(r"^https?://(www\.)?", "", url).rstrip("/")
    parts = bare.split("/")
    return "/".join(parts[1:3]) if len(parts) >= 3 else bare
