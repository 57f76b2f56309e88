#!/usr/bin/env python3
"""Writes the PyTorch reference files that tests/test_models.cpp checks tapegrad's model ports against.

For each model (torchvision's ResNet-18 block structure at a small width, torchvision's MobileNetV2
at width_mult 0.1 with a short inverted-residual setting, a small U-Net) it stores, in tapegrad's
checkpoint format (nn/serialize.hpp):
  param.<name>  the initial weights (float32 values; the float64 model uses the same values)
  buffer.<name> BatchNorm running statistics after the training-mode forward
  input, labels the batch (labels as float64 class indices)
  logits        the float64 forward in training mode
  loss          cross_entropy(logits, labels), mean
  grad.<name>   d loss / d param, float64
Run with Debian's PyTorch (python3-torch, python3-torchvision), from the repository root:
  /usr/bin/python3 tests/models/make_reference.py
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import mobilenet_v2
from torchvision.models.resnet import BasicBlock, ResNet

from tgck import write_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))


class SmallResNet18(ResNet):
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) with the widths 64..512 divided by 64/width:
    ResNet.__init__ hard-codes 64, so the layers are rebuilt here exactly as it builds them."""

    def __init__(self, width, num_classes):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, width * 2, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, width * 4, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, width * 8, 2, stride=2)
        self.fc = nn.Linear(width * 8, num_classes)
        for m in self.modules():  # ResNet.__init__'s initialisation, for the rebuilt layers
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                # Random affine parameters, so that the gradient check sees them used.
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.block(x)


class SmallUNet(nn.Module):
    """The U-Net of Ronneberger et al. at depth 2 with padded convolutions, bilinear upsampling and
    concatenated skips (the common PyTorch port); the output is per-pixel class logits."""

    def __init__(self, cin, classes, width):
        super().__init__()
        self.inc = DoubleConv(cin, width)
        self.down1 = DoubleConv(width, width * 2)
        self.down2 = DoubleConv(width * 2, width * 4)
        self.up1 = DoubleConv(width * 4 + width * 2, width * 2)
        self.up2 = DoubleConv(width * 2 + width, width)
        self.outc = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(F.max_pool2d(x1, 2))
        x3 = self.down2(F.max_pool2d(x2, 2))
        y = F.interpolate(x3, scale_factor=2, mode="bilinear", align_corners=True)
        y = self.up1(torch.cat([x2, y], dim=1))
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        y = self.up2(torch.cat([x1, y], dim=1))
        return self.outc(y)


def kink_margin(model, x):
    """The smallest distance of any ReLU / ReLU6 input to a kink (0, and 6 for ReLU6). A float32 run
    flips the subgradient of an input closer than its rounding error, which changes the gradients
    by far more than rounding: the test data must keep clear of that."""
    margin = [float("inf")]

    def hook(module, inputs):  # before the op: torchvision's ReLUs work in place
        v = inputs[0].detach()
        d = v.abs()
        if isinstance(module, nn.ReLU6):
            d = torch.minimum(d, (v - 6).abs())
        margin[0] = min(margin[0], d.min().item())

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    with torch.no_grad():
        copy.deepcopy(model).train()(x)
    for h in handles:
        h.remove()
    return margin[0]


def make(name, model, x, labels, logits_of=lambda out: out):
    # Weights rounded to float32, so that the float32 and float64 ports load the same values.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.float().double())
    model = model.double().train()
    margin = kink_margin(model, x)
    if margin < 1e-5:
        return False
    print(f"{name}: the closest activation input to a ReLU kink is {margin:.2e} away")
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = model(x)
    logits = logits_of(out)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    entries = [("param." + n, p.float()) for n, p in params.items()]
    entries += [("buffer." + n, b) for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]
    entries += [("input", x.float()), ("labels", labels.double()), ("logits", out.detach()), ("loss", loss.detach().reshape(1))]
    entries += [("grad." + n, p.grad) for n, p in model.named_parameters()]
    write_checkpoint(os.path.join(HERE, name + ".tgck"), entries)
    return True


def make_ops():
    """Single ops with inputs, a cotangent c, the output and d(sum(out * c))/d input for each input:
    '<case>.in0', '<case>.in1', ..., '<case>.out', '<case>.cot', '<case>.grad0', ..."""
    gen = torch.Generator().manual_seed(2)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()

    cases = {
        "pad_reflect": ([r(1, 2, 3, 4)], lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect")),
        "pad_replicate": ([r(1, 2, 3, 4)], lambda x: F.pad(x, (3, 0, 1, 2), mode="replicate")),
        "pad_constant": ([r(2, 3, 4)], lambda x: F.pad(x, (1, 2, 0, 1), value=0.5)),
        "nearest_x2": ([r(1, 2, 3, 5)], lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
        "nearest_size": ([r(1, 2, 7, 5)], lambda x: F.interpolate(x, size=(3, 4), mode="nearest")),
        "bilinear_x2": ([r(1, 2, 3, 5)], lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)),
        "bilinear_align_corners": ([r(1, 2, 3, 5)], lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)),
        "bilinear_down": ([r(1, 1, 7, 6)], lambda x: F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=False)),
        "gelu": ([r(3, 7, scale=3)], F.gelu),
        "gelu_tanh": ([r(3, 7, scale=3)], lambda x: F.gelu(x, approximate="tanh")),
        "silu": ([r(3, 7, scale=3)], F.silu),
        "hardswish": ([r(3, 7, scale=3)], F.hardswish),
        "elu": ([r(3, 7, scale=3)], lambda x: F.elu(x, alpha=1.5)),
        "leaky_relu": ([r(3, 7, scale=3)], lambda x: F.leaky_relu(x, 0.2)),
        "relu6": ([r(3, 7, scale=4)], F.relu6),
        "hardtanh": ([r(3, 7, scale=2)], F.hardtanh),
        "clamp": ([r(3, 7, scale=2)], lambda x: torch.clamp(x, -0.5, 0.7)),
        "layer_norm": ([r(2, 3, 4), r(3, 4), r(3, 4)], lambda x, w, b: F.layer_norm(x, (3, 4), w, b)),
        "group_norm": ([r(2, 4, 3, 3), r(4), r(4)], lambda x, w, b: F.group_norm(x, 2, w, b)),
        "var": ([r(3, 5)], lambda x: torch.var(x, dim=1)),
        "std_population_keepdim": ([r(3, 5)], lambda x: torch.std(x, dim=0, unbiased=False, keepdim=True)),
        "conv_same_even": ([r(1, 2, 5, 6), r(3, 2, 2, 4)], lambda x, w: F.conv2d(x, w, padding="same")),
        "conv_same_dilated": ([r(1, 2, 5, 6), r(3, 2, 3, 3)], lambda x, w: F.conv2d(x, w, padding="same", dilation=2)),
        "matmul_vector_matrix": ([r(4), r(2, 4, 3)], torch.matmul),
        "batch_norm_3d": ([r(3, 2, 5), r(2), r(2)], lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
    }
    entries = []
    for name, (inputs, fn) in cases.items():
        out = fn(*inputs)
        cot = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        grads = torch.autograd.grad((out * cot).sum(), inputs)
        entries += [(f"{name}.in{i}", t) for i, t in enumerate(inputs)]
        entries += [(f"{name}.out", out), (f"{name}.cot", cot)]
        entries += [(f"{name}.grad{i}", g) for i, g in enumerate(grads)]
    # cross_entropy with class weights, an ignored row and label smoothing, in each reduction:
    # 'ce.logits', 'ce.weight', 'ce.labels' (float64 class indices, -100 ignored), then
    # 'ce_<variant>.out' and 'ce_<variant>.grad' (of sum(out * 'ce_<variant>.cot') for None).
    logits = r(6, 4)
    weight = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
    labels = torch.tensor([2, 0, -100, 3, 1, 2])
    entries += [("ce.logits", logits), ("ce.weight", weight), ("ce.labels", labels.double())]
    variants = {
        "weighted_mean": dict(weight=weight),
        "smoothed_mean": dict(label_smoothing=0.2),
        "weighted_smoothed_sum": dict(weight=weight, label_smoothing=0.1, reduction="sum"),
        "weighted_smoothed_none": dict(weight=weight, label_smoothing=0.3, reduction="none"),
        "plain_ignore_mean": dict(),
    }
    for name, kw in variants.items():
        out = F.cross_entropy(logits, labels, ignore_index=-100, **kw)
        cot = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        (grad,) = torch.autograd.grad((out * cot).sum(), [logits])
        entries += [(f"ce_{name}.out", out.reshape(-1)), (f"ce_{name}.cot", cot.reshape(-1)), (f"ce_{name}.grad", grad)]
    write_checkpoint(os.path.join(HERE, "ops_reference.tgck"), entries)


def small_mobilenet():
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]]  # t, c, n, s: the first three rows of MobileNetV2's
    mnet = mobilenet_v2(width_mult=0.25, num_classes=10, inverted_residual_setting=setting, dropout=0.0)
    for m in mnet.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return mnet


def segmentation_rows(out):
    """Segmentation logits [N,K,H,W] as rows [N*H*W, K], which is what cross_entropy over pixels is."""
    return out.permute(0, 2, 3, 1).reshape(-1, out.shape[1])


def main():
    make_ops()
    # Each model draws weights and a batch from successive seeds until no activation sits on a
    # ReLU kink (see kink_margin); the seed that was used is printed.
    builders = [
        ("resnet18_w2", lambda: SmallResNet18(width=2, num_classes=10), (4, 3, 32, 32), 10, None),
        ("mobilenet_v2_small", small_mobilenet, (4, 3, 32, 32), 10, None),
        ("unet_small", lambda: SmallUNet(3, 3, 4), (2, 3, 16, 16), 3, segmentation_rows),
    ]
    for name, build, shape, classes, logits_of in builders:
        for seed in range(100):
            torch.manual_seed(seed)
            model = build()
            gen = torch.Generator().manual_seed(1000 + seed)
            x = torch.randn(*shape, generator=gen).float().double()
            if logits_of is None:
                labels = torch.randint(0, classes, (shape[0],), generator=gen)
                done = make(name, model, x, labels)
            else:
                labels = torch.randint(0, classes, (shape[0] * shape[2] * shape[3],), generator=gen)
                done = make(name, model, x, labels, logits_of)
            if done:
                print(f"{name}: seed {seed}")
                break


if __name__ == "__main__":
    sys.exit(main())
