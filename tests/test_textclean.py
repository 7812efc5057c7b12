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
