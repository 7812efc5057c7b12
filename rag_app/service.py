"""RagService: the one object the CLI, the HTTP API and the web UI call.

It owns the shared, expensive things (the Chroma client, the embedding model)
and loads each only when an operation needs it: listing documents never loads
the embedding model.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from rag_app.errors import DocumentNotFoundError, InvalidRequestError, NoDocumentsError, RagError, StoreBusyError
from rag_app.health import EmbeddingStatus, Health, ModelState
from rag_app.ingestion.chunking import TokenChunker
from rag_app.ingestion.files import Candidate, discover
from rag_app.ingestion.parsing import ExtractionPool
from rag_app.ingestion.pipeline import Ingestor
from rag_app.ingestion.plan import IngestPlan, vector_shards
from rag_app.ingestion.progress import IngestProgress
from rag_app.prompts import detect_language
from rag_app.records import DocumentInfo, FileReport, FileStatus, IngestReport, LostTexts, file_sha256
from rag_app.requests import AskRequest, SearchRequest, SummaryRequest
from rag_app.retrieval.boosts import Formalities, section_boosts
from rag_app.retrieval.explanations import Explanations
from rag_app.retrieval.fusion import ranking_options
from rag_app.retrieval.retriever import Retriever, SearchResult, page_window
from rag_app.settings import Settings
from rag_app.storage.store import Database, DocumentStore

if TYPE_CHECKING:
    from rag_app.answering.events import Answer, Event
    from rag_app.llm import LoadedModel
    from rag_app.summaries.summarizer import Summary, SummaryDoneEvent

log = logging.getLogger(__name__)
# One writer at a time per data directory within this process: later writes wait their turn.
_WRITERS: dict[Path, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


class RagService:
    """Ingest, list, delete and search documents of the configured collections."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._model_lock = threading.Lock()
        self._loaded_model: LoadedModel | None = None
        self.model_state = ModelState.NOT_LOADED
        self.model_error = ""

    # ----- shared resources -------------------------------------------------------------

    @cached_property
    def database(self) -> Database:
        # a chunk collection made here gets the shards an ingest plan gives it (asked only when one is made)
        return Database(self.settings, new_shards=lambda: vector_shards(self.settings, self.embedding_device))

    @cached_property
    def embedding_device(self) -> str:
        """Where the embedder runs (or will), without loading it."""
        from rag_app.embedding.embedder import pick_device

        return pick_device(self.settings.embedding_device)

    @cached_property
    def embeddings(self):
        from rag_app.embedding.choice import load_embeddings

        return load_embeddings(self.settings)

    @cached_property
    def chinese_reader(self):
        """The Chinese embedding model of RAG_EMBEDDING_MODEL_ZH, loaded once; None when unset or when the main
        model reads Chinese itself."""
        from rag_app.embedding.chinese import load_chinese_reader
        from rag_app.embedding.embedder import pick_precision

        if not self.settings.embedding_model_zh or self.embeddings.reads_chinese:
            return None
        # the main model's arithmetic where it has one of the reader's (int8 is the ONNX path's: fp32 here)
        precision = pick_precision(self.settings.embedding_precision, self.embedding_device)
        precision = precision if precision in ("bf16", "fp16") else "fp32"
        reader = load_chinese_reader(self.settings.embedding_model_zh, self.embedding_device, precision)
        if reader is not None and reader.dimension != self.embeddings.dimension:
            log.warning(
                "the Chinese embedding model %s gives %d numbers a vector and %s gives %d: they cannot share a chunk "
                "collection, so Chinese is read by BM25 and the document match only (set RAG_EMBEDDING_MODEL_ZH= "
                "to silence this, or use a main model of %d dimensions)",
                reader.description, reader.dimension, self.settings.embedding_model, self.embeddings.dimension,
                reader.dimension,
            )  # fmt: skip
            return None
        return reader

    @cached_property
    def chunker(self) -> TokenChunker:
        size = min(self.settings.chunk_size, self.embeddings.max_tokens)
        if size < self.settings.chunk_size:
            log.warning(
                "chunk_size %d exceeds what %s reads (%d tokens): using %d",
                self.settings.chunk_size, self.settings.embedding_model, self.embeddings.max_tokens, size,
            )  # fmt: skip
        return TokenChunker(self.embeddings.count_tokens, size, self.settings.chunk_overlap, self.embeddings.max_tokens)

    def store(self, collection: str | None = None, with_model: bool = False, create: bool = False) -> DocumentStore:
        """The document store of a collection; ``create`` makes it if it does not exist."""
        fingerprint = self.embeddings.fingerprint if with_model else ""
        return self.database.store(collection or self.settings.collection, fingerprint, create)

    def retriever(self, store: DocumentStore) -> Retriever:
        s = self.settings
        ranking = ranking_options(s.retrieval_document_weight, s.retrieval_within, s.retrieval_unnamed_weight)
        boosts = section_boosts(s.retrieval_section_sets, s.retrieval_section_weight, s.retrieval_section_item_weight)
        formalities = Formalities.load() if s.retrieval_formal_pages_last else None
        return Retriever(
            store, self.embeddings, s.retrieval, s.retrieval_candidates, ranking, boosts, self.reranker,
            self.chinese_reader, s.retrieval_dense_candidates, formalities, Explanations.load(),
        )  # fmt: skip

    @cached_property
    def reranker(self):
        """The cross-encoder of RAG_RERANKER_MODEL, loaded once, or the answer model's reranker
        (RAG_RETRIEVAL_RERANK=answer_model, where the model gives token probabilities); None when neither."""
        if self.settings.reranker_model:
            from rag_app.retrieval.rerank import CrossEncoderReranker

            return CrossEncoderReranker(self.settings.reranker_model, self.embeddings.device)
        if self.settings.retrieval_rerank == "answer_model":
            return self._answer_model_reranker()
        return None

    def _answer_model_reranker(self):
        from rag_app.retrieval.rerank import AnswerModelReranker

        backend = self.model
        if backend is None or backend.yes_no is None:
            what = "no answer model" if backend is None else f"the answer model {backend.info.name}"
            log.warning("RAG_RETRIEVAL_RERANK=answer_model: %s gives no token probabilities; pages are not reranked", what)  # fmt: skip
            return None
        return AnswerModelReranker(backend.yes_no, self.settings.retrieval_rerank_depth)

    def collections(self) -> list[str]:
        return self.database.collections()

    def require_documents(self, collection: str | None = None) -> None:
        """Raise NoDocumentsError when the app's own collection was never given a document (a first visit)."""
        name = collection or self.settings.collection
        if name == self.settings.collection and name not in self.collections():
            raise NoDocumentsError(
                f"no collection named {name!r} yet: no documents yet, add PDFs first (the page's Documents tab, "
                "POST /api/documents or python -m ingest FILES)"
            )

    @property
    def loaded_model(self) -> LoadedModel:
        """The answer model (or none, and why); loaded once, by whichever caller comes first."""
        with self._model_lock:
            if self._loaded_model is None:
                from rag_app.llm import load_chat_backend

                self.model_state = ModelState.LOADING
                try:
                    self._loaded_model = load_chat_backend(self.settings)
                except Exception as exc:
                    self.model_state, self.model_error = ModelState.FAILED, str(exc)
                    raise
                self.model_state = ModelState.EXTRACTIVE if self._loaded_model.extractive else ModelState.READY
            return self._loaded_model

    @property
    def model(self):
        """The answer model (a ChatBackend), or None in extractive mode; loaded on first use."""
        return self.loaded_model.backend

    @property
    def no_model_reason(self) -> str:
        return self.loaded_model.reason

    def preload_model(self) -> threading.Thread:
        """Load the answer model in the background (the web app starts serving at once)."""

        def load() -> None:
            try:
                self.loaded_model  # noqa: B018 - loading is the point
            except Exception:  # noqa: BLE001 - kept in model_state / model_error for /api/health
                log.exception("the answer model failed to load")

        thread = threading.Thread(target=load, name="rag_app-model-loader", daemon=True)
        thread.start()
        return thread

    def preload_search(self) -> threading.Thread:
        """Load the embedding model and read the collection's search structures (BM25 postings, the vectors kept in
        memory: seconds at 100,000 chunks) in the background, so the first question does not wait for them; and the
        Chinese reader where the collection holds documents it read (a library without Chinese never loads it); then
        what a first question to each document reads of its pages (:meth:`Retriever.warm`: about 4 s for 139
        filings on 2 cores), and what the embedding model sets up at its first question."""

        def load() -> None:
            try:
                if self.settings.collection in self.database.collections():
                    store = self.store(with_model=True)
                    store.warm()
                    reader = self.chinese_reader
                    if reader is not None and any(d.reader == reader.name for d in store.list_documents()):
                        reader.model  # noqa: B018 - loads it (seconds) before the first Chinese question
                    self.retriever(store).warm()
                    # a first question's own set-up, once a process (LocalEmbeddings: the arithmetic questions take,
                    # timed, and the direct forward checked: about 0.5 s on 2 cores)
                    self.embeddings.embed_query("warm")
            except Exception:  # noqa: BLE001 - the first question reads them again and reports what fails
                log.warning("reading the search indexes ahead of the first question failed", exc_info=True)

        thread = threading.Thread(target=load, name="rag_app-search-loader", daemon=True)
        thread.start()
        return thread

    # ----- operations ---------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[Path],
        passwords: Sequence[str] = (),
        progress: IngestProgress | None = None,
        collection: str | None = None,
        plan: IngestPlan | None = None,
    ) -> IngestReport:
        """Ingest files and folders; bad files are reported, never raised. ``plan``: how the run is laid
        out (default: :meth:`IngestPlan.build` for these files on this machine)."""
        candidates, skipped, missing = discover([Path(p) for p in paths])
        with self._ingestor(collection, progress, plan, len(candidates)) as ingestor:
            report = ingestor.run(candidates, passwords)
        report.skipped, report.files[:0] = skipped, missing
        return report

    def plan(self, files: int) -> IngestPlan:
        """How an ingest of ``files`` files runs on this machine, with these settings."""
        return IngestPlan.build(self.settings, self.embedding_device, files)

    @contextlib.contextmanager
    def _ingestor(
        self, collection: str | None, progress: IngestProgress | None, plan: IngestPlan | None, files: int
    ) -> Iterator[Ingestor]:
        """An Ingestor with parser processes, holding the write lock."""
        s = self.settings
        plan = plan or self.plan(files)
        with self.write_lock():
            store = self.store(collection, with_model=True, create=True)
            with ExtractionPool(plan.parse_workers, s.parse_timeout_s, s.parse_memory_mb, s.ocr, plan.ocr_threads) as pool:  # fmt: skip
                yield Ingestor(
                    store, self.embeddings, self.chunker, pool, plan, progress, s.pdf_passwords, s.pdf_parser,
                    self.chinese_reader,
                )  # fmt: skip

    def list_documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self.store(collection).list_documents()

    def delete_document(self, name: str, collection: str | None = None) -> DocumentInfo:
        """Remove a document name; its chunks go when no other name shares the content, and an
        uploaded file goes with it."""
        with self.write_lock():
            store = self.store(collection)
            store.refresh()
            store.recover()
            doc = store.delete_document(name) or self._delete_renamed_upload(store, name)
            if doc is None:
                raise DocumentNotFoundError(f"no document named {name!r} in collection {store.collection!r}")
            self._remove_upload(store, Path(doc.path))
            return doc

    @staticmethod
    def _delete_renamed_upload(store: DocumentStore, name: str) -> DocumentInfo | None:
        """An upload whose name the file system made change is deleted by the name it was uploaded under too."""
        from rag_app.ingestion.uploads import safe_name

        stored = safe_name(name)
        return store.delete_document(stored) if stored != name else None

    def reset(self, collection: str | None = None) -> int:
        """Delete every document and chunk of a collection; returns how many documents it held."""
        with self.write_lock():
            store = self.store(collection)
            store.refresh()
            count = store.drop()
            shutil.rmtree(self.uploads_dir(store.collection), ignore_errors=True)
            return count

    def uploads_dir(self, collection: str) -> Path:
        return self.settings.data_dir / "uploads" / collection

    def ingest_uploads(
        self,
        files: Sequence[tuple[str, bytes | BinaryIO]],
        collection: str | None = None,
        progress: IngestProgress | None = None,
        plan: IngestPlan | None = None,
    ) -> IngestReport:
        """Check and ingest uploaded files (their bytes, or open binary files copied piece by piece); refused
        files are reported as failed (with the HTTP status that fits) and the others still ingest. Two files
        of one upload never share a name. A file is kept under the data directory only once it is stored: a
        failed re-upload leaves the stored file and its chunks as they were."""
        from rag_app.ingestion.uploads import UploadRejected, UploadStager, note_upload_names, rejected_report

        s = self.settings
        name = collection or s.collection
        directory = self.uploads_dir(name)
        staging = s.data_dir / "uploads" / ".incoming" / uuid.uuid4().hex
        stager = UploadStager(staging, s.max_upload_mb * 1024 * 1024, s.max_upload_total_mb * 1024 * 1024)
        candidates: dict[str, Candidate] = {}
        rejected = []
        try:
            for filename, data in files:
                try:
                    staged = stager.stage(filename, data)
                except UploadRejected as exc:
                    rejected.append(rejected_report(filename, exc))
                    continue
                candidates[staged.name] = Candidate(staged.name, staged.path, stored_path=directory / staged.name)
            report = IngestReport(name)
            if candidates:
                with self._ingestor(name, progress, plan, len(candidates)) as ingestor:
                    report = ingestor.run(list(candidates.values()))
                    _place_uploads(candidates, report)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        note_upload_names(report, stager.staged)
        report.files[:0] = rejected
        return report

    def _remove_upload(self, store: DocumentStore, path: Path) -> None:
        """Delete an uploaded file no stored name uses any more (files ingested from elsewhere stay)."""
        uploads = self.uploads_dir(store.collection).resolve()
        if path.parent != uploads or any(Path(d.path) == path for d in store.list_documents()):
            return
        path.unlink(missing_ok=True)

    def document_file(self, name: str, collection: str | None = None) -> Path:
        """The file a stored document came from, to show it at a cited page; only registered files."""
        store = self.store(collection)
        doc = store.get_document(name)
        if doc is None:
            raise DocumentNotFoundError(f"no document named {name!r} in collection {store.collection!r}")
        path = Path(doc.path)
        if not path.is_file():
            raise DocumentNotFoundError(f"the file of {name!r} is no longer at {path}")
        return path

    def health(self, collection: str | None = None) -> Health:
        """What the status line and GET /api/health show."""
        s = self.settings
        name = collection or s.collection
        collections = self.collections()
        loaded = self._loaded_model
        backend = loaded.backend if loaded else None
        return Health(
            model_state=self.model_state,
            model=backend.info.to_dict() if backend is not None else None,
            no_model_reason=(loaded.reason if loaded else "") or self.model_error,
            embedding=EmbeddingStatus(
                s.embedding_model,
                self.embeddings.device,
                self.embeddings.precision,
                self.chinese_reader.description if self.chinese_reader else "",
            ),  # fmt: skip
            collection=name,
            collections=collections,
            documents=len(self.list_documents(name)) if name in collections else 0,
            store=f"chroma server {s.chroma_host}:{s.chroma_port}" if s.chroma_host else str(s.chroma_dir),
            problems=self._store_problems(name) if name in collections else [],
        )

    def lost_texts(self, collection: str | None = None) -> LostTexts:
        """The documents of a collection whose chunk texts are lost (see :meth:`restore_texts`)."""
        store = self.store(collection)  # the documents say which models' chunk tables to look in: none is loaded
        store.refresh()
        return store.lost_texts()

    def _store_problems(self, collection: str) -> list[str]:
        """What health reports as wrong with a collection's store, each with what to do."""
        try:
            lost = self.lost_texts(collection)
        except RagError as exc:
            return [f"the store cannot be read: {exc}"]
        return [lost.message()] if lost else []

    def restore_texts(
        self, collection: str | None = None, progress: IngestProgress | None = None, plan: IngestPlan | None = None
    ) -> IngestReport:
        """Ingest again, under their own names, the documents whose chunk texts were lost: from the file each
        was stored from (its stored upload, or the path a CLI ingest read it from). A file that is gone, or
        holds other bytes now, is reported failed with what to do; the others are stored as they were."""
        name = collection or self.settings.collection
        lost = self.lost_texts(name)
        by_name = {d.name: d for d in self.list_documents(name)}
        candidates, unfound = [], []
        for document in (by_name[n] for n in lost.documents if n in by_name):
            reason = _unrestorable(document)
            if reason:
                unfound.append(FileReport(document.name, "", FileStatus.FAILED, reason=reason, sha256=document.sha256))
            else:
                candidates.append(Candidate(document.name, Path(document.path)))
        report = IngestReport(name)
        if candidates:
            with self._ingestor(name, progress, plan, len(candidates)) as ingestor:
                report = ingestor.run(candidates)
        report.files[:0] = unfound
        return report

    def search(self, request: SearchRequest, collection: str | None = None) -> SearchResult:
        """The top-k chunks for a query, optionally only from the named documents."""
        store = self.store(collection, with_model=True)
        return self.retriever(store).search(request.query, request.k, request.files)

    def ask(self, request: AskRequest, collection: str | None = None) -> Iterator[Event]:
        """Stream an answer: status, sources and token events, then a DoneEvent with the checked answer.
        A request for a summary of a whole document goes to :meth:`summarize` (a status event says so)."""
        from rag_app.answering.answerer import Answerer  # the answering stack loads when a question comes

        self.require_documents(collection)
        routed = self._summary_route(request, collection)
        if routed is not None:
            return routed
        store = self.store(collection, with_model=True)
        retriever = self.retriever(store)
        wants_model = (request.strategy or self.settings.strategy) != "extractive"
        backend = self.model if wants_model else None
        reason = self.no_model_reason if wants_model else "extractive was requested"
        neighbours = self.settings.context_neighbours
        answerer = Answerer(
            retriever.search, backend, self.embeddings.embed_array, self.settings, reason,
            context=lambda hit: page_window(store, hit, neighbours), reads_chinese=self.embeddings.reads_chinese,
            reader=self.chinese_reader,
        )  # fmt: skip
        return answerer.ask(request)

    def answer(self, request: AskRequest, collection: str | None = None) -> Answer:
        """The finished answer of :meth:`ask`."""
        from rag_app.answering.answerer import collect

        return collect(self.ask(request, collection))

    def summarize(self, request: SummaryRequest, collection: str | None = None) -> Iterator[Event | SummaryDoneEvent]:
        """Stream a summary of whole documents from every page: status and token events, then a
        SummaryDoneEvent. Bad requests (no or unknown files, bad options) raise here, before streaming."""
        from rag_app.summaries.summarizer import Summarizer, label_pages, stitched_pages

        store = self.store(collection)
        store.refresh()
        known = {d.name: d for d in store.list_documents()}
        unknown = [f for f in dict.fromkeys(request.files) if f not in known]
        if unknown:
            raise DocumentNotFoundError(
                f"no document named {', '.join(map(repr, unknown))} in collection {store.collection!r}"
            )
        documents = [known[f] for f in dict.fromkeys(request.files)]
        pages = stitched_pages([(d.name, store.document_chunks(d)) for d in documents])
        labelled = label_pages(pages, {d.name: d.pages for d in documents})
        if not labelled:
            raise InvalidRequestError(f"{', '.join(request.files)} has no text to summarize (scanned pages?)")
        return Summarizer(self.model, self.settings, self.no_model_reason).run(request, labelled)

    def summary(self, request: SummaryRequest, collection: str | None = None) -> Summary:
        """The finished summary of :meth:`summarize`."""
        from rag_app.summaries.summarizer import SummaryDoneEvent

        done = [e for e in self.summarize(request, collection) if isinstance(e, SummaryDoneEvent)]
        return done[-1].summary

    def _summary_route(self, request: AskRequest, collection: str | None) -> Iterator[Event] | None:
        """The summary's events for a question that asks for one ("summarize this report"), when the
        documents it means are known: the chosen ones, the ones it names, or the only one stored."""
        from rag_app.answering.events import StatusEvent
        from rag_app.summaries.summarizer import is_summary_request, summary_answer_events

        if (request.strategy or self.settings.strategy) != "auto" or not is_summary_request(request.question):
            return None
        documents = [d.name for d in self.store(collection).list_documents()]
        lowered = request.question.lower()
        named = [d for d in documents if len(Path(d).stem) >= 4 and Path(d).stem.lower() in lowered]
        files = request.files or named or (documents if len(documents) == 1 else [])
        if not files:
            return None
        language = detect_language(request.question)
        summary = SummaryRequest(
            files=files, language=language, max_new_tokens=request.max_new_tokens, temperature=request.temperature
        )
        events = self.summarize(summary, collection)
        note = StatusEvent(
            f"a summary was asked for: summarizing every page of {', '.join(files)}",
            zh=f"这是一个总结请求：总结 {', '.join(files)} 的每一页",
        )
        return summary_answer_events(request.question, itertools.chain([note], events))

    # ----- writer lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer at a time: writes of this process queue behind each other; another process writing
        to the same embedded database makes this one refuse, saying who (a Chroma server serialises itself)."""
        with _writer_lock(self.settings.data_dir):
            if self.settings.chroma_host:
                yield
                return
            with _process_lock(self.settings.data_dir / "write.lock"):
                yield


def _writer_lock(data_dir: Path) -> threading.Lock:
    key = data_dir.resolve()
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(key, threading.Lock())


@contextlib.contextmanager
def _process_lock(lock_path: Path) -> Iterator[None]:
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise StoreBusyError(
                f"{owner} is writing to {lock_path.parent}: wait for it to finish and try again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"rag_app process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unrestorable(document: DocumentInfo) -> str | None:
    """Why a document's texts cannot be restored from the file it was stored from (None: they can)."""
    path = Path(document.path) if document.path else None
    if path is None or not path.is_file():
        return (
            f"cannot find its file (it was read from {document.path or 'an unknown place'}): ingest it again "
            "from where it is now (python -m ingest PATH, or upload it)"
        )
    if file_sha256(path) != document.sha256:
        return f"its file at {path} holds other bytes than were stored: ingest it again to store what it holds now"
    return None


def _place_uploads(candidates: dict[str, Candidate], report: IngestReport) -> None:
    """Move each stored upload from staging into place; a failed one is left to be discarded."""
    for file_report in report.files:
        candidate = candidates.get(file_report.name)
        if candidate is None or file_report.status is FileStatus.FAILED:
            continue
        candidate.stored_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(candidate.path, candidate.stored_path)
