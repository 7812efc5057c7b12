"""gemlite's kernels need in- and out-features in multiples of 128 (issue 29: SmolLM2's 576 and 960 read past
the weights on the H200). Padding adds zero weights only: the padded layer computes the same outputs."""

import torch

from rag_app.fastgen.quant import dequantize_int4, group_size_for, pad_int4, quantize_int4

SMOLLM2_SHAPES = [(960, 576), (576, 576), (3072, 576), (576, 1536)]  # qkv, o, gate_up, down: [N, K]


def test_padding_to_the_kernel_multiple_adds_only_zero_weights():
    torch.manual_seed(0)
    for n, k in SMOLLM2_SHAPES:
        weight = torch.randn(n, k)
        codes, scales, zeros = quantize_int4(weight, group_size_for(k))
        padded = pad_int4(codes, scales, zeros, torch.randn(n))
        assert padded[0].shape[0] % 128 == 0 and padded[0].shape[1] % 128 == 0
        full = dequantize_int4(*padded[:3], torch.float32)
        assert torch.equal(full[:n, :k], dequantize_int4(codes, scales, zeros, torch.float32))
        assert not full[n:].any() and not full[:, k:].any()
        x = torch.randn(3, k)
        wide = torch.nn.functional.pad(x, (0, full.shape[1] - k)) @ full.t()
        torch.testing.assert_close(wide[:, :n], x @ full[:n, :k].t())
