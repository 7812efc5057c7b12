"""A company named by its listing symbol ("AMZN's revenue") is the company whose report states that symbol as its
own: "under the symbol “AMZN.”" in its Item 5, or its cover's table of securities (rag_app.text.terms.listing_symbols,
rag_app.storage.chunk_table.cover_terms, rag_app.retrieval.documents.with_symbols_asked)."""

from pdfgen import write_pdf

from rag_app.records import DocumentInfo
from rag_app.requests import AskRequest, SearchRequest
from rag_app.retrieval.documents import route, symbol_names, with_symbols_asked
from rag_app.text.terms import listing_symbols, name_terms


def test_a_report_states_its_listing_symbol_as_filings_print_it():
    # sentences of financebench_dev's 10-Ks, as PDFium reads them
    stated = {
        "Our common stock is traded on the Nasdaq Global Select Market under the symbol “AMZN.” Holders": "AMZN",
        "The Company’s ticker symbol is  MMM. As used herein, the term “3M”": "MMM",
        "The NYSE ticker symbol for Corning Incorporated is “GLW”. As of December 31, 2022": "GLW",
        "Stock Trading Symbol – PEP. Stock Exchange Listings – The Nasdaq Global Select Market": "PEP",
        "the New York Stock Exchange where it trades under the symbol BA. As of February 1, 2019": "BA",
        "listed on the New York Stock Exchange under trading symbol ‘NKE.’ Copies of the Company’s Form 10-K": "NKE",
        "Our common stock is traded on the New York Stock Exchange (NYSE) under the symbol LMT. Stockholder": "LMT",
        "Class B common stock trades under the symbol “BRK.B” and": "BRK.B",
    }
    for text, symbol in stated.items():
        assert listing_symbols(text) == {symbol}, text
    # the cover's table: the symbol before its exchange, where the page says "Trading Symbol"
    cover = ("Securities registered pursuant to Section 12(b) of the Act: Title of each class Trading Symbol(s) Name of "
             "each exchange on which registered Common stock JPM The New York Stock Exchange Depositary Shares, each "
             "representing a one-four hundredth interest in a share of 6.10% Non-Cumulative Preferred Stock, Series AA "
             "JPM PR G The New York Stock Exchange")  # fmt: skip
    assert listing_symbols(cover) == {"JPM"}  # "G": a series of preferred shares, one letter
    # not symbols: a word after "symbols", a table's symbol before an exchange where no table of securities is
    assert listing_symbols("tokenization, which replaces sensitive data with symbols (tokens) to keep") == set()
    assert listing_symbols("The symbol of our brand is a swoosh") == set()
    assert listing_symbols("We sell through AMEX New York Stock Exchange members") == set()
    # another company's, as a director's biography names it
    assert (
        listing_symbols("Mr. Chaouki serves on the boards of MAIA Biotechnology, Inc. (NYSE American: MAIA)") == set()
    )


def test_a_question_writing_a_symbol_names_the_documents_stating_it():
    documents = [DocumentInfo(name, sha, 1, 1, 0, "", "", "") for name, sha in
                 (("AMAZON_2017_10K.pdf", "amzn17"), ("AMAZON_2019_10K.pdf", "amzn19"), ("COSTCO_2021_10K.pdf", "cost"),
                  ("NIKE_2019_10K.pdf", "nke"))]  # fmt: skip
    covers = {"amzn17": frozenset({"amazon.com", "inc", "$AMZN"}), "amzn19": frozenset({"amazon.com", "$AMZN"}),
              "cost": frozenset({"costco", "wholesale", "$COST"}), "nke": frozenset({"nike", "$NKE"})}  # fmt: skip
    scores = route("What was AMZN's net income in FY2019?", documents, covers).scores
    assert max(scores, key=scores.get) == "amzn19" and set(scores) >= {"amzn17", "amzn19"}
    assert route("NVDA的营业收入是多少？", documents, covers).titles == route("营业收入", documents, covers).titles
    # a symbol names a document only where the question writes it as one: Costco's COST is no word of a question
    assert "cost" not in route("What was Nike's cost of sales in FY2019?", documents, covers).scores
    assert set(route("What was COST's cost of sales?", documents, covers).named) == {"cost"}
    assert with_symbols_asked("How much did the cost of sales grow?", covers) is covers  # nothing to add


def test_a_question_naming_a_company_by_its_symbol_is_answered_from_its_report(service, tmp_path):
    """Two companies' 10-Ks: one states its symbol in Item 5 only (10-Ks before 2019 print none on the cover), the
    other in its cover's table. A question naming either by its symbol is routed to its report, whose figure is
    quoted and cited; before, the symbol was a word of no title, and the page stating it ranked above the figure."""
    folder = tmp_path / "filings"
    statement = ("CONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions) Year ended December 31, 2022 2021 2020\n"
                 "Total revenue {} 5,122 4,410\nCost of revenue 1,020 990 950\nOperating income 640 600 570")  # fmt: skip
    write_pdf(folder / "ACME_2022_10K.pdf", [
        "FORM 10-K\nANNUAL REPORT\nFor the fiscal year ended December 31, 2022\nAcme Corporation",
        statement.format("6,812"),
        "Item 5. Market for Registrant's Common Equity\nOur common stock is traded on the Nasdaq Global Select "
        "Market under the symbol 'ACMQ.' Holders of record: 2,114.",
    ])  # fmt: skip
    write_pdf(folder / "ZENITH_2022_10K.pdf", [
        "FORM 10-K\nANNUAL REPORT\nFor the fiscal year ended December 31, 2022\nZenith Industries Inc.\n"
        "Securities registered pursuant to Section 12(b) of the Act: Title of each class Trading Symbol(s) Name of "
        "each exchange on which registered\nCommon Stock, $0.01 par value ZNTH New York Stock Exchange",
        statement.format("9,277"),
        "Item 5. Market for Registrant's Common Equity\nHolders of record: 5,730.",
    ])  # fmt: skip
    service.ingest([folder])
    for question, file, figure in (("What was ACMQ's total revenue in FY2022?", "ACME_2022_10K.pdf", "6,812"),
                                   ("What was ZNTH's total revenue in FY2022?", "ZENITH_2022_10K.pdf", "9,277")):  # fmt: skip
        hits = service.search(SearchRequest(query=question, k=3)).hits
        assert (hits[0].file, hits[0].page) == (file, 2), [(h.file, h.page) for h in hits]
        answer = service.answer(AskRequest(question=question, strategy="extractive", k=3))
        cited = {s.hit.file for s in answer.sources if s.cited}
        assert figure in answer.answer and cited == {file}, answer.answer


def test_a_symbol_is_read_as_the_name_its_filings_file_names_and_pages_use():
    """The words read for a written symbol: what the stating filings' file names spell, their titles alone hold and
    their pages run through; not their covers' other words, nor a symbol their pages use as a name already."""
    covers = {"amzn17": frozenset({"amazon.com", "amazon", "seattle", "$AMZN"}),
              "amzn19": frozenset({"amazon.com", "amazon", "seattle", "$AMZN"}),
              "mgm": frozenset({"mgm", "resort", "las", "vega", "$MGM"}), "nke": frozenset({"nike", "$NKE"}),
              "aapl": frozenset({"apple", "$AAPL"})}  # fmt: skip
    files = {"amzn17": "AMAZON_2017_10K.pdf", "amzn19": "AMAZON_2019_10K.pdf", "mgm": "MGMRESORTS_2022_10K.pdf",
             "nke": "NIKE_2019_10K.pdf", "aapl": "2023 Q1 AAPL.pdf"}  # fmt: skip
    titles = {sha: cover | name_terms(files[sha]) for sha, cover in covers.items()}
    pages = {"amazon": 0.2, "amazon.com": 0.3, "seattle": 0.02, "amzn": 0.01, "mgm": 0.55, "resort": 0.4,
             "nike": 0.6, "apple": 0.7, "aapl": 0.0, "2019": 0.9, "10k": 0.05}  # fmt: skip

    def running(term: str, sha: str) -> float:
        return pages.get(term, 0.0)

    def names(question: str) -> list[str]:
        return symbol_names(question, covers, titles, files, running)

    assert names("What was AMZN's net income in FY2019?") == ["amazon"]  # not "amazon.com" (no file's word), "seattle"
    assert names("NKE的营业收入是多少？") == ["nike"]
    assert names("What was MGM's revenue?") == []  # its pages write MGM: a name already
    assert names("AAPL's iPhone sales?") == []  # its file name spells the symbol, not the company
    assert names("What was the amzn revenue? And TSLA's?") == []  # lower case names nothing; TSLA no file states
    assert names("How did NKE and AMZN compare?") == ["nike", "amazon"]


def test_a_symbol_question_ranks_passages_as_the_company_named(settings, embeddings, tmp_path, monkeypatch):
    """Routed to the filing that states "ACMQ", the question still ranks passages by its words, and a symbol is a
    word of Item 5 alone: in financebench_dev's 52 filings "AMZN's FY2019 net income" drew every candidate but
    four from other filings and ranked Kraft Heinz's income statement first. The rankings of passages read it
    with the company's name (the question shown stays as asked), and its statement page is cited."""
    from rag_app.service import RagService

    folder = tmp_path / "filings"
    write_pdf(folder / "ACME_2022_10K.pdf", [
        "FORM 10-K\nANNUAL REPORT\nFor the fiscal year ended December 31, 2022\nAcme Corporation",
        "ACME CORPORATION\nCONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions) 2022 2021\nTotal revenue 6,812 "
        "5,122\nCost of sales 1,020 990",
        *(f"Note {n}. Acme Corporation leases {n} warehouses and {n + 2} offices under operating leases expiring "
          "through 2030." for n in range(1, 8)),
        "Item 5. Market for Registrant's Common Equity\nOur common stock trades on the Nasdaq Global Select Market "
        "under the symbol 'ACMQ.' Holders of record: 2,114.",
    ])  # fmt: skip
    write_pdf(folder / "BOLT_2022_10K.pdf", [
        "FORM 10-K\nANNUAL REPORT\nFor the fiscal year ended December 31, 2022\nBolt Holdings",
        *(f"Total revenue in FY2022 grew; total revenue for fiscal 2022 by segment {n}: total revenue was {n},100 "
          f"million in FY2022 against {n},000 million in FY2021." for n in range(2, 6)),
    ])  # fmt: skip
    service = RagService(settings)
    service.embeddings = embeddings
    service.ingest([folder])
    store = service.store(with_model=True)
    read = []
    searched = store.search_lexical
    monkeypatch.setattr(store, "search_lexical", lambda query, *args: read.append(query) or searched(query, *args))
    monkeypatch.setattr(service, "store", lambda *args, **kwargs: store)
    question = "What was ACMQ's total revenue in FY2022?"
    result = service.search(SearchRequest(query=question, k=3))
    assert read == [question + " (acme)"] and result.query == question
    assert (result.hits[0].file, result.hits[0].page) == ("ACME_2022_10K.pdf", 2)
    answer = service.answer(AskRequest(question=question, strategy="extractive", k=3))
    assert "6,812" in answer.answer and {s.hit.file for s in answer.sources if s.cited} == {"ACME_2022_10K.pdf"}
    read.clear()
    service.search(SearchRequest(query="What was Bolt's total revenue in FY2022?", k=3))
    assert read == ["What was Bolt's total revenue in FY2022?"]  # a question writing no symbol is read as asked


def test_a_chunk_table_of_the_layout_before_reads_its_covers_again_in_place(tmp_path):
    """Layout 3 kept covers without the stated symbols. Opened now, its covers are read again from the chunks' texts
    it holds (the embedded store's only copy of them): nothing is dropped, nothing is re-ingested."""
    import sqlite3

    from rag_app.records import Chunk
    from rag_app.storage.chunk_table import ChunkTable

    path = tmp_path / "chunks.sqlite"
    table = ChunkTable(path)
    texts = [("a:1:0", "FORM 10-K Acme Corporation"), ("a:3:0", "traded on Nasdaq under the symbol 'ACMQ.' Holders")]
    table.add("a", [Chunk(c, t, int(c.split(":")[1]), 0, i) for i, (c, t) in enumerate(texts)], "ACME_2022_10K.pdf", 3)
    uid = table.state()[0]
    assert "$ACMQ" in table.cover_terms()["a"]
    table.close()
    with sqlite3.connect(path) as old:  # as layout 3 wrote it
        old.execute("UPDATE covers SET terms = '10-k acme corporation form'")
        old.execute("PRAGMA user_version = 3")
    table = ChunkTable(path)
    assert table.cover_terms()["a"] == {"10-k", "acme", "corporation", "form", "$ACMQ"}
    assert table.state()[0] == uid and [c for c, _ in table.search("holders", 2)] == ["a:3:0"]
