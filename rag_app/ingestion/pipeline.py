"""The ingest pipeline: discover files, skip what is stored, parse, chunk, embed, store.

Files are identified by the sha256 of their bytes. The files embedded together are written
with one atomic :meth:`DocumentStore.write_many`, so a run that is interrupted (Ctrl-C, a
kill) leaves nothing half visible (the store's ``recover`` removes the partial chunks).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag_app.embedding.embedder import LocalEmbeddings
from rag_app.ingestion.chunking import TokenChunker
from rag_app.ingestion.loaders import SUPPORTED_SUFFIXES
from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool, OcrProgress
from rag_app.ingestion.prepared import ChunkPlan
from rag_app.records import Chunk, DocumentInfo, ExtractedDocument, FileReport, FileStatus, IngestReport
from rag_app.retrieval.fusion import chinese_note
from rag_app.storage.store import DocumentStore, FileWrite
from rag_app.storage.writer_process import StoreProcess

log = logging.getLogger(__name__)
FLUSH_BATCHES = 16  # embedding batches' worth of chunks gathered across files before embedding them
# Files to store at which the writes move to a process of their own (rag_app.storage.writer_process): starting
# it takes a second or more (1.6-3 s on the H200 machines), and storing a few files beside the
# embedder costs less.
WRITER_PROCESS_FILES = 8


class IngestProgress:
    """Receives progress events; the CLI and the web UI draw bars from them."""

    def start(self, files: int) -> None: ...
    def ocr_page(self, name: str, done: int, total: int) -> None: ...  # pages of ``name`` read by OCR so far
    def embedding(self, name: str, chunks: int) -> None: ...
    def embedded(self, count: int) -> None: ...
    def file_done(self, report: FileReport) -> None: ...
    def close(self) -> None: ...


@dataclass
class Candidate:
    """A file found on disk and the name it is stored under.

    ``stored_path`` is where the file will live once stored, when that is not where it is read
    from (an upload is read from a staging file and moved into place only if it is stored)."""

    name: str
    path: Path
    sha256: str = ""
    size: int = 0
    stored_path: Path | None = None

    @property
    def final_path(self) -> str:
        return str((self.stored_path or self.path).resolve())


@dataclass
class _Ready:
    """A parsed file with its chunks, waiting to be embedded with others and stored."""

    group: _Group
    doc: ExtractedDocument
    chunks: list[Chunk]
    since: float  # when it was parsed (perf_counter)


@dataclass
class _Group:
    """Candidates with identical bytes: parsed once, stored once, registered under each name."""

    sha256: str
    members: list[Candidate] = field(default_factory=list)


def discover(paths: Sequence[Path]) -> tuple[list[Candidate], list[str], list[FileReport]]:
    """Files to ingest (folders walked recursively), unsupported files skipped, missing paths."""
    found: dict[str, Candidate] = {}
    skipped: list[str] = []
    missing: list[FileReport] = []
    for root in paths:
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p, root)):
                if path.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.setdefault(
                        path.relative_to(root).as_posix(), Candidate(path.relative_to(root).as_posix(), path)
                    )
                else:
                    skipped.append(str(path))
        elif root.is_file():
            found.setdefault(root.name, Candidate(root.name, root))
        else:
            missing.append(FileReport(root.name, str(root), FileStatus.FAILED, reason="no such file or directory"))
    return list(found.values()), skipped, missing


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ingestor:
    """Runs one ingest over many files into one collection."""

    def __init__(
        self,
        store: DocumentStore,
        embeddings: LocalEmbeddings,
        chunker: TokenChunker,
        pool: ExtractionPool,
        passwords: dict[str, str] | None = None,
        progress: IngestProgress | None = None,
        parser: str = "auto",
        store_process: Callable[[], StoreProcess] | None = None,
        writer_process_files: int | None = None,
    ) -> None:
        """``store_process`` starts the store's writer process (None: every write in this process);
        it is used when ``writer_process_files`` (default :data:`WRITER_PROCESS_FILES`) or more files
        are to be stored."""
        self.store = store
        self.store_process = store_process
        self.writer_process_files = writer_process_files
        self.embeddings = embeddings
        self.chunker = chunker
        self.pool = pool
        self.passwords = passwords or {}
        self.parser = parser
        self.progress = progress or IngestProgress()
        # parse: seconds in the workers (summed over them); wait: this thread blocked on them; store: the
        # writer thread's seconds; store_wait: this thread blocked on the writer.
        self.timings = {"parse": 0.0, "wait": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0, "store_wait": 0.0}
        self._warming: threading.Thread | None = None

    def run(self, paths: Sequence[Path], extra_passwords: Sequence[str] = ()) -> IngestReport:
        candidates, skipped, missing = discover(paths)
        report = self.run_candidates(candidates, extra_passwords)
        report.skipped, report.files[:0] = skipped, missing
        return report

    def run_candidates(self, candidates: Sequence[Candidate], extra_passwords: Sequence[str] = ()) -> IngestReport:
        """Ingest files already named (uploads choose their names themselves)."""
        started = time.perf_counter()
        report = IngestReport(self.store.collection)
        if len(candidates) >= (self.writer_process_files or WRITER_PROCESS_FILES):
            self.pool.start(len(candidates))  # a large run: the parsers start while the files are hashed
            self._warming = threading.Thread(target=self._warm_up, name="rag-embed-warm-up", daemon=True)
            self._warming.start()
        self.store.refresh()
        self.store.recover()
        self.progress.start(len(candidates))
        groups = self._plan(candidates, report)
        plan = self._chunk_plan()
        jobs = {
            g.sha256: ExtractionJob(
                g.members[0].path, self._passwords_for(g, extra_passwords), self.parser, g.sha256, plan
            )
            for g in groups
        }
        by_path = {jobs[g.sha256].path: g for g in groups}

        def on_ocr(event: OcrProgress) -> None:
            self.progress.ocr_page(by_path[event.job.path].members[0].name, event.done, event.total)

        pending: list[_Ready] = []
        threshold = self.writer_process_files or WRITER_PROCESS_FILES
        in_process = self.store_process is not None and len(groups) >= threshold
        writer = _Writer(self, report, self.store_process if in_process else None)
        writer.open()  # a writer process starts while the first files are parsed
        try:
            for job, doc in self._parsed(jobs.values(), on_ocr):
                self.timings["parse"] += doc.seconds
                ready = self._ready(by_path[job.path], doc, report)
                if ready is not None:
                    pending.append(ready)
                gathered = sum(len(r.chunks) for r in pending)
                # Full batches for the embedder; and none kept back while the writer has nothing to do.
                if gathered >= self.flush_chunks or (writer.idle and gathered >= self.embeddings.batch_size):
                    self._store_ready(pending, writer)
            self._store_ready(pending, writer)
            writer.wait()
        finally:
            self._warmed()  # a run that embedded nothing leaves no warm-up behind it
            writer.stop()  # an interrupted run: the write in hand is finished, no other started
            if in_process:
                self.store.refresh()  # see what the writer process stored
        self.progress.close()
        report.seconds = time.perf_counter() - started
        report.timings = {k: round(v, 3) for k, v in self.timings.items()}
        return report

    @property
    def flush_chunks(self) -> int:
        """Chunks of parsed files gathered before they are embedded together (files of a few chunks
        would otherwise make batches too small to keep a GPU busy)."""
        return self.embeddings.batch_size * FLUSH_BATCHES

    def _chunk_plan(self) -> ChunkPlan | None:
        """Chunking in the parser processes, when they can make exactly this chunker's chunks."""
        chunker = self.chunker
        if chunker.counts_with != self.embeddings.count_tokens:
            return None
        return self.embeddings.chunk_plan(chunker.chunk_size, chunker.chunk_overlap, chunker.max_tokens)

    def _parsed(self, jobs, on_ocr=None) -> Iterator[tuple[ExtractionJob, ExtractedDocument]]:
        """The pool's results, timing how long this thread waits for them."""
        results = self.pool.run(jobs, on_ocr)
        try:
            while True:
                started = time.perf_counter()
                item = next(results, None)
                self.timings["wait"] += time.perf_counter() - started
                if item is None:
                    return
                yield item
        finally:
            results.close()  # stops the workers at once when the caller stops early

    # ----- planning --------------------------------------------------------------------

    def _plan(self, candidates: list[Candidate], report: IngestReport) -> list[_Group]:
        """Hash every file; report unchanged ones and known content now; group the rest by content."""
        groups: dict[str, _Group] = {}
        for candidate in candidates:
            try:
                candidate.size = candidate.path.stat().st_size
                candidate.sha256 = file_sha256(candidate.path)
            except OSError as exc:
                self._emit(report, self._failed(candidate, f"cannot read file: {exc.strerror or exc}"))
                continue
            done = self._already_stored(candidate)
            if done is not None:
                self._emit(report, done)
            else:
                groups.setdefault(candidate.sha256, _Group(candidate.sha256)).members.append(candidate)
        return list(groups.values())

    def _already_stored(self, candidate: Candidate) -> FileReport | None:
        """A report when nothing needs embedding: same bytes and settings, under this or another name."""
        current = self.store.get_document(candidate.name)
        if current is not None and current.sha256 == candidate.sha256 and self._is_current(current):
            return self._report(candidate, FileStatus.UNCHANGED, current)
        twins = [d for d in self.store.documents_with_sha(candidate.sha256) if self._is_current(d)]
        if not twins:
            return None
        status = FileStatus.REPLACED if current is not None else FileStatus.INGESTED
        info = _renamed(twins[0], candidate.name, candidate.final_path)
        info.ingested_at = _now()
        self.store.register(info)
        if current is not None:
            self.store.release(current)
        return self._report(candidate, status, info, note=f"same content as {twins[0].name!r}: stored once")

    def _is_current(self, doc: DocumentInfo) -> bool:
        """Stored with today's settings, and its chunks' texts are still there (a lost SQLite file beside
        an embedded Chroma loses them: the file is ingested again)."""
        return (
            doc.chunking == self.chunker.fingerprint
            and doc.embedding == self.embeddings.fingerprint
            and self.store.has_texts(doc.sha256)
        )

    def _passwords_for(self, group: _Group, extra: Sequence[str]) -> tuple[str, ...]:
        keys = [k for m in group.members for k in (m.name, m.path.name, str(m.path))]
        return tuple(dict.fromkeys([self.passwords[k] for k in keys if k in self.passwords] + list(extra)))

    # ----- storing ----------------------------------------------------------------------

    def _ready(self, group: _Group, doc: ExtractedDocument, report: IngestReport) -> _Ready | None:
        """A parsed file's chunks (made by its parser process, else here); None, reported, if it has none."""
        chunks: list[Chunk] = []
        if doc.error is None:
            chunks = doc.prepared.chunks if doc.prepared is not None else self._chunk(group, doc)
            if not chunks:
                doc.error = _no_text_reason(doc)
        if doc.error is not None:
            for member in group.members:
                self._emit(report, self._failed(member, doc.error, doc))
            return None
        return _Ready(group, doc, chunks, time.perf_counter())

    def _store_ready(self, pending: list[_Ready], writer: _Writer) -> None:
        """Embed the chunks of the files gathered so far together, then hand them to the writer, which
        stores each file atomically while the next files are parsed and embedded."""
        if not pending:
            return
        self.progress.embedding(_names(pending), sum(len(r.chunks) for r in pending))
        started = time.perf_counter()
        vectors = self._embed(pending)
        self.timings["embed"] += time.perf_counter() - started
        items, start = [], 0
        for ready in pending:
            items.append((ready, vectors[start : start + len(ready.chunks)]))
            start += len(ready.chunks)
        writer.submit(items)
        pending.clear()

    def _warm_up(self) -> None:
        """The embedder prepares its batch shapes on a GPU while the first files are parsed (nothing to
        do elsewhere); a failure leaves it to embed as it would have without."""
        try:
            self.embeddings.warm_up(self.chunker.chunk_size)
        except Exception as exc:  # noqa: BLE001 - warming up is an optimisation, never the run's failure
            log.warning("the embedder could not warm up: %s", exc)

    def _warmed(self) -> None:
        """Until the warm-up has ended: the embedder is never used by two threads at once."""
        if self._warming is not None:
            self._warming.join()
            self._warming = None

    def _embed(self, pending: list[_Ready]) -> np.ndarray:
        """One embedding call for every gathered chunk: from token ids when every file has them."""
        self._warmed()
        prepared = [r.doc.prepared for r in pending]
        if all(p is not None for p in prepared):
            sequences = [p.token_ids[p.starts[i] : p.starts[i + 1]] for p in prepared for i in range(len(p.chunks))]
            return self.embeddings.embed_tokens(sequences, self.progress.embedded)
        return self.embeddings.embed_array([c.text for r in pending for c in r.chunks], self.progress.embedded)

    def _store_groups(
        self, items: Sequence[tuple[_Ready, np.ndarray]], store: DocumentStore | StoreProcess
    ) -> list[FileReport]:
        """Store embedded file contents, each under each of its names, in one atomic write (``store``:
        this process's, or the writer process): one registry commit for all, and the shards of a
        sharded collection written at once."""
        started = time.perf_counter()
        previous = [{m.name: store.get_document(m.name) for m in ready.group.members} for ready, _ in items]
        store.write_many([self._file_write(ready, vectors, store) for ready, vectors in items])
        reports = []
        for (ready, _), before in zip(items, previous, strict=True):
            group, doc = ready.group, ready.doc
            written = [self._report_written(m, before[m.name], doc, len(ready.chunks), group) for m in group.members]
            for old in before.values():
                if old is not None and old.sha256 != group.sha256:
                    store.release(old)
            elapsed = doc.seconds + time.perf_counter() - ready.since
            for file_report in written:
                file_report.seconds = round(elapsed, 3)
            reports += written
        self.timings["store"] += time.perf_counter() - started
        return reports

    def _chunk(self, group: _Group, doc: ExtractedDocument) -> list[Chunk]:
        started = time.perf_counter()
        chunks = self.chunker.split_pages(doc.pages, group.sha256)
        self.timings["chunk"] += time.perf_counter() - started
        return chunks

    def _file_write(self, ready: _Ready, vectors: np.ndarray, store: DocumentStore | StoreProcess) -> FileWrite:
        """The chunks of one file content and every name it is stored under (those stored before too)."""
        group, doc = ready.group, ready.doc
        info = self._document_info(group.members[0], doc, len(ready.chunks))
        names = {m.name: m.final_path for m in group.members}
        for other in store.documents_with_sha(group.sha256):  # stored names of the same content
            names.setdefault(other.name, other.path)
        documents = [_renamed(info, name, path) for name, path in names.items()]
        terms = doc.prepared.terms if doc.prepared is not None else None
        return FileWrite(documents, ready.chunks, vectors, self._chunk_metadata(group.members[0], doc), terms)

    def _chunk_metadata(self, candidate: Candidate, doc: ExtractedDocument) -> dict:
        """What every chunk record carries besides its place: what search hits show. Settings and dates
        live in the registry (Chroma's cost grows with every metadata field of every chunk)."""
        return {"file": candidate.name, "sha256": candidate.sha256, "pages": doc.total_pages}

    def _document_info(self, candidate: Candidate, doc: ExtractedDocument, chunks: int) -> DocumentInfo:
        return DocumentInfo(
            name=candidate.name,
            sha256=candidate.sha256,
            pages=doc.total_pages,
            chunks=chunks,
            empty_pages=len(doc.empty_pages),
            ingested_at=_now(),
            chunking=self.chunker.fingerprint,
            embedding=self.embeddings.fingerprint,
            path=candidate.final_path,
            size_bytes=candidate.size,
        )

    # ----- reports -----------------------------------------------------------------------

    def _report_written(
        self, candidate: Candidate, previous: DocumentInfo | None, doc: ExtractedDocument, chunks: int, group: _Group
    ) -> FileReport:
        status, note = FileStatus.INGESTED, None
        if previous is not None:
            status, note = FileStatus.REPLACED, _why_replaced(previous, candidate, self)
        if candidate is not group.members[0]:
            note = f"same content as {group.members[0].name!r}: stored once"
        report = FileReport(candidate.name, str(candidate.path), status, doc.total_pages, chunks, doc.empty_pages)
        language = chinese_note(doc.sample_text(), self.embeddings.model_name, self.embeddings.reads_chinese)
        report.sha256, report.note = candidate.sha256, _join_notes(note, _page_notes(doc), language)
        report.ocr_pages = doc.ocr_pages
        return report

    def _report(
        self, candidate: Candidate, status: FileStatus, info: DocumentInfo, note: str | None = None
    ) -> FileReport:
        report = FileReport(
            candidate.name, str(candidate.path), status, info.pages, info.chunks, sha256=candidate.sha256
        )
        report.note = note
        return report

    def _failed(self, candidate: Candidate, reason: str, doc: ExtractedDocument | None = None) -> FileReport:
        report = FileReport(
            candidate.name, str(candidate.path), FileStatus.FAILED, reason=reason, sha256=candidate.sha256
        )
        if doc is not None:
            report.pages, report.empty_pages, report.seconds = doc.total_pages, doc.empty_pages, round(doc.seconds, 3)
        return report

    def _emit(self, report: IngestReport, file_report: FileReport) -> None:
        report.files.append(file_report)
        self.progress.file_done(file_report)


class _Writer:
    """Stores embedded files in a thread of its own, one batch at a time, while the ingesting thread
    parses and embeds the next batch; for a large run the thread hands each call to the writer process.

    On a GPU machine storing and embedding each took about half of the ingesting thread's time, and
    the embedder spends most of its time in CUDA and the tokenizer with the GIL released. Files are
    stored in the order they were embedded, each batch atomically (:meth:`DocumentStore.write_many`). Their
    reports reach the progress in the ingesting thread, at the next hand-over or at the end, as does
    an error of the writer. When the run stops early (Ctrl-C, an error), the write in hand (the files
    embedded together) is finished and no other is started.
    """

    def __init__(
        self, ingestor: Ingestor, report: IngestReport, store_process: Callable[[], StoreProcess] | None = None
    ) -> None:
        self.ingestor, self.report = ingestor, report
        self._start_process = store_process
        self._store_in_use: DocumentStore | StoreProcess = ingestor.store
        self._process: StoreProcess | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done: list[FileReport] = []
        self._stopping = threading.Event()

    def open(self) -> None:
        """Start the writer process, if the run uses one, in the writer's thread (a second or two)."""
        if self._start_process is not None:
            self._run(self._open)

    def _open(self) -> None:
        try:
            self._process = self._store_in_use = self._start_process()
        except BaseException as exc:  # noqa: BLE001 - handed to the ingesting thread, raised there
            self._error = exc

    @property
    def idle(self) -> bool:
        """Nothing to store: the next gathered files need not wait for a full flush."""
        return self._thread is None or not self._thread.is_alive()

    def submit(self, items: list[tuple[_Ready, np.ndarray]]) -> None:
        self.wait()
        self._run(self._store, items)

    def _run(self, target, *args) -> None:
        self._thread = threading.Thread(target=target, args=args, name="rag-ingest-writer", daemon=True)
        self._thread.start()

    def _store(self, items: list[tuple[_Ready, np.ndarray]]) -> None:
        try:
            if not self._stopping.is_set():
                self._done += self.ingestor._store_groups(items, self._store_in_use)
        except BaseException as exc:  # noqa: BLE001 - handed to the ingesting thread, raised there
            self._error = exc

    def wait(self) -> None:
        """Until the batch in hand is stored; reports its files, raises what storing them raised."""
        started = time.perf_counter()
        self._join()
        self.ingestor.timings["store_wait"] += time.perf_counter() - started
        done, self._done = self._done, []
        for file_report in done:
            self.ingestor._emit(self.report, file_report)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def stop(self) -> None:
        """Finish the write in hand and start no other; its reports join the run's, unannounced."""
        self._stopping.set()
        self._join()
        self.report.files += self._done
        self._done = []
        if self._process is not None:
            self._process.close()
            self._process = None

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _names(pending: list[_Ready]) -> str:
    """What one embedding call is embedding, for the progress bar: "a.pdf" or "a.pdf and 3 more files"."""
    first = pending[0].group.members[0].name
    return first if len(pending) == 1 else f"{first} and {len(pending) - 1} more file{'s' * (len(pending) > 2)}"


def _renamed(info: DocumentInfo, name: str, path: str) -> DocumentInfo:
    return DocumentInfo(**{**info.to_dict(), "name": name, "path": path})


def _why_replaced(previous: DocumentInfo, candidate: Candidate, ingestor: Ingestor) -> str:
    if previous.sha256 != candidate.sha256:
        return "content changed"
    if previous.embedding != ingestor.embeddings.fingerprint:
        return "embedding model changed"
    if previous.chunking != ingestor.chunker.fingerprint:
        return "chunk settings changed"
    return "its stored chunk texts were missing"


def _no_text_reason(doc: ExtractedDocument) -> str:
    if doc.total_pages == 0:
        return "no pages"
    if doc.failed_pages and len(doc.failed_pages) == doc.total_pages:
        return f"text extraction failed on all {doc.total_pages} pages"
    return f"no text layer on any of its {doc.total_pages} pages{_ocr_outcome(doc)}"


def _ocr_outcome(doc: ExtractedDocument) -> str:
    """What became of the pages without a text layer, as the end of a note."""
    if doc.ocr_error:
        return f": OCR failed: {doc.ocr_error}"
    if doc.ocr_mode == "off":
        return ": scanned? OCR is off (RAG_OCR=auto reads them)"
    return ", and OCR found no text on them"


def _page_notes(doc: ExtractedDocument) -> str | None:
    notes = []
    if doc.ocr_pages:
        notes.append(f"{len(doc.ocr_pages)} page{'s' if len(doc.ocr_pages) > 1 else ''} read by OCR")
    if doc.empty_pages:
        notes.append(f"{len(doc.empty_pages)} of {doc.total_pages} pages have no text layer{_ocr_outcome(doc)}")
    if doc.failed_pages:
        notes.append(f"text extraction failed on pages {_page_list(doc.failed_pages)}")
    return "; ".join(notes) or None


def _page_list(pages: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, pages[:limit]))
    return shown + (f" and {len(pages) - limit} more" if len(pages) > limit else "")


def _join_notes(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None
