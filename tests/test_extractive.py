"""Extractive answers a person can act on: the row that holds the asked figure with its column header, quotes
that are the cited source's own text, Chinese read as Chinese, and "not found" when nothing here answers."""

import re

from conftest import FINGLM

from rag_app.answering.absence import absence
from rag_app.answering.citations import check_citations
from rag_app.answering.events import Source, TokenEvent
from rag_app.answering.passages import clip, header_for, units, window_header
from rag_app.answering.strategies.extractive import answer_extractive
from rag_app.answering.strategy_context import StrategyContext
from rag_app.ingestion.loaders import load_document
from rag_app.prompts import load_prompts
from rag_app.records import DocumentInfo, SearchHit
from rag_app.retrieval.documents import DocumentRoute, name_groups, route, subject_terms

CASH_FLOWS = (
    "3M Company and Subsidiaries\nConsolidated Statement of Cash Flows\nYears ended December 31\n"
    "(Millions) 2018 2017 2016\nCash Flows from Operating Activities\n"
    "Net income including noncontrolling interest $ 5,363 $ 4,869 $ 5,058\n"
    "Depreciation and amortization 1,488 1,544 1,474\n"
    "Net cash provided by (used in) operating activities 6,439 6,240 6,662\n"
    "Cash Flows from Investing Activities\n"
    "Purchases of property, plant and equipment (PP&E) (1,577) (1,373) (1,420)\n"
    "Proceeds from sale of PP&E and other assets 262 49 58\n"
    "Cash and cash equivalents at end of period $ 2,853 $ 3,053 $ 2,398"
)
BALANCE_SHEET = (
    "CONDENSED CONSOLIDATED BALANCE SHEETS (in millions)\nDecember 31, 2022 March 31, 2023\n"
    "Cash and cash equivalents $ 53,888 $ 49,605\nMarketable securities 16,138 15,425\n"
    "Inventories 34,405 35,030\nTotal current assets 146,791 141,340"
)
CONTACTS = (
    "2019 年年度报告4 / 156第一节 释义一、 释义在本报告书中，除非文义另有所指，下列词语具有如下含义：常用词语释义公司、本公司"
    "、四方科技 指 四方科技集团股份有限公司四方罐储 指 南通四方罐式储运设备制造有限公司二、 联系人和联系方式董事会秘书姓名 饶伟"
    "联系地址 江苏省南通市通州区兴仁镇金通公路3888号电话 0513-81658162传真 0513-86221280：8001电子信箱 zqb@ntsquare.com"
    "三、 基本情况简介公司注册地址 江苏省南通市通州区兴仁镇金通公路3888号公司网址 www.sqteg.com电子信箱 zqb@ntsquare.com"
)


def source(n: int, file: str, page_text: str, page: int = 60, window: tuple[int, int] | None = None) -> Source:
    hit = SearchHit(file, page, 0, page_text[:120], 0.5, file, f"{file}:{page}:0")
    return Source(n, hit, page=page_text, window=window or (0, 120))


def ask(question: str, sources: list[Source], embeddings, routed: DocumentRoute | None = None) -> str:
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", question) else "en"
    ctx = StrategyContext(question, sources, None, load_prompts(lang), 64, 0.0, embed=embeddings.embed_array)
    ctx.route = routed or DocumentRoute()
    return "".join(e.text for e in answer_extractive(ctx) if isinstance(e, TokenEvent))


def quotes(text: str) -> list[str]:
    return re.findall(r"“([^”]+)”", text)


def document(name: str, sha: str | None = None) -> DocumentInfo:
    return DocumentInfo(name, sha or name, 1, 1, 0, "", "", "")


def test_a_page_splits_into_rows_with_their_column_header_and_sentences():
    found = units(CASH_FLOWS)
    rows = [u for u in found if u.kind == "row"]
    assert all(CASH_FLOWS[u.start : u.end] == u.text for u in found)  # every unit is the page's own text
    capex = next(u for u in rows if u.label.startswith("Purchases of property"))
    assert capex.text.endswith("(1,577) (1,373) (1,420)") and capex.has_figure
    assert header_for(CASH_FLOWS, capex).text == "(Millions) 2018 2017 2016"
    assert any(u.label == "Depreciation and amortization" for u in rows)  # a short label is still a row


def test_a_figure_asked_for_a_year_its_quotes_are_not_of_is_not_found(embeddings):
    """A report for 2018 whose page mentions 2020 (a note due then) passes the pages' check; its quotes, the cash-flow
    rows under "2018 2017 2016", are of other years: the answer is not found, never 2018's figure for 2020's."""
    page = CASH_FLOWS + "\nThe Company's medium-term notes due 2020 were repaid early."
    filing = [source(1, "3M_2018_10K.pdf", page, page=60)]
    text = ask("What was 3M's net cash provided by operating activities in fiscal year 2020?", filing, embeddings)
    assert text.startswith("Not found:") and "2020" in text and "6,439" not in text, text
    assert "6,439" in ask("What was 3M's net cash provided by operating activities in 2017?", filing, embeddings)


def test_the_quote_carries_the_asked_figure_with_its_column_header(embeddings):
    text = ask("What is the FY2018 capital expenditure amount (in USD millions) for 3M?", [source(1, "3M_2018_10K.pdf", CASH_FLOWS)], embeddings)  # fmt: skip
    first = text.splitlines()[0]
    assert "(Millions) 2018 2017 2016" in first and "(1,577)" in first and first.endswith("[1]"), text


def test_a_figure_for_a_year_no_retrieved_page_mentions_is_not_found_not_another_years(embeddings):
    filing = [source(1, "3M_2018_10K.pdf", CASH_FLOWS, page=60)]
    text = ask("What was 3M's net cash provided by operating activities in fiscal year 2020?", filing, embeddings)
    assert text.startswith("Not found:") and "2020" in text and "3M_2018_10K.pdf p. 60" in text, text
    assert quotes(text) == [] and "6,439" not in text
    text = ask("2020年3M的经营活动现金流量净额是多少？", filing, embeddings)
    assert text.startswith("未找到") and "2020" in text, text
    # the year asked is on the page, in full or as two digits: the figure is quoted
    assert "6,439" in ask("What was 3M's net cash provided by operating activities in 2016?", filing, embeddings)
    short = [source(1, "3M_2018_10K.pdf", CASH_FLOWS.replace("(Millions) 2018 2017 2016", "FY18 FY17 FY16"))]
    assert "6,439" in ask("What was 3M's net cash provided by operating activities in 2018?", short, embeddings)
    # a file named for the quarter asked answers for it, though its pages print a fiscal quarter's dates only
    fiscal = CASH_FLOWS.replace("(Millions) 2018 2017 2016", "Three Months Ended December 31, 2022 2021 2020")
    question = "What was 3M's net cash provided by operating activities in the first quarter of 2023?"
    assert "6,439" in ask(question, [source(1, "2023 Q1 3M.pdf", fiscal)], embeddings)
    as_term = "What was 3M's net cash provided by operating activities in Q1 2023?"  # the quarter written as a term
    assert "6,439" in ask(as_term, [source(1, "2023 Q1 3M.pdf", fiscal)], embeddings)
    assert ask(as_term, [source(1, "2022 Q4 3M.pdf", fiscal)], embeddings).startswith("Not found:")
    assert ask(question, [source(1, "2022 Q4 3M.pdf", fiscal)], embeddings).startswith("Not found:")
    assert ask(question, [source(1, "3M_2023_10K.pdf", fiscal)], embeddings).startswith("Not found:")  # no quarter


def test_a_total_is_quoted_not_the_rows_before_it(embeddings):
    text = ask("What were total current assets at March 31, 2023?", [source(1, "2023 Q1 AMZN.pdf", BALANCE_SHEET)], embeddings)  # fmt: skip
    assert "Total current assets 146,791 141,340" in text.splitlines()[0], text


def test_every_quote_is_in_the_text_its_source_shows(embeddings):
    """The quoted row lies outside the retrieved chunk's window: the source widens to show it, and the
    citation check, which reads the same text, finds every quote."""
    src = source(1, "3M_2018_10K.pdf", CASH_FLOWS, window=(0, 60))
    text = ask("How much did 3M spend on purchases of property, plant and equipment in 2018?", [src], embeddings)
    assert quotes(text) and all(q in src.text for q in quotes(text))
    assert check_citations(text, [src]).unverified_quotes == []


def test_quotes_come_from_the_document_the_question_names_first(embeddings):
    apple = source(1, "2023 Q1 AAPL.pdf", "Cash and cash equivalents at the end of the quarter were $ 20,535 million, "
                   "compared with $ 23,646 million at the beginning of the quarter.")  # fmt: skip
    amazon = source(2, "2023 Q1 AMZN.pdf", BALANCE_SHEET)
    documents = [document("2023 Q1 AAPL.pdf"), document("2023 Q1 AMZN.pdf")]
    covers = {"2023 Q1 AAPL.pdf": frozenset({"apple"}), "2023 Q1 AMZN.pdf": frozenset({"amazon"})}
    question = "How much cash and cash equivalents did Amazon have at the end of the quarter?"
    routed = route(question, documents, covers)
    assert routed.named["2023 Q1 AMZN.pdf"] > 0 and "2023 Q1 AAPL.pdf" not in routed.named
    text = ask(question, [apple, amazon], embeddings, routed)
    assert text.splitlines()[0].endswith("[2]") and "53,888" in text.splitlines()[0], text


def test_a_chinese_question_names_the_company_not_the_report_whose_cover_shares_its_common_words(embeddings):
    """Research reports' covers are long: one shares 的, 是, 在, 收入, 产品, 2024 with the question, another
    only its company (凌云). Lone characters name nothing, and a word most documents' texts use (收入) names no
    document: the quote comes from 凌云's report (it came from the other one's)."""
    names = [
        "凌云股份-公司深度研究报告.pdf",
        "香农芯创-公司研究报告.pdf",
        "伊利股份-公司深度报告.pdf",
        "千味央厨-报告.pdf",
    ]
    documents = [document(n) for n in names]
    common = frozenset({"收入", "产品", "主要", "研究", "的", "是", "在", "比", "占", "2024"})
    covers = {names[0]: frozenset({"凌云", "华创", "证券"}), names[1]: common, names[2]: frozenset({"伊利"}),
              names[3]: frozenset({"千味央厨"})}  # fmt: skip
    used = {"凌云": {names[0]}, "收入": set(names), "产品": set(names), "主要": set(names), "研究": set(names)}

    def documents_with(terms):
        return {t: used.get(t, set()) for t in terms}

    question = "根据华创证券对凌云股份的深度研究报告，请问该公司在2024年的主要产品收入占比是多少？"
    routed = route(question, documents, covers, documents_with)
    assert routed.best_named(names[:2]) == {names[0]}, routed.named
    lingyun = source(1, names[0], "公司主要产品为汽车金属零部件，2024 年营收占比 90.8%。", page=7)
    other = source(2, names[1], "2024 年公司主要产品收入占比：分销业务 95.1%，产品业务 4.9%。", page=19)
    assert ask(question, [other, lingyun], embeddings, routed).splitlines()[0].endswith("[1]")


def test_a_chinese_period_or_amount_is_not_taken_for_a_name():
    """ "2013年间" and "100亿大关" start with digits, as English names may: they are no name the collection
    must hold (the question was refused for "年间")."""
    assert name_groups("在2005年至2013年间，伊利如何实现营收突破100亿大关？") == []
    assert name_groups("Did 3M or Sleep Country Canada grow faster in 2019?") == [
        frozenset({"sleep", "country", "canada"})
    ]


def test_chinese_is_read_as_chinese_and_quotes_begin_and_end_on_word_boundaries(embeddings):
    """The bundled model cannot read Chinese: the words decide; the words naming the document (四方科技) do not
    count, so the report's own name on its first lines does not outrank the line that answers."""
    titles = {"四方科技2019年度报告.pdf": frozenset({"四方", "科技"})}
    routed = DocumentRoute(titles=titles, documents=1)
    text = ask(
        "2019年四方科技电子信箱是什么?", [source(1, "四方科技2019年度报告.pdf", CONTACTS, page=4)], embeddings, routed
    )
    first = quotes(text.splitlines()[0])[-1]
    assert "zqb@ntsquare.com" in first and "电子信箱" in first, text
    assert not re.match(r"[\u4e00-\u9fff]年", first)  # never starts inside a word ("年年度报告")


def test_a_long_chinese_sentence_is_clipped_at_a_word():
    sentence = "本公司" + "归属于上市公司股东的净利润为三千四百五十八万元" * 12
    quote = clip(sentence)
    assert len(quote) <= 150 and sentence.startswith(quote)
    assert quote.endswith(("元", "润", "净利润", "万元", "三千", "为", "股东", "的", "公司", "上市")), quote


def test_an_unrelated_question_is_answered_not_found_with_the_nearest_sources(embeddings):
    sources = [source(1, "2023 Q1 AMZN.pdf", BALANCE_SHEET, page=4),
               source(2, "notes.pdf", "The meeting was moved to Thursday afternoon because the room was booked.", page=2)]  # fmt: skip
    text = ask("What is the boiling point of liquid nitrogen in Kelvin?", sources, embeddings)
    assert text.startswith("Not found:") and "2023 Q1 AMZN.pdf p. 4" in text and "notes.pdf p. 2" in text
    assert quotes(text) == [] and "[1]" not in text


def test_a_company_no_document_is_about_is_refused_however_close_the_passages():
    documents = [document("NVIDIA_2023_10K.pdf", "nvda"), document("CORNING_2022_10K.pdf", "glw")]
    covers = {"nvda": frozenset({"nvidia", "corporation"}), "glw": frozenset({"corning", "incorporated"})}
    in_text = {"tesla": {"nvda"}}  # NVIDIA's 10-K mentions Tesla once
    routed = route("What was Tesla's FY2022 revenue?", documents, covers, lambda terms: {t: in_text.get(t, set()) for t in terms})  # fmt: skip
    assert absence(routed, ["Revenue was $26.97 billion, up 0.2% from a year ago."]).subjects == ("tesla",)
    # a question about a document that is here: its other unknown words are attributes, not subjects
    routed = route("What was NVIDIA's FY2022 revenue in USD?", documents, covers, lambda terms: {"2022": {"nvda"}})
    assert not absence(routed, ["Revenue was $26.97 billion."])
    # a measure asked in Chinese of English filings names no company: 净利润 is their net income
    routed = route("净利润是多少？", documents, covers, lambda terms: {})
    assert not absence(routed, ["Net income was $4.4 billion."])
    routed = route("千味央厨的净利润是多少？", documents, covers, lambda terms: {})
    assert absence(routed, ["Net income was $4.4 billion."]).subjects == ("千味央厨",)
    # but a second company named beside it must be here too: a comparison with it cannot be answered
    asked = "Which company had more revenue in 2022, NVIDIA or Sleep Country Canada Holdings Inc.?"
    routed = route(asked, documents, covers, lambda terms: {"2022": {"nvda", "glw"}})
    assert set(absence(routed, ["Revenue was $26.97 billion."]).subjects) == {"sleep", "country", "canada"}
    routed = route("Which company had more revenue in 2022, NVIDIA or Corning?", documents, covers, lambda terms: {"2022": {"nvda", "glw"}})  # fmt: skip
    assert not absence(routed, ["Revenue was $26.97 billion."])
    # a passage that holds one word of the name ("Canada") does not hold the name: its other words are named
    routed = route(asked, documents, covers, lambda terms: {"2022": {"nvda", "glw"}})
    assert set(absence(routed, ["Revenue in Canada was $1.2 billion."]).subjects) == {"sleep", "country"}


def test_a_question_of_documents_in_the_other_language_is_refused_only_for_what_no_document_holds():
    """An English question of Chinese reports writes words no report holds ("technology", "subsidiary"): across
    languages what many documents use tells nothing, so a subject is absent only where no document's title nor text
    holds it. A report named by the pinyin of its file name is asked about; a company no report holds in any form
    is still refused, and so is a Chinese company asked of English filings."""
    documents = [document("四方科技2019年度报告.pdf", "sf"), document("金宇生物2020年度报告.pdf", "jy")]
    covers = {"sf": frozenset({"四方", "科技"}), "jy": frozenset({"金宇", "生物"})}
    in_text = {"hisoar": {"jy"}, "pharmaceutical": {"jy"}}  # a report printing its English name in Latin letters
    held = lambda terms: {t: in_text.get(t, set()) for t in terms}  # noqa: E731
    passages = ["公司积极履行社会责任，开展员工培训和环境保护工作。"]
    hisoar = route("What did Hisoar Pharmaceutical spend on R&D in 2019?", documents, covers, held)
    assert absence(hisoar, passages).subjects  # as a library in the question's language would judge it
    assert not absence(hisoar, passages, across=True)
    asked = "How does Sifang Technology's subsidiary protect the environment?"
    assert not absence(route(asked, documents, covers, held), passages, across=True)
    tesla = route("What was Tesla's revenue in 2019?", documents, covers, held)
    assert absence(tesla, passages, across=True).subjects == ("tesla",)
    # naming a report, a name of its own that no document holds is still asked about what is not here
    routed = route("Did Sifang Technology buy Bright Smart Securities?", documents, covers, held)
    assert {"bright", "smart"} <= set(absence(routed, passages, across=True).subjects)
    english = [document("NVIDIA_2023_10K.pdf", "nvda")]
    routed = route("千味央厨的净利润是多少？", english, {"nvda": frozenset({"nvidia"})}, lambda terms: {})
    assert absence(routed, ["Net income was $4.4 billion."], across=True).subjects == ("千味央厨",)


def test_a_question_typed_without_capitals_names_its_company_by_what_it_owns_or_what_titles_few_documents():
    """People type "what was tesla's revenue in 2022?": no capital tells the name. The owners it writes ("tesla's")
    and its words that title a few documents ("nvidia") are its subjects, judged as capitalised ones are: an untitled
    owner is absent, a word many documents hold ("company's") is no name, and a titled one is asked about."""
    documents = [document("NVIDIA_2023_10K.pdf", "nvda"), document("CORNING_2022_10K.pdf", "glw"),
                 document("NVIDIA_2022_10K.pdf", "nvda22"), document("CORNING_2021_10K.pdf", "glw21"),
                 document("COSTCO_2021_10K.pdf", "cost")]  # fmt: skip
    covers = {"nvda": frozenset({"nvidia", "corporation", "annual"}), "glw": frozenset({"corning", "annual"}),
              "nvda22": frozenset({"nvidia", "annual"}), "glw21": frozenset({"corning", "annual"}),
              "cost": frozenset({"costco", "annual"})}  # fmt: skip
    in_text = {"tesla": {"nvda"}, "company": set(covers), "revenue": set(covers), "2022": set(covers)}

    def held(terms):
        return {t: in_text.get(t, set()) for t in terms}

    passages = ["Revenue was $26.97 billion, up 0.2% from a year ago."]
    assert absence(route("what was tesla's revenue in 2022?", documents, covers, held), passages).subjects == ("tesla",)
    for asked in ("what was nvidia's revenue in 2022?", "what was the company's total revenue in 2022?",
                  "here's the question: what was the revenue in 2022?"):  # fmt: skip
        assert not absence(route(asked, documents, covers, held), passages), asked
    # a word titling a few documents names them, and the question asks about them: its other words are attributes
    routed = route("did nvidia report any zorblax revenue in 2022?", documents, covers, held)
    assert set(routed.by_subject) == {"nvda", "nvda22"} and not absence(routed, passages)
    # a word titling most documents ("annual") names none; a word no title holds cannot be told from an ordinary one
    assert not route("what was the annual revenue of pepsico in 2022?", documents, covers, held).by_subject
    # capitals: the rule for capitalised names, unchanged
    assert route("What was Pepsico's revenue?", documents, covers, held).untitled.keys() == {"pepsico"}


def test_a_legal_form_names_no_document_and_a_common_word_of_a_name_does_not_hold_it():
    """ "JOURNEY MEDICAL CORPORATION" asked of a library whose only corporation is another company: "corporation"
    names no document, and passages about medical costs do not make Journey Medical's report be here."""
    documents = [document("e0d6.pdf", "cmct"), document("NVIDIA_2023_10K.pdf", "nvda")]
    covers = {"cmct": frozenset({"creative", "media", "community", "trust", "corporation"}),
              "nvda": frozenset({"nvidia", "corporation"})}  # fmt: skip
    question = 'What was the operating cash flow of "JOURNEY MEDICAL CORPORATION" in the fiscal year 2022?'
    routed = route(question, documents, covers, lambda terms: {"2022": {"cmct", "nvda"}, "medical": {"cmct"}})
    assert routed.by_subject == {}
    passages = ["Net cash provided by operating activities 32,410 46,281", "Our medical office buildings are leased."]
    assert "journey" in absence(routed, passages).subjects


def test_subjects_are_names_not_the_words_that_start_a_sentence_or_ask():
    assert subject_terms("What is the FY2018 capex for 3M? Give a response in USD millions.") == {"3m", "usd"}
    assert subject_terms("Assume you are an analyst. Answer using the balance sheet.") == set()
    assert {"秘鲁", "首都"} <= subject_terms("秘鲁的首都是哪里?") and "哪里" not in subject_terms("秘鲁的首都是哪里?")


INCOME = (
    "Safe & Green Holdings Corp.\nConsolidated Statements of Operations\n2022 2021\n"
    "Revenue 23,419,463 5,394,211\nCost of revenue 20,165,311 3,065,163\nGross profit 3,254,152 2,329,048"
)


def test_a_measure_no_quote_names_is_said_to_be_unstated_before_the_nearest_quotes(embeddings):
    """Asked for a margin, the statement that prints only the gross profit is quoted after a sentence saying
    the margin is not among the quotes: the row is never passed off as the margin. A question the quotes do
    answer, or one asked yes or no, gets no such sentence."""
    filing = [source(1, "SG_2022_10K.pdf", INCOME)]
    text = ask("What was the Gross Profit Margin of Safe & Green Holdings in 2022?", filing, embeddings)
    first = text.splitlines()[0]
    assert first == "The pages found do not state Gross Profit Margin; the nearest passages are quoted below.", text
    assert "Gross profit 3,254,152 2,329,048" in text  # the nearest passage, and the parts of the margin
    zh = ask(
        "2022年公司的毛利率是多少？", [source(1, "SG_2022_10K.pdf", INCOME + "\n毛利 3,254,152 2,329,048")], embeddings
    )
    assert zh.startswith("检索到的页面未明确给出毛利率，"), zh
    answered = ask("What was the gross profit of Safe & Green Holdings in 2022?", filing, embeddings)
    assert answered.startswith("“") and "3,254,152" in answered.splitlines()[0], answered
    assert ask("Did Safe & Green report a gross profit margin above 10% in 2022?", filing, embeddings).startswith("“")


def test_the_passage_that_repeats_the_questions_wording_is_quoted_first(embeddings):
    """Two sentences hold the same words of a Chinese question; the one that repeats its phrase
    ("餐饮端速冻米面市场的潜在空间") answers it, the one that scatters them does not."""
    page = (
        "远期规模测算：我们预计国内速冻米面市场规模为 240 亿元，餐饮端的空间与潜在需求仍待释放。\n\n"
        "计算结论：我们预计国内餐饮端速冻米面市场的潜在空间达 607 亿元。"
    )
    text = ask("国内餐饮端速冻米面市场的潜在空间是多少？", [source(1, "千味央厨.pdf", page)], embeddings)
    assert "607 亿元" in quotes(text)[0], text


def test_the_words_of_a_request_do_not_outweigh_the_line_item_asked(embeddings):
    """The words "give a response ... relying on the details shown" ask, they name nothing: the line item, named by a
    synonym the row uses ("capital expenditure" / "Purchases of property, plant and equipment"), decides."""
    page = CASH_FLOWS + (
        "\n\nThe details shown in this response give the question of capital allocation a clear answer, "
        "relying on the amount of cash generated in 2018.\n"
    )
    question = (
        "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the question "
        "by relying on the details shown in the cash flow statement."
    )
    text = ask(question, [source(1, "3M_2018_10K.pdf", page)], embeddings)
    assert "(1,577)" in text.splitlines()[0], text


def test_a_row_that_words_the_measure_its_own_way_is_not_said_to_lack_it(embeddings):
    """The row "Net cash provided by (used in) operating activities" holds every word of "net cash provided by operating
    activities", though no name in the lexicon is written so: the row is the answer, with no caveat."""
    text = ask("What was 3M's net cash provided by operating activities in 2016?", [source(1, "3M.pdf", CASH_FLOWS)], embeddings)  # fmt: skip
    assert text.startswith("“") and "6,439 6,240 6,662" in text.splitlines()[0], text


def test_runs_of_the_questions_wording_count_words_not_the_words_of_asking():
    from rag_app.answering.phrases import longest_run, question_runs

    runs = question_runs("Give a response relying on the details shown: what were total current liabilities?", 2.5, 6)
    assert longest_run(runs, "Total current liabilities 7,491.5") == 3.0
    assert longest_run(runs, "The details shown in the response") == 0.0  # asking, not asked
    zh = question_runs("请问国内餐饮端速冻米面市场的潜在空间是多少？", 2.5, 6)
    assert longest_run(zh, "我们预计国内餐饮端 速冻米面市场的潜在空间达 607 亿元") >= 6.0  # counted to the cap


def test_a_window_over_a_flattened_table_is_quoted_with_the_years_naming_its_columns(embeddings):
    """A Chinese report's forecast table flattened into one long line: the window holding the asked row is
    quoted after the run of years that names its columns, so 2,660 reads as 2024's."""
    page = (
        "盈利预测与估值 2023A 2024A 2025E 2026E 2027E营业总收入（百万元） 13,754 13,759 13,860 15,001 16,261同比(%) "
        "21.15 0.03 0.74 8.23 8.40归母净利润（百万元） 2,701 2,660 3,112 3,102 3,384同比(%) 70.85 (1.54) 17.00 "
        "(0.32) 9.09EPS-最新摊薄（元/股） 1.49 1.46 1.71 1.70 1.86同比(%) 70.85 (1.54) 17.00 (0.32) 9.09P/E（现价&最新摊薄） "
        "6.66 6.76 5.78 5.80 5.31 净资产收益率（ROE，%） 14.10 12.86 13.45 12.31 12.09 市净率（P/B，倍） 0.94 0.87 0.78 0.71 "
        "0.64 资产负债率（%） 33.52 30.44 29.13 28.02 27.11 经营活动现金流（百万元） 3,102 3,376 3,561 3,902 4,117 "
        "数据来源：Wind，东吴证券研究所预测"
    )
    found = units(page)
    windows = [u for u in found if u.kind == "window"]
    assert len(windows) > 1
    profit = next(u for u in windows if "2,660" in u.text and "2023A" not in u.text)
    assert window_header(page, profit).text == "2023A 2024A 2025E 2026E 2027E"
    src = source(1, "联邦制药.pdf", page)
    text = ask("2024年归母净利润预计是多少？", [src], embeddings)
    assert any(q == "2023A 2024A 2025E 2026E 2027E" for q in quotes(text)) and "2,660" in text, text
    assert check_citations(text, [src]).unverified_quotes == []  # the years are the page's own text


def test_a_chinese_reports_income_statement_is_quoted_row_by_row_with_its_columns(embeddings):
    """A real report's statement page (四方科技 2019, page 63) as ingestion reads it: each row on its line, so the
    asked row is quoted with its label and the line naming its columns, not inside a run of the whole table."""
    page = load_document(next(FINGLM.glob("*四方科技*"))).pages[62]
    assert page.number == 63
    lines = page.text.split("\n")
    assert "负债合计 176,691,681.69 154,564,376.98" in lines
    assert "所有者权益（或股东权益）合计1,132,603,716.40 1,103,214,999.16" in lines
    answer = ask("四方科技2019年的营业总收入是多少？", [source(1, "四方科技.pdf", page.text, page=63)], embeddings)
    first = quotes(answer)[:2]
    assert first[1] == "一、营业总收入 1,175,301,034.32 1,230,537,181.80", answer
    assert first[0].endswith("项目 附注 2019 年度 2018 年度"), answer


def test_a_paragraph_that_ends_in_a_charts_figures_is_quoted_as_sentences_not_as_one_row():
    paragraph = "公司生产运输的质量及稳定性同样突出，据招股书，公司可在 3-6 个月内满足客户的需求。" * 6
    found = units(f"{paragraph}1.4 1.7\n营业收入 1,175 1,230")
    assert [u.text for u in found if u.kind == "row"] == ["营业收入 1,175 1,230"]
    assert all(len(u.text) <= 150 for u in found)


def test_an_english_question_of_a_chinese_report_is_answered_by_the_reports_own_lines(service, tmp_path, monkeypatch):
    """The bundled model reads English only, so a Chinese report's lines had no meaning score for an English
    question and its words matched none of theirs: the answer was "not found", or a line printing the company's
    English name. The Chinese reader (multilingual-e5) now compares them with the question, and the glossary's
    concepts ("environmental protection", 环境保护) count among its words; the quote is the report's own line, cited.
    A company no report holds in any form is still refused."""
    from rag_app.answering import answerer as answerer_module
    from rag_app.answering.strategies import extractive
    from rag_app.requests import AskRequest

    folder = tmp_path / "zh"
    folder.mkdir()
    (folder / "四方科技2019年度报告.md").write_text(
        "四方科技集团股份有限公司 2019 年年度报告。公司的外文名称 Sifang Technology Group Co., Ltd.\n\n"
        "公司主要产品为罐式集装箱和冷链装备，产品销往六十多个国家和地区。\n\n"
        "公司积极履行社会责任，严格落实环境保护措施，本年度新建污水处理设施两套，废气排放全部达标。\n\n"
        "报告期内公司董事会召开会议五次，审议通过年度报告等议案。",
        encoding="utf-8",
    )
    service.ingest([folder])

    def ask(question: str) -> str:
        return service.answer(AskRequest(question=question, strategy="extractive")).answer

    question = "What environmental protection measures did Sifang Technology take?"
    answer = ask(question)
    assert "污水处理" in answer and "[1]" in answer, answer
    assert "Tesla" in ask("What was Tesla's revenue in 2019?") or "tesla" in ask("What was Tesla's revenue in 2019?")
    monkeypatch.setattr(extractive, "_across", lambda ctx, c: False)  # as before: no reader, no glossary
    monkeypatch.setattr(answerer_module, "_across", lambda question, sources: False)
    assert "污水处理" not in ask(question)
