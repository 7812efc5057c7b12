"""A question naming a section a page opens with gets that page: the financial statements are one section set
(prompts/sections/financial_statements.toml), given to a generic page boost (RAG_RETRIEVAL_SECTION_WEIGHT)."""

import pytest
from pdfgen import write_pdf
from test_explanations import REASON_QUESTIONS

from rag_app.errors import ConfigurationError
from rag_app.requests import SearchRequest
from rag_app.retrieval.boosts import SectionBoost, SectionSet, section_boosts
from rag_app.retrieval.fusion import rank_pages

NARRATIVE = [
    "Liquidity and capital resources. Our capital expenditure in 2019 supported new plants and capacity.",
    "Capital expenditure is expected to rise next year as we expand; capital spending discipline remains a priority.",
    "Management reviews capital expenditure plans with the board each quarter of the year.",
]
STATEMENTS = SectionSet.load("financial_statements")
SEGMENTS = SectionSet.load("segments")
PARTS = SectionSet.load("report_parts")


def test_questions_name_statements_as_analysts_do():
    named = STATEMENTS.named_in
    assert named("Base your judgments on the information provided primarily in the balance sheet.") == {"balance sheet"}
    assert named("Using the P&L and the statement of cash flows, what is EBITDA less capex?") == {
        "income statement",
        "cash flow statement",
    }
    assert named("Relying on the statement of financial position and the statements of operations") == {
        "balance sheet",
        "income statement",
    }
    assert named("根据合并现金流量表，公司2020年的经营活动现金流量净额是多少？") == {"cash flow statement"}
    assert named("What drove operating margin change in FY2022?") == frozenset()


def test_a_page_opens_a_section_when_its_opening_carries_one_title():
    opening = STATEMENTS.opening_section
    assert opening("Table of Contents\nAMAZON.COM, INC.\nCONSOLIDATED STATEMENTS OF OPERATIONS\n") == "income statement"
    assert opening("SQUARE,\nINC.\nCONSOLIDATED\nBALANCE\nSHEETS\n(In thousands)") == "balance sheet"
    assert opening("Consolidated Statement of Cash Flows\nPepsiCo, Inc.") == "cash flow statement"
    assert opening("合并资产负债表\n2020年12月31日\n编制单位") == "balance sheet"
    assert opening("2、或有事项（1）资产负债表日存在的重要或有事项") is None  # the balance sheet *date*
    assert opening("PART I\nItem 1\nCOMPREHENSIVE INCOME STATEMENTS\n(In millions)") is None
    # an index listing every statement is not one; neither is comprehensive income, nor a title deep in the page
    assert opening("Index\nConsolidated Balance Sheets 52\nConsolidated Statements of Income 53") is None
    assert opening("Consolidated Statements of Comprehensive Income\n(In millions)") is None
    assert opening("x" * STATEMENTS.opening_chars + " Consolidated Balance Sheets") is None
    # a PDF whose spacing splits a title's words (3M's 10-K for 2018) still opens its statements
    assert opening("Table of Contents\n3M Company and Subsidiaries\nConsolidated Balance Shee t\nAt December 31") == (
        "balance sheet"
    )
    assert opening("3M Company and Subsidiaries\nConsolidated Statement of Incom e\nYears ended") == "income statement"
    assert opening("3M Company\nConsolidated Statement of Comprehensive Incom e\nYears ended") is None


def test_section_pages_of_the_best_documents_are_boosted_in_the_fusions_order():
    ranked = [("a", 7), ("b", 3), ("a", 60), ("c", 1)]
    cash_flows = {"a": [52, 60], "b": [40], "c": [9]}

    def openings(sha, chars):
        return {p: ("Consolidated Statements of Cash Flows" if p in cash_flows[sha] else "Notes") for p in range(1, 70)}

    boost = SectionBoost(STATEMENTS, weight=1.0, documents=2, rrf_k=10)
    boosts = boost("Rely on the cash flow statement.", ranked, openings)
    # ("a", 60) was ranked by the fusion: first; then the unranked ones by document order and page; c is not routed
    assert list(boosts) == [("a", 60), ("a", 52), ("b", 40)]
    assert boosts[("a", 60)] == 1.0 / 11 and boosts[("b", 40)] == 1.0 / 13
    assert boost("What was the revenue?", ranked, openings) == {}  # names no section: no boost


def test_a_question_asking_for_a_statements_row_gets_that_statement_in_its_best_document():
    items = STATEMENTS.items_in
    assert items("What is the year end FY2018 amount of accounts payable for MGM Resorts?") == {"balance sheet"}
    assert items("How much did 3M spend on capex in 2022?") == {"cash flow statement"}
    assert items("2019年公司的营业收入是多少？") == {"income statement"}
    # measures made of a statement's rows: capital intensity of property and capex, the activities of cash flows
    assert items("Is 3M a capital-intensive business?") == {"balance sheet", "cash flow statement"}
    assert items("Among operations, investing, and financing activities, which brought in the most?") == {
        "cash flow statement"
    }
    assert items("What drove the change in 3M's market share?") == frozenset()  # no row named: no statement


def test_a_question_asking_for_a_reason_gets_no_statement_for_its_rows():
    """ "Why did Nike's gross margin fall?" is answered by the MD&A's discussion, not by the income statement that
    prints the margin: a question whose first sentence asks for a reason takes no row's statement (prompts/sections/
    financial_statements.toml's ``reasons``: prompts/pages/explanations.toml's ``asked``); one that names the statement
    still gets it."""
    items = STATEMENTS.items_in
    assert items("What was Nike's gross margin in fiscal 2023?") == {"income statement"}
    for question in REASON_QUESTIONS:
        assert items(question) == frozenset(), question
    # a later sentence's "explain why" is a condition: the question still asks for the figure
    assert items(
        "Does Corning have positive working capital based on FY2022 data? If working capital is not a useful or "
        "relevant metric for this company, then please state that and explain why."
    ) == {"balance sheet"}
    ranked = [("a", 7)]

    def openings(sha, chars):
        return {p: ("Consolidated Statements of Income" if p == 40 else "Notes") for p in range(1, 70)}

    boost = SectionBoost(STATEMENTS, weight=1.0, documents=2, item_weight=0.5, item_documents=1)
    assert boost("Why did gross margin fall in 2023?", ranked, openings) == {}
    assert boost("Why did gross margin fall? Rely on the income statement.", ranked, openings) == {("a", 40): 1 / 11}
    ranked = [("a", 7), ("b", 3)]
    sheets = {"a": [50], "b": [40]}

    def openings(sha, chars):
        return {p: ("Consolidated Balance Sheets" if p in sheets[sha] else "Notes") for p in range(1, 70)}

    question = "What were MGM's accounts payable at year end?"
    assert SectionBoost(STATEMENTS)(question, ranked, openings) == {}  # off unless its weight is set
    boost = SectionBoost(STATEMENTS, weight=1.0, documents=2, item_weight=0.5, item_documents=1)
    assert boost(question, ranked, openings) == {("a", 50): 0.5 / 11}  # the best document only, at its weight
    # a question naming the statement itself is boosted as before, in the two best documents
    assert boost("Rely on the balance sheet: accounts payable?", ranked, openings) == {
        ("a", 50): 1 / 11,
        ("b", 40): 1 / 12,
    }
    assert section_boosts("financial_statements", 0.0, 0.0) == []


def test_a_question_asking_for_a_row_gets_its_statement_by_default(service, settings, tmp_path):
    """ "Working capital" names no statement; the balance sheet's rows make it. The narrative pages share the
    question's words, the balance sheet only its figures: by default (RAG_RETRIEVAL_SECTION_ITEM_WEIGHT=1) the
    balance sheet of the question's filing comes first, and it did not without the lever."""
    ingest_beside_another_company(service, tmp_path, "Acme_2022_10K.pdf", [
        "Acme Corporation\nAnnual Report on Form 10-K for 2022",
        "Liquidity. Our working capital needs in 2022 were met by operating cash flows; working capital remains a "
        "focus of management, and we expect working capital to fund our plans.",
        "Risk factors. A shortfall of working capital could limit our growth in 2022 and later years.",
        "Consolidated Balance Sheets\n(In millions) 2022 2021\nTotal current assets 4,250 3,906\n"
        "Total current liabilities 4,723 3,975\nProperty, plant and equipment 24,121 22,560",
    ])  # fmt: skip
    question = "Does Acme have positive working capital based on FY2022 data?"

    assert settings.retrieval_section_item_weight == 1.0
    assert first_hit(service, question) == ("Acme_2022_10K.pdf", 4)
    settings.retrieval_section_item_weight = 0.0
    assert first_hit(service, question) != ("Acme_2022_10K.pdf", 4)


def test_a_question_naming_segments_means_the_results_by_segment():
    named, opening = SEGMENTS.named_in, SEGMENTS.opening_section
    assert named("Which of JPM's business segments had the lowest net revenue in 2021 Q1?") == {"segment results"}
    assert named("Which segment has dragged down 3M's growth?") == {"segment results"}
    assert named("公司各报告分部的收入是多少？") == {"segment results"}
    assert named("What was the segmentation fault?") == frozenset()  # a whole word only
    assert named("凌云股份的德国WAG业务板块有哪些客户？") == frozenset()  # 板块, 业务: business lines, loosely
    assert opening("Segment results – managed basis\nThe following tables summarize the Firm's results") == (
        "segment results"
    )
    assert opening("NOTE 18. Business Segments\nResults by Business Segment (Millions)") == "segment results"
    assert opening("Worldwide Sales Change\nBy Business Segment\nOrganic sales") == "segment results"
    assert opening("十五、分部信息\n1、报告分部的确定依据") == "segment results"
    assert opening("Liquidity and capital resources. Our segments invest") is None


def test_segments_and_report_parts_are_default_section_sets_beside_the_statements(settings):
    boosts = section_boosts(settings.retrieval_section_sets, 1.0)
    assert [type(b) for b in boosts] == [SectionBoost] * 3
    assert [b.sections.name for b in boosts] == ["financial_statements", "segments", "report_parts"]


def test_a_report_part_is_found_where_its_heading_starts_anywhere_on_a_page():
    """A 10-K's "Item 3. Legal Proceedings" follows Item 2 halfway down a page; a table of contents lists it
    with every other item and is no such page; the phrase "legal proceedings" in running text is no heading."""
    named = PARTS.named_in
    assert named("Has Pepsico reported any materially important ongoing legal battles from FY2022?") == {
        "legal proceedings"
    }
    assert named("Is Acme facing any lawsuits or litigation?") == {"legal proceedings"}
    assert named("公司报告期内有哪些重大诉讼？") == {"legal proceedings"}
    assert named("Looking at VaR, did the risk that JPM faced decrease?") == {"market risk"}
    assert named("What was the value of the vaRious assets?") == frozenset()  # VaR in its own case only
    assert named("What was the operating margin?") == frozenset()
    pages = {
        1: "Table of Contents Item 1. Business 3 Item 1A. Risk Factors 9 Item 1B. Unresolved Staff Comments 20 "
        "Item 2. Properties 21 Item 3. Legal Proceedings 21 Item 4. Mine Safety Disclosures 22 Item 5. Market 23",
        2: "Item 2. Properties. Our principal executive office is owned. Item 3. Legal Proceedings. We and our "
        "subsidiaries are party to a variety of litigation. Item 4. Mine Safety Disclosures. Not applicable.",
        3: "We may be subject to legal proceedings and claims in the ordinary course of business.",
        4: "Item 7A. Quantitative and Qualitative Disclosures About Market Risk. Our value at risk was $40 million.",
        5: "十、重大诉讼、仲裁事项 本报告期公司无重大诉讼、仲裁事项。",
    }
    read = []
    found = PARTS.page_sections("content-sha", lambda: read.append(1) or pages)
    assert found == {2: {"legal proceedings"}, 4: {"market risk"}, 5: {"legal proceedings"}}
    assert PARTS.page_sections("content-sha", lambda: read.append(1) or pages) == found and read == [1]  # kept


def test_a_question_about_legal_battles_gets_the_page_where_the_legal_proceedings_begin(service, settings, tmp_path):
    """Vague words (reported, legal, material) rank the certifications of a filing's exhibits above the page
    where its legal proceedings begin, halfway down, after its properties; report_parts finds that heading."""
    certification = (
        "EXHIBIT 31 CERTIFICATION I certify that: 1. I have reviewed this annual report; 2. Based on my knowledge, "
        "this report does not contain any untrue statement of a material fact; all legal requirements were met "
        "and any fraud, whether or not material, was reported to the auditors."
    )
    ingest_beside_another_company(service, tmp_path, "Acme_2022_10K.pdf", [
        "Acme Corporation\nAnnual Report on Form 10-K for 2022",
        "Item 2. Properties.\nOur principal executive office in Springfield and our plants are owned or leased and "
        "are suitable and adequate for our current operations. We believe our facilities are in good condition.\n"
        "Item 3. Legal Proceedings.\nWe and our subsidiaries are party to a variety of litigation, claims and "
        "investigations; we do not expect them to have an adverse effect on our financial condition.",
        certification,
        certification.replace("EXHIBIT 31", "EXHIBIT 32"),
    ])  # fmt: skip
    question = "Has Acme reported any materially important ongoing legal battles from FY2022?"

    assert "report_parts" in settings.retrieval_section_sets
    assert first_hit(service, question) == ("Acme_2022_10K.pdf", 2)
    settings.retrieval_section_sets = "financial_statements,segments"
    assert first_hit(service, question) != ("Acme_2022_10K.pdf", 2)


def test_a_boosted_page_without_candidates_is_cited_by_its_first_chunk():
    scores = {"s:1:0": 0.05, "s:1:90": 0.04, "s:2:0": 0.03}
    page = lambda c: c.rsplit(":", 1)[0]  # noqa: E731
    assert rank_pages(scores, page, 3) == ["s:1:0", "s:2:0"]
    boosts = {"s:9": (0.09, "s:9:0"), "s:2": (0.03, "s:2:0")}  # s:2 now 0.06, above s:1
    assert rank_pages(scores, page, 3, boosts) == ["s:9:0", "s:2:0", "s:1:0"]


def test_section_sets_are_data_and_a_missing_one_says_which_exist(tmp_path):
    (tmp_path / "contracts.toml").write_text(
        "opening_chars = 80\n[sections.\"termination\"]\ntitles = ['termination(?: clause)?']\n", encoding="utf-8"
    )
    contracts = SectionSet.load("contracts", tmp_path)
    assert contracts.named_in("When can the lease be ended? See the termination clause.") == {"termination"}
    assert contracts.opening_section("Termination\nEither party may...") == "termination"
    assert section_boosts("financial_statements", 0.0) == []  # weight 0: off
    with pytest.raises(ConfigurationError, match="known: financial_statements"):
        SectionSet.load("nope")


def ingest_beside_another_company(service, tmp_path, name: str, pages: list[str]) -> None:
    """Acme's filing ``name`` with ``pages``, and Globex's report of the same narrative pages, in one collection."""
    folder = tmp_path / "filings"
    write_pdf(folder / name, pages)
    write_pdf(folder / "Globex_report.pdf", ["Globex Incorporated\nAnnual Report", *NARRATIVE])
    service.ingest([folder])


def first_hit(service, question: str) -> tuple[str, int]:
    hit = service.search(SearchRequest(query=question, k=4)).hits[0]
    return hit.file, hit.page


def test_a_question_naming_the_statement_gets_its_page(service, settings, tmp_path):
    """The narrative pages share the question's words; only the cash flow statement holds the figure."""
    ingest_beside_another_company(service, tmp_path, "Acme_2019_10K.pdf", [
        "Acme Corporation\nAnnual Report on Form 10-K for 2019",
        *NARRATIVE,
        "Consolidated Balance Sheets\n(In millions)\nTotal current assets 9,829\nProperty, plant and equipment 4,915",
        "Consolidated Statements of Cash Flows\n(In millions) 2019 2018\nNet income 5,363 4,869\n"
        "Purchases of property, plant and equipment (1,577) (1,373)\nDividends paid (3,193) (2,803)",
    ])  # fmt: skip
    question = "What is Acme's FY2019 capital expenditure? Rely on the details shown in the cash flow statement."

    def ranked():
        return [(h.file, h.page) for h in service.search(SearchRequest(query=question, k=4)).hits]

    assert settings.retrieval_section_weight == 1.0  # on by default
    settings.retrieval_section_weight = settings.retrieval_section_item_weight = 0.0
    assert ranked()[0] != ("Acme_2019_10K.pdf", 6)  # without the levers the narrative pages come first
    settings.retrieval_section_item_weight = 1.0  # the row it asks for ("capital expenditure") alone finds it too
    assert ranked()[0] == ("Acme_2019_10K.pdf", 6)
    settings.retrieval_section_item_weight = 0.0
    settings.retrieval_section_weight = 1.0
    hits = service.search(SearchRequest(query=question, k=4)).hits
    assert (hits[0].file, hits[0].page) == ("Acme_2019_10K.pdf", 6), ranked()
    assert hits[0].text.startswith("Consolidated Statements of Cash Flows") and 0 < hits[0].score <= 1
    assert len({(h.file, h.page) for h in hits}) == len(hits)  # still one hit per page
    # a question naming no statement is ranked as before
    settings.retrieval_section_weight = 0.0
    plain = [
        (h.file, h.page) for h in service.search(SearchRequest(query="What was Acme's capital expenditure?", k=4)).hits
    ]
    settings.retrieval_section_weight = 1.0
    assert [
        (h.file, h.page) for h in service.search(SearchRequest(query="What was Acme's capital expenditure?", k=4)).hits
    ] == plain


def test_a_question_about_segments_gets_the_segment_table(service, settings, tmp_path):
    """The narrative pages share the question's words; the table of results by segment holds the answer."""
    ingest_beside_another_company(service, tmp_path, "Acme_2021Q1_10Q.pdf", [
        "Acme Corporation\nQuarterly Report on Form 10-Q for the first quarter of 2021",
        "Our business segments. Net revenue of each business segment depends on markets; the lowest net revenue "
        "of a quarter is no guide to the next. Segment managers review net revenue monthly.",
        "Each of our business segments reports net revenue and expenses to the chief operating decision maker.",
        "Segment results\nThree months ended March 31, 2021 (in millions)\nConsumer 12,509\nWholesale 14,605\n"
        "Commercial 2,323\nAsset Management 4,083\nCorporate (473)",
    ])  # fmt: skip
    question = "Which of Acme's business segments had the lowest net revenue in 2021 Q1?"

    settings.retrieval_section_sets = "financial_statements"
    assert first_hit(service, question) != (
        "Acme_2021Q1_10Q.pdf",
        4,
    )  # without the segment set the narrative pages come first
    settings.retrieval_section_sets = "financial_statements,segments"
    assert first_hit(service, question) == ("Acme_2021Q1_10Q.pdf", 4)


def test_page_openings_are_forgotten_with_their_document(service, tmp_path):
    folder = tmp_path / "one"
    write_pdf(folder / "report.pdf", ["Consolidated Balance Sheets\nCash 1,980", "Notes to the statements"])
    service.ingest([folder])
    store = service.store(with_model=True)
    document = store.get_document("report.pdf")
    openings = store.page_openings(document, STATEMENTS.opening_chars)
    assert sorted(openings) == [1, 2] and STATEMENTS.opening_section(openings[1]) == "balance sheet"
    service.delete_document("report.pdf")
    assert service.store(with_model=True).page_openings(document, STATEMENTS.opening_chars) == {}
