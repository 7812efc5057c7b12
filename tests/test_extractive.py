"""Extractive answers are honest: whole numbers and words, the named company's report first, "not found"."""

import re

from rag_app.answering.citations import check_citations
from rag_app.answering.events import Source, TokenEvent
from rag_app.answering.strategies.extractive import RELEVANT_SIMILARITY, answer_extractive, clip, split_sentences
from rag_app.answering.strategy_context import StrategyContext
from rag_app.prompts import load_prompts
from rag_app.records import DocumentInfo, SearchHit
from rag_app.retrieval.documents import DocumentRoute, route

CASH_PAGE = (
    "CONDENSED CONSOLIDATED BALANCE SHEETS (in millions) December 31, 2022 March 31, 2023\n"
    "ASSETS Current assets: Cash and cash equivalents $ 53,888 $ 49,605 Marketable securities 16,138 "
    "15,425 Inventories 34,405 35,030 Total current assets 146,791 141,340"
)


def hit(file: str, text: str, offset: int = 0, sha: str | None = None, page: int = 4) -> SearchHit:
    return SearchHit(file, page, offset, text, 0.5, sha or file, f"{file}:{page}:{offset}")


def ask(question: str, sources: list[Source], embeddings, routed: DocumentRoute | None = None) -> str:
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", question) else "en"
    ctx = StrategyContext(question, sources, None, load_prompts(lang), 64, 0.0, embed=embeddings.embed_array)
    ctx.route = routed or DocumentRoute()
    return "".join(e.text for e in answer_extractive(ctx) if isinstance(e, TokenEvent))


def document(name: str, sha: str | None = None) -> DocumentInfo:
    return DocumentInfo(name, sha or name, 1, 1, 0, "", "", "")


def quotes(text: str) -> list[str]:
    return re.findall(r"“([^”]+)”", text)


def test_a_quote_never_ends_inside_a_number_or_a_word(embeddings):
    cut = CASH_PAGE.index("53,888") + len("53,88")  # the chunk ends in the middle of the number
    source = Source(1, hit("2023 Q1 AMZN.pdf", CASH_PAGE[:cut]), context=CASH_PAGE)
    text = ask("How much cash and cash equivalents did Amazon have at the end of the quarter?", [source], embeddings)
    assert "$ 53,888 $ 49,605" in text and "53,88”" not in text and "$”" not in text
    for quote in quotes(text):
        position = " ".join(CASH_PAGE.split()).index(quote)
        after = " ".join(CASH_PAGE.split())[position + len(quote) : position + len(quote) + 1]
        assert after in ("", " "), f"quote ends inside a word: {quote!r}"
    assert check_citations(text, [source]).unverified_quotes == []


def test_a_chunk_cut_mid_number_without_its_neighbours_drops_the_partial_number():
    sentences = split_sentences("Total gross margin for the quarter was $ 36,41", cut_end=True)
    assert sentences == [] or not sentences[-1].endswith("36,41")
    assert split_sentences("was $1.1 billion and $1.2", cut_end=True) == []  # too short once cut


def test_long_sentences_are_clipped_at_a_word_boundary():
    sentence = "Revenue " + " ".join(f"{n:,}" for n in range(100_000, 100_000 + 80 * 7919, 7919))
    clipped = clip(sentence, 100)
    assert len(clipped) <= 100 and sentence.startswith(clipped) and sentence[len(clipped)] == " "


def test_quotes_come_from_the_document_the_question_names_first(embeddings):
    apple = Source(
        1,
        hit(
            "2023 Q1 AAPL.pdf",
            "Cash and cash equivalents at the end of the quarter were "
            "$ 20,535 million, compared with $ 23,646 million at the beginning of the quarter.",
        ),
    )
    amazon = Source(2, hit("2023 Q1 AMZN.pdf", CASH_PAGE))
    documents = [document("2023 Q1 AAPL.pdf"), document("2023 Q1 AMZN.pdf")]
    covers = {"2023 Q1 AAPL.pdf": frozenset({"apple"}), "2023 Q1 AMZN.pdf": frozenset({"amazon"})}
    question = "How much cash and cash equivalents did Amazon have at the end of the quarter?"
    routed = route(question, documents, covers)
    assert routed.named["2023 Q1 AMZN.pdf"] > 0 and "2023 Q1 AAPL.pdf" not in routed.named
    text = ask(question, [apple, amazon], embeddings, routed)
    assert text.splitlines()[0].endswith("[2]"), text


def test_an_unrelated_question_is_answered_not_found_with_the_nearest_sources(embeddings):
    sources = [Source(1, hit("2023 Q1 AMZN.pdf", CASH_PAGE)), Source(2, hit("notes.pdf", "The meeting "
               "was moved to Thursday afternoon because the room was booked.", page=2))]  # fmt: skip
    text = ask("What is the boiling point of liquid nitrogen in Kelvin?", sources, embeddings)
    assert text.startswith("Not found:") and "2023 Q1 AMZN.pdf p. 4" in text and "notes.pdf p. 2" in text
    assert quotes(text) == [] and "[1]" not in text
    chinese = ask("液氮的沸点是多少开尔文？", sources, embeddings)
    assert chinese.startswith("未找到") and "2023 Q1 AMZN.pdf p. 4" in chinese
    assert 0 < RELEVANT_SIMILARITY < 1


def test_a_company_named_in_the_question_matches_its_cover_page_terms():
    covers = {"amzn": frozenset({"amazon.com", "inc", "10-q", "2023"}), "acme": frozenset({"acme", "robotics", "2023"})}
    documents = [document("2023 Q1 AMZN.pdf", "amzn"), document("acme-q3.pdf", "acme")]
    routed = route("How much cash did Amazon have at the end of the quarter?", documents, covers)
    assert routed.named["amzn"] > 0 and "acme" not in routed.named  # "amazon" inside the cover's "amazon.com"
    assert routed.best_named(["amzn", "acme"]) == {"amzn"} and routed.best_named(["acme"]) == set()


def test_chinese_quotes_are_shorter_and_end_at_a_character():
    sentence = "本公司" + "归属于上市公司股东的净利润为三千四百五十八万元" * 12
    (quote,) = split_sentences(sentence)
    assert len(quote) <= 150 and sentence.startswith(quote)
