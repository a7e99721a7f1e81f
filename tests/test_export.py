"""Export of answers (rag.export via Answer.to_markdown / Answer.to_bibtex), on hand-built records."""

from __future__ import annotations

from pathlib import Path

from rag.export import compact_markers
from rag.loaders import load_papers
from rag.types import Answer, Citation, Paper

MAXVIT = Paper(
    id="2204.01697",
    title="MaxViT: Multi-Axis Vision Transformer",
    abstract="We introduce multi-axis attention. MaxViT attains 86.5% ImageNet-1K top-1 accuracy.",
    url="https://arxiv.org/abs/2204.01697",
    code_urls=("https://github.com/google-research/maxvit",),
    year=2022,
    authors=("Zhengzhong Tu", "Hossein Talebi"),
)
ODD = Paper(
    id="odd id/with spaces",
    title="Costs of 50% & more: {braces}, $5 fees, #tags, under_scores and a [bracket]",
    abstract="An abstract with 100% of the special characters: & _ # $ { } ~ ^ \\ in it.",
)


def answer(text: str, *papers: Paper, abstained: bool = False) -> Answer:
    citations = tuple(Citation(number=i, paper=p) for i, p in enumerate(papers, 1))
    return Answer(question="Q?", text=text, citations=citations, abstained=abstained)


def test_markdown_has_the_text_and_numbered_references() -> None:
    md = answer("MaxViT mixes attention [1]. It reaches 86.5% [1]. Costs are odd [2].", MAXVIT, ODD).to_markdown()
    text, _, refs = md.partition("**References**")
    assert text.strip() == "MaxViT mixes attention. It reaches 86.5% [1]. Costs are odd [2]."  # one marker per run
    lines = [line.strip() for line in refs.strip().splitlines()]
    assert lines[0] == (
        "[1] [MaxViT: Multi-Axis Vision Transformer](https://arxiv.org/abs/2204.01697) (2022)"
        " · code: <https://github.com/google-research/maxvit>"
    )
    assert lines[1] == "[2] Costs of 50% & more: {braces}, $5 fees, #tags, under_scores and a (bracket)"


def test_abstention_exports_no_references() -> None:
    refused = answer("The collection does not say.", abstained=True)
    assert refused.to_markdown() == "The collection does not say.\n"
    assert refused.to_bibtex() == ""


def test_bibtex_round_trips_through_the_bibtex_loader(tmp_path: Path) -> None:
    bib = answer("A [1]. B [2].", MAXVIT, ODD).to_bibtex()
    assert bib.startswith("@misc{2204.01697,\n  title = {{MaxViT: Multi-Axis Vision Transformer}},")
    assert "author = {Zhengzhong Tu and Hossein Talebi}" in bib and "year = {2022}" in bib
    assert "@misc{odd-id-with-spaces," in bib and r"50\% \& more: \{braces\}, \$5 fees, \#tags, under\_scores" in bib
    path = tmp_path / "cited.bib"
    path.write_text(bib, encoding="utf-8")
    loaded = {p.id: p for p in load_papers([path]).papers}
    assert set(loaded) == {"2204.01697", "odd-id-with-spaces"}
    maxvit = loaded["2204.01697"]
    assert (maxvit.title, maxvit.year, maxvit.url, maxvit.authors) == (
        MAXVIT.title,
        2022,
        MAXVIT.url,
        MAXVIT.authors,
    )
    assert maxvit.abstract == MAXVIT.abstract
    assert loaded["odd-id-with-spaces"].title == ODD.title


def test_compact_markers_keeps_the_last_of_a_run_within_a_paragraph() -> None:
    assert compact_markers("A [1]. B [1]. C [2]. D [1].") == "A. B [1]. C [2]. D [1]."
    assert compact_markers("A [1, 2]. B [1,2].") == "A. B [1,2]."
    assert compact_markers("A [1].\n\nB [1].") == "A [1].\n\nB [1]."  # a new paragraph shows its marker again
    assert compact_markers("A [1][2]. B [2].") == "A [1]. B [2]."
    assert compact_markers("No markers.") == "No markers."
