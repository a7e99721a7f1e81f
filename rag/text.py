"""Text rules shared by retrieval, evidence scoring, the composer and the verifier: one copy of each.

Stop words, content terms, numbers, digest-artefact clean-up, and the evidence-hygiene test that keeps model-directed
or markup text out of answers. No I/O, no models.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# The stop words BM25 drops: bm25s's English list (kept short on purpose: BM25 was tuned with it on SciFact).
_BM25_STOPWORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with"
)
STOPWORDS = frozenset(_BM25_STOPWORDS.split())
# Key terms (evidence, verifier, example questions) also drop the other function words and the words every abstract
# and question uses about papers themselves ("propose", "paper", "method"), which tell no paper apart.
_PAPER_WORDS = (
    "about above after again against all also am any because been before being below between both can could did do "
    "does doing down during each few from further had has have having here how i its itself just me more most my "
    "nor now off once only other our ours out over own same she he should so some than them those through too under "
    "until up very we were what when where which while who whom why would you your paper papers propose proposed "
    "proposes method methods approach approaches work works show shows shown using used use uses based results new "
    "named called dubbed introduce introduces introduced present presents presented source sources collection says "
    "say tell give describe explain summarise summarize list name mention mentions mentioned one ones get gets got "
    "study studies article articles beyond via"
)
KEY_TERM_STOPWORDS = STOPWORDS | frozenset(_PAPER_WORDS.split())

NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]+")
# [1], [1, 2], [1-3], [1–3], [1 and 2]; adjacent markers like [1][2] are simply two matches.
MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*(?:,|-|–|and)\s*\d{1,3})*)\s*\]")

# Digest artefacts: LaTeX and a scraper that turned '\times' into 'times' ("2.8times", "1248times1248").
_TIMES_BETWEEN = re.compile(r"(?<=\d)\s*(?:\\times|times)\s*(?=\d)")
_TIMES_AFTER = re.compile(r"(?<=\d)(?:\\times|times)\b")
_LATEX_TIMES = re.compile(r"\s*\\times\s*")
# ... and the other operators it stripped of their backslash before a number ("a merely sim0.6 point decrease")
_SCRAPED_OPERATOR = re.compile(r"(?<![A-Za-z])(sim|approx|leq|geq|pm)(?=\d)")
_OPERATORS = {"sim": "~", "approx": "≈", "leq": "≤", "geq": "≥", "pm": "±"}
_LATEX_ESCAPE = re.compile(r"\\([%&_#$])")
_MATH_DOLLARS = re.compile(r"\$([^$]{1,80})\$")
_POWER = {"2": "²", "3": "³"}
_SQUARE = re.compile(r"\^\{?([23])\}?")
_DOUBLE_QUOTES = re.compile(r"''(.+?)''")

# Connectives that point back at a sentence the answer does not quote: dropped when the sentence stands alone.
DANGLING = re.compile(
    r"^(however|yet|specifically|moreover|furthermore|additionally|in addition|notably|particularly|in particular|"
    r"therefore|thus|hence|consequently|as a result|besides|meanwhile|nevertheless|nonetheless|instead|further|"
    r"to this end|to address (?:this|these|that|those|the)(?: (?:issues?|challenges?|problems?|limitations?|gaps?))?|"
    r"in contrast|"
    r"in this (paper|work|study)|here|finally|first|second|third|firstly|secondly|thirdly|lastly|also|accordingly|"
    r"similarly|likewise|to do so|"
    r"on the other hand|concretely|importantly|crucially|interestingly|surprisingly|overall|together)\s*,\s*",
    re.IGNORECASE,
)
# A sentence that builds on the one before it ("a family of such architectures", "to address these issues", "on this
# basis"): quoted with that sentence when it opens a passage.
REFERS_BACK = re.compile(
    r"\b(?:such\s+(?!as\b|that\b)\w+|th(?:ese|ose)\s+(?:\w+\s+)?(?:limitations?|challenges?|issues?|problems?|gaps?|"
    r"observations?|insights?|findings?|shortcomings?|drawbacks?|difficulties|needs?|questions?)|"
    r"this\s+(?:basis|observation|insight|finding|problem|issue|challenge|gap|limitation|end|motivation|question))\b",
    re.IGNORECASE,
)
# A chat turn's opening words that say a question follows, not what it asks ("OK, another thing:", "Different
# question:"): not part of the question ("OK" is no exact term)
_OPENER = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|alright|btw)\b\s*[,:;.!-]*\s*|"
    # ... a phrase only before its punctuation ("New question: …", not "New topic models …")
    r"(?:by the way|one more (?:thing|question)|another (?:thing|question)|"
    r"(?:a\s+)?(?:different|new|unrelated|separate|other) (?:question|topic|thing)|switching (?:topics?|gears)|"
    r"changing (?:the )?(?:topic|subject)|on (?:another|a different) note|moving on)\s*[,:;.!-]+\s*)+",
    re.IGNORECASE,
)


def without_opener(question: str) -> str:
    """The question without a chat opener ("OK, another thing: which work …" -> "which work …")."""
    return _OPENER.sub("", question) or question


# Evidence hygiene: text that addresses a model, fakes prompt structure, is markup or is only a link.
_ADDRESSES_MODEL = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(previous|prior|above|earlier|all|any)\b[^.]{0,30}"
    r"\b(instructions?|prompts?|rules?|messages?|context)\b|"
    r"\b(you are|act as|pretend to be|respond only|reply only|answer only|output only)\b|"
    r"\b(system|assistant|user)\s*(prompt|message)?\s*:|"
    r"\b(as an ai|language model,? (you|please))\b",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"</?\s*[A-Za-z][\w-]*(\s+[^<>]*)?/?>|<!--|-->|\{\{|\}\}|&lt;|&gt;")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def clean_text(text: str) -> str:
    """Normalise digest artefacts so answers read well: '2.8times' -> '2.8×', '$\\sim$' and 'sim0.6' -> '~',
    '40.6\\%' -> '40.6%'."""
    text = _MATH_DOLLARS.sub(lambda m: _math(m.group(1)), text)
    text = _TIMES_BETWEEN.sub("×", text)
    text = _TIMES_AFTER.sub("×", text)
    text = _LATEX_TIMES.sub(" × ", text)
    text = _SCRAPED_OPERATOR.sub(lambda m: _OPERATORS[m.group(1)], text)
    text = _LATEX_ESCAPE.sub(r"\1", text)
    text = _SQUARE.sub(lambda m: _POWER[m.group(1)], text)
    return _DOUBLE_QUOTES.sub(r'"\1"', text)


def _math(body: str) -> str:
    """Inline LaTeX math as plain text ('\\sim 3' -> '~3', '\\times' -> '×')."""
    body = body.replace("\\sim", "~").replace("\\times", "×").replace("\\approx", "≈").replace("\\%", "%")
    body = body.replace("\\leq", "≤").replace("\\geq", "≥").replace("{", "").replace("}", "")
    return re.sub(r"\\([A-Za-z]+)", r"\1", body).strip()


def is_evidence(sentence: str) -> bool:
    """False for text that must never be quoted or count as support: model-directed instructions, markup or tags,
    and sentences that are only a link."""
    if _ADDRESSES_MODEL.search(sentence) or _MARKUP.search(sentence):
        return False
    rest = _URL.sub(" ", sentence)
    return len(WORD.findall(rest)) >= 3


def strip_markers(text: str) -> str:
    """The text without citation markers."""
    return re.sub(r"\s{2,}", " ", MARKER.sub("", text)).strip()


@lru_cache(maxsize=1)
def english_stemmer() -> Any:
    """The shared English Snowball stemmer (PyStemmer), used by BM25, evidence scoring and the verifier."""
    import Stemmer

    return Stemmer.Stemmer("english")


def content_words(text: str) -> list[str]:
    """Lower-case content words of a text in order (stop words, markers and one- or two-letter tokens dropped)."""
    words = [w.lower() for w in WORD.findall(strip_markers(text))]
    return [w for w in words if w not in KEY_TERM_STOPWORDS and len(w) > 2]


@lru_cache(maxsize=65536)
def key_terms(text: str) -> frozenset[str]:
    """Stemmed content words of a text (cached: the same abstract sentences are scored for many questions)."""
    return frozenset(english_stemmer().stemWords(content_words(text)))


def numbers_in(text: str) -> set[str]:
    """Numbers of a text, normalized ('1,000' -> '1000', '86.5%' -> '86.5'); citation markers excluded."""
    return {n.replace(",", "") for n in NUMBER.findall(strip_markers(text))}
