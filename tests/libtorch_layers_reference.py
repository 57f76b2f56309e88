"""PyTorch 1.13's values for tests/test_libtorch_data.cpp's layer cases (nn.Embedding with
padding_idx, nn.Softmax, nn.LogSoftmax), printed as the C++ initialiser lists the test holds.

Run: /usr/bin/python3 tests/libtorch_layers_reference.py
"""
import torch


def flat(t):
    return "{" + ", ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist()) + "}"


torch.set_default_dtype(torch.float64)

# Embedding(5, 3, padding_idx=2) with weight 0.1 * k - 0.7 (k = 0..14, row-major), indices
# [[0, 2, 4], [2, 2, 1]]; loss = sum(out * c) with c = 0.05 * k + 0.1 (k = 0..17).
emb = torch.nn.Embedding(5, 3, padding_idx=2)
with torch.no_grad():
    emb.weight.copy_(torch.arange(15.0).reshape(5, 3) * 0.1 - 0.7)
idx = torch.tensor([[0, 2, 4], [2, 2, 1]])
out = emb(idx)
c = torch.arange(18.0).reshape(2, 3, 3) * 0.05 + 0.1
(out * c).sum().backward()
print("embedding out", flat(out))
print("embedding weight.grad", flat(emb.weight.grad))

# Softmax(1) and LogSoftmax(0) of x = 0.3 * k - 1 (k = 0..7) as [2, 4].
x = torch.arange(8.0).reshape(2, 4) * 0.3 - 1
print("softmax dim 1", flat(torch.nn.Softmax(dim=1)(x)))
print("log_softmax dim 0", flat(torch.nn.LogSoftmax(dim=0)(x)))
