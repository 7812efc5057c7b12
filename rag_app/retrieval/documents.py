"""Which documents a question names: its rare terms shared with a document's file name and cover page.

Questions name a company and a year ("3M's FY2018 capital expenditure") that most chunks of that
company's report never repeat: a chunk's text cannot say which report it is in, its document's file
name and cover page (the first chunks of page 1) can. Terms are weighted by inverse document frequency
over the collection's documents, so words every document shares ("quarterly", "report") count for nothing.

:func:`route` runs once per question (the retriever calls it) and gives two views, which travel in the
search result:

* ``scores``: every term of the question, for ranking the candidate chunks by their document;
* ``named``: only the terms that name something (capitalised words after the first, years and
  quarters, Chinese words), for answers that should quote the documents a question names first.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rag_app.records import DocumentInfo
from rag_app.text.clean import CJK_CHAR
from rag_app.text.terms import (
    ASKING_WORDS,
    CJK_STOPWORDS,
    MONTH_WORD,
    MONTHS,
    PART_TERM,
    PERIOD_TERM,
    STOPWORDS,
    SYMBOL_MARK,
    YEAR_TERM,
    document_query_terms,
    name_terms,
    part_terms,
    pinyin_names,
    term_parts,
)

# A term in the texts of this share of the documents (and of two at least) is a word of their domain, not a name.
DOMAIN_WORD_SHARE = 0.25


@dataclass(frozen=True)
class DocumentRoute:
    """How well a question names each document (sha256 -> summed idf of shared terms; absent: none), and
    what it names that no document's title carries."""

    scores: dict[str, float] = field(default_factory=dict)  # all of the question's terms
    named: dict[str, float] = field(default_factory=dict)  # the question's name terms only
    by_subject: dict[str, float] = field(default_factory=dict)  # the question's subjects (subject_terms) only
    owners: frozenset[str] = frozenset()  # subjects the question asks about as owners: "Tesla's revenue"
    titles: dict[str, frozenset[str]] = field(default_factory=dict)  # sha256 -> its title terms
    # the question's subjects (subject_terms) in no title -> the file contents whose text holds them
    untitled: dict[str, frozenset[str]] = field(default_factory=dict)
    periods: dict[str, frozenset[str]] = field(default_factory=dict)  # years it names -> contents holding them
    names: tuple[frozenset[str], ...] = ()  # the subjects as the names they belong to ("Sleep Country Canada")
    documents: int = 0  # file contents routed among
    latest: frozenset[str] = frozenset()  # "the most recent 10-Q": the latest report among those it names
    of_years: frozenset[str] = frozenset()  # "FY2022": among those it names, the reports whose period ends then
    caseless: frozenset[str] = frozenset()  # a question typed without capitals: the terms read as its names

    def best_named(self, among: Sequence[str]) -> set[str]:
        """The documents among ``among`` that the question names best; empty when it names none of them,
        or all alike."""
        scores = {sha: self.named.get(sha, 0.0) for sha in among}
        best = max(scores.values(), default=0.0)
        found = {sha for sha, score in scores.items() if score > 0 and score >= best}
        return found if found and len(found) < len(scores) else set()


def route(
    question: str,
    documents: Sequence[DocumentInfo],
    covers: dict[str, frozenset[str]],
    documents_with: Callable[[Iterable[str]], dict[str, set[str]]] | None = None,
    cover_text: Callable[[str], str] | None = None,
    running: PageNames | None = None,
) -> DocumentRoute:
    """The documents ``question`` names, among ``documents`` (``covers``: each content's cover terms;
    ``documents_with(terms)``: the contents whose text holds each term, to tell names no title carries;
    ``cover_text(sha)``: a content's cover as text, to read the period it reports on; ``running``: what it reads of
    the contents' pages to tell the names they run with (:func:`running_names`), which then name their documents as
    a title's do)."""
    covers = with_symbols_asked(question, covers)
    named = tuple((d.sha256, d.name, covers.get(d.sha256, frozenset())) for d in documents)
    titles, idf = _title_terms(named)
    found = running_names(question, titles, running) if running is not None else {}
    names_run = frozenset().union(*found.values()) if found else frozenset()  # they name their documents as titles do
    if any(not terms <= titles[sha] for sha, terms in found.items()):  # routed as if their covers printed them
        covers = {sha: covers.get(sha, frozenset()) | found.get(sha, frozenset()) for sha in {*covers, *found}}
        named = tuple((d.sha256, d.name, covers.get(d.sha256, frozenset())) for d in documents)
        titles, idf = _title_terms(named)
    carried = set().union(*titles.values()) if titles else set()
    subjects = subject_terms(question) - LEGAL_FORMS  # "Corporation", "Inc." name no document: many titles hold them
    caseless = caseless_subjects(question, titles) - LEGAL_FORMS if typed_without_capitals(question) else set()
    subjects |= caseless
    untitled, years = sorted(subjects - carried), sorted(named_years(question))
    caseless_named = caseless_names(question, caseless, [d.name for d in documents])
    asked_names = named_terms(question) | caseless_named | names_run
    chinese = sorted(t for t in asked_names if CJK_CHAR.match(t))
    looked_up = [*untitled, *years, *chinese]
    in_text = documents_with(looked_up) if documents_with and looked_up else {}
    facts = {
        "titles": {sha: frozenset(terms) for sha, terms in titles.items()},
        "untitled": {t: frozenset(in_text.get(t, ())) for t in untitled},
        "periods": {y: frozenset(in_text.get(y, ())) | {sha for sha, t in titles.items() if y in t} for y in years},
        "documents": len(titles),
        "owners": frozenset(owner_terms(question)),
        "by_subject": {sha: 1.0 for sha, terms in titles.items() if subjects & terms},
        "names": tuple(g for g in name_groups(question) if g & subjects),
        "caseless": frozenset(caseless_named),
    }
    if len(titles) < 2:
        return DocumentRoute(**facts)
    # Chinese has no capitals to tell a name by: a Chinese word names a document only where few documents'
    # texts use it (凌云, 千味央厨), not a word of their domain (收入, 产品, 证券) that a cover happens to hold
    common = max(2.0, DOMAIN_WORD_SHARE * len(titles))
    asked_names -= {t for t in chinese if len(in_text.get(t, ())) >= common}
    scores, names = _scores(document_query_terms(question), titles, idf), _scores(asked_names, titles, idf)
    if cover_text is not None:
        file_names = {d.sha256: d.name for d in documents}
        # which reports the question names, by its names without its years: a report whose cover also mentions
        # the other year asked ("FY2021 and FY2022": notes due 2022 on the 10-K for 2021) names it no better (a
        # quarter stays a name: "Q1 2023" is one of several reports ending in 2023, and may end in December 2022)
        by_name = _scores({t for t in asked_names if not YEAR_TERM.fullmatch(t)}, titles, idf)
        if not years and LATEST.search(question):
            chosen = dict.fromkeys(latest_reports(by_name, file_names, cover_text), 1)
            facts["latest"] = frozenset(chosen)
        else:
            chosen = reports_of_years(by_name, file_names, cover_text, set(years))
            facts["of_years"] = frozenset(chosen)
        # above every other report, in their own order ("3M's FY2022": every report of 2022 is chosen, 3M's first);
        # those of the latest year asked above the others ("FY2021 and FY2022": the 10-K for 2022 holds both)
        top = max([*scores.values(), *names.values()], default=0.0) + 1.0
        scores.update({sha: tier * top + scores.get(sha, 0.0) for sha, tier in chosen.items()})
        names.update({sha: tier * top + names.get(sha, 0.0) for sha, tier in chosen.items()})
    return DocumentRoute(scores, names, **facts)


@dataclass(frozen=True)
class PageNames:
    """What the route reads of the documents' pages to tell the names they run with (:func:`running_names`)."""

    # (terms, at most this many documents hold each) -> term -> sha -> how many of its pages hold it
    pages_with: Callable[[Iterable[str], int | None], dict[str, dict[str, int]]]
    pages: dict[str, int]  # sha -> its pages
    # (term, sha) -> the texts of the content's pages that BM25 ranks best for the term
    texts: Callable[[str, str], list[str]]

    def share(self, term: str, sha: str) -> float:
        """The share of a content's pages that hold ``term``."""
        return self.pages_with([term], None).get(term, {}).get(sha, 0) / self.pages.get(sha, 1)


def running_names(question: str, titles: dict[str, set[str]], read: PageNames) -> dict[str, frozenset[str]]:
    """The names a question writes, as the documents whose pages they run through name them: sha -> those terms. A
    report whose cover is a picture ("2022 Annual Report" and a logo) and whose file name is a number or a hash is
    titled by nothing of its company's; its pages name the company throughout ("TransUnion" on most pages of
    TransUnion's 10-K). A term names a document where it runs through at least SYMBOL_NAME_PAGES of its pages
    (``read.pages_with``), and only where it runs so through few documents (a word of their domain, "revenue", "staff",
    names none) and half of them at most hold it at all, but for a word typed without capitals that few covers carry
    ("safe and green ...": most reports say "safe" somewhere; Safe & Green's cover and pages write it as a name). The
    names read are the question's capitalised words, the first included ("TransUnion operating margin 2022"), and its
    Chinese words; and the words of a question typed without capitals and its owners ("transunion's revenue"), where
    the document writes them as a name, capitalised in most places its best pages hold them (``read.texts``):
    "tradition staff costs" names Compagnie Financière Tradition's report, "when does the revolving credit facility mature" names no report whose
    pages discuss revolving credit. A name a title also carries is read too: it is then known as a name ("mercia
    assets under management 2022", whose file name spells nothing), and only the titles carrying it name documents.
    Where the question names documents by their titles already (its names a title carries), a name adds nothing to
    them ("Apple's iPhone revenue in the latest quarter" names Apple's four 10-Qs; the iPhone running through more
    pages of one of them says nothing of which one is asked), and names others only as the owner it asks about."""
    words = [w for w in _WORD.findall(question) if w[0].isupper() or re.search(r"[a-z][A-Z]", w)]
    written = subject_terms(question) | {t for w in words for t in document_query_terms(w)}
    lower = _caseless_owners(question)
    if typed_without_capitals(question):
        lower |= {t for t in document_query_terms(question) if t.isalpha() and len(t) >= 3}
    asked = {t for t in (written | lower) - LEGAL_FORMS - STOPWORDS - ASKING_WORDS if not t.isdigit()}
    asked = {t for t in asked if not PERIOD_TERM.fullmatch(t) and not MONTH_WORD.fullmatch(t)}
    if len(titles) < 2 or not asked:
        return {}
    common = max(2.0, DOMAIN_WORD_SHARE * len(titles))
    carried = set().union(*titles.values())
    # a word typed without capitals that few covers carry ("safe and green construction backlog": Safe & Green's) is
    # read however many documents hold it somewhere: its cover and its pages' capitals tell it is a name
    covered = {t for t in asked - written if t in carried and sum(t in terms for terms in titles.values()) < common}
    held = read.pages_with(sorted(asked - covered), len(titles) // 2) | read.pages_with(sorted(covered), None)
    runs: dict[str, set[str]] = {}  # name -> the documents whose pages it runs through
    for term, holders in held.items():
        through = {
            sha for sha, n in holders.items() if sha in titles and n >= SYMBOL_NAME_PAGES * read.pages.get(sha, 1)
        }
        if 0 < len(through) < common and term not in written:
            through = {sha for sha in through if capitalised_share(term, read.texts(term, sha)) > 0.5}
        if 0 < len(through) < common:
            runs[term] = through
    # where the question names documents by their titles already, only a name it asks about as an owner names others
    # ("transunion's UK revenue": UK titles two British reports) and none adds to those named (Apple's iPhone runs
    # through one of Apple's four 10-Qs more than the others; 千味央厨's 实验室 through a report on testing labs)
    titled = {sha for sha, terms in titles.items() if terms & ((asked & written) | runs.keys()) & carried}
    owners = owner_terms(question) | _caseless_owners(question)
    found: dict[str, set[str]] = {}
    for term, through in runs.items():
        for sha in through:
            if term in titles[sha] or not titled or (term in owners and sha not in titled):
                found.setdefault(sha, set()).add(term)
    return {sha: frozenset(terms) for sha, terms in found.items()}


def capitalised_share(term: str, texts: Iterable[str]) -> float:
    """The share of the words of ``texts`` written from an index term (it, or it and up to three letters more:
    "tradition", "Traditions") that start with a capital: how a document writes it, as a name or as a word."""
    pattern = re.compile(rf"(?<![A-Za-z]){re.escape(term)}[a-z]{{0,3}}(?![A-Za-z])", re.IGNORECASE)
    found = [m.group() for text in texts for m in pattern.finditer(text)]
    return sum(w[0].isupper() for w in found) / len(found) if found else 0.0


def caseless_names(question: str, subjects: set[str], files: Sequence[str]) -> set[str]:
    """The names a question typed without capitals writes, among its ``subjects`` (:func:`caseless_subjects`): those
    it writes as owners ("pepsico's") or that a file name spells (``files``: "corning" of CORNING_2022_10K.pdf, "buy"
    of BESTBUY_2019_10K.pdf); not a word a few covers happen to hold ("effective", "legal"). They name its documents
    in the route's named view and are taken out of the question its pages are also ranked for, as capitalised names
    are."""
    owners = _caseless_owners(question)
    return {t for t in subjects if t in owners or (len(t) >= 3 and any(spelled_by(t, f) for f in files))}


def spelled_by(term: str, file_name: str) -> bool:
    """Whether a file's name spells ``term``: a term of its name holds it ("water" of AMERICANWATERWORKS_2022_10K.pdf,
    whose company is one term)."""
    return any(term in part for part in name_terms(file_name))


# A question typed without capitals ("what was tesla's revenue in 2022?"): its case tells no name
CASELESS = re.compile(r"[^A-Z]*[a-z]{3}[^A-Z]*", re.DOTALL)
# Capitals that tell no name either: a period or a form as people write them whatever their case ("FY2022", "Q2",
# "2Q23", "H1", "10-K"), and a keyboard's capital at the start of a question that opens with a word of asking ("Why
# did ..."; not "Nike fiscal 2018 ...", whose first word is a name)
_CASE_FREE = re.compile(
    r"(?<![A-Za-z0-9])(?:FY\s?['’]?\d{2,4}|[1-4][QH]\s?['’]?\d{2,4}|[QH][1-4]|\d{1,2}-[KQ])(?![A-Za-z0-9])"
)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_ASKING = STOPWORDS | ASKING_WORDS  # "why", "what", "explain": a first word whose capital is the keyboard's


def typed_without_capitals(question: str) -> bool:
    """Whether a question's capitals tell none of its names: none but its periods' and forms', and its first letter's
    where its first word is one of asking ("Why did kopore metals rename itself enrg elements in FY2022?", as a
    phone's keyboard types it)."""
    text = _CASE_FREE.sub(" ", question).lstrip()
    first = _FIRST_WORD.match(text)
    if first and first.group().lower() in _ASKING:
        text = text[:1].lower() + text[1:]
    return bool(CASELESS.fullmatch(text))


_CASELESS_OWNER = re.compile(r"([a-z][a-z0-9.&\-]*)['’]s\b")
_CONTRACTED = frozenset("here there that it let who what where how he she".split())  # "here's the formula"


def caseless_subjects(question: str, titles: dict[str, set[str]]) -> set[str]:
    """What a question typed without capitals names as its subject, as index terms: the owners it writes ("tesla's",
    "nike's"; not "here's") and its words that title a few documents only (``titles``: "apple" titles 4 of
    docugami's 20 10-Qs, "quarterly" all 20). Each is then judged as a capitalised subject is: a titled one names its
    documents; an untitled owner is absent unless many documents' texts or the passages found hold it
    (rag_app.answering.absence: "company's" is no name). Its other words cannot be told from ordinary ones."""
    words = {t for t in document_query_terms(question) if t.isalpha() and len(t) >= 3 and not MONTH_WORD.fullmatch(t)}
    words -= STOPWORDS | ASKING_WORDS
    owners = _caseless_owners(question)
    titled = Counter(t for terms in titles.values() for t in terms & words)
    few = max(2.0, DOMAIN_WORD_SHARE * len(titles))
    return (owners & words) | {t for t, count in titled.items() if count <= few and count < len(titles)}


def _caseless_owners(question: str) -> set[str]:
    """The owners a question typed without capitals writes, as index terms: "tesla's", not "here's"."""
    return {t for m in _CASELESS_OWNER.finditer(question) for t in document_query_terms(m.group(1))} - _CONTRACTED


# A listing symbol as a question writes one: an upper-case word ("AMZN's revenue", "BRK.B", "NVDA的营收")
_WRITTEN_SYMBOL = re.compile(r"(?<![A-Za-z0-9_.$])([A-Z][A-Z0-9]{1,5}(?:\.[A-Z])?)(?![A-Za-z0-9_$])")


def with_symbols_asked(question: str, covers: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """``covers`` with each listing symbol the question writes ("AMZN's revenue") as a term of the covers that state
    it (their marked symbols: rag_app.storage.chunk_table.cover_terms). A symbol the question does not write in
    upper case names nothing: Costco's COST is no title of "the cost of revenue"."""
    asked = {SYMBOL_MARK + w for w in _WRITTEN_SYMBOL.findall(question)}
    if not asked:
        return covers
    return {sha: cover | {t[1:].lower() for t in found} if (found := asked & cover) else cover
            for sha, cover in covers.items()}  # fmt: skip


# A word names the company of the documents stating a symbol where it runs through this share of each one's pages
# ("amazon" through a fifth of Amazon's 10-K), not where its cover alone prints it
SYMBOL_NAME_PAGES = 0.15


def symbol_names(
    question: str,
    covers: dict[str, frozenset[str]],
    titles: dict[str, frozenset[str]],
    files: dict[str, str],
    running: Callable[[str, str], float],
) -> list[str]:
    """The words naming the company of each listing symbol the question writes, as the documents stating it
    (``covers``: their marked symbols) name it: title terms (``titles``: :attr:`DocumentRoute.titles`) that every one
    of them holds and no other document's title does, that each one's file name (``files``: sha -> name) spells
    ("jpmorgan" of JPMORGAN_2023Q2_10Q.pdf; "american", "water" of AMERICANWATERWORKS_2022_10K.pdf) and that run
    through at least SYMBOL_NAME_PAGES of each one's pages (``running(term, sha)``: the share of its pages holding
    it), most pages first. Not its cover's other words: JPMorgan's "interest", Costco's "august". Empty where the
    question writes no symbol a document states, where the symbol runs through their pages as it is ("MGM", "CVS"),
    or where their file names do not spell the company ("2023 Q1 AAPL.pdf")."""
    out: list[str] = []
    for symbol in dict.fromkeys(_WRITTEN_SYMBOL.findall(question)):
        stating = [sha for sha, cover in covers.items() if SYMBOL_MARK + symbol in cover and sha in titles]
        if not stating or min(running(symbol.lower(), sha) for sha in stating) >= SYMBOL_NAME_PAGES:
            continue  # a symbol its pages use as a name ("MGM Resorts", "CVS Health") needs no other
        others = set().union(*(terms for sha, terms in titles.items() if sha not in stating))
        shared = frozenset.intersection(*(titles[sha] for sha in stating)) - others - {symbol.lower()}
        spelled = {
            t
            for t in shared
            if t.isalnum() and not t.isdigit() and not PERIOD_TERM.fullmatch(t)
            and all(spelled_by(t, files.get(sha, "")) for sha in stating)
        }  # fmt: skip
        held = {t: min(running(t, sha) for sha in stating) for t in spelled}
        out += sorted(
            (t for t in spelled if held[t] >= SYMBOL_NAME_PAGES and t not in out), key=lambda t: (-held[t], t)
        )
    return out


# A question asking for the latest report of what it names, without naming its year: "in the most recent 10-Q",
# "Apple's latest quarter", 最新一期. Its reports tie on the name; the latest of them answers.
LATEST = re.compile(r"\b(?:latest|most\s+recent(?:ly)?|newest)\b|最新|最近一期|最近一次", re.IGNORECASE)
# A filing's cover: "For the quarterly period ended July 1, 2023", "for the fiscal year ended December 31, 2022"
_PERIOD_ENDED = re.compile(
    rf"(?:period|quarter|year)\s+ended:?\s+({'|'.join(MONTHS)})\s+\d{{1,2}},?\s+((?:19|20)\d\d)", re.IGNORECASE
)
# A Chinese report's title: 2023年第三季度报告, 2023年半年度报告, 2019年年度报告 (the month its period ends)
_ZH_REPORT = re.compile(r"((?:19|20)\d\d)\s*年\s*(第?[一1]季度|半年度|中期|第?[三3]季度|年度)\s*报告")
_ZH_MONTH = {"一": 3, "1": 3, "半": 6, "中": 6, "三": 9, "3": 9, "年": 12}


def latest_words(question: str) -> set[str]:
    """The index terms of how a question asks for the latest report ("most recent": which report, not words
    its answer holds; a certification's "most recent fiscal quarter" is no answer)."""
    return {t for m in LATEST.finditer(question) for t in document_query_terms(m.group())}


def report_period(name: str, cover: str) -> tuple[int, int] | None:
    """(year, month) the period a report covers ends in: read off its cover ("For the quarterly period ended
    July 1, 2023", "2023年第三季度报告"), else its file name ("2023 Q3 AAPL.pdf", "3M_2018_10K.pdf": the
    latest year, at the end of the quarter or half it names, else of the year); None when neither says."""
    if m := _PERIOD_ENDED.search(cover):
        return int(m.group(2)), MONTHS.index(m.group(1).lower()) + 1
    if m := _ZH_REPORT.search(cover):
        kind = m.group(2).lstrip("第")
        return int(m.group(1)), _ZH_MONTH[kind[0]]
    terms = name_terms(name)  # its years, and its quarter or half as q1-q4, h1-h2 (rag_app.text.terms)
    years = [int(m.group(1)) for t in terms if (m := YEAR_TERM.fullmatch(t)) and m.group(1)]
    parts = [int(t[1]) * (3 if t[0] == "q" else 6) for t in terms if PART_TERM.fullmatch(t)]
    return (max(years), max(parts, default=12)) if years else None


def latest_reports(named: dict[str, float], names: dict[str, str], cover_text: Callable[[str], str]) -> set[str]:
    """The file contents reporting on the latest period among those a question names best (``named``: sha ->
    score; none named: among all of ``names``, sha -> file name); empty when no period can be read."""
    known = {sha: period for sha, period in _periods(named, names, cover_text).items() if period is not None}
    if len(known) < 2:
        return set()
    newest = max(known.values())
    return {sha for sha, period in known.items() if period == newest}


def reports_of_years(
    named: dict[str, float], names: dict[str, str], cover_text: Callable[[str], str], years: set[str]
) -> dict[str, int]:
    """Among the reports a question names best (it names none: among all), those whose period ends in a year it
    names: "3M's FY2022 capex" ties the 10-K for 2022 with the 10-K for 2018, whose cover lists notes due 2022.
    Each is given its tier: 2 for the latest year asked that a report ends in, 1 for an earlier one (a report
    compares its year with the one before: "between FY2021 and FY2022" is answered by the 10-K for 2022). Empty
    when none ends in a year asked, or all end in the one year, with nothing left to tell apart."""
    periods = _periods(named, names, cover_text) if years else {}
    dated = {sha: period[0] for sha, period in periods.items() if period is not None and str(period[0]) in years}
    if not dated or (len(dated) == len(periods) and len(set(dated.values())) == 1):
        return {}
    latest = max(dated.values())
    return {sha: 2 if year == latest else 1 for sha, year in dated.items()}


def _periods(
    named: dict[str, float], names: dict[str, str], cover_text: Callable[[str], str]
) -> dict[str, tuple[int, int] | None]:
    """The period each report a question names best covers (none named: every report of ``names``)."""
    best = max(named.values(), default=0.0)
    pool = [sha for sha, score in named.items() if score >= best] if best > 0 else list(names)
    return {sha: report_period(names.get(sha, ""), cover_text(sha)) for sha in pool}


def _scores(asked: set[str], titles: dict[str, set[str]], idf: dict[str, float]) -> dict[str, float]:
    # fsum: the exact sum, in whatever order the set gives its terms (a plain sum's last bits followed the process's
    # string hashing, so documents a question names alike tied in one process and not in the next)
    found = {sha: math.fsum(idf[t] for t in asked & terms) for sha, terms in titles.items()}
    return {sha: score for sha, score in found.items() if score > 0}


@functools.lru_cache(maxsize=8)
def _title_terms(named: tuple[tuple[str, str, frozenset[str]], ...]) -> tuple[dict[str, set[str]], dict[str, float]]:
    """Each file content's title terms (its names' and its cover's, and the words inside compound terms:
    a cover's "amazon.com" also matches a question's "Amazon") and their idf over the documents.

    Cached on the documents' names and covers: rebuilding it took ~15 ms a question at 200 documents.
    """
    titles: dict[str, set[str]] = {}
    for sha, name, cover in named:  # a Chinese name in pinyin too, as an English question writes it
        titles.setdefault(sha, set(cover)).update(name_terms(name) | pinyin_names(name))
    titles = {sha: terms | term_parts(terms) for sha, terms in titles.items()}
    words = set().union(*titles.values()) if titles else set()
    for sha, name, _cover in named:  # "MGMRESORTS_2018_10K.pdf": mgm + resort, words other titles hold
        titles[sha] |= {part for term in name_terms(name) for part in _joined_words(term, words)}
    frequency = Counter(term for terms in titles.values() for term in terms)
    return titles, {term: math.log(len(titles) / count) for term, count in frequency.items()}


def _joined_words(term: str, words: set[str]) -> tuple[str, ...]:
    """The two words of at least 3 letters a file name's term joins, where both are terms of titles ("mgmresort":
    mgm, resort); none when it joins no two such words. A cover whose spacing splits the company's name
    ("MGM R ESORTS") leaves the file name to name it."""
    if len(term) < 6 or not term.isalpha():
        return ()
    for cut in range(3, len(term) - 2):
        if term[:cut] in words and term[cut:] in words:
            return term[:cut], term[cut:]
    return ()


def named_terms(question: str) -> set[str]:
    """The terms of a question that name something: capitalised words after the first (Amazon, AMZN, iPhone),
    years and quarters (2023, Q1, FY2018), and Chinese words (no capitals to tell names by)."""
    words = [re.sub(r"['’]s$", "", w) for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9.&'’\-]*", question)]  # 3M's: 3M
    names = {w for i, w in enumerate(words) if (i > 0 and w[0].isupper()) or w.isupper() or re.search(r"[a-z][A-Z]", w)}
    names = {w for w in names if not MONTH_WORD.fullmatch(w)}  # "31 March 2022": a period, not a name
    names |= {w for w in words if re.fullmatch(r"(19|20)\d\d|[Qq][1-4]|FY\d{2,4}|fy\d{2,4}", w)}
    terms = {t for w in names for t in document_query_terms(w)} | part_terms(question)
    cjk = "".join(re.findall(r"[\u4e00-\u9fff]+", question))
    return terms | (document_query_terms(cjk) if cjk else set())


_SENTENCE_START = re.compile(r"(?:^|[.?!:;]\s+|\n\s*)([A-Za-z][\w.&'\-]*)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.&'\-]*")
_PERIOD_OR_NUMBER = re.compile(r"(?:FY|Q|H)\d{1,4}|\d+(?:[.,]\d+)*%?|\d+(?:st|nd|rd|th|s)?", re.IGNORECASE)
_FORM = re.compile(r"\d+-[A-Za-z]{1,2}s?")  # a filing's form, "10-Qs", "8-K", "20-F": what, not whose


def subject_terms(question: str) -> set[str]:
    """What a question names as its subject, as index terms: capitalised words that do not start a sentence
    (Tesla, Coca-Cola), upper-case and camel-case words (AMZN, iPhone), and the Chinese words (四方科技,
    秘鲁: Chinese has no capitals to tell names by). Years, quarters, months and forms ("10-Qs") are not subjects."""
    starts = {m.start(1) for m in _SENTENCE_START.finditer(question)}
    words = [m.group() for m in _WORD.finditer(question) if m.start() not in starts]
    names = {
        w for w in words
        if (w[0].isupper() or w[0].isdigit() or re.search(r"[a-z][A-Z]", w))
        and not _PERIOD_OR_NUMBER.fullmatch(w) and not _FORM.fullmatch(w) and not MONTH_WORD.fullmatch(w)
    }  # fmt: skip
    terms = {t for w in names for t in document_query_terms(w) if not t.isdigit()}
    cjk = "".join(re.findall(r"[\u4e00-\u9fff]+", question))
    return terms | ({t for t in document_query_terms(cjk) if len(t) >= 2 and t not in CJK_STOPWORDS} if cjk else set())


# A name as questions write one: capitalised words in a row, joined by "&", "of", "and", "de" or a hyphen.
# No CJK inside: "2013年间" or "100亿大关" in a Chinese question is a period and an amount, not a name.
_NAME_CHAR = r"(?:[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[.&'\-])"
_NAME_RUN = re.compile(rf"[A-Z0-9]{_NAME_CHAR}*(?:\s+(?:(?:&|of|and|de|du|la)\s+)?[A-Z0-9]{_NAME_CHAR}*)*")
_CONNECTORS = {"&", "of", "and", "de", "du", "la"}
# Periods and forms: FY, Q, H alone ("FY 2021"), a filing's form ("10-Qs", "8-K", "20-F").
_NOT_A_NAME = re.compile(rf"(?:FY|Q|H)|{_FORM.pattern}", re.IGNORECASE)
# Words of company names that name no company by themselves.
LEGAL_FORMS = frozenset(
    "inc corp corporation co company companies ltd limited plc llc lp holdings holding group sa ag nv se spa "
    "bank trust the international".split()
)  # fmt: skip


def name_groups(question: str) -> list[frozenset[str]]:
    """Each name the question writes (a run of capitalised words that is not just the sentence's first word),
    as its index terms without legal forms: "Sleep Country Canada Holdings Inc." -> {sleep, country, canada}.
    A lone upper-case word is left out: as often a unit or a measure (USD, EBITDA, PP&E) as a ticker."""
    starts = {m.start(1) for m in _SENTENCE_START.finditer(question)}
    groups = []
    for m in _NAME_RUN.finditer(question):
        words = m.group().split()
        if m.start() in starts:
            words = words[1:]  # "What", "Which", "How": capitalised for the sentence only
            while words and words[0] in _CONNECTORS:  # "As of FY 2021": what follows is no name's middle
                words = words[1:]
        words = [w for w in words if not any(p.fullmatch(w) for p in (_PERIOD_OR_NUMBER, _NOT_A_NAME, MONTH_WORD))]
        if len(words) == 1 and words[0].isupper():
            continue
        terms = frozenset(
            t for w in words for t in document_query_terms(w) if not t.isdigit() and t not in LEGAL_FORMS
        )  # fmt: skip
        if terms:
            groups.append(terms)
    return groups


def named_years(question: str) -> set[str]:
    """The years a question names: "2019", "FY2018", "fiscal 2022", "2019年" (abbreviated ones, "FY19", once the
    question is read: ``rag_app.text.terms.read_question``)."""
    return set(re.findall(r"(?<!\d)(?<!\d[.,])((?:19|20)\d\d)(?!\d|%|[.,]\d)", question))


_OWNER = re.compile(r"([A-Z0-9][\w.&\-]*(?:\s+[A-Z0-9][\w.&\-]*)*)['’]s\b")  # Tesla's, Coca-Cola's, 3M's


def owner_terms(question: str) -> set[str]:
    """The subjects a question asks about as the owner of what it asks ("Tesla's revenue"): the company whose
    own report must answer it, as index terms."""
    owners = {m.group(1) for m in _OWNER.finditer(question)}
    return {
        t for name in owners for t in document_query_terms(name) if not t.isdigit() and not t.startswith("fy")
    } & subject_terms(question)
