"""The BM25 scorer that ran inside SQLite before the in-memory postings (rag_app.storage.postings), kept as the
reference they are checked against: the same ranked chunk ids and scores, over the same index file.

rag_app.storage.chunk_table keeps one row of packed postings per file content; the reference unpacks them into the
row-per-posting tables the SQL scorer read (in memory, once per version of the file) and scores there."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np

from rag_app.storage.chunk_table import query_terms
from rag_app.storage.postings import K1, B


def sqlite_bm25(
    path: Path, query: str, k: int, shas: set[str] | None = None, term_weights: dict[str, float] | None = None
) -> list[tuple[str, float]]:
    """The ``k`` best ``(chunk_id, bm25 score)`` for ``query``, scored by one SQL aggregate (``term_weights``: as
    ChunkTable.search takes them)."""
    terms = query_terms(query, term_weights)
    if not terms:
        return []
    db = _unpacked(path)
    total, average = db.execute("SELECT COUNT(*), AVG(length) FROM chunks").fetchone()
    if not total:
        return []
    marks = ",".join("?" * len(terms))
    df = db.execute(
        f"SELECT term, COUNT(*) FROM postings WHERE term IN ({marks}) GROUP BY term", list(terms)
    ).fetchall()
    weights = [(term, terms[term] * math.log(1 + (total - n + 0.5) / (n + 0.5))) for term, n in df]
    return _top(db, weights, k, average, shas) if weights else []


_unpacked_cache: dict[str, tuple[tuple, sqlite3.Connection]] = {}


def _unpacked(path: Path) -> sqlite3.Connection:
    """An in-memory copy of the index file with one row per posting (term, chunk key, tf)."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = tuple(source.execute("SELECT uid, version FROM state").fetchone())
        cached = _unpacked_cache.get(str(path))
        if cached is not None and cached[0] == version:
            return cached[1]
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute("CREATE TABLE chunks (key INTEGER PRIMARY KEY, id TEXT NOT NULL, sha TEXT NOT NULL, length INTEGER)")
        db.execute("CREATE TABLE postings (term TEXT NOT NULL, chunk INTEGER NOT NULL, tf INTEGER NOT NULL)")
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?)", source.execute("SELECT key, id, sha, length FROM chunks")
        )
        for sha, terms, rows, term_ids, tfs in source.execute("SELECT sha, terms, rows, term_ids, tfs FROM postings"):
            keys = [k for (k,) in source.execute("SELECT key FROM chunks WHERE sha = ? ORDER BY key", (sha,))]
            words = terms.split("\n")
            db.executemany(
                "INSERT INTO postings VALUES (?, ?, ?)",
                zip(
                    [words[t] for t in np.frombuffer(term_ids, dtype=np.int32)],
                    [keys[r] for r in np.frombuffer(rows, dtype=np.int32)],
                    np.frombuffer(tfs, dtype=np.int32).tolist(),
                    strict=True,
                ),
            )
        db.execute("CREATE INDEX postings_term ON postings(term)")
        _unpacked_cache[str(path)] = (version, db)
        return db
    finally:
        source.close()


def _top(db: sqlite3.Connection, weights: list[tuple[str, float]], k: int, average: float, shas: set[str] | None):
    values = ",".join("(?, ?)" for _ in weights)
    params: list = [x for pair in weights for x in pair]
    where = ""
    if shas is not None:
        if not shas:
            return []
        where = f"WHERE c.sha IN ({','.join('?' * len(shas))})"
        params += sorted(shas)
    rows = db.execute(
        f"""WITH q(term, weight) AS (VALUES {values})
        SELECT c.id, SUM(q.weight * p.tf * {K1 + 1} / (p.tf + {K1} * ({1 - B} + {B} * c.length / ?))) AS score
        FROM q JOIN postings p ON p.term = q.term JOIN chunks c ON c.key = p.chunk {where}
        GROUP BY p.chunk ORDER BY score DESC, c.id LIMIT ?""",
        [*params[: 2 * len(weights)], average, *params[2 * len(weights) :], k],
    ).fetchall()
    return [(chunk, float(score)) for chunk, score in rows]
