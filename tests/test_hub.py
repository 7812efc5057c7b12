"""No network: the hub is found unreachable once, fast, and the user is told once how to use a local model."""

import logging
import socket
import time

import pytest

from rag_app.llm import hub, load_chat_backend
from rag_app.settings import Settings


@pytest.fixture
def fresh_probe(monkeypatch):
    hub.hub_reachable.cache_clear()
    yield monkeypatch
    hub.hub_reachable.cache_clear()


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: what a firewalled hub looks like."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_an_unreachable_hub_is_probed_once_in_about_a_second(fresh_probe, silent_server, caplog):
    fresh_probe.setattr(hub, "offline_by_environment", lambda: False)
    fresh_probe.setattr(hub, "hub_endpoint", lambda: silent_server)
    calls = []
    real_probe = hub.probe
    fresh_probe.setattr(hub, "probe", lambda url: calls.append(url) or real_probe(url))
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="rag_app.llm.hub"):
        assert hub.hub_reachable() is False and hub.hub_reachable() is False
        assert hub.local_only("Qwen/Qwen2.5-0.5B-Instruct")
    assert time.perf_counter() - started < 2 * hub.PROBE_TIMEOUT_S + 0.5 and len(calls) == 1
    warnings = [r.getMessage() for r in caplog.records if "model hub offline" in r.getMessage()]
    assert len(warnings) == 1 and "RAG_LLM_MODEL to a local model directory" in warnings[0]


def test_a_refused_connection_is_unreachable_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.perf_counter()
    assert hub.probe(f"http://127.0.0.1:{port}") is False and time.perf_counter() - started < 1


def test_a_hub_model_without_network_gives_extractive_mode_at_once_and_says_how(
    fresh_probe, silent_server, clean_env, caplog
):
    fresh_probe.setattr(hub, "offline_by_environment", lambda: False)
    fresh_probe.setattr(hub, "hub_endpoint", lambda: silent_server)
    settings = Settings(_env_file=None, llm_model="Qwen/Qwen2.5-0.5B-Instruct-not-cached", llm_device="cpu")
    import transformers.models.auto.configuration_auto  # noqa: F401 - the import's seconds are not the hub's

    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        first, second = load_chat_backend(settings), load_chat_backend(settings)
    assert time.perf_counter() - started < 5
    assert first.extractive and second.extractive
    assert "the model hub is unreachable" in first.reason and "not in the local cache" in first.reason
    assert "Retrying" not in caplog.text and caplog.text.count("model hub offline") == 1
    assert caplog.text.count("RAG_LLM_MODEL to a local model directory") == 1, "how to set a local model, once"
