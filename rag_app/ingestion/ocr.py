"""Read pages that have no text layer (scans, photographed pages) by OCR, in Chinese and English.

Pages are rendered with PDFium and read by RapidOCR: PP-OCRv6 text detection and recognition (one
model for Chinese and English) and PP-OCR's text-line orientation classifier, run by onnxruntime.
The three ONNX models ship inside the ``rapidocr`` wheel and are loaded by path, so nothing is ever
downloaded. Called from the parser processes (rag_app.ingestion.parsing), under their per-page timeout and
memory limit; one engine is loaded per process, on the first page that needs it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_app.records import ExtractedDocument, OcrMode, PageText
from rag_app.text.clean import clean_page_text

log = logging.getLogger(__name__)

# In "auto" mode a page whose text layer has fewer visible characters than this is read by OCR: a scan
# often carries a page number, a Bates number or a scanner's stamp as text, and nothing else.
MIN_TEXT_CHARS = 16
# Pages are rendered at 2 pixels per PDF point (144 dpi). At 1.5 (108 dpi) 8-point table figures came
# back wrong ("(387)" read as "(8)", "$" as "S" on 3M's 2018 cash-flow statement); recognition works
# on text lines scaled to 48 px high, so only detection gets dearer with the scale. The longer side is
# capped at RapidOCR's working size (it shrinks larger images itself), so a poster costs no more memory.
RENDER_SCALE = 2.0
MAX_RENDER_PX = 2000
# The models inside the rapidocr 3.10.0 wheel (rapidocr/models/), by RapidOCR's config section.
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}

_LINES_READ_AS_TEXT = {"一", "丨", "I", "l", "|"}
# on_ocr(pages read so far, pages to read, page being read next or 0 when finished)
OcrCallback = Callable[[int, int, int], None]


class OcrUnavailable(Exception):
    """OCR cannot run in this process; ``str()`` says why."""


@dataclass(frozen=True)
class OcrOptions:
    """How a loader treats pages without a text layer, and how many threads one OCR engine uses."""

    mode: OcrMode = "off"
    threads: int = 0  # onnxruntime intra-op threads; 0: one per core


NO_OCR = OcrOptions()


def needs_ocr(text: str, mode: OcrMode, has_image: Callable[[], bool] = lambda: True) -> bool:
    """Whether a page is read by OCR: never (off), always (force), or (auto) when its text layer is
    empty, or almost empty on a page that shows an image (a scan stamped with a page number)."""
    if mode != "auto":
        return mode == "force"
    visible = sum(not ch.isspace() for ch in text)
    return visible == 0 or (visible < MIN_TEXT_CHARS and has_image())


def read_pages_by_ocr(
    doc: ExtractedDocument,
    data: bytes,
    passwords: Sequence[str],
    options: OcrOptions,
    on_ocr: OcrCallback | None = None,
) -> None:
    """OCR the pages of ``doc`` that need it (see ``needs_ocr``) and keep the text OCR found.

    Sets ``doc.ocr_pages`` (pages whose text now comes from OCR) and ``doc.ocr_error`` (why OCR could
    not read some pages); a page OCR cannot read keeps what its text layer had.
    """
    doc.ocr_mode = options.mode
    if not any(needs_ocr(page.text, options.mode) for page in doc.pages):  # cheap: no PDF opened
        return
    from rag_app.ingestion.pdfium import PdfiumFailure, open_document

    try:
        pdf = open_document(data, passwords)
    except PdfiumFailure as exc:  # pypdf read the text layer, PDFium cannot render the pages
        doc.ocr_error = f"PDFium cannot open the file to render its pages ({exc})"
        return
    try:
        wanted = [
            p.number for p in doc.pages if needs_ocr(p.text, options.mode, lambda p=p: shows_image(pdf, p.number))
        ]
        if wanted:
            _read_pages(doc, pdf, options.threads, wanted, on_ocr)
    except OcrUnavailable as exc:
        doc.ocr_error = str(exc)
    finally:
        pdf.close()


def shows_image(pdf, number: int) -> bool:
    """Whether page ``number`` draws an image (directly or inside a form XObject)."""
    import pypdfium2.raw as pdfium_c

    try:
        page = pdf[number - 1]
    except Exception:  # noqa: BLE001 - a page PDFium cannot load: let OCR report it
        return True
    try:
        return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=5))
    finally:
        page.close()


def _read_pages(doc: ExtractedDocument, pdf, threads: int, wanted: list[int], on_ocr: OcrCallback | None) -> None:
    failed: dict[int, str] = {}
    engine = None
    for done, number in enumerate(wanted):
        if on_ocr:
            on_ocr(done, len(wanted), number)
        engine = engine or load_engine(threads)  # after the first on_ocr: the page's time limit covers loading
        try:
            text = clean_page_text(read_page(engine, pdf, number))
        except Exception as exc:  # noqa: BLE001 - MemoryError included: one page must not lose the others
            failed[number] = _failure(exc)
            log.warning("OCR could not read page %d: %s", number, failed[number])
            continue
        _keep_better(doc, number, text, doc.ocr_mode)
    if on_ocr:
        on_ocr(len(wanted), len(wanted), 0)
    if failed:
        reasons = sorted(set(failed.values()))
        pages = ", ".join(map(str, sorted(failed)))
        doc.ocr_error = f"{'; '.join(reasons)} (page{'s' if len(failed) > 1 else ''} {pages})"


def _keep_better(doc: ExtractedDocument, number: int, text: str, mode: OcrMode) -> None:
    """Use the OCR text when it holds more than the text layer (auto) or anything at all (force)."""
    index = next(i for i, page in enumerate(doc.pages) if page.number == number)
    layer = doc.pages[index].text
    visible = sum(not ch.isspace() for ch in text)
    if visible and (mode == "force" or visible > sum(not ch.isspace() for ch in layer)):
        doc.pages[index] = PageText(number, text)
        doc.ocr_pages.append(number)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or "bad_alloc" in str(exc):
        return "out of memory (raise RAG_PARSE_MEMORY_MB)"
    if type(exc).__name__ == "PdfiumError":
        return "PDFium cannot render the page"
    return f"OCR error: {type(exc).__name__}"


def read_page(engine, pdf, number: int) -> str:
    """The text OCR reads on 1-based page ``number`` of an open PDFium document, line by line."""
    image = render_page(pdf, number)
    if int(image.max()) - int(image.min()) < 16:  # one flat colour: a blank page, nothing to detect
        return ""
    result = engine(image)
    if result.boxes is None or result.txts is None:
        return ""
    kept = [(box, text) for box, text in zip(result.boxes, result.txts, strict=True) if is_text(text)]
    return lines_in_reading_order([b for b, _ in kept], [t for _, t in kept]) if kept else ""


def is_text(read: str) -> bool:
    """False for what OCR makes of a rule, a border or a stray mark: no letter or digit at all, or a
    lone 一 or 丨 (a horizontal or vertical line read as a Chinese character)."""
    read = read.strip()
    return read not in _LINES_READ_AS_TEXT and any(ch.isalnum() for ch in read)


def render_page(pdf, number: int):
    """Page ``number`` as a BGR numpy array (what RapidOCR takes), at RENDER_SCALE or smaller."""
    page = pdf[number - 1]
    try:
        width, height = page.get_size()
        scale = min(RENDER_SCALE, MAX_RENDER_PX / max(width, height, 1.0))
        bitmap = page.render(scale=scale)
        try:
            return bitmap.to_numpy().copy()
        finally:
            bitmap.close()
    finally:
        page.close()


def lines_in_reading_order(boxes, texts: Sequence[str]) -> str:
    """Join detected text boxes into lines, left to right, lines top to bottom.

    A box joins the line above it when their vertical centres are less than half the smaller of
    their heights apart: table rows set close together, where a tall box reaches into the next
    row, stay apart.
    """
    spans = [(float(box[:, 1].min()), float(box[:, 1].max()), float(box[:, 0].min())) for box in boxes]
    items = sorted(((*span, text) for span, text in zip(spans, texts, strict=True)), key=lambda i: i[0] + i[1])
    lines: list[tuple[float, float, list[tuple[float, str]]]] = []  # centre, height, (left, text) boxes
    for top, bottom, left, text in items:
        centre, height = (top + bottom) / 2, bottom - top
        if lines and abs(centre - lines[-1][0]) < min(height, lines[-1][1]) / 2:
            lines[-1][2].append((left, text))
        else:
            lines.append((centre, height, [(left, text)]))
    return "\n".join(" ".join(text for _, text in sorted(words)) for _, _, words in lines)


@functools.cache
def load_engine(threads: int = 0):
    """The RapidOCR engine of this process, with the models of the installed wheel (nothing downloaded).

    onnxruntime-gpu's CUDA provider is used when it is installed; onnxruntime falls back to the CPU
    when CUDA cannot start (as under the parser's memory limit, which CUDA's address space exceeds).
    """
    try:
        import onnxruntime
        import rapidocr
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise OcrUnavailable(f"OCR is not installed ({exc.name}): pip install -r requirements.txt") from None
    models = Path(rapidocr.__file__).parent / "models"
    missing = [name for name in MODEL_FILES.values() if not (models / name).is_file()]
    if missing:
        raise OcrUnavailable(f"the rapidocr package lacks its models ({', '.join(missing)}): reinstall rapidocr")
    params = {"Global.log_level": "error", **{f"{task}.model_path": str(models / n) for task, n in MODEL_FILES.items()}}
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        params["EngineConfig.onnxruntime.use_cuda"] = True
    try:
        return RapidOCR(params=params)
    except MemoryError:
        raise OcrUnavailable("the OCR models do not fit in the parser's memory limit (RAG_PARSE_MEMORY_MB)") from None
