"""Screenshots of the page's states in headless Chromium, for the README (docs/images/*.png).

    python docs/screenshots.py            # needs /usr/bin/chromium and the shared corpus

Starts the app in extractive mode on a temporary data directory and walks through: an empty library (the
pointer to the upload), an upload in progress (within a 300-page file, with the time left), an extractive
answer with the cited page open beside it (the quoted passage highlighted), the viewer at 100% on a 10-K
table, a narrow screen, a "not found" answer, a Chinese question on a Chinese report's pages, Summarize's
list of documents and what it says without a model, and the warning of a browser without a Chinese font.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
IMAGES = ROOT / "docs" / "images"
SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
CORPUS = ROOT.parent / "shared" / "corpus"
ZH_REPORT = (
    CORPUS / "qa/finglm_zh_mini/pdfs/2020-04-16__四方科技集团股份有限公司__603339__四方科技__2019年__年度报告.pdfg"
)
AMZN = CORPUS / "qa/docugami_sec10q/data/v1/docs/2023 Q1 AMZN.pdf"
ZH_RESEARCH = CORPUS / "qa/zh_reports_dev/pdfs/千味央厨-千寻百味乘势而上-22122726页.pdf"  # prose: a page guide
WALMART = CORPUS / "qa/financebench_dev/pdfs/WALMART_2018_10K.pdf"  # 304 pages: progress within one file
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox"]


def chinese_extract(folder: Path) -> Path:
    """Pages 1 and 5-6 of a Chinese annual report, labelled with their printed numbers (i, 5, 6)."""
    from pypdf import PdfReader, PdfWriter

    reader, writer = PdfReader(ZH_REPORT), PdfWriter()
    for index in (0, 4, 5):
        writer.add_page(reader.pages[index])
    writer.set_page_label(0, 0, "/r")
    writer.set_page_label(1, 2, "/D", start=5)
    path = folder / "四方科技-2019-年报-摘录.pdf"
    writer.write(path)
    return path


def no_chinese_fonts(folder: Path) -> dict:
    """An environment whose fontconfig knows only DejaVu: Chromium has no glyph for Chinese."""
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{folder / 'font-cache'}</cachedir></fontconfig>"
    )
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


ANSWERED = """(before) => {
    const note = document.querySelector('#rag-note').innerText.trim();
    return note !== before && !note.startsWith('…') && /\\d s$/.test(note.split('\\n')[0]);
}"""


def ask(page, question: str) -> None:
    """Ask and wait for the finished answer (the note ends with its time), not just its first status."""
    page.get_by_role("tab", name="Chat / 问答").click()
    page.locator("#rag-clear").click()  # one question per screenshot
    page.wait_for_timeout(1500)
    before = page.locator("#rag-note").inner_text().strip()
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()
    page.wait_for_function(ANSWERED, arg=before, timeout=300_000)
    page.wait_for_timeout(1000)


def open_citation(page, which: str = "first") -> None:
    """The answer's [n]: its page opens beside the answer, the quoted passage highlighted."""
    links = page.locator("#rag-chat a.rag-cite")
    (links.first if which == "first" else links.last).click()
    page.frame_locator("#rag-pdf").locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
    page.wait_for_timeout(2500)


def shoot(page, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=full_page)
    print("wrote", IMAGES / f"{name}.png", flush=True)


def ingest_and_shoot_progress(page, files: list[str]) -> None:
    page.get_by_role("tab", name="Documents / 文档").click()
    page.locator("#rag-upload input[type=file]").set_input_files(files)
    page.wait_for_function("/left/.test(document.querySelector('#rag-progress').innerText)", timeout=600_000)
    shoot(page, "ingesting")
    page.wait_for_function(
        f"(document.querySelector('#rag-report').innerText.match(/ingested/g) || []).length >= {len(files)}",
        timeout=1_800_000,
    )


def main() -> None:
    from playwright.sync_api import sync_playwright
    from webapp import running_app

    IMAGES.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rag-shots-"))
    zh = chinese_extract(tmp)
    with running_app(tmp / "data", "--llm-backend", "extractive", timeout=300) as (url, _, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#rag-status:has-text('Collection')", timeout=120_000)
        page.locator("#rag-empty").wait_for(state="visible", timeout=30_000)
        shoot(page, "empty-collection")

        files = [str(WALMART), str(SAMPLE), str(zh), str(ZH_RESEARCH)] + ([str(AMZN)] if AMZN.exists() else [])
        ingest_and_shoot_progress(page, files)
        shoot(page, "ingest-report", full_page=True)

        ask(page, "How much cash and cash equivalents did Amazon have at the end of the quarter?")
        open_citation(page)
        page.evaluate("window.scrollTo(0, 0)")  # the answer, and the page its [n] opened beside it
        page.wait_for_timeout(500)
        shoot(page, "extractive-answer")
        shoot(page, "answer")  # the README's picture
        page.frame_locator("#rag-pdf").locator("#actual-size").click()
        page.wait_for_timeout(1500)
        shoot(page, "citation-in-viewer")
        page.set_viewport_size({"width": 760, "height": 1100})
        page.wait_for_timeout(1500)
        shoot(page, "narrow-screen", full_page=True)
        page.set_viewport_size({"width": 1500, "height": 1000})

        ask(page, "What is the boiling point of liquid nitrogen?")
        shoot(page, "not-found")

        ask(page, "四方科技2019年归属于上市公司股东的净利润是多少？")
        open_citation(page, "last")  # the Chinese page in PDF.js
        shoot(page, "chinese-question")

        page.locator("#rag-clear").click()
        page.locator("#rag-summarize").click()
        page.locator("#rag-summary-files").wait_for(state="visible", timeout=30_000)
        page.locator("#rag-summary-files label", has_text=ZH_RESEARCH.name).click()
        shoot(page, "summarize-choose")
        page.locator("#rag-summary-go").click()
        page.wait_for_selector("#rag-note:has-text('No summary')", timeout=300_000)
        page.wait_for_timeout(1000)
        shoot(page, "summary-without-model")
        browser.close()

        boxes = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, env=no_chinese_fonts(tmp))
        page = boxes.new_page(viewport={"width": 1500, "height": 700})
        page.goto(url)
        page.locator("#rag-font-warning").wait_for(timeout=120_000)
        shoot(page, "no-chinese-font")
        boxes.close()


if __name__ == "__main__":
    main()
