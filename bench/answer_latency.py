"""Answer latency of the extractive backend on the bundled digest: ask p50/p95 warm, per stage, and a warm restart.

Run from the repository root:  python bench/answer_latency.py  [--data-dir DIR] [--rounds N] [--out-json FILE]
The digest is ingested once into --data-dir (outside the repo) and reused by later runs. Questions are the gold
set's (evals/gold/digest.jsonl) with their histories.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make `rag` importable from a checkout

from rag import Assistant, Message  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/paper-rag-bench-answer"), help="index (outside repo)")
    p.add_argument("--gold", type=Path, default=REPO / "evals" / "gold" / "digest.jsonl")
    p.add_argument("--rounds", type=int, default=2, help="timed passes over the gold questions after a warm-up pass")
    p.add_argument("--out-json", type=Path, default=None, help="also write the figures here")
    return p.parse_args()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def questions(gold: Path) -> list[tuple[str, list[Message]]]:
    """(question, history) of every gold item."""
    items = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(i["question"], [Message(**m) for m in i.get("history", [])]) for i in items]


def timed_pass(assistant: Assistant, qs: list[tuple[str, list[Message]]]) -> tuple[list[float], dict[str, list]]:
    """Wall-clock ms of each ask and the chain's own per-stage timings."""
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    for question, history in qs:
        start = time.perf_counter()
        answer = assistant.ask(question, history)
        walls.append((time.perf_counter() - start) * 1000)
        for stage, ms in answer.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return walls, stages


def main() -> None:
    """Ingest if needed, warm up, time the rounds, time a restarted Assistant's first answers; print JSON."""
    args = parse_args()
    qs = questions(args.gold)
    assistant = Assistant.load(data_dir=args.data_dir, llm="extractive")
    if assistant.index.is_empty():
        assistant.ingest(progress=True)
    start = time.perf_counter()
    timed_pass(assistant, qs)  # warm-up: sentence embeddings computed and persisted
    warmup_s = time.perf_counter() - start
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        w, s = timed_pass(assistant, qs)
        walls += w
        for k, v in s.items():
            stages.setdefault(k, []).extend(v)
    restarted = Assistant.load(data_dir=args.data_dir, llm="extractive")
    restart_walls, _ = timed_pass(restarted, qs[:20])  # a new Assistant reads the persisted sentence cache
    report: dict[str, Any] = {
        "questions": len(qs),
        "rounds": args.rounds,
        "warmup_pass_s": round(warmup_s, 1),
        "ask_ms": {"p50": round(percentile(walls, 0.5), 1), "p95": round(percentile(walls, 0.95), 1)},
        "stage_p50_ms": {k: round(statistics.median(v), 1) for k, v in stages.items()},
        "restarted_first20_ms": {
            "first": round(restart_walls[0], 1),
            "p50": round(percentile(restart_walls, 0.5), 1),
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out_json:
        args.out_json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
