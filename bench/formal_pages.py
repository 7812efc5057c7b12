"""A report's formal pages (prompts/pages/formalities.toml: tables of contents, officers' certifications, auditors'
consents and letters) in the bench collections, and the places they held in the top 5 of each set's questions
without the lever that puts them below every other page (RAG_RETRIEVAL_FORMAL_PAGES_LAST=false) and with it (the
default since 2026-12-06). The ranks of the evidence pages are measured by ``bench.retrieval`` (its
``no_formalities`` variant); this counts what moved.

    python -m bench.formal_pages
"""

from __future__ import annotations

import argparse
import collections
import functools
import time

from bench import retrieval as R
from bench.common import write_result
from rag_app.retrieval.boosts import Formalities
from rag_app.retrieval.retriever import whole_page, whole_pages

DOCUGAMI = R.QA / "docugami_sec10q" / "data" / "v1" / "docs"
SETS = {  # set -> (collection, questions, PDFs)
    "financebench": ("financebench", R.financebench_questions, R.QA / "financebench_dev" / "pdfs"),
    "zh_reports": ("zh_reports", R.zh_reports_questions, R.QA / "zh_reports_dev" / "pdfs"),
    "docugami": ("docugami", R.docugami_questions, DOCUGAMI),
    "docugami_pages": ("docugami", R.docugami_page_questions, DOCUGAMI),
}
TOP = 5


def collection_pages(ours: R.Ours, formal: Formalities) -> dict:
    """Pages of a collection, and its formal pages by kind (each page's whole text, as the retriever reads it)."""
    store = ours.service.store(with_model=True)
    kinds: collections.Counter = collections.Counter()
    pages = 0
    for document in store.list_documents():
        texts = whole_pages(store, document)
        pages += len(texts)
        kinds.update(map(formal.kind_of, texts.values()))
    kinds.pop(None, None)
    return {"documents": len(store.list_documents()), "pages": pages, "formal": dict(kinds)}


def top_places(ours: R.Ours, questions: list, formal: Formalities, last: bool) -> dict:
    """How many of the questions' top-5 places formal pages hold, and in how many questions, with or without the
    lever (``last``)."""
    run = ours.variant({"formal_pages_last": last})
    store = ours.service.store(with_model=True)
    sha = {d.name: d.sha256 for d in store.list_documents()}
    places, asked = collections.Counter(), 0
    for question in questions:
        top = [(sha[f], p) for f, p in run(question.text)[:TOP]]
        kinds = [formal.page_kind(page, functools.partial(whole_page, store, page)) for page in top]
        found = [k for k in kinds if k]
        places.update(found)
        asked += bool(found)
    return {"places": dict(places), "questions_with_one": asked, "questions": len(questions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    started = time.perf_counter()
    formal = Formalities.load()
    collections_seen, sets = {}, {}
    for name, (collection, questions, folder) in SETS.items():
        ours, _ = R.ours_for(collection, sorted(folder.glob("*.pdf")))
        if collection not in collections_seen:
            collections_seen[collection] = collection_pages(ours, formal)
        asked = questions()
        sets[name] = {"before": top_places(ours, asked, formal, False), "after": top_places(ours, asked, formal, True)}
        print(name, sets[name])
    result = {
        "collections": collections_seen, "sets": sets, "top": TOP,
        "command": "python -m bench.formal_pages", "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    print("wrote", write_result("formal-pages", result))


if __name__ == "__main__":
    main()
