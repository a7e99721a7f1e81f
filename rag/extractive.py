"""The offline answerer: composes an answer from the most relevant abstract sentences, citing each [n]."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import bm25s
import numpy as np

from rag.citations import NUMBER, stemmer
from rag.naming import aliases, mentions, short_name
from rag.sentence_cache import PaperSentences, SentenceCache
from rag.types import Hit

# Sentence score = weights over (cosine to the question, BM25 within the retrieved sentences, paper rank prior).
COSINE_WEIGHT = 0.6
BM25_WEIGHT = 0.3
RANK_WEIGHT = 0.1
# Bonus for sentences holding a number when the question asks for a quantity, and for holding its specific terms.
NUMBER_BONUS = 0.2
TERM_BONUS = 0.15
# A paper is listed when its score is within this margin of the best paper's.
LIST_MARGIN = 0.08
# ... or when its best sentence's cosine is within this margin of the best cosine of any paper.
LIST_COSINE_MARGIN = 0.12
# At most this many papers in a list, sentences in a summary, sentences in a factoid answer.
MAX_LISTED = 5
SUMMARY_SENTENCES = 4
FACTOID_SENTENCES = 2
# With this many specific terms in a question, a paper may miss a third of them.
MANY_TERMS = 3
# A question that names a paper needs less similarity to count as evidence (its terms are still checked).
NAMED_RELIEF = 0.1
# A lower-ranked paper may answer a factoid when the best one lacks the question's specific terms.
FALLBACK_MARGIN = 0.15

_LIST = re.compile(
    r"\b(which|what|list|name|any|find|compare|comparison)\b.{0,40}?\b(papers|works|methods|models|approaches|studies|"
    r"architectures|techniques|frameworks|ones)\b|\bpapers\s+(that|which|about|on|using|use|propos)|"
    r"\bcompare\b|\bdifference between\b",
    re.IGNORECASE,
)
_WHICH_ONE = re.compile(r"\b(which|what)\s+(paper|work|study|method|model|approach|one)\b", re.IGNORECASE)
_SUMMARY = re.compile(
    r"\b(what is|what's|what are)\b.{0,60}\babout\b|\bsummar|\bdescribe\b|\bmain (idea|contribution)|"
    r"\btell me about\b|\boverview\b|\bexplain\b|\bwhat does\b.{0,60}\b(propose|do|introduce|present)\b",
    re.IGNORECASE,
)
_QUANTITY = re.compile(
    r"\bhow (much|many|fast|large|big|long)\b|\baccuracy\b|\btop-?1\b|\bmAP\b|\bAP\b|\bFID\b|\bscore\b|"
    r"\bspeed-?up\b|\bfaster\b|\bpercent|%|\bparameters\b|\bFLOPs\b|\bsize\b|\bnumber of\b|\bget\b|\bachiev|"
    r"\breach|\bimprov|\bperformance\b|\bresult|\bPSNR\b|\bmIoU\b|\bbillion|\bmillion|\bsmaller\b|\blarger\b|"
    r"\bfewer\b|\bless\b|\bmore\b|\breduc|\bsav(e|es|ing)\b|\bshrink|\bspeed|\blatency\b|\bthroughput\b",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-.]*[A-Za-z0-9]")
# "LoRA-style", "CLIP-based": the suffix is a description, the exact term is the head.
_DESCRIPTIVE_SUFFIX = re.compile(r"-(style|like|based|aware|free|level|scale|sized|only)$", re.IGNORECASE)
_SQUASH = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"[a-z][A-Z]")
_PROPOSAL = re.compile(r"\b(we|this paper|this work)\s+(propose|present|introduce|develop|design)", re.IGNORECASE)


class QueryType(StrEnum):
    """What shape of answer a question wants."""

    FACTOID = "factoid"
    LIST = "list"
    SUMMARY = "summary"


def query_type(question: str) -> QueryType:
    """Classify a question: a list of papers, a summary of one, or a fact (the default)."""
    if _LIST.search(question):
        return QueryType.LIST
    if _SUMMARY.search(question) or _WHICH_ONE.search(question):
        return QueryType.SUMMARY
    return QueryType.FACTOID


@dataclass(frozen=True)
class ScoredSentence:
    """One abstract sentence of a numbered source with its relevance to the question."""

    number: int
    index: int
    text: str
    cosine: float
    score: float


@dataclass(frozen=True)
class PaperEvidence:
    """A numbered source's sentences scored against the question, best first."""

    number: int
    hit: Hit
    sentences: tuple[ScoredSentence, ...]
    title_cosine: float
    named: bool

    @property
    def score(self) -> float:
        """The paper's relevance: its best sentence's score (a named paper is always relevant)."""
        return self.sentences[0].score if self.sentences else 0.0

    @property
    def best_cosine(self) -> float:
        """Highest cosine of any of its sentences (or its title) to the question."""
        return max([self.title_cosine, *(s.cosine for s in self.sentences)])


@dataclass(frozen=True)
class ExtractiveResult:
    """A composed answer (empty text = abstain) and the evidence score it rests on."""

    text: str
    evidence: float
    query_type: QueryType
    papers: tuple[int, ...]


def squash(text: str) -> str:
    """Lower-case text without spacing or punctuation ('Test-dev' -> 'testdev', '1248×1248' -> '1248x1248')."""
    return _SQUASH.sub("", text.lower().replace("×", "x").replace("times", "x"))


def specific_terms(question: str, hits: Sequence[Hit]) -> list[str]:
    """Datasets, metrics, numbers and other exact terms of a question ('COCO', 'ImageNet-V2', '512'), names excluded.

    An answer must come from a paper that mentions all of them: a paper that never says 'KITTI' cannot
    answer a question about KITTI, however close it is otherwise.
    """
    names = " ".join(squash(alias) for hit in hits for alias in (*aliases(hit.paper), short_name(hit.paper)))
    terms = []
    for token in (_DESCRIPTIVE_SUFFIX.sub("", t) for t in _TOKEN.findall(question)):
        exact = any(c.isdigit() for c in token) or any(c.isupper() for c in token[1:])
        if exact and squash(token) and squash(token) not in names:
            terms.append(token)
    return list(dict.fromkeys(terms))


def mentioned(text: str, terms: Sequence[str]) -> int:
    """How many of the terms text mentions (ignoring case, spacing, hyphens and a plural 's')."""
    flat = squash(text)
    return sum(squash(t) in flat or (t.endswith("s") and squash(t[:-1]) in flat) for t in terms)


def covers(text: str, terms: Sequence[str]) -> bool:
    """True when text mentions every term, or most when there are many (wording varies: GFLOPs, FLOP(G)).

    CamelCase names ('EfficientViM', 'ImageNet') are always required: their spelling does not vary.
    """
    names = [t for t in terms if _CAMEL.search(t)]
    if mentioned(text, names) < len(names):
        return False
    if len(terms) >= MANY_TERMS:
        return mentioned(text, terms) * 3 >= len(terms) * 2
    return mentioned(text, terms) == len(terms)


def _bm25_scores(question: str, texts: Sequence[str]) -> np.ndarray:
    """BM25 scores of texts for the question, scaled so the best is 1 (all zeros when nothing matches)."""
    english = stemmer()
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(list(texts), stopwords="en", stemmer=english, show_progress=False), show_progress=False
    )
    query_tokens = bm25s.tokenize([question], stopwords="en", stemmer=english, show_progress=False)
    if not query_tokens.vocab:
        return np.zeros(len(texts), dtype=np.float32)
    query = [t for t in query_tokens.vocab if t in retriever.vocab_dict]
    if not query:
        return np.zeros(len(texts), dtype=np.float32)
    scores = np.asarray(retriever.get_scores(query), dtype=np.float32)
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else scores


def score_sources(question: str, hits: Sequence[Hit], cache: SentenceCache) -> list[PaperEvidence]:
    """Score every abstract sentence of the numbered sources against the question; papers best first."""
    papers: list[PaperSentences] = cache.get(hit.paper for hit in hits)
    q = cache.embed_query(question)
    flat = [(n, i, s) for n, ps in enumerate(papers, start=1) for i, s in enumerate(ps.sentences)]
    bm25 = _bm25_scores(question, [s for _, _, s in flat]) if flat else np.zeros(0)
    wants_number = bool(_QUANTITY.search(question))
    terms = specific_terms(question, hits)
    by_paper: dict[int, list[ScoredSentence]] = {}
    offsets = np.cumsum([0] + [len(ps.sentences) for ps in papers])
    for n, ps in enumerate(papers, start=1):
        if not ps.sentences:
            continue
        cosines = ps.sentence_vectors @ q
        prior = 1.0 / (1.0 + 0.5 * (n - 1))
        for i, text in enumerate(ps.sentences):
            score = COSINE_WEIGHT * float(cosines[i]) + BM25_WEIGHT * float(bm25[offsets[n - 1] + i])
            score += RANK_WEIGHT * prior
            if wants_number and NUMBER.search(text):
                score += NUMBER_BONUS
            if terms:
                score += TERM_BONUS * mentioned(text, terms) / len(terms)
            by_paper.setdefault(n, []).append(ScoredSentence(n, i, text, float(cosines[i]), score))
    evidence = [
        PaperEvidence(
            number=n,
            hit=hit,
            sentences=tuple(sorted(by_paper.get(n, []), key=lambda s: (-s.score, s.index))),
            title_cosine=float(ps.title_vector @ q),
            named=mentions(question, hit.paper),
        )
        for n, (hit, ps) in enumerate(zip(hits, papers, strict=True), start=1)
    ]
    return sorted(evidence, key=lambda e: (-e.named, -e.score, e.number))


def _cite(paper: PaperEvidence, sentences: Sequence[ScoredSentence]) -> str:
    """'Name: sentence [n]. sentence [n].' with sentences in abstract order."""
    ordered = sorted(sentences, key=lambda s: s.index)
    body = " ".join(f"{s.text.rstrip().rstrip('.')} [{paper.number}]." for s in ordered)
    return f"{short_name(paper.hit.paper)}: {body}"


def _summary_sentences(paper: PaperEvidence) -> list[ScoredSentence]:
    """The proposal sentence of an abstract plus its most relevant ones."""
    chosen = [s for s in sorted(paper.sentences, key=lambda s: s.index) if _PROPOSAL.search(s.text)][:1]
    for s in paper.sentences:
        if len(chosen) >= SUMMARY_SENTENCES:
            break
        if s not in chosen:
            chosen.append(s)
    return chosen


def _distinct_names(papers: list[PaperEvidence]) -> list[PaperEvidence]:
    """Named papers, keeping only the best-scoring one of papers that share a short name."""
    best: dict[str, PaperEvidence] = {}
    for e in papers:
        best.setdefault(short_name(e.hit.paper).lower(), e)
    return list(best.values())


def _abstain(kind: QueryType, strength: float) -> ExtractiveResult:
    """An empty result: the chain turns it into an abstention."""
    return ExtractiveResult("", strength, kind, ())


def compose(question: str, evidence: Sequence[PaperEvidence], threshold: float) -> ExtractiveResult:
    """Compose the answer for a question from scored sources; empty text when the evidence is too weak.

    Evidence is weak when no sentence is close enough to the question (threshold on cosine), or when no
    paper near the top mentions the question's specific terms (datasets, metrics, numbers).
    """
    kind = query_type(question)
    usable = [e for e in evidence if e.sentences]
    if not usable:
        return _abstain(kind, 0.0)
    named = _distinct_names([e for e in usable if e.named])
    strength = max(e.best_cosine for e in (named or usable))
    if strength < threshold - (NAMED_RELIEF if named else 0.0):
        return _abstain(kind, strength)
    terms = specific_terms(question, [e.hit for e in evidence])
    covering = [e for e in (named or usable) if covers(f"{e.hit.paper.title} {e.hit.paper.abstract}", terms)]
    if not covering:
        return _abstain(kind, strength)
    far = covering[0].score < usable[0].score - FALLBACK_MARGIN
    if far and not named and kind is not QueryType.LIST:
        return _abstain(kind, strength)
    best = covering[0]
    if kind is QueryType.LIST:
        top_cosine = max(e.best_cosine for e in covering)
        chosen = covering if len(named) > 1 else [
            e for e in covering
            if e.best_cosine >= threshold
            and (e.score >= best.score - LIST_MARGIN or e.best_cosine >= top_cosine - LIST_COSINE_MARGIN)
        ][:MAX_LISTED]  # fmt: skip
        lines = [f"- {_cite(e, e.sentences[:1])}" for e in chosen]
        return ExtractiveResult("\n".join(lines), strength, kind, tuple(e.number for e in chosen))
    chosen = covering if named else [best]
    lines = []
    for e in chosen:
        if kind is QueryType.SUMMARY:
            lines.append(_cite(e, _summary_sentences(e)))
        else:
            lines.append(_cite(e, e.sentences[:FACTOID_SENTENCES]))
    return ExtractiveResult("\n".join(lines), strength, kind, tuple(e.number for e in chosen))


def extractive_answer(question: str, hits: Sequence[Hit], cache: SentenceCache, threshold: float) -> ExtractiveResult:
    """Score the sources' sentences and compose a cited answer (empty text = not enough evidence)."""
    return compose(question, score_sources(question, hits, cache), threshold)
