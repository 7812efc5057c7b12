"""The chunk table: every chunk's text and place, and a BM25 index over them, in one SQLite file per
chunk collection, beside the vectors (which Chroma keeps).

In an embedded store this file is the chunks' only copy of their texts. Dense embeddings miss exact
tokens a question hinges on (a ticker, "FY2018", a number); BM25 over :mod:`rag_app.text.terms` finds
them. The table is keyed by file sha256, like the chunks, and ``sync`` reconciles it with the registry, so it stays in step
after every add, replace and delete, and after another process (or a Chroma
server's other clients) changed the collection. Questions are scored in memory
(:mod:`rag_app.storage.postings`), on a snapshot of the postings re-read per file content
whenever the index's version moves.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag_app.errors import DamagedChunkTableError
from rag_app.records import Chunk, parse_chunk_id
from rag_app.storage.postings import Segment, Snapshot, Vocabulary, current_snapshot, segment_of
from rag_app.text.script import folds
from rag_app.text.terms import SYMBOL_MARK, PackedTerms, listing_symbols, terms_of

log = logging.getLogger(__name__)


def cover_text(chunks: Iterable[tuple[str, str]], count: int = 2) -> list[str]:
    """The first ``count`` chunks of page 1: a document's cover."""
    keyed = ((parse_chunk_id(chunk_id), text) for chunk_id, text in chunks)
    first_page = sorted((key.offset, text) for key, text in keyed if key.page == 1)
    return [text for _, text in first_page[:count]]


def cover_terms(chunks: Iterable[tuple[str, int, str]]) -> set[str]:
    """A document's cover terms, from its chunks (id, page, text): its cover's index terms, and the listing symbols
    any of its pages states as its own, marked ("$AMZN": :func:`rag_app.text.terms.listing_symbols`; the route reads
    them only where a question writes one)."""
    pages: dict[int, list[str]] = {}
    ids = []
    for chunk_id, page, text in chunks:
        pages.setdefault(page, []).append(text)
        ids.append((chunk_id, text))
    symbols = set().union(*(listing_symbols(" ".join(texts)) for texts in pages.values()))
    return {*terms_of(" ".join(cover_text(ids))), *(SYMBOL_MARK + symbol for symbol in symbols)}


# The file holds each chunk's text and place (``chunks``) and its file's name and page count
# (``files``): what a search hit shows. Chroma holds the vectors (and, on a Chroma server shared by
# several machines, a copy of the texts, from which another machine rebuilds this file).
# The postings of one file content are one row: its terms (newline-separated, local order) and three
# int32 arrays (chunk row, local term number, tf). Writing ~60,000 posting rows a file, each in two
# SQLite indexes, was most of an ingest's store time; a search reads postings from memory anyway
# (rag_app.storage.postings), rebuilt per file content. ``stamps`` holds the index version that wrote each file
# content and ``state`` the version now (and the uid of this life of the file).
# 4: covers hold the listing symbols a document states (3 is read again in place: _covers_again); 5: Chinese terms in
# simplified characters (4 is read again in place where a file's texts hold a traditional one: _terms_again)
SCHEMA_VERSION = 5
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS chunks (
        key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, sha TEXT NOT NULL, length INTEGER NOT NULL,
        page INTEGER NOT NULL, offset INTEGER NOT NULL, position INTEGER NOT NULL, text TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS chunks_sha_page ON chunks(sha, page)",
    """CREATE TABLE IF NOT EXISTS postings (
        sha TEXT PRIMARY KEY, terms TEXT NOT NULL, rows BLOB NOT NULL, term_ids BLOB NOT NULL, tfs BLOB NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS files (sha TEXT PRIMARY KEY, file TEXT NOT NULL, pages INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS covers (sha TEXT PRIMARY KEY, terms TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stamps (sha TEXT PRIMARY KEY, stamp INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (one INTEGER PRIMARY KEY CHECK (one = 0), uid TEXT NOT NULL, version INTEGER NOT NULL)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
TABLES = ("postings", "chunks", "files", "covers", "stamps", "state")
DAMAGED_SUFFIX = ".damaged-"  # a damaged file is renamed NAME.sqlite.damaged-<UTC time>, never opened again
DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is damaged (not a busy database or a full disk)."""
    code = getattr(exc, "sqlite_errorname", "")
    return code in DAMAGE_CODES or str(exc).startswith("no such table")


def set_aside(path: Path) -> Path:
    """Rename a damaged chunk table (and its WAL and shared-memory files) out of the way, so the next open
    makes an empty one; returns where it went."""
    aside = path.with_name(path.name + DAMAGED_SUFFIX + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"))
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.replace(aside.with_name(aside.name + suffix))
    log.warning("the chunk table %s was damaged: moved aside to %s", path.name, aside.name)
    return aside


def set_aside_copies(path: Path) -> list[Path]:
    """The damaged copies of a chunk table moved aside so far, oldest first."""
    return sorted(path.parent.glob(path.name + DAMAGED_SUFFIX + "*[0-9Z]"))


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as this file keeps it: text, place, and the file it came from."""

    id: str
    text: str
    page: int
    offset: int
    index: int
    sha256: str
    file: str
    pages: int


def query_terms(query: str, term_weights: Mapping[str, float] | None = None) -> Counter:
    """A question's BM25 terms with their counts, each times its weight in ``term_weights`` (0 drops it)."""
    terms = Counter(terms_of(query))
    for term, weight in (term_weights or {}).items():
        if term in terms:
            terms[term] *= weight
    return Counter({t: w for t, w in terms.items() if w > 0})


class ChunkTable:
    """Chunk texts and places, and BM25 over them; one SQLite file per chunk collection."""

    def __init__(self, path: Path) -> None:
        """Open (or make) the file; a file that is not a chunk table SQLite can read raises
        DamagedChunkTableError (the store moves it aside: :func:`set_aside`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size == 0:
            # emptied (a new file gets its header at once): held nothing, and while a process that had it
            # open still does, SQLite would wait on that process's lock to turn it into a chunk table again
            raise DamagedChunkTableError(path.name, "the file is empty")
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.inode = path.stat().st_ino  # which file this is: one moved aside and made again is another
        with self._guarded(locked=False):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._open_layout()

    @contextlib.contextmanager
    def _guarded(self, locked: bool = True) -> Iterator[None]:
        """Hold the lock (unless ``locked`` is False); SQLite's word that the file is damaged (not a database,
        a malformed page, its tables gone from under an open connection) becomes DamagedChunkTableError."""
        with self._lock if locked else contextlib.nullcontext():
            try:
                yield
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                raise DamagedChunkTableError(self.path.name, str(exc)) from exc

    def check(self) -> None:
        """Read every page of the file (``PRAGMA quick_check``, about a second per 200 MB): raise
        DamagedChunkTableError for a damaged one. An ingest checks before it writes."""
        with self._guarded():
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise DamagedChunkTableError(self.path.name, "; ".join(problems))

    def _open_layout(self) -> None:
        """Create the tables in one write. Layout 3 (the same tables, covers without the listing symbols) gets
        its covers read again from the chunks' texts it holds, the embedded store's only copy of them; layouts 3 and
        4 (Chinese terms as printed) get the terms of each file whose texts hold a traditional character read again
        (:meth:`_terms_again`); an index of an older layout, which held no texts, is dropped first (``sync`` rebuilds
        it from the texts Chroma held then, at the next search)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # two processes opening an older index change it once
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 3:
                self._covers_again()
            if version in (3, 4):
                self._terms_again()
            elif version < SCHEMA_VERSION:
                for table in TABLES:  # state too: a new uid
                    self._db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SCHEMA:
                self._db.execute(statement)
            self._db.execute("INSERT OR IGNORE INTO state VALUES (0, lower(hex(randomblob(16))), 0)")

    def _covers_again(self) -> None:
        """Each file content's cover terms read again from its stored chunks (inside the opening's transaction:
        no process of this layout has read them before). Stamps stay: the vectors kept per stamp stay valid."""
        rows = self._db.execute("SELECT sha, id, page, text FROM chunks ORDER BY sha, key")
        covers = {}
        for sha, group in itertools.groupby(rows, key=lambda row: row[0]):
            covers[sha] = " ".join(sorted(cover_terms((chunk_id, page, text) for _, chunk_id, page, text in group)))
        self._db.executemany("INSERT OR REPLACE INTO covers VALUES (?, ?)", covers.items())
        log.info("the chunk table %s: the covers of %d file(s) read again for layout %d", self.path.name,
                 len(covers), SCHEMA_VERSION)  # fmt: skip

    def _terms_again(self) -> None:
        """The postings, chunk lengths and cover terms of each file content whose texts hold a traditional Chinese
        character, read again from its stored chunks in simplified characters (rag_app.text.script), inside the
        opening's transaction; the others' terms are what this layout writes already. The files read again get a new
        stamp, so that a snapshot of the postings a process holds reads them again (their vectors, kept per stamp, are
        read again once too)."""
        shas = [row[0] for row in self._db.execute("SELECT sha FROM stamps")]
        again = 0
        for sha in shas:
            rows = self._db.execute(
                "SELECT key, id, page, text FROM chunks WHERE sha = ? ORDER BY key", (sha,)
            ).fetchall()
            if not any(folds(text) for *_, text in rows):
                continue
            terms = PackedTerms.of(Counter(terms_of(text)) for *_, text in rows)
            lengths = terms.lengths(len(rows))
            self._db.executemany("UPDATE chunks SET length = ? WHERE key = ?",
                                 [(int(lengths[i]), key) for i, (key, *_) in enumerate(rows)])  # fmt: skip
            self._db.execute(
                "UPDATE postings SET terms = ?, rows = ?, term_ids = ?, tfs = ? WHERE sha = ?",
                (terms.vocabulary, terms.rows.tobytes(), terms.term_ids.tobytes(), terms.counts.tobytes(), sha),
            )
            cover = " ".join(sorted(cover_terms((chunk_id, page, text) for _, chunk_id, page, text in rows)))
            self._db.execute("INSERT OR REPLACE INTO covers VALUES (?, ?)", (sha, cover))
            self._db.execute("UPDATE stamps SET stamp = ? WHERE sha = ?", (self._next_version(), sha))
            again += 1
        if again:
            log.info("the chunk table %s: the terms of %d file(s) read again in simplified characters for layout %d",
                     self.path.name, again, SCHEMA_VERSION)  # fmt: skip

    def close(self) -> None:
        self._db.close()

    # ----- writing ------------------------------------------------------------------------

    def add(
        self,
        sha256: str,
        chunks: Sequence[Chunk],
        file: str,
        pages: int,
        terms: PackedTerms | Sequence[dict] | None = None,
    ) -> None:
        """Keep one file content's chunks and index their terms (replacing what it had); ``terms`` are
        their term counts when already extracted (packed, or ``Counter(terms_of(text))`` for each)."""
        if not isinstance(terms, PackedTerms):
            terms = PackedTerms.of(terms if terms is not None else (Counter(terms_of(c.text)) for c in chunks))
        lengths = terms.lengths(len(chunks))
        cover = " ".join(sorted(cover_terms((c.id, c.page, c.text) for c in chunks)))
        with self._guarded(), self._db:
            self._delete(sha256)
            first = self._db.execute("SELECT COALESCE(MAX(key), 0) + 1 FROM chunks").fetchone()[0]
            self._db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (first + i, c.id, sha256, int(lengths[i]), c.page, c.offset, c.index, c.text)
                    for i, c in enumerate(chunks)
                ],
            )
            self._db.execute(
                "INSERT INTO postings VALUES (?, ?, ?, ?, ?)",
                (sha256, terms.vocabulary, terms.rows.tobytes(), terms.term_ids.tobytes(), terms.counts.tobytes()),
            )
            self._db.execute("INSERT INTO files VALUES (?, ?, ?)", (sha256, file, pages))
            self._db.execute("INSERT OR REPLACE INTO covers VALUES (?, ?)", (sha256, cover))
            self._db.execute("INSERT INTO stamps VALUES (?, ?)", (sha256, self._next_version()))

    def delete(self, sha256: str) -> None:
        with self._guarded(), self._db:
            self._delete(sha256)
            self._next_version()

    def _delete(self, sha256: str) -> None:
        for table in ("postings", "chunks", "files", "covers", "stamps"):
            self._db.execute(f"DELETE FROM {table} WHERE sha = ?", (sha256,))

    def _next_version(self) -> int:
        """Move the index's version (inside the write's transaction): in-memory snapshots re-read what changed."""
        return self._db.execute("UPDATE state SET version = version + 1 RETURNING version").fetchone()[0]

    def has(self, sha256: str) -> bool:
        """Whether the file holds a file content's chunks."""
        with self._guarded():
            return self._db.execute("SELECT 1 FROM stamps WHERE sha = ?", (sha256,)).fetchone() is not None

    def shas(self) -> set[str]:
        with self._guarded():
            return {row[0] for row in self._db.execute("SELECT sha FROM stamps")}

    def sync(
        self,
        wanted: set[str],
        fetch: Callable[[str], Sequence[StoredChunk]],
        have: set[str] | None = None,
        keep: Collection[str] = (),
    ) -> tuple[int, int]:
        """Make the index hold the ``wanted`` contents and drop the others of ``have`` (what it held when
        the caller looked; default: now) except ``keep``; ``fetch(sha)`` gives the chunks of a wanted
        content it lacks (from the texts Chroma holds), empty when nothing holds them any more."""
        have = self.shas() if have is None else have
        removed = have - wanted - set(keep)
        for sha in removed:
            self.delete(sha)
        have = self.shas()
        lost = []
        for sha in wanted - have:
            chunks = fetch(sha)
            if chunks:
                self.add(sha, chunks, chunks[0].file, chunks[0].pages)
            else:
                lost.append(sha)
        if removed or wanted - have:
            log.info("lexical index synced: %d added, %d removed", len(wanted - have) - len(lost), len(removed))
        if lost:
            log.warning(
                "the texts of %d stored file(s) are missing from %s and from Chroma (sha256 %s): re-ingest them",
                len(lost), self.path, ", ".join(sha[:12] for sha in lost),
            )  # fmt: skip
        return len(wanted - have) - len(lost), len(removed)

    # ----- reading chunks -------------------------------------------------------------------

    def chunks_by_id(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The stored chunks among ``ids`` (an id another writer just deleted is absent)."""
        found: dict[str, StoredChunk] = {}
        with self._guarded():
            for start in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
                part = list(ids[start : start + 500])
                marks = ",".join("?" * len(part))
                found.update(
                    (row[0], StoredChunk(*row)) for row in self._db.execute(_SELECT + f"WHERE c.id IN ({marks})", part)
                )
        return found

    def page_openings(self, sha256: str, chars: int) -> dict[int, str]:
        """Page -> the first ``chars`` characters of the page's first chunk, for one file content."""
        with self._guarded():
            rows = self._db.execute(
                "SELECT page, substr(text, 1, ?) FROM chunks WHERE sha = ? AND offset = 0", (chars, sha256)
            )
            return dict(rows.fetchall())

    def chunks_of(self, sha256: str, page: int | None = None) -> list[StoredChunk]:
        """The chunks of one file content (or of one of its pages), in reading order."""
        where, params = (
            ("WHERE c.sha = ?", [sha256]) if page is None else ("WHERE c.sha = ? AND c.page = ?", [sha256, page])
        )
        with self._guarded():
            return [
                StoredChunk(*row) for row in self._db.execute(_SELECT + where + " ORDER BY c.page, c.offset", params)
            ]

    def cover_terms(self) -> dict[str, frozenset[str]]:
        """Each file content's cover terms: what its first page opens with (company, period, title)."""
        return self._snapshot().cover_terms()

    def documents_with(self, terms: Iterable[str]) -> dict[str, set[str]]:
        """Term -> the file contents whose chunks hold it (index terms, as :func:`terms_of` makes them)."""
        return self._snapshot().documents_with(terms)

    def pages_with(self, terms: Iterable[str], at_most: int | None = None) -> dict[str, dict[str, int]]:
        """Term -> file content -> how many of its pages hold it (index terms; none held by more than ``at_most``)."""
        return self._snapshot().pages_with(terms, at_most)

    # ----- searching ----------------------------------------------------------------------

    def search(
        self, query: str, k: int, shas: set[str] | None = None, term_weights: Mapping[str, float] | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(chunk_id, bm25 score)`` for ``query``, optionally within some files; a term in
        ``term_weights`` counts that much (0: not at all)."""
        terms = query_terms(query, term_weights)
        return self._snapshot().top(terms, k, shas) if terms else []

    def page_scores(self, query: str, sha256: str, term_weights: Mapping[str, float] | None = None) -> dict[int, float]:
        """Page -> BM25 of the page as one document among the pages of one file content (pages without a
        term of ``query`` are absent); a term in ``term_weights`` counts that much."""
        terms = query_terms(query, term_weights)
        return self._snapshot().page_scores(terms, sha256) if terms else {}

    def stamped_ids(self) -> dict[str, tuple[int, list[str]]]:
        """Each file content's stamp (the index version of its write) and chunk ids, as the postings hold them."""
        return {sha: (segment.stamp, segment.ids) for sha, segment in self._snapshot().segments.items()}

    def state(self) -> tuple[str, int]:
        """(uid, version): which file this is and how many writes it has seen; any write moves it."""
        with self._guarded():
            uid, version = self._db.execute("SELECT uid, version FROM state").fetchone()
        return uid, version

    def _snapshot(self) -> Snapshot:
        """The in-memory postings of the index as it is now (shared by every ChunkTable of this file)."""
        uid, version = self.state()
        return current_snapshot(str(self.path.resolve()), uid, version, self._rebuild)

    def _rebuild(self, previous: Snapshot | None) -> Snapshot:
        """A snapshot of the index now, re-reading only the file contents whose stamp moved since ``previous``."""
        old = previous.segments if previous is not None else {}
        vocabulary = previous.vocabulary if previous is not None else Vocabulary()
        with self._guarded():
            self._db.execute("BEGIN")  # one consistent read: the version and the segments it stamps
            try:
                uid, version = self._db.execute("SELECT uid, version FROM state").fetchone()
                stamps = dict(self._db.execute("SELECT sha, stamp FROM stamps"))
                segments = {
                    sha: old[sha] if sha in old and old[sha].stamp == stamp else self._segment(sha, stamp, vocabulary)
                    for sha, stamp in stamps.items()
                }
            finally:
                self._db.execute("COMMIT")
        log.debug("BM25 snapshot of %s at version %d: %d of %d files read", self.path.name, version,
                  sum(s is not old.get(sha) for sha, s in segments.items()), len(segments))  # fmt: skip
        return Snapshot(uid, version, segments, vocabulary)

    def _segment(self, sha: str, stamp: int, vocabulary: Vocabulary) -> Segment:
        ids, lengths = [], []
        for chunk_id, length in self._db.execute("SELECT id, length FROM chunks WHERE sha = ? ORDER BY key", (sha,)):
            ids.append(chunk_id)
            lengths.append(length)
        postings = self._db.execute("SELECT terms, rows, term_ids, tfs FROM postings WHERE sha = ?", (sha,)).fetchone()
        cover = self._db.execute("SELECT terms FROM covers WHERE sha = ?", (sha,)).fetchone()
        return segment_of(stamp, ids, lengths, postings, frozenset(cover[0].split() if cover else ()), vocabulary)


_SELECT = """SELECT c.id, c.text, c.page, c.offset, c.position, c.sha, f.file, f.pages
    FROM chunks c JOIN files f ON f.sha = c.sha """
