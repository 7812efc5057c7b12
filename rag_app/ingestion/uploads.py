"""Files that arrive over the web: names kept as given where the file system allows, type checked by
content, size limits.

Uploads are written into ``<data_dir>/uploads/<collection>/`` under the name they were uploaded with,
changed only where a file system requires it: ``../../etc/passwd.pdf`` lands as ``etc_passwd.pdf``
inside that folder (nothing outside the data directory is ever written), and a name over 200 bytes is
shortened. Two files of one upload that would get the same name (``dup.pdf`` twice) both stay: the
second is ``dup (2).pdf``. The report says when a name changed, and a document can be deleted by either
name. Files are copied to disk piece by piece, within a limit per file and one per request.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rag_app.ingestion.loaders import PDF_HEADER_WINDOW, TEXT_SUFFIXES
from rag_app.records import FileReport, FileStatus, IngestReport

# File systems cap a name at 255 bytes (not characters: a Chinese character is 3 bytes in UTF-8).
MAX_NAME_BYTES = 200
MAX_SUFFIX_BYTES = 16
COPY_PIECE = 1024 * 1024  # an upload is copied to disk this many bytes at a time
HEAD_BYTES = 8192  # what the type check reads
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UploadRejected(Exception):
    """A file is refused before ingestion; ``status`` is the HTTP status that fits."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def safe_name(name: str) -> str:
    """A harmless file name: no directories, no control characters, no leading dots, at most
    MAX_NAME_BYTES bytes of UTF-8 (see :func:`shorten_name`)."""
    return shorten_name(plain_name(name))


def plain_name(name: str) -> str:
    """``name`` as given, changed only where a file system requires it: no directories (the parts of
    ``a/b.pdf`` or ``a\\b.pdf`` joined by ``_``), no control characters, no leading dots (a hidden file,
    ``..``). Letters of any script, spaces, punctuation and repeated ``_`` stay."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    stem = CONTROL.sub("_", "_".join(parts)).lstrip(".")
    return stem or "upload"


def rename_reasons(name: str) -> list[str]:
    """Why the file system needs another name than ``name`` (empty: it keeps it)."""
    name = unicodedata.normalize("NFC", name)
    reasons = []
    if "/" in name or "\\" in name:
        reasons.append("a file name cannot hold / or \\")
    if CONTROL.search(name):
        reasons.append("control characters")
    if name.startswith(".") and "/" not in name and "\\" not in name:
        reasons.append("a leading dot hides a file")
    if len(plain_name(name).encode("utf-8")) > MAX_NAME_BYTES:
        reasons.append(f"names hold at most {MAX_NAME_BYTES} bytes")
    return reasons


def shorten_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name`` if it fits in ``limit`` UTF-8 bytes; else its start, cut at a character boundary, then
    ``~`` and 8 hex digits of its SHA-256 (two long names that share a start stay apart), then its extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    suffix = Path(name).suffix
    if len(suffix.encode("utf-8")) > MAX_SUFFIX_BYTES:
        suffix = ""
    tag = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    room = limit - len(tag.encode()) - len(suffix.encode("utf-8"))
    start = name[: len(name) - len(suffix)].encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return start.rstrip(" .") + tag + suffix


def check_content(name: str, head: bytes) -> None:
    """Refuse a file whose bytes do not match its type (HTTP 415)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".pdf":
        if b"%PDF-" not in head[:PDF_HEADER_WINDOW]:
            raise UploadRejected(f"{name}: not a PDF (no %PDF- header); upload PDF, .txt or .md files", 415)
    elif suffix in TEXT_SUFFIXES:
        if b"\x00" in head[:4096] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise UploadRejected(f"{name}: not a text file (it contains binary data)", 415)
    else:
        raise UploadRejected(
            f"{name}: unsupported file type {suffix or '(none)'!r}; upload PDF, .txt or .md files", 415
        )


@dataclass
class StoredUpload:
    name: str
    path: Path
    original: str = ""  # the name as uploaded, when it had to change
    twin: str = ""  # the name another file of the same upload had first, when this one was renamed

    @property
    def note(self) -> str | None:
        """What the file's report says about its name (None when it was kept)."""
        notes = []
        if self.original:
            reasons = "; ".join(rename_reasons(self.original)) or "the file system needs it"
            notes.append(f"uploaded as {self.original!r}, stored as {self.name!r} ({reasons}): either name deletes it")
        if self.twin:
            notes.append(f"renamed: another file of this upload is named {self.twin!r}")
        return "; ".join(notes) or None


class UploadStager:
    """Writes the files of one upload request into a staging folder, each under a name of its own, copied in
    pieces (never whole in memory); refuses a file over ``max_file`` bytes, a file that takes the request
    past ``max_total`` bytes (413), an empty one (400) and one whose bytes are not its type (415)."""

    def __init__(self, directory: Path, max_file: int, max_total: int) -> None:
        self.directory = directory
        self.max_file, self.max_total = max_file, max_total
        self.total = 0
        self.staged: list[StoredUpload] = []

    def stage(self, name: str, data: bytes | BinaryIO) -> StoredUpload:
        """Check and write one uploaded file; raises UploadRejected (500 when the file system refuses it)."""
        plain = plain_name(name)
        clean = shorten_name(plain)
        unique = self._unique(clean)
        target = self.directory / unique
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            size, head = self._copy(io.BytesIO(data) if isinstance(data, bytes) else data, target, unique)
        except OSError as exc:
            target.unlink(missing_ok=True)
            raise UploadRejected(f"{unique}: could not be stored ({exc.strerror})", 500) from None
        except UploadRejected:
            target.unlink(missing_ok=True)
            raise
        if not size:
            target.unlink(missing_ok=True)
            raise UploadRejected(f"{unique}: the file is empty", 400)
        try:
            check_content(unique, head)
        except UploadRejected:
            target.unlink(missing_ok=True)
            raise
        renamed = name if clean != unicodedata.normalize("NFC", name) else ""
        staged = StoredUpload(unique, target, renamed, clean if unique != clean else "")
        self.staged.append(staged)
        return staged

    def _unique(self, name: str) -> str:
        """``name``, or ``stem (2).ext``, ``stem (3).ext``... when an earlier file of this upload took it."""
        taken = {s.name for s in self.staged}
        stem, suffix = name[: len(name) - len(Path(name).suffix)], Path(name).suffix
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = shorten_name(f"{stem} ({n}){suffix}")
        return candidate

    def _copy(self, source: BinaryIO, target: Path, name: str) -> tuple[int, bytes]:
        """Copy ``source`` to ``target`` piece by piece, within the limits; (bytes copied, the first 8 KiB)."""
        size, head = 0, b""
        with target.open("wb") as out:
            while piece := source.read(COPY_PIECE):
                size += len(piece)
                self.total += len(piece)
                if size > self.max_file:
                    raise UploadRejected(
                        f"{name}: over the {self.max_file / 1e6:.0f} MB upload limit per file (--max-upload-mb)", 413
                    )
                if self.total > self.max_total:
                    raise UploadRejected(
                        f"{name}: the files of this upload are over {self.max_total / 1e6:.0f} MB together "
                        "(--max-upload-total-mb): upload them in several requests",
                        413,
                    )
                if len(head) < HEAD_BYTES:
                    head += piece[: HEAD_BYTES - len(head)]
                out.write(piece)
        return size, head


def note_upload_names(report: IngestReport, stored: list[StoredUpload]) -> None:
    """Say in each file's report when its name was shortened or changed."""
    notes = {s.name: s.note for s in stored if s.note}
    for file in report.files:
        if file.name in notes:
            file.note = "; ".join(n for n in (file.note, notes[file.name]) if n)


def rejected_report(name: str, error: UploadRejected) -> FileReport:
    return FileReport(safe_name(name), "", FileStatus.FAILED, reason=str(error), refused_status=error.status)
