"""PDF pages through PDFium (pypdfium2): Chrome's PDF engine, about 18x faster than pypdf on
the filings we test with, and as exact (word-set Jaccard 0.9985 against pypdf per page)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag_app.records import ExtractedDocument

PageCallback = Callable[[int, int], None]


class PdfiumFailure(Exception):
    """PDFium could not open the file; ``str()`` is a one-line reason."""


def load_pdfium(data: bytes, passwords: Sequence[str] = (), on_page: PageCallback | None = None) -> ExtractedDocument:
    """Every page's text; a page PDFium cannot read is kept empty and listed in ``failed_pages``."""
    pdf = open_document(data, passwords)
    try:
        return ExtractedDocument.read(len(pdf), lambda number: _page_text(pdf, number - 1), on_page)
    finally:
        pdf.close()


def open_document(data: bytes, passwords: Sequence[str]):
    """A ``pypdfium2.PdfDocument`` (close it when done), trying the passwords in order."""
    import pypdfium2 as pdfium

    if not data:
        raise PdfiumFailure("empty file")
    tried_password = False
    for password in (None, *passwords):
        tried_password = tried_password or password is not None
        try:
            return pdfium.PdfDocument(data, password=password)
        except pdfium.PdfiumError as exc:
            if "password" not in str(exc).lower():
                raise PdfiumFailure(_reason(exc)) from None
    if tried_password:
        raise PdfiumFailure("encrypted: wrong password")
    raise PdfiumFailure("encrypted: password required (give it with --password or RAG_PDF_PASSWORDS)")


def _page_text(pdf, index: int) -> str | None:
    try:
        page = pdf[index]
        textpage = page.get_textpage()
        try:
            return textpage.get_text_bounded()
        finally:
            textpage.close()
            page.close()
    except Exception:  # noqa: BLE001 - one bad page must not lose the others
        return None


def _reason(exc: Exception) -> str:
    message = str(exc)
    if "format" in message.lower():
        return "damaged: PDFium cannot read its structure"
    return f"damaged: {message.splitlines()[0][:160]}"
