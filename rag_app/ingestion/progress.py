"""Ingest progress: the events an ingest sends (:class:`IngestProgress`), and a meter that turns them into
what a person watches (:class:`ProgressMeter`): the stage, the pages read and embedded within each file,
the share done and, once it can be estimated, the time left.

The pages are the unit: each is read once (parser processes) and embedded once (its chunks). Stages
overlap (the next file is read while one is embedded), so the time left is the slower stage's: the pages
it still has over the pages per second it has managed so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rag_app.records import FileReport

ESTIMATE_AFTER_S = 2.0  # of embedding, before a time left is shown
ESTIMATE_AFTER_SHARE = 0.02  # of the pages embedded, likewise


@dataclass(frozen=True)
class EmbeddingBatch:
    """The files whose chunks one embedding call embeds: (name, pages, chunks) each."""

    files: tuple[tuple[str, int, int], ...]

    @property
    def chunks(self) -> int:
        return sum(chunks for _, _, chunks in self.files)

    @property
    def label(self) -> str:
        """ "a.pdf" or "a.pdf and 3 more files"."""
        first, more = self.files[0][0], len(self.files) - 1
        return first if not more else f"{first} and {more} more file{'s' * (more > 1)}"


class IngestProgress:
    """Receives progress events; the CLI and the web UI draw bars from them."""

    def start(self, files: int) -> None: ...
    def sized(self, sizes: dict[str, int]) -> None: ...  # bytes of each file to parse: an estimate of its pages
    def page_read(self, name: str, done: int, total: int) -> None: ...  # pages of ``name`` parsed so far
    def ocr_page(self, name: str, done: int, total: int) -> None: ...  # pages of ``name`` read by OCR so far
    def chunking(self, name: str, done: int, of: int) -> None: ...  # every page read: its chunks, done of ``of``
    def embedding(self, batch: EmbeddingBatch) -> None: ...
    def embedded(self, count: int) -> None: ...  # chunks of the batch in hand embedded since the last call
    def storing(self, batch: EmbeddingBatch) -> None: ...
    def file_done(self, report: FileReport) -> None: ...
    def close(self) -> None: ...


Stage = Literal["starting", "reading", "ocr", "chunking", "embedding", "storing", "done"]


@dataclass(frozen=True)
class ProgressSnapshot:
    """Where an ingest stands, as the page shows it."""

    files_total: int
    files_done: int
    stage: Stage
    subject: str  # the file the stage is about (the first of several)
    more: int  # files beside it (several are embedded and stored together)
    done: int  # pages (or chunks while embedding) of the subject so far
    of: int  # ... out of
    pages_read: int
    pages_embedded: int
    pages_total: int | None  # None until one file is opened; estimated for the files not opened yet
    fraction: float | None
    seconds_left: float | None
    elapsed: float
    step_seconds: float  # since the stage last moved


@dataclass
class _File:
    total: int | None = None
    read: int = 0
    embedded: float = 0.0
    finished: bool = False


@dataclass
class _Batch:
    batch: EmbeddingBatch
    done: int = 0


@dataclass
class ProgressMeter(IngestProgress):
    """Keeps the state the events describe; thread-safe, so a page can poll :meth:`snapshot` while the
    ingest runs in another thread."""

    clock: Callable[[], float] = time.monotonic
    files_total: int = 0
    files_done: int = 0
    stage: Stage = "starting"
    subject: str = ""
    more: int = 0
    done: int = 0
    of: int = 0
    files: dict[str, _File] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of the files to parse
    batch: _Batch | None = None
    started: float | None = None
    first_read: float | None = None
    step_since: float = 0.0  # when the stage last moved (a page read by OCR takes seconds of its own)
    embedding_since: float | None = None  # when the first embedding call began
    last_embedded: float | None = None  # when chunks were last reported embedded
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _at(self, stage: Stage, subject: str, done: int = 0, of: int = 0, more: int = 0) -> None:
        if (stage, subject, done) != (self.stage, self.subject, self.done):
            self.step_since = self.clock()
        self.stage, self.subject, self.done, self.of, self.more = stage, subject, done, of, more

    def start(self, files: int) -> None:
        with self.lock:
            self.files_total, self.started = files, self.clock()

    def sized(self, sizes: dict[str, int]) -> None:
        with self.lock:
            self.sizes = dict(sizes)

    def page_read(self, name: str, done: int, total: int) -> None:
        with self.lock:
            file = self.files.setdefault(name, _File())
            file.total, file.read = total, max(file.read, min(done, total))
            self.first_read = self.first_read or self.clock()
            self._at("reading", name, file.read, total)

    def ocr_page(self, name: str, done: int, total: int) -> None:
        with self.lock:
            self._at("ocr", name, done, total)

    def chunking(self, name: str, done: int, of: int) -> None:
        with self.lock:
            file = self.files.setdefault(name, _File())
            file.read = file.total or file.read
            self._at("chunking", name, done, of)

    def embedding(self, batch: EmbeddingBatch) -> None:
        with self.lock:
            self._finish_batch()
            for name, pages, _ in batch.files:
                file = self.files.setdefault(name, _File())
                file.total = file.total or pages
                file.read = file.total
            self.batch = _Batch(batch)
            self.embedding_since = self.embedding_since or self.clock()
            self._at("embedding", batch.files[0][0], 0, batch.chunks, len(batch.files) - 1)

    def embedded(self, count: int) -> None:
        with self.lock:
            if self.batch is None:
                return
            self.last_embedded = self.clock()
            self.batch.done = min(self.batch.done + count, self.batch.batch.chunks)
            share = self.batch.done / max(self.batch.batch.chunks, 1)
            for name, pages, _ in self.batch.batch.files:
                self.files[name].embedded = pages * share
            self._at("embedding", self.subject, self.batch.done, self.batch.batch.chunks, self.more)

    def storing(self, batch: EmbeddingBatch) -> None:
        with self.lock:
            self._finish_batch()
            self._at("storing", batch.files[0][0], batch.chunks, batch.chunks, len(batch.files) - 1)

    def file_done(self, report: FileReport) -> None:
        with self.lock:
            file = self.files.setdefault(report.name, _File())
            file.total = file.total or report.pages
            file.read, file.embedded, file.finished = file.total, float(file.total), True
            self.files_done += 1
            if self.files_done >= self.files_total:
                self._at("done", "")

    def _finish_batch(self) -> None:
        if self.batch is not None:
            for name, pages, _ in self.batch.batch.files:
                self.files[name].embedded = float(pages)
            self.batch = None

    def snapshot(self) -> ProgressSnapshot:
        with self.lock:
            now = self.clock()
            total = self._pages_total()
            read = sum(f.read for f in self.files.values())
            embedded = sum(f.embedded for f in self.files.values())
            fraction = min(1.0, (read + embedded) / (2 * total)) if total else None
            return ProgressSnapshot(
                self.files_total, self.files_done, self.stage, self.subject, self.more, self.done, self.of, read,
                int(embedded), total, fraction, self._seconds_left(now, total, read, embedded),
                now - (self.started or now), now - self.step_since,
            )  # fmt: skip

    def _pages_total(self) -> int | None:
        """The pages of the files opened so far, and an estimate for each one not opened yet: its bytes at the
        opened files' pages per byte (a 3-page memo beside a 300-page 10-K is not another 300 pages), or their
        average where sizes are not known."""
        opened = {name: f.total for name, f in self.files.items() if f.total}
        if not opened:
            return None
        sized = [(self.sizes[name], pages) for name, pages in opened.items() if self.sizes.get(name)]
        per_byte = sum(p for _, p in sized) / sum(b for b, _ in sized) if sized else 0.0
        waiting = [name for name in self.sizes if name not in opened]
        unsized = max(0, self.files_total - len(opened) - len(waiting))
        if not per_byte:
            unsized, waiting = unsized + len(waiting), []
        average = sum(opened.values()) / len(opened)
        estimate = sum(max(1.0, self.sizes[name] * per_byte) for name in waiting) + unsized * average
        return sum(opened.values()) + round(estimate)

    def _seconds_left(self, now: float, total: int | None, read: int, embedded: float) -> float | None:
        """The slower stage's pages left over its pages per second so far, counted down between its reports;
        None until embedding has run a while (the slower stage on a CPU, and the one that ends every file)."""
        if not total or self.last_embedded is None or self.stage == "done":
            return None
        embedding_for = self.last_embedded - self.embedding_since
        if embedding_for < ESTIMATE_AFTER_S or embedded < ESTIMATE_AFTER_SHARE * total:
            return None
        left = (total - embedded) / (embedded / embedding_for) - (now - self.last_embedded)
        if self.first_read is not None and 0 < read < total and now > self.first_read:
            left = max(left, (total - read) / (read / (now - self.first_read)))
        return max(0.0, left)
