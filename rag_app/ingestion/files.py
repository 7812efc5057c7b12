"""The files an ingest reads: found on disk (folders walked), each with the name it is stored under."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_app.ingestion.loaders import SUPPORTED_SUFFIXES
from rag_app.records import FileReport, FileStatus


@dataclass
class Candidate:
    """A file found on disk and the name it is stored under.

    ``stored_path`` is where the file will live once stored, when that is not where it is read
    from (an upload is read from a staging file and moved into place only if it is stored)."""

    name: str
    path: Path
    sha256: str = ""
    size: int = 0
    stored_path: Path | None = None

    @property
    def final_path(self) -> str:
        return str((self.stored_path or self.path).resolve())


def discover(paths: Sequence[Path]) -> tuple[list[Candidate], list[str], list[FileReport]]:
    """Files to ingest (folders walked recursively), unsupported files skipped, missing paths."""
    found: dict[str, Candidate] = {}
    skipped: list[str] = []
    missing: list[FileReport] = []
    for root in paths:
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p, root)):
                if path.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.setdefault(
                        path.relative_to(root).as_posix(), Candidate(path.relative_to(root).as_posix(), path)
                    )
                else:
                    skipped.append(str(path))
        elif root.is_file():
            found.setdefault(root.name, Candidate(root.name, root))
        else:
            missing.append(FileReport(root.name, str(root), FileStatus.FAILED, reason="no such file or directory"))
    return list(found.values()), skipped, missing


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
