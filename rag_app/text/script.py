"""Chinese in traditional characters read as simplified: one index and one question for both scripts.

A question typed in Hong Kong or Taiwan writes 聯邦製藥的營業收入; the report it asks about prints 联邦制药的营业收入.
Every comparison of words (the BM25 index, the route's document names and covers, the lexicon's names, the
highlighter) reads both through :func:`simplified`, which turns each traditional character (and each of Taiwan's and
Hong Kong's variant forms) into its simplified one by the table ``prompts/script/traditional.txt``. Simplified text is
unchanged but for a few characters written both ways (於 -> 于), a traditional document's terms are those of the same
text in simplified characters, and the character count never changes: an offset in the folded text is the same
offset in the text as written (the highlighter's spans). What is shown (a quote, the question, the file name) stays
as written. Phrases that differ between the scripts (軟體 and 软件) are not turned: the dense rankings read them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from rag_app.errors import ConfigurationError

TABLE_FILE = Path(__file__).resolve().parents[2] / "prompts" / "script" / "traditional.txt"


@functools.cache
def _table(path: Path = TABLE_FILE) -> dict[int, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the table of traditional characters {path}: {exc}") from exc
    pairs = [line for line in lines if line and not line.startswith("#")]
    if bad := [line for line in pairs if len(line) != 2]:
        raise ConfigurationError(f"{path}: a line is a traditional character and its simplified one, not {bad[0]!r}")
    return {ord(line[0]): line[1] for line in pairs}


def simplified(text: str) -> str:
    """``text`` with each traditional Chinese character as its simplified one; as long as ``text``."""
    return text.translate(_table()) if not text.isascii() else text


def folds(text: str) -> bool:
    """Whether ``text`` holds a character :func:`simplified` turns."""
    return simplified(text) != text
