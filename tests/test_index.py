"""PaperIndex on a real embedded Chroma in tmp_path with the real MiniLM embedder: ingest, search, filters."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from rag import IndexStoreError, ModelError, Paper, QuestionError, SearchFilters, Settings
from rag.chunking import chunk_paper
from rag.embeddings import MiniLMEmbedding, make_embedder
from rag.index import PaperIndex

REPO = Path(__file__).resolve().parents[1]

LEXICAL = Paper(
    id="lex",
    title="Sourdough starter maintenance",
    abstract="We report feeding schedules for the starter culture xq7vz9 kept at room temperature for a year.",
    source="kitchen.jsonl",
    year=2019,
)
SEMANTIC = Paper(
    id="sem",
    title="Canine scent detection in diabetes",
    abstract=(
        "Trained canines alerted their owners to low blood glucose episodes. Alerts preceded meter readings "
        "by several minutes in most of the recorded nights."
    ),
    url="https://example.org/sem",
    code_urls=("https://github.com/example/sem",),
    source="medical.jsonl",
    year=2021,
    authors=("Ann Smith", "Bo Li"),
)
OTHERS = [
    Paper(
        id="p-graph",
        title="Graph neural networks for molecule property prediction",
        abstract="Message passing networks predict solubility and toxicity of small molecules from their graphs.",
        code_urls=("https://github.com/example/gnn",),
        source="ml.jsonl",
        year=2022,
    ),
    Paper(
        id="p-solar",
        title="Perovskite solar cell stability",
        abstract="Encapsulation extends the operating life of perovskite photovoltaic cells under humid conditions.",
        source="physics.jsonl",
        year=2020,
    ),
    Paper(
        id="p-rome",
        title="Trade routes of the late Roman empire",
        abstract="Amphora finds trace olive oil shipments across the Mediterranean in the fourth century.",
        source="history.jsonl",
    ),
    Paper(
        id="p-llm",
        title="Instruction tuning of language models",
        abstract="Fine-tuning a language model on instructions improves zero-shot answers on unseen tasks.",
        code_urls=("https://github.com/example/it",),
        source="ml.jsonl",
        year=2023,
    ),
]
PAPERS = [LEXICAL, SEMANTIC, *OTHERS]
SEMANTIC_QUERY = "dogs sniffing out hypoglycemia"  # shares no word stem with the SEMANTIC paper


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedding:
    return MiniLMEmbedding()


def make_index(tmp_path: Path, embedder: MiniLMEmbedding, collection: str = "papers", **overrides) -> PaperIndex:
    settings = Settings(data_dir=tmp_path / "data", collection=collection, **overrides)
    return PaperIndex(settings, embedder, collection)


@pytest.fixture
def index(tmp_path: Path, embedder: MiniLMEmbedding) -> PaperIndex:
    idx = make_index(tmp_path, embedder)
    idx.sync(PAPERS, progress=False)
    return idx


def ids(hits) -> list[str]:
    return [h.paper.id for h in hits]


def test_ingest_builds_records_that_round_trip(index: PaperIndex) -> None:
    assert index.papers() == sorted(PAPERS, key=lambda p: p.id)
    info = index.info()
    assert (info.collection, info.papers, info.chunks) == ("papers", len(PAPERS), len(PAPERS))
    assert info.embedding_model == "MiniLMEmbedding:" + MiniLMEmbedding().model_name
    assert info.chroma.startswith("embedded:") and info.collections == ("papers",)
    hit = index.search("scent detection of low glucose by canines", k=1)[0]
    assert hit.paper == SEMANTIC and hit.chunk.paper_id == "sem" and hit.chunk.id == "sem#0"
    assert hit.rank == 1 and hit.chunk.text == SEMANTIC.abstract


def test_second_ingest_of_same_input_writes_nothing(index: PaperIndex, tmp_path: Path) -> None:
    before = (index.lexical().stamp(), index.info().chunks, index.store.meta())
    summary = index.sync(PAPERS, progress=False)
    assert summary.wrote_nothing and summary.skipped == len(PAPERS) and summary.chunks_written == 0
    assert (index.lexical().stamp(), index.info().chunks, index.store.meta()) == before


def test_changed_paper_is_replaced(index: PaperIndex, embedder: MiniLMEmbedding) -> None:
    sentence = "Amphora stamps name the estates of the olive growers in Baetica and the ports they sailed from. "
    longer = OTHERS[2].model_copy(update={"abstract": sentence * 40})  # over the chunk budget: several chunks
    summary = index.sync([*PAPERS[:4], longer, PAPERS[5]], progress=False)
    assert (summary.added, summary.updated, summary.skipped) == (0, 1, len(PAPERS) - 1)
    expected = len(chunk_paper(longer, index.settings.chunk_tokens, index.settings.chunk_overlap_sentences))
    info = index.info()
    assert summary.chunks_written == expected > 1 and info.chunks == len(PAPERS) - 1 + expected
    assert info.papers == len(PAPERS)
    assert index.search("Baetica estates olive growers", k=1)[0].chunk.paper_id == "p-rome"
    assert [p for p in index.papers() if p.id == "p-rome"] == [longer]
    bm25 = index.settings.model_copy(update={"retrieval": "bm25"})
    assert PaperIndex(bm25, embedder, "papers").search("fourth century Mediterranean shipments", k=5) == []


def test_prune_deletes_papers_not_in_the_sources(index: PaperIndex, embedder: MiniLMEmbedding) -> None:
    summary = index.sync(PAPERS[2:], prune=True, progress=False)
    assert (summary.deleted, summary.skipped, summary.added) == (2, len(PAPERS) - 2, 0)
    assert [p.id for p in index.papers()] == sorted(p.id for p in PAPERS[2:])
    assert index.info().chunks == len(PAPERS) - 2
    assert "lex" not in ids(index.search("xq7vz9", k=10))
    assert index.sync(PAPERS[2:], progress=False).wrote_nothing


def test_hybrid_finds_what_only_one_retriever_finds(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    hybrid = make_index(tmp_path, embedder)
    hybrid.sync(PAPERS, progress=False)
    dense = make_index(tmp_path, embedder, retrieval="dense")
    bm25 = make_index(tmp_path, embedder, retrieval="bm25")

    assert ids(bm25.search("xq7vz9", k=5)) == ["lex"]  # only the lexical paper holds the token
    assert "sem" not in ids(bm25.search(SEMANTIC_QUERY, k=5))  # no shared stem, so BM25 cannot find it
    assert ids(dense.search(SEMANTIC_QUERY, k=1)) == ["sem"]

    both = hybrid.search(f"xq7vz9 {SEMANTIC_QUERY}", k=3)
    assert {"lex", "sem"} <= set(ids(both))
    by_id = {h.paper.id: h for h in both}
    assert by_id["lex"].bm25_score is not None and by_id["sem"].bm25_score is None
    assert by_id["sem"].dense_score is not None
    assert [h.rank for h in both] == [1, 2, 3] and both[0].score >= both[1].score >= both[2].score


def test_dense_score_is_cosine_similarity(index: PaperIndex, embedder: MiniLMEmbedding) -> None:
    hit = index.search(SEMANTIC_QUERY, k=1)[0]
    query = np.array(embedder.get_query_embedding(SEMANTIC_QUERY))
    passage = np.array(embedder.get_text_embedding(hit.chunk.embed_text(hit.paper.title)))
    assert hit.dense_score == pytest.approx(float(query @ passage), abs=1e-3)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_filters_apply_in_every_mode(tmp_path: Path, embedder: MiniLMEmbedding, mode: str) -> None:
    make_index(tmp_path, embedder).sync(PAPERS, progress=False)
    idx = make_index(tmp_path, embedder, retrieval=mode)
    query = "language model networks molecules glucose starter"
    with_code = idx.search(query, k=10, filters=SearchFilters(has_code=True))
    assert with_code and all(h.paper.code_urls for h in with_code)
    recent = idx.search(query, k=10, filters=SearchFilters(year_min=2021, year_max=2022))
    assert recent and all(2021 <= (h.paper.year or 0) <= 2022 for h in recent)
    ml = idx.search(query, k=10, filters=SearchFilters(source="ml.jsonl"))
    assert ml and {h.paper.source for h in ml} == {"ml.jsonl"}
    assert idx.search(query, k=10, filters=SearchFilters(year_min=2030)) == []


def test_hybrid_rankings_are_the_two_single_rankings(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    """Hybrid runs BM25 in a worker thread beside the dense side: the same two lists, also from concurrent callers."""
    make_index(tmp_path, embedder).sync(PAPERS, progress=False)
    query, recent = "language model networks molecules glucose starter", SearchFilters(year_min=2021)
    dense, bm25 = (make_index(tmp_path, embedder, retrieval=mode) for mode in ("dense", "bm25"))
    expected = [(dense.rankings(query, 10, f)[0], bm25.rankings(query, 10, f)[1]) for f in (None, recent)]
    assert all(d and b for d, b in expected)
    hybrid = make_index(tmp_path, embedder)
    found: list[object] = []
    callers = [
        threading.Thread(target=lambda: found.append([hybrid.rankings(query, 10, f) for f in (None, recent)]))
        for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert found == [expected] * len(callers)


def test_collections_are_isolated(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    alpha = make_index(tmp_path, embedder, collection="alpha")
    beta = make_index(tmp_path, embedder, collection="beta")
    alpha.sync(PAPERS[:2], progress=False)
    beta.sync(PAPERS[2:], progress=False)
    assert set(ids(alpha.search("xq7vz9 solar cells molecules", k=10))) <= {"lex", "sem"}
    assert "lex" not in ids(beta.search("xq7vz9 sourdough starter", k=10))
    assert alpha.info().collections == ("alpha", "beta") and beta.info().papers == len(PAPERS) - 2


def test_bad_queries_and_missing_collection(index: PaperIndex, tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    with pytest.raises(QuestionError, match="empty"):
        index.search("   \n", k=5)
    missing = make_index(tmp_path, embedder, collection="nowhere")
    assert missing.is_empty() and missing.papers() == []
    with pytest.raises(IndexStoreError, match="'nowhere' does not exist"):
        missing.search("anything", k=5)
    for bad in ("x!", "../up", ".hidden"):
        with pytest.raises(IndexStoreError, match=rf"collection name {re.escape(repr(bad))} is not valid"):
            make_index(tmp_path, embedder, collection=bad)
    assert not (tmp_path / "up").exists()
    assert {p.name.split(".")[0] for p in (tmp_path / "data" / "lexical").iterdir()} <= {"papers", "nowhere"}


def test_a_damaged_chroma_segment_is_named_with_what_to_do(index: PaperIndex) -> None:
    # the error embedded Chroma 1.5 raises on every read after a kill tore its vector index (chroma-core/chroma#7678)
    def torn() -> None:
        raise RuntimeError("Error executing plan: Failed to apply logs to the hnsw segment writer")

    with pytest.raises(IndexStoreError, match=r"damaged.*re-ingest into a new collection"):
        index.store._guard("search collection 'papers'", torn)


def test_refuses_a_collection_built_by_another_embedding_model(index: PaperIndex) -> None:
    settings = index.settings.model_copy(update={"embedding": "openai", "embedding_model": "other-embedder"})
    other = PaperIndex(settings, make_embedder(settings), "papers")
    with pytest.raises(IndexStoreError, match="built with embeddings from MiniLMEmbedding"):
        other.search("glucose", k=3)
    with pytest.raises(IndexStoreError, match="other-embedder"):
        other.sync(PAPERS, progress=False)
    assert index.info().chunks == len(PAPERS)


def test_stale_bm25_is_rebuilt_when_another_writer_changes_the_collection(
    index: PaperIndex, tmp_path: Path, embedder: MiniLMEmbedding
) -> None:
    reader = make_index(tmp_path, embedder, retrieval="bm25")
    assert reader.search("xq7vz9", k=5)  # loads the BM25 index into this reader
    newcomer = Paper(id="new", title="Mycology of truffles", abstract="Truffle spores zb44kq spread via boars.")
    make_index(tmp_path, embedder).sync([*PAPERS, newcomer], progress=False)
    assert ids(reader.search("zb44kq", k=5)) == ["new"]
    # a deleted lexical index is rebuilt from Chroma on the next search
    import shutil

    shutil.rmtree(tmp_path / "data" / "lexical")
    assert ids(make_index(tmp_path, embedder, retrieval="bm25").search("zb44kq", k=5)) == ["new"]


def test_index_persists_across_processes(tmp_path: Path) -> None:
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "proc"), "RAG_COLLECTION": "shared"}
    papers = json.dumps([p.model_dump(mode="json") for p in PAPERS])
    ingest = (
        "import json, sys\n"
        "from rag import Paper, Settings\nfrom rag.embeddings import make_embedder\nfrom rag.index import PaperIndex\n"
        "s = Settings.load()\n"
        "papers = [Paper(**p) for p in json.loads(sys.stdin.read())]\n"
        "print(PaperIndex(s, make_embedder(s), s.collection).sync(papers, progress=False).model_dump_json())\n"
    )
    search = (
        "from rag import Settings\nfrom rag.embeddings import make_embedder\nfrom rag.index import PaperIndex\n"
        "s = Settings.load()\n"
        "hits = PaperIndex(s, make_embedder(s), s.collection).search('xq7vz9 sourdough', k=2)\n"
        "print(hits[0].model_dump_json())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", ingest],
        input=papers,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout)["added"] == len(PAPERS)
    found = subprocess.run(
        [sys.executable, "-c", search], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert Paper(**json.loads(found.stdout)["paper"]) == LEXICAL


class _EmbeddingsEndpoint(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible /v1/embeddings endpoint serving the real MiniLM vectors."""

    model: MiniLMEmbedding

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = self.model.embed(texts)
        payload = json.dumps(
            {
                "object": "list",
                "model": body["model"],
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_openai_compatible_embeddings_build_and_guard_their_collection(
    tmp_path: Path, embedder: MiniLMEmbedding
) -> None:
    handler = type("Handler", (_EmbeddingsEndpoint,), {"model": embedder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = Settings(
            data_dir=tmp_path / "data",
            embedding="openai",
            embedding_model="minilm-over-http",
            openai_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            llm_max_retries=0,
        )
        remote = PaperIndex(settings, make_embedder(settings), "remote")
        assert remote.sync(PAPERS, progress=False).added == len(PAPERS)
        assert remote.info().embedding_model == "OpenAIEmbedding:minilm-over-http"
        assert ids(remote.search(SEMANTIC_QUERY, k=1)) == ["sem"]
    finally:
        server.shutdown()
        server.server_close()
    newcomer = Paper(id="new", title="Mycology of truffles", abstract="Truffle spores spread via boars.")
    with pytest.raises(ModelError, match="nothing was written to 'remote'"):
        remote.sync([*PAPERS, newcomer], progress=False)
    assert remote.info().papers == len(PAPERS)
    local = PaperIndex(settings.model_copy(update={"embedding": "minilm"}), embedder, "remote")
    with pytest.raises(IndexStoreError, match="built with embeddings from OpenAIEmbedding:minilm-over-http"):
        local.search(SEMANTIC_QUERY, k=1)


def test_paper_ids_filter_restricts_every_mode(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    make_index(tmp_path, embedder).sync(PAPERS, progress=False)
    only = SearchFilters(paper_ids=("p-solar", "sem"))
    for mode in ("hybrid", "dense", "bm25"):
        idx = make_index(tmp_path, embedder, retrieval=mode)
        found = ids(idx.search("perovskite solar cells glucose canines xq7vz9", k=10, filters=only))
        assert found and set(found) <= {"p-solar", "sem"}, mode
        assert idx.search("xq7vz9", k=10, filters=SearchFilters(paper_ids=())) == []


def test_supplied_vectors_are_written_without_embedding_and_checked(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    from rag import Assistant, CorpusError

    vectors = embedder.embed([f"{p.title}\n{p.abstract}" for p in PAPERS])
    path = tmp_path / "vectors.jsonl"
    rows = [
        {"id": p.id, "title": p.title, "abstract": p.abstract, "embedding": v.tolist(),
         "embedding_model": "sentence-transformers/all-MiniLM-L6-v2"}
        for p, v in zip(PAPERS, vectors, strict=True)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assistant = Assistant(Settings(data_dir=tmp_path / "data", collection="byo"), embedder=embedder)
    summary = assistant.ingest([path], progress=False)
    assert summary.added == len(PAPERS)
    assert ids(assistant.search(SEMANTIC_QUERY, k=1)) == ["sem"]
    assert assistant.search("xq7vz9", k=1)[0].paper.id == "lex"

    rows[3]["embedding"] = rows[3]["embedding"][:100]
    rows[3]["id"] = "short"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CorpusError, match=rf"{path}:4: the embedding has 100 dimensions, MiniLMEmbedding.* makes 384"):
        assistant.ingest([path], progress=False)
    del rows[3]["embedding_model"]
    rows[3]["embedding"] = rows[2]["embedding"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CorpusError, match=rf"{path}:4: the record carries an embedding but no model id"):
        assistant.ingest([path], progress=False)
    with pytest.raises(CorpusError, match=rf"{path}:4: the embedding was made by 'text-embedding-3-small'"):
        assistant.ingest([path], progress=False, embedding_model_id="text-embedding-3-small")
    assert assistant.ingest([path], progress=False, embedding_model_id="all-MiniLM-L6-v2").added == 1
    rows[0]["embedding"] = ["not", "numbers"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CorpusError, match=rf"{path}:1: \"embedding\" must be a non-empty list of numbers"):
        assistant.ingest([path], progress=False)


def test_adding_batches_appends_lexical_segments_and_merges_them(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    import sqlite3

    from rag.lexical import FANOUT

    idx = make_index(tmp_path, embedder, ingest_batch_size=1)
    many = [Paper(id=f"m{i}", title=f"Note {i}", abstract=f"Token zz{chr(97 + i)}q appears here.") for i in range(10)]
    idx.sync(many, progress=False)
    with sqlite3.connect(idx.lexical_path) as db:
        levels = dict(db.execute("SELECT level, count(*) FROM segments GROUP BY level").fetchall())
    assert levels == {0: 10 - FANOUT, 1: 1}  # FANOUT one-batch segments were merged into one, the rest appended
    bm25 = make_index(tmp_path, embedder, retrieval="bm25")
    assert [ids(bm25.search(f"zz{chr(97 + i)}q", k=3)) for i in range(10)] == [[f"m{i}"] for i in range(10)]


def test_embedding_workers_write_the_same_vectors(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    idx = make_index(tmp_path, embedder, ingest_workers=2, embed_batch_size=2)
    assert idx.sync(PAPERS, progress=False).added == len(PAPERS)
    stored = idx.store.collection().get(ids=[f"{p.id}#0" for p in PAPERS], include=["embeddings"])
    by_id = dict(zip(stored["ids"], stored["embeddings"], strict=True))
    expected = embedder.embed([f"{p.title}\n{p.abstract}" for p in PAPERS])
    for paper, vector in zip(PAPERS, expected, strict=True):
        assert float(np.dot(by_id[f"{paper.id}#0"], vector)) == pytest.approx(1.0, abs=1e-4)


def test_a_rerun_with_nothing_to_do_repairs_a_lagging_stamp(index: PaperIndex) -> None:
    from rag.store import STAMP_KEY

    ident, gen = index.lexical().stamp().split(":")
    index.store.set_meta(**{STAMP_KEY: f"{ident}:{int(gen) - 1}"})  # as if killed between the commit and the stamp
    assert index.sync(PAPERS, progress=False).wrote_nothing
    assert index.store.collection(refresh=True).metadata[STAMP_KEY] == f"{ident}:{gen}"


def test_a_bulk_ingest_compacts_the_lexical_file_and_a_small_addition_does_not(
    tmp_path: Path, embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.index import COMPACT_SHARE
    from rag.lexical import LexicalIndex

    compacted: list[Path] = []
    original = LexicalIndex.compact
    monkeypatch.setattr(
        LexicalIndex, "compact", lambda self, progress=False: (compacted.append(self.path), original(self, progress))[1]
    )
    idx = make_index(tmp_path, embedder)
    idx.sync(PAPERS, progress=False)  # the first load is all of the collection
    assert compacted == [idx.lexical_path]
    extra = Paper(id="x0", title="Extra 0", abstract="A short extra abstract.")
    assert COMPACT_SHARE * idx.lexical().count()[1] > 1
    idx.sync([*PAPERS, extra], progress=False)
    assert compacted == [idx.lexical_path]  # one chunk added to many: the file is left as it is
    assert ids(idx.search("short extra abstract", k=1)) == ["x0"]
