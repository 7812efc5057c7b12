"""The generation paths of bench/generation.py, one adapter each, and the reference they are scored against.

Each adapter loads its model, warms up every shape it will be timed on (compiles happen there, not
in a timed call), and offers three timed operations over token ids: ``stream`` (one prompt, time to
first token and decode rate), ``batch`` (several prompts started together) and ``chats`` (several
prompts as concurrent users; for transformers' static ``generate`` that is one batched call). Every
operation returns the generated ids, which ``score`` compares with a float32 reference model holding
the same weights, dequantized (teacher forcing: the reference's argmax on the path's own prefix).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import torch

GIB = 1024**3


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class FastPath:
    """rag_app's engine, loaded through the normal loading code (load_local_model, engine="fast")."""

    name = "fast_int4"

    def __init__(self, model_dir: Path, device: str, context: int, local=None) -> None:
        from rag_app.llm.local import load_local_model

        self.device = device
        self.local = local or load_local_model(
            str(model_dir), "4bit", device=device, engine="fast", context_window=context
        )  # int4 whatever the model's size (auto keeps one under 1B in bf16)
        self.engine = self.local.generator.engine
        self.info = self.local.info

    def describe(self) -> dict:
        return {
            "engine": self.info.engine, "load_s": self.info.load_seconds, "compile_s": round(self.engine.compile_seconds, 1),
            "self_check": self.info.fast_path_check, "kv_cache_gib": round(self.engine.model.cache.nbytes() / GIB, 2),
        }  # fmt: skip

    def warmup(self, shapes: list[tuple[int, int, int]]) -> None:
        for rows, length, new in shapes:
            self.batch([[5] * length] * rows, min(new, 4))

    def stream(self, ids: list[int], new: int) -> tuple[list[int], float, float]:
        started = time.perf_counter()
        request = self.engine.submit(ids, new, 0.0, ())
        stamps, tokens = [], []
        for token in request:
            tokens.append(token)
            stamps.append(time.perf_counter())
        return tokens, stamps[0] - started, (len(tokens) - 1) / max(stamps[-1] - stamps[0], 1e-9)

    def batch(self, prompts: list[list[int]], new: int) -> list[list[int]]:
        return self.engine.generate(prompts, new)

    def chats(self, prompts: list[list[int]], new: int) -> tuple[list[list[int]], list[float]]:
        """Each prompt streamed from its own thread, as separate users of the web page."""
        out: list = [None] * len(prompts)

        def chat(i: int) -> None:
            tokens, _, rate = self.stream(prompts[i], new)
            out[i] = (tokens, rate)

        threads = [threading.Thread(target=chat, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [o[0] for o in out], [o[1] for o in out]

    def dequantized(self) -> str:
        return "rag_int4" if self.info.quantization == "4bit" else "bf16"

    def close(self) -> None:
        self.engine.close()


class _Timing:
    """A streamer for ``generate`` that records when each new token arrives (batch 1)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.tokens: list[int] = []
        self._prompt = True

    def put(self, value) -> None:
        if self._prompt:
            self._prompt = False
            return
        self.stamps.append(time.perf_counter())
        self.tokens += value.reshape(-1).tolist()

    def end(self) -> None:
        pass


class HFPath:
    """transformers' ``generate``: bf16 or torchao int4 with a static cache (which generate compiles),
    or bitsandbytes nf4 as rag_app loads it (the dynamic cache, no compile)."""

    def __init__(self, name: str, model_dir: Path, device: str) -> None:
        from transformers import AutoTokenizer

        self.name, self.device = name, device
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.pad = self.tokenizer.pad_token_id or 0
        self.static = name != "bnb_nf4"
        self.model = self._load(model_dir)
        self.model.generation_config.eos_token_id = None  # fixed-length generation
        self.load_s = round(time.perf_counter() - started, 1)
        self.compile_s = 0.0

    def _load(self, model_dir: Path):
        from transformers import AutoModelForCausalLM

        if self.name == "bnb_nf4":
            from rag_app.llm.local import load_local_model

            return load_local_model(str(model_dir), "4bit", device=self.device, engine="transformers").model
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        if self.name == "torchao_int4":
            from torchao.quantization import Int4WeightOnlyConfig, quantize_

            quantize_(model, Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"))
        return model

    def describe(self) -> dict:
        return {
            "engine": "transformers",
            "load_s": self.load_s,
            "compile_s": self.compile_s,
            "static_cache": self.static,
        }

    def warmup(self, shapes: list[tuple[int, int, int]]) -> None:
        """Largest cache length first (a static cache keeps the longest length, so no later recompile)."""
        started = time.perf_counter()
        for rows, length, new in shapes:
            self._generate([[5] * length] * rows, new)
        self.compile_s = round(time.perf_counter() - started, 1)

    def _generate(self, prompts: list[list[int]], new: int, streamer=None) -> list[list[int]]:
        width = max(map(len, prompts))
        ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        kwargs = {"cache_implementation": "static"} if self.static else {}
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
                pad_token_id=self.pad, streamer=streamer, **kwargs,
            )  # fmt: skip
        return out[:, width:].tolist()

    def stream(self, ids: list[int], new: int) -> tuple[list[int], float, float]:
        timing = _Timing()
        started = time.perf_counter()
        tokens = self._generate([ids], new, timing)[0]
        stamps = timing.stamps
        return tokens, stamps[0] - started, (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)

    def batch(self, prompts: list[list[int]], new: int) -> list[list[int]]:
        return self._generate(prompts, new)

    def chats(self, prompts: list[list[int]], new: int) -> tuple[list[list[int]], list[float]]:
        """All chats in one batched ``generate`` (they start together here, so a static batch serves them)."""
        started = time.perf_counter()
        tokens = self._generate(prompts, new)
        rate = new / (time.perf_counter() - started)
        return tokens, [rate] * len(prompts)

    def dequantized(self) -> str:
        return "bf16" if self.name == "bf16_static" else self.name

    def close(self) -> None:
        pass


class ContinuousBatchingPath(HFPath):
    """transformers' own continuous batching (``generate_batch``, paged attention), bf16: the 8 chats only.

    Its paged cache takes most of the GPU memory that is free when it starts, so it starts in its own
    turn (not beside the other paths' loading), is warmed up by the same call untimed, and is released
    before scoring. A second ``generate_batch`` on a persistent manager never returned (transformers
    5.17 on the H200, 5.23 on CPU), so each call starts its own manager: the timed call includes that."""

    _warm = False

    def warmup(self, shapes: list[tuple[int, int, int]]) -> None:
        pass

    def release(self) -> None:
        destroy = getattr(self.model, "destroy_cached_continuous_batching_manager", None)
        if destroy is not None:
            destroy()
        torch.cuda.empty_cache()

    def chats(self, prompts: list[list[int]], new: int) -> tuple[list[list[int]], list[float]]:
        import inspect

        from transformers import GenerationConfig

        config = GenerationConfig(max_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=self.pad)
        optional = {"progress_bar": False, "persistent_manager": False}
        accepted = inspect.signature(self.model.generate_batch).parameters
        kwargs = {k: v for k, v in optional.items() if k in accepted}
        if not self._warm:
            started = time.perf_counter()
            self.model.generate_batch(inputs=prompts, generation_config=config, **kwargs)
            self.compile_s, self._warm = round(time.perf_counter() - started, 1), True
        started = time.perf_counter()
        outputs = self.model.generate_batch(inputs=prompts, generation_config=config, **kwargs)
        seconds = time.perf_counter() - started
        by_prompt = {tuple(o.prompt_ids): list(o.generated_tokens) for o in outputs.values()}
        tokens = [by_prompt[tuple(p)] for p in prompts]
        return tokens, [len(t) / seconds for t in tokens]

    def stream(self, ids, new):
        raise NotImplementedError("continuous batching is measured on the 8 chats only")

    def batch(self, prompts, new):
        raise NotImplementedError("continuous batching is measured on the 8 chats only")

    def dequantized(self) -> str:
        return "bf16"


# ----- the reference ------------------------------------------------------------------------------


def reference_model(model_dir: Path, scheme: str, path, device: str):
    """transformers' model in float32 with the weights ``path`` computes with, dequantized."""
    from transformers import AutoModelForCausalLM

    from rag_app.fastgen.quant import (
        dequantize_int4,
        dequantize_int8_rows,
        group_size_for,
        quantize_int4,
        quantize_int8_rows,
    )

    placement = {"device_map": device} if device.startswith("cuda") else {}
    reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **placement).to(device).eval()
    if scheme == "rag_int4":  # what rag_app.fastgen.loading builds: int4 per 128 inputs, int8 rows in the head
        for module in reference.modules():
            if isinstance(module, torch.nn.Linear) and module is not reference.lm_head:
                codes, scales, zeros = quantize_int4(module.weight.data, group_size_for(module.in_features))
                module.weight.data = dequantize_int4(codes, scales, zeros, torch.float32)
        if device.startswith("cuda"):  # the fast path keeps the head in int8 on the GPU only
            codes, scales = quantize_int8_rows(reference.lm_head.weight.data)
            reference.lm_head.weight.data = dequantize_int8_rows(codes, scales, torch.float32)
    elif scheme in ("bnb_nf4", "torchao_int4"):
        quantized = dict(path.model.named_modules())
        for name, module in reference.named_modules():
            source = quantized.get(name)
            if isinstance(module, torch.nn.Linear) and source is not None:
                module.weight.data = _dequantize(source).float().reshape(module.weight.shape)
    return reference


def _dequantize(module) -> torch.Tensor:
    weight = module.weight
    if type(weight).__name__ == "Params4bit":
        import bitsandbytes.functional as bnbf

        return bnbf.dequantize_4bit(weight.data, weight.quant_state)
    if hasattr(weight, "dequantize") and type(weight) not in (torch.Tensor, torch.nn.Parameter):
        try:
            return weight.dequantize()
        except Exception:  # noqa: BLE001 - fall back to reading the layer through its own kernel
            pass
    if type(weight) in (torch.Tensor, torch.nn.Parameter):
        return weight.data
    # read the weight through the layer's own kernel: identity @ W^T (no bias) is W^T, as the kernel sees it
    eye = torch.eye(module.in_features, dtype=torch.bfloat16, device=weight.device)
    with torch.inference_mode():
        return torch.nn.functional.linear(eye, weight).t()


@torch.inference_mode()
def score(reference, runs: list[tuple[list[int], list[int]]], device: str) -> dict:
    """Top-1 agreement of the generated tokens with the reference's argmax on the same prefix (over all tokens,
    and outside ties: bench/agreement.py), the largest log-probability the path's choices lose against the
    reference's (nats), and how peaked the reference is there (median gap between its top two log-probabilities)."""
    from bench.agreement import compare_choices, summarize

    parts = []
    for prompt, generated in runs:
        if not generated:
            continue
        ids = torch.tensor([prompt + generated], device=device)
        logits = reference(ids, logits_to_keep=len(generated) + 1).logits[0, :-1].float()
        parts.append(compare_choices(torch.log_softmax(logits, -1), torch.tensor(generated, device=device)))
    return summarize(parts)
