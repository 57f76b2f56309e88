"""PyTorch 1.13's side of tests/test_differential_pytorch.cpp: adversarial inputs for the ops of
the registry (0-d tensors, zero-size dims, broadcasting [1] and [] against [N], transposed,
stepped and expanded views, int64/int32/bool inputs, inf/NaN/-0.0, ties, negative dims and
keepdim) and what PyTorch gives for each: the result's dtype, shape and values (exact bits, the
sign of zero included), or that it raises; the gradient of sum(w * y) for every floating input,
and for the activations and losses the second derivative too.

Run with a Python that has torch (/usr/bin/python3 here):
    /usr/bin/python3 tests/differential/make_reference.py > tests/differential/reference.txt
The C++ side names each op the same way (its table in test_differential_pytorch.cpp).

Format, one token stream per case:
    case <name> <op> <number of inputs>
    in <dtype> <view> <base ndim> <base shape..> <n> <values..>      per input
    out <dtype> <ndim> <shape..> <n> <values..>   or   raises
    grad <input> <n> <values..>                   per floating input (gradient of the base tensor)
    gradgrad <input> <n> <values..>               d/dx of sum(w2 * dL/dx), for the second-order ops
    end
Floats are written as float.hex (so -0.0, inf and nan round-trip); views: none, t (transpose of
the last two dims), step (every other element of dim 0), expand:<d0>x<d1>.. (from the base shape).
"""
import math
import warnings

import torch
import torch.nn.functional as F

torch.manual_seed(0)
warnings.simplefilter("ignore")
f32, f64, i64, i32, b8 = torch.float32, torch.float64, torch.int64, torch.int32, torch.bool
NAMES = {f32: "float32", f64: "float64", i64: "int64", i32: "int32", b8: "bool"}


def fmt(v, dtype):
    if dtype.is_floating_point:
        return float(v).hex()
    if dtype == b8:
        return "1" if v else "0"
    return str(int(v))


def values_of(t):
    # a gradient may be an expanded zero without storage of its own: read it through a copy (that keeps -0.0)
    return [fmt(v, t.dtype) for v in torch.empty(t.shape, dtype=t.dtype).copy_(t.detach()).reshape(-1).tolist()]


def make_view(base, view):
    if view == "none":
        return base
    if view == "t":
        return base.transpose(-2, -1)
    if view == "step":
        return base[::2]
    if view.startswith("expand:"):
        return base.expand(*[int(s) for s in view[7:].split("x")])
    raise ValueError(view)


class In:
    """An input: a base tensor (dtype, shape, values) seen through a view."""

    def __init__(self, values, dtype=f32, shape=None, view="none"):
        self.dtype, self.view = dtype, view
        flat = values if isinstance(values, list) else [values]
        self.shape = list(shape) if shape is not None else ([] if not isinstance(values, list) else [len(values)])
        self.values = flat

    def tensor(self):
        base = torch.tensor(self.values, dtype=self.dtype).reshape(self.shape)
        if self.dtype.is_floating_point:
            base.requires_grad_(True)
        return base

    def line(self):
        base = torch.tensor(self.values, dtype=self.dtype).reshape(self.shape)
        return " ".join(["in", NAMES[self.dtype], self.view, str(len(self.shape))] + [str(s) for s in self.shape] +
                        [str(base.numel())] + values_of(base))


def weights(shape, dtype, shift=0):
    n = math.prod(shape)
    return (1.0 + ((torch.arange(n, dtype=torch.float64) + shift) % 3) * 0.5).to(dtype).reshape(shape)


OPS = {
    # elementwise
    "relu": lambda x: F.relu(x), "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "abs": torch.abs, "neg": torch.neg, "sign": torch.sign,
    "pow2": lambda x: x.pow(2), "pow3": lambda x: x.pow(3.0), "pow0.5": lambda x: x.pow(0.5), "pow0": lambda x: x.pow(0.0),
    "pow-1": lambda x: x.pow(-1.0),
    "clamp-1,1": lambda x: x.clamp(-1.0, 1.0), "clamp_min0": lambda x: x.clamp(min=0.0),
    "hardtanh": F.hardtanh, "relu6": F.relu6, "leaky_relu": lambda x: F.leaky_relu(x, 0.1), "elu": F.elu,
    "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu, "hardswish": F.hardswish,
    "softplus": F.softplus, "softplus2,6": lambda x: F.softplus(x, 2.0, 6.0),
    "hardsigmoid": F.hardsigmoid, "logical_not": torch.logical_not, "bitwise_not": torch.bitwise_not,
    "mul2.5": lambda x: x * 2.5, "mul2": lambda x: x * 2, "add1": lambda x: x + 1, "add0.5": lambda x: x + 0.5,
    "div2": lambda x: x / 2, "rsub1": lambda x: 1 - x, "eq0": lambda x: x == 0.0, "gt0": lambda x: x > 0.0,
    "softmax": lambda x: torch.softmax(x, -1), "softmax0": lambda x: torch.softmax(x, 0),
    "log_softmax": lambda x: torch.log_softmax(x, -1), "log_softmax0": lambda x: torch.log_softmax(x, 0),
    # reductions
    "sum": torch.sum, "sum0": lambda x: x.sum(0), "sum-1k": lambda x: x.sum(-1, keepdim=True),
    "mean": torch.mean, "mean0": lambda x: x.mean(0), "mean-1k": lambda x: x.mean(-1, keepdim=True),
    "var": torch.var, "var0": lambda x: x.var(0), "var-1k": lambda x: x.var(-1, keepdim=True),
    "std": torch.std, "std-1": lambda x: x.std(-1), "var_biased": lambda x: x.var(unbiased=False),
    "max": torch.max, "min": torch.min, "max0": lambda x: x.max(0)[0], "max-1k": lambda x: x.max(-1, keepdim=True)[0],
    "min0": lambda x: x.min(0)[0], "max0i": lambda x: x.max(0)[1], "min-1i": lambda x: x.min(-1)[1],
    "argmax": torch.argmax, "argmin": torch.argmin, "argmax0": lambda x: x.argmax(0), "argmin-1k": lambda x: x.argmin(-1, keepdim=True),
    "norm": torch.norm, "norm1": lambda x: torch.norm(x, 1), "norm_d-1": lambda x: torch.norm(x, dim=-1),
    "any": torch.any, "all": torch.all, "any0": lambda x: x.any(0), "all-1k": lambda x: x.all(-1, keepdim=True),
    # binary
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum, "eq": torch.eq, "lt": torch.lt, "ge": torch.ge,
    "logical_and": torch.logical_and, "bitwise_and": torch.bitwise_and,
    "matmul": torch.matmul, "mm": torch.mm, "cat0": lambda a, b: torch.cat([a, b], 0), "cat-1": lambda a, b: torch.cat([a, b], -1),
    "stack0": lambda a, b: torch.stack([a, b], 0), "stack-1": lambda a, b: torch.stack([a, b], -1),
    "where": lambda c, a, b: torch.where(c, a, b),
    # losses
    "mse_loss": F.mse_loss, "l1_loss": F.l1_loss, "smooth_l1_loss": F.smooth_l1_loss, "huber_loss": F.huber_loss,
    "kl_div": lambda x, t: F.kl_div(x, t, reduction="batchmean"), "bce": F.binary_cross_entropy,
    "bce_logits": F.binary_cross_entropy_with_logits,
    "mse_loss_sum": lambda x, t: F.mse_loss(x, t, reduction="sum"), "l1_loss_none": lambda x, t: F.l1_loss(x, t, reduction="none"),
    # the rest of the registry's rows
    "cross_entropy": F.cross_entropy, "cross_entropy_smooth": lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
    "cross_entropy_sum": lambda x, t: F.cross_entropy(x, t, reduction="sum"), "nll_loss": F.nll_loss,
    "layer_norm": lambda x: F.layer_norm(x, x.shape[-1:]), "layer_norm_affine": lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b),
    "group_norm2": lambda x: F.group_norm(x, 2),
    "gather1": lambda x, i: torch.gather(x, 1, i), "index_select0": lambda x, i: x.index_select(0, i),
    "index_select-1": lambda x, i: x.index_select(-1, i), "masked_fill": lambda x, m: x.masked_fill(m, -1.5),
    "linear": F.linear, "linear_bias": F.linear,
    "max_pool2d": lambda x: F.max_pool2d(x, 2), "avg_pool2d": lambda x: F.avg_pool2d(x, 2),
    "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 1), "max_pool2d_pad": lambda x: F.max_pool2d(x, 3, 2, 1),
    "pad": lambda x: F.pad(x, (1, 2)), "pad_reflect": lambda x: F.pad(x, (1, 1), mode="reflect"),
    "pad_replicate": lambda x: F.pad(x, (1, 1), mode="replicate"),
    "clamp_t": torch.clamp, "logical_or": torch.logical_or, "logical_xor": torch.logical_xor,
    "bitwise_or": torch.bitwise_or, "bitwise_xor": torch.bitwise_xor,
    "squeeze": torch.squeeze, "squeeze0": lambda x: x.squeeze(0), "unsqueeze-1": lambda x: x.unsqueeze(-1),
    "flatten": torch.flatten, "permute10": lambda x: x.permute(1, 0), "transpose0-1": lambda x: x.transpose(0, -1),
    "select-1": lambda x: x.select(-1, 0), "narrow0": lambda x: x.narrow(0, 0, 1), "slice_step": lambda x: x[::2],
    "reshape-1": lambda x: x.reshape(-1), "sum01": lambda x: x.sum((0, 1)), "mean-1-2k": lambda x: x.mean((-1, -2), keepdim=True),
    "add_": lambda a, b: a.clone().add_(b), "mul_": lambda a, b: a.clone().mul_(b), "div_": lambda a, b: a.clone().div_(b),
    "sub_": lambda a, b: a.clone().sub_(b), "relu_": lambda x: x.clone().relu_(), "exp_": lambda x: x.clone().exp_(),
    "clamp_": lambda x: x.clone().clamp_(-1.0, 1.0), "neg_": lambda x: x.clone().neg_(), "sqrt_": lambda x: x.clone().sqrt_(),
    "batch_norm": lambda x: F.batch_norm(x, None, None, training=True),
    "batch_norm_affine": lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    "interpolate_nearest": lambda x: F.interpolate(x, scale_factor=2.0), "interpolate_bilinear": lambda x: F.interpolate(
        x, size=(3, 5), mode="bilinear", align_corners=False),
    "scatter_add1": lambda x, i, s: x.scatter_add(1, i, s), "conv2d": F.conv2d,
    "to_float32": lambda x: x.to(torch.float32), "to_bool": lambda x: x.to(torch.bool), "to_float64": lambda x: x.to(torch.float64),
}
SECOND_ORDER = {"cross_entropy", "cross_entropy_smooth", "layer_norm", "group_norm2", "sigmoid", "tanh", "exp", "log", "sqrt", "pow2", "pow3", "pow0.5", "pow-1", "elu", "gelu", "gelu_tanh", "silu",
                "hardswish", "softmax", "log_softmax", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "bce",
                "bce_logits", "leaky_relu", "relu", "abs", "hardsigmoid", "var", "std", "norm", "mean", "mul", "div", "softplus",
                "softplus2,6"}


def emit(name, op, inputs):
    out = [f"case {name} {op} {len(inputs)}"] + [i.line() for i in inputs]
    bases = [i.tensor() for i in inputs]
    try:
        y = OPS[op](*[make_view(b, i.view) for b, i in zip(bases, inputs)])
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
        out.append("raises")
        out.append("end")
        print("\n".join(out))
        return
    out.append(" ".join(["out", NAMES[y.dtype], str(y.dim())] + [str(s) for s in y.shape] + [str(y.numel())] + values_of(y)))
    floating = [k for k, b in enumerate(bases) if b.requires_grad]
    if y.requires_grad and floating:
        w = weights(list(y.shape), y.dtype)
        try:
            grads = torch.autograd.grad((y * w).sum(), [bases[k] for k in floating], create_graph=op in SECOND_ORDER,
                                        allow_unused=True)
        except (RuntimeError, IndexError):  # PyTorch's own backward fails (var of [1, 1] over every dim): values only
            out.append("end")
            print("\n".join(out))
            return
        for k, g in zip(floating, grads):
            g = torch.zeros_like(bases[k]) if g is None else g
            out.append(" ".join(["grad", str(k), str(g.numel())] + values_of(g)))
        if op in SECOND_ORDER:
            total = sum(((g if g is not None else torch.zeros_like(bases[k])) * weights(list(bases[k].shape), bases[k].dtype, 1)).sum()
                        for k, g in zip(floating, grads))
            try:  # PyTorch has no second derivative for some (hardsigmoid): the case then checks the first only
                gg = torch.autograd.grad(total, [bases[k] for k in floating], allow_unused=True) if total.requires_grad else None
            except (RuntimeError, IndexError):
                gg = None
            for k, g in zip(floating, gg or []):
                g = torch.zeros_like(bases[k]) if g is None else g
                out.append(" ".join(["gradgrad", str(k), str(g.numel())] + values_of(g)))
    out.append("end")
    print("\n".join(out))


inf, nan = math.inf, math.nan
SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.0, -3.0, 10.0, -10.0, 30.0, -30.0, 100.0, -100.0, 1e-30, -1e-30, inf, -inf, nan]
UNARY = ["relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "neg", "sign", "pow2", "pow3", "pow0.5", "pow0", "pow-1",
         "clamp-1,1", "clamp_min0", "hardtanh", "relu6", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "hardswish",
         "hardsigmoid", "softplus", "softplus2,6", "logical_not", "bitwise_not", "mul2.5", "mul2", "add1", "add0.5", "div2", "rsub1", "eq0", "gt0"]
SMOOTH = ["sigmoid", "tanh", "exp", "log", "sqrt", "pow2", "pow3", "pow0.5", "pow-1", "elu", "gelu", "gelu_tanh", "silu",
          "hardswish", "leaky_relu", "relu", "abs", "hardsigmoid", "softplus", "softplus2,6"]

for op in UNARY:
    for dtype in (f32, f64):
        emit(f"{op}/special/{NAMES[dtype]}", op, [In(SPECIAL, dtype)])
    emit(f"{op}/0d", op, [In(-0.5)])
    emit(f"{op}/empty", op, [In([], f32, [2, 0])])
    emit(f"{op}/t", op, [In([0.5, -1.5, 2.0, -0.25, 3.5, -3.0], f32, [2, 3], "t")])
    emit(f"{op}/step", op, [In([0.5, -1.5, 2.0, -0.25, 3.5, -3.0], f32, [6], "step")])
    emit(f"{op}/expand", op, [In([0.5, -1.5], f32, [2, 1], "expand:2x3")])
    emit(f"{op}/int64", op, [In([-3, 0, 2, 7], i64)])
    emit(f"{op}/int32", op, [In([-3, 0, 2, 7], i32)])
    emit(f"{op}/bool", op, [In([True, False, True], b8)])
    emit(f"{op}/int0d", op, [In(-2, i64)])
for op in SMOOTH:  # second derivatives at the kinks and the far tails
    emit(f"{op}/kinks", op, [In([0.0, -3.0, 3.0, 1e-3, -1e-3, 20.0, -20.0, 0.5], f64)])

SOFT = ["softmax", "softmax0", "log_softmax", "log_softmax0"]
for op in SOFT:
    emit(f"{op}/plain", op, [In([1.0, 2.0, 3.0, -1.0, 0.5, 0.0], f32, [2, 3])])
    emit(f"{op}/inf", op, [In([inf, 1.0, 2.0, -inf, -inf, 0.0], f32, [2, 3])])
    emit(f"{op}/all-inf", op, [In([-inf, -inf, -inf, 1.0, 2.0, 3.0], f64, [2, 3])])
    emit(f"{op}/nan", op, [In([nan, 1.0, 2.0, 1.0, 2.0, 3.0], f64, [2, 3])])
    emit(f"{op}/big", op, [In([1000.0, 1001.0, -1000.0, 0.0, 1e30, -1e30], f64, [2, 3])])
    emit(f"{op}/0d", op, [In(2.0)])
    emit(f"{op}/empty", op, [In([], f32, [2, 0, 3])])
    emit(f"{op}/empty0", op, [In([], f32, [0, 3])])
    emit(f"{op}/t", op, [In([1.0, 2.0, 3.0, -1.0, 0.5, 0.0], f64, [2, 3], "t")])
    emit(f"{op}/int", op, [In([1, 2, 3], i64)])

REDUCE = ["sum", "sum0", "sum-1k", "mean", "mean0", "mean-1k", "var", "var0", "var-1k", "std", "std-1", "var_biased", "max", "min",
          "max0", "max-1k", "min0", "max0i", "min-1i", "argmax", "argmin", "argmax0", "argmin-1k", "norm", "norm1", "norm_d-1",
          "any", "all", "any0", "all-1k"]
for op in REDUCE:
    emit(f"{op}/2d", op, [In([1.0, -2.0, 3.0, 0.5, 4.0, -1.0], f32, [2, 3])])
    emit(f"{op}/ties", op, [In([2.0, 2.0, -1.0, -1.0, 2.0, -1.0], f64, [2, 3])])
    emit(f"{op}/nan", op, [In([1.0, nan, 3.0, 0.5, 4.0, nan], f64, [2, 3])])
    emit(f"{op}/inf", op, [In([inf, 1.0, -inf, 0.5, inf, inf], f64, [2, 3])])
    emit(f"{op}/zeros", op, [In([0.0, -0.0, 0.0, -0.0, 0.0, 0.0], f64, [2, 3])])
    emit(f"{op}/0d", op, [In(1.5)])
    emit(f"{op}/empty", op, [In([], f32, [0])])
    emit(f"{op}/empty20", op, [In([], f32, [2, 0])])
    emit(f"{op}/empty03", op, [In([], f32, [0, 3])])
    emit(f"{op}/one", op, [In([1.5], f64, [1, 1])])
    emit(f"{op}/t", op, [In([1.0, -2.0, 3.0, 0.5, 4.0, -1.0], f64, [2, 3], "t")])
    emit(f"{op}/step", op, [In([1.0, -2.0, 3.0, 0.5, 4.0, -1.0, 7.0, 8.0], f64, [4, 2], "step")])
    emit(f"{op}/expand", op, [In([1.0, -2.0], f64, [2, 1], "expand:2x3")])
    emit(f"{op}/int64", op, [In([1, -2, 3, 5, 4, -1], i64, [2, 3])])
    emit(f"{op}/int32", op, [In([1, -2, 3, 5, 4, -1], i32, [2, 3])])
    emit(f"{op}/bool", op, [In([True, False, True, True, True, False], b8, [2, 3])])

BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "lt", "ge", "logical_and", "bitwise_and"]
PAIRS = [
    ("f32", In([1.5, -2.0, 0.0], f32), In([0.5, 4.0, -0.0], f32)),
    ("f32-special", In([inf, -inf, nan, 0.0, -0.0, 1.0], f32), In([inf, 2.0, 1.0, -0.0, 0.0, nan], f32)),
    ("f32-zero-div", In([1.0, -1.0, 0.0, -0.0], f64), In([0.0, -0.0, 0.0, 0.0], f64)),
    ("bcast1", In([1.5, -2.0, 3.0], f32), In([2.0], f32, [1])),
    ("bcast0d", In([1.5, -2.0, 3.0], f32), In(2.0, f32)),
    ("bcast0d-left", In(2.0, f64), In([1.5, -2.0, 3.0], f64)),
    ("bcast-rows", In([1.0, 2.0, 3.0], f32, [3, 1]), In([1.0, -1.0], f32, [1, 2])),
    ("empty", In([], f32, [0, 3]), In([1.0, 2.0, 3.0], f32, [3])),
    ("t", In([1.0, 2.0, 3.0, 4.0], f32, [2, 2], "t"), In([1.0, 2.0, 3.0, 4.0], f32, [2, 2])),
    ("step-expand", In([1.0, 2.0, 3.0, 4.0], f64, [4], "step"), In([3.0], f64, [1], "expand:2")),
    ("int64", In([7, -7, 3, 0], i64), In([2, 2, -3, 5], i64)),
    ("int-div-zero", In([7, -7, 0], i64), In([0, 0, 0], i64)),
    ("int32", In([7, -7, 3], i32), In([2, 2, -3], i32)),
    ("int64-int32", In([7, -7, 3], i64), In([2, 2, -3], i32)),
    ("int-float", In([7, -7, 3], i64), In([2.0, 0.5, -3.0], f32)),
    ("float-int", In([2.0, 0.5, -3.0], f64), In([7, -7, 3], i32)),
    ("int-float0d", In([7, -7, 3], i64), In(2.5, f64)),
    ("float-int0d", In([2.0, 0.5, -3.0], f32), In(3, i64)),
    ("int32-int64-0d", In([7, -7, 3], i32), In(3, i64)),
    ("bool-int", In([True, False, True], b8), In([2, 3, 4], i64)),
    ("bool-bool", In([True, False, True], b8), In([True, True, False], b8)),
    ("bool-float", In([True, False, True], b8), In([0.5, 1.5, 2.5], f32)),
    ("f32-f64", In([1.5, -2.0, 3.0], f32), In([2.0, 2.0, 2.0], f64)),
    ("f32-f64-0d", In([1.5, -2.0, 3.0], f32), In(2.0, f64)),
    ("mismatch", In([1.0, 2.0, 3.0], f32), In([1.0, 2.0], f32)),
]
for op in BINARY:
    for label, a, b in PAIRS:
        emit(f"{op}/{label}", op, [a, b])
for label, a, b in [("neg-base", In([-8.0, -2.0, 0.0, 0.0, -0.0], f64), In([1.0 / 3, 2.0, 0.0, -1.0, -1.0], f64)),
                    ("int-neg-exp", In([2, 3], i64), In([-1, 2], i64))]:
    emit(f"pow/{label}", "pow", [a, b])

MATRIX = ["matmul", "mm", "cat0", "cat-1", "stack0", "stack-1"]
MATS = [
    ("f32", In([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], f32, [2, 3]), In([1.0, 0.5, -1.0, 2.0, 0.0, 1.0], f32, [3, 2])),
    ("square", In([1.0, 2.0, 3.0, 4.0], f64, [2, 2]), In([1.0, -1.0, 0.5, 2.0], f64, [2, 2])),
    ("t", In([1.0, 2.0, 3.0, 4.0], f64, [2, 2], "t"), In([1.0, -1.0, 0.5, 2.0], f64, [2, 2], "t")),
    ("int64", In([1, 2, 3, 4], i64, [2, 2]), In([5, 6, 7, 8], i64, [2, 2])),
    ("int64-big", In([2**40, 3, 1, 1], i64, [2, 2]), In([2**30, 1, 1, 2**62], i64, [2, 2])),
    ("int32", In([1, 2, 3, 4], i32, [2, 2]), In([5, 6, 7, 8], i32, [2, 2])),
    ("int64-int32", In([1, 2, 3, 4], i64, [2, 2]), In([5, 6, 7, 8], i32, [2, 2])),
    ("int-float", In([1, 2, 3, 4], i64, [2, 2]), In([5.0, 6.0, 7.0, 8.0], f32, [2, 2])),
    ("float-int", In([1.0, 2.0, 3.0, 4.0], f32, [2, 2]), In([5, 6, 7, 8], i64, [2, 2])),
    ("bool", In([True, False, True, True], b8, [2, 2]), In([True, True, False, True], b8, [2, 2])),
    ("bool-int", In([True, False, True, True], b8, [2, 2]), In([5, 6, 7, 8], i32, [2, 2])),
    ("f32-f64", In([1.0, 2.0, 3.0, 4.0], f32, [2, 2]), In([5.0, 6.0, 7.0, 8.0], f64, [2, 2])),
    ("empty-k", In([], f32, [2, 0]), In([], f32, [0, 3])),
    ("empty-m", In([], f32, [0, 2]), In([1.0, 2.0, 3.0, 4.0], f32, [2, 2])),
    ("inf-nan", In([inf, 0.0, nan, 1.0], f64, [2, 2]), In([0.0, 1.0, 1.0, -inf], f64, [2, 2])),
    ("vec-vec", In([1.0, 2.0, 3.0], f64), In([4.0, 5.0, 6.0], f64)),
    ("int-vec-vec", In([1, 2, 3], i64), In([4, 5, 6], i64)),
    ("mat-vec", In([1.0, 2.0, 3.0, 4.0], f64, [2, 2]), In([1.0, -1.0], f64)),
    ("batch-mat", In([1.0, 2.0, 3.0, 4.0], f64, [1, 2, 2], "expand:3x2x2"), In([1.0, -1.0, 0.5, 2.0], f64, [2, 2])),
    ("0d", In(2.0, f32), In(3.0, f32)),
    ("empty1d-legacy", In([], f32, [0]), In([1.0, 2.0, 3.0, 4.0], f32, [2, 2])),
]
for op in MATRIX:
    for label, a, b in MATS:
        emit(f"{op}/{label}", op, [a, b])

for label, c, a, b in [
    ("plain", In([True, False, True], b8), In([1.0, 2.0, 3.0], f32), In([-1.0, -2.0, -3.0], f32)),
    ("bcast", In([True, False], b8, [2, 1]), In([1.0, 2.0, 3.0], f64), In(0.5, f64)),
    ("int-float", In([True, False, True], b8), In([1, 2, 3], i64), In([-1.0, -2.0, -3.0], f32)),
    ("int-int32", In([True, False, True], b8), In([1, 2, 3], i64), In([-1, -2, -3], i32)),
    ("nan", In([True, False], b8), In([nan, nan], f64), In([1.0, 1.0], f64)),
    ("empty", In([], b8, [0]), In([], f32, [0]), In([], f32, [0])),
    ("float-cond", In([1.0, 0.0], f32), In([1.0, 2.0], f32), In([-1.0, -2.0], f32)),
]:
    emit(f"where/{label}", "where", [c, a, b])

LOSSES = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "bce", "bce_logits", "mse_loss_sum", "l1_loss_none"]
for op in LOSSES:
    probs = op == "bce"
    x = [0.2, 0.9, 0.5, 0.5, 0.0, 1.0] if probs else [0.5, -1.0, 2.0, 1.0, 0.0, -3.0]
    t = [0.0, 1.0, 0.5, 0.25, 0.0, 1.0] if op in ("bce", "bce_logits", "kl_div") else [0.5, 1.0, -2.5, 1.0, 1e-3, 3.0]
    emit(f"{op}/plain", op, [In(x, f64, [2, 3]), In(t, f64, [2, 3])])
    emit(f"{op}/f32", op, [In(x, f32, [2, 3]), In(t, f32, [2, 3])])
    emit(f"{op}/t", op, [In(x, f64, [2, 3], "t"), In(t, f64, [3, 2])])
    emit(f"{op}/0d", op, [In(x[0], f64), In(t[0], f64)])
    emit(f"{op}/empty", op, [In([], f32, [0, 3]), In([], f32, [0, 3])])
    emit(f"{op}/nan", op, [In([nan, 0.5], f64), In([0.5, nan], f64)])
    emit(f"{op}/int-target", op, [In([0.5, 0.25], f32), In([1, 0], i64)])
    emit(f"{op}/f32-f64", op, [In([0.5, 0.25], f32), In([1.0, 0.0], f64)])
    emit(f"{op}/bcast", op, [In([0.5, 0.25, 0.75], f64), In([1.0], f64, [1])])

CE_INPUTS = [
    ("plain", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f64, [2, 3]), In([2, 0], i64)),
    ("f32", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f32, [2, 3]), In([2, 0], i64)),
    ("int32-labels", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f64, [2, 3]), In([2, 0], i32)),
    ("ignore", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f64, [2, 3]), In([-100, 1], i64)),
    ("all-ignored", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f64, [2, 3]), In([-100, -100], i64)),
    ("inf", In([inf, 2.0, 0.5, -inf, 0.0, 3.0], f64, [2, 3]), In([0, 1], i64)),
    ("empty", In([], f32, [0, 3]), In([], i64, [0])),
    ("1d", In([1.0, 2.0, 0.5], f64), In(1, i64)),
    ("t", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f64, [3, 2], "t"), In([2, 0], i64)),
    ("4d", In([0.1 * k for k in range(12)], f64, [1, 3, 2, 2]), In([0, 2, 1, 1], i64, [1, 2, 2])),
    ("float-labels", In([1.0, 2.0, 0.5, -1.0, 0.0, 3.0], f64, [2, 3]), In([0.2, 0.3, 0.5, 1.0, 0.0, 0.0], f64, [2, 3])),
]
for op in ["cross_entropy", "cross_entropy_smooth", "cross_entropy_sum", "nll_loss"]:
    for label, x, t in CE_INPUTS:
        emit(f"{op}/{label}", op, [x, t])

X23 = [1.0, -2.0, 3.0, 0.5, 4.0, -1.0]
for label, x in [("plain", In(X23, f64, [2, 3])), ("f32", In(X23, f32, [2, 3])), ("const", In([2.0] * 6, f64, [2, 3])),
                 ("t", In(X23, f64, [3, 2], "t")), ("1d", In([1.0, 2.0, 4.0], f64)), ("empty", In([], f32, [0, 3])),
                 ("inf", In([inf, 1.0, 2.0, 0.5, 4.0, -1.0], f64, [2, 3])), ("int", In([1, 2, 3, 4, 5, 6], i64, [2, 3]))]:
    emit(f"layer_norm/{label}", "layer_norm", [x])
emit("layer_norm_affine/plain", "layer_norm_affine", [In(X23, f64, [2, 3]), In([1.0, 0.5, 2.0], f64), In([0.0, 1.0, -1.0], f64)])
emit("layer_norm_affine/f32-f64", "layer_norm_affine", [In(X23, f32, [2, 3]), In([1.0, 0.5, 2.0], f64), In([0.0, 1.0, -1.0], f64)])
X4 = [0.1 * k - 0.5 for k in range(16)]
for label, x in [("plain", In(X4, f64, [1, 4, 2, 2])), ("f32", In(X4, f32, [2, 4, 2])), ("const", In([1.0] * 16, f64, [1, 4, 4])),
                 ("3ch", In(X4[:12], f64, [1, 3, 4]))]:
    emit(f"group_norm2/{label}", "group_norm2", [x])

for label, x, i in [("plain", In(X23, f64, [2, 3]), In([2, 0, 1, 1], i64, [2, 2])),
                    ("neg-index", In(X23, f64, [2, 3]), In([-1, 0, 1, 1], i64, [2, 2])),
                    ("out-of-range", In(X23, f64, [2, 3]), In([3, 0, 1, 1], i64, [2, 2])),
                    ("int32-index", In(X23, f64, [2, 3]), In([2, 0, 1, 1], i32, [2, 2])),
                    ("int-values", In([1, 2, 3, 4, 5, 6], i64, [2, 3]), In([2, 0, 1, 1], i64, [2, 2])),
                    ("dup", In(X23, f64, [2, 3]), In([1, 1, 1, 1], i64, [2, 2]))]:
    emit(f"gather1/{label}", "gather1", [x, i])
for label, x, i in [("plain", In(X23, f64, [2, 3]), In([1, 0, 1], i64)), ("neg", In(X23, f64, [2, 3]), In([-1], i64)),
                    ("0d-index", In(X23, f64, [2, 3]), In(1, i64)), ("empty-index", In(X23, f64, [2, 3]), In([], i64, [0])),
                    ("int32", In(X23, f64, [2, 3]), In([1, 0], i32)), ("bool-values", In([True, False, True, True, False, False], b8, [2, 3]), In([1], i64)),
                    ("0d-x", In(2.5, f64), In([0, 0], i64)), ("float-index", In(X23, f64, [2, 3]), In([1.0], f32))]:
    emit(f"index_select0/{label}", "index_select0", [x, i])
    emit(f"index_select-1/{label}", "index_select-1", [x, i])
for label, x, m in [("plain", In(X23, f64, [2, 3]), In([True, False, True, False, False, True], b8, [2, 3])),
                    ("bcast", In(X23, f64, [2, 3]), In([True, False, True], b8)), ("0d-mask", In(X23, f64, [2, 3]), In(True, b8)),
                    ("int", In([1, 2, 3], i64), In([True, False, True], b8)), ("int-mask", In(X23, f64, [2, 3]), In([1, 0, 1], i64)),
                    ("bool-x", In([True, False, True], b8), In([True, False, False], b8))]:
    emit(f"masked_fill/{label}", "masked_fill", [x, m])

W = [0.5, -1.0, 2.0, 1.0, 0.0, -0.5]
for label, ins in [("plain", [In(X23, f64, [2, 3]), In(W, f64, [2, 3])]), ("1d", [In([1.0, 2.0, 3.0], f64), In(W, f64, [2, 3])]),
                   ("3d", [In(X23 * 2, f64, [2, 2, 3]), In(W, f64, [2, 3])]), ("int", [In([1, 2, 3], i64), In([1, 0, 2, 1, 1, 1], i64, [2, 3])]),
                   ("f32-f64", [In(X23, f32, [2, 3]), In(W, f64, [2, 3])]), ("empty", [In([], f32, [0, 3]), In(W, f32, [2, 3])])]:
    emit(f"linear/{label}", "linear", ins)
    emit(f"linear_bias/{label}", "linear_bias", ins + [In([0.5, -0.5], ins[1].dtype)])

P = [float(k) for k in range(16)]
for label, x in [("plain", In(P, f64, [1, 1, 4, 4])), ("nan", In([nan] + P[1:], f64, [1, 1, 4, 4])),
                 ("-inf", In([-inf] * 16, f64, [1, 1, 4, 4])), ("ties", In([1.0] * 16, f64, [1, 1, 4, 4])),
                 ("3d", In(P, f32, [1, 4, 4])), ("int", In(list(range(16)), i64, [1, 1, 4, 4])), ("odd", In(P[:15], f64, [1, 1, 3, 5])),
                 ("empty", In([], f32, [0, 1, 4, 4]))]:
    for op in ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_pool2d_pad"]:
        emit(f"{op}/{label}", op, [x])
for label, x in [("plain", In(X23, f64, [2, 3])), ("1d", In([1.0, 2.0, 3.0], f64)), ("int", In([1, 2, 3], i64)),
                 ("bool", In([True, False], b8)), ("empty", In([], f32, [2, 0])), ("3d", In(X23, f32, [1, 2, 3]))]:
    for op in ["pad", "pad_reflect", "pad_replicate"]:
        emit(f"{op}/{label}", op, [x])
for label, ins in [("plain", [In(X23, f64, [2, 3]), In([0.0, -1.0, 1.0], f64), In([1.0, 0.0, 2.0], f64)]),
                   ("lo>hi", [In(X23, f64, [2, 3]), In([2.0], f64), In([1.0], f64)]),
                   ("nan-bound", [In(X23, f64, [2, 3]), In(nan, f64), In(1.0, f64)]),
                   ("int", [In([1, 5, -3], i64), In(0, i64), In(2, i64)]), ("int-float", [In([1, 5, -3], i64), In(0.5, f64), In(2.5, f64)])]:
    emit(f"clamp_t/{label}", "clamp_t", ins)
for op in ["logical_or", "logical_xor", "bitwise_or", "bitwise_xor"]:
    for label, a, b in PAIRS:
        if label in ("f32", "int64", "int32", "int64-int32", "bool-bool", "bool-int", "int-float", "bcast0d", "empty"):
            emit(f"{op}/{label}", op, [a, b])
VIEWS = ["squeeze", "squeeze0", "unsqueeze-1", "flatten", "permute10", "transpose0-1", "select-1", "narrow0", "slice_step",
         "reshape-1", "sum01", "mean-1-2k"]
for op in VIEWS:
    for label, x in [("plain", In(X23, f64, [2, 3])), ("0d", In(1.5)), ("one", In([1.5], f64, [1, 1])), ("empty", In([], f32, [0, 3])),
                     ("t", In(X23, f64, [2, 3], "t")), ("int", In([1, 2, 3, 4, 5, 6], i64, [2, 3])), ("1d", In([1.0, 2.0, 3.0], f64))]:
        emit(f"{op}/{label}", op, [x])
for op in ["add_", "mul_", "div_", "sub_"]:
    for label, a, b in PAIRS:
        emit(f"{op}/{label}", op, [a, b])
for op in ["relu_", "exp_", "clamp_", "neg_", "sqrt_"]:
    for label, x in [("f32", In([0.5, -1.5, 2.0], f32)), ("int", In([-3, 0, 2], i64)), ("bool", In([True, False], b8)),
                     ("0d", In(-0.5, f64)), ("special", In([nan, -inf, -0.0], f64))]:
        emit(f"{op}/{label}", op, [x])
for op in ["smooth_l1_loss", "huber_loss", "l1_loss", "mse_loss"]:  # the difference exactly at the bend (beta = delta = 1) and at 0
    emit(f"{op}/bend", op, [In([1.0, -1.0, 0.5, 2.0], f64), In([0.0, 0.0, 0.5, 1.0], f64)])
emit("bce_logits/extreme", "bce_logits", [In([100.0, -100.0, 0.0, 40.0], f64), In([0.0, 1.0, 0.5, 1.0], f64)])
emit("bce_logits/extreme-f32", "bce_logits", [In([100.0, -100.0, 0.0, 40.0], f32), In([0.0, 1.0, 0.5, 1.0], f32)])
emit("bce/edges", "bce", [In([0.0, 1.0, 1e-20, 1.0 - 1e-16], f64), In([0.0, 1.0, 1.0, 0.0], f64)])

BN = [0.5, -1.0, 2.0, 0.0, 1.5, 3.0, -2.0, 0.25]
for label, x in [("plain", In(BN, f64, [2, 2, 2])), ("f32", In(BN, f32, [4, 2])), ("const", In([1.0] * 8, f64, [4, 2])),
                 ("one", In(BN[:2], f64, [1, 2])), ("4d", In(BN * 2, f64, [2, 2, 2, 2])), ("int", In([1, 2, 3, 4], i64, [2, 2]))]:
    emit(f"batch_norm/{label}", "batch_norm", [x])
emit("batch_norm_affine/plain", "batch_norm_affine", [In(BN, f64, [4, 2]), In([1.5, -0.5], f64), In([0.0, 1.0], f64)])
for label, x in [("plain", In(P[:6], f64, [1, 1, 2, 3])), ("f32", In(P[:6], f32, [1, 1, 2, 3])), ("int", In(list(range(6)), i64, [1, 1, 2, 3])),
                 ("nan", In([nan] + P[1:6], f64, [1, 1, 2, 3]))]:
    emit(f"interpolate_nearest/{label}", "interpolate_nearest", [x])
    emit(f"interpolate_bilinear/{label}", "interpolate_bilinear", [x])
for label, ins in [("plain", [In(X23, f64, [2, 3]), In([0, 0, 2, 1], i64, [2, 2]), In([1.0, 2.0, 3.0, 4.0], f64, [2, 2])]),
                   ("int", [In([1, 2, 3, 4, 5, 6], i64, [2, 3]), In([0, 0, 2, 1], i64, [2, 2]), In([1, 2, 3, 4], i64, [2, 2])]),
                   ("mixed", [In(X23, f64, [2, 3]), In([0, 0, 2, 1], i64, [2, 2]), In([1.0, 2.0, 3.0, 4.0], f32, [2, 2])])]:
    emit(f"scatter_add1/{label}", "scatter_add1", ins)
CW = [0.5, -1.0, 0.25, 2.0]
for label, ins in [("plain", [In(P[:9], f64, [1, 1, 3, 3]), In(CW, f64, [1, 1, 2, 2])]),
                   ("f32", [In(P[:9], f32, [1, 1, 3, 3]), In(CW, f32, [1, 1, 2, 2])]),
                   ("int", [In(list(range(9)), i64, [1, 1, 3, 3]), In([1, 0, 0, 1], i64, [1, 1, 2, 2])]),
                   ("f32-f64", [In(P[:9], f32, [1, 1, 3, 3]), In(CW, f64, [1, 1, 2, 2])]),
                   ("3d", [In(P[:9], f64, [1, 3, 3]), In(CW, f64, [1, 1, 2, 2])]),
                   ("inf", [In([inf] + P[1:9], f64, [1, 1, 3, 3]), In(CW, f64, [1, 1, 2, 2])])]:
    emit(f"conv2d/{label}", "conv2d", ins)
for op in ["to_float32", "to_bool", "to_float64"]:
    for label, x in [("special", In([nan, -0.0, inf, 0.5, -1.0], f64)), ("int", In([0, 3, -2], i64)), ("bool", In([True, False], b8)),
                     ("f32", In([0.1, -0.0], f32)), ("0d", In(2.5)), ("empty", In([], f32, [0]))]:
        emit(f"{op}/{label}", op, [x])
