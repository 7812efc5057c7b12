"""The pages inside the routed filing are also ranked for the question without the words that name the filing (its
company, form and period: rag_app.text.terms.unnamed): those words found the filing, and inside it they match the
pages that repeat them (its cover, its certifications, the opening of its MD&A) rather than the page asked for
(RAG_RETRIEVAL_UNNAMED_WEIGHT)."""

from dataclasses import replace

import pytest
from pdfgen import write_pdf

from rag_app.requests import SearchRequest
from rag_app.retrieval.documents import DocumentRoute
from rag_app.retrieval.fusion import READ_CHINESE, RankingOptions, ranking_options
from rag_app.text.terms import name_terms, unnamed

MSFT = name_terms("2023 Q1 MSFT.pdf") | {"microsoft", "corporation", "10-q", "quarterly", "report", "form", "market"}


@pytest.mark.parametrize(
    "question, left",
    [
        (  # the company, its ticker-free name with "'s", the quarter, the year and the form go; "in the ?" with them
            "What details were provided about changes in Microsoft's debt and interest expenses in the Q1 2023 10-Q?",
            "What details were provided about changes in debt and interest expenses?",
        ),
        ("In the first quarter of 2023, how much did Microsoft spend on R&D?", "how much did spend on R&D?"),
        ("What was MSFT's FY2023 revenue?", "What was revenue?"),
        ("As of FY 2023, how much does Microsoft expect to pay its retirees in 2026?",
         "how much does expect to pay its retirees in 2026?"),  # a year no title holds stays: it asks for a column
        # a lower-case word a cover holds stays ("market"), and so does the capital that opens the question
        ("Market risk: how exposed is Microsoft to the market for foreign currencies?",
         "Market risk: how exposed is to the market for foreign currencies?"),
        ("In the third quarter, what did Microsoft report?", "In the third quarter, what did report?"),  # not its quarter
        ("Microsoft's revenue in Q1 2023?", "revenue?"),  # an owner's name opening the question
        ("The 2023 10-Q of Microsoft", "The 2023 10-Q of Microsoft"),  # nothing but names: the question itself
        ("Apple's Q1 2023 revenue?", "Apple's revenue?"),  # another company's name is no name of these documents
    ],
)  # fmt: skip
def test_a_question_without_the_names_of_its_documents(question, left):
    assert unnamed(question, MSFT) == left


def test_a_chinese_question_keeps_its_words_and_its_report_loses_only_its_titled_year():
    titles = name_terms("常柴股份_2019年年度报告.pdf")
    assert unnamed("常柴股份2019年的营业收入是多少？", titles) == "常柴股份年的营业收入是多少？"
    assert unnamed("常柴股份2020年的营业收入预计是多少？", titles) == "常柴股份2020年的营业收入预计是多少？"


def test_the_weight_sets_both_rankings_and_chinese_questions_keep_theirs():
    assert (RankingOptions().within_unnamed_dense_weight, RankingOptions().within_unnamed_vector_weight) == (0.25, 0.25)
    off = ranking_options(3.0, "add", 0.0)
    assert (off.within_unnamed_dense_weight, off.within_unnamed_vector_weight) == (0.0, 0.0)
    slots = ranking_options(3.0, "slots", 0.5)
    assert (slots.within_order, slots.within_unnamed_vector_weight) == ("slots", 0.5)
    assert READ_CHINESE["within_unnamed_dense_weight"] == READ_CHINESE["within_unnamed_vector_weight"] == 0.0


FILLER = [f"Paragraph {i} reviews general operating matters of the business during the period." for i in range(60)]
ACME = [
    "UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\nQuarterly report for the first quarter of 2023\n"
    "Acme Corporation",
    "Item 2. Management's discussion and analysis. This Quarterly Report on Form 10-Q of Acme Corporation for the "
    "first quarter of 2023 contains forward-looking statements about Acme Corporation's results in the first quarter "
    "of 2023 and beyond; Acme Corporation's actual results in 2023 may differ materially.",
    "NOTE 7 - DEBT\nThe components of debt: senior unsecured notes of $4.2 billion maturing 2025 to 2040 at stated "
    "interest rates of 2.4% to 4.1%; interest expense on borrowings was $38 million; no commercial paper was "
    "outstanding.",
    *("\n".join(FILLER[i : i + 6]) for i in range(0, 48, 6)),
]  # 11 pages: the rankings inside a document start at 10
QUESTION = "What details did Acme Corporation's Q1 2023 10-Q give about its debt and interest expenses?"


def test_the_debt_note_outranks_the_pages_that_repeat_the_filings_names(service, settings, tmp_path, monkeypatch):
    """Acme's MD&A opening repeats the company, the form and the quarter the question names; its debt note answers.
    The question without those words is embedded with it, in one pass, and ranks the note first; with the lever off
    (weight 0) only the question is embedded, and the cover and the MD&A opening rank above the note."""
    write_pdf(tmp_path / "filings" / "Acme_2023Q1_10Q.pdf", ACME)
    write_pdf(tmp_path / "filings" / "Globex_2023Q1_10Q.pdf", ["Globex Incorporated\nForm 10-Q 2023", FILLER[0]])
    service.ingest([tmp_path / "filings"])
    passes = []
    embed, embed_many = service.embeddings.embed_query, service.embeddings.embed_queries
    monkeypatch.setattr(service.embeddings, "embed_query", lambda text: passes.append([text]) or embed(text))
    monkeypatch.setattr(
        service.embeddings, "embed_queries", lambda texts: passes.append(list(texts)) or embed_many(texts)
    )
    retriever = service.retriever(service.store(with_model=True))
    sha = next(d.sha256 for d in retriever.store.list_documents() if d.name.startswith("Acme"))

    def pages(hits) -> list[int]:
        return [h.page for h in hits if h.file.startswith("Acme")]

    hits = service.search(SearchRequest(query=QUESTION, k=5)).hits
    assert passes == [[QUESTION, "What details did give about its debt and interest expenses?"]]
    assert pages(hits)[0] == 3, pages(hits)  # the debt note
    # inside the filing, the whole question's own vector puts the MD&A opening above the note; the unnamed one does not
    whole, without = (retriever.store.page_ranking(embed(text), sha) for text in passes[0])
    assert whole.index(2) < whole.index(3) and without[0] == 3, (whole[:3], without[:3])
    passes.clear()
    settings.retrieval_unnamed_weight = 0.0
    off = service.search(SearchRequest(query=QUESTION, k=5)).hits
    assert passes == [[QUESTION]] and pages(off).index(3) > 0, pages(off)  # off: the cover and the MD&A first


def test_the_documents_a_question_names_and_only_their_pages(service, tmp_path):
    """The names taken away are those of the documents the question names (its names' best match, else its words',
    else the one document searched); the pages ranked for what is left are those of such a document only: where the
    fusion ranks another first, its pages would crowd out the one asked about."""
    write_pdf(tmp_path / "filings" / "Acme_2023Q1_10Q.pdf", ACME)
    service.ingest([tmp_path / "filings"])
    retriever = service.retriever(service.store(with_model=True))
    acme, other = retriever.store.list_documents()[0].sha256, "other"
    titles = {acme: name_terms("Acme_2023Q1_10Q.pdf") | {"acme", "corporation", "10-q"}, other: frozenset({"globex"})}
    unnamed_text = "What details did give about its debt and interest expenses?"
    named = DocumentRoute(named={acme: 2.0, other: 0.5}, titles=titles)
    assert retriever._unnamed_question(QUESTION, named, {acme, other}) == (unnamed_text, frozenset({acme}))
    by_words = DocumentRoute(scores={acme: 1.0, other: 3.0}, titles=titles)  # no name tells them apart: the words do
    assert retriever._unnamed_question(QUESTION, by_words, {acme, other}) == ("", frozenset())  # Globex's names: none
    alone = DocumentRoute(titles={acme: titles[acme]})  # one document searched: its names
    assert retriever._unnamed_question(QUESTION, alone, {acme}) == (unnamed_text, frozenset({acme}))
    ranked, counts = [(other, 2), (acme, 1)], {acme: 11, other: 11}
    assert retriever._vectors(([1.0], [2.0], frozenset({acme})), ranked, counts) == ([1.0], {})  # Globex first
    assert retriever._vectors(([1.0], [2.0], frozenset({acme})), ranked[::-1], counts) == ([1.0], {acme: [2.0]})
    assert retriever._vectors(([1.0], [2.0], frozenset({acme})), ranked[::-1], {acme: 3}) == ([1.0], {})  # too short
    retriever.ranking = replace(retriever.ranking, within_unnamed_dense_weight=0, within_unnamed_vector_weight=0)
    assert retriever._unnamed_question(QUESTION, named, {acme, other}) == ("", frozenset())  # off


def test_a_question_typed_without_capitals_names_its_documents_by_its_owners_and_file_names():
    """Typed without capitals, a question shows no name by its case: its subjects that it writes as owners or that a
    file name spells are its names, in the route's named view and in the question its pages are also ranked for
    without them; a word a few covers happen to hold is not ("legal", "effective")."""
    from rag_app.records import DocumentInfo
    from rag_app.retrieval.documents import caseless_names, route

    files = ["PEPSICO_2022_10K.pdf", "PEPSICO_2023_8K.pdf", "CORNING_2022_10K.pdf", "BESTBUY_2019_10K.pdf"]
    question = "has pepsico's legal team reported ongoing battles, and what effective rate did best buy pay?"
    assert caseless_names(question, {"pepsico", "legal", "effective", "buy", "best"}, files) == {
        "pepsico",
        "buy",
        "best",
    }
    documents = [DocumentInfo(name, name.split(".")[0], 1, 1, 0, "", "", "") for name in files]
    covers = {"PEPSICO_2022_10K": frozenset({"pepsico", "inc"}), "PEPSICO_2023_8K": frozenset({"pepsico", "legal"}),
              "CORNING_2022_10K": frozenset({"corning", "effective"}), "BESTBUY_2019_10K": frozenset({"best", "buy"})}  # fmt: skip
    lower = route("how much has the effective tax rate of corning changed in fy2022?", documents, covers)
    written = route("How much has the effective tax rate of Corning changed in FY2022?", documents, covers)
    shas = [d.sha256 for d in documents]
    assert lower.best_named(shas) == written.best_named(shas) == {"CORNING_2022_10K"} and lower.caseless == {"corning"}
    assert unnamed("what was corning's fy2023 revenue?", MSFT | {"corning"}, {"corning"}) == "what was revenue?"
    assert unnamed("what was corning's fy2023 revenue?", MSFT | {"corning"}) == "what was corning's revenue?"  # before
