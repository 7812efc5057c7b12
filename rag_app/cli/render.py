"""Terminal output of the CLIs: progress bars, report tables, search hits."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tqdm import tqdm

from rag_app.answering.events import Answer, DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.ingestion.progress import EmbeddingBatch, IngestProgress
from rag_app.records import DocumentInfo, FileReport, FileStatus, IngestReport
from rag_app.retrieval.retriever import SearchResult

_STATUS_STYLE = {
    FileStatus.INGESTED: "green",
    FileStatus.REPLACED: "cyan",
    FileStatus.UNCHANGED: "dim",
    FileStatus.FAILED: "bold red",
}


def console() -> Console:
    """Rich console; when piped, wide enough that file names and reasons are not folded."""
    width = None if sys.stdout.isatty() else 240
    return Console(soft_wrap=False, highlight=False, width=width)


def print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False), flush=True)


class BarProgress(IngestProgress):
    """tqdm bars on stderr: files done, chunks embedded, pages read of the file being parsed, and (while a
    scan is read) pages read by OCR."""

    def __init__(self) -> None:
        self.files: tqdm | None = None
        self.chunks = tqdm(total=0, desc="embedding", unit="chunk", position=1, leave=False, file=sys.stderr)
        self.pages: tqdm | None = None
        self.ocr: tqdm | None = None

    def start(self, files: int) -> None:
        self.files = tqdm(total=files, desc="files", unit="file", position=0, file=sys.stderr)

    def page_read(self, name: str, done: int, total: int) -> None:
        self.pages = _page_bar(self.pages, f"reading {name[:40]}", done, total, position=2)

    def ocr_page(self, name: str, done: int, total: int) -> None:
        self.ocr = _page_bar(self.ocr, f"OCR {name[:40]}", done, total, position=3)

    def embedding(self, batch: EmbeddingBatch) -> None:
        self.chunks.reset(total=batch.chunks)
        self.chunks.set_description(f"embedding {batch.label[:40]}")

    def embedded(self, count: int) -> None:
        self.chunks.update(count)

    def file_done(self, report: FileReport) -> None:
        if self.files is not None:
            self.files.update(1)

    def close(self) -> None:
        for bar in (self.ocr, self.pages):
            if bar is not None:
                bar.close()
        self.chunks.close()
        if self.files is not None:
            self.files.close()


def _page_bar(bar: tqdm | None, desc: str, done: int, total: int, position: int) -> tqdm:
    """A bar of pages, started for the first file and reset for each next one."""
    if bar is None:
        bar = tqdm(total=total, desc=desc, unit="page", position=position, leave=False, file=sys.stderr)
    elif bar.desc != desc or bar.total != total:  # the next file
        bar.reset(total=total)
        bar.set_description(desc)
    bar.update(done - bar.n)
    return bar


def ingest_table(report: IngestReport) -> Table:
    table = Table(title=f"Ingest into collection {report.collection!r}", title_justify="left")
    for column, justify in [("file", "left"), ("status", "left"), ("pages", "right"), ("chunks", "right"),
                            ("no text", "right"), ("seconds", "right"), ("reason / note", "left")]:  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for f in report.files:
        style = _STATUS_STYLE[f.status]
        table.add_row(
            f.name, f"[{style}]{f.status.value}[/]", str(f.pages), str(f.chunks),
            str(len(f.empty_pages)) if f.empty_pages else "", f"{f.seconds:.1f}", f.reason or f.note or "",
        )  # fmt: skip
    return table


def ingest_summary(report: IngestReport) -> str:
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in FileStatus if report.count(s))
    pages = sum(f.pages for f in report.files if f.status in (FileStatus.INGESTED, FileStatus.REPLACED))
    parts = [f"{len(report.files)} files: {counts or 'nothing to do'}", f"{report.seconds:.1f} s"]
    if pages and report.seconds:
        parts.append(f"{pages / report.seconds:.1f} pages/s")
    if report.skipped:
        parts.append(f"{len(report.skipped)} unsupported files skipped")
    if report.embedder.get("note"):  # a faster embedder was not used here: say why
        parts.append(report.embedder["note"])
    return "; ".join(parts)


def documents_table(collection: str, docs: list[DocumentInfo]) -> Table:
    table = Table(title=f"Collection {collection!r}: {len(docs)} documents", title_justify="left")
    for column, justify in [("name", "left"), ("pages", "right"), ("chunks", "right"),
                            ("sha256", "left"), ("ingested at", "left")]:  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for d in docs:
        table.add_row(d.name, str(d.pages), str(d.chunks), d.sha256[:12], d.ingested_at)
    return table


def print_search(result: SearchResult, out: Console) -> None:
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if not result.hits:
        out.print("no matching chunks")
    for rank, hit in enumerate(result.hits, 1):
        # no score: hits are ranked by the fused ranking, and their cosine similarities need not follow it
        out.print(f"[bold]{escape(f'[{rank}] {hit.file}, p. {hit.page}')}[/]  offset {hit.offset}")
        out.print(hit.text.strip(), markup=False)
        out.print()


def snippet(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def print_answer_stream(events, out: Console) -> Answer | None:
    """Stream tokens to stdout as they come, status to stderr, then the numbered sources."""
    answer = None
    for event in events:
        if isinstance(event, TokenEvent):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, StatusEvent):
            print(f"… {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, SourcesEvent) and not event.sources:
            print("… no matching passage was retrieved", file=sys.stderr, flush=True)
        elif isinstance(event, DoneEvent):
            answer = event.answer
    sys.stdout.write("\n")
    if answer is not None:
        print_sources(answer, out)
    return answer


def print_sources(answer: Answer, out: Console) -> None:
    out.print()
    for source in answer.sources:
        mark = "" if source.cited else "  [dim](retrieved, not cited)[/]"
        line = escape(f'[{source.n}] {source.hit.file}, p. {source.hit.page} — "{snippet(source.hit.text)}"')
        out.print(line + mark)
    notes = []
    if answer.invalid_citations:
        notes.append(f"removed citations of sources that were not given: {', '.join(answer.invalid_citations)}")
    if answer.unverified_quotes:
        notes.append(f"quotes not found in the cited sources: {'; '.join(answer.unverified_quotes)}")
    if answer.dropped_sources:
        notes.append(f"sources left out to fit the context window: {answer.dropped_sources}")
    for note in notes + answer.warnings:
        print(f"note: {note}", file=sys.stderr)
    print(f"strategy {answer.strategy} ({answer.strategy_reason}); model {answer.model}", file=sys.stderr)
