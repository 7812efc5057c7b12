"""Screenshots of the page's states in headless Chromium, for the README (docs/images/*.png).

    python docs/screenshots.py            # needs /usr/bin/chromium and the shared corpus

Starts the app in extractive mode on a temporary data directory and walks through: asking
before any upload, ingesting, an extractive answer, a "not found" answer, a citation opened in
the PDF viewer, and a Chinese question on a Chinese report's pages.
"""

from __future__ import annotations

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


ANSWERED = """(before) => {
    const note = document.querySelector('#rag-note').innerText.trim();
    const chat = document.querySelector('#rag-chat').innerText;
    return (note !== before && !note.startsWith('…') && /\\d s$/.test(note.split('\\n')[0]))
        || (before === '' && chat.includes('No documents yet'));
}"""


def ask(page, question: str) -> None:
    """Ask and wait for the finished answer (the note ends with its time), not just its first status."""
    page.get_by_role("tab", name="Chat / 问答").click()
    page.get_by_role("button", name="New chat / 新对话").click()  # one question per screenshot
    page.wait_for_timeout(1500)
    before = page.locator("#rag-note").inner_text().strip()
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()
    page.wait_for_function(ANSWERED, arg=before, timeout=300_000)
    page.wait_for_timeout(1000)


def shoot(page, name: str) -> None:
    page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)
    print("wrote", IMAGES / f"{name}.png", flush=True)


def main() -> None:
    from playwright.sync_api import sync_playwright
    from webapp import running_app

    IMAGES.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rag-shots-"))
    zh = chinese_extract(tmp)
    with running_app(tmp / "data", "--llm-backend", "extractive", timeout=300) as (url, _, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#rag-status:has-text('Collection')", timeout=120_000)
        ask(page, "What was the gross margin?")
        shoot(page, "empty-collection")

        page.get_by_role("tab", name="Documents / 文档").click()
        files = [str(SAMPLE), str(zh)] + ([str(AMZN)] if AMZN.exists() else [])
        page.locator("#rag-upload input[type=file]").set_input_files(files)
        page.wait_for_timeout(4000)
        shoot(page, "ingesting")
        page.wait_for_function(
            f"(document.querySelector('#rag-report').innerText.match(/ingested/g) || []).length >= {len(files)}",
            timeout=900_000,
        )

        ask(page, "How much cash and cash equivalents did Amazon have at the end of the quarter?")
        shoot(page, "extractive-answer")
        page.locator("#rag-chat a[href^='#rag-source-']").first.click()
        frame = page.frame_locator("#rag-pdf")
        frame.locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
        page.wait_for_timeout(2500)
        page.locator("#rag-viewer").scroll_into_view_if_needed()
        shoot(page, "citation-in-viewer")

        ask(page, "What is the boiling point of liquid nitrogen?")
        shoot(page, "not-found")

        ask(page, "四方科技2019年归属于上市公司股东的净利润是多少？")
        page.locator("#rag-chat a[href^='#rag-source-']").last.click()  # the Chinese page in PDF.js
        frame.locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
        page.wait_for_timeout(2500)
        shoot(page, "chinese-question")
        browser.close()


if __name__ == "__main__":
    main()
