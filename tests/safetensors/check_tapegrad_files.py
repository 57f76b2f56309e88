"""PyTorch reads what tapegrad writes: the files that test_safetensors' case "writes tapegrad's
ResNet-18 and MobileNetV2 for PyTorch" leaves in DIR must hold torchvision's state_dict names, in
its order, with its dtypes and shapes, load strictly into torchvision's models, and give
tapegrad's eval-mode logits on the stored input.
  /usr/bin/python3 check_tapegrad_files.py DIR"""
import os
import sys

import torch
import torchvision

from safetensors_io import read


def load(path):
    with open(path, "rb") as f:
        return read(f.read())


def main(directory):
    _, io, _ = load(os.path.join(directory, "io.safetensors"))
    failures = []
    for name, build in (("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        order, state, metadata = load(os.path.join(directory, name + ".safetensors"))
        model = build(num_classes=10)
        want = model.state_dict()
        if order != list(want):
            failures.append(f"{name}: names differ from torchvision's: {sorted(set(order) ^ set(want))[:10]}")
            continue
        for key, t in state.items():
            if t.dtype != want[key].dtype or t.shape != want[key].shape:
                failures.append(f"{name}: {key} is {t.dtype} {list(t.shape)}, torchvision's {want[key].dtype} {list(want[key].shape)}")
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(io["input"])
        error = ((logits - io[name + ".logits"]).abs().max() / io[name + ".logits"].abs().max()).item()
        print(f"{name}: {len(order)} entries, metadata {metadata}, logits within {error:.2e} of tapegrad's")
        if not error < 1e-4:
            failures.append(f"{name}: logits differ from tapegrad's by {error:.2e}")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
