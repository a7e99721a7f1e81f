"""Rule-based condensing of follow-ups: ordinals, pronouns and numbered references resolve against history."""

from __future__ import annotations

from rag.condense import cited_names, condense_rule
from rag.types import Message

HISTORY = [
    Message(role="user", content="Which detection backbones are in the collection?"),
    Message(role="assistant", content="- MaxViT: a multi-axis backbone [1].\n- CBNet: composite backbones [2]."),
]


def test_cited_names_in_citation_order() -> None:
    assert cited_names(HISTORY[1].content) == ["MaxViT", "CBNet"]
    assert cited_names("PyramidDrop [1] drops tokens. The remote-sensing work [2] prunes.") == [
        "PyramidDrop",
        "remote-sensing work",
    ]
    assert cited_names("Sources:\n[1] Swin Transformer V2: Scaling Up\n[2] GroupMamba: Groups") == [
        "Swin Transformer V2",
        "GroupMamba",
    ]


def test_ordinal_resolves_to_the_cited_paper() -> None:
    out = condense_rule("and what did the second one get on COCO?", HISTORY)
    assert "CBNet" in out and "COCO" in out
    assert "second one" not in out and "MaxViT" not in out
    assert condense_rule("What about the first paper?", HISTORY).startswith("What about MaxViT")
    assert "CBNet" in condense_rule("How big is the last one?", HISTORY)


def test_pronouns_resolve() -> None:
    single = [Message(role="user", content="Is there work on low-rank compression?"),
              Message(role="assistant", content="PELA [1] compresses a pre-trained model.")]  # fmt: skip
    assert condense_rule("How much does it shrink the original model?", single) == (
        "How much does PELA shrink the original model?"
    )
    assert "PELA's" in condense_rule("What is its accuracy?", single)
    both = condense_rule("Do they both report ImageNet results?", HISTORY)
    assert "MaxViT and CBNet" in both
    assert "MaxViT" in condense_rule("What does that paper propose?", HISTORY)
    assert "CBNet" in condense_rule("Tell me more about paper [2]", HISTORY)


def test_short_follow_up_without_reference_borrows_the_previous_question() -> None:
    out = condense_rule("What about segmentation?", HISTORY)
    assert out.startswith("What about segmentation?") and "detection backbones" in out


def test_no_history_and_self_contained_questions_pass_through() -> None:
    assert condense_rule("What is MaxViT?", []) == "What is MaxViT?"
    question = "Which papers study data pruning for CLIP models on LAION?"
    assert condense_rule(question, HISTORY) == question


def test_previous_question_names_are_used_when_the_answer_cited_nothing() -> None:
    history = [Message(role="user", content="What accuracy does GroupMamba reach?"),
               Message(role="assistant", content="The collection does not say. No paper matches.")]  # fmt: skip
    assert "GroupMamba" in condense_rule("And how many parameters does it have?", history)
