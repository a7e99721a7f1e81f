"""Short names of papers ("MaxViT", "Vision Mamba (Vim)", "PIIP") and finding them mentioned in a question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from rag.types import Paper

# Longer title prefixes than this are descriptions, not names.
MAX_NAME_WORDS = 4
# "(ACR)" or "(ACR Pre-training)": an acronym in parentheses, maybe followed by one capitalized word
_PAREN_ACRONYM = re.compile(r"\(([A-Za-z0-9][\w\-.²³]{1,15})(?:\s[A-Z][\w\-]*)?\)")
_INTRODUCED = re.compile(
    r"\b(?:[Ww]e|[Tt]his (?:paper|work))\s+(?:propose|present|introduce)s?\s+(?:the\s+|a\s+|an\s+)?"
    r"([A-Z][\w\-]*[A-Z0-9][\w\-]*)(?=[\s,(])(?!\s+[A-Z])"
)
# Plural acronyms ("SSMs", "LVLMs") name a family of models, not the paper's method.
_PLURAL_ACRONYM = re.compile(r"[A-Z]s$")
_NAMED = re.compile(r"\b(?:named|dubbed|called|termed|coined)\s+([A-Z][\w\-.]*[A-Z0-9][\w\-.]*)")
# ... the first word of a longer name that the abstract abbreviates ("called Parameter-Inverted Image Pyramid Networks
# (PIIP)"): the acronym names the paper, not that word
_LONGER_NAME = re.compile(r"\s+(?:[A-Z][\w\-]*\s+){0,4}[A-Z][\w\-]*\s*\(")
# "we design a family of ResNet architectures, ResNet-RS, which …": a name set off after what the paper designs
_APPOSITIVE = re.compile(
    r"\b(?:[Ww]e|[Oo]ur)\b[^.]{0,80}?\b(?:architectures?|models?|networks?|famil(?:y|ies)|methods?|frameworks?),\s+"
    r"([A-Z][\w\-]*[A-Z0-9][\w\-]*),\s+(?:which|that)\b"
)


_TITLE_WORD = re.compile(r"[a-z][a-z0-9]+")
_PROPOSING = re.compile(
    r"\b(we|our|this (paper|work))\b|\b(propos|introduc|present|named|dubbed|called)", re.IGNORECASE
)


def _initials(words: list[str]) -> str:
    """Upper-case initials of words and their hyphen parts ('Parameter-Inverted Image' -> 'PII')."""
    return "".join(part[0].upper() for w in words for part in w.split("-") if part and part[0].isalpha())


def _is_subsequence(needle: str, haystack: str) -> bool:
    """True when needle's characters appear in haystack in order."""
    it = iter(haystack)
    return all(c in it for c in needle)


def _defined_acronyms(paper: Paper) -> list[tuple[str, list[str], bool]]:
    """'Long Form (ACR)' definitions of the abstract: (acronym, the words before it, whether its sentence proposes)."""
    found = []
    for match in _PAREN_ACRONYM.finditer(paper.abstract):
        start = max(paper.abstract.rfind(". ", 0, match.start()), 0)
        end = paper.abstract.find(". ", match.end())  # "a … network (IARN) is proposed": the whole sentence
        before = paper.abstract[start : match.start()].split()
        found.append(
            (
                match.group(1),
                before[-(len(match.group(1)) + 3) :],
                bool(_PROPOSING.search(paper.abstract[start : end if end >= 0 else len(paper.abstract)])),
            )
        )
    return found


def _acronym(paper: Paper, prefix: str) -> str:
    """An acronym the abstract defines for the paper's method (matching its name or title), or ''."""
    repeated = "" if prefix else _repeated_name(paper)
    if repeated:
        return repeated
    if not prefix:
        name = _introduced_name(paper)
        if name:
            return name
    definitions = _defined_acronyms(paper)
    if prefix:
        squashed = re.sub(r"[^a-z0-9]", "", prefix.lower())
        for acronym, _, _ in definitions:
            low = re.sub(r"[^a-z0-9]", "", acronym.lower())
            if low != squashed and low[:1] == squashed[:1] and _is_subsequence(low, squashed):
                return acronym
        # a title prefix that is a phrase ("Scaling Up Your Kernels") beside the name the abstract gives its method
        name = _introduced_name(paper) or _repeated_name(paper)
        return name if name and name.lower() not in prefix.lower() else ""
    title_words = set(_TITLE_WORD.findall(paper.title.lower()))
    best, best_key = "", (False, 0)
    for acronym, before, proposing in definitions:
        letters = "".join(c for c in acronym if c.isupper())
        if not proposing or len(letters) < 2 or _PLURAL_ACRONYM.search(acronym):
            continue
        if not _is_subsequence(letters, _initials(before)):
            continue
        overlap = len(title_words & set(_TITLE_WORD.findall(" ".join(before).lower())))
        key = (proposing, overlap)
        if overlap and key > best_key:
            best, best_key = acronym, key
    return best


def _introduced_name(paper: Paper) -> str:
    """The name the abstract gives its method ("named MaxViT", "we propose the UniRepLKNet architecture"), or ''.

    Hyphenated adjectives ("a Swin-Transformer-based network") and plural acronyms ("SSMs") are not names.
    """
    for pattern in (_NAMED, _INTRODUCED, _APPOSITIVE):
        found = pattern.search(paper.abstract)
        name = found.group(1).rstrip(".") if found else ""
        if found and _LONGER_NAME.match(paper.abstract, found.end(1)):
            continue
        if name and not name.rsplit("-", 1)[-1][:1].islower() and not _PLURAL_ACRONYM.search(name):
            return name
    return ""


# A CamelCase or capitalized-with-digits word the abstract makes the subject of its sentences ("WideNet outperforms").
_SUBJECT_NAME = re.compile(r"(?:^|[.;,]\s+|\bour\s+)([A-Z][a-z]+[A-Z][\w\-]*|[A-Z][\w\-]*\d[\w\-]*)(?=\s+[a-z])")
# ... used as the subject at least this often: a name, not a passing mention of another work.
SUBJECT_REPEATS = 2


def _repeated_name(paper: Paper) -> str:
    """The name an abstract keeps using as a subject ('WideNet outperforms ... WideNet can ...'), or ''."""
    counts: dict[str, int] = {}
    for match in _SUBJECT_NAME.finditer(paper.abstract):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    named = [(n, c) for n, c in counts.items() if c >= SUBJECT_REPEATS and not _PLURAL_ACRONYM.search(n)]
    return max(named, key=lambda nc: nc[1])[0] if named else ""


@lru_cache(maxsize=4096)
def _names(paper: Paper) -> tuple[str, ...]:
    """The paper's names: the title's part before ':', an acronym from the abstract."""
    names: list[str] = []
    prefix = paper.title.split(":", 1)[0].strip() if ":" in paper.title else ""
    if prefix and len(prefix.split()) <= MAX_NAME_WORDS:
        names.append(prefix)
    acronym = _acronym(paper, prefix if names else "")
    if acronym and acronym not in names:
        names.append(acronym)
    return tuple(names)


def _expansion(paper: Paper, acronym: str) -> str:
    """The capitalized phrase the abstract abbreviates as the paper's acronym ("Hierarchical Side-Tuning (HST)"), or
    ''."""
    letters = "".join(c for c in acronym if c.isupper())
    for defined, before, _ in _defined_acronyms(paper):
        if defined != acronym:
            continue
        for k in range(1, len(before) + 1):
            words = [w.strip("\"'“”,;~") for w in before[-k:]]
            if _initials(words) == letters:
                return " ".join(words) if all(w[:1].isupper() for w in words) and k > 1 else ""
    return ""


@lru_cache(maxsize=4096)
def aliases(paper: Paper) -> tuple[str, ...]:
    """Names a question may use for a paper: the title's part before ':', an acronym from the abstract, and the
    capitalized phrase that acronym abbreviates."""
    names = _names(paper)
    expansion = _expansion(paper, names[-1]) if names else ""
    return (*names, expansion) if expansion and expansion.lower() not in (n.lower() for n in names) else names


def short_name(paper: Paper) -> str:
    """How an answer names a paper: 'MaxViT', 'Vision Mamba (Vim)', 'PIIP'; the title when it has no name."""
    names = _names(paper)
    if not names:
        return paper.title
    if len(names) > 1 and names[1].lower() not in names[0].lower():
        return f"{names[0]} ({names[1]})"
    return names[0]


def _alias_pattern(alias: str) -> re.Pattern[str]:
    """A whole-word pattern for an alias; all-caps aliases ('SELECT') must match case-sensitively."""
    flags = 0 if alias.isupper() else re.IGNORECASE
    stem = alias[:-1] if alias.endswith("s") and len(alias) > 3 else alias
    return re.compile(rf"(?<![\w-]){re.escape(stem)}s?(?![\w-])", flags)


def mentions(text: str, paper: Paper) -> bool:
    """True when text names the paper by one of its aliases (or its full title)."""
    return bool(names_mentioned(text, paper))


def names_mentioned(text: str, paper: Paper) -> list[str]:
    """The paper's names (full title, aliases) that text uses."""
    found = [paper.title] if paper.title.lower() in text.lower() else []
    return found + [alias for alias in aliases(paper) if len(alias) >= 3 and _alias_pattern(alias).search(text)]


def sharing_a_name(papers: Sequence[Paper], names: Sequence[Sequence[str]]) -> set[str]:
    """Ids of the papers a text does not name whose title holds a name it uses for another one, given the names it
    uses for each paper (`names_mentioned`): "the hidden-state-mixer vision Mamba" names Vim ("Vision Mamba") but
    may mean "EfficientViM: Efficient Vision Mamba…"."""
    used = [name for found in names for name in found]
    return {
        p.id for p, found in zip(papers, names, strict=True)
        if not found and any(_alias_pattern(name).search(p.title) for name in used)
    }  # fmt: skip


def without_names(text: str, paper: Paper) -> str:
    """Text with the paper's names (aliases, full title) removed: what a question asks about a named paper."""
    plain = re.sub(re.escape(paper.title), " ", text, flags=re.IGNORECASE)
    for alias in aliases(paper):
        if len(alias) >= 3:
            plain = _alias_pattern(alias).sub(" ", plain)
    return " ".join(plain.split())
