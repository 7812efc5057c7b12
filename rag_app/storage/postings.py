"""BM25 postings of a :class:`rag_app.storage.chunk_table.ChunkTable` held in memory, one snapshot per index version.

Scoring a question inside SQLite read every posting of its terms row by row: at 100,000 chunks
(3.8 million postings) that took about 300 ms a question. Here the postings are numpy arrays grouped
by term (compressed sparse columns: ``term_start[t]:term_start[t + 1]`` are term ``t``'s chunks), so a
question costs a few vector operations per term.

A snapshot is built from per-file segments. The SQLite index stamps every file content it holds with
the index version of its write, so when the version moves (a write here, in another store of this
process or in another process) only the files whose stamp changed are read again. Scores are the
SQL scorer's, operation for operation: ``weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))``
with ``weight = count in question * log(1 + (N - df + 0.5) / (df + 0.5))``; ties are broken by chunk id.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from rag_app.records import chunk_page

K1, B = 1.2, 0.75
CACHED_INDEXES = 8  # snapshots kept per process (one per BM25 index file searched recently)


@dataclass(frozen=True)
class Segment:
    """The indexed chunks of one file content: ids, term counts, postings (local row, term id, tf), cover."""

    stamp: int
    ids: list[str]
    lengths: np.ndarray  # int64, terms per chunk
    rows: np.ndarray  # int32, index into ids
    terms: np.ndarray  # int32, ids in the index's vocabulary
    tfs: np.ndarray  # int32
    cover: frozenset[str]


@dataclass
class Vocabulary:
    """Term -> id, shared by every snapshot of one index file; only grows, so older segments stay valid."""

    ids: dict[str, int] = field(default_factory=dict)

    def id_of(self, term: str) -> int:
        return self.ids.setdefault(term, len(self.ids))


class Snapshot:
    """Every segment of one index version, concatenated and grouped by term."""

    def __init__(self, uid: str, version: int, segments: dict[str, Segment], vocabulary: Vocabulary) -> None:
        self.uid, self.version, self.segments, self.vocabulary = uid, version, segments, vocabulary
        self._page_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # see _pages
        self._row_pages: np.ndarray | None = None  # see _page_of_row
        shas = sorted(segments)
        parts = [segments[sha] for sha in shas]
        self.ids = [chunk for part in parts for chunk in part.ids]
        self.sha_index = {sha: i for i, sha in enumerate(shas)}
        self.sha_of_row = np.repeat(np.arange(len(shas), dtype=np.int32), [len(p.ids) for p in parts])
        self.id_rank = np.empty(len(self.ids), dtype=np.int64)  # position in chunk-id order: the tie-break
        self.id_rank[sorted(range(len(self.ids)), key=self.ids.__getitem__)] = np.arange(len(self.ids))
        lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        self.total = len(self.ids)
        self.average = float(lengths.sum()) / self.total if self.total else 1.0
        self._group_by_term(parts, lengths)

    def _group_by_term(self, parts: list[Segment], lengths: np.ndarray) -> None:
        offsets = np.cumsum([0] + [len(p.ids) for p in parts])
        rows = np.concatenate([p.rows + o for p, o in zip(parts, offsets, strict=False)] or [np.zeros(0, np.int32)])
        terms = np.concatenate([p.terms for p in parts] or [np.zeros(0, np.int32)])
        tfs = np.concatenate([p.tfs for p in parts] or [np.zeros(0, np.int32)])
        order = np.argsort(terms, kind="stable")
        self.n_terms = len(self.vocabulary.ids)
        self.term_start = np.zeros(self.n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=self.n_terms), out=self.term_start[1:])
        self.rows = rows[order].astype(np.int32)
        self.tfs = tfs[order].astype(np.float64)
        # The SQL scorer's denominator, in its order of operations, so scores agree to the last bit or so.
        length = lengths[self.rows].astype(np.float64)
        self.denominators = self.tfs + K1 * ((1 - B) + B * length / self.average)

    def cover_terms(self) -> dict[str, frozenset[str]]:
        return {sha: segment.cover for sha, segment in self.segments.items()}

    def documents_with(self, terms: Iterable[str]) -> dict[str, set[str]]:
        """Term -> the file contents (sha256) whose chunks hold it (a term no chunk holds is absent)."""
        shas = sorted(self.sha_index)
        found: dict[str, set[str]] = {}
        for term in terms:
            tid = self.vocabulary.ids.get(term)
            if tid is None or tid >= self.n_terms:
                continue
            rows = self.rows[self.term_start[tid] : self.term_start[tid + 1]]
            if len(rows):  # bincount, not unique: a common word's rows are most of the index (a sort of them cost ms)
                found[term] = {shas[i] for i in np.flatnonzero(np.bincount(self.sha_of_row[rows], minlength=len(shas)))}
        return found

    def pages_with(self, terms: Iterable[str], at_most: int | None = None) -> dict[str, dict[str, int]]:
        """Term -> file content (sha256) -> how many of its pages hold it (contents with none are absent): which
        documents a name runs through, for every document in a few vector operations a term. A term more than
        ``at_most`` contents hold is left out (a common word's rows are most of the index: counting its pages cost
        milliseconds)."""
        shas = sorted(self.sha_index)
        found: dict[str, dict[str, int]] = {}
        for term in terms:
            tid = self.vocabulary.ids.get(term)
            if tid is None or tid >= self.n_terms:
                continue
            rows = self.rows[self.term_start[tid] : self.term_start[tid + 1]]
            if not len(rows):
                continue
            if at_most is not None and np.count_nonzero(np.bincount(self.sha_of_row[rows])) > at_most:
                continue
            pages = np.unique(self.sha_of_row[rows].astype(np.int64) << 32 | self._page_of_row()[rows])
            counts = np.bincount(pages >> 32, minlength=len(shas))
            found[term] = {shas[i]: int(counts[i]) for i in np.flatnonzero(counts)}
        return found

    def _page_of_row(self) -> np.ndarray:
        """Each chunk row's page number (int64), computed once a snapshot."""
        if self._row_pages is None:
            self._row_pages = np.fromiter(map(chunk_page, self.ids), dtype=np.int64, count=len(self.ids))
        return self._row_pages

    def weights(self, terms: Counter) -> list[tuple[int, float]]:
        """(term id, count in question x idf) of the question's terms that the index holds."""
        out = []
        for term, count in terms.items():
            tid = self.vocabulary.ids.get(term)
            if tid is None or tid >= self.n_terms:
                continue
            df = int(self.term_start[tid + 1] - self.term_start[tid])
            if df:
                out.append((tid, count * math.log(1 + (self.total - df + 0.5) / (df + 0.5))))
        return out

    def top(self, terms: Counter, k: int, shas: set[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best ``(chunk_id, bm25 score)``, optionally within some file contents."""
        weights = self.weights(terms)
        if not weights or (shas is not None and not shas):
            return []
        scores = np.zeros(self.total)
        for tid, weight in weights:
            start, end = self.term_start[tid], self.term_start[tid + 1]
            scores[self.rows[start:end]] += weight * self.tfs[start:end] * (K1 + 1) / self.denominators[start:end]
        found = np.flatnonzero(scores)
        if shas is not None:
            wanted = np.zeros(len(self.sha_index), dtype=bool)
            wanted[[self.sha_index[s] for s in shas if s in self.sha_index]] = True
            found = found[wanted[self.sha_of_row[found]]]
        if len(found) > k:  # keep every chunk tied with the k-th best: ties are then broken by id
            kth = np.partition(scores[found], len(found) - k)[len(found) - k]
            found = found[scores[found] >= kth]
        best = found[np.lexsort((self.id_rank[found], -scores[found]))][:k]
        return [(self.ids[row], float(scores[row])) for row in best]

    def page_scores(self, terms: Counter, sha: str) -> dict[int, float]:
        """BM25 of the pages of one file content, each page one document (its chunks' term counts summed;
        idf over the content's pages, so terms on every page of a filing, its company's name, count for
        little): which page of a document the question's words point at. Empty for an unknown content."""
        segment = self.segments.get(sha)
        if segment is None or not len(segment.rows):
            return {}
        pages, page_of_row = self._pages(sha, segment)
        lengths = np.bincount(page_of_row, weights=segment.lengths, minlength=len(pages))
        norms = K1 * ((1 - B) + B * lengths / max(float(lengths.mean()), 1.0))
        scores = np.zeros(len(pages))
        for term, count in terms.items():
            tid = self.vocabulary.ids.get(term)
            found = segment.terms == tid if tid is not None else None
            if found is None or not found.any():
                continue
            tf = np.bincount(page_of_row[segment.rows[found]], weights=segment.tfs[found], minlength=len(pages))
            df = int(np.count_nonzero(tf))
            scores += count * math.log(1 + (len(pages) - df + 0.5) / (df + 0.5)) * tf * (K1 + 1) / (tf + norms)
        return {int(pages[i]): float(scores[i]) for i in np.flatnonzero(scores)}

    def _pages(self, sha: str, segment: Segment) -> tuple[np.ndarray, np.ndarray]:
        """The pages of a content (sorted) and each chunk row's index among them; computed once a snapshot."""
        if sha not in self._page_rows:
            numbers = np.fromiter(map(chunk_page, segment.ids), dtype=np.int64, count=len(segment.ids))
            self._page_rows[sha] = np.unique(numbers, return_inverse=True)
        return self._page_rows[sha]


@dataclass
class _Entry:
    snapshot: Snapshot | None
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache: OrderedDict[str, _Entry] = OrderedDict()
_cache_lock = threading.Lock()


def current_snapshot(path: str, uid: str, version: int, rebuild: Callable[[Snapshot | None], Snapshot]) -> Snapshot:
    """The snapshot of index file ``path`` at ``version``: the cached one, or ``rebuild(previous)``.

    ``uid`` names one life of the file (a deleted and re-made index starts again at version 0).
    """
    with _cache_lock:
        entry = _cache.setdefault(path, _Entry(None))
        _cache.move_to_end(path)
        while len(_cache) > CACHED_INDEXES:
            _cache.popitem(last=False)
    snapshot = entry.snapshot
    if snapshot is not None and (snapshot.uid, snapshot.version) == (uid, version):
        return snapshot
    with entry.lock:  # one rebuild at a time per index; searches of the current snapshot go on meanwhile
        snapshot = entry.snapshot
        if snapshot is None or (snapshot.uid, snapshot.version) != (uid, version):
            snapshot = rebuild(snapshot if snapshot is not None and snapshot.uid == uid else None)
            entry.snapshot = snapshot
        return snapshot


def segment_of(
    stamp: int, ids: list[str], lengths: list[int], postings: tuple[str, bytes, bytes, bytes] | None,
    cover: frozenset[str], vocabulary: Vocabulary,
) -> Segment:  # fmt: skip
    """A segment from the rows SQLite keeps of one file content: its chunk ids and lengths in key order,
    and its postings row (terms in local order, then int32 chunk rows, local term numbers and tfs)."""
    lengths_array = np.array(lengths, dtype=np.int64)
    if postings is None or not postings[0]:
        empty = np.zeros(0, dtype=np.int32)
        return Segment(stamp, ids, lengths_array, empty, empty, empty, cover)
    terms, rows, term_ids, tfs = postings
    global_ids = np.fromiter(map(vocabulary.id_of, terms.split("\n")), dtype=np.int32)
    return Segment(
        stamp,
        ids,
        lengths_array,
        np.frombuffer(rows, dtype=np.int32),
        global_ids[np.frombuffer(term_ids, dtype=np.int32)],
        np.frombuffer(tfs, dtype=np.int32),
        cover,
    )
