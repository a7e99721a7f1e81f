"""PaperIndex against a real `chroma run` server: ingest, search, BM25 kept locally, and a clear error when it dies."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import IndexStoreError, Paper, Settings
from rag.embeddings import MiniLMEmbedding
from rag.index import PaperIndex

pytestmark = pytest.mark.chroma_server

CHROMA = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
PAPERS = [
    Paper(id="a1", title="Tidal energy turbines", abstract="Blade pitch control raises output of tidal turbines qq81."),
    Paper(id="a2", title="Bee navigation", abstract="Honeybees use polarized skylight to find their way home."),
    Paper(id="a3", title="Glacier retreat", abstract="Alpine glaciers lost a third of their volume since 1980."),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    if not Path(CHROMA).exists():
        pytest.skip("the `chroma` CLI (chromadb) is not installed in this environment")
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [CHROMA, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"chroma run did not come up: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            time.sleep(0.2)
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


def test_ingest_and_search_through_a_chroma_server(chroma_server, tmp_path: Path) -> None:
    url, proc = chroma_server
    embedder = MiniLMEmbedding()
    settings = Settings(data_dir=tmp_path / "local", chroma_url=url, collection="remote")
    index = PaperIndex(settings, embedder, "remote")
    assert index.sync(PAPERS, progress=False).added == 3
    assert index.sync(PAPERS, progress=False).wrote_nothing
    info = index.info()
    assert (info.chroma, info.papers, info.collections) == (url, 3, ("remote",))
    assert not (tmp_path / "local" / "chroma").exists()  # vectors live on the server, BM25 in the local data dir
    assert (tmp_path / "local" / "lexical" / "remote.sqlite").exists()

    shutil.rmtree(tmp_path / "local" / "lexical")  # a second machine's view: rebuilt from the server's chunks
    reader = PaperIndex(settings.model_copy(update={"retrieval": "bm25"}), embedder, "remote")
    assert [h.paper.id for h in reader.search("qq81", k=3)] == ["a1"]
    assert index.search("how do insects navigate", k=1)[0].paper == PAPERS[1]

    proc.kill()
    proc.wait(timeout=10)
    # a refused connection fails at once (no hang) with a one-line error that names the server
    with pytest.raises(IndexStoreError, match=rf"Chroma at {url} \(is the `chroma run` server up"):
        index.search("glaciers", k=2)
    with pytest.raises(IndexStoreError, match=f"Chroma at {url}"):
        index.sync([*PAPERS, Paper(id="a4", title="New", abstract="Fresh paper.")], progress=False)
    with pytest.raises(IndexStoreError, match="cannot open the Chroma store"):
        PaperIndex(settings, embedder, "remote")


class BlackHoleProxy:
    """A real TCP proxy to the Chroma server that, once `hang` is set, accepts and reads but never answers."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.hang = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.hang.is_set():
            while client.recv(65536):  # accept and read, never answer
                pass
            return
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.hang.is_set():
                    dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def test_a_hung_chroma_server_fails_within_the_request_timeout(chroma_server, tmp_path: Path) -> None:
    url, _ = chroma_server
    proxy = BlackHoleProxy(int(url.rsplit(":", 1)[1]))
    try:
        proxied = f"http://127.0.0.1:{proxy.port}"
        settings = Settings(data_dir=tmp_path / "local", chroma_url=proxied, chroma_timeout=1.0)
        index = PaperIndex(settings, MiniLMEmbedding(), "hung")
        index.sync(PAPERS, progress=False)
        assert index.search("tidal turbines", k=1)[0].paper.id == "a1"

        proxy.hang.set()  # the server now accepts connections and requests and never answers
        started = time.monotonic()
        with pytest.raises(IndexStoreError, match=r"no answer within 1s, RAG_CHROMA_TIMEOUT"):
            index.search("glaciers", k=2)
        assert time.monotonic() - started < 4
        started = time.monotonic()
        with pytest.raises(IndexStoreError, match=rf"Chroma server at {proxied} did not answer within 1s"):
            PaperIndex(settings, MiniLMEmbedding(), "hung")
        assert time.monotonic() - started < 3
    finally:
        proxy.close()


def test_server_mode_readers_follow_one_writer(chroma_server, tmp_path: Path) -> None:
    """One `rag ingest` writes through the server while two readers (this process and a `rag search` process)
    answer; readers share the data dir and pick up each batch without re-reading the collection."""
    import json
    import os
    import sqlite3
    import subprocess

    from test_ingest_crash import RAG, token, write_corpus

    url, _ = chroma_server
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus, 0, 200)
    data = tmp_path / "shared"
    env = {**os.environ, "RAG_DATA_DIR": str(data), "RAG_CHROMA_URL": url, "RAG_COLLECTION": "served",
           "RAG_INGEST_BATCH_SIZE": "20", "RAG_RETRIEVAL": "bm25"}  # fmt: skip
    settings = Settings(data_dir=data, chroma_url=url, collection="served", retrieval="bm25")
    writer = subprocess.Popen([*RAG, "ingest", str(corpus), "--json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip

    def committed() -> int:
        try:
            with sqlite3.connect(data / "lexical" / "served.sqlite", timeout=5) as db:
                return db.execute("SELECT count(*) FROM papers").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    deadline = time.monotonic() + 120
    while committed() < 20:
        assert writer.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    reader = PaperIndex(settings, MiniLMEmbedding(), "served")
    other = subprocess.run([*RAG, "search", token(5), "--json", "-k", "1"], env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert other.returncode == 0, other.stderr[-2000:]
    assert json.loads(other.stdout)[0]["paper"]["id"] == "g5"
    counts = []
    while writer.poll() is None:
        counts.append(committed())
        assert [h.paper.id for h in reader.search(token(2), k=1)] == ["g2"]
        time.sleep(0.2)
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err[-2000:]
    assert json.loads(out)["added"] == 200
    assert [h.paper.id for h in reader.search(token(199), k=1)] == ["g199"]  # the last batch, seen incrementally
    assert reader.info().papers == 200 and reader.store.count() == 200
