"""The extractive composer: an answer made of the abstracts' own sentences, each run of a paper's sentences cited [n].

It decides only what to quote; whether the collection answers at all is the evidence step's gate
(`rag.evidence`), and the verifier checks the result like any other answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.constraints import excluded_papers, meets, parse
from rag.evidence import (
    ASKS_PROBLEM,
    BOILERPLATE,
    FINDING,
    PROPOSES,
    Evidence,
    EvidenceModel,
    PaperEvidence,
    QueryType,
    ScoredSentence,
    asked_measures,
    chooses_among,
    counted_nouns,
    counts,
    covers,
    mentioned,
    requirements,
    same_variant,
    states_measure,
    states_unit,
    unreferenced,
    within_bounds,
)
from rag.naming import short_name
from rag.text import DANGLING, REFERS_BACK

# At most this many papers in a list, sentences in a summary, sentences in a factoid answer.
MAX_LISTED = 6
LIST_ENTRY_SENTENCES = 2  # a listed paper's: what it proposes and why it is listed
SUMMARY_SENTENCES = 4
FACTOID_SENTENCES = 2
# A second factoid sentence is quoted only when it is nearly as likely to answer as the first.
SECOND_SENTENCE_SHARE = 0.75

_ASKS_FINDINGS = re.compile(r"\b(find|findings|found|conclu\w*|results?|show|lessons?|takeaways?)\b", re.IGNORECASE)
_ASKS_FOR_LINKS = re.compile(r"\b(code|github|url|link|website|page|release[ds]?|available|download)\b", re.IGNORECASE)
# A sentence stating a problem a paper starts from: a contrast ("However, …", "Despite …") or a word for a difficulty
_PROBLEM = re.compile(
    r"^(?:however|but|yet|nonetheless|nevertheless|unfortunately|despite|although|though|while)\b|"
    r"\b(?:challeng\w*|problems?|limitations?|limited|suffers?|suffering|costly|expensive|overheads?|bottlenecks?|"
    r"difficult\w*|fails?|failing|lacks?|lacking|issues?|inefficien\w*|scarce|hinders?|struggles?|confined|"
    r"prohibitive\w*|drawbacks?|shortcomings?)\b",
    re.IGNORECASE,
)
PROBLEM_SENTENCES = 2  # of the problem statement, before the contribution that answers it
METHOD_SENTENCES = 2  # after the contribution, when the question also asks how
_ASKS_HOW = re.compile(r"\band how\b|\bhow (?:does|do|did) (?:it|they|the \w+) (?:address|solve|tackle|overcome)",
                       re.IGNORECASE)
# A sentence in the paper's own voice: where an abstract starts saying what it does, after its background.
_OWN_VOICE = re.compile(r"\b(we|our|this (paper|work|study))\b", re.IGNORECASE)


@dataclass(frozen=True)
class Composition:
    """An extractive answer with markers in source (retrieval) numbering; empty text means abstain."""

    text: str
    kind: QueryType
    papers: tuple[int, ...]


def readable(text: str, standalone: bool = True) -> str:
    """A quoted sentence without a leading connective that would dangle without its context, capitalized again."""
    if not standalone:
        return text
    rest = DANGLING.sub("", text, count=1)
    return rest[:1].upper() + rest[1:] if rest else text


def cite(paper: PaperEvidence, sentences: Sequence[ScoredSentence], label: bool = True) -> str:
    """'Name: first sentence. next sentence [n].' in abstract order, the marker once at the end of the run."""
    ordered = sorted(sentences, key=lambda s: s.index)
    parts = []
    for k, s in enumerate(ordered):
        follows = k > 0 and ordered[k - 1].index == s.index - 1
        parts.append(readable(s.text.strip(), standalone=not follows).rstrip(" ."))
    body = ". ".join(parts) + f" [{paper.number}]."
    return f"{short_name(paper.hit.paper)}: {body}" if label else body


def _contentful(paper: PaperEvidence, question: str) -> list[ScoredSentence]:
    """The paper's sentences best first, without link boilerplate unless the question asks for links."""
    if _ASKS_FOR_LINKS.search(question):
        return list(paper.sentences)
    kept = [s for s in paper.sentences if not BOILERPLATE.search(s.text)]
    return kept or list(paper.sentences)


def _distinct(papers: Sequence[PaperEvidence]) -> list[PaperEvidence]:
    """Papers without repeats of a short name (the better-scoring of two versions of one paper stays)."""
    best: dict[str, PaperEvidence] = {}
    for p in papers:
        best.setdefault(short_name(p.hit.paper).lower(), p)
    return list(best.values())


def _summary(paper: PaperEvidence, question: str) -> list[ScoredSentence]:
    """The contribution and the method's gist: the sentences from the first contribution sentence on, in the
    abstract's order (an abstract says what it proposes and how before its results); its findings first when the
    question asks for findings or conclusions."""
    ordered = sorted((s for s in paper.sentences if not BOILERPLATE.search(s.text)), key=lambda s: s.index)
    if not ordered:
        return []
    if ASKS_PROBLEM.search(question):
        # the problem in the field's voice (not "we …"), then the contribution that answers it
        problems = [s for s in ordered if _PROBLEM.search(s.text) and not _OWN_VOICE.search(s.text)]
        if problems:
            problems = problems[:PROBLEM_SENTENCES]
            answer = next((s for s in ordered if s.contribution and s.index > problems[-1].index), None)
            if answer is None:
                return problems
            # "… address, and how?": the method's gist follows the contribution
            method = [s for s in ordered if s.index > answer.index][:METHOD_SENTENCES]
            return [*problems, answer, *(method if _ASKS_HOW.search(question) else [])]
    if _ASKS_FINDINGS.search(question):
        findings = sorted((s for s in ordered if FINDING.search(s.text)), key=lambda s: (-s.prob, s.index))
        rest = sorted((s for s in ordered if s not in findings), key=lambda s: (-s.prob, s.index))
        return (findings + rest)[:SUMMARY_SENTENCES]
    start = next((s for s in ordered if s.contribution), None) or next(
        (s for s in ordered if _OWN_VOICE.search(s.text) and not s.text.rstrip(" .").endswith("?")), ordered[0]
    )  # a rhetorical question ("What if we had…?") is not where the paper says what it does
    if REFERS_BACK.search(start.text):
        # "We present a family of such architectures": the sentence it builds on comes first
        start = next((s for s in ordered if s.index == start.index - 1), start)
    run = [s for s in ordered if s.index >= start.index]
    # "This paper investigates X" frames the work; what it proposes may come after a problem statement, which is
    # left out (the paper's own observations before its proposal stay)
    proposal = next((s for s in run[1:] if PROPOSES.search(s.text)), None)
    if proposal is not None and not PROPOSES.search(start.text):
        run = [s for s in run if s is start or s.index >= proposal.index or _OWN_VOICE.search(s.text)]
    return run[:SUMMARY_SENTENCES]


def quantity_sentences(evidence: Evidence, paper: PaperEvidence) -> list[ScoredSentence]:
    """The sentences of a paper that can answer a quantity question, best first: a number tied to the thing asked
    (near it, or of the asked kind: a % for an accuracy), the measure and the unit the question names ("in
    milliseconds"), for "how many benchmarks" a number counting benchmarks, and the setting the question states in
    numbers ("the 1.5B model", "on Kinetics-400", "at 256×256"; a number for another setting is a near miss) in the
    sentence, the one before it or the paper's claims, and no other variant than the one asked ("the Pro model": not
    the Edge model's number). Such a number is content even in a sentence that also points at code.
    """
    question = unreferenced(evidence.question, evidence.references)
    measures, counted = asked_measures(question), counted_nouns(question)
    conditions, optional = requirements(question, [t for t in evidence.exact if any(c.isdigit() for c in t)])
    # the paper's own claims describe the paper, not the setting of one number: they hold a condition for every number,
    # and so does the sentence before ("On ImageNet-1K, … . Using 0.46 times the parameters, …")
    claims = " ".join([paper.hit.paper.title, *(s.text for s in paper.sentences if s.contribution or s.index == 0)])
    before = {s.index + 1: s.text for s in paper.sentences}
    return [
        s
        for s in paper.sentences
        if s.tied_number and states_measure(s.text, measures) and states_unit(question, s.text)
        and counts(s.text, counted) and covers(f"{before.get(s.index, '')} {s.text} {claims}", conditions, optional)
        and same_variant(question, s.text)
    ]


def _factoid(evidence: Evidence, paper: PaperEvidence, model: EvidenceModel) -> list[ScoredSentence]:
    """The sentences of a paper that state the asked-for fact; for a compound question ("how many parameters, and how
    many tokens…"), each part's, as far as the paper states them."""
    if not evidence.parts:
        return _fact(evidence, paper, model)
    chosen: dict[int, ScoredSentence] = {}
    for part in evidence.parts:
        for s in _fact(part, _as_scored_in(part, paper), model):
            chosen.setdefault(s.index, s)
    return list(chosen.values())


def _as_scored_in(part: Evidence, paper: PaperEvidence) -> PaperEvidence:
    """The paper as a part of a compound question scored it."""
    return next(p for p in part.papers if p.number == paper.number)


def _fact(evidence: Evidence, paper: PaperEvidence, model: EvidenceModel) -> list[ScoredSentence]:
    """The sentences of a paper that state one asked-for fact; for a quantity, one holding a number tied to it."""
    candidates = _contentful(paper, evidence.question)
    if evidence.quantity:
        candidates = quantity_sentences(evidence, paper)
        if not candidates or candidates[0].prob < model.quantity_threshold:
            return []
    if not candidates:
        return []
    first = candidates[0]
    chosen = [first]
    for s in candidates[1:FACTOID_SENTENCES]:
        if s.prob >= SECOND_SENTENCE_SHARE * first.prob and s.prob >= model.quantity_threshold:
            chosen.append(s)
    return chosen


def compose(evidence: Evidence, model: EvidenceModel) -> Composition:
    """Quote the sentences that answer the question, or return empty text when the evidence does not answer it."""
    kind = evidence.kind
    asked = parse(evidence.question)
    # a list leaves out the papers about what it excludes; a question about one paper ("the approach that uses one
    # network instead of dozens of specialists") describes that paper with its exclusion, so only names count there
    excluded = excluded_papers(asked, [p.hit.paper for p in evidence.papers], by_topic=kind is QueryType.LIST)
    # "with code" narrows which papers a list or a "which paper" question names; elsewhere it describes the paper
    # asked about ("the released code base of …")
    papers = [p for p in evidence.papers
              if p.sentences and meets(asked, p.hit.paper, excluded, code=kind in (QueryType.LIST, QueryType.IDENTIFY))]
    if not papers or not evidence.answerable(model):
        return Composition("", kind, ())
    named = _distinct([p for p in papers if p.named])
    if kind is QueryType.LIST:
        # a paper is listed on its own evidence: likely enough, and holding the question's distinguishing terms
        listed = {p.number for p in evidence.listed(model)}
        chosen = named if len(named) > 1 else _distinct([p for p in papers if p.number in listed])
        if len(named) > 1 and chooses_among(evidence.question) and not evidence.exact:
            # "which of them is about …" picks from the papers at hand: those the list model keeps, else the likeliest
            # one ("which of them report ADE20K" picks by the exact term, below)
            chosen = [p for p in named if p.number in listed] or sorted(named, key=lambda p: -p.list_prob)[:1]
        # ... holding the question's exact terms, and a number within its bounds ("86% or more", "an FID below 2")
        chosen = [p for p in chosen
                  if p.covers_exact and within_bounds([s.text for s in p.sentences], evidence.question)]  # fmt: skip
        chosen = chosen[:MAX_LISTED]
        if not chosen:
            return Composition("", kind, ())
        lines = [f"- {cite(p, _list_sentences(evidence, p))}" for p in chosen]
        return Composition("\n".join(lines), kind, tuple(p.number for p in chosen))
    # a name the question uses may also stand in another paper's title ("Vision Mamba" in "Efficient Vision Mamba"):
    # of those papers, the better supported is the one meant
    best = next(p for p in papers if p.named or p.shares_name) if named else papers[0]
    if not best.holds_terms:
        # the paper never mentions what is asked about, or never counts it ("how many GPU hours"): a near miss
        return Composition("", kind, ())
    if kind is QueryType.SUMMARY:
        chosen_papers = named[:2] if len(named) > 1 else [best]
        lines = [cite(p, _summary(p, evidence.question)) for p in chosen_papers]
        return Composition("\n".join(lines), kind, tuple(p.number for p in chosen_papers))
    if kind is QueryType.IDENTIFY:
        # "Which model …, and what FID does it reach?": the sentence that identifies the paper is the best for the
        # first part alone (for the whole question, the one with the FID may score higher), then what the other
        # parts ask of it
        identifying = evidence.parts[0] if evidence.parts else evidence
        top = _contentful(_as_scored_in(identifying, best), identifying.question)[:1]
        contribution = [s for s in best.sentences if s.contribution][:1]
        asked = [s for part in evidence.parts[1:] for s in _fact(part, _as_scored_in(part, best), model)]
        sentences = list({s.index: s for s in contribution + top + asked}.values())
        return Composition(cite(best, sentences), kind, (best.number,))
    if len(named) > 1 and len(evidence.references) > 1:
        # a follow-up about several cited papers ("how many masks do they each have?"): each paper's own answer, from
        # those that mention what is asked about ("do any of them report VTAB-1k?")
        answers = [(p, _factoid(evidence, p, model)) for p in named if p.holds_terms]
        answers = [(p, sentences) for p, sentences in answers if sentences]
        text = "\n".join(cite(p, sentences) for p, sentences in answers)
        return Composition(text, kind, tuple(p.number for p, _ in answers))
    sentences = _factoid(evidence, best, model)
    if not sentences:
        return Composition("", kind, ())
    return Composition(cite(best, sentences), kind, (best.number,))


def _list_sentences(evidence: Evidence, paper: PaperEvidence) -> list[ScoredSentence]:
    """A listed paper's entry: what it proposes (its first contribution sentence) and why it is listed, its best
    sentence (its best with a number when the question asks for a quantity, the one that shows it meets the question's
    exact terms, "DeiT", "RetinaNet", when one does); its best two when the best is what it proposes."""
    candidates = _contentful(paper, evidence.question)
    if evidence.quantity:
        candidates = [s for s in candidates if s.has_number] or candidates
    if evidence.exact:  # stable: best first within ties
        candidates = sorted(candidates, key=lambda s: -mentioned(s.text, evidence.exact))
    claim = next((s for s in sorted(paper.sentences, key=lambda s: s.index) if s.contribution), None)
    if claim is None or not candidates or claim.index == candidates[0].index:
        return candidates[:LIST_ENTRY_SENTENCES]
    return [claim, candidates[0]]
