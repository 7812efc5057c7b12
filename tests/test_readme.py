"""The README stays true: its configuration table and commands match the code and CI."""

import re

import pytest
from conftest import ROOT

from rag_app.settings import settings_table_markdown

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block_after(marker: str, language: str = "bash") -> str:
    match = re.search(rf"<!-- {marker} -->\n```{language}\n(.+?)\n```", README, re.S)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_configuration_table_matches_the_settings():
    table = README.split("<!-- settings-table -->\n")[1].split("\n<!-- /settings-table -->")[0]
    assert table == settings_table_markdown()


def test_ci_runs_the_readme_test_command():
    command = block_after("test-command")
    assert command.startswith("pip install -r requirements.txt -r requirements-dev.txt")
    assert "python -m pytest" in command
    assert "test-command" in (ROOT / ".ci" / "run").read_text()


def test_run_command_installs_then_runs():
    assert block_after("run-command") == "pip install -r requirements.txt && python app.py"


@pytest.mark.slow  # starts `python app.py` as the README says
def test_run_command_serves_the_page_and_answers(extractive_app):
    """The README's run command (after its install step) starts the app, which answers from an upload."""
    import httpx

    assert block_after("run-command").split(" && ", 1)[1] == "python app.py"
    url, _, _ = extractive_app
    assert httpx.get(url).status_code == 200
    sample = ROOT / "samples" / "acme-q3-2023.pdf"
    report = httpx.post(url + "api/documents", files=[("files", (sample.name, sample.read_bytes()))], timeout=120)
    assert report.json()["files"][0]["status"] == "ingested"
    answer = httpx.post(url + "api/ask", json={"question": "What was the gross margin?"}, timeout=120).json()
    assert "41.5 percent" in answer["answer"] and answer["sources"][0]["file"] == "acme-q3-2023.pdf"


def test_embed_snippets_are_the_ones_the_app_prints():
    from rag_app.web.embed import snippets

    shown = block_after("embed-snippets", "html")
    for snippet in snippets("http://127.0.0.1:7860/").values():
        assert snippet in shown, snippet


def test_mcp_client_example_carries_the_credentials_it_names():
    import base64
    import json

    config = json.loads(re.search(r'```json\n(\{\n  "mcpServers".*?)```', README, re.S).group(1))
    server = config["mcpServers"]["rag_app"]
    assert server["url"] == "http://127.0.0.1:7860/gradio_api/mcp/"
    assert server["headers"]["Authorization"] == "Basic " + base64.b64encode(b"agent:s3cret").decode()
    assert "python app.py --mcp --auth agent:s3cret" in README
