"""A generation loop that batches every running request into one decode step (continuous batching).

Requests (a chat's answer, the k prompts of a map step, another user's chat)
are admitted into free cache slots between steps: their prompts are prefilled
together, then each step decodes one token for every active slot in a single
forward pass, compiled and replayed as a CUDA graph. A request that finishes
frees its slot at once, so no chat waits for another to end. The KV cache of a
shared prompt prefix (the system prompt) is computed once and copied into each
slot instead of being prefilled again.

Every tensor a captured CUDA graph reads is owned by the engine for the
graph's lifetime (the step buffers, the attention spans, the cache): a graph
replays raw device addresses, so an input freed after capture would be read
after the caching allocator handed its memory to something else. At load the
compiled step is checked against the eager one (``check_compiled_decode``);
on a disagreement the engine decodes eagerly and says why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from rag_app.fastgen.model import FastTransformer

log = logging.getLogger(__name__)
PREFILL_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
# Decode attention reads the cache up to the smallest of these that covers every active position.
WINDOW_BUCKETS = (512, 1024, 2048, 4096, 8192, 16384, 32768)
_DONE = object()
PROBE_STEPS = 6  # decode steps of the load-time check, per batch size
# The compiled step agrees with the eager one when no logit differs by more than this (bf16, fused kernels),
# or by more than CHECK_NOISE times what two eager runs differ by (split-K kernels add in a varying order).
# Measured on an H200: a 4-layer model with logits up to 28.6, 2.7 for the fixed step and 10.2 for issue 11's;
# Qwen2.5-7B's shape, 0.125 (two eager runs: 0.19, tolerance 1.8).
CHECK_ATOL, CHECK_RTOL, CHECK_NOISE = 0.1, 0.15, 2.0
# Two logits within TIE_GAP are a tie: bf16 rounds a logit between 8 and 16 to a step of 0.0625, so which of two
# such tokens wins depends on the order a kernel adds in. The probe's arbitrary tokens make ties common (a
# peaked 7B's probe: top-1 0.833, every miss a tie); its top-1 agreement is reported outside ties as well.
TIE_GAP = 0.0625
DecodeStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def compile_with_torch(decode: DecodeStep) -> DecodeStep:
    """The default decode compiler: one fused graph (Inductor), later captured as CUDA graphs."""
    return torch.compile(decode, fullgraph=True)


def decode_compiler_for(device: torch.device) -> Callable[[DecodeStep], DecodeStep] | None:
    """How the decode step is compiled on ``device`` (None: it runs eagerly). Tests replace this."""
    return compile_with_torch if device.type == "cuda" else None


@dataclass
class DecodeCheck:
    """The load-time comparison of the compiled decode step with the eager one, on the same probe."""

    verdict: Literal["agreed", "disagreed", "not_compiled"]
    max_abs_diff: float = 0.0  # largest |compiled - eager| over every logit of the probe
    tolerance: float = 0.0
    eager_noise: float = 0.0  # largest |eager - eager| of two runs of the same probe
    top1_agreement: float = 1.0  # share of probe steps whose argmax token is the same
    top1_agreement_outside_ties: float = 1.0  # share of probe rows whose argmax is the same or a tie (TIE_GAP)
    tie_misses: int = 0  # rows whose compiled argmax differs from eager's within TIE_GAP
    steps: int = 0  # decode steps compared (all batch sizes)
    reason: str = ""

    @property
    def agreed(self) -> bool:
        return self.verdict != "disagreed"

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict, "agreed": self.agreed, "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance, "eager_noise": self.eager_noise, "top1_agreement": self.top1_agreement,
            "top1_agreement_outside_ties": self.top1_agreement_outside_ties, "tie_misses": self.tie_misses,
            "steps": self.steps, "reason": self.reason,
        }  # fmt: skip


@dataclass
class GenerationRequest:
    """One prompt being answered; iterate it for generated token ids."""

    prompt: list[int]
    max_new_tokens: int
    temperature: float
    stop_ids: frozenset[int]
    out: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    slot: int = -1
    position: int = 0  # where the next token goes in the cache
    generated: int = 0
    last_token: int = 0
    submitted_at: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None

    def __iter__(self) -> Iterator[int]:
        while (item := self.out.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def cancel(self) -> None:
        self.cancelled.set()


class FastEngine:
    """Owns the model, its slot cache and the background loop that runs it."""

    def __init__(
        self,
        model: FastTransformer,
        slots: int,
        context: int,
        compile_decode: bool = True,
        pad_id: int = 0,
        decode_compiler: Callable[[DecodeStep], DecodeStep] | None = None,
    ) -> None:
        self.model = model
        self.slots = slots
        self.context = context
        self.pad_id = pad_id
        self.device = model.embed.weight.device
        # One spare position: a window never spans the whole cache, so its size stays symbolic when compiled.
        model.allocate_cache(slots, context + 1)
        self._prefixes: dict[tuple[int, ...], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.decode_compiler = decode_compiler or decode_compiler_for(self.device)
        self.compile_decode = compile_decode and self.decode_compiler is not None
        self.check = DecodeCheck("not_compiled", reason="the decode step runs eagerly")
        self._windows = [w for w in WINDOW_BUCKETS if w < context] + [context]
        self._compiled: dict[int, DecodeStep] = {}
        self._decode: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self._graph_logits: dict[tuple[int, int], torch.Tensor] = {}
        # arange(W) for each attention window W: read by the captured graphs, so owned as long as they are
        self._spans: dict[int, torch.Tensor] = {}
        self._static: dict[int, dict] = {}
        self.stats = {"steps_s": 0.0, "gpu_wait_s": 0.0}
        self._pending: deque[GenerationRequest] = deque()
        self._active: dict[int, GenerationRequest] = {}
        self._wake = threading.Condition()
        self._closed = False
        self.compile_seconds = 0.0
        self.steps = 0
        self._thread = threading.Thread(target=self._run, name="rag_app-fastgen", daemon=True)
        self._thread.start()

    # ----- public -------------------------------------------------------------------------

    def submit(
        self, prompt: Sequence[int], max_new_tokens: int, temperature: float = 0.0, stop_ids=()
    ) -> GenerationRequest:
        if len(prompt) + max_new_tokens > self.context:
            raise ValueError(
                f"prompt ({len(prompt)}) plus {max_new_tokens} new tokens exceed the {self.context}-token cache"
            )
        request = GenerationRequest(list(prompt), max_new_tokens, temperature, frozenset(stop_ids))
        with self._wake:
            if self._closed:
                raise RuntimeError("the generation engine is closed")
            self._pending.append(request)
            self._wake.notify()
        return request

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 0.0, stop_ids=()
    ) -> list[list[int]]:
        """Submit all prompts at once (they share decode steps) and wait for every result."""
        requests = [self.submit(p, max_new_tokens, temperature, stop_ids) for p in prompts]
        return [list(r) for r in requests]

    def add_prefix(self, ids: Sequence[int]) -> None:
        """Cache the KV of a prompt prefix that many requests start with (a system prompt)."""
        ids = tuple(ids)
        if not ids or ids in self._prefixes:
            return
        with self._wake:  # the loop is idle between steps while we hold the lock
            tokens = torch.tensor([ids], device=self.device)
            slot = torch.tensor([0], device=self.device)
            with torch.inference_mode():
                self.model.prefill(tokens, 0, slot, torch.tensor([len(ids)], device=self.device))
                cache = self.model.cache
                keys = [k[0, :, : len(ids)].clone() for k in cache.k]
                values = [v[0, :, : len(ids)].clone() for v in cache.v]
                self._prefixes[ids] = (keys, values)

    def warmup(self) -> float:
        """Compile and capture the decode step for every slot count, check it against the eager
        step (``self.check``; eager decoding on a disagreement), and warm the prefill kernels.

        Call before serving (the cache holds no request yet). Returns the seconds it took.
        """
        started = time.perf_counter()
        with self._wake, torch.inference_mode():
            if self.compile_decode:
                self._capture_all()
                self.check = self.check_compiled_decode()
                if not self.check.agreed:
                    self._drop_compiled()
        for rows in (4, 100):  # few rows: the GEMV kernels; many: dequantize + cuBLAS
            self.generate([[self.pad_id] * rows], max_new_tokens=3)
        for size in self._decode_sizes():
            self.generate([[self.pad_id] * 4] * size, max_new_tokens=3)
        self.compile_seconds = time.perf_counter() - started
        log.info("fast path warm-up (compile + CUDA graph capture) took %.1f s", self.compile_seconds)
        return self.compile_seconds

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)

    # ----- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._pending and not self._active and not self._closed:
                        self._wake.wait()
                    if self._closed:
                        return
                    admitted = self._take_admissions()
                with torch.inference_mode():
                    if admitted:
                        self._prefill(admitted)
                    if self._active:
                        self._step()
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the error
            log.exception("generation loop failed")
            self._fail_all(exc)

    def _take_admissions(self) -> list[GenerationRequest]:
        free = [s for s in range(self.slots) if s not in self._active]
        admitted = []
        while self._pending and free:
            request = self._pending.popleft()
            if request.cancelled.is_set():
                request.out.put(_DONE)
                continue
            request.slot = free.pop(0)
            admitted.append(request)
        return admitted

    def _prefill(self, requests: list[GenerationRequest]) -> None:
        groups: dict[tuple[int, ...], list[GenerationRequest]] = {}
        for request in requests:
            groups.setdefault(self._prefix_of(request.prompt), []).append(request)
        for prefix, group in groups.items():
            self._prefill_group(prefix, group)

    def _prefix_of(self, prompt: list[int]) -> tuple[int, ...]:
        best: tuple[int, ...] = ()
        for prefix in self._prefixes:
            if len(prefix) > len(best) and len(prefix) < len(prompt) and tuple(prompt[: len(prefix)]) == prefix:
                best = prefix
        return best

    def _prefill_group(self, prefix: tuple[int, ...], group: list[GenerationRequest]) -> None:
        start = len(prefix)
        tails = [r.prompt[start:] for r in group]
        width = min(_bucket(max(map(len, tails))), self.context - start)
        tokens = torch.full((len(group), width), self.pad_id, dtype=torch.long)
        for row, tail in enumerate(tails):
            tokens[row, : len(tail)] = torch.tensor(tail)
        slots = torch.tensor([r.slot for r in group], device=self.device)
        if prefix:
            cache = self.model.cache
            for layer, (k, v) in enumerate(zip(*self._prefixes[prefix], strict=True)):
                cache.k[layer][slots, :, :start] = k
                cache.v[layer][slots, :, :start] = v
        lengths = torch.tensor([len(t) for t in tails], device=self.device)
        logits = self.model.prefill(tokens.to(self.device), start, slots, lengths)
        for request, token in zip(group, _sample(logits, group), strict=True):
            request.position = len(request.prompt)
            self._active[request.slot] = request
            self._emit(request, token)

    def _step(self) -> None:
        """Decode until the set of running requests needs the host (a finish, an arrival, a sample).

        With greedy requests the GPU runs one step ahead of the host: the step writes its argmax
        tokens straight into the next step's input, and the host reads tokens one step late, so
        the GPU never waits for Python between steps.
        """
        started = time.perf_counter()
        size = 1 if set(self._active) == {0} else self.slots
        buffers = self._buffers(size)
        self._upload(buffers)
        greedy = all(r.temperature == 0 for r in self._active.values())
        base = max(r.position for r in self._active.values())
        inflight: deque = deque()
        launched = 0
        while True:
            window = next((w for w in self._windows if w > base + launched), self._windows[-1])
            self._launch(size, window, buffers)
            inflight.append((list(self._active.values()), self._copy_out(buffers, greedy)))
            launched += 1
            self.steps += 1
            if greedy and len(inflight) < 2 and not self._pending:
                continue  # keep the GPU one step ahead
            changed = self._collect(inflight.popleft(), greedy)
            if changed or not greedy or self._pending or self._closed:
                while inflight:  # steps already launched: take their tokens, then hand back to the loop
                    self._collect(inflight.popleft(), greedy)
                break
        self.stats["steps_s"] += time.perf_counter() - started

    def _copy_out(self, buffers: dict, greedy: bool):
        """Start copying this step's result to the host; the event says when it has arrived."""
        if self.device.type != "cuda":
            return (buffers["tokens"] if greedy else buffers["logits"]).clone(), None
        if not greedy:  # sampling needs the logits now: no step runs ahead
            return buffers["logits"].cpu(), None
        ring = buffers.get("host")
        if ring is None:  # made once per buffer set (a setdefault built three pinned tensors on every step)
            ring = buffers["host"] = [torch.empty_like(buffers["tokens"], device="cpu").pin_memory() for _ in range(3)]
        host = ring[self.steps % len(ring)]
        host.copy_(buffers["tokens"], non_blocking=True)  # pinned: returns at once, the event marks arrival
        event = torch.cuda.Event()
        event.record()
        return host, event

    def _collect(self, launched, greedy: bool) -> bool:
        """Hand out the tokens of one launched step; True when a request finished."""
        requests, (host, event) = launched
        waited = time.perf_counter()
        if event is not None:
            event.synchronize()
        self.stats["gpu_wait_s"] += time.perf_counter() - waited
        if greedy:
            chosen = [int(host[r.slot, 0]) for r in requests]
        else:
            chosen = _sample(host[[r.slot for r in requests]], requests)
        finished = False
        for request, token in zip(requests, chosen, strict=True):
            if request.slot not in self._active or self._active[request.slot] is not request:
                continue  # finished at an earlier step; this token was computed past its end
            request.position += 1
            self._emit(request, token)
            finished = finished or request.slot not in self._active
        return finished

    def _buffers(self, size: int) -> dict:
        if size not in self._static:
            self._static[size] = {
                "tokens": torch.full((size, 1), self.pad_id, dtype=torch.long, device=self.device),
                "positions": torch.zeros(size, dtype=torch.long, device=self.device),
                "advance": torch.zeros(size, dtype=torch.long, device=self.device),
                "logits": None,
            }
        return self._static[size]

    def _upload(self, buffers: dict) -> None:
        """Write the host's view of the running requests into the step's input buffers."""
        size = buffers["tokens"].shape[0]
        tokens = torch.full((size, 1), self.pad_id, dtype=torch.long)
        positions = torch.zeros(size, dtype=torch.long)
        advance = torch.zeros(size, dtype=torch.long)
        for slot, request in self._active.items():
            tokens[slot, 0], positions[slot], advance[slot] = request.last_token, request.position, 1
        buffers["tokens"].copy_(tokens)
        buffers["positions"].copy_(positions)
        buffers["advance"].copy_(advance)

    def _launch(self, size: int, window: int, buffers: dict) -> None:
        graph = self._decode.get((size, window))
        if graph is not None:
            graph.replay()
            buffers["logits"] = self._graph_logits[(size, window)]
        elif size in self._compiled:  # compiled but not captured (no CUDA: a test's compiler)
            self._decode_step(self._compiled[size], buffers, self._span(window))
        else:
            self._decode_step(self.model.decode, buffers, self._span(window))

    def _span(self, window: int) -> torch.Tensor:
        """``arange(window)``, one tensor per window for the engine's lifetime (graphs read its address)."""
        if window not in self._spans:
            self._spans[window] = torch.arange(window, device=self.device)
        return self._spans[window]

    @staticmethod
    def _decode_step(decode, buffers: dict, span: torch.Tensor) -> None:
        """One step: logits, then the greedy choice and positions written back as the next step's input."""
        logits = decode(buffers["tokens"], buffers["positions"], span)
        buffers["tokens"].copy_(logits.argmax(-1, keepdim=True))
        buffers["positions"].add_(buffers["advance"])
        buffers["logits"] = logits

    def _emit(self, request: GenerationRequest, token: int) -> None:
        """Hand one token to its request, or finish the request and free its slot."""
        if request.first_token_at is None:
            request.first_token_at = time.perf_counter()
        stop = token in request.stop_ids or request.cancelled.is_set()
        if not stop:
            request.out.put(token)
            request.generated += 1
            request.last_token = token
        full = request.position >= self.context - 1
        if stop or request.generated >= request.max_new_tokens or full:
            self._active.pop(request.slot, None)
            request.out.put(_DONE)

    def _fail_all(self, exc: BaseException) -> None:
        with self._wake:
            self._closed = True
            for request in [*self._active.values(), *self._pending]:
                request.out.put(exc)
            self._active.clear()
            self._pending.clear()

    # ----- compiled decode -------------------------------------------------------------------

    def _decode_sizes(self) -> list[int]:
        return sorted({1, self.slots})

    def _capture_all(self) -> None:
        """One compile per slot count (the attention window is a dynamic size), one CUDA graph per window."""
        pool = torch.cuda.graph_pool_handle() if self.device.type == "cuda" else None
        for size in self._decode_sizes():
            self._compiled[size] = self.decode_compiler(self.model.decode)
            if pool is None:
                continue
            for window in self._windows:
                self._decode[(size, window)] = self._capture(self._compiled[size], size, window, pool)

    def _capture(self, compiled, size: int, window: int, pool) -> torch.cuda.CUDAGraph:
        """The decode step, compiled (fused kernels), captured as one CUDA graph over the shared buffers.

        A captured graph replays from any thread with no Python or launch overhead per kernel. It
        reads its inputs at fixed addresses: the buffers of ``_buffers`` and the span of ``_span``,
        which the engine keeps (a span made here and freed on return was the bug of issue 11).
        """
        buffers = self._buffers(size)
        span = self._span(window)
        torch._dynamo.mark_dynamic(span, 0)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # compile and autotune outside the capture
            for _ in range(3):
                self._decode_step(compiled, buffers, span)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            self._decode_step(compiled, buffers, span)
        self._graph_logits[(size, window)] = buffers["logits"]
        return graph

    def _drop_compiled(self) -> None:
        log.warning("fast path: %s; decoding eagerly (correct, slower)", self.check.reason)
        self._decode.clear()
        self._graph_logits.clear()
        self._compiled.clear()
        self.compile_decode = False

    # ----- load-time check --------------------------------------------------------------------

    def check_compiled_decode(self) -> DecodeCheck:
        """Run the same short probe through the compiled (replayed) and the eager decode step and
        compare their logits; the compiled one is used only when they agree within tolerance."""
        diffs, noise, scales, same, steps = [], [], [], 0, 0
        rows = [0, 0, 0]  # rows compared, rows whose argmax differs, of those within TIE_GAP
        for size in self._decode_sizes():
            first, eager = self._probe(size, compiled=False)
            forced = (first, [e.argmax(-1) for e in eager])
            _, again = self._probe(size, compiled=False, forced=forced)
            _scribble_free_memory(self.device)  # a graph reading freed memory now reads garbage
            _, compiled = self._probe(size, compiled=True, forced=forced)
            for e, a, c in zip(eager, again, compiled, strict=True):
                diffs.append(float((c - e).abs().max()) if bool(torch.isfinite(c).all()) else float("inf"))
                noise.append(float((a - e).abs().max()))
                scales.append(float(e.abs().max()))
                same += int((c.argmax(-1) == e.argmax(-1)).all())
                steps += 1
                misses, ties = top1_misses(e, c)
                rows[0], rows[1], rows[2] = rows[0] + e.shape[0], rows[1] + misses, rows[2] + ties
        worst = max(diffs)
        tolerance = max(CHECK_ATOL + CHECK_RTOL * max(scales), CHECK_NOISE * max(noise))
        agreed = worst <= tolerance
        reason = (
            f"compiled decode {'agrees' if agreed else 'disagrees'} with eager decode "
            f"(max |logit diff| {worst:.3g} {'<=' if agreed else '>'} tolerance {tolerance:.3g} over {steps} steps)"
        )
        verdict = "agreed" if agreed else "disagreed"
        check = DecodeCheck(verdict, round(worst, 4), round(tolerance, 4), round(max(noise), 4), round(same / steps, 3))
        check.steps, check.reason = steps, reason
        check.top1_agreement_outside_ties = round((rows[0] - rows[1]) / max(rows[0] - rows[2], 1), 3)
        check.tie_misses = rows[2]
        log.info("fast path self-check: %s", reason)
        return check

    def _probe(self, size: int, compiled: bool, forced=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Prefill a fixed prompt in each of ``size`` slots, then PROBE_STEPS decode steps; returns
        the first tokens and each step's logits. ``forced`` (first tokens, each step's tokens) makes
        the inputs of every step those of an earlier probe, so two probes see the same inputs."""
        vocab = self.model.spec.vocab_size
        lengths = torch.tensor([5 + slot for slot in range(size)])
        tokens = (torch.arange(int(lengths.max())) * 7919 + 11).repeat(size, 1)
        tokens = ((tokens + torch.arange(size).unsqueeze(1) * 104729) % vocab).to(self.device)
        slots = torch.arange(size, device=self.device)
        first = self.model.prefill(tokens, 0, slots, lengths.to(self.device)).argmax(-1)
        first = first if forced is None else forced[0]
        buffers = self._buffers(size)
        buffers["tokens"].copy_(first.view(size, 1))
        buffers["positions"].copy_(lengths)
        buffers["advance"].fill_(1)
        logits = []
        for step in range(PROBE_STEPS):
            window = self._windows[step % len(self._windows)] if compiled else self._windows[0]
            if compiled:
                self._launch(size, window, buffers)
            else:
                self._decode_step(self.model.decode, buffers, self._span(window))
            logits.append(buffers["logits"].float().clone())
            if forced is not None:
                buffers["tokens"].copy_(forced[1][step].view(size, 1))
        return first, logits


def top1_misses(eager: torch.Tensor, compiled: torch.Tensor) -> tuple[int, int]:
    """Rows [B, V] whose compiled argmax differs from the eager one, and how many of those are ties: the
    compiled pick is within TIE_GAP of the eager maximum, in the eager logits."""
    picked = compiled.argmax(-1)
    miss = picked != eager.argmax(-1)
    gap = eager.max(-1).values - eager.gather(-1, picked[:, None])[:, 0]
    return int(miss.sum()), int((miss & (gap <= TIE_GAP)).sum())


def _scribble_free_memory(device: torch.device) -> None:
    """Fill blocks the CUDA caching allocator holds free with a garbage pattern (0xA5 bytes), so a
    graph that reads a freed tensor gives wrong logits in the check instead of right ones by luck."""
    if device.type != "cuda":
        return
    junk = [
        torch.full((1 << shift,), 0xA5, dtype=torch.uint8, device=device) for shift in range(9, 21) for _ in range(32)
    ]
    del junk


def _bucket(length: int) -> int:
    """Prompt lengths are padded to a few sizes so shapes (and kernel choices) stay few."""
    return next((b for b in PREFILL_BUCKETS if b >= length), length)


def _sample(logits: torch.Tensor, requests: Sequence[GenerationRequest]) -> list[int]:
    """Greedy for temperature 0, else sampling at each request's temperature."""
    temps = torch.tensor([r.temperature for r in requests], device=logits.device, dtype=torch.float32)
    greedy = logits.argmax(-1)
    if not bool((temps > 0).any()):
        return greedy.tolist()
    probs = torch.softmax(logits / temps.clamp(min=1e-5).unsqueeze(1), dim=-1)
    sampled = torch.multinomial(probs, 1).squeeze(1)
    return torch.where(temps > 0, sampled, greedy).tolist()
