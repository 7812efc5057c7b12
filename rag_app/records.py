"""Records that cross module boundaries: pages, chunks, reports, search hits."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

    from rag_app.text.terms import PackedTerms

# How pages without a text layer are treated: OCR them (auto), leave them empty (off), or OCR every
# page and prefer what OCR reads (force: for PDFs whose text layer is broken).
OcrMode = Literal["auto", "off", "force"]


@dataclass(frozen=True)
class PageText:
    """Cleaned text of one page; ``number`` is 1-based as printed by PDF viewers."""

    number: int
    text: str


@dataclass
class ExtractedDocument:
    """What a loader got out of one file: its pages, or why it could not."""

    pages: list[PageText] = field(default_factory=list)
    total_pages: int = 0
    failed_pages: list[int] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    ocr_mode: OcrMode = "off"
    ocr_pages: list[int] = field(default_factory=list)  # 1-based pages whose text was read by OCR
    ocr_error: str | None = None  # why OCR could not read some pages (they keep their text layer)
    prepared: PreparedChunks | None = None  # chunks made in the parser process, when it was asked to

    @property
    def empty_pages(self) -> list[int]:
        """1-based numbers of pages without any text (scans, images, failures)."""
        return [p.number for p in self.pages if not p.text.strip()]

    def sample_text(self, characters: int = 20_000) -> str:
        """The first ``characters`` of the document's text (to tell its language)."""
        return "\n".join(p.text for p in self.pages)[:characters]

    @classmethod
    def read(cls, total: int, page_text, on_page=None) -> ExtractedDocument:
        """Pages 1..total from ``page_text(number)`` (None: the page failed; it is kept empty and listed),
        cleaned; ``on_page(done, total)`` after opening (done = 0) and after every page."""
        from rag_app.text.clean import clean_page_text

        doc = cls(total_pages=total)
        if on_page:
            on_page(0, total)  # opened: the per-page timeout now applies to page 1
        for number in range(1, total + 1):
            raw = page_text(number)
            if raw is None:
                doc.failed_pages.append(number)
            doc.pages.append(PageText(number, clean_page_text(raw or "")))
            if on_page:
                on_page(number, total)
        return doc


@dataclass(frozen=True)
class ChunkKey:
    """Where a chunk lies: its file content, page and character offset. Its id is ``sha256:page:offset``,
    stable across runs; :func:`chunk_id` and :func:`parse_chunk_id` are the only code that knows that form."""

    sha256: str
    page: int
    offset: int

    @property
    def page_key(self) -> tuple[str, int]:
        """Identifies the page (of one file content) the chunk lies on."""
        return self.sha256, self.page


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes: what identifies a document's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(sha256: str, page: int, offset: int) -> str:
    """Stable id of a chunk: the same file, page and offset always give the same id."""
    return f"{sha256}:{page}:{offset}"


def parse_chunk_id(value: str) -> ChunkKey:
    """The inverse of :func:`chunk_id`."""
    sha256, page, offset = value.rsplit(":", 2)
    return ChunkKey(sha256, int(page), int(offset))


def chunk_page(value: str) -> int:
    """The page of a chunk id (:func:`chunk_id`), without building its key: read for every chunk of a filing."""
    return int(value.rsplit(":", 2)[1])


@dataclass(frozen=True)
class Chunk:
    """A piece of one page, small enough for the embedding model to read whole."""

    id: str
    text: str
    page: int
    offset: int  # character offset of the chunk within the cleaned page text
    index: int  # position of the chunk within its document


@dataclass
class PreparedChunks:
    """A document's chunks as the parser process made them, ready to embed and index.

    ``token_ids`` holds every chunk's model input ids (special tokens included) end to end, chunk
    ``i`` being ``token_ids[starts[i]:starts[i + 1]]``; ``terms`` are the chunks' BM25 term counts
    (:class:`rag_app.text.terms.PackedTerms`).
    """

    chunks: list[Chunk]
    token_ids: np.ndarray  # int32
    starts: np.ndarray  # int64, len(chunks) + 1
    terms: PackedTerms


class FileStatus(StrEnum):
    INGESTED = "ingested"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"
    FAILED = "failed"


@dataclass
class FileReport:
    """Outcome of ingesting one file, as shown in the CLI table and JSON."""

    name: str
    path: str
    status: FileStatus
    pages: int = 0
    chunks: int = 0
    empty_pages: list[int] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)  # pages whose text was read by OCR
    seconds: float = 0.0
    reason: str | None = None
    note: str | None = None
    sha256: str = ""
    refused_status: int | None = None  # an upload refused before ingestion: the HTTP status that fits (413, 415...)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        if self.refused_status is None:
            del data["refused_status"]
        return data


@dataclass(frozen=True)
class EmbedderInfo:
    """Which embedder embedded: its backend and arithmetic, and, for a faster path than fp32 torch, how its
    vectors agreed with fp32 torch's on this machine when it loaded (cosine mean and worst)."""

    backend: Literal["torch", "onnx"]
    precision: str  # fp32, bf16, fp16 (torch); fp32, int8 (onnx)
    device: str
    agreement: tuple[float, float] | None = None
    note: str = ""  # why a faster path is not used, when it is not

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class IngestReport:
    """Outcome of one ingest run over many files."""

    collection: str
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # paths of unsupported files in folders
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: parse, chunk, embed, store
    plan: dict = field(default_factory=dict)  # how the run was laid out (rag_app.ingestion.plan.IngestPlan)
    embedder: dict = field(default_factory=dict)  # EmbedderInfo.to_dict() of the embedder that ran

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status is FileStatus.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status is status)

    def to_dict(self) -> dict:
        return {
            "collection": self.collection,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "totals": {s.value: self.count(s) for s in FileStatus},
            "timings": self.timings,
            "plan": self.plan,
            "embedder": self.embedder,
            "files": [f.to_dict() for f in self.files],
            "skipped": self.skipped,
        }


@dataclass
class DocumentInfo:
    """A stored document as listed by ``ingest --list``."""

    name: str
    sha256: str
    pages: int
    chunks: int
    empty_pages: int
    ingested_at: str
    chunking: str
    embedding: str
    path: str = ""
    size_bytes: int = 0
    reader: str = ""  # the second, Chinese embedding model that read it (RAG_EMBEDDING_MODEL_ZH); "": the main one

    def to_dict(self) -> dict:
        return asdict(self)


RESTORE_TEXTS_COMMAND = "python -m ingest --restore-texts --collection {collection}"


@dataclass(frozen=True)
class LostTexts:
    """Registered documents whose chunk texts are gone from the chunk table (the only copy of them beside an
    embedded Chroma): the file was deleted, emptied, or damaged and moved aside (``set_aside``: the names
    it was moved aside as). Their vectors and names remain; searches cannot show them until restored."""

    collection: str
    documents: tuple[str, ...] = ()
    set_aside: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.documents)

    @property
    def command(self) -> str:
        """The one command that restores them (from their stored uploads or the paths they were read from)."""
        return RESTORE_TEXTS_COMMAND.format(collection=self.collection)

    def message(self) -> str:
        names = ", ".join(self.documents[:8]) + (
            f" and {len(self.documents) - 8} more" if len(self.documents) > 8 else ""
        )
        how = f" (the damaged chunk table was moved aside as {self.set_aside[-1]})" if self.set_aside else ""
        return (
            f"the texts of {len(self.documents)} document(s) of collection {self.collection!r} are lost{how}: "
            f"{names}; run `{self.command}` to restore them from their files"
        )


@dataclass
class SearchHit:
    """One retrieved chunk with where it came from and how well it matched."""

    file: str
    page: int
    offset: int
    text: str
    score: float
    sha256: str
    chunk_id: str
    total_pages: int = 0
    chunk_index: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
