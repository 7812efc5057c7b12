"""Spell a question's periods and report types the way documents and file names spell them.

Questions say "FY2018", "fiscal 2022", "FY22", "10-K" or "年报"; filings and their file names say
"2018", "2022", "10K" and "年度报告". The lexical search and the document match read the question
with these canonical forms appended (the dense search reads the question as asked).
"""

from __future__ import annotations

import re

_FISCAL_YEAR = re.compile(r"\b(?:fy|fiscal(?:\s+year)?)\s*'?(\d{4}|\d{2})\b", re.IGNORECASE)
_FORM = re.compile(r"\b(10|8)-([kq])\b", re.IGNORECASE)
_CHINESE_REPORTS = {"年报": "年度报告", "半年报": "半年度报告", "季报": "季度报告"}


def _four_digits(year: str) -> str:
    return year if len(year) == 4 else f"20{year}"


def query_expansions(query: str) -> list[str]:
    """Canonical spellings of the periods and report types ``query`` names, in order, without repeats."""
    found = [_four_digits(m.group(1)) for m in _FISCAL_YEAR.finditer(query)]
    found += [f"{m.group(1)}{m.group(2).upper()}" for m in _FORM.finditer(query)]
    found += [long for short, long in _CHINESE_REPORTS.items() if short in query and long not in query]
    return list(dict.fromkeys(found))


def normalize_query(query: str) -> str:
    """``query`` followed by its canonical spellings: "FY22 10-K" -> "FY22 10-K 2022 10K"."""
    extra = query_expansions(query)
    return f"{query} {' '.join(extra)}" if extra else query
