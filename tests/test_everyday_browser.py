"""The page a person uses every day (issue 28), in Debian's headless Chromium: an empty library leads to the upload,
progress moves within a file and stays in view, names are kept, the viewer is readable beside the answer and
highlights the whole quoted passage, a new chat clears it, Summarize asks which documents and does not pretend,
labels break between their languages, toasts speak both, and a missing Chinese font is announced."""

import difflib
import json
import os
import re
import shutil
from urllib.parse import quote

import httpx
import pytest
from conftest import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, CORPUS, FINANCEBENCH, ROOT
from pdfgen import write_pdf
from webapp import running_app

from bench.upload_progress import record_upload

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("corpus")]
COLLECTION = "everyday"
WALMART = FINANCEBENCH / "WALMART_2018_10K.pdf"  # 304 pages
ZH_REPORT = CORPUS / "qa" / "zh_reports_dev" / "pdfs" / "千味央厨-千寻百味乘势而上-22122726页.pdf"
SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("everyday") / "data"
    with running_app(data, "--llm-backend", "extractive", env_extra={"RAG_COLLECTION": COLLECTION}) as (url, _, _):
        yield url


@pytest.fixture(scope="module")
def extracts(tmp_path_factory):
    """Real pages: 3M's 2018 10-K, MD&A prose (its p. 28) and the balance sheet (p. 58); a Chinese research
    report's pages 3 to 5."""
    from pypdf import PdfReader, PdfWriter

    folder = tmp_path_factory.mktemp("extracts")

    def extract(source, indexes, name):
        reader, writer = PdfReader(source), PdfWriter()
        for index in indexes:
            writer.add_page(reader.pages[index])
        writer.write(folder / name)
        return folder / name

    return {
        "10k": extract(FINANCEBENCH / "3M_2018_10K.pdf", (27, 57), "3M 2018 10-K extract.pdf"),
        "zh": extract(ZH_REPORT, (2, 3, 4), "千味央厨-研究报告摘录.pdf"),
    }


def open_page(browser, url, width=1400, height=1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector("#rag-status:has-text('Collection')", timeout=60_000)
    return page


def api_upload(app, *paths):
    files = [("files", (path.name, path.read_bytes())) for path in paths]
    response = httpx.post(app + "api/documents", files=files, params={"collection": COLLECTION}, timeout=600)
    assert response.status_code == 200, response.text
    return response.json()


def api_delete(app, name):
    return httpx.delete(app + f"api/documents/{quote(name)}", params={"collection": COLLECTION}, timeout=60)


def ask(page, question):
    page.get_by_role("tab", name="Chat / 问答").click()
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()
    page.wait_for_selector("#rag-note:has-text('· model')", timeout=180_000)


WATCH_PROGRESS = """
window.__progressInView = [];
new MutationObserver(() => {
    const progress = document.querySelector('#rag-progress .rag-progress');
    if (!progress) return;
    window.scrollTo(0, document.body.scrollHeight);
    const box = progress.getBoundingClientRect();
    window.__progressInView.push(box.top >= 0 && box.bottom <= window.innerHeight);
}).observe(document.querySelector('#rag-progress'), {subtree: true, childList: true, characterData: true, attributes: true});
"""


def in_view(page, selector) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


# ----- 4. an empty library leads to the upload --------------------------------------------------------------


def test_an_empty_library_points_from_the_chat_to_the_upload(browser, app):
    page = open_page(browser, app)
    pointer = page.locator("#rag-empty")
    pointer.wait_for(state="visible", timeout=30_000)
    assert "No documents yet" in pointer.inner_text() and "还没有文档" in pointer.inner_text()
    page.locator("#rag-go-upload").click()
    page.locator("#rag-upload").wait_for(state="visible", timeout=10_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "empty-library.png"))


# ----- 1. progress that moves --------------------------------------------------------------------------------


def test_a_300_page_upload_shows_progress_within_the_file_at_least_every_5_s(browser, app):
    page = open_page(browser, app)
    load_before = os.getloadavg()[0]
    try:
        result = record_upload(page, [str(WALMART)])
        report = page.locator("#rag-report").inner_text()
    finally:  # whatever is asserted below: the later tests' questions must not search this filing
        deleted = api_delete(app, WALMART.name)
    texts, load_after = result["texts"], os.getloadavg()[0]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "upload-progress.json").write_text(
        json.dumps({**result, "load_before": load_before, "load_after": load_after}, ensure_ascii=False)
    )
    read = {int(m) for t in texts for m in re.findall(r"page (\d+) of 304", t)}
    embedded = {int(m.replace(",", "")) for t in texts for m in re.findall(r"([\d,]+) of [\d,]+ passages", t)}
    assert len(read) >= 2 and len(embedded) >= 5, texts  # within the file, not only when it is done
    assert any(re.search(r"about \d+ (s|min) left", t) and "约剩" in t for t in texts), texts
    # no file was done before the end: the page may draw its last state, "100% · 1 of 1 files done · Finishing",
    # before the progress goes (a loaded CI drew it once), never a file done below 100%
    finished = [t for t in texts if "%" in t and "0 of 1 files done" not in t]
    assert all(t.startswith("100%") and "1 of 1 files done" in t for t in finished), finished
    # The 5 s between counts is a time on 2 idle cores (bench.upload_progress measures it: 3.0 s at load 1.1). Beside
    # the suite's other workers, browsers and apps (load 5 to 9) the first batch of passages alone took 5.9 s once:
    # a timing at load over 2 is not a figure, so only an idle machine holds the upload to it here.
    if max(load_before, load_after) <= 2:
        assert result["max_gap_of_counts_s"] <= 5, (
            f"{result['longest_gaps_s']} (load {load_before:.1f}-{load_after:.1f})"
        )
    assert "ingested" in report and deleted.status_code == 200


def test_the_progress_stays_in_view_however_many_files_are_uploaded(browser, app, tmp_path):
    memos = [
        write_pdf(
            tmp_path / f"board memo {n:02d}.pdf", [f"Memo {n}. The board approved item {n * 7}.", f"Costs fell {n}%."]
        )
        for n in range(11)
    ]
    page = open_page(browser, app, height=500)  # a page taller than the window: scrolling down moves the progress
    page.get_by_role("tab", name="Documents / 文档").click()
    # Each time the progress is drawn, scroll down to the report, past the file list, and note whether the
    # progress is still in view: checked when it shows, however briefly (11 small memos may take a second; the
    # check after a fixed wait found it gone).
    page.evaluate(WATCH_PROGRESS)
    page.locator("#rag-upload input[type=file]").set_input_files([str(m) for m in memos])
    page.wait_for_function("(document.querySelector('#rag-report').innerText.match(/ingested/g) || []).length >= 11",
                           timeout=120_000)  # fmt: skip
    seen = page.evaluate("window.__progressInView")
    assert seen and all(seen), seen
    for memo in memos:
        api_delete(app, memo.name)


# ----- 5. names ------------------------------------------------------------------------------------------------


def test_uploaded_names_are_kept_and_a_name_that_must_change_is_reported(browser, app, tmp_path):
    kept = tmp_path / "2020-04-16__四方科技 (2019) <i>年报.pdf"
    long_name = "第三季度财务报告" * 9 + ".pdf"  # 219 bytes: over the 200 a stored name may take
    shutil.copy(ZH_REPORT, kept)
    shutil.copy(SAMPLE, tmp_path / long_name)
    page = open_page(browser, app)
    page.get_by_role("tab", name="Documents / 文档").click()
    page.locator("#rag-upload input[type=file]").set_input_files([str(kept), str(tmp_path / long_name)])
    page.wait_for_function("(document.querySelector('#rag-report').innerText.match(/ingested/g) || []).length >= 2",
                           timeout=300_000)  # fmt: skip
    documents = page.locator("#rag-documents").inner_text()
    assert kept.name in documents, documents  # "__", brackets and all, shown as text
    assert page.locator("#rag-documents i, #rag-report i").count() == 0
    report = page.locator("#rag-report").inner_text()
    stored = next(line.split("\t")[0] for line in report.splitlines() if line.startswith("第三季度") and "~" in line)
    assert f"stored as '{stored}'" in report and "either name deletes it" in report
    cut = page.evaluate(
        "[...document.querySelectorAll('#rag-report td, #rag-report td *')].filter(e => e.scrollWidth > e.clientWidth + 1).length"
    )
    assert cut == 0, "every cell of the report shows its whole text (the reason column was cut off)"
    assert long_name in report  # the name as uploaded, in the note
    assert api_delete(app, long_name).json()["deleted"]["name"] == stored  # by the uploaded name
    assert api_delete(app, kept.name).status_code == 200


# ----- 8. toasts and labels ------------------------------------------------------------------------------------

LINE_BREAKS_INSIDE_WORDS = """() => {
  const bad = [];
  for (const element of document.querySelectorAll('button, [role=tab]')) {
    if (!element.offsetParent) continue;
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const chars = [];
    for (let node; (node = walker.nextNode());) {
      for (let i = 0; i < node.data.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        chars.push([node.data[i], rect ? rect.top : null]);
      }
    }
    for (let i = 1; i < chars.length; i++) {
      const [before, top0] = chars[i - 1], [after, top1] = chars[i];
      if (top0 !== null && top1 !== null && top1 > top0 + 2 && !/\\s/.test(before) && !/\\s/.test(after))
        bad.push(element.innerText.replace(/\\n/g, '⏎'));
    }
  }
  return bad;
}"""


@pytest.mark.parametrize("width", [1400, 900, 420])
def test_bilingual_labels_break_between_their_halves_never_inside_a_word(browser, app, width):
    api_upload(app, SAMPLE)  # the chat's buttons, and not the pointer to the upload
    page = open_page(browser, app, width=width)
    page.wait_for_timeout(1000)
    assert page.evaluate(LINE_BREAKS_INSIDE_WORDS) == []
    page.get_by_role("tab", name="Documents / 文档").click()
    assert page.evaluate(LINE_BREAKS_INSIDE_WORDS) == []


def test_toasts_speak_both_languages(browser, app):
    api_upload(app, SAMPLE)
    page = open_page(browser, app)
    page.get_by_role("tab", name="Documents / 文档").click()
    page.get_by_label("Document to delete / 删除文档").click()
    page.get_by_role("option", name=SAMPLE.name).click()
    page.get_by_role("button", name="Delete / 删除").click()
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=30_000)
    assert f"Deleted {SAMPLE.name}" in toast.inner_text() and f"已删除 {SAMPLE.name}" in toast.inner_text()


# ----- 2. a viewer you can read -----------------------------------------------------------------------------------


def open_first_citation(page):
    """Click the answer's first [n]: its source opens in the viewer with the passage quoted before it."""
    answer = page.locator("#rag-chat").inner_text()
    quoted = re.search(r"“([^”]+)”\s*\[(\d+)\]", answer)
    assert quoted, answer
    page.locator("#rag-chat a.rag-cite").first.click()
    frame = page.frame_locator("#rag-pdf")
    frame.locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
    page.wait_for_timeout(1500)
    return quoted.group(1), page.frame(name="rag-pdf")


def highlighted_text(frame) -> str:
    return " ".join(frame.locator(".textLayer .highlight").all_inner_texts())


def folded(text: str) -> str:
    return re.sub(r"\s+", "", text).lower().replace("’", "'").replace("“", '"').replace("”", '"')


def coverage(passage: str, shown: str) -> float:
    """Share of the passage's characters (spaces aside) found, in order, in what is highlighted."""
    a, b = folded(passage), folded(shown)
    matched = sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    return matched / max(len(a), 1)


def test_the_viewer_sits_beside_the_answer_and_shows_a_10k_table_at_100_percent(browser, app, extracts):
    api_upload(app, extracts["10k"])
    page = open_page(browser, app)
    ask(page, "What were 3M's total current assets on the balance sheet at December 31, 2018?")
    card = page.locator("#rag-sources .rag-source", has_text="p. 2").first  # the balance sheet
    card.locator("a.rag-open").click()
    frame_locator = page.frame_locator("#rag-pdf")
    frame_locator.locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
    viewer, chat = page.locator("#rag-pdf").bounding_box(), page.locator("#rag-chat").bounding_box()
    assert viewer["x"] >= chat["x"] + chat["width"] and viewer["y"] < chat["y"] + chat["height"], (viewer, chat)
    frame = page.frame(name="rag-pdf")
    assert float(frame.evaluate("document.body.dataset.scale")) >= 0.95  # fitted to its width: about as printed
    frame_locator.locator("#actual-size").click()
    page.wait_for_timeout(800)
    assert frame.evaluate("document.body.dataset.scale") == "1.000"
    container = "document.getElementById('container')"
    assert frame.evaluate(f"{container}.scrollWidth <= {container}.clientWidth"), (
        "100% must fit without scrolling sideways"
    )
    frame_locator.locator("#zoom-in").click()
    page.wait_for_timeout(500)
    assert float(frame.evaluate("document.body.dataset.scale")) > 1.0
    assert "Total current assets" in frame.locator(".page[data-page-number='2'] .textLayer").inner_text()
    page.screenshot(path=str(ARTIFACTS / "viewer-wide.png"))
    page.set_viewport_size({"width": 760, "height": 1000})  # narrow: the viewer takes the full width, below
    page.wait_for_timeout(800)
    viewer, chat = page.locator("#rag-pdf").bounding_box(), page.locator("#rag-chat").bounding_box()
    assert viewer["y"] > chat["y"] + chat["height"] and viewer["width"] >= 0.9 * chat["width"], (viewer, chat)


@pytest.mark.parametrize(
    ("extract", "question"),
    [
        ("10k", "How much did selling, general and administrative expenses increase in 2018?"),
        ("zh", "千味央厨的股权激励计划考核目标是什么？"),  # its quote runs from the page's header into the text
    ],
)
def test_the_whole_quoted_passage_is_highlighted(browser, app, extracts, extract, question):
    api_upload(app, extracts[extract])
    page = open_page(browser, app)
    ask(page, question)
    passage, frame = open_first_citation(page)
    shown = highlighted_text(frame)
    assert coverage(passage, shown) >= 0.9, (passage, shown)
    assert len(folded(shown)) <= 1.3 * len(folded(passage)) + 10, (passage, shown)  # the passage, not the page


def test_a_new_chat_clears_the_viewer(browser, app, extracts):
    api_upload(app, extracts["10k"])
    page = open_page(browser, app)
    ask(page, "How much did selling, general and administrative expenses increase in 2018?")
    open_first_citation(page)
    assert "viewer/" in page.frame(name="rag-pdf").url
    page.get_by_role("button", name="New chat / 新对话").click()
    page.wait_for_function("!document.querySelector('#rag-chat').innerText.includes('SG&A')", timeout=30_000)
    page.wait_for_timeout(1000)
    assert page.frame(name="rag-pdf").url.startswith("about:blank"), page.frame(name="rag-pdf").url
    assert page.locator("#rag-sources .rag-source").count() == 0


# ----- 3. summaries that don't pretend ------------------------------------------------------------------------


def test_summarize_asks_which_documents_and_says_there_is_no_summary(browser, app, extracts):
    api_upload(app, extracts["10k"], extracts["zh"])
    page = open_page(browser, app)
    page.locator("#rag-summarize").click()
    choices = page.locator("#rag-summary-files")
    choices.wait_for(state="visible", timeout=10_000)
    assert extracts["10k"].name in choices.inner_text() and extracts["zh"].name in choices.inner_text()
    page.locator("#rag-summary-go").click()  # nothing ticked: said beside the list, and it stays
    page.wait_for_selector("#rag-summary-hint:has-text('Tick at least one document')", timeout=10_000)
    page.wait_for_timeout(3000)
    assert "请先在上方勾选" in page.locator("#rag-summary-hint").inner_text()
    choices.locator("label", has_text=extracts["zh"].name).click()
    page.locator("#rag-summary-go").click()
    # the final note, not the status line shown while the pages are read ("no summary without an answer model")
    page.wait_for_selector("#rag-note:has-text('未生成摘要')", timeout=120_000)
    note = page.locator("#rag-note")
    assert in_view(page, "#rag-note") and "未生成摘要" in note.inner_text() and "0 parts" not in note.inner_text()
    reply = page.locator("#rag-chat").inner_text()
    assert (
        "未生成摘要" in reply and "第 2 页 · 生意模式" in reply and "001215 CH" not in reply and "免责声明" not in reply
    )
    assert not re.search(r"未生成摘要[^\n]*[A-Za-z]", reply), "no English inside the Chinese notice"
    page.screenshot(path=str(ARTIFACTS / "summary-without-model.png"))


# ----- 6. fonts -------------------------------------------------------------------------------------------------


def test_a_browser_without_a_chinese_font_is_told(browser, app, tmp_path):
    config = tmp_path / "fonts.conf"  # fontconfig that knows only DejaVu: no glyph for Chinese
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    for fonts, warned in ((str(config), True), (None, False)):
        env = {**os.environ, **({"FONTCONFIG_FILE": fonts} if fonts else {})}
        other = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, env=env)
        page = open_page(other, app)
        page.wait_for_timeout(1000)
        warning = page.locator("#rag-font-warning")
        assert warning.count() == int(warned)
        if warned:
            assert "fonts-noto-cjk" in warning.inner_text()
        other.close()
