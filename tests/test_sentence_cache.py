"""SentenceCache keeps a bounded number of papers in memory (least recently used dropped), with a real embedder."""

from __future__ import annotations

from pathlib import Path

from rag.embeddings import make_embedder
from rag.loaders import DEFAULT_CORPUS, load_papers
from rag.sentence_cache import SentenceCache
from rag.settings import Settings


def test_memory_is_bounded_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    papers = load_papers([DEFAULT_CORPUS]).papers[:4]
    cache = SentenceCache(make_embedder(Settings.load()), tmp_path / "cache", max_papers=2)
    first = cache.get(papers[:3])  # more papers in one call than the memory holds: all still returned
    assert [ps.paper for ps in first] == papers[:3]
    assert len(cache._memory) == 2
    cache.get([papers[1]])  # papers[1] is now the most recently used
    cache.get([papers[3]])
    assert [key[0] for key in cache._memory] == [papers[1].id, papers[3].id]
    again = cache.get([papers[0]])[0]  # dropped from memory, read back from disk: the same vectors
    assert again.sentences == first[0].sentences
    assert (again.vectors == first[0].vectors).all()
