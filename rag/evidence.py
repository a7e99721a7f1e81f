"""The evidence step, shared by every backend: score each retrieved paper and its sentences against a question.

Logistic models, fit on the dev gold split by `evals/fit_evidence.py` (weights and thresholds in
`rag/data/evidence_model.json`), turn features into probabilities:
- a sentence model: does this abstract sentence state what the question asks for?
- a paper model: does this paper answer the question (meet its distinguishing terms, not only its topic)?
- a list-paper model: the same, fit on list questions alone, reading each paper feature also against the question's
  other retrieved papers;
- an answerability model: does the collection answer the question at all (its best paper's features)?
The answerability gate, the list cut-off and the composer's choices all read these probabilities.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import bm25s
import numpy as np

from rag.constraints import parse, unframed
from rag.embeddings import TOKENIZER_PATH
from rag.naming import aliases, names_mentioned, sharing_a_name, short_name, without_names
from rag.sentence_cache import PaperSentences, SentenceCache
from rag.text import KEY_TERM_STOPWORDS, STOPWORDS, WORD, english_stemmer, is_evidence, key_terms, without_opener
from rag.types import Hit

MODEL_PATH = Path(__file__).parent / "data" / "evidence_model.json"

# A sentence's own piece match (`piece_matches`: the question's word pieces against the sentence's, in the context of
# its abstract) and its gap to the best sentence of all sources, as for cosines: a sentence vector averages away the
# few words that answer ("state-of-the-art results on RAW image reconstruction"). On dev (818 items with a gold
# sentence, 2-fold CV of the sentence model) the gold paper's top sentence holds a must-include string for 0.739 of
# them with the two, 0.723 without.
SENTENCE_FEATURES: tuple[str, ...] = (
    "cosine", "cosine_gap", "bm25", "term_coverage", "exact_coverage", "number", "number_tied", "unit_match",
    "position", "first", "contribution", "finding", "background", "boilerplate", "paper_rank", "title_cosine", "named",
    "residual_coverage", "piece_match", "piece_gap",
)  # fmt: skip
PAPER_FEATURES: tuple[str, ...] = (
    "best_sentence", "second_sentence", "best_cosine", "cosine_gap", "title_cosine", "term_coverage",
    "distinct_coverage", "exact_coverage", "exact_all", "counted", "rank", "named", "best_gap", "claim_cosine",
    "claim_coverage", "unmatched", "own_best", "own_second", "option_coverage", "piece_match",
)  # fmt: skip

# The list-paper model also reads each paper feature against the other retrieved papers of the same question (a
# z-score): a list keeps the papers that stand out from the topic's crowd, whatever the question's overall level
LIST_FEATURES: tuple[str, ...] = PAPER_FEATURES + tuple(f"{f}_vs_question" for f in PAPER_FEATURES)
# Whether a list question is answerable at all reads its best paper and how likely its best three papers are to belong
# in the list: a list about something the collection never covers has no paper that stands out on its own evidence
LISTED_PROBS = 3
LIST_ANSWER_FEATURES: tuple[str, ...] = PAPER_FEATURES + tuple(f"list_prob_{n + 1}" for n in range(LISTED_PROBS))
# Paper features the composer also reads: distinguishing-term coverage, every exact term, what "how many" counts.
_DISTINCT, _EXACT_ALL, _COUNTED = (PAPER_FEATURES.index(f) for f in ("distinct_coverage", "exact_all", "counted"))

# What the collection's papers are, in the plural ("which fine-tuning methods…")
_PLURAL_KINDS = (
    r"methods|models|approaches|architectures|frameworks|backbones|detectors|benchmarks|datasets|systems|techniques|"
    r"networks|generators|trackers|encoders|pipelines|toolboxes|designs|variants|algorithms|tools|solutions"
)
_LIST = re.compile(
    r"\b(which|what|list|name|any|find|compare|comparison|all)\b.{0,40}?\b(papers|works|studies|articles|ones)\b|"
    # "which fine-tuning methods…", "what state-space (Mamba) backbones…": up to four modifiers, none of them a
    # singular head ("which paper stitches models"); "what datasets does MaxViT use" is `_OF_ONE_PAPER`
    r"\b(which|what|list|name|compare)\s+((?!(?:paper|work|study|method|model|approach|one|system|does|do|did|is|are|"
    r"was|were|has|have|the|a|an|of|kinds?|types?|share)\b)[\w/()-]+\s+){0,4}"
    rf"({_PLURAL_KINDS})\b|"
    r"\bpapers\s+(that|which|about|on|using|use|propos)|\bcompare\b|\bdifference between\b|"
    # "what other approaches…": more than the one it names (not "what other data does it…")
    r"\b(what|which) other\s+((?!(?:does|is|was|has)\b)\w+\s+){0,2}(?!(?:does|is|was|has)\b)\w+s\b",
    re.IGNORECASE,
)
# "both A and B" asks about two papers, unless a summary's description uses it ("how both the person and the
# background affect it")
_BOTH = re.compile(r"\bboth\b.{0,40}\band\b", re.IGNORECASE)
_COUNTS_OR_AMOUNT = re.compile(r"^\W*(?:(?:and|so|then|also|but|now)\W+)?how (?:many|much)\b", re.IGNORECASE)
# ... but "how many of them release code?" and "which of them report COCO?" ask which of the papers at hand do: a
# list (the reader can count it); a follow-up's rewrite names them: "which of Vim and GroupMamba report COCO?"
_OF_THEM = re.compile(
    r"\b(?:how many|which) of (?:them|these|those|the (?:papers|works|ones)\b|[^?]{1,160}?\band\b)", re.IGNORECASE
)
# "Which datasets does MaxViT use?", "On which benchmarks is the method that … evaluated?": what one paper (a singular
# subject) uses or reports, not a list of the collection's papers
_OF_ONE_PAPER = re.compile(
    rf"\b(?:which|what)\s+(?:[\w/-]+\s+){{0,4}}?(?:{_PLURAL_KINDS}|tasks|metrics|baselines)\s+(?:does|did|is|was|has)\b",
    re.IGNORECASE,
)
_IDENTIFY = re.compile(
    r"\b(which|what)\s+(paper|work|study|article|method|model|approach|one|system)\b|"
    # "which super-resolution pruning method …": up to three modifiers after "which", none a verb or an article
    r"\bwhich\s+(?:(?!(?:does|do|did|is|are|was|were|has|have|the|a|an|of)\b)[\w/-]+\s+){1,3}"
    r"(paper|work|study|article|method|model|approach|system|framework|technique|architecture|network|backbone|"
    r"detector|benchmark|dataset|toolbox|pipeline)\b",
    re.IGNORECASE,
)
_SUMMARY = re.compile(
    r"\b(what is|what's|what are)\b.{0,120}\babout\b|\bsummar|\bdescribe\b|\bmain (idea|contribution)|\bcore idea\b|"
    r"\bkey idea\b|\bgist\b|\btell me (more\b|about\b)|\boverview\b|\bexplain\b|\bidea behind\b|\bhow does\b.{0,120}"
    r"\bwork\b|\bwhat (does|did|do)\b.{0,120}\b(propose|introduce|present|conclude|contribute)\b|"
    # "What does the paper that <a long description> propose?": the question ends with it
    r"^\s*what (does|did|do)\b.*\b(propose|introduce|present|contribute)\s*\??\s*$|"
    # "What does ATOMMIC do?": what the paper does as a whole
    r"^\s*what (does|did|do)\s+[^?]{1,80}?\s+do\s*\??\s*$|"
    r"\bwhat (techniques|components|ingredients|steps|strategies|tricks)\b",
    re.IGNORECASE,
)
# "What problem does X address?", "What limitation of earlier models does it overcome?": a summary of the problem
# the paper starts from (the composer quotes its problem statement)
ASKS_PROBLEM = re.compile(
    r"\bwhat\s+(?:[\w-]+\s+)?(?:problems?|limitations?|challenges?|shortcomings?|drawbacks?|bottlenecks?|gaps?|"
    r"difficult(?:y|ies)|weakness(?:es)?|issues?)\b|\bmotivat(?:es?|ed|ion)\b",
    re.IGNORECASE,
)
_DEFINITION = re.compile(r"^\s*(?:what|who)\s*(?:is|are|was|'s)\s+(?P<name>[^?]{1,80}?)\s*\??\s*$", re.IGNORECASE)
_QUANTITY = re.compile(
    r"\bhow (much|many|fast|large|big|long|small|high|low|well|deep)\b|"
    r"\bwhat (accuracy|score|speed|size|share|fraction|percentage|proportion|range|number|throughput|latency|"
    r"resolution|cost)s?\b|"
    r"(?<![\w-])(accuracy|score|speed-?up|percent|parameters|FLOPs|GFLOPs|throughput|latency|memory|hours|days|"
    r"billion|million|ratio|share|fraction|range|rate|gain|improvement|saving|savings|reduction|size|count|budget|"
    r"value|figure)"
    r"(?![\w-])|%",  # a word of its own, not part of a name ("Any-Size-Diffusion"); named measures: _MEASURE
    re.IGNORECASE,
)
_OWN_WORK = r"\b(we|this paper|this work|our work|our paper)\s+(also\s+|first\s+|further\s+)?"
_PROPOSING_VERBS = r"propose|present|introduce|develop|design|contribute|build|construct"
# A contribution sentence: the paper says what it proposes, or what it studies ("This paper investigates X")
_PROPOSAL = re.compile(rf"{_OWN_WORK}({_PROPOSING_VERBS}|study|investigate|revisit|explore)", re.IGNORECASE)
# ... and one that says what it proposes, not what it studies
PROPOSES = re.compile(rf"{_OWN_WORK}({_PROPOSING_VERBS})", re.IGNORECASE)
# A sentence stating a result, and one that only points at code or praises itself: roles of abstract sentences.
FINDING = re.compile(
    r"\bwe (also )?(find|show|demonstrate|observe|discover|identify)\b|\bresults? (show|demonstrate|indicate)|"
    r"\boutperform|\bachiev|\bstate-of-the-art\b|\bsurpass|\bconclude|\bimproves?\b",
    re.IGNORECASE,
)
BOILERPLATE = re.compile(
    r"https?://|\bgithub\b|\bwe (will )?(release|open-source|make)\b|\bproject (page|website)\b|"
    r"\b(code|models?|data(sets?)?|weights|checkpoints?|code-?base)\b[^.]{0,60}\b(available|released?|public)\b|"
    r"\b(effectiveness|capabilities|potential|superiority|value) of (our|the proposed|this)\b|\bunderscores?\b",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d,])|[A-Za-z0-9][A-Za-z0-9\-.@]*[A-Za-z0-9]")  # "100,000" is one number
_SQUASH = re.compile(r"[^a-z0-9]+")
# Examples a question gives ("such as COCO", "e.g. LoRA"), and a number that is a bound ("86% or more", "at least 8").
_EXAMPLES = re.compile(r"\b(?:such as|e\.g\.|for example|for instance|including|like)\s+([^?;:]+)", re.IGNORECASE)
_BOUND_UNIT = r"%|percent\b|×(?!\s*\d)|x\b(?!\s*\d)|times\b|[KMB]\b|thousand\b|million\b|billion\b"  # not "256×256"
_THRESHOLD = re.compile(
    rf"(?P<after>\d[\d.,]*)\s*(?P<after_unit>{_BOUND_UNIT})?\s*or\s+(?P<after_way>more|higher|above|better|greater|"
    r"larger|less|lower|fewer|below|smaller)\b|"
    r"\b(?P<before_way>more than|at least|over|above|below|under|less than|fewer than|beyond|up to|at most|higher than|"
    rf"lower than|greater than|smaller than)\s+(?P<before>\d[\d.,]*)\s*(?P<before_unit>{_BOUND_UNIT})?",
    re.IGNORECASE,
)
_UPPER_BOUNDS = frozenset({"less", "lower", "fewer", "below", "smaller", "under", "up to", "at most", "less than",
                           "fewer than", "lower than", "smaller than"})  # fmt: skip
_UNIT_SPELLINGS = {"percent": "%", "×": "x", "times": "x", "thousand": "k", "million": "m", "billion": "b"}
# Named measures: a question asking for one ("What Dice score…", "What box AP…") is answered only by a sentence
# stating that measure, not by another number of the same paper (a near miss: the abstract reports something else)
_MEASURE = re.compile(
    r"(?<![\w-])(FID|FVD|PSNR|SSIM|LPIPS|m?IoU|(?-i:m?AP)|Dice|perplexity|BLEU|ROUGE|F1|top-?[15]|AUC|EER|"
    r"recall|precision|success|SUC|CLIP ?score|GenEval|WER|CIDEr|FPS|win rate|Elo|NDCG|MRR|SROCC|PLCC)(?![\w-])",
    re.IGNORECASE,
)


_MEASURE_SPELLINGS = {"suc": "success"}  # one name per measure


def asked_measures(question: str) -> frozenset[str]:
    """The named measures a question asks for, squashed ('top-1' -> 'top1', 'SUC' -> 'success')."""
    return frozenset(_MEASURE_SPELLINGS.get(squash(m), squash(m)) for m in _MEASURE.findall(question))


def states_measure(text: str, measures: frozenset[str]) -> bool:
    """True when the text names one of the measures (or the question named none)."""
    return not measures or bool(measures & asked_measures(text))


_NUMBER_WORDS = frozenset({
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen", "twenty",
    "thirty", "fifty", "hundred", "hundreds", "thousand", "thousands", "million", "millions", "billion", "billions",
    "trillion", "trillions", "dozen", "dozens", "tens", "half", "quarter", "twice", "thrice",
})  # fmt: skip
# ... a number written out ("hundreds of GPUs", "a quarter of the cost", "tens of millions of parameters")
_SPELLED_NUMBER = re.compile(rf"\b(?:{'|'.join(sorted(_NUMBER_WORDS))})\b", re.IGNORECASE)
# How a sentence writes a factor ("2.8×", "25 times") and a rate ("75.2 FPS", "1,200 img/s"): kinds of number asked
# for (`_UNITS`), and what "how fast" asks for (`_ASKED_UNITS`)
_FACTOR_WRITTEN = re.compile(
    rf"(?:\d|{_SPELLED_NUMBER.pattern})\s*(?:×|x\b|times\b|-?fold\b)|\borders? of magnitude\b", re.IGNORECASE
)  # "2.8×", "three times", "three orders of magnitude"
_RATE_WRITTEN = re.compile(r"\d\s*(?:FPS\b|frames per second|(?:img|images?|tokens?|samples?)\s*/\s*s\b)", re.I)
# A unit the question asks the number in ("latency in milliseconds", "in GPU hours"), and how a sentence writes it
_ASKED_UNITS = (
    (re.compile(r"\bin (?:milliseconds|ms)\b", re.IGNORECASE), re.compile(r"\d\s*(?:ms|milliseconds?)\b", re.I)),
    (re.compile(r"\bin (?:seconds|secs)\b", re.IGNORECASE), re.compile(r"\d\s*(?:s|secs?|seconds?)\b", re.I)),
    (re.compile(r"\bin minutes\b", re.IGNORECASE), re.compile(r"\d\s*(?:min|mins|minutes?)\b", re.I)),
    (re.compile(r"\bin (?:GPU[- ])?hours\b", re.IGNORECASE), re.compile(r"\d\s*(?:GPU[- ])?(?:h|hrs?|hours?)\b", re.I)),
    (re.compile(r"\bin days\b", re.IGNORECASE), re.compile(r"\d\s*days?\b", re.I)),
    (re.compile(r"\bin (?:dB|decibels)\b", re.IGNORECASE), re.compile(r"\d\s*(?:dB|decibels?)\b", re.I)),
    (re.compile(r"\bin (?:FPS|frames per second)\b", re.IGNORECASE), re.compile(r"\d\s*(?:FPS|frames per sec)", re.I)),
    # "how long does training take" is answered in time ("two months", "10.8 GPU hours"), "how fast" in a speed
    (re.compile(r"\bhow long\s+(?:does|did|do|is|was|were|are|will|would|can|could|has|have|had)\b", re.IGNORECASE),
     re.compile(rf"(?:\d|{_SPELLED_NUMBER.pattern}|\ba few\b|\bseveral\b)\s*(?:GPU[- ])?(?:ms|s|secs?|seconds?|"
                r"min|mins|minutes?|h|hrs?|hours?|days?|weeks?|months?|years?)\b", re.I)),
    (re.compile(r"\bhow fast\b", re.IGNORECASE),
     re.compile(rf"{_FACTOR_WRITTEN.pattern}|{_RATE_WRITTEN.pattern}|\d\s*(?:frames per sec|%\s*faster|ms\b|s\b)",
                re.I)),
)  # fmt: skip


# A model variant named by its size or edition ("the base-sized model", "the Pro model", "our tiny variant",
# "DDRNet-23-slim"): a number stated for one variant does not answer a question about another
_VARIANT_WORDS = r"tiny|small|base|large|huge|giant|pro|edge|lite|slim|mini|nano|micro|medium|full"
_NOT_VARIANT = re.compile(rf"\b(?:not\s+(?:the\s+)?|non-)(?:{_VARIANT_WORDS})\b", re.IGNORECASE)
_VARIANT = re.compile(
    rf"\b({_VARIANT_WORDS})(?:-sized?)?\s+(?:[\w.-]+\s+){{0,2}}?(?:models?|variants?|versions?|configurations?)\b|"
    rf"(?<=[A-Za-z0-9]-)({_VARIANT_WORDS})\b|"  # "DDRNet-23-slim", "MaxViT-Tiny"
    rf"\b({_VARIANT_WORDS})-sized?\b",  # "the full-size DDRNet-23"
    re.IGNORECASE,
)


def variants(text: str) -> frozenset[str]:
    """The model variants a text names by size or edition ('the base-sized GroupMamba model' -> {'base'}), not those
    it rules out ('not the slim version', 'non-slim')."""
    kept = _NOT_VARIANT.sub(" ", text)
    return frozenset(next(g for g in groups if g).lower() for groups in _VARIANT.findall(kept))


def same_variant(question: str, text: str) -> bool:
    """False when the question and the text each name variants and none is the same (the Pro model asked, the Edge
    model's number stated)."""
    asked, stated = variants(question), variants(text)
    return not asked or not stated or bool(asked & stated)


def states_unit(question: str, text: str) -> bool:
    """True when the text writes a number in every unit the question asks for ("in milliseconds": "16.2ms")."""
    return all(written.search(text) for asks, written in _ASKED_UNITS if asks.search(question))


ALTERNATIVE_WINDOW = 3  # words on each side of "or" whose exact terms are alternatives
# "how many training and test quadruplets does…": the counted noun phrase, up to a verb or preposition
_HOW_MANY = re.compile(
    r"\bhow many\s+((?:(?!(?:do|does|did|are|is|was|were|have|has|had|can|could|will|would|of|in|on|for|from|with|"
    r"to|per|at|by|during|across|than)\b)[A-Za-z][\w\-]*\s*){1,8})",
    re.IGNORECASE,
)
# "how many times larger", "by how many percentage points": a unit of the measured number, not a thing counted
_UNIT_COUNTS = frozenset({"times", "fold", "percent", "percentage", "point", "points", "db", "decibels"})
# A number that measures something ("86.5%", "25", "2.8×"), not part of a name ("ImageNet-V2", "Kinetics-400").
_QUANTITY_NUMBER = re.compile(r"(?<![\w.,\-])\d+(?:[.,]\d+)*(?!D\b)")  # nor a dimension ("2D images", "3D")
# ... with the unit written after it ("86.5%", "2.8×", "40M", "1.4 billion")
_NUMBER_WITH_UNIT = re.compile(rf"({_QUANTITY_NUMBER.pattern})\s*({_BOUND_UNIT})?", re.IGNORECASE)
# (what a question asks for, how a sentence writes that kind of number): a '%' for an accuracy, '×' for a speed-up
_UNITS = (
    (re.compile(r"\b(accuracy|percent|share|fraction|proportion|rate|top-?1|(?-i:AP|mAP)|miou|improv\w*|gain\w*|"
                r"saving\w*|reduc\w*|fewer|less|memory|parameters|faster|speed\w*|accelerat\w*)\b|%", re.IGNORECASE),
     re.compile(r"\d\s*%|\d\s*percent\b", re.IGNORECASE)),
    (re.compile(r"\b(faster|speed\w*|times|fold|smaller|larger|fewer|less|more|reduc\w*|compress\w*)\b",
                re.IGNORECASE),
     _FACTOR_WRITTEN),
    (re.compile(r"\bhow fast\b|\b(speed|throughput|fps|frame rate|real-time)\b", re.IGNORECASE), _RATE_WRITTEN),
    (re.compile(r"\bhow long\b|\b(time|duration|latency|hours?|days?|weeks?|minutes?|seconds?)\b", re.IGNORECASE),
     re.compile(r"\d\s*(?:ms|s|sec\w*|min\w*|h|hours?|days?|weeks?|months?|GPU[- ]hours?)\b", re.IGNORECASE)),
    (re.compile(r"\bhow (large|big|small|deep)\b|\b(parameters?|size|layers?|depth)\b", re.IGNORECASE),
     # ... and a collection's size in the things it holds ("5,470 high-resolution images", "19.7M masks")
     re.compile(rf"(?:\d|{_SPELLED_NUMBER.pattern})\s*(?:[KMB]\b|million|billion|layers?\b|params?\b|parameters?\b)|"
                r"\d[\d,.]*\s+(?:[\w-]+\s+){0,2}"
                r"(?:images|videos|samples|pairs|examples|clips|masks|scenes|photos|identities|classes|categories|"
                r"scans|volumes|annotations|hours)\b", re.IGNORECASE)),
)  # fmt: skip


def unreferenced(question: str, references: Sequence[str] = ()) -> str:
    """The question without the names a follow-up's rewrite put in: a title's words ("… from the Perspective of
    Precision Redundancy") say nothing about the kind of answer asked for (a measure, a count, a number)."""
    for name in sorted(references, key=len, reverse=True):
        question = re.sub(re.escape(name), " ", question, flags=re.IGNORECASE)
    return " ".join(question.split())


class Bound(NamedTuple):
    """A bound a question sets on a number ("86% or more", "an FID below 2", "more than 2x")."""

    value: float
    upper: bool  # the number may be at most the value ("below 2"), else at least ("86% or more")
    unit: str  # "%", "x", "k", "m", "b", or "" when the question writes none


def _unit(written: str | None) -> str:
    """One spelling per unit ('percent' -> '%', '×' -> 'x', 'million' -> 'm')."""
    low = (written or "").lower()
    return _UNIT_SPELLINGS.get(low, low)


def _value(number: str) -> float | None:
    """A written number's value ('1,000' -> 1000.0), or None when it does not parse."""
    try:
        return float(number.replace(",", ""))
    except ValueError:
        return None


def bounds(question: str) -> list[Bound]:
    """The bounds a question sets on numbers, in the order written."""
    out = []
    for m in _THRESHOLD.finditer(question):
        value = _value(m.group("after") or m.group("before"))
        way = (m.group("after_way") or m.group("before_way")).lower()
        if value is not None:
            out.append(Bound(value, way in _UPPER_BOUNDS, _unit(m.group("after_unit") or m.group("before_unit"))))
    return out


MEASURE_REACH = 12  # characters between a number and the measure it is stated in: "54.3 AP", "an FID of 1.78"


def within_bounds(texts: Sequence[str], question: str) -> bool:
    """True when, for every bound the question sets, some text states a number within it: in the bound's unit, or,
    when the question writes none ("above 50 AP", "an FID below 2"), beside the question's measure."""
    measures = asked_measures(question)
    return all(any(_states_within(text, bound, measures) for text in texts) for bound in bounds(question))


def _states_within(text: str, bound: Bound, measures: frozenset[str]) -> bool:
    """True when the text states a number within the bound (`within_bounds`)."""
    near = [m.span() for m in _MEASURE.finditer(text) if not measures or states_measure(m.group(0), measures)]
    for m in _NUMBER_WITH_UNIT.finditer(text):
        value = _value(m.group(1))
        unit = _unit(m.group(2))  # a bound with no unit ("above 50 AP") may be met in percent ("a box AP of 56.4%")
        if value is None or not (unit == bound.unit or (not bound.unit and unit == "%")) or not (
            value <= bound.value if bound.upper else value >= bound.value
        ):
            continue
        if bound.unit or not measures or any(m.start() - MEASURE_REACH <= end and start <= m.end() + MEASURE_REACH
                                             for start, end in near):  # fmt: skip
            return True
    return False


class QueryType(StrEnum):
    """What shape of answer a question wants."""

    FACTOID = "factoid"
    LIST = "list"
    SUMMARY = "summary"
    IDENTIFY = "identify"


def query_type(question: str) -> QueryType:
    """Classify a question: a list of papers, a summary of one, which paper does X, or a fact (the default); "how
    many…" asks for a number, whatever else it says ("how many backbones does the benchmark compare")."""
    summary = bool(_SUMMARY.search(question) or ASKS_PROBLEM.search(question))
    listing = _LIST.search(question) or (_BOTH.search(question) and not summary)
    if _OF_THEM.search(question) or (
        listing and not _COUNTS_OR_AMOUNT.search(question) and not _OF_ONE_PAPER.search(question)
    ):
        return QueryType.LIST
    if summary:
        return QueryType.SUMMARY
    if _is_definition(question) and not _asks_number(question):
        return QueryType.SUMMARY
    if _IDENTIFY.search(question):
        return QueryType.IDENTIFY
    return QueryType.FACTOID


# "Why …", "Where do … come from", "Who …": a reason, a source or a person, whatever measures the question mentions
_ASKS_NO_NUMBER = re.compile(r"^\W*(?:why|where|who|whom)\b", re.IGNORECASE)


def chooses_among(question: str) -> bool:
    """True for a question that picks from papers at hand ("which of them…", "which of Vim and GroupMamba…")."""
    return bool(_OF_THEM.search(question))


def wants_quantity(question: str) -> bool:
    """True when the question asks for a number (an accuracy, a saving, a count, a range); "which paper…" asks for a
    paper and "why …" for a reason, whatever quantities describe them."""
    return (
        query_type(question) is QueryType.FACTOID and _asks_number(question) and not _ASKS_NO_NUMBER.match(question)
    )


# "…, and how many tokens…", "… and at how many GFLOPs?": a second question joined to the first
_NEXT_PART = re.compile(
    r",?\s+\band\s+(?:also\s+)?(?=(?:(?:at|in|on|by|for|with|from|to|under|of)\s+)?(?:how|what|which|who|when|where|"
    r"why|whether)\b)",
    re.IGNORECASE,
)


def asked_parts(question: str) -> list[str]:
    """The questions a compound question joins ("How many parameters does it have, and how many tokens was it
    pretrained on?": two); a simple question is its only part."""
    parts = [part for part in _NEXT_PART.split(question) if part.strip()]
    return parts or [question]


def _asks_number(question: str) -> bool:
    """The question names a kind of number (an accuracy, a saving, a count) or a named measure (FID, Dice, mAP)."""
    return bool(_QUANTITY.search(question) or _MEASURE.search(question))


def _is_definition(question: str) -> bool:
    """'What is MaxViT?': only a name (capitalized or with digits) after 'what is'."""
    match = _DEFINITION.match(question)
    if not match:
        return False
    words = match.group("name").split()
    return any(any(c.isupper() or c.isdigit() for c in w) for w in words) and len(words) <= 6


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Whole words of the MiniLM WordPiece vocabulary (30k): a word outside it is rare enough to be a name."""
    vocab = json.loads(TOKENIZER_PATH.read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha())


def squash(text: str) -> str:
    """Lower-case text without spacing or punctuation ('Test-dev' -> 'testdev', '1248×1248' -> '1248x1248')."""
    return _SQUASH.sub("", text.lower().replace("×", "x"))


def exact_terms(question: str, hits: Sequence[Hit], references: Sequence[str] = ()) -> list[str]:
    """Datasets, metrics, numbers and other exact terms of a question ('COCO', 'ImageNet-V2', '512'), names excluded:
    the sources' names and the `references` a follow-up's rewrite put in ("which of A and B has code").

    A paper that never says 'KITTI' cannot answer a question about KITTI, however close it is otherwise.
    """
    names = " ".join(
        [squash(alias) for hit in hits for alias in (*aliases(hit.paper), short_name(hit.paper))]
        + [squash(name) for name in references]
    )
    bounds = {squash(m.group("after") or m.group("before")) for m in _THRESHOLD.finditer(question)}
    terms = []
    for k, token in ((k, piece) for k, t in enumerate(_TOKEN.findall(question)) for piece in _named_parts(t)):
        exact = any(c.isdigit() for c in token) or any(c.isupper() for c in token[1:])
        # a capitalized word inside the question that is no common word is a name: 'Cityscapes', 'Swin', 'LAION'
        exact = exact or (k > 0 and token[:1].isupper() and token.lower() not in common_words())
        if exact and squash(token) and squash(token) not in names and squash(token) not in bounds:
            # a range ("2K-8K") is its two ends, which a paper may join otherwise ("2K to 8K")
            ends = token.split("-")
            terms.extend(ends if len(ends) == 2 and all(any(c.isdigit() for c in e) for e in ends) else [token])
    return list(dict.fromkeys(terms))


def _named_parts(token: str) -> list[str]:
    """A hyphenated compound without its descriptive lower-case words, each remaining part a term of its own
    ("FLOP-efficiency-driven" -> FLOP, "encoder-plus-LLM" -> LLM, "DiT-based" -> DiT); a name stays whole
    ("ImageNet-1K", "Swin-L", "ViT-g")."""
    parts = token.split("-")
    kept = [p for p in parts if not (len(p) > 1 and p.isalpha() and p.islower())]
    named = any(c.isupper() for p in kept for c in p)  # "top-1", "1-bit": a measure, not a name with descriptions
    return kept if named and len(kept) < len(parts) else [token]


def alternatives(question: str, terms: Sequence[str]) -> set[str]:
    """The exact terms a question gives as examples or alternatives ("such as RetinaNet or Cascade R-CNN", "MLPs or
    state-space models"): a paper needs one of them, not all."""
    spans = []
    for match in _EXAMPLES.finditer(question):  # the examples run until a function word: "such as A or B on COCO"
        example = list(itertools.takewhile(lambda w: w.lower() in ("or", "and") or w.lower() not in STOPWORDS,
                                           match.group(1).split()))  # fmt: skip
        spans.append(" ".join(example))
    spans.extend(window for _, window in _or_sites(question))
    return {t for t in terms if any(mentioned(span, [t]) for span in spans)}


def _or_sites(question: str) -> list[tuple[tuple[str, str], str]]:
    """Each "or" of a question that joins alternatives (not a bound: "86% or more"): the words on its two sides
    (punctuation stripped; empty at either end of the question) and the words within ALTERNATIVE_WINDOW of it."""
    words = question.split()
    sites = []
    for i, word in enumerate(words):
        if word.lower() == "or" and not _THRESHOLD.match(" ".join(words[max(i - 1, 0) : i + 2])):
            left, right = (words[j].strip(",;:?!.()\"'") if 0 <= j < len(words) else "" for j in (i - 1, i + 1))
            sites.append(((left, right), " ".join(words[max(i - ALTERNATIVE_WINDOW, 0) : i + ALTERNATIVE_WINDOW + 1])))
    return sites


def open_alternatives(question: str, terms: Sequence[str]) -> set[str]:
    """The exact terms given as one alternative beside a plain word ("whether via attention or MLPs", "several GPUs
    or devices"): a paper that takes the other way need not hold them."""
    free: set[str] = set()
    for sides, window in _or_sites(question):
        if not all(sides):
            continue
        exact = [any(mentioned(side, [t]) for t in terms) for side in sides]
        plain = [side.lower() not in STOPWORDS and not held for side, held in zip(sides, exact, strict=True)]
        if any(exact) and any(plain):
            free |= {t for t in terms if mentioned(window, [t])}
    return free


MAX_OPTION_WORDS = 3  # words of one alternative: "per-pixel compute allocation"
MAX_OPTIONS = 4  # alternatives before one "or": "pruning, per-pixel compute allocation or collapsible linear blocks"


@lru_cache(maxsize=1024)
def option_groups(question: str) -> tuple[tuple[frozenset[str], ...], ...]:
    """The key terms of the alternatives around each "or" ("reflection removal, demosaicing or denoising" -> three
    alternatives): a paper that holds one alternative has what the group asks for."""
    words = question.split()
    bare = [w.strip(",;:?!.()").lower() for w in words]
    groups = []
    for i, word in enumerate(bare):
        if word != "or":
            continue
        right = list(itertools.takewhile(lambda j: bare[j] and bare[j] not in KEY_TERM_STOPWORDS,
                                         range(i + 1, min(i + 1 + MAX_OPTION_WORDS, len(words)))))  # fmt: skip
        right = right[: next((k + 1 for k, j in enumerate(right) if words[j][-1] in ",;:?!.)"), len(right))]
        options, item = [], []
        for j in range(i - 1, -1, -1):
            if not bare[j] or bare[j] in KEY_TERM_STOPWORDS or len(options) >= MAX_OPTIONS:
                break
            if words[j].endswith(",") and item:  # a comma closes the alternative before it
                options.append(item)
                item = []
            item.insert(0, j)
            if words[j].startswith("("):  # "(faces, masks or captions)": the list opened here
                break
            # the alternative next to "or" is as long as the one after it ("A B or C D"); listed ones up to the cap
            full = len(item) >= (max(len(right), 1) if not options else MAX_OPTION_WORDS)
            if full and (j == 0 or not words[j - 1].endswith(",")):
                break
        if item:
            options.append(item)
        sides = [key_terms(" ".join(words[j] for j in span)) for span in [right, *options] if span]
        sides = [side for side in sides if side]
        if len(sides) > 1:
            groups.append(tuple(sides))
    return tuple(groups)


def option_coverage(
    q_terms: frozenset[str], groups: Sequence[Sequence[frozenset[str]]], terms: frozenset[str]
) -> float:
    """Share of the question's key terms a text holds, where one alternative of an "or" held whole stands for the
    others ("arbitrary scale factors or arbitrary expansion multiples": a rescaling paper needs only the first)."""
    if not q_terms:
        return 0.0
    covered = set(q_terms & terms)
    for sides in groups:
        if any(side <= terms for side in sides):
            covered |= frozenset().union(*sides)
    return len(q_terms & covered) / len(q_terms)


def requirements(question: str, terms: Sequence[str]) -> tuple[list[str], set[str]]:
    """Which of the question's exact terms a text must hold (`covers`): the terms it needs, and among them the
    alternatives of which one will do; a term given beside a plain alternative ("via attention or MLPs") is neither."""
    free = open_alternatives(question, terms)
    return [t for t in terms if t not in free], alternatives(question, terms) - free


def covers(text: str, terms: Sequence[str], optional: set[str]) -> bool:
    """True when text mentions every required exact term and, if the question gives alternatives, one of them."""
    required = [t for t in terms if t not in optional]
    either = [t for t in terms if t in optional]
    return mentioned(text, required) == len(required) and (not either or mentioned(text, either) > 0)


def mentioned(text: str, terms: Sequence[str]) -> int:
    """How many of the terms text mentions (ignoring case, spacing, hyphens and a plural 's'; a bare number must
    stand as a number of its own, not inside another; an acronym also by the words it abbreviates)."""
    flat = squash(text)
    count = 0
    for t in terms:
        if t.replace(".", "").replace(",", "").isdigit():
            count += bool(re.search(rf"(?<![\d.,]){re.escape(t)}(?![\d]|[.,]\d)", text))
        else:
            count += squash(t) in flat or (t.endswith("s") and squash(t[:-1]) in flat) or _spelled_out(text, t)
    return count


ACRONYM_LETTERS = (3, 6)  # shorter ones ("AP") match too many word runs by chance


def _spelled_out(text: str, term: str) -> bool:
    """True when the term is an acronym ("CNNs", "VLM", "MoE") and the text writes out words with its initials
    ("convolutional neural networks", "vision-language model", "mixture of experts"), not starting or ending on a
    function word."""
    core = term[:-1] if term.endswith("s") and not term.isupper() else term
    low, high = ACRONYM_LETTERS
    if not (low <= len(core) <= high and core.isalpha() and core[0].isupper() and sum(c.isupper() for c in core) > 1):
        return False
    words, initials = _initials(text)
    letters = core.lower()
    start = initials.find(letters)
    while start >= 0:
        if words[start] not in STOPWORDS and words[start + len(letters) - 1] not in STOPWORDS:
            return True
        start = initials.find(letters, start + 1)
    return False


@lru_cache(maxsize=8192)
def _initials(text: str) -> tuple[tuple[str, ...], str]:
    """The text's lower-case words (hyphenated parts apart) and their initials as one string."""
    words = tuple(w.lower() for w in re.findall(r"[A-Za-z]+", text))
    return words, "".join(w[0] for w in words)


# Words that count whatever units a collection holds: an abstract says "1.6M image-text data" where a question asks
# for "image-text samples", so a paper need not use them when the phrase also says what is counted.
_GENERIC_COUNTS = "samples examples instances items entries records data points"


def _counted_phrase(question: str) -> str | None:
    """The phrase 'how many' counts, in the part of a compound question that asks it ("How many GPU hours and how
    much data…": 'GPU hours')."""
    return next((match.group(1) for part in asked_parts(question) if (match := _HOW_MANY.search(part))), None)


def counted_nouns(question: str) -> frozenset[str]:
    """Stemmed lower-case words of the phrase a 'how many ...' question counts, up to its verb ('GPU hours' ->
    {'hour'}); acronyms excluded but a plural one ('how many GPUs' -> {'gpu'}), and nothing for a unit ('how many
    times larger', 'how many percentage points')."""
    phrase = _counted_phrase(question)
    if not phrase or phrase.split()[0].lower() in _UNIT_COUNTS:
        return frozenset()
    words = [w for w in phrase.split() if (w.islower() and w not in STOPWORDS) or _counted_acronym(w)]
    return frozenset(_count_stem(w) for w in words)


# A plural acronym counts things ("how many GPUs", "8 TPUs"), unless it is a unit of compute ("FLOPs", "MACs")
_PLURAL_COUNTED_ACRONYM = re.compile(r"(?!(?:G|T|M)?(?:FLOP|MAC)s\b)[A-Z][A-Z0-9]+s")


def _counted_acronym(word: str) -> bool:
    """True for a plural acronym that names counted things ('GPUs', not 'FLOPs')."""
    return bool(_PLURAL_COUNTED_ACRONYM.fullmatch(word))


def _count_stem(word: str) -> str:
    """The stem counting compares: a plural acronym's singular ('GPUs' -> 'gpu', which the stemmer keeps as 'gpus')."""
    return english_stemmer().stemWord((word[:-1] if _counted_acronym(word) else word).lower())


def counted_head(question: str) -> frozenset[str]:
    """What a paper must name to count the asked thing: the counted phrase's head noun ('state-of-the-art reflection
    removal methods' -> {'method'}), or, when the head is a generic unit ("samples"), the words before it
    ("image-text samples" -> {'image-text'}: the paper may call them "data")."""
    phrase = _counted_phrase(question)
    counted = counted_nouns(question)
    if not phrase or not counted:
        return frozenset()
    head = frozenset(_count_stem(w) for w in phrase.split()[-1:])
    return (counted - _generic_counts() or counted) if head <= _generic_counts() else head


@lru_cache(maxsize=1)
def _generic_counts() -> frozenset[str]:
    """The stems of the generic counted words."""
    return frozenset(english_stemmer().stemWords(_GENERIC_COUNTS.split()))


# A model's size, a count of parameters that need not put the number before "parameters": after its name
# ("Med-PaLM M (84B)"), before it ("the 1.4B STU-Net", "a 7B LVLM") or after the word ("parameter sizes ranging from
# 14 million to 1.4 billion")
_MODEL_SIZE = re.compile(
    r"\(\s*\d+(?:\.\d+)?\s*[MB]\s*\)|\b\d+(?:\.\d+)?[MB]\s+(?:[A-Z]|models?\b)|"
    r"\bparameters?\s+(?:[\w-]+\s+){0,4}\d+(?:\.\d+)?\s*(?:[MB]\b|million\b|billion\b)",
)
_PARAMETERS = frozenset({"paramet", "param"})


def counts_in(text: str, required: frozenset[str]) -> bool:
    """True when a paper's text names what the question counts (`counted_head`), or writes a model size for a count
    of parameters."""
    if required and required <= _PARAMETERS and _MODEL_SIZE.search(text):
        return True
    return required <= frozenset().union(*(w.stems for w in _count_words(text)))


_COUNT_TOKEN = re.compile(r"\d[\d,.]*[+KMB]?(?![D\d]\b)|[A-Za-z]+(?:-[A-Za-z]+)*", re.IGNORECASE)  # not "2D"
COUNT_WINDOW = 3  # words a count may stand before the thing counted: "19 commonly used benchmarks"
# Words between a count and the thing counted that are not part of its description: a unit, a comparison, a function
# word ("330x fewer Multiply-Accumulate (MAC) operations", "25 times fewer number of parameters")
_COUNT_FILLERS = STOPWORDS | frozenset({"x", "times", "fold", "percent", "fewer", "more", "less", "larger", "smaller",
                                        "higher", "lower", "number"})  # fmt: skip


def counts(text: str, nouns: frozenset[str]) -> bool:
    """True when the text puts a number in front of one of the counted nouns ("19 commonly used benchmarks", "five
    datasets", "six state-of-the-art SIRR methods", "a 3 billion-parameter model"), or the question counts nothing;
    a compound is one word of the window, and names what it counts by any of its parts."""
    if not nouns:
        return True
    if nouns <= _PARAMETERS and _MODEL_SIZE.search(text):
        return True
    words = _count_words(text)
    for i, word in enumerate(words):
        if word.count:
            following = [w for w in words[i + 1 :] if w.described][:COUNT_WINDOW]
            if any(nouns & w.stems for w in following):
                return True
    return False


class _CountWord(NamedTuple):
    """A word of a text as `counts` reads it: its stems (and its hyphen-separated parts'), whether it is a number,
    and whether it describes the thing counted (not a number, a unit, a comparison or a function word)."""

    stems: frozenset[str]
    count: bool
    described: bool


@lru_cache(maxsize=8192)
def _count_words(text: str) -> tuple[_CountWord, ...]:
    """The text's words (`_COUNT_TOKEN`) as `counts` reads them (cached: a sentence is read for many questions)."""
    stemmer = english_stemmer()
    out = []
    for w in _COUNT_TOKEN.findall(text):
        count = w[0].isdigit() or w.lower() in _NUMBER_WORDS
        stems = frozenset([*stemmer.stemWords([w.lower(), *w.lower().split("-")]), _count_stem(w)])
        out.append(_CountWord(stems, count, not count and w.lower() not in _COUNT_FILLERS))
    return tuple(out)


@dataclass(frozen=True)
class LogisticModel:
    """A fitted logistic regression over named, standardized features."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def prob(self, rows: np.ndarray) -> np.ndarray:
        """P(positive) for each row of raw feature values; a value that could not be measured (NaN) counts as the
        training mean, so it moves nothing."""
        if rows.size == 0:
            return np.zeros(0, dtype=np.float64)
        rows = np.where(np.isnan(rows), self.mean, rows)
        z = ((rows - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict[str, object]:
        """The model as plain JSON values."""
        return {
            "features": list(self.features), "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(), "weights": self.weights.round(6).tolist(),
            "bias": round(self.bias, 6),
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: dict[str, object], expected: tuple[str, ...]) -> LogisticModel:
        """Load a model; its feature list must be exactly the code's."""
        features = tuple(raw["features"])  # type: ignore[arg-type]
        if features != expected:
            raise ValueError(f"model features {features} differ from the code's {expected}; re-run the fit")
        arr = {k: np.asarray(raw[k], dtype=np.float64) for k in ("mean", "scale", "weights")}
        return cls(features, arr["mean"], arr["scale"], arr["weights"], float(raw["bias"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class EvidenceModel:
    """The sentence, own-sentence, paper, list-paper and the two answerability models and the thresholds calibrated with
    them on dev."""

    sentence: LogisticModel
    own_sentence: LogisticModel  # the sentence model without the features relative to the other retrieved papers
    paper: LogisticModel
    list_paper: LogisticModel
    answer: LogisticModel
    list_answer: LogisticModel  # the answerability model of list questions (`answer_row`)
    answer_threshold: float  # of either answerability model: both are fit with balanced classes
    list_threshold: float
    quantity_threshold: float
    list_min_distinct: float = 0.0


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> EvidenceModel:
    """The evidence model data file (written by `python -m evals.fit_evidence`)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return EvidenceModel(
        sentence=LogisticModel.from_json(raw["sentence"], SENTENCE_FEATURES),
        own_sentence=LogisticModel.from_json(raw["own_sentence"], SENTENCE_FEATURES),
        paper=LogisticModel.from_json(raw["paper"], PAPER_FEATURES),
        list_paper=LogisticModel.from_json(raw["list_paper"], LIST_FEATURES),
        answer=LogisticModel.from_json(raw["answer"], PAPER_FEATURES),
        list_answer=LogisticModel.from_json(raw["list_answer"], LIST_ANSWER_FEATURES),
        answer_threshold=float(raw["thresholds"]["answer"]),
        list_threshold=float(raw["thresholds"]["list"]),
        quantity_threshold=float(raw["thresholds"]["quantity"]),
        list_min_distinct=float(raw["thresholds"]["list_min_distinct"]),
    )


@dataclass(frozen=True)
class ScoredSentence:
    """One abstract sentence of a numbered source with its probability of answering the question."""

    number: int
    index: int
    text: str
    cosine: float
    prob: float
    has_number: bool
    tied_number: bool
    contribution: bool


@dataclass(frozen=True)
class PaperEvidence:
    """A numbered source (retrieval order) with its sentences, best first, and its probability of answering."""

    number: int
    hit: Hit
    sentences: tuple[ScoredSentence, ...]
    named: bool
    prob: float
    distinct: float = 0.0
    list_prob: float = 0.0
    covers_exact: bool = True
    covers_counted: bool = True
    shares_name: bool = False  # not named, but its title holds a name the question uses (`sharing_a_name`)

    @property
    def holds_terms(self) -> bool:
        """True when the paper mentions the question's exact terms and counts what its "how many" asks about (else a
        question about it is a near miss)."""
        return self.covers_exact and self.covers_counted


@dataclass(frozen=True)
class Evidence:
    """Everything the composer and the gate need: the question's shape and the scored papers, best first."""

    question: str
    kind: QueryType
    quantity: bool
    papers: tuple[PaperEvidence, ...]
    sentence_rows: np.ndarray
    paper_rows: np.ndarray
    strength: float = 0.0  # probability that the collection answers the question at all (the answerability model)
    references: tuple[str, ...] = ()  # names a follow-up's rewrite put in (`score`'s argument)
    exact: tuple[str, ...] = ()  # the question's exact terms, its exclusions left out (`exact_terms`)
    parts: tuple[Evidence, ...] = ()  # a compound fact question's parts, each scored on its own (`asked_parts`)

    def listed(self, model: EvidenceModel) -> list[PaperEvidence]:
        """The papers a list question lists on their own evidence: likely enough under the list model, and holding
        the question's distinguishing terms (best first)."""
        return [p for p in self.papers if p.list_prob >= model.list_threshold and p.distinct >= model.list_min_distinct]

    def answerable(self, model: EvidenceModel) -> bool:
        """The gate: the collection likely answers the question, or the question names (or points at) a paper."""
        return self.strength >= model.answer_threshold or any(p.named and p.sentences for p in self.papers)


def _bm25_scores(question: str, texts: Sequence[str]) -> np.ndarray:
    """BM25 scores of texts for the question, scaled so the best is 1 (all zeros when nothing matches)."""
    if not texts:
        return np.zeros(0, dtype=np.float32)
    english = english_stemmer()
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(list(texts), stopwords=list(STOPWORDS), stemmer=english, show_progress=False),
        show_progress=False,
    )
    tokens = bm25s.tokenize([question], stopwords=list(STOPWORDS), stemmer=english, show_progress=False)
    query = [t for t in tokens.vocab if t in retriever.vocab_dict]
    if not query:
        return np.zeros(len(texts), dtype=np.float32)
    scores = np.asarray(retriever.get_scores(query), dtype=np.float32)
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else scores


# A yes/no question ("Does it reach 86.5%?") may restate the number it checks; a wh-question's numbers describe what
# it asks about ("the 1-bit adapters", "at 512x512"), and the answer is another number
_YES_NO = re.compile(r"^\W*(?:is|are|was|were|does|do|did|can|could|has|have|had|will|would)\b", re.IGNORECASE)


def given_numbers(question: str) -> frozenset[str]:
    """The numbers a wh-question states itself (none for a yes/no question), normalized ('1,000' -> '1000',
    'Hundreds' -> 'hundreds')."""
    if _YES_NO.match(question):
        return frozenset()
    return frozenset(_numbers(question))


def _numbers(text: str) -> list[str]:
    """The numbers of a text that measure something, in digits or written out, normalized."""
    return [n.replace(",", "") for n in _QUANTITY_NUMBER.findall(text)] + [
        w.lower() for w in _SPELLED_NUMBER.findall(text)
    ]


def _new_numbers(text: str, given: frozenset[str]) -> bool:
    """True when the text holds a number (in digits or written out) that is not one the question states."""
    return any(n not in given for n in _numbers(text))


def _numbers_tied(sentence: str, terms: frozenset[str], given: frozenset[str] = frozenset()) -> bool:
    """True when a number of the sentence (not one the question states) stands within a few words of one of the
    question's key terms."""
    words = WORD.findall(sentence)
    stems = english_stemmer().stemWords([w.lower() for w in words])
    positions = [i for i, s in enumerate(stems) if s in terms]
    if not positions:
        return False
    tokens = sentence.split()
    numeric = [i for i, t in enumerate(tokens) if _new_numbers(t, given)]
    # map word positions to whitespace-token positions approximately by their share of the sentence
    scale = len(tokens) / max(len(words), 1)
    return any(abs(n - p * scale) <= 5 for n in numeric for p in positions)


def _unit_match(question: str, sentence: str) -> bool:
    """True when the sentence holds a number of the kind the question asks for (a '%' for an accuracy, '×' for a
    speed-up)."""
    return any(asks.search(question) and written.search(sentence) for asks, written in _UNITS)


def score(
    question: str,
    hits: Sequence[Hit],
    cache: SentenceCache,
    model: EvidenceModel | None = None,
    focus: Sequence[str] = (),
    references: Sequence[str] = (),
) -> Evidence:
    """Score every usable sentence of the numbered sources and every source against the question; papers best first.

    A paper the question names, or one a follow-up points at (`focus`: paper ids), counts as named; the names a
    follow-up's rewrite put in (`references`) are not exact terms the answer must hold. Sentences that
    address a model, carry markup or are only a link are never evidence (`rag.text.is_evidence`).
    """
    model = model or load_model()
    question = without_opener(question)
    kind = query_type(question)
    bare = unreferenced(question, references)  # what kind of answer is asked for, without the names put in
    quantity = wants_quantity(bare)
    asked = parse(question).positive  # "apart from X": words about the papers the answer leaves out, not scored
    papers: list[PaperSentences] = cache.get(hit.paper for hit in hits)
    names = [names_mentioned(asked, hit.paper) for hit in hits]
    named = [hit.paper.id in focus or bool(found) for hit, found in zip(hits, names, strict=True)]
    sharing = sharing_a_name([hit.paper for hit in hits], names)
    plain = asked
    for hit, is_named in zip(hits, named, strict=True):
        if is_named:
            plain = without_names(plain, hit.paper)
    q = cache.embed_query(asked)
    q_plain = cache.embed_query(plain) if plain != asked and plain.strip() else q
    usable = [[i for i, s in enumerate(ps.sentences) if is_evidence(s)] for ps in papers]
    flat = [(n, i) for n, idx in enumerate(usable) for i in idx]
    texts = [papers[n].sentences[i] for n, i in flat]
    bm25 = _bm25_scores(plain, texts)
    q_terms = key_terms(plain)
    groups = option_groups(plain)
    exact = exact_terms(asked, hits, references)
    needed, optional = requirements(asked, exact)  # what a paper must hold: `covers`
    counted = counted_nouns(bare)
    given = given_numbers(bare)
    cos_all = [ps.sentence_vectors @ (q_plain if named[n] else q) for n, ps in enumerate(papers)]
    # late interaction: each content word piece of the question against the paper's own pieces, in context
    q_states = cache.query_states(unframed(plain))
    matched = [piece_matches(q_states, ps) for ps in papers]
    matches, sentence_matches = [m for m, _ in matched], [m for _, m in matched]
    best_cos = max((float(c[i]) for n, c in enumerate(cos_all) for i in usable[n]), default=0.0)
    best_piece = max((m for n, i in flat if not math.isnan(m := float(sentence_matches[n][i]))), default=math.nan)
    # the question's terms its paper's title does not hold: what it asks of a paper it describes by its title words
    residual = [q_terms - key_terms(ps.paper.title) for ps in papers]
    rows: list[list[float]] = []
    meta: list[tuple[int, int, bool, bool, bool]] = []
    for j, (n, i) in enumerate(flat):
        text = papers[n].sentences[i]
        terms = key_terms(text)
        # a count written out before the thing counted ("four primary limitations") is a number tied to it
        counted_here = bool(counted) and counts(text, counted)
        has_number = _new_numbers(text, given) or counted_here
        tied = counted_here or (has_number and _numbers_tied(text, q_terms, given))
        contribution = bool(_PROPOSAL.search(text))
        position = i / max(len(papers[n].sentences) - 1, 1)
        cos = float(cos_all[n][i])
        rows.append([
            cos, cos - best_cos, float(bm25[j]),
            len(q_terms & terms) / len(q_terms) if q_terms else 0.0,
            mentioned(text, exact) / len(exact) if exact else 0.0,
            float(quantity and has_number), float(quantity and tied), float(quantity and _unit_match(bare, text)),
            position, float(i == 0), float(contribution), float(bool(FINDING.search(text))),
            float(i < 2 and not contribution and not has_number and "we" not in text.lower().split()),
            float(bool(BOILERPLATE.search(text))), 1.0 / (n + 1), float(papers[n].title_vector @ q), float(named[n]),
            len(residual[n] & terms) / len(residual[n]) if residual[n] else 0.0,
            sentence_matches[n][i], sentence_matches[n][i] - best_piece,
        ])  # fmt: skip
        meta.append((n, i, has_number, tied or (has_number and _unit_match(bare, text)), contribution))
    sentence_rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(SENTENCE_FEATURES))
    probs = model.sentence.prob(sentence_rows)
    # a sentence's match on its own: a list judges each paper by it, not by how it ranks behind the best paper
    own_probs = model.own_sentence.prob(sentence_rows)
    own: dict[int, list[float]] = {}
    for (n, *_), p in zip(meta, own_probs, strict=True):
        own.setdefault(n, []).append(float(p))
    by_paper: dict[int, list[ScoredSentence]] = {}
    for (n, i, has_number, tied, contribution), p in zip(meta, probs, strict=True):
        by_paper.setdefault(n, []).append(
            ScoredSentence(n + 1, i, papers[n].sentences[i], float(cos_all[n][i]), float(p), has_number, tied,
                           contribution)
        )  # fmt: skip
    paper_rows = _paper_rows(hits, papers, by_paper, own, named, q, q_terms, groups, exact, needed, optional,
                             counted_head(bare), best_cos, matches)  # fmt: skip
    paper_probs = model.paper.prob(paper_rows)
    # a list question's papers are judged by a model fit on list questions alone: there, being behind the best
    # paper says little, while for a fact it says much
    list_probs = model.list_paper.prob(list_rows(paper_rows)) if kind is QueryType.LIST else paper_probs
    evidence = [
        PaperEvidence(
            number=n + 1, hit=hit,
            sentences=tuple(sorted(by_paper.get(n, []), key=lambda s: (-s.prob, s.index))),
            named=named[n], prob=float(paper_probs[n]),
            distinct=float(paper_rows[n][_DISTINCT]), list_prob=float(list_probs[n]),
            covers_exact=bool(paper_rows[n][_EXACT_ALL]), covers_counted=bool(paper_rows[n][_COUNTED]),
            shares_name=hit.paper.id in sharing,
        )
        for n, hit in enumerate(hits)
    ]
    evidence.sort(key=lambda e: (-e.prob, e.number))
    # answerable at all: the best paper's evidence judged by a model fit on answerable against unanswerable questions,
    # one for lists and one for the rest (the paper model ranks papers within a question, so its top probability says
    # little about off-topic ones)
    strength = 0.0
    if evidence:
        gate = model.list_answer if kind is QueryType.LIST else model.answer
        strength = float(gate.prob(answer_row(kind, paper_rows, evidence))[0])
    parts: tuple[Evidence, ...] = ()
    if kind in (QueryType.FACTOID, QueryType.IDENTIFY) and len(asked := asked_parts(question)) > 1:
        # "how many parameters …, and how many tokens …", "which model …, and what FID does it reach?": each part's
        # sentences are scored for that part alone (the paper answering is the whole question's, so the papers it
        # names stay named)
        named_ids = [hit.paper.id for hit, is_named in zip(hits, named, strict=True) if is_named]
        parts = tuple(score(part, hits, cache, model, focus=named_ids, references=references) for part in asked)
    return Evidence(
        question, kind, quantity, tuple(evidence), sentence_rows, paper_rows, strength, tuple(references), tuple(exact),
        parts,
    )


def piece_matches(question: np.ndarray, paper: PaperSentences) -> tuple[float, np.ndarray]:
    """How well a paper's abstract, and each of its sentences, matches the question piece by piece (late interaction,
    as in ColBERT): for each of the question's content word pieces its best cosine among the abstract's (a
    sentence's) pieces, averaged; NaN (not measured: the models read it as their training mean) when either has no
    states, as with an embedder that keeps none.

    A sentence vector averages a sentence's tokens, so a constraint the abstract states in passing in a long sentence
    (" … deployed on a real mobile device") is diluted; a piece's state keeps it. The states come from passes that
    see the whole abstract (`rag.sentence_cache`), its results past the first 256 tokens too, each piece in the
    context of the sentences around it.
    """
    per_sentence = np.full(len(paper.sentences), math.nan)
    states = paper.piece_states
    if not len(question) or not len(states):
        return math.nan, per_sentence
    best = question @ states.T  # question pieces x the abstract's pieces
    for i, rows in enumerate(paper.sentence_pieces()):
        if rows.stop > rows.start:
            per_sentence[i] = float(best[:, rows].max(axis=1).mean())
    return float(best.max(axis=1).mean()), per_sentence


def answer_row(kind: QueryType, paper_rows: np.ndarray, papers: Sequence[PaperEvidence]) -> np.ndarray:
    """The answerability model's row (one row): the best paper's features, and for a list question
    (`LIST_ANSWER_FEATURES`) the highest list probabilities of its papers (0 past the last paper)."""
    row = paper_rows[papers[0].number - 1]
    if kind is not QueryType.LIST:
        return row[None, :]
    listed = sorted((p.list_prob for p in papers), reverse=True)[:LISTED_PROBS]
    return np.concatenate([row, listed, np.zeros(LISTED_PROBS - len(listed))])[None, :]


def list_rows(paper_rows: np.ndarray) -> np.ndarray:
    """The list-paper model's rows (`LIST_FEATURES`): each paper's features, then their z-scores among the question's
    retrieved papers (0 where the papers do not differ)."""
    spread = paper_rows.std(axis=0)
    within = (paper_rows - paper_rows.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return np.hstack([paper_rows, within])


def _paper_rows(
    hits: Sequence[Hit],
    papers: Sequence[PaperSentences],
    by_paper: dict[int, list[ScoredSentence]],
    own: dict[int, list[float]],
    named: Sequence[bool],
    q: np.ndarray,
    q_terms: frozenset[str],
    groups: Sequence[Sequence[frozenset[str]]],
    exact: Sequence[str],
    needed: Sequence[str],
    optional: set[str],
    required: frozenset[str],
    best_cos: float,
    matches: Sequence[float],
) -> np.ndarray:
    """Paper features: its best sentences, title, coverage of the question's (distinguishing) terms, rank, and how
    well its word pieces match the question's (`piece_match`)."""
    texts = [f"{hit.paper.title} {hit.paper.abstract}" for hit in hits]
    term_sets = [key_terms(t) for t in texts]
    # a term every retrieved paper shares is the topic; the others tell the papers apart (inverse paper frequency)
    df = {t: sum(t in ts for ts in term_sets) for t in q_terms}
    idf = {t: math.log((len(hits) + 1) / (df[t] + 0.5)) for t in q_terms}
    idf_total = sum(idf.values())
    # the question's terms no retrieved paper has: a question about something the collection never mentions
    unmatched = sum(df[t] == 0 for t in q_terms) / len(q_terms) if q_terms else 0.0
    best_probs = [max((s.prob for s in by_paper.get(n, [])), default=0.0) for n in range(len(hits))]
    top_prob = max(best_probs, default=0.0)
    rows = []
    for n, (hit, ps) in enumerate(zip(hits, papers, strict=True)):
        probs = sorted((s.prob for s in by_paper.get(n, [])), reverse=True)
        own_probs = sorted(own.get(n, []), reverse=True)
        cosines = [s.cosine for s in by_paper.get(n, [])]
        paper_cos = max([float(ps.title_vector @ q), *cosines])
        covered = q_terms & term_sets[n]
        # what the paper claims as its own (title and contribution sentences), not what it mentions in passing
        scored = by_paper.get(n, [])
        claims = [x for x in scored if x.contribution] or sorted(scored, key=lambda x: x.index)[:1]
        claim_terms = key_terms(" ".join([hit.paper.title, *(x.text for x in claims)]))
        rows.append([
            probs[0] if probs else 0.0, probs[1] if len(probs) > 1 else 0.0, paper_cos, paper_cos - best_cos,
            float(ps.title_vector @ q), len(covered) / len(q_terms) if q_terms else 0.0,
            sum(idf[t] for t in covered) / idf_total if idf_total > 0 else 0.0,
            mentioned(texts[n], exact) / len(exact) if exact else 1.0,
            float(covers(texts[n], needed, optional)), float(counts_in(texts[n], required)),
            1.0 / (hit.rank if hit.rank else n + 1), float(named[n]), (probs[0] if probs else 0.0) - top_prob,
            max([float(ps.title_vector @ q), *(x.cosine for x in claims)]),
            len(q_terms & claim_terms) / len(q_terms) if q_terms else 0.0, unmatched,
            own_probs[0] if own_probs else 0.0, own_probs[1] if len(own_probs) > 1 else 0.0,
            option_coverage(q_terms, groups, term_sets[n]), matches[n],
        ])  # fmt: skip
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(PAPER_FEATURES))

