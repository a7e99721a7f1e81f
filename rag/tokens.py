"""Token counting with tiktoken cl100k_base, loaded offline from the cache llama-index-core ships."""

from __future__ import annotations

import base64
import hashlib
import os
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import tiktoken

from rag.errors import ModelError

ENCODING_NAME = "cl100k_base"
# Where tiktoken downloads cl100k_base from; llama-index-core ships the file under the sha1 of this URL.
_BPE_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_BPE_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's split pattern and special tokens, as tiktoken_ext.openai_public defines them (tiktoken 0.14).
_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def llama_index_static_dir(name: str) -> Path:
    """A data folder llama-index-core ships for offline use (`tiktoken_cache`, `nltk_cache`)."""
    spec = find_spec("llama_index.core")
    if spec is None or spec.origin is None:
        raise ModelError(f"llama-index-core is not installed; it ships the offline {name} data (pip install .)")
    return Path(spec.origin).parent / "_static" / name


def _encoding_from_file(path: Path) -> tiktoken.Encoding:
    """cl100k_base built from a local .tiktoken file (checked against tiktoken's published sha256)."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != _BPE_SHA256:
        raise ValueError(f"{path} is not the cl100k_base file (sha256 mismatch)")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding(ENCODING_NAME, pat_str=_PAT_STR, mergeable_ranks=ranks, special_tokens=_SPECIAL_TOKENS)


@cache
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding: from TIKTOKEN_CACHE_DIR when the user set it, else llama-index-core's copy.

    The bundled copy is read directly, without changing the environment, so tiktoken never tries to download it.
    """
    user_cache = os.environ.get("TIKTOKEN_CACHE_DIR")
    try:
        if user_cache:
            return tiktoken.get_encoding(ENCODING_NAME)
        bundled = llama_index_static_dir("tiktoken_cache") / hashlib.sha1(_BPE_URL.encode()).hexdigest()
        return _encoding_from_file(bundled)
    except ModelError:
        raise
    except Exception as exc:  # tiktoken raises bare Exceptions and requests errors when it cannot find the file
        where = f"TIKTOKEN_CACHE_DIR={user_cache}" if user_cache else "the copy bundled with llama-index-core"
        fix = (
            "unset TIKTOKEN_CACHE_DIR to use the copy bundled with llama-index-core"
            if user_cache
            else "reinstall llama-index-core (it bundles the file) or set TIKTOKEN_CACHE_DIR to a folder holding it"
        )
        raise ModelError(f"cannot load the tiktoken encoding {ENCODING_NAME} from {where}: {exc}; {fix}") from exc


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
