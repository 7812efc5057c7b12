"""What an agreement figure may claim: ties, and whether the reference model tests anything at all.

Top-1 agreement between a path and its reference means something only where the reference prefers one token
clearly. Two things spoil it:

- **Ties.** Where the reference's best two tokens are within TIE_GAP nats, the path's choice between them is
  decided by rounding: bf16 keeps 8 bits of mantissa, so a logit near 8-16 is rounded to a step of 0.0625, and a
  kernel that adds in another order may flip the pick. Such a miss is reported as a tie, apart from the misses
  that lose more than TIE_GAP, which are errors.
- **A degenerate reference.** A model that repeats one token, or whose best two tokens are nearly equal almost
  everywhere (median top-2 margin under MIN_MEDIAN_MARGIN nats), gives agreement 1.000 to any path, bnb nf4 too
  (issue 29: the 160-step benchmark model). On such a model no agreement is reported at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from rag_app.fastgen.engine import TIE_GAP  # 0.0625 nats: a bf16 logit's step between 8 and 16

__all__ = ["TIE_GAP", "ReferenceHealth", "compare_choices", "judge_reference", "reference_health", "summarize"]
MIN_MEDIAN_MARGIN = 0.5  # nats: below this median top-2 margin the reference continues nothing with confidence
GREEDY_TOKENS = 32


@dataclass
class ReferenceHealth:
    """Whether a reference model is peaked enough for top-1 agreement with it to mean something."""

    median_top2_margin: float
    greedy_distinct_tokens: int
    greedy_tokens: int
    degenerate: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def judge_reference(margins: torch.Tensor, greedy: list[int]) -> ReferenceHealth:
    """``margins``: the reference's top-2 log-probability gaps at scored positions; ``greedy``: its greedy output."""
    median = float(margins.float().median()) if margins.numel() else 0.0
    distinct = len(set(greedy))
    reasons = []
    if median < MIN_MEDIAN_MARGIN:
        reasons.append(f"median top-2 margin {median:.3f} nats < {MIN_MEDIAN_MARGIN}")
    if greedy and distinct == 1:
        reasons.append(f"greedy output repeats one token ({greedy[0]}) {len(greedy)} times")
    reason = "; ".join(reasons) or f"median top-2 margin {median:.2f} nats, {distinct} distinct greedy tokens"
    return ReferenceHealth(round(median, 3), distinct, len(greedy), bool(reasons), reason)


@torch.inference_mode()
def reference_health(reference, prompts: list[list[int]], device: str, new: int = GREEDY_TOKENS) -> ReferenceHealth:
    """Top-2 margins over every position of ``prompts`` (teacher forcing) and a greedy continuation of the first."""
    margins = []
    for prompt in prompts:
        logits = reference(torch.tensor([prompt], device=device)).logits[0].float()
        top2 = torch.log_softmax(logits, -1).topk(2, -1).values
        margins.append((top2[:, 0] - top2[:, 1]).cpu())
    ids = torch.tensor([prompts[0]], device=device)
    out = reference.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
        do_sample=False, eos_token_id=None, pad_token_id=0,
    )  # fmt: skip
    return judge_reference(torch.cat(margins), out[0, len(prompts[0]) :].tolist())


def compare_choices(logp: torch.Tensor, chosen: torch.Tensor) -> dict:
    """A path's tokens ``chosen`` [T] against the reference's log-probabilities ``logp`` [T, V] at the same prefixes.

    A miss is a position whose chosen token is not the reference's argmax; its gap is what the choice loses
    against the argmax, in nats. Misses within TIE_GAP are ties."""
    best = logp.max(-1)
    gaps = best.values - logp.gather(1, chosen[:, None])[:, 0]
    miss = best.indices != chosen
    ties = miss & (gaps <= TIE_GAP)
    top2 = logp.topk(2, -1).values
    return {
        "positions": int(chosen.numel()),
        "agree": int((~miss).sum()),
        "ties": int(ties.sum()),
        "max_gap": float(gaps.max()) if gaps.numel() else 0.0,
        "max_miss_gap_outside_ties": float(gaps[miss & ~ties].max()) if bool((miss & ~ties).any()) else 0.0,
        "margins": (top2[:, 0] - top2[:, 1]).cpu(),
    }


def summarize(parts: list[dict]) -> dict:
    """Agreement over all positions and outside ties, from compare_choices parts."""
    total = sum(p["positions"] for p in parts)
    agree = sum(p["agree"] for p in parts)
    ties = sum(p["ties"] for p in parts)
    margins = torch.cat([p["margins"] for p in parts]) if parts else torch.zeros(0)
    return {
        "agreement": round(agree / max(total, 1), 4),
        "agreement_outside_ties": round(agree / max(total - ties, 1), 4),
        "misses": total - agree,
        "tie_misses": ties,
        "tokens": total,
        "max_logprob_gap": round(max((p["max_gap"] for p in parts), default=0.0), 3),
        "max_miss_gap_outside_ties": round(max((p["max_miss_gap_outside_ties"] for p in parts), default=0.0), 3),
        "median_top2_margin": round(float(margins.median()), 3) if margins.numel() else 0.0,
    }
