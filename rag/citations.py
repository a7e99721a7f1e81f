"""Parse [n] citation markers, verify each answer sentence against the abstracts it cites, number in reading order.

`AnswerBuilder` takes an answer (an LLM's streamed reply or the composer's text) sentence by sentence: a sentence is
shown only when its cited sources support it, and its markers are renumbered so that [1] is the first paper cited
in the text. Nothing unverified reaches `text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.chunking import split_sentences
from rag.sentence_cache import PaperSentences, SentenceCache
from rag.text import DANGLING, MARKER, is_evidence, key_terms, numbers_in, strip_markers
from rag.types import AnswerSentence, Citation, Hit

__all__ = [
    "MARKER",
    "AnswerBuilder",
    "clean_markers",
    "expand_marker",
    "parse_citations",
    "split_answer",
    "strip_markers",
    "support_score",
    "verify_answer",
]  # fmt: skip

_LEADING_MARKERS = re.compile(r"^(?:\s*\[\s*\d{1,3}(?:\s*(?:,|-|–|and)\s*\d{1,3})*\s*\])+")
# Where a streamed reply can be cut into finished sentences: after "claim [1]. " or "claim. [1] " or a line end.
_SETTLED = re.compile(r"\]\s*[.!?]\s+(?=\S)|[.!?]\s*(?:\[[\d,\s\-–and]+\])+\s+(?=\S)|\n")
# Ranges longer than this ([1-500]) are not citations anyone meant.
MAX_RANGE = 20
# The verifier compares an answer sentence with this many of the cited paper's most similar clean sentences.
NEAREST_SENTENCES = 3
# Cosine and key-term overlap weigh into the support score; a sentence needs both meaning and words.
SUPPORT_COSINE_WEIGHT = 0.6
# A supported sentence shares at least this many content terms with its cited sentences (all of them when fewer).
MIN_SHARED_TERMS = 2


def _letters(text: str) -> str:
    """Lower-case letters and digits only, for matching quoted sentences."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


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


@dataclass(frozen=True)
class ParsedSentence:
    """One sentence of an answer, the line it sits on, and the numbers it cites (its own or its run's)."""

    line: int
    text: str
    citations: tuple[int, ...]


def split_answer(text: str, first_line: int = 0) -> list[ParsedSentence]:
    """Sentences of an answer per line. A sentence that is only markers ('[2].') joins the one before; a sentence
    without markers cites what the next marked sentence of its line cites ('S1. S2 [1].': both cite [1])."""
    parsed: list[ParsedSentence] = []
    for line_no, line in enumerate(text.splitlines(), start=first_line):
        start = len(parsed)
        for sentence in split_sentences(line):
            # "claim. [1] Next claim." splits as "claim." + "[1] Next claim.": the marker belongs to the claim.
            lead = _LEADING_MARKERS.match(sentence)
            if lead and len(parsed) > start and lead.end() < len(sentence):
                last = parsed[-1]
                merged = f"{last.text} {lead.group(0).strip()}"
                parsed[-1] = ParsedSentence(line_no, merged, tuple(parse_citations(merged)))
                sentence = sentence[lead.end() :].strip()
            if len(parsed) > start and not strip_markers(sentence).strip(" .;,"):
                last = parsed[-1]
                merged = f"{last.text} {sentence}"
                parsed[-1] = ParsedSentence(line_no, merged, tuple(parse_citations(merged)))
            else:
                parsed.append(ParsedSentence(line_no, sentence, tuple(parse_citations(sentence))))
        inherited: tuple[int, ...] = ()
        for i in range(len(parsed) - 1, start - 1, -1):
            if parsed[i].citations:
                inherited = parsed[i].citations
            elif inherited:
                parsed[i] = ParsedSentence(parsed[i].line, parsed[i].text, inherited)
    return parsed


def support_score(sentence: str, vector: np.ndarray, cited: Sequence[PaperSentences]) -> tuple[float, int, int, bool]:
    """Support of one answer sentence by the clean sentences of the papers it cites.

    Returns (score in [0, 1], index of the best cited paper, index of its best sentence, whether the sentence shares
    enough content — key terms and every number — with the cited papers' nearest sentences).
    """
    best = (-1.0, 0, -1)
    nearest: list[str] = []
    numbers: set[str] = set()
    for p, ps in enumerate(cited):
        clean = [i for i, s in enumerate(ps.sentences) if is_evidence(s)]
        numbers |= numbers_in(ps.paper.title) | set().union(*(numbers_in(ps.sentences[i]) for i in clean))
        if not clean:
            continue
        cosines = ps.sentence_vectors[clean] @ vector
        order = np.argsort(-cosines)[:NEAREST_SENTENCES]
        nearest.extend(ps.sentences[clean[j]] for j in order)
        nearest.append(ps.paper.title)
        if float(cosines[order[0]]) > best[0]:
            best = (float(cosines[order[0]]), p, clean[int(order[0])])
    cosine, paper, index = best
    terms = key_terms(sentence)
    shared = terms & key_terms(" ".join(nearest))
    overlap = len(shared) / len(terms) if terms else 0.0
    content = len(shared) >= min(MIN_SHARED_TERMS, len(terms)) and bool(terms) and numbers_in(sentence) <= numbers
    score = SUPPORT_COSINE_WEIGHT * max(cosine, 0.0) + (1 - SUPPORT_COSINE_WEIGHT) * overlap
    return min(score, 1.0), paper, index, content


@dataclass
class AnswerBuilder:
    """Verifies an answer sentence by sentence and keeps only supported ones, renumbered in reading order."""

    sources: Sequence[Hit]
    cache: SentenceCache
    threshold: float
    text: str = ""
    sentences: list[AnswerSentence] = field(default_factory=list)
    removed_citations: int = 0
    _papers: list[PaperSentences] = field(default_factory=list)
    _numbers: dict[int, int] = field(default_factory=dict)
    _evidence: dict[int, dict[str, None]] = field(default_factory=dict)
    _line: int = -1
    _raw: str = ""
    _settled: int = 0
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._papers = self.cache.get(hit.paper for hit in self.sources)

    # --- input -------------------------------------------------------------------------------------------
    def feed(self, delta: str) -> Iterator[str]:
        """Take more of a streamed reply; yield the verified text of every sentence it completes."""
        self._raw += delta
        cut = self._settled
        for match in _SETTLED.finditer(self._raw, self._settled):
            cut = match.end()
        if cut > self._settled:
            yield from self._take(self._raw[self._settled : cut])
            self._settled = cut

    def finish(self) -> Iterator[str]:
        """The reply is complete: verify what is left."""
        rest = self._raw[self._settled :]
        self._settled = len(self._raw)
        if rest.strip():
            yield from self._take(rest)

    def add(self, text: str) -> Iterator[str]:
        """Verify a complete answer text (the extractive composer's), yielding each supported sentence."""
        self._raw += text
        parsed = self._parse(text)
        self._settled = len(self._raw)
        plain = [strip_markers(p.text) or p.text for p in parsed]
        for sentence, words in zip(parsed, plain, strict=True):
            quoted = self._quoted_vector(words, sentence.citations)
            if quoted is not None:
                self._vectors[words] = quoted
        missing = [w for w in plain if w not in self._vectors]
        if missing:  # one embedding batch for the rest instead of one call per sentence
            self._vectors.update(zip(missing, self.cache.embed(missing), strict=True))
        yield from self._verify(parsed)

    def _quoted_vector(self, plain: str, citations: Sequence[int]) -> np.ndarray | None:
        """The cached vector of the abstract sentence a composed sentence quotes (after its 'Name:' label, without a
        dangling connective), or None. Quotes need no new embedding; their content is still checked."""
        key = _letters(plain)
        for n in citations:
            ps = self._papers[n - 1]
            for j, sentence in enumerate(ps.sentences):
                for form in (sentence, DANGLING.sub("", sentence, count=1)):
                    quoted = _letters(form)
                    if quoted and key.endswith(quoted) and len(quoted) * 5 >= len(key) * 4:
                        return ps.sentence_vectors[j]
        return None

    def _take(self, chunk: str) -> Iterator[str]:
        """Verify the finished sentences of a chunk of the reply, in order."""
        yield from self._verify(self._parse(chunk))

    def _parse(self, chunk: str) -> list[ParsedSentence]:
        """The sentences of the chunk that starts at the settled point of the reply, citations to missing sources
        dropped (and counted), numbered by their line in the whole reply."""
        first_line = self._raw[: self._settled].count("\n")
        cleaned, removed = clean_markers(chunk, len(self.sources))
        self.removed_citations += removed
        lines_before = chunk[: len(chunk) - len(chunk.lstrip())].count("\n")
        return split_answer(cleaned, first_line + lines_before)

    def _verify(self, parsed: list[ParsedSentence]) -> Iterator[str]:
        """Check sentences in order and append the supported ones; a run of sentences that cites through its last
        marker is shown when that marker's sentence is, or closed with the marker when it is left out."""
        pending: list[tuple[ParsedSentence, str]] = []  # supported sentences citing through a later marker
        for sentence in parsed:
            if pending and pending[-1][0].line != sentence.line:
                yield from self._emit(pending, close=True)
                pending = []
            shown = self._check(sentence)
            own_marker = bool(MARKER.search(sentence.text))
            if shown is not None and not own_marker:
                pending.append((sentence, shown))
                continue
            if shown is not None:
                yield from self._emit([*pending, (sentence, shown)], close=False)
            elif pending:
                yield from self._emit(pending, close=True)
            pending = []
        yield from self._emit(pending, close=True)

    def _emit(self, run: list[tuple[ParsedSentence, str]], close: bool) -> Iterator[str]:
        """Append a run of supported sentences to the text; `close` writes the run's citation after its last one
        (the sentence that carried it was left out)."""
        for k, (sentence, shown) in enumerate(run):
            if close and k == len(run) - 1:
                marks = "".join(f"[{self._numbers[n]}]" for n in sentence.citations)
                shown = f"{shown.rstrip().rstrip('.')} {marks}."
            sep = "" if not self.text else ("\n" if sentence.line != self._line else " ")
            self._line = sentence.line
            self.text += sep + shown
            yield sep + shown

    # --- verification ------------------------------------------------------------------------------------
    def _check(self, sentence: ParsedSentence) -> str | None:
        """Record one sentence's verdict; its display text (renumbered markers) when supported, else None."""
        plain = strip_markers(sentence.text) or sentence.text
        if not sentence.citations or not is_evidence(plain):
            self.sentences.append(AnswerSentence(text=sentence.text, citations=sentence.citations, supported=False,
                                                 support=0.0))  # fmt: skip
            return None
        vector = self._vectors[plain] if plain in self._vectors else self.cache.embed([plain])[0]
        cited = [self._papers[n - 1] for n in sentence.citations]
        score, best, index, content = support_score(plain, vector, cited)
        supported = content and score >= self.threshold
        if not supported:
            self.sentences.append(AnswerSentence(text=sentence.text, citations=sentence.citations, supported=False,
                                                 support=score))  # fmt: skip
            return None
        for n in sentence.citations:
            self._numbers.setdefault(n, len(self._numbers) + 1)
        number = sentence.citations[best]
        if index >= 0:
            self._evidence.setdefault(number, {})[self._papers[number - 1].sentences[index]] = None
        shown = self._renumber(sentence.text)
        new = tuple(self._numbers[n] for n in sentence.citations)
        self.sentences.append(AnswerSentence(text=shown, citations=new, supported=True, support=score))
        return shown

    def _renumber(self, text: str) -> str:
        """The sentence with its markers in reading-order numbers (a sentence citing through its run has none)."""
        return MARKER.sub(lambda m: "".join(f"[{self._numbers[n]}]" for n in expand_marker(m.group(1))), text)

    # --- output ------------------------------------------------------------------------------------------
    @property
    def any_supported(self) -> bool:
        """True when at least one sentence is backed by its sources."""
        return any(s.supported for s in self.sentences)

    @property
    def dropped(self) -> int:
        """How many sentences were left out as unsupported."""
        return sum(not s.supported for s in self.sentences)

    def citations(self) -> tuple[Citation, ...]:
        """The cited sources in reading order, with the abstract sentences that support them."""
        return tuple(
            Citation(number=new, paper=self.sources[old - 1].paper, evidence=tuple(self._evidence.get(old, {})),
                     score=self.sources[old - 1].score)
            for old, new in sorted(self._numbers.items(), key=lambda kv: kv[1])
        )

    def ordered_sources(self) -> tuple[Hit, ...]:
        """The sources with the cited ones first, in reading order, then the uncited in retrieval order."""
        cited = [self.sources[old - 1] for old, _ in sorted(self._numbers.items(), key=lambda kv: kv[1])]
        rest = [hit for n, hit in enumerate(self.sources, start=1) if n not in self._numbers]
        return tuple(cited + rest)


def verify_answer(text: str, sources: Sequence[Hit], cache: SentenceCache, threshold: float) -> AnswerBuilder:
    """Verify a whole answer text at once; the builder holds the verdict of every sentence and the shown text."""
    builder = AnswerBuilder(sources, cache, threshold)
    for _ in builder.add(text):
        pass
    return builder
