"""numpy's BLAS on one thread in a process that ranks questions, so that it does not compete with torch for the cores.

A question's ranking runs torch (the question's embedding, on torch's OpenMP threads) and numpy's matrix products
(the exact dense search over every chunk's vector, the page vectors inside the best documents) one after the other.
numpy's OpenBLAS keeps threads of its own, which spin for a while after each product: on a 2-core CPU they take a
core from torch's next embedding, whose threads then wait for each other. Measured at 100,000 chunks on 2 cores
(``python -m bench.scale``, docs/benchmarks.md): with both libraries on every core a question took 70 to 128 ms p50
in four runs; with OpenBLAS on one thread, 39 to 42 ms in the same runs (pages already read), the same top 10 pages.

Set once, process-wide, at the first question: OpenBLAS has one thread count for the process, and a limit set and
restored around each search would be undone by concurrent searches (threadpoolctl lets one thread at a time hold
it). Nothing else rag_app runs needs BLAS threads: the embedders run on torch's or onnxruntime's own threads.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)
_lock = threading.Lock()
_done = False


def blas_on_one_thread() -> None:
    """numpy's BLAS libraries limited to one thread, once per process (torch's threads untouched)."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - a requirement; without it the ranking is slower, not wrong
            log.warning("threadpoolctl is not installed: numpy's BLAS threads compete with torch's (pip install -r "
                        "requirements.txt)")  # fmt: skip
        else:
            threadpool_limits(limits=1, user_api="blas")
            # threadpoolctl makes the thread that set a limit its only setter until it restores it; this limit stays,
            # so hand that back: the host program's own limits, from any thread, still apply
            from threadpoolctl import OpenBLASController

            OpenBLASController.clear_controlling_thread()
        _done = True
