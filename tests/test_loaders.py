"""Loading real PDFs (and text files) into pages with exact 1-based page numbers."""

import itertools
import re
from pathlib import Path

import pytest
from conftest import DOCUGAMI, FINGLM, ODD
from pdfgen import write_pdf

from rag_app.ingestion.loaders import file_kind, load_document
from rag_app.text.clean import is_table_row

pytestmark = pytest.mark.usefixtures("corpus")


def page_text(doc, number: int) -> str:
    return next(p.text for p in doc.pages if p.number == number)


def test_page_numbers_are_one_based_and_match_the_pdf():
    doc = load_document(DOCUGAMI / "2023 Q2 AAPL.pdf")
    assert doc.error is None and doc.total_pages == 28 == len(doc.pages)
    assert [p.number for p in doc.pages] == list(range(1, 29))
    assert page_text(doc, 14).startswith("Note 5 – Income Taxes\nEuropean Commission State Aid Decision")
    assert "Commercial Paper" in page_text(doc, 14)
    assert "State Aid Decision" not in page_text(doc, 13)


@pytest.mark.slow  # pypdf on a large filing; tests/test_extraction.py reads 2023 Q1 MSFT.pdf so, in a parser process
def test_filings_with_huge_arrays_open_with_raised_limits():
    doc = load_document(DOCUGAMI / "2023 Q2 MSFT.pdf", parser="pypdf")
    assert doc.error is None
    assert doc.total_pages > 50 and not doc.failed_pages
    assert "MICROSOFT CORPORATION" in doc.pages[0].text


def test_encrypted_pdf_needs_its_password():
    path = ODD / "pypdf" / "encryption__r4-aes-user-password.pdf"
    assert load_document(path).error == ("encrypted: password required (give it with --password or RAG_PDF_PASSWORDS)")
    assert load_document(path, ["nope"]).error == "encrypted: wrong password"
    opened = load_document(path, ["nope", "asdfzxcv"])
    assert opened.error is None and opened.pages[0].text


def test_empty_user_password_is_tried_first():
    doc = load_document(ODD / "pypdf" / "encryption__r2-empty-password.pdf")
    assert doc.error is None and doc.total_pages >= 1


def test_damaged_file_is_retried_in_lenient_mode():
    doc = load_document(ODD / "pdfjs" / "basicapi.pdf", parser="pypdf")  # strict pypdf rejects a duplicate key
    assert doc.error is None and "Table Of Content" in doc.pages[0].text


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("qpdf/bad1.pdf", "not a PDF: no %PDF- header and no PDF objects"),
        ("qpdf/pages-loop.pdf", "damaged: page tree is cyclic or nested too deep"),
        ("qpdf/xref-range.pdf", "damaged: no usable cross-reference table"),
        ("qpdf/bad7.pdf", "damaged: malformed structure the parser cannot read (AttributeError)"),
    ],
)
def test_broken_files_get_a_one_line_reason(name, reason):
    assert load_document(ODD / name, parser="pypdf").error == reason


def test_auto_parser_reads_files_pypdf_cannot_open():
    assert load_document(ODD / "qpdf" / "xref-range.pdf", parser="pypdf").error
    recovered = load_document(ODD / "qpdf" / "xref-range.pdf")
    assert recovered.error is None and recovered.pages[0].text == "Potato"
    assert load_document(ODD / "qpdf" / "bad1.pdf").error == "not a PDF: no %PDF- header and no PDF objects"


@pytest.mark.parametrize("parser", ["pdfium", "pypdf"])
def test_both_parsers_open_encrypted_files_with_the_password(parser):
    path = ODD / "pypdf" / "encryption__r6-both-passwords.pdf"
    assert load_document(path, parser=parser).error.startswith("encrypted: password required")
    assert load_document(path, ["wrong"], parser=parser).error == "encrypted: wrong password"
    assert load_document(path, ["foo"], parser=parser).pages[0].text


def test_pdfium_and_pypdf_extract_the_same_words():
    fast, reference = (load_document(DOCUGAMI / "2023 Q2 AAPL.pdf", parser=p) for p in ("pdfium", "pypdf"))
    for a, b in zip(fast.pages, reference.pages, strict=True):
        words_a, words_b = set(re.findall(r"\w+", a.text.lower())), set(re.findall(r"\w+", b.text.lower()))
        assert len(words_a & words_b) / max(1, len(words_a | words_b)) > 0.97


def test_empty_and_unsupported_files(tmp_path):
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04 not really")
    assert load_document(tmp_path / "empty.pdf").error == "empty file"
    assert load_document(tmp_path / "notes.docx").error == (
        "unsupported file type '.docx': rag_app reads PDF, .txt and .md"
    )
    assert load_document(tmp_path / "missing.pdf").error.startswith("cannot read file")


def test_pages_without_text_are_kept_and_counted(tmp_path):
    path = write_pdf(tmp_path / "scan.pdf", ["a real text page", None, None])
    doc = load_document(path)
    assert doc.total_pages == 3 and doc.empty_pages == [2, 3]


def test_pdf_with_unusual_extension_is_sniffed(tmp_path):
    path = write_pdf(tmp_path / "report.pdfg", ["sniffed by content"])
    assert file_kind(path, path.read_bytes()) == "pdf"
    assert load_document(path).pages[0].text == "sniffed by content"


def test_text_and_markdown_files(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nSome  text\fSecond page", encoding="utf-8")
    (tmp_path / "zh.txt").write_bytes("净利润为一亿元。".encode("gb18030"))
    md = load_document(tmp_path / "a.md")
    assert [(p.number, p.text) for p in md.pages] == [(1, "# Title\nSome text"), (2, "Second page")]
    assert load_document(tmp_path / "zh.txt").pages[0].text == "净利润为一亿元。"


def test_chinese_report_reads_as_normal_chinese():
    path = next(FINGLM.glob("*四方科技*"))
    doc = load_document(Path(path))
    assert doc.error is None and doc.total_pages == 156
    page8 = page_text(doc, 8)
    assert (
        "公司主营业务是食品冷冻设备及罐式集装箱的研发、生产和销售。报告期内，公司主营业务范围未发生重大变化。" in page8
    )
    assert "四方科技集团股份有限公司" in page_text(doc, 4)
    cjk = "[\u4e00-\u9fff，。、；：（）]"
    # a line break between Chinese characters is left only where a table row starts its line
    breaks = [
        (before, line)
        for p in doc.pages
        for before, line in itertools.pairwise(p.text.split("\n"))
        if re.search(f"{cjk}$", before) and re.match(cjk, line)
    ]
    assert all(is_table_row(line) for _, line in breaks), "line breaks between Chinese characters remain"
    assert "负债合计 176,691,681.69 154,564,376.98" in page_text(doc, 63).split("\n")
