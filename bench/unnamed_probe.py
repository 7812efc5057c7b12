"""Inside each question's evidence filing alone, how its pages rank for the whole question and for the question
without the names of that filing (rag_app.text.terms.unnamed): the two dense rankings the retriever adds
(RAG_RETRIEVAL_UNNAMED_WEIGHT), each on its own, on the English page-level sets.

    python -m bench.unnamed_probe

Writes bench/results/unnamed-probe.json: per set and question group, hit@5 / MRR of the filing's pages ranked by
the question's nearest chunks in it and by its page vectors, for the whole question and without its names. No
fusion, no other document: what the second vector knows that the first does not, and where it knows less.
"""

from __future__ import annotations

import argparse
import logging

from bench import retrieval as R
from bench.common import write_result
from rag_app.retrieval.documents import route
from rag_app.retrieval.retriever import _page_of
from rag_app.text.terms import unnamed

SETS = {
    "financebench": (R.financebench_questions, "financebench", R.QA / "financebench_dev" / "pdfs"),
    "docugami_pages": (R.docugami_page_questions, "docugami", R.QA / "docugami_sec10q" / "data" / "v1" / "docs"),
}
RANKINGS = ("nearest chunks, whole question", "nearest chunks, without its names",
            "page vectors, whole question", "page vectors, without its names")  # fmt: skip


def probe(name: str) -> dict:
    questions_of, collection, folder = SETS[name]
    ours, _ = R.ours_for(collection, sorted(folder.glob("*.pdf")))
    store = ours.service.store(with_model=True)
    embed = ours.service.embeddings.embed_query
    documents = store.list_documents()
    by_name, covers = {d.name: d for d in documents}, store.cover_terms()
    questions = questions_of()
    ranks: dict[str, list] = {r: [] for r in RANKINGS}
    stripped = 0
    for q in questions:
        sha = by_name[q.document].sha256
        titles = route(q.text, documents, covers, store.documents_with).titles.get(sha, frozenset())
        text = unnamed(q.text, titles)
        stripped += text != q.text
        for label, vector in (("whole question", embed(q.text)), ("without its names", embed(text))):
            nearest = store.nearest_ids(vector, ours.service.settings.retrieval_candidates, {sha})
            by_chunks = list(dict.fromkeys((q.document, _page_of(c)[1]) for c in nearest))
            by_pages = [(q.document, page) for page in store.page_ranking(vector, sha)]
            ranks[f"nearest chunks, {label}"].append(R.first_hit_rank(by_chunks[: R.K_MAX], q.relevant))
            ranks[f"page vectors, {label}"].append(R.first_hit_rank(by_pages[: R.K_MAX], q.relevant))
    return {
        "questions": len(questions),
        "named": stripped,
        "rankings": {label: R.by_group(questions, found) for label, found in ranks.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = {"sets": {name: probe(name) for name in args.sets.split(",") if name}}
    result["command"] = "python -m bench.unnamed_probe" + (
        f" --sets {args.sets}" if args.sets != ",".join(SETS) else ""
    )
    print("wrote", write_result("unnamed-probe", result))


if __name__ == "__main__":
    main()
