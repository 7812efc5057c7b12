"""CUDA graphs of the embedder's forward pass: one launch a batch instead of a hundred.

Eagerly, a MiniLM forward is about a hundred kernel launches, as many milliseconds of Python on the
CPU as the GPU takes to run them (about 7 ms a batch of 512 on the H200). During an ingest that CPU
time is shared with the threads that receive parsed files and hand writes to the writer process, and
the cores with the parser processes: each stall of the embedding thread left the GPU idle. A graph
replays the whole forward with one call.

A graph is made for a batch shape (rows x width) once it has been run eagerly ``CAPTURE_AFTER``
times (the embedder pads shapes to a few dozen), and it is used only after its vectors were checked
against the eager forward on the batch that made it. A shape whose capture fails, or whose vectors
differ, stays eager, and so does every shape after a failure.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)

CAPTURE_AFTER = 2  # eager runs of a shape before it gets a graph: shapes met once are not worth one
MAX_GRAPHS = 64
# A graph's vectors against the eager forward's on the batch that made it (the same kernels: equal).
MIN_COSINE = 0.99999


class ForwardGraphs:
    """``forward(features) -> pooled vectors`` on CUDA, replayed from graphs for the shapes met often."""

    def __init__(self, forward: Callable) -> None:
        self.forward = forward
        self.seen: Counter = Counter()
        self.graphs: dict[tuple, tuple[dict, object, object]] = {}
        self.failed = False
        self.replays = 0
        self._pool = None

    def __call__(self, features: dict):
        shape = tuple(features["input_ids"].shape)
        graph = self.graphs.get(shape)
        if graph is None:
            self.seen[shape] += 1
            if self.failed or self.seen[shape] <= CAPTURE_AFTER or len(self.graphs) >= MAX_GRAPHS:
                return self.forward(features)
            graph = self._capture(shape, features)
            return self.forward(features) if graph is None else graph[1]  # the capture ran this batch
        inputs, output, cuda_graph = graph
        for name, tensor in features.items():
            inputs[name].copy_(tensor, non_blocking=True)
        cuda_graph.replay()
        self.replays += 1
        return output  # overwritten by the next replay: the caller copies it (it does, in .float/normalize)

    def prepare(self, features: dict) -> bool:
        """Capture the graph of this batch's shape now (an ingest warming up while its files are parsed);
        whether the shape has one."""
        shape = tuple(features["input_ids"].shape)
        if shape not in self.graphs and not self.failed and len(self.graphs) < MAX_GRAPHS:
            self._capture(shape, features)
        return shape in self.graphs

    def _capture(self, shape: tuple, features: dict):
        import torch

        try:
            with torch.cuda.device(features["input_ids"].device):
                return self._captured(shape, features)
        except Exception as exc:  # noqa: BLE001 - any failure: this embedder stays eager
            self.failed = True
            log.warning("embedding without CUDA graphs: capturing batch shape %s failed: %s", shape, exc)
            return None

    def _captured(self, shape: tuple, features: dict):
        import torch

        inputs = {name: tensor.clone() for name, tensor in features.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.forward(inputs)  # kernels chosen and memory allocated before capture, as CUDA graphs need
        torch.cuda.current_stream().wait_stream(side)
        cuda_graph = torch.cuda.CUDAGraph()
        # thread_local: a question embedded meanwhile by another thread is not part of the capture
        with torch.cuda.graph(cuda_graph, pool=self._pool, capture_error_mode="thread_local"):
            output = self.forward(inputs)
        self._pool = self._pool or cuda_graph.pool()
        cuda_graph.replay()
        eager = self.forward(features)
        cosine = torch.nn.functional.cosine_similarity(output.float(), eager.float(), dim=1)
        if not bool(cosine.min() >= MIN_COSINE):
            raise ValueError(f"its vectors differ from the eager forward's (cosine {float(cosine.min()):.6f})")
        self.graphs[shape] = (inputs, output, cuda_graph)
        return self.graphs[shape]
