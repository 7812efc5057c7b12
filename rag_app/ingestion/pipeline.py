"""The ingest pipeline: skip what is stored, parse, chunk, embed, store, as an :class:`IngestPlan` lays it out.

Files are identified by the sha256 of their bytes. The files embedded together are written
with one atomic :meth:`~rag_app.storage.store.DocumentStore.write_many`, so a run that is
interrupted (Ctrl-C, a kill) leaves nothing half visible (the store's ``recover`` removes the
partial chunks). The parser processes run ahead of this thread (:mod:`rag_app.ingestion.parsing`);
the store writes in a thread of its own (:class:`WriterThread`), through this process's store or,
in a pipelined plan, through a process of its own (:mod:`rag_app.storage.writer_process`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from rag_app.embedding.chinese import LANGUAGE_SAMPLE_CHARS, ChineseReader, language_sample, reader_changed
from rag_app.embedding.inputs import ChunkPlan
from rag_app.embedding.protocol import Embedder
from rag_app.errors import ChildStoppedError
from rag_app.ingestion.chunking import TokenChunker
from rag_app.ingestion.files import Candidate
from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool, PageProgress
from rag_app.ingestion.plan import IngestPlan
from rag_app.ingestion.progress import EmbeddingBatch, IngestProgress
from rag_app.ingestion.reports import chinese_note, join_notes, no_text_reason, page_notes, why_replaced
from rag_app.records import (
    Chunk,
    DocumentInfo,
    ExtractedDocument,
    FileReport,
    FileStatus,
    IngestReport,
    file_sha256,
)
from rag_app.storage.store import DocumentStore, FileWrite
from rag_app.storage.writer_process import StoreWriter, StoreWriterProcess

log = logging.getLogger(__name__)
FLUSH_BATCHES = 16  # embedding batches' worth of chunks gathered across files before embedding them


@dataclass
class _Group:
    """Candidates with identical bytes: parsed once, stored once, registered under each name."""

    sha256: str
    members: list[Candidate] = field(default_factory=list)


@dataclass
class ReadyFile:
    """A parsed file with its chunks, waiting to be embedded with others and stored."""

    group: _Group
    doc: ExtractedDocument
    chunks: list[Chunk]
    since: float  # when it was parsed (perf_counter)
    reader: str = ""  # the Chinese embedding model that reads it (decided when it is embedded); "": the main one


EmbeddedFiles = list[tuple[ReadyFile, np.ndarray]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ingestor:
    """Runs one ingest over many files into one collection, laid out by ``plan``."""

    def __init__(
        self,
        store: DocumentStore,
        embeddings: Embedder,
        chunker: TokenChunker,
        pool: ExtractionPool,
        plan: IngestPlan,
        progress: IngestProgress | None = None,
        passwords: dict[str, str] | None = None,
        parser: str = "auto",
        chinese: ChineseReader | None = None,
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.chinese = chinese  # reads the documents whose text is Chinese, when the main model cannot
        self.chunker = chunker
        self.pool = pool
        self.plan = plan
        self.progress = progress or IngestProgress()
        self.passwords = passwords or {}
        self.parser = parser
        self.storer = FileStorer(chunker.fingerprint, embeddings, self._document_info, chinese)
        # parse: seconds in the workers (summed over them); wait: this thread blocked on them; store: the
        # writer thread's seconds; store_wait: this thread blocked on the writer.
        self.timings = {"parse": 0.0, "wait": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0, "store_wait": 0.0}
        self._warming: threading.Thread | None = None

    def run(self, candidates: Sequence[Candidate], extra_passwords: Sequence[str] = ()) -> IngestReport:
        """Ingest named files (``discover`` finds them in folders; uploads choose their names themselves)."""
        started = time.perf_counter()
        report = IngestReport(self.store.collection, plan=self.plan.to_dict(), embedder=self.embeddings.info.to_dict())
        if self.plan.early_start:
            self.pool.start(len(candidates))  # the parsers load their libraries while the files are hashed
        if self.plan.warm_up:
            self._warming = threading.Thread(target=self._warm_up, name="rag-embed-warm-up", daemon=True)
            self._warming.start()
        self.store.refresh()
        self.store.check_texts()
        self.store.recover()
        self.progress.start(len(candidates))
        groups = self._groups(candidates, report)
        self.progress.sized({g.members[0].name: g.members[0].size for g in groups})
        writer = WriterThread(self.storer, self.store, self._open_writer_process if groups else None)
        writer.open()  # a writer process starts while the first files are parsed
        finished = False
        try:
            self._ingest(groups, extra_passwords, writer, report)
            finished = True
        finally:
            self._warmed()  # a run that embedded nothing leaves no warm-up behind it
            report.files += writer.stop()  # an interrupted run: the write in hand is finished, no other started
            if writer.used_process:
                self.store.refresh()  # see what the writer process stored
            if not finished:
                self._recover()
        self.progress.close()
        self.timings["store"] = self.storer.seconds
        report.seconds = time.perf_counter() - started
        report.timings = {k: round(v, 3) for k, v in self.timings.items()}
        return report

    def _recover(self) -> None:
        """After a failed or interrupted run, with its writer processes gone: remove what a write cut short left
        (a dead shard's writer leaves its part of the write behind), so nothing of it is ever found."""
        try:
            self.store.refresh()
            self.store.recover()
        except Exception:  # noqa: BLE001 - the next ingest recovers: the run's own error is the one to report
            log.warning("could not clean up after the interrupted ingest; the next one will", exc_info=True)

    def _open_writer_process(self) -> StoreWriter | None:
        """The store's writer process of a pipelined plan (None: this process's store writes)."""
        if not self.plan.writer_process:
            return None
        settings = self.store.db.settings
        return StoreWriterProcess(settings, self.store.collection, self.store.embedding, self.plan.shards)

    def _ingest(self, groups: list[_Group], extra_passwords: Sequence[str], writer: WriterThread, report) -> None:
        """Parse every group, embed the parsed files together, hand them to the writer; report as they are stored."""
        chunk_plan = self._chunk_plan()
        jobs = {
            g.sha256: ExtractionJob(
                g.members[0].path, self._passwords_for(g, extra_passwords), self.parser, g.sha256, chunk_plan
            )  # fmt: skip
            for g in groups
        }
        by_path = {jobs[g.sha256].path: g for g in groups}

        def on_page(event: PageProgress) -> None:
            name = by_path[event.job.path].members[0].name
            if event.stage == "reading":
                self.progress.page_read(name, event.done, event.total)
            elif event.stage == "ocr":
                self.progress.ocr_page(name, event.done, event.total)
            else:
                self.progress.chunking(name, event.done, event.total)

        pending: list[ReadyFile] = []
        for job, doc in self._parsed(jobs.values(), on_page):
            self.timings["parse"] += doc.seconds
            ready = self._ready(by_path[job.path], doc, report)
            if ready is not None:
                pending.append(ready)
            writer.check(_member_names(pending))  # a dead writer stops the run now, not after more embedding
            gathered = sum(len(r.chunks) for r in pending)
            # Full batches for the embedder; and none kept back while the writer has nothing to do.
            if gathered >= self.flush_chunks or (writer.idle and gathered >= self.embeddings.batch_size):
                self._emit_all(report, self._hand_over(pending, writer))
        self._emit_all(report, self._hand_over(pending, writer))
        self._emit_all(report, self._waited(writer))

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

    def _parsed(self, jobs, on_page=None) -> Iterator[tuple[ExtractionJob, ExtractedDocument]]:
        """The pool's results, timing how long this thread waits for them."""
        results = self.pool.run(jobs, on_page)
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

    # ----- what needs embedding --------------------------------------------------------------

    def _groups(self, candidates: Sequence[Candidate], report: IngestReport) -> list[_Group]:
        """Hash every file; report unchanged ones and known content now; group the rest by content."""
        groups: dict[str, _Group] = {}
        for candidate in candidates:
            try:
                candidate.size = candidate.path.stat().st_size
                candidate.sha256 = file_sha256(candidate.path)
            except OSError as exc:
                self._emit(report, _failed(candidate, f"cannot read file: {exc.strerror or exc}"))
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
            return _report(candidate, FileStatus.UNCHANGED, current)
        twins = [d for d in self.store.documents_with_sha(candidate.sha256) if self._is_current(d)]
        if not twins:
            return None
        status = FileStatus.REPLACED if current is not None else FileStatus.INGESTED
        info = renamed(twins[0], candidate.name, candidate.final_path)
        info.ingested_at = _now()
        self.store.register(info)
        if current is not None:
            self.store.release(current)
        return _report(candidate, status, info, note=f"same content as {twins[0].name!r}: stored once")

    def _is_current(self, doc: DocumentInfo) -> bool:
        """Stored with today's settings, and its chunks' texts are still there (a lost chunk table beside
        an embedded Chroma loses them: the file is ingested again)."""
        return (
            doc.chunking == self.chunker.fingerprint
            and doc.embedding == self.embeddings.fingerprint
            and self.store.has_texts(doc.sha256)
            and not self._reader_changed(doc)
        )

    def _reader_changed(self, doc: DocumentInfo) -> bool:
        """Whether a stored document would be read by another model now: a Chinese one stored before
        RAG_EMBEDDING_MODEL_ZH was set, or one its reader read after it was unset."""
        return reader_changed(doc, self.chinese, lambda: self.store.page_openings(doc, LANGUAGE_SAMPLE_CHARS).values())

    def _passwords_for(self, group: _Group, extra: Sequence[str]) -> tuple[str, ...]:
        keys = [k for m in group.members for k in (m.name, m.path.name, str(m.path))]
        return tuple(dict.fromkeys([self.passwords[k] for k in keys if k in self.passwords] + list(extra)))

    # ----- embedding and handing over -----------------------------------------------------------

    def _ready(self, group: _Group, doc: ExtractedDocument, report: IngestReport) -> ReadyFile | None:
        """A parsed file's chunks (made by its parser process, else here); None, reported, if it has none."""
        chunks: list[Chunk] = []
        if doc.error is None:
            chunks = doc.prepared.chunks if doc.prepared is not None else self._chunk(group, doc)
            if not chunks:
                doc.error = no_text_reason(doc)
        if doc.error is not None:
            for member in group.members:
                self._emit(report, _failed(member, doc.error, doc))
            return None
        return ReadyFile(group, doc, chunks, time.perf_counter())

    def _hand_over(self, pending: list[ReadyFile], writer: WriterThread) -> list[FileReport]:
        """Embed the chunks of the files gathered so far together, then hand them to the writer, which
        stores each file atomically while the next files are parsed and embedded; the reports of the
        files stored before."""
        if not pending:
            return []
        writer.check(_member_names(pending))
        batch = EmbeddingBatch(tuple((r.group.members[0].name, r.doc.total_pages, len(r.chunks)) for r in pending))
        self.progress.embedding(batch)
        started = time.perf_counter()
        vectors = self._embed(pending)
        self.timings["embed"] += time.perf_counter() - started
        items, start = [], 0
        for ready in pending:
            items.append((ready, vectors[start : start + len(ready.chunks)]))
            start += len(ready.chunks)
        done = self._waited(writer)
        self.progress.storing(batch)
        writer.submit(items)
        pending.clear()
        return done

    def _waited(self, writer: WriterThread) -> list[FileReport]:
        started = time.perf_counter()
        try:
            return writer.wait()
        finally:
            self.timings["store_wait"] += time.perf_counter() - started

    def _warm_up(self) -> None:
        """The embedder prepares its batch shapes on a GPU while the first files are parsed; a failure
        leaves it to embed as it would have without."""
        try:
            self.embeddings.warm_up(self.chunker.chunk_size)
        except Exception as exc:  # noqa: BLE001 - warming up is an optimisation, never the run's failure
            log.warning("the embedder could not warm up: %s", exc)

    def _warmed(self) -> None:
        """Until the warm-up has ended: the embedder is never used by two threads at once."""
        if self._warming is not None:
            self._warming.join()
            self._warming = None

    def _embed(self, pending: list[ReadyFile]) -> np.ndarray:
        """The vectors of every gathered chunk: the Chinese reader's for the files it reads, the main model's
        (one call) for the others."""
        for ready in pending:
            ready.reader = self._reader_of(ready)
        main = [r for r in pending if not r.reader]
        if len(main) == len(pending):
            return self._embed_main(pending)
        by_main = (
            iter(np.split(self._embed_main(main), np.cumsum([len(r.chunks) for r in main])[:-1])) if main else None
        )
        return np.concatenate([
            self.chinese.embed_passages([c.text for c in r.chunks], self.progress.embedded) if r.reader else next(by_main)
            for r in pending
        ])  # fmt: skip

    def _reader_of(self, ready: ReadyFile) -> str:
        """The Chinese reader's name when it reads this file (by its pages' openings), else "": the main model."""
        if self.chinese is None:
            return ""
        openings = (c.text[:LANGUAGE_SAMPLE_CHARS] for c in ready.chunks if c.offset == 0)
        return self.chinese.name if self.chinese.reads(language_sample(openings)) else ""

    def _embed_main(self, pending: list[ReadyFile]) -> np.ndarray:
        """One embedding call of the main model for every chunk of ``pending``: from token ids when every
        file has them."""
        self._warmed()
        prepared = [r.doc.prepared for r in pending]
        if all(p is not None for p in prepared):
            sequences = [p.token_ids[p.starts[i] : p.starts[i + 1]] for p in prepared for i in range(len(p.chunks))]
            return self.embeddings.embed_tokens(sequences, self.progress.embedded)
        return self.embeddings.embed_array([c.text for r in pending for c in r.chunks], self.progress.embedded)

    def _chunk(self, group: _Group, doc: ExtractedDocument) -> list[Chunk]:
        started = time.perf_counter()
        chunks = self.chunker.split_pages(doc.pages, group.sha256)
        self.timings["chunk"] += time.perf_counter() - started
        return chunks

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

    def _emit(self, report: IngestReport, file_report: FileReport) -> None:
        report.files.append(file_report)
        self.progress.file_done(file_report)

    def _emit_all(self, report: IngestReport, reports: list[FileReport]) -> None:
        for file_report in reports:
            self._emit(report, file_report)


class FileStorer:
    """Stores embedded files through a :class:`StoreWriter`, each file content under each of its names, in
    one atomic write per batch; says what became of each name."""

    def __init__(
        self,
        chunking: str,
        embeddings: Embedder,
        document_info: Callable[[Candidate, ExtractedDocument, int], DocumentInfo],
        chinese: ChineseReader | None = None,
    ) -> None:
        self.chunking = chunking
        self.embeddings = embeddings
        self.document_info = document_info
        self.chinese = chinese
        self.seconds = 0.0  # spent storing, summed over the calls

    def store(self, items: EmbeddedFiles, writer: StoreWriter) -> list[FileReport]:
        """Store embedded file contents in one atomic write: one registry commit for all, and the shards of a
        sharded collection written at once."""
        started = time.perf_counter()
        previous = [{m.name: writer.get_document(m.name) for m in ready.group.members} for ready, _ in items]
        writer.write_many([self._file_write(ready, vectors, writer) for ready, vectors in items])
        reports = []
        for (ready, _), before in zip(items, previous, strict=True):
            group, doc = ready.group, ready.doc
            written = [self._report_written(m, before[m.name], ready, group) for m in group.members]
            for old in before.values():
                if old is not None and old.sha256 != group.sha256:
                    writer.release(old)
            elapsed = doc.seconds + time.perf_counter() - ready.since
            for file_report in written:
                file_report.seconds = round(elapsed, 3)
            reports += written
        self.seconds += time.perf_counter() - started
        return reports

    def _file_write(self, ready: ReadyFile, vectors: np.ndarray, writer: StoreWriter) -> FileWrite:
        """The chunks of one file content and every name it is stored under (those stored before too)."""
        group, doc = ready.group, ready.doc
        info = self.document_info(group.members[0], doc, len(ready.chunks))
        info.reader = ready.reader
        names = {m.name: m.final_path for m in group.members}
        for other in writer.documents_with_sha(group.sha256):  # stored names of the same content
            names.setdefault(other.name, other.path)
        documents = [renamed(info, name, path) for name, path in names.items()]
        terms = doc.prepared.terms if doc.prepared is not None else None
        # What every chunk record carries besides its place: what search hits show. Settings and dates
        # live in the registry (Chroma's cost grows with every metadata field of every chunk).
        metadata = {"file": group.members[0].name, "sha256": group.sha256, "pages": doc.total_pages}
        return FileWrite(documents, ready.chunks, vectors, metadata, terms)

    def _report_written(
        self, candidate: Candidate, previous: DocumentInfo | None, ready: ReadyFile, group: _Group
    ) -> FileReport:
        doc, chunks = ready.doc, len(ready.chunks)
        status, note = FileStatus.INGESTED, None
        if previous is not None:
            status = FileStatus.REPLACED
            note = why_replaced(previous, candidate.sha256, self.embeddings.fingerprint, self.chunking, ready.reader)
        if candidate is not group.members[0]:
            note = f"same content as {group.members[0].name!r}: stored once"
        report = FileReport(candidate.name, str(candidate.path), status, doc.total_pages, chunks, doc.empty_pages)
        reads_chinese = self.embeddings.reads_chinese or self.chinese is not None
        language = chinese_note(doc.sample_text(), self.embeddings.model_name, reads_chinese)
        report.sha256, report.note = candidate.sha256, join_notes(note, page_notes(doc), language)
        report.ocr_pages = doc.ocr_pages
        return report


class WriterThread:
    """Stores embedded files in a thread of its own, one batch at a time, while the ingesting thread
    parses and embeds the next batch; through ``store`` or, when ``open_process`` gives one, the store's
    writer process.

    On a GPU machine storing and embedding each took about half of the ingesting thread's time, and
    the embedder spends most of its time in CUDA and the tokenizer with the GIL released. Files are
    stored in the order they were embedded, each batch atomically. Their reports, and an error of the
    writer, come back at the next hand-over (:meth:`wait`) or at the end; a writer that failed, or whose
    process died, is noticed sooner, at the next parsed file (:meth:`check`), and reported with the files
    whose write it had in hand. When the run stops early (Ctrl-C, an error), the write in hand (the files
    embedded together) is finished and no other is started.
    """

    def __init__(
        self, storer: FileStorer, store: StoreWriter, open_process: Callable[[], StoreWriter | None] | None = None
    ) -> None:
        self.storer = storer
        self._writer: StoreWriter = store
        self._open_process = open_process
        self._process: StoreWriterProcess | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done: list[FileReport] = []
        self._in_hand: list[str] = []  # the names whose write the thread is doing
        self._stopping = threading.Event()

    @property
    def used_process(self) -> bool:
        return self._process is not None

    def open(self) -> None:
        """Start the writer process, if the run uses one, in the writer's thread (a second or two)."""
        if self._open_process is not None:
            self._run(self._open)

    def _open(self) -> None:
        try:
            process = self._open_process()
            if process is not None:
                self._process = self._writer = process
        except BaseException as exc:  # noqa: BLE001 - handed to the ingesting thread, raised there
            self._error = exc

    @property
    def idle(self) -> bool:
        """Nothing to store: the next gathered files need not wait for a full flush."""
        return self._thread is None or not self._thread.is_alive()

    def submit(self, items: EmbeddedFiles) -> None:
        """Store ``items`` in the background (after the batch in hand: :meth:`wait` first)."""
        self._in_hand = _member_names([ready for ready, _ in items])
        self._run(self._store, items)

    def check(self, waiting: Sequence[str] = ()) -> None:
        """Raise now what the writer met: the error of a write that ended, or the death of the writer process
        while it had nothing to do (reported with ``waiting``, the files about to be handed to it). A write
        still running is left to finish (a process that died under it ends it at once)."""
        if not self.idle:
            return
        if self._error is not None:
            self.wait()
        if self._process is not None and not self._process.alive:
            raise self._process.stopped().while_storing(waiting)

    def _run(self, target, *args) -> None:
        self._thread = threading.Thread(target=target, args=args, name="rag-ingest-writer", daemon=True)
        self._thread.start()

    def _store(self, items: EmbeddedFiles) -> None:
        try:
            if not self._stopping.is_set():
                self._done += self.storer.store(items, self._writer)
        except ChildStoppedError as exc:  # the store's or a shard's writer process died: name what it had
            self._error = exc.while_storing(self._in_hand)
        except BaseException as exc:  # noqa: BLE001 - handed to the ingesting thread, raised there
            self._error = exc

    def wait(self) -> list[FileReport]:
        """Until the batch in hand is stored: the reports of the files stored since the last call; raises
        what storing them raised."""
        self._join()
        done, self._done = self._done, []
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return done

    def stop(self) -> list[FileReport]:
        """Finish the write in hand and start no other; the reports not yet returned (unannounced)."""
        self._stopping.set()
        self._join()
        done, self._done = self._done, []
        if self._process is not None:
            self._process.close()
        return done

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _member_names(files: Sequence[ReadyFile]) -> list[str]:
    """Every name the files are stored under."""
    return [member.name for ready in files for member in ready.group.members]


def renamed(info: DocumentInfo, name: str, path: str) -> DocumentInfo:
    """The same stored content under another name and path."""
    return DocumentInfo(**{**info.to_dict(), "name": name, "path": path})


def _report(candidate: Candidate, status: FileStatus, info: DocumentInfo, note: str | None = None) -> FileReport:
    report = FileReport(candidate.name, str(candidate.path), status, info.pages, info.chunks, sha256=candidate.sha256)
    report.note = note
    return report


def _failed(candidate: Candidate, reason: str, doc: ExtractedDocument | None = None) -> FileReport:
    report = FileReport(candidate.name, str(candidate.path), FileStatus.FAILED, reason=reason, sha256=candidate.sha256)
    if doc is not None:
        report.pages, report.empty_pages, report.seconds = doc.total_pages, doc.empty_pages, round(doc.seconds, 3)
    return report
