"""Ingest through RagService: incremental, replace on change, stored once, never loses a file."""

import shutil
import time

import pytest
from conftest import DOCUGAMI, ODD
from pdfgen import write_pdf

from rag_app.errors import DocumentNotFoundError
from rag_app.ingestion.plan import IngestPlan
from rag_app.records import FileStatus
from rag_app.requests import SearchRequest
from rag_app.service import RagService

pytestmark = pytest.mark.usefixtures("corpus")


def statuses(report) -> dict[str, str]:
    return {f.name: f.status.value for f in report.files}


def stored_chunks(service) -> int:
    return service.store(with_model=True).count_chunks()


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "papers"
    write_pdf(docs / "alpha.pdf", ["Alpha revenue was 10 million dollars.", "Alpha margin improved."])
    write_pdf(docs / "sub" / "beta.pdf", ["Beta has a page about cloud services."])
    (docs / "notes.md").write_text("# Notes\n\nGamma notes about the annual meeting.", encoding="utf-8")
    (docs / "ignored.docx").write_bytes(b"PK")
    return docs


def test_folder_ingest_then_rerun_embeds_nothing(service, folder, embed_calls):
    first = service.ingest([folder])
    assert statuses(first) == {"alpha.pdf": "ingested", "sub/beta.pdf": "ingested", "notes.md": "ingested"}
    assert first.ok and first.skipped == [str(folder / "ignored.docx")]
    assert set(first.timings) == {"parse", "wait", "chunk", "embed", "store", "store_wait"}
    assert all(seconds >= 0 for seconds in first.timings.values()) and first.timings["wait"] <= first.seconds
    chunks = stored_chunks(service)
    assert chunks == sum(f.chunks for f in first.files) >= 4
    embed_calls.clear()
    again = service.ingest([folder])
    assert set(statuses(again).values()) == {"unchanged"}
    assert embed_calls == [] and stored_chunks(service) == chunks


def test_changed_file_replaces_its_old_chunks(service, folder):
    service.ingest([folder])
    old_sha = service.store().get_document("alpha.pdf").sha256
    write_pdf(folder / "alpha.pdf", ["Alpha revenue was 12 million dollars after the restatement."])
    report = service.ingest([folder])
    assert statuses(report)["alpha.pdf"] == "replaced"
    assert next(f for f in report.files if f.name == "alpha.pdf").note == "content changed"
    store = service.store(with_model=True)
    assert store.count_chunks(old_sha) == 0
    hits = service.search(SearchRequest(query="Alpha revenue", k=1)).hits
    assert "12 million" in hits[0].text and hits[0].page == 1


def test_same_content_under_two_names_is_stored_once(service, tmp_path):
    a = write_pdf(tmp_path / "a" / "report.pdf", ["Identical content about dividends."])
    b = tmp_path / "b" / "copy of report.pdf"
    b.parent.mkdir()
    shutil.copy(a, b)
    report = service.ingest([a, b])
    assert statuses(report) == {"report.pdf": "ingested", "copy of report.pdf": "ingested"}
    assert "stored once" in report.files[1].note
    assert stored_chunks(service) == report.files[0].chunks
    assert [d.name for d in service.list_documents()] == ["copy of report.pdf", "report.pdf"]
    service.delete_document("report.pdf")  # the other name still needs the chunks
    assert stored_chunks(service) == report.files[0].chunks
    assert service.search(SearchRequest(query="dividends", k=1)).hits[0].file == "copy of report.pdf"
    service.delete_document("copy of report.pdf")
    assert stored_chunks(service) == 0


def test_failures_are_reported_per_file_and_the_rest_is_stored(service, tmp_path):
    docs = tmp_path / "mixed"
    write_pdf(docs / "good.pdf", ["Good text page.", None])
    write_pdf(docs / "scan.pdf", [None, None])
    docs.joinpath("fake.pdf").write_text("<html>not a pdf</html>")
    shutil.copy(ODD / "pypdf" / "encryption__r4-aes-user-password.pdf", docs / "locked.pdf")
    report = service.ingest([docs, tmp_path / "missing.pdf"])
    by_name = {f.name: f for f in report.files}
    assert not report.ok
    assert by_name["good.pdf"].status is FileStatus.INGESTED
    assert by_name["good.pdf"].empty_pages == [2]
    assert by_name["good.pdf"].note == "1 of 2 pages have no text layer: scanned? OCR is off (RAG_OCR=auto reads them)"
    assert (
        by_name["scan.pdf"].reason
        == "no text layer on any of its 2 pages: scanned? OCR is off (RAG_OCR=auto reads them)"
    )
    assert by_name["fake.pdf"].reason == "not a PDF: no %PDF- header and no PDF objects"
    assert by_name["locked.pdf"].reason.startswith("encrypted: password required")
    assert by_name["missing.pdf"].reason == "no such file or directory"
    assert [d.name for d in service.list_documents()] == ["good.pdf"]


def test_passwords_from_flags_and_from_the_per_file_map(service, settings, tmp_path):
    locked = ODD / "pypdf" / "encryption__r4-aes-user-password.pdf"
    assert service.ingest([locked], passwords=["asdfzxcv"]).ok
    service.reset()
    settings.pdf_passwords = {"encryption__r4-aes-user-password.pdf": "asdfzxcv"}
    assert service.ingest([locked]).ok


def test_changing_chunk_settings_reingests(service, settings, embeddings, folder):
    service.ingest([folder])
    settings.chunk_size, settings.chunk_overlap = 64, 8
    rechunked = RagService(settings)
    rechunked.embeddings = embeddings
    report = rechunked.ingest([folder])
    assert set(statuses(report).values()) == {"replaced"}
    assert {f.note for f in report.files} == {"chunk settings changed"}
    assert {d.chunking for d in rechunked.list_documents()} == {rechunked.chunker.fingerprint}
    assert stored_chunks(rechunked) == sum(f.chunks for f in report.files)


def test_changing_the_embedding_model_reingests_into_its_own_index(service, settings, folder, tiny_embedder):
    service.ingest([folder])
    settings.embedding_model = str(tiny_embedder)
    other = RagService(settings)
    hits = other.search(SearchRequest(query="Alpha revenue", k=3))
    assert hits.hits == [] and "re-ingest" in hits.warnings[0]
    report = other.ingest([folder / "alpha.pdf"])
    assert statuses(report) == {"alpha.pdf": "replaced"} and report.files[0].note == "embedding model changed"
    assert other.embeddings.dimension == 32
    assert [h.file for h in other.search(SearchRequest(query="Alpha revenue", k=3)).hits] == ["alpha.pdf", "alpha.pdf"]
    assert service.store(with_model=True).count_chunks(report.files[0].sha256) == 0


def test_delete_unknown_name_and_reset(service, folder):
    service.ingest([folder])
    with pytest.raises(DocumentNotFoundError, match="no document named 'nope.pdf'"):
        service.delete_document("nope.pdf")
    assert service.reset() == 3
    assert service.list_documents() == [] and stored_chunks(service) == 0


def test_real_filing_search_returns_the_page_its_text_is_on(service):
    service.ingest([DOCUGAMI / "2023 Q2 AAPL.pdf"])
    hit = service.search(SearchRequest(query="European Commission State Aid Decision Ireland", k=1)).hits[0]
    assert (hit.file, hit.page) == ("2023 Q2 AAPL.pdf", 14)


@pytest.fixture
def one_file_a_batch(monkeypatch):
    """Each parsed file is embedded on its own, so every file is a hand-over to the writer."""
    from rag_app.ingestion.pipeline import Ingestor

    monkeypatch.setattr(Ingestor, "flush_chunks", property(lambda self: 1))


def test_the_writer_stores_one_batch_while_the_next_is_embedded(service, folder, one_file_a_batch, monkeypatch):
    """The first file's write waits until the next file's embedding has begun: without a writer thread
    that overlaps them, the run would stop at the first write and this test fail on its timeout."""
    import threading

    from rag_app.storage.store import DocumentStore as store_type

    embeddings = service.embeddings
    next_embedding = threading.Event()
    write_threads, embed_calls = [], []
    original_write, original_embed = store_type.write_many, embeddings.embed_tokens

    def write(self, *args, **kwargs):
        write_threads.append(threading.current_thread().name)
        if len(write_threads) == 1:
            assert next_embedding.wait(timeout=60), "the next file was not embedded while the first was stored"
        return original_write(self, *args, **kwargs)

    def embed_tokens(*args, **kwargs):
        embed_calls.append(threading.current_thread().name)
        if len(embed_calls) == 2:
            next_embedding.set()
        return original_embed(*args, **kwargs)

    monkeypatch.setattr(store_type, "write_many", write)
    monkeypatch.setattr(embeddings, "embed_tokens", embed_tokens)
    report = service.ingest([folder])
    assert report.ok and len(report.files) == 3 and len(embed_calls) == 3
    assert set(write_threads) == {"rag-ingest-writer"} and set(embed_calls) == {threading.current_thread().name}
    assert stored_chunks(service) == sum(f.chunks for f in report.files)
    assert report.timings["store"] > 0 and report.timings["store_wait"] >= 0


def test_an_error_while_storing_stops_the_run_and_leaves_nothing_half_written(service, folder, one_file_a_batch, monkeypatch):  # fmt: skip
    from rag_app.errors import StoreUnavailableError
    from rag_app.storage.chunk_table import ChunkTable

    calls = []
    original = ChunkTable.add

    def failing_add(self, sha256, *args, **kwargs):
        calls.append(sha256)
        if len(calls) == 2:
            raise StoreUnavailableError("disk full")
        return original(self, sha256, *args, **kwargs)

    monkeypatch.setattr(ChunkTable, "add", failing_add)
    with pytest.raises(StoreUnavailableError, match="disk full"):
        service.ingest([folder])
    store = service.store(with_model=True)
    stored = store.list_documents()
    assert len(stored) == 1 and stored_chunks(service) == stored[0].chunks  # the first file, whole
    assert store.pending_writes() == [] and store.index().table.shas() == {stored[0].sha256}
    monkeypatch.undo()
    again = service.ingest([folder])
    assert sorted(statuses(again).values()) == ["ingested", "ingested", "unchanged"]


PIPELINED = IngestPlan(mode="pipelined", parse_workers=1, warm_up=True)  # warm-up: a no-op on a CPU


@pytest.fixture
def writer_process(service, monkeypatch) -> list:
    """Every ingest runs pipelined (the store in a writer process), however few its files; lists the
    writer processes started."""
    from rag_app.ingestion import pipeline
    from rag_app.storage.writer_process import StoreWriterProcess

    started = []

    class Recorded(StoreWriterProcess):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(pipeline, "StoreWriterProcess", Recorded)  # observed, not changed
    ingest = service.ingest
    monkeypatch.setattr(service, "ingest", lambda paths, *a, **k: ingest(paths, *a, **{"plan": PIPELINED, **k}))
    return started


@pytest.mark.slow  # starts processes of its own and waits on them
def test_a_large_ingest_stores_through_a_process_of_its_own(service, folder, writer_process, embed_calls):
    report = service.ingest([folder])
    assert statuses(report) == {"alpha.pdf": "ingested", "sub/beta.pdf": "ingested", "notes.md": "ingested"}
    assert report.plan["mode"] == "pipelined"
    assert len(writer_process) == 1 and writer_process[0].process.returncode == 0  # started, then left
    assert stored_chunks(service) == sum(f.chunks for f in report.files)  # this process sees what it wrote
    assert "Alpha revenue" in service.search(SearchRequest(query="Alpha revenue 10 million", k=1)).hits[0].text
    embed_calls.clear()
    again = service.ingest([folder])
    assert set(statuses(again).values()) == {"unchanged"} and embed_calls == []
    write_pdf(folder / "alpha.pdf", ["Alpha revenue was 12 million dollars."])
    replaced = service.ingest([folder])
    assert statuses(replaced)["alpha.pdf"] == "replaced"  # the old content's chunks released by the process
    assert "12 million" in service.search(SearchRequest(query="Alpha revenue", k=1)).hits[0].text
    assert stored_chunks(service) == sum(d.chunks for d in service.list_documents())


@pytest.mark.slow  # starts processes of its own and waits on them
def test_when_the_writer_process_dies_the_run_says_so_and_a_rerun_completes_it(service, folder, writer_process, one_file_a_batch, monkeypatch):  # fmt: skip
    from rag_app.errors import StoreUnavailableError
    from rag_app.storage.writer_process import StoreWriterProcess

    original = StoreWriterProcess.write_many

    def die_after_the_first_write(self, writes):
        original(self, writes)
        self.process.kill()

    monkeypatch.setattr(StoreWriterProcess, "write_many", die_after_the_first_write)
    with pytest.raises(StoreUnavailableError, match="writer process stopped"):
        service.ingest([folder])
    monkeypatch.setattr(StoreWriterProcess, "write_many", original)
    assert len(service.list_documents()) == 1
    rerun = service.ingest([folder])
    assert sorted(statuses(rerun).values()) == ["ingested", "ingested", "unchanged"]
    assert stored_chunks(service) == sum(d.chunks for d in service.list_documents())
    assert service.store(with_model=True).pending_writes() == []


@pytest.mark.slow  # starts processes of its own and waits on them
def test_a_writer_process_that_cannot_open_the_store_says_why(settings):
    from rag_app.errors import StoreUnavailableError
    from rag_app.storage.writer_process import StoreWriterProcess

    (settings.data_dir).mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "chroma").write_text("not a folder")  # where the database should be
    with pytest.raises(StoreUnavailableError, match="cannot open the Chroma database"):
        StoreWriterProcess(settings, "test", "model|dim384", 1)


def test_files_are_handed_to_an_idle_writer_without_waiting_for_a_full_flush(service, folder, monkeypatch):
    """The writer has nothing to do at the start: the first file goes to it at once, not with the rest
    at the end (a flush far larger than the run would otherwise keep everything back)."""
    from rag_app.ingestion.pipeline import Ingestor

    embeddings, calls = service.embeddings, []
    original = embeddings.embed_tokens
    monkeypatch.setattr(
        embeddings, "embed_tokens", lambda sequences, *a: calls.append(len(sequences)) or original(sequences, *a)
    )
    monkeypatch.setattr(Ingestor, "flush_chunks", property(lambda self: 10**9))
    monkeypatch.setattr(embeddings, "batch_size", 1)
    report = service.ingest([folder])
    assert report.ok and len(calls) >= 2  # the first file alone, then the others
    assert stored_chunks(service) == sum(f.chunks for f in report.files)


def test_a_large_run_starts_its_parsers_before_hashing_the_files(service, folder, writer_process, monkeypatch):
    """The parser processes load their libraries while the files are hashed and looked up, not after."""
    from rag_app.ingestion import pipeline as ingestion
    from rag_app.ingestion.parsing import ExtractionPool

    events, original_start, original_hash = [], ExtractionPool.start, ingestion.file_sha256

    def start(self, jobs):
        original_start(self, jobs)
        events.append(("start", jobs, len(self._pool)))

    monkeypatch.setattr(ExtractionPool, "start", start)
    monkeypatch.setattr(ingestion, "file_sha256", lambda path: events.append(("hash",)) or original_hash(path))
    report = service.ingest([folder])
    assert report.ok and events[0] == ("start", 3, 1)  # 3 files, one worker allowed by the test settings
    assert events[1:] == [("hash",)] * 3


def test_a_large_run_warms_the_embedder_up_before_its_first_embedding_call(
    service, folder, writer_process, monkeypatch
):
    """On a GPU the embedder prepares its batch shapes while the first files are parsed: the warm-up
    gets the chunk size, and the first embedding call waits for it to end."""
    embeddings, events = service.embeddings, []
    original_warm_up, original_embed = embeddings.warm_up, embeddings.embed_tokens

    def warm_up(tokens):
        events.append(("warm-up", tokens))
        time.sleep(0.5)  # longer than the first file takes to parse
        events.append(("warmed", original_warm_up(tokens)))

    monkeypatch.setattr(embeddings, "warm_up", warm_up)
    monkeypatch.setattr(
        embeddings, "embed_tokens", lambda seqs, *a: events.append(("embed",)) or original_embed(seqs, *a)
    )
    report = service.ingest([folder])
    assert report.ok
    assert events[:3] == [("warm-up", service.chunker.chunk_size), ("warmed", 0), ("embed",)]  # 0: no graphs on a CPU


def test_a_run_with_nothing_to_embed_ends_after_its_warm_up(service, folder, writer_process, monkeypatch):
    """The warm-up never outlives its run (the next run's would use the embedder beside it)."""
    embeddings, events = service.embeddings, []
    assert service.ingest([folder]).ok
    monkeypatch.setattr(embeddings, "warm_up", lambda tokens: time.sleep(0.5) or events.append("warmed"))
    report = service.ingest([folder])  # every file unchanged: nothing embedded
    assert {f.status.value for f in report.files} == {"unchanged"}
    assert events == ["warmed"]
