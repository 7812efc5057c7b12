"""What the page's HTML says: plain words in the banner, ranks instead of raw scores, whole-word highlights."""

import re

from rag_app.health import EmbeddingStatus, Health, ModelState
from rag_app.web.render import status_markdown

RAW = (
    "no answer model could be loaded (cannot load the answer model 'Qwen/Qwen2.5-0.5B-Instruct': We couldn't "
    "connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files.)"
)


def health(state: ModelState, reason: str = "") -> Health:
    return Health(state, None, reason, EmbeddingStatus("all-MiniLM-L6-v2", "cpu", "fp32"), "documents")


def visible(markup: str) -> str:
    """The text shown before any fold is opened."""
    return re.sub(r"<details>.*?</details>", "", markup, flags=re.S)


def test_the_banner_says_in_plain_words_what_extractive_mode_means_and_hides_the_exception():
    markup = status_markdown(health(ModelState.EXTRACTIVE, RAW))
    shown = visible(markup)
    assert "Extractive mode" in shown and "quote the sentences of your documents" in shown
    assert "RAG_LLM_MODEL" in shown and "huggingface.co" not in shown and "couldn't" not in shown
    assert "<details><summary>details / 详情</summary>" in markup and "huggingface.co" in markup
    assert "抽取模式" in shown and "不生成" in shown  # the page is bilingual: so is its banner


def test_a_failed_model_gets_a_plain_banner_too():
    shown = visible(status_markdown(health(ModelState.FAILED, "CUDA out of memory. Tried to allocate 2 GiB")))
    assert "could not be loaded" in shown and "问答模型无法加载" in shown and "out of memory" not in shown


def test_no_banner_when_a_model_answers():
    assert "rag-banner" not in status_markdown(health(ModelState.READY))


def test_sources_show_no_raw_scores():
    from rag_app.answering.events import Source
    from rag_app.records import SearchHit
    from rag_app.web.render import sources_html

    hit = SearchHit("report.pdf", 3, 0, "Gross margin was 41.5 percent.", 0.8123, "sha", "id")
    markup = sources_html([Source(1, hit)], "gross margin")
    assert "0.812" not in markup and "score" not in markup and "[1]" in markup


def test_highlights_match_whole_words_not_prefixes():
    from rag_app.web.render import highlighted

    text = "The quarter Ended in June; at the end of the quarter, endorsements rose."
    marked = re.findall(r"<mark[^>]*>(.*?)</mark>", highlighted(text, "What happened at the End of the quarter?"))
    assert marked == ["quarter", "end of the quarter"] or marked == ["quarter", "end", "quarter"]


def test_chinese_highlights_whole_words():
    from rag_app.web.render import highlighted

    marked = re.findall(
        r"<mark[^>]*>(.*?)</mark>", highlighted("本公司净利润为 1.2 亿元，利润率提高。", "净利润是多少？")
    )
    assert marked == ["净利润"]
