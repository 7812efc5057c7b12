"""Prompt templates from ``prompts/<lang>/<role>.txt``, checked for their placeholders at load."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag_app.errors import ConfigurationError
from rag_app.text.clean import CJK_CHAR

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
LANGUAGES = ("en", "zh")
# Each role's placeholders, exactly: a template missing one or adding an unknown one is refused.
PLACEHOLDERS: dict[str, set[str]] = {
    "system": set(),
    "stuff": {"context", "question"},
    "map": {"source", "context", "question"},
    "reduce": {"extracts", "question"},
    "refine_initial": {"source", "context", "question"},
    "refine": {"source", "context", "question", "existing_answer"},
    "map_rerank": {"source", "context", "question"},
    "rerank": {"context", "question"},  # the answer model's yes/no on a retrieved page (rag_app.retrieval.rerank)
    "condense": {"history", "question"},
    "summarize_map": {"pages", "words"},
    "summarize_reduce": {"summaries", "words"},
}
# Replies that mean "this source has nothing" in the map step.
NOTHING_RELEVANT = ("NOTHING RELEVANT", "无相关内容")
# The tags that fence data (sources, extracts, pages, the conversation) in the templates: text from a PDF or a
# question must not close or reopen them.
FENCE_TAGS = ("documents", "document", "extracts", "conversation")
FENCE_TAG = re.compile(rf"<\s*/?\s*(?:{'|'.join(FENCE_TAGS)})\b[^<>]*>", re.IGNORECASE)


def detect_language(text: str) -> str:
    """A question with CJK characters gets the Chinese prompts (langchain-ChatGLM style)."""
    return "zh" if CJK_CHAR.search(text) else "en"


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@dataclass(frozen=True)
class PromptSet:
    """The templates of one language."""

    language: str
    templates: dict[str, str]

    def render(self, role: str, **values: str) -> str:
        return self.templates[role].format(**{name: unfenced(value) for name, value in values.items()})

    @property
    def system(self) -> str:
        return self.templates["system"]


def unfenced(value: str) -> str:
    """``value`` with its fence tags (``</documents>``, ``<document>``…) made inert, angle brackets become ‹ ›: a
    document or a question cannot end the fence around the data and pass its text off as instructions."""
    return FENCE_TAG.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), value)


@cache
def load_prompts(language: str, directory: Path = PROMPTS_DIR) -> PromptSet:
    """Read and check every role's template for ``language``."""
    templates = {}
    for role, expected in PLACEHOLDERS.items():
        path = directory / language / f"{role}.txt"
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"missing prompt template {path}: {exc.strerror}") from None
        found = placeholders(text)
        if found != expected:
            raise ConfigurationError(
                f"prompt template {path} has placeholders {sorted(found)}, expected exactly {sorted(expected)}"
            )
        templates[role] = text
    return PromptSet(language, templates)
