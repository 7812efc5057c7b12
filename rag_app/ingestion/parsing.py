"""Run file loaders in separate processes that can be stopped.

A PDF can hang a parser (a content stream that takes minutes), exhaust memory
or crash it. Each file is parsed in a worker process with a memory limit; a
worker that makes no progress for ``timeout_s`` (opening the file, or any one
page, including a page read by OCR) is killed and the file reported as timed
out. Workers run ahead of the caller, so parsing the next files overlaps with
embedding the current one.

Workers are started as ``python -m rag_app.ingestion.parsing`` (:mod:`rag_app.processes`) rather than
through multiprocessing's spawn, which would re-run the caller's main script in every worker when a
script calls the library without an ``if __name__`` guard.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag_app.ingestion.loaders import load_document
from rag_app.ingestion.ocr import OcrOptions
from rag_app.processes import ChildProcess, parent_connection
from rag_app.records import ExtractedDocument, OcrMode

if TYPE_CHECKING:
    from rag_app.embedding.inputs import ChunkPlan

log = logging.getLogger(__name__)
_STOP = None
# A parser that aborted, segfaulted or died of an error is given the file once more in a fresh process,
# parsing only (a worker parses many files, and OCR and chunking add to its memory: on the H200 run,
# 4 of 72 filings aborted at the memory limit). A kill (-9) is not retried.
_CRASHES = (1, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS)
STARTUP_S = 60.0  # a fresh parser process may take this long to start before its first file's clock runs
PROGRESS_EVERY_S = 0.25  # pages read and chunking steps are offered to the caller at most this often, per file
PROGRESS_BACKLOG = 256  # progress events waiting for a busy caller beyond this many are dropped (later ones say more)


@dataclass(frozen=True)
class ExtractionJob:
    """One file to parse, with the passwords to try if it is encrypted.

    With a ``plan`` the worker also chunks the document (ids from ``sha256``), tokenizes the chunks
    and extracts their BM25 terms (:mod:`rag_app.ingestion.prepared`)."""

    path: Path
    passwords: tuple[str, ...] = ()
    parser: str = "auto"
    sha256: str = ""
    plan: ChunkPlan | None = None


@dataclass(frozen=True)
class PageProgress:
    """A parser process is at page ``done`` of ``total`` of ``job``: reading it, reading the pages that need
    OCR (``done`` of the ``total`` such pages), or, every page read, making the chunks (``done`` hundredths
    of it)."""

    job: ExtractionJob
    stage: Literal["reading", "ocr", "chunking"]
    done: int
    total: int


PageProgressCallback = Callable[[PageProgress], None]


def _worker_main(conn: Connection, memory_mb: int, ocr: OcrOptions) -> None:
    """Loop of a parser process: receive a job, stream page progress, send the document."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker: the workers are the parallelism
    _limit_memory(memory_mb)
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # pypdf's warnings would flood the terminal
    while (job := conn.recv()) is not _STOP:
        conn.send(("opening",))  # the file's clock starts here, not while this process was starting
        doc = _load_guarded(job, conn, memory_mb, ocr)
        try:
            conn.send(("done", doc))
        except MemoryError:  # the prepared chunks do not fit: the ingesting process makes them
            doc.prepared = None
            conn.send(("done", doc))


def _load_guarded(job: ExtractionJob, conn: Connection, memory_mb: int, ocr: OcrOptions) -> ExtractedDocument:
    def on_page(number: int, total: int) -> None:
        conn.send(("page", number, total))

    def on_ocr(done: int, total: int, page: int) -> None:
        conn.send(("ocr", done, total, page))

    try:
        doc = load_document(job.path, job.passwords, on_page, job.parser, ocr, on_ocr)
        if job.plan is not None and doc.error is None:
            _prepare(doc, job, lambda hundredths: conn.send(("chunking", hundredths)))
        return doc
    except MemoryError:
        return ExtractedDocument(error=f"needs more than {memory_mb} MiB to parse (RAG_PARSE_MEMORY_MB)")
    except Exception as exc:  # noqa: BLE001 - a parser bug must not kill the worker
        return ExtractedDocument(error=f"parser error: {type(exc).__name__}: {str(exc)[:160]}")


def _prepare(doc: ExtractedDocument, job: ExtractionJob, on_progress: Callable[[int], None]) -> None:
    """Chunk the document here; on any failure the ingesting process chunks it instead."""
    from rag_app.ingestion.prepared import prepare_chunks

    try:
        doc.prepared = prepare_chunks(doc, job.sha256, job.plan, on_progress)
    except Exception:  # noqa: BLE001, S110 - never lose a parsed document to a chunking problem here
        doc.prepared = None


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform
        pass


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: Connection
    job: ExtractionJob | None = None
    deadline: float = 0.0
    page: int = 0
    total: int = 0
    ocr_page: int = 0  # the page being read by OCR, 0 when none
    stopping: bool = False  # told to exit
    started: float = field(default_factory=time.perf_counter)
    opened_one: bool = False  # has said "opening" at least once: it has finished starting


class ExtractionPool:
    """Parse files in ``workers`` processes, yielding ``(job, document)`` as each finishes.

    >>> with ExtractionPool(workers=2, timeout_s=60) as pool:
    ...     for job, doc in pool.run([ExtractionJob(Path("a.pdf"))]):
    ...         print(job.path, doc.error or len(doc.pages))
    """

    def __init__(
        self,
        workers: int = 1,
        timeout_s: float = 60.0,
        memory_mb: int = 4096,
        ocr: OcrMode = "off",
        ocr_threads: int = 1,
    ) -> None:
        """``ocr_threads``: threads of each worker's OCR engine (the ingest plan's share of the cores)."""
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.ocr = OcrOptions(ocr, threads=max(1, ocr_threads))
        self._on_page: PageProgressCallback | None = None
        self._told: dict[tuple[Path, str], float] = {}  # when a file's progress was last offered, by stage
        self._pool: list[_Worker] = []
        self._pending: list[ExtractionJob] = []
        self._retried: set[Path] = set()  # files whose parser crashed once: a second crash is reported
        self._stop = threading.Event()
        self._held = threading.Semaphore(self.workers + 1)  # parsed documents the caller may hold unread

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def run(
        self, jobs: Iterable[ExtractionJob], on_page: PageProgressCallback | None = None
    ) -> Iterator[tuple[ExtractionJob, ExtractedDocument]]:
        """Yield each job with its document, in completion order; workers run ahead.

        ``on_page`` is called, in the caller's thread, as pages are read (by the parser or by OCR) and when
        a file's chunks are being made. Parsed documents wait for the caller at most ``workers + 1`` at a time
        (their text is memory); progress events queue beside them, so an OCR step or a file's last page is
        not lost while the caller is busy embedding."""
        results: queue.Queue = queue.Queue()
        self._held = threading.Semaphore(self.workers + 1)
        self._on_page = on_page
        self._stop.clear()  # a pool runs again after a run that ended (its workers started afresh)
        thread = threading.Thread(target=self._coordinate, args=(list(jobs), results), daemon=True)
        thread.start()
        try:
            while (item := results.get()) is not _STOP:
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, PageProgress):
                    if on_page:
                        on_page(item)
                    continue
                self._held.release()
                yield item
        finally:
            self._stop.set()
            _drain(results)
            thread.join(timeout=5)
            self.close()

    def start(self, jobs: int) -> None:
        """Start the workers ``jobs`` will need now: they load their libraries while the caller plans."""
        while len(self._pool) < min(jobs, self.workers):
            self._pool.append(self._spawn())

    def close(self) -> None:
        """Stop every worker process (the idle ones all told at once, then waited for: 15 workers one by
        one took 2.7 s)."""
        for worker in self._pool:
            _ask_to_stop(worker)
        for worker in self._pool:
            self._kill(worker)
        self._pool.clear()

    def _coordinate(self, jobs: list[ExtractionJob], results: queue.Queue) -> None:
        try:
            self._pending = list(reversed(jobs))
            while (self._pending or self._busy()) and not self._stop.is_set():
                self._assign(self._pending)
                self._collect(results)
            self._put(results, _STOP)
        except BaseException as exc:  # noqa: BLE001 - hand it to the consuming thread
            self._put(results, exc)

    def _put(self, results: queue.Queue, item) -> None:
        """Queue a result once the caller holds fewer than ``workers + 1``, giving up once it has stopped
        listening."""
        while not self._stop.is_set():
            if self._held.acquire(timeout=0.2):
                results.put(item)
                return

    def _busy(self) -> list[_Worker]:
        return [w for w in self._pool if w.job is not None]

    def _assign(self, pending: list[ExtractionJob]) -> None:
        while pending and (worker := self._idle_worker()) is not None:
            worker.job = pending.pop()
            worker.started = time.perf_counter()
            # A process still starting (importing its parsers, slow on a busy machine) is not yet reading the
            # file: until it says "opening", it gets STARTUP_S more.
            worker.deadline = worker.started + self.timeout_s + (0 if worker.opened_one else STARTUP_S)
            worker.page = worker.total = worker.ocr_page = 0
            try:
                worker.conn.send(worker.job)
            except OSError:  # it died while idle (killed, out of memory): a fresh one takes the job
                pending.append(worker.job)
                worker.job = None
                self._kill(worker)
                self._pool.remove(worker)

    def _idle_worker(self) -> _Worker | None:
        for worker in self._pool:
            if worker.job is None:
                return worker
        if len(self._pool) < self.workers:
            self._pool.append(self._spawn())
            return self._pool[-1]
        return None

    def _spawn(self) -> _Worker:
        args = [str(self.memory_mb), self.ocr.mode, str(self.ocr.threads)]
        child = ChildProcess("rag_app.ingestion.parsing", "a parser process", args)
        return _Worker(child.process, child.conn)

    def _collect(self, results: queue.Queue) -> None:
        busy = self._busy()
        timeout = max(0.0, min(w.deadline for w in busy) - time.perf_counter())
        ready = set(wait([w.conn for w in busy], timeout=min(timeout, 0.5)))
        for worker in busy:
            if worker.conn in ready:
                self._receive(worker, results)
            elif time.perf_counter() > worker.deadline:
                self._finish(worker, results, self._timed_out(worker), replace=True)

    def _receive(self, worker: _Worker, results: queue.Queue) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            code = _wait(worker.process, 1)
            if code in _CRASHES and worker.job.path not in self._retried:  # perhaps the worker's state: retry
                self._retry(worker, code)
                return
            reason = f"the parser crashed (exit code {code})" if code else "the parser stopped unexpectedly"
            self._finish(worker, results, ExtractedDocument(error=reason), replace=True)
            return
        if message[0] == "opening":
            worker.opened_one = True
            worker.deadline = time.perf_counter() + self.timeout_s
        elif message[0] == "page":
            worker.page, worker.total = message[1], message[2]
            worker.deadline = time.perf_counter() + self.timeout_s
            self._progress(results, PageProgress(worker.job, "reading", message[1], message[2]))
        elif message[0] == "ocr":
            worker.ocr_page = message[3]
            worker.deadline = time.perf_counter() + self.timeout_s
            self._progress(results, PageProgress(worker.job, "ocr", message[1], message[2]))
        elif message[0] == "chunking":
            from rag_app.ingestion.prepared import PREPARE_PARTS

            self._progress(results, PageProgress(worker.job, "chunking", message[1], PREPARE_PARTS))
        else:
            self._finish(worker, results, message[1], replace=False)

    def _progress(self, results: queue.Queue, event: PageProgress) -> None:
        """Offer a progress event; pages read and chunking steps at most every PROGRESS_EVERY_S a file (a PDFium
        file reads hundreds of pages a second: a flood would crowd out the OCR events in the small queue)."""
        if not self._on_page:
            return
        now = time.perf_counter()
        key = (event.job.path, event.stage)
        if event.stage != "ocr" and event.done < event.total and now - self._told.get(key, 0.0) < PROGRESS_EVERY_S:
            return
        self._told[key] = now
        _offer(results, event)

    def _retry(self, worker: _Worker, code: int) -> None:
        log.warning("the parser of %s crashed (exit code %s): trying once more", worker.job.path, code)
        self._retried.add(worker.job.path)
        self._pending.append(dataclasses.replace(worker.job, plan=None))
        self._kill(worker)
        self._pool.remove(worker)
        worker.job = None

    def _timed_out(self, worker: _Worker) -> ExtractedDocument:
        if not worker.opened_one:
            return ExtractedDocument(error=f"the parser process did not start within {self.timeout_s + STARTUP_S:g} s")
        if not worker.total:
            where = " while opening the file"
        elif worker.page < worker.total:
            where = f" on page {worker.page + 1} of {worker.total}"
        else:  # every page read: stuck in what follows (OCR decisions, the document's outline)
            where = f" after reading all {worker.total} page{'s' if worker.total > 1 else ''}"
        if worker.ocr_page:
            where = (
                f" reading page {worker.ocr_page} of {worker.total} by OCR (RAG_PARSE_TIMEOUT_S; RAG_OCR=off skips it)"
            )
        log.warning("stopped %s: no progress for %g s%s", worker.job.path, self.timeout_s, where)
        return ExtractedDocument(error=f"timed out after {self.timeout_s:g} s{where}")

    def _finish(self, worker: _Worker, results: queue.Queue, doc: ExtractedDocument, replace: bool) -> None:
        job = worker.job
        if replace:  # kill while the job is still set: a hung worker gets no goodbye
            self._kill(worker)
            self._pool.remove(worker)
        worker.job = None
        if not doc.seconds:
            doc.seconds = time.perf_counter() - worker.started
        self._put(results, (job, doc))

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if _ask_to_stop(worker):
            _wait(worker.process, 1)
        if worker.process.poll() is None:
            worker.process.kill()
            _wait(worker.process, 5)
        worker.conn.close()


def _ask_to_stop(worker: _Worker) -> bool:
    """Tell an idle worker to exit (it does so on its own); whether it was told, now or before."""
    if not worker.stopping and worker.process.poll() is None and worker.job is None and not worker.conn.closed:
        try:
            worker.conn.send(_STOP)
            worker.stopping = True
        except OSError:
            pass
    return worker.stopping


def _wait(process: subprocess.Popen, timeout: float) -> int | None:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _offer(results: queue.Queue, item) -> None:
    """Queue a progress event unless a long backlog waits already: a later one carries the same news."""
    if results.qsize() < PROGRESS_BACKLOG:
        results.put_nowait(item)


def _drain(results: queue.Queue) -> None:
    while True:
        try:
            results.get_nowait()
        except queue.Empty:
            return


if __name__ == "__main__":  # a parser worker: python -m rag_app.ingestion.parsing FD MEMORY_MB OCR_MODE OCR_THREADS
    _worker_main(parent_connection(), int(sys.argv[2]), OcrOptions(sys.argv[3], int(sys.argv[4])))
