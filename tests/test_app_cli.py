"""`python app.py` launch options: defaults, --help, and a share link that is never public by accident."""

import subprocess
import sys
import time

import httpx
import pytest
from conftest import ROOT, cli_env
from webapp import running_app

pytestmark = pytest.mark.slow


def run_app(tmp_path, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "app.py", *args], cwd=ROOT, env=cli_env(tmp_path / "data"), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_share_without_auth_is_refused_with_the_way_to_fix_it(tmp_path):
    result = run_app(tmp_path, "--share")
    assert result.returncode == 2
    assert "refusing --share without auth" in result.stderr and "--auth user:password" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_auth_is_a_usage_error(tmp_path):
    result = run_app(tmp_path, "--auth", "no-colon-here")
    assert result.returncode == 2 and "auth entries look like user:password" in result.stderr


def test_help_lists_every_launch_option(tmp_path):
    text = run_app(tmp_path, "--help").stdout
    for flag in [
        "--host",
        "--port",
        "--share",
        "--allow-public-share",
        "--auth",
        "--auth-file",
        "--collection",
        "--max-upload-mb",
    ]:
        assert flag in text
    assert "RAG_PORT" in text and "default: 127.0.0.1" in text


def test_offline_share_link_fails_clearly_and_the_local_server_keeps_running(tmp_path):
    args = ("--share", "--auth", "alice:s3cret", "--llm-backend", "extractive")
    with running_app(tmp_path / "data", *args, auth=("alice", "s3cret")) as (url, process, log):
        deadline = time.time() + 90
        while "share link" not in log.read_text() and time.time() < deadline:
            time.sleep(0.5)
        output = log.read_text()
        assert "Could not create a share link" in output and "keeps running locally" in output
        assert process.poll() is None
        assert httpx.get(url + "api/health", auth=("alice", "s3cret")).status_code == 200
        assert httpx.get(url + "api/health").status_code == 401


def test_public_share_needs_the_explicit_flag_and_warns(tmp_path):
    args = ("--share", "--allow-public-share", "--llm-backend", "extractive")
    with running_app(tmp_path / "data", *args) as (url, _, log):
        assert "WARNING: --share without auth" in log.read_text()
        assert httpx.get(url).status_code == 200


def test_binds_to_loopback_by_default(extractive_app):
    url, _, log = extractive_app
    assert url.startswith("http://127.0.0.1:")
    assert f"serving http://127.0.0.1:{url.rsplit(':', 1)[1].rstrip('/')}/" in log.read_text()
