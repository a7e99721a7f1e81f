"""The lexical index's pruned BM25 search against a brute-force BM25 over the same committed chunks."""

from __future__ import annotations

import itertools
import logging
import math
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from rag import Paper, SearchFilters
from rag.chunking import chunk_paper
from rag.lexical import IndexedPaper, LexicalIndex, tokenize

K1, B, TITLE_REPEATS = 1.2, 0.75, 1
# a Zipf-like vocabulary: a few words in most chunks (the ones pruning skips), many rare ones
WORDS = [f"w{i}x" for i in range(300)]
WEIGHTS = [1 / (i + 1) for i in range(len(WORDS))]


def make_paper(rng: random.Random, i: int) -> Paper:
    """A paper of 5-60 Zipf-drawn words, with a year and sometimes code."""
    words = rng.choices(WORDS, WEIGHTS, k=rng.randint(5, 60))
    return Paper(
        id=f"p{i}",
        title=" ".join(rng.choices(WORDS, WEIGHTS, k=3)),
        abstract=" ".join(words) + ".",
        year=2015 + i % 8,
        code_urls=("https://example.org/c",) if i % 3 == 0 else (),
    )


def brute_force(papers: dict[str, Paper], query: str) -> list[tuple[str, str, float]]:
    """Lucene BM25 computed directly over every live chunk: (chunk id, paper id, score), best first."""
    docs = {}
    for p in papers.values():
        for c in chunk_paper(p, 512, 1):
            docs[c.id] = (p.id, Counter(tokenize(" ".join([p.title] * TITLE_REPEATS + [c.text]))))
    avgdl = sum(sum(tf.values()) for _, tf in docs.values()) / len(docs)
    scores: dict[str, float] = {}
    for term in dict.fromkeys(tokenize(query)):
        df = sum(term in tf for _, tf in docs.values())
        if not df:
            continue
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        for cid, (_, tf) in docs.items():
            if term in tf:
                dl = sum(tf.values())
                scores[cid] = scores.get(cid, 0.0) + idf * tf[term] / (tf[term] + K1 * (1 - B + B * dl / avgdl))
    return [(cid, docs[cid][0], score) for cid, score in sorted(scores.items(), key=lambda kv: -kv[1])]


@pytest.mark.parametrize(("seed", "drop_every"), [(1, 11), (2, 11), (1, 400)])
def test_pruned_search_returns_the_brute_force_top_n(tmp_path: Path, seed: int, drop_every: int) -> None:
    rng = random.Random(seed)
    index = LexicalIndex(tmp_path / "lex.sqlite", TITLE_REPEATS)
    papers = {p.id: p for p in (make_paper(rng, i) for i in range(400))}
    batch: list[Paper] = []
    for p in papers.values():  # small batches: many segments, merged into higher levels
        batch.append(p)
        if len(batch) == 7:
            index.commit([], [IndexedPaper(q, chunk_paper(q, 512, 1), "h") for q in batch])
            batch = []
    index.commit([], [IndexedPaper(q, chunk_paper(q, 512, 1), "h") for q in batch])
    # deleted rows stay in the postings and must not count (one deletion: looked up in the lists; many: masked)
    dropped = [f"p{i}" for i in range(0, 400, drop_every)]
    queries = [" ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(2, 12))) for _ in range(40)]
    for query in queries:  # statistics a searcher keeps must not outlive the deletion
        index.search(query, 10, None, K1, B)
    index.commit(dropped, [])
    for pid in dropped:
        del papers[pid]
    checks = [(None, set(papers)), (SearchFilters(has_code=True), {i for i, p in papers.items() if p.code_urls})]
    checks.append((SearchFilters(year_min=2019), {i for i, p in papers.items() if (p.year or 0) >= 2019}))
    for query in queries:
        ranked = brute_force(papers, query)
        for filters, keep in checks:
            for n in (1, 10, 50):
                got = index.search(query, n, filters, K1, B)
                want = [row for row in ranked if row[1] in keep][:n]
                assert len(got) == len(want)
                # the same scores in the same order; which of two exactly tied chunks comes first may differ
                assert [s for _, _, s in got] == pytest.approx([s for _, _, s in want], rel=1e-4)
                wanted = {cid: score for cid, _, score in want}
                for cid, _, score in got:
                    assert cid not in wanted or math.isclose(wanted[cid], score, rel_tol=1e-4)
                assert all(pid in keep for _, pid, _ in got)


def test_compact_rewrites_the_file_and_keeps_every_result(tmp_path: Path) -> None:
    rng = random.Random(3)
    index = LexicalIndex(tmp_path / "lex.sqlite", TITLE_REPEATS)
    papers = [make_paper(rng, i) for i in range(300)]
    for start in range(0, len(papers), 5):  # many merges: segments freed and rewritten
        index.commit([], [IndexedPaper(p, chunk_paper(p, 512, 1), "h") for p in papers[start : start + 5]])
    index.commit([f"p{i}" for i in range(0, 300, 7)], [])
    index.commit([], [IndexedPaper(p, chunk_paper(p, 512, 1), "h") for p in papers[:15:7]])  # re-added after the drop
    queries = [" ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(2, 10))) for _ in range(20)]
    before = [index.search(q, 20, None, K1, B) for q in queries]
    scattered = _jumps(tmp_path / "lex.sqlite")
    assert index.compact()
    assert _jumps(tmp_path / "lex.sqlite") < scattered / 4, scattered
    assert [index.search(q, 20, None, K1, B) for q in queries] == before
    assert LexicalIndex(tmp_path / "lex.sqlite", TITLE_REPEATS).search(queries[0], 20, None, K1, B) == before[0]


def _jumps(path: Path) -> int:
    """Pages of the postings table, in key order, that do not follow the previous one in the file."""
    with sqlite3.connect(path) as db:
        pages = [n for (n,) in db.execute("SELECT pageno FROM dbstat WHERE name = 'postings'")]
    return sum(b != a + 1 for a, b in itertools.pairwise(pages))


def test_a_failed_compaction_is_logged_and_leaves_the_index_usable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class FullDisk:
        """The index's connection, with VACUUM failing as it does when the disk fills up."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql == "VACUUM":
                raise sqlite3.OperationalError("database or disk is full")
            return self.db.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self.db, name)

    rng = random.Random(4)
    index = LexicalIndex(tmp_path / "lex.sqlite", TITLE_REPEATS)
    papers = [make_paper(rng, i) for i in range(40)]
    index.commit([], [IndexedPaper(p, chunk_paper(p, 512, 1), "h") for p in papers])
    before = index.search("w1x w5x w9x", 10, None, K1, B)
    index._db = FullDisk(index._db)  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="rag.lexical"):
        assert not index.compact()
    assert "could not compact the lexical index" in caplog.text and "disk is full" in caplog.text
    assert index.search("w1x w5x w9x", 10, None, K1, B) == before
    more = [make_paper(rng, i) for i in range(40, 45)]
    index.commit([], [IndexedPaper(p, chunk_paper(p, 512, 1), "h") for p in more])  # still writable
    assert index.count() == (45, 45)


def test_compaction_shows_its_progress_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(5)
    index = LexicalIndex(tmp_path / "lex.sqlite", TITLE_REPEATS)
    papers = [make_paper(rng, i) for i in range(200)]
    index.commit([], [IndexedPaper(p, chunk_paper(p, 512, 1), "h") for p in papers])
    assert index.compact()
    assert "compacting" not in capsys.readouterr().err
    assert index.compact(progress=True)
    assert "compacting lex.sqlite" in capsys.readouterr().err


class _Logged:
    """A connection stand-in that logs the statements it runs and passes them on."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.statements = db, []

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        self.statements.append(sql)
        return self.db.execute(sql, *args)


def test_hit_rows_are_read_unmapped_and_see_a_writers_later_commits(tmp_path: Path) -> None:
    """The search maps the file; the hits' scattered rows are read by a second, unmapped connection (a cold page
    cache made each mapped row read cost tens of milliseconds), which sees what another process commits later."""
    rng = random.Random(5)
    path = tmp_path / "lex.sqlite"
    writer, reader = LexicalIndex(path, TITLE_REPEATS), LexicalIndex(path, TITLE_REPEATS)
    first = [make_paper(rng, i) for i in range(20)]
    writer.commit([], [IndexedPaper(p, chunk_paper(p, 512, 1), "h") for p in first])
    hits = reader.search(first[0].abstract, 5, None, K1, B)
    assert hits and reader._db.execute("PRAGMA mmap_size").fetchone()[0] > 0
    searching = _Logged(reader._db)
    reader._db = searching  # type: ignore[assignment]
    ids = [cid for cid, _, _ in hits]
    assert set(reader.records(ids)) == set(ids) and reader.committed(ids) == set(ids)
    assert set(reader.papers([pid for _, pid, _ in hits])) == {pid for _, pid, _ in hits}
    assert not searching.statements  # none of those reads went through the mapped connection
    assert reader._rows_reader().execute("PRAGMA mmap_size").fetchone()[0] == 0
    later = make_paper(rng, 99)
    writer.commit([], [IndexedPaper(later, chunk_paper(later, 512, 1), "h")])
    new_ids = [c.id for c in chunk_paper(later, 512, 1)]
    assert set(reader.records(new_ids)) == set(new_ids) and reader.committed(new_ids) == set(new_ids)
    writer.commit([first[1].id], [])
    gone = [c.id for c in chunk_paper(first[1], 512, 1)]
    assert reader.records(gone) == {} and reader.committed(gone) == set()
    reader._db = searching.db  # type: ignore[assignment]
    reader.close()
    writer.close()
