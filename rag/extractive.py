"""The offline answerer: composes an answer from the most relevant abstract sentences, citing each [n]."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import bm25s
import numpy as np

from rag.bm25 import STOPWORDS, english_stemmer
from rag.citations import NUMBER, key_terms
from rag.naming import aliases, mentions, short_name, without_names
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
# ... and when it contains this many of the question's key terms (a listed paper must share its words).
LIST_SHARED_TERMS = 2
# At most this many papers in a list, sentences in a summary, sentences in a factoid answer.
MAX_LISTED = 5
SUMMARY_SENTENCES = 4
FACTOID_SENTENCES = 2
# With this many specific terms in a question, a paper may miss a third of them.
MANY_TERMS = 3
# A question that names a paper, or asks which papers mention exact terms (LVIS) that one does, needs less similarity.
EXACT_RELIEF = 0.1
# A lower-ranked paper may answer a factoid when the best one lacks the question's specific terms.
FALLBACK_MARGIN = 0.15
# A summary's sentences after the contribution: relevance plus a bonus for a method or finding sentence and for
# the sentence right after the contribution (usually the method's gist).
ROLE_BONUS = 0.15
NEXT_BONUS = 0.1

_LIST = re.compile(
    r"\b(which|what|list|name|any|find|compare|comparison)\b.{0,40}?\b(papers|works|studies|articles)\b|"
    r"\b(which|list|name|compare)\s+(\w+\s+)?(methods|models|approaches|architectures|frameworks|ones)\b|"
    r"\bpapers\s+(that|which|about|on|using|use|propos)|"
    r"\bcompare\b|\bdifference between\b",
    re.IGNORECASE,
)
_WHICH_ONE = re.compile(r"\b(which|what)\s+(paper|work|study|method|model|approach|one)\b", re.IGNORECASE)
_SUMMARY = re.compile(
    r"\b(what is|what's|what are)\b.{0,60}\babout\b|\bsummar|\bdescribe\b|\bmain (idea|contribution)|"
    r"\btell me (more )?about\b|\boverview\b|\bexplain\b|\bidea behind\b|"
    r"\bwhat (does|did|do)\b.{0,60}\b(propose|do|introduce|present|conclude|find)\b",
    re.IGNORECASE,
)
# "What is MaxViT?", "What's the Vision Mamba paper?": a question that only names something asks what it is.
_DEFINITION = re.compile(r"^\s*(?:what|who)\s*(?:is|are|was|'s)\s+(?P<name>[^?]{1,80}?)\s*\??\s*$", re.IGNORECASE)
_NAME_FILLER = re.compile(
    r"(the|a|an|of|for|in|on|with|and|to|via|paper|papers|work|model|method|approach|framework|architecture)",
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
# "LoRA-style", "CLIP-based", "LoRA-adapted": a lower-case suffix is a description, the exact term is the head.
_DESCRIPTIVE_SUFFIX = re.compile(r"(?<=[A-Za-z0-9])-[a-z]+$")
_SQUASH = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"[a-z][A-Z]")
# "how many GPU hours", "how many parameters": what is counted must be something the paper talks about.
_HOW_MANY = re.compile(r"\bhow many\s+([A-Za-z][\w\-]*)(?:\s+([a-z][\w\-]*))?", re.IGNORECASE)
_PROPOSAL = re.compile(
    r"\b(we|this paper|this work)\s+(also\s+)?(propose|present|introduce|develop|design|contribute|build|construct)",
    re.IGNORECASE,
)
# Where an abstract's own content starts when it proposes nothing: what the work studies.
_ANCHOR = re.compile(
    r"\b(this|our) (paper|work|study)\s+(\w+ly\s+)?(?!(suggest|show|demonstrate|indicate|highlight|pave|open)s)\w+s\b|"
    r"\bwe (study|investigate|revisit|explore|identify)\b",
    re.IGNORECASE,
)
# Sentences that only point at code, data or a web page: never part of an answer unless the question asks for them.
_BOILERPLATE = re.compile(
    r"https?://|\bgithub\b|\bwe (will )?(release|open-source|make)\b|\bproject (page|website)\b|"
    r"\b(code|models?|data(sets?)?|weights|checkpoints?|code-?base)\b[^.]{0,60}\b(available|released?|public)\b",
    re.IGNORECASE,
)
# The method's gist and the headline findings: what a summary wants after the contribution sentence.
_METHOD = re.compile(
    r"\b(consists? of|built (up)?on|comprises?|components?|contributions?|key (idea|insight|techniques?)|"
    r"techniques?|specifically|modules?|strategy|scheme|we (design|develop|use|leverage|employ|adopt))\b",
    re.IGNORECASE,
)
_FINDING = re.compile(
    r"\bwe (also )?(find|show|demonstrate|observe|discover|identify)\b|\bresults? (show|demonstrate)|\boutperform|"
    r"\bachiev|\bstate-of-the-art\b|\bsurpass|\bconclude",
    re.IGNORECASE,
)
# ... and praise without content ("underscores the effectiveness of the proposed framework").
_VAGUE = re.compile(
    r"\b(effectiveness|capabilities|potential|superiority|value) of (our|the proposed|this)\b|\bunderscores?\b|"
    r"\bvalidates?\b.{0,40}\b(capabilit|effectiveness|efficacy|efficiency)",
    re.IGNORECASE,
)
# A summary sentence's lead-in that says nothing ("In this paper, we introduce ..." -> "We introduce ...").
_LEAD_IN = re.compile(
    r"^(in this (paper|work|study)|here|to this end|to address (this|these|the) (issues?|challenges?|problems?)),?\s+"
    r"(?=we\b)",
    re.IGNORECASE,
)
_ASKS_FOR_LINKS = re.compile(r"\b(code|github|url|link|website|page|release[ds]?|available|download)\b", re.IGNORECASE)


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
    english = english_stemmer()
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=english, show_progress=False), show_progress=False
    )
    query_tokens = bm25s.tokenize([question], stopwords=STOPWORDS, stemmer=english, show_progress=False)
    if not query_tokens.vocab:
        return np.zeros(len(texts), dtype=np.float32)
    query = [t for t in query_tokens.vocab if t in retriever.vocab_dict]
    if not query:
        return np.zeros(len(texts), dtype=np.float32)
    scores = np.asarray(retriever.get_scores(query), dtype=np.float32)
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else scores


def score_sources(question: str, hits: Sequence[Hit], cache: SentenceCache) -> list[PaperEvidence]:
    """Score every abstract sentence of the numbered sources against the question; papers best first.

    A named paper's sentences are ranked against the question without its name (every sentence saying 'MaxViT'
    is not thereby closer to 'How fast is MaxViT?'); the cosines kept for the evidence gate are the full question's.
    """
    papers: list[PaperSentences] = cache.get(hit.paper for hit in hits)
    named = [mentions(question, hit.paper) for hit in hits]
    plain = question
    for hit in (hit for hit, is_named in zip(hits, named, strict=True) if is_named):
        plain = without_names(plain, hit.paper)
    q = cache.embed_query(question)
    flat = [(n, i, s) for n, ps in enumerate(papers, start=1) for i, s in enumerate(ps.sentences)]
    texts = [s for _, _, s in flat]
    bm25 = _bm25_scores(question, texts) if flat else np.zeros(0)
    q_plain, bm25_plain = q, bm25
    if plain != question and flat:
        q_plain, bm25_plain = cache.embed_query(plain), _bm25_scores(plain, texts)
    wants_number = bool(_QUANTITY.search(question))
    terms = specific_terms(question, hits)
    by_paper: dict[int, list[ScoredSentence]] = {}
    offsets = np.cumsum([0] + [len(ps.sentences) for ps in papers])
    for n, ps in enumerate(papers, start=1):
        if not ps.sentences:
            continue
        cosines = ps.sentence_vectors @ q
        ranking, keywords = (ps.sentence_vectors @ q_plain, bm25_plain) if named[n - 1] else (cosines, bm25)
        prior = 1.0 / (1.0 + 0.5 * (n - 1))
        for i, text in enumerate(ps.sentences):
            score = COSINE_WEIGHT * float(ranking[i]) + BM25_WEIGHT * float(keywords[offsets[n - 1] + i])
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
            named=named[n - 1],
        )
        for n, (hit, ps) in enumerate(zip(hits, papers, strict=True), start=1)
    ]
    return sorted(evidence, key=lambda e: (-e.named, -e.score, e.number))


def _cite(paper: PaperEvidence, sentences: Sequence[ScoredSentence], trim: bool = False) -> str:
    """'Name: sentence [n]. sentence [n].' with sentences in abstract order (trim: without empty lead-ins)."""
    ordered = sorted(sentences, key=lambda s: s.index)
    texts = [_without_lead_in(s.text) if trim else s.text for s in ordered]
    body = " ".join(f"{text.rstrip().rstrip('.')} [{paper.number}]." for text in texts)
    return f"{short_name(paper.hit.paper)}: {body}"


def _without_lead_in(text: str) -> str:
    """A sentence without an empty lead-in such as 'In this paper,' (capitalized again)."""
    rest = _LEAD_IN.sub("", text, count=1)
    return rest[:1].upper() + rest[1:]


def _summary_sentences(paper: PaperEvidence) -> list[ScoredSentence]:
    """The contribution sentence of an abstract, then its best method and finding sentences after it.

    The contribution is the first 'we propose/introduce/study ...' or 'this paper pushes ...' sentence, else the first
    naming the paper; background before it and code/web-page boilerplate are left out.
    """
    ordered = sorted(_contentful(paper.sentences), key=lambda s: s.index)
    anchor = next((s for s in ordered if _PROPOSAL.search(s.text) or _ANCHOR.search(s.text)), None)
    anchor = anchor or next((s for s in ordered if mentions(s.text, paper.hit.paper)), None)
    if anchor is None:
        return sorted(ordered, key=lambda s: (-s.score, s.index))[:SUMMARY_SENTENCES]

    def value(s: ScoredSentence) -> float:
        role = bool(_METHOD.search(s.text) or _FINDING.search(s.text) or _PROPOSAL.search(s.text))
        return s.score + ROLE_BONUS * role + NEXT_BONUS * (s.index == anchor.index + 1)

    after = sorted((s for s in ordered if s.index > anchor.index), key=lambda s: (-value(s), s.index))
    return [anchor, *after[: SUMMARY_SENTENCES - 1]]


def _contentful(sentences: Sequence[ScoredSentence]) -> list[ScoredSentence]:
    """The sentences without code/web-page boilerplate and content-free praise (all of them if none is left)."""
    kept = [s for s in sentences if not _BOILERPLATE.search(s.text) and not _VAGUE.search(s.text)]
    return kept or list(sentences)


def _is_definition(question: str) -> bool:
    """True for 'What is MaxViT?'-like questions: only a name (capitalized or with digits) after 'what is'."""
    match = _DEFINITION.match(question)
    if not match:
        return False
    words = match.group("name").split()
    named = any(any(c.isupper() or c.isdigit() for c in w) for w in words)
    return named and all(_NAME_FILLER.fullmatch(w) or any(c.isupper() or c.isdigit() for c in w) for w in words)


def counted_nouns(question: str) -> set[str]:
    """Stemmed lower-case words a 'how many ...' question counts ('GPU hours' -> {'hour'}); acronyms excluded."""
    match = _HOW_MANY.search(question)
    if not match:
        return set()
    words = [w for w in match.groups() if w and w.islower()]
    return key_terms(" ".join(words))


def _shares_terms(question: str, paper: PaperEvidence) -> bool:
    """True when the paper's title and abstract contain LIST_SHARED_TERMS of the question's key terms (or all)."""
    wanted = key_terms(question)
    shared = wanted & key_terms(_text(paper))
    return len(shared) >= min(LIST_SHARED_TERMS, len(wanted))


def _text(paper: PaperEvidence) -> str:
    """Title and abstract of a scored source."""
    return f"{paper.hit.paper.title} {paper.hit.paper.abstract}"


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
    if kind is QueryType.FACTOID and named and _is_definition(question):
        kind = QueryType.SUMMARY
    strength = max(e.best_cosine for e in (named or usable))
    terms = specific_terms(question, [e.hit for e in evidence])
    counted = counted_nouns(question)
    covering = [e for e in (named or usable) if covers(_text(e), terms) and counted <= key_terms(_text(e))]
    if not covering:
        return _abstain(kind, strength)
    listed_by_term = kind is QueryType.LIST and bool(terms) and mentioned(_text(covering[0]), terms) == len(terms)
    exact = bool(named) or listed_by_term
    floor = threshold - (EXACT_RELIEF if exact else 0.0)
    if strength < floor:
        return _abstain(kind, strength)
    far = covering[0].score < usable[0].score - FALLBACK_MARGIN
    if far and not named and kind is not QueryType.LIST:
        return _abstain(kind, strength)
    best = covering[0]
    if kind is QueryType.LIST:
        top_cosine = max(e.best_cosine for e in covering)
        chosen = covering if len(named) > 1 else [
            e for e in covering
            if e.best_cosine >= floor
            and (e.score >= best.score - LIST_MARGIN or e.best_cosine >= top_cosine - LIST_COSINE_MARGIN)
            and (e is best or _shares_terms(question, e))
        ][:MAX_LISTED]  # fmt: skip
        lines = [f"- {_cite(e, e.sentences[:1])}" for e in chosen]
        return ExtractiveResult("\n".join(lines), strength, kind, tuple(e.number for e in chosen))
    if kind is QueryType.SUMMARY:
        # a summary question describes a whole paper, as its title does: a title that close outweighs one sentence
        best = min(covering, key=lambda e: (-max(e.score, e.title_cosine), e.number))
    chosen = covering if named else [best]
    lines = []
    for e in chosen:
        if kind is QueryType.SUMMARY:
            lines.append(_cite(e, _summary_sentences(e), trim=True))
        else:
            candidates = e.sentences if _ASKS_FOR_LINKS.search(question) else _contentful(e.sentences)
            lines.append(_cite(e, candidates[:FACTOID_SENTENCES]))
    return ExtractiveResult("\n".join(lines), strength, kind, tuple(e.number for e in chosen))
