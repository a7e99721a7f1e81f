"""Conversation turns: decide whether a question depends on the history, and if so which cited papers it means.

A self-contained question is searched exactly as typed. A follow-up ("what does it get on COCO?", "and the second
one?", "the one with code", "And on ADE20K?") resolves to the papers the previous answer cited, carried with the
history as `Message.papers`; the chain then searches only those papers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.constraints import releases_code
from rag.naming import aliases, short_name
from rag.prompts import Prompts, format_history
from rag.text import KEY_TERM_STOPWORDS, key_terms
from rag.types import Message, Paper, Record

if TYPE_CHECKING:
    from rag.llm import ChatBackend, Deadline

log = logging.getLogger(__name__)

MIN_WHOLE_TERMS = 3  # content words of a question that stands on its own after "And …" (or after a dummy "it take")
# "How many parameters?", "Which is faster?": a bare question this short asks about the papers at hand
MAX_BARE_WORDS = 4
MAX_BARE_TERMS = 2

# "any of them", "both of those": a part of the papers at hand; never a name ("Does either of them …")
_QUANTIFIERS = "any|some|all|each|none|either|neither|both|one|many|most|few|several"
_ORDINALS = {"first": 0, "former": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "latter": -1, "last": -1}
_NOUN = r"(?:one|paper|model|method|work|approach|architecture|network|study|article|framework|backbone|system)"
# A capitalized name or acronym ("UniBench", "GroupMamba", "COCO"); the case-blind patterns below read it too.
_NAME_PATTERN = r"(?:[A-Z][a-z]*[A-Z0-9][\w\-]*|[A-Z]{2,}[\w\-]*)"
# ... not "the first paper to scale…" / "the first model that…": a superlative describing a paper, not a position
_ORDINAL_REF = re.compile(
    rf"\b(?:the\s+)?({'|'.join(_ORDINALS)})\s+{_NOUN}\b(?!\s+(?:to|that|which|who)\b)|"
    rf"\bthe\s+({'|'.join(_ORDINALS)})\b(?!-)(?!\s+(?:[\w-]+\s+)?{_NOUN}\s+(?:to|that|which|who)\b)",
    re.I,
)
_NUMBER_REF = re.compile(rf"\b(?:{_NOUN}|source|reference)\s*\[?(\d{{1,2}})\]?|\[(\d{{1,2}})\]", re.IGNORECASE)
_WITH_CODE = re.compile(
    rf"(?:\b(?:the\s+)?{_NOUN}s?\s+(?:with|that\s+(?:has|have|releases?|shares?|released))|\bwhich\s+ones?\s+"
    rf"(?:has|have|releases?|shares?|released))\s+(?:(?:the|its|their|public|released|open-source|available)\s+)*code\b",
    re.I,
)
# "Which one…", "which of them…", "which of these papers…": a choice among the papers just cited.
# ("which of the papers in the collection …" chooses from the whole collection)
_WHICH_OF = re.compile(
    rf"\bwhich\s+(?:one|ones|of\s+(?:them|these|those|the\s+(?:two|three|{_NOUN}s)))\b"
    r"(?!\s+(?:(?:in|from|of)\s+(?:the|this|your)\s+(?:collection|corpus|library|index)|here)\b)",
    re.I,
)
# what a paper builds, that "that dataset", "this benchmark" may point back at
_THING = (r"(?:dataset|benchmark|suite|family|series|technique|strategy|module|design|loss|pipeline|tool|toolbox|"
          r"library|recipe|idea|scheme|algorithm|detector|tracker|encoder|decoder|protocol|metric|mechanism)")
_DEMONSTRATIVE = re.compile(
    rf"\b(?:that|this|the\s+same|the\s+above|said)\s+(?:{_NOUN}|{_THING})\b|"
    # "How many epochs did that take?", "How does this compare …": the pronoun alone
    r"(?:(?<=\bdid\s)|(?<=\bdoes\s)|(?<=\bdo\s)|(?<=\bis\s)|(?<=\bwas\s)|(?<=\bcan\s))(?:that|this)\b"
    r"(?=\s*(?:[?.!]|$)|\s+(?:take|work|cost|need|use|get|achieve|reach|require|compare|report|involve|run|scale)\b)|"
    # "the multimodal version", "the larger variant": of the paper at hand, unless the question says of what
    r"\bthe\s+(?:[\w-]+\s+){0,2}?(?:version|variant)\b(?!\s+(?:of|that|which|with|in|from)\b)",
    re.IGNORECASE,
)
# ... unless the phrase says which one it means itself ("the newer one in the collection", "the other model that …")
_NOT_QUALIFIED = r"(?!\s+(?:in|of|among|from|that|which|who)\b)"
_PLURAL_DEMONSTRATIVE = re.compile(
    rf"\b(?:these|those|both|the\s+(?:two|three|above))\s+(?:{_NOUN}s|ones)\b|"
    rf"\bthe\s+(?:{_NOUN}s|ones)\s+(?:above|(?:you\s+(?:just\s+)?|just\s+)(?:cited|listed|mentioned|named))\b|"
    # "Do any of those use …", "each of these": a part of the papers at hand (not "any of these datasets: …")
    rf"\b(?:{_QUANTIFIERS})\s+of\s+(?:these|those|them)\b"
    r"(?![\w\s-]{0,30}:)|"
    # "How do these compare on COCO?", "Compare those.": the pronoun alone, as the subject of a verb or at the end
    r"\b(?:these|those)\b(?=\s*(?:[?.,!]|$|\s+(?:do|does|did|are|were|have|has|compare\w*|differ\w*|use|report\w*|"
    r"need|get|achieve|reach|run|release\w*)\b))|"
    # "the bigger one": one of the papers at hand, by comparison (not "the newer one in the collection")
    rf"\bthe\s+(?!other\b)[a-z]+er\s+one\b{_NOT_QUALIFIED}|"
    # "How do the two differ?", "which of the three is faster": the papers at hand, as the subject of a verb
    r"\bthe\s+(?:two|three)\b(?=\s*(?:[?.,!]|$|\s+(?:of\s+(?:them|these|those)|differ\w*|compare\w*|do|does|did|are|"
    r"were|have|has|use|report\w*|need|get|achieve|reach)\b))",
    re.I,
)
# "the other one", "the other paper": a cited paper the conversation has not just been about (not "the other model in
# the tracking paper")
_OTHER = re.compile(
    rf"\bthe\s+other\s+(?:one|{_NOUN})\b{_NOT_QUALIFIED}|\bthe\s+other(?=\W*$|\s+(?:on|in|at|for|regarding)\b)", re.I
)  # ... and "the other" alone: "compare to the other in box AP"
# What a follow-up's reference may be, besides "the one with code" and pronouns, in the order the rewrite replaces them
_REFERRING = (_ORDINAL_REF, _NUMBER_REF, _OTHER, _PLURAL_DEMONSTRATIVE, _DEMONSTRATIVE)
_PRONOUN = re.compile(r"\b(it|its|itself)\b", re.IGNORECASE)
# ("both" of "both X and Y" coordinates, it points at nothing)
_PLURAL_PRONOUN = re.compile(
    r"\b(they|them|their|theirs|both(?![^?]*\band\b)|each(?=\s+(?:of|one)\b|\s*[?.!,])|"
    r"(?<=does\s)each|(?<=do\s)each|(?<=did\s)each)\b",
    re.IGNORECASE,
)  # "each of them", "what does each compare against", not "each pixel"
# "And on ADE20K?", "What about its parameter count?", "How about the larger variant?", "Also on COCO?"
# The lead words of a turn that continues the previous question ("And …", "What about …"); `_SWITCH` shares them
_CONTINUING = r"and|also|what about|how about|and what about|ok(?:ay)?,? and"
_ELLIPSIS = re.compile(rf"^\s*(?:{_CONTINUING}|same for)\b", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:and|also|so|ok|okay|then|well)\b[\s,]*", re.IGNORECASE)
# ... but "And what does FiTv2 add…?" is a whole question with a named subject of its own: it stands alone
_NAMED_QUESTION = re.compile(
    r"^\s*(?i:and|also),?\s+(?i:what|how|which|who|why|where|when)\s+(?:[a-z]+\s+)?"
    rf"(?i:is|are|was|were|does|do|did|has|have|can)\s+(?:the\s+)?{_NAME_PATTERN}\b"
)
_NAME = re.compile(rf"\b({_NAME_PATTERN})\b")
_DEFINITION = re.compile(
    r"^\s*(?:what|who)(?:['\u2019]s|\s+(?:is|are|was|were))\s+(?!it\b|they\b|that\b|this\b)\w", re.IGNORECASE
)  # "What is pruning?", "What's pruning?"
# "the paper that benchmarks curation", "the work on fractal pre-training": a paper the question describes itself
_THE_PAPER = rf"\bthe\s+(?:[\w-]+\s+){{0,3}}?{_NOUN}s?\s+"
_DESCRIBED_PAPER = rf"{_THE_PAPER}(?:that|which|who|whose|on|about|behind|introducing|proposing)\b"
# ... by a clause of its own ("And what about the paper that splits a ViT …?"; not "the model on COCO", "the method
# that it builds on")
_RELATIVE_PAPER = re.compile(rf"{_THE_PAPER}(?:that|which|who|whose)\s+(?!(?:it|they|we|you)\b)\w+", re.I)
# The question's own subject before a pronoun: "What is GroupMamba and what does it ...", "How does X ... its ...",
# "Summarise the grouped state-space model and what it improves": the pronoun points back inside the question.
_OWN_SUBJECT = re.compile(
    r"\b(?:is|are|was|were|does|do|did|about|describe|summari[sz]e|explain)\s+(?:the\s+|a\s+|an\s+)?"
    # ... not a clause ("explain how it works": "how" is no subject) nor a function word ("Do any of them …"): the
    # name pattern reads case-blind
    rf"(?!(?:whether|if|{_QUANTIFIERS}|{'|'.join(sorted(KEY_TERM_STOPWORDS))})(?![\w-]))(?P<described>{_NAME_PATTERN})|"
    # ... after "of", only a name for "it": "the accuracy of GroupMamba and its …", not "a limitation of earlier
    # models does it …" (a plural pronoun may take any "of" phrase: `_OF_PHRASE`)
    rf"\bof\s+(?:the\s+)?(?-i:{_NAME_PATTERN})|"
    r"^\s*(?:(?:in|on|for|of|from|among|up\s+to)\s+)?(?:what|how|why|which|who|is|are|does|do|did|can|has|have)\b"
    r"[^?]{12,}\band\b|"
    # an indefinite subject introduces a new referent: "Is there a paper on X? What does it report?", "Give me two
    # papers on X and their speed-ups" (not "the two papers")
    rf"(?<!the )\b(?:a|an|any|some|two|three|four|five|several|\d+)\s+(?:[\w-]+\s+){{0,3}}?{_NOUN}s?\b|"
    # ... and so does a paper the question describes ("In the paper that benchmarks curation, what did they build?",
    # "the paper on fractal pre-training … its images") or names ("In the DeepSpeed paper, what do they claim?")
    rf"{_DESCRIBED_PAPER}|\bthe\s+(?-i:{_NAME_PATTERN})\s+{_NOUN}\b",
    re.IGNORECASE,
)
# "what share of them held", after "claims from … papers": the plural's own antecedent
_OF_PHRASE = re.compile(r"\bof\s+(?:the\s+|a\s+|an\s+)?[a-z][\w-]+", re.IGNORECASE)
# "Which papers train their models…", "Which paper evaluates its tracker…": the question's own subject, unless the
# pronoun is the subject of its own clause ("Which models do they compare against?", "What method does it use?" ask
# about the papers of the previous answer)
# ... also after an opening clause ("Apart from X, which papers apply their method…")
_SUBJECT_START = r"(?:^|[,;:]\s*)\s*(?:(?:in|on|for|of|from|among)\s+)?(?:which|what)\s+(?:[\w()/-]+\s+){0,3}?"
_OWN_PLURAL = re.compile(rf"{_SUBJECT_START}{_NOUN}s\b", re.IGNORECASE)
_TAKES = re.compile(r"\s+(?:take|takes|took)\b", re.IGNORECASE)
# "Among the super-resolution papers, which ones…": the question names the set it chooses from
_OWN_SET = re.compile(rf"^\s*(?:among|of|from)\s+(?:the\s+)?[^,?]*\b{_NOUN}s\s*,", re.IGNORECASE)
_QUESTION_START = re.compile(
    r"(?:(?:by|in|on|for|of|from|at|to|with|under|among)\s+)?"  # "Also, by how much does DeepSpeed Inference …?"
    r"(?:which|what|how|who|why|where|when|is|are|does|do|did|can|could|has|have)\b(?!\s+about\b)", re.IGNORECASE
)
_OWN_NOUN = re.compile(rf"{_SUBJECT_START}{_NOUN}s?\b", re.IGNORECASE)  # either number: "Which papers prune its UNet"
_AUXILIARIES = r"do|does|did|are|were|is|was|have|has|had|can|could|will|would|should"
_AUXILIARY_BEFORE = re.compile(rf"\b(?:{_AUXILIARIES})\s+$", re.I)


# "And GroupMamba?", "What about Vision Mamba?", "Same question for UniRepLKNet.": the previous question about
# another paper, when the name is a paper's (not a dataset's: "And on ADE20K?" keeps the subject). Read case-blind
# ("and groupmamba?"): whether the words name a paper is for the index to say (`resolve`'s `named`)
_SWITCH = re.compile(
    rf"^\s*(?:{_CONTINUING}|and how about|same (?:question |thing )?for)\s+(?:for\s+)?"
    r"(?P<name>[A-Z][\w\-]*(?:\s+[A-Z][\w\-]*){0,3})\s*[?.!]*\s*$",
    re.IGNORECASE,
)
# "Which papers report both COCO and ADE20K?": a question for papers, its verb and the rest
_WHICH_PAPERS = re.compile(
    rf"^\s*(?:which|what)\s+(?:{_NOUN}s|ones)\s+(?P<verb>[a-z]+)\s+(?P<rest>[^?]+?)\s*\??\s*$", re.IGNORECASE
)


class Turn(Record):
    """How a question relates to the conversation: searched as `standalone`, over `papers` when it is a follow-up."""

    question: str
    standalone: str
    follow_up: bool = False
    papers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # the papers' names the rewrite put in for the reference: not terms of the question


@dataclass(frozen=True)
class _Reference:
    """What a follow-up refers to: cited positions (0-based, -1 = last), all cited papers, those with code, or the
    other one."""

    positions: tuple[int, ...] = ()
    everything: bool = False
    with_code: bool = False
    other: bool = False


def last_cited(history: Sequence[Message], at_least: int = 0) -> tuple[str, ...]:
    """Paper ids the last assistant turn cited, [1] first (empty when it abstained or cited nothing); with `at_least`,
    those of the latest turn that cited that many ("the second one" after an answer about one paper), else the last."""
    answers = [m.papers for m in reversed(history) if m.role == "assistant"]
    return next((papers for papers in answers if len(papers) >= at_least), answers[0] if answers else ())


def _previous_question(history: Sequence[Message]) -> str:
    """The last question the user asked ('' when there is none)."""
    return next((m.content for m in reversed(history) if m.role == "user"), "")


def _names_of(papers: Sequence[Paper]) -> list[str]:
    """The names a question may use for the papers: their aliases and short names."""
    return [name for p in papers for name in (*aliases(p), short_name(p))]


def _own_subject_before(question: str, start: int, plural: bool = False, demonstrative: bool = False) -> bool:
    """True when the question names something of its own before position `start` ('What is GroupMamba and what
    problem does it address?': 'it' is GroupMamba); for a plural pronoun, any "of" phrase too; for "this model", a
    described subject only when it is a name ("What is the accuracy of this model?" points back)."""
    before = question[:start]
    for match in _OWN_SUBJECT.finditer(before):
        described = match.group("described")
        if not (demonstrative and described and not _NAME.fullmatch(described)):
            return True
    return plural and bool(_OF_PHRASE.search(before))


def _expletive(question: str, match: re.Match[str]) -> bool:
    """True for the "it" of "how many GPU hours did it take to train Vision Mamba?": it points at what follows,
    which names its own subject."""
    after = question[match.end() :]
    if not _TAKES.match(after):
        return False
    return bool(_NAME.search(after)) or len(key_terms(after)) >= MIN_WHOLE_TERMS


def reference(question: str) -> _Reference | None:
    """What part of the previous answer a question refers to, or None when it stands on its own."""
    if _WITH_CODE.search(question):
        return _Reference(with_code=True)
    positions = []
    for match in _ORDINAL_REF.finditer(question):
        positions.append(_ORDINALS[(match.group(1) or match.group(2)).lower()])
    for match in _NUMBER_REF.finditer(question):
        positions.append(int(match.group(1) or match.group(2)) - 1)
    if positions:
        # "How does the first compare to the other?": the other is the paper the ordinal leaves out
        return _Reference(positions=tuple(dict.fromkeys(positions)), other=bool(_OTHER.search(question)))
    if _OTHER.search(question):
        return _Reference(other=True)
    if _PLURAL_DEMONSTRATIVE.search(question) or (_WHICH_OF.search(question) and not _OWN_SET.search(question)):
        return _Reference(everything=True)
    match = _DEMONSTRATIVE.search(question)
    if match and not _own_subject_before(question, match.start(), demonstrative=True):
        return _Reference(positions=(0,))
    match = _PRONOUN.search(question)
    if match and _expletive(question, match):
        match = None
    if match and not _own_subject_before(question, match.start()):
        before = question[: match.start()]
        if not (_OWN_NOUN.search(before) and not _AUXILIARY_BEFORE.search(before)):
            return _Reference(positions=(0,))
    match = _PLURAL_PRONOUN.search(question)
    if match and not _own_subject_before(question, match.start(), plural=True):
        before = question[: match.start()]
        if not (_OWN_PLURAL.search(before) and not _AUXILIARY_BEFORE.search(before)):
            return _Reference(everything=True)
    if (_ELLIPSIS.search(question) and not _NAMED_QUESTION.search(question) and not _whole_question(question)
            and not _RELATIVE_PAPER.search(question)):
        return _Reference(everything=True)
    if _subjectless(question) or _measure_fragment(question):
        return _Reference(everything=True)
    return None


# "Is there work on face recognition?", "Are there other papers on X?": a question about the collection, never about
# the papers at hand ("Are there results on COCO?" asks about them)
_EXISTENTIAL = re.compile(
    rf"(?:is|are)\s+there\s+(?:(?:a|an|any|some|other|more)\s+)*(?:[\w-]+\s+)?(?:{_NOUN}s?|work|research)\b", re.I
)


def _whole_question(question: str) -> bool:
    """True when "And …" / "Also, …" opens a whole question of its own, not a fragment: it asks for papers ("And
    which paper proposes a heavy-neck detector?") or says enough to be searched ("And how does the hypercomplex
    convolution network cut parameters?"); "And on COCO?", "And how many parameters?" are fragments, and a question
    with a pronoun points back."""
    rest = _LEAD.sub("", question).lstrip(" ,")
    if not _QUESTION_START.match(rest) or _PRONOUN.search(rest) or _PLURAL_PRONOUN.search(rest):
        return False  # "And what fraction of the parameters does it store?" points back
    return bool(_OWN_NOUN.match(rest) or _EXISTENTIAL.match(rest)) or len(key_terms(rest)) >= MIN_WHOLE_TERMS


# "How much faster at inference?", "How many parameters in total?": a measure asked with no verb and no subject of its
# own is about the papers at hand (a question with a verb, a name or papers of its own stands alone)
_MEASURE_FRAGMENT = re.compile(r"^\W*(?:and\s+)?how\s+(?:much|many|fast|large|big|long|well|accurate)\b", re.IGNORECASE)
_FINITE_VERB = re.compile(rf"\b(?:{_AUXILIARIES}|be|been|may|might|must)\b|'s\b", re.IGNORECASE)
_PAPERS = re.compile(rf"\b{_NOUN}s\b", re.IGNORECASE)
MAX_FRAGMENT_WORDS = 8


def _measure_fragment(question: str) -> bool:
    """True for a short "how much/many/fast …" with no verb, no name and no papers of its own."""
    return (
        bool(_MEASURE_FRAGMENT.match(question)) and len(question.split()) <= MAX_FRAGMENT_WORDS
        and not _FINITE_VERB.search(question) and not _NAME.search(question) and not _PAPERS.search(question)
    )  # fmt: skip


def _subjectless(question: str) -> bool:
    """True when a question says nothing a search could find a paper by: no name and no content word ("Tell me
    more.", "Why?"), or a few words with one or two ("How many parameters?"); never a question for papers of its own
    ("Which papers use pruning?") or for what a thing is ("What is pruning?")."""
    if _NAME.search(question) or _DEFINITION.match(question) or _OWN_PLURAL.search(question):
        return False
    terms = key_terms(question)
    return not terms or (len(terms) <= MAX_BARE_TERMS and len(question.split()) <= MAX_BARE_WORDS)


def resolve(question: str, history: Sequence[Message], lookup: Any = None, named: Any = None) -> Turn:
    """The turn for a question: standalone when it does not depend on the history, else the cited papers it means.

    `lookup(ids) -> list[Paper]` fetches cited papers (for 'the one with code' and for their names); without it,
    names are not substituted and 'with code' keeps every cited paper. `named(name) -> list[Paper]` finds the papers
    a name belongs to ("And GroupMamba?" asks the previous question about GroupMamba); without it, no such switch.
    """
    text = question.strip()
    switched = _switch_subject(text, history, lookup, named) if history and named else None
    if switched is not None:
        return switched
    ref = reference(text) if history else None
    if ref is None:
        return Turn(question=text, standalone=text)
    cited = last_cited(history)
    if not cited:
        # nothing cited to refer to (the last turn abstained): the previous question's subject is the referent
        names = list(dict.fromkeys(_NAME.findall(_previous_question(history))))
        standalone = _substitute(text, names[:1] or [], ref) if names else text
        return Turn(question=text, standalone=standalone, follow_up=standalone != text)
    other = _other(history, cited) if ref.other and not ref.positions else []  # else the ordinal's other (below)
    # "the second one" after an answer about one paper: of the latest answer that cited that many
    listing = last_cited(history, max(ref.positions) + 1) if ref.positions else cited
    papers: list[Paper] = list(lookup(list(dict.fromkeys([*cited, *other, *listing])))) if lookup else []
    by_id = {p.id: p for p in papers}
    if ref.with_code:
        chosen = [pid for pid in cited if by_id.get(pid) is not None and releases_code(by_id[pid])] or list(cited)
    elif ref.everything:
        chosen = list(cited)
    elif other:
        chosen = other
    else:
        chosen = [listing[p] for p in ref.positions if -len(listing) <= p < len(listing)] or list(cited[:1])
        if ref.other:
            chosen += [pid for pid in listing if pid not in chosen][:1]
    # "which one has code?" chooses among all the cited papers: the rewrite names them all, the search keeps the choice
    named = cited if _WHICH_OF.search(text) else chosen
    names = list(dict.fromkeys(short_name(by_id[pid]) for pid in named if pid in by_id))  # two versions, one name
    standalone = _substitute(text, names, ref) if names else _LEAD.sub("", text)
    if names and _bare_reference(text):
        # "And the second one?": the previous question, asked of the papers it now means
        used = _names_of([by_id[pid] for pid in cited if pid in by_id])
        standalone = _asked_again(history, names, used) or standalone
    return Turn(
        question=text, standalone=_capitalize(standalone), follow_up=True, papers=tuple(chosen), names=tuple(names)
    )


def _bare_reference(question: str) -> bool:
    """True for a turn that only continues with a reference: "And the second one?", "What about the other?"."""
    if not _ELLIPSIS.search(question):
        return False
    rest = _ELLIPSIS.sub(" ", question)
    for pattern in (*_REFERRING, _PRONOUN, _PLURAL_PRONOUN):
        rest = pattern.sub(" ", rest)
    return not key_terms(rest)


def _asked_again(history: Sequence[Message], names: Sequence[str], used: Sequence[str]) -> str:
    """The previous question asked of other papers: its reference resolved to them, or the names it used (`used`)
    swapped for theirs, or "Which papers use X?" asked of them; '' when it cannot be."""
    previous = _previous_question(history)
    if not previous:
        return ""
    ref = reference(previous)
    if ref is not None:
        return _substitute(previous, names, ref)
    return _reasked(previous, used, " and ".join(names))


def _reasked(previous: str, used: Sequence[str], name: str) -> str:
    """The previous question asked of `name`: the names it used (`used`) swapped for it, or "Which papers use X?" asked
    of it ("Does <name> use X?"); '' when it is neither."""
    swapped = _swap_names(previous, used, name)
    return swapped if swapped != previous else _asked_of(previous, name)


def _swap_names(question: str, used: Sequence[str], name: str) -> str:
    """The question with each of the names it uses (`used`) replaced by `name`, longest first ("Vision Mamba" before
    "Mamba")."""
    for old in sorted(dict.fromkeys(used), key=len, reverse=True):
        question = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", name, question)
    return question


def _other(history: Sequence[Message], cited: Sequence[str]) -> list[str]:
    """'The other one': the latest paper an earlier answer cited that the last answer did not (after "What does the
    first one get?"), else the last answer's second paper."""
    earlier = [pid for m in reversed(history) if m.role == "assistant" for pid in m.papers if pid not in cited]
    return earlier[:1] or list(cited[1:2]) or list(cited)


def _switch_subject(question: str, history: Sequence[Message], lookup: Any, named: Any) -> Turn | None:
    """"And GroupMamba?" after "What accuracy does MaxViT reach?": the previous question with the other paper's name
    in place of the names it used (those of the papers it was about), or None when the turn is no such switch."""
    match = _SWITCH.match(question)
    if not match:
        return None
    name = match.group("name")
    papers = named(name)
    previous = _previous_question(history)
    if not papers or not previous:
        return None
    cited = list(lookup(last_cited(history))) if lookup else []
    used = _names_of(cited) + [n for n in _NAME.findall(previous) if named(n)]
    # "Which papers report COCO?" then "And GroupMamba?": does that paper report COCO?
    standalone = _reasked(previous, used, name)
    if not standalone:
        return None  # the previous question described its paper without a name: nothing to swap
    return Turn(question=question, standalone=standalone, follow_up=True, papers=(papers[0].id,), names=(name,))


def _asked_of(question: str, name: str) -> str:
    """"Which papers use X?" asked of one paper: "Does <name> use X?" (a plural present verb is the base form;
    "are" becomes "Is", "have" "Has"); '' for any other question, or a verb in the past."""
    match = _WHICH_PAPERS.match(question)
    if not match:
        return ""
    verb, rest = match.group("verb"), match.group("rest")
    lead = {"are": "Is", "were": "Was", "have": "Has", "do": "Does", "did": "Did"}.get(verb.lower())
    if lead:
        return f"{lead} {name} {rest}?"
    if verb.lower().endswith("ed"):
        return ""
    return f"Does {name} {verb} {rest}?"


def _substitute(question: str, names: Sequence[str], ref: _Reference) -> str:
    """The question with its reference replaced by the papers' names ('what does it get' -> 'what does X get')."""
    joined = " and ".join(names)
    text, n = _WHICH_OF.subn(f"which of {joined}", question, count=1)
    if n:
        return _capitalize(_LEAD.sub("", text))
    if ref.positions and ref.other and len(names) > 1:
        # "the first … the other": each reference by its own paper's name
        text = _OTHER.sub(names[-1], _ORDINAL_REF.sub(names[0], text, count=1), count=1)
        return _capitalize(_LEAD.sub("", text))
    for pattern in (_WITH_CODE, *_REFERRING):
        text, n = pattern.subn(lambda match: _coordinated(names, match.group(0)), text, count=1)
        if n:
            return _capitalize(_LEAD.sub("", text))
    possessive = f"{joined}'s"
    for pattern in (_PRONOUN, _PLURAL_PRONOUN):
        match = pattern.search(text)
        if match:
            word = match.group(1).lower()
            value = possessive if word in ("its", "their", "theirs") else joined
            return _capitalize(_LEAD.sub("", text[: match.start()] + value + text[match.end() :]))
    body = _ELLIPSIS.sub("", text).strip(" ,?.!")
    return _capitalize(f"{joined}: {body}?" if body else joined)


def _coordinated(names: Sequence[str], reference: str) -> str:
    """The names standing in for a reference: "either of them" -> "X or Y" (the verb stays singular: "Does X or Y
    report …"), "neither of them" -> "neither X nor Y", else "X and Y"."""
    word = reference.split(maxsplit=1)[0].lower()
    if word == "either":
        return " or ".join(names)
    if word == "neither":
        return "neither " + " nor ".join(names)
    return " and ".join(names)


def _capitalize(text: str) -> str:
    """Text with its first letter upper-case."""
    return text[:1].upper() + text[1:] if text else text


def _clean_model_question(text: str) -> str:
    """The first non-empty line of a model's rewrite, without labels and quotes."""
    for line in text.strip().splitlines():
        line = re.sub(r"^\s*(standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE).strip(" \"'`")
        if line:
            return line
    return ""


def rewrite_with_llm(
    backend: ChatBackend,
    prompts: Prompts,
    turn: Turn,
    history: Sequence[Message],
    max_chars: int,
    deadline: Deadline | None = None,
) -> Turn:
    """A follow-up rewritten by the chat model (the rule's papers are kept); the rule's text when the reply is unusable.

    Only follow-ups reach the model: a self-contained question is never rewritten.
    """
    if not turn.follow_up:
        return turn
    prompt = prompts.condense.format(history=format_history(history), question=turn.question)
    reply = _clean_model_question(backend.complete([Message(role="user", content=prompt)], deadline))
    if not reply or len(reply) > max_chars:
        log.info("condense: model reply unusable (%r); using the rule-based rewrite", reply[:80])
        return turn
    return turn.model_copy(update={"standalone": reply})
