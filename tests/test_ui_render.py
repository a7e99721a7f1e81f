"""The chat app's formatting (ui.render), its collection snapshot and options, and example questions (rag.examples),
on hand-built records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import QuestionError
from rag.examples import example_questions, top_topic
from rag.settings import Settings
from rag.types import Answer, AnswerSentence, Chunk, Citation, Hit, Paper
from ui import render
from ui.chat import ChatHandlers, Turn
from ui.options import backend_choices, backend_description, search_filters
from ui.snapshot import CollectionSnapshot

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


def test_answer_html_links_cited_markers_and_escapes_the_text() -> None:
    html = render.answer_html(_answer(), turn=3)
    assert html.count('class="rag-cite"') == 4  # [1], [2], and [1, 2] split into two links; [7] is not a source
    assert 'href="#src-3-1"' in html and 'href="#src-3-2"' in html
    assert "[7]" in html and "#src-3-7" not in html
    assert "<b>always</b>" not in html and "&lt;b&gt;always&lt;/b&gt;" in html  # answer text is escaped
    assert "rag-unsupported" not in html


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
    assert 'href="https://github.com/google-research/maxvit"' in card1 and "2022" in card1
    card2 = html[html.index('id="src-3-2"') :]
    assert "&lt;fast&gt;" in card2  # abstract escaped
    assert "<blockquote class='rag-evidence'>a sentence the abstract does not hold</blockquote>" in card2
    assert "Also retrieved, not cited (1)" in html and "GiraffeDet" in html
    assert "Not supported" not in html  # sentences the verifier left out are never shown, not even flagged
    head, _, details = html.partition("<details class='rag-details'>")
    assert '<div class="rag-meta">Cites 2 papers</div>' in head
    for developer_detail in ("extractive", "41 ms", "score", "trending_papers.txt"):
        assert developer_detail not in head, developer_detail  # only in the collapsed details, if anywhere
    assert "extractive" in details and "total 41 ms" in details and "2 cited of 3 retrieved" in details
    assert "Searched as" not in details  # not a follow-up
    assert "Copy as Markdown" in head and 'download="paper-rag-answer-4.bib"' in head


def test_details_show_the_searched_question_only_for_follow_ups() -> None:
    follow = _answer(follow_up=True, standalone_question="What accuracy does MaxViT reach?")
    assert "<dt>Searched as</dt><dd>What accuracy does MaxViT reach?</dd>" in render.sources_html(follow, 0)
    rewritten = _answer(standalone_question="What accuracy does MaxViT reach?")  # rewritten, yet not a follow-up
    assert "Searched as" not in render.sources_html(rewritten, 0)


def test_repeated_markers_are_shown_once_per_run() -> None:
    text = "MaxViT mixes local and global attention [1]. It reaches 86.5% [1]. PIIP uses pyramids [2]. So does it [1]."
    answer = _answer(text=text, sentences=())
    html = render.answer_html(answer, turn=0)
    assert html.count('href="#src-0-1"') == 2 and html.count('href="#src-0-2"') == 1
    assert "attention. It reaches 86.5%" in html  # the first [1] moved to the end of its run
    streaming = render.streaming_html(text[:60])
    assert streaming.count("rag-cite-pending") == 1 and "rag-typing" in streaming
    assert "Searching the papers" in render.streaming_html("")  # before the first verified sentence


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


def test_snapshot_offers_only_what_the_collection_can_use() -> None:
    digest_like = CollectionSnapshot("default", [PIIP, OTHER])  # one source, no years, no code
    assert not (digest_like.can_filter_years or digest_like.can_filter_sources or digest_like.can_filter_code)
    assert digest_like.paper_table().rows == [["Parameter-Inverted Image Pyramid Networks"], [OTHER.title]]
    assert "default" not in digest_like.header_html() and ">2</b> paper abstracts" in digest_like.header_html()
    mixed = CollectionSnapshot("mine", [MAXVIT, PIIP, OTHER.model_copy(update={"year": 2019, "source": "b.bib"})])
    assert mixed.can_filter_years and mixed.can_filter_sources and mixed.can_filter_code
    table = mixed.paper_table()
    assert table.headers == ("Paper",) and table.rows[0] == [
        "[MaxViT: Multi-Axis Vision Transformer](https://arxiv.org/abs/2204.01697)<br><span class='rag-row-meta'>"
        "2022 · trending_papers.txt · code: [google-research/maxvit](https://github.com/google-research/maxvit)</span>"
    ]
    assert mixed.hit_table([_hit(MAXVIT, 1, 0.5)]).rows == table.rows[:1]
    assert mixed.info_md() == "**3** papers · 1 with code · 2019–2022 · 2 sources"
    assert "<b>mine</b>" in mixed.header_html()
    hostile = CollectionSnapshot("x", [PIIP.model_copy(update={"title": "<script>alert(1)</script> T"})])
    assert "<script>" not in hostile.paper_table().rows[0][0]  # markup in a title is shown as text


def test_only_configured_backends_are_offered(tmp_path: Path) -> None:
    bare = Settings(data_dir=tmp_path)
    assert [b for _, b in backend_choices(bare)] == ["extractive"]
    keyed = Settings(data_dir=tmp_path, openai_api_key="sk-secret-123", llm_model="gpt-x")
    assert [b for _, b in backend_choices(keyed)] == ["extractive", "openai"]
    local = Settings(data_dir=tmp_path, local_model_path=tmp_path / "m.gguf")
    assert [b for _, b in backend_choices(local)] == ["extractive", "local"]
    with_url = Settings(data_dir=tmp_path, openai_base_url="http://user:pw@llm.example:8080/v1?key=k")
    described = backend_description(with_url, "openai")
    assert "llm.example:8080" in described and "pw" not in described and "key=" not in described
    assert "sk-secret" not in backend_description(keyed, "openai")


def test_search_filters_from_the_widgets() -> None:
    assert search_filters("Any", "Any", "Any", "Any source") is None
    picked = search_filters("With code", "2020", "Any", "a.bib")
    assert picked is not None and picked.has_code and picked.year_min == 2020 and picked.source == "a.bib"
    with pytest.raises(QuestionError, match="year filter is empty: from 2023 is after to 2021"):
        search_filters("Any", "2023", "2021", "Any source")


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


def test_stored_conversation_round_trips_and_unreadable_turns_are_dropped() -> None:
    stored = [
        Turn("What is MaxViT?", _answer()).to_json(),
        {"question": "old format", "answer": {"unknown": 1}},
        "junk",
        Turn("Second?", error="the LLM server did not answer").to_json(),
    ]
    chat, turns, panel = ChatHandlers.restore(json.loads(json.dumps(stored)))  # as the browser keeps it
    assert [t.question for t in turns] == ["What is MaxViT?", "Second?"]
    assert turns[0].answer == _answer()
    assert len(chat) == 4 and 'href="#src-0-1"' in chat[1]["content"]
    assert "the LLM server did not answer" in chat[3]["content"]
    assert 'id="src-0-1"' in panel  # the last answer's sources come back too
    assert ChatHandlers.restore(None) == ([], [], render.PANEL_PLACEHOLDER)
