"""The evidence model: its data file, its fit, and the question-shape rules it relies on."""

from __future__ import annotations

import numpy as np
import pytest

from evals.fit_evidence import fit_logistic
from rag.evidence import (
    LIST_FEATURES,
    PAPER_FEATURES,
    SENTENCE_FEATURES,
    QueryType,
    alternatives,
    counted_nouns,
    counts,
    covers,
    exact_terms,
    given_numbers,
    load_model,
    mentioned,
    query_type,
    wants_quantity,
)


def test_the_shipped_model_matches_the_code_features() -> None:
    model = load_model()
    assert model.sentence.features == SENTENCE_FEATURES and model.paper.features == PAPER_FEATURES
    assert model.sentence.weights.shape == (len(SENTENCE_FEATURES),)
    assert model.list_paper.features == LIST_FEATURES and model.answer.features == PAPER_FEATURES
    assert 0 < model.answer_threshold < 1 and 0 < model.list_threshold < 1
    assert np.any(model.paper.weights != 0), "the model file holds fitted weights, not the bootstrap zeros"
    own = model.own_sentence
    assert own.features == SENTENCE_FEATURES
    relative = [SENTENCE_FEATURES.index(f) for f in ("cosine_gap", "bm25", "paper_rank", "piece_gap")]
    assert np.all(own.weights[relative] == 0) and np.any(own.weights != 0)


def test_a_feature_that_could_not_be_measured_moves_nothing() -> None:
    """NaN (a piece match without piece states) reads as the training mean: the probability of the other features."""
    from rag.evidence import LogisticModel

    model = LogisticModel(("a", "b"), np.array([0.5, 0.2]), np.array([0.1, 0.1]), np.array([1.0, 2.0]), 0.0)
    rows = np.array([[0.7, np.nan], [0.7, 0.2], [0.7, 0.9]])
    probs = model.prob(rows)
    assert probs[0] == probs[1] and probs[2] > probs[0]


def test_an_embedder_without_piece_states_still_answers(tmp_path) -> None:
    """Sentences embedded alone (an OpenAI-compatible embedder keeps no token states): the piece match is not
    measured, and the evidence still finds and gates the paper that answers."""
    from rag import Assistant, Settings
    from rag.evidence import score
    from rag.sentence_cache import SentenceCache

    assistant = Assistant(Settings.load(data_dir=tmp_path, llm="extractive"))
    question = "Which vision backbone reaches 86.5% top-1 on ImageNet-1K without extra data?"
    hits = assistant.search(question, k=10)
    alone = SentenceCache(assistant.embedder, tmp_path / "alone")  # no chunking: no late pooling, no states
    plain, pieces = score(question, hits, alone), score(question, hits, assistant._chain("extractive").cache)
    column = PAPER_FEATURES.index("piece_match")
    assert np.isnan(plain.paper_rows[:, column]).all() and not np.isnan(pieces.paper_rows[:, column]).any()
    sentence = [SENTENCE_FEATURES.index(f) for f in ("piece_match", "piece_gap")]
    assert np.isnan(plain.sentence_rows[:, sentence]).all() and not np.isnan(pieces.sentence_rows[:, sentence]).any()
    model = load_model()
    assert plain.answerable(model) and pieces.answerable(model)
    assert "MaxViT" in plain.papers[0].hit.paper.title == pieces.papers[0].hit.paper.title


def test_each_sentence_is_matched_piece_by_piece_on_its_own_pieces(tmp_path) -> None:
    """A sentence's piece match reads only its own pieces (in the context of the abstract): it is its question pieces'
    best cosines among that sentence's pieces, the abstract's match is at least every sentence's, and the sentence
    stating the asked-for number matches best."""
    from rag import Assistant, Settings
    from rag.evidence import piece_matches

    assistant = Assistant(Settings.load(data_dir=tmp_path, llm="extractive"))
    cache = assistant._chain("extractive").cache
    question = "What ImageNet-1K top-1 accuracy does MaxViT reach without extra data?"
    paper = next(h.paper for h in assistant.search(question, k=5) if "MaxViT" in h.paper.title)
    ps = cache.get([paper])[0]
    states = cache.query_states(question)
    whole, per_sentence = piece_matches(states, ps)
    rows = ps.sentence_pieces()
    assert len(rows) == len(ps.sentences) and rows[-1].stop == len(ps.piece_states)
    i = next(n for n, s in enumerate(ps.sentences) if "86.5%" in s)
    assert per_sentence[i] == pytest.approx(float((states @ ps.piece_states[rows[i]].T).max(axis=1).mean()))
    assert whole >= np.nanmax(per_sentence) and np.nanargmax(per_sentence) == i


def test_names_a_follow_up_put_in_are_not_exact_terms() -> None:
    """"Which of PIQA and Model-Based ISP has code, trained on LSVQ?": the names refer, only LSVQ constrains."""
    question = "Which of PIQA and Model-Based ISP has code, and is it trained on LSVQ?"
    assert set(exact_terms(question, [])) >= {"PIQA", "Model-Based", "ISP", "LSVQ"}
    assert exact_terms(question, [], references=["PIQA", "Model-Based ISP"]) == ["LSVQ"]


def test_a_papers_own_evidence_does_not_depend_on_the_other_sources(tmp_path) -> None:
    """A list judges each paper by its own match: adding a stronger source lowers a paper's relative sentence
    probability, never its own-sentence features."""
    from rag import Assistant, Settings
    from rag.evidence import score

    assistant = Assistant(Settings.load(data_dir=tmp_path, llm="extractive"))
    question = "Which papers prune training data to beat power-law scaling?"
    hits = assistant.search(question, k=5)
    weaker = hits[1:]  # without the best source
    cache = assistant._chain("extractive").cache
    with_best = score(question, hits, cache)
    without = score(question, weaker, cache)
    own = [PAPER_FEATURES.index(f) for f in ("own_best", "own_second")]
    best = PAPER_FEATURES.index("best_sentence")
    a, b = with_best.paper_rows[1:], without.paper_rows
    assert np.allclose(a[:, own], b[:, own])
    assert not np.allclose(a[:, best], b[:, best])


def test_a_list_reads_each_paper_against_the_questions_other_papers() -> None:
    """The list-paper rows are the paper features, then their z-scores within the question: a paper that stands out
    from the other retrieved ones scores above 0; a feature all papers share scores 0."""
    from rag.evidence import list_rows

    rows = np.zeros((4, len(PAPER_FEATURES)))
    rows[:, 0] = [0.9, 0.2, 0.2, 0.1]  # best_sentence: the first paper stands out
    rows[:, 1] = 0.5  # the same for all
    out = list_rows(rows)
    assert out.shape == (4, len(LIST_FEATURES))
    assert np.array_equal(out[:, : len(PAPER_FEATURES)], rows)
    within = out[:, len(PAPER_FEATURES) :]
    assert within[0, 0] > 1.0 > 0 > within[3, 0] and np.all(within[:, 1] == 0)
    assert np.allclose(list_rows(rows + 0.3)[:, len(PAPER_FEATURES) :], within)  # relative to the question only


def test_the_gate_threshold_keeps_the_most_value_within_the_false_abstention_bound() -> None:
    from evals.fit_evidence import most_valuable_threshold

    rows = [
        (0.9, True, True, 1.0),  # strong and right: shown
        (0.5, True, True, 0.0),  # answered wrongly: abstaining on it costs a false abstention and gains nothing
        (0.6, False, True, 0.0),  # unanswerable, yet an answer was composed: the gate should stop it
    ]
    assert 0.6 < most_valuable_threshold(rows, max_false_abstention=0.5) <= 0.9
    assert most_valuable_threshold(rows, max_false_abstention=0.0) <= 0.5  # no false abstention allowed
    # partly right answers count in part: two worth 0.6 each outweigh stopping one unanswerable item below them,
    # one worth 0.4 does not
    partial = [(0.5, True, True, 0.6), (0.52, True, True, 0.6), (0.55, False, True, 0.0)]
    assert most_valuable_threshold(partial, max_false_abstention=1.0) <= 0.5
    assert 0.55 < most_valuable_threshold([(0.5, True, True, 0.4), *partial[2:]], max_false_abstention=1.0) <= 0.6


def test_an_answer_is_worth_its_share_of_required_strings_and_gold_citations() -> None:
    from types import SimpleNamespace

    from evals.fit_evidence import Sample, _answer_value
    from evals.gold_schema import GoldItem
    from rag.compose import Composition

    item = GoldItem(id="x", type="multi_paper", question="Which papers do X?", gold_titles=("A Paper", "B Paper"),
                    must_include=("Alpha", "Beta"))  # fmt: skip
    papers = [SimpleNamespace(number=n + 1, hit=SimpleNamespace(paper=SimpleNamespace(title=t)))
              for n, t in enumerate(["A Paper", "B Paper", "C Paper"])]  # fmt: skip
    sample = Sample(item, SimpleNamespace(papers=papers))  # type: ignore[arg-type]
    assert _answer_value(sample, Composition("- Alpha [1]\n- Beta [2]", QueryType.LIST, (1, 2))) == pytest.approx(1.0)
    assert _answer_value(sample, Composition("- Alpha [1]", QueryType.LIST, (1,))) == pytest.approx(0.5)
    assert _answer_value(sample, Composition("- Alpha [1]\n- Gamma [2]", QueryType.LIST, (1, 3))) == pytest.approx(0.25)
    assert _answer_value(sample, Composition("", QueryType.LIST, ())) == 0.0


def test_a_list_questions_gate_reads_how_likely_its_best_papers_are_to_be_listed() -> None:
    from types import SimpleNamespace

    from rag.evidence import LIST_ANSWER_FEATURES, LISTED_PROBS, answer_row

    rows = np.arange(2 * len(PAPER_FEATURES), dtype=float).reshape(2, len(PAPER_FEATURES))
    papers = [SimpleNamespace(number=2, list_prob=0.3), SimpleNamespace(number=1, list_prob=0.8)]  # best first
    fact = answer_row(QueryType.FACTOID, rows, papers)  # type: ignore[arg-type]
    assert np.array_equal(fact, rows[1:2])  # the best paper's row alone
    listing = answer_row(QueryType.LIST, rows, papers)  # type: ignore[arg-type]
    assert listing.shape == (1, len(LIST_ANSWER_FEATURES)) and LISTED_PROBS == 3
    assert np.array_equal(listing[0, : len(PAPER_FEATURES)], rows[1])
    assert np.allclose(listing[0, len(PAPER_FEATURES) :], [0.8, 0.3, 0.0])  # highest first, 0 past the last paper
    model = load_model()
    assert model.list_answer.features == LIST_ANSWER_FEATURES
    listed = [LIST_ANSWER_FEATURES.index(f"list_prob_{n + 1}") for n in range(LISTED_PROBS)]
    assert np.all(model.list_answer.weights[listed] >= 0) and model.list_answer.weights[listed[0]] > 0


def test_the_list_cut_off_sits_on_the_plateau_not_on_a_lone_peak() -> None:
    from evals.fit_evidence import smoothed_best

    curve = np.asarray([[0.2], [0.9], [0.3], [0.5], [0.8], [0.8], [0.8], [0.5]])
    assert smoothed_best(curve, 0) == (1, 0)
    assert smoothed_best(curve, 1) == (5, 0)


def test_a_list_answer_is_scored_on_the_papers_evidence_lists() -> None:
    """The list cut-offs are chosen on what `Evidence.listed` returns, precision weighted above recall: a missing
    paper costs less than an off-topic one."""
    from types import SimpleNamespace

    from evals.fit_evidence import Sample, _list_score
    from evals.gold_schema import GoldItem

    def sample(listed: list[str]) -> Sample:
        papers = [SimpleNamespace(hit=SimpleNamespace(paper=SimpleNamespace(title=t))) for t in listed]
        item = GoldItem(id="x", type="multi_paper", question="Which papers do X?", gold_titles=("A Paper", "B Paper"),
                        must_include=("A", "B"))
        return Sample(item, SimpleNamespace(listed=lambda model: papers))  # type: ignore[arg-type]

    model = load_model()
    assert _list_score(sample(["A Paper", "B Paper"]), model) == pytest.approx(1.0)
    missing = _list_score(sample(["A Paper"]), model)
    off_topic = _list_score(sample(["A Paper", "C Paper"]), model)
    assert 1.0 > missing > off_topic > 0.0
    assert _list_score(sample(["C Paper"]), model) == 0.0 and _list_score(sample([]), model) == 0.0


def test_an_exact_term_beside_a_plain_alternative_is_not_required() -> None:
    """"whether via attention or MLPs": a paper using attention need not say MLPs; "COCO or ADE20K" needs one."""
    from rag.evidence import open_alternatives

    question = "Which works use multi-axis mixing, whether via attention or MLPs?"
    assert open_alternatives(question, ["MLPs"]) == {"MLPs"}
    both = "Which papers report results on COCO or ADE20K?"
    assert open_alternatives(both, ["COCO", "ADE20K"]) == set()
    assert alternatives(both, ["COCO", "ADE20K"]) == {"COCO", "ADE20K"}
    assert open_alternatives("Which papers spread inference across several GPUs or devices?", ["GPUs"]) == {"GPUs"}


def test_logistic_fit_recovers_the_informative_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 1] + 0.1 * rng.normal(size=400) > 0.3).astype(float)  # only feature 1 matters
    model = fit_logistic(x, y, ("a", "b", "c"))
    assert abs(model.weights[1]) > 5 * max(abs(model.weights[0]), abs(model.weights[2]))
    probs = model.prob(x)
    assert ((probs >= 0.5) == (y == 1)).mean() > 0.9


def test_logistic_fit_reads_an_unmeasured_value_as_the_mean() -> None:
    """A row whose feature could not be measured (NaN: a sentence with no content pieces) is fit at the feature's mean
    over the measured rows, as the model reads it later, and does not spoil the fit."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] > 0).astype(float)
    holed = x.copy()
    holed[:20, 1] = np.nan
    model = fit_logistic(holed, y, ("a", "b"))
    assert np.isfinite(model.weights).all() and model.mean[1] == pytest.approx(x[20:, 1].mean())
    assert ((model.prob(holed) >= 0.5) == (y == 1)).mean() > 0.9


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which papers propose Mamba-based vision backbones?", QueryType.LIST),
        ("Compare MaxViT and GroupMamba on ImageNet.", QueryType.LIST),
        ("Which fine-tuning methods train under 1% of the weights?", QueryType.LIST),  # hyphenated modifiers
        # "both … and" in a summary's description is no list; "which <modifiers> method" identifies one paper
        ("Summarize the approach that models how both the person and the background affect quality.",
         QueryType.SUMMARY),
        ("Do both MaxViT and GroupMamba report COCO?", QueryType.LIST),
        ("Which super-resolution pruning method preserves the sparse model's trainability?", QueryType.IDENTIFY),
        ("Which vision backbone reaches 86.5% top-1 on ImageNet-1K?", QueryType.IDENTIFY),
        # what one paper uses or reports: a singular subject after the noun
        ("Which datasets does MaxViT use?", QueryType.FACTOID),
        ("On which perturbation datasets is the method that robustifies large models evaluated?", QueryType.FACTOID),
        ("Which benchmarks do the Mamba backbones report?", QueryType.LIST),
        ("Which detection or segmentation models work zero-shot?", QueryType.LIST),
        ("Which class-conditional image generators beat an FID of 2?", QueryType.LIST),
        ("Summarise the composite backbone detector paper.", QueryType.SUMMARY),
        ("What is the core idea of dropping image tokens progressively?", QueryType.SUMMARY),
        ("What is MaxViT?", QueryType.SUMMARY),
        ("Which paper stitches pretrained models together?", QueryType.IDENTIFY),
        ("What top-1 accuracy does MaxViT reach?", QueryType.FACTOID),
        ("What is the accuracy of MaxViT?", QueryType.FACTOID),  # a quantity, not a definition
        ("Besides PyramidDrop, what other approaches reduce visual tokens?", QueryType.LIST),
        ("Besides images, what other data does it test on?", QueryType.FACTOID),  # "does" is no plural noun
        ("How many pretrained backbones does the benchmark compare in total?", QueryType.FACTOID),  # a count
        ("Which papers report how many GPU hours they train?", QueryType.LIST),
        ("How many of them release code?", QueryType.LIST),  # which of the papers at hand do
        ("How many of Vision Mamba (Vim) and GroupMamba release code?", QueryType.LIST),  # the same, rewritten
        ("Which of them report results on COCO?", QueryType.LIST),
        ("What techniques did the 3-billion-parameter Swin model use to scale up?", QueryType.SUMMARY),
        ("What is the Any-Size-Diffusion pipeline?", QueryType.SUMMARY),  # "Size" is part of a name
        ("What does the paper that swaps LayerNorm for BatchNorm in transformers propose to keep training stable?",
         QueryType.SUMMARY),
        ("MaxViT: Tell me more?", QueryType.SUMMARY),  # a bare follow-up's rewrite
        # however long the description of the paper, "what does … propose?" asks for its contribution
        ("What does the paper that builds high-performance object detectors by combining several identical "
         "off-the-shelf pre-trained backbones propose?", QueryType.SUMMARY),
        # "what <modifiers> <plural>" asks for papers too, modifiers in parentheses included; a verb, an article or
        # "kinds of" among the words is no modifier
        ("What parameter-efficient transfer learning methods train a separate side network?", QueryType.LIST),
        ("Which state-space (Mamba) vision backbones are evaluated on ImageNet?", QueryType.LIST),
        ("Which transformer designs share parameters across depth?", QueryType.LIST),
        ("What does Efficiently Robustify Pre-trained Models propose?", QueryType.SUMMARY),
        ("What do the deep dual-resolution networks for road scenes do?", QueryType.SUMMARY),  # what it does as a whole
        ("What kinds of models do the methods it is compared with deploy?", QueryType.FACTOID),
    ],
)
def test_query_types(question: str, kind: QueryType) -> None:
    assert query_type(question) is kind


def test_quantity_questions_and_counted_nouns() -> None:
    assert wants_quantity("How much GPU memory does Vim save?")
    assert wants_quantity("What share of parameters is trained?")
    assert not wants_quantity("Which paper stitches pretrained models together?")
    # "which paper" asks for a paper, whatever describes it; "map" is not mAP
    assert not wants_quantity("Which paper trades accuracy against efficiency at runtime?")
    assert not wants_quantity("What does the learnable ISP map between RAW and RGB?")
    assert wants_quantity("What box AP does it reach on COCO?")
    assert wants_quantity("What perplexity does it reach on language modeling?")  # a named measure asks for a number
    assert counted_nouns("How many GPU hours did training take?") == {"hour"}


def test_a_sentence_matches_the_kind_of_number_asked_for() -> None:
    from rag.evidence import _unit_match

    assert _unit_match("How long does the benchmark take to run?", "It runs in 5 minutes on one GPU.")
    assert not _unit_match("How long does the benchmark take to run?", "It covers 50 benchmarks.")
    assert _unit_match("How large does the model stay?", "The model keeps a compact size (13~15 M parameters).")
    assert _unit_match("How deep can it go?", "It builds transformers with more than 1000 layers.")
    assert _unit_match("By how much does it cut memory?", "It saves 86.8% GPU memory.")
    assert not _unit_match("Which paper is about faces?", "It holds 4M identities.")


def test_the_numbers_a_question_states_are_not_its_answer() -> None:
    """"the 1-bit adapters", "Grounding DINO 1.5": a wh-question's own numbers describe what it asks about, so a
    sentence holding only them states no quantity; a yes/no question may restate the number it checks."""
    from rag.evidence import _new_numbers, _unit_match, given_numbers

    given = given_numbers("What average accuracy do the 1-bit adapters reach on the VTAB-1K benchmark?")
    assert given == {"1"}
    assert not _new_numbers("1-bit adapters outperform all other PET methods on the VTAB-1K benchmark.", given)
    assert _new_numbers("1-bit adapters reach 75.3% on the VTAB-1K benchmark.", given)
    assert given_numbers("Does MaxViT reach 86.5% top-1 accuracy?") == frozenset()
    # a number written out is a number: "hundreds of GPUs", "a quarter of regular training"
    assert _new_numbers("It runs by leveraging hundreds of GPUs.", given_numbers("How many GPUs does it use?"))
    assert _new_numbers("It cuts the training cost to a quarter of regular training.", frozenset())
    assert not _new_numbers("Both stages are trained jointly.", frozenset())
    assert not _new_numbers("It scales to trillion parameter models.", given_numbers(
        "How many GPUs does the system use to run trillion-parameter models?"))
    assert _unit_match("How fast does the edge model run?", "It achieves a speed of 75.2 FPS.")
    assert not _unit_match("How fast does the edge model run?", "It improves AP by 3.2.")


def test_why_and_where_ask_for_no_number() -> None:
    """"Where do the composition problems of images of any size come from?" asks a source, whatever "size" says."""
    assert not wants_quantity("Where do the composition problems of images of any size come from?")
    assert not wants_quantity("Why does the tracker train faster at a larger size?")
    assert wants_quantity("What size of images does the pipeline produce?")


def test_a_descriptive_compound_keeps_only_its_name() -> None:
    """"the FLOP-efficiency-driven YOLO-centric detector": the exact terms are FLOP and YOLO, not the compounds."""
    terms = exact_terms("What mAP does the FLOP-efficiency-driven YOLO-centric detector reach?", [])
    assert terms == ["mAP", "FLOP", "YOLO"]
    assert exact_terms("How many limitations of encoder-plus-LLM models does it name?", []) == ["LLM"]
    # a name, a measure or a size stays whole
    assert exact_terms("Which DiT models report top-1 with Swin-L, ViT-g or 1-bit adapters?", []) == [
        "DiT", "top-1", "Swin-L", "ViT-g", "1-bit"]


def test_the_names_a_follow_up_put_in_do_not_make_a_question_ask_for_a_number() -> None:
    """"On which benchmarks did <a title with 'Precision'> beat …?": the title's words name no measure."""
    from rag.evidence import unreferenced

    title = "Revisiting the Parameter Efficiency of Adapters from the Perspective of Precision Redundancy"
    question = f"On which benchmarks did {title} beat the other PET methods?"
    assert wants_quantity(question)  # "Precision" is a named measure
    assert unreferenced(question, [title]) == "On which benchmarks did beat the other PET methods?"
    assert not wants_quantity(unreferenced(question, [title]))


def test_a_unit_the_question_names_must_be_the_answers() -> None:
    """"latency in milliseconds": a speed-up factor is not the answer; "What resolutions" asks for numbers too."""
    from rag.evidence import states_unit

    question = "What per-token latency in milliseconds does the inference system reach?"
    assert not states_unit(question, "It reduces latency by up to 7.3X over the state of the art.")
    assert states_unit(question, "It serves a token in 16.2ms.")
    assert states_unit("How much faster is it?", "It is 2.8x faster.")  # no unit named: any number's unit will do
    # "how long does …" is answered in time, "how fast" in a speed, whatever else the question mentions
    long = "How long does it take to fine-tune a trillion-parameter model on one node?"
    assert not states_unit(long, "It can fit models with hundreds of trillions of parameters.")
    assert states_unit(long, "It trains on 1,000 A100 GPUs for two months.")
    assert states_unit("How long did training take?", "Training takes 10.8 GPU hours.")
    assert not states_unit("How fast does it run on a CPU?", "It reaches 86.5% accuracy.")
    assert states_unit("How fast does it run?", "It runs at 75.2 FPS.")
    assert states_unit("How fast does it run?", "It is 1.7x faster than EfficientNets.")
    assert wants_quantity("What resolutions do the images of the new dataset reach?")


def test_a_factor_may_be_spelled_and_a_collections_size_is_what_it_holds() -> None:
    from rag.evidence import _unit_match, states_unit

    assert states_unit("How fast does it render?", "It renders three orders of magnitude faster.")
    assert states_unit("How fast is it?", "It is three times faster than the baseline.")
    assert _unit_match("How big is the new dataset?", "It contains 5,470 high-resolution images.")
    assert not _unit_match("How big is the new dataset?", "It reaches 86.5% accuracy.")


def test_an_acronym_is_mentioned_by_the_words_it_abbreviates() -> None:
    text = "We find that convolutional neural networks still win; a mixture of experts helps vision-language models."
    assert mentioned(text, ["CNNs"]) == 1 and mentioned(text, ["MoE"]) == 1 and mentioned(text, ["VLM"]) == 1
    assert mentioned(text, ["GAN"]) == 0
    assert mentioned("the results are precise", ["AP"]) == 0  # two letters match too many word runs by chance
    assert mentioned("we compete in the arena", ["ITA"]) == 0  # a run may not start on a function word
    assert mentioned("we improve image text alignment", ["ITA"]) == 1


def test_a_bound_on_a_number_needs_a_number_within_it() -> None:
    from rag.evidence import Bound, bounds, within_bounds

    assert bounds("Which networks report 86% or more top-1?") == [Bound(86.0, False, "%")]
    assert bounds("Which generators report an FID below 2 at 256×256?") == [Bound(2.0, True, "")]
    assert bounds("Which ones report gains of less than 2x?") == [Bound(2.0, True, "x")]
    assert bounds("Which give a parameter count below 40M?") == [Bound(40.0, True, "m")]
    assert within_bounds(["It reaches 86.5% top-1."], "Which report 86% or more top-1?")
    assert not within_bounds(["It reaches 85.9% top-1 with 1,000 classes."], "Which report 86% or more top-1?")
    fid = "Which generators report an FID below 2 on ImageNet 256×256?"
    assert within_bounds(["Our largest model registers 1.78 FID on ImageNet 256×256."], fid)
    assert not within_bounds(["It sets an FID of 3.02 at 512×512 from a 256×256 checkpoint."], fid)
    ap = "Which papers report COCO detection above 50 AP?"
    assert within_bounds(["It reaches 54.3 AP on COCO."], ap) and within_bounds(["a box AP of 56.4%"], ap)
    assert not within_bounds(["It reaches 47.3 AP on COCO with 1000 queries and more."], ap)  # 1000 is no AP
    assert not within_bounds(["It handles 672x1088 images."], "Which are more than 2x faster?")  # a size, no factor
    assert within_bounds([], "Which papers study pruning?")  # no bound, nothing to meet


def test_a_flat_error_count_gives_the_most_cautious_threshold() -> None:
    from evals.fit_evidence import _best_threshold

    # one error for any threshold in (0.3, 0.5] (a wrong answer) or in (0.8, 0.9] (an abstention, within the bound):
    # the higher range wins, away from its edges (an invented answer is worse than an abstention)
    scores = [0.3, 0.8, 0.5, 0.9, 0.95, 0.99]
    labels = [False, False, True, True, True, True]
    assert 0.8 < _best_threshold(scores, labels, max_false_negative=0.25) < 0.9
    assert _best_threshold(scores, labels, max_false_negative=0.0) <= 0.5  # no abstention allowed: the lower range


def test_a_number_for_another_variant_does_not_answer() -> None:
    from rag.evidence import same_variant, variants

    assert variants("What top-1 does the base-sized GroupMamba model get?") == {"base"}
    assert variants("What FPS does the full-size DDRNet-23 (not the slim version) reach?") == {"full"}
    assert variants("On one GPU, DDRNet-23-slim yields 77.4% mIoU at 102 FPS.") == {"slim"}
    assert variants("What accuracy do large-scale vision models reach?") == set()  # a scale, no variant
    pro = "What FPS does the high-performance Pro model reach?"
    assert not same_variant(pro, "The Edge model, optimized with TensorRT, reaches 75.2 FPS.")
    assert same_variant(pro, "The Pro model attains 54.3 AP and runs at 20 FPS.")
    assert same_variant(pro, "It runs at 20 FPS.")  # a sentence naming no variant may still answer


def test_a_dimension_is_no_number() -> None:
    assert not counts("We apply SAM to medical 2D images and 3D volumes.", frozenset({"imag"}))
    assert counts("We curate 4.6M images and 19.7M masks.", frozenset({"imag"}))
    assert given_numbers("How many 2D images does it hold?") == frozenset()


def test_a_range_is_its_two_ends() -> None:
    """"2K-8K images" is met by "ranging 2K to 8K resolutions"."""
    terms = exact_terms("Which paper speeds up super-resolution of large 2K-8K images?", [])
    assert terms == ["2K", "8K"]
    assert covers("large-scale images ranging 2K to 8K resolutions", terms, set())


def test_a_named_measure_must_be_the_one_stated() -> None:
    from rag.evidence import asked_measures, states_measure

    dice = asked_measures("What Dice score does VISTA3D obtain on 127 classes?")
    assert dice == {"dice"}
    assert not states_measure("It reaches state-of-the-art results on 127 classes.", dice)
    assert states_measure("It reaches a mean Dice of 0.91.", dice)
    assert states_measure("It improves the LaSOT SUC score to 0.742.", asked_measures("What LaSOT success score?"))
    assert states_measure("It reaches 86.5% top1 accuracy.", asked_measures("What top-1 accuracy does it reach?"))
    assert not states_measure("83.3% ImageNet top-1 accuracy", asked_measures("What COCO box AP does it achieve?"))
    assert states_measure("Any number at all: 12.", asked_measures("How much memory does it save?"))  # none named
    win = asked_measures("What win rate does it achieve in the human evaluation?")
    assert not states_measure("It achieves a zero-shot FID score of 6.61 on COCO.", win)


def test_a_capitalized_rare_word_is_an_exact_term_and_a_common_one_is_not() -> None:
    assert exact_terms("Which papers evaluate semantic segmentation on Cityscapes?", []) == ["Cityscapes"]
    assert exact_terms("Which papers use a Swin backbone?", []) == ["Swin"]
    assert exact_terms("Which optimizer is better, Adam or Lion?", []) == []  # common words, whatever their case
    assert exact_terms("Cityscapes results of which paper?", []) == []  # the first word is capitalized anyway


def test_a_count_must_count_the_thing_asked() -> None:
    from rag.evidence import counted_head, counts

    quads = counted_nouns("How many training and test quadruplets does the 4K dataset hold?")
    assert quads == {"train", "test", "quadruplet"}  # the whole counted phrase, up to the verb
    assert counts("It holds 2,999 and 168 quadruplets for training and testing.", quads)
    phones = counted_nouns("How many smartphone models was it benchmarked on?")
    assert not counts("It beats the state of the art by 0.78 dB and runs on commodity smartphones.", phones)
    assert counts("We run experiments on five datasets.", counted_nouns("How many datasets does it use?"))
    assert counts("a 3 billion-parameter model", counted_nouns("How many parameters does it have?"))
    # a long description before its head: a compound is one word of the window; a paper must name the head
    question = "How many state-of-the-art single image reflection removal methods were evaluated?"
    assert counted_head(question) == {"method"}
    assert counts("We evaluate six state-of-the-art SIRR methods on the proposed datasets.", counted_nouns(question))
    assert not counts("We evaluate on six datasets.", counted_nouns(question))
    # a unit, a comparison or a function word between the count and the thing counted does not describe it
    assert counts("while requiring 2x to 330x fewer Multiply-Accumulate (MAC) operations",
                  counted_nouns("How many fewer multiply-accumulate operations does it need?"))
    assert counts("while having 2 to 25 times fewer number of parameters",
                  counted_nouns("How many fewer parameters does it use?"))
    # a model size after its name is a count of parameters: "Med-PaLM M (84B)"
    assert counts("outperforming much larger models such as Med-PaLM M (84B)",
                  counted_nouns("How many parameters does that model have?"))
    assert not counts("outperforming much larger models such as Med-PaLM M (84B)",
                      counted_nouns("How many layers does that model have?"))
    assert counts("Any number: 12.", frozenset())  # the question counts nothing


def test_a_model_size_before_a_name_or_after_parameters_counts_parameters() -> None:
    """"the 1.4B STU-Net", "a 7B LVLM", "parameter sizes ranging from 14 million to 1.4 billion": a count of
    parameters; "1.6M image-text data" and "14 downstream datasets" are not."""
    parameters = counted_nouns("How many parameters does the largest STU-Net have?")
    assert counts("Notably, the 1.4B STU-Net is the largest medical image segmentation model to date.", parameters)
    assert counts("We develop SOLO, an open-source 7B LVLM using moderate academic resources.", parameters)
    assert counts("with parameter sizes ranging from 14 million to 1.4 billion", parameters)
    assert not counts("It is trained on a mere 74 GPU hours using 1.6M image-text interleaved data.", parameters)
    assert not counts("We evaluate the transferability of our model on 14 downstream datasets.", parameters)


def test_a_size_may_be_written_out() -> None:
    """"How big is it?" is answered by "a model with three billion parameters" as by "a 3B model"."""
    from rag.evidence import _unit_match

    assert _unit_match("How big is RAPHAEL?", "Secondly, a single model with three billion parameters wins.")
    assert _unit_match("How big is RAPHAEL?", "A 3B model wins.")
    assert not _unit_match("How big is RAPHAEL?", "Three experts rate every image.")


@pytest.mark.parametrize(
    ("question", "parts"),
    [("How many parameters does SAIL-VL have, and how many tokens was it pretrained on?",
      ["How many parameters does SAIL-VL have", "how many tokens was it pretrained on?"]),
     ("What COCO mAP does the small YOLO variant reach and at how many GFLOPs?",
      ["What COCO mAP does the small YOLO variant reach", "at how many GFLOPs?"]),
     ("How many GPU hours and how much data does it need?", ["How many GPU hours", "how much data does it need?"]),
     # one question: "and" between two things it asks about, or inside a description
     ("Which papers use state space models and report ImageNet accuracy?", None),
     ("How many training and test quadruplets does the 4K dataset hold?", None),
     ("What does the paper on pruning and distillation propose?", None)],
)  # fmt: skip
def test_a_compound_question_is_asked_in_parts(question: str, parts: list[str] | None) -> None:
    from rag.evidence import asked_parts

    assert asked_parts(question) == (parts or [question])


def test_how_many_counts_the_phrase_of_its_own_part() -> None:
    """"How many GPU hours and how much data …": the hours are counted, not "hours and how much data"."""
    from rag.evidence import counted_head

    question = "How many GPU hours and how much data does the personalization model need for training?"
    assert counted_nouns(question) == {"hour"} and counted_head(question) == {"hour"}
    data = "It is trained on a mere 74 GPU hours using 1.6M image-text interleaved data."
    assert counts(data, counted_nouns(question))


def test_a_unit_after_how_many_is_not_a_thing_counted() -> None:
    """"how many times larger", "by how many percentage points": the number is a measure; its unit is matched by the
    kind of number asked for, not by a counted noun the sentence would have to write out."""
    assert counted_nouns("How many times larger is the ladder side network's saving?") == frozenset()
    assert counted_nouns("By how many percentage points does it beat the LAION-trained model?") == frozenset()
    assert counted_nouns("How many models does the code base compare?") == {"model"}


def test_a_plural_acronym_is_a_thing_counted_and_a_compute_unit_is_not() -> None:
    from rag.evidence import counted_head, counts

    question = "Across how many GPUs does the serving system distribute ControlNet computations?"
    assert counted_nouns(question) == {"gpu"} and counted_head(question) == {"gpu"}
    assert counts("It trains on 1,000 A100 GPUs for two months.", counted_nouns(question))
    assert not counts("It reduces serving latency by up to 5x.", counted_nouns(question))
    assert counted_nouns("How many GFLOPs does the small model need?") == frozenset()
    assert counted_nouns("How many FLOPs does it save?") == frozenset()


def test_a_generic_unit_need_not_be_the_papers_word() -> None:
    """"image-text samples" counts what the phrase names; the paper may call them "data". Alone, "samples" counts."""
    from rag.evidence import counted_head, counts

    question = "How many image-text interleaved samples is the model trained on?"
    assert "sampl" in counted_nouns(question) and counted_head(question) == {"image-text", "interleav"}
    data = "It is trained on a mere 74 GPU hours using 1.6M image-text interleaved data."
    assert counts(data, counted_nouns(question))
    assert counted_head("How many samples does the benchmark hold?") == {"sampl"}
    assert counted_head("How many GPU hours did training take?") == {"hour"}


def test_a_bare_number_must_stand_alone() -> None:
    assert mentioned("reaches 86.5% on 512 GPUs", ["512"]) == 1
    assert mentioned("trained on 1512 images", ["512"]) == 0
    assert mentioned("Recall@1 of 40.2", ["Recall@1"]) == 1
    # a number with thousands separators is one term, found as written ("100,000", not "100" and "000")
    terms = exact_terms("Which model scales the codebook to 100,000 entries?", [])
    assert terms == ["100,000"] and mentioned("extends the codebook size to 100,000, achieving", terms) == 1


def test_examples_and_alternatives_need_one_term_and_bounds_are_not_exact() -> None:
    question = "Which backbones plug into a detector such as RetinaNet or Cascade Mask R-CNN on COCO?"
    terms = exact_terms(question, [])
    optional = alternatives(question, terms)
    assert optional == {"RetinaNet", "R-CNN"} and "COCO" in terms
    assert covers("RetinaNet results on COCO", terms, optional)
    assert not covers("RetinaNet and Cascade Mask R-CNN results", terms, optional)  # COCO is required
    assert not covers("Cascade results on COCO", terms, optional)  # one of the two exact alternatives is needed
    assert exact_terms("Which ConvNets reach 86% or more ImageNet top-1?", []) == ["ConvNets", "ImageNet", "top-1"]


def test_one_alternative_of_an_or_stands_for_the_others() -> None:
    """A paper that holds one alternative ("reflection removal, demosaicing or denoising") has what that part of the
    question asks for; the terms outside the alternatives are still needed."""
    from rag.evidence import option_coverage, option_groups
    from rag.text import key_terms

    question = "Which papers on reflection removal, demosaicing or denoising propose a transformer?"
    groups = option_groups(question)
    assert [sorted(map(sorted, g)) for g in groups] == [[["demosa"], ["denois"], ["reflect", "remov"]]]
    q_terms = key_terms(question)
    demosaicing = key_terms("Event camera demosaicing via a Swin transformer")
    assert option_coverage(q_terms, groups, demosaicing) == 1.0
    assert option_coverage(q_terms, (), demosaicing) == pytest.approx(2 / 5)  # word by word: 2 of 5 terms
    assert option_coverage(q_terms, groups, key_terms("A demosaicing network")) == pytest.approx(4 / 5)
    # a multi-word alternative counts only when all its words are there
    rescaling = "Which papers handle arbitrary scale factors or arbitrary expansion multiples?"
    q_terms, groups = key_terms(rescaling), option_groups(rescaling)
    assert option_coverage(q_terms, groups, key_terms("It handles arbitrary scale factors")) == 1.0
    assert option_coverage(q_terms, groups, key_terms("It handles arbitrary factors")) == pytest.approx(3 / 6)
    # a parenthesised list starts at its parenthesis
    items = option_groups("Which papers build datasets of hundreds of millions of items (faces, masks or captions)?")
    assert [sorted(map(sorted, g)) for g in items] == [[["caption"], ["face"], ["mask"]]]
    assert option_groups("Which papers propose Mamba backbones?") == ()


def test_list_questions_may_stack_modifiers() -> None:
    assert query_type("Which Mamba / state-space vision backbones are evaluated on COCO?") is QueryType.LIST
    assert query_type("Which paper stitches pretrained models together?") is not QueryType.LIST



def test_residual_coverage_counts_only_the_terms_the_title_lacks(tmp_path) -> None:
    """A question that describes its paper by title words ("model-based ISPs with learnable dictionaries") asks
    something else of it ("map between"): a sentence's residual coverage counts the question's other terms only."""
    from rag import Assistant, Settings
    from rag.evidence import score
    from rag.text import key_terms

    assistant = Assistant(Settings.load(data_dir=tmp_path, llm="extractive"))
    question = "What do model-based ISPs with learnable dictionaries map between?"
    hits = assistant.search(question, k=3)
    top = next(h for h in hits if h.paper.title.startswith("Model-Based Image Signal Processors"))
    evidence = score(question, [top], assistant._chain("extractive").cache)
    column = evidence.sentence_rows[:, SENTENCE_FEATURES.index("residual_coverage")]
    residual = key_terms(question) - key_terms(top.paper.title)
    assert residual and not residual & key_terms(top.paper.title)
    by_index = sorted(evidence.papers[0].sentences, key=lambda s: s.index)
    for sentence, value in zip(by_index, column, strict=True):
        assert value == pytest.approx(len(residual & key_terms(sentence.text)) / len(residual))
    mapping = next(v for s, v in zip(by_index, column, strict=True) if "mapping between RAW and RGB" in s.text)
    assert mapping > 0 and column.min() == 0
