"""Answer-level scoring for rag_app answers (extractive quotes or a model's text) against gold answers.

No dependency on rag_app: only the standard library.

    score(answer_text, gold, language) -> "right" | "partial" | "wrong" | "refused_correctly"
                                          | "refused_wrongly" | "hallucinated" | "unscored"

The rules, in the order they are applied (REPORT.md has the same text):

1. Refusal. Only the answer's own voice counts: quotes “...” (how rag_app's extractive answers
   print document text) are removed, then its first sentence (at most 200 characters) is read.
   A refusal phrase there ("Not found", "cannot be answered", "No passage", "not in the documents",
   "I cannot find", "the sources do not contain", "no information", an answer of just "N/A";
   未找到, 没有找到, 找不到, 无法回答, 文档中没有, 资料中没有, 未提及, 根据已知信息无法 ...) makes it a
   refusal; an empty answer is one too. A statement that the filing lacks the information ("the
   10-Q does not provide ...", "not explicitly stated", 未披露) counts as a refusal only where the gold
   must be refused or accepts N/A; elsewhere it is scored on what it says.
   gold kind "refuse": refused_correctly when refused, else hallucinated. Other kinds: a refusal
   scores refused_wrongly, or refused_correctly where the gold accepts N/A beside a value
   (enterprise_rag_challenge "tricky" questions; docugami golds that start "The report does not
   provide ...").
2. Figures (gold figures of kinds "lookup"/"derived"). The answer's figures are parsed (units and
   scale words: thousand/million/billion/trillion, k/m/bn/B after a currency sign or with decimals,
   千/万/百万/千万/亿/万亿, 元, %, percentage points, 个百分点; negatives as -1 or (1); full-width digits;
   comma grouping). Not figures: years (a bare integer 1900-2100, unless the gold itself is such an
   integer), any number before 年/月/日/季度/页/期, days after a month name (June 30), page numbers
   (p. 60, page 3, 第5页), citation marks [1], list markers (1. / (2) / 3、 at a line start), figure
   and table numbers (图表23和24, Figure 3, Note 5), and numbers glued to letters (FY2018, Q3, 10-K,
   3M, UBT251, 03933.HK, file names).
   An answer figure matches a gold figure when their absolute values agree within 1% (relative) or
   within half a unit of the gold's last printed non-zero decimal ("$4.60" bn: +-0.05 bn; "0.01":
   +-0.005). The sign is not compared (statements print outflows as (1,577); answers say "a decrease
   of 1.7%" for -1.7%). Scale: a figure printed with a scale word is compared at that scale; a bare
   figure at scale 1 and, when the gold is an amount (a currency, a scale, or an integer >= 1000),
   also at thousands, millions, billions (English) or 千, 万, 百万, 亿 (Chinese): tables say "(in
   millions)" / "单位：万元" once, in a header. Percent: a gold percentage matches an answer percentage
   or a bare number (as printed, or x100 for a fraction); a bare gold (a ratio, or a percentage printed
   without its sign, as enterprise_rag_challenge does) matches an answer percentage as printed or /100;
   a bare ratio or count never matches an amount of money, nor a percentage gold an amount.
   right: all gold figures matched (``figures_mode == "all"``) or one of them (``"any"``:
   alternatives); partial: some but not all matched, or none matched but the answer has the right
   evidence (rule 5); wrong: otherwise. The answer's other figures are not held against it (an
   extractive quote of a table row prints several); ``ScoreResult.answer_figures`` counts them.
3. Key strings (lookup/derived golds without figures: an e-mail, a URL, a name). Compared after
   NFKC and case folding, spaces, URL scheme, "www." and a trailing slash ignored. With ``options``
   (multiple choice: "Which company had a higher ...: A, B or C?"): right when the first option
   the answer names is the gold, partial when the gold is named but after another option.
4. Open (kind "open"): key-term overlap, to be reported apart from the figure scores. Key terms come
   with the gold (``Gold.key_terms``: its figures, and its content words (English) or CJK bigrams
   (Chinese) that are neither in the question nor stop words and, where evidence pages are known
   and enough of them are there, are printed on one). recall = key terms found / key terms.
   Yes/no golds (the gold starts with yes/no/是/否/相同/不同, or answers a yes/no question; a negated
   first sentence reads as "no"): an answer of the opposite stance is wrong; one of the same
   stance is right when recall >= 0.2 (or the gold has no key terms), else partial. Otherwise right
   when recall >= 0.5, partial when recall >= 0.2 or the answer has the right evidence, else wrong.
   ``open_mode="unscored"`` returns ``unscored`` for every open question instead.
5. Right evidence (what makes an answer without the figure "partial"): the answer cites one of the
   gold's evidence pages (``sources``: the (document, 1-based page) pairs rag_app returned with the
   answer, compared by file name without .pdf), or it quotes one: 8 consecutive words (English) or
   12 consecutive CJK characters (Chinese) of the answer occur in the page's text (both normalised:
   NFKC, case folded, spaces collapsed, line breaks between CJK characters removed). Evidence pages:
   the dataset's (financebench, zh_reports, finglm), else the pages the gold figure or key string is
   printed on (docugami, enterprise_rag_challenge).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

VERDICTS = ("right", "partial", "wrong", "refused_correctly", "refused_wrongly", "hallucinated", "unscored")
KINDS = ("lookup", "derived", "open", "refuse")

REL_TOL = 0.01
OPEN_RIGHT, OPEN_PARTIAL = 0.5, 0.2
QUOTE_WORDS, QUOTE_CJK = 8, 12
REFUSAL_LEAD_CHARS = 200

# ----- text normalisation --------------------------------------------------------------------------

CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_DASHES = {"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2012": "-", "\ufe63": "-", "\uff0d": "-"}


def normalise(text: str) -> str:
    """NFKC (full-width digits, %, $ and commas to ASCII), minus signs to '-', no soft spaces."""
    text = unicodedata.normalize("NFKC", text or "")
    for a, b in _DASHES.items():
        text = text.replace(a, b)
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\u3000", " ")
    # mojibake of a right quote in some gold answers (â€™ / â): only for matching words
    return text


def detect_language(text: str) -> str:
    """'zh' when CJK characters are at least a fifth of the letters, else 'en'."""
    cjk = len(re.findall(f"[{CJK}]", text or ""))
    latin = len(re.findall(r"[A-Za-z]", text or ""))
    return "zh" if cjk and cjk * 5 >= (cjk + latin) else "en"


def fold(text: str) -> str:
    """For substring tests: normalised, case folded, whitespace collapsed, no breaks between CJK chars."""
    t = normalise(text).casefold()
    t = re.sub(f"(?<=[{CJK}])\\s+(?=[{CJK}])", "", t)
    return re.sub(r"\s+", " ", t).strip()


# ----- figures ------------------------------------------------------------------------------------

SCALES = {
    "trillion": 1e12, "tn": 1e12, "billion": 1e9, "bn": 1e9, "million": 1e6, "mn": 1e6, "mm": 1e6,
    "thousand": 1e3, "m": 1e6, "b": 1e9, "k": 1e3,
    "万亿": 1e12, "千亿": 1e11, "百亿": 1e10, "亿": 1e8, "千万": 1e7, "百万": 1e6, "万": 1e4, "千": 1e3,
}  # fmt: skip
BARE_SCALES = {"en": (1.0, 1e3, 1e6, 1e9), "zh": (1.0, 1e3, 1e4, 1e6, 1e8)}
MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_CUR = r"US\$|USD|RMB|CNY|HK\$|HKD|EUR|GBP|CHF|JPY|A\$|C\$|\$|€|£|¥|￥"
_FIG = re.compile(
    rf"(?P<open>\()?\s*(?P<neg>-)?\s*(?P<cur>{_CUR})?\s*(?P<neg2>-)?\s*(?P<num>{_NUM})"
    rf"(?P<close>\s*\))?"
    rf"(?P<scale>\s*(?:trillion|billion|million|thousand|tn|bn|mn|mm)\b|\s?[mMbBkK]\b(?!\.\w)|\s*(?:万亿|千亿|百亿|亿|千万|百万|万|千))?"
    rf"(?P<unit>\s*(?:%|percent\b|per cent\b|percentage points?\b|个百分点|百分点|元|人民币|美元|港元|港币|欧元|x\b|times\b|倍))?",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\[\d+(?:\s*[,，、-]\s*\d+)*\]")
_ISO_DATE = re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b")
_LIST_MARK = re.compile(r"(?m)^\s*(?:[-*•]\s*)?(?:\(?\d{1,2}[.)、](?!\d)|（\d{1,2}）)\s*")
_INLINE_LIST = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=[:：;；]))\((\d{1,2})\)(?=\s*[A-Za-z" + CJK + "])")
_REF_BEFORE = re.compile(
    r"(?:\bp\.|\bpp\.|\bpages?|\bitems?|\bnotes?|\bfigures?|\bfigs?\.|\btables?|\bsections?|\bexhibits?|\bparts?|\bcharts?|\bq|\bh|\bfy|"
    r"第|图表|图|表|附注|附表)\s*(?:\d+\s*(?:和|与|及|、|,|and|&|-)\s*)?$",
    re.IGNORECASE,
)
_AFTER_SKIP = re.compile(r"^\s*(?:年|月|日|号|季度|页|期|个月)")
_MONTH_BEFORE = re.compile(rf"(?:\b(?:{MONTHS})\.?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Figure:
    """One printed figure: ``value`` is the number as printed (sign included), ``scale`` the multiplier of
    a scale word printed with it (None: none), ``decimals`` the printed decimals."""

    raw: str
    value: float
    scale: float | None = None
    percent: bool = False
    currency: str | None = None
    decimals: int = 0
    year_like: bool = False

    @property
    def magnitude(self) -> float:
        return abs(self.value) * (self.scale or 1.0)

    @property
    def is_amount(self) -> bool:
        return bool(self.currency or self.scale) or (self.decimals == 0 and abs(self.value) >= 1000)

    @property
    def precision(self) -> float:
        """Half a unit of the last printed non-zero decimal, in the figure's own scale."""
        digits = self.raw_number.split(".")[1].rstrip("0") if "." in self.raw_number else ""
        return 0.5 * 10 ** (-len(digits))

    @property
    def raw_number(self) -> str:
        m = re.search(_NUM, self.raw.replace(" ", ""))
        return m.group(0).replace(",", "") if m else str(self.value)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, False) or k == "value"}

    @classmethod
    def from_json(cls, d: dict) -> Figure:
        return cls(**d)


def _clean_for_figures(text: str) -> str:
    t = normalise(text)
    t = _CITATION.sub(" ", t)
    t = _ISO_DATE.sub(" ", t)
    t = _LIST_MARK.sub(" ", t)
    t = _INLINE_LIST.sub(" ", t)
    return t


def parse_figures(text: str, keep_years: bool = False) -> list[Figure]:
    """Every figure printed in ``text`` (see the module doc for what is not a figure)."""
    t = _clean_for_figures(text)
    out: list[Figure] = []
    for m in _FIG.finditer(t):
        num = m.group("num")
        start, end = m.start("num"), m.end("num")
        cur = m.group("cur")
        scale_txt = (m.group("scale") or "").strip()
        unit_txt = (m.group("unit") or "").strip().lower()
        first = m.start("cur") if cur else start
        # glued to a letter, digit, underscore or dot on the left: FY2018, Q3, UBT251, v1.2, 3M_2018
        if first > 0 and re.match(r"[A-Za-z0-9_.&/#]", t[first - 1]):
            continue
        if not cur and _REF_BEFORE.search(t[max(0, start - 20) : start]):
            continue  # p. 60, Note 5, Figure 3, 第5, 图表23
        if not scale_txt and not unit_txt and re.match(r"-?[A-Za-z]|\.[A-Za-z]", t[end : end + 2]):
            continue  # 10-K, 2nd, 5G, 03933.HK
        if scale_txt and len(scale_txt) == 1 and scale_txt.isascii() and not cur and "." not in num:
            continue  # 3M, 2B: one letter is a scale only after a currency sign or with decimals
        if not scale_txt and not unit_txt and _AFTER_SKIP.match(t[end:]):
            continue  # 2020年, 4月, 30日, 第5页, 3季度
        if _MONTH_BEFORE.search(t[max(0, first - 12) : first]) and re.fullmatch(r"\d{1,2}", num):
            continue  # June 30
        value = float(num.replace(",", ""))
        decimals = len(num.split(".")[1]) if "." in num else 0
        percent = unit_txt in ("%", "percent", "per cent", "个百分点", "百分点") or unit_txt.startswith(
            "percentage point"
        )
        if unit_txt in ("元", "人民币", "美元", "港元", "港币", "欧元"):
            cur = cur or unit_txt
        scale = SCALES.get(scale_txt.lower()) if scale_txt else None
        year_like = decimals == 0 and "," not in num and 1900 <= value <= 2100 and not (cur or scale or percent)
        if year_like and not keep_years:
            continue
        negative = bool(m.group("neg") or m.group("neg2") or (m.group("open") and m.group("close")))
        raw = m.group(0).strip()
        out.append(Figure(raw, -value if negative else value, scale, percent, cur, decimals, year_like))
    return out


def _close(a: float, g: Figure, scale: float, rel_tol: float) -> bool:
    """``a`` (an absolute value) against gold ``g`` at ``scale`` (the gold's own multiplier)."""
    target = abs(g.value) * scale
    if target == 0:
        return a == 0
    return abs(a - target) <= rel_tol * target + 1e-12 or abs(a - target) <= g.precision * scale * (1 + 1e-9)


def figure_matches(ans: Figure, gold: Figure, rel_tol: float = REL_TOL, language: str = "en") -> bool:
    """Whether an answer figure states the gold figure (absolute values; see the module doc)."""
    gscale = gold.scale or 1.0
    if gold.percent:
        if ans.currency or ans.scale:
            return False
        if ans.percent:
            return _close(abs(ans.value), gold, 1.0, rel_tol)
        return _close(abs(ans.value), gold, 1.0, rel_tol) or _close(abs(ans.value) * 100, gold, 1.0, rel_tol)
    if ans.percent:
        if gold.currency or gold.scale:
            return False
        return _close(abs(ans.value), gold, 1.0, rel_tol) or _close(abs(ans.value) / 100, gold, 1.0, rel_tol)
    if not gold.is_amount and (ans.currency or ans.scale):
        return False  # a ratio or count is not an amount of money
    if ans.scale:
        return _close(ans.magnitude, gold, gscale, rel_tol)
    scales = BARE_SCALES.get(language, BARE_SCALES["en"]) if gold.is_amount else (1.0,)
    return any(_close(abs(ans.value) * s, gold, gscale, rel_tol) for s in scales)


def printed_match(page_fig: Figure, gold: Figure, language: str = "en") -> bool:
    """Stricter test for "the gold is printed on a page": within the gold's printed precision only
    (no 1% slack), at the same scale rules as ``figure_matches``."""
    return figure_matches(page_fig, gold, rel_tol=0.0, language=language)


# ----- refusals -----------------------------------------------------------------------------------

REFUSAL_EN = [
    r"\bnot found\b", r"\bcannot be answered\b", r"\bcan(?:no|')t be answered\b", r"\bno passage\b",
    r"\bnot (?:in|found in|present in|contained in|available in|mentioned in|covered (?:by|in)) (?:the |your |these |any of the )?(?:documents?|sources?|reports?|files?|context|collection)\b",
    r"\b(?:i )?(?:cannot|can ?not|can't|could not|couldn't|am unable to|was unable to|unable to) (?:find|locate|determine|answer)\b",
    r"\b(?:the )?(?:documents?|sources?|context|extracts?|passages?) (?:do|does|did) not (?:contain|provide|include|mention|say|state|answer|specify|give|disclose)\b",
    r"\bno (?:relevant |such )?(?:information|data|answer|mention)\b(?: (?:is|was) (?:available|found|given|provided))?",
    r"\bnot enough information\b", r"\binsufficient information\b", r"\bnothing relevant\b",
    r"^\s*n/?a\s*\.?\s*$", r"^\s*\"?n/a\"?\b",
]  # fmt: skip
REFUSAL_ZH = [
    "未找到", "没有找到", "找不到", "未能找到", "无法回答", "不能回答", "无法确定", "无法得知", "无法从",
    "文档中没有", "文档中未", "资料中没有", "资料中未", "文件中没有", "文件中未", "报告中没有", "报告中未",
    "没有相关", "无相关", "未提及", "没有提及", "未提供", "没有提供", "不包含", "没有足够", "信息不足",
    "根据已知信息无法",
]  # fmt: skip
# Statements that the filing lacks the information ("The 10-Q does not provide a direct comparison"): how
# docugami golds refuse, and how model answers often do. They count as a refusal only where the gold
# must be refused (or accepts N/A): elsewhere "NVIDIA did not disclose any acquisitions" answers a
# yes/no question, and such an answer is scored on what it says.
ABSENCE_EN = [
    r"\b(?:does|do|did) not (?:provide|contain|include|specify|detail|mention|disclose|give|state|report)\b",
    r"\bnot (?:explicitly |specifically |directly )?(?:provided|mentioned|disclosed|specified|detailed|stated|available|reported)\b",
    r"\bno (?:specific |explicit |direct )?(?:mention|information|details?|data|comparison)\b",
]  # fmt: skip
ABSENCE_ZH = ["未披露", "没有披露", "未明确", "没有明确", "未具体", "没有具体"]
_REFUSAL_EN_RE = [re.compile(p, re.IGNORECASE) for p in REFUSAL_EN]
_ABSENCE_EN_RE = [re.compile(p, re.IGNORECASE) for p in ABSENCE_EN]


_QUOTED = re.compile(r"“[^”]*”(?:\s*\[\d+\])?|「[^」]*」(?:\s*\[\d+\])?")


def lead(text: str) -> str:
    """The answer's first sentence in its own voice (quotes “...” of the documents removed, as rag_app's
    extractive answers print them), at most REFUSAL_LEAD_CHARS characters."""
    t = _QUOTED.sub(" ", normalise(text)).strip()
    first = re.split(r"(?<=[。！？!?])|(?<=[.;])\s+|\n", t, maxsplit=1)[0]
    return first[:REFUSAL_LEAD_CHARS]


def is_refusal(answer_text: str, language: str | None = None, absence: bool = False) -> bool:
    """A refusal phrase in the answer's lead (first sentence / first 200 chars), either language;
    ``absence``: a statement that the documents lack the information counts too (ABSENCE_EN/ZH)."""
    if not normalise(answer_text).strip():
        return True  # an empty answer says nothing: counted as a refusal
    head = lead(answer_text)
    if not head.strip():
        return False  # nothing but quotes
    folded = head.casefold()
    zh_first = (language or detect_language(answer_text)) == "zh"
    zh, en = list(REFUSAL_ZH), list(_REFUSAL_EN_RE)
    if absence:
        zh, en = zh + ABSENCE_ZH, en + _ABSENCE_EN_RE
    checks = [lambda: any(p in head for p in zh), lambda: any(r.search(folded) for r in en)]
    if not zh_first:
        checks.reverse()
    return any(c() for c in checks)


# ----- key strings, terms and polarity --------------------------------------------------------------

EN_STOP = set(
    """a an the and or of to in on for by with at from as is are was were be been being this that these those it its
    their there they them which who whom what when where why how than then also not no yes into over under about
    after before during between per each other such any all more most less least very can could would should will may
    might has have had do does did company company's fy fiscal year years quarter quarters total based approximately
    amount amounts reported report reports provided document documents source sources following including include
    includes included million billion thousand usd percent period periods ended ending as of while due primarily
    mainly mostly key notable significant however which whose our we you your his her he she i me my
    follows following figure figures observed mentioned various provide provides shows show indicates indicate
    specifically specific additionally overall also like both detailed details information pdf source
    january february march april may june july august september october november december""".split()
)  # fmt: skip
ZH_STOP_CHARS = set("的了和是在与及或等为对中其以而并于将由从这那该个之也已所有")
ZH_STOP_BIGRAMS = set(
    "如下 以下 根据 图片 图表 内容 信息 具体 方面 包括 可以 通过 进行 看出 显示 表明 总结 分析 以上 这些 其中 情况 如何 相关 主要".split()
)


def url_key(s: str) -> str:
    s = fold(s)
    s = re.sub(r"^(?:https?://)?(?:www\.)?", "", s)
    return s.rstrip("/")


def key_in(key: str, text: str) -> bool:
    """A key string (name, e-mail, URL) in a text: folded, spaces and URL prefixes ignored."""
    k = url_key(key).replace(" ", "")
    t = fold(text).replace(" ", "")
    t = re.sub(r"(?:https?://)?(?:www\.)?", "", t)
    return bool(k) and k in t


def en_words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z&'\-]+", fold(text))


def zh_bigrams(text: str) -> list[str]:
    out = []
    for run in re.findall(f"[{CJK}]+", fold(text)):
        out += [run[i : i + 2] for i in range(len(run) - 1)]
    return out


def polarity(text: str) -> str | None:
    """'yes' / 'no' when the text starts with a yes/no word, else None."""
    t = normalise(text).strip().lstrip("\"'“”*- ").casefold()
    if re.match(r"(?:yes|true|correct)\b", t):
        return "yes"
    if re.match(r"(?:no|false|not)\b", t) and not re.match(r"no\.\s*\d", t):
        return "no"
    if re.match(r"(?:是的|是，|是,|对，|相同|一致|有，)", t):
        return "yes"
    if re.match(r"(?:否|不是|不相同|不同|不一致|没有，|没有,|无，)", t):
        return "no"
    return None


YES_NO_QUESTION = re.compile(
    r"^\s*(?:is|are|was|were|did|does|do|has|have|had|can|could|will|would|should)\b|(?:是否|有没有|是不是|吗[？?]?\s*$)",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither)\b|n't\b|没有|未|不|无", re.IGNORECASE)


def stance(text: str, question: str = "") -> str | None:
    """'yes' / 'no' for an answer to a yes/no question: its first word (``polarity``) or, failing that,
    'no' when its own first sentence (quotes removed) is negated ("NVIDIA did not disclose ...")."""
    p = polarity(_QUOTED.sub(" ", normalise(text)))
    if p or not YES_NO_QUESTION.search(question or ""):
        return p
    head = lead(text)
    return "no" if head and _NEGATION.search(head) else None


def _shingles(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def quotes_evidence(answer_text: str, evidence_texts: list[str]) -> bool:
    """8 consecutive words (or 12 consecutive CJK characters) of the answer printed on an evidence page."""
    if not evidence_texts:
        return False
    ans = fold(answer_text)
    a_words = re.findall(r"[a-z0-9$%.,()\-]+", ans)
    a_cjk = "".join(re.findall(f"[{CJK}]", ans))
    for page in evidence_texts:
        p = fold(page)
        if len(a_words) >= QUOTE_WORDS and _shingles(a_words, QUOTE_WORDS) & _shingles(
            re.findall(r"[a-z0-9$%.,()\-]+", p), QUOTE_WORDS
        ):
            return True
        if len(a_cjk) >= QUOTE_CJK:
            p_cjk = "".join(re.findall(f"[{CJK}]", p))
            if any(a_cjk[i : i + QUOTE_CJK] in p_cjk for i in range(len(a_cjk) - QUOTE_CJK + 1)):
                return True
    return False


# ----- gold -----------------------------------------------------------------------------------------


@dataclass
class Gold:
    """What a right answer must say. Built by answer_sets.py (``Gold.from_json`` reads questions.jsonl)."""

    text: str
    kind: str  # lookup | derived | open | refuse
    question: str = ""
    language: str = "en"
    figures: list[Figure] = field(default_factory=list)
    figures_mode: str = "all"  # all: every figure needed; any: alternatives
    key_strings: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # multiple choice: the names the question offers
    key_terms: list[str] = field(default_factory=list)  # open questions
    yes_no: str | None = None
    refusal_acceptable: bool = False  # N/A accepted beside a value
    evidence: list[tuple[str, int]] = field(default_factory=list)  # (document, 1-based page)
    evidence_texts: list[str] = field(default_factory=list)  # not serialised: loaded from the PDFs

    def to_json(self) -> dict:
        d = {
            "text": self.text, "kind": self.kind, "figures": [f.to_json() for f in self.figures],
            "figures_mode": self.figures_mode, "key_strings": self.key_strings, "options": self.options,
            "key_terms": self.key_terms, "yes_no": self.yes_no, "refusal_acceptable": self.refusal_acceptable,
        }  # fmt: skip
        return d

    @classmethod
    def from_json(cls, d: dict, question: str = "", language: str = "en", evidence=None) -> Gold:
        return cls(
            text=d["text"], kind=d["kind"], question=question, language=language,
            figures=[Figure.from_json(f) for f in d.get("figures", [])], figures_mode=d.get("figures_mode", "all"),
            key_strings=d.get("key_strings", []), options=d.get("options", []), key_terms=d.get("key_terms", []),
            yes_no=d.get("yes_no"), refusal_acceptable=d.get("refusal_acceptable", False),
            evidence=[tuple(e) for e in (evidence or [])],
        )  # fmt: skip


@dataclass
class ScoreResult:
    verdict: str
    refused: bool = False
    matched_figures: list[str] = field(default_factory=list)
    missing_figures: list[str] = field(default_factory=list)
    answer_figures: int = 0
    evidence_hit: bool = False
    key_term_recall: float | None = None
    reason: str = ""


def _evidence_hit(answer_text: str, gold: Gold, sources) -> bool:
    if sources and gold.evidence:
        wanted = {(_doc_key(d), int(p)) for d, p in gold.evidence}
        if any((_doc_key(d), int(p)) in wanted for d, p in sources):
            return True
    return quotes_evidence(answer_text, gold.evidence_texts)


def _doc_key(name: str) -> str:
    """A document by its file name, without folder or .pdf/.pdfg (finglm ships one report as .pdfg)."""
    return re.sub(r"\.pdfg?$", "", re.split(r"[\\/]", str(name))[-1]).casefold()


def term_in(term: str, answer_folded: str, answer_figs: list[Figure], language: str = "en") -> bool:
    """A key term of an open gold: a figure (matched as figures are), or a word / CJK bigram."""
    if term.startswith("#"):
        gfigs = parse_figures(term[1:], keep_years=True)
        return bool(gfigs) and any(figure_matches(a, gfigs[0], language=language) for a in answer_figs)
    if re.fullmatch(f"[{CJK}]+", term):
        return term in answer_folded
    return re.search(rf"(?<![a-z]){re.escape(term)}", answer_folded) is not None


def score_details(
    answer_text: str, gold: Gold, language: str | None = None, sources=None, open_mode: str = "overlap"
) -> ScoreResult:
    """The verdict with the reasons behind it (``score`` returns only the verdict)."""
    language = language or gold.language or detect_language(answer_text)
    refused = is_refusal(answer_text, language)  # a refusal phrase: "Not found", "无法回答", ...
    absent = refused or is_refusal(answer_text, language, absence=True)  # or "the 10-Q does not provide ..."
    if gold.kind == "refuse":
        return ScoreResult("refused_correctly" if absent else "hallucinated", absent, reason="must refuse")
    if refused:
        ok = gold.refusal_acceptable
        return ScoreResult("refused_correctly" if ok else "refused_wrongly", True, reason="refused")
    res = _score_content(answer_text, gold, language, sources, open_mode)
    if absent and gold.refusal_acceptable and res.verdict not in ("right", "unscored"):
        res.verdict, res.refused, res.reason = "refused_correctly", True, "states the information is absent (accepted)"
    return res


def _score_content(answer_text: str, gold: Gold, language: str, sources, open_mode: str) -> ScoreResult:
    keep_years = any(
        f.decimals == 0 and 1900 <= abs(f.value) <= 2100 and not (f.currency or f.scale or f.percent)
        for f in gold.figures
    )  # a gold of 2,000 employees may be printed 2000; a gold of $2,018 million never matches "2018"
    figs = parse_figures(answer_text, keep_years=keep_years)
    evidence = _evidence_hit(answer_text, gold, sources)
    res = ScoreResult("wrong", False, answer_figures=len(figs), evidence_hit=evidence)

    if gold.kind == "open":
        if open_mode == "unscored":
            res.verdict, res.reason = "unscored", "open question"
            return res
        folded = fold(answer_text)
        terms = gold.key_terms
        found = [t for t in terms if term_in(t, folded, figs, language)]
        recall = len(found) / len(terms) if terms else 0.0
        res.key_term_recall = round(recall, 3)
        pol = stance(answer_text, gold.question)
        if gold.yes_no and pol and pol != gold.yes_no:
            res.reason = f"polarity {pol} != {gold.yes_no}"
            return res
        agrees = bool(gold.yes_no) and pol == gold.yes_no
        if recall >= OPEN_RIGHT or (agrees and (recall >= OPEN_PARTIAL or not terms)):
            res.verdict = "right"
        elif recall >= OPEN_PARTIAL or evidence or agrees:
            res.verdict = "partial"
        res.reason = f"key-term recall {recall:.2f}"
        return res

    if gold.figures:
        matched = [g for g in gold.figures if any(figure_matches(a, g, language=language) for a in figs)]
        res.matched_figures = [g.raw for g in matched]
        res.missing_figures = [g.raw for g in gold.figures if g not in matched]
        need_all = gold.figures_mode == "all"
        if matched and (not need_all or len(matched) == len(gold.figures)):
            res.verdict, res.reason = "right", "gold figure(s) stated"
        elif matched:
            res.verdict, res.reason = "partial", "some gold figures stated"
        elif evidence:
            res.verdict, res.reason = "partial", "right evidence, figure not stated"
        else:
            res.reason = "figure not stated"
        return res

    if gold.key_strings:
        if gold.options:
            named = sorted((pos, o) for o in gold.options if (pos := _position(o, answer_text)) is not None)
            hit = [k for k in gold.key_strings if key_in(k, answer_text)]
            if named and any(fold(named[0][1]) == fold(k) for k in gold.key_strings):
                res.verdict, res.reason = "right", "gold option named first"
            elif hit:
                res.verdict, res.reason = "partial", "gold option named, not first"
            elif evidence:
                res.verdict, res.reason = "partial", "right evidence"
            return res
        hits = [k for k in gold.key_strings if key_in(k, answer_text)]
        need_all = gold.figures_mode == "all"
        if hits and (not need_all or len(hits) == len(gold.key_strings)):
            res.verdict, res.reason = "right", "key string stated"
        elif hits or evidence:
            res.verdict, res.reason = "partial", "some key strings / right evidence"
        else:
            res.reason = "key string not stated"
        return res

    res.verdict, res.reason = "unscored", "gold has neither figures nor key strings"
    return res


def _position(option: str, text: str) -> int | None:
    k = fold(option)
    t = fold(text)
    i = t.find(k)
    if i < 0:  # first word of a multi-word name ("MITSUI O.S.K. LINES" -> "mitsui")
        first = k.split()[0] if k.split() else k
        if len(first) >= 4:
            m = re.search(rf"(?<![a-z]){re.escape(first)}(?![a-z])", t)
            return m.start() if m else None
        return None
    return i


def score(answer_text: str, gold: Gold, language: str | None = None, sources=None, open_mode: str = "overlap") -> str:
    """The verdict for one answer: right | partial | wrong | refused_correctly | refused_wrongly |
    hallucinated | unscored (see the module doc)."""
    return score_details(answer_text, gold, language, sources, open_mode).verdict
