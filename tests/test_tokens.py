import os
import subprocess
import sys

import pytest

from rag.tokens import count_tokens, encoding, split_by_tokens, truncate_to_tokens

# Runs in a fresh interpreter with every socket connection refused, so any download attempt fails loudly.
NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
"""


def run_offline(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK + code], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def env_without_tiktoken_cache() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}


def test_encoding_loads_offline_from_the_llama_index_cache_without_changing_the_environment():
    result = run_offline(
        "import os\n"
        "before = dict(os.environ)\n"
        "from rag.tokens import count_tokens, encoding\n"
        "print(encoding().name, count_tokens('hello world'), dict(os.environ) == before)\n",
        env_without_tiktoken_cache(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cl100k_base", "2", "True"]


def test_the_bundled_encoding_is_tiktokens_own(tmp_path):
    """Built from the bundled file, cl100k_base encodes exactly as tiktoken's loader builds it."""
    from rag.tokens import llama_index_static_dir

    env = env_without_tiktoken_cache() | {"TIKTOKEN_CACHE_DIR": str(llama_index_static_dir("tiktoken_cache"))}
    text = "Scaling laws 86.5% top-1 模型压缩 🙂 <|endoftext|> e.g. \n\n  x"
    code = f"from rag.tokens import encoding\nprint(encoding().encode({text!r}, allowed_special='all'))\n"
    official = run_offline(code, env)
    bundled = run_offline(code, env_without_tiktoken_cache())
    assert official.returncode == 0 and bundled.returncode == 0, official.stderr + bundled.stderr
    assert official.stdout == bundled.stdout


def test_a_users_tiktoken_cache_dir_wins_and_a_missing_encoding_is_a_clear_error(tmp_path):
    env = env_without_tiktoken_cache() | {"TIKTOKEN_CACHE_DIR": str(tmp_path)}
    result = run_offline(
        "from rag.errors import ModelError\n"
        "from rag.tokens import encoding\n"
        "try:\n"
        "    encoding()\n"
        "except ModelError as exc:\n"
        "    print(exc)\n",
        env,
    )
    assert result.returncode == 0, result.stderr
    assert f"cannot load the tiktoken encoding cl100k_base from TIKTOKEN_CACHE_DIR={tmp_path}" in result.stdout
    assert "unset TIKTOKEN_CACHE_DIR" in result.stdout


def test_encoding_is_cached():
    assert encoding() is encoding()


def test_count_tokens_counts_special_token_text_as_plain_text():
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1


@pytest.mark.parametrize("n", [1, 3, 10])
def test_truncate_to_tokens_returns_a_prefix_within_the_budget(n):
    text = "Scaling laws for autoregressive generative modeling hold across image, video and text domains."
    cut = truncate_to_tokens(text, n)
    assert text.startswith(cut)
    assert 0 < count_tokens(cut) <= n


def test_truncate_to_tokens_keeps_short_text_and_handles_zero():
    assert truncate_to_tokens("short text", 100) == "short text"
    assert truncate_to_tokens("short text", 0) == ""


def test_truncation_never_splits_a_multibyte_character():
    text = "模型压缩 🙂🙂🙂 λ-ECLIPSE Müller " * 5
    for n in range(1, 30):
        cut = truncate_to_tokens(text, n)
        assert "\ufffd" not in cut
        assert text.startswith(cut)


def test_split_by_tokens_covers_the_text_in_pieces_within_the_budget():
    text = "模型压缩 🙂 Efficient inference at unprecedented scale. " * 20
    pieces = split_by_tokens(text, 7)
    assert "".join(pieces) == text
    assert all(count_tokens(p) <= 7 for p in pieces)
    assert len(pieces) > 10
    with pytest.raises(ValueError, match="at least 1"):
        split_by_tokens(text, 0)
