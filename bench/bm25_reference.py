"""The BM25 scorer that ran inside SQLite before the in-memory postings (rag_app.postings), kept as the
reference they are checked against: the same ranked chunk ids and scores, over the same index file
(postings keyed by the integer chunk key, as rag_app.lexical writes them)."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from pathlib import Path

from rag_app.lexical import terms_of
from rag_app.postings import K1, B


def sqlite_bm25(path: Path, query: str, k: int, shas: set[str] | None = None) -> list[tuple[str, float]]:
    """The ``k`` best ``(chunk_id, bm25 score)`` for ``query``, scored by one SQL aggregate."""
    terms = Counter(terms_of(query))
    if not terms:
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total, average = db.execute("SELECT COUNT(*), AVG(length) FROM chunks").fetchone()
        if not total:
            return []
        marks = ",".join("?" * len(terms))
        df = db.execute(
            f"SELECT term, COUNT(*) FROM postings WHERE term IN ({marks}) GROUP BY term", list(terms)
        ).fetchall()
        weights = [(term, terms[term] * math.log(1 + (total - n + 0.5) / (n + 0.5))) for term, n in df]
        return _top(db, weights, k, average, shas) if weights else []
    finally:
        db.close()


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
