"""RagService: the one object the CLI, the HTTP API and the web UI call.

It owns the shared, expensive things (the Chroma client, the embedding model)
and loads each only when an operation needs it: listing documents never loads
the embedding model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

from rag_app.answering import Answerer, AskRequest, collect
from rag_app.chains.events import Answer, Event
from rag_app.chunking import TokenChunker
from rag_app.errors import DocumentNotFoundError, StoreBusyError
from rag_app.extraction import ExtractionPool
from rag_app.ingestion import Ingestor, IngestProgress, recover_interrupted_writes
from rag_app.records import DocumentInfo, IngestReport
from rag_app.retrieval import Retriever, SearchResult, page_context
from rag_app.settings import Settings
from rag_app.store import DocumentStore, make_client

log = logging.getLogger(__name__)


class RagService:
    """Ingest, list, delete and search documents of the configured collections."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._model_lock = threading.Lock()
        self._loaded_model: tuple | None = None
        self.model_state = "not loaded"  # loading, ready, extractive, failed
        self.model_error = ""

    # ----- shared resources -------------------------------------------------------------

    @cached_property
    def client(self):
        return make_client(self.settings)

    @cached_property
    def embeddings(self):
        from rag_app.embeddings import LocalEmbeddings

        s = self.settings
        return LocalEmbeddings(s.embedding_model, s.embedding_device, s.embedding_batch_size, s.embedding_precision)

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
        name = collection or self.settings.collection
        fingerprint = self.embeddings.fingerprint if with_model else ""
        if create:
            return DocumentStore(self.client, name, fingerprint, self.lexical_dir)
        return DocumentStore.open_existing(self.client, name, fingerprint, self.lexical_dir)

    @property
    def lexical_dir(self) -> Path:
        """Where BM25 indexes live: beside the embedded database, or per Chroma server."""
        s = self.settings
        where = f"{s.chroma_host}_{s.chroma_port}" if s.chroma_host else "local"
        return s.data_dir / "lexical" / where

    def retriever(self, store: DocumentStore) -> Retriever:
        s = self.settings
        return Retriever(
            store, self.embeddings, s.retrieval, s.retrieval_candidates, document_weight=s.retrieval_document_weight,
            reranker=self.reranker,
        )  # fmt: skip

    @cached_property
    def reranker(self):
        """The cross-encoder of RAG_RERANKER_MODEL, loaded once; None when unset."""
        if not self.settings.reranker_model:
            return None
        from rag_app.rerank import CrossEncoderReranker

        return CrossEncoderReranker(self.settings.reranker_model, self.embeddings.device)

    def collections(self) -> list[str]:
        return DocumentStore.list_collections(self.client)

    @property
    def _model(self) -> tuple:
        """(ChatBackend or None, why there is none); loaded once, by whichever caller comes first."""
        with self._model_lock:
            if self._loaded_model is None:
                from rag_app.llm import load_chat_backend

                self.model_state = "loading"
                try:
                    self._loaded_model = load_chat_backend(self.settings)
                except Exception as exc:
                    self.model_state, self.model_error = "failed", str(exc)
                    raise
                self.model_state = "ready" if self._loaded_model[0] is not None else "extractive"
            return self._loaded_model

    @property
    def model(self):
        """The answer model (a ChatBackend), or None in extractive mode; loaded on first use."""
        return self._model[0]

    @property
    def no_model_reason(self) -> str:
        return self._model[1]

    def preload_model(self) -> threading.Thread:
        """Load the answer model in the background (the web app starts serving at once)."""

        def load() -> None:
            try:
                self._model  # noqa: B018 - loading is the point
            except Exception:  # noqa: BLE001 - kept in model_state / model_error for /api/health
                log.exception("the answer model failed to load")

        thread = threading.Thread(target=load, name="rag_app-model-loader", daemon=True)
        thread.start()
        return thread

    def model_ready(self) -> bool:
        return self.model_state in ("ready", "extractive")

    # ----- operations ---------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[Path],
        passwords: Sequence[str] = (),
        progress: IngestProgress | None = None,
        collection: str | None = None,
    ) -> IngestReport:
        """Ingest files and folders; bad files are reported, never raised."""
        s = self.settings
        workers = s.parse_workers or max(1, (os.cpu_count() or 2) - 1)
        with self.write_lock():
            store = self.store(collection, with_model=True, create=True)
            with ExtractionPool(workers, s.parse_timeout_s, s.parse_memory_mb) as pool:
                ingestor = Ingestor(store, self.embeddings, self.chunker, pool, s.pdf_passwords, progress, s.pdf_parser)
                return ingestor.run([Path(p) for p in paths], passwords)

    def list_documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self.store(collection).list_documents()

    def delete_document(self, name: str, collection: str | None = None) -> DocumentInfo:
        """Remove a document name; its chunks go when no other name shares the content."""
        with self.write_lock():
            store = self.store(collection)
            recover_interrupted_writes(store)
            doc = store.get_document(name)
            if doc is None:
                raise DocumentNotFoundError(
                    f"no document named {name!r} in collection {store.collection!r} (see --list)"
                )
            store.remove_document(name)
            if not [d for d in store.documents_with_sha(doc.sha256) if d.embedding == doc.embedding]:
                store.delete_chunks(doc.sha256, doc.embedding)
            return doc

    def reset(self, collection: str | None = None) -> int:
        """Delete every document and chunk of a collection; returns how many documents it held."""
        with self.write_lock():
            store = self.store(collection)
            count = len(store.list_documents())
            store = self.store(collection, with_model=True)  # with the model: its BM25 index goes too
            store.drop()
            DocumentStore(self.client, store.collection)  # the collection stays, empty
            return count

    def ingest_uploads(
        self,
        files: Sequence[tuple[str, bytes]],
        collection: str | None = None,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        """Check, store under the data directory and ingest uploaded files; refused files are
        reported as failed (with the HTTP status that fits) and the others still ingest."""
        from rag_app.uploads import UploadRejected, rejected_report, store_upload

        name = collection or self.settings.collection
        directory = self.settings.data_dir / "uploads" / name
        stored, rejected = [], []
        for filename, data in files:
            try:
                stored.append(store_upload(directory, filename, data, self.settings.max_upload_mb * 1024 * 1024))
            except UploadRejected as exc:
                report = rejected_report(filename, exc)
                report.note = f"http {exc.status}"
                rejected.append(report)
        report = (
            self.ingest([s.path for s in stored], progress=progress, collection=name) if stored else IngestReport(name)
        )
        report.files[:0] = rejected
        return report

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

    def health(self, collection: str | None = None) -> dict:
        """What the status line and GET /api/health show."""
        s = self.settings
        name = collection or s.collection
        documents = len(self.list_documents(name)) if name in self.collections() else 0
        model = self._loaded_model[0] if self._loaded_model else None
        return {
            "status": "ok",
            "model_state": self.model_state,
            "mode": "generative"
            if model is not None
            else ("extractive" if self.model_state == "extractive" else "pending"),
            "model": model.info.to_dict() if model is not None else None,
            "no_model_reason": (self._loaded_model[1] if self._loaded_model else "") or self.model_error,
            "embedding": {
                "model": s.embedding_model,
                "device": self.embeddings.device,
                "precision": self.embeddings.precision,
            },
            "collection": name,
            "collections": self.collections(),
            "documents": documents,
            "store": f"chroma server {s.chroma_host}:{s.chroma_port}" if s.chroma_host else str(s.chroma_dir),
        }

    def search(
        self, query: str, k: int = 5, files: Sequence[str] | None = None, collection: str | None = None
    ) -> SearchResult:
        """Top-k chunks for ``query``, optionally only from the named documents."""
        store = self.store(collection, with_model=True)
        return self.retriever(store).search(query, k, files)

    def ask(self, request: AskRequest, collection: str | None = None) -> Iterator[Event]:
        """Stream an answer: status, sources and token events, then a DoneEvent with the checked answer."""
        store = self.store(collection, with_model=True)
        retriever = self.retriever(store)
        wants_model = (request.strategy or self.settings.strategy) != "extractive"
        backend = self.model if wants_model else None
        reason = self.no_model_reason if wants_model else "extractive was requested"
        neighbours = self.settings.context_neighbours
        answerer = Answerer(
            retriever.search, backend, self.embeddings.embed_array, self.settings, reason,
            context=lambda hit: page_context(store, hit, neighbours),
        )  # fmt: skip
        return answerer.ask(request)

    def answer(self, request: AskRequest, collection: str | None = None) -> Answer:
        """The finished answer of :meth:`ask`."""
        return collect(self.ask(request, collection))

    # ----- writer lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer at a time on an embedded database (a Chroma server serialises itself)."""
        if self.settings.chroma_host:
            yield
            return
        import fcntl

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.settings.data_dir / "write.lock"
        with lock_path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                raise StoreBusyError(
                    f"{owner} is writing to {self.settings.data_dir}: wait for it to finish and try again"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"rag_app process {os.getpid()}")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
