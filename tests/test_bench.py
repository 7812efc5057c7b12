"""The measuring instruments: the retrieval metrics compute what they claim, and the results page
is what the result files give."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from bench.retrieval import best_threshold, first_hit_rank, hit_metrics, roc_auc

ERC_QUESTIONS = 72  # bench/data/analyst_erc.jsonl: 4 writers, 3 reports each, 6 questions a report


def test_hit_metrics_and_mrr():
    ranks = [1, 3, None, 6]
    metrics = hit_metrics(ranks)
    assert (metrics["hit@1"], metrics["hit@5"], metrics["hit@10"]) == (0.25, 0.5, 0.75)
    assert metrics["mrr"] == round((1 + 1 / 3 + 1 / 6) / 4, 3)
    assert metrics["curve"][:3] == [0.25, 0.25, 0.5]
    assert first_hit_rank(["a", "b", "c"], {"c"}.__contains__) == 3
    assert first_hit_rank(["a"], {"z"}.__contains__) is None


def test_roc_auc_and_threshold():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.5], [0.5]) == 0.5
    assert roc_auc([0.1], [0.9]) == 0.0
    assert best_threshold([0.9, 0.8], [0.1, 0.2]) == (0.8, 1.0)


def test_the_results_page_is_generated_from_the_results():
    result = subprocess.run([sys.executable, "-m", "bench.report", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_questions_are_split_by_document_into_fixed_halves():
    from bench.retrieval import financebench_questions, split_half, zh_reports_questions

    assert split_half("3M_2018_10K") == split_half("3M_2018_10K") in ("tuning", "confirmation")
    for questions in (financebench_questions(), zh_reports_questions()):
        halves = {}
        for q in questions:
            halves.setdefault(q.document, set()).add(q.groups[1])
        assert all(len(h) == 1 for h in halves.values())  # every question of a document is in the same half
        counts = [sum(q.groups[1] == half for q in questions) for half in ("tuning", "confirmation")]
        assert min(counts) >= 0.4 * len(questions)


def test_misses_name_their_cause():
    from bench.retrieval import Question, misses

    q = Question("q1", "?", "a.pdf", {("a.pdf", 3)}.__contains__, ["all", "tuning"])
    other = Question("q2", "?", "a.pdf", {("a.pdf", 9)}.__contains__, ["all", "tuning"])
    found = misses([q, other], [None, None], [[("b.pdf", 1)] * 5, [("a.pdf", 1)] * 5])
    assert [m["cause"] for m in found] == ["wrong document in the top 5", "right document, other pages"]


def test_the_ingest_bench_says_whether_the_cpu_has_bf16_and_which_precision_each_run_used():
    import json

    from bench.common import RESULTS
    from bench.ingest import cpu_has_bf16
    from rag_app.embedding.embedder import pick_precision

    assert cpu_has_bf16() == (pick_precision("auto", "cpu") == "bf16")
    result = json.loads((RESULTS / "ingest-cpu-precision.json").read_text(encoding="utf-8"))
    assert isinstance(result["cpu_bf16"], bool) and result["machine"]["cpu_flags"]
    assert result["ours"]["settings"]["embedding_precision"] == "bf16"
    assert result["ours_fp32"]["settings"]["embedding_precision"] == "fp32"  # what a CPU without bf16 runs
    assert all(result[k]["load_before"] >= 0 for k in ("ours", "ours_fp32"))


def test_the_issue_30_ingest_results_record_the_cpu_flags_and_which_backend_and_precision_embedded():
    import json

    from bench.common import RESULTS

    for name in ("ingest-cpu-processes", "ingest-cpu-avx2"):
        result = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        assert {"avx2", "avx512f", "avx512_bf16", "amx_bf16"} <= set(result["machine"]["cpu_flags"])
        runs = [r["ours"] for r in result["processes"]["rounds"]] if "processes" in result else [result["ours"]]
        for run in runs:
            assert run["embedder"]["backend"] in ("onnx", "torch") and run["embedder"]["precision"]
            assert run["load_before"] >= 0


def test_questions_are_reported_by_kind():
    """financebench_dev by whether a question names a statement (the section set's own test) and by its type;
    zh_reports_dev by what a question asks for, from its text."""
    from bench.retrieval import NAMES_NO_STATEMENT, financebench_questions, zh_question_kind, zh_reports_questions

    questions = financebench_questions()
    assert sum(NAMES_NO_STATEMENT in q.groups for q in questions) == 23
    assert all(f"{NAMES_NO_STATEMENT} / {q.groups[1]}" in q.groups for q in questions if NAMES_NO_STATEMENT in q.groups)
    assert all(sum(g.startswith("type: ") and "/" not in g for g in q.groups) == 1 for q in questions)
    assert zh_question_kind("2019年四方科技电子信箱是什么?") == "name or date"
    assert zh_question_kind("请问该公司在2024年的主要产品收入占比是多少？") == "figure"
    assert zh_question_kind("千味央厨的股价走势如何？") == "open"
    assert all(sum(g.startswith("kind: ") and "/" not in g for g in q.groups) == 1 for q in zh_reports_questions())


@pytest.mark.slow
def test_the_questions_written_blind_name_their_documents_pages_and_kinds():
    """analyst_en / analyst_zh / analyst_erc and the broad sets (written before reading the document): each question
    names a document of its collection's set and pages inside it, and is reported by the kind its writer gave it, in
    the halves its collection's own set splits that document into. A broad question naming no period of a company
    with several reports counts a page of each other report that answers it too (``also``)."""
    from pypdf import PdfReader

    from bench.retrieval import QA, analyst_questions, split_half

    kinds = {
        "en": {"figure", "computed", "explanation", "fact", "risk or policy"},
        "zh": {"figure", "name or date", "open"},
        "broad": {"business", "health", "change", "risk", "event"},
    }
    page_counts: dict = {}
    sets = (
        ("en", "en", "financebench_dev/pdfs", 104, lambda pdf: pdf.stem),  # financebench_dev splits by the file's stem
        ("zh", "zh", "zh_reports_dev/pdfs", 44, lambda pdf: pdf.name),
        # split by file name, as bench.answers splits these reports
        ("erc", "en", "enterprise_rag_challenge_r1/round1/pdfs", ERC_QUESTIONS, lambda pdf: pdf.name),
        ("broad_en", "broad", "financebench_dev/pdfs", 104, lambda pdf: pdf.stem),
        ("broad_zh", "broad", "zh_reports_dev/pdfs", 42, lambda pdf: pdf.name),
        ("broad_erc", "broad", "enterprise_rag_challenge_r1/round1/pdfs", 36, lambda pdf: pdf.name),
    )
    several = 0
    for name, language, folder, size, halved_by in sets:
        rows = [json.loads(line) for line in (ROOT / "bench" / "data" / f"analyst_{name}.jsonl").open()]
        questions = analyst_questions(name)
        assert len(questions) == len(rows) == size and len({q.id for q in questions}) == size
        for q, row in zip(questions, rows, strict=True):
            pdf = QA / folder / q.document
            assert pdf.exists(), q.document
            pages = page_counts.get(pdf) or page_counts.setdefault(pdf, len(PdfReader(pdf).pages))
            assert row["evidence_pages"] and all(1 <= p <= pages for p in row["evidence_pages"]), q.id
            assert q.relevant((q.document, row["evidence_pages"][0])) and not q.relevant(("other.pdf", 1))
            kind = [g.removeprefix("kind: ") for g in q.groups if g.startswith("kind: ") and "/" not in g]
            assert kind == [row["kind"]] and row["kind"] in kinds[language], q.id
            assert q.groups[1] == split_half(halved_by(pdf))
            for other, others in row.get("also", {}).items():  # the company's other reports that answer it
                assert (
                    all(q.relevant((f"{other}.pdf", p)) for p in others) and "answered by several reports" in q.groups
                )
                several += bool(others)
        if name.startswith("broad"):
            assert not any("quote" in row for row in rows)
        if name == "erc":  # both halves hold questions, and no quote of the reports' text is kept in the repository
            assert {q.groups[1] for q in questions} == {"tuning", "confirmation"}
            assert not any("quote" in row for row in rows)
    assert several > 28  # 28 questions, each answered in one other report or more


@pytest.mark.slow  # reads every page of docugami's 20 10-Qs (cached after the first run)
def test_docugami_pages_are_where_the_gold_answers_are_printed():
    """docugami at page level: a hit is a page printing the gold's figure or passage, found from the answers."""
    from bench.answer_sets import answer_pages, load, page_text
    from bench.retrieval import docugami_page_questions

    questions = docugami_page_questions()
    assert len(questions) == 93 and all(q.groups[0] == "all" for q in questions)
    records = {r.id: r for r in load("docugami_sec10q")}
    pages, found = answer_pages(records["docugami-76"])  # Apple's legal proceedings: the Epic Games lawsuit
    assert found == "passage quoted" and [p for _, p in pages] == [23]
    assert "Legal Proceedings" in page_text(*pages[0]) and "Epic" in page_text(*pages[0])
    apple = next(q for q in questions if q.id == "docugami-76")
    assert apple.relevant(("2023 Q2 AAPL.pdf", 23)) and not apple.relevant(("2023 Q2 AAPL.pdf", 22))
    assert answer_pages(records["docugami-79"]) == (
        [("docugami_sec10q/data/v1/docs/2023 Q3 AAPL.pdf", 21)],
        "figure printed",
    )
    assert answer_pages(records["docugami-0"]) == ([], "")  # several filings: no page set


def test_chunk_headers_carry_the_filing_and_the_last_heading_before_each_chunk():
    """bench.chunk_headers (the contextual-chunk-header lever, measured on a copy of a collection)."""
    from bench.chunk_headers import header_texts, headings
    from rag_app.records import Chunk

    page = "PART I\nItem 1\nNOTE 10 — DEBT\nThe components of debt were as follows:\nTotal debt 48,116 49,781"
    assert headings(page)[-1] == "DEBT"
    prose = "Liquidity and Capital Resources\nWe believe our cash and marketable securities will be sufficient."
    assert headings(prose) == ["Liquidity and Capital Resources"]
    assert headings("Total debt 48,116\nStated Interest\nRate") == []  # table rows and column headers
    assert headings("第三节 管理层讨论与分析\n一、报告期内公司所处行业情况") == [
        "管理层讨论与分析",
        "报告期内公司所处行业情况",
    ]
    chunks = [Chunk(id="b", text="Debt in the table above is senior unsecured.", page=20, offset=400, index=1),
              Chunk(id="a", text=page, page=20, offset=0, index=0)]  # fmt: skip
    texts = header_texts("2023 Q1 MSFT.pdf", chunks)
    assert texts[1].startswith("2023 Q1 MSFT. PART I") and texts[0].startswith("2023 Q1 MSFT. DEBT. Debt in the table")
    assert (
        header_texts("2023 Q1 MSFT.pdf", chunks, ("name",))[0]
        == "2023 Q1 MSFT. Debt in the table above is senior unsecured."
    )
    prose = "We believe our cash and marketable securities will be sufficient for {} years."
    running = [Chunk(id=str(i), text="Table of Contents\n" + prose.format(i), page=i, offset=0, index=i)
               for i in (1, 2, 3)]  # fmt: skip
    assert header_texts("x.pdf", running, ("heading",))[1].startswith("Table of Contents. Table of Contents\n")
    assert header_texts("x.pdf", running, ("heading", "unrepeated"))[1] == running[1].text  # atop every page: none
    assert header_texts("2023 Q1 MSFT.pdf", chunks, ("heading",)) == [
        "DEBT. Debt in the table above is senior unsecured.",
        page,
    ]


def test_a_table_chunk_carries_its_tables_title_and_column_header():
    """bench.chunk_headers' "table" part (issue 26's table-aware chunks): a chunk of rows whose table starts above it
    on its page is embedded with the table's title and column header; prose, a chunk holding its own header, and a
    chunk of footnote marks keep their text."""
    from bench.chunk_headers import header_texts, table_contexts
    from rag_app.records import Chunk

    top = "CASH FLOWS STATEMENTS\n(In millions)\nThree Months Ended September 30, 2022 2021\nOperating\nNet income 17,556 20,505"
    rows = "Accounts receivable 11,729 10,486\nInventories (543) (777)\nAccounts payable (1,567) (471)"
    marks = "(1) (2)\n® (3)"
    prose = "We believe our cash will be sufficient to meet our needs."
    chunks = [Chunk(id="a", text=top, page=9, offset=0, index=0),
              Chunk(id="b", text=rows, page=9, offset=len(top) + 1, index=1),
              Chunk(id="c", text=marks, page=9, offset=len(top) + len(rows) + 2, index=2),
              Chunk(id="d", text=prose, page=10, offset=0, index=3)]  # fmt: skip
    contexts = table_contexts(chunks)
    assert contexts[1] == "CASH FLOWS STATEMENTS. (In millions). Three Months Ended September 30, 2022 2021"
    assert contexts[0] == contexts[2] == contexts[3] == ""
    texts = header_texts("2022 Q3 MSFT.pdf", chunks, ("table",))
    assert texts[1] == f"{contexts[1]}. {rows}" and texts[0] == top and texts[3] == prose


def test_every_retrieval_variant_names_options_the_bench_knows():
    """A variant's keys are RankingOptions fields or the few the bench reads itself (the search mode, the candidate
    depths, the section boosts', the reranker's, the store's exact search, the formal pages' step and the kinds it
    leaves out, the glossary of English names a Chinese question reads): a misspelt lever
    fails here, not after a run of minutes."""
    from dataclasses import fields

    from bench.retrieval import VARIANTS
    from rag_app.retrieval.fusion import RankingOptions

    known = {f.name for f in fields(RankingOptions)} | {"mode", "candidates", "dense_candidates", "exact_chunks"}
    known |= {"formal_pages_last", "formal_kinds_left_out", "glossary"}
    for name, overrides in VARIANTS.items():
        unknown = {k for k in overrides if k not in known and not k.startswith(("section_", "rerank_"))}
        assert not unknown, (name, unknown)
    assert VARIANTS["hnsw"] == {"exact_chunks": 0} and VARIANTS["slots"]["within_lexicon_weight"] == 1.0
    from bench.retrieval import Formalities, formal_kinds_without

    kinds = {kind.name for kind in Formalities.load().kinds}
    assert set(VARIANTS["formal_kinds_before"]["formal_kinds_left_out"]) < kinds  # kinds the file names
    before = formal_kinds_without(Formalities.load(), VARIANTS["formal_kinds_before"]["formal_kinds_left_out"])
    assert {kind.name for kind in before.kinds} == kinds - {"exhibit index", "signatures"}


def test_the_page_scorer_reorders_a_questions_pages_and_counts_only_the_top_10():
    """bench.page_scorer: a fitted scorer puts the page that looks like the evidence first; a first evidence page
    below rank 10 counts as a miss, as bench.retrieval counts it."""
    from bench.page_scorer import FEATURES, Candidates, features, fit, ranks
    from bench.retrieval import Question

    def page(rank: int, evidence: bool) -> dict:
        return {"rank": rank, "fusion": 0.01, "dense": rank, "lexical": None, "document": 1.0, "best": True,
                "boost": 0.0, "within": 0.0, "bm25": 1.0 if evidence else 0.1, "bm25_rank": 1 if evidence else rank + 1,
                "vector_rank": rank, "cosine": 0.5, "mean_cosine": 0.4, "figures": 0.1, "chars": 2000,
                "place": rank / 40, "evidence": evidence}  # fmt: skip

    def question(evidence_at: int) -> Candidates:
        q = Question(f"q{evidence_at}", "?", "d.pdf", lambda hit: False, ["all", "tuning"])
        return Candidates(q, [page(r, r == evidence_at) for r in range(1, 31)])

    questions = [question(at) for at in (3, 7, 12, 20, 5, 9)]
    assert features(questions[0]).shape == (30, len(FEATURES))
    assert ranks(questions) == [3, 7, None, None, 5, 9]  # the default's order; 12 and 20 are outside the top 10
    assert ranks(questions, fit(questions, 1.0)) == [1] * 6


def test_the_short_period_sets_ask_the_same_questions_with_their_periods_abbreviated():
    from bench.retrieval import Question, abbreviated, with_short_periods

    assert abbreviated("What is the FY2019 COGS for Microsoft, against fiscal year 2018?") == (
        "What is the FY19 COGS for Microsoft, against FY18?"
    )
    assert abbreviated("In Amazon's Q2 2023 10-Q and the 2022 Q3 one") == "In Amazon's 2Q23 10-Q and the 3Q22 one"
    pages = {("a.pdf", 3)}.__contains__
    asked = [Question("1", "Nike's FY2019 revenue?", "a.pdf", pages, ["all", "tuning"]),
             Question("2", "Nike's revenue?", "a.pdf", pages, ["all", "tuning"])]  # fmt: skip
    (short,) = with_short_periods(asked)
    assert (short.id, short.text, short.groups, short.relevant(("a.pdf", 3))) == (
        "1", "Nike's FY19 revenue?", ["all", "tuning"], True,
    )  # fmt: skip


def test_the_ticker_sets_ask_the_same_questions_naming_the_company_by_its_symbol():
    from bench.retrieval import WRITTEN_WITH_NAMES, Question, with_ticker, with_tickers

    assert (
        with_ticker("What is the FY2018 capex for 3M? And 3M's PP&E?")
        == "What is the FY2018 capex for MMM? And MMM's PP&E?"
    )
    assert with_ticker("Considering Block's (formerly known as Square) FY2016 working capital") == (
        "Considering SQ's FY2016 working capital"
    )
    assert with_ticker("Did Coca Cola beat PepsiCo and Pepsico?") == "Did KO beat PEP and PEP?"
    assert with_ticker("Nike-branded products of Amazonia") == "Nike-branded products of Amazonia"  # no name alone
    pages = {("a.pdf", 3)}.__contains__
    asked = [Question("1", "Nike's FY2019 revenue?", "a.pdf", pages, ["all", "tuning"]),
             Question("2", "Acme's revenue?", "a.pdf", pages, ["all", "tuning"])]  # fmt: skip
    (ticker,) = with_tickers(asked)
    assert (ticker.id, ticker.text, ticker.groups, ticker.relevant(("a.pdf", 3))) == (
        "1", "NKE's FY2019 revenue?", ["all", "tuning"], True,
    )  # fmt: skip
    assert WRITTEN_WITH_NAMES["NKE's FY2019 revenue?"] == "Nike's FY2019 revenue?"


def test_a_rewritten_question_is_asked_as_its_set_wrote_it_after_the_search_request_strips_it():
    """The variant asking a rewritten question as its set wrote it finds the set's text by the question the search
    request hands it, which is stripped: 7 of docugami's 93 page-level questions end in a space or a line break, and
    were asked rewritten in the "by name" / "in full" / "with capitals" columns before."""
    from bench.retrieval import WRITTEN_WITH_CAPITALS, AsWrittenWithCapitals, Question, in_lower_case
    from rag_app.requests import SearchRequest

    pages = {("a.pdf", 3)}.__contains__
    (lower,) = in_lower_case([Question("1", "What was Nike's FY2019 revenue? \n", "a.pdf", pages, ["all"])])
    asked = SearchRequest(query=lower.text, k=5).query
    assert asked == "what was nike's fy2019 revenue?" and WRITTEN_WITH_CAPITALS[asked].startswith("What was Nike's")
    assert AsWrittenWithCapitals.read(asked) == "What was Nike's FY2019 revenue? \n"


def test_the_answer_bench_asks_the_questions_that_write_a_period_with_it_written_short():
    from bench.answer_sets import Gold, Record
    from bench.answers import with_short_periods

    def record(question: str) -> Record:
        return Record("financebench_dev", "1", question, Gold("6,812", "lookup"), "lookup", "tuning", "en", "a", [])

    (short,) = with_short_periods([record("What was Acme's FY2021 revenue?"), record("What was Acme's revenue?")])
    assert (short.question, short.gold.text, short.half) == ("What was Acme's FY21 revenue?", "6,812", "tuning")


def test_the_answer_bench_asks_questions_by_symbol_and_in_lower_case():
    from bench.answer_sets import Gold, Record
    from bench.answers import in_lower_case, with_tickers

    def record(question: str) -> Record:
        return Record("financebench_dev", "1", question, Gold("6,812", "lookup"), "lookup", "tuning", "en", "a", [])

    (ticker,) = with_tickers([record("What was Nike's FY2021 revenue?"), record("What was Acme's revenue?")])
    assert (ticker.question, ticker.gold.text) == ("What was NKE's FY2021 revenue?", "6,812")
    (lower,) = in_lower_case([record("What was Nike's FY2021 revenue?"), record("what was the revenue?")])
    assert (lower.question, lower.gold.text) == ("what was nike's fy2021 revenue?", "6,812")


def test_the_page_signals_probe_reads_headings_phrases_and_leaves_names_periods_and_sections_out():
    """bench.page_signals: a heading is a short line in capitals or title case, not a sentence or a running header;
    the question's phrases leave out the words naming its documents, its periods and the sections the boosts read."""
    from bench.page_signals import asked_terms, fused, headings, is_heading

    assert is_heading("D. EMPLOYEES") and is_heading("Note 13: Employee Related Liabilities")
    assert not is_heading("The following table sets forth the number of our employees.")
    assert not is_heading("Revenue 1,234 5,678 9,012")
    pages = {p: f"TOWER SEMICONDUCTOR LTD.\nBody text of page {p}." for p in range(1, 6)}
    pages[3] += "\nD. EMPLOYEES\nWe had 5,613 employees."
    assert headings(pages)[3] == {"d", "employee"} and headings(pages)[1] == set()  # the running header is none
    runs = asked_terms("How many employees did Tower have in 2022? Rely on the balance sheet.", {"tower"})
    assert [t for run in runs for t in run] == ["employee"]
    assert fused(["a", "b", "c"], ["c"], 1.0)[0] == "c" and fused(["a", "b", "c"], [], 1.0) == ["a", "b", "c"]


def test_the_benches_ask_chinese_questions_in_traditional_characters_and_the_shipped_table_is_what_opencc_gives():
    """bench.retrieval / bench.answers --traditional: the sets' Chinese questions as Hong Kong and Taiwan type them
    (OpenCC), the set's own text kept for the variant asking it so; prompts/script/traditional.txt is exactly what
    `python -m bench.script_table` writes from the OpenCC installed."""
    from bench import script_table
    from bench.answer_sets import Gold, Record
    from bench.answers import in_traditional
    from bench.retrieval import REWRITTEN, WRITTEN_IN_SIMPLIFIED, AsWrittenInSimplified, Question
    from rag_app.text.script import TABLE_FILE, simplified

    pages = {("a.pdf", 3)}.__contains__
    questions = [
        Question("1", "联邦制药的营业收入是多少？", "a.pdf", pages, ["all"]),
        Question("2", "What?", "a.pdf", pages),
    ]
    (hk,) = REWRITTEN["zh_reports_hk"][2](questions)
    (tw,) = REWRITTEN["zh_reports_tw"][2](questions)
    assert hk.text == tw.text == "聯邦制藥的營業收入是多少？"
    assert simplified(tw.text) == questions[0].text and AsWrittenInSimplified.read(tw.text) == questions[0].text
    assert WRITTEN_IN_SIMPLIFIED[hk.text] == questions[0].text

    def record(question: str) -> Record:
        return Record("zh_reports_dev", "1", question, Gold("137.2", "lookup"), "lookup", "tuning", "zh", "a", [])

    (asked,) = in_traditional([record("伊利股份的奶酪业务发展现状如何？"), record("What?")], "tw")
    assert asked.question == "伊利股份的乳酪業務發展現狀如何？" and asked.gold.text == "137.2"  # Taiwan's word too
    assert TABLE_FILE.read_text(encoding="utf-8") == script_table.text()
