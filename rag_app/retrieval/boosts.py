"""Questions that name a primary financial statement, and the pages that open with one.

"What is 3M's FY2018 capital expenditure? Rely on the cash flow statement." is answered by the page
headed "Consolidated Statement of Cash Flows", a table of numbers that neither the embedding model
nor BM25 ranks well against the question's words: on financebench_dev, 29 of the default's 31 misses
found the right filing and ranked other pages of it (docs/benchmarks.md). The page's opening says
what it is, so a question that names a statement (balance sheet, income statement or P&L, cash flow
statement; 资产负债表, 利润表, 现金流量表) can be matched with the pages of the routed filings whose
first characters carry that statement's title. :mod:`rag_app.retrieval.retriever` adds the boost
(``RankingOptions.statement_weight``, ``RAG_RETRIEVAL_STATEMENT_WEIGHT``; 0 turns it off). A question
that names no statement is ranked exactly as without it.
"""

from __future__ import annotations

import functools
import re

OPENING_CHARS = 160  # how much of a page's start is read for a statement's title
_SPACE = re.compile(r"\s+")
_OF = r"statements?\s+of\s+(?:consolidated\s+)?"

# Title patterns, as a page's opening writes them (and as questions name them). Chinese notes open with
# 资产负债表日 (balance sheet date) or 现金流量表项目 (cash flow items) as often as statements open with their titles.
_NOT_TITLE_ZH = r"(?!日|内|中|项目|补充)"
_TITLES = {
    "balance sheet": rf"balance\s+sheets?|{_OF}financial\s+(?:position|condition)|资产负债表{_NOT_TITLE_ZH}",
    "income statement": rf"(?<!comprehensive )income\s+statements?|{_OF}(?:income|operations|earnings)"
    rf"|利润表{_NOT_TITLE_ZH}|损益表{_NOT_TITLE_ZH}",
    "cash flow statement": rf"cash\s*flows?\s+statements?|{_OF}cash\s*flows?|现金流量表{_NOT_TITLE_ZH}",
}
# Questions also say "P&L" or "profit and loss" for the income statement, which no page opens with.
_ASKED = {
    **_TITLES,
    "income statement": _TITLES["income statement"] + r"|\bp\s*&\s*l\b|profit\s+(?:and|&)\s+loss",
}
TITLE_PATTERNS = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in _TITLES.items()}
ASKED_PATTERNS = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in _ASKED.items()}


def asked_statements(question: str) -> frozenset[str]:
    """The primary statements a question names: "balance sheet", "income statement", "cash flow statement"."""
    return frozenset(kind for kind, pattern in ASKED_PATTERNS.items() if pattern.search(question))


@functools.lru_cache(maxsize=65536)
def opening_statement(opening: str) -> str | None:
    """The statement a page opens with, from its first characters; None for any other page.

    A page whose opening names several statements is a table of contents or an index, not a statement.
    """
    text = _SPACE.sub(" ", opening[:OPENING_CHARS])
    kinds = [kind for kind, pattern in TITLE_PATTERNS.items() if pattern.search(text)]
    return kinds[0] if len(kinds) == 1 else None
