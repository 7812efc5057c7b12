"""What the web answers about the server without giving away its file system: no absolute paths in
health, document lists, upload reports or an answer's model fields (a file is named by its document
name, a model by its directory's name)."""

from __future__ import annotations

import re
from typing import Any

# An absolute POSIX path that starts a word (not the path of a URL, which follows its host).
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~%-])/(?:[^\s/'\"]+/)+([^\s/'\"]*)")


def without_paths(value: Any) -> Any:
    """``value`` (JSON-like) with every absolute path in its strings cut to its last part."""
    if isinstance(value, str):
        return ABSOLUTE_PATH.sub(lambda m: m.group(1) or "…", value)
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_paths(item) for item in value]
    return value


def public_health(health: dict) -> dict:
    """GET /api/health and the status line: the store's kind, not its directory."""
    store = str(health.get("store", ""))
    return {**without_paths(health), "store": store if store.startswith("chroma server") else "embedded"}


def public_record(record: dict) -> dict:
    """A document or a file report: no ``path`` (the name says which file it is)."""
    return without_paths({key: value for key, value in record.items() if key != "path"})


def public_report(report: dict) -> dict:
    """An ingest report as the API returns it."""
    return {**without_paths(report), "files": [public_record(f) for f in report["files"]]}


def public_answer(answer: dict) -> dict:
    """An answer or a summary as the API returns it: the model (a local directory, often) and its notes
    lose their paths; the answer's own text and sources stay exactly as they are."""
    return {**answer, **{key: without_paths(answer[key]) for key in ("model", "model_notes") if key in answer}}
