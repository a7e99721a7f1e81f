"""SentenceCache keeps a bounded number of papers in memory (least recently used dropped), with a real embedder."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from rag.chunking import chunk_paper
from rag.embeddings import make_embedder
from rag.loaders import DEFAULT_CORPUS, load_papers
from rag.sentence_cache import SentenceCache
from rag.settings import Settings


def test_memory_is_bounded_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    papers = load_papers([DEFAULT_CORPUS]).papers[:4]
    settings = Settings.load()
    chunking = (settings.chunk_tokens, settings.chunk_overlap_sentences)  # late pooling: piece states too
    cache = SentenceCache(make_embedder(settings), tmp_path / "cache", max_papers=2, chunking=chunking)
    first = cache.get(papers[:3])  # more papers in one call than the memory holds: all still returned
    assert [ps.paper for ps in first] == papers[:3]
    assert len(cache._memory) == 2
    cache.get([papers[1]])  # papers[1] is now the most recently used
    cache.get([papers[3]])
    assert [key[0] for key in cache._memory] == [papers[1].id, papers[3].id]
    again = cache.get([papers[0]])[0]  # dropped from memory, read back from disk: the same vectors and piece states
    assert again.sentences == first[0].sentences
    assert (again.vectors == first[0].vectors).all()
    assert len(again.states) > 50 and (again.states == first[0].states).all()
    assert (again.piece_states == first[0].piece_states).all()
    assert (again.state_rows == first[0].state_rows).all()


def test_piece_states_are_kept_per_sentence_and_an_older_cache_is_pooled_again(tmp_path: Path) -> None:
    """Each sentence owns its own content pieces' rows, in order (the title's first); a cache file written before the
    rows were kept (states, no rows) is not trusted: the paper is pooled again, and the file rewritten."""
    from rag.embeddings import content_pieces

    paper = load_papers([DEFAULT_CORPUS]).papers[0]
    settings = Settings.load()
    embedder = make_embedder(settings)
    chunking = (settings.chunk_tokens, settings.chunk_overlap_sentences)
    entry = SentenceCache(embedder, tmp_path / "cache", chunking=chunking).get([paper])[0]
    assert len(entry.state_rows) == len(entry.sentences) + 1 and entry.state_rows.sum() == len(entry.states)
    tokenizer = embedder._tokenizer
    alone = [int(content_pieces(tokenizer.encode(t, add_special_tokens=False).tokens).sum())
             for t in (paper.title, *entry.sentences)]  # fmt: skip
    assert entry.state_rows.tolist() == alone  # a sentence's pieces in context are its pieces alone
    slices = entry.sentence_pieces()
    assert slices[0].start == alone[0] and all(a.stop == b.start for a, b in itertools.pairwise(slices))

    (path,) = (tmp_path / "cache").rglob("*.npz")
    with np.load(path) as data:
        older = {k: data[k] for k in data.files if k != "state_rows"}
    np.savez(path, **older)
    calls: list[int] = []
    original = embedder.embed_spans
    embedder.embed_spans = lambda *a, **k: calls.append(1) or original(*a, **k)  # type: ignore[method-assign]
    again = SentenceCache(embedder, tmp_path / "cache", chunking=chunking).get([paper])[0]
    assert calls and (again.state_rows == entry.state_rows).all()
    with np.load(path) as data:
        assert "state_rows" in data.files


def _long_abstract_papers() -> list:
    """Digest papers whose chunk is longer than MiniLM's 256-token window (most are), and one long enough for two
    overlapping chunks (two abstracts in one)."""
    from rag.embeddings import MiniLMEmbedding

    papers = load_papers([DEFAULT_CORPUS]).papers
    embedder = MiniLMEmbedding()
    longer = [p for p in papers if embedder.count_tokens(f"{p.title}\n{p.abstract}") >= 254][:3]
    assert len(longer) == 3
    joined = " ".join(p.abstract for p in papers[10:13])
    return [*longer, papers[10].model_copy(update={"id": "joined", "abstract": joined})]


def test_ingest_keeps_pooled_sentence_vectors_equal_to_pooling_at_question_time(tmp_path: Path) -> None:
    """Vectors ingest pools from its chunk passes (plus the tails past the window) are the ones a question would pool
    itself; a second cache reads them from disk without embedding anything."""
    from rag import Assistant

    papers = _long_abstract_papers()
    ingested = Settings.load(data_dir=tmp_path / "ingested")
    assistant = Assistant(ingested)
    assistant.index.sync(papers, progress=False)
    on_disk = SentenceCache.for_settings(assistant.embedder, ingested)
    files = sorted(on_disk.cache_dir.glob("*.npz"))
    assert len(files) == len(papers)
    assert len(chunk_paper(papers[-1], ingested.chunk_tokens, ingested.chunk_overlap_sentences)) >= 2

    calls: list[int] = []
    original = assistant.embedder.embed_spans
    assistant.embedder.embed_spans = lambda *a, **k: calls.append(1) or original(*a, **k)  # type: ignore[method-assign]
    read = on_disk.get(papers)
    assert not calls  # nothing left to embed at the first question
    assistant.embedder.embed_spans = original  # type: ignore[method-assign]

    fresh = SentenceCache.for_settings(assistant.embedder, Settings.load(data_dir=tmp_path / "question-time"))
    pooled = fresh.get(papers)
    for a, b in zip(read, pooled, strict=True):
        assert a.sentences == b.sentences
        assert not np.isnan(a.vectors).any()
        assert np.allclose(np.linalg.norm(a.vectors, axis=1), 1.0, atol=1e-5)  # the tails were filled too
        assert np.allclose(a.vectors, b.vectors, atol=1e-5)
        # the content pieces of every sentence, the tails' too, int8 within a rounding step of the float states
        assert a.states.shape == b.states.shape and np.abs(a.states.astype(int) - b.states).max() <= 1
        pieces = sum(assistant.embedder.count_tokens(t) for t in (a.paper.title, *a.sentences))
        assert 0.4 * pieces < len(a.states) < pieces
        assert np.allclose(np.linalg.norm(a.piece_states, axis=1), 1.0, atol=0.02)


def test_ingest_without_sentence_vectors_writes_none(tmp_path: Path) -> None:
    """`sentence_vectors_at_ingest` off: ingest embeds only the chunks; the first question pools the sentences."""
    from rag import Assistant

    settings = Settings.load(data_dir=tmp_path, sentence_vectors_at_ingest=False)
    assistant = Assistant(settings)
    assistant.index.sync(_long_abstract_papers()[:1], progress=False)
    cache = SentenceCache.for_settings(assistant.embedder, settings)
    assert cache.cache_dir is not None and not list(cache.cache_dir.glob("*.npz"))
