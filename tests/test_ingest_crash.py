"""Durable ingest and one writer per collection, with real `rag ingest` processes on a real embedded Chroma.

A SIGKILL or SIGTERM mid-way keeps every finished batch (SIGTERM stops like Ctrl-C, between Chroma calls) and the
re-run completes the collection exactly; two ingests into one
collection queue (the second says it waits, with the first's pid) while searches keep answering.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import Settings
from rag.embeddings import MiniLMEmbedding
from rag.index import PaperIndex
from rag.store import STAMP_KEY

REPO = Path(__file__).resolve().parents[1]
RAG = [sys.executable, "-m", "rag.cli"] if not (Path(sys.executable).parent / "rag").exists() else [
    str(Path(sys.executable).parent / "rag")
]
WORDS = [
    *("protein", "cell", "gene", "tumor", "immune", "receptor", "signal", "pathway", "mouse", "patient", "cohort"),
    *("trial", "dose", "risk", "blood", "brain", "neuron", "memory", "sleep", "diet", "insulin", "glucose", "liver"),
]


def token(i: int) -> str:
    """A made-up word only paper i holds (letters only, so stemming leaves it whole)."""
    letters = "bcdfghjklmnpqrstvwxz"
    word = ""
    for _ in range(4):
        i, r = divmod(i, len(letters))
        word += letters[r]
    return "qy" + word


def write_corpus(path: Path, start: int, n: int) -> None:
    with path.open("w") as f:
        for i in range(start, start + n):
            words = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(12))
            abstract = f"We studied {words} and {token(i)} in {i % 97 + 3} subjects."
            f.write(json.dumps({"id": f"g{i}", "title": f"Study {token(i)} of {WORDS[i % len(WORDS)]}",
                                "text": abstract}) + "\n")  # fmt: skip


def env_for(data: Path, batch: int) -> dict[str, str]:
    return {**os.environ, "RAG_DATA_DIR": str(data), "RAG_COLLECTION": "crash", "RAG_INGEST_BATCH_SIZE": str(batch)}


def committed_papers(data: Path) -> int:
    db = data / "lexical" / "crash.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM papers").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def check_consistent(data: Path, n: int, sample: list[int]) -> None:
    """Exactly n papers and n chunks on both sides, Chroma stamped with the lexical stamp, each sample found."""
    settings = Settings(data_dir=data, collection="crash")
    index = PaperIndex(settings, MiniLMEmbedding(), "crash")
    lexical = PaperIndex(settings.model_copy(update={"retrieval": "bm25"}), index.embedder, "crash")
    info = index.info()
    assert (info.papers, info.chunks, index.lexical().count()) == (n, n, (n, n))
    assert index.store.meta()[STAMP_KEY] == index.lexical().stamp()
    assert len({p.id for p in index.papers()}) == n
    for i in sample:
        assert [h.paper.id for h in lexical.search(token(i), k=2)] == [f"g{i}"]  # the one paper holding the word
        assert f"g{i}" in [h.paper.id for h in index.search(f"{token(i)} study", k=10)]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 130)])
def test_a_stopped_ingest_keeps_finished_batches_and_the_rerun_completes(tmp_path: Path, sig: int, code: int) -> None:
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus, 0, 400)
    data = tmp_path / "data"
    cmd = [*RAG, "ingest", str(corpus), "--json"]
    proc = subprocess.Popen(cmd, env=env_for(data, 25), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while committed_papers(data) < 75:  # at least three batches committed
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "the ingest made no progress"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()[-2000:]
    if sig == signal.SIGTERM:  # stopped like Ctrl-C once the Chroma call in flight returned, not killed mid-flush
        assert "interrupted" in err.decode()
    kept = committed_papers(data)
    assert 75 <= kept < 400 and kept % 25 == 0  # whole batches only

    rerun = subprocess.run(cmd, env=env_for(data, 25), cwd=REPO, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == kept and summary["added"] == 400 - kept  # only what was missing is embedded
    check_consistent(data, 400, [0, 177, 399])


def test_two_ingests_queue_and_searches_keep_answering(tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_corpus(first, 0, 400)
    write_corpus(second, 400, 25)
    data = tmp_path / "data"
    env = env_for(data, 25)
    reader = PaperIndex(Settings(data_dir=data, collection="crash", retrieval="bm25"), MiniLMEmbedding(), "crash")
    a = subprocess.Popen([*RAG, "ingest", str(first), "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while committed_papers(data) < 25:
        assert a.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    b = subprocess.Popen([*RAG, "ingest", str(second), "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen = []
    while a.poll() is None:  # a reader in this process searches while the first ingest writes
        seen.append(committed_papers(data))
        hits = reader.search(token(3), k=1)
        assert [h.paper.id for h in hits] == ["g3"]
        time.sleep(0.2)
    assert len(set(seen)) >= 2, "the first ingest ended too soon to search during it"
    out_a, err_a = a.communicate(timeout=180)
    out_b, err_b = b.communicate(timeout=180)
    assert a.returncode == 0 and b.returncode == 0, err_a[-2000:] + err_b[-2000:]
    assert f"waiting for another ingest to finish (pid {a.pid}" in err_b
    assert json.loads(out_a)["added"] == 400 and json.loads(out_b)["added"] == 25
    assert [h.paper.id for h in reader.search(token(410), k=1)] == ["g410"]  # the reader sees the later batches
    check_consistent(data, 425, [3, 410])
