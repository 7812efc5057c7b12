"""One settings object: typed choices with clear errors, env and .env, flags on top, the README table."""

import os

import pytest
from pydantic import ValidationError

from rag_app.answering.strategies import STRATEGIES
from rag_app.settings import STRATEGY_NAMES, Settings


@pytest.mark.parametrize(
    ("field", "value"),
    [("llm_backend", "gpt"), ("llm_quantization", "3bit"), ("embedding_precision", "fp8"), ("retrieval", "bm25"),
     ("pdf_parser", "mupdf"), ("llm_engine", "vllm"), ("strategy", "magic"), ("embedding_device", "tpu")],
)  # fmt: skip
def test_unknown_choices_are_refused_with_the_allowed_ones(clean_env, field, value):
    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None, **{field: value})
    assert "Input should be" in str(error.value)


def test_environment_and_env_file(clean_env, monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("RAG_TOP_K=7\nRAG_RETRIEVAL=dense\n", encoding="utf-8")
    monkeypatch.setenv("RAG_TOP_K", "9")
    settings = Settings(_env_file=env_file)
    assert settings.top_k == 9 and settings.retrieval == "dense"  # the environment wins over .env
    assert Settings(_env_file=None, log_level="info").log_level == "INFO"


def test_validation_of_related_fields(clean_env):
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(_env_file=None, chunk_size=64, chunk_overlap=64)
    with pytest.raises(ValidationError, match="invalid collection name"):
        Settings(_env_file=None, collection="../x")
    assert Settings(_env_file=None, root_path="/").root_path is None


def test_strategy_names_and_strategy_functions_agree():
    assert set(STRATEGY_NAMES) == set(STRATEGIES) | {"auto"}


def test_gemlite_autotune_is_a_setting_not_an_environment_read(clean_env, monkeypatch):
    monkeypatch.setenv("RAG_GEMLITE_AUTOTUNE", "true")
    assert Settings(_env_file=None).gemlite_autotune is True


@pytest.mark.slow  # starts processes of its own and waits on them
def test_torch_threads_sleep_while_waiting_unless_the_user_says_otherwise():
    """OMP_WAIT_POLICY is set by importing rag_app, before torch is, and an explicit value is kept."""
    import subprocess
    import sys

    probe = "import os, rag_app, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}

    def policy(**extra: str) -> str:
        done = subprocess.run([sys.executable, "-c", probe], env={**env, **extra}, capture_output=True, text=True)
        return done.stdout.strip()

    assert policy() == "PASSIVE" and policy(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
