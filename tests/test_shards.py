"""A chunk collection spread over several Chroma shards (RAG_CHROMA_SHARDS) finds what one collection
finds, deletes and drops from every shard, recovers from a kill, shows other processes' writes, and is
written in parallel by the shards' writer processes during a large ingest. Real Chroma throughout."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT
from test_store import EMBEDDING, chunks_of, document, vectors, write

from rag_app.errors import StoreUnavailableError
from rag_app.records import chunk_id
from rag_app.requests import SearchRequest
from rag_app.settings import Settings
from rag_app.storage.store import Database, FileWrite
from rag_app.storage.vectors import shard_of

FILES = {f"sha-{i}": [f"File {i} chunk {j} about topic {(i * 7 + j) % 5}." for j in range(12)] for i in range(4)}


def sharded(tmp_path, shards: int, name: str = "data"):
    settings = Settings(_env_file=None, data_dir=tmp_path / name, collection="test", chroma_shards=shards)
    return Database(settings).store("test", EMBEDDING, create=True)


def file_writes() -> list[FileWrite]:
    """The FILES as one write of several files."""
    return [
        FileWrite(
            [document(f"{sha}.pdf", sha, 12)],
            chunks_of(sha, texts),
            vectors(12, i),
            {"sha256": sha, "file": f"{sha}.pdf", "pages": 1},
        )  # fmt: skip
        for i, (sha, texts) in enumerate(FILES.items())
    ]


def fill(store) -> None:
    for i, (sha, texts) in enumerate(FILES.items()):
        write(store, f"{sha}.pdf", sha, texts, seed=i)


def test_a_sharded_collection_finds_what_a_single_one_finds(tmp_path):
    one, three = sharded(tmp_path, 1, "one"), sharded(tmp_path, 3, "three")
    fill(one)
    fill(three)
    index = three.index()
    assert (
        index.shards == 3 and three.db.client.get_collection(index.name).count() == 0
    )  # the main database only names the shards
    per_shard = [part.count() for part in index.vectors.parts]
    assert sum(per_shard) == 48 and all(n > 0 for n in per_shard)  # every file spread over every shard
    assert all((tmp_path / "three" / "chroma" / "shards" / str(i)).is_dir() for i in range(3))
    assert three.count_chunks() == one.count_chunks() == 48 and three.count_chunks("sha-2") == 12
    queries = np.random.default_rng(9).normal(size=(6, 8)).astype(np.float32)
    for query in queries:
        for shas in (None, {"sha-1", "sha-3"}):
            want = [(h.chunk_id, h.score) for h in one.search_dense(query, 10, shas)]
            assert [(h.chunk_id, h.score) for h in three.search_dense(query, 10, shas)] == want
            assert three.nearest_ids(query, 10, shas) == [i for i, _ in want]
    ids = one.nearest_ids(queries[0], 5, None)
    assert {i: h.score for i, h in three.hits(ids, queries[0]).items()} == {
        i: h.score for i, h in one.hits(ids, queries[0]).items()
    }
    chunks, stored, _ = three.document_records(three.get_document("sha-0.pdf"))
    assert len(chunks) == 12 and np.allclose(stored, vectors(12, 0), atol=1e-6)


def test_the_shard_count_is_fixed_when_a_collection_is_made(tmp_path):
    write(sharded(tmp_path, 1), "a.pdf", "sha-a", ["Revenue grew."])
    reopened = sharded(tmp_path, 4)  # the setting changed: the collection keeps its single shard
    assert reopened.index().shards == 1 and reopened.count_chunks("sha-a") == 1
    assert not (tmp_path / "data" / "chroma" / "shards").exists()
    made = Database(reopened.db.settings).store("other", EMBEDDING, create=True)
    assert made.index().shards == 4  # a new collection takes the setting


def test_deleting_and_dropping_reach_every_shard(tmp_path):
    store = sharded(tmp_path, 3)
    fill(store)
    store.delete_document("sha-1.pdf")
    assert store.count_chunks("sha-1") == 0 and store.count_chunks() == 36
    assert store.drop() == 3
    for i in range(3):
        client = store.db.shard_client(i)
        assert [c if isinstance(c, str) else c.name for c in client.list_collections()] == []
    assert store.count_chunks() == 0  # made again, empty, still spread over 3 shards
    write(store, "a.pdf", "sha-a", ["Back again."])
    assert store.count_chunks("sha-a") == 1


def test_a_failed_shard_write_rolls_back_every_file_of_the_write(tmp_path, monkeypatch):
    store = sharded(tmp_path, 3)
    write(store, "kept.pdf", "sha-kept", ["Kept whatever happens."])
    broken = store.index().vectors.parts[2]
    original = type(broken).add

    def add(self, **kwargs):
        if self.id == broken.id:
            raise OSError("disk full")
        return original(self, **kwargs)

    monkeypatch.setattr(type(broken), "add", add)
    writes = file_writes()
    with pytest.raises(OSError, match="disk full"):
        store.write_many(writes)
    monkeypatch.undo()
    assert [d.name for d in store.list_documents()] == ["kept.pdf"] and store.pending_writes() == []
    assert store.count_chunks() == 1 and store.index().table.shas() == {"sha-kept"}


KILL_MID_WRITE = """
import os, signal, sys
sys.path.insert(0, "tests")
from chromadb.api.models.Collection import Collection
from test_store import write, EMBEDDING
from rag_app.settings import Settings
from rag_app.storage.store import Database
original, calls = Collection.add, []
def add(self, *args, **kwargs):
    calls.append(self.name)
    if len(calls) == 2:  # the first shard written, the second not
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
Collection.add = add
store = Database(Settings(_env_file=None, data_dir=sys.argv[1], collection="test")).store("test", EMBEDDING)
write(store, "b.pdf", "sha-b", [f"chunk {i}" for i in range(20)], seed=1)
"""


def test_a_kill_while_the_shards_are_written_is_recovered(tmp_path):
    store = sharded(tmp_path, 3)
    write(store, "a.pdf", "sha-a", ["Kept whatever happens to the other write."])
    died = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_MID_WRITE), str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert died.returncode == -9, died.stderr[-2000:]
    store.refresh()
    assert store.pending_writes() and store.recover() == []
    assert [d.name for d in store.list_documents()] == ["a.pdf"]
    assert store.count_chunks("sha-b") == 0 and store.count_chunks() == 1 and store.pending_writes() == []


OTHER_PROCESS = """
import sys
sys.path.insert(0, "tests")
from test_store import write, EMBEDDING
from rag_app.settings import Settings
from rag_app.storage.store import Database
store = Database(Settings(_env_file=None, data_dir=sys.argv[1], collection="test")).store("test", EMBEDDING)
store.refresh()
write(store, "new.pdf", "sha-new", [f"Intel gross margin was {i} percent." for i in range(9)], seed=5)
"""


def test_what_another_process_writes_to_the_shards_is_found_after_a_refresh(tmp_path):
    store = sharded(tmp_path, 3)
    fill(store)
    query = vectors(9, 5)[0]
    assert all(not i.startswith("sha-new") for i in store.nearest_ids(query, 5, None))
    other = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OTHER_PROCESS), str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr[-2000:]
    assert store.refresh()  # reopened: every shard's database read again
    assert store.nearest_ids(query, 1, None) == [chunk_id("sha-new", 1, 0)]
    assert store.count_chunks("sha-new") == 9


def test_a_shard_writer_process_reports_an_error_at_flush_and_writes_nothing_after_it(tmp_path):
    from rag_app.storage.chroma import persistent_client
    from rag_app.storage.shard_process import ShardWriterProcess

    path = tmp_path / "shard"
    writer = ShardWriterProcess(path)
    spec = ("c-test", {"rag_app": "chunks"})
    writer.add(spec, ["a", "b"], vectors(2), [{"sha256": "s1"}] * 2)
    writer.add(spec, ["c"], np.ones((1, 3), dtype=np.float32), [{"sha256": "s2"}])  # wrong dimension
    writer.add(spec, ["d"], vectors(1), [{"sha256": "s3"}])
    with pytest.raises(Exception, match="(?i)dimension"):
        writer.flush()
    writer.delete(spec, "s1")
    writer.flush()  # the error was reported once; later calls run
    writer.close()
    assert writer.process.returncode == 0
    assert persistent_client(path).get_collection("c-test").get()["ids"] == []  # "d" never written, "a", "b" deleted


def test_a_shard_writer_process_that_dies_says_so(tmp_path):
    from rag_app.storage.shard_process import ShardWriterProcess

    writer = ShardWriterProcess(tmp_path / "shard")
    writer.process.kill()
    writer.process.wait()
    with pytest.raises(StoreUnavailableError, match="writer process of the Chroma shard .* stopped"):
        writer.add(("c-test", {}), ["a"], vectors(1), [{"sha256": "s"}])
        writer.flush()


@pytest.fixture
def sharded_service(settings, embeddings, monkeypatch):
    """A service whose collections get 3 shards, storing every ingest through the writer process."""
    from rag_app.ingestion.plan import IngestPlan
    from rag_app.service import RagService

    svc = RagService(settings.model_copy(update={"chroma_shards": 3}))
    svc.embeddings = embeddings
    ingest, plan = svc.ingest, IngestPlan(mode="pipelined", parse_workers=1, shards=3)
    monkeypatch.setattr(svc, "ingest", lambda paths, *a, **k: ingest(paths, *a, **{"plan": plan, **k}))
    return svc


@pytest.mark.slow  # a shard writer process per shard, each importing Chroma
def test_a_large_ingest_writes_the_shards_through_processes_of_their_own(sharded_service, tmp_path, monkeypatch):
    from pdfgen import write_pdf

    from rag_app.ingestion import pipeline
    from rag_app.storage.writer_process import StoreWriterProcess

    started = []

    class Recorded(StoreWriterProcess):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(pipeline, "StoreWriterProcess", Recorded)  # observed, not changed
    docs = tmp_path / "papers"
    for i in range(5):
        write_pdf(docs / f"f{i}.pdf", [f"Company {i} revenue was {i + 10} million dollars.", f"Company {i} margin."])
    report = sharded_service.ingest([docs])
    assert report.ok and len(report.files) == 5
    assert [p.shard_processes for p in started] == [3]  # the writer process wrote through 3 shard processes
    store = sharded_service.store(with_model=True)
    index = store.index()
    assert index.shards == 3 and store.db.client.get_collection(index.name).count() == 0
    assert sum(p.count() for p in index.vectors.parts) == sum(f.chunks for f in report.files)
    hit = sharded_service.search(SearchRequest(query="Company 3 revenue", k=1)).hits[0]
    assert "Company 3 revenue was 13 million" in hit.text
    write_pdf(docs / "f3.pdf", ["Company 3 revenue was 99 million dollars."])
    again = sharded_service.ingest([docs])
    assert sorted(f.status.value for f in again.files) == ["replaced"] + ["unchanged"] * 4
    assert "99 million" in sharded_service.search(SearchRequest(query="Company 3 revenue", k=1)).hits[0].text
    assert store.count_chunks() == sum(d.chunks for d in sharded_service.list_documents())
    assert {shard_of(i, 3) for i in store.nearest_ids(np.ones(384, dtype=np.float32), 50, None)} == {0, 1, 2}


def orphans_of(store) -> dict:
    """What the vectors (every shard) and the chunk table hold that no registered document owns."""
    owned = {d.sha256 for d in store.list_documents()}
    index = store.index()
    parts = index.vectors.parts
    in_shards = [{m["sha256"] for m in part.get(include=["metadatas"])["metadatas"]} - owned for part in parts]
    return {"shards": [sorted(s) for s in in_shards], "table": sorted(index.table.shas() - owned)}


NONE = {"table": []}


@pytest.mark.parametrize("shards", [1, 2])
def test_recovery_removes_chunks_no_registered_document_owns(tmp_path, shards):
    """Chunks left without a marker (a rollback cut short at a dead shard, before this fix cleared the markers
    anyway) took top-k slots until the same files were ingested again; recovery finds them by their absence
    from the registry, in every shard and in the chunk table."""
    store = sharded(tmp_path, shards)
    write(store, "kept.pdf", "sha-kept", ["Kept whatever happens.", "Revenue grew to 10 million."])
    for i in range(3):  # what a cut-short write left: vectors and texts, no name, no marker
        sha = f"sha-orphan-{i}"
        store.index().add(chunks_of(sha, [f"orphan {i} chunk {j}" for j in range(12)]), vectors(12, 10 + i),
                          {"sha256": sha, "file": f"{sha}.pdf", "pages": 1})  # fmt: skip
    assert store.pending_writes() == [] and orphans_of(store)["table"] == [f"sha-orphan-{i}" for i in range(3)]
    assert store.recover() == []
    assert orphans_of(store) == {"shards": [[]] * shards, **NONE}
    assert store.count_chunks() == 2 and [d.name for d in store.list_documents()] == ["kept.pdf"]
    hits = store.search_dense(vectors(1, 10)[0], 5, None)
    assert {h.file for h in hits} == {"kept.pdf"}


def test_a_write_in_progress_elsewhere_is_never_taken_for_an_orphan(tmp_path):
    store = sharded(tmp_path, 2)
    other = Database(store.db.settings).store("test", EMBEDDING)
    from rag_app.storage.store import PendingWrite

    other._mark_pending([PendingWrite("sha-busy", EMBEDDING, "another-host:1", "2999-01-01T00:00:00+00:00")])
    other.index().add(
        chunks_of("sha-busy", ["being written"]), vectors(1), {"sha256": "sha-busy", "file": "b", "pages": 1}
    )
    store.refresh()
    store.recover()
    assert store.count_chunks("sha-busy") == 1 and store.index().table.has("sha-busy")


@pytest.mark.slow  # starts processes of its own and waits on them
@pytest.mark.parametrize("shards", [2, 3])
def test_a_shard_writer_that_dies_mid_write_leaves_the_markers_and_recovery_removes_every_piece(tmp_path, shards):
    """The store's writer process writes through a process per shard; one of them dies during a write of
    several files: the rollback reaches every other shard and the chunk table, the markers stay because the
    dead shard could not be reached, and recovery (in the next process) removes the rest."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", collection="test", chroma_shards=shards)
    database = Database(settings, shard_processes=True)
    store = database.store("test", EMBEDDING, create=True)
    write(store, "kept.pdf", "sha-kept", [f"Kept chunk {i}." for i in range(8)])
    dying = store.index().vectors.writers[1]
    dying.process.kill()
    writes = file_writes()
    with pytest.raises(StoreUnavailableError, match=r"Chroma shard 1 stopped \(killed by SIGKILL\)"):
        store.write_many(writes)
    assert {p.sha256 for p in store.pending_writes()} == set(FILES), "the markers went though a shard kept its part"
    assert store.index().table.shas() == {"sha-kept"}, "the rollback stopped at the dead shard"
    database.close()
    later = Database(settings).store("test", EMBEDDING)  # the next run, in another process
    later.refresh()
    assert later.recover() == []
    assert later.pending_writes() == [] and orphans_of(later) == {"shards": [[]] * shards, **NONE}
    assert [d.name for d in later.list_documents()] == ["kept.pdf"] and later.count_chunks() == 8
