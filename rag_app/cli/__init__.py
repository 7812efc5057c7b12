"""`python -m rag_app`: search (and later ask) from the terminal or a script."""

from __future__ import annotations

import argparse
import sys

from rag_app.cli.options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_setting_options,
    configure_logging,
    fail,
    settings_from_args,
)
from rag_app.cli.render import console, print_json, print_search
from rag_app.errors import ConfigurationError, InvalidRequestError, RagError
from rag_app.service import RagService

SEARCH_SETTINGS = [
    "collection", "data_dir", "embedding_model", "embedding_device", "chroma_host", "chroma_port", "log_level",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag_app", description="Question answering over your own PDFs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search = commands.add_parser(
        "search",
        help="print the chunks that best match a query",
        description="Print the top-k chunks for QUERY with file, page, score and text. Without QUERY, "
        "read one query per line from stdin and print one JSON line each (the model loads once).",
    )
    search.add_argument("query", nargs="?", help="the query; omit it to read queries from stdin")
    search.add_argument("--k", type=int, default=5, help="how many chunks to return (default: 5)")
    search.add_argument(
        "--files", nargs="+", metavar="NAME", help="search only these documents (names as --list shows)"
    )
    search.add_argument("--json", action="store_true", help="print one JSON object per query")
    add_setting_options(search, SEARCH_SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args, SEARCH_SETTINGS)
        configure_logging(settings.log_level)
        return _search(RagService(settings), args)
    except (ConfigurationError, InvalidRequestError) as exc:
        return fail(str(exc), EXIT_USAGE)
    except RagError as exc:
        return fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _search(service: RagService, args: argparse.Namespace) -> int:
    if args.query is not None:
        result = service.search(args.query, args.k, args.files)
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
            print_json(service.search(line.strip(), args.k, args.files).to_dict())
        except RagError as exc:
            print_json({"query": line.strip(), "error": str(exc)})
            code = EXIT_FAILED
    return code
