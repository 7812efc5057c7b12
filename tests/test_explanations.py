"""A question asking for a reason gets the page that gives one: rag_app.retrieval.explanations (prompts/pages/
explanations.toml), a ranking of the best document's pages by their sentences giving a reason."""

from dataclasses import replace

import pytest
from pdfgen import write_pdf

from rag_app.errors import ConfigurationError
from rag_app.requests import SearchRequest
from rag_app.retrieval.explanations import Explanations, first_sentence

EXPLANATIONS = Explanations.load()


# questions whose first sentence asks for a reason (test_boosts: their rows name no statement)
REASON_QUESTIONS = (
    "Why did NIKE's gross margin decline in fiscal 2023?",
    "What drove JPMorgan's net interest income higher in Q2 2023?",
    "MGM Resorts Q2 2023: revenue was up 21% but operating income fell 84% - why?",
    "general mills fiscal 2020 pet segment operating profit up 46% - drivers",
    "Explain the decline in Walmart International's net sales in fiscal 2020.",
    "四方科技2019年主营业务毛利率下滑的原因是什么？",
    "惠威科技2019年末货币资金为什么增加了五成多？",
)


def test_questions_asking_for_a_reason_in_english_and_chinese():
    asks = EXPLANATIONS.asks
    for question in REASON_QUESTIONS:
        assert asks(question), question
    assert not asks("What was Nike's gross margin in fiscal 2023?")
    assert not asks("伊利股份2019年的营业收入是多少？")
    # a later sentence's "explain why" is a condition: the question asks for the figure
    assert not asks(
        "Does Corning have positive working capital based on FY2022 data? If working capital is not a useful or "
        "relevant metric for this company, then please state that and explain why."
    )
    assert first_sentence("Revenue was $3.5 billion. Why?") == "Revenue was $3.5 billion."
    assert first_sentence("营收为何下滑？请说明") == "营收为何下滑？"


def test_a_page_counts_its_sentences_that_give_a_reason():
    explaining = EXPLANATIONS.explaining
    assert explaining("Net interest income was up 44%, driven by higher rates. Deposits fell.") == 1
    assert explaining("Revenue rose primarily due to volume; margins fell as a result of mix.\nTotal 1,234") == 2
    assert explaining("报告期内营业收入下降，主要系销量减少所致。毛利率受原材料价格上涨影响下降。") == 2
    assert explaining("Net interest income 6,000 4,500\nInterest expense 3,000 1,500") == 0
    assert explaining("Revenue rose 4%, driven\nby price. U.S. sales fell 2% due to weather.") == 2  # lines wrap
    pages = {1: "Cover", 2: "Sales fell due to weather. Costs rose because of freight.", 3: "Up, driven by price."}
    read = []
    assert EXPLANATIONS.ranked("content-sha", lambda: read.append(1) or pages) == [2, 3]
    assert EXPLANATIONS.counts("content-sha", lambda: read.append(1) or pages) == {2: 2, 3: 1} and read == [1]  # kept


def test_what_asks_and_gives_a_reason_is_data(tmp_path):
    path = tmp_path / "explanations.toml"
    path.write_text("asked = ['\\bhow come\\b']\nphrases = ['\\bthanks to\\b']\n", encoding="utf-8")
    mine = Explanations.load(path)
    assert mine.asks("How come sales rose?") and not mine.asks("Why did sales rise?")
    assert mine.explaining("Sales rose thanks to price. Sales rose due to volume.") == 1
    (tmp_path / "broken.toml").write_text("asked = ['(']\nphrases = []\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="broken.toml"):
        Explanations.load(tmp_path / "broken.toml")


TABLE = (
    "Consolidated Statements of Income\n(In millions) Three months ended June 30, 2023 2022\n"
    "Interest income 9,012 6,104\nInterest expense 3,012 1,604\nNet interest income 6,000 4,500\n"
    "Provision for credit losses 600 300\nNet interest income after provision for credit losses 5,400 4,200"
)
FILLER = [
    "Item 4. Controls and Procedures. Management evaluated the effectiveness of disclosure controls and procedures "
    "as of June 30, 2023 and concluded they were effective.",
    "Item 1A. Risk Factors. There have been no material changes to the risk factors in our annual report.",
    "Item 2. Unregistered Sales of Equity Securities and Use of Proceeds. The Board authorized repurchases of common "
    "stock of up to $10 billion.",
    "Item 6. Exhibits. The exhibits listed in the index are filed or furnished with this quarterly report.",
    "Note 5. Leases. We lease branches, offices and equipment under operating leases expiring through 2040.",
]


def test_a_question_asking_for_a_reason_gets_the_page_that_gives_it(service, tmp_path):
    """The statements and the segment table print net interest income; the management's discussion says what drove
    it. By default that page comes first for "what drove ..."; without the ranking of pages giving reasons a page
    printing the figure did."""
    discussion = (  # lines wrapped as a PDF's are, mid-sentence
        "Management's Discussion and Analysis\nResults of operations. Noninterest revenue was $3.0 billion, down 3%,\n"
        "due to lower mortgage fees. Noninterest expense was $4.1 billion, up 5%, reflecting higher compensation\n"
        "and technology spending. The provision for credit losses was $600 million, primarily on card loans. NII\n"
        "was up 33%, driven by higher rates, partially offset by lower deposit balances. Headcount was 5,200."
    )
    highlights = (
        "Second quarter 2023 highlights\nAcme Bank reported net interest income of $6.0 billion for the second quarter "
        "of 2023,\nhigher than the $4.5 billion of the second quarter of 2022. Net interest income excluding markets "
        "was\n$5.8 billion. Net interest margin was 2.9%. Net income was $2.1 billion."
    )
    folder = tmp_path / "filings"
    write_pdf(folder / "Acme_Bank_2023Q2_10Q.pdf", [
        "Acme Bank Corporation\nQuarterly Report on Form 10-Q for the quarter ended June 30, 2023",
        TABLE,
        "Segment results\n(In millions) Consumer Banking Commercial Banking Total\nNet interest income 3,500 2,500 "
        "6,000\nNoninterest revenue 1,200 1,800 3,000\nNet interest income, prior year 2,700 1,800 4,500",
        "Selected quarterly data\nNet interest income 6,000 5,400 4,900 4,700 4,500\nNet interest margin 2.9% 2.7% "
        "2.5% 2.3% 2.1%\nNet interest income per share 2.01 1.81 1.64 1.57 1.50",
        highlights,
        discussion,
        *FILLER,
        "Note 9. Net interest income. Net interest income comprises interest income less interest expense; the "
        "components of net interest income are shown in the income statement.",
    ])  # fmt: skip
    write_pdf(folder / "Globex_report.pdf", ["Globex Incorporated\nAnnual Report", *FILLER])
    service.ingest([folder])
    question = "What drove Acme Bank's net interest income higher in the second quarter of 2023?"
    store = service.store(with_model=True)

    def first(retriever) -> tuple[str, int]:
        hit = retriever.search(SearchRequest(query=question, k=4).query, 4).hits[0]
        return hit.file, hit.page

    retriever = service.retriever(store)
    assert retriever.ranking.within_explanation_weight == 0.25 and retriever.explanations is EXPLANATIONS
    assert first(retriever) == ("Acme_Bank_2023Q2_10Q.pdf", 6)
    retriever.ranking = replace(retriever.ranking, within_explanation_weight=0.0)
    assert first(retriever) != ("Acme_Bank_2023Q2_10Q.pdf", 6)
    # the same words without asking for a reason: the pages are ranked as before
    figure = "What was Acme Bank's net interest income in the second quarter of 2023?"
    on, off = service.retriever(store), service.retriever(store)
    off.ranking = replace(off.ranking, within_explanation_weight=0.0)
    assert [h.page for h in on.search(figure, 10).hits] == [h.page for h in off.search(figure, 10).hits]
