"""Four cheap page signals (issue 26), probed as reorderings of the default ranking's 30 best pages: do the pages
that print the question's phrases, that carry its words in their headings, that sit beside the best pages, or that
name the part of the company the question names, hold the answer more often than the default's order says?

    python -m bench.page_signals        # writes bench/results/retrieval-page-signals.json

For every English question of financebench_dev, docugami's page-level set and the two English analyst sets
(bench.retrieval), the default's 30 best pages, reordered by the reciprocal-rank fusion (k = 10) of the default's own
order (weight 1) with one signal's order (weight ``w``):

* ``phrases``: the question's adjacent index terms (rag_app.text.terms.terms_of, words of asking left out; none that
  names its documents, a period, or a section the page boosts read, prompts/sections), each weighted by its idf among
  the 30 pages, found adjacent on a page;
* ``headings``: the question's terms (the same left out) on the page's heading lines (a short line in capitals or
  title case, "D. EMPLOYEES", "Note 13: Employee Related Liabilities"; a line on 3 or more pages of the document, a
  running header, is no heading), weighted by their idf among the best document's pages; that document's pages only;
* ``neighbours``: a page scores ``w`` times the better of its two neighbours' scores in the default's order;
* ``inner names``: each name the question writes (rag_app.retrieval.documents.name_groups) less the words of its
  documents' covers ("Digital Media", "Display Technologies": a segment's, a subsidiary's), found on the page, each
  weighted by its idf among the 30 pages.

No weight is chosen here: each is shown at 0.25, 0.5 and 1, by set and half.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections import Counter

from bench import retrieval as R
from bench.common import write_result
from rag_app.retrieval.boosts import SectionSet
from rag_app.retrieval.documents import name_groups
from rag_app.retrieval.retriever import whole_page, whole_pages
from rag_app.text.terms import ASKING_WORDS, PERIOD_TERM, terms_of

DEPTH = 30
RRF_K = 10
WEIGHTS = (0.25, 0.5, 1.0)
SETS = {
    "financebench": ("financebench", R.financebench_questions),
    "docugami_pages": ("docugami", R.docugami_page_questions),
    "analyst_en": ("financebench", lambda: R.analyst_questions("en")),
    "analyst_erc": ("erc", lambda: R.analyst_questions("erc")),
}
SECTION_SETS = ("financial_statements", "report_parts", "segments")
_FIGURE = re.compile(r"[\$\(\)]*[-\d.,%]+\)?")


def asked_terms(question: str, names: set[str]) -> list[list[str]]:
    """The question's index terms in runs (a section's name, which the page boosts read, cuts a run), without its
    words of asking, the names of its documents and its periods."""
    for name in SECTION_SETS:
        for pattern in SectionSet.load(name).asked.values():
            question = pattern.sub(" | ", question)
    runs = [[t for t in terms_of(part) if t not in ASKING_WORDS] for part in question.split(" | ")]
    return [[t for t in run if t not in names and not PERIOD_TERM.fullmatch(t)] for run in runs]


def is_heading(line: str) -> bool:
    """A short line in capitals or title case, with one figure at most: "D. EMPLOYEES", "Note 13: Employee Related
    Liabilities"."""
    text = line.strip()
    words = text.split()
    if not 3 <= len(text) <= 80 or len(words) > 10 or sum(bool(_FIGURE.fullmatch(w)) for w in words) > 1:
        return False
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 4 or (text[-1] in ".,;" and not re.match(r"(?i)(item|note|part)\b", text)):
        return False
    if all(c.isupper() for c in letters):
        return True
    long = [w for w in words if sum(c.isalpha() for c in w) >= 4]
    return bool(long) and words[0][:1].isupper() and sum(w[:1].isupper() for w in long) >= 0.7 * len(long)


def headings(pages: dict[int, str]) -> dict[int, set[str]]:
    """Each page's heading terms; a line on 3 or more pages (a running header) is none."""
    lines = {p: {line.strip() for line in text.split("\n") if is_heading(line)} for p, text in pages.items()}
    count = Counter(re.sub(r"\d+", "#", line.lower()) for found in lines.values() for line in found)
    return {
        p: {t for line in found if count[re.sub(r"\d+", "#", line.lower())] < 3 for t in terms_of(line)}
        for p, found in lines.items()
    }


def fused(order: list, signal: list, weight: float) -> list:
    """``order`` reordered by the reciprocal-rank fusion of itself (weight 1) and ``signal`` (``weight``)."""
    score = {page: 1 / (RRF_K + i) for i, page in enumerate(order)}
    for i, page in enumerate(signal):
        score[page] = score.get(page, 0.0) + weight / (RRF_K + i)
    return sorted(score, key=lambda page: -score[page])


def by_score(scores: dict, order: list) -> list:
    """The pages of ``scores`` above 0, best first; ties in ``order``'s order."""
    place = {page: i for i, page in enumerate(order)}
    return sorted((p for p, s in scores.items() if s > 0), key=lambda p: (-scores[p], place.get(p, len(place)), p))


def signals(ours: R.Ours, question: R.Question, documents: dict) -> dict:
    """Each ranking's rank of the question's first evidence page: the default's and each signal's at each weight."""
    store = ours.service.store(with_model=True)
    result = ours.service.retriever(store).search(question.text, DEPTH)
    order = [(h.sha256, h.page) for h in result.hits]
    name_of = {(h.sha256, h.page): h.file for h in result.hits}
    if not order:
        return {}
    shas = {sha for sha, _ in order}
    names = set(result.route.caseless).union(*(result.route.titles.get(sha, ()) for sha in shas), *result.route.names)
    runs = asked_terms(question.text, names)
    pairs = {(a, b) for run in runs for a, b in zip(run, run[1:], strict=False)}
    terms = {t for run in runs for t in run}
    adjacent = {page: set(zip(words, words[1:], strict=False)) for page in order for words in [terms_of(whole_page(store, page))]}  # fmt: skip
    df = Counter(pair for page in order for pair in pairs & adjacent[page])
    phrases = {page: sum(math.log((DEPTH + 1) / (df[p] + 0.5)) for p in pairs & adjacent[page]) for page in order}
    best = order[0][0]
    if best not in documents:
        documents[best] = headings(whole_pages(store, next(d for d in store.list_documents() if d.sha256 == best)))
    heads = documents[best]
    head_df = Counter(t for found in heads.values() for t in found & terms)
    n = len(heads)
    heading = {
        (best, p): sum(math.log((n + 1) / (head_df[t] + 0.5)) for t in found & terms) for p, found in heads.items()
    }
    covers = set().union(*(result.route.titles.get(sha, ()) for sha in shas))  # what names the documents themselves
    inner = [g - covers for g in name_groups(question.text) if g - covers]  # a part's name: "Digital Media", "Pet"
    words = {page: set(terms_of(whole_page(store, page))) for page in order}
    inner_df = Counter(g for page in order for g in inner if g <= words[page])
    parts = {
        page: sum(math.log((DEPTH + 1) / (inner_df[g] + 0.5)) for g in inner if g <= words[page]) for page in order
    }
    evidence = set(order) | set(heading)
    name_of.update({page: name_of.get(page) or name_of[order[0]] for page in heading})
    relevant = {page for page in evidence if question.relevant((name_of[page], page[1]))}

    def rank(ranking: list) -> int | None:
        return next((i + 1 for i, page in enumerate(ranking[: R.K_MAX]) if page in relevant), None)

    out = {"default": rank(order)}
    for w in WEIGHTS:
        out[f"phrases {w}"] = rank(fused(order, by_score(phrases, order), w))
        out[f"headings {w}"] = rank(fused(order, by_score(heading, order), w))
        out[f"inner names {w}"] = rank(fused(order, by_score(parts, order), w))
        base = {page: 1 / (RRF_K + i) for i, page in enumerate(order)}
        near = {(s, p): b + w * max(base.get((s, p - 1), 0.0), base.get((s, p + 1), 0.0)) for (s, p), b in base.items()}
        out[f"neighbours {w}"] = rank(sorted(order, key=lambda page: -near[page]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
    args = parser.parse_args()
    started, result = time.perf_counter(), {"depth": DEPTH, "rrf_k": RRF_K, "sets": {}}
    for name in args.sets.split(","):
        collection, questions_of = SETS[name]
        ours, _ = R.ours_for(collection, [])
        questions, documents = questions_of(), {}
        found = [signals(ours, q, documents) for q in questions]
        rankings = [k for k in found[0]] if found else []
        result["sets"][name] = {
            "questions": len(questions),
            "rankings": {k: R.by_group(questions, [f.get(k) for f in found]) for k in rankings},
        }
    result["command"] = "python -m bench.page_signals" + (f" --sets {args.sets}" if args.sets != ",".join(SETS) else "")
    result["seconds"] = round(time.perf_counter() - started, 1)
    print("wrote", write_result("retrieval-page-signals", result))


if __name__ == "__main__":
    main()
