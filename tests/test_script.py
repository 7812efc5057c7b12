"""Chinese in traditional characters: a question typed in Hong Kong or Taiwan finds, and is answered from, a report
printed in simplified characters, and a report printed in traditional ones is found by a question in simplified ones
(rag_app.text.script)."""

import os
import sqlite3
import subprocess
from collections import Counter

import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, CORPUS

from rag_app.records import Chunk
from rag_app.requests import AskRequest, SearchRequest
from rag_app.storage.chunk_table import ChunkTable
from rag_app.text import terms as terms_module
from rag_app.text.highlight import matching_spans
from rag_app.text.lexicon import concepts, named
from rag_app.text.script import TABLE_FILE, _table, folds, simplified
from rag_app.text.terms import read_question, terms_of

ZH_REPORT = CORPUS / "qa" / "zh_reports_dev" / "pdfs" / "千味央厨-千寻百味乘势而上-22122726页.pdf"


def test_traditional_characters_read_as_simplified_ones_in_their_places():
    assert (
        simplified("聯邦製藥（03933.HK）於2024年的營業收入為多少？") == "联邦制药（03933.HK）于2024年的营业收入为多少？"
    )
    assert simplified("臺灣 裡面 裏面 綫 衞生") == "台湾 里面 里面 线 卫生"  # Taiwan's and Hong Kong's variant forms
    for text in ("公司的营业收入是什么？么", "报告期内公司持续推进动物疫苗研发，著名", "Net revenue 12.5%"):
        assert simplified(text) == text and not folds(text)  # simplified text (and 么, 著) stays as written
    assert simplified("於 後 乾") == "于 后 干"  # the few written both ways are read one way
    table = _table()
    assert len(table) > 3000 and all(len(chr(c)) == len(s) == 1 for c, s in table.items())
    assert not {ord(s) for s in table.values()} & table.keys()  # each read once: no chain left to follow
    assert TABLE_FILE.read_text(encoding="utf-8").startswith("# Traditional Chinese characters")


def test_a_question_and_a_page_in_either_script_share_their_terms_their_measures_and_their_highlights():
    traditional, simple = "千味央廚的三大新品牌分別針對哪些消費羣體？", "千味央厨的三大新品牌分别针对哪些消费群体？"
    assert terms_of(traditional) == terms_of(simple) and read_question(traditional) == simple
    assert read_question("聯邦製藥23年年報的淨利潤") == "联邦制药2023年年报的净利润"  # and its period written out
    assert named("營業收入和淨利潤") == named("营业收入和净利润") != {}
    assert concepts("本年度營業收入為人民幣 137.2 億元") == concepts("本年度营业收入为人民币 137.2 亿元") != set()
    page = "本集團的營業收入為人民幣137.2億元，較去年增長14.3%。"
    spans = matching_spans("联邦制药的营业收入是多少？", page)
    assert [page[s:e] for s, e in spans] == ["營業收入"]  # marked where the page prints it
    assert matching_spans("聯邦製藥的營業收入是多少？", simplified(page)) == spans


def test_a_chunk_table_of_the_layout_before_reads_a_traditional_documents_terms_again_in_place(tmp_path, monkeypatch):
    """Layout 4 indexed Chinese as printed. Opened now, the terms of a file whose texts hold traditional characters are
    read again in simplified ones from the texts it holds; other files are not touched, nothing is re-ingested."""
    path = tmp_path / "chunks.sqlite"
    texts = {
        "t": ["聯邦製藥國際控股有限公司 2023 年年報", "本集團的營業額為人民幣 137.2 億元"],
        "s": ["四方科技集团股份有限公司 2019 年年度报告", "营业收入 1,581,905,632.48 元"],
    }
    monkeypatch.setattr(terms_module, "simplified", lambda text: text)  # terms as layout 4 wrote them
    table = ChunkTable(path)
    for sha, chunks in texts.items():
        table.add(sha, [Chunk(f"{sha}:1:{i}", t, 1, i, i) for i, t in enumerate(chunks)], f"{sha}.pdf", 1)
    assert [c for c, _ in table.search("營業額", 2)] == ["t:1:1"]
    uid = table.state()[0]
    table.close()
    monkeypatch.undo()
    assert [c for c, _ in ChunkTable(path).search("营业额", 2, {"t"})] == []  # layout 4's terms are not read so
    with sqlite3.connect(path) as old:
        old.execute("PRAGMA user_version = 4")
        untouched = old.execute("SELECT terms FROM postings WHERE sha = 's'").fetchone()
    table = ChunkTable(path)
    assert (
        [c for c, _ in table.search("营业额", 2, {"t"})]
        == [c for c, _ in table.search("營業額", 2, {"t"})]
        == ["t:1:1"]
    )
    assert {"联邦", "制药"} <= table.cover_terms()["t"] and table.state()[0] == uid  # the same life of the table
    with sqlite3.connect(path) as new:
        assert new.execute("SELECT terms FROM postings WHERE sha = 's'").fetchone() == untouched
        assert new.execute("PRAGMA user_version").fetchone()[0] == 5
    lengths = dict(sqlite3.connect(path).execute("SELECT id, length FROM chunks"))
    assert lengths["t:1:1"] == sum(Counter(terms_of(texts["t"][1])).values())


def hong_kong_report(folder):
    """An annual report printed in traditional characters (Markdown), and one in simplified ones, in ``folder``."""
    folder.mkdir()
    filler = [f"第{i}節 本集團於報告期內的一般經營事項，董事會已審閱並批准。" for i in range(1, 13)]
    (folder / "聯邦製藥2023年報.md").write_text(
        "\n\n".join([
            "聯邦製藥國際控股有限公司 2023 年年報", *filler[:6],
            "本集團的胰島素產品在國家集中採購中的市場份額持續提升，三代胰島素銷量增長百分之四十。",
            *filler[6:], "營業額為人民幣 137.2 億元，較去年增長 14.3%。",
        ]),
        encoding="utf-8",
    )  # fmt: skip
    (folder / "四方科技2019年度报告.md").write_text(
        "四方科技集团股份有限公司 2019 年年度报告。\n\n公司积极履行社会责任，开展员工培训和环境保护工作。",
        encoding="utf-8",
    )
    return folder


def test_a_report_printed_in_traditional_characters_is_found_and_quoted_for_a_question_in_either_script(
    service, tmp_path
):
    service.ingest([hong_kong_report(tmp_path / "zh")])
    for question in ("联邦制药三代胰岛素的市场份额有何变化？", "聯邦製藥三代胰島素的市場份額有何變化？"):
        hit = service.search(SearchRequest(query=question, k=1)).hits[0]
        assert hit.file == "聯邦製藥2023年報.md" and "市場份額" in hit.text, question
    answers = {
        q: service.answer(AskRequest(question=q, strategy="extractive"))
        for q in ("联邦制药的营业额是多少？", "聯邦製藥的營業額是多少？")
    }
    for question, answer in answers.items():
        assert "137.2" in answer.answer and "[1]" in answer.answer, (question, answer.answer)
        assert answer.sources[0].hit.file == "聯邦製藥2023年報.md"


@pytest.mark.slow
@pytest.mark.skipif(not ZH_REPORT.exists(), reason="needs ../shared/corpus (RAG_TEST_CORPUS)")
def test_a_question_typed_in_traditional_characters_ranks_a_simplified_reports_pages_as_in_simplified_ones(
    service, tmp_path
):
    """千味央厨's 26-page research report (zh_reports_dev): its evidence page for the question, and every other place,
    as for the question in simplified characters."""
    service.ingest([ZH_REPORT])
    (tmp_path / "notes.md").write_text(
        "四方科技集团股份有限公司 2019 年年度报告。公司积极履行社会责任。", encoding="utf-8"
    )
    service.ingest([tmp_path / "notes.md"])

    def pages(question: str) -> list[tuple[str, int]]:
        return [(h.file, h.page) for h in service.search(SearchRequest(query=question, k=5)).hits]

    simple = pages("千味央厨的三大新品牌分别针对哪些消费群体？各自的产品特点是什么？")
    assert (ZH_REPORT.name, 19) in simple  # its evidence page (zh_reports_dev: iflytek-train-83)
    assert pages("千味央廚的三大新品牌分別針對哪些消費羣體？各自的產品特點是什麼？") == simple
    answer = service.answer(AskRequest(question="千味央廚的模擬後廚實驗室是如何具體運作的？", strategy="extractive"))
    assert answer.sources and answer.sources[0].hit.file == ZH_REPORT.name and "未找到" not in answer.answer


def traditional_pdf(folder) -> "os.PathLike":
    """A 4-page annual report printed in traditional characters, as a Hong Kong company prints it: HTML printed to PDF
    by Chromium with the Noto CJK fonts (its cover, the chairman's statement, the balance sheet, the MD&A)."""
    filler = "".join(
        f"<p>第{i}節 本集團於報告期內的一般經營事項，董事會已審閱並批准相關議案。</p>" for i in range(1, 9)
    )
    pages = [
        "<h1>聯邦製藥國際控股有限公司</h1><h2>2023年年報</h2>",
        "<h2>主席報告</h2><p>本集團的胰島素產品在國家集中採購中的市場份額持續提升，三代胰島素銷量增長百分之四十。</p>",
        "<h2>合併資產負債表</h2><table><tr><td>資產總額</td><td>人民幣 23,456,789 千元</td></tr></table>",
        "<h2>管理層討論與分析</h2><p>營業額為人民幣 137.2 億元，較去年增長 14.3%，主要由於胰島素產品銷量增加。</p>",
    ]
    html = folder / "report.html"
    html.write_text(
        "<html><head><meta charset='utf-8'><style>body{font-family:'Noto Sans CJK TC',sans-serif}"
        " div{page-break-after:always}</style></head><body>"
        + "".join(f"<div>{page}{filler}</div>" for page in pages) + "</body></html>",
        encoding="utf-8",
    )  # fmt: skip
    pdf = folder / "聯邦製藥2023年報.pdf"
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return pdf


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="prints the PDF with Chromium (apt-get install chromium)")
def test_a_pdf_printed_in_traditional_characters_answers_a_question_in_simplified_ones(service, tmp_path):
    """Its pages are read by PDFium as printed; a simplified question finds each page and is answered by its lines:
    the balance sheet's row (its title read as 合并资产负债表), the reason the MD&A gives (主要由於)."""
    service.ingest([traditional_pdf(tmp_path)])
    for question, page, quoted in (
        ("联邦制药的资产总额是多少？", 3, "23,456,789"),
        ("联邦制药营业额增长的原因是什么？", 4, "主要由於"),
        ("联邦制药三代胰岛素的市场份额有何变化？", 2, "市場份額"),
    ):
        answer = service.answer(AskRequest(question=question, strategy="extractive"))
        assert answer.sources[0].hit.page == page and quoted in answer.answer, (question, answer.answer)
