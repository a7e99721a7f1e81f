"""The `rag` command: a thin shell that makes one Assistant call per command and prints its record."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from rag.assistant import Assistant
from rag.errors import QuestionError, RagError
from rag.runtime import configure
from rag.settings import BACKENDS
from rag.types import Answer, Hit, Message, Record, SearchFilters

log = logging.getLogger("rag")

EXIT_OK = 0
EXIT_ERROR = 1  # a RagError: bad input, unreachable server, missing model; the message says what to do
EXIT_USAGE = 2  # argparse's own code for bad arguments
COMMANDS_GROUP = "paper_rag.commands"  # entry points adding subcommands to `rag` (evals adds `eval`)
# Commands that write nothing: run as the program, they end without the interpreter's teardown, which spends about
# 0.4 s finalizing chromadb's and onnxruntime's native modules (a fifth of `rag search`'s start-to-result time).
READ_ONLY_COMMANDS = frozenset({"search", "info"})


def _print_json(payload: Any) -> None:
    """Print a record (or list of records) as the JSON the Python API would serialize."""
    if isinstance(payload, Record):
        print(payload.model_dump_json(indent=2))
    else:
        print(json.dumps([p.model_dump(mode="json") for p in payload], indent=2, ensure_ascii=False))


def _filters(args: argparse.Namespace) -> SearchFilters | None:
    """Build retrieval filters from --has-code / --year-min / --year-max / --source, or None."""
    try:
        f = SearchFilters(
            has_code=True if getattr(args, "has_code", False) else None,
            year_min=getattr(args, "year_min", None),
            year_max=getattr(args, "year_max", None),
            source=getattr(args, "source", None),
        )
    except ValidationError as exc:  # e.g. --year-min after --year-max
        reason = "; ".join(str(e.get("ctx", {}).get("error") or e["msg"]) for e in exc.errors())
        raise QuestionError(f"{reason}: check --year-min and --year-max") from exc
    return None if f == SearchFilters() else f


def _assistant(args: argparse.Namespace, **extra: Any) -> Assistant:
    """The Assistant for this invocation: settings from env/rag.toml, overridden by flags."""
    return Assistant.load(collection=getattr(args, "collection", None), **extra)


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt (see cmd_ingest)."""
    raise KeyboardInterrupt


def cmd_ingest(args: argparse.Namespace) -> int:
    """`rag ingest`: load files (default: the bundled digest) into the collection."""
    # `kill`, `docker stop` and systemd stop an ingest like Ctrl-C: Python runs the handler only once the Chroma
    # call in flight returns, so Chroma never dies mid-flush (a torn vector index is a Chroma bug, #7678)
    signal.signal(signal.SIGTERM, _interrupt)
    fields = dict(_field_mapping(f) for f in args.field)
    summary = _assistant(args, ingest_workers=args.workers).ingest(
        args.paths or None, fmt=args.format, prune=args.prune, fields=fields or None, skip_invalid=args.skip_invalid,
        progress=not args.json and sys.stderr.isatty(), embedding_model_id=args.embedding_model_id)
    if args.json:
        _print_json(summary)
    else:
        invalid = f", {summary.invalid_skipped} invalid records skipped (see the warnings)" if args.skip_invalid else ""
        print(f"{summary.collection}: {summary.added} added, {summary.updated} updated, {summary.skipped} unchanged, "
              f"{summary.deleted} deleted, {summary.duplicates_merged} duplicates merged{invalid} "
              f"({summary.chunks_written} chunks written in {summary.seconds:.1f}s)")
    return EXIT_OK


def _field_mapping(text: str) -> tuple[str, str]:
    """Parse one --field FIELD=COLUMN option."""
    field, sep, column = text.partition("=")
    if not sep or not field or not column:
        raise RagError(f"--field takes FIELD=COLUMN (e.g. abstract=summary), got {text!r}")
    return field.strip(), column.strip()


def _format_hit(hit: Hit) -> str:
    """One search result as two lines: rank, score and title, then the link."""
    link = hit.paper.url or (hit.paper.code_urls[0] if hit.paper.code_urls else "")
    return f"{hit.rank:>2}. [{hit.score:.3f}] {hit.paper.title}" + (f"\n    {link}" if link else "")


def cmd_search(args: argparse.Namespace) -> int:
    """`rag search`: the k most relevant papers for a question."""
    hits = _assistant(args).search(args.question, k=args.k, filters=_filters(args))
    if args.json:
        _print_json(hits)
    elif not hits:
        print("No matching papers.")
    else:
        print("\n".join(_format_hit(h) for h in hits))
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    """`rag info`: collection, paper and chunk counts, models and data directory."""
    info = _assistant(args).info()
    if args.json:
        _print_json(info)
    else:
        print(f"collection:  {info.collection}\npapers:      {info.papers}\nchunks:      {info.chunks}\n"
              f"embeddings:  {info.embedding_model}\ndata dir:    {info.data_dir}\nchroma:      {info.chroma}\n"
              f"collections: {', '.join(info.collections) or '-'}")
    return EXIT_OK


def _format_sources(answer: Answer) -> str:
    """The numbered sources an answer cites: number, title and link(s)."""
    lines = []
    for c in answer.citations:
        links = " ".join(x for x in (c.paper.url, *c.paper.code_urls) if x)
        lines.append(f"[{c.number}] {c.paper.title}" + (f"\n    {links}" if links else ""))
    return "\n".join(lines)


def _answer_once(assistant: Assistant, question: str, history: list[Message], args: argparse.Namespace) -> Answer:
    """Stream one answer to stdout (text), or print the whole Answer as JSON or Markdown; return the Answer.

    The streamed deltas are verified text (the chain's contract), so nothing unchecked reaches the terminal.
    """
    kwargs: dict[str, Any] = {"k": args.k, "filters": _filters(args), "backend": args.llm}
    if args.format == "json":
        answer = assistant.ask(question, history, **kwargs)
        _print_json(answer)
        return answer
    if args.format == "markdown":
        answer = assistant.ask(question, history, **kwargs)
        print(answer.to_markdown())
        return answer
    answer = None
    for item in assistant.stream(question, history, **kwargs):
        if isinstance(item, Answer):
            answer = item
        else:
            print(item, end="", flush=True)
    if answer is None:  # the chain's contract is to end with an Answer; anything else is a bug
        raise RuntimeError("the answer stream ended without a final Answer")
    print()
    if answer.notice:  # e.g. the extractive fallback, or model sentences left out as unsupported
        print(f"\nNote: {answer.notice}")
    sources = _format_sources(answer)
    if sources:
        print("\nSources:\n" + sources)
    return answer


def cmd_ask(args: argparse.Namespace) -> int:
    """`rag ask`: answer one question, or start a terminal chat when no question is given."""
    if args.json:
        args.format = "json"
    assistant = _assistant(args)
    if args.question is not None:  # `rag ask ""` is an empty question (an error), not the chat
        _answer_once(assistant, args.question, [], args)
        return EXIT_OK
    history: list[Message] = []
    print("paper-rag chat: ask about the collection; follow-ups keep the context. Empty line or Ctrl-D quits.",
          file=sys.stderr)
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = _answer_once(assistant, question, history, args)
        except RagError as exc:  # keep the conversation going after a bad question or a failed server
            print(f"error: {exc}", file=sys.stderr)
            continue
        # the answer's cited papers travel with it, so a follow-up can refer to them
        history += [Message(role="user", content=question), Message.from_answer(answer)]
        print()
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    """`rag chat`: launch the Gradio chat app."""
    from ui.app import launch

    assistant = _assistant(args)
    launch(assistant, args.host or assistant.settings.ui_host, args.port or assistant.settings.ui_port)
    return EXIT_OK


def _add_filter_args(p: argparse.ArgumentParser) -> None:
    """Retrieval filters shared by `search` and `ask`."""
    p.add_argument("--has-code", action="store_true", help="only papers with a code link")
    p.add_argument("--year-min", type=int, help="only papers from this year on")
    p.add_argument("--year-max", type=int, help="only papers up to this year")
    p.add_argument("--source", help="only papers from this source file")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the `rag` command (for a given built-in `command`, without the plugin commands)."""
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a collection of paper abstracts.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="load collection files into the index (no PATH: the bundled digest)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="JSONL, CSV, BibTeX, arXiv metadata or digest files")
    p.add_argument("--format", choices=["digest", "jsonl", "csv", "bibtex", "arxiv"],
                   help="override format detection")
    p.add_argument("--collection", help="named collection (default: settings)")
    p.add_argument("--prune", action="store_true", help="delete papers that are no longer in the given files")
    p.add_argument("--field", action="append", default=[], metavar="FIELD=COLUMN",
                   help="map a paper field to a source column, e.g. abstract=summary (repeatable)")
    p.add_argument("--skip-invalid", action="store_true", help="skip malformed records (logged) instead of failing")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="embedding processes (default: settings ingest_workers; more for bigger machines)")
    p.add_argument("--embedding-model-id", default="", metavar="ID",
                   help="model that made the `embedding` of JSONL records that do not name it")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="find the papers most relevant to a question")
    p.add_argument("question", help="what to look for, in plain language")
    p.add_argument("-k", type=int, default=None, help="number of papers (default: settings search_k)")
    p.add_argument("--collection", help="named collection (default: settings)")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    _add_filter_args(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("info", help="show collection, paper and chunk counts, models and data directory")
    p.add_argument("--collection", help="named collection (default: settings)")
    p.add_argument("--json", action="store_true", help="print the info as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("ask", help="answer a question with citations (no question: a terminal chat)")
    p.add_argument("question", nargs="?", help="the question; omit it to chat with follow-ups")
    p.add_argument("-k", type=int, default=None, help="number of sources shown to the answerer")
    p.add_argument("--llm", choices=BACKENDS, help="answer backend")
    p.add_argument("--collection", help="named collection (default: settings)")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text",
                   help="text: streamed answer and sources (default); markdown: the answer with numbered references; "
                   "json: the Answer record")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    _add_filter_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="launch the Gradio chat app")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others require ui_user/ui_password)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--collection", help="named collection (default: settings)")
    p.set_defaults(func=cmd_chat)

    # Commands of other packages (the evaluation harness's `rag eval`), registered through the
    # "paper_rag.commands" entry point group: each entry is a function that adds its subparser and sets `func`.
    # Not loaded to run a built-in command: importing the harness is a quarter of `rag search`'s start-up.
    if command not in sub.choices:
        for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
            entry.load()(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in the arguments (the first one not starting with '-'), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rag` command; returns the exit code (argv None: run as the program, sys.argv)."""
    code = _run(sys.argv[1:] if argv is None else list(argv))
    if argv is None and _command(sys.argv[1:]) in READ_ONLY_COMMANDS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(argv: list[str]) -> int:
    """Parse the arguments and run the command; RagError becomes a one-line error and exit code."""
    configure()
    args = build_parser(_command(argv)).parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)  # on the handler too: some libraries (bm25s) force their own loggers to DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", handlers=[handler])
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
