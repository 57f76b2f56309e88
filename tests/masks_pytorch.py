"""PyTorch 1.13's side of tests/test_masks.cpp: the values, dtypes and shapes of bool tensors,
comparisons (NaN, ties, type promotion), logical ops, where, masked_fill, any and all, maximum,
minimum, clamp with tensor bounds, sign and norm, with the gradients at ties and at zero. Run with a
Python that has torch (/usr/bin/python3 here):

    /usr/bin/python3 tests/masks_pytorch.py > tests/masks_reference.txt

Each line is `name dtype ndim dims... : values...` (bool as 0/1, floats with repr precision);
the C++ test builds the same case by name and compares.
"""
import torch

nan = float("nan")
inf = float("inf")


def emit(name, t):
    values = t.flatten().tolist()
    dtype = str(t.dtype).replace("torch.", "")
    text = " ".join(repr(float(v)) if t.is_floating_point() else str(int(v)) for v in values)
    print(f"{name} {dtype} {t.dim()} {' '.join(str(d) for d in t.shape)} : {text}".replace("  ", " "))


a = torch.tensor([1.0, nan, 2.0, -0.0, inf])
b = torch.tensor([1.0, nan, 3.0, 0.0, inf])
ints = torch.tensor([1, 2, 3, 4, 5])
mask = torch.tensor([True, False, True, False, True])
col = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
row = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float32)

emit("eq_nan", a == b)
emit("ne_nan", a != b)
emit("lt_nan", a < b)
emit("le_nan", a <= b)
emit("gt_nan", a > b)
emit("ge_nan", a >= b)
emit("ge_broadcast_promote", col >= row)
emit("lt_int_float", ints < torch.tensor([1.5, 2.5, 2.5, 4.5, 4.5]))
emit("int_gt_scalar_half", ints > 2.5)
emit("int_eq_scalar_whole", ints == 3)
emit("float_eq_scalar", torch.tensor([0.1, 0.2]) == 0.1)
emit("f32_eq_f64", torch.tensor([0.1, 0.5]) == torch.tensor([0.1, 0.5], dtype=torch.float64))
emit("big_int_eq_float", torch.tensor([2**53 + 1, 2**53]) == torch.tensor([float(2**53), float(2**53)], dtype=torch.float64))
emit("bool_lt_int", mask < torch.tensor([1, 1, 0, 0, 2]))
emit("bool_eq_one", mask == 1)
emit("logical_and", torch.logical_and(torch.tensor([1, 0, 2, 0]), torch.tensor([1.0, 1.0, nan, 0.0])))
emit("logical_or", torch.logical_or(torch.tensor([1, 0, 2, 0]), torch.tensor([1.0, 1.0, nan, 0.0])))
emit("logical_xor", torch.logical_xor(torch.tensor([1, 0, 2, 0]), torch.tensor([1.0, 1.0, nan, 0.0])))
emit("logical_not", torch.logical_not(torch.tensor([0.0, nan, 2.0, -0.0])))
emit("and_bool", mask & torch.tensor([True, True, False, False, True]))
emit("or_bool", mask | torch.tensor([True, True, False, False, False]))
emit("xor_bool", mask ^ torch.tensor([True, True, False, False, True]))
emit("not_bool", ~mask)
emit("and_int", torch.tensor([12, 5, -1]) & torch.tensor([10, 3, 7]))
emit("not_int", ~torch.tensor([0, 5, -1]))
emit("bool_add", mask + torch.tensor([True, True, False, False, False]))
emit("bool_mul", mask * torch.tensor([True, True, False, False, True]))
emit("bool_add_int", mask + ints)
emit("bool_add_float", mask + torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5]))
emit("bool_mul_scalar", mask * 2.5)
emit("bool_div", mask / torch.tensor([True, True, True, True, True]))
emit("bool_sum", mask.sum())
emit("bool_exp", torch.exp(mask.to(torch.bool)))
emit("bool_to_float", mask.to(torch.float32))
emit("float_to_bool", torch.tensor([0.0, -0.0, nan, 0.5, -inf]).to(torch.bool))
emit("int_to_bool", torch.tensor([0, -3, 7]).to(torch.bool))
emit("where_promote", torch.where(mask, ints, torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])))
emit("where_broadcast", torch.where(torch.tensor([[True], [False]]), torch.tensor([1.0, 2.0, 3.0]), torch.tensor(-1.0)))
emit("where_scalar", torch.where(mask, torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 0.0))
emit("masked_fill", torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).masked_fill(mask, nan))
emit("masked_fill_broadcast", torch.zeros(3).masked_fill(torch.tensor([[True], [False]]), 1.0))
emit("masked_fill_int_truncates", ints.masked_fill(mask, 1.5))
emit("masked_fill_bool", mask.masked_fill(torch.tensor([True, True, False, False, False]), True))
m = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
emit("any_all", m.any())
emit("all_all", m.all())
emit("any_dim1", m.any(1))
emit("all_dim0_keepdim", torch.tensor([[1.0, nan, 0.0], [2.0, 1.0, 1.0]]).all(0, keepdim=True))
emit("any_empty", torch.zeros(0).any())
emit("all_empty", torch.zeros(0).all())
emit("all_int_dim_neg", torch.tensor([[1, 2], [0, 3]]).all(-1))

# Gradients of where and masked_fill (d/da, d/db; d/dx).
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = torch.tensor([4.0, 5.0, 6.0], requires_grad=True)
(torch.where(torch.tensor([True, False, True]), x, y) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
emit("where_grad_a", x.grad)
emit("where_grad_b", y.grad)
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x.masked_fill(torch.tensor([[True, False, False], [False, False, True]]), 0.0) * 2).sum().backward()
emit("masked_fill_grad", x.grad)

# maximum, minimum (ties split the gradient), clamp with tensor bounds, sign.
a = torch.tensor([1.0, 2.0, 3.0, nan], requires_grad=True)
b = torch.tensor([1.0, 3.0, 2.0, 0.0], requires_grad=True)
emit("maximum_nan", torch.maximum(a, b).detach())
emit("minimum_int_float", torch.minimum(torch.tensor([1, 5]), torch.tensor([1.5, 1.5])))
a2 = a.detach()[:3].clone().requires_grad_()
b2 = b.detach()[:3].clone().requires_grad_()
torch.maximum(a2, b2).sum().backward()
emit("maximum_grad_a", a2.grad)
emit("maximum_grad_b", b2.grad)
a2.grad = None
b2.grad = None
torch.minimum(a2, b2).sum().backward()
emit("minimum_grad_a", a2.grad)
emit("minimum_grad_b", b2.grad)
x = torch.tensor([1.0, 2.0, 3.0, 0.0, 5.0], requires_grad=True)
lo = torch.tensor([1.0, 0.0, 3.5, 0.0, 6.0], requires_grad=True)
hi = torch.tensor([3.0, 2.0, 4.0, 0.0, 4.0], requires_grad=True)
y = torch.clamp(x, lo, hi)
emit("clamp_tensors", y.detach())
y.sum().backward()
emit("clamp_grad_x", x.grad)
emit("clamp_grad_min", lo.grad)
emit("clamp_grad_max", hi.grad)
emit("clamp_nan_bound", torch.clamp(torch.tensor([1.0, 5.0]), min=torch.tensor([nan, 0.0])))
emit("sign", torch.sign(torch.tensor([-2.0, 0.0, -0.0, 3.0, nan])))
emit("sign_int", torch.sign(torch.tensor([-2, 0, 3])))

# norm: values for every kind of p, and the gradients at a zero vector and at ties.
v = torch.tensor([[3.0, 0.0, -4.0], [1.0, -2.0, 2.0]])
for label, p in [("2", 2), ("1", 1), ("inf", inf), ("minus_inf", -inf), ("0", 0), ("3", 3), ("0.5", 0.5), ("minus1", -1)]:
    emit("norm_p" + label, torch.norm(v, p=p, dim=1))
emit("norm_frobenius", torch.norm(v))
emit("norm_empty", torch.norm(torch.zeros(0)))
for label, p in [("2", 2), ("1", 1), ("inf", inf), ("3", 3), ("0.5", 0.5), ("minus1", -1)]:
    z = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, -3.0]], requires_grad=True)
    torch.norm(z, p=p, dim=1).sum().backward()
    emit("norm_grad_zero_p" + label, z.grad)
t = torch.tensor([1.0, 3.0, -3.0, -2.0], requires_grad=True)
torch.norm(t, p=inf).backward()
emit("norm_grad_inf_ties", t.grad)

# index_select, gather and scatter_add, and their gradients (repeated indices sum).
base = torch.arange(12.0).reshape(3, 4)
emit("index_select_dim0", torch.index_select(base, 0, torch.tensor([2, 0, 2])))
emit("index_select_dim1_int32", torch.index_select(base, 1, torch.tensor([3, 1], dtype=torch.int32)))
emit("gather_dim1", torch.gather(base, 1, torch.tensor([[0, 3], [1, 1], [3, 2]])))
emit("scatter_add_dim0", torch.scatter_add(torch.ones(3, 4, dtype=torch.int64), 0, torch.tensor([[2, 0, 2, 2]]), torch.tensor([[5, 6, 7, 8]])))
x = base.clone().requires_grad_()
(torch.index_select(x, 0, torch.tensor([2, 0, 2])) * torch.arange(12.0).reshape(3, 4)).sum().backward()
emit("index_select_grad", x.grad)
x = base.clone().requires_grad_()
(torch.gather(x, 1, torch.tensor([[0, 0], [1, 1], [3, 2]])) * torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).sum().backward()
emit("gather_grad", x.grad)
src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
(torch.scatter_add(torch.zeros(3, 4), 1, torch.tensor([[1, 1], [0, 3], [2, 2]]), src) * base).sum().backward()
emit("scatter_add_grad_src", src.grad)
