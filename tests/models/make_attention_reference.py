#!/usr/bin/env python3
"""Writes tests/models/attention_reference.tgck, PyTorch 1.13's answers for the attention that
tests/test_attention.cpp checks tapegrad against: nn.MultiheadAttention (packed and separate
projection weights, kdim/vdim, bias or not, batch_first or not, an additive float attn_mask or
key_padding_mask, weights averaged over the heads or not, the unbatched form) and
scaled dot-product attention written out as PyTorch 2.0 defines it (1.13 has no
F.scaled_dot_product_attention): softmax(q k^T / sqrt(E) + mask) v.

For each MultiheadAttention case, in tapegrad's checkpoint format (nn/serialize.hpp), all float64:
  <case>.param.<name>          the module's state_dict (PyTorch's names)
  <case>.query/.key/.value     the inputs
  <case>.attn_mask, <case>.key_padding_mask   the additive masks, where the case has them
  <case>.out, <case>.weights   forward's two results
  <case>.cot                   a random cotangent of out
  <case>.grad_query            d sum(out * cot) / d query
For scaled dot-product attention: sdpa.<case>.q/.k/.v/.mask/.out.
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/models/make_attention_reference.py
"""
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tgck import write_checkpoint  # noqa: E402


def main():
    torch.manual_seed(2023)
    entries = []
    inf = float("inf")

    def normal(*shape):
        return torch.randn(*shape, dtype=torch.float64)

    def mha_case(name, embed_dim, num_heads, bias, batch_first, kdim, vdim, query, key, value, attn_mask=None,
                 key_padding_mask=None, average=True):
        mha = torch.nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=batch_first, kdim=kdim, vdim=vdim)
        mha = mha.double()
        with torch.no_grad():  # biases away from their zero start, so that the test sees them
            for p_name, p in mha.named_parameters():
                if "bias" in p_name:
                    p.copy_(0.3 * normal(*p.shape))
        for p_name, p in mha.state_dict().items():
            entries.append((f"{name}.param.{p_name}", p))
        query = query.clone().requires_grad_(True)
        out, weights = mha(query, key, value, key_padding_mask=key_padding_mask, need_weights=True, attn_mask=attn_mask,
                           average_attn_weights=average)
        cot = normal(*out.shape)
        (grad_query,) = torch.autograd.grad((out * cot).sum(), query)
        entries.extend([(f"{name}.query", query), (f"{name}.key", key), (f"{name}.value", value),
                        (f"{name}.out", out), (f"{name}.weights", weights), (f"{name}.cot", cot),
                        (f"{name}.grad_query", grad_query)])
        if attn_mask is not None:
            entries.append((f"{name}.attn_mask", attn_mask))
        if key_padding_mask is not None:
            entries.append((f"{name}.key_padding_mask", key_padding_mask))

    # Self-attention, sequence first: [L, N, E] with L = 4, N = 3, E = 8, 2 heads; a causal float
    # mask; then a float key padding mask that hides the last key of the second sample. (Not both
    # at once: 1.13 merges a float key_padding_mask into a float attn_mask with masked_fill, which
    # takes the float mask's bytes as booleans and drops it; the documented result, which
    # tapegrad gives, is their sum.)
    x = normal(4, 3, 8)
    causal = torch.triu(torch.full((4, 4), -inf, dtype=torch.float64), diagonal=1)
    mha_case("self", 8, 2, True, False, None, None, x, x, x, attn_mask=causal)
    padding = torch.zeros(3, 4, dtype=torch.float64)
    padding[1, 3] = -inf
    mha_case("padded", 8, 2, True, False, None, None, x, normal(4, 3, 8), normal(4, 3, 8), key_padding_mask=padding)
    # Separate projections (kdim 5, vdim 6), batch first, no bias, a per-head [N*H, L, S] float
    # mask, the weights of each head.
    mha_case("cross", 8, 4, False, True, 5, 6, normal(2, 3, 8), normal(2, 5, 5), normal(2, 5, 6),
             attn_mask=0.5 * normal(2 * 4, 3, 5), average=False)
    # Unbatched: [L, E] and [S, E].
    mha_case("unbatched", 6, 3, True, False, None, None, normal(2, 6), normal(3, 6), normal(3, 6))

    def sdpa(q, k, v, mask):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return torch.softmax(scores + mask, dim=-1) @ v

    q, k, v = normal(2, 3, 4, 5), normal(2, 3, 6, 5), normal(2, 3, 6, 7)
    mask = 0.5 * normal(4, 6)
    mask[0, 2] = -inf
    entries.extend([("sdpa.masked.q", q), ("sdpa.masked.k", k), ("sdpa.masked.v", v), ("sdpa.masked.mask", mask),
                    ("sdpa.masked.out", sdpa(q, k, v, mask))])
    causal = torch.triu(torch.full((4, 6), -inf, dtype=torch.float64), diagonal=1)
    entries.append(("sdpa.causal.out", sdpa(q, k, v, causal)))
    write_checkpoint(os.path.join(HERE, "attention_reference.tgck"), entries)


if __name__ == "__main__":
    main()
