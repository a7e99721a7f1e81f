"""A question's hard constraints: what the answer leaves out ("apart from X", "rather than X") and "with code".

The excluded phrases are cut from the text that retrieval searches and the evidence step scores (their words
describe papers the answer must not hold), and the composer drops the papers they name or are about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rag.naming import mentions
from rag.text import STOPWORDS, content_words, key_terms
from rag.types import Paper

# "apart from X" takes X's papers out of the answer; "rather than X" says what the papers do instead of X, and a
# paper that does the asked thing often names X as its contrast ("RAW rather than RGB"): only a named X is left out.
_CONTRASTING = frozenset({"rather than", "instead of", "as opposed to", "unlike"})
_EXCLUDING = re.compile(
    r"\b(apart from|other than|except(?: for)?|excluding|aside from|outside of|besides|not counting|but not|"
    r"leaving aside|setting aside|rather than|instead of|as opposed to|unlike)\s+",
    re.IGNORECASE,
)
# "release code", "provide a code link", "have a GitHub repository", "code is available", "open-sourced code" (not
# "include code generation")
_WANTS_CODE = re.compile(
    r"\b(?:release[sd]?|releasing|share[sd]?|provide[sd]?|providing|publish(?:es|ed)?|open-source[sd]?|offer[sd]?|"
    r"include[sd]?|host(?:s|ed)?|with|have|has|link(?:s|ed)?(?:\s+to)?|point(?:s|ed)?\s+to)\s+"
    r"(?:(?:both\s+)?(?:(?:their|its)\s+)?(?:data|datasets?|models?|weights)\s+(?:and|as well as)\s+)?"  # "… and"
    r"(?:their |its |the |a |an |any |some |public |publicly |open-source[sd]? |available |released )*"
    r"(?:(?:source )?code|code-?base|github)\b(?!\s+(?:generation|completion|synthesis|models?|llms?|search))|"
    r"\bcode (?:is |are )?(?:available|released|public)\b|\b(?:public|open-source[sd]?|available|released) code\b",
    re.IGNORECASE,
)
# An abstract that says its code is out ("Codes and trained models are available online", "An open source
# implementation … is available through DeepSpeed", "we release an easy-to-run code-base") releases code, whether or
# not the collection kept the link
_CODE_STATEMENT = re.compile(
    r"\b(?:codes?|source code|code-?base|implementations?)\b[^.]{0,80}?\b(?:available|released?|public(?:ly)?|"
    r"open-?sourced?)\b|\b(?:release|open-source)\b[^.]{0,40}\bcode",
    re.IGNORECASE,
)
_PHRASE_TOKEN = re.compile(r"[^\s,;:?!()]+|[,;:?!()]")
_CLAUSE_END = re.compile(r"[,;:?!.](?:\s|$)")
_DETERMINERS = frozenset({"the", "a", "an", "those", "these", "that", "this", "its", "their", "any", "ones", "papers",
                          "works", "on", "about", "using", "with", "to", "for", "in", "by", "from", "at", "into",
                          "through"})  # "other than those on medical images", "rather than to recognition backbones"
# "Which papers (in the collection) …", "what other works …": they match any abstract that says "paper" and pull the
# question's vector toward papers in general, away from its topic (dev list questions: gold papers in the top 8 rise
# from 371 to 383 of 439 without them; no other question type changes)
_FRAME = re.compile(
    r"\b(?:which|what)\s+(?:other\s+)?(?:papers|works|studies)\b(?:\s+in\s+(?:the|this)\s+collection|\s+here)?",
    re.IGNORECASE,
)
_ARTICLES = frozenset({"a", "an", "the", "its", "their"})
# Generic heads that end an excluded name: "other than the Mamba-based ones".
_HEADS = frozenset({"one", "ones", "paper", "papers", "work", "works", "model", "models", "method", "methods"})
# An excluded phrase is a short noun phrase: a name of up to three words ("Vision Mamba"), else two words.
MAX_PHRASE_WORDS = 3
MAX_PLAIN_WORDS = 2
MAX_LISTED_PHRASES = 4  # "other than A, B, C or D"
MIN_CLAUSE_WORDS = 4  # words before the connective for a list of exclusions to follow a whole clause
MAX_LEADING_WORDS = 14  # "Apart from <up to this many words>, which papers …": the whole opening clause is cut


@dataclass(frozen=True)
class Constraints:
    """What a question asks for once its exclusions are cut out, the excluded phrases, and whether it wants code."""

    positive: str
    excluded: tuple[str, ...]
    wants_code: bool
    contrasted: tuple[str, ...] = ()  # "rather than X" phrases: they leave out only the papers they name

    @property
    def searched(self) -> str:
        """What a search for the question's papers looks for: `positive` without the words that only frame a
        question about papers in the plural ("which papers …", "… in the collection")."""
        return unframed(self.positive)


def unframed(text: str) -> str:
    """A question without the words that only frame a question about papers in the plural ("which papers …", "… in
    the collection"); the question itself when nothing else is left."""
    left = " ".join(_FRAME.sub(" ", text).split()).strip(" ,;:")
    return left if re.search(r"\w", left) else text


def _phrase(tokens: list[str]) -> int:
    """How many tokens (from the start) the excluded noun phrase spans: determiners, then at most MAX_PHRASE_WORDS
    words, ending at punctuation, a stop word, or the first lower-case word after a capitalized name (a generic
    head such as "ones" is kept with it)."""
    n = 0
    while n < len(tokens) and tokens[n].lower() in _DETERMINERS:
        n += 1
    words = 0
    while n < len(tokens) and words < MAX_PHRASE_WORDS:
        token = tokens[n]
        if not any(c.isalnum() for c in token) or token.lower() in STOPWORDS:
            break
        if words >= MAX_PLAIN_WORDS and token[:1].islower():
            break
        if words and token[:1].islower() and tokens[n - 1][:1].isupper():
            n += token.lower() in _HEADS
            break  # "apart from GroupMamba propose …": the name ended
        n += 1
        words += 1
    return n if words else 0


def _listed_phrases(tokens: list[str]) -> list[tuple[int, int]]:
    """(start, end) token spans of the excluded phrases: one, or a list closed by "or" ("pure transformers, pure
    ConvNets or state-space models"); without a closing "or", a comma ends the exclusion ("apart from X, which…")."""
    first = _phrase(tokens)
    if not first:
        return []
    items, pos = [(0, first)], first
    while pos < len(tokens) and len(items) < MAX_LISTED_PHRASES:
        k = pos + (tokens[pos] == ",")
        closing = k < len(tokens) and tokens[k].lower() in ("or", "nor")
        k += closing
        n = _phrase(tokens[k:]) if k > pos else 0
        if not n:
            break
        items.append((k, k + n))
        pos = k + n
        if closing:
            return items
    return items[:1]


@lru_cache(maxsize=1024)
def parse(question: str) -> Constraints:
    """The question's constraints; `positive` is the question without its "apart from X" / "rather than X" parts."""
    excluded: list[str] = []
    contrasted: list[str] = []
    kept: list[str] = []
    rest = question
    while match := _EXCLUDING.search(rest):
        leading = not ("".join(kept) + rest[: match.start()]).strip()
        if match.group(1).lower() == "outside of" and not leading:  # "outside of the lab" is a place, not a cut
            kept.append(rest[: match.end()])
            rest = rest[match.end() :]
            continue
        kept.append(rest[: match.start()])
        tail = rest[match.end() :]
        tokens = _PHRASE_TOKEN.findall(tail)
        # a list of exclusions follows a whole clause ("which backbones mix X and Y, as opposed to A, B or C"); after
        # a bare subject ("which papers, apart from X, use A or B") the exclusion is one phrase
        before = "".join(kept).split()
        items = _listed_phrases(tokens) if len(before) >= MIN_CLAUSE_WORDS else _listed_phrases(tokens)[:1]
        if not items:
            kept.append(rest[match.start() : match.end()])
            rest = tail
            continue
        phrases = contrasted if " ".join(match.group(1).lower().split()) in _CONTRASTING else excluded
        phrases.extend(" ".join(tokens[start:end]) for start, end in items)
        # cut the phrases' own words from the tail, keeping what follows them; an opening clause ("Apart from the
        # Mamba / state-space backbones, which …") is cut whole, up to its comma
        cut = 0
        for token in tokens[: items[-1][1]]:
            cut = tail.index(token, cut) + len(token)
        comma = tail.find(",", cut)
        if leading and comma >= 0 and len(tail[:comma].split()) <= MAX_LEADING_WORDS:
            cut = comma + 1
        elif "".join(kept).rstrip().endswith(",") or _runs_on(phrases is contrasted, tokens, items[-1][1], tail, cut):
            # set off by commas (", as opposed to X for Y?"), or a contrast whose phrase runs on to the question's end
            # ("rather than by proposing a new backbone?"): cut it whole
            end = _CLAUSE_END.search(tail, cut)
            cut = end.start() if end else len(tail)
        rest = tail[cut:]
    kept.append(rest)
    positive = re.sub(r"\s+([,;?.])", r"\1", " ".join("".join(kept).split()))
    positive = re.sub(r"([,;])(?:\s*[,;])+", r"\1", positive)
    positive = re.sub(r"[,;]\s*([?.!])", r"\1", positive).strip(" ,;")
    return Constraints(positive or question, tuple(excluded), bool(_WANTS_CODE.search(question)), tuple(contrasted))


def _runs_on(contrast: bool, tokens: list[str], end: int, tail: str, cut: int) -> bool:
    """True when a contrast's phrase stopped before its noun phrase did (an article or another content word follows)
    and nothing but the contrast is left of the question: its last clause is all contrast."""
    if not contrast or end >= len(tokens):
        return False
    following = tokens[end].lower()
    continues = following in _ARTICLES or (following[:1].isalnum() and following not in STOPWORDS)
    clause_end = _CLAUSE_END.search(tail, cut)
    return continues and (clause_end is None or not tail[clause_end.end() :].strip())


def excluded_papers(constraints: Constraints, papers: Sequence[Paper], by_topic: bool = True) -> set[str]:
    """Ids of the papers an exclusion leaves out: the ones an excluded or contrasted phrase names ("apart from
    GroupMamba", "unlike MaxViT"), or, when an excluded phrase names none of them and `by_topic`, the papers about its
    first content word ("other than diffusion models")."""
    out = {p.id for phrase in constraints.contrasted for p in papers if mentions(phrase, p)}
    for phrase in constraints.excluded:
        named = {p.id for p in papers if mentions(phrase, p)}
        if named:
            out |= named
            continue
        words = content_words(phrase.replace("-", " "))
        if words and by_topic:
            terms = key_terms(words[0])
            out |= {p.id for p in papers if _about(p, terms)}
    return out


def meets(constraints: Constraints, paper: Paper, excluded: set[str], code: bool = True) -> bool:
    """True when the paper is not excluded and, if the question wants code (and `code` applies it), releases some."""
    return paper.id not in excluded and (not (code and constraints.wants_code) or releases_code(paper))


def releases_code(paper: Paper) -> bool:
    """True when the paper links code or its abstract says its code is available or released."""
    return bool(paper.code_urls) or bool(_CODE_STATEMENT.search(paper.abstract))


def _about(paper: Paper, terms: frozenset[str]) -> bool:
    """True when the paper's title has one of the terms, or its abstract has one at least twice."""
    if terms & key_terms(paper.title.replace("-", " ")):
        return True
    words = [key_terms(w) for w in paper.abstract.replace("-", " ").split()]
    return any(sum(t in w for w in words) >= 2 for t in terms)
