"""Names that mean the same thing (a line item: "capital expenditure" and "purchases of property, plant and
equipment"), read as data from ``prompts/lexicon/*.toml`` and handed to whatever compares a question's words
with a page's: the code knows no domain, the files do. Two more tables in the same form serve only a question of
documents in the other language: ``prompts/lexicon/glossary/`` (the English and Chinese names of the terms filings
use: searched for such a question, and compared with such a document's lines by the quoted answer) and
``prompts/names/`` (the English name of the company a Chinese question writes in Chinese)."""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from rag_app.errors import ConfigurationError
from rag_app.text.clean import CJK_CHAR, is_chinese
from rag_app.text.script import simplified
from rag_app.text.terms import terms_of

LEXICON_DIR = Path(__file__).resolve().parents[2] / "prompts" / "lexicon"
# English and Chinese names of the concepts filings write about, beyond the lexicon's measures: read only for a
# question of documents in the other language, to search their words (:func:`expanded` with ``across``) and to compare
# their lines with the question's in the quoted answer (rag_app.answering.strategies.extractive)
GLOSSARY_DIR = LEXICON_DIR / "glossary"
# Companies' English and Chinese names (prompts/names): how a Chinese question names an English filing's company
NAMES_DIR = LEXICON_DIR.parent / "names"


@functools.cache
def entries(directory: Path = LEXICON_DIR) -> tuple[tuple[str, ...], ...]:
    """Each group's names, as the files list them."""
    found = []
    for path in sorted(directory.glob("*.toml")):
        try:
            found += [
                tuple(str(n) for n in entry["names"])
                for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("same", [])
            ]
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the lexicon {path}: {exc}") from exc
    return tuple(found)


@functools.cache
def groups(directory: Path = LEXICON_DIR) -> tuple[re.Pattern, ...]:
    """One pattern per group of names, matching any of them as a whole phrase, ignoring case."""
    try:
        return tuple(
            re.compile("|".join(_phrase(n) for n in sorted(names, key=len, reverse=True)), re.IGNORECASE)
            for names in entries(directory)
        )
    except re.error as exc:
        raise ConfigurationError(f"cannot read the lexicon in {directory}: {exc}") from exc


def _phrase(name: str) -> str:
    escaped = re.escape(name).replace(r"\ ", r"\s+")
    if re.match(r"[A-Za-z0-9]", name):
        escaped = r"(?<![A-Za-z0-9])" + escaped
    if re.search(r"[A-Za-z0-9]$", name):
        escaped += r"(?![A-Za-z0-9])"
    return escaped


def concepts(text: str, directory: Path = LEXICON_DIR) -> set[str]:
    """The groups ``text`` names any member of, as pseudo-terms ("lexicon:3"; the glossary's "glossary:3"); Chinese in
    either script (:mod:`rag_app.text.script`: 營業收入 names 营业收入's group)."""
    prefix = "lexicon" if directory == LEXICON_DIR else directory.name
    text = simplified(text)
    return {f"{prefix}:{i}" for i, pattern in enumerate(groups(directory)) if pattern.search(text)}


def named(text: str, directory: Path = LEXICON_DIR) -> dict[str, str]:
    """The groups ``text`` names, each with the words it names it by ("lexicon:3" -> "Quick Ratio"), leaving out
    a name inside a longer one ("net profit" in "net profit margin" asks for the margin, not the profit); Chinese in
    either script, the words given in simplified characters."""
    text = simplified(text)
    spans = []
    for i, pattern in enumerate(groups(directory)):
        spans += [(m.start(), m.end(), f"lexicon:{i}") for m in pattern.finditer(text)]
    out: dict[str, str] = {}
    for start, end, key in spans:
        inside = any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in spans)
        if not inside and key not in out:
            out[key] = text[start:end]
    return out


def is_domain_word(term: str) -> bool:
    """Whether ``term`` is one of the lexicon's names (净利润, revenue): a word of the documents' domain that a
    question uses as a measure, never as the name of what it asks about."""
    return any(pattern.fullmatch(term) for pattern in groups())


def alternatives(text: str, directory: Path = LEXICON_DIR) -> list[str]:
    """The other names of each group ``text`` names ("capex": "purchases of property, plant and equipment", ...),
    for a search to find a page that writes the measure its own way."""
    names = entries(directory)
    out: list[str] = []
    for key, said in named(text, directory).items():
        out += [n for n in names[int(key.split(":")[1])] if n.lower() != said.lower() and n not in out]
    return out


@functools.lru_cache(maxsize=256)
def english_names(text: str, directory: Path = NAMES_DIR) -> tuple[str, ...]:
    """The English name (the first its group lists) of each group of ``directory`` that ``text`` names otherwise
    ("沃尔玛2020财年" -> "Walmart"; "Walmart's 2020", "3M公司" -> none: they write it)."""
    names = entries(directory)
    out: list[str] = []
    for key in named(text, directory):
        english = [n for n in names[int(key.split(":")[1])] if not CJK_CHAR.search(n)]  # not "T-Mobile美国"
        written = any(re.search(_phrase(n), text, re.IGNORECASE) for n in english)  # "3M公司": 3M is written
        if english and not written and english[0] not in out:
            out.append(english[0])
    return tuple(out)


@functools.lru_cache(maxsize=256)  # asked once per document ranked inside (0.6 ms): once per question
def expanded(query: str, weight: float, across: bool = False) -> tuple[str, Mapping[str, float]]:
    """``query`` with the terms of the other names of each measure it names (:func:`alternatives`) that it does not
    hold itself appended, and those terms' weight for a BM25 search (``term_weights``): a page that writes "net cash
    provided by operating activities" is then found for "operating cash flow". Only names in the question's own
    language (a Chinese question's Chinese ones), or with ``across`` those in the other one, the glossary's too: a
    question searching documents in the other language, whose words its own match none of (a Chinese question of an
    English filing: "资本支出" -> "capital expenditure", "capex", "purchases of property, plant and equipment"; "诉讼"
    -> "litigation"; an English question of a Chinese report: "R&D expenses" -> 研发费用). ``weight`` 0: ``query``
    alone."""
    if weight <= 0:
        return query, {}
    asked, chinese = set(terms_of(query)), is_chinese(query) != across
    found = [*alternatives(query), *(alternatives(query, GLOSSARY_DIR) if across else ())]
    names = [name for name in found if is_chinese(name) == chinese]
    extra = list(dict.fromkeys(t for name in names for t in terms_of(name) if t not in asked))
    return (
        (f"{query} {' '.join(extra)}", MappingProxyType(dict.fromkeys(extra, weight)))
        if extra
        else (query, MappingProxyType({}))
    )
