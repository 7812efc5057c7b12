"""The README stays true: its configuration table and commands match the code and CI."""

import re

from conftest import ROOT

from rag_app.settings import settings_table_markdown

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", README, re.S)
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
    command = block_after("run-command")
    assert command.startswith("pip install -r requirements.txt && ")


def test_run_command_answers_from_the_sample(tmp_path):
    import subprocess

    from conftest import cli_env

    command = block_after("run-command").split(" && ", 1)[1]  # the part after the install
    result = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=cli_env(tmp_path / "data"), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "acme-q3-2023.pdf" in result.stdout and "Gross margin was 41.5 percent" in result.stdout
