"""A question's hard constraints: the excluded phrases are cut from what is searched and scored, and the papers they
name or are about are left out of the answer."""

from __future__ import annotations

import pytest

from rag.constraints import excluded_papers, meets, parse, releases_code
from rag.loaders import DEFAULT_CORPUS, load_papers
from rag.types import Paper


@pytest.fixture(scope="module")
def digest() -> list[Paper]:
    """The bundled digest's papers."""
    return list(load_papers([DEFAULT_CORPUS]).papers)


@pytest.mark.parametrize(
    ("question", "positive", "excluded"),
    [
        ("Which papers apart from GroupMamba propose Mamba backbones?", "Which papers propose Mamba backbones?",
         ("GroupMamba",)),
        ("Apart from Vision Mamba, which papers build state-space backbones?",
         "which papers build state-space backbones?", ("Vision Mamba",)),
        ("Which papers use diffusion rather than GANs for image synthesis?",
         "Which papers use diffusion for image synthesis?", ("GANs",)),
        ("Which segmentation papers, other than the Mamba-based ones, run in real time?",
         "Which segmentation papers, run in real time?", ("the Mamba-based ones",)),
        ("Which papers other than those on medical images use SAM?", "Which papers use SAM?",
         ("those on medical images",)),
        ("Which papers propose Mamba backbones?", "Which papers propose Mamba backbones?", ()),
        ("Which backbones mix convolution and attention, as opposed to pure transformers, ConvNets or MLPs?",
         "Which backbones mix convolution and attention?", ("pure transformers", "ConvNets", "MLPs")),
        ("Which papers, apart from MaxViT, use SAM or LoRA?", "Which papers, use SAM or LoRA?", ("MaxViT",)),
        # a contrast set off by a comma is cut up to the end of its clause, not only its first words
        ("Which papers do view synthesis of real scenes, as opposed to generating multi-view images with a T2I model?",
         "Which papers do view synthesis of real scenes?", ("generating multi-view",)),
        ("Which methods report results on VTAB-1k, rather than on NLP or VQA benchmarks, and on FGVC?",
         "Which methods report results on VTAB-1k, and on FGVC?", ("on NLP", "VQA")),
        # an opening exclusion is cut whole, up to its comma, whatever its phrase's length
        ("Other than the diffusion / flow-matching generators, which papers report FID?", "which papers report FID?",
         ("the diffusion",)),
        ("Apart from the Stable Diffusion distillation papers, which works prune weights?",
         "which works prune weights?", ("the Stable Diffusion",)),
        ("Outside of medical imaging, which papers use SAM?", "which papers use SAM?", ("medical imaging",)),
        # a preposition may open the contrasted phrase ("rather than to X", "rather than for X")
        ("Which papers tune diffusion models rather than to recognition backbones?",
         "Which papers tune diffusion models?", ("to recognition backbones",)),
        ("Which papers fit scaling laws for generative models rather than for recognition or data pruning?",
         "Which papers fit scaling laws for generative models?", ("for recognition", "data pruning")),
        # a contrast that is the question's last clause is cut whole, even where its phrase stops early
        ("Which detectors gain by redesigning the neck rather than by proposing a new backbone?",
         "Which detectors gain by redesigning the neck?", ("by proposing",)),
        ("Which papers work on RAW sensor data rather than on RGB images?", "Which papers work on RAW sensor data?",
         ("on RGB",)),
        # ... but not where the question goes on after it
        ("Which papers use LoRA rather than adapters for tracking, and on which benchmarks?",
         "Which papers use LoRA for tracking, and on which benchmarks?", ("adapters",)),
        # "outside of" later in a question is a place, not an exclusion
        ("Which models generalise outside of the training distribution?",
         "Which models generalise outside of the training distribution?", ()),
    ],
)  # fmt: skip
def test_parse_cuts_the_excluded_phrase(question: str, positive: str, excluded: tuple[str, ...]) -> None:
    c = parse(question)
    assert c.positive == positive
    assert c.excluded + c.contrasted == excluded


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        ("Which papers in the collection tackle video super-resolution?", "tackle video super-resolution?"),
        ("What other works, apart from MaxViT, use multi-axis attention?", "use multi-axis attention?"),
        ("Apart from the Stable Diffusion distillation papers, which studies here prune weights?", "prune weights?"),
        # a singular "which paper" names one paper by its description: searched as typed; so is a bare frame
        ("Which paper proposes a multi-axis backbone?", "Which paper proposes a multi-axis backbone?"),
        ("Which papers?", "Which papers?"),
        ("What does the study find about pruning?", "What does the study find about pruning?"),
    ],
)  # fmt: skip
def test_the_search_leaves_out_the_words_that_frame_a_question_about_papers(question: str, searched: str) -> None:
    assert parse(question).searched == searched


def test_a_named_exclusion_leaves_out_that_paper_only(digest: list[Paper]) -> None:
    mamba = [p for p in digest if "Mamba" in p.title]
    out = excluded_papers(parse("Which papers apart from GroupMamba propose Mamba backbones?"), mamba)
    assert [p.title for p in mamba if p.id in out] == [p.title for p in mamba if p.title.startswith("GroupMamba")]


def test_a_topic_exclusion_leaves_out_the_papers_about_it(digest: list[Paper]) -> None:
    out = excluded_papers(parse("Which papers compress networks other than diffusion models?"), digest)
    titles = [p.title for p in digest if p.id in out]
    assert any("Stable Diffusion" in t for t in titles)
    assert not any(t.startswith("MaxViT") for t in titles)
    # a contrast leaves out only what it names: a RAW-processing paper names RGB as what it maps to
    contrast = parse("Which papers work on RAW sensor data rather than on RGB images, unlike MaxViT?")
    assert contrast.contrasted == ("on RGB", "MaxViT") and not contrast.excluded
    assert [p.title for p in digest if p.id in excluded_papers(contrast, digest)] == [
        "MaxViT: Multi-Axis Vision Transformer"
    ]
    # about one paper, an exclusion describes it ("one network instead of dozens of specialists"): names only
    assert not excluded_papers(parse("Which paper compresses networks other than diffusion models?"), digest,
                               by_topic=False)  # fmt: skip


def test_wanting_code_keeps_papers_that_release_code(digest: list[Paper]) -> None:
    c = parse("Which papers on state space models release code?")
    assert c.wants_code
    with_code = next(p for p in digest if p.code_urls)
    without = next(p for p in digest if not releases_code(p))
    assert meets(c, with_code, set()) and not meets(c, without, set())
    assert not meets(c, with_code, {with_code.id})


@pytest.mark.parametrize(
    ("question", "wants"),
    [
        ("Which efficient super-resolution papers provide a code link?", True),
        ("Which papers have a GitHub repository?", True),
        ("Which papers with open-sourced code study pruning?", True),
        ("Which papers link to their code?", True),
        ("Which papers on image tokenizers link a code repository?", True),
        ("Which vision-language papers release both their data and their code?", True),
        ("Which papers host their code on GitHub?", True),
        ("Which segmentation papers make their code available?", True),
        ("Which papers study code generation?", False),
        ("Which papers include code generation tasks?", False),
        ("Which models have a large codebook?", False),
    ],
)
def test_the_usual_ways_of_asking_for_code_want_code(question: str, wants: bool) -> None:
    assert parse(question).wants_code is wants


def test_an_abstract_that_says_its_code_is_out_releases_code() -> None:
    """A link, or a sentence saying the code is available or released, whether or not the link was kept."""
    said = Paper(id="a", title="A", abstract="We propose A. Codes and trained models are available online.")
    implemented = Paper(id="b", title="B", abstract="An open source implementation of B is available through X.")
    linked = Paper(id="c", title="C", abstract="We propose C.", code_urls=("https://github.com/x/c",))
    silent = Paper(id="d", title="D", abstract="We propose D. Models are trained on public data.")
    assert all(releases_code(p) for p in (said, implemented, linked)) and not releases_code(silent)
    wants = parse("Which papers release code?")
    assert meets(wants, said, set()) and not meets(wants, silent, set())
