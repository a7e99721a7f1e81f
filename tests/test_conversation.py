"""Turn resolution: a self-contained question stands alone; a follow-up resolves to the papers the last answer cited."""

from __future__ import annotations

import pytest

from rag.conversation import resolve
from rag.types import Message, Paper

CBNET = Paper(id="cb", title="CBNet: A Composite Backbone Network Architecture for Object Detection",
              abstract="We propose CBNetV2.", code_urls=("https://github.com/VDIGPKU/CBNetV2",))  # fmt: skip
MAXVIT = Paper(id="mx", title="MaxViT: Multi-Axis Vision Transformer", abstract="We present MaxViT.")
PAPERS = {p.id: p for p in (CBNET, MAXVIT)}


def lookup(ids):
    return [PAPERS[i] for i in ids if i in PAPERS]


TWO_CITED = [
    Message(role="user", content="Which detection backbones are there?"),
    Message(
        role="assistant", content="- CBNet: composite backbones [1].\n- MaxViT: multi-axis attention [2].",
        papers=("cb", "mx"),
    ),
]
ONE_CITED = [
    Message(role="user", content="What does the multi-axis attention backbone reach on ImageNet?"),
    Message(role="assistant", content="MaxViT: 86.5% top-1 [1].", papers=("mx",)),
]
ONE_CITED_BY_NAME = [
    Message(role="user", content="What top-1 accuracy does MaxViT reach on ImageNet?"),
    Message(role="assistant", content="MaxViT: 86.5% top-1 [1].", papers=("mx",)),
]
ABSTAINED = [
    Message(role="user", content="What is the capital of France?"),
    Message(role="assistant", content="The collection does not say. No paper in the collection matches."),
]


@pytest.mark.parametrize(
    ("question", "history", "papers", "standalone"),
    [
        ("And what did the second one get on COCO?", TWO_CITED, ("mx",), "What did MaxViT get on COCO?"),
        ("What does the first paper use?", TWO_CITED, ("cb",), "What does CBNet use?"),
        ("What does it get on COCO?", ONE_CITED, ("mx",), "What does MaxViT get on COCO?"),
        ("What about its parameter count?", ONE_CITED, ("mx",), "What about MaxViT's parameter count?"),
        ("Tell me more about that paper.", ONE_CITED, ("mx",), "Tell me more about MaxViT."),
        ("Summarise the one with code.", TWO_CITED, ("cb",), "Summarise CBNet."),
        ("How do they compare?", TWO_CITED, ("cb", "mx"), "How do CBNet and MaxViT compare?"),
        ("And on ADE20K?", ONE_CITED, ("mx",), "MaxViT: on ADE20K?"),
        ("And what about COCO?", ONE_CITED, ("mx",), "MaxViT: what about COCO?"),
        ("What does source [2] report?", TWO_CITED, ("mx",), "What does MaxViT report?"),
        ("Which one has code?", TWO_CITED, ("cb",), "Which of CBNet and MaxViT has code?"),
        ("Which of them uses attention?", TWO_CITED, ("cb", "mx"), "Which of CBNet and MaxViT uses attention?"),
        ("Which models do they beat?", TWO_CITED, ("cb", "mx"), "Which models do CBNet and MaxViT beat?"),
        ("Do both have code?", TWO_CITED, ("cb", "mx"), "Do CBNet and MaxViT have code?"),
        # a bare question names nothing to search for: it asks about the papers at hand
        ("Tell me more.", ONE_CITED, ("mx",), "MaxViT: Tell me more?"),
        ("How many parameters?", TWO_CITED, ("cb", "mx"), "CBNet and MaxViT: How many parameters?"),
        ("Which is faster?", TWO_CITED, ("cb", "mx"), "CBNet and MaxViT: Which is faster?"),
        ("And how many parameters?", TWO_CITED, ("cb", "mx"), "CBNet and MaxViT: how many parameters?"),
        ("How long did it take to train?", ONE_CITED, ("mx",), "How long did MaxViT take to train?"),
        ("And what fraction of the model parameters does it need to store?", ONE_CITED, ("mx",),
         "What fraction of the model parameters does MaxViT need to store?"),
        # the pronoun is the subject of its own clause: it points back
        ("What method does it propose?", ONE_CITED, ("mx",), "What method does MaxViT propose?"),
        # a demonstrative after a described (not named) noun of the question, and "each" as a subject
        ("What is the accuracy of this model?", ONE_CITED, ("mx",), "What is the accuracy of MaxViT?"),
        ("What baseline does each compare against?", TWO_CITED, ("cb", "mx"),
         "What baseline does CBNet and MaxViT compare against?"),
        # "of" before a description is no subject of the question's own ("a limitation of earlier models")
        ("What limitation of earlier models does it overcome?", ONE_CITED, ("mx",),
         "What limitation of earlier models does MaxViT overcome?"),
        # "the multimodal version" is a version of the paper at hand
        ("What did the multimodal version get on TextVQA?", ONE_CITED, ("mx",),
         "What did MaxViT get on TextVQA?"),
        # "explain how …" opens a clause, not a subject of the question's own: its pronoun points back
        ("Explain how they train it.", ONE_CITED, ("mx",), "Explain how they train MaxViT."),
        # a measure asked with no verb and no subject of its own
        ("How much faster at inference?", ONE_CITED, ("mx",), "MaxViT: How much faster at inference?"),
        # "the two" as the subject of a verb: the papers at hand
        ("How do the two differ in focus?", TWO_CITED, ("cb", "mx"), "How do CBNet and MaxViT differ in focus?"),
        # a part of the papers at hand ("any" is no name, though the name pattern reads case-blind), "these" alone
        ("Do any of them report VTAB-1k numbers?", TWO_CITED, ("cb", "mx"),
         "Do CBNet and MaxViT report VTAB-1k numbers?"),
        # "both of them", "either of them", "each of them" (not a name, nor the subject of an "of" phrase before it)
        ("How much faster do both of them make generation?", TWO_CITED, ("cb", "mx"),
         "How much faster do CBNet and MaxViT make generation?"),
        ("Does either of them report results on VTAB?", TWO_CITED, ("cb", "mx"),
         "Does CBNet or MaxViT report results on VTAB?"),
        ("Does neither of those release code?", TWO_CITED, ("cb", "mx"), "Does neither CBNet nor MaxViT release code?"),
        ("What's the parameter count of the biggest model in each of them?", TWO_CITED, ("cb", "mx"),
         "What's the parameter count of the biggest model in CBNet and MaxViT?"),
        # a demonstrative over what a paper builds, and "that" standing alone
        ("How many images are in that dataset, and how high-res are they?", ONE_CITED, ("mx",),
         "How many images are in MaxViT, and how high-res are they?"),
        ("And how many epochs of fine-tuning did that take?", ONE_CITED, ("mx",),
         "How many epochs of fine-tuning did MaxViT take?"),
        # a modal verb before "the code" is no subject of the question's own; "the backbone on ADE20K" is no paper
        # the question describes
        ("Will the code be released for it?", ONE_CITED, ("mx",), "Will the code be released for MaxViT?"),
        ("Also, are there results on COCO?", ONE_CITED, ("mx",), "MaxViT: are there results on COCO?"),
        ("And what about the backbone on ADE20K?", ONE_CITED, ("mx",), "MaxViT: what about the backbone on ADE20K?"),
        # "the first … the other": each by its own paper
        ("How does the first compare to the other in COCO box AP?", TWO_CITED, ("cb", "mx"),
         "How does CBNet compare to MaxViT in COCO box AP?"),
        ("Do any of those use extra data?", TWO_CITED, ("cb", "mx"), "Do CBNet and MaxViT use extra data?"),
        ("How do these compare on COCO?", TWO_CITED, ("cb", "mx"), "How do CBNet and MaxViT compare on COCO?"),
        # a comparison among the papers at hand, and the other one of two
        ("How many parameters does the bigger one have?", TWO_CITED, ("cb", "mx"),
         "How many parameters does CBNet and MaxViT have?"),
        ("What does the other one report?", TWO_CITED, ("mx",), "What does MaxViT report?"),
        ("What did the papers above find?", TWO_CITED, ("cb", "mx"), "What did CBNet and MaxViT find?"),
        ("Summarize the papers you just cited.", TWO_CITED, ("cb", "mx"), "Summarize CBNet and MaxViT."),
    ],
)
def test_follow_ups_resolve_to_the_cited_papers(question, history, papers, standalone) -> None:
    turn = resolve(question, history, lookup)
    assert turn.follow_up
    assert turn.papers == papers
    assert turn.standalone == standalone
    assert turn.names and all(name in turn.standalone for name in turn.names)  # what the rewrite put in


@pytest.mark.parametrize(
    ("question", "history"),
    [
        ("How does UniBench work?", ABSTAINED),
        ("What is GroupMamba and what problem does it address?", ONE_CITED),
        ("Which papers study token pruning for vision-language models?", TWO_CITED),
        ("Summarise the all-MLP backbone for image restoration and what it improves.", TWO_CITED),
        ("What ImageNet accuracy does MaxViT reach?", ONE_CITED),
        ("Which segmentation papers have code?", TWO_CITED),
        # a plural pronoun or "both" inside a question about its own papers points at nothing in the history
        ("Which papers train their models on LAION?", ONE_CITED),
        ("Which papers report both COCO and ADE20K results?", TWO_CITED),
        ("Does any paper unify 50+ benchmarks, and how long does its distilled set take to run?", ONE_CITED),
        ("Is there a paper on fractal pre-training? What does it propose?", ONE_CITED),  # "a paper" is the referent
        # "And" before a whole question with a named subject of its own ("And on ADE20K?" stays a follow-up)
        ("And what does FiTv2 add on top of the original Flexible Vision Transformer?", ONE_CITED),
        ("Also, how fast is GroupMamba?", TWO_CITED),
        ("Also, by how much does the DeepSpeed inference system reduce latency in latency-oriented scenarios?",
         ONE_CITED),
        ("What does the larger variant of GroupMamba reach?", ONE_CITED),  # the question says of what
        # the paper the question asks for, or describes, is what its pronoun means
        ("Which paper evaluates its tracker on LaSOT with a ViT-g backbone?", ONE_CITED),
        ("In the paper that benchmarks data curation, what dataset did they build?", TWO_CITED),
        # "And …" before a whole question that asks for papers or says enough to be searched ("And on COCO?", "And how
        # many parameters?" stay follow-ups)
        ("And which paper proposes a heavy-neck detector?", ONE_CITED),
        # "what about" a paper the question describes, a question about the collection, a named subject after a modal
        ("And what about the paper that splits a vision transformer across edge devices: how much smaller do the "
         "sub-models get?", ONE_CITED),
        ("Also, is there work on face recognition in this collection?", ONE_CITED),
        ("Up to what resolution can Swin Transformer V2 be trained, and how much less labelled data does it need?",
         ONE_CITED),
        ("And how does the hypercomplex convolution network reduce parameters?", TWO_CITED),
        # short, but with a subject of its own: a question for papers, for what a thing is, or a name
        ("Which papers use pruning?", ONE_CITED),
        ("What is pruning?", ONE_CITED),
        ("What's pruning?", ONE_CITED),
        # a plural pronoun after an "of" phrase of the question's own ("claims from published papers … of them")
        ("When the benchmark re-checked claims of published papers, what share of them held?", ONE_CITED),
        ("What\u2019s distillation?", TWO_CITED),
        ("How fast is GroupMamba?", ONE_CITED),
        # a determiner, a dummy "it", a superlative with a hyphen, an opening clause, a set the question names
        ("Which paper sends each pixel to an upsampler of suitable capacity?", TWO_CITED),
        ("How many GPU hours did it take to train Vision Mamba?", ONE_CITED),
        ("How much does the hidden-state-mixer Mamba gain over the second-best model?", TWO_CITED),
        ("Leaving aside the radiology assistant, which papers apply their technique to LLaVA?", TWO_CITED),
        ("Which state-space-model (Mamba) papers release their code?", TWO_CITED),
        ("Which papers speed up Stable Diffusion by compressing its UNet?", ONE_CITED),
        ("Among the super-resolution papers, which ones do not point to any code release?", TWO_CITED),
        # "the first paper to…" describes a paper; it is no position in the previous answer
        ("What is the first paper to scale the VQGAN codebook to 100,000?", TWO_CITED),
        # a measure with a verb, or papers of its own, or "the two" before a noun of the question's own
        ("How much faster does the hypercomplex network run?", ONE_CITED),
        ("How many papers study data pruning?", ONE_CITED),
        ("What are the two stages of the training recipe?", TWO_CITED),
        # "these" before what the question itself lists, "the other" of something the question names
        ("Which papers use any of these datasets: COCO or LVIS?", TWO_CITED),
        ("What is the other model in the tracking paper?", TWO_CITED),
        # a paper the question describes or names before its pronoun, papers it counts, the whole collection
        ("How does the paper on fractal pre-training generate its images?", ONE_CITED),
        ("In the DeepSpeed paper, what do they claim?", TWO_CITED),
        ("Give me two papers on token pruning and their speed-ups.", TWO_CITED),
        ("Which of the papers in the collection studies data pruning?", TWO_CITED),
    ],
)
def test_self_contained_questions_are_searched_as_typed(question, history) -> None:
    turn = resolve(question, history, lookup)
    assert not turn.follow_up
    assert turn.standalone == question and turn.papers == ()


def test_the_one_with_code_is_the_paper_whose_abstract_says_its_code_is_out() -> None:
    """No link in the collection, but "Codes and trained models are available online": that paper has code."""
    said = Paper(id="dd", title="DDRNet: Dual-resolution Networks", abstract="We propose DDRNet. Codes and trained "
                 "models are available online.")  # fmt: skip
    papers = {**PAPERS, "dd": said}
    history = [Message(role="user", content="Which segmentation networks are there?"),
               Message(role="assistant", content="MaxViT [1]. DDRNet [2].", papers=("mx", "dd"))]  # fmt: skip
    turn = resolve("Summarise the one with code.", history, lambda ids: [papers[i] for i in ids if i in papers])
    assert turn.papers == ("dd",)


def test_without_history_nothing_is_a_follow_up() -> None:
    turn = resolve("What does it get on COCO?", [], lookup)
    assert not turn.follow_up and turn.standalone == "What does it get on COCO?"


def test_a_pronoun_after_an_abstention_borrows_the_previous_subject() -> None:
    history = [Message(role="user", content="What does UniBench measure?"),
               Message(role="assistant", content="The collection does not say.")]  # fmt: skip
    turn = resolve("How large is it?", history, lookup)
    assert turn.follow_up and turn.papers == () and turn.standalone == "How large is UniBench?"


FIRST_OF_TWO = [
    *TWO_CITED,
    Message(role="user", content="What does the first one get on COCO?"),
    Message(role="assistant", content="CBNet: 59.4% box AP [1].", papers=("cb",)),
]


@pytest.mark.parametrize("question", ["And the second one?", "And the other one?", "What about the other?",
                                      "Same for the second paper."])  # fmt: skip
def test_a_bare_reference_asks_the_previous_question_of_the_paper_it_means(question) -> None:
    """After "What does the first one get on COCO?" (answered from CBNet alone), "the second one" is the second paper
    of the answer that cited two, and "the other one" the one the last answer left out; the turn asks the previous
    question of it."""
    turn = resolve(question, FIRST_OF_TWO, lookup)
    assert turn.papers == ("mx",)
    assert turn.standalone == "What does MaxViT get on COCO?"


def test_a_bare_reference_swaps_the_names_of_a_previous_question_that_named_its_paper() -> None:
    history = [*TWO_CITED, Message(role="user", content="What does CBNet get on COCO?"),
               Message(role="assistant", content="CBNet: 59.4% box AP [1].", papers=("cb",))]  # fmt: skip
    turn = resolve("And the other one?", history, lookup)
    assert turn.papers == ("mx",) and turn.standalone == "What does MaxViT get on COCO?"


def test_an_ordinal_past_the_cited_papers_falls_back_to_the_first() -> None:
    turn = resolve("What about the third one?", TWO_CITED, lookup)
    assert turn.papers == ("cb",)


GROUP = Paper(id="gm", title="GroupMamba: Parameter-Efficient and Accurate Group Visual State Space Model",
              abstract="We introduce GroupMamba.")  # fmt: skip


def named(name: str) -> list[Paper]:
    """The papers a name belongs to, as the assistant's index would find them (datasets name no paper)."""
    return [p for p in (CBNET, MAXVIT, GROUP) if name.lower() in (p.title.split(":")[0].lower(), p.id)]


@pytest.mark.parametrize(
    "question",
    ["And GroupMamba?", "What about GroupMamba?", "Same question for GroupMamba.", "How about for GroupMamba"],
)
def test_another_papers_name_asks_the_previous_question_about_it(question) -> None:
    turn = resolve(question, ONE_CITED_BY_NAME, lookup, named)
    assert turn.follow_up and turn.papers == ("gm",)
    assert turn.standalone == "What top-1 accuracy does GroupMamba reach on ImageNet?"


def test_a_dataset_after_and_keeps_the_previous_paper() -> None:
    turn = resolve("And on ADE20K?", ONE_CITED_BY_NAME, lookup, named)
    assert turn.papers == ("mx",) and turn.standalone == "MaxViT: on ADE20K?"
    turn = resolve("What about COCO?", ONE_CITED_BY_NAME, lookup, named)
    assert turn.papers == ("mx",)


def test_a_switch_needs_a_name_in_the_previous_question() -> None:
    """The previous question described its paper ("the multi-axis attention backbone"): nothing to swap, so the turn
    is read as before (a bare name after "And" about the paper at hand)."""
    turn = resolve("And GroupMamba?", ONE_CITED, lookup, named)
    assert turn.papers == ("mx",)



@pytest.mark.parametrize(
    ("previous", "standalone"),
    [
        ("Which papers report both COCO and ADE20K?", "Does GroupMamba report both COCO and ADE20K?"),
        ("Which papers are about data pruning?", "Is GroupMamba about data pruning?"),
        ("Which models have released their code?", "Has GroupMamba released their code?"),
    ],
)
def test_another_papers_name_after_a_list_asks_the_list_question_of_it(previous, standalone) -> None:
    history = [Message(role="user", content=previous), TWO_CITED[1]]
    turn = resolve("And GroupMamba?", history, lookup, named)
    assert turn.follow_up and turn.papers == ("gm",) and turn.standalone == standalone


def test_a_list_question_in_the_past_tense_is_not_rewritten_for_another_paper() -> None:
    history = [Message(role="user", content="Which papers evaluated on COCO?"), TWO_CITED[1]]
    turn = resolve("And GroupMamba?", history, lookup, named)
    assert turn.papers == ("cb", "mx")  # read as before: an ellipsis over the listed papers
