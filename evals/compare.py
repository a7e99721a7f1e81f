"""Differences between two runs' metrics.json: one row per metric with both values and the delta."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from evals.records import RunMetrics
from rag.errors import RagError
from rag.types import Record

METRICS_FILE = "metrics.json"


class RunError(RagError):
    """A run directory or metrics.json cannot be read."""


class Delta(Record):
    """One metric in two runs (None: absent from that run)."""

    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        """b - a, when both runs have the metric."""
        return None if self.a is None or self.b is None else self.b - self.a


def load_metrics(path: str | Path) -> RunMetrics:
    """A run's metrics, from its directory or its metrics.json."""
    path = Path(path)
    file = path / METRICS_FILE if path.is_dir() else path
    try:
        return RunMetrics.model_validate_json(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"cannot read {file}: {exc}; pass a run directory made by `rag eval --out DIR`") from exc
    except ValidationError as exc:
        raise RunError(f"{file} is not a metrics.json written by `rag eval`: {exc.error_count()} error(s)") from exc


def compare(a: RunMetrics, b: RunMetrics) -> list[Delta]:
    """Every metric of either run, in run A's order then B's new ones."""
    fa, fb = a.flat(), b.flat()
    names = list(fa) + [m for m in fb if m not in fa]
    return [Delta(metric=m, a=fa.get(m), b=fb.get(m)) for m in names]


def _fmt(value: float | None, signed: bool = False) -> str:
    """A metric value for the table ('-' when absent)."""
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_table(deltas: list[Delta], label_a: str = "A", label_b: str = "B", changed_only: bool = False) -> str:
    """A markdown table of metric, A, B and delta (B - A)."""
    rows = [d for d in deltas if not changed_only or d.delta is None or abs(d.delta) > 1e-12]
    lines = [f"| metric | {label_a} | {label_b} | delta |", "|---|---:|---:|---:|"]
    lines += [f"| {d.metric} | {_fmt(d.a)} | {_fmt(d.b)} | {_fmt(d.delta, signed=True)} |" for d in rows]
    return "\n".join(lines)
