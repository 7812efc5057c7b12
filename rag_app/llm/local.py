"""A local transformers causal LM: quantized on CUDA, streamed, batched for map steps.

Loaded by hub id or directory through ``from_pretrained``, 4-bit nf4 with
bitsandbytes on CUDA by default, unquantized on CPU (bitsandbytes needs CUDA).
The memory it will take is estimated first, so a model that cannot fit is
refused with the setting to change instead of failing halfway with an OOM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_app.llm.backend import ModelInfo, ModelUnavailableError
from rag_app.llm.hub import local_only
from rag_app.llm.memory import GIB, check_fits, count_parameters, estimate

log = logging.getLogger(__name__)
MAX_DEFAULT_CONTEXT = 8192
# (free GiB needed, model): the largest Qwen2.5 Instruct that fits, 4-bit on CUDA.
DEFAULT_GPU_MODELS = [
    (12, "Qwen/Qwen2.5-7B-Instruct"),
    (6, "Qwen/Qwen2.5-3B-Instruct"),
    (3, "Qwen/Qwen2.5-1.5B-Instruct"),
    (0, "Qwen/Qwen2.5-0.5B-Instruct"),
]
DEFAULT_CPU_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"  # larger ones answer too slowly on a CPU
ROLE_NAMES = {"system": "system", "human": "user", "ai": "assistant"}
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


@dataclass
class Usage:
    """Tokens of one generation, counted with the model's own tokenizer."""

    prompt_tokens: int
    completion_tokens: int


def as_chat_dicts(messages: Sequence) -> list[dict[str, str]]:
    """LangChain messages (or role/content dicts) to the dicts chat templates expect."""
    out = []
    for m in messages:
        if isinstance(m, dict):
            out.append({"role": m["role"], "content": m["content"]})
        else:
            out.append({"role": ROLE_NAMES.get(m.type, "user"), "content": str(m.content)})
    return out


def pick_llm_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailableError("RAG_LLM_DEVICE=cuda but no CUDA GPU is visible: use auto or cpu")
    return requested


def default_model_name(device: str) -> str:
    """The Qwen2.5 Instruct size that fits this machine (answers in Chinese and English)."""
    if not device.startswith("cuda"):
        return DEFAULT_CPU_MODEL
    import torch

    free_gib = torch.cuda.mem_get_info()[0] / GIB
    return next(name for need, name in DEFAULT_GPU_MODELS if free_gib >= need)


# Below this many parameters ``auto`` keeps a GPU model in bf16: 4-bit costs a small model the most and saves it
# the least. SmolLM2-135M's real weights on the H200 (bench/results/real-weights-h200.json): bf16 perplexity 9.77
# against 9.77 for float32, top-1 agreement 0.957; 4-bit (torchao int4 g64 / bitsandbytes nf4) 12.96 / 11.59, 0.67 / 0.73,
# while its bf16 weights take 0.27 GB.
SMALL_MODEL_PARAMETERS = 1_000_000_000


def resolve_quantization(requested: str, device: str, parameters: int | None = None) -> tuple[str, list[str]]:
    """The quantization a model loads with: ``requested``, or for ``auto`` none on CPU, 4-bit on CUDA, and none
    (bf16) on CUDA for a model under :data:`SMALL_MODEL_PARAMETERS` parameters (``parameters``: its count)."""
    if not device.startswith("cuda"):
        notes = (
            []
            if requested in ("auto", "none")
            else [f"{requested} needs CUDA (bitsandbytes): loaded unquantized on CPU"]
        )
        return "none", notes + ["running on CPU without quantization"]
    if requested == "auto" and parameters is not None and parameters < SMALL_MODEL_PARAMETERS:
        return "none", [f"bf16 weights: {parameters / 1e6:.0f}M parameters (4-bit loses most on a model under 1B)"]
    return ("4bit" if requested == "auto" else requested), []


class LocalModel:
    """A loaded tokenizer and a generator (the fast path or transformers' generate)."""

    def __init__(self, generator, tokenizer, info: ModelInfo) -> None:
        self.generator = generator
        self.tokenizer = tokenizer
        self.info = info

    @property
    def model(self):
        """The transformers model behind the reference path (None on the fast path)."""
        return getattr(self.generator, "model", None)

    # ----- prompts and counting ----------------------------------------------------------

    def render(self, messages: Sequence) -> str:
        return self.tokenizer.apply_chat_template(as_chat_dicts(messages), add_generation_prompt=True, tokenize=False)

    def encode(self, messages: Sequence) -> list[int]:
        return self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]

    def count_tokens(self, messages: Sequence) -> int:
        """Prompt tokens of ``messages`` including the chat template's markup."""
        return len(self.encode(messages))

    # ----- generation ---------------------------------------------------------------------

    def stream(self, messages: Sequence, max_new_tokens: int, temperature: float = 0.0) -> Iterator[str | Usage]:
        """Yield text pieces as they are generated, then one ``Usage``. Closing the iterator stops generation."""
        pieces = self.generator.stream(self.encode(messages), max_new_tokens, temperature)
        try:
            for piece in pieces:
                yield Usage(*piece) if isinstance(piece, tuple) else piece
        finally:
            pieces.close()

    def generate_batch(
        self, conversations: Sequence[Sequence], max_new_tokens: int, temperature: float = 0.0
    ) -> list[tuple[str, Usage]]:
        """Answer several prompts together (the map steps): one batched call, not one per prompt."""
        prompts = [self.encode(m) for m in conversations]
        return [
            (text, Usage(p, c)) for text, p, c in self.generator.generate_batch(prompts, max_new_tokens, temperature)
        ]


class HFGenerator:
    """The reference path: transformers' ``generate`` (bitsandbytes when quantized)."""

    def __init__(self, model, tokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._lock = threading.Lock()  # one generate at a time on one model

    def stream(self, prompt_ids: list[int], max_new_tokens: int, temperature: float) -> Iterator[str | tuple[int, int]]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return stop.is_set()

        inputs = self._tensors([prompt_ids])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        counter = _TokenCounter()
        kwargs = self._generation_kwargs(max_new_tokens, temperature)
        kwargs.update(streamer=_Tee(streamer, counter), stopping_criteria=StoppingCriteriaList([_Stop()]))
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._generate_into, args=(inputs, kwargs, failure, streamer), daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
            thread.join()
            if failure:
                raise failure[0]
            yield (len(prompt_ids), counter.tokens)
        finally:
            stop.set()
            thread.join(timeout=30)

    def _generate_into(self, inputs, kwargs, failure: list, streamer) -> None:
        try:
            with self._lock:
                self.model.generate(**inputs, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            failure.append(exc)
            streamer.end()

    def generate_batch(
        self, prompts: Sequence[list[int]], max_new_tokens: int, temperature: float
    ) -> list[tuple[str, int, int]]:
        """One left-padded ``generate`` call for all prompts."""
        import torch

        inputs = self._tensors(prompts)
        with self._lock, torch.inference_mode():
            output = self.model.generate(**inputs, **self._generation_kwargs(max_new_tokens, temperature))
        width = inputs["input_ids"].shape[1]
        results = []
        for row, prompt in zip(output, prompts, strict=True):
            generated = row[width:]
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            results.append((text.strip(), len(prompt), _generated_length(generated, self.tokenizer)))
        return results

    def _tensors(self, prompts: Sequence[list[int]]):
        padded = self.tokenizer.pad(
            {"input_ids": [list(p) for p in prompts]}, return_tensors="pt", padding=True, padding_side="left"
        )
        return {k: v.to(self.model.device) for k, v in padded.items()}

    def _generation_kwargs(self, max_new_tokens: int, temperature: float) -> dict:
        kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


class _TokenCounter:
    def __init__(self) -> None:
        self.tokens = 0
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate() first sends the prompt
            self._prompt_seen = True
            return
        self.tokens += int(value.numel())

    def end(self) -> None:
        pass


class _Tee:
    """Feed generated ids to the text streamer and to the token counter."""

    def __init__(self, *streamers) -> None:
        self.streamers = streamers

    def put(self, value) -> None:
        for s in self.streamers:
            s.put(value)

    def end(self) -> None:
        for s in self.streamers:
            s.end()


def _generated_length(ids, tokenizer) -> int:
    """Generated tokens up to and including the first end-of-sequence (padding after it is not output)."""
    eos = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    for i, token in enumerate(ids.tolist()):
        if token in eos:
            return i + 1
    return len(ids)


# ----- loading ---------------------------------------------------------------------------------


def load_local_model(
    name: str | None,
    quantization: str = "auto",
    device: str = "auto",
    adapter: str | None = None,
    context_window: int | None = None,
    engine: str = "auto",
    slots: int = 8,
    gemlite_autotune: bool = False,
    trust_remote_code: bool = False,
) -> LocalModel:
    """Load by hub id or directory; raises ModelUnavailableError or InsufficientMemoryError with guidance.

    ``engine``: "fast" (int4/bf16 static-cache engine, NVIDIA GPUs), "transformers"
    (generate, bitsandbytes when quantized) or "auto" (fast where supported). ``trust_remote_code``
    runs a model's own Python code from its repository (ChatGLM3 and other pre-transformers models).
    """
    started = time.perf_counter()
    device = pick_llm_device(device)
    name = name or default_model_name(device)
    if trust_remote_code:
        log.warning("RAG_LLM_TRUST_REMOTE_CODE is on: %s may run its own Python code from its repository", name)
    config = _load_config(name, trust_remote_code)
    counts = count_parameters(config)  # (linear, other): for the quantization and the memory plan
    quant, notes = resolve_quantization(quantization, device, sum(counts))
    window = context_window or min(getattr(config, "max_position_embeddings", MAX_DEFAULT_CONTEXT), MAX_DEFAULT_CONTEXT)
    use_fast, why = choose_engine(engine, device, quant, config, adapter, gemlite_autotune)
    notes.append(why)
    plan = estimate(config, quant, 2 if device.startswith("cuda") else 4, window * (slots if use_fast else 1), counts)
    check_fits(plan, device, name, quant, window)
    tokenizer = _load_tokenizer(name, notes, trust_remote_code)
    generator, engine_name = None, "transformers"
    if use_fast:
        generator = _try_fast(name, config, tokenizer, quant, device, adapter, window, slots, engine, notes)
        engine_name = "fast" if generator else engine_name
    if generator is None:
        generator = HFGenerator(
            _load_reference_model(name, quant, device, adapter, notes, trust_remote_code), tokenizer
        )
    info = ModelInfo(name, "local", device, quant, window, notes, plan.as_gib(), engine=engine_name)
    if engine_name == "fast":
        info.fast_path_check = generator.engine.check.to_dict()
    if device.startswith("cuda"):
        import torch

        info.memory["allocated_after_load"] = round(torch.cuda.memory_allocated() / GIB, 2)
    info.load_seconds = round(time.perf_counter() - started, 1)
    log.info("loaded %s on %s (%s, %s engine) in %.1f s", name, device, quant, engine_name, info.load_seconds)
    local = LocalModel(generator, tokenizer, info)
    if engine_name == "fast":
        _register_prompt_prefixes(local)
    return local


def choose_engine(
    engine: str, device: str, quant: str, config, adapter: str | None, gemlite_autotune: bool = False
) -> tuple[bool, str]:
    """(use the fast path?, the reason shown in the status line)."""
    if engine == "transformers":
        return False, "engine: transformers generate (requested)"
    from rag_app.fastgen import UnsupportedModelError, fast_path_blocker
    from rag_app.fastgen.model import ArchSpec

    blocker = fast_path_blocker(device, quant, gemlite_autotune)
    if blocker is None:
        try:
            ArchSpec.from_hf(config)
        except UnsupportedModelError as exc:
            blocker = f"the fast path does not support {exc}"
    if blocker is None:
        return True, "engine: fast path (static KV cache, CUDA graphs, continuous batching)"
    if engine == "fast":
        raise ModelUnavailableError(f"RAG_LLM_ENGINE=fast is not possible: {blocker}")
    fallback = "bitsandbytes" if quant in ("4bit", "8bit") else "transformers generate"
    log.warning("using %s: %s", fallback, blocker)
    return False, f"engine: {fallback} ({blocker})"


def _try_fast(name, config, tokenizer, quant, device, adapter, window, slots, engine, notes):
    from rag_app.fastgen import build_fast_generator
    from rag_app.fastgen.loading import resolve_model_dir

    try:
        generator, compile_s = build_fast_generator(
            resolve_model_dir(name), config, tokenizer, quant, device, Path(adapter) if adapter else None, window, slots
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the fast path falls back in auto mode
        if engine == "fast":
            raise ModelUnavailableError(f"the fast path failed to load {name}: {_first_line(exc)}") from exc
        log.warning("fast path failed (%s); falling back to transformers", _first_line(exc))
        notes[:] = [n for n in notes if not n.startswith("engine:")]
        notes.append(f"engine: transformers (the fast path failed: {_first_line(exc)})")
        return None
    notes.append(f"fast path compiled and captured in {compile_s:.1f} s ({slots} batch slots)")
    check = generator.engine.check
    if check.verdict == "disagreed":
        notes.append(f"fast path self-check failed: {check.reason}; decoding eagerly (correct, slower)")
    elif check.verdict == "agreed":
        notes.append(f"fast path self-check passed: {check.reason}")
    return generator


def _register_prompt_prefixes(local: LocalModel) -> None:
    """Cache the KV of each language's system prompt, shared by every request."""
    from rag_app.prompts import LANGUAGES, load_prompts

    for language in LANGUAGES:
        system = [{"role": "system", "content": load_prompts(language).system}]
        prefix = local.tokenizer.apply_chat_template(system, tokenize=False)
        ids = local.tokenizer(prefix, add_special_tokens=False)["input_ids"]
        full = local.encode([*system, {"role": "user", "content": "?"}])
        if full[: len(ids)] == ids:
            local.generator.engine.add_prefix(ids)


def _load_reference_model(
    name: str, quant: str, device: str, adapter: str | None, notes: list[str], trust_remote_code: bool = False
):
    model = _load_weights(name, quant, device, trust_remote_code)
    if adapter:
        model = _apply_adapter(model, adapter)
        notes.append(f"adapter {adapter}")
    return model.eval()


def _load_config(name: str, trust_remote_code: bool = False):
    from transformers import AutoConfig

    path_like = name.startswith(("/", ".", "~")) or Path(name).expanduser().is_dir()
    offline = not path_like and local_only(name)
    try:
        return AutoConfig.from_pretrained(name, local_files_only=local_only(name), trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - offline, missing, not a model
        if "trust_remote_code" in str(exc) and not trust_remote_code:
            raise ModelUnavailableError(
                f"{name!r} needs its own Python code from its repository, which rag_app does not run unless "
                "asked: set RAG_LLM_TRUST_REMOTE_CODE=true if you trust it, or use a model transformers loads "
                "natively (for GLM: THUDM/glm-4-9b-chat-hf)"
            ) from exc
        if offline:
            raise ModelUnavailableError(
                f"the model hub is unreachable and {name!r} is not in the local cache"  # the hub said how, once
            ) from exc
        raise ModelUnavailableError(
            f"cannot load the answer model {name!r}: {_first_line(exc)}. Set RAG_LLM_MODEL to a local model "
            "directory or GGUF file (or a hub id, with the hub reachable once), or RAG_LLM_ENDPOINT to an "
            "OpenAI-compatible server (vLLM, llama.cpp, Ollama)"
        ) from exc


def _load_weights(name: str, quant: str, device: str, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"dtype": torch.bfloat16 if device.startswith("cuda") else torch.float32}
    if quant in ("4bit", "8bit"):
        kwargs["quantization_config"] = _bnb_config(quant)
        kwargs["device_map"] = {"": device if ":" in device else f"{device}:0"}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, local_files_only=local_only(name), trust_remote_code=trust_remote_code, **kwargs
        )
    except ImportError as exc:
        raise ModelUnavailableError(f"{quant} loading needs bitsandbytes: pip install bitsandbytes ({exc})") from exc
    except (ValueError, OSError) as exc:  # no weights, an architecture transformers does not know
        raise ModelUnavailableError(f"cannot load the weights of {name!r}: {_first_line(exc)}") from exc
    return model if quant in ("4bit", "8bit") else model.to(device)


def _bnb_config(quant: str):
    import torch
    from transformers import BitsAndBytesConfig

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def _apply_adapter(model, adapter: str):
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelUnavailableError("RAG_LLM_ADAPTER needs peft: pip install peft") from exc
    try:
        return PeftModel.from_pretrained(model, adapter)
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailableError(f"cannot apply the adapter {adapter}: {_first_line(exc)}") from exc


def _load_tokenizer(name: str, notes: list[str], trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        name, local_files_only=local_only(name), trust_remote_code=trust_remote_code
    )
    tokenizer.padding_side = "left"  # batched generation continues from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = FALLBACK_TEMPLATE
        notes.append("the tokenizer has no chat template: using a plain one (is this a base model?)")
    return tokenizer


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
