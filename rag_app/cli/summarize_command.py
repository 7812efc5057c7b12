"""`python -m rag_app summarize FILE...`: a summary of whole stored documents, from every page."""

from __future__ import annotations

import argparse
import sys

from rag_app.answering.events import StatusEvent, TokenEvent
from rag_app.cli.options import EXIT_OK, GENERAL, MODEL, STORAGE, USAGE, add_setting_options
from rag_app.cli.render import print_json
from rag_app.prompts import LANGUAGES
from rag_app.requests import SUMMARY_WORDS, SummaryRequest
from rag_app.summaries.summarizer import DEFAULT_WORDS, Summary


def add_summarize(commands) -> None:
    summarize = commands.add_parser(
        "summarize",
        usage=f"{USAGE} FILE [FILE ...]",
        help="summarize whole documents from every page, citing pages",
        description="Stream a summary of the stored documents FILE... built from every page by recursive "
        "map-reduce (pages grouped to fill the model's context window, partial summaries combined until one "
        "fits), citing pages as [n]. Progress goes to stderr. Without an answer model there is no summary: "
        "it says so and quotes each page's heading and first sentence instead.",
    )
    summarize.add_argument("files", nargs="+", metavar="FILE", help="stored document names, as --list shows them")
    summarize.add_argument(
        "--language", choices=LANGUAGES, default=None,
        help="language of the summary (default: the documents' own: Chinese documents get a Chinese summary)",
    )  # fmt: skip
    summarize.add_argument(
        "--max-words", type=int, default=None,
        help=f"length of the summary in words, characters for Chinese ({SUMMARY_WORDS[0]}-{SUMMARY_WORDS[1]}; default: {DEFAULT_WORDS})",
    )  # fmt: skip
    summarize.add_argument(
        "--max-new-tokens", type=int, default=None,
        help="most tokens of the final summary (default: enough for --max-words)",
    )  # fmt: skip
    summarize.add_argument("--temperature", type=float, default=None, help="sampling temperature, 0 is deterministic")
    summarize.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_setting_options(
        summarize, used=STORAGE + tuple(n for n in MODEL if n != "strategy") + GENERAL
    )  # pages come from the store: no embedding


def run_summarize(service, args: argparse.Namespace) -> int:
    request = SummaryRequest.of(
        service.settings, files=args.files or [], language=args.language, max_words=args.max_words,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature,
    )  # fmt: skip
    events = service.summarize(request)
    summary = None
    for event in events:
        if isinstance(event, TokenEvent) and not args.json:
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, StatusEvent):
            print(f"… {event.message}", file=sys.stderr, flush=True)
        elif getattr(event, "kind", "") == "done":
            summary = event.summary
            if summary.mode == "page_guide" and not args.json:
                sys.stdout.write(summary.text)
    if args.json:
        print_json(summary.to_dict())
    else:
        sys.stdout.write("\n")
        print_cited_pages(summary)
    return EXIT_OK


def print_cited_pages(summary: Summary) -> None:
    several = len(summary.files) > 1
    if summary.cited:
        print()
    for page in summary.cited:
        print(f"[{page['n']}] {page['file']}, p. {page['page']}" if several else f"[{page['n']}] p. {page['page']}")
    for note in summary.warnings:
        print(f"note: {note}", file=sys.stderr)
    s = summary.stats
    if summary.mode == "page_guide":
        quoted = len({(e.file, e.page) for e in summary.page_guide})
        print(
            f"no summary (no answer model): headings and first sentences of {quoted} of {s.pages} pages",
            file=sys.stderr,
        )
        return
    print(
        f"{s.pages} pages, {s.parts} parts, {s.rounds} combining rounds, {s.calls} model calls; model {summary.model}",
        file=sys.stderr,
    )
