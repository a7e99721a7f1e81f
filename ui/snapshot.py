"""What the app shows about its collection, computed from the paper list on every page load (never at build time).

A `CollectionSnapshot` answers: how many papers, which filters the collection can use (years, sources, code), the
example questions, and the rows of the collection table. Pure Python: no Gradio, no Assistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from rag.examples import example_questions
from rag.settings import DEFAULT_COLLECTION
from rag.types import Hit, Paper
from ui import render

TABLE_ROWS = 1000  # papers listed in the collection tab; the search box reaches the rest
EXAMPLES = 4  # example question cards in an empty chat


@dataclass(frozen=True)
class Table:
    """Rows of the collection table (one Markdown 'Paper' cell each)."""

    rows: list[list[str]] = field(default_factory=list)
    headers: tuple[str, ...] = ("Paper",)
    datatypes: tuple[str, ...] = ("markdown",)


@dataclass(frozen=True)
class CollectionSnapshot:
    """The collection as the app presents it at one moment."""

    collection: str
    papers: list[Paper]

    @property
    def years(self) -> list[int]:
        """Distinct publication years, oldest first."""
        return sorted({p.year for p in self.papers if p.year})

    @property
    def sources(self) -> list[str]:
        """Distinct source labels (file names), sorted."""
        return sorted({p.source for p in self.papers if p.source})

    @property
    def with_code(self) -> int:
        """Papers that link to code."""
        return sum(1 for p in self.papers if p.code_urls)

    # --- which filters mean something here ------------------------------------------------------------------
    @property
    def can_filter_years(self) -> bool:
        """True when the papers span at least two publication years."""
        return len(self.years) >= 2

    @property
    def can_filter_sources(self) -> bool:
        """True when the papers come from at least two sources."""
        return len(self.sources) >= 2

    @property
    def can_filter_code(self) -> bool:
        """True when some papers link to code and some do not."""
        return 0 < self.with_code < len(self.papers)

    # --- text ---------------------------------------------------------------------------------------------
    def header_html(self) -> str:
        """The title bar: name and what the app answers from."""
        n = len(self.papers)
        where = "" if self.collection == DEFAULT_COLLECTION else f" in <b>{escape(self.collection)}</b>"
        return (
            '<div class="rag-header"><div class="rag-logo">paper-rag</div>'
            f'<div class="rag-sub">Answers from <b id="rag-count">{n}</b> paper abstract{"s" if n != 1 else ""}'
            f"{where}, each sentence checked against the papers it cites.</div></div>"
        )

    def placeholder_md(self) -> str:
        """What the empty chat shows."""
        if not self.papers:
            return "### The collection is empty\nAdd papers in the **Collection** tab, then ask about them."
        return (
            f"### Ask about {len(self.papers)} papers\nAnswers cite their papers as [1], [2]. "
            "Click a marker to see the paper with the sentences the answer rests on highlighted."
        )

    def examples(self) -> list[dict[str, str]]:
        """Example questions drawn from the collection, as chat example cards."""
        return [{"text": q} for q in example_questions(self.papers, n=EXAMPLES)]

    def info_md(self) -> str:
        """One line about the collection for readers: papers, code links, years, sources."""
        n = len(self.papers)
        bits = [f"**{n}** paper{'s' if n != 1 else ''}"]
        if self.with_code:
            bits.append(f"{self.with_code} with code")
        years = self.years
        if years:
            bits.append(f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0]))
        if self.can_filter_sources:
            bits.append(f"{len(self.sources)} sources")
        line = " · ".join(bits)
        if n > TABLE_ROWS:
            line += f"  \nThe table lists the first {TABLE_ROWS}; search to reach the others."
        return line

    # --- tables -------------------------------------------------------------------------------------------
    def paper_table(self) -> Table:
        """The collection table: one 'Paper' cell per row (linked title, then year, source and code when they tell
        papers apart), readable on a phone as on a desktop."""
        return Table([self._row(p) for p in self.papers[:TABLE_ROWS]])

    def hit_table(self, hits: list[Hit]) -> Table:
        """Search results as the same rows, best first."""
        return Table([self._row(h.paper) for h in hits])

    def _row(self, paper: Paper) -> list[str]:
        """One paper's cell: the linked title, then a line of what is known about it."""
        facts = [str(paper.year)] if paper.year else []
        if self.can_filter_sources and paper.source:
            facts.append(escape(paper.source))
        if paper.code_urls:
            facts.append("code: " + render.code_md(paper.code_urls))
        title = render.md_link(paper.title, paper.url)
        return [f"{title}<br><span class='rag-row-meta'>{' · '.join(facts)}</span>" if facts else title]
