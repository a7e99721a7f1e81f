"""Metric floors and ceilings (evals/thresholds.toml) and the check `rag eval --check` applies to a run."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from evals.gold_schema import ITEM_TYPES
from evals.records import RunMetrics, Scores
from rag.errors import RagError
from rag.types import Record

DEFAULT_THRESHOLDS = Path(__file__).parent / "thresholds.toml"


class ThresholdError(RagError):
    """The thresholds file is unreadable or names a metric the harness does not compute."""


class Threshold(Record):
    """One bound: `metric` must be >= value (min) or <= value (max)."""

    metric: str
    bound: Literal["min", "max"]
    value: float


class Violation(Record):
    """A threshold the run did not meet (actual None: the metric was not measured in this run)."""

    threshold: Threshold
    actual: float | None

    def describe(self) -> str:
        """One line for the terminal and the report."""
        t = self.threshold
        op = ">=" if t.bound == "min" else "<="
        got = "not measured" if self.actual is None else f"{self.actual:.3f}"
        return f"{t.metric} = {got}, required {op} {t.value:g}"


def _known(metric: str) -> bool:
    """True for '<score>', '<type>.<score>' and 'latency.<stage>.p50|p95'."""
    parts = metric.split(".")
    if parts[0] == "latency":
        return len(parts) == 3 and parts[2] in ("p50", "p95")
    if len(parts) == 2 and parts[0] in ITEM_TYPES:
        parts = parts[1:]
    return len(parts) == 1 and parts[0] in Scores.model_fields


def load_thresholds(path: str | Path = DEFAULT_THRESHOLDS) -> list[Threshold]:
    """Read a thresholds TOML file with [min] and [max] tables of metric = value."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThresholdError(f"cannot read thresholds file {path}: {exc}") from exc
    unknown_tables = sorted(set(data) - {"min", "max"})
    if unknown_tables:
        raise ThresholdError(f"{path}: unknown table(s) {unknown_tables}; use [min] and [max]")
    out = []
    for bound in ("min", "max"):
        for metric, value in data.get(bound, {}).items():
            if not _known(metric):
                raise ThresholdError(
                    f"{path}: [{bound}] {metric!r} is not a metric of the harness; use a key of metrics.json "
                    "'overall' (e.g. hit_at_5), '<type>.<metric>' (e.g. factoid.must_include_recall) "
                    "or 'latency.<stage>.p95'"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ThresholdError(f"{path}: [{bound}] {metric} must be a number, got {value!r}")
            out.append(Threshold(metric=metric, bound=bound, value=float(value)))
    return out


def check(metrics: RunMetrics, thresholds: Sequence[Threshold]) -> list[Violation]:
    """The thresholds a run misses; a metric the run did not measure counts as missed."""
    flat = metrics.flat()
    violations = []
    for t in thresholds:
        actual = flat.get(t.metric)
        ok = actual is not None and (actual >= t.value if t.bound == "min" else actual <= t.value)
        if not ok:
            violations.append(Violation(threshold=t, actual=actual))
    return violations


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m evals.thresholds METRICS_JSON [THRESHOLDS_TOML]`: list the bounds a saved run misses (exit 3)."""
    import argparse

    parser = argparse.ArgumentParser(description="Check a saved eval run (metrics.json) against a thresholds file.")
    parser.add_argument("metrics", type=Path, help="metrics.json written by `rag eval --out DIR`")
    parser.add_argument("thresholds", type=Path, nargs="?", default=DEFAULT_THRESHOLDS, help="thresholds TOML")
    args = parser.parse_args(argv)
    run = RunMetrics.model_validate_json(args.metrics.read_text(encoding="utf-8"))
    missed = check(run, load_thresholds(args.thresholds))
    name = args.thresholds.name
    for violation in missed:
        print(f"{name}: not met: {violation.describe()}")
    if not missed:
        print(f"{name}: every bound met")
    return 3 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
