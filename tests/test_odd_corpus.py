"""Every one of the 182 loader-breaking PDFs ends as ingested or failed with a one-line reason."""

import csv

import pytest
from conftest import ODD, ROOT

from rag_app.records import FileStatus

pytestmark = [pytest.mark.usefixtures("corpus"), pytest.mark.slow]
READ_BY_OCR = [
    "pdfjs/ccitt_EndOfBlock_false.pdf",  # CCITT fax image: /K-1 /K0 /K1
    "pdfjs/issue3371.pdf",  # "This is quite a simple example."
    "pdfjs/issue7200.pdf",  # Lorem ipsum, as an image
    "pdfjs/issue7229.pdf",  # a scanned Russian/English inspection form (the Cyrillic comes back poorly)
    "pdfjs/jbig2_symbol_offset.pdf",  # "JBIG2 TEXT"
    "pypdf/encrypted_doc_no_id.pdf",  # a scanned patent page (two columns read across)
    "qpdf/encrypted-with-images.pdf",  # a digit in an image
]
PYPDF_ELSEWHERE = ("pdfjs/bug1978317.pdf", "pdfjs/Brotli-Prototype-FileA.pdf")


def manifest() -> list[dict]:
    with (ODD / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def expected_failures() -> dict[str, str]:
    with (ROOT / "tests" / "data" / "odd_expected_failures.csv").open(newline="") as handle:
        return {row["file"]: row["reason"] for row in csv.DictReader(handle)}


def test_whole_odd_corpus_is_accounted_for(settings, tiny_embedder):
    from rag_app.service import RagService

    # with OCR, as users run it; a dense scanned form (pdfjs/issue7229.pdf) takes 30 CPU-seconds for one page:
    # on a busy shared machine that can pass the 60 s default
    settings.ocr, settings.parse_timeout_s, settings.parse_workers = "auto", 180, 2
    settings.embedding_model = str(tiny_embedder)  # the loaders are tested here, not the vectors
    service = RagService(settings)
    rows = manifest()
    settings.pdf_passwords = {r["file"].removeprefix("A_odd_pdfs/"): r["password"] for r in rows if r["password"]}
    report = service.ingest([ODD])
    by_name = {f.name: f for f in report.files}
    pdfs = [r["file"].removeprefix("A_odd_pdfs/") for r in rows]
    assert len(pdfs) == 182 and set(pdfs) <= set(by_name), "a PDF got no status"
    for report_row in report.files:
        assert report_row.status in (FileStatus.INGESTED, FileStatus.FAILED)
        if report_row.status is FileStatus.FAILED:
            assert report_row.reason and "\n" not in report_row.reason and "Traceback" not in report_row.reason
    failed = {f.name: f.reason for f in report.files if f.status is FileStatus.FAILED}
    assert failed == expected_failures()
    stored = {d.name for d in service.list_documents()}
    assert stored == {f.name for f in report.files if f.status is FileStatus.INGESTED}
    for name in READ_BY_OCR:  # no text layer at all: once failed as "scanned? OCR is not enabled"
        assert by_name[name].status is FileStatus.INGESTED and by_name[name].ocr_pages, name
    slow = by_name["pdfjs/bug1978317.pdf"]  # ~10 s in pypdf for one page; PDFium, the default, reads it in 0.2 s
    assert slow.status is FileStatus.INGESTED
    brotli = by_name["pdfjs/Brotli-Prototype-FileA.pdf"]  # PDFium cannot open it: pypdf reads it, whole
    assert brotli.status is FileStatus.INGESTED and brotli.pages == 25 and not brotli.empty_pages
    book = by_name["pdfjs/freeculture.pdf"]
    assert book.pages == 352 and book.chunks > 352


def test_pypdf_alone_survives_the_whole_odd_corpus():
    """pypdf stays supported: through the parser processes, every file ends with pages or one reason."""
    from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool

    # but two, each ~10-20 s of pypdf on an idle core (48 s at load 2.7: near the 60 s limit on a busy machine):
    # pdfjs/Brotli-Prototype-FileA.pdf's 25 pages, which PDFium cannot open, so the ingest above reads them by pypdf;
    # pdfjs/bug1978317.pdf's single page, which tests/test_extraction.py starts in pypdf, times out and kills (its
    # whole pypdf parse is left out of the suite: PDFium, the default, reads it in 0.2 s)
    rows = [r for r in manifest() if r["file"].removeprefix("A_odd_pdfs/") not in PYPDF_ELSEWHERE]
    jobs = [
        ExtractionJob(ODD / r["file"].removeprefix("A_odd_pdfs/"), (r["password"],) if r["password"] else (), "pypdf")
        for r in rows
    ]
    with ExtractionPool(workers=2, timeout_s=60) as pool:
        results = list(pool.run(jobs))
    assert len(results) == 180
    opened = [doc for _, doc in results if doc.error is None]
    reasons = [doc.error for _, doc in results if doc.error is not None]
    assert len(opened) >= 135 and all("\n" not in r and "Traceback" not in r for r in reasons)
    assert not [r for r in reasons if r.startswith(("parser error", "the parser crashed", "timed out"))]
