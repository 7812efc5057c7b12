"""A BM25 index over the same chunks as Chroma, persisted in SQLite beside it.

Dense embeddings miss exact tokens a question hinges on (a ticker, "FY2018", a
number); BM25 finds them. Terms keep numbers and identifiers whole ("2,468",
"10-q", "fy2018"); Chinese runs are split into words with jieba (character
bigrams when jieba is not installed). The index is keyed by file sha256, like
the chunks, and ``sync`` reconciles it with the registry, so it stays in step
after every add, replace and delete, and after another process (or a Chroma
server's other clients) changed the collection. Questions are scored in memory
(:mod:`rag_app.postings`), on a snapshot of the postings re-read per file content
whenever the index's version moves.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rag_app.highlight import STOPWORDS
from rag_app.postings import Segment, Snapshot, Vocabulary, current_snapshot, segment_of
from rag_app.records import parse_chunk_id
from rag_app.textclean import CJK_CHAR, jieba_or_none

log = logging.getLogger(__name__)
LATIN = re.compile(r"[a-z0-9][a-z0-9$%&'.,\-]*[a-z0-9%]|[a-z0-9]")
CJK_RUN = re.compile(f"{CJK_CHAR.pattern}+")
CJK_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")  # not punctuation


def _segment(run: str) -> list[str]:
    jieba = jieba_or_none()
    if jieba:
        words = jieba.cut_for_search(run)
    else:
        words = [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return [w for w in words if CJK_WORD.search(w)]


def _latin_terms(text: str) -> list[str]:
    terms = []
    for token in LATIN.findall(text.lower().replace("\u2019", "'")):
        token = token.strip(".,'-").removesuffix("'s")
        if not token or token in STOPWORDS:
            continue
        if token.isalpha() and len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]  # revenues -> revenue; a light touch, no stemmer
        terms.append(token)
    return terms


def terms_of(text: str) -> list[str]:
    """Index terms: Latin words and numbers whole, Chinese words (or bigrams)."""
    terms = _latin_terms(CJK_RUN.sub(" ", text))
    for run in CJK_RUN.findall(text):
        terms += _segment(run)
    return terms


def cover_text(chunks: Iterable[tuple[str, str]], count: int = 2) -> list[str]:
    """The first ``count`` chunks of page 1: a document's cover."""
    keyed = ((parse_chunk_id(chunk_id), text) for chunk_id, text in chunks)
    first_page = sorted((key.offset, text) for key, text in keyed if key.page == 1)
    return [text for _, text in first_page[:count]]


@functools.lru_cache(maxsize=4096)
def name_terms(name: str) -> frozenset[str]:
    """Terms of a file name: "3M_2018_10K.pdf" -> {"3m", "2018", "10k"} (cached: read on every question)."""
    return frozenset(terms_of(re.sub(r"[_\-.]+", " ", name.rsplit(".", 1)[0])))


def term_parts(terms: Iterable[str]) -> set[str]:
    """Words of at least 3 letters inside compound terms: "amazon.com" -> {"amazon", "com"}. Terms keep
    dots and hyphens whole ("10-q", "2,468"), so a cover saying "AMAZON.COM, INC." never matched "Amazon"."""
    return {
        part
        for term in terms
        if any(c in term for c in ".-'&")
        for part in re.split(r"[.\-'&]+", term)
        if len(part) >= 3 and part.isalpha() and part not in STOPWORDS
    }


def document_query_terms(query: str) -> set[str]:
    """Terms of a question for matching documents: "FY2018" also matches a document of 2018."""
    terms = set(terms_of(query))
    return terms | {m.group(1) for t in terms if (m := re.fullmatch(r"fy(\d{4})", t))}


# Postings point at chunks by an integer key, not by the chunk's 80-character id: a file of 1,000
# chunks has ~60,000 postings, and their index on the chunk column is most of an insert's cost.
# ``stamps`` holds the index version that wrote each file content and ``state`` the version now (and
# the uid of this life of the file): in-memory snapshots (rag_app.postings) re-read only what moved.
SCHEMA_VERSION = 2
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS chunks (
        key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, sha TEXT NOT NULL, length INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS chunks_sha ON chunks(sha)",
    "CREATE TABLE IF NOT EXISTS postings (term TEXT NOT NULL, chunk INTEGER NOT NULL, tf INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS postings_term ON postings(term)",
    "CREATE INDEX IF NOT EXISTS postings_chunk ON postings(chunk)",
    "CREATE TABLE IF NOT EXISTS covers (sha TEXT PRIMARY KEY, terms TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stamps (sha TEXT PRIMARY KEY, stamp INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (one INTEGER PRIMARY KEY CHECK (one = 0), uid TEXT NOT NULL, version INTEGER NOT NULL)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


class LexicalIndex:
    """BM25 over chunk texts; one SQLite file per chunk collection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._open_layout()

    def _open_layout(self) -> None:
        """Create the tables in one write: an index of an older layout is dropped first (``sync`` rebuilds
        it from Chroma at the next search), one made before stamps gets a version and every file stamp 0."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # two processes opening an older index drop it once
            if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for table in ("postings", "chunks", "covers", "stamps", "state"):  # state too: a new uid
                    self._db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SCHEMA:
                self._db.execute(statement)
            if self._db.execute("INSERT OR IGNORE INTO state VALUES (0, lower(hex(randomblob(16))), 0)").rowcount:
                self._db.execute("INSERT OR IGNORE INTO stamps SELECT DISTINCT sha, 0 FROM chunks")

    def close(self) -> None:
        self._db.close()

    # ----- writing ------------------------------------------------------------------------

    def add(self, sha256: str, chunks: Sequence[tuple[str, str]], terms: Sequence[dict] | None = None) -> None:
        """Index ``(chunk_id, text)`` pairs of one file content (replacing what it had); ``terms`` are
        their term counts when already extracted (``Counter(terms_of(text))`` for each)."""
        counted = list(terms) if terms is not None else [Counter(terms_of(text)) for _, text in chunks]
        cover = " ".join(sorted(set(terms_of(" ".join(cover_text(chunks))))))
        with self._lock, self._db:
            self._delete(sha256)
            first = self._db.execute("SELECT COALESCE(MAX(key), 0) + 1 FROM chunks").fetchone()[0]
            rows = [(first + i, chunk_id, sha256, sum(counted[i].values())) for i, (chunk_id, _) in enumerate(chunks)]
            postings = [(term, first + i, tf) for i, counts in enumerate(counted) for term, tf in counts.items()]
            self._db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?)", rows)
            self._db.executemany("INSERT INTO postings VALUES (?, ?, ?)", postings)
            self._db.execute("INSERT OR REPLACE INTO covers VALUES (?, ?)", (sha256, cover))
            self._db.execute("INSERT INTO stamps VALUES (?, ?)", (sha256, self._next_version()))

    def delete(self, sha256: str) -> None:
        with self._lock, self._db:
            self._delete(sha256)
            self._next_version()

    def _delete(self, sha256: str) -> None:
        self._db.execute("DELETE FROM postings WHERE chunk IN (SELECT key FROM chunks WHERE sha = ?)", (sha256,))
        self._db.execute("DELETE FROM chunks WHERE sha = ?", (sha256,))
        self._db.execute("DELETE FROM covers WHERE sha = ?", (sha256,))
        self._db.execute("DELETE FROM stamps WHERE sha = ?", (sha256,))

    def _next_version(self) -> int:
        """Move the index's version (inside the write's transaction): in-memory snapshots re-read what changed."""
        return self._db.execute("UPDATE state SET version = version + 1 RETURNING version").fetchone()[0]

    def shas(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT sha FROM stamps")}

    def sync(self, wanted: set[str], fetch: Callable[[str], Sequence[tuple[str, str]]]) -> tuple[int, int]:
        """Make the index hold exactly the ``wanted`` contents; ``fetch(sha)`` gives their chunks."""
        have = self.shas()
        for sha in have - wanted:
            self.delete(sha)
        for sha in wanted - have | self._without_cover(wanted & have):  # the latter: indexes made before covers
            chunks = fetch(sha)
            if chunks:
                self.add(sha, chunks)
        if have != wanted:
            log.info("lexical index synced: %d added, %d removed", len(wanted - have), len(have - wanted))
        return len(wanted - have), len(have - wanted)

    def _without_cover(self, shas: set[str]) -> set[str]:
        with self._lock:
            return shas - {row[0] for row in self._db.execute("SELECT sha FROM covers")}

    def cover_terms(self) -> dict[str, frozenset[str]]:
        """Each file content's cover terms: what its first page opens with (company, period, title)."""
        return self._snapshot().cover_terms()

    # ----- searching ----------------------------------------------------------------------

    def search(self, query: str, k: int, shas: set[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best ``(chunk_id, bm25 score)`` for ``query``, optionally within some files."""
        terms = Counter(terms_of(query))
        return self._snapshot().top(terms, k, shas) if terms else []

    def state(self) -> tuple[str, int]:
        """(uid, version): which file this is and how many writes it has seen; any write moves it."""
        with self._lock:
            uid, version = self._db.execute("SELECT uid, version FROM state").fetchone()
        return uid, version

    def _snapshot(self) -> Snapshot:
        """The in-memory postings of the index as it is now (shared by every LexicalIndex of this file)."""
        uid, version = self.state()
        return current_snapshot(str(self.path.resolve()), uid, version, self._rebuild)

    def _rebuild(self, previous: Snapshot | None) -> Snapshot:
        """A snapshot of the index now, re-reading only the file contents whose stamp moved since ``previous``."""
        old = previous.segments if previous is not None else {}
        vocabulary = previous.vocabulary if previous is not None else Vocabulary()
        with self._lock:
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
        chunks = self._db.execute("SELECT key, id, length FROM chunks WHERE sha = ?", (sha,)).fetchall()
        postings = self._db.execute(
            "SELECT p.chunk, p.term, p.tf FROM chunks c JOIN postings p ON p.chunk = c.key WHERE c.sha = ?", (sha,)
        ).fetchall()
        cover = self._db.execute("SELECT terms FROM covers WHERE sha = ?", (sha,)).fetchone()
        return segment_of(stamp, chunks, postings, frozenset(cover[0].split() if cover else ()), vocabulary)
