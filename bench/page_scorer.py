"""A learned page scorer (issue 26): can the default ranking's own signals, weighed by a model fitted on the tuning
halves, order the pages of a routed filing better than the hand-set fusion does?

    python -m bench.page_scorer          # financebench_dev and docugami's page-level set; writes
                                         # bench/results/retrieval-page-scorer.json

For every English question of financebench_dev and of docugami's page-level set (bench.retrieval), the default
retrieval's 30 best pages, each described by what the ranking already knows of it: its rank, its best chunk's fusion
score, its best chunk's place in the dense and in the BM25 ranking, how well its document matches the question (and
whether it is the best one), what the page boosts and the page BM25 inside the document add, its page BM25 and page
vector inside its document, its chunks' cosine similarity to the question (best and mean, against the other
candidates'), its share of figures, its length and its place in the document. No feature reads a question's wording:
the question kind decides nothing here.

A logistic regression (balanced classes) learns, per page, whether it is an evidence page, from the tuning halves of
both sets together (financebench_dev by document, docugami by company, as bench.retrieval splits them). Its
regularisation C is chosen by 6-fold cross-validation over the tuning documents (the folds never split a document or
company), as the C whose held-out tuning pages give the best mean MRR of the two sets without losing either set's;
then fitted on all tuning questions and scored once on the confirmation halves, per set and question kind, against
the default's order of the same 30 pages (a reordering: hit@5 can only move among them).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from bench import retrieval as R
from bench.common import write_result
from rag_app.records import chunk_id
from rag_app.retrieval.retriever import Retriever, _page_of
from rag_app.retrieval.within import best_documents, lexical_pages
from rag_app.text.lexicon import expanded

DEPTH = 30
CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 6
FIGURE = re.compile(r"^[\$\(\)]*[-\d.,]+%?\)?$|^\$$|^%$")
FEATURES = (
    "1 / rank", "log rank", "fusion score", "dense place", "BM25 place", "document match", "best document", "boost",
    "page BM25 added", "page BM25 score", "1 / page BM25 rank", "1 / page vector rank", "best cosine (z)",
    "mean cosine (z)", "share of figures", "log length", "place in document",
)  # fmt: skip


@dataclass
class Candidates:
    """The pages of one question's default ranking, best first, each with its raw features and whether it is an
    evidence page."""

    question: R.Question
    pages: list[dict] = field(default_factory=list)


class Recording(Retriever):
    """The default retriever, keeping what its document route, fusion, page boosts and page rankings gave the last
    question."""

    last: dict = {}

    def _hybrid(self, query, embedded, k, scopes, documents, routed):
        Recording.last = {"route": routed.scores}
        return super()._hybrid(query, embedded, k, scopes, documents, routed)

    def _fused(self, *args, **kwargs):
        weights, rankings, scores = super()._fused(*args, **kwargs)
        Recording.last.update(rankings=rankings, scores=scores)
        return weights, rankings, scores

    def _page_boosts(self, query, ranked, documents):
        Recording.last["boosts"] = boosts = super()._page_boosts(query, ranked, documents)
        return boosts

    def _within(self, query, vectors, ranked, dense_shas, page_counts):
        Recording.last["within"] = within = super()._within(query, vectors, ranked, dense_shas, page_counts)
        return within


def candidates(ours: R.Ours, question: R.Question) -> Candidates:
    """The default ranking's DEPTH best pages of a question, described (``Recording`` ranks exactly as the default)."""
    store = ours.service.store(with_model=True)
    hits = ours.search(question.text, DEPTH, retriever_class=Recording)
    seen = Recording.last
    pages = [(h.sha256, h.page) for h in hits]
    names = {(h.sha256, h.page): h.file for h in hits}
    out = Candidates(question)
    if not pages:
        return out
    dense, lexical, _ = seen["rankings"]
    place = [_first_places(ranking) for ranking in (dense, lexical)]
    best_chunk: dict = {}
    for chunk in sorted(seen["scores"], key=lambda c: -seen["scores"][c]):
        best_chunk.setdefault(_page_of(chunk), seen["scores"][chunk])
    vector = ours.service.embeddings.embed_query(question.text)
    counts = {d.sha256: d.pages for d in store.list_documents()}
    routed = seen["route"]
    top = max(routed.values(), default=0.0)
    best = best_documents(pages, 1)
    searched, _ = expanded(question.text, 0.0)
    bm25: dict = {}  # page -> (its page BM25 over the best, its rank) inside its document
    vector_rank: dict = {}  # page -> its page vector's rank inside its document
    for sha in dict.fromkeys(s for s, _ in pages):
        scores = store.page_scores(searched, sha)
        most = max(scores.values(), default=0.0) or 1.0
        bm25.update({p: (scores[p[1]] / most, i) for i, p in enumerate(lexical_pages(sha, scores), 1)})
        vector_rank.update({(sha, p): i for i, p in enumerate(store.page_ranking(vector, sha), 1)})
    for rank, page in enumerate(pages, 1):
        texts = store.page_chunks(*page)
        found = store.hits([chunk_id(page[0], page[1], offset) for offset, _ in texts], vector)
        cosines = [1.0 - h.score for h in found.values()] or [0.0]
        words = " ".join(t for _, t in texts).split()
        page_bm25, bm25_rank = bm25.get(page, (0.0, 999))
        out.pages.append({
            "rank": rank, "fusion": best_chunk.get(page, 0.0), "dense": place[0].get(page), "lexical": place[1].get(page),
            "document": routed.get(page[0], 0.0) / top if top else 0.0, "best": page[0] in best,
            "boost": seen.get("boosts", {}).get(page, 0.0), "within": seen.get("within", {}).get(page, 0.0),
            "bm25": page_bm25, "bm25_rank": bm25_rank, "vector_rank": vector_rank.get(page, 999), "cosine": max(cosines),
            "mean_cosine": float(np.mean(cosines)), "figures": sum(map(bool, map(FIGURE.match, words))) / max(1, len(words)),
            "chars": sum(len(t) for _, t in texts), "place": page[1] / max(1, counts.get(page[0], 1)),
            "evidence": bool(question.relevant((names[page], page[1]))),
        })  # fmt: skip
    return out


def _first_places(ranking: list[str]) -> dict:
    out: dict = {}
    for place, chunk in enumerate(ranking, 1):
        out.setdefault(_page_of(chunk), place)
    return out


def features(c: Candidates) -> np.ndarray:
    """The FEATURES of each of a question's pages, a row each (cosines as z-scores among its own candidates)."""
    cosines = [p["cosine"] for p in c.pages]
    mean, spread = float(np.mean(cosines)), float(np.std(cosines)) + 1e-6
    return np.array([[
        1 / p["rank"], math.log(p["rank"]), p["fusion"] * 30,
        60 / (60 + p["dense"]) if p["dense"] else 0.0, 60 / (60 + p["lexical"]) if p["lexical"] else 0.0,
        p["document"], float(p["best"]), p["boost"] * 10, p["within"] * 100, p["bm25"], 1 / p["bm25_rank"],
        1 / p["vector_rank"], (p["cosine"] - mean) / spread, (p["mean_cosine"] - mean) / spread, p["figures"],
        math.log(1 + p["chars"]), p["place"],
    ] for p in c.pages])  # fmt: skip


def first_evidence(c: Candidates, order) -> int | None:
    return next((i for i, j in enumerate(order, 1) if c.pages[j]["evidence"]), None)


def fit(questions: list[Candidates], c: float):
    from sklearn.linear_model import LogisticRegression

    rows = [q for q in questions if q.pages]
    x = np.vstack([features(q) for q in rows])
    y = np.array([p["evidence"] for q in rows for p in q.pages])
    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)


def ranks(questions: list[Candidates], model=None) -> list[int | None]:
    """Each question's first evidence page's rank in the top 10 (None: none there), in the default's order
    (``model`` None) or in the model's."""
    out = []
    for q in questions:
        if not q.pages:
            out.append(None)
            continue
        order = (
            range(len(q.pages)) if model is None else np.argsort(-model.decision_function(features(q)), kind="stable")
        )
        rank = first_evidence(q, order)
        out.append(rank if rank is not None and rank <= R.K_MAX else None)  # as bench.retrieval: the top 10
    return out


def by_group(questions: list[Candidates], found: list[int | None]) -> dict:
    groups: dict[str, list] = {}
    for q, rank in zip(questions, found, strict=True):
        for g in q.question.groups:
            groups.setdefault(g, []).append(rank)
    return {g: R.hit_metrics(r) for g, r in groups.items()}


def choose_c(sets: dict[str, list[Candidates]], unit) -> tuple[float, dict]:
    """C by cross-validation over the tuning halves' documents (``unit``: a question's document or company)."""
    tuning = [(name, q) for name, qs in sets.items() for q in qs if "tuning" in q.question.groups]
    units = sorted({unit(name, q) for name, q in tuning})
    folds = [units[i::FOLDS] for i in range(FOLDS)]
    default = {name: R.hit_metrics(ranks([q for n, q in tuning if n == name])) for name in sets}
    table = {}
    for c in CS:
        found = {}
        for fold in folds:
            model = fit([q for name, q in tuning if unit(name, q) not in fold], c)
            for name, q in tuning:
                if unit(name, q) in fold:
                    found[(name, q.question.id)] = ranks([q], model)[0]
        table[c] = {
            name: R.hit_metrics([found[(name, q.question.id)] for n, q in tuning if n == name]) for name in sets
        }
    fair = [c for c in CS if all(table[c][name]["mrr"] >= default[name]["mrr"] for name in sets)] or list(CS)
    best = max(fair, key=lambda c: sum(table[c][name]["mrr"] for name in sets))
    return best, {"default": default, "by_c": {str(c): v for c, v in table.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    started = time.perf_counter()
    sets, documents = {}, {}
    english = {
        "financebench": ("financebench", R.financebench_questions(), sorted((R.QA / "financebench_dev" / "pdfs").glob("*.pdf"))),
        "docugami_pages": ("docugami", R.docugami_page_questions(), sorted((R.QA / "docugami_sec10q" / "data" / "v1" / "docs").glob("*.pdf"))),
    }  # fmt: skip
    for name, (collection, questions, pdfs) in english.items():
        ours, _ = R.ours_for(collection, pdfs)
        sets[name] = [candidates(ours, q) for q in questions]
        documents.update({q.id: q.document for q in questions})

    def unit(name: str, c: Candidates) -> str:
        document = documents[c.question.id]
        return f"{name}:{document.split()[-1] if name == 'docugami_pages' else document}"

    c, cross_validation = choose_c(sets, unit)
    model = fit([q for qs in sets.values() for q in qs if "tuning" in q.question.groups], c)
    result = {
        "depth": DEPTH, "c": c, "cross_validation": cross_validation,
        "coefficients": dict(zip(FEATURES, (round(float(w), 3) for w in model.coef_[0]), strict=True)),
        "sets": {name: {"default": by_group(qs, ranks(qs)), "scorer": by_group(qs, ranks(qs, model)),
                        "questions": len(qs)} for name, qs in sets.items()},
        "command": "python -m bench.page_scorer", "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    path = write_result("retrieval-page-scorer", result)
    for name, entry in result["sets"].items():
        for half in ("tuning", "confirmation"):
            d, s = entry["default"][half], entry["scorer"][half]
            print(f"{name} {half}: default {d['hit@5']} / {d['mrr']}, scorer {s['hit@5']} / {s['mrr']}")
    print(f"C {c}; wrote {path}")


if __name__ == "__main__":
    main()
