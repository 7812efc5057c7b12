"""The generation benchmarks' correctness check (issue 29): it refuses to report agreement on a degenerate
model, tells ties from errors, and tokenizes prompts exactly as the benchmark model was trained."""

import json
import sys

import pytest
import torch
from conftest import ROOT

from bench.agreement import TIE_GAP, compare_choices, judge_reference, reference_health, summarize
from bench.generation import shown, table
from rag_app.fastgen.engine import top1_misses

sys.path.insert(0, str(ROOT / "tests"))
from tiny_lm import TINY  # noqa: E402

PROMPTS = [[(i * 37 + 11) % 200 for i in range(48)], [(i * 53 + 7) % 200 for i in range(40)]]


def tiny_model(initializer_range: float):
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(**{**TINY, "initializer_range": initializer_range, "vocab_size": 256})
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def test_a_degenerate_model_is_refused_and_a_peaked_one_is_not():
    flat = reference_health(tiny_model(0.02), PROMPTS, "cpu")  # small weights: greedy output is one token
    assert flat.degenerate and "repeats one token" in flat.reason, flat
    peaked = reference_health(tiny_model(0.5), PROMPTS, "cpu")  # varied, confident noise
    assert not peaked.degenerate, peaked.reason
    assert peaked.median_top2_margin >= 0.5 and peaked.greedy_distinct_tokens > 1


def test_a_reference_that_repeats_one_token_or_is_flat_is_refused():
    health = judge_reference(torch.full((100,), 3.0), [17] * 32)
    assert health.degenerate and health.reason == "greedy output repeats one token (17) 32 times"
    flat = judge_reference(torch.tensor([0.06, 0.14, 0.1, 2.0]), list(range(32)))  # the 160-step model's margins
    assert flat.degenerate and flat.reason == "median top-2 margin 0.100 nats < 0.5"
    assert not judge_reference(torch.tensor([1.4, 1.1, 0.27]), list(range(32))).degenerate  # the 450-step one


def test_the_report_prints_no_agreement_and_no_speed_for_a_refused_reference():
    refused = {"b1": {"decode_tok_s": 320.5}, "correctness": {"refused": "degenerate reference: margin 0.06"}}
    assert shown(320.5, refused, "b1") == "withheld (320.5, degenerate reference: no agreement)"
    assert "agree" not in table({"fast_int4": refused}).replace("agreement)", "")


def test_misses_within_the_tie_gap_are_ties_and_the_bar_reads_agreement_outside_them():
    logp = torch.log_softmax(torch.tensor([[5.0, 5.0 - TIE_GAP / 2, 0.0], [5.0, 4.0, 0.0], [1.0, 9.0, 0.0]]), -1)
    part = compare_choices(logp, torch.tensor([1, 1, 1]))  # a tie, an error (1 nat lost), a match
    assert (part["agree"], part["ties"]) == (1, 1)
    scored = summarize([part])
    assert scored["agreement"] == round(1 / 3, 4) and scored["agreement_outside_ties"] == 0.5
    assert scored["max_miss_gap_outside_ties"] == pytest.approx(1.0, abs=1e-3)
    r = {"b1": {"decode_tok_s": 100.0}, "correctness": {"b1": {**scored, "agreement_outside_ties": 0.995}}}
    assert shown(100.0, r, "b1") == "100.0 [agree 0.995, 0.333 with ties]"


def test_the_engine_self_check_counts_compiled_misses_within_the_tie_gap_as_ties():
    eager = torch.tensor([[8.0, 8.0 - TIE_GAP, 1.0], [8.0, 7.0, 1.0], [1.0, 2.0, 9.0]])
    compiled = torch.tensor([[8.0, 8.01, 1.0], [7.0, 8.0, 1.0], [1.0, 2.0, 9.0]])
    assert top1_misses(eager, compiled) == (2, 1)


def test_the_bench_tokenizes_the_training_text_as_the_model_was_trained(tmp_path):
    """transformers 5 reloads the trained BPE beside a qwen2 config as Qwen2Tokenizer, which splits digits:
    the benchmark model is trained on the reloaded tokenizer's ids, and the bench reads the same count."""
    from tiny_lm import train_tokenizer

    from bench.generation import training_ids
    from bench.train_peaked import TRAINING_CHARS, TRAINING_TEXT, prepare_tokenizer, token_stream, training_text

    tokenizer, _ = prepare_tokenizer(tmp_path, {**TINY, "vocab_size": 4096})
    trained_on = len(token_stream(tokenizer, training_text(tmp_path)))
    (tmp_path / "training.json").write_text(json.dumps({"corpus_tokens": trained_on}))
    assert len(training_ids(tmp_path)) == trained_on
    assert trained_on != len(token_stream(train_tokenizer([training_text()], pad_to=4096))), "the old mismatch"
    # the text is the model's saved copy, of the recipe's length: a later edit of the docs changes neither
    saved = (tmp_path / TRAINING_TEXT).read_text(encoding="utf-8")
    assert len(saved) == TRAINING_CHARS and training_text(tmp_path) == saved
    (tmp_path / TRAINING_TEXT).write_text(saved[: TRAINING_CHARS // 2], encoding="utf-8")  # as if trained on less
    with pytest.raises(RuntimeError, match="training saw"):
        training_ids(tmp_path)
    (tmp_path / TRAINING_TEXT).write_text(saved, encoding="utf-8")
    (tmp_path / "training.json").write_text(json.dumps({"corpus_tokens": trained_on - 1}))
    with pytest.raises(RuntimeError, match="training saw"):
        training_ids(tmp_path)
