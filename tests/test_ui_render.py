"""The chat app's formatting (ui.render) and example questions (rag.examples), on hand-built records."""

from __future__ import annotations

import re

from rag.examples import example_questions, top_topic
from rag.types import Answer, AnswerSentence, Chunk, Citation, Hit, IndexInfo, Paper
from ui import render

MAXVIT = Paper(
    id="p-maxvit",
    title="MaxViT: Multi-Axis Vision Transformer",
    abstract=(
        "Transformers have recently gained significant attention.  In this paper we introduce an efficient and "
        "scalable attention model we call multi-axis attention. MaxViT attains 86.5% ImageNet-1K top-1 accuracy."
    ),
    url="https://arxiv.org/abs/2204.01697",
    code_urls=("https://github.com/google-research/maxvit",),
    source="trending_papers.txt",
    year=2022,
)
PIIP = Paper(
    id="p-piip",
    title="Parameter-Inverted Image Pyramid Networks",
    abstract="Image pyramids are costly. Higher resolution images are processed by smaller networks <fast>.",
    source="trending_papers.txt",
)
OTHER = Paper(id="p-other", title="GiraffeDet: A Heavy-Neck Paradigm for Object Detection", abstract="A neck.")


def _hit(paper: Paper, rank: int, score: float) -> Hit:
    chunk = Chunk(id=f"{paper.id}#0", paper_id=paper.id, index=0, text=paper.abstract, n_tokens=10)
    return Hit(paper=paper, chunk=chunk, score=score, rank=rank)


def _answer(**overrides: object) -> Answer:
    supported = "MaxViT introduces multi-axis attention [1]."
    unsupported = "It is <b>always</b> best [1, 2]."
    fields: dict[str, object] = {
        "question": "What is MaxViT?",
        "text": f"{supported} PIIP uses smaller networks for big images [2]. {unsupported} See also [7].",
        "citations": (
            Citation(
                number=1,
                paper=MAXVIT,
                evidence=("In this paper we introduce an efficient and scalable attention model",),
                score=0.031,
            ),
            Citation(number=2, paper=PIIP, evidence=("a sentence the abstract does not hold",), score=0.02),
        ),
        "sources": (_hit(MAXVIT, 1, 0.031), _hit(PIIP, 2, 0.02), _hit(OTHER, 3, 0.01)),
        "sentences": (
            AnswerSentence(text=supported, citations=(1,)),
            AnswerSentence(text=unsupported, citations=(1, 2), supported=False, support=0.1),
        ),
        "backend": "extractive",
        "timings_ms": {"retrieve": 30.0, "total": 41.0},
    }
    fields.update(overrides)
    return Answer.model_validate(fields)


def test_answer_html_links_cited_markers_and_marks_unsupported_sentence() -> None:
    html = render.answer_html(_answer(), turn=3)
    assert html.count('class="rag-cite"') == 4  # [1], [2], and [1, 2] split into two links; [7] is not a source
    assert 'href="#src-3-1"' in html and 'href="#src-3-2"' in html
    assert "[7]" in html and "#src-3-7" not in html
    flagged = re.findall(r'<span class="rag-unsupported"[^>]*>(.*?)</span><sup', html)
    assert len(flagged) == 1 and "always" in flagged[0]
    assert "<b>always</b>" not in html and "&lt;b&gt;always&lt;/b&gt;" in html  # answer text is escaped
    assert "1 sentence not supported" in html


def test_answer_html_shows_abstention_and_notice() -> None:
    answer = _answer(
        text="The collection does not say.", abstained=True, citations=(), sentences=(), notice="LLM down: extractive"
    )
    html = render.answer_html(answer, turn=1)
    assert "No answer in this collection" in html
    assert "LLM down: extractive" in html
    assert "rag-cite" not in html


def test_sources_panel_cards_highlight_evidence_and_list_uncited() -> None:
    html = render.sources_html(_answer(), turn=3)
    card1 = html[html.index('id="src-3-1"') : html.index('id="src-3-2"')]
    assert "MaxViT: Multi-Axis Vision Transformer" in card1
    assert "<mark>In this paper we introduce an efficient and scalable attention model</mark>" in card1
    assert 'href="https://github.com/google-research/maxvit"' in card1 and "score 0.031" in card1
    card2 = html[html.index('id="src-3-2"') :]
    assert "&lt;fast&gt;" in card2  # abstract escaped
    assert "<blockquote class='rag-evidence'>a sentence the abstract does not hold</blockquote>" in card2
    assert "Also retrieved, not cited (1)" in html and "GiraffeDet" in html
    assert "Not supported by the cited sources" in html and "always" in html
    assert "extractive · 41 ms · 2 cited of 3 retrieved" in html


def test_sources_panel_for_abstention_lists_closest_papers() -> None:
    answer = _answer(abstained=True, citations=(), sentences=(), text="The collection does not say.")
    html = render.sources_html(answer, turn=1)
    assert "did not answer" in html
    assert "Closest papers searched (3)" in html
    assert render.sources_html(None, 0) == render.PANEL_PLACEHOLDER


def test_highlight_matches_across_whitespace_and_merges_overlaps() -> None:
    text = "Alpha beta.  Gamma\ndelta. Epsilon."
    html, missing = render.highlight(text, ["Gamma delta.", "beta.  Gamma", "Zeta."])
    assert html == "Alpha <mark>beta.  Gamma\ndelta.</mark> Epsilon."
    assert missing == ["Zeta."]


def test_table_rows_and_info() -> None:
    rows = render.paper_rows([MAXVIT, PIIP])
    assert rows[0] == [
        "[MaxViT: Multi-Axis Vision Transformer](https://arxiv.org/abs/2204.01697)",
        "trending_papers.txt",
        2022,
        "[google-research/maxvit](https://github.com/google-research/maxvit)",
    ]
    assert rows[1][0] == "Parameter-Inverted Image Pyramid Networks" and rows[1][3] == ""
    hits = render.hit_rows([_hit(MAXVIT, 1, 0.123456)])
    assert hits[0][0] == 1 and hits[0][2] == 0.1235
    info = IndexInfo(collection="c", papers=2, chunks=5, embedding_model="m", data_dir="/d", chroma="embedded:/d")
    line = render.info_markdown(info, [MAXVIT, PIIP])
    assert "**2** papers" in line and "**5** chunks" in line and "**1** with code" in line and "2022–2022" in line


def test_example_questions_are_deterministic_and_drawn_from_titles() -> None:
    papers = [
        MAXVIT,
        PIIP,
        OTHER,
        Paper(id="a", title="Object Detection with Transformers", abstract="x"),
        Paper(id="b", title="Towards Object Detection at Scale", abstract="x"),
        Paper(id="c", title="A Very Long Method Name Here: Something", abstract="x"),
    ]
    first = example_questions(papers, n=3)
    assert first == example_questions(list(reversed(papers)), n=3)  # order of the collection does not matter
    assert first[0] == "Which papers work on object detection?"
    named = " ".join(first[1:])
    assert len(first) == 3 and ("MaxViT" in named or "GiraffeDet" in named)
    assert "A Very Long Method Name Here" not in " ".join(example_questions(papers, n=10))
    assert example_questions([], n=3) == [] and example_questions(papers, n=0) == []
    assert top_topic([MAXVIT, PIIP]) == ""  # nothing repeats


def test_long_abstract_shows_the_evidence_in_context_and_the_rest_on_demand() -> None:
    abstract = (
        " ".join(f"Filler sentence number {i}." for i in range(40)) + " The key finding is here. " + "Tail words. " * 50
    )
    html, missing = render.abstract_html(abstract, ["The key finding is here."], context=40)
    excerpt, _, full = html.partition("<details")
    assert excerpt.startswith("… ") and excerpt.endswith(" …")
    assert "<mark>The key finding is here.</mark>" in excerpt and "number 0." not in excerpt
    assert "Full abstract" in full and "number 0." in full and "<mark>The key finding is here.</mark>" in full
    assert missing == []
    short, _ = render.abstract_html("One. Two.", ["Two."])
    assert short == "One. <mark>Two.</mark>"
