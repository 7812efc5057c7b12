"""The answer benchmark's scoring (bench/answer_scoring.py): figures in their printed forms, units and scale,
refusals in English and Chinese, partial answers; what bench/answers.py reports rests on it."""

from __future__ import annotations

import hashlib

import pytest

from bench.answer_scoring import (
    Figure,
    Gold,
    figure_matches,
    is_refusal,
    parse_figures,
    score,
    score_details,
)


def fig(text: str, scale: float | None = None) -> Figure:
    f = parse_figures(text, keep_years=True)[0]
    return Figure(f.raw, f.value, scale or f.scale, f.percent, f.currency, f.decimals, f.year_like)


def gold_fig(text: str, *figures: Figure, lang: str = "en", **kw) -> Gold:
    return Gold(text=text, kind=kw.pop("kind", "lookup"), language=lang, figures=list(figures), **kw)


CAPEX = gold_fig("$1577.00", fig("$1577.00", 1e6))  # financebench 03029: "(in USD millions)"


# ----- figures: forms, units, scale -----------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "Capital expenditures were $1,577 million in FY2018 [1].",
        "“Purchases of property, plant and equipment (PP&E) (1,577) (1,373) (1,420)” [2]",  # statement form
        "3M spent about $1.577 billion on capex.",
        "capex: 1577",
        "$1,580 million",  # within 1%
        "USD 1,577.0 million",
    ],
)
def test_capex_printed_forms_are_right(answer):
    assert score(answer, CAPEX, "en") == "right"


@pytest.mark.parametrize("answer", ["$1,600 million", "$1,577 billion", "$1.6 billion", "15.77%"])
def test_capex_wrong_value_scale_or_unit(answer):
    assert score(answer, CAPEX, "en") == "wrong"


def test_billions_gold_matches_millions_table():
    g = gold_fig("$13.51 billion", fig("$13.51 billion"))
    assert score("Revenue was 13,510 (in millions).", g) == "right"
    assert score("Revenue was $13,510 million.", g) == "right"
    assert score("Revenue was $13.5 billion.", g) == "right"  # 0.07% off
    assert score("Revenue was $13.1 billion.", g) == "wrong"


def test_percent_gold_accepts_bare_and_fraction_not_money():
    g = gold_fig("3.5%", fig("3.5%"))
    assert score("The margin was 3.5 percent.", g) == "right"
    assert score("“Operating margin 3.5 4.1 5.0” [1]", g) == "right"  # a table prints no % sign
    assert score("a ratio of 0.035", g) == "right"
    assert score("$3.5 million", g) == "wrong"


def test_ratio_gold_is_not_an_amount_of_money():
    g = gold_fig("0.66", fig("0.66"))
    assert score("The ratio is 0.66.", g) == "right"
    assert score("EPS was $0.66.", g) == "wrong"
    assert score("66%", g) == "right"  # a ratio given as a percentage


def test_precision_of_the_gold_gives_the_tolerance():
    g = gold_fig("0.01", fig("0.01"))  # FinanceBench ROA "0.01" (two decimals)
    assert score("ROA of 0.014", g) == "right"
    assert score("ROA of 0.016", g) == "wrong"
    g = gold_fig("$4.60", fig("$4.60", 1e9))  # "$4.60" bn is 4.6: +-0.05 bn
    assert score("Capex was $4,625 million.", g) == "right"


def test_sign_is_not_compared_parenthesised_and_minus():
    g = gold_fig("-3.7", fig("-3.7"))
    assert score("The CCC was (3.7) days.", g) == "right"
    assert score("The cash conversion cycle is 3.7 days.", g) == "right"
    assert score("It was −3.7 days", g) == "right"  # U+2212 minus


def test_year_is_not_a_figure():
    g = gold_fig("$2,018 million", fig("$2,018 million"))
    assert score("In 2018 capex was $1,577 million.", g) == "wrong"
    assert score("FY2018 capex was $2,018 million.", g) == "right"


def test_references_dates_citations_lists_are_not_figures():
    assert parse_figures("see p. 60, page 61, Note 5 and Figure 3 and 4 [12]") == []
    assert parse_figures("As of June 30, 2023 and Q3 2022 in the 10-K") == []
    assert parse_figures("1. Revenue grew\n2. Costs fell\n(3) Items") == []
    assert parse_figures("3M_2018_10K.pdf; 3M's segment; UBT251; 03933.HK") == []
    assert parse_figures("2024年4月30日第5页，图表23和24") == []
    g = gold_fig("60", fig("60"))
    assert score("The nearest is 3M_2018_10K.pdf p. 60 [60]", g) == "wrong"


def test_scale_letters_only_after_currency_or_with_decimals():
    [f] = parse_figures("$3.5B")
    assert f.magnitude == 3.5e9
    assert parse_figures("3M Company") == []
    assert figure_matches(parse_figures("US$88.1m")[0], fig("88100000"))


def test_bare_amount_gold_erc_style():
    g = gold_fig("88100000", fig("88100000"))  # enterprise_rag_challenge: metric number, no separators
    assert score("Profit for the year was US$88.1 million.", g) == "right"
    assert score("“Profit for the year 88.1 41.2” [1]", g) == "right"
    assert score("about 88 million", g) == "right"  # 0.11% off: within 1%
    assert score("about 87 million", g) == "wrong"  # 1.25% off


# ----- Chinese units ----------------------------------------------------------------------------------


def test_chinese_yi_and_wan():
    g = gold_fig("607亿元", fig("607亿元"), lang="zh")
    assert score("2025年潜在空间约为607亿元。", g, "zh") == "right"
    assert score("潜在空间为60,700,000,000元", g, "zh") == "right"
    assert score("“餐饮端速冻米面市场空间 607” [3]", g, "zh") == "right"  # 单位：亿元 in a header
    assert score("2025年潜在空间为670亿元", g, "zh") == "wrong"
    g = gold_fig("1008万元", fig("1008万元"), lang="zh")
    assert score("捐赠了价值10,080,000元的试剂盒", g, "zh") == "right"
    assert score("价值1,008.00万元", g, "zh") == "right"


def test_chinese_millions_and_negatives_and_fullwidth():
    g = gold_fig("13,759百万元", fig("13,759百万元"), lang="zh")
    assert score("营业收入预计为137.59亿元", g, "zh") == "right"
    g = gold_fig("-1.2亿元", fig("-1.2亿元"), lang="zh")
    assert score("公司亏损1.2亿元", g, "zh") == "right"
    g = gold_fig("23.15%", fig("23.15%"), lang="zh")
    assert score("毛利率为２３．１５％", g, "zh") == "right"


def test_english_bare_figures_are_not_read_in_yi():
    g = gold_fig("$0.40", fig("$0.40", 1e9))  # 0.4 bn = 4 x 10^8: only a Chinese table says 亿
    assert score("“Dividends paid (4) (3)” [1]", g, "en") == "wrong"
    assert score("“Dividends paid (389) (361)” [1]", g, "en") == "right"


# ----- several figures, evidence, partial ---------------------------------------------------------------


def test_all_figures_needed_else_partial():
    g = gold_fig("$1097 million and $862 million", fig("$1097 million"), fig("$862 million"))
    assert score("Pension benefits of $1,097 million and health care of $862 million.", g) == "right"
    assert score("Pension benefits of $1,097 million.", g) == "partial"


def test_alternatives_any_one_is_enough():
    g = gold_fig("3770600000 | 5679500000", fig("3770600000"), fig("5679500000"), figures_mode="any")
    assert score("Intangible assets, net: $3,770.6 million", g) == "right"


EVIDENCE = (
    "Working capital ratio is defined as total current assets divided by total current liabilities. "
    "Total current assets 5,409 6,040 Total current liabilities 8,265 7,817"
)


def test_partial_when_quoting_the_evidence_page_without_the_figure():
    g = gold_fig("0.66", fig("0.66"), kind="derived", evidence_texts=[EVIDENCE])
    quote = "“Working capital ratio is defined as total current assets divided by total current liabilities.” [1]"
    d = score_details(quote, g)
    assert d.verdict == "partial" and d.evidence_hit
    assert score("The working capital ratio is healthy.", g) == "wrong"  # fewer than 8 words in common


def test_partial_when_citing_an_evidence_page():
    g = gold_fig("0.66", fig("0.66"), kind="derived", evidence=[("financebench_dev/pdfs/ADOBE_2015_10K.pdf", 59)])
    assert score("The ratio is about 0.7.", g, sources=[("ADOBE_2015_10K.pdf", 59)]) == "partial"
    assert score("The ratio is about 0.7.", g, sources=[("ADOBE_2015_10K.pdf", 60)]) == "wrong"


def test_chinese_quote_of_evidence_is_partial():
    page = "公司2019年前五名供应商合计采购金额占年度采购总额比例为33.35%"
    g = gold_fig("33.35%", fig("33.35%"), lang="zh", evidence_texts=[page])
    assert score("“公司2019年前五名供应商合计采购金额占年度采购” [1]", g, "zh") == "partial"


# ----- key strings and options --------------------------------------------------------------------------


def test_email_and_url_key_strings():
    g = Gold(text="zqb@ntsquare.com", kind="lookup", language="zh", key_strings=["zqb@ntsquare.com"])
    assert score("四方科技的电子信箱：ZQB@ntsquare.com", g, "zh") == "right"
    assert score("四方科技的电子信箱是 info@ntsquare.com", g, "zh") == "wrong"
    g = Gold(text="url", kind="lookup", language="zh", key_strings=["http://www.changchai.com.cn"])
    assert score("公司网址：www.changchai.com.cn/", g, "zh") == "right"


def test_multiple_choice_first_named_option():
    g = Gold(text="MITSUI O.S.K. LINES", kind="derived", key_strings=["MITSUI O.S.K. LINES"],
             options=["MITSUI O.S.K. LINES", "TSX_Y", "Tradition"])  # fmt: skip
    assert score("Mitsui O.S.K. Lines had the higher equity, well above Tradition.", g) == "right"
    assert score("Tradition had less equity than MITSUI O.S.K. LINES.", g) == "partial"
    assert score("Tradition.", g) == "wrong"


# ----- refusals ------------------------------------------------------------------------------------------

NOT_FOUND_EN = (
    "Not found: no passage of your documents answers this question closely enough. "
    "The nearest passages are listed under Sources: 3M_2018_10K.pdf p. 60."
)
NOT_FOUND_ZH = "未找到：文档中没有与这个问题足够相关的段落。最接近的段落列在“来源”中：年报.pdf p. 5。"
REFUSE = Gold(text="N/A", kind="refuse")


@pytest.mark.parametrize(
    "text",
    [
        NOT_FOUND_EN, NOT_FOUND_ZH, "No passage in the documents matches the question.", "文档中没有与问题相符的段落。",
        "I cannot find the answer in the documents.", "根据已知信息无法回答该问题。", "N/A", "n/a", "",
        "This question cannot be answered from the provided reports.", "The information is not in the documents.",
        "没有找到相关信息。", "The sources do not contain the CFO's name.",
    ],
)  # fmt: skip
def test_refusals_recognised(text):
    assert is_refusal(text)
    assert score(text, REFUSE) == "refused_correctly"
    assert score(text, CAPEX) == "refused_wrongly"


def test_quotes_and_later_sentences_are_not_refusals():
    assert not is_refusal("“The goodwill impairment test was not found to be necessary.” [1]")
    assert not is_refusal("Capex was $1,577 million. Other items were not found in the documents.")
    assert score("“Purchases of PP&E (1,577)” [1]\n“Not found items” [2]", CAPEX) == "right"


def test_answer_to_a_refuse_gold_is_hallucinated():
    assert score("Net profit margin was 12.3% in 2023.", REFUSE) == "hallucinated"


def test_na_accepted_beside_a_value():
    g = gold_fig("N/A | 15.63", fig("15.63"), kind="derived", figures_mode="any", refusal_acceptable=True)
    assert score("N/A", g) == "refused_correctly"
    assert score("The operating margin was 15.63%.", g) == "right"
    assert score("The operating margin was 12%.", g) == "wrong"


def test_absence_statement_is_a_refusal_only_where_refusing_is_right():
    text = "The latest 10-Q does not provide a direct comparison between these figures."
    assert score(text, REFUSE) == "refused_correctly"
    assert not is_refusal(text)
    assert score(text, CAPEX) == "wrong"


# ----- open questions -----------------------------------------------------------------------------------


def test_open_yes_no_stance_and_key_terms():
    g = Gold(text="No, American Water Works had negative working capital of -$1561M in FY 2022.", kind="open",
             question="Does American Water Works have positive working capital based on FY2022 data?",
             key_terms=["#-$1561M", "negative"], yes_no="no")  # fmt: skip
    assert score("No. Working capital was negative: -$1,561 million.", g) == "right"
    assert score("Yes, it had positive working capital.", g) == "wrong"
    assert score("Working capital was negative.", g) == "right"  # negated lead reads as "no"
    assert score("Working capital was $1,561 million negative", g, open_mode="unscored") == "unscored"


def test_open_chinese_key_term_recall():
    g = Gold(text="公司捐赠了防疫物资和核酸检测试剂盒", kind="open", language="zh",
             question="请介绍公司的社会责任工作情况", key_terms=["捐赠", "防疫", "物资", "核酸", "检测", "试剂"])  # fmt: skip
    assert score("公司捐赠了防疫物资，并捐赠核酸检测试剂盒。", g, "zh") == "right"
    assert score("公司捐赠了一批设备。", g, "zh") == "wrong"  # 1/6 < 0.2
    assert score("公司捐赠了防疫用品。", g, "zh") == "partial"  # 2/6


# ----- the question file ----------------------------------------------------------------------------------


@pytest.mark.slow  # reads the evidence pages of financebench_dev and zh_reports_dev (cached after the first run)
def test_question_kinds_halves_and_golds_that_score_right_on_themselves():
    from bench.answer_sets import load, split_half

    records = load("financebench_dev") + load("zh_reports_dev")
    assert {r.kind for r in records} <= {"lookup", "derived", "open", "refuse"}
    assert len({(r.set, r.id) for r in records}) == len(records) == 68 + 45
    for r in records:
        assert r.half == split_half(r.doc_name)
        if r.kind in ("lookup", "derived"):
            assert r.gold.figures or r.gold.key_strings, r.id
        if r.kind != "refuse" and not r.gold.refusal_acceptable:
            assert score(r.gold.text, r.gold, r.language) == "right", r.id  # a gold scores right on itself
    fb = {r.id: r for r in records if r.set == "financebench_dev"}
    assert fb["financebench_id_03029"].kind == "lookup"  # $1577.00 printed as (1,577)
    assert fb["financebench_id_02987"].kind == "derived"  # a turnover ratio


@pytest.mark.slow  # reads the evidence pages of enterprise_rag_challenge_r1 (cached after the first run)
def test_a_comparison_naming_a_company_without_a_report_may_be_refused():
    from bench.answer_sets import load

    erc = {r.question: r for r in load("erc_round1")}
    [mitsui] = [r for q, r in erc.items() if q.startswith("Which company had a higher shareholders' equity")]
    assert mitsui.kind == "derived" and mitsui.gold.refusal_acceptable  # MITSUI O.S.K. LINES' report is absent
    assert score("Not found: no document here is about “mitsui”.", mitsui.gold, "en") == "refused_correctly"
    assert score(mitsui.gold.text, mitsui.gold, "en") == "right"
    [transunion] = [r for q, r in erc.items() if q.startswith('What was the intangible assets of "TransUnion"')]
    assert transunion.kind == "lookup" and not transunion.gold.refusal_acceptable  # its report is here


def test_split_half_rule_is_kept_exactly():
    from bench.answer_sets import split_half

    for name in ("3M_2018_10K", "2020-04-16__四方科技集团股份有限公司__603339__四方科技__2019年__年度报告.pdf"):
        expected = "tuning" if hashlib.sha256(name.encode("utf-8")).digest()[0] % 2 == 0 else "confirmation"
        assert split_half(name) == expected


def test_kind_in_collection_refuses_questions_whose_documents_are_absent():
    from bench.answer_sets import Record, kind_in_collection

    g = gold_fig("$36,413 million", fig("$36,413 million"))
    r = Record("docugami_sec10q", "docugami-68", "q", g, "lookup", "tuning", "en", "AAPL",
               ["docugami_sec10q/data/v1/docs/2023 Q3 AAPL.pdf"])  # fmt: skip
    assert kind_in_collection(r, {"2023 Q3 AAPL.pdf", "2023 Q1 AAPL.pdf"}) == "lookup"
    assert kind_in_collection(r, {"2023 Q1 AAPL.pdf"}) == "refuse"
