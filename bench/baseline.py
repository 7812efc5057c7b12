"""The pipeline every figure is compared with: the LangChain tutorial.

PyPDFLoader -> RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200) ->
Chroma.from_documents with the same all-MiniLM-L6-v2 embedder -> similarity_search(k).
Stages are timed separately (the store step receives the vectors already computed,
exactly what from_documents would store).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class _Precomputed:
    """An Embeddings object handing Chroma vectors computed (and timed) beforehand."""

    def __init__(self, vectors: list[list[float]], query_model) -> None:
        self.vectors, self.query_model = vectors, query_model

    def embed_documents(self, texts):
        out, self.vectors = self.vectors[: len(texts)], self.vectors[len(texts) :]
        return out

    def embed_query(self, text):
        return self.query_model.embed_query(text)


@dataclass
class BaselineRun:
    pages: int = 0
    chunks: int = 0
    failed: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: {"parse": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0})
    page_texts: dict[tuple[str, int], str] = field(default_factory=dict)  # (file name, 1-based page) -> text


class TutorialPipeline:
    def __init__(self, persist: Path, model_path: str, collection: str = "baseline") -> None:
        from langchain_huggingface import HuggingFaceEmbeddings

        self.persist = persist
        self.collection = collection
        self.embeddings = HuggingFaceEmbeddings(model_name=model_path)
        self.store = None

    def ingest(self, pdfs: list[Path]) -> BaselineRun:
        from langchain_chroma import Chroma
        from langchain_community.document_loaders import PyPDFLoader
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        run = BaselineRun()
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        documents = []
        for pdf in pdfs:
            started = time.perf_counter()
            try:
                pages = PyPDFLoader(str(pdf)).load()
            except Exception as exc:  # noqa: BLE001 - the tutorial has no error handling: count what it loses
                run.failed.append(f"{pdf.name}: {type(exc).__name__}: {str(exc)[:80]}")
                continue
            run.timings["parse"] += time.perf_counter() - started
            run.pages += len(pages)
            run.page_texts.update({(pdf.name, int(p.metadata.get("page", 0)) + 1): p.page_content for p in pages})
            started = time.perf_counter()
            documents += splitter.split_documents(pages)
            run.timings["chunk"] += time.perf_counter() - started
        run.chunks = len(documents)
        started = time.perf_counter()
        vectors = self.embeddings.embed_documents([d.page_content for d in documents])
        run.timings["embed"] = time.perf_counter() - started
        started = time.perf_counter()
        self.store = Chroma.from_documents(
            documents, _Precomputed(vectors, self.embeddings), persist_directory=str(self.persist),
            collection_name=self.collection,
        )  # fmt: skip
        run.timings["store"] = time.perf_counter() - started
        return run

    def open(self) -> bool:
        """Reuse a store built by an earlier run (retrieval evaluation only)."""
        from langchain_chroma import Chroma

        if not self.persist.exists():
            return False
        self.store = Chroma(
            persist_directory=str(self.persist), collection_name=self.collection, embedding_function=self.embeddings
        )
        return self.store._collection.count() > 0

    def merge(self, parts: list[TutorialPipeline], batch: int = 4096) -> int:
        """Build this store from the chunks, vectors and metadata of stores built from other folders: what ingesting
        their PDFs together gives (the tutorial chunks and embeds each chunk on its own), without embedding them
        again. Returns the chunks copied."""
        from langchain_chroma import Chroma

        self.store = Chroma(
            persist_directory=str(self.persist), collection_name=self.collection, embedding_function=self.embeddings
        )
        copied = 0
        for part in parts:
            source, total = part.store._collection, part.store._collection.count()
            for offset in range(0, total, batch):
                got = source.get(include=["embeddings", "documents", "metadatas"], limit=batch, offset=offset)
                self.store._collection.add(
                    ids=[f"{part.persist.name}-{i}" for i in got["ids"]], embeddings=got["embeddings"],
                    documents=got["documents"], metadatas=got["metadatas"],
                )  # fmt: skip
                copied += len(got["ids"])
        return copied

    def search(self, question: str, k: int) -> list[tuple[str, int]]:
        """(file name, 1-based page) of the top k chunks."""
        docs = self.store.similarity_search(question, k=k)
        return [(Path(d.metadata["source"]).name, int(d.metadata.get("page", 0)) + 1) for d in docs]


# The LangChain tutorial's question-answering prompt (RetrievalQA, chain_type="stuff"), as it shipped.
TUTORIAL_PROMPT = (
    "Use the following pieces of context to answer the question at the end. If you don't know the answer, "
    "just say that you don't know, don't try to make up an answer.\n\n{context}\n\nQuestion: {question}\nHelpful Answer:"
)
_CHAT_MODELS: dict[str, object] = {}


def tutorial_answer(question: str, collection: str, model: str, k: int = 4) -> dict:
    """The tutorial's RetrievalQA "stuff" answer: its retriever's k chunks pasted into its prompt, answered by
    ``model`` (loaded as rag_app loads it, so both pipelines use the same weights)."""
    from langchain_core.messages import HumanMessage

    from bench.retrieval import QA, baseline_for
    from rag_app.llm import load_chat_backend
    from rag_app.settings import Settings

    folders = {"financebench": QA / "financebench_dev" / "pdfs", "zh_reports": QA / "zh_reports_dev" / "pdfs",
               "docugami": QA / "docugami_sec10q" / "data" / "v1" / "docs",
               "erc": QA / "enterprise_rag_challenge_r1" / "round1" / "pdfs"}  # fmt: skip
    pipeline = baseline_for(collection, sorted(folders[collection].glob("*.pdf")))
    docs = pipeline.store.similarity_search(question, k=k)
    if model not in _CHAT_MODELS:
        _CHAT_MODELS[model] = load_chat_backend(Settings(_env_file=None, llm_backend="local", llm_model=model)).backend
    backend = _CHAT_MODELS[model]
    context = "\n\n".join(d.page_content for d in docs)
    reply = backend.chat.invoke(
        [HumanMessage(TUTORIAL_PROMPT.format(context=context, question=question))], max_tokens=256
    )
    sources = [(Path(d.metadata["source"]).name, int(d.metadata.get("page", 0)) + 1) for d in docs]
    return {"answer": str(reply.content).strip(), "sources": sources, "cited": [], "strategy": "tutorial stuff"}


def main() -> None:
    """``python -m bench.baseline PERSIST PDF...``: the tutorial as a whole process, as its user waits for it
    (imports and model load included); prints pages, chunks and stage seconds as JSON."""
    import json
    import sys

    from rag_app.embedding.embedder import resolve_embedding_model

    persist, pdfs = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    run = TutorialPipeline(persist, resolve_embedding_model("sentence-transformers/all-MiniLM-L6-v2")).ingest(pdfs)
    print(json.dumps({"pages": run.pages, "chunks": run.chunks, "failed": run.failed, "timings": run.timings}))


if __name__ == "__main__":
    main()
