"""The answer-benchmark question sets as typed records, each with its kind, half and gold.

    python -m bench.answer_sets      # prints the count tables (per set, half and kind)

Sets (read in place under QA_ROOT, default /work/shared/corpus/qa; nothing is copied):
financebench_dev, zh_reports_dev, finglm_zh_mini, docugami_sec10q, enterprise_rag_challenge_r1
(round1 with its 12 reports; round2 without its reports: every round2 question must be refused here).

Kinds (decided automatically, the same on every run; ``kind_reason`` says which rule fired):
* refuse:  the right behaviour is to refuse: an enterprise_rag_challenge gold of only "N/A", a question
           that names only companies without a report in the collection, a docugami gold that says
           the filing does not give the information, or a question whose reports are all absent.
* open:    a free-text gold (explanation, list, yes/no with reasoning, a Chinese question asking to
           介绍/分析/简述 ...) that a figure or a key string cannot score.
* lookup:  a figure (or key string: e-mail, URL, name) gold printed on an evidence page in one of its
           usual printed forms (parse_figures + printed_match in scoring.py).
* derived: a figure gold not printed on the evidence pages (arithmetic needed), or a multiple-choice
           name that the question itself offers (a comparison).

Half: ``split_half(doc_name)``: sha256 of the document name, first byte even -> tuning, odd ->
confirmation. doc_name: financebench qa.jsonl's doc_name as written; zh_reports the PDF file name;
finglm_zh_mini the PDF name with ".pdf" (its twin in zh_reports_dev, same half); docugami the ticker
(AAPL: all 4 filings of a company on one side); enterprise_rag_challenge round1 the PDF file name
(sha1.pdf) of the first named company present, else the first company named; round2 the first
reference PDF (sha1.pdf), else the question text.

No dependency on rag_app; pypdfium2 for page text (cached under bench/.data/answer_sets, ignored by git).
"""

from __future__ import annotations

import atexit
import csv
import fnmatch
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

from bench.answer_scoring import (
    _ABSENCE_EN_RE,
    CJK,
    EN_STOP,
    YES_NO_QUESTION,
    ZH_STOP_BIGRAMS,
    ZH_STOP_CHARS,
    Figure,
    Gold,
    detect_language,
    en_words,
    fold,
    key_in,
    normalise,
    parse_figures,
    polarity,
    printed_match,
    stance,
    zh_bigrams,
)
from bench.common import CORPUS, ROOT  # noqa: E402
from bench.retrieval import split_half  # noqa: E402

QA_ROOT = CORPUS / "qa"
CACHE = Path(os.environ.get("ANSWER_SETS_CACHE", ROOT / "bench" / ".data" / "answer_sets"))
HERE = CACHE
SETS = ("financebench_dev", "zh_reports_dev", "finglm_zh_mini", "docugami_sec10q", "erc_round1", "erc_round2")
SHORT_EN_WORDS, SHORT_ZH_CHARS, MAX_FIGURES = 40, 60, 4


@dataclass
class Record:
    """One question of one set, with everything the answer benchmark needs to score it."""

    set: str
    id: str
    question: str
    gold: Gold
    kind: str
    half: str
    language: str
    doc_name: str  # the name the half is computed from
    docs: list[str]  # PDF paths (relative to QA_ROOT) the answer needs: the collection must hold them
    evidence_pages: list[tuple[str, int]] = field(default_factory=list)  # (PDF path rel. QA_ROOT, 1-based)
    question_type: str | None = None  # financebench question_type, docugami Question Type, erc schema
    category: str | None = None  # zh_reports category, erc category, docugami Source Chunk Type
    kind_reason: str = ""
    printed_on: list[tuple[str, int]] = field(default_factory=list)  # pages where the gold was found
    notes: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "set": self.set, "id": self.id, "question": self.question, "gold": self.gold.to_json(),
            "kind": self.kind, "half": self.half, "language": self.language, "doc_name": self.doc_name,
            "docs": self.docs, "evidence_pages": [list(e) for e in self.evidence_pages],
            "question_type": self.question_type, "category": self.category, "kind_reason": self.kind_reason,
            "printed_on": [list(e) for e in self.printed_on], "notes": self.notes,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> Record:
        ev = [tuple(e) for e in d["evidence_pages"]]
        gold = Gold.from_json(
            d["gold"], d["question"], d["language"], ev or [tuple(e) for e in d.get("printed_on", [])]
        )
        r = cls(d["set"], d["id"], d["question"], gold, d["kind"], d["half"], d["language"], d["doc_name"],
                d["docs"], ev, d.get("question_type"), d.get("category"), d.get("kind_reason", ""),
                [tuple(e) for e in d.get("printed_on", [])], d.get("notes", {}))  # fmt: skip
        return r

    def with_evidence_texts(self) -> Record:
        """Loads the evidence pages' text into the gold (for scoring's "right evidence" rule)."""
        self.gold.evidence_texts = [page_text(f, p) for f, p in self.gold.evidence]
        return self


def kind_in_collection(record: Record, present: set[str]) -> str:
    """The kind of a question for a collection that holds only ``present`` (PDF file names): a question
    none of whose documents is there must be refused."""
    if record.kind == "refuse" or not record.docs:
        return record.kind
    names = {Path(d).name for d in record.docs} | {Path(d).with_suffix(".pdf").name for d in record.docs}
    return record.kind if names & set(present) else "refuse"


# ----- page text ------------------------------------------------------------------------------------


class _PdfText:
    """Page texts of one PDF (pypdfium2 ``get_text_range``), extracted on demand and cached on disk
    (keyed by path, size and mtime) under CACHE, outside any repository."""

    def __init__(self, rel: str):
        self.path = QA_ROOT / rel
        st = self.path.stat()
        key = hashlib.sha1(f"{rel}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()
        self.cache = CACHE / f"{key}.json"
        data = json.loads(self.cache.read_text(encoding="utf-8")) if self.cache.exists() else {}
        self.count: int | None = data.get("count")
        self.pages: dict[int, str] = {int(k): v for k, v in data.get("pages", {}).items()}
        self._pdf = None

    def _doc(self):
        if self._pdf is None:
            import pypdfium2 as pdfium

            _close_at_exit()  # registered after pypdfium2's own exit handler: atexit runs the last registered first
            self._pdf = pdfium.PdfDocument(str(self.path))
            self.count = len(self._pdf)
        return self._pdf

    def __len__(self) -> int:
        if self.count is None:
            self._doc()
            self._save()
        return self.count

    def text(self, page1: int) -> str:
        if page1 not in self.pages:
            if not 0 < page1 <= len(self):
                return ""
            page = self._doc()[page1 - 1]
            tp = page.get_textpage()
            self.pages[page1] = tp.get_text_range()
            tp.close()
            page.close()
        return self.pages[page1]

    def all(self) -> list[str]:
        texts = [self.text(i + 1) for i in range(len(self))]
        self._save()
        self.close()  # every page is cached: the PDF is not needed again
        return texts

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

    def _save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        self.cache.write_text(
            json.dumps({"count": self.count, "pages": self.pages}, ensure_ascii=False), encoding="utf-8"
        )


_OPEN: dict[str, _PdfText] = {}


@lru_cache(maxsize=1)
def _close_at_exit() -> None:
    """The PDFs stay open while pages may still be asked for; closed at exit (pypdfium2 otherwise prints a line
    for each PDF left open). Registered once."""
    atexit.register(lambda: [pdf.close() for pdf in _OPEN.values()])


def _pdf(rel: str) -> _PdfText:
    if rel not in _OPEN:
        _OPEN[rel] = _PdfText(rel)
    return _OPEN[rel]


@lru_cache(maxsize=8192)
def _page_figures(text: str, keep_years: bool) -> tuple:
    """A page's figures, parsed once (a page is read for each gold figure of each question on it)."""
    return tuple(parse_figures(text, keep_years=keep_years))


def page_text(rel: str, page1: int) -> str:
    return _pdf(rel).text(page1)


def all_pages(rels: list[str]) -> list[tuple[str, int]]:
    """Every (PDF, page) of the PDFs, their text extracted (and cached) on the way."""
    return [(r, i + 1) for r in rels for i in range(len(_pdf(r).all()))]


def save_cache() -> None:
    for pdf in _OPEN.values():
        pdf._save()


# ----- gold construction ------------------------------------------------------------------------------

_Q_SCALE = re.compile(
    r"\b(?:in|answer in)\s+(?:units of\s+)?(?:usd|us\$|\$|dollars)?\s*(thousands|millions|billions)\b"
    r"|\b(?:usd|us\$)\s+(thousands|millions|billions)\b",
    re.IGNORECASE,
)
_SCALE_WORD = {"thousands": 1e3, "millions": 1e6, "billions": 1e9}
_TRAILER = re.compile(r"\s*SOURCE\(S\):.*$", re.DOTALL | re.IGNORECASE)


def strip_trailer(text: str) -> str:
    """Drops docugami's "SOURCE(S): 2023 Q3 AAPL.pdf" trailer and markdown emphasis."""
    return _TRAILER.sub("", text or "").replace("**", "").strip()


def question_scale(question: str) -> float | None:
    m = _Q_SCALE.search(question)
    return _SCALE_WORD[(m.group(1) or m.group(2)).lower()] if m else None


def gold_figures(answer: str, question: str) -> list[Figure]:
    """The figures a gold answer states, less those the question already prints (a period, "3 year")
    and repeats; a currency or bare amount takes the question's unit ("in USD millions")."""
    qvals = {abs(f.value) for f in parse_figures(question, keep_years=True)}
    scale = question_scale(question)
    out: list[Figure] = []
    for f in parse_figures(strip_trailer(answer)):
        if abs(f.value) in qvals and not (f.currency or f.scale or f.percent):
            continue
        if scale and not f.scale and not f.percent:
            f = Figure(f.raw, f.value, scale, f.percent, f.currency, f.decimals, f.year_like)
        if f not in out and not any(abs(o.value) == abs(f.value) and o.scale == f.scale for o in out):
            out.append(f)
    typed = [f for f in out if f.currency or f.scale or f.percent]
    return typed or out  # "IDM 2.0", "3 segments" beside "$4,109 million": the typed figures are the answer


def key_strings(answer: str) -> list[str]:
    """E-mail addresses and URLs a gold states."""
    t = normalise(answer)
    keys = re.findall(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", t)
    keys += [u.rstrip(".,;。，") for u in re.findall(r"(?:https?://|www\.)[\w./%?=&#-]+", t)]
    return list(dict.fromkeys(keys))


def key_terms(answer: str, question: str, language: str, evidence_texts: list[str]) -> list[str]:
    """Key terms of an open gold: its figures ("#" + printed form) and its content words (English) or CJK
    bigrams (Chinese) that are neither in the question nor stop words and, where evidence pages are known,
    are printed on one of them (so a model's filler, "根据图片中的信息", drops out)."""
    body = strip_trailer(answer)
    figs = ["#" + f.raw for f in gold_figures(body, question)]
    ev = fold(" ".join(evidence_texts))
    ev_nospace = ev.replace(" ", "")
    if language == "zh":
        qb = set(zh_bigrams(question))
        terms = [
            b for b in dict.fromkeys(zh_bigrams(body))
            if b not in qb and b not in ZH_STOP_BIGRAMS and not set(b) & ZH_STOP_CHARS
        ]  # fmt: skip
        grounded = [b for b in terms if b in ev_nospace]
    else:
        qw = set(en_words(question))
        terms = [w for w in dict.fromkeys(en_words(body)) if len(w) > 2 and w not in EN_STOP and w not in qw]
        grounded = [w for w in terms if re.search(rf"(?<![a-z]){re.escape(w)}", ev)]
    if evidence_texts and len(grounded) >= max(5, len(terms) // 5):
        terms = grounded
    return figs + terms


_OPEN_CUE_ZH = re.compile(
    r"介绍|简述|简要|分析|如何|怎样|为什么|为何|哪些|有何|什么影响|影响|情况|详情|解释|前景|趋势|策略"
)
_DIFFERENCE_Q = re.compile(r"\bhow much (?:more|less|higher|lower)\b|\bcompared to\b|\bdifference between\b", re.I)
_YESNO_Q = re.compile(r"^\s*(?:is|are|was|were|did|does|do|has|have|had|can|could|will|would|should)\b", re.I)
_GOLD_SAYS_ABSENT = re.compile(
    r"\b(?:does|do|did) not (?:provide|contain|include|specify|detail|mention|disclose|give|offer|report|have)\b"
    r"|\bnot (?:explicitly )?(?:provided|mentioned|disclosed|specified|detailed|available|stated)\b"
    r"|\bno (?:specific |explicit |direct )?(?:information|data|details|mention)\b",
    re.IGNORECASE,
)


def is_list(text: str) -> bool:
    return bool(re.search(r"(?m)^\s*(?:[-*•]|\d{1,2}[.)、]|（\d+）)\s*\S", text))


def decide(rec: Record, gold_text: str, *, refuse_reason: str = "", open_text: str | None = None,
           search_pages: list[tuple[str, int]] | None = None) -> None:  # fmt: skip
    """Fills rec.gold (figures, key strings, key terms, kind) and rec.kind from the gold text."""
    g = rec.gold
    q = rec.question
    body = strip_trailer(gold_text)
    lang = rec.language
    ev_pages = search_pages if search_pages is not None else rec.evidence_pages
    ev_texts = [page_text(f, p) for f, p in rec.evidence_pages]
    g.yes_no = polarity(body)
    if g.yes_no is None and YES_NO_QUESTION.search(q):
        g.yes_no = stance(body, q) or "yes"  # "NVIDIA did not disclose ..." answers "Did NVIDIA disclose ...?"
    long_text = strip_trailer(open_text or gold_text)
    if refuse_reason:
        rec.kind = g.kind = "refuse"
        rec.kind_reason = refuse_reason
        return
    if not g.figures and not g.key_strings:
        g.figures = gold_figures(body, q)
        g.key_strings = key_strings(body)
    n_words, n_cjk = len(body.split()), len(re.findall(f"[{CJK}]", body))
    numeric_only = bool(g.figures) and not re.search(f"[A-Za-z{CJK}]{{3,}}", re.sub(_num_words(), "", body))
    short = (n_cjk <= SHORT_ZH_CHARS if lang == "zh" else n_words <= SHORT_EN_WORDS) and not is_list(body)
    reason = ""
    if numeric_only:
        pass
    elif g.options:
        pass
    elif g.yes_no and not g.key_strings:
        reason = "yes/no with reasoning"
    elif lang == "zh" and _OPEN_CUE_ZH.search(q) and not g.key_strings:
        reason = "the question asks for a description (介绍/分析/...)"
    elif not short:
        reason = "long or list-formatted gold"
    elif not g.figures and not g.key_strings:
        reason = "short text gold without a figure or key string"
    elif len(g.figures) > MAX_FIGURES:
        reason = f"more than {MAX_FIGURES} figures"
    if reason:
        rec.kind = g.kind = "open"
        g.figures, g.key_strings = [], []
        g.key_terms = key_terms(long_text, q, lang, ev_texts)
        rec.kind_reason = reason
        return
    # figure or key-string gold: printed on an evidence page?
    texts = {(f, p): page_text(f, p) for f, p in ev_pages}
    if g.options:
        rec.kind = g.kind = "derived"
        rec.kind_reason = "multiple choice among names the question offers (a comparison)"
        return
    if g.figures:
        found = {}
        for gf in g.figures:
            keep = gf.decimals == 0 and 1900 <= abs(gf.value) <= 2100 and not (gf.currency or gf.scale or gf.percent)
            hits = []
            for (f, p), t in texts.items():
                matches = [pf for pf in _page_figures(t, keep) if printed_match(pf, gf, lang)]
                hits += [(f, p, pf.raw, _same_type(pf, gf)) for pf in matches[:1] or []]
                typed = [pf for pf in matches if _same_type(pf, gf)]
                if typed and not _same_type(matches[0], gf):
                    hits[-1] = (f, p, typed[0].raw, True)
            if any(h[3] for h in hits):  # printed with its % or currency somewhere: those pages only
                hits = [h for h in hits if h[3]]
            if hits:
                found[gf] = [h[:3] for h in hits]
        printed = [gf for gf in g.figures if gf in found]
        ok = (len(printed) == len(g.figures)) if g.figures_mode == "all" else bool(printed)
        rec.printed_on = sorted({(f, p) for hits in found.values() for f, p, _ in hits})
        if not rec.evidence_pages:  # docugami, erc: the pages the gold is printed on stand for the evidence
            g.evidence = list(rec.printed_on)
        rec.notes["printed_as"] = {gf.raw: sorted({h[2] for h in hits})[:5] for gf, hits in found.items()}
        where = "evidence pages" if search_pages is None else "pages of its documents"
        missing = [gf.raw for gf in g.figures if gf not in found]
        if missing:
            rec.notes["not_printed"] = missing
        if _DIFFERENCE_Q.search(q):
            rec.kind, rec.kind_reason = "derived", "the question asks for a difference (how much more / compared to)"
        elif ok:
            rec.kind, rec.kind_reason = "lookup", f"gold figure(s) printed on the {where}"
        elif rec.notes.get("evidence_mostly_in_image"):
            rec.kind, rec.kind_reason = (
                "lookup",
                "evidence page mostly an image (dataset flag): figure taken as printed, not in the text layer",
            )
            rec.notes["figure_in_image"] = True
        else:
            rec.kind, rec.kind_reason = "derived", f"gold figure(s) not printed on the {where}"
    else:
        found = [(f, p) for (f, p), t in texts.items() if any(key_in(k, t) for k in g.key_strings)]
        rec.printed_on = sorted(set(found))
        if not rec.evidence_pages:
            g.evidence = list(rec.printed_on)
        echoed = all(key_in(k, q) for k in g.key_strings)
        if found and not echoed:
            rec.kind, rec.kind_reason = "lookup", "key string printed on the evidence pages"
        else:
            rec.kind, rec.kind_reason = (
                "derived",
                "key string not printed on the evidence pages (or echoes the question)",
            )
    g.kind = rec.kind


# A gold answer's passage on a page: word 5-grams (numbers with their separators kept whole) that the gold and
# the page share, not counting those the question itself holds. A page holds the passage when it shares at least
# half as many as the best page does, and the best shares at least PASSAGE_MIN_SHARED (below that an answer is the
# grader's own words, or read off a table whose rows a sentence does not copy).
PASSAGE_GRAMS, PASSAGE_MIN_SHARED, PASSAGE_SHARE = 5, 6, 0.5
_GRAM_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def _grams(text: str, n: int = PASSAGE_GRAMS) -> set[str]:
    words = _GRAM_WORD.findall(text.lower())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def answer_pages(rec: Record) -> tuple[list[tuple[str, int]], str]:
    """The pages of a one-document question where its gold answer is printed, and how they were found, for
    page-level retrieval on a set without page evidence (docugami): a figure gold's pages (``printed_on``), else
    the pages holding the gold's passage (``_grams``). Empty where the gold is neither (a refusal, a table read in
    the grader's words, several documents)."""
    if len(rec.docs) != 1 or rec.kind == "refuse":
        return [], ""
    if rec.kind in ("lookup", "derived") and rec.printed_on:
        return sorted(rec.printed_on), "figure printed"
    shared = _grams(strip_trailer(rec.gold.text)) - _grams(rec.question)
    counts = [(len(shared & _grams(page_text(f, p))), (f, p)) for f, p in all_pages(rec.docs)]
    best = max((c for c, _ in counts), default=0)
    if best < PASSAGE_MIN_SHARED:
        return [], ""
    return sorted(page for c, page in counts if c >= PASSAGE_SHARE * best), "passage quoted"


def _same_type(page_fig: Figure, gold: Figure) -> bool:
    """A printed match that carries the gold's own mark: % for a percentage, a currency or scale word for
    an amount (a bare "21" on a contents page is a weaker match for "21%" than "21 %")."""
    if gold.percent:
        return page_fig.percent
    if gold.currency or gold.scale:
        return bool(page_fig.currency or page_fig.scale)
    return True


@lru_cache(maxsize=1)
def _num_words():
    return re.compile(
        r"(?i)\b(?:usd|us\$|million|billion|thousand|percent|increase|decrease|approximately|about|around)\b"
        r"|百万元|万元|亿元|千元|元|百分点|美元|港元"
    )


# ----- loaders ----------------------------------------------------------------------------------------


def _rec(set_name, qid, question, gold_text, doc_name, docs, evidence, **kw) -> Record:
    lang = detect_language(question)
    gold = Gold(text=gold_text, kind="", question=question, language=lang, evidence=list(evidence))
    return Record(set_name, qid, question, gold, "", split_half(doc_name), lang, doc_name, docs, list(evidence), **kw)


def financebench() -> list[Record]:
    out = []
    for line in (QA_ROOT / "financebench_dev" / "qa.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        pdf = f"financebench_dev/pdfs/{r['doc_name']}.pdf"
        pages = list(
            dict.fromkeys((f"financebench_dev/pdfs/{e['doc_name']}.pdf", int(e["page_number1"])) for e in r["evidence"])
        )
        rec = _rec("financebench_dev", r["id"], r["question"], r["answer"], r["doc_name"], [pdf], pages,
                   question_type=r["question_type"])  # fmt: skip
        decide(rec, r["answer"])
        out.append(rec)
    return out


def zh_reports() -> list[Record]:
    out = []
    for line in (QA_ROOT / "zh_reports_dev" / "qa.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        pdf = f"zh_reports_dev/pdfs/{r['doc_name']}"
        pages = [(pdf, int(p)) for p in r["evidence_pages"]]
        notes = {k: True for k in ("evidence_mostly_in_image", "same_company_docs_in_split") if r.get(k)}
        rec = _rec("zh_reports_dev", r["id"], r["question"], r["answer"], r["doc_name"], [pdf], pages,
                   category=r.get("category"), notes=notes)  # fmt: skip
        rec.notes["modal"] = r.get("modal")
        decide(rec, r["answer"])
        out.append(rec)
    return out


def finglm_mini() -> list[Record]:
    folder = QA_ROOT / "finglm_zh_mini"
    zh_ids = {json.loads(line)["id"] for line in (QA_ROOT / "zh_reports_dev" / "qa.jsonl").open(encoding="utf-8")}
    out = []
    for line in (folder / "qa_subset_with_available_pdfs.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        pdf = f"finglm_zh_mini/{r['pdf_file']}"
        pages = r["pages_containing_key_strings_1based"]
        pages = json.loads(pages) if isinstance(pages, str) else pages
        prompt = r.get("prompt") or {}
        gold_text = prompt.get("prom_answer") or r["reference_answers"][0]
        doc_name = Path(r["pdf_file"]).with_suffix(".pdf").name
        rec = _rec("finglm_zh_mini", r["id"], r["question"], gold_text, doc_name, [pdf], [(pdf, int(p)) for p in pages],
                   category=Path(r["source_file"]).parent.name)  # fmt: skip
        rec.notes["evidence"] = "pages found by text search of key strings, not gold annotations"
        twin = "finglm-" + r["id"].replace("-", "")
        if twin in zh_ids:
            rec.notes["duplicate_of"] = f"zh_reports_dev:{twin}"
        if "not available" in (r.get("note") or ""):
            rec.notes["needs_absent_documents"] = r["note"].split(";")[0]
            rec.gold.refusal_acceptable = True
        decide(rec, gold_text, open_text=r["reference_answers"][0])
        out.append(rec)
    return out


def docugami() -> list[Record]:
    folder = QA_ROOT / "docugami_sec10q" / "data" / "v1"
    files = sorted(p.name for p in (folder / "docs").glob("*.pdf"))
    with (folder / "qna_data.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for i, r in enumerate(rows):
        patterns = [p.strip() for p in r["Source Docs"].split(",") if p.strip()]
        docs = [f"docugami_sec10q/data/v1/docs/{f}" for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]
        ticker = re.findall(r"[A-Z]{3,5}", patterns[0])[-1]
        rec = _rec("docugami_sec10q", f"docugami-{i}", r["Question"], r["Answer"], ticker, docs, [],
                   question_type=r["Question Type"], category=r["Source Chunk Type"])  # fmt: skip
        rec.notes["source_docs"] = r["Source Docs"]
        body = strip_trailer(r["Answer"])
        first = re.split(r"(?<=[.!?])\s+", body, maxsplit=1)[0]
        absent = (
            _GOLD_SAYS_ABSENT.search(first) and not parse_figures(body) and not _YESNO_Q.match(r["Question"])
            and not polarity(body)
        )  # fmt: skip
        reason = "the gold says the filing does not give this" if absent else ""
        if not absent and not _YESNO_Q.match(r["Question"]) and any(p.search(first) for p in _ABSENCE_EN_RE):
            rec.gold.refusal_acceptable = True  # "The report does not provide specific commentary ...; however ..."
        decide(rec, r["Answer"], refuse_reason=reason, search_pages=all_pages(docs))
        if rec.kind == "refuse":
            rec.gold.refusal_acceptable = True
        out.append(rec)
    return out


def _erc_present() -> dict[str, str]:
    folder = QA_ROOT / "enterprise_rag_challenge_r1" / "round1"
    names = {r["sha1"]: r["name"] for r in csv.DictReader((folder / "dataset.csv").open(encoding="utf-8"))}
    return {names[p.stem].casefold(): p.name for p in sorted((folder / "pdfs").glob("*.pdf"))}


def erc_round1() -> list[Record]:
    folder = QA_ROOT / "enterprise_rag_challenge_r1" / "round1"
    present = _erc_present()
    out = []
    for i, r in enumerate(json.loads((folder / "answers.json").read_text(encoding="utf-8"))):
        companies = re.findall(r'"([^"]+)"', r["question"])
        here = [c for c in companies if c.casefold() in present]
        docs = [f"enterprise_rag_challenge_r1/round1/pdfs/{present[c.casefold()]}" for c in here]
        values = r["answer"] if isinstance(r["answer"], list) else [r["answer"]]
        real = [v for v in values if v != "N/A"]
        doc_name = present[here[0].casefold()] if here else (companies[0] if companies else r["question"])
        text = " | ".join(str(v) for v in values)
        rec = _rec("erc_round1", f"erc-r1-{i}", r["question"], text, doc_name, docs, [],
                   question_type=r["schema"], category=r.get("category"))  # fmt: skip
        rec.notes["comment"] = r.get("comment", "")
        # "Which had more equity: A, B or C?" with C's report not among the PDFs: the collection cannot say,
        # whatever the gold (ERC drew it from all its reports). Naming the winner still counts as right.
        rec.gold.refusal_acceptable = "N/A" in values or len(here) < len(companies)
        rec.gold.figures_mode = "any"
        reason = ""
        if not real:
            reason = 'gold is "N/A"'
        elif not here:
            reason = "no named company has a report in the collection"
        elif r["schema"] == "name":
            rec.gold.key_strings = [str(v) for v in real]
            rec.gold.options = companies
        else:
            rec.gold.figures = [
                f for v in real for f in parse_figures(repr(v) if isinstance(v, float) else str(v), keep_years=True)
            ]
        decide(rec, text, refuse_reason=reason, search_pages=all_pages(docs))
        out.append(rec)
    return out


def erc_round2() -> list[Record]:
    folder = QA_ROOT / "enterprise_rag_challenge_r1" / "round2"
    data = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
    out = []
    for i, (question, v) in enumerate(data.items()):
        refs = [ref.split(":")[0] for pool in v.get("reference_pools", []) for ref in pool]
        doc_name = f"{refs[0]}.pdf" if refs else question
        rec = _rec("erc_round2", f"erc-r2-{i}", question, " | ".join(map(str, v["answers"])), doc_name, [], [],
                   question_type=v["kind"])  # fmt: skip
        rec.notes["gold_if_reports_present"] = v["answers"]
        rec.notes["reference_pdfs"] = sorted(set(refs))
        reason = (
            'gold is "N/A"' if v["answers"] == ["N/A"] else "its reports are not in this corpus (round2 PDFs absent)"
        )
        decide(rec, rec.gold.text, refuse_reason=reason)
        out.append(rec)
    return out


def analyst(name: str) -> list[Record]:
    """An analyst set of bench/data written in its documents' language (``bench.retrieval.ANALYST_SETS``: en over
    financebench_dev's filings, zh over zh_reports_dev's reports), with the answer its writer read off the evidence
    pages as the gold."""
    from bench.retrieval import ANALYST, ANALYST_SETS

    _, folder, halved_by = ANALYST_SETS[name]
    out = []
    for r in _jsonl(ANALYST / f"analyst_{name}.jsonl"):
        pdf = f"{folder}/{r['doc_name'].removesuffix('.pdf')}.pdf"
        pages = [(pdf, int(p)) for p in r["evidence_pages"]]
        rec = _rec(f"analyst_{name}", r["id"], r["question"], r["answer"], Path(pdf).name, [pdf], pages,
                   category=r["kind"])  # fmt: skip
        rec.half = split_half(halved_by(Path(pdf)))
        decide(rec, r["answer"])
        out.append(rec)
    return out


def analyst_across(name: str) -> list[Record]:
    """An analyst set's questions as written in the other language (bench/data/analyst_<name>.jsonl: zh_en, analyst_zh
    in English; en_zh, analyst_en in Chinese), each with its twin's gold, kind and half: the same question, asked in
    the other language. Scored in the gold's language: a quoted answer quotes the document."""
    from bench.retrieval import ANALYST

    asked = {r["id"]: r["question"] for r in _jsonl(ANALYST / f"analyst_{name}.jsonl")}
    out = []
    for rec in analyst(name.split("_")[0]):
        rec.set, rec.question = f"analyst_{name}", asked[rec.id]
        rec.gold.question = rec.question
        out.append(rec)
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


LOADERS = {
    "financebench_dev": financebench, "zh_reports_dev": zh_reports, "finglm_zh_mini": finglm_mini,
    "docugami_sec10q": docugami, "erc_round1": erc_round1, "erc_round2": erc_round2,
    **{f"analyst_{name}": partial(analyst, name) for name in ("en", "zh")},
    **{f"analyst_{name}": partial(analyst_across, name) for name in ("en_zh", "zh_en")},
}  # fmt: skip


def load(set_name: str) -> list[Record]:
    return LOADERS[set_name]()


def load_all() -> list[Record]:
    return [r for s in SETS for r in load(s)]


def read_questions(path: Path = HERE / "questions.jsonl") -> list[Record]:
    """The records as written by ``main`` (no PDF needed; ``with_evidence_texts`` loads page text)."""
    return [Record.from_json(json.loads(line)) for line in path.open(encoding="utf-8")]


# ----- report -----------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def counts_markdown(records: list[Record]) -> str:
    kinds = ["lookup", "derived", "open", "refuse"]
    out = []
    rows = []
    for s in SETS:
        rs = [r for r in records if r.set == s]
        for half in ("tuning", "confirmation"):
            c = Counter(r.kind for r in rs if r.half == half)
            rows.append([s, half] + [c[k] for k in kinds] + [sum(c.values())])
        c = Counter(r.kind for r in rs)
        rows.append([f"**{s}**", "**all**"] + [f"**{c[k]}**" for k in kinds] + [f"**{sum(c.values())}**"])
    c = Counter(r.kind for r in records)
    rows.append(["**all sets**", "", *[c[k] for k in kinds], len(records)])
    out.append("### Per set, half and kind\n\n" + _table(["set", "half", *kinds, "total"], rows))
    rows = []
    fb = [r for r in records if r.set == "financebench_dev"]
    for qt in sorted({r.question_type for r in fb}):
        for half in ("tuning", "confirmation", "all"):
            c = Counter(r.kind for r in fb if r.question_type == qt and half in ("all", r.half))
            rows.append([qt, half] + [c[k] for k in kinds] + [sum(c.values())])
    out.append("### FinanceBench by question_type\n\n" + _table(["question_type", "half", *kinds, "total"], rows))
    rows = []
    for s in ("docugami_sec10q", "erc_round1", "erc_round2"):
        rs = [r for r in records if r.set == s]
        for qt in sorted({r.question_type for r in rs}):
            c = Counter(r.kind for r in rs if r.question_type == qt)
            rows.append([s, qt] + [c[k] for k in kinds] + [sum(c.values())])
    for s in ("zh_reports_dev", "finglm_zh_mini"):
        rs = [r for r in records if r.set == s]
        for cat in sorted({r.category or "" for r in rs}):
            c = Counter(r.kind for r in rs if (r.category or "") == cat)
            rows.append([s, cat] + [c[k] for k in kinds] + [sum(c.values())])
    out.append(
        "### Other sets by question type / category\n\n" + _table(["set", "type / category", *kinds, "total"], rows)
    )
    rows = []
    for s in SETS:
        rs = [r for r in records if r.set == s]
        c = Counter(r.kind_reason for r in rs)
        rows += [[s, reason, n] for reason, n in c.most_common()]
    out.append("### Which rule decided the kind\n\n" + _table(["set", "rule", "questions"], rows))
    halves = Counter((r.set, r.doc_name, r.half) for r in records if r.set in ("docugami_sec10q",))
    out.append(
        "Docugami halves by ticker: " + ", ".join(f"{d} -> {h} ({n})" for (_, d, h), n in sorted(halves.items()))
    )
    return "\n\n".join(out) + "\n"


def main() -> None:
    records = load_all()
    save_cache()
    with (HERE / "questions.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    (HERE / "counts.md").write_text(counts_markdown(records), encoding="utf-8")
    print(counts_markdown(records))


if __name__ == "__main__":
    main()
