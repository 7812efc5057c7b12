"""The README and docs/ stay true: every command they show runs (or at least parses), the configuration table
and the headline figures are generated, and CI runs the README's test command."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest
from conftest import ROOT, call_cli, cli_env

from rag_app.settings import settings_table_markdown

README = (ROOT / "README.md").read_text(encoding="utf-8")
USAGE = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
README_LINES = 160  # a newcomer's page: what, two commands, quick start, headline figures, links


def block_after(marker: str, text: str = README, language: str = "bash") -> str:
    match = re.search(rf"<!-- {marker} -->\n```{language}\n(.+?)\n```", text, re.S)
    assert match, f"no {marker} block"
    return match.group(1)


def command_lines(block: str) -> list[list[str]]:
    """Each command of a bash block as argv: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        shlex.split(line, comments=True)
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_readme_is_a_newcomers_page():
    assert len(README.splitlines()) <= README_LINES
    for link in ("docs/usage.md", "docs/architecture.md", "docs/benchmarks.md"):
        assert link in README and (ROOT / link).is_file()


def test_the_readme_names_the_chinese_font_in_its_first_section_and_what_the_figures_assume():
    first_section = README.split("\n## ")[1]  # "The two commands", right after the headline figures
    assert "fonts-noto-cjk" in first_section and "Chinese on Linux" in first_section
    assert "otherwise idle" in first_section  # the test timings' machine state
    assert re.search(r"pages/s on 2 CPU cores with bf16 \(load average [\d.]+\)", README)
    assert "a CPU without bf16 (emulated: torch held to AVX2" in README  # issue 30: the figure for both kinds of CPU


def test_configuration_table_matches_the_settings():
    table = USAGE.split("<!-- settings-table -->\n")[1].split("\n<!-- /settings-table -->")[0]
    assert table == settings_table_markdown()


def test_headline_figures_are_the_ones_the_results_give():
    from bench.report import with_headline

    assert with_headline(README) == README, "run python -m bench.report"


def test_ci_runs_the_readme_test_command():
    command = block_after("test-command")
    assert command.startswith("pip install -r requirements.txt -r requirements-dev.txt")
    assert "python -m pytest" in command
    assert "test-command" in (ROOT / ".ci" / "run").read_text()


def test_run_command_installs_then_runs():
    assert block_after("run-command") == "pip install -r requirements.txt && python app.py"


def test_every_command_line_the_docs_show_parses():
    """Every `python -m rag_app`, `python -m ingest` and `python app.py` line of the README and docs/ names
    flags and subcommands that exist."""
    import app
    from rag_app.cli import build_parser as rag_app_parser
    from rag_app.cli.ingest_command import build_parser as ingest_parser

    parsers = {("python", "-m", "rag_app"): rag_app_parser, ("python", "-m", "ingest"): ingest_parser,
               ("python", "app.py"): app.build_parser}  # fmt: skip
    checked = 0
    for text in (README, USAGE, ARCHITECTURE):
        for block in re.findall(r"```bash\n(.+?)\n```", text, re.S):
            for argv in command_lines(block):
                argv = argv[argv.index("python") :] if "python" in argv else argv  # after `printf ... |`, env vars
                for prefix, parser in parsers.items():
                    if tuple(argv[: len(prefix)]) == prefix:
                        rest = [a for a in argv[len(prefix) :] if a != "|" and not a.startswith("~")]
                        parser().parse_args(rest)
                        checked += 1
    assert checked >= 10


@pytest.mark.slow  # ingests the sample, then asks, searches and summarizes as the quick start does
def test_the_quick_start_commands_run_as_written(tmp_path):
    env = cli_env(tmp_path / "data")
    for argv in command_lines(block_after("quick-start-cli")):
        assert argv[:2] == ["python", "-m"], argv
        result = call_cli(argv[2], *argv[3:], env=env)
        assert result.returncode == 0, (argv, result.stderr[-2000:])
        if argv[3:5] == ["ask", "What was the gross margin?"]:
            assert "41.5" in result.stdout and "acme-q3-2023.pdf" in result.stdout
        if "--json" in argv:
            assert json.loads(result.stdout)["sources"]
        if argv[3:4] == ["--delete"]:
            assert "acme-q3-2023.pdf" in result.stdout


@pytest.mark.slow  # starts `python app.py` as the README says
def test_run_command_serves_the_page_and_the_quick_start_api_answers(extractive_app):
    """The README's run command (after its install step) starts the app, and its API commands answer."""
    import httpx

    assert block_after("run-command").split(" && ", 1)[1] == "python app.py"
    url, _, _ = extractive_app
    assert httpx.get(url).status_code == 200
    address = url.removeprefix("http://").rstrip("/")
    outputs = []
    for line in block_after("quick-start-api").splitlines():
        command = line.replace("localhost:7860", address)
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    upload, answer, streamed = outputs
    assert json.loads(upload)["files"][0]["status"] in ("ingested", "unchanged")
    answer = json.loads(answer)
    assert "41.5 percent" in answer["answer"] and answer["sources"][0]["file"] == "acme-q3-2023.pdf"
    assert "event: sources" in streamed and "event: done" in streamed


def test_embed_snippets_are_the_ones_the_app_prints():
    from rag_app.web.embed import snippets

    shown = block_after("embed-snippets", USAGE, "html")
    for snippet in snippets("http://127.0.0.1:7860/").values():
        assert snippet in shown, snippet


def test_mcp_client_example_carries_the_credentials_it_names():
    import base64

    config = json.loads(re.search(r'```json\n(\{\n  "mcpServers".*?)```', USAGE, re.S).group(1))
    server = config["mcpServers"]["rag_app"]
    assert server["url"] == "http://127.0.0.1:7860/gradio_api/mcp/"
    assert server["headers"]["Authorization"] == "Basic " + base64.b64encode(b"agent:s3cret").decode()
    assert "python app.py --mcp --auth agent:s3cret" in USAGE


def test_relative_links_of_the_docs_lead_to_files():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+://", target):
                assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"
