"""Read PDF, text and Markdown files into cleaned pages.

PDFs go through pypdf: strict first, lenient on failure, the empty password
and then the given ones for encrypted files, raised limits for the large
arrays real filings contain. Every failure becomes a one-line reason a person
can act on; nothing here raises for a bad file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rag_app.ingestion.ocr import NO_OCR, OcrCallback, OcrOptions, read_pages_by_ocr
from rag_app.records import ExtractedDocument, PageText
from rag_app.text.clean import clean_page_text

PDF_SUFFIXES = {".pdf"}
TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
SUPPORTED_SUFFIXES = PDF_SUFFIXES | TEXT_SUFFIXES
# PDF readers accept the header anywhere in the first KiB (Acrobat's rule).
PDF_HEADER_WINDOW = 1024
# Two MSFT 10-Qs hold arrays above pypdf's default 100,000 elements; the parser
# process has a memory limit and a timeout, so a generous limit is safe here.
PYPDF_LIMITS = {
    "array_maximum_element_count": 5_000_000,
    "dictionary_maximum_element_count": 1_000_000,
    "page_tree_maximum_depth": 1_000,  # qpdf's deep-pages.pdf nests 101 levels
}
TEXT_ENCODINGS = ("utf-8-sig", "gb18030", "cp1252")

PageCallback = Callable[[int, int], None]


class LoadFailure(Exception):
    """A file could not be read; ``str()`` is the one-line reason for the report."""


def file_kind(path: Path, head: bytes) -> str | None:
    """Return "pdf", "text" or None (unsupported) from the suffix, sniffing unknown ones."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return "pdf" if b"%PDF-" in head[:PDF_HEADER_WINDOW] else None


def load_document(
    path: Path,
    passwords: Sequence[str] = (),
    on_page: PageCallback | None = None,
    parser: str = "auto",
    ocr: OcrOptions = NO_OCR,
    on_ocr: OcrCallback | None = None,
) -> ExtractedDocument:
    """Load ``path`` into pages; failures are returned in ``error``, never raised.

    ``parser``: "pdfium" (fast), "pypdf" (strict then lenient) or "auto" (pdfium, then pypdf
    for a file PDFium cannot open). ``ocr``: whether pages without a text layer are read by OCR
    (rag_app.ingestion.ocr), with ``on_ocr`` called before and after each such page.
    """
    started = time.perf_counter()
    try:
        data = path.read_bytes()
        kind = file_kind(path, data)
        if kind == "pdf":
            doc = load_pdf(data, passwords, on_page, parser)
            read_pages_by_ocr(doc, data, passwords, ocr, on_ocr)
        elif kind == "text":
            doc = load_text_bytes(data)
        else:
            raise LoadFailure(f"unsupported file type {path.suffix or '(none)'!r}: rag_app reads PDF, .txt and .md")
    except LoadFailure as exc:
        doc = ExtractedDocument(error=str(exc))
    except OSError as exc:
        doc = ExtractedDocument(error=f"cannot read file: {exc.strerror or exc}")
    doc.seconds = time.perf_counter() - started
    return doc


def load_pdf(data: bytes, passwords: Sequence[str], on_page: PageCallback | None, parser: str) -> ExtractedDocument:
    from rag_app.ingestion.pdfium import PdfiumFailure, load_pdfium

    if parser == "pypdf":
        return load_pdf_bytes(data, passwords, on_page)
    try:
        return load_pdfium(data, passwords, on_page)
    except PdfiumFailure as exc:
        if parser == "pdfium":
            raise LoadFailure(str(exc)) from None
        pdfium_reason = str(exc)
    try:
        return load_pdf_bytes(data, passwords, on_page)
    except LoadFailure as exc:
        # both parsers failed: a password problem is the more useful reason to give
        reason = pdfium_reason if pdfium_reason.startswith("encrypted") else str(exc)
        raise LoadFailure(reason) from None


def load_text_bytes(data: bytes) -> ExtractedDocument:
    """A text file is one page, or one page per form feed (as `pr` and printers do)."""
    text = _decode_text(data)
    pages = [PageText(i, clean_page_text(part)) for i, part in enumerate(text.split("\f"), 1)]
    return ExtractedDocument(pages=pages, total_pages=len(pages))


def _decode_text(data: bytes) -> str:
    if not data.strip():
        raise LoadFailure("empty file")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadFailure("not a text file: it contains binary data")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def load_pdf_bytes(
    data: bytes, passwords: Sequence[str] = (), on_page: PageCallback | None = None
) -> ExtractedDocument:
    """Extract every page of a PDF with pypdf; a page that fails is kept empty and noted."""
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with pypdf.apply_configuration(**PYPDF_LIMITS):
        pages = _PdfPages(data, passwords)
        return ExtractedDocument.read(pages.count(), pages.text, on_page)


class _PdfPages:
    """Page texts of one PDF; a page that strict pypdf cannot read is retried leniently."""

    def __init__(self, data: bytes, passwords: Sequence[str]) -> None:
        self._data, self._passwords = data, passwords
        self._reader = open_pdf(data, passwords)
        self._lenient = None if not self._reader.strict else False  # False: not opened yet

    def count(self) -> int:
        try:
            return len(self._reader.pages)
        except Exception as exc:  # noqa: BLE001
            raise LoadFailure(describe_pdf_error(exc)) from None

    def text(self, number: int) -> str | None:
        """Text of a 1-based page, or None when neither mode can extract it."""
        for reader in (self._reader, self._lenient_reader()):
            if reader is None:
                continue
            try:
                return reader.pages[number - 1].extract_text() or ""
            except Exception:  # noqa: BLE001 - one bad page must not lose the others
                continue
        return None

    def _lenient_reader(self):
        if self._lenient is False:
            try:
                self._lenient = _read(self._data, strict=False)
                if self._lenient.is_encrypted:
                    _decrypt(self._lenient, self._passwords)
            except Exception:  # noqa: BLE001 - LoadFailure included: the strict reader opened it
                self._lenient = None
        return self._lenient


def open_pdf(data: bytes, passwords: Sequence[str] = ()):
    """Open and decrypt a PDF: strict mode first, then pypdf's lenient recovery."""
    if not data:
        raise LoadFailure("empty file")
    try:
        reader = _read(data, strict=True)
    except LoadFailure:
        raise
    except Exception:  # noqa: BLE001 - pypdf raises many types for damaged files
        reader = _read_lenient(data)
    if reader.is_encrypted:
        _decrypt(reader, passwords)
    return reader


def _read(data: bytes, strict: bool):
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=strict)
    if not reader.is_encrypted:
        len(reader.pages)  # walks the page tree: damage often shows only here
    return reader


def _read_lenient(data: bytes):
    try:
        return _read(data, strict=False)
    except Exception as exc:  # noqa: BLE001
        if b"%PDF" not in data and b" obj" not in data:
            raise LoadFailure("not a PDF: no %PDF- header and no PDF objects") from None
        raise LoadFailure(describe_pdf_error(exc)) from None


def _decrypt(reader, passwords: Sequence[str]) -> None:
    from pypdf.errors import DependencyError

    tried_given = False
    for password in ("", *passwords):
        tried_given = tried_given or password != ""
        try:
            if reader.decrypt(password):
                return
        except DependencyError:
            raise LoadFailure("encrypted with AES: install cryptography (pip install 'pypdf[crypto]')") from None
        except NotImplementedError as exc:
            raise LoadFailure(f"encrypted: unsupported encryption ({exc})") from None
        except Exception as exc:  # noqa: BLE001
            raise LoadFailure(f"encrypted: cannot decrypt ({_first_line(exc)})") from None
    if tried_given:
        raise LoadFailure("encrypted: wrong password")
    raise LoadFailure("encrypted: password required (give it with --password or RAG_PDF_PASSWORDS)")


# Substrings of pypdf messages and the reason we report for them.
_KNOWN_DAMAGE = (
    ("cyclic page", "damaged: page tree is cyclic or nested too deep"),
    ("key size", "encrypted: broken or unsupported encryption key"),
    ("/kids", "damaged: broken page tree"),
    ("/pages", "damaged: broken page tree"),
    ("root object", "damaged: no document catalog (Root object)"),
    ("xref", "damaged: no usable cross-reference table"),
    ("trailer", "damaged: no usable cross-reference table"),
    ("eof marker", "damaged: truncated (no end-of-file marker)"),
    ("stream has ended", "damaged: truncated or corrupt data stream"),
    ("null object", "damaged: broken object reference"),
    ("invalid offset", "damaged: broken object reference"),
)


def describe_pdf_error(exc: BaseException) -> str:
    """Turn a pypdf exception into a short reason such as "damaged: no usable cross-reference table"."""
    from pypdf.errors import EmptyFileError, FileNotDecryptedError, LimitReachedError, PyPdfError

    message = _first_line(exc)
    if isinstance(exc, EmptyFileError):
        return "empty file"
    if isinstance(exc, FileNotDecryptedError):
        return "encrypted: password required"
    if isinstance(exc, LimitReachedError):
        return f"damaged or too complex for the parser's safety limits: {message}"
    if isinstance(exc, RecursionError):
        return "damaged: objects nested too deep (cyclic references?)"
    lowered = message.lower()
    for needle, reason in _KNOWN_DAMAGE:
        if needle in lowered:
            return reason
    if isinstance(exc, PyPdfError) and message:
        return f"damaged: {message}"
    # TypeError, AttributeError, AssertionError... from deep inside the parser
    return f"damaged: malformed structure the parser cannot read ({type(exc).__name__})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else ""
