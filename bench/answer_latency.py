"""Answer latency of the extractive backend on the bundled digest: a first pass over new questions, cold.

Run from the repository root:  python bench/answer_latency.py [--data-dir DIR] [--gold FILE] [--out-json FILE]

The digest is ingested afresh into --data-dir (outside the repo; emptied first) with the default settings, so ingest
keeps the sentence vectors it pools from the chunks' passes. Then a new Assistant, which has answered nothing yet,
asks every question of the gold file once, with its history: that first pass is the figure the floor applies to
(issue 8: p50 <= 150 ms, p95 <= 400 ms). A second, warm pass is printed beside it, and a third first pass after the
sentence cache is deleted: what a collection ingested without sentence vectors (`sentence_vectors_at_ingest` off, or
supplied vectors) costs, each question pooling its sources' sentences.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make `rag` and `evals` importable from a checkout

from evals.gold_schema import TEST_SPLIT, GoldItem, load_gold  # noqa: E402
from rag import Assistant  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/paper-rag-bench-answer"), help="index (outside repo)")
    p.add_argument("--gold", type=Path, default=TEST_SPLIT, help="questions to ask (default: the test split)")
    p.add_argument("--out-json", type=Path, default=None, help="also write the figures here")
    return p.parse_args()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed_pass(assistant: Assistant, items: list[GoldItem]) -> tuple[list[float], dict[str, list[float]]]:
    """Wall-clock ms of each ask and the chain's own per-stage timings."""
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    for item in items:
        start = time.perf_counter()
        answer = assistant.ask(item.question, list(item.history))
        walls.append((time.perf_counter() - start) * 1000)
        for stage, ms in answer.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return walls, stages


def summary(walls: list[float], stages: dict[str, list[float]]) -> dict[str, Any]:
    """p50/p95 of the walls and the median of each stage."""
    return {
        "ask_ms": {"p50": round(percentile(walls, 0.5), 1), "p95": round(percentile(walls, 0.95), 1),
                   "max": round(max(walls), 1)},
        "stage_p50_ms": {k: round(statistics.median(v), 1) for k, v in stages.items()},
    }  # fmt: skip


def fresh(data_dir: Path) -> Assistant:
    """A new Assistant on the index, its embedder and index opened (process start-up is not part of an answer)."""
    assistant = Assistant.load(data_dir=data_dir, llm="extractive")
    assistant.search("warm the index and the embedder", k=1)
    return assistant


def main() -> None:
    """Ingest afresh, time a cold first pass and a warm pass, then a first pass without stored sentence vectors;
    print JSON."""
    args = parse_args()
    items = load_gold(args.gold)
    shutil.rmtree(args.data_dir, ignore_errors=True)
    started = time.perf_counter()
    Assistant.load(data_dir=args.data_dir, llm="extractive").ingest(progress=True)
    ingest_s = time.perf_counter() - started
    assistant = fresh(args.data_dir)
    cold = timed_pass(assistant, items)
    warm = timed_pass(assistant, items)
    shutil.rmtree(args.data_dir / "sentence_cache")
    lazy = timed_pass(fresh(args.data_dir), items)
    report = {"gold": args.gold.name, "questions": len(items), "ingest_s": round(ingest_s, 1),
              "first_pass_cold": summary(*cold), "second_pass_warm": summary(*warm),
              "first_pass_without_ingest_sentence_vectors": summary(*lazy)}  # fmt: skip
    text = json.dumps(report, indent=2)
    print(text)
    if args.out_json:
        args.out_json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
