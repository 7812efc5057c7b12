"""The period a question asks about picks the report: "the most recent 10-Q", "Apple's latest quarter", 最新一期
(without a year) the report whose period ends last; "the first quarter of 2023", 第三季度 the report a file name
calls Q1 or Q3 (rag_app.retrieval.documents, rag_app.text.terms)."""

from pdfgen import write_pdf

from rag_app.records import DocumentInfo
from rag_app.requests import AskRequest, SearchRequest
from rag_app.retrieval.documents import (
    LATEST,
    latest_reports,
    latest_words,
    named_terms,
    named_years,
    report_period,
    reports_of_years,
    route,
)
from rag_app.storage.store import DocumentStore
from rag_app.text.terms import document_query_terms, name_terms, part_terms, spelled_periods


def document(name: str, sha: str) -> DocumentInfo:
    return DocumentInfo(name, sha, 1, 1, 0, "", "", "")


def test_a_report_says_the_period_it_covers_on_its_cover_or_in_its_name():
    cover = "UNITED STATES SECURITIES AND EXCHANGE COMMISSION FORM 10-Q (Mark One) QUARTERLY REPORT For the quarterly "
    assert report_period("a.pdf", cover + "period ended July 1, 2023 or TRANSITION REPORT") == (2023, 7)
    assert report_period("a.pdf", "For the fiscal year ended December 31, 2022") == (2022, 12)
    assert report_period("a.pdf", "For the Quarterly Period Ended: March 31, 2023") == (2023, 3)
    # Chinese reports title their period: the first quarter, the half year, the third quarter, the year
    assert report_period("x.pdf", "四方科技集团股份有限公司 2023年第一季度报告") == (2023, 3)
    assert report_period("x.pdf", "常柴股份有限公司 2023 年半年度报告") == (2023, 6)
    assert report_period("x.pdf", "2022年第三季度报告") == (2022, 9)
    assert report_period("x.pdf", "常柴股份有限公司 2019 年年度报告全文") == (2019, 12)
    # a cover that says neither: the file name's latest year, at the end of the quarter it names, else of the year
    assert report_period("2023 Q3 AAPL.pdf", "Apple Inc.") == (2023, 9)
    assert report_period("MGMRESORTS_2023Q2_10Q.pdf", "") == (2023, 6)
    assert report_period("3M_2018_10K.pdf", "") == (2018, 12)
    assert report_period("notes.pdf", "Minutes of the meeting") is None


def test_latest_asks_for_the_newest_report_not_for_words_to_find():
    for asked in ("What was Apple's revenue in the latest quarter?", "In the most recent 10-Q, what ...?",
                  "公司最新一期的营业收入是多少？"):  # fmt: skip
        assert LATEST.search(asked)
    for asked in ("What was Apple's revenue in Q3 2023?", "Which segment had the most revenue?", "最近三年的趋势"):
        assert not LATEST.search(asked)
    assert latest_words("What did the most recent 10-Q say about the most revenue?") == {"most", "recent"}


def test_the_latest_of_the_reports_a_question_names_is_routed_first():
    documents = [document("2022 Q3 AAPL.pdf", "a22q3"), document("2023 Q2 AAPL.pdf", "a23q2"),
                 document("2023 Q1 AAPL.pdf", "a23q1"), document("2023 Q3 MSFT.pdf", "m23q3")]  # fmt: skip
    covers = {"a22q3": frozenset({"apple"}), "a23q2": frozenset({"apple"}), "a23q1": frozenset({"apple"}),
              "m23q3": frozenset({"microsoft"})}  # fmt: skip
    ended = {
        "a22q3": "June 25, 2022",
        "a23q2": "April 1, 2023",
        "a23q1": "December 31, 2022",
        "m23q3": "September 30, 2023",
    }

    def cover_text(sha: str) -> str:
        return f"FORM 10-Q For the quarterly period ended {ended[sha]}"

    routed = route("What were Apple's total net sales in the most recent quarter?", documents, covers, None, cover_text)
    assert routed.latest == {"a23q2"}  # Microsoft's later report is not Apple's
    assert routed.best_named(list(covers)) == {"a23q2"}
    assert max(routed.scores, key=routed.scores.get) == "a23q2"
    # a question naming its year chose its report already; one not asking for the latest is routed as before
    assert not route("What were Apple's total net sales in 2022?", documents, covers, None, cover_text).latest
    plain = route("What were Apple's total net sales?", documents, covers, None, cover_text)
    assert not plain.latest and plain.best_named(list(covers)) == {"a22q3", "a23q2", "a23q1"}
    # naming nothing, the latest report of all; periods nobody can read name none
    assert latest_reports({}, {sha: d.name for sha, d in zip(covers, documents, strict=True)}, cover_text) == {"m23q3"}
    assert latest_reports({}, {"x": "notes.pdf", "y": "memo.pdf"}, lambda sha: "") == set()


SALES = "Apple Inc.\nCondensed Consolidated Statements of Operations (In millions)\nThree Months Ended\n"


def test_the_answer_to_a_question_about_the_latest_report_quotes_it(service, tmp_path):
    """Three quarterly reports of one company, the same statements in each: the latest one's figure is quoted
    and cited, and the certification's "most recent fiscal quarter" is not taken for the answer."""
    folder = tmp_path / "filings"
    quarters = [("2022_Q3", "June 25, 2022", "82,959"), ("2023_Q1", "December 31, 2022", "117,154"),
                ("2023_Q2", "April 1, 2023", "94,836")]  # fmt: skip
    for name, ended, sales in quarters:
        write_pdf(folder / f"Apple_{name}_10Q.pdf", [
            f"UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\nQUARTERLY REPORT\n"
            f"For the quarterly period ended {ended}\nApple Inc.",
            f"{SALES}{ended}\nTotal net sales {sales}\nCost of sales 52,860\nGross margin 41,976",
            "Certification. I have disclosed any change in internal control over financial reporting that occurred "
            "during the registrant's most recent fiscal quarter that has materially affected internal control.",
        ])  # fmt: skip
    service.ingest([folder])
    question = "What were Apple's total net sales in the most recent quarter?"
    hits = service.search(SearchRequest(query=question, k=3)).hits
    assert hits[0].file == "Apple_2023_Q2_10Q.pdf", [(h.file, h.page) for h in hits]
    answer = service.answer(AskRequest(question=question, strategy="extractive", k=4))
    assert "94,836" in answer.answer and "117,154" not in answer.answer and "82,959" not in answer.answer
    assert "most recent fiscal quarter" not in answer.answer
    cited = {s.hit.file for s in answer.sources if s.cited}
    assert cited == {"Apple_2023_Q2_10Q.pdf"} and not answer.unverified_quotes, answer.answer


def test_covers_are_read_once_per_content(service, tmp_path, monkeypatch):
    """A question asking for the latest report of all reads every cover: once, not on every question."""
    folder = tmp_path / "filings"
    for name, ended in [("Acme_2022_10K.pdf", "December 31, 2022"), ("Acme_2023_10K.pdf", "December 31, 2023")]:
        write_pdf(folder / name, [f"FORM 10-K For the fiscal year ended {ended}\nAcme Corporation", "Revenue 1,234"])
    service.ingest([folder])
    reads = []
    original = DocumentStore.page_chunks
    monkeypatch.setattr(
        DocumentStore, "page_chunks", lambda self, sha, page: reads.append(page) or original(self, sha, page)
    )
    first = None
    for _ in range(3):
        hits = service.search(SearchRequest(query="What was the revenue in the latest annual report?", k=2)).hits
        assert hits[0].file == "Acme_2023_10K.pdf"
        first = reads.count(1) if first is None else first
    # two covers, and each first page once more where the formal pages' step reads what it ranked: on the first
    # question only
    assert reads.count(1) == first <= 4


def test_a_quarter_in_words_is_the_quarter_a_file_name_writes():
    assert part_terms("In the first quarter of 2023, how much did Apple spend on R&D?") == {"q1"}
    assert part_terms("its third fiscal quarter and 4th quarter") == {"q3", "q4"}
    assert part_terms("公司2023年第三季度和一季度的营业收入") == {"q3", "q1"}
    assert part_terms("the quarter ended June 30") == set() and part_terms("first half of the year") == {"h1"}
    assert {"q1", "2023"} <= document_query_terms("R&D in the first quarter of 2023") and "q1" in named_terms(
        "In the first quarter of 2023, what did Apple spend?"
    )
    # file names write a quarter beside its year, or in words
    assert {"amcor", "2023", "q2"} <= name_terms("AMCOR_2023Q2_10Q.pdf")
    assert {"2023", "q1", "aapl"} <= name_terms("2023 Q1 AAPL.pdf")
    assert "q3" in name_terms("常柴股份2023年第三季度报告.pdf")


def test_a_question_naming_a_quarter_in_words_is_routed_to_that_quarters_report():
    documents = [
        document("2023 Q1 AAPL.pdf", "q1"),
        document("2023 Q3 AAPL.pdf", "q3"),
        document("2023 Q1 MSFT.pdf", "m"),
    ]
    covers = {"q1": frozenset({"apple"}), "q3": frozenset({"apple"}), "m": frozenset({"microsoft"})}
    routed = route(
        "In the first quarter of 2023, how much did Apple spend on research and development?", documents, covers
    )
    assert routed.best_named(list(covers)) == {"q1"}
    assert max(routed.scores, key=routed.scores.get) == "q1"


def test_a_year_asked_picks_the_report_of_that_year_over_one_whose_cover_merely_mentions_it():
    """3M's 10-K for 2018 lists its notes due 2022 on the cover: "FY2022" tied it with the 10-K for 2022."""
    documents = [
        document("3M_2018_10K.pdf", "m18"),
        document("3M_2022_10K.pdf", "m22"),
        document("CVS_2022_10K.pdf", "c"),
    ]
    covers = {
        "m18": frozenset({"3m", "2022", "2026"}),
        "m22": frozenset({"3m", "2022", "2023"}),
        "c": frozenset({"cvs"}),
    }
    ended = {"m18": "December 31, 2018", "m22": "December 31, 2022", "c": "December 31, 2022"}

    def cover_text(sha: str) -> str:
        return f"FORM 10-K For the fiscal year ended {ended[sha]} ... 1.750% Notes due 2022"

    routed = route("Is 3M a capital-intensive business based on FY2022 data?", documents, covers, None, cover_text)
    assert routed.of_years == {"m22"} and routed.best_named(list(covers)) == {"m22"}
    assert max(routed.scores, key=routed.scores.get) == "m22"
    # no tie to break: the reports it names all end in the year, or none does, or it names nothing
    names = {sha: d.name for sha, d in zip(covers, documents, strict=True)}
    assert reports_of_years({"m22": 2.0, "c": 2.0}, names, cover_text, {"2022"}) == {}
    assert reports_of_years({"m18": 2.0}, names, cover_text, {"2022"}) == {}
    assert reports_of_years({"m18": 2.0, "m22": 2.0}, names, cover_text, set()) == {}


def test_two_years_asked_pick_the_report_of_the_later_one_even_when_the_earlier_cover_names_both():
    """ "between FY2021 and FY2022" is answered by the 10-K for 2022, which compares the two years; the 10-K for
    2021, whose cover lists notes due 2022, named both years and outranked it."""
    documents = [document("CORNING_2020_10K.pdf", "c20"), document("CORNING_2021_10K.pdf", "c21"),
                 document("CORNING_2022_10K.pdf", "c22"), document("NIKE_2021_10K.pdf", "n")]  # fmt: skip
    covers = {"c20": frozenset({"corning", "2020", "2021"}), "c21": frozenset({"corning", "2021", "2022"}),
              "c22": frozenset({"corning", "2022"}), "n": frozenset({"nike", "2021"})}  # fmt: skip
    ended = {"c20": "December 31, 2020", "c21": "December 31, 2021", "c22": "December 31, 2022", "n": "May 31, 2021"}

    def cover_text(sha: str) -> str:
        return f"FORM 10-K For the fiscal year ended {ended[sha]}"

    question = "How much has the effective tax rate of Corning changed between FY2021 and FY2022?"
    routed = route(question, documents, covers, None, cover_text)
    assert routed.of_years == {"c21", "c22"}  # Nike's 10-K for 2021 is not Corning's
    assert routed.scores["c22"] > routed.scores["c21"] > routed.scores["c20"]
    assert max(routed.named, key=routed.named.get) == "c22"
    names = {sha: d.name for sha, d in zip(covers, documents, strict=True)}
    assert reports_of_years({"c21": 1.0, "c22": 1.0}, names, cover_text, {"2021", "2022"}) == {"c21": 1, "c22": 2}


def test_reports_chosen_by_their_year_keep_their_order():
    """Reports chosen by their year stay in the order the question's words gave them, above the others."""
    documents = [document("3M_2018_10K.pdf", "m18"), document("3M_2022_10K.pdf", "m22"),
                 document("CVS_2022_10K.pdf", "c"), document("NIKE_2019_10K.pdf", "n")]  # fmt: skip
    covers = {"m18": frozenset({"3m", "2022"}), "m22": frozenset({"3m", "2022", "capital"}), "c": frozenset({"cvs", "2022"}),
              "n": frozenset({"nike", "2019"})}  # fmt: skip
    ended = {"m18": "December 31, 2018", "m22": "December 31, 2022", "c": "December 31, 2022", "n": "May 31, 2019"}
    routed = route("What was the FY2022 capital expenditure?", documents, covers, None,
                   lambda sha: f"For the fiscal year ended {ended[sha]}")  # fmt: skip
    assert routed.of_years == {"m22", "c"}
    assert routed.scores["m22"] > routed.scores["c"] > routed.scores["m18"]
    assert routed.named["m22"] == routed.named["c"]  # the year ties them: no company is named
    # "3M's" names 3M (a possessive of digits and capitals): only 3M's report of 2022 is chosen
    asked = route("What is 3M's FY2022 capital expenditure?", documents, covers, None,
                  lambda sha: f"For the fiscal year ended {ended[sha]}")  # fmt: skip
    assert asked.of_years == {"m22"} and asked.best_named(list(covers)) == {"m22"}
    assert named_terms("What were Apple’s and 3M's sales?") >= {"apple", "3m"}


def test_a_file_name_joining_the_company_name_names_it_when_the_cover_splits_it():
    """MGM's 10-K for 2018 prints its name "MGM R ESORTS I NTERNATIONAL" on the cover: only "mgm" matched the
    question's "MGM Resorts", so its other reports, whose covers spell "Resorts", named it better, and FY2018
    went to them. The file name MGMRESORTS_2018_10K.pdf joins mgm and resorts, words the other titles hold."""
    documents = [document("MGMRESORTS_2018_10K.pdf", "m18"), document("MGMRESORTS_2022_10K.pdf", "m22"),
                 document("NIKE_2018_10K.pdf", "n")]  # fmt: skip
    covers = {"m18": frozenset({"mgm", "r", "esort", "nternat", "2018"}),
              "m22": frozenset({"mgm", "resort", "intern", "2022"}), "n": frozenset({"nike", "2018"})}  # fmt: skip
    ended = {"m18": "December 31, 2018", "m22": "December 31, 2022", "n": "May 31, 2018"}
    routed = route("What is the year end FY2018 amount of accounts payable for MGM Resorts?", documents, covers,
                   None, lambda sha: f"For the fiscal year ended {ended[sha]}")  # fmt: skip
    assert routed.of_years == {"m18"}
    assert max(routed.named, key=routed.named.get) == "m18"
    # a file name joining no two words of the titles adds none
    alone = route("What was Nike's revenue?", [document("NIKEINC_2018.pdf", "x"), document("ADOBE_2019.pdf", "y")],
                  {"x": frozenset({"nike"}), "y": frozenset({"adob"})})  # fmt: skip
    assert alone.titles["x"] >= {"nike"} and "inc" not in alone.titles["x"]


def test_abbreviated_periods_are_written_out_as_filings_print_them():
    cases = {
        "What was Nike's revenue in FY19?": "What was Nike's revenue in FY2019?",
        "FY 21 and FY'22": "FY2021 and FY2022",
        "in fiscal '18": "in fiscal 2018",
        "JPM's CET1 ratio in 1Q21": "JPM's CET1 ratio in Q1 2021",
        "at the end of Q1'21, and in H2 '22": "at the end of Q1 2021, and in H2 2022",
        "2H22 and 3Q 2023": "H2 2022 and Q3 2023",
        "Q2 FY23": "Q2 FY2023",
        "Q2FY23 and 3QFY23": "Q2 FY2023 and Q3 FY2023",
        "Q2'2023 and FY'2016": "Q2 2023 and FY2016",
        "FY99": "FY1999",
        "千味央厨23Q1营收多少？": "千味央厨 Q1 2023 营收多少？",
        "in 2023Q2, and 22H1": "in Q2 2023, and H1 2022",
        "22年年报的营业收入和23年一季度": "2022年年报的营业收入和2023年一季度",
    }
    for asked, read in cases.items():
        assert spelled_periods(asked) == read, asked
    # what is already written out, or no period at all, stays as it is
    for asked in ("FY2019 and fiscal 2020", "FY 2021", "Q3 2023", "2023 Q1", "FY19E", "in fiscal 18 months", "12Q23", "Q3", "19 stores",
                  "a 4Q", "FY19.5", "近22年年度增长", "公司成立22年", "A14H1 chip"):  # fmt: skip
        assert spelled_periods(asked) == asked, asked
    assert named_years(spelled_periods("Nike's FY19 revenue against FY2018")) == {"2019", "2018"}
    assert named_years(spelled_periods("JPM in 1Q21")) == {"2021"}


def test_a_question_writing_its_year_short_is_answered_from_that_years_report(service, tmp_path):
    """Three 10-Ks of one company, each printing its year and the two before, and a 10-Q: "FY21", "FY'19" and
    "1Q22" route to the year's and the quarter's report, whose figure is quoted and cited, as "FY2021" does; the
    result keeps the question as asked."""
    folder = tmp_path / "filings"
    revenue = {2017: "3,020", 2018: "3,655", 2019: "4,410", 2020: "5,122", 2021: "6,812", 2022: "8,100", 2023: "9,277"}
    for year in (2019, 2021, 2023):
        years = (year, year - 1, year - 2)
        write_pdf(folder / f"Acme_{year}_10K.pdf", [
            f"FORM 10-K\nANNUAL REPORT\nFor the fiscal year ended December 31, {year}\nAcme Corporation",
            "CONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions) Year ended December 31, "
            + " ".join(map(str, years)) + "\nTotal revenue " + " ".join(revenue[y] for y in years)
            + "\nCost of revenue 1,020 990 950\nOperating income 640 600 570",
        ])  # fmt: skip
    write_pdf(folder / "Acme_2022Q1_10Q.pdf", [
        "FORM 10-Q\nQUARTERLY REPORT\nFor the quarterly period ended March 31, 2022\nAcme Corporation",
        "CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions) Three months ended March 31, 2022 2021\n"
        "Total revenue 1,733 1,512\nCost of revenue 260 240\nOperating income 150 130",
    ])  # fmt: skip
    service.ingest([folder])
    for question, file, figure in (("What was Acme's total revenue in FY21?", "Acme_2021_10K.pdf", "6,812"),
                                   ("What was Acme's total revenue in FY'19?", "Acme_2019_10K.pdf", "4,410"),
                                   ("What was Acme's total revenue in 1Q22?", "Acme_2022Q1_10Q.pdf", "1,733")):  # fmt: skip
        result = service.search(SearchRequest(query=question, k=3))
        assert result.query == question and result.hits[0].file == file, [(h.file, h.page) for h in result.hits]
        answer = service.answer(AskRequest(question=question, strategy="extractive", k=3))
        cited = {s.hit.file for s in answer.sources if s.cited}
        assert figure in answer.answer and cited == {file}, answer.answer


def test_a_half_year_in_words_is_the_half_a_report_is_titled_for():
    assert part_terms("常柴股份2023年上半年营业收入是多少？") == {"h1"} and part_terms("2023年中报的净利润") == {"h1"}
    assert part_terms("what is the outlook for the second half of 2023?") == {"h2"} and part_terms("下半年展望") == {
        "h2"
    }
    assert "h1" in name_terms("常柴股份有限公司2023年半年度报告.pdf") and "h1" not in name_terms(
        "常柴股份2023年年度报告.pdf"
    )
    documents = [document("常柴股份有限公司2023年半年度报告.pdf", "h1"), document("常柴股份有限公司2023年年度报告.pdf", "fy"),
                 document("常柴股份有限公司2023年第一季度报告.pdf", "q1"), document("Acme 2023 H1 report.pdf", "acme"),
                 document("Acme 2023 annual report.pdf", "acme-fy")]  # fmt: skip
    covers = {sha: frozenset() for sha in ("h1", "fy", "q1", "acme", "acme-fy")}
    for question in ("常柴股份2023年上半年的营业收入是多少？", "常柴股份2023年中报的净利润是多少？"):
        assert first_alone(route(question, documents, covers).scores) == "h1", question
    assert first_alone(route("What was Acme's revenue in the first half of 2023?", documents, covers).scores) == "acme"


def first_alone(scores: dict[str, float]) -> str | None:
    """The document ranked first, where no other ties with it."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    return ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None


def test_a_chinese_question_writing_its_period_short_is_routed_to_that_periods_report():
    documents = [document("常柴股份有限公司2022年年度报告.pdf", "fy22"), document("常柴股份有限公司2023年第一季度报告.pdf", "q1"),
                 document("常柴股份有限公司2023年半年度报告.pdf", "h1")]  # fmt: skip
    covers = {sha: frozenset() for sha in ("fy22", "q1", "h1")}
    for question, sha in (("常柴股份23Q1的营业收入是多少？", "q1"), ("常柴股份22年年报的营业收入是多少？", "fy22"),
                          ("常柴股份23H1的净利润是多少？", "h1")):  # fmt: skip
        assert first_alone(route(spelled_periods(question), documents, covers).scores) == sha, question


def test_a_month_is_a_period_not_a_name():
    """Mercia's year ends on 31 March, and so does Baker Steel's, whose cover writes "31 March": "March" in a question
    about Mercia named Baker Steel's report as much as "Mercia" named Mercia's. A month, capitalised or not, names no
    document; the question's own name does. "MAR", in capitals, may still be a listing symbol."""
    documents = [document("ac9a.pdf", "mercia"), document("8474.pdf", "baker"), document("e0d6.pdf", "cmct")]
    covers = {"mercia": frozenset({"mercia", "annual", "report", "2022"}),
              "baker": frozenset({"baker", "steel", "march", "31", "2022"}),
              "cmct": frozenset({"december", "31", "2022", "trust"})}  # fmt: skip
    for question in ("What total dividend per share is Mercia paying for the year ended 31 March 2022?",
                     "mercia assets under management march 2022", "What is the AUM of Mercia at 31 Mar. 2022?"):  # fmt: skip
        routed = route(question, documents, covers)
        assert routed.named.get("baker", 0.0) == 0.0 and "baker" not in routed.best_named(list(covers)), question
        assert not any("march" in group or "mar" in group for group in routed.names), question
    assert route("What was Mercia's dividend for the year to March 2022?", documents, covers).best_named(
        list(covers)
    ) == {"mercia"}
    assert "march" not in named_terms("Revenue in March 2023") and "mar" in named_terms("MAR's revenue in 2023")
