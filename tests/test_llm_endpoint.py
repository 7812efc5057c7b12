"""An OpenAI-compatible endpoint as the answer model, against a real HTTP server with streaming."""

import pytest
from openai_stub import StubServer
from test_chains import TEXTS, context, sources

from rag_app.answering.events import TokenEvent
from rag_app.answering.strategies import STRATEGIES
from rag_app.llm import load_chat_backend
from rag_app.settings import Settings


def reply_for(messages) -> str:
    prompt = messages[-1]["content"]
    if "Score: <number>" in prompt:
        return (
            "Gross margin was 41.5 percent [2]\nScore: 90" if "41.5" in prompt.split("Question")[0] else "No.\nScore: 5"
        )
    if "NOTHING RELEVANT" in prompt:
        return "Gross margin was 41.5 percent." if "41.5" in prompt.split("Question")[0] else "NOTHING RELEVANT"
    return "Gross margin was 41.5 percent [2]."


def endpoint_backend(server, clean_env=None):
    settings = Settings(_env_file=None, llm_endpoint=server.url)
    backend = load_chat_backend(settings).backend
    return backend


def test_endpoint_model_window_streaming_and_usage(clean_env):
    with StubServer(reply_for) as server:
        backend = endpoint_backend(server)
        assert (backend.info.name, backend.info.backend, backend.context_window) == ("stub-model", "endpoint", 2048)
        ctx = context(backend)
        events = list(STRATEGIES["stuff"](ctx))
        tokens = [e.text for e in events if isinstance(e, TokenEvent)]
        assert len(tokens) > 3 and "".join(tokens).strip() == "Gross margin was 41.5 percent [2]."
        assert ctx.tally.prompt == 11 and ctx.tally.completion == 6
        request = server.requests[-1]
        assert request["stream"] is True and request["temperature"] == 0.0 and request["max_tokens"] == 64


def test_endpoint_map_steps_run_concurrently(clean_env):
    with StubServer(reply_for, delay=0.5) as server:
        ctx = context(endpoint_backend(server))
        text = "".join(e.text for e in STRATEGIES["map_rerank"](ctx) if isinstance(e, TokenEvent))
        assert text == "Gross margin was 41.5 percent [2]"
        assert server.max_in_flight == len(TEXTS), "map requests were sent one after another"
        assert ctx.scores == {1: 5, 2: 90, 3: 5, 4: 5}


def test_unreachable_endpoint_is_a_clear_error(clean_env):
    import pytest

    from rag_app.llm.backend import ModelUnavailableError

    settings = Settings(_env_file=None, llm_endpoint="http://127.0.0.1:9/v1")
    with pytest.raises(ModelUnavailableError, match="cannot reach the model endpoint http://127.0.0.1:9/v1"):
        load_chat_backend(settings)
    assert sources()


RACE = """
import sys, threading
from openai._models import construct_type
from openai.types.chat import ChatCompletion
import time
import pydantic._internal._model_construction as construction
from rag_app.llm.endpoint import build_response_schemas

# Widen the race's window as a slow, busy machine does: each schema build takes 5 ms more (sleeping lets
# other threads run), so threads that meet a half-built class meet it every time, not by luck.
complete = construction.complete_model_class
def slow_complete(*args, **kwargs):
    time.sleep(0.005)
    return complete(*args, **kwargs)
construction.complete_model_class = slow_complete

if sys.argv[1] == "built":
    build_response_schemas()
sys.setswitchinterval(1e-6)  # switch threads as often as possible, as a loaded machine does
reply = {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
start, errors = threading.Barrier(16), []

def parse():
    start.wait()
    try:
        construct_type(type_=ChatCompletion, value=reply)
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=parse) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(errors), errors[:1])
"""


@pytest.mark.slow  # starts processes of its own and waits on them
def test_concurrent_first_replies_parse_once_schemas_are_built():
    """CI failed once: the first map step's concurrent replies raced pydantic's deferred schema
    build inside openai. Loading the backend builds the schemas first; without that, this
    interpreter (threads switching every microsecond) fails most of its 16 parses."""
    import subprocess
    import sys

    def failures(mode):
        run = subprocess.run([sys.executable, "-c", RACE, mode], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert failures("built").startswith("0 []")
    # The control: without the early build the race shows. Left to thread timing it missed in 2 of 3 suite runs
    # (2026-11-30) and then in 5 tries on CI (2026-12-03); with the build slowed it shows every time.
    assert not failures("deferred").startswith("0 ")
