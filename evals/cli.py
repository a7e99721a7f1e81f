"""The `rag eval` subcommand: parse its arguments, run the harness on an Assistant, write and print the report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.gold_schema import ITEM_TYPES, TEST_SPLIT, GoldError, GoldItem, load_gold
from rag.settings import BACKENDS

if TYPE_CHECKING:
    from rag.assistant import Assistant

EXIT_OK = 0
EXIT_CHECK_FAILED = 3
RUNS_DIR = Path("evals") / "runs"

_EPILOG = f"""\
outputs (in --out, default {RUNS_DIR}/<timestamp>/): report.md, metrics.json, results.jsonl,
scores_by_type.png, latency.png.

exit codes: 0 success; 1 error (bad gold file, empty collection, LLM failure); 2 bad arguments;
3 --check found a metric below a floor or above a ceiling of the thresholds file.

examples:
  rag eval                              # the test split, extractive unless an LLM is configured
  rag eval --llm extractive --check     # fail (exit 3) when a metric misses evals/thresholds.toml
  rag eval --compare evals/runs/A evals/runs/B
"""


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_eval_parser(subparsers: Any) -> None:
    """Add the `eval` subcommand and its arguments to the `rag` command's subparsers."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate retrieval, answers, citations and abstention on gold Q&A sets",
        description="Ask every gold question, score retrieval, answers, citations, abstention and latency, and "
        "write a report.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gold", action="append", metavar="FILE",
                   help="gold JSONL file (repeatable; default: the test split evals/gold/test.jsonl)")
    p.add_argument("--collection", help="named collection to evaluate (default: settings; must hold the gold papers)")
    p.add_argument("--llm", choices=BACKENDS, help="answer backend")
    p.add_argument("-k", type=_positive, default=10,
                   help="search depth for the retrieval metrics (default 10; the @10 metrics need 10)")
    p.add_argument("--type", dest="types", action="append", choices=ITEM_TYPES, metavar="TYPE",
                   help=f"only items of this type (repeatable): {', '.join(ITEM_TYPES)}")
    p.add_argument("--limit", type=_positive, metavar="N", help="only the first N items (after --type)")
    p.add_argument("--out", metavar="DIR", help=f"output directory (default: {RUNS_DIR}/<timestamp>)")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of the scores table")
    p.add_argument("--check", action="store_true",
                   help="exit with code 3 when a metric misses a bound of the thresholds file")
    p.add_argument("--thresholds", metavar="FILE",
                   help="thresholds TOML for --check (default: evals/thresholds.toml)")
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"),
                   help="print the metric differences of two run directories (or metrics.json files) and exit")
    p.add_argument("--changed-only", action="store_true", help="with --compare: only metrics that differ")
    p.add_argument("--judge", action="store_true",
                   help="also grade answers with the configured LLM (faithfulness, correctness); off by default")


def register(subparsers: Any) -> None:
    """Entry point of the "paper_rag.commands" group (pyproject.toml): add `rag eval` to the `rag` command."""
    add_eval_parser(subparsers)
    subparsers.choices["eval"].set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """`rag eval`: run the gold-set evaluation harness on the Assistant the settings and flags describe."""
    from rag.assistant import Assistant

    return run(args, lambda **overrides: Assistant.load(**overrides))


def _compare(args: argparse.Namespace) -> int:
    """`rag eval --compare A B`: a table (or JSON) of both runs' metrics and their deltas."""
    from evals.compare import compare, format_table, load_metrics

    a, b = (load_metrics(p) for p in args.compare)
    if a.gold_digest != b.gold_digest:
        print("note: the two runs evaluated different gold items; deltas mix answer and gold changes",
              file=sys.stderr)
    deltas = compare(a, b)
    if args.json:
        print(json.dumps([{**d.model_dump(), "delta": d.delta} for d in deltas], indent=2))
    else:
        print(format_table(deltas, Path(args.compare[0]).name, Path(args.compare[1]).name, args.changed_only))
    return EXIT_OK


def _shown(path: Path) -> Path:
    """A path relative to the working directory when it lies below it (reports stay machine-independent)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _items(args: argparse.Namespace, assistant: Assistant) -> tuple[list[Path], list[GoldItem]]:
    """The gold files and their items, validated against the collection's papers, filtered by --type/--limit."""
    files = [_shown(Path(f)) for f in args.gold] if args.gold else [_shown(TEST_SPLIT)]
    if not files:
        raise GoldError("no gold files: pass --gold FILE or add JSONL files to evals/gold/")
    papers = assistant.papers()
    items: list[GoldItem] = []
    for f in files:
        items.extend(load_gold(f, papers))
    ids = [i.id for i in items]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise GoldError(f"item ids repeat across gold files: {', '.join(repeated[:10])}; give each file its own ids")
    if args.types:
        items = [i for i in items if i.type in args.types]
    return files, items[: args.limit] if args.limit else items


def run(args: argparse.Namespace, assistant_factory: Callable[..., Assistant]) -> int:
    """Run `rag eval`; assistant_factory(**overrides) builds the Assistant. Returns the exit code."""
    # The harness, metrics and plotting import llama-index evaluation and matplotlib: only when evaluating.
    from evals.harness import run_eval
    from evals.report import summary_lines, write_run
    from evals.thresholds import DEFAULT_THRESHOLDS, check, load_thresholds

    if args.compare:
        return _compare(args)
    # a bad thresholds file fails before the long run
    thresholds = load_thresholds(args.thresholds or DEFAULT_THRESHOLDS) if args.check else None
    assistant = assistant_factory(collection=args.collection, llm=args.llm)
    judge = None
    if args.judge:
        from evals.judge import Judge

        judge = Judge.from_settings(assistant.settings)
    progress = sys.stderr.isatty()
    assistant.ensure_ready()  # an empty default collection is filled with the bundled digest
    files, items = _items(args, assistant)
    result = run_eval(assistant, items, k=args.k, judge=judge, gold_files=files, progress=progress)
    violations = check(result.metrics, thresholds) if thresholds is not None else None
    out = Path(args.out) if args.out else RUNS_DIR / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    paths = write_run(result, out, violations)
    if args.json:
        print(result.metrics.model_dump_json(indent=2))
    else:
        print("\n".join(summary_lines(result.metrics)))
        print(f"\nreport: {paths['report']}")
    for v in violations or []:
        print(f"check failed: {v.describe()}", file=sys.stderr)
    return EXIT_CHECK_FAILED if violations else EXIT_OK
