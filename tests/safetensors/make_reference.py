"""Writes the safetensors files that tests/test_safetensors.cpp loads, with PyTorch 1.13 and
torchvision (run with /usr/bin/python3 from this directory's parent's parent, or anywhere):

  resnet18.safetensors.gz      torchvision's resnet18(num_classes=10) state_dict, every name and
  mobilenet_v2.safetensors.gz  buffer as PyTorch saves it (num_batches_tracked included)
  reference_io.safetensors.gz  a fixed input batch, both models' eval-mode logits on it, and F16 /
                               BF16 values with the float32 values PyTorch widens them to

Size: the two models hold 13.4 million float32 weights (54 MB). To keep the committed files
small, every weight of rank >= 2 is a random pattern of 97 values (scaled to torchvision's
initial standard deviation for that tensor) repeated over the tensor, and the files are gzipped:
deflate turns the repeats into back-references, ~1 MB in all. 97 is prime, so the pattern lines
up with no dimension: a transposed or misplaced weight still changes the logits. The 1-d
parameters and the running statistics (from three training-mode batches, so
num_batches_tracked = 3) are ordinary random values."""
import gzip
import os

import torch
import torchvision

from safetensors_io import write

HERE = os.path.dirname(os.path.abspath(__file__))
PERIOD = 97


def fill_like_torchvision(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                pattern = torch.randn(PERIOD, generator=gen) * max(p.std().item(), 1e-2)
                reps = (p.numel() + PERIOD - 1) // PERIOD
                p.copy_(pattern.repeat(reps)[: p.numel()].view_as(p))
            elif name.endswith("weight"):  # batch norm scale
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64, generator=gen))
    model.eval()


def save_gz(name, blob):
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(gzip.compress(blob, compresslevel=9, mtime=0))
    print(f"{path}: {len(blob)} bytes, {os.path.getsize(path)} gzipped")


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1313)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    io = {"input": x}
    models = {"resnet18": torchvision.models.resnet18(num_classes=10),
              "mobilenet_v2": torchvision.models.mobilenet_v2(num_classes=10)}
    for name, model in models.items():
        fill_like_torchvision(model, gen)
        with torch.no_grad():
            logits = model(x)
            exact = model.double()(x.double())
        model.float()
        print(f"{name}: float32 logits differ from float64 by {((logits.double() - exact).abs().max() / exact.abs().max()).item():.2e} "
              f"(relative to the largest)")
        io[name + ".logits"] = logits
        state = {k: v for k, v in model.state_dict().items()}
        save_gz(name + ".safetensors.gz", write(None, state, {"format": "pt", "source": "torchvision " + torchvision.__version__}))

    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.0e-8, 3.0e-5, float("inf"), float("-inf"), 1.0 / 3.0,
                            -1234.5678, 1.0e-40, 3.0e38])
    special = torch.cat([special, torch.randn(51, generator=gen) * 100]).view(8, 8)
    for dtype, key in ((torch.float16, "half"), (torch.bfloat16, "bfloat16")):
        stored = special.to(dtype)
        io[key + ".stored"] = stored
        io[key + ".as_float"] = stored.float()
    save_gz("reference_io.safetensors.gz", write(None, io))


if __name__ == "__main__":
    main()
