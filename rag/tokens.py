"""Token counting with tiktoken cl100k_base, loaded offline from the cache llama-index-core ships."""

from __future__ import annotations

import os
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import tiktoken

from rag.errors import ModelError

ENCODING_NAME = "cl100k_base"


def llama_index_static_dir(name: str) -> Path:
    """A data folder llama-index-core ships for offline use (`tiktoken_cache`, `nltk_cache`)."""
    spec = find_spec("llama_index.core")
    if spec is None or spec.origin is None:
        raise ModelError(f"llama-index-core is not installed; it ships the offline {name} data (pip install .)")
    return Path(spec.origin).parent / "_static" / name


@cache
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, read from the bundled cache unless TIKTOKEN_CACHE_DIR is already set."""
    # setdefault: a user's own TIKTOKEN_CACHE_DIR wins; otherwise tiktoken would try to download the file.
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(llama_index_static_dir("tiktoken_cache")))
    try:
        return tiktoken.get_encoding(ENCODING_NAME)
    except Exception as exc:
        raise ModelError(
            f"cannot load the tiktoken encoding {ENCODING_NAME} from TIKTOKEN_CACHE_DIR="
            f"{os.environ['TIKTOKEN_CACHE_DIR']}: {exc}; unset TIKTOKEN_CACHE_DIR to use the copy "
            "bundled with llama-index-core"
        ) from exc


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in text (special-token strings are counted as plain text)."""
    return len(encoding().encode(text, disallowed_special=()))


def _decodable_end(ids: list[int], start: int, end: int) -> int:
    """The largest cut <= end whose tokens from start decode to whole UTF-8 characters (at least start + 1)."""
    enc = encoding()
    while end > start + 1:
        try:
            enc.decode_bytes(ids[start:end]).decode("utf-8")
        except UnicodeDecodeError:
            end -= 1  # the cut falls inside a multi-byte character that spans tokens
        else:
            return end
    return end


def truncate_to_tokens(text: str, n: int) -> str:
    """The longest prefix of text that is at most n tokens, cut on a token (and character) boundary."""
    if n <= 0:
        return ""
    ids = encoding().encode(text, disallowed_special=())
    if len(ids) <= n:
        return text
    return encoding().decode(ids[: _decodable_end(ids, 0, n)])


def split_by_tokens(text: str, n: int) -> list[str]:
    """Consecutive pieces of text of at most n tokens each, cut on token (and character) boundaries."""
    if n <= 0:
        raise ValueError(f"n must be at least 1, got {n}")
    ids = encoding().encode(text, disallowed_special=())
    pieces: list[str] = []
    start = 0
    while start < len(ids):
        end = _decodable_end(ids, start, min(start + n, len(ids)))
        pieces.append(encoding().decode(ids[start:end]))
        start = end
    return pieces
