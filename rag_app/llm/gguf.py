"""A GGUF chat model in this process, on the CPU: llama.cpp through xllamacpp.

xllamacpp was chosen by measurement (a prebuilt wheel installed in seconds, where llama-cpp-python compiles
llama.cpp for about 20 minutes; the same engine and speed; thread-safe, with continuous batching across
slots). How it is driven, and why:

* ``xllamacpp.Server`` runs llama.cpp's server loop in a thread of this process. Generation is a direct call,
  ``handle_chat_completions``, which applies the file's chat template, stops at the model's end-of-generation
  tokens and calls back once per piece; returning True from the callback ends the request at that token.
* The engine always opens an HTTP listener too. It is bound to 127.0.0.1 on a random port, with its web UI
  off, and answers only requests carrying a random API key that only this object knows. Rendering the
  template and tokenizing have no Python entry point, so they go to that listener: the same template engine
  and tokenizer as generation.
* Each of ``slots`` concurrent requests has its own context window of KV cache (not one shared pool: when a
  shared pool overflows, every request in it fails). Map steps run as concurrent requests, batched by the engine.
* Destroying a Server whose loop has not started yet can hang forever, so loading ends with a 1-token request.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rag_app.llm.backend import GenerationError, ModelInfo, ModelUnavailableError
from rag_app.llm.gguf_file import GgufHeader, read_header
from rag_app.llm.local import MAX_DEFAULT_CONTEXT, Usage, as_chat_dicts
from rag_app.llm.memory import GIB, MemoryEstimate, check_fits
from rag_app.settings import Settings

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 60
TOP_LOGPROBS = 20  # first-token candidates read for a yes/no score
ABSENT_LOGPROB = -30.0  # log probability of yes or no when neither is among them
YES_NO = {"yes": "yes", "是": "yes", "no": "no", "否": "no", "不": "no", "不是": "no"}
_END = object()


def default_threads() -> int:
    """One thread less than the cores this process may use, at least one: the rest embed the question and
    serve the page. On a shared 2-core machine one thread generated faster than two (bench/gguf.py)."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


class GgufModel:
    """A loaded GGUF model with the interface of :class:`rag_app.llm.local.LocalModel`."""

    def __init__(self, server, key: str, slots: int, info: ModelInfo) -> None:
        self._server = server
        self._key = key
        self._base = server.listening_address  # http://127.0.0.1:<random port>
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP proxy
        self.slots = slots
        self.info = info

    # ----- prompts and counting ----------------------------------------------------------

    def engine_get(self, path: str) -> dict:
        """GET an endpoint of the engine's keyed listener (``/props``, ``/slots``)."""
        return self._call(urllib.request.Request(self._base + path))

    def _post(self, path: str, body: dict) -> dict:
        return self._call(urllib.request.Request(self._base + path, data=json.dumps(body).encode()))

    def _call(self, request: urllib.request.Request) -> dict:
        request.add_header("Authorization", f"Bearer {self._key}")
        request.add_header("Content-Type", "application/json")
        with self._opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
            return json.loads(response.read())

    def render(self, messages: Sequence) -> str:
        """The prompt the file's chat template makes, ending with the assistant turn's opening."""
        return self._post("/apply-template", {"messages": as_chat_dicts(messages)})["prompt"]

    def count_tokens(self, messages: Sequence) -> int:
        """Prompt tokens of ``messages`` with the template's markup (equals the engine's prompt usage)."""
        body = {"content": self.render(messages), "add_special": True, "parse_special": True}
        return len(self._post("/tokenize", body)["tokens"])

    # ----- generation ---------------------------------------------------------------------

    def stream(self, messages: Sequence, max_new_tokens: int, temperature: float = 0.0) -> Iterator[str | Usage]:
        """Yield text pieces as they are generated, then one ``Usage``. Closing the iterator stops generation
        at the engine's next token, without waiting for it."""
        request = _request(messages, max_new_tokens, temperature)
        request.update(stream=True, stream_options={"include_usage": True})
        running = _StreamingRequest(self._server, request)
        try:
            yield from running.pieces()
        finally:
            running.cancel.set()

    def generate(self, messages: Sequence, max_new_tokens: int, temperature: float = 0.0) -> tuple[str, Usage]:
        reply = self._server.handle_chat_completions(_request(messages, max_new_tokens, temperature))
        if "choices" not in reply:
            raise GenerationError(_error_message(reply))
        usage = reply["usage"]
        return reply["choices"][0]["message"]["content"].strip(), Usage(
            usage["prompt_tokens"], usage["completion_tokens"]
        )

    def generate_batch(
        self, conversations: Sequence[Sequence], max_new_tokens: int, temperature: float = 0.0
    ) -> list[tuple[str, Usage]]:
        """Answer several prompts together (the map steps): concurrent requests the engine decodes as one batch."""
        workers = max(1, min(self.slots, len(conversations)))
        with ThreadPoolExecutor(workers, thread_name_prefix="gguf-batch") as pool:
            return list(pool.map(lambda m: self.generate(m, max_new_tokens, temperature), conversations))

    def yes_no_scores(self, conversations: Sequence[Sequence]) -> list[float]:
        """How strongly the model answers each conversation with yes: log P(yes) - log P(no) of its first
        token, read from the engine's top candidates (yes/no in any case, 是/否/不; a word absent from them
        counts as ABSENT_LOGPROB). Concurrent requests, batched by the engine."""
        workers = max(1, min(self.slots, len(conversations)))
        with ThreadPoolExecutor(workers, thread_name_prefix="gguf-yes-no") as pool:
            return list(pool.map(self._yes_no, conversations))

    def _yes_no(self, messages: Sequence) -> float:
        request = {**_request(messages, 1, 0.0), "logprobs": True, "top_logprobs": TOP_LOGPROBS}
        reply = self._server.handle_chat_completions(request)
        if "choices" not in reply:
            raise GenerationError(_error_message(reply))
        candidates = (reply["choices"][0].get("logprobs") or {}).get("content") or [{}]
        best: dict[str, float] = {}
        for candidate in candidates[0].get("top_logprobs", []):
            word = YES_NO.get(candidate["token"].strip().lower())
            if word:
                best[word] = max(best.get(word, ABSENT_LOGPROB), candidate["logprob"])
        return best.get("yes", ABSENT_LOGPROB) - best.get("no", ABSENT_LOGPROB)

    def close(self) -> None:
        """Stop the engine and its listener (also done when the model is garbage-collected)."""
        self._server = None


def _request(messages: Sequence, max_new_tokens: int, temperature: float) -> dict:
    # temperature 0 is greedy; the engine stops at the vocabulary's end-of-generation tokens
    return {"messages": as_chat_dicts(messages), "max_tokens": max_new_tokens, "temperature": max(temperature, 0.0)}


def _error_message(reply: dict) -> str:
    error = reply.get("error", reply)
    return f"the GGUF model refused the request: {error.get('message', error) if isinstance(error, dict) else error}"


class _StreamingRequest:
    """One streamed request: the engine call runs in a thread of its own and queues its pieces."""

    def __init__(self, server, request: dict) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(server, request), daemon=True, name="gguf-stream")
        self.thread.start()

    def _run(self, server, request: dict) -> None:
        try:
            server.handle_chat_completions(request, self._on_chunk)
        except Exception as exc:  # noqa: BLE001 - handed to the consuming thread
            self.queue.put(GenerationError(f"the GGUF model failed: {exc}"))
        finally:
            self.queue.put(_END)

    def _on_chunk(self, chunk: dict) -> bool:
        """Called by the engine for each piece; returning True ends the request (its slot is freed)."""
        if "error" in chunk:
            self.queue.put(GenerationError(_error_message(chunk)))
            return True
        for choice in chunk.get("choices", []):
            piece = choice.get("delta", {}).get("content")
            if piece:
                self.queue.put(piece)
        if chunk.get("usage"):
            self.queue.put(Usage(chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"]))
        return self.cancel.is_set()

    def pieces(self) -> Iterator[str | Usage]:
        while (item := self.queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item


# ----- loading ---------------------------------------------------------------------------------


def load_gguf_model(path: Path, settings: Settings) -> GgufModel:
    """Load a GGUF file on the CPU; raises ModelUnavailableError or InsufficientMemoryError with guidance."""
    started = time.perf_counter()
    _refuse_what_does_not_apply(settings)
    header = read_header(path)
    wanted = settings.llm_context_window or MAX_DEFAULT_CONTEXT
    window, slots = min(wanted, header.context_length), settings.llm_batch_slots
    threads = settings.llm_threads or default_threads()
    plan = MemoryEstimate(path.stat().st_size, header.kv_bytes_per_token * window * slots)
    hint = f"fewer RAG_LLM_BATCH_SLOTS ({slots} now, a KV cache each), a smaller GGUF as RAG_LLM_MODEL"
    check_fits(plan, "cpu", path.name, "gguf", window * slots, hint)
    key = secrets.token_urlsafe(24)
    model = GgufModel(_start_engine(path, header, window, slots, threads, key), key, slots, ModelInfo("", "gguf"))
    props = model.engine_get("/props")  # what the engine made of the file
    model.info = ModelInfo(
        name=str(path),
        backend="gguf",
        device="cpu",
        quantization=props.get("model_ftype", "gguf"),
        context_window=int(props["default_generation_settings"]["n_ctx"]),  # per slot, as the engine runs it
        notes=_notes(header, settings, window, slots, threads),
        memory=plan.as_gib(),
        load_seconds=round(time.perf_counter() - started, 1),
        engine="llama.cpp",
    )
    log.info("loaded %s on the CPU (%s) in %.1f s", path.name, model.info.quantization, model.info.load_seconds)
    return model


def _refuse_what_does_not_apply(settings: Settings) -> None:
    if settings.llm_device == "cuda":
        raise ModelUnavailableError(
            "GGUF models run on the CPU here (the xllamacpp wheel of requirements.txt is built for CPUs): set "
            "RAG_LLM_DEVICE=auto or cpu, or serve the file from a GPU build of llama-server through RAG_LLM_ENDPOINT"
        )
    if settings.llm_engine == "fast":
        raise ModelUnavailableError("RAG_LLM_ENGINE=fast runs transformers models on NVIDIA GPUs, not GGUF files")
    if settings.llm_adapter:
        raise ModelUnavailableError(
            "RAG_LLM_ADAPTER applies to transformers models, not to a GGUF file: merge the adapter into the "
            "model before converting it to GGUF, or unset RAG_LLM_ADAPTER"
        )


def _start_engine(path: Path, header: GgufHeader, window: int, slots: int, threads: int, key: str):
    # idle OpenMP threads sleep instead of spinning: spinning threads starved the others on a shared machine
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when libgomp loads with xllamacpp
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelUnavailableError(
            f"GGUF models need xllamacpp ({exc}): pip install -r requirements.txt; it also needs the "
            "system's OpenMP library (Debian: apt-get install libgomp1)"
        ) from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx, params.n_parallel, params.kv_unified = window * slots, slots, False  # a window per slot
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.fit_params = False  # the window is the one planned and reported, never shrunk behind our back
    params.cache_ram_mib = 0  # no prompt cache in RAM beyond the planned KV cache
    params.verbosity = 0  # errors only
    params.hostnames, params.ui, params.api_keys, params.n_threads_http = ["127.0.0.1"], False, [key], 2
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise ModelUnavailableError(
            f"llama.cpp could not load {path} ({header.architecture} architecture, {path.stat().st_size / GIB:.2f} "
            f"GiB): {exc} The file may be incomplete, or of an architecture xllamacpp {xllamacpp.__version__} "
            "does not know: set RAG_LLM_MODEL to a complete GGUF file"
        ) from exc
    server.handle_completions({"prompt": " ", "max_tokens": 1, "cache_prompt": False})  # see the module docstring
    return server


def _notes(header: GgufHeader, settings: Settings, window: int, slots: int, threads: int) -> list[str]:
    notes = [
        f"GGUF model {header.name!r} ({header.architecture}), run on the CPU by llama.cpp (xllamacpp)",
        f"{threads} CPU thread(s); {slots} slots of {window} tokens each (trained context {header.context_length})",
        "chat template: the file's own"
        if header.chat_template
        else "the file has no chat template: llama.cpp's default",
    ]
    if (settings.llm_context_window or 0) > window:
        notes.append(f"RAG_LLM_CONTEXT_WINDOW capped at the {window} tokens the model was trained with")
    if settings.llm_quantization not in ("auto", "none"):
        notes.append(f"RAG_LLM_QUANTIZATION={settings.llm_quantization} does not apply: the file is quantized already")
    return notes
