"""Split abstracts into sentences and pack the sentences into token-bounded chunks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

from rag.errors import ModelError
from rag.tokens import count_tokens, llama_index_static_dir, split_by_tokens
from rag.types import Chunk, Paper, normalize_space

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

# Abbreviations common in scientific abstracts, added to NLTK's English Punkt model (which lacks them), so that
# "e.g.", "et al.", "Fig. 3" or "Eq. 2" do not end a sentence; Punkt already knows "vs.", "U.S." and decimals.
SCIENTIFIC_ABBREVIATIONS = frozenset(
    {
        "al", "approx", "ca", "cf", "dist", "e.g", "eq", "eqs", "et", "etc", "fig", "figs", "i.e", "no", "nos", "p.p",
        "ref", "refs", "resp", "sec", "secs", "tab", "tabs", "viz", "vol", "w.r.t",
    }
)  # fmt: skip
_CLOSING = frozenset("”’)]};:,")
_LOWER_WORD = re.compile(r"[a-z]+[\s,;:]")


def _continues_previous(previous: str, text: str, start: int) -> bool:
    """True when the piece of text at start continues the previous sentence rather than starting one: Punkt cut before
    closing punctuation ('words?"; (b) ...'), or after an abbreviation it does not know ("by 1.1p.p. while only…"),
    since no sentence starts with a lower-case word (a name may: "lambda-ECLIPSE achieves…")."""
    first_char = text[start]
    if first_char in "\"'":  # a straight quote closes the previous sentence's quote only if that one is open
        return previous.count(first_char) % 2 == 1
    return first_char in _CLOSING or bool(_LOWER_WORD.match(text, start))


# Punkt is given at most this many characters at a time: on one huge unbroken text its regular expressions run
# for minutes (a 50 MB abstract hit NLTK's regex timeout). Longer text is cut first at the last ". " (else the
# last space) of each window; abstracts are far shorter (loaders refuse abstracts over RAG_MAX_ABSTRACT_CHARS).
PUNKT_WINDOW_CHARS = 20_000


# Not llama-index's SentenceSplitter: it runs an untrained Punkt that splits after "e.g.", "et al." and "Fig.".
@cache
def _sentence_tokenizer() -> PunktSentenceTokenizer:
    """NLTK's trained English Punkt model, read from llama-index-core's bundled copy, with scientific abbreviations."""
    from nltk.tabdata import PunktDecoder  # imported on first use: importing nltk takes most of a second
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    # Read by path (as nltk's load_punkt_params does), so nltk.data.path, global state, is left alone.
    model = llama_index_static_dir("nltk_cache") / "tokenizers" / "punkt_tab" / "english"
    decode, params = PunktDecoder(), PunktParameters()
    try:
        with (model / "collocations.tab").open(encoding="utf-8") as f:
            params.collocations = set(decode.tab2tups(f))
        with (model / "sent_starters.txt").open(encoding="utf-8") as f:
            params.sent_starters = decode.txt2set(f)
        with (model / "abbrev_types.txt").open(encoding="utf-8") as f:
            params.abbrev_types = decode.txt2set(f)
        with (model / "ortho_context.tab").open(encoding="utf-8") as f:
            params.ortho_context = decode.tab2intdict(f)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load NLTK's English punkt_tab model from {model}: {exc}; "
            "reinstall llama-index-core, which bundles it"
        ) from exc
    params.abbrev_types.update(SCIENTIFIC_ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def _windows(text: str, size: int = PUNKT_WINDOW_CHARS) -> Iterator[tuple[int, str]]:
    """(offset, piece) of text in pieces of at most size characters, cut after a '. ' or at a space when possible."""
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind(". ", start, end)
        cut = cut + 1 if cut > start else text.rfind(" ", start, end)
        cut = cut if cut > start else end
        yield start, text[start:cut]
        start = cut + 1 if text[cut] == " " else cut  # the next window starts at a word, not at the space
    yield start, text[start:]


def split_sentences(text: str) -> list[str]:
    """Sentences of text (white space normalized), keeping abbreviations, decimals, versions and URLs intact."""
    text = normalize_space(text)
    spans: list[list[int]] = []
    tokenizer = _sentence_tokenizer()
    for offset, window in _windows(text):
        for start, end in tokenizer.span_tokenize(window):
            start, end = start + offset, end + offset
            if spans and _continues_previous(text[spans[-1][0] : spans[-1][1]], text, start):  # glue it on
                spans[-1][1] = end
            else:
                spans.append([start, end])
    return [text[start:end] for start, end in spans]


def _token_pieces(sentence: str, budget_tokens: int) -> list[tuple[str, int]]:
    """A sentence longer than the budget cut into token windows that each fit it, with their token counts."""
    for size in range(budget_tokens, 0, -1):
        # Stripping a piece's leading space can re-tokenize it one token longer: retry with smaller windows.
        pieces = [piece.strip() for piece in split_by_tokens(sentence, size)]
        counted = [(piece, count_tokens(piece)) for piece in pieces if piece]
        if all(n <= budget_tokens for _, n in counted):
            return counted
    return counted


def _units(text: str, budget_tokens: int) -> list[tuple[str, int]]:
    """Sentences of text with their token counts, over-long sentences already cut to fit the budget."""
    units: list[tuple[str, int]] = []
    for sentence in split_sentences(text):
        n = count_tokens(sentence)
        if n <= budget_tokens:
            units.append((sentence, n))
        else:
            units.extend(_token_pieces(sentence, budget_tokens))
    return units


def _cost(units: list[tuple[str, int]]) -> int:
    """Tokens of the units joined by spaces, counting each joining space as one token (an upper bound)."""
    return sum(n for _, n in units) + max(len(units) - 1, 0)


def _pack(units: list[tuple[str, int]], budget_tokens: int, overlap_sentences: int) -> list[list[str]]:
    """Group consecutive units into windows within the budget, repeating up to overlap_sentences units."""
    windows: list[list[str]] = []
    start = 0
    while start < len(units):
        end = start + 1  # every unit fits the budget on its own
        while end < len(units) and _cost(units[start : end + 1]) <= budget_tokens:
            end += 1
        windows.append([text for text, _ in units[start:end]])
        if end == len(units):
            break
        # Repeat the last sentences of this window, as many as still leave room for the next new sentence;
        # never the whole window, so every window adds at least one new sentence.
        overlap = min(overlap_sentences, end - start - 1)
        while overlap > 0 and _cost(units[end - overlap : end + 1]) > budget_tokens:
            overlap -= 1
        start = end - overlap
    return windows


def chunk_paper(paper: Paper, budget_tokens: int, overlap_sentences: int = 1) -> list[Chunk]:
    """Chunks of the abstract on sentence boundaries, each at most budget_tokens; ids '<paper id>#<i>'."""
    if budget_tokens < 1:
        raise ValueError(f"budget_tokens must be at least 1, got {budget_tokens}")
    if overlap_sentences < 0:
        raise ValueError(f"overlap_sentences must be 0 or more, got {overlap_sentences}")
    abstract = normalize_space(paper.abstract)
    if count_tokens(abstract) <= budget_tokens:
        texts = [abstract] if abstract else []
    else:
        windows = _pack(_units(abstract, budget_tokens), budget_tokens, overlap_sentences)
        texts = [" ".join(window) for window in windows]
    return [
        Chunk(id=f"{paper.id}#{i}", paper_id=paper.id, index=i, text=text, n_tokens=count_tokens(text))
        for i, text in enumerate(texts)
    ]
