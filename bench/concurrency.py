"""Concurrency benchmark of the chat app's `ask` API: N RemoteAssistant clients in threads against one app.

    python bench/concurrency.py                      # start an app on the bundled digest (temp data dir), 8 clients
    python bench/concurrency.py --url http://127.0.0.1:7860 --clients 8 --rounds 3

Reports latency to the first text delta and to the final Answer (p50/p95/max), errors and throughput, first with
one client (the baseline) and then with N at once; prints a table and writes evals/reports/concurrency.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rag.assistant import Assistant
from rag.client import RemoteAssistant
from rag.errors import RagError
from rag.examples import example_questions
from rag.runtime import configure
from rag.settings import Settings
from rag.types import Answer

REPORT = Path(__file__).resolve().parents[1] / "evals" / "reports" / "concurrency.md"
FLOOR_P95_S = 1.5  # answer latency p95 with 8 clients (issue 11)
FIXED_QUESTIONS = (
    "What is MaxViT?",
    "Which paper proposes multi-axis attention?",
    "How does ZeRO-Infinity fit trillion-parameter models on limited GPUs?",
    "What is the boiling point of mercury on Venus?",  # an abstention
)


@dataclass
class Phase:
    """Timings of one phase (n clients, each asking `rounds` questions)."""

    clients: int
    first_delta_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    abstained: int = 0
    wall_s: float = 0.0

    def row(self) -> list[str]:
        """One table row."""
        n = len(self.total_s)
        return [
            str(self.clients),
            str(n),
            str(len(self.errors)),
            _ms(_pct(self.first_delta_s, 50)),
            _ms(_pct(self.first_delta_s, 95)),
            _ms(_pct(self.total_s, 50)),
            _ms(_pct(self.total_s, 95)),
            _ms(max(self.total_s, default=0.0)),
            f"{n / self.wall_s:.2f}" if self.wall_s else "-",
        ]


HEADERS = [
    "clients",
    "answers",
    "errors",
    "first delta p50",
    "first delta p95",
    "answer p50",
    "answer p95",
    "answer max",
    "answers/s",
]


def run_phase(url: str, clients: int, questions: list[str], rounds: int) -> Phase:
    """Start `clients` threads, each with its own RemoteAssistant asking `rounds` questions; collect timings."""
    phase = Phase(clients)
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def worker(i: int) -> None:
        remote = RemoteAssistant(url)
        start_line.wait()
        for r in range(rounds):
            question = questions[(i + r * clients) % len(questions)]
            t0 = time.perf_counter()
            first: float | None = None
            answer: Answer | None = None
            try:
                for item in remote.stream(question):
                    if isinstance(item, Answer):
                        answer = item
                    elif first is None:
                        first = time.perf_counter() - t0
            except RagError as exc:
                with lock:
                    phase.errors.append(f"{question!r}: {exc}")
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                if answer is None:
                    phase.errors.append(f"{question!r}: no final Answer")
                    continue
                phase.total_s.append(elapsed)
                phase.first_delta_s.append(first if first is not None else elapsed)
                phase.abstained += answer.abstained

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.wall_s = time.perf_counter() - t0
    return phase


def start_app(data_dir: Path | None) -> tuple[str, Assistant, object]:
    """Ingest the bundled digest into a (temporary) data dir and serve the app on a free port."""
    from ui.app import launch  # imports gradio: after configure()

    directory = data_dir or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    assistant = Assistant(Settings.load(data_dir=directory, llm="extractive"))
    if assistant.index.is_empty():
        print(f"ingesting the bundled digest into {directory} …", file=sys.stderr)
        assistant.ingest(progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(assistant, "127.0.0.1", port, prevent_thread_lock=True)
    return demo.local_url, assistant, demo


def markdown(phases: list[Phase], args: argparse.Namespace, url: str, backend: str, load: float) -> str:
    """The report as Markdown."""
    from ui.app import ANSWER_CONCURRENCY

    lines = [
        "# Chat app concurrency benchmark",
        "",
        f"`python bench/concurrency.py --clients {args.clients} --rounds {args.rounds}` on {time.strftime('%Y-%m-%d')}:"
        f" {args.clients} `RemoteAssistant` clients in threads against one app ({url}, backend `{backend}`, the"
        " bundled digest), each asking its questions in turn over the `ask` API (streamed). The first row is a"
        " single-client baseline (each question once, in turn); every question was asked once before timing, so"
        " both rows are warm. Latencies are wall-clock per question, client side; the app streams the verified"
        " answer sentence by sentence, so the first delta is the first verified sentence;"
        f" load average at the start: {load:.1f} (the machine is shared).",
        "",
        f"Machine: {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}; the app computes"
        f" {ANSWER_CONCURRENCY} answers at once (more requests wait in Gradio's queue).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---:" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(p.row()) + " |" for p in phases]
    errors = [e for p in phases for e in p.errors]
    lines += ["", f"Errors: {len(errors)}." + ("" if not errors else " " + "; ".join(errors[:5]))]
    concurrent = phases[-1]
    p95 = _pct(concurrent.total_s, 95)
    verdict = "met" if p95 <= FLOOR_P95_S and not errors else "missed"
    lines += [
        "",
        f"Floor (issue 11): answer p95 <= {FLOOR_P95_S} s with {concurrent.clients} clients and no errors:"
        f" **{verdict}** (p95 {p95:.2f} s, {len(errors)} errors).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the baseline and the concurrent phase; print the table and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: start one on the bundled digest)")
    parser.add_argument("--data-dir", type=Path, help="data dir of the started app (default: a temp dir)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="questions each client asks")
    parser.add_argument("--no-report", action="store_true", help="print only; do not write evals/reports/")
    args = parser.parse_args()
    configure()

    demo = None
    if args.url:
        url, questions, backend = args.url, list(FIXED_QUESTIONS), "as configured"
    else:
        url, assistant, demo = start_app(args.data_dir)
        questions = [*FIXED_QUESTIONS, *example_questions(assistant.papers(), n=4)]
        backend = assistant.settings.resolved_llm
    try:
        load = os.getloadavg()[0]
        warm = RemoteAssistant(url)
        for question in questions:  # warm models and caches (sentence embeddings) outside the timings
            warm.ask(question)
        baseline = run_phase(url, 1, questions, len(questions))  # each question once, one at a time
        phases = [baseline, run_phase(url, args.clients, questions, args.rounds)]
    finally:
        if demo is not None:
            demo.close()
    widths = [max(len(h), *(len(p.row()[i]) for p in phases)) for i, h in enumerate(HEADERS)]
    print("  ".join(h.rjust(w) for h, w in zip(HEADERS, widths, strict=True)))
    for p in phases:
        print("  ".join(c.rjust(w) for c, w in zip(p.row(), widths, strict=True)))
    for p in phases:
        for error in p.errors:
            print(f"error ({p.clients} clients): {error}", file=sys.stderr)
    if not args.no_report:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(markdown(phases, args, url, backend, load), encoding="utf-8")
        print(f"wrote {REPORT}", file=sys.stderr)
    return 1 if any(p.errors for p in phases) else 0


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile (inclusive method), 0.0 when empty."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _ms(seconds: float) -> str:
    """Seconds as whole milliseconds."""
    return f"{seconds * 1000:.0f} ms"


def _cpus() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
