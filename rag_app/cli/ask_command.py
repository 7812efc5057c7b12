"""`python -m rag_app`: ask, search and summarize from the terminal or a script."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag_app.cli.options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    GENERAL,
    MODEL,
    QUERY_EMBEDDING,
    RETRIEVAL,
    STORAGE,
    USAGE,
    add_setting_options,
    configure_logging,
    error_message,
    fail,
    settings_from_args,
)
from rag_app.cli.render import console, print_answer_stream, print_json, print_search
from rag_app.cli.summarize_command import add_summarize, run_summarize
from rag_app.errors import ConfigurationError, InvalidRequestError, RagError
from rag_app.requests import AskRequest, SearchRequest
from rag_app.service import RagService
from rag_app.settings import STRATEGY_NAMES, Settings


def _default(name: str):
    return Settings.model_fields[name].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag_app", description="Question answering over your own PDFs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search = commands.add_parser(
        "search",
        usage=f"{USAGE} [QUERY]",
        help="print the chunks that best match a query",
        description="Print the top-k chunks for QUERY, best first, with file, page and text. Without QUERY, "
        "read one query per line from stdin and print one JSON line each (the model loads once).",
    )
    search.add_argument("query", nargs="?", help="the query; omit it to read queries from stdin")
    search.add_argument("--k", type=int, default=5, help="how many chunks to return (default: 5)")
    search.add_argument(
        "--files", nargs="+", metavar="NAME", help="search only these documents (names as --list shows)"
    )
    search.add_argument("--json", action="store_true", help="print one JSON object per query")
    # --k is search's own; neighbours are what a model reads beside a hit, not what search prints
    add_setting_options(
        search, used=STORAGE + QUERY_EMBEDDING + _without(RETRIEVAL, "top_k", "context_neighbours") + GENERAL
    )
    _add_ask(commands)
    add_summarize(commands)
    return parser


def _add_ask(commands) -> None:
    ask = commands.add_parser(
        "ask",
        usage=f"{USAGE} [QUESTION]",
        help="answer a question from the documents, citing file and page",
        description="Stream an answer to QUESTION, then list its numbered sources (file, page, text). "
        "Without QUESTION, read one question per line from stdin and print one JSON line each "
        "(the model loads once).",
    )
    ask.add_argument("question", nargs="?", help="the question; omit it to read questions from stdin")
    ask.add_argument(
        "--strategy", choices=STRATEGY_NAMES, default=None,
        help=f"how sources reach the model [env RAG_STRATEGY; default: {_default('strategy')}]: auto picks stuff "
        "when the sources fit the context window, else map_reduce; extractive needs no model",
    )  # fmt: skip
    ask.add_argument(
        "--k", type=int, default=None, help=f"sources to retrieve [env RAG_TOP_K; default: {_default('top_k')}]"
    )
    ask.add_argument(
        "--max-new-tokens", type=int, default=None,
        help=f"most tokens in the answer [env RAG_MAX_NEW_TOKENS; default: {_default('max_new_tokens')}]",
    )  # fmt: skip
    ask.add_argument(
        "--temperature", type=float, default=None,
        help=f"sampling temperature, 0 is deterministic [env RAG_TEMPERATURE; default: {_default('temperature')}]",
    )  # fmt: skip
    ask.add_argument(
        "--files", nargs="+", metavar="NAME", help="answer only from these documents (names as --list shows)"
    )
    ask.add_argument(
        "--history", type=Path, metavar="FILE",
        help='JSON conversation so far: [{"role": "user"|"assistant", "content": ...}] or [[question, answer], ...]; '
        "the question is first rewritten into a standalone one",
    )  # fmt: skip
    ask.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    used = STORAGE + QUERY_EMBEDDING + _without(RETRIEVAL, "top_k") + MODEL + GENERAL  # --k is ask's own
    add_setting_options(ask, used=used)


def _without(names: tuple[str, ...], *left_out: str) -> tuple[str, ...]:
    return tuple(n for n in names if n not in left_out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"ask": _ask, "search": _search, "summarize": run_summarize}
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level)
        service = RagService(settings)
        return commands[args.command](service, args)
    except (ConfigurationError, InvalidRequestError) as exc:
        return fail(str(exc), EXIT_USAGE)
    except RagError as exc:
        return fail(error_message(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _search(service: RagService, args: argparse.Namespace) -> int:
    if args.query is not None:
        result = service.search(SearchRequest.of(service.settings, query=args.query, k=args.k, files=args.files))
        if args.json:
            print_json(result.to_dict())
        else:
            print_search(result, console())
        return EXIT_OK
    return _search_stdin(service, args)


def _search_stdin(service: RagService, args: argparse.Namespace) -> int:
    """One JSON line per input line; a bad query gets an error line, the rest go on."""
    code = EXIT_OK
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = SearchRequest.of(service.settings, query=line.strip(), k=args.k, files=args.files)
            print_json(service.search(request).to_dict())
        except RagError as exc:
            print_json({"query": line.strip(), "error": error_message(exc)})
            code = EXIT_FAILED
    return code


def _ask(service: RagService, args: argparse.Namespace) -> int:
    history = _read_history(args.history)
    if args.question is None:
        return _ask_stdin(service, args, history)
    request = _request(service, args, args.question, history)
    if args.json:
        print_json(service.answer(request).to_dict())
    else:
        print_answer_stream(service.ask(request), console())
    return EXIT_OK


def _ask_stdin(service: RagService, args: argparse.Namespace, history: list) -> int:
    """One JSON line per question line; a bad question gets an error line, the rest go on."""
    code = EXIT_OK
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print_json(service.answer(_request(service, args, line.strip(), history)).to_dict())
        except RagError as exc:
            print_json({"question": line.strip(), "error": error_message(exc)})
            code = EXIT_FAILED
    return code


def _request(service: RagService, args: argparse.Namespace, question: str, history: list) -> AskRequest:
    return AskRequest.of(
        service.settings, question=question, strategy=args.strategy, k=args.k, files=args.files, history=history,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature,
    )  # fmt: skip


def _read_history(path: Path | None) -> list:
    if path is None:
        return []
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(f"cannot read the history file {path}: {exc}") from None
    if not isinstance(history, list):
        raise InvalidRequestError(f"the history file {path} must hold a JSON list")
    return history
