"""Scanned pages are read by OCR, offline, in English and Chinese, and cited by their own page number.

The scans are made here from real text (bench/ocr.py's scan_copy: 200-dpi grayscale JPEG pages, no
text layer) and read by the real RapidOCR models; the originals' text layers are the reference.
"""

import re
import socket
from pathlib import Path

import pytest
from conftest import CORPUS, FINANCEBENCH
from pdfgen import write_pdf

from bench.ocr import character_error_rate, scan_copy
from rag_app.ingestion.loaders import load_document
from rag_app.ingestion.ocr import MODEL_FILES, OcrOptions, load_engine
from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool
from rag_app.records import FileStatus
from rag_app.requests import SearchRequest

pytestmark = [pytest.mark.usefixtures("corpus"), pytest.mark.slow]  # OCR of real pages: seconds each

FILING = FINANCEBENCH / "3M_2018_10K.pdf"
PROSE_PAGE, CASH_FLOW_PAGE = 5, 60  # 3M's business description; its consolidated statement of cash flows
ZH_REPORT = next((CORPUS / "qa" / "zh_reports_dev" / "pdfs").glob("*华锦股份__2019年__年度报告.pdf"))
ZH_PAGE = 10  # 经营情况讨论与分析: prose with figures
# Checked by hand against the page image: every figure of the cash-flow statement's rows as printed.
CASH_FLOW_ROWS = {
    "Net income including noncontrolling interest": "5,363 4,869 5,058",
    "Inventories": "(509) (387) 57",
    "Purchases of property, plant and equipment (PP&E)": "(1,577) (1,373) (1,420)",
    "Net cash provided by (used in) operating activities": "6,439 6,240 6,662",
    "Cash and cash equivalents at end of period": "2,853 3,053 2,398",
}
NUMBER = re.compile(r"\(?\d[\d,.]*\)?")


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> dict:
    """Scans of real pages, read once through the parser processes as ingestion reads them."""
    folder = tmp_path_factory.mktemp("scans")
    paths = {
        "en": scan_copy(FILING, folder / "3M-scan.pdf", [PROSE_PAGE, CASH_FLOW_PAGE]),
        "zh": scan_copy(ZH_REPORT, folder / "华锦-scan.pdf", [ZH_PAGE]),
    }
    with ExtractionPool(workers=1, timeout_s=120, ocr="auto") as pool:
        docs = {job.path: doc for job, doc in pool.run([ExtractionJob(p) for p in paths.values()])}
    return {lang: docs[path] for lang, path in paths.items()}


def original_text(path: Path, page: int) -> str:
    return load_document(path).pages[page - 1].text


def test_the_models_ship_in_the_wheel_and_nothing_is_downloaded(tmp_path, monkeypatch):
    import rapidocr

    models = Path(rapidocr.__file__).parent / "models"
    assert all((models / name).stat().st_size > 500_000 for name in MODEL_FILES.values())

    def no_network(*args, **kwargs):
        raise AssertionError("OCR tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr("rapidocr.utils.download_file.DownloadFile.run", no_network)
    load_engine.cache_clear()  # load the engine here, with the network cut
    path = write_pdf(tmp_path / "typed.pdf", ["Revenue for 2022 was 42 million dollars.", "Dividends rose 7 percent."])
    doc = load_document(path, ocr=OcrOptions("force"))  # the engine stays loaded for the tests after this one
    assert doc.ocr_pages == [1, 2] and doc.ocr_error is None
    assert doc.pages[0].text == "Revenue for 2022 was 42 million dollars."
    assert doc.pages[1].text == "Dividends rose 7 percent."


def test_english_scan_reads_within_5_percent_character_error_rate(scans):
    doc = scans["en"]
    assert doc.error is None and doc.ocr_pages == [1, 2] and doc.ocr_error is None
    edits, chars = character_error_rate(doc.pages[0].text, original_text(FILING, PROSE_PAGE))
    assert chars > 3000 and edits / chars <= 0.05, f"CER {edits / chars:.2%}"


def test_table_figures_come_back_digit_for_digit(scans):
    text = scans["en"].pages[1].text
    for label, figures in CASH_FLOW_ROWS.items():
        line = next((line for line in text.splitlines() if line.startswith(label)), None)
        assert line is not None, f"no line {label!r} in:\n{text}"
        assert numbers(line.removeprefix(label)) == figures.split(), line
    # and every figure of the page, in order, as the text layer has them
    assert numbers(text) == numbers(original_text(FILING, CASH_FLOW_PAGE))


def test_chinese_scan_reads_within_8_percent_character_error_rate(scans):
    doc = scans["zh"]
    assert doc.error is None and doc.ocr_pages == [1]
    edits, chars = character_error_rate(doc.pages[0].text, original_text(ZH_REPORT, ZH_PAGE))
    assert chars > 800 and edits / chars <= 0.08, f"CER {edits / chars:.2%}"


def mixed_document(tmp_path: Path) -> Path:
    """Page 1 has a text layer, page 2 is a scan of typed text, page 3 a blank scan."""
    import pypdfium2 as pdfium

    typed = write_pdf(tmp_path / "typed.pdf", ["Board minutes.", "The dividend was raised to 3.75 dollars per share."])
    scanned = scan_copy(typed, tmp_path / "scanned.pdf", [2])
    text = write_pdf(tmp_path / "text.pdf", ["Cover letter about the annual general meeting."])
    mixed = pdfium.PdfDocument.new()
    for source in (text, scanned):
        mixed.import_pages(pdfium.PdfDocument(source))
    mixed.new_page(595, 842)
    path = tmp_path / "minutes.pdf"
    mixed.save(path)
    return path


class RecordingProgress:
    def __init__(self):
        self.ocr: list[tuple[str, int, int]] = []

    def __getattr__(self, name):
        return lambda *args: None

    def ocr_page(self, name: str, done: int, total: int) -> None:
        self.ocr.append((name, done, total))


def test_a_scanned_page_is_ingested_reported_and_cited_by_its_page(service, settings, tmp_path):
    settings.ocr = "auto"  # the default; the shared fixture turns OCR off for speed
    progress = RecordingProgress()
    report = service.ingest([mixed_document(tmp_path)], progress=progress)
    [file] = report.files
    assert file.status is FileStatus.INGESTED
    assert file.ocr_pages == [2] and file.empty_pages == [3]
    assert file.note == "1 page read by OCR; 1 of 3 pages have no text layer, and OCR found no text on them"
    assert progress.ocr[0] == ("minutes.pdf", 0, 2) and progress.ocr[-1] == ("minutes.pdf", 2, 2)
    hit = service.search(SearchRequest(query="How much was the dividend per share?", k=1)).hits[0]
    assert hit.page == 2 and "3.75 dollars per share" in hit.text


def test_ocr_progress_reaches_a_caller_too_busy_to_listen(tmp_path):
    """While the caller embeds, the parser's events wait for it: the OCR's first and last steps arrive."""
    import time

    events = []

    def busy_caller(event):
        events.append((event.stage, event.done, event.total))
        time.sleep(0.5)  # embedding another file's chunks

    with ExtractionPool(workers=1, timeout_s=120, ocr="auto") as pool:
        [(_, doc)] = list(pool.run([ExtractionJob(mixed_document(tmp_path))], busy_caller))
    assert doc.error is None and doc.ocr_pages == [2]
    ocr = [(done, total) for stage, done, total in events if stage == "ocr"]
    assert ocr[0] == (0, 2) and ocr[-1] == (2, 2)
    assert ("reading", 3, 3) in events


def test_with_ocr_off_the_report_says_so(service, settings, tmp_path):
    assert settings.ocr == "off"
    [file] = service.ingest([scan_copy(write_pdf(tmp_path / "t.pdf", ["A typed page."]), tmp_path / "s.pdf")]).files
    assert file.status is FileStatus.FAILED
    assert file.reason == "no text layer on any of its 1 pages: scanned? OCR is off (RAG_OCR=auto reads them)"


def test_auto_reads_pages_with_almost_no_text_and_force_reads_every_page(tmp_path):
    def pages_read(path: Path, mode: str) -> tuple[list[int], list[int]]:
        calls = []
        doc = load_document(path, ocr=OcrOptions(mode), on_ocr=lambda done, total, page: calls.append(page))
        return [p for p in calls if p], doc.ocr_pages

    # 5 visible characters each; on page 2 over a full-page image: a scan stamped with its page number
    short = write_pdf(tmp_path / "short.pdf", ["p. 17", "p. 18"], on_image=frozenset({2}))
    assert pages_read(short, "auto") == ([2], [])  # read, and OCR found no more than the text layer has
    long = write_pdf(tmp_path / "long.pdf", ["A page with a text layer long enough to be trusted."], frozenset({1}))
    assert pages_read(long, "auto") == ([], [])
    assert pages_read(long, "force") == ([1], [1])


def test_ocr_under_too_small_a_memory_limit_fails_the_page_not_the_parser(tmp_path):
    # detection on a 144-dpi A4 page needs about 1.5 GB of address space; the parser's limit is 4096 MiB
    scan = scan_copy(
        write_pdf(tmp_path / "typed.pdf", ["Revenue for 2022 was 42 million dollars."]), tmp_path / "s.pdf"
    )
    with ExtractionPool(workers=1, timeout_s=120, memory_mb=900, ocr="auto") as pool:
        [(_, doc)] = list(pool.run([ExtractionJob(scan)]))
    assert doc.error is None and doc.total_pages == 1 and doc.ocr_pages == []
    assert doc.ocr_error == "out of memory (raise RAG_PARSE_MEMORY_MB) (page 1)"


def test_an_ocr_page_that_runs_past_the_timeout_is_named(tmp_path):
    # The cash-flow statement takes about 9 CPU-seconds (loading the engine included) against a 5 s limit;
    # the text file first starts the worker, whose start-up would otherwise count against the scan.
    warm_up = write_pdf(tmp_path / "text.pdf", ["Parsed first, so the worker has started when the scan comes."])
    scan = scan_copy(FILING, tmp_path / "scan.pdf", [CASH_FLOW_PAGE])
    with ExtractionPool(workers=1, timeout_s=5, ocr="auto") as pool:
        docs = {job.path.name: doc for job, doc in pool.run([ExtractionJob(warm_up), ExtractionJob(scan)])}
    assert docs["text.pdf"].error is None
    assert docs["scan.pdf"].error == (
        "timed out after 5 s reading page 1 of 1 by OCR (RAG_PARSE_TIMEOUT_S; RAG_OCR=off skips it)"
    )


def test_the_ingest_cli_draws_a_bar_of_pages_read_by_ocr(capsys):
    from rag_app.cli.render import BarProgress

    bar = BarProgress()
    for done in range(3):
        bar.ocr_page("scanned minutes.pdf", done, 2)
    bar.close()
    assert "OCR scanned minutes.pdf" in capsys.readouterr().err
