"""Write a run to disk: report.md, metrics.json, results.jsonl and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evals.harness import EvalRun
from evals.records import ItemResult, LatencyStats, RunMetrics
from evals.thresholds import Violation

SUMMARY_METRICS = (
    "hit_at_1",
    "hit_at_5",
    "hit_at_10",
    "recall_at_10",
    "mrr_at_10",
    "ndcg_at_10",
    "must_include_recall",
    "fully_correct",
    "cited_paper_precision",
    "cited_paper_recall",
    "supported_sentence_share",
    "abstention_rate_unanswerable",
    "false_abstention_rate",
    "judge_faithfulness",
    "judge_correctness",
)
PLOT_METRICS = ("hit_at_5", "must_include_recall", "fully_correct", "cited_paper_precision", "cited_paper_recall")
_ANSWER_CHARS = 400


def _fmt(value: float | None) -> str:
    """A score for a markdown table."""
    return "-" if value is None else f"{value:.3f}"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell or list item."""
    return " ".join(text.split()).replace("|", "\\|")


def _scores_table(metrics: RunMetrics) -> list[str]:
    """Metrics as rows, 'overall' and each item type as columns."""
    types = list(metrics.by_type)
    head = ["| metric | overall | " + " | ".join(types) + " |", "|---|---:|" + "---:|" * len(types)]
    rows = []
    for name in SUMMARY_METRICS:
        values = [getattr(metrics.overall, name)] + [getattr(metrics.by_type[t], name) for t in types]
        if any(v is not None for v in values):
            rows.append(f"| {name} | " + " | ".join(_fmt(v) for v in values) + " |")
    counts = f"| items | {metrics.n_items} | " + " | ".join(str(metrics.n_by_type[t]) for t in types) + " |"
    return [*head, counts, *rows]


def _latency_table(stats: dict[str, LatencyStats], what: str) -> list[str]:
    """Latency per stage or per item type."""
    lines = [f"| {what} | n | p50 ms | p95 ms | mean ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, s in stats.items():
        lines.append(f"| {name} | {s.n} | {s.p50:.1f} | {s.p95:.1f} | {s.mean:.1f} | {s.max:.1f} |")
    return lines


def _failure(r: ItemResult) -> list[str]:
    """One failed item: question, expected, got, cited, missing strings."""
    got = r.answer if len(r.answer) <= _ANSWER_CHARS else r.answer[:_ANSWER_CHARS] + " ..."
    lines = [f"### {r.id} ({r.type}, {r.where})", "", f"- question: {_cell(r.question)}"]
    if r.history:
        lines.append(f"- standalone question: {_cell(r.standalone_question)}")
    lines += [
        f"- expected: {_cell(r.expected)}",
        f"- gold papers: {'; '.join(r.gold_titles) or '(none: unanswerable)'}",
        f"- got{' (abstained)' if r.abstained else ''}: {_cell(got)}",
        f"- cited: {'; '.join(r.cited_titles) or '(nothing)'}",
    ]
    if r.missing:
        lines.append(f"- missing: {', '.join(r.missing)}")
    if r.error:
        lines.append(f"- error: {_cell(r.error)}")
    return [*lines, ""]


def render_markdown(run: EvalRun, plots: Sequence[str] = (), violations: Sequence[Violation] | None = None) -> str:
    """The human-readable report of a run."""
    m = run.metrics
    lines = [
        "# Eval report",
        "",
        f"- run finished: {m.created}",
        f"- gold files: {', '.join(m.gold_files) or '(given in code)'} (items digest `{m.gold_digest}`)",
        f"- collection: `{m.collection}`, backend: `{m.backend}`" + (f" (`{m.model}`)" if m.model else ""),
        f"- retrieval: `{m.retrieval}`, retrieval metrics on `search(standalone question, k={m.k})`",
        f"- LLM judge: {'on' if m.judge else 'off'}",
        "",
        "## Scores",
        "",
        "Means over the items where a metric applies (retrieval and citation metrics: answerable items; "
        "abstention rate: unanswerable items).",
        "",
        *_scores_table(m),
        "",
        "## Latency",
        "",
        *_latency_table(m.latency_ms, "stage"),
        "",
        "Wall time of `ask` per item type:",
        "",
        *_latency_table(m.latency_by_type, "type"),
        "",
    ]
    if violations is not None:
        lines += ["## Threshold check", ""]
        lines += [f"- FAILED: {v.describe()}" for v in violations] or ["- all thresholds met"]
        lines.append("")
    if plots:
        lines += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    if m.errors:
        lines += [f"**{len(m.errors)} item(s) raised an error**: {', '.join(m.errors)}", ""]
    failures = [r for r in run.results if r.failed]
    lines += [f"## Failures ({len(failures)} of {m.n_items})", ""]
    for r in failures:
        lines += _failure(r)
    return "\n".join(lines).rstrip() + "\n"


def _figure() -> Figure:
    """A figure on the Agg canvas (no pyplot global state, no window)."""
    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    return fig


def plot_scores_by_type(metrics: RunMetrics, path: Path) -> Path:
    """Grouped bar chart of the main answer and retrieval scores per item type."""
    types = list(metrics.by_type)
    fig = _figure()
    ax = fig.subplots()
    width = 0.8 / len(PLOT_METRICS)
    for i, name in enumerate(PLOT_METRICS):
        values = [getattr(metrics.by_type[t], name) for t in types]
        xs = [j + i * width for j, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(types))], types)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(f"Scores by question type ({metrics.backend}, n={metrics.n_items})")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_latency(results: Sequence[ItemResult], path: Path) -> Path:
    """Box plot of per-stage latency (ms, log scale) across items."""
    stages: dict[str, list[float]] = {}
    for r in results:
        for stage, ms in r.timings_ms.items():
            stages.setdefault(stage, []).append(max(ms, 1e-3))
    fig = _figure()
    ax = fig.subplots()
    ax.boxplot(list(stages.values()), tick_labels=list(stages), orientation="horizontal")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title("Latency per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_run(run: EvalRun, out_dir: str | Path, violations: Sequence[Violation] | None = None) -> dict[str, Path]:
    """Write report.md, metrics.json, results.jsonl and the plots into out_dir; return their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "results": out / "results.jsonl",
        "scores_plot": plot_scores_by_type(run.metrics, out / "scores_by_type.png"),
    }
    if run.metrics.latency_ms:
        paths["latency_plot"] = plot_latency(run.results, out / "latency.png")
    paths["metrics"].write_text(run.metrics.model_dump_json(indent=2) + "\n", encoding="utf-8")
    with paths["results"].open("w", encoding="utf-8") as f:
        for r in run.results:
            f.write(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n")
    plots = [str(p) for k, p in paths.items() if k.endswith("_plot")]
    paths["report"] = out / "report.md"
    paths["report"].write_text(render_markdown(run, plots, violations), encoding="utf-8")
    return paths


def summary_lines(metrics: RunMetrics) -> list[str]:
    """The scores table for the terminal (same as in report.md)."""
    return _scores_table(metrics)

