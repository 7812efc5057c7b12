"""Parse flags, call RagService, print the report; no ingest logic lives here."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rag_app.cli.options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    GENERAL,
    QUERY_EMBEDDING,
    READING,
    STORAGE,
    USAGE,
    add_setting_options,
    configure_logging,
    error_message,
    fail,
    settings_from_args,
)
from rag_app.cli.render import BarProgress, console, documents_table, ingest_summary, ingest_table, print_json
from rag_app.errors import ConfigurationError, RagError
from rag_app.ingestion.progress import EmbeddingBatch, IngestProgress
from rag_app.service import RagService

EPILOG = """\
exit codes: 0 every file ingested or unchanged; 1 some files failed (the others
are stored) or the operation failed; 2 usage or configuration error; 130 interrupted.

examples:
  python -m ingest ~/papers/ --collection papers
  python -m ingest report.pdf --password s3cret
  python -m ingest --list
  python -m ingest --delete "report 2023.pdf"
  python -m ingest --reset --yes
  python -m ingest --restore-texts --collection papers
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        usage=f"{USAGE} [PATH ...]",
        description="Ingest PDF, .txt and .md files (folders are walked recursively) into a "
        "Chroma collection, page-accurate and incremental: unchanged files are skipped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, help="files and folders to ingest")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the stored documents and exit")
    action.add_argument("--delete", metavar="NAME", help="remove the document stored under NAME (as --list shows it)")
    action.add_argument("--reset", action="store_true", help="delete every document of the collection (asks first)")
    action.add_argument(
        "--restore-texts", action="store_true",
        help="ingest again the documents whose chunk texts were lost (their chunk table deleted or damaged), from "
        "their stored uploads or the paths they were read from; says which files it cannot find",
    )  # fmt: skip
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (with --reset)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, without progress bars")
    parser.add_argument(
        "--password", action="append", default=[], metavar="PW",
        help="password to try on encrypted PDFs (repeatable; the empty password is always tried)",
    )  # fmt: skip
    add_setting_options(parser, used=STORAGE + QUERY_EMBEDDING + READING + GENERAL)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.paths or args.list or args.delete or args.reset or args.restore_texts):
        parser.print_usage(sys.stderr)
        return fail("give files or folders to ingest, or --list, --delete NAME, --reset or --restore-texts", EXIT_USAGE)
    if args.paths and (args.list or args.delete or args.reset or args.restore_texts):
        return fail("paths cannot be combined with --list, --delete, --reset or --restore-texts", EXIT_USAGE)
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level)
        return _run(RagService(settings), args)
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    except RagError as exc:
        return fail(error_message(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return fail(
            "interrupted: files already reported are stored; the file in progress was rolled back", EXIT_INTERRUPTED
        )


def _run(service: RagService, args: argparse.Namespace) -> int:
    if args.list:
        return _list(service, args)
    if args.delete:
        return _delete(service, args)
    if args.reset:
        return _reset(service, args)
    if args.restore_texts:
        return _restore_texts(service, args)
    return _ingest(service, args)


class StopWhenInterrupted(IngestProgress):
    """Passes progress on, and stops the run at the next embedding batch or file once Ctrl-C was pressed.

    Ctrl-C raises KeyboardInterrupt wherever the main thread is; when that is inside a finalizer or a
    callback run by a library, Python prints it and carries on. The signal is therefore also
    remembered here, so the run stops (and rolls back the file in progress) all the same.
    """

    def __init__(self, inner: IngestProgress | None) -> None:
        self.inner = inner
        self.requested = False

    def on_signal(self, signum, frame) -> None:
        self.requested = True
        raise KeyboardInterrupt

    def _check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def _passed(self, event: str, *args) -> None:
        if self.inner:
            getattr(self.inner, event)(*args)
        self._check()

    def start(self, files: int) -> None:
        self._passed("start", files)

    def sized(self, sizes: dict[str, int]) -> None:
        self._passed("sized", sizes)

    def page_read(self, name: str, done: int, total: int) -> None:
        self._passed("page_read", name, done, total)

    def ocr_page(self, name: str, done: int, total: int) -> None:
        self._passed("ocr_page", name, done, total)

    def chunking(self, name: str, done: int, of: int) -> None:
        self._passed("chunking", name, done, of)

    def embedding(self, batch: EmbeddingBatch) -> None:
        self._passed("embedding", batch)

    def embedded(self, count: int) -> None:
        self._passed("embedded", count)

    def storing(self, batch: EmbeddingBatch) -> None:
        self._passed("storing", batch)

    def file_done(self, report) -> None:
        self._passed("file_done", report)

    def close(self) -> None:
        if self.inner:
            self.inner.close()


def _ingest(service: RagService, args: argparse.Namespace) -> int:
    return _run_ingest(lambda progress: service.ingest(args.paths, args.password, progress), args)


def _restore_texts(service: RagService, args: argparse.Namespace) -> int:
    if not service.lost_texts():
        print(f"nothing to restore: every document of collection {service.settings.collection!r} has its texts")
        return EXIT_OK
    return _run_ingest(lambda progress: service.restore_texts(progress=progress), args)


def _run_ingest(ingest, args: argparse.Namespace) -> int:
    """Run ``ingest(progress)`` with progress bars (none with --json) and Ctrl-C handling; print its report."""
    progress = StopWhenInterrupted(None if args.json else BarProgress())
    previous = signal.signal(signal.SIGINT, progress.on_signal)
    try:
        report = ingest(progress)
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print_json(report.to_dict())
    else:
        out = console()
        out.print(ingest_table(report))
        out.print(ingest_summary(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _list(service: RagService, args: argparse.Namespace) -> int:
    docs = service.list_documents()
    if args.json:
        print_json([d.to_dict() for d in docs])
    else:
        console().print(documents_table(service.settings.collection, docs))
    lost = service.lost_texts() if docs else None
    if lost:
        print(f"warning: {lost.message()}", file=sys.stderr)
    return EXIT_OK


def _delete(service: RagService, args: argparse.Namespace) -> int:
    doc = service.delete_document(args.delete)
    if args.json:
        print_json({"deleted": doc.to_dict()})
    else:
        print(f"deleted {doc.name!r} ({doc.pages} pages, {doc.chunks} chunks)")
    return EXIT_OK


def _reset(service: RagService, args: argparse.Namespace) -> int:
    collection = service.settings.collection
    count = len(service.list_documents())
    if not args.yes and not _confirm(f"Delete all {count} documents of collection {collection!r}? [y/N] "):
        return fail("reset cancelled: nothing was deleted (add --yes to skip the question)", EXIT_USAGE)
    service.reset()
    if args.json:
        print_json({"collection": collection, "deleted_documents": count})
    else:
        print(f"collection {collection!r} is empty ({count} documents deleted)")
    return EXIT_OK


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in {"y", "yes"}
