"""How often an upload's progress visibly changes in the page, for a 300-page filing (issue 28: at least every
5 s on 2 cores). Starts `python app.py` (extractive) on an empty data directory, drops the file on the page in
headless Chromium and records the time of every change of the progress panel's text until the report shows.

    python -m bench.upload_progress                       # WALMART_2018_10K.pdf, 304 pages
    python -m bench.upload_progress --pdf other.pdf

Then the same file through `python -m ingest` (the CLI) in the same run, so the page's speed stands beside the
command line's (issue 30: the page uses the same pipeline at the same speed).

Writes bench/results/upload-progress.json: the longest gaps between visible changes (from the drop to the
report), how many changes, the seconds, and the load average before and after (other work on the machine
lengthens every gap).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import CORPUS, ROOT, write_result
from bench.web import free_port

PDF = CORPUS / "qa" / "financebench_dev" / "pdfs" / "WALMART_2018_10K.pdf"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Each change of the progress panel's text, with its time (performance.now(), ms).
RECORDER_JS = """() => {
  window.__progress = [];
  const panel = document.querySelector('#rag-progress');
  new MutationObserver(() => {
    const text = panel.innerText.trim();
    const last = window.__progress[window.__progress.length - 1];
    if (!last || last[1] !== text) window.__progress.push([performance.now(), text]);
  }).observe(panel, {subtree: true, childList: true, characterData: true});
  return performance.now();
}"""
REPORT_SHOWN = "document.querySelector('#rag-report').innerText.match(/ingested|replaced|unchanged|failed/)"


def record_upload(page, files: list[str], timeout_s: float = 1200) -> dict:
    """Drop ``files`` on the Documents tab of an open page; the visible changes of the progress panel, with
    the gaps between them (from the drop to the report)."""
    page.get_by_role("tab", name="Documents / 文档").click()
    started = page.evaluate(RECORDER_JS)
    page.locator("#rag-upload input[type=file]").set_input_files(files)
    page.wait_for_function(REPORT_SHOWN, timeout=timeout_s * 1000)
    ended = page.evaluate("performance.now()")
    changes = page.evaluate("window.__progress")
    times = [started, *(t for t, _ in changes), ended]
    gaps = [(b - a) / 1000 for a, b in zip(times, times[1:], strict=False)]
    shown = ["(the drop)", *(text for _, text in changes)]  # what the page showed through each gap
    # the same without the seconds a page read by OCR has taken: how often the counts themselves moved
    moved = [started] + [
        t for (t, text), before in zip(changes, shown, strict=False) if _counts(text) != _counts(before)
    ]
    counted = [(b - a) / 1000 for a, b in zip([*moved, ended], [*moved, ended][1:], strict=False)]
    return {
        "seconds": round((ended - started) / 1000, 1),
        "changes": len(changes),
        "max_gap_s": round(max(gaps), 2),
        "max_gap_of_counts_s": round(max(counted), 2),
        "longest_gaps_s": sorted((round(g, 2) for g in gaps), reverse=True)[:5],
        "longest_gap_while": shown[gaps.index(max(gaps))].splitlines()[0] if shown[gaps.index(max(gaps))] else "",
        "texts": [text for _, text in changes],
    }


def _counts(text: str) -> str:
    return re.sub(r" \(\d+ s on it\)|（已用 \d+ 秒）", "", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdf", type=Path, default=PDF, help="the file to upload (default: a 304-page 10-K)")
    parser.add_argument("--name", default="upload-progress", help="result file name")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="upload-progress-"))
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(data), "RAG_LLM_BACKEND": "extractive", "HF_HUB_OFFLINE": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_ready(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("#rag-status:has-text('Collection')", timeout=120_000)
            load_before = round(os.getloadavg()[0], 1)
            result = record_upload(page, [str(args.pdf)])
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    cli = cli_ingest(args.pdf, env)
    import pypdfium2

    pages = len(pypdfium2.PdfDocument(str(args.pdf)))
    result["page_pages_per_s"] = round(pages / result["seconds"], 2)
    result["cli"] = cli | {"pages_per_s": round(pages / cli["seconds"], 2)}
    result = {"file": args.pdf.name, "pages": pages, **result, "load_before": load_before,
              "load_after": round(os.getloadavg()[0], 1), "command": "python -m bench.upload_progress"}  # fmt: skip
    result["texts"] = result["texts"][:: max(1, len(result["texts"]) // 12)]  # a sample of what was shown
    path = write_result(args.name, result)
    print({k: v for k, v in result.items() if k != "texts"})
    print(f"wrote {path.relative_to(ROOT)}")


def cli_ingest(pdf: Path, env: dict) -> dict:
    """The same file through ``python -m ingest`` right after the upload, in a data directory of its own: the
    whole process (start, imports, model) and the ingest alone (the report's seconds), with its embedder."""
    import json

    data = Path(tempfile.mkdtemp(prefix="upload-cli-"))
    load_before = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ingest", "--json", str(pdf)], cwd=ROOT, env=env | {"RAG_DATA_DIR": str(data)},
                          capture_output=True, text=True, check=True)  # fmt: skip
    seconds = time.perf_counter() - started
    shutil.rmtree(data, ignore_errors=True)
    report = json.loads(done.stdout)
    return {"seconds": round(seconds, 1), "ingest_seconds": report["seconds"], "embedder": report.get("embedder"),
            "plan": report.get("plan"), "load_before": load_before, "load_after": round(os.getloadavg()[0], 2)}  # fmt: skip


def _wait_ready(url: str) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(url + "api/health", timeout=5).json().get("model_state") == "extractive":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit("the app did not start within 300 s")


if __name__ == "__main__":
    main()
