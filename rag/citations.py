"""Parse [n] citation markers in an answer and verify each sentence against the abstracts it cites."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.bm25 import english_stemmer
from rag.chunking import split_sentences
from rag.sentence_cache import PaperSentences, SentenceCache
from rag.types import AnswerSentence, Citation, Hit

# [1], [1, 2], [1-3], [1–3], [1 and 2]; adjacent markers like [1][2] are simply two matches.
MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*(?:,|-|–|and)\s*\d{1,3})*)\s*\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\s*\d{1,3}(?:\s*(?:,|-|–|and)\s*\d{1,3})*\s*\])+")
UNSUPPORTED_MARK = "[unsupported]"
# Ranges longer than this ([1-500]) are not citations anyone meant.
MAX_RANGE = 20
NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]+")
# Cosine and key-term overlap weigh into the support score; a sentence needs both meaning and words.
COSINE_WEIGHT = 0.6
_STOPWORD_TEXT = (
    "a about above after again against all also am an and any are as at be because been before being below "
    "between both but by can could did do does doing down during each few for from further had has have having "
    "here how into is it its itself just more most no nor not now of off on once only or other our out over own "
    "same should so some such than that the their them then there these they this those through to too under "
    "until up very was we were what when where which while who whom why will with would you your paper papers "
    "propose proposed proposes method methods approach work show shows shown using used use based results new "
    "named called dubbed introduce introduces present presents source sources collection says"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def expand_marker(body: str) -> list[int]:
    """Numbers of one marker body: '1, 2' -> [1, 2]; '1-3' -> [1, 2, 3]."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|and)\s*", body):
        bounds = re.split(r"\s*[-–]\s*", part.strip())
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            low, high = int(bounds[0]), int(bounds[1])
            if low <= high and high - low <= MAX_RANGE:
                numbers.extend(range(low, high + 1))
                continue
        numbers.extend(int(b) for b in bounds if b.isdigit())
    return numbers


def parse_citations(text: str) -> list[int]:
    """Every cited number in order of first appearance."""
    seen: dict[int, None] = {}
    for match in MARKER.finditer(text):
        for number in expand_marker(match.group(1)):
            seen.setdefault(number, None)
    return list(seen)


def clean_markers(text: str, n_sources: int) -> tuple[str, int]:
    """Drop citations to sources that do not exist (outside 1..n_sources); return the text and how many went."""
    removed = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal removed
        numbers = expand_marker(match.group(1))
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= n_sources]
        removed += len(set(numbers)) - len(valid)
        return "".join(f"[{n}]" for n in valid)

    cleaned = MARKER.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip(), removed


def strip_markers(text: str) -> str:
    """The text without citation markers."""
    return re.sub(r"\s{2,}", " ", MARKER.sub("", text)).strip()


@dataclass(frozen=True)
class ParsedSentence:
    """One sentence of an answer, the line it sits on, and the numbers it cites."""

    line: int
    text: str
    citations: tuple[int, ...]


def split_answer(text: str) -> list[ParsedSentence]:
    """Sentences of an answer per line; a sentence that is only markers ('[2].') joins the one before."""
    parsed: list[ParsedSentence] = []
    for line_no, line in enumerate(text.splitlines()):
        for sentence in split_sentences(line):
            # "claim. [1] Next claim." splits as "claim." + "[1] Next claim.": the marker belongs to the claim.
            lead = _LEADING_MARKERS.match(sentence)
            if lead and parsed and parsed[-1].line == line_no and lead.end() < len(sentence):
                last = parsed[-1]
                merged = f"{last.text} {lead.group(0).strip()}"
                parsed[-1] = ParsedSentence(line_no, merged, tuple(parse_citations(merged)))
                sentence = sentence[lead.end() :].strip()
            if parsed and parsed[-1].line == line_no and not strip_markers(sentence).strip(" .;,"):
                last = parsed[-1]
                merged = f"{last.text} {sentence}"
                parsed[-1] = ParsedSentence(line_no, merged, tuple(parse_citations(merged)))
            else:
                parsed.append(ParsedSentence(line_no, sentence, tuple(parse_citations(sentence))))
    return parsed


def key_terms(text: str) -> set[str]:
    """Stemmed content words of a text (stop words and one-letter tokens dropped)."""
    words = [w.lower() for w in WORD.findall(strip_markers(text))]
    return set(english_stemmer().stemWords([w for w in words if w not in STOPWORDS and len(w) > 2]))


def numbers_in(text: str) -> set[str]:
    """Numbers of a text, normalized ('1,000' -> '1000', '86.5%' -> '86.5'); citation markers excluded."""
    return {n.replace(",", "") for n in NUMBER.findall(strip_markers(text))}


@dataclass(frozen=True)
class Verification:
    """The verified answer: sentences with support, display text, citations, and how many bad markers went."""

    text: str
    sentences: tuple[AnswerSentence, ...]
    citations: tuple[Citation, ...]
    removed_citations: int

    @property
    def any_supported(self) -> bool:
        """True when at least one sentence is backed by its sources."""
        return any(s.supported for s in self.sentences)


def support_score(
    sentence: str, vector: np.ndarray, cited: Sequence[tuple[str, np.ndarray]]
) -> tuple[float, int, bool]:
    """Support of one sentence against (source text, sentence vectors) of each source it cites.

    Returns (score in [0, 1], index of the best source, whether every number of the sentence occurs in a source).
    """
    best_cos, best_source = 0.0, 0
    for i, (_, vectors) in enumerate(cited):
        if vectors.shape[0]:
            cos = float(np.max(vectors @ vector))
            if cos > best_cos:
                best_cos, best_source = cos, i
    terms = key_terms(sentence)
    source_terms: set[str] = set().union(*(key_terms(text) for text, _ in cited))
    overlap = len(terms & source_terms) / len(terms) if terms else 1.0
    source_numbers: set[str] = set().union(*(numbers_in(text) for text, _ in cited))
    numbers_ok = numbers_in(sentence) <= source_numbers
    score = COSINE_WEIGHT * max(best_cos, 0.0) + (1 - COSINE_WEIGHT) * overlap
    return min(score, 1.0), best_source, numbers_ok


def _letters(text: str) -> str:
    """Lower-case letters and digits only, for matching quoted sentences."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _sentence_vectors(
    plain: Sequence[str], cites: Sequence[tuple[int, ...]], papers: Sequence[PaperSentences], cache: SentenceCache
) -> np.ndarray:
    """Embeddings of answer sentences; a sentence quoting a cited abstract sentence verbatim (after a 'Name:'
    label) reuses that sentence's cached vector instead of being embedded again."""
    rows: list[np.ndarray | None] = []
    for text, numbers in zip(plain, cites, strict=True):
        key, found = _letters(text), None
        for n in numbers:
            for j, sentence in enumerate(papers[n - 1].sentences):
                quoted = _letters(sentence)
                if quoted and key.endswith(quoted) and len(quoted) * 5 >= len(key) * 4:
                    found = papers[n - 1].sentence_vectors[j]
                    break
            if found is not None:
                break
        rows.append(found)
    missing = [i for i, row in enumerate(rows) if row is None]
    if missing:
        embedded = cache.embed([plain[i] for i in missing])
        for i, vector in zip(missing, embedded, strict=True):
            rows[i] = vector
    return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def verify_answer(text: str, sources: Sequence[Hit], cache: SentenceCache, threshold: float) -> Verification:
    """Remove citations to missing sources, score each sentence against its cited abstracts, flag the unsupported.

    A sentence is supported when it cites at least one source, every number in it appears in a cited source,
    and its support score (cosine to the best cited abstract sentence plus key-term overlap) reaches threshold.
    """
    cleaned, removed = clean_markers(text, len(sources))
    parsed = split_answer(cleaned)
    papers = cache.get(hit.paper for hit in sources)
    plain = [strip_markers(p.text) or p.text for p in parsed]
    vectors = _sentence_vectors(plain, [p.citations for p in parsed], papers, cache)
    sentences: list[AnswerSentence] = []
    evidence: dict[int, dict[str, None]] = {}
    for i, sentence in enumerate(parsed):
        if not sentence.citations:
            sentences.append(AnswerSentence(text=sentence.text, citations=(), supported=False, support=0.0))
            continue
        cited = [
            (f"{papers[n - 1].paper.title}\n{papers[n - 1].paper.abstract}", papers[n - 1].vectors)
            for n in sentence.citations
        ]
        score, best, numbers_ok = support_score(plain[i], vectors[i], cited)
        supported = numbers_ok and score >= threshold
        sentences.append(
            AnswerSentence(text=sentence.text, citations=sentence.citations, supported=supported, support=score)
        )
        if supported:
            number = sentence.citations[best]
            ps = papers[number - 1]
            if ps.sentences:
                top = int(np.argmax(ps.sentence_vectors @ vectors[i]))
                evidence.setdefault(number, {})[ps.sentences[top]] = None
    cited_numbers = parse_citations(cleaned)
    citations = tuple(
        Citation(
            number=n,
            paper=sources[n - 1].paper,
            evidence=tuple(evidence.get(n, {})),
            score=sources[n - 1].score,
        )
        for n in sorted(cited_numbers)
    )
    return Verification(
        text=render(parsed, sentences), sentences=tuple(sentences), citations=citations, removed_citations=removed
    )


def render(parsed: Sequence[ParsedSentence], sentences: Sequence[AnswerSentence]) -> str:
    """The answer text with its original lines, each unsupported sentence followed by UNSUPPORTED_MARK."""
    lines: dict[int, list[str]] = {}
    for p, s in zip(parsed, sentences, strict=True):
        lines.setdefault(p.line, []).append(s.text if s.supported else f"{s.text} {UNSUPPORTED_MARK}")
    return "\n".join(" ".join(parts) for _, parts in sorted(lines.items()))
