"""Which documents a question names: its rare terms shared with a document's file name and cover page.

"How much cash did Amazon have at the end of the quarter?" names the Amazon 10-Qs (their cover says
"Amazon.com, Inc."), so extractive answers quote those before another company's report. Terms are
weighted by inverse document frequency, so words every document shares ("quarterly", "report") count
for nothing.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from rag_app.lexical import document_query_terms, name_terms


def document_scores(question: str, titles: dict[str, set[str]]) -> dict[str, float]:
    """sha256 -> summed idf of the question's terms found in that document's name and cover terms."""
    if len(titles) < 2:
        return {}
    frequency = Counter(term for terms in titles.values() for term in terms)
    idf = {term: math.log(len(titles) / count) for term, count in frequency.items()}
    asked = document_query_terms(question)
    return {sha: round(sum(idf[t] for t in asked & terms), 4) for sha, terms in titles.items()}


def store_titles(store) -> dict[str, set[str]]:
    """Each stored document's title terms: its file name's and its cover page's, compound terms also split
    ("amazon.com" also gives "amazon", so a question naming Amazon finds AMAZON.COM, INC.'s 10-Q)."""
    covers = store.cover_terms()
    titles: dict[str, set[str]] = {}
    for document in store.list_documents():
        terms = set(covers.get(document.sha256, ())) | name_terms(document.name)
        titles[document.sha256] = terms | {part for t in terms for part in re.split(r"[.\-_/&']+", t) if part}
    return titles
