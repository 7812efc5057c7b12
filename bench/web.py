"""The web app's start-up and API latency: `python app.py` to first answer, and POST /api/ask in
extractive mode over qa/docugami_sec10q (median of 20 questions).

    python -m bench.web
"""

from __future__ import annotations

import csv
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

from bench.common import CORPUS, ROOT, write_result
from rag_app.service import RagService
from rag_app.settings import Settings

DOCUGAMI = CORPUS / "qa" / "docugami_sec10q" / "data" / "v1"
DATA = ROOT / "bench" / ".data"


def questions(count: int = 20) -> list[str]:
    with (DOCUGAMI / "qna_data.csv").open(newline="", encoding="utf-8-sig") as handle:
        return [row["Question"] for row in csv.DictReader(handle)][:count]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    settings = Settings(_env_file=None, data_dir=DATA, collection="docugami")
    RagService(settings).ingest([DOCUGAMI / "docs"])  # incremental: unchanged after the first run
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(DATA), "RAG_COLLECTION": "docugami", "RAG_LLM_BACKEND": "extractive",
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        first = _first_answer(url)
        startup = time.perf_counter() - started
        page = httpx.get(url + "/", timeout=30).status_code
        latencies = []
        for question in questions():
            t = time.perf_counter()
            response = httpx.post(url + "/api/ask", json={"question": question, "k": 4}, timeout=120)
            response.raise_for_status()
            latencies.append((time.perf_counter() - t) * 1000)
    finally:
        process.terminate()
        process.wait(timeout=30)
    result = {
        "startup_to_first_answer_s": round(startup, 1),
        "first_answer_strategy": first,
        "page_status": page,
        "api_ask_extractive_ms": {
            "median": round(statistics.median(latencies), 1),
            "p90": round(sorted(latencies)[int(0.9 * len(latencies)) - 1], 1),
            "min": round(min(latencies), 1),
            "max": round(max(latencies), 1),
            "questions": len(latencies),
        },
        "collection": "docugami_sec10q (20 filings)",
    }
    print(result)
    write_result("web-latency", result)


def _first_answer(url: str) -> str:
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            response = httpx.post(url + "/api/ask", json={"question": "What was Apple's revenue?"}, timeout=60)
            if response.status_code == 200:
                return response.json()["strategy"]
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the app did not answer within 300 s")


if __name__ == "__main__":
    main()
