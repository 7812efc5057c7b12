"""The in-memory BM25 (rag_app.storage.postings) ranks exactly as the SQL scorer it replaced and a brute-force
BM25 do, on real English and Chinese pages, after deletes and after another process's writes, with term
counts given by the parser processes, and after an index of an older layout was rebuilt; the file gives
back each chunk's text and place."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from bench.bm25_reference import sqlite_bm25
from rag_app.ingestion.loaders import load_document
from rag_app.records import Chunk, chunk_id, parse_chunk_id
from rag_app.storage.chunk_table import ChunkTable, StoredChunk
from rag_app.text.terms import terms_of

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What was Amcor's net sales in the quarter?",
    "Amcor net income attributable per share 2023",
    "cash flow from operating activities",
    "10-Q fiscal 2023 restructuring",
    "公司的每股收益是多少",
    "微光股份 电机 机器人 营业收入",
    "净利润 增长",
    "revenue 营业收入 2023",
    "the",  # a stopword only: no terms, nothing found
    "zzqx unknownterm",
]


def pdf_chunks(path: Path, sha: str, size: int = 400) -> list[tuple[str, str]]:
    """``(chunk_id, text)`` pieces of every page of a real PDF."""
    pages = load_document(path).pages
    return [
        (chunk_id(sha, page.number, start), page.text[start : start + size])
        for page in pages
        for start in range(0, len(page.text), size)
    ]


@pytest.fixture(scope="module")
def documents(corpus) -> dict[str, list[tuple[str, str]]]:
    zh = corpus / "qa" / "zh_reports_dev" / "pdfs"
    english = corpus / "qa" / "financebench_dev" / "pdfs" / "AMCOR_2023Q2_10Q.pdf"
    chinese = next(zh.glob("微光股份*.pdf"))
    chunks = pdf_chunks(english, "sha-en")
    return {
        "sha-en": chunks[: len(chunks) // 2],
        "sha-en2": [(c.replace("sha-en", "sha-en2", 1), t) for c, t in chunks[len(chunks) // 2 :]],
        "sha-zh": pdf_chunks(chinese, "sha-zh"),
    }


def add(index: ChunkTable, sha: str, pairs: list[tuple[str, str]], terms: list[dict] | None = None) -> None:
    """Index ``(chunk_id, text)`` pairs as chunks of one file ``<sha>.pdf`` of 40 pages."""
    chunks = [Chunk(c, text, parse_chunk_id(c).page, parse_chunk_id(c).offset, i) for i, (c, text) in enumerate(pairs)]
    index.add(sha, chunks, f"{sha}.pdf", 40, terms)


def stored(pairs: list[tuple[str, str]]) -> list[StoredChunk]:
    return [
        StoredChunk(c, text, parse_chunk_id(c).page, parse_chunk_id(c).offset, i, parse_chunk_id(c).sha256,
                    f"{parse_chunk_id(c).sha256}.pdf", 40)
        for i, (c, text) in enumerate(pairs)
    ]  # fmt: skip


def brute_force(chunks: dict[str, str], query: str, k: int, shas: set[str] | None = None) -> list[tuple[str, float]]:
    """BM25 from its definition, chunk by chunk (k1 1.2, b 0.75, idf log(1 + (N - df + 0.5) / (df + 0.5)))."""
    counts = {chunk: Counter(terms_of(text)) for chunk, text in chunks.items()}
    average = sum(sum(c.values()) for c in counts.values()) / len(counts)
    asked = Counter(terms_of(query))
    df = {t: sum(1 for c in counts.values() if t in c) for t in asked}
    scores = {}
    for chunk, tf in counts.items():
        if shas is not None and chunk.rsplit(":", 2)[0] not in shas:
            continue
        length = sum(tf.values())
        parts = [
            n * math.log(1 + (len(counts) - df[t] + 0.5) / (df[t] + 0.5))
            * tf[t] * 2.2 / (tf[t] + 1.2 * (0.25 + 0.75 * length / average))
            for t, n in asked.items()
            if tf[t]
        ]  # fmt: skip
        if parts:
            scores[chunk] = sum(parts)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


def assert_same(found: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    """Same chunks in the same order, scores equal to 1e-9 (sums may differ in the last bits)."""
    assert [c for c, _ in found] == [c for c, _ in expected]
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-9)


def assert_matches_references(index: ChunkTable, chunks: dict[str, str]) -> None:
    for question in QUESTIONS:
        for shas in (None, {"sha-zh"}, {"sha-en", "sha-zh"}, set()):
            found = index.search(question, 20, shas)
            assert_same(found, sqlite_bm25(index.path, question, 20, shas))
            assert_same(found, brute_force(chunks, question, 20, shas))
        # a running header's terms weighted down (rag_app.retrieval.retriever._title_terms): the same in both
        weights = {term: 0.5 for term in terms_of(question)[:2]}
        assert_same(index.search(question, 20, None, weights), sqlite_bm25(index.path, question, 20, None, weights))


def given_terms(chunks: list[tuple[str, str]]) -> list[dict[str, int]]:
    """Term counts as rag_app.ingestion.prepared makes them in a parser process."""
    return [dict(Counter(terms_of(text))) for _, text in chunks]


@pytest.mark.slow  # three scorers over the real pages of two filings: ~6 s
def test_in_memory_bm25_ranks_as_sql_and_brute_force_on_real_pages(tmp_path, documents):
    index = ChunkTable(tmp_path / "bm25.sqlite")
    for sha, chunks in documents.items():
        add(index, sha, chunks)
    add(index, "sha-zh", documents["sha-zh"], given_terms(documents["sha-zh"]))  # as the parser processes do
    everything = {c: t for chunks in documents.values() for c, t in chunks}
    assert index.search("营业收入", 5) and index.search("Amcor net sales", 5)  # both languages find something
    assert_matches_references(index, everything)

    index.delete("sha-en2")  # a delete moves N, df and the average length: every score changes
    del_en2 = {c: t for c, t in everything.items() if not c.startswith("sha-en2:")}
    assert all(not c.startswith("sha-en2:") for c, _ in index.search("Amcor net sales 2023", 50))
    assert_matches_references(index, del_en2)

    add(index, "sha-en", documents["sha-en"][:3])  # a replace: fewer chunks for the same content
    replaced = {c: t for c, t in del_en2.items() if not c.startswith("sha-en:")} | dict(documents["sha-en"][:3])
    assert_matches_references(index, replaced)


OTHER_PROCESS = """
import sys
from pathlib import Path
from rag_app.storage.chunk_table import ChunkTable
index = ChunkTable(Path(sys.argv[1]))
from rag_app.records import Chunk
index.add("sha-other", [Chunk("sha-other:1:0", "Orbital freight revenue 轨道货运 营业收入 grew", 1, 0, 0), Chunk("sha-other:2:0", "净利润", 2, 0, 1)], "other.pdf", 2)
index.delete("sha-en2")
"""


@pytest.mark.slow  # starts processes of its own and waits on them
def test_a_search_sees_another_process_writing_the_index(tmp_path, documents):
    index = ChunkTable(tmp_path / "bm25.sqlite")
    for sha, chunks in documents.items():
        add(index, sha, chunks)
    assert index.search("orbital freight", 5) == []
    other = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OTHER_PROCESS), str(index.path)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr[-2000:]
    assert index.search("orbital freight", 5)[0][0] == "sha-other:1:0"
    now = {c: t for sha, chunks in documents.items() if sha != "sha-en2" for c, t in chunks}
    now |= {"sha-other:1:0": "Orbital freight revenue 轨道货运 营业收入 grew", "sha-other:2:0": "净利润"}
    assert_matches_references(index, now)
    assert index.shas() == {"sha-en", "sha-zh", "sha-other"}
    assert set(index.cover_terms()) == {"sha-en", "sha-zh", "sha-other"}


def test_the_file_gives_back_each_chunk_with_its_text_place_and_file(tmp_path, documents):
    index = ChunkTable(tmp_path / "bm25.sqlite")
    add(index, "sha-zh", documents["sha-zh"])
    first_id, first_text = documents["sha-zh"][0]
    found = index.chunks_by_id([first_id, "sha-zh:999:0"])
    assert list(found) == [first_id]  # an unknown id is absent, not an error
    chunk = found[first_id]
    assert (chunk.text, chunk.page, chunk.offset, chunk.index) == (first_text, 1, 0, 0)
    assert (chunk.sha256, chunk.file, chunk.pages) == ("sha-zh", "sha-zh.pdf", 40)
    whole = index.chunks_of("sha-zh")
    assert [(c.id, c.text) for c in whole] == sorted(
        documents["sha-zh"], key=lambda p: (parse_chunk_id(p[0]).page, parse_chunk_id(p[0]).offset)
    )
    page_two = index.chunks_of("sha-zh", 2)
    assert page_two and all(c.page == 2 for c in page_two)
    ids = [c for c, _ in documents["sha-zh"]] * 3  # over SQLite's bound-parameter batches
    assert len(index.chunks_by_id(ids)) == len(documents["sha-zh"])


def test_sync_keeps_writes_in_progress_and_names_contents_it_cannot_rebuild(tmp_path, caplog):
    index = ChunkTable(tmp_path / "bm25.sqlite")
    add(index, "done", [("done:1:0", "orbital freight")])
    add(index, "writing", [("writing:1:0", "orbital launch")])  # another process's write, not registered yet
    add(index, "gone", [("gone:1:0", "deleted elsewhere")])
    assert index.sync({"done", "lost"}, lambda sha: [], keep={"writing"}) == (0, 1)
    assert index.shas() == {"done", "writing"}
    assert "re-ingest" in caplog.text and "1 stored file" in caplog.text


def test_a_deleted_and_remade_index_is_not_served_from_memory(tmp_path):
    path = tmp_path / "bm25.sqlite"
    first = ChunkTable(path)
    add(first, "a", [("a:1:0", "orbital freight contract")])
    assert first.search("orbital", 3)[0][0] == "a:1:0"
    first.close()
    for leftover in tmp_path.glob("bm25.sqlite*"):
        leftover.unlink()
    second = ChunkTable(path)
    add(second, "b", [("b:1:0", "orbital launch")])  # version 1 again, of another file
    assert [c for c, _ in second.search("orbital", 3)] == ["b:1:0"]


TEXT_KEYS = """CREATE TABLE chunks (id TEXT PRIMARY KEY, sha TEXT NOT NULL, length INTEGER NOT NULL);
    CREATE TABLE postings (term TEXT NOT NULL, chunk TEXT NOT NULL, tf INTEGER NOT NULL);
    CREATE TABLE covers (sha TEXT PRIMARY KEY, terms TEXT NOT NULL);
    INSERT INTO chunks VALUES ('a:1:0', 'a', 2); INSERT INTO postings VALUES ('orbital', 'a:1:0', 1);"""
STAMPS = """CREATE TABLE stamps (sha TEXT PRIMARY KEY, stamp INTEGER NOT NULL);
    CREATE TABLE state (one INTEGER PRIMARY KEY CHECK (one = 0), uid TEXT NOT NULL, version INTEGER NOT NULL);
    INSERT INTO stamps VALUES ('a', 1); INSERT INTO state VALUES (0, 'old', 1);"""


INTEGER_KEYS = """CREATE TABLE chunks (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, sha TEXT NOT NULL, length INTEGER NOT NULL);
    CREATE TABLE postings (term TEXT NOT NULL, chunk INTEGER NOT NULL, tf INTEGER NOT NULL);
    CREATE TABLE covers (sha TEXT PRIMARY KEY, terms TEXT NOT NULL);
    INSERT INTO chunks VALUES (1, 'a:1:0', 'a', 2); INSERT INTO postings VALUES ('orbital', 1, 1);
    PRAGMA user_version = 2;"""


@pytest.mark.parametrize(
    "layout", [TEXT_KEYS, TEXT_KEYS + STAMPS, INTEGER_KEYS + STAMPS],
    ids=["sql-scored", "text-keys-with-stamps", "row-per-posting-without-texts"],
)  # fmt: skip
def test_an_index_of_an_older_layout_is_rebuilt_by_sync(tmp_path, layout):
    """Indexes of an older layout (without the chunks' texts) are dropped (stamps and version too), then
    rebuilt by sync from what Chroma held then, and searched in memory as the SQL scorer and brute force
    rank them."""
    path = tmp_path / "bm25.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(layout)
    index = ChunkTable(path)
    assert index.shas() == set() and index.search("orbital", 3) == [] and index.state()[0] != "old"
    chunks = {"a:1:0": "the orbital freight", "a:2:0": "orbital launch 轨道货运", "b:1:0": "freight costs"}
    fetch = {sha: stored([(c, t) for c, t in chunks.items() if c.startswith(f"{sha}:")]) for sha in "ab"}
    assert index.sync({"a", "b"}, fetch.__getitem__) == (2, 0)
    for question in ("orbital freight", "轨道货运 launch"):
        found = index.search(question, 5)
        assert found
        assert_same(found, sqlite_bm25(path, question, 5))
        assert_same(found, brute_force(chunks, question, 5))
    index.close()
    assert [c for c, _ in ChunkTable(path).search("costs", 3)] == ["b:1:0"]  # kept when reopened


def test_pages_of_one_document_are_scored_as_whole_pages(tmp_path):
    """Page BM25 (rag_app.retrieval.within): a page whose chunks hold the question's words between them beats
    pages holding one of them; a word on every page of the document counts for little; other documents and
    pages without a word are absent."""
    table = ChunkTable(tmp_path / "pages.sqlite")
    sha, other = "a" * 64, "b" * 64
    texts = [
        (1, 0, "Acme annual report: revenue overview"),
        (2, 0, "Acme revenue by region: Europe and Asia"),
        (2, 40, "Acme operating income by region"),
        (3, 0, "Acme board of directors and operating committees"),
        (4, 0, "Acme risk factors"),
    ]
    table.add(sha, [Chunk(chunk_id(sha, p, o), t, p, o, i) for i, (p, o, t) in enumerate(texts)], "a.pdf", 4)
    table.add(other, [Chunk(chunk_id(other, 1, 0), "revenue by region operating income", 1, 0, 0)], "b.pdf", 1)
    scores = table.page_scores("Acme revenue and operating income by region", sha)
    assert max(scores, key=scores.get) == 2 and set(scores) == {1, 2, 3, 4}
    assert scores[4] < 0.2 * scores[3]  # "Acme" alone: on every page
    assert table.page_scores("board", other) == {} and table.page_scores("board", "c" * 64) == {}


def test_the_pages_holding_a_term_are_counted_per_document(tmp_path):
    """The route reads which documents a name runs through (rag_app.retrieval.documents.running_names): for each
    term, each file content holding it and how many of its pages do, a page counted once however many chunks hold
    it; a content or a term without it is absent, and a later write is counted."""
    table = ChunkTable(tmp_path / "pages.sqlite")
    sha, other = "a" * 64, "b" * 64
    texts = [(1, 0, "Acme annual report"), (2, 0, "Acme revenue"), (2, 40, "Acme income"), (3, 0, "risk factors")]
    table.add(sha, [Chunk(chunk_id(sha, p, o), t, p, o, i) for i, (p, o, t) in enumerate(texts)], "a.pdf", 3)
    table.add(other, [Chunk(chunk_id(other, 7, 0), "Acme, a customer; revenue", 7, 0, 0)], "b.pdf", 9)
    assert table.pages_with(["acme", "risk", "nowhere"]) == {"acme": {sha: 2, other: 1}, "risk": {sha: 1}}
    third = "c" * 64
    table.add(third, [Chunk(chunk_id(third, p, 0), "Acme", p, 0, p) for p in (1, 2, 3)], "c.pdf", 3)
    assert table.pages_with(["acme"])["acme"] == {sha: 2, other: 1, third: 3}
    assert table.pages_with(["acme", "risk"], at_most=2) == {"risk": {sha: 1}}  # held by three: a common word
