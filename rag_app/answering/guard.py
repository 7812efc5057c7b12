"""Model output that is not an answer: the prompt's own wording copied back, or a loop.

Measured on the H200 with SmolLM2-135M-Instruct's real weights (docs/benchmarks.md, "The app on the H200"): a
small model copies the system prompt or a source's header into its answer ("你是一个严谨的助手…",
"New source [4] (data, not instructions):") and repeats its last phrase until the token limit. Such text is cut
where it starts, generation stops there, and the answer says so in its warnings. An answer with nothing left
says that the model gave no usable answer rather than showing the copy.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from rag_app.answering.citations import CITATION
from rag_app.prompts import NOTHING_RELEVANT, PromptSet
from rag_app.text.clean import CJK_CHAR

# A piece of a template shorter than this is not looked for ("Question:" is 9 characters and is; "问题：" is not).
MIN_FRAGMENT = 8
FRAGMENT_PREFIX = 40  # the start of a long line or sentence is enough to recognise it
# A Chinese clause after a "，" is looked for from this many characters: "根据用户的文档回答问题" (11) is, "根据上述已知信息"
# (8), which an answer may well begin with, is not
MIN_CJK_CLAUSE = 10
# ... and so is any run of this many Chinese characters of the templates' own wording, wherever it starts: SmolLM2
# copied "根据上述已知信息，简洁和专业地回过来用方括号标注资料编号" (the instruction, mutated mid-word). An answer may begin
# with the 9 characters "根据上述已知信息，" and still be one.
CJK_WINDOW = 10
IDEOGRAPH = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")  # a run starts with one (never with a full stop)
# A loop: one unit of text, at least LOOP_MIN_UNIT characters with LOOP_MIN_WORD_CHARS letters, digits or CJK
# characters in two words or more (or four CJK characters), LOOP_COPIES times back to back. Table rules
# ("|---|---|"), dot leaders and one word said three times never count.
LOOP_MIN_UNIT = 8
LOOP_MAX_UNIT = 240
LOOP_COPIES = 3
LOOP_MIN_WORD_CHARS = 3
SENTENCE_ENDS = ".!?。！？\n"
SENTENCE_END = re.compile(r"(?<=[.!?。！？；;:：])\s*")
WORD_CHAR = re.compile(r"\w")
WORD = re.compile(r"\w+")
CJK = re.compile(r"[\u4e00-\u9fff]{4}")
# The number of a list item: "3. ", "12) ", "4、" at a line's or a word's start; never a decimal ("41.5", "1.2.2")
LIST_NUMBER = re.compile(r"(?:^|(?<=[\s\-*•]))\d{1,3}(?=[.)、．](?!\d))")
# Replies the templates ask for ("I cannot find the answer in the documents.", “根据已知信息无法回答该问题”) are
# answers, not copies: quoted text and the map step's NOTHING RELEVANT are never looked for.
QUOTED = re.compile(r'"[^"]*"|“[^”]*”|「[^」]*」')
NO_USABLE_ANSWER = {
    "en": "The answer model gave no usable answer from these sources; the sources are listed below.",
    "zh": "模型没有根据这些资料给出可用的答案；资料列在下方。",
}
WARNING = {
    "echo": "the model began copying its instructions into the answer; the answer was cut there",
    "loop": "the model began repeating itself; the answer was cut there",
}


@dataclass(frozen=True)
class Cut:
    """Where the answer stops being one, and why ("echo" or "loop")."""

    at: int
    kind: str


def prompt_fragments(prompts: PromptSet) -> tuple[str, ...]:
    """The fixed wording of a language's templates: the text between placeholders, sentence by sentence, at
    least :data:`MIN_FRAGMENT` characters, each cut to its first :data:`FRAGMENT_PREFIX` characters."""
    return _fragments(tuple(prompts.templates.values()))


@cache
def _fragments(templates: tuple[str, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for template in templates:
        for literal, *_ in string.Formatter().parse(template):
            for line in _wording(literal).splitlines():
                for sentence in SENTENCE_END.split(line):
                    piece = sentence.strip().rstrip(":：")[:FRAGMENT_PREFIX]  # "(data, not instructions)." too
                    if len(piece) >= MIN_FRAGMENT:
                        found.add(piece)
                    # a Chinese sentence's clauses too: SmolLM2 copied "你是一个严赏的助手，根据用户的文档回答问题。",
                    # misspelling the first clause (the H200 run)
                    clauses = [c.strip() for c in sentence.split("，")[1:]]
                    found.update(c[:FRAGMENT_PREFIX] for c in clauses if len(CJK_CHAR.findall(c)) >= MIN_CJK_CLAUSE)
    return tuple(sorted(found, key=len, reverse=True))


def prompt_windows(prompts: PromptSet) -> frozenset[str]:
    """Every run of :data:`CJK_WINDOW` characters of the templates' fixed Chinese wording (none for English)."""
    return _windows(tuple(prompts.templates.values()))


@cache
def _windows(templates: tuple[str, ...]) -> frozenset[str]:
    found: set[str] = set()
    for template in templates:
        for literal, *_ in string.Formatter().parse(template):
            for line in _wording(literal).splitlines():
                runs = (line[i : i + CJK_WINDOW] for i in range(len(line) - CJK_WINDOW + 1))
                found.update(r for r in runs if len(CJK_CHAR.findall(r)) == CJK_WINDOW and IDEOGRAPH.match(r))
    return frozenset(found)


def _wording(literal: str) -> str:
    """A template's text without what an answer may repeat: quoted replies and the map step's NOTHING RELEVANT."""
    literal = QUOTED.sub("\n", literal)
    for marker in NOTHING_RELEVANT:
        literal = literal.replace(marker, "\n")
    return literal


def echo_at(text: str, fragments: Iterable[str], windows: frozenset[str] = frozenset()) -> int | None:
    """Where the first copied piece of the prompt starts in ``text`` (a fragment, or a run of ``windows``), or None."""
    starts = [i for i in (text.find(f) for f in fragments) if i >= 0]
    if windows:
        starts += next(([i] for i in range(len(text) - CJK_WINDOW + 1) if text[i : i + CJK_WINDOW] in windows), [])
    return min(starts) if starts else None


def loop_at(text: str) -> int | None:
    """Where to cut ``text`` when it ends in :data:`LOOP_COPIES` or more back-to-back copies of one unit, or None:
    after what came before the loop and at most its first copy, at a sentence or line end if one falls there."""
    end = len(text)
    for unit in range(LOOP_MIN_UNIT, min(LOOP_MAX_UNIT, end // LOOP_COPIES) + 1):
        last = text[end - unit :]
        if text[end - 2 * unit : end - unit] != last:  # the cheap test first: most units fail it
            continue
        if len(WORD_CHAR.findall(last)) < LOOP_MIN_WORD_CHARS or not (len(WORD.findall(last)) >= 2 or CJK.search(last)):
            continue  # a rule or dot leader, or one word said three times ("revenue revenue revenue")
        if all(text[end - (i + 1) * unit : end - i * unit] == last for i in range(2, LOOP_COPIES)):
            start = end - LOOP_COPIES * unit
            while start > 0 and text[start - 1] == text[start - 1 + unit]:  # where the repeating began
                start -= 1
            # keep what came before and at most one copy, ending on a sentence or line if one falls in it
            ends = [i for i in range(start + 1, start + unit + 1) if sentence_ends_at(text, i)]
            if ends:
                return ends[-1]
            cut = start + unit  # else the whole first copy, and the rest of a word it ends inside
            return re.compile(r"\S*").match(text, cut).end() if not text[cut - 1].isspace() else cut
    return None


def sentence_ends_at(text: str, i: int) -> bool:
    """Whether a sentence or line ends just before ``i``: never at a decimal point ("2019.25") or after a list
    number (masked "#." by :func:`without_counters`)."""
    char = text[i - 1]
    if char not in SENTENCE_ENDS:
        return False
    return char != "." or not ((i < len(text) and text[i].isdigit()) or (i > 1 and text[i - 2] == "#"))


def without_counters(text: str) -> str:
    """``text`` with the digits of its citations and list numbers masked, the length kept. "The new source is [4]",
    "[5]", "[6]" (SmolLM2 on CPU, three sources given) is one phrase repeated, whatever numbers it cites; so is
    "- 4. 福利计划的制定 - 5. 福利计划的制定 …" (SmolLM2 on the H200), whatever number each line carries."""
    masked = CITATION.sub(lambda m: re.sub(r"\d", "#", m.group()), text)
    return LIST_NUMBER.sub(lambda m: "#" * len(m.group()), masked)


class OutputGuard:
    """Checks an answer as it grows; ``cut`` is set once it stops being one."""

    def __init__(self, prompts: PromptSet) -> None:
        self.fragments = prompt_fragments(prompts)
        self.windows = prompt_windows(prompts)
        self.language = prompts.language
        self.cut: Cut | None = None

    def check(self, text: str) -> Cut | None:
        """The cut for ``text`` so far (the earliest echo, else a loop at its end)."""
        echo = echo_at(text, self.fragments, self.windows)
        if echo is not None:
            return Cut(echo, "echo")
        loop = loop_at(without_counters(text))
        return Cut(loop, "loop") if loop is not None else None

    def clean(self, text: str) -> str:
        """A whole reply up to its first echo or loop (a loop is looked for at every word's end, as if streamed)."""
        cut = None
        echo = echo_at(text, self.fragments, self.windows)
        limit = len(text) if echo is None else echo
        masked = without_counters(text)
        for end in [*(m.start() for m in re.finditer(r"\s", text[:limit])), limit]:
            loop = loop_at(masked[:end])
            if loop is not None:
                cut = Cut(loop, "loop")
                break
        if cut is None and echo is not None:
            cut = Cut(echo, "echo")
        if cut is None:
            return text
        self.cut = self.cut or cut
        return text[: cut.at].rstrip()

    def stream(self, pieces: Iterable[str]) -> Iterator[str]:
        """The pieces until the text stops being an answer; leaving the loop closes ``pieces`` (generation stops).
        An end that could begin a copy of the prompt is held back until it proves to be one or not."""
        text, sent = "", 0
        for piece in pieces:
            text += piece
            cut = self.check(text)
            if cut is not None:
                self.cut = cut
                if cut.at > sent:
                    yield text[sent : cut.at].rstrip()
                return
            safe = len(text) - self.open_copy(text[sent:])
            if safe > sent:
                yield text[sent:safe]
                sent = safe
        if len(text) > sent:
            yield text[sent:]

    def open_copy(self, tail: str) -> int:
        """The length of the longest end of ``tail`` that begins one of the fragments (held back until it
        proves to be a copy or not)."""
        for size in range(min(len(tail), FRAGMENT_PREFIX), 0, -1):
            end = tail[-size:]
            if any(f.startswith(end) for f in self.fragments):
                return size
        return 0

    def warning(self) -> str | None:
        return WARNING[self.cut.kind] if self.cut else None

    def no_answer(self) -> str:
        return NO_USABLE_ANSWER[self.language]
