"""Clean-up of parser output: hyphenation, whitespace, control characters, CJK line breaks."""

from rag_app.text.clean import clean_page_text, is_cjk_heavy


def test_joins_words_hyphenated_across_lines():
    assert clean_page_text("the inter-\nnational market") == "the international market"


def test_keeps_real_hyphens_and_capitalised_continuations():
    assert clean_page_text("Hewlett-\nPackard and 2019-\n2020") == "Hewlett-\nPackard and 2019-\n2020"


def test_collapses_whitespace_and_blank_lines():
    assert clean_page_text("  a \t  b\u00a0\u00a0c \n \n\n  d  ") == "a b c\nd"


def test_drops_nul_and_control_characters_and_expands_ligatures():
    assert clean_page_text("fi\x00nan\x07cial \ufb01rm\u200b") == "financial firm"


def test_undoes_line_breaks_between_chinese_characters():
    raw = "公司主营业务是食品冷冻设备及罐式集装箱的研发\n、\n生产和销售\n。\n报告期内\n，\n公司"
    assert clean_page_text(raw) == "公司主营业务是食品冷冻设备及罐式集装箱的研发、生产和销售。报告期内，公司"


def test_chinese_table_cells_stay_apart_and_numbers_join():
    raw = "201\n9\n年年度报告\n \n第一节\n \n释义\n \n四方香港\n \n指"
    assert clean_page_text(raw) == "2019年年度报告 第一节 释义 四方香港 指"


def test_latin_words_in_a_chinese_page_keep_a_space():
    raw = "公司的外文名称\nSQUARE\nTECHNOLOGY\n集团股份有限公司" * 3
    assert "SQUARE TECHNOLOGY" in clean_page_text(raw)


def test_english_page_with_a_chinese_name_keeps_its_line_breaks():
    cleaned = clean_page_text("Revenue grew.\nThe subsidiary 四方\n科技 reported\nprofit.")
    assert cleaned == "Revenue grew.\nThe subsidiary 四方科技 reported\nprofit."
    assert not is_cjk_heavy(cleaned)


# A page of a Chinese annual report's balance sheet as PDFium prints it: one row a line, rows without figures
# between them, a sentence wrapped after a figure, and a title before the table
CHINESE_TABLE = (
    "浙江海翔药业股份有限公司 2019 年年度报告全文\n83\n永续债\n租赁负债\n预计负债 1,333,333.00 12,971,002.47\n"
    "递延收益 1,269,332.86 1,262,720.34\n递延所得税负债\n负债合计 525,802,580.88 692,654,284.96\n所有者权益：\n"
    "股本 1,618,715,253.00 1,618,820,253.00\n减：库存股 301,511,513.90 325,880,561.68\n"
    "所有者权益（或股东权\n益）合计\n1,132,603,716.40 1,103,214,999.16\n3、合并利润表\n单位：元\n"
    "项目 2019 年度 2018 年度\n一、营业总收入 2,941,412,770.30 2,718,608,796.51\n"
    "营业收入和营业成本同比分别增长 8.20% 3.10%\n，主要来自原料药的销\n售。\n"
)


def test_a_chinese_tables_rows_keep_their_lines():
    cleaned = clean_page_text(CHINESE_TABLE)
    lines = cleaned.split("\n")
    assert "负债合计 525,802,580.88 692,654,284.96" in lines
    assert "股本 1,618,715,253.00 1,618,820,253.00" in lines
    assert "一、营业总收入 2,941,412,770.30 2,718,608,796.51" in lines
    # a label that wrapped onto two lines above its figures is one row again
    assert "所有者权益（或股东权益）合计1,132,603,716.40 1,103,214,999.16" in lines
    # lines without figures still join their neighbours, and the columns' header stays on a line of its own
    assert "递延所得税负债" in lines and "3、合并利润表单位：元项目 2019 年度 2018 年度" in lines
    # a figure the next line goes on with ("，主要...") is prose, joined as before
    assert "营业收入和营业成本同比分别增长 8.20% 3.10%，主要来自原料药的销售。" in lines
    assert is_cjk_heavy(cleaned)


def test_a_chinese_tables_rows_are_quoted_as_rows():
    from rag_app.answering.passages import header_for, units

    page = clean_page_text(CHINESE_TABLE)
    rows = {u.label: u for u in units(page) if u.kind == "row"}
    assert rows["负债合计"].text == "负债合计 525,802,580.88 692,654,284.96"
    header = header_for(page, rows["一、营业总收入"])
    assert header is not None and "2019 年度 2018 年度" in header.text
