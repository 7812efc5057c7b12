"""A report's formal pages (its tables of contents, its officers' certifications, its auditors' consents and letters:
prompts/pages/formalities.toml) name the company, the report and its period as questions do, and answer none of
them: they fall below every other page (RAG_RETRIEVAL_FORMAL_PAGES_LAST), unless the question asks for them."""

import pytest
from pdfgen import write_pdf

from rag_app.errors import ConfigurationError
from rag_app.requests import SearchRequest
from rag_app.retrieval.boosts import Formalities

FORMAL = Formalities.load()

# As PDFium prints them: Microsoft's 10-Q for 2023 Q1 (pages 2, 68, 70), 3M's 10-K for 2022 (page 246), a Chinese
# annual report's contents (北方华锦 2019, page 3)
CONTENTS = (
    "MICROSOFT CORPORATION\nFORM 10-Q\nFor the Quarter Ended December 31, 2022\nINDEX\nPage\n"
    "PART I. FINANCIAL INFORMATION\nItem 1. Financial Statements\na) Income Statements for the Three and Six Months "
    "Ended December 31, 2022 and 2021 3\nb) Comprehensive Income Statements 4\nc) Balance Sheets 5\n"
    "d) Cash Flows Statements 6\ne) Stockholders' Equity Statements 7\nf) Notes to Financial Statements 8\n"
    "g) Report of Independent Registered Public Accounting Firm 29\nItem 2. Management's Discussion and Analysis of "
    "Financial Condition and Results of Operations 30\nItem 3. Quantitative and Qualitative Disclosures About Market "
    "Risk 49\nItem 4. Controls and Procedures 50\nPART II. OTHER INFORMATION\nItem 1. Legal Proceedings 51\n"
    "Item 1A. Risk Factors 51\nItem 2. Unregistered Sales of Equity Securities and Use of Proceeds 63\n"
    "Item 6. Exhibits 64\nSIGNATURE 65"
)
CERTIFICATION = (
    "Exhibit 31.1\nCERTIFICATION\nI, Satya Nadella, certify that:\n1. I have reviewed this quarterly report on Form "
    "10-Q of Microsoft Corporation;\n2. Based on my knowledge, this report does not contain any untrue statement of a "
    "material fact or omit to state a material fact necessary to make the statements made, in light of the "
    "circumstances under which such statements were made, not misleading with respect to the period covered by this "
    "report;\n3. Based on my knowledge, the financial statements, and other financial information included in this "
    "report, fairly present in all material respects the financial condition, results of operations and cash flows"
)
LETTER = (
    "Exhibit 15.1\nJanuary 24, 2023\nThe Board of Directors and Stockholders of Microsoft Corporation\nOne Microsoft "
    "Way\nRedmond, WA 98052-6399\nWe are aware that our report dated January 24, 2023, on our review of the interim "
    "financial information of Microsoft Corporation and subsidiaries appearing in Microsoft Corporation's Quarterly "
    "Report on Form 10-Q for the quarter ended December 31, 2022, is incorporated by reference"
)
CONSENT = (
    "EXHIBIT 23\nCONSENT OF INDEPENDENT REGISTERED PUBLIC ACCOUNTING FIRM\nWe hereby consent to the incorporation by "
    "reference in the Registration Statements on Form S-8 of our report dated February 8, 2023 relating to the "
    "financial statements of 3M Company"
)
CHINESE_CONTENTS = "北方华锦化学工业股份有限公司 2019 年年度报告全文\n3\n目录\n" + "\n".join(
    f"{title} {'.' * 40} {page}"
    for title, page in [
        ("第一节 重要提示、目录和释义", 5),
        ("第二节 公司简介和主要财务指标", 8),
        ("第三节 公司业务概要", 12),
        ("第四节 经营情况讨论与分析", 14),
        ("第五节 重要事项", 30),
        ("第六节 股份变动及股东情况", 50),
    ]
)
# NVIDIA's 10-Q for 2023 Q1 (page 2): its entries end in dates before their page numbers, and a paragraph follows
DATED_CONTENTS = (
    "NVIDIA CORPORATION\nFORM 10-Q\nFOR THE QUARTER ENDED April 30, 2023\nTABLE OF CONTENTS\nPage\n"
    "PART I : FINANCIAL INFORMATION\nItem 1. Financial Statements (Unaudited)\n"
    "a) Condensed Consolidated Statements of Income for the three months ended April 30, 2023 and May 1, 2022 3\n"
    "b) Condensed Consolidated Statements of Comprehensive Income for the three months ended April 30, 2023 and\n"
    "May 1, 2022 4\nc) Condensed Consolidated Balance Sheets as of April 30, 2023 and January 29, 2023 5\n"
    "f) Notes to Condensed Consolidated Financial Statements 8\nItem 2. Management's Discussion and Analysis 23\n"
    "Item 3. Quantitative and Qualitative Disclosures About Market Risk 31\nItem 4. Controls and Procedures 31\n"
    "PART II : OTHER INFORMATION\nItem 1. Legal Proceedings 32\nItem 1A. Risk Factors 32\nItem 6. Exhibits 44\n"
    "Signature 45\nWHERE YOU CAN FIND MORE INFORMATION\n"
    + "Investors and others should note that we announce material financial information to our investors\n"
    * 8
)
# Not formal: a statement whose labels lead with dots to figures (Adobe's 10-K for 2015), a table of small figures
# (Microsoft's investments), an exhibit index that lists the certifications, and prose under a running header
STATEMENT = (
    "ADOBE SYSTEMS INCORPORATED\nCONSOLIDATED STATEMENTS OF CASH FLOWS\n(In thousands)\n"
    "Net income ........................................ $ 629,551 $ 268,395\n"
    + "\n".join(
        f"{label} {'.' * 30} {a} {b}"
        for label, a, b in [
            ("Depreciation, amortization and accretion", "339,473", "313,590"),
            ("Stock-based compensation", "335,859", "333,701"),
            ("Deferred income taxes", "(69,657)", "(26,089)"),
            ("Trade payables", "22,870", "6,211"),
            ("Accrued expenses", "(5,944)", "37,544"),
            ("Net cash provided by operating activities", "1,469,502", "1,287,482"),
        ]
    )  # fmt: skip
)
SMALL_FIGURES = "PART I\nItem 1\n(In millions)\n" + "\n".join(
    f"{label} Level {level} {a} {b} ({c} ) {d} {e} {f} 0"
    for label, level, a, b, c, d, e, f in [
        ("Foreign government bonds", 2, 498, 1, 24, 475, 0, 475),
        ("Mortgage- and asset-backed securities", 2, 824, 1, 39, 786, 0, 786),
        ("Corporate notes and bonds", 3, 120, 0, 0, 120, 0, 120),
        ("Municipal securities", 2, 285, 1, 18, 268, 7, 261),
        ("Municipal securities", 3, 103, 0, 16, 87, 0, 87),
        ("Derivatives, net", 2, 6, 0, 0, 6, 0, 6),
        ("Equity investments", 1, 9, 0, 0, 9, 0, 9),
        ("Total", 2, 12, 0, 0, 12, 0, 12),
    ]
)
EXHIBIT_INDEX = (
    "PART II\nItem 6\nITEM 6. EXHIBITS\n15.1 Letter regarding unaudited interim financial information\n"
    "31.1 Certification of Chief Executive Officer Pursuant to Section 302 of the Sarbanes-Oxley Act of 2002\n"
    "31.2 Certification of Chief Financial Officer Pursuant to Section 302 of the Sarbanes-Oxley Act of 2002"
)
# Lockheed Martin's 10-K for 2021 (page 113): an exhibit index's page, its entries wrapped over two lines or three
LISTED_EXHIBITS = "Table of Contents\n" + "\n".join(
    f"10.{n} Form of {title} under the Lockheed Martin Corporation 2011 Incentive Performance Award Plan\n"
    f"(incorporated by reference to Exhibit 10.{n - 16} to Lockheed Martin Corporation's Quarterly Report on Form 10-Q "
    "for the quarter ended March 29, 2020)."
    for n, title in [
        (17, "Retention Restricted Stock Unit Award Agreement"),
        (18, "2020 Annual Restricted Stock Unit Award Agreement"),
        (19, "Performance Stock Unit Award Agreement (2020 - 2022 Performance Period)"),
        (20, "Long Term Incentive Performance Award Agreement (2020 - 2022 Performance Period)"),
        (21, "2020 Incentive Performance Award Plan"),
        (22, "Restricted Stock Unit Award Agreement"),
    ]
)
HEADED_EXHIBITS = (
    "Table of Contents\nExhibit Number Exhibit Description Incorporated by Reference Filed Form File No.\n"
    "3.1 Restated Certificate of Incorporation 10-Q 000-49802 3.1\n3.2 Amended and Restated Bylaws 8-K 000-49802 3.1"
)
# Adobe's 10-K for 2017 (page 99, as PDFium prints it): Part III's items, whose answers the proxy statement holds, then
# the exhibit index starts at the foot of the page; the page keeps its place
PROSE_THEN_EXHIBITS = (
    "Table of Contents\n"
    "99\n"
    "Adobe is conducting an internal and external search to fill both roles and both Garrett and Dillon will be active participants in the\n"
    "search for and transition to their successors.\n"
    "Item 8.01. Other Events.\n"
    "On January 22, 2018, we issued a press release announcing updated financial targets for fiscal 2018. A copy of this press\n"
    "release is furnished and attached hereto as Exhibit 99.1.\n"
    "PART III\n"
    "ITEM 10. DIRECTORS, EXECUTIVE OFFICERS AND CORPORATE GOVERNANCE\n"
    "The information required by this Item 10 of Form 10-K that is found in our 2018 Proxy Statement to be filed with the SEC\n"
    "in connection with the solicitation of proxies for the Company’s 2018 Annual Meeting of Stockholders (“2018 Proxy Statement”)\n"
    "is incorporated herein by reference to our 2018Proxy Statement. The 2018Proxy Statement will be filed with the SEC within 120\n"
    "days after the end of the fiscal year to which this report relates. For information with respect to our executive officers, see “Executive\n"
    "Officers” at the end of Part I, Item 1 of this report.\n"
    "ITEM 11. EXECUTIVE COMPENSATION\n"
    "The information required by this Item 11 of Form 10-K is incorporated herein by reference to our 2018 Proxy Statement.\n"
    "ITEM 12. SECURITY OWNERSHIP OF CERTAIN BENEFICIAL OWNERS AND MANAGEMENT AND RELATED\n"
    "STOCKHOLDER MATTERS\n"
    "The information required by this Item 12 of Form 10-K is incorporated herein by reference to our 2018 Proxy Statement.\n"
    "ITEM 13. CERTAIN RELATIONSHIPS AND RELATED TRANSACTIONS, AND DIRECTOR INDEPENDENCE\n"
    "The information required by this Item13 of Form 10-K is incorporated herein by reference to our 2018 Proxy Statement.\n"
    "ITEM 14. PRINCIPALACCOUNTING FEES AND SERVICES\n"
    "The information required by this Item 14 of Form 10-K is incorporated herein by reference to our 2018 Proxy Statement.\n"
    "PART IV\n"
    "ITEM 15. EXHIBITS, FINANCIAL STATEMENT SCHEDULES\n"
    "1. Financial Statements. See Index to Consolidated Financial Statements in Part II, Item 8 of this Form 10-K.\n"
    "Incorporated by Reference**\n"
    "Exhibit\n"
    "Number Exhibit Description Form Filing Date\n"
    "Exhibit\n"
    "Number SEC File No.\n"
    "Filed\n"
    "Herewith\n"
    "3.1 Restated Certificate of Incorporation of Adobe Systems\n"
    "Incorporated\n"
    "8-K 4/26/11 3.3 000-15175\n"
    "3.2 Amended and Restated Bylaws 8-K 9/2/16 3.2 000-15175\n"
    "4.1 Specimen Common Stock Certificate 10-Q 6/25/14 4.1 000-15175\n"
    "4.2 Form of Indenture dated as of January 25, 2010 by and\n"
    "between Adobe Systems Incorporated and Wells Fargo\n"
    "Bank, National Association, as trustee\n"
    "S-3 2/26/16 4.1 333-209764\n"
    "4.3 Forms of Global Note for Adobe Systems Incorporated’s\n"
    "4.750% Notes due 2020, together with Form of Officer’s\n"
    "Certificate setting forth the terms of the Note\n"
    "8-K 1/26/10 4.1 000-15175"
)
# Nike's 10-K for 2023 (page 103)
SIGNATURES = (
    "SIGNATURES\nPursuant to the requirements of Section 13 or 15(d) of the Securities Exchange Act of 1934, the "
    "registrant has duly caused this report to be signed on its behalf by the undersigned, thereunto duly authorized.\n"
    "NIKE, INC.\nBy: /s/ JOHN J. DONAHOE II\nJohn J. Donahoe II\nPresident and Chief Executive Officer\n"
    "Date: July 20, 2023"
)
MATURITIES = "Future lease payments\n(In millions)\n" + "\n".join(f"{y} $ {a}" for y, a in
    [(2021, 25), (2022, 30), (2023, 41), (2024, 44), (2025, 52), (2026, 60), (2027, 71), (2028, 80), (2029, 95)])  # fmt: skip
PROSE = (
    "Table of Contents\nNOTE 10 — DEBT\nThe components of debt were as follows. In 2022 we issued $2.0 billion of "
    "notes due 2032 and repaid $1.5 billion of notes due 2023. Interest expense was $500 million."
)


def test_formal_pages_are_told_by_their_opening_or_their_page_numbers():
    kind = FORMAL.kind_of
    assert kind(CONTENTS) == kind(DATED_CONTENTS) == "table of contents"
    assert kind(CHINESE_CONTENTS) == "table of contents"
    assert kind(CERTIFICATION) == "certification"
    assert kind(LETTER) == kind(CONSENT) == "auditors' consent or letter"
    assert kind(LISTED_EXHIBITS) == kind(HEADED_EXHIBITS) == "exhibit index"
    assert kind(SIGNATURES) == "signatures"
    # a 10-Q's three exhibits (the certifications) under its item's heading, and prose whose foot starts the index
    for page in (STATEMENT, SMALL_FIGURES, MATURITIES, EXHIBIT_INDEX, PROSE, PROSE_THEN_EXHIBITS):
        assert kind(page) is None, page[:60]


def test_a_question_asking_for_a_kind_keeps_its_pages():
    asked = FORMAL.asked_in
    assert asked("Who certified Microsoft's 10-Q for Q1 2023?") == {"certification"}
    assert asked("Which firm audits Microsoft, per its auditors' consent?") == {"auditors' consent or letter"}
    assert asked("What is on the table of contents?") == {"table of contents"}
    assert asked("年报的目录有哪些章节？") == {"table of contents"}
    assert "exhibit index" in asked("Which exhibits did Lockheed Martin file with its 2021 10-K?")
    assert asked("Who signed Nike's 10-K for fiscal 2023?") == {"signatures"}
    assert asked("Who sits on Nike's board of directors?") == {"signatures"}
    assert asked("What details were provided about changes in Microsoft's debt in the Q1 2023 10-Q?") == frozenset()


def test_formal_pages_go_after_the_others_each_in_its_order():
    texts = {("a", 1): CONTENTS, ("a", 2): PROSE, ("a", 3): CERTIFICATION, ("b", 1): LETTER, ("b", 2): STATEMENT}
    read = []

    def text(page):
        read.append(page)
        return texts[page]

    ranked = [("a", 3), ("a", 2), ("b", 1), ("a", 1), ("b", 2)]
    assert FORMAL.last("What changed in Microsoft's debt?", ranked, text) == [
        ("a", 2), ("b", 2), ("a", 3), ("b", 1), ("a", 1),
    ]  # fmt: skip
    # a kind the question asks for keeps its place
    assert FORMAL.last("Who certified the report?", ranked, text) == [("a", 3), ("a", 2), ("b", 2), ("b", 1), ("a", 1)]
    assert sorted(read) == sorted(ranked)  # each page read once, then kept
    read.clear()
    fresh = [("c", 1), ("c", 2), ("c", 3)]
    texts.update({("c", 1): CERTIFICATION, ("c", 2): PROSE, ("c", 3): CONTENTS})
    # once 1 page that stays is found, the pages after it are not read: they follow it, then the formal ones
    assert FORMAL.last("debt?", fresh, text, keep=1) == [("c", 2), ("c", 3), ("c", 1)] and read == fresh[:2]


def test_the_kinds_are_data_and_a_broken_file_says_which(tmp_path):
    broken = tmp_path / "formalities.toml"
    broken.write_text("opening_chars = 300\n[kinds.x]\nasked = ['(']\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="formalities.toml"):
        Formalities.load(broken)


ACME = [
    "Acme Corporation\nAnnual Report on Form 10-K for the fiscal year 2022",
    CONTENTS.replace("MICROSOFT CORPORATION", "ACME CORPORATION").replace("10-Q", "10-K"),
    "NOTE 10 - DEBT\nIn fiscal 2022 Acme issued $2.0 billion of senior notes due 2032 and repaid $1.5 billion of "
    "notes due 2023; the weighted average interest rate on its borrowings rose to 4.1%.",
    "Results of operations. Revenue grew 7% on stronger demand for industrial products in every region.",
    "Exhibit 31.1\nCERTIFICATION\nI, Jane Roe, certify that:\n1. I have reviewed this annual report on Form 10-K of "
    "Acme Corporation for fiscal 2022;\n2. Based on my knowledge, this report does not contain any untrue statement "
    "of a material fact; the financial statements and other financial information in this report fairly present "
    "in all material respects the financial condition of Acme Corporation.",
    "Exhibit 23\nCONSENT OF INDEPENDENT REGISTERED PUBLIC ACCOUNTING FIRM\nWe consent to the incorporation by "
    "reference of our report on the financial statements of Acme Corporation in its annual report on Form 10-K "
    "for fiscal 2022.",
]
QUESTION = "What does Acme Corporation's annual report on Form 10-K for fiscal 2022 say about its debt?"


@pytest.mark.parametrize("within", ["add", "slots"])
def test_a_question_gets_the_note_before_the_certification_naming_its_report(service, settings, tmp_path, within):
    """The certification and the auditors' consent repeat the question's company, report and year; the debt note
    answers it. By default the formal pages fall below it, and they did not without the lever."""
    write_pdf(tmp_path / "filings" / "Acme_2022_10K.pdf", ACME)
    write_pdf(tmp_path / "filings" / "Globex_2022_10K.pdf", ["Globex Incorporated\nAnnual Report 2022", ACME[3]])
    service.ingest([tmp_path / "filings"])
    settings.retrieval_within = within

    def ranked(question: str) -> list[tuple[str, int]]:
        return [(h.file, h.page) for h in service.search(SearchRequest(query=question, k=8)).hits]

    formal = [("Acme_2022_10K.pdf", page) for page in (2, 5, 6)]
    note = ("Acme_2022_10K.pdf", 3)
    assert settings.retrieval_formal_pages_last is True
    pages = ranked(QUESTION)
    assert sorted(pages[-3:]) == formal and pages.index(note) < 3, pages  # the formal pages below every other
    settings.retrieval_formal_pages_last = False
    pages = ranked(QUESTION)
    assert min(pages.index(p) for p in formal) < pages.index(note), pages  # without the lever one came first
    settings.retrieval_formal_pages_last = True
    pages = ranked("Who certified Acme Corporation's annual report on Form 10-K for fiscal 2022?")
    assert pages.index(formal[1]) < 2 and sorted(pages[-2:]) == [formal[0], formal[2]], pages  # asked for: kept
