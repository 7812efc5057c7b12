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

from rag_app.storage.chunk_table import document_query_terms, name_terms


def document_scores(question: str, titles: dict[str, set[str]]) -> dict[str, float]:
    """sha256 -> summed idf of the question's terms found in that document's name and cover terms."""
    if len(titles) < 2:
        return {}
    frequency = Counter(term for terms in titles.values() for term in terms)
    idf = {term: math.log(len(titles) / count) for term, count in frequency.items()}
    asked = named_terms(question)
    return {sha: round(sum(idf[t] for t in asked & terms), 4) for sha, terms in titles.items()}


def named_terms(question: str) -> set[str]:
    """The terms of a question that name something: capitalised words after the first (Amazon, AMZN, iPhone),
    years and quarters (2023, Q1, FY2018), and Chinese words (no capitals to tell names by)."""
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9.&'\-]*", question)
    names = {w for i, w in enumerate(words) if (i > 0 and w[0].isupper()) or w.isupper() or re.search(r"[a-z][A-Z]", w)}
    names |= {w for w in words if re.fullmatch(r"(19|20)\d\d|[Qq][1-4]|FY\d{2,4}|fy\d{2,4}", w)}
    terms = {t for w in names for t in document_query_terms(w)}
    cjk = "".join(re.findall(r"[\u4e00-\u9fff]+", question))
    return terms | (document_query_terms(cjk) if cjk else set())


def store_titles(store) -> dict[str, set[str]]:
    """Each stored document's title terms: its file name's and its cover page's, compound terms also split
    ("amazon.com" also gives "amazon", so a question naming Amazon finds AMAZON.COM, INC.'s 10-Q)."""
    covers = store.cover_terms()
    titles: dict[str, set[str]] = {}
    for document in store.list_documents():
        terms = set(covers.get(document.sha256, ())) | name_terms(document.name)
        titles[document.sha256] = terms | {part for t in terms for part in re.split(r"[.\-_/&']+", t) if part}
    return titles
