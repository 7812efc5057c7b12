"""OCR on this CPU: how fast, how exactly it reads, and whether retrieval still finds the evidence.

Scans are made from real text: pages of an English filing (financebench_dev) and of a Chinese annual
report (zh_reports_dev) are rendered as 200-dpi grayscale JPEGs, one per page of an image-only PDF,
as a scanner would. The product's parser processes read them by OCR (RAG_OCR=auto, default workers)
and the text is compared with the text layer of the original pages:

* CER, character error rate: Levenshtein distance / characters of the original. Both texts are NFKC
  normalised and stripped of whitespace, since line breaks and layout spaces differ between a text
  layer and OCR by construction; reading order is not forgiven (a table read in another order counts).
* pages/s: pages read by OCR per second of parsing, in the same run.
* retrieval: an image-only copy of a whole filing is ingested beside the original (each in its own
  collection) and that filing's financebench questions are asked of both: hit@k of an evidence page.
* odd corpus: the files of ../shared/corpus/odd without a text layer, and which of them OCR now reads.

    python -m bench.ocr                                    # everything (about an hour on 2 busy cores)
    python -m bench.ocr --parts cer                        # only the CER table and pages/s
    python -m bench.ocr --parts retrieval & python -m bench.ocr --parts cer,odd    # side by side
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from bench.common import CORPUS, ROOT, write_result
from rag_app.requests import SearchRequest

QA = CORPUS / "qa"
ENGLISH = QA / "financebench_dev" / "pdfs" / "3M_2018_10K.pdf"
CHINESE = (
    QA / "zh_reports_dev" / "pdfs" / "2020-04-03__北方华锦化学工业股份有限公司__000059__华锦股份__2019年__年度报告.pdf"
)
# Every 20th page from page 5 (English, 160 pages) and every 15th from page 5 (Chinese, 121 pages):
# a sample of whatever the documents hold (prose, tables, covers), not pages picked for OCR.
ENGLISH_PAGES = [5, 25, 45, 65, 85, 105, 125, 145]
CHINESE_PAGES = [5, 20, 35, 50, 65, 80, 95, 110]
# The two smallest filings of the set (57 and 62 pages), one question each: every page of a filing
# scanned costs 7 CPU-seconds or so of OCR.
RETRIEVAL_FILINGS = ("AMCOR_2023Q2_10Q", "MGMRESORTS_2023Q2_10Q")
SCAN_DPI = 200
# Seconds a page may take: the figures here are about OCR, not the product's 60 s default, which a dense
# page can pass on a machine as busy as the shared one these were measured on.
PAGE_TIMEOUT_S = 600
COMMAND = "python -m bench.ocr"
_WHITESPACE = re.compile(r"\s+")


def scan_copy(source: Path, target: Path, pages: Sequence[int] | None = None, dpi: int = SCAN_DPI) -> Path:
    """Write an image-only PDF of ``pages`` of ``source`` (all when None): each page one grayscale
    JPEG at ``dpi``, the page size unchanged, no text layer."""
    import pypdfium2 as pdfium

    src, out = pdfium.PdfDocument(source), pdfium.PdfDocument.new()
    try:
        for number in pages or range(1, len(src) + 1):
            image = src[number - 1].render(scale=dpi / 72, grayscale=True).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=80)
            buffer.seek(0)
            width, height = image.width * 72 / dpi, image.height * 72 / dpi
            picture = pdfium.PdfImage.new(out)
            picture.load_jpeg(buffer, inline=True)
            picture.set_matrix(pdfium.PdfMatrix().scale(width, height))
            page = out.new_page(width, height)
            page.insert_obj(picture)
            page.gen_content()
        target.parent.mkdir(parents=True, exist_ok=True)
        out.save(target)
    finally:
        out.close()
        src.close()
    return target


def comparable(text: str) -> str:
    """Text as CER compares it: NFKC (full-width forms as ASCII), no whitespace."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row per character of ``a`` (insertions by a running minimum)."""
    import numpy as np

    if not a or not b:
        return len(a) + len(b)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    columns = np.arange(len(b) + 1)
    row = columns.copy()
    for i, char in enumerate(a, 1):
        substituted = row[:-1] + (target != ord(char))
        deleted = row[1:] + 1
        new = np.concatenate(([i], np.minimum(substituted, deleted)))
        row = np.minimum.accumulate(new - columns) + columns
    return int(row[-1])


def character_error_rate(ocr_text: str, original: str) -> tuple[int, int]:
    """(edits, characters of the original) after ``comparable``: CER is their ratio."""
    reference = comparable(original)
    return edit_distance(comparable(ocr_text), reference), len(reference)


def read_by_ocr(paths: list[Path], workers: int = 0):
    """Parse ``paths`` as ingestion does (parser processes, RAG_OCR=auto): {name: ExtractedDocument}."""
    from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool
    from rag_app.settings import Settings

    s = Settings(_env_file=None)
    workers = workers or s.parse_workers or max(1, (os.cpu_count() or 2) - 1)
    with ExtractionPool(workers, PAGE_TIMEOUT_S, s.parse_memory_mb, "auto") as pool:
        return {job.path.name: doc for job, doc in pool.run([ExtractionJob(p) for p in paths])}


def cer_table(work: Path) -> dict:
    """CER per language and per page, and OCR pages/s, from scans of the sampled pages."""
    from rag_app.ingestion.loaders import load_document

    sets = {"en": (ENGLISH, ENGLISH_PAGES), "zh": (CHINESE, CHINESE_PAGES)}
    scans = {lang: scan_copy(src, work / f"scan-{lang}.pdf", pages) for lang, (src, pages) in sets.items()}
    started, cpu = time.perf_counter(), _children_cpu_s()
    docs = read_by_ocr(list(scans.values()))
    wall, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
    result: dict = {"languages": {}}
    for lang, (source, pages) in sets.items():
        original = load_document(source).pages
        doc = docs[scans[lang].name]
        rows = []
        for scanned, number in zip(doc.pages, pages, strict=True):
            edits, chars = character_error_rate(scanned.text, original[number - 1].text)
            rows.append({"page": number, "chars": chars, "edits": edits, "cer": round(edits / max(chars, 1), 4)})
        edits, chars = sum(r["edits"] for r in rows), sum(r["chars"] for r in rows)
        result["languages"][lang] = {
            "document": source.name, "pages": len(rows), "ocr_pages": len(doc.ocr_pages), "chars": chars,
            "cer": round(edits / max(chars, 1), 4), "parse_s": round(doc.seconds, 1), "per_page": rows,
        }  # fmt: skip
    pages = sum(len(d.ocr_pages) for d in docs.values())
    result["ocr_pages"], result["wall_s"] = pages, round(wall, 1)
    result["pages_per_s"] = round(pages / wall, 3)
    # CPU time of the parser processes: what a page costs whatever else the machine runs
    result["cpu_s_per_page"] = round(cpu / pages, 1)
    return result


def _children_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes (the parser workers, once closed)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def retrieval(work: Path, filings: Sequence[str] = RETRIEVAL_FILINGS) -> dict:
    """hit@k of each filing's evidence pages for its financebench questions, the filing alone in a
    collection: the original against an image-only copy of every page."""
    from bench.retrieval import K_MAX, first_hit_rank, hit_metrics

    folder = QA / "financebench_dev"
    rows = [json.loads(line) for line in (folder / "qa.jsonl").open(encoding="utf-8")]
    result: dict = {"filings": {}}
    ranks: dict[str, list] = {"original": [], "image_only": []}
    for filing in filings:
        original = folder / "pdfs" / f"{filing}.pdf"
        scan = scan_copy(original, work / "scan" / original.name)  # same name: the document match is the same
        questions = [r for r in rows if r["doc_name"] == filing]
        entry: dict = {"questions": len(questions)}
        for label, path in (("original", original), ("image_only", scan)):
            service, report = _ingest_alone(path, work / label / filing)
            found = []
            for row in questions:
                evidence = {int(e["page_number1"]) for e in row["evidence"]}
                found.append(
                    first_hit_rank(
                        [h.page for h in service.search(SearchRequest(query=row["question"], k=K_MAX)).hits],
                        evidence.__contains__,
                    )
                )
            ranks[label] += found
            entry[label] = {"ranks": found, **report}
        result["filings"][original.name] = entry
    for label, found in ranks.items():
        metrics = hit_metrics(found)
        metrics.pop("curve")
        result[label] = {**metrics, "ranks": found}
    return result


def _ingest_alone(path: Path, data_dir: Path):
    from rag_app.service import RagService
    from rag_app.settings import Settings

    service = RagService(Settings(_env_file=None, data_dir=data_dir, parse_timeout_s=PAGE_TIMEOUT_S))
    started = time.perf_counter()
    report = service.ingest([path]).files[0]
    return service, {
        "ingest_s": round(time.perf_counter() - started, 1), "pages": report.pages, "chunks": report.chunks,
        "ocr_pages": len(report.ocr_pages), "note": report.note or report.reason,
    }  # fmt: skip


def odd_corpus(work: Path) -> dict:
    """The odd corpus's files that have pages but no text on any (read with OCR off), and which of
    them OCR reads now."""
    from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool

    odd = CORPUS / "odd"
    with (odd / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    jobs = [
        ExtractionJob(odd / r["file"].removeprefix("A_odd_pdfs/"), (r["password"],) if r["password"] else ())
        for r in rows
    ]
    with ExtractionPool(1, 60, 4096, "off") as pool:
        no_text = [
            job
            for job, d in pool.run(jobs)
            if d.total_pages and len(d.empty_pages) == d.total_pages > len(d.failed_pages)
        ]
    with ExtractionPool(1, PAGE_TIMEOUT_S, 4096, "auto") as pool:
        docs = {job.path.relative_to(odd).as_posix(): doc for job, doc in pool.run(no_text)}
    return {
        "no_text_files": sorted(docs),
        "now_read": {n: f"{len(d.ocr_pages)} of {d.total_pages} pages" for n, d in sorted(docs.items()) if d.ocr_pages},
        "seconds_per_file": {n: round(d.seconds, 1) for n, d in sorted(docs.items())},
        "errors": {n: d.error or d.ocr_error for n, d in sorted(docs.items()) if d.error or d.ocr_error},
    }


PARTS = {"cer": cer_table, "retrieval": retrieval, "odd": odd_corpus}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # OCR must not need a hub; neither may the embedder here
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        for name in args.parts.split(","):
            load = [round(x, 1) for x in os.getloadavg()]
            started = time.perf_counter()
            part = PARTS[name](Path(tmp))
            part["seconds"] = round(time.perf_counter() - started, 1)
            part["load_average"] = {"start": load, "end": [round(x, 1) for x in os.getloadavg()]}
            print(f"{name}: {json.dumps(part, ensure_ascii=False)[:1500]}", flush=True)
            result = _record(name, part)  # each part as it ends: the parts take long and may run side by side
    print(summary(result))


def _record(name: str, part: dict) -> dict:
    """Merge one part into bench/results/ocr-cpu.json (other parts kept) and write it."""
    path = ROOT / "bench" / "results" / "ocr-cpu.json"
    result = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    result = {k: v for k, v in result.items() if k in PARTS} | {name: part, "command": COMMAND}
    print(f"wrote {write_result('ocr-cpu', result).relative_to(ROOT)}", flush=True)
    return result


def summary(result: dict) -> str:
    """The CER table and the speed, as printed at the end of a run."""
    lines = []
    if "cer" in result:
        c = result["cer"]
        lines.append("language  document  pages  characters  CER")
        for lang, r in c["languages"].items():
            lines.append(f"{lang}  {r['document']}  {r['pages']}  {r['chars']}  {r['cer']:.2%}")
        lines.append(
            f"OCR: {c['pages_per_s']} pages/s ({c['ocr_pages']} pages in {c['wall_s']} s), {c.get('cpu_s_per_page')} CPU-s/page"
        )
    if "retrieval" in result:
        r = result["retrieval"]
        for label in ("original", "image_only"):
            lines.append(
                f"retrieval {', '.join(r['filings'])} {label}: hit@5 {r[label]['hit@5']}, ranks {r[label]['ranks']}"
            )
    if "odd" in result:
        o = result["odd"]
        lines.append(f"odd corpus: OCR reads {len(o['now_read'])} of {len(o['no_text_files'])} files without text")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
