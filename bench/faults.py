"""Fault figures (issue 27): writers killed at every step on 1 and 2 shards and what survived; bad inputs and
the statuses they got; the server's memory under a 1 GB request body and a 1 GB upload.

    python -m bench.faults                      # all three parts, about 15 minutes on 2 busy cores
    python -m bench.faults --parts inputs,memory

Kills: each case runs the real CLI (``python -m ingest``, pipelined, with the bundled embedder) in a fresh data
directory and kills one process: the store's writer or a shard's writer at a step of a write (injected by
``tests/faults/sitecustomize.py``), the store's writer while it waits for work, or the ingest itself (SIGKILL
from outside, once a file is stored). A case survives when the run stops with the signal named (or, for the
ingest, is killed), no writer process is left 5 s later, nothing half written is in any shard or the chunk table,
and a rerun stores every file with nothing lost. Inputs: each is sent to ``python app.py`` (extractive) and its
status kept; none may be a 5xx. Memory: the server's RSS, sampled every 20 ms, while each big request is sent.
Writes ``bench/results/faults.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench.common import CORPUS, ROOT, write_result

FAULTS = ROOT / "tests" / "faults"  # the fault injector the tests use
SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
DOCUGAMI = CORPUS / "qa" / "docugami_sec10q" / "data" / "v1" / "docs"
QUARTERLIES = ["2022 Q3 AAPL.pdf", "2023 Q1 AAPL.pdf", "2023 Q2 AAPL.pdf", "2023 Q3 AAPL.pdf", "2023 Q1 INTC.pdf",
               "2022 Q3 INTC.pdf"]  # fmt: skip
CHILDREN = ("rag_app.storage.writer_process", "rag_app.storage.shard_process", "rag_app.ingestion.parsing")
MB = 1024 * 1024
GB = 1024 * MB


# ----- kills -------------------------------------------------------------------------------------------------


def kill_cases() -> list[dict]:
    cases = [{"kill": f"writer:{step}", "shards": s} for step in ("after-marker", "mid-add", "before-commit",
             "after-commit") for s in (1, 2)]  # fmt: skip
    cases += [{"kill": f"shard:{step}", "shards": 2} for step in ("add", "flush")]
    cases += [{"kill": f"{who}:waiting", "shards": s} for who in ("writer", "ingest") for s in (1, 2)]
    return cases


def papers(folder: Path) -> Path:
    """Three small generated filings (a step kill needs no big files), or links to six real 10-Qs (a kill
    from outside needs a run that is still busy)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfgen import write_pdf

    for n, name in enumerate(["alpha.pdf", "beta.pdf", "gamma.pdf"]):
        pages = [
            "\n".join(
                f"{name} page {p} line {i}: segment {n}{p}{i} revenue was {n * 7 + p + i} million." for i in range(30)
            )
            for p in range(1, 4)
        ]
        write_pdf(folder / name, pages)
    return folder


def quarterlies(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in QUARTERLIES:
        (folder / name).symlink_to(DOCUGAMI / name)
    return folder


def ingest_env(data: Path, shards: int, fault: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(data), RAG_COLLECTION="faults", RAG_INGEST_MODE="pipelined", RAG_OCR="off",
               RAG_PARSE_WORKERS="1", RAG_CHROMA_SHARDS=str(shards), FAULT_ONCE=str(data.parent / "fault-once"))  # fmt: skip
    if fault:
        env.update(FAULT=fault, PYTHONPATH=os.pathsep.join([str(FAULTS), env.get("PYTHONPATH", "")]))
    return env


def run_kill_case(case: dict, root: Path) -> dict:
    """One case in a fresh directory: the faulty run, what it left, the rerun."""
    role, step = case["kill"].split(":")
    folder = quarterlies(root / "docs") if step == "waiting" else papers(root / "docs")
    env = ingest_env(root / "data", case["shards"], "" if step == "waiting" else case["kill"])
    started = time.monotonic()
    died = killed_from_outside(folder, env, role) if step == "waiting" else step_killed(folder, env)
    time.sleep(5)
    left = children_left(env)
    state = store_state(root / "data")
    rerun = subprocess.run([sys.executable, "-m", "ingest", str(folder), "--json"], cwd=ROOT,
                           env=ingest_env(root / "data", case["shards"]), capture_output=True, text=True)  # fmt: skip
    statuses = sorted(f["status"] for f in json.loads(rerun.stdout or "{}").get("files", []))
    after = store_state(root / "data")
    files = len(list(folder.iterdir()))
    complete = rerun.returncode == 0 and after["documents"] == files and after["clean"]
    survived = died["stopped_as_said"] and not left and state["clean"] and complete
    return {**case, **died, "children_left_after_5s": len(left), "left_behind": state, "rerun_statuses": statuses,
            "after_rerun": after, "survived": survived, "seconds": round(time.monotonic() - started, 1)}  # fmt: skip


def step_killed(folder: Path, env: dict) -> dict:
    died = subprocess.run([sys.executable, "-m", "ingest", str(folder), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    said = died.stderr.strip().splitlines()[-1] if died.stderr.strip() else ""
    named = "stopped (killed by SIGKILL) while storing" in said
    return {"exit_code": died.returncode, "message": said[:300], "stopped_as_said": died.returncode == 1 and named}


def killed_from_outside(folder: Path, env: dict, role: str) -> dict:
    """SIGKILL the store's writer (or the ingest) once the first file is stored; how long the ingest took to stop."""
    ingest = subprocess.Popen([sys.executable, "-m", "ingest", str(folder)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    err = bytearray()
    while f"1/{len(QUARTERLIES)}".encode() not in err and ingest.poll() is None:
        err.extend(ingest.stderr.read1(4096))
    victim = psutil.Process(ingest.pid)
    if role == "writer":
        victim = next(c for c in victim.children() if CHILDREN[0] in " ".join(c.cmdline()))
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = ingest.wait(timeout=300)
    err.extend(ingest.stderr.read())
    stopped = time.monotonic() - killed
    said = err.decode(errors="replace")
    message = said[said.rfind("error: ") :].split("\n")[0] if "error: " in said else ""
    named = role == "ingest" or "stopped (killed by SIGKILL) while storing" in message
    expected = -signal.SIGKILL if role == "ingest" else 1
    return {"exit_code": code, "message": message[:300], "seconds_to_stop": round(stopped, 1),
            "stopped_as_said": code == expected and named}  # fmt: skip


def children_left(env: dict) -> list[int]:
    left = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(c in " ".join(process.info["cmdline"] or []) for c in CHILDREN):
                if process.environ().get("FAULT_ONCE") == env["FAULT_ONCE"]:
                    left.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return left


STATE_SCRIPT = """
import json, sys
from rag_app.settings import Settings
from rag_app.storage.store import Database
db = Database(Settings(_env_file=None, data_dir=sys.argv[1], collection="faults"))
out = {"documents": 0, "pending": 0, "incomplete": [], "orphan_vectors": 0, "orphan_texts": 0}
if "faults" in db.collections():
    names = db.store("faults")
    docs = names.list_documents()
    out.update(documents=len(docs), pending=len(names.pending_writes()))
    chunk_collections = [c for c in db.client.list_collections() if c.name.startswith("faults.chunks.")]
    for embedding in {c.metadata["embedding"] for c in chunk_collections}:
        index = db.store("faults", embedding).index()
        owned = {d.sha256 for d in docs if d.embedding == embedding}
        out["incomplete"] += [d.name for d in docs if d.embedding == embedding and
                              (index.count(d.sha256) != d.chunks or not index.table.has(d.sha256))]
        where = {"sha256": {"$nin": sorted(owned)}} if owned else None
        out["orphan_vectors"] += sum(len(part.get(where=where, include=[])["ids"]) for part in index.vectors.parts)
        out["orphan_texts"] += len(index.table.shas() - owned)
out["clean"] = not (out["pending"] or out["incomplete"] or out["orphan_vectors"] or out["orphan_texts"])
print(json.dumps(out))
"""


def store_state(data: Path) -> dict:
    """What the store holds, read in a process of its own (as the next run would): documents, markers,
    documents missing chunks or texts, and vectors and texts no document owns."""
    read = subprocess.run([sys.executable, "-c", STATE_SCRIPT, str(data)], cwd=ROOT, capture_output=True, text=True)
    if read.returncode != 0:
        return {"clean": False, "error": read.stderr.strip().splitlines()[-1:]}
    return json.loads(read.stdout)


def kills() -> dict:
    results = []
    for case in kill_cases():
        with tempfile.TemporaryDirectory(prefix="rag-faults-") as root:
            results.append(run_kill_case(case, Path(root)))
        print(f"  {case['kill']:<22} shards {case['shards']}: {'survived' if results[-1]['survived'] else 'LOST'}")
    by_step: dict[str, dict] = {}
    for r in results:
        by_step.setdefault(r["kill"], {})[f"{r['shards']} shard{'s' * (r['shards'] > 1)}"] = r["survived"]
    return {"cases": results, "survived": sum(r["survived"] for r in results), "tried": len(results),
            "by_step": by_step}  # fmt: skip


# ----- bad inputs --------------------------------------------------------------------------------------------


def bad_inputs() -> list[tuple[str, str, dict]]:
    """(label, method and path, request arguments for httpx): what a careless or hostile client sends."""
    cases: list[tuple[str, str, dict]] = []
    for name in ["../../../tmp/x", "a..b", "%2e%2e", "-lead", "名字", "x" * 300, "a/b", "", "a b", "..\\x"]:
        cases.append((f"collection {name[:20]!r}", "POST /api/documents", {"params": {"collection": name},
                      "files": [("files", ("a.md", b"# a\nhello"))]}))  # fmt: skip
        cases.append((f"collection {name[:20]!r}", "GET /api/documents", {"params": {"collection": name}}))
        cases.append((f"collection {name[:20]!r}", "POST /api/ask", {"json": {"question": "margin?", "collection": name}}))  # fmt: skip
    raw = {
        "lone surrogate question": b'{"question": "\\ud800"}',
        "lone surrogate in history": b'{"question": "ok", "history": [{"role": "user", "content": "\\udfff"}]}',
        "lone surrogate in files": b'{"question": "ok", "files": ["\\ud800"]}',
        "malformed JSON": b'{"question": ',
        "JSON array": b"[1, 2]",
        "wrong types": b'{"question": 5, "k": "many"}',
        "unknown field": b'{"question": "ok", "evil": true}',
        "NUL bytes": b'{"question": "a\\u0000b"}',
        "k out of range": b'{"question": "ok", "k": 100000}',
        "unknown strategy": b'{"question": "ok", "strategy": "magic"}',
        "empty body": b"",
        "question over the limit": b'{"question": "' + b"x" * 5000 + b'"}',
        "body over the limit (3 MB)": b'{"question": "' + b"x" * (3 * MB) + b'"}',
    }
    for label, body in raw.items():
        cases.append((label, "POST /api/ask", {"content": body, "headers": {"content-type": "application/json"}}))
    cases.append(("lone surrogate in chat history", "POST /api/chat", {"content": b'{"prompt": "ok", "history": '
                  b'[["\\ud800", "x"]]}', "headers": {"content-type": "application/json"}}))  # fmt: skip
    cases.append(("summary of nothing", "POST /api/summarize", {"json": {"files": []}}))
    cases.append(("summary of a surrogate", "POST /api/summarize", {"content": b'{"files": ["\\ud800"]}',
                  "headers": {"content-type": "application/json"}}))  # fmt: skip
    for path in ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "a" * 5000, "%ED%A0%80"]:
        cases.append((f"document {path[:20]!r}", f"GET /api/documents/{path}/file", {}))
        cases.append((f"document {path[:20]!r}", f"DELETE /api/documents/{path}", {}))
    uploads = {
        "not a PDF": [("files", ("fake.pdf", b"<html>no</html>"))],
        "an .exe": [("files", ("tool.exe", b"MZ\x90\x00"))],
        "an empty file": [("files", ("empty.pdf", b""))],
        "a traversal name": [("files", ("../../etc/passwd.pdf", SAMPLE.read_bytes()))],
        "the same name twice": [("files", ("dup.pdf", SAMPLE.read_bytes())), ("files", ("dup.pdf", SAMPLE.read_bytes()))],
        "a 300-byte name": [("files", ("报" * 100 + ".pdf", SAMPLE.read_bytes()))],
    }  # fmt: skip
    for label, files in uploads.items():
        cases.append((label, "POST /api/documents", {"files": files}))
    cases.append(("cross-site write", "POST /api/ask", {"json": {"question": "x"}, "headers": {"origin": "https://evil.example"}}))  # fmt: skip
    cases.append(("forwarded host from an untrusted client", "POST /api/ask", {"json": {"question": "margin?"},
                  "headers": {"origin": "https://evil.example", "x-forwarded-host": "evil.example"}}))  # fmt: skip
    cases.append(("rebinding host", "GET /api/documents", {"headers": {"host": "evil.example"}}))
    return cases


def try_inputs(url: str) -> dict:
    results = []
    with httpx.Client(base_url=url, timeout=300) as client:
        for label, route, arguments in bad_inputs():
            method, path = route.split(" ", 1)
            response = client.request(method, path, **arguments)
            results.append({"input": label, "route": route, "status": response.status_code})
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    return {"tried": len(results), "statuses": dict(sorted(counts.items())),
            "5xx": sum(r["status"] >= 500 for r in results), "inputs": results}  # fmt: skip


# ----- memory ------------------------------------------------------------------------------------------------


class PeakRss:
    """The largest RSS of a process while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.before = self.process.memory_info().rss
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def pieces(head: bytes, total: int, tail: bytes, piece: int = MB):
    yield head
    for _ in range(0, total, piece):
        yield b"x" * piece
    yield tail


def multipart(files: int, size: int):
    for i in range(files):
        yield b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="big%d.pdf"\r\n\r\n%%PDF-1.4\n' % i
        yield from pieces(b"", size, b"\r\n")
    yield b"--b0undary--\r\n"


JSON = "application/json"
FORM = "multipart/form-data; boundary=b0undary"


def big_requests() -> list[tuple[str, str, str, object, int | None]]:
    """(label, path, content type, a function giving the body's pieces, its Content-Length or None: chunked)."""
    question = (b'{"question": "', GB, b'"}')
    return [
        ("1 GB JSON body to /api/ask, chunked", "/api/ask", JSON, lambda: pieces(*question), None),
        ("1 GB JSON body to /api/ask, with Content-Length", "/api/ask", JSON, lambda: pieces(*question), GB + 16),
        ("1 GB upload (11 files of 95 MB), chunked", "/api/documents", FORM, lambda: multipart(11, 95 * MB), None),
        ("1 GB upload (11 files of 95 MB), with Content-Length", "/api/documents", FORM,
         lambda: multipart(11, 95 * MB), sum(map(len, multipart(11, 95 * MB)))),
        ("one 95 MB file, accepted and stored", "/api/documents", FORM, lambda: multipart(1, 95 * MB), None),
    ]  # fmt: skip


def stream_request(url: str, path: str, content_type: str, body, length: int | None) -> tuple[int | None, int]:
    """POST ``body``'s pieces over a raw socket, stopping as soon as the server answers (a client that reads
    the 413 instead of pushing the rest); (status or None, bytes sent)."""
    import select
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(url)
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    head = f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
    sent = 0
    with socket.create_connection((where.hostname, where.port), timeout=600) as sock:
        sock.sendall(head.encode())
        try:
            for piece in filter(None, body()):  # an empty chunk would end a chunked body
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(piece if length is not None else b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            else:
                if length is None:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed while this side still sent
        reply = sock.recv(4096).split(b"\r\n", 1)[0].split()
    return (int(reply[1]) if len(reply) > 1 else None), sent


def measure_memory(url: str, pid: int) -> list[dict]:
    results = []
    for label, path, content_type, body, length in big_requests():
        with PeakRss(pid) as rss:
            status, sent = stream_request(url, path, content_type, body, length)
        results.append({"request": label, "status": status, "client_sent_mb": round(sent / MB, 1),
                        "server_rss_before_mb": round(rss.before / MB), "server_rss_peak_mb": round(rss.peak / MB),
                        "server_rss_growth_mb": round((rss.peak - rss.before) / MB, 1)})  # fmt: skip
        print(
            f"  {label}: {status} after {sent / MB:.0f} MB sent, server RSS +{results[-1]['server_rss_growth_mb']} MB"
        )
    return results


# ----- the app -----------------------------------------------------------------------------------------------


def with_app(root: Path, work) -> dict:
    """Start ``python app.py`` (extractive) on a free port over a data directory holding the sample; run
    ``work(url, pid)``."""
    from bench.web import free_port

    data, port = root / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(data), RAG_OCR="off", RAG_PARSE_WORKERS="1")
    subprocess.run([sys.executable, "-m", "ingest", str(SAMPLE)], cwd=ROOT, env=env, check=True, capture_output=True)
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--llm-backend", "extractive"], cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_healthy(url, app)
        httpx.post(url + "api/ask", json={"question": "What was the gross margin?"}, timeout=300)  # warm
        return work(url, app.pid)
    finally:
        app.terminate()
        app.wait(timeout=30)


def wait_healthy(url: str, app: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and app.poll() is None:
        try:
            if httpx.get(url + "api/health", timeout=5).json().get("model_state") == "extractive":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"the app did not become healthy (exit code {app.poll()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="kills,inputs,memory", help="comma-separated: kills, inputs, memory")
    parts = parser.parse_args().parts.split(",")
    load_before = [round(x, 2) for x in os.getloadavg()]
    result: dict = {"command": "python -m bench.faults", "load_average_before": load_before}
    if "kills" in parts:
        print("kills:")
        result["kills"] = kills()
    with tempfile.TemporaryDirectory(prefix="rag-faults-app-") as root:
        if "inputs" in parts:
            result["bad_inputs"] = with_app(Path(root) / "inputs", lambda url, pid: try_inputs(url))
            print(f"bad inputs: {result['bad_inputs']['tried']} tried, statuses {result['bad_inputs']['statuses']}")
        if "memory" in parts:
            print("memory:")
            result["memory"] = with_app(Path(root) / "memory", measure_memory)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"wrote {write_result('faults', result)}")


if __name__ == "__main__":
    main()
