"""The store owns persistence: atomic writes, recovery after a kill at any step, and other processes'
commits seen by a running process. Real Chroma and BM25 index; vectors need no model here."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT

from rag_app.records import Chunk, DocumentInfo, chunk_id, parse_chunk_id
from rag_app.settings import Settings
from rag_app.storage.store import Database
from rag_app.storage.vectors import ChromaVectors

EMBEDDING = "test-model|dim8"


def document(name: str, sha: str, chunks: int) -> DocumentInfo:
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat(timespec="seconds")
    return DocumentInfo(name, sha, 1, chunks, 0, now, "tokens128", EMBEDDING, path=f"/docs/{name}")


def chunks_of(sha: str, texts: list[str]) -> list[Chunk]:
    return [Chunk(chunk_id(sha, 1, 100 * i), text, 1, 100 * i, i) for i, text in enumerate(texts)]


def vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write(store, name: str, sha: str, texts: list[str], seed: int = 0) -> None:
    store.write(
        [document(name, sha, len(texts))],
        chunks_of(sha, texts),
        vectors(len(texts), seed),
        {"sha256": sha, "file": name, "pages": 1},
    )


@pytest.fixture
def settings(tmp_path, clean_env):
    return Settings(_env_file=None, data_dir=tmp_path / "data", collection="test")


@pytest.fixture
def store(settings):
    return Database(settings).store("test", EMBEDDING, create=True)


def test_chunk_ids_are_built_and_parsed_by_one_pair_of_functions():
    key = parse_chunk_id(chunk_id("ab12", 7, 340))
    assert (key.sha256, key.page, key.offset, key.page_key) == ("ab12", 7, 340, ("ab12", 7))


def test_write_registers_names_and_chunks_together(store):
    generation = store.generation
    write(store, "a.pdf", "sha-a", ["Revenue grew to 10 million.", "Margins held."])
    assert [d.name for d in store.list_documents()] == ["a.pdf"]
    assert store.count_chunks("sha-a") == 2 and store.pending_writes() == []
    assert store.generation == generation + 1
    ids = store.search_lexical("revenue", 5, None)
    assert ids == [chunk_id("sha-a", 1, 0)]
    hits = store.search_dense(vectors(1)[0], 2, {"sha-a"})
    assert {h.chunk_id for h in hits} == {chunk_id("sha-a", 1, 0), chunk_id("sha-a", 1, 100)}
    assert store.search_dense(vectors(1)[0], 2, set()) == []


def test_a_term_can_count_less_or_not_at_all_in_the_bm25_ranking(store):
    """The retriever weighs down the terms that title a routed document (its company's name, repeated in every
    page header): "Acme" then stops pulling the header chunk above the chunk that holds "website"."""
    write(store, "acme.pdf", "sha-a", ["Acme Corp annual report Acme Corp 2019", "Company website www.acme.com"])
    both = store.search_lexical("Acme website", 5, None)
    assert both[0] == chunk_id("sha-a", 1, 0)
    assert store.search_lexical("Acme website", 5, None, {"acme": 0.0}) == [chunk_id("sha-a", 1, 100)]
    assert store.search_lexical("Acme website", 5, None, {"acme": 1.0}) == both
    assert store.search_lexical("Acme", 5, None, {"acme": 0.0}) == []  # nothing left to rank by


def test_a_failed_write_rolls_back_and_keeps_what_was_stored(store, monkeypatch):
    write(store, "a.pdf", "sha-a", ["First version."])
    from rag_app.storage import chunk_index

    def broken_add(self, chunks, vectors, metadata):
        raise OSError("disk full")

    monkeypatch.setattr(chunk_index.ChunkIndex, "add", broken_add)
    with pytest.raises(OSError):
        write(store, "b.pdf", "sha-b", ["Second file."])
    assert [d.name for d in store.list_documents()] == ["a.pdf"]
    assert store.count_chunks("sha-b") == 0 and store.pending_writes() == []


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, "tests")
from test_store import write, EMBEDDING
from rag_app.storage import chunk_index, store as store_module, vectors
from rag_app.settings import Settings
step = sys.argv[2]
if step == "after-commit-dated-earlier":  # the caller dated the document before a slow first open
    import test_store
    from datetime import datetime, timedelta
    made = test_store.document
    def dated_earlier(*args):
        info = made(*args)
        info.ingested_at = (datetime.fromisoformat(info.ingested_at) - timedelta(seconds=5)).isoformat()
        return info
    test_store.document = dated_earlier
    step = "after-commit"
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if step == "after-marker":
    chunk_index.ChunkIndex.delete = die
elif step == "mid-add":
    vectors.MAX_WRITE_BATCH = 2
    original = chunk_index.ChunkIndex.add
    def half(self, chunks, vectors, metadata):
        original(self, chunks[:2], vectors[:2], metadata)
        die()
    chunk_index.ChunkIndex.add = half
elif step == "before-commit":
    store_module.DocumentStore._register = die
elif step == "after-commit":
    store_module.DocumentStore._clear_pending = die
settings = Settings(_env_file=None, data_dir=sys.argv[1], collection="test")
store = store_module.Database(settings).store("test", EMBEDDING, create=True)
write(store, "b.pdf", "sha-b", ["one", "two", "three", "four", "five"], seed=1)
"""


@pytest.mark.slow  # starts processes of its own and waits on them
@pytest.mark.parametrize(
    ("step", "survives"),
    [("after-marker", False), ("mid-add", False), ("before-commit", False), ("after-commit", True),
     ("after-commit-dated-earlier", True)],
)  # fmt: skip
def test_recovery_after_a_kill_at_each_step_of_a_write(settings, store, step, survives):
    write(store, "a.pdf", "sha-a", ["Kept whatever happens to the other write."])
    died = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_SCRIPT), str(settings.data_dir), step],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert died.returncode == -9, died.stderr[-2000:]
    store.refresh()
    assert store.pending_writes()  # the killed write left its marker
    lost = store.recover()
    names = [d.name for d in store.list_documents()]
    assert store.pending_writes() == []
    if survives:
        assert names == ["a.pdf", "b.pdf"] and lost == [] and store.count_chunks("sha-b") == 5
    else:
        assert names == ["a.pdf"] and store.count_chunks("sha-b") == 0
        assert store.search_lexical("three", 5, None) == []
    assert store.count_chunks("sha-a") == 1


OTHER_PROCESS = """
import sys
sys.path.insert(0, "tests")
from test_store import write, EMBEDDING
from rag_app.settings import Settings
from rag_app.storage.store import Database
store = Database(Settings(_env_file=None, data_dir=sys.argv[1], collection="test")).store("test", EMBEDDING)
store.refresh()
write(store, "new.pdf", "sha-new", ["Intel gross margin was 34 percent."], seed=5)
store.delete_document("old.pdf")
"""


def test_a_running_process_sees_what_another_process_committed(settings, store):
    write(store, "old.pdf", "sha-old", ["Nvidia data center revenue."], seed=4)
    assert {h.file for h in store.search_dense(vectors(1, 5)[0], 4, None)} == {"old.pdf"}  # vectors in memory
    other = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OTHER_PROCESS), str(settings.data_dir)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr[-2000:]
    assert store.refresh() is True  # another process committed: reopened
    hits = store.search_dense(vectors(1, 5)[0], 4, None)
    assert [h.file for h in hits] == ["new.pdf"]
    assert store.search_lexical("intel margin", 4, None) == [chunk_id("sha-new", 1, 0)]
    assert store.refresh() is False  # nothing new since


def test_drop_empties_the_collection_and_other_processes_notice(settings, store):
    write(store, "a.pdf", "sha-a", ["Some text."])
    reader = Database(settings).store("test", EMBEDDING)
    reader.refresh()
    assert store.drop() == 1
    assert store.list_documents() == [] and store.count_chunks() == 0
    assert reader.refresh() is True and reader.list_documents() == []


def test_a_page_vector_is_the_normalised_mean_of_its_chunks_and_is_forgotten_with_its_content(store):
    """The page ranking inside a document (RankingOptions.within_vector_weight) compares the question with each page
    as a whole: the mean of its chunks' vectors, read once from Chroma and kept until the content is written again."""
    sha = "cd" * 32
    chunks = [Chunk(chunk_id(sha, page, 100 * i), f"text {page}.{i}", page, 100 * i, 2 * page + i)
              for page in (1, 2, 3) for i in range(2)]  # fmt: skip
    unit = np.eye(8, dtype=np.float32)
    given = np.stack([unit[0], unit[1], unit[2], unit[2], unit[3], unit[0]])  # page 1: 0+1, page 2: 2, page 3: 3+0
    store.write([document("a.pdf", sha, 6)], chunks, given, {"sha256": sha, "file": "a.pdf", "pages": 3})
    pages = store.index().page_vectors(sha)
    assert pages.pages == (1, 2, 3)
    assert np.allclose(pages.matrix[0], (unit[0] + unit[1]) / np.sqrt(2)) and np.allclose(pages.matrix[1], unit[2])
    assert store.page_ranking(unit[2] + 0.1 * unit[3], sha) == [2, 3, 1]
    assert store.page_ranking(unit[0], sha)[:2] == [1, 3]  # ties keep page order: (0.707, 0.707, 0)
    store.delete_document("a.pdf")
    given[4:] = unit[5]  # page 3 now reads otherwise
    store.write([document("a.pdf", sha, 6)], chunks, given, {"sha256": sha, "file": "a.pdf", "pages": 3})
    assert store.page_ranking(unit[5], sha)[0] == 3 and np.allclose(store.index().page_vectors(sha).matrix[2], unit[5])


def test_page_vectors_from_the_kept_rows_are_those_from_the_chunks():
    """PageVectors.of_rows (one content's vectors, a row per chunk): each page the normalised mean of its chunks', in
    whatever order the rows come."""
    from rag_app.storage.chunk_index import PageVectors

    sha = "ef" * 32
    ids = [chunk_id(sha, page, 100 * i) for page in (3, 1, 2, 1, 3) for i in range(2)]
    ids = list(dict.fromkeys(ids))
    matrix = vectors(len(ids), 5)
    rows = PageVectors.of_rows(ids, matrix)
    expected = np.stack([matrix[[i for i, c in enumerate(ids) if f":{page}:" in c]].mean(axis=0) for page in (1, 2, 3)])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert rows.pages == (1, 2, 3) and rows.matrix.dtype == np.float32
    assert np.allclose(rows.matrix, expected, atol=1e-6)
    assert PageVectors.of_rows([], np.zeros((0, 8), dtype=np.float32)).pages == ()


def many(store, name: str, sha: str, n: int, seed: int) -> np.ndarray:
    """``n`` chunks on ``n // 10`` pages with random vectors; the vectors given."""
    given = vectors(n, seed)
    chunks = [Chunk(chunk_id(sha, 1 + i // 10, 100 * (i % 10)), f"chunk {i}", 1 + i // 10, 100 * (i % 10), i) for i in range(n)]  # fmt: skip
    store.write([document(name, sha, n)], chunks, given, {"sha256": sha, "file": name, "pages": n // 10})
    return given


def brute_force(matrix: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    similarity = matrix @ (query / np.linalg.norm(query))
    return [ids[i] for i in np.lexsort((np.arange(len(ids)), -similarity))[:k]]


def test_the_exact_product_over_many_vectors_is_split_across_the_cores_and_gives_the_same_scores(monkeypatch):
    from threadpoolctl import threadpool_limits

    from rag_app.storage import exact

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((exact.SPLIT_ROWS + 7, 384), dtype=np.float32)
    vector = rng.standard_normal(384, dtype=np.float32)
    parts = []
    monkeypatch.setattr(exact, "_workers", lambda: (SpyPool(parts), 3))
    with threadpool_limits(limits=1, user_api="blas"):  # as while questions are ranked (rag_app/retrieval/blas.py)
        assert np.array_equal(exact.product(matrix, vector), matrix @ vector)  # bit for bit
        assert [len(p) for p in parts] == [6656, 6656, 6695]  # three cores: three parts on 64-row bounds
        parts.clear()
        small = matrix[: exact.SPLIT_ROWS - 1]
        assert np.array_equal(exact.product(small, vector), small @ vector) and parts == []


def test_a_large_matrix_is_screened_in_bf16_and_gives_the_exact_nearest_or_falls_back_where_it_cannot_prove_them(
    monkeypatch,
):
    """The bf16 scan keeps SCREEN_DEPTH times the rows asked, scores them in float32 and answers only where its error bound
    proves no other row could rank among them; where rows tie within that bound, the float32 product answers."""
    from rag_app.storage import exact

    monkeypatch.setattr(exact, "native_bf16", lambda: True)  # the bf16 product is right, if slow, on any CPU
    monkeypatch.setattr(
        exact, "SCREEN_ROWS", exact.SPLIT_ROWS
    )  # a smaller matrix than the scan waits for: a faster test
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((2 * exact.SPLIT_ROWS + 500, 384), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    near = matrix[-1]
    # 600 rows whose cosines with ``near`` are 0.9 to 0.905, apart by 8e-6: far above float32's rounding, all within
    # the bf16 scan's error of each other
    cosines = np.linspace(0.9, 0.905, 600, dtype=np.float32)[rng.permutation(600)]
    other = matrix[:600] - np.outer(matrix[:600] @ near, near)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    matrix[:600] = np.outer(cosines, near) + np.sqrt(1 - cosines**2)[:, None] * other
    ids = [f"c{i}" for i in range(len(matrix))]
    bounds = {"a": (0, 18_000), "b": (18_000, 24_000), "c": (24_000, len(ids))}  # a and c: two runs of rows
    stacked = exact.Stacked.of(
        {name: exact.Segment(1, tuple(ids[x:y]), matrix[x:y], True) for name, (x, y) in bounds.items()}
    )
    outside_b = np.r_[0:18_000, 24_000 : len(ids)]
    screened = []
    kept = exact.Stacked.screened
    monkeypatch.setattr(exact.Stacked, "screened", lambda *a: screened.append(found := kept(*a)) or found)
    for query in rng.standard_normal((4, 384), dtype=np.float32):
        for k in (10, 300):
            assert stacked.nearest(query, k, None)[0] == brute_force(matrix, ids, query, k)
            expected = brute_force(matrix[outside_b], [ids[i] for i in outside_b], query, k)
            assert stacked.nearest(query, k, {"a", "c"})[0] == expected  # b's rows never candidates
    assert len(screened) == 16 and all(rows is not None for rows in screened)  # proved: the scan answered
    screened.clear()
    query = near + 0.3 * rng.standard_normal(384, dtype=np.float32) / np.sqrt(384)  # nearest the 600, and to itself
    assert stacked.nearest(query, 10, None)[0] == brute_force(matrix, ids, query, 10)
    assert screened == [None]  # the 600 within the scan's error of each other: the float32 product answered
    assert stacked.screen_depth == [2 * exact.SCREEN_DEPTH]  # and the next scan keeps twice as many rows
    screened.clear()
    query = rng.standard_normal(384, dtype=np.float32)  # under SCREEN_ROWS rows: their float32 product, no scan
    assert stacked.nearest(query, 20, {"b"})[0] == brute_force(matrix[18_000:24_000], ids[18_000:24_000], query, 20)
    assert screened == [None]


class SpyPool:
    def __init__(self, parts):
        self.parts = parts

    def submit(self, function, matrix, vector):
        import concurrent.futures

        self.parts.append(matrix)
        future = concurrent.futures.Future()
        future.set_result(function(matrix, vector))
        return future


def test_a_collection_under_the_limit_is_searched_exactly_in_memory_and_follows_every_write(
    store, settings, monkeypatch
):
    """RAG_RETRIEVAL_EXACT_CHUNKS: the nearest chunks are the exact ones (Chroma's index is approximate, and its
    graph differs between two builds of the same vectors), within the files asked for; the kept vectors follow a
    write, a delete and another store's write; above the limit the search is Chroma's."""
    from rag_app.storage import exact

    a, b = "a1" * 32, "b2" * 32
    given = {a: many(store, "a.pdf", a, 400, 1), b: many(store, "b.pdf", b, 300, 2)}
    ids = {sha: [c.id for c in store.index().table.chunks_of(sha)] for sha in (a, b)}
    everything = np.concatenate([given[a], given[b]])
    queries = vectors(12, 7)
    for query in queries:
        assert store.nearest_ids(query, 50, None) == brute_force(everything, ids[a] + ids[b], query, 50)
        assert store.nearest_ids(query, 20, {b}) == brute_force(given[b], ids[b], query, 20)  # b's rows alone
        assert store.nearest_ids(query, 20, {a}) == brute_force(given[a], ids[a], query, 20)  # most: the whole product
    hits = store.search_dense(queries[0], 3, None)
    assert hits[0].score == pytest.approx(float(np.max(everything @ queries[0])), abs=1e-4)
    store.delete_document("b.pdf")  # a delete: its chunks leave the search
    assert store.nearest_ids(queries[0], 50, None) == brute_force(given[a], ids[a], queries[0], 50)
    other = Database(settings).store("test", EMBEDDING)  # another store's write (as another process's would be)
    given[b] = many(other, "b.pdf", b, 300, 3)
    assert store.nearest_ids(queries[1], 20, {b}) == brute_force(given[b], ids[b], queries[1], 20)
    calls = []
    kept = exact.Stacked.nearest
    exact.Stacked.nearest = lambda self, *args: calls.append(args) or kept(self, *args)
    try:
        store.nearest_ids(queries[2], 5, None)
        settings.retrieval_exact_chunks = 600  # fewer than the 700 chunks held: Chroma's index
        chroma = Database(settings).store("test", EMBEDDING).nearest_ids(queries[2], 5, None)
    finally:
        exact.Stacked.nearest = kept
    assert len(calls) == 1 and len(chroma) == 5
    # above the limit, the nearest chunks inside one or two contents are searched in their vectors, read from Chroma
    # once and kept, not by Chroma's filtered query
    big = Database(settings).store("test", EMBEDDING)
    filtered = []
    query_chroma = ChromaVectors.nearest
    monkeypatch.setattr(
        ChromaVectors, "nearest", lambda self, *args: filtered.append(args) or query_chroma(self, *args)
    )
    for query in queries[:3]:
        assert big.nearest_ids(query, 20, {b}) == brute_force(given[b], ids[b], query, 20)
    assert big.nearest_ids(queries[3], 5, None) and len(filtered) == 1  # the whole collection: Chroma's index
    # ... and written beside the chunk table, so another process (here: another store) reads none from Chroma again
    read_chroma = ChromaVectors.vectors
    reads = []
    monkeypatch.setattr(ChromaVectors, "vectors", lambda self, chunk_ids: reads.append(chunk_ids) or read_chroma(self, chunk_ids))  # fmt: skip
    again = Database(settings).store("test", EMBEDDING)
    assert again.nearest_ids(queries[4], 20, {b}) == brute_force(given[b], ids[b], queries[4], 20) and reads == []
    folder = again.index().table.path.with_suffix(".vectors")
    assert any(f.name.startswith(b) for f in folder.glob("*.npy"))
    again.delete_document("b.pdf")  # a content no longer held: its file goes at the next search
    again.nearest_ids(queries[4], 5, {a})
    assert not any(f.name.startswith(b) for f in folder.glob("*.npy"))


def test_vectors_not_all_written_yet_are_searched_as_they_are_and_read_again_at_the_next_search():
    """The chunk table is written before the vectors: a content met mid-write is searched with the vectors it has,
    and read again (only it) until all are there; a content whose stamp did not move is not read again."""
    from rag_app.storage.exact import ExactVectors

    unit = np.eye(4, dtype=np.float32)
    stored = {"x:1:0": unit[0], "x:1:100": unit[1], "y:1:0": unit[2]}
    contents = {"x": (1, ["x:1:0", "x:1:100"]), "y": (2, ["y:1:0", "y:1:100"]), "z": (3, ["z:1:0"])}  # z: none yet
    reads = []

    def read(ids):
        reads.append(list(ids))
        return {i: stored[i] for i in ids if i in stored}

    kept = ExactVectors()
    matrix = kept.current(("uid", 5), lambda: contents, read, 100)
    assert matrix.nearest(unit[3] + 0.1 * unit[2], 4, None)[0] == ["y:1:0", "x:1:0", "x:1:100"]  # y:1:100 not yet
    assert matrix.nearest(unit[0], 3, {"z"}) == ([], [])
    stored["y:1:100"], stored["z:1:0"] = unit[3], unit[1]
    reads.clear()
    matrix = kept.current(("uid", 5), lambda: contents, read, 100)  # the same table state: y and z read again
    assert reads == [["y:1:0", "y:1:100"], ["z:1:0"]] and matrix.nearest(unit[3], 1, {"y"})[0] == ["y:1:100"]
    assert matrix.nearest(unit[1], 1, {"z"})[0] == ["z:1:0"]
    reads.clear()
    assert kept.current(("uid", 5), lambda: contents, read, 100) is matrix and reads == []  # complete: nothing read
    assert kept.current(("uid", 6), lambda: contents, read, 3) is None  # over the limit: nothing kept
    assert matrix.nearest(unit[0], 2, None)[0] == ["x:1:0", "x:1:100"]  # a search that had the matrix keeps it
    assert matrix.vectors(["x:1:0", "w:1:0"]).keys() == {"x:1:0"}


def test_the_next_process_reads_the_kept_vectors_from_disk_not_from_chroma(store, settings, monkeypatch):
    """Each content's matrix is written beside the chunk table, so a new process (a command-line question) reads no
    vector from Chroma; a rewritten content's old file and a deleted content's file go at the next refresh, a damaged
    file is read again from Chroma, and dropping the collection removes the folder."""
    from rag_app.storage import exact
    from rag_app.storage.vectors import ChromaVectors

    a, b = "a1" * 32, "b2" * 32
    given = many(store, "a.pdf", a, 200, 1)
    many(store, "b.pdf", b, 100, 2)
    query = vectors(1, 9)[0]
    first = store.nearest_ids(query, 10, None)
    folder = store.index().table.path.with_suffix(".vectors")
    assert sorted(f.name.split(".")[0] for f in folder.glob("*.npy")) == [a, b]
    reads = []
    read = ChromaVectors.vectors
    monkeypatch.setattr(ChromaVectors, "vectors", lambda self, ids: reads.append(len(ids)) or read(self, ids))
    exact._cache.clear()  # as a new process starts
    assert Database(settings).store("test", EMBEDDING).nearest_ids(query, 10, None) == first and reads == []
    ids = [c.id for c in store.index().table.chunks_of(a)]
    assert np.allclose(store.index().page_vectors(a).matrix[0], given[:10].mean(0) / np.linalg.norm(given[:10].mean(0)))  # fmt: skip
    store.delete_document("b.pdf")
    given = many(store, "a.pdf", a, 200, 5)  # rewritten: another stamp
    assert store.nearest_ids(query, 10, None) == brute_force(given, ids, query, 10)
    assert [f.name.split(".")[0] for f in folder.glob("*.npy")] == [a] and len(list(folder.iterdir())) == 1
    next(folder.glob("*.npy")).write_bytes(b"not numpy")
    exact._cache.clear()
    reads.clear()
    assert Database(settings).store("test", EMBEDDING).nearest_ids(query, 10, None) == brute_force(
        given, ids, query, 10
    )
    assert sum(reads) == 200  # the damaged file: read again from Chroma (and written again)
    assert np.load(next(folder.glob("*.npy"))).shape == (200, 8)
    store.drop()
    assert not folder.exists()
