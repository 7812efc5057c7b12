"""Start `python app.py` as a user would, on a free port, and stop it after the test."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

import httpx
from conftest import ROOT, cli_env


def serve_in_thread(app, port: int):
    """Start ``app`` with uvicorn on 127.0.0.1:``port`` in a daemon thread; returns the server once it
    accepts connections (set ``should_exit`` to stop it)."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(
    data_dir, *args: str, env_extra: dict | None = None, auth: tuple[str, str] | None = None, timeout: float = 120
):
    """Yield (base_url, process, log_path); the app serves until the block ends."""
    port = free_port()
    log_path = data_dir.parent / f"app-{port}.log"
    env = cli_env(data_dir, **(env_extra or {}))
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_healthy(url, process, log_path, auth, timeout)
            yield url, process, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_healthy(url, process, log_path, auth, timeout) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app.py exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            health = httpx.get(url + "api/health", auth=auth, timeout=5).json()
            if health.get("model_state") in ("ready", "extractive"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"app.py did not become healthy in {timeout} s:\n{log_path.read_text()}")
