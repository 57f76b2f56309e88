#!/usr/bin/python3
"""PyTorch's counterpart of examples/train_fashion_mnist: the SmallCNN adapted to 1x28x28 input
(fc 3136-128), AdamW lr 1e-3, batch 64, inputs normalised by the training set's mean and standard
deviation. Used for the epoch time and for the peak RSS of a short training run.

Prints one JSON object: epoch_seconds, test_accuracy (per epoch), steps, max_rss_kib.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir):
    def images(name):
        return torch.from_numpy(read_idx(os.path.join(data_dir, name)).astype(np.float32) / 255.0).unsqueeze(1)

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(data_dir, name)).astype(np.int64))

    train_x, test_x = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
    mean, std = train_x.mean(), train_x.std()
    return ((train_x - mean) / std, labels("train-labels-idx1-ubyte.gz"),
            (test_x - mean) / std, labels("t10k-labels-idx1-ubyte.gz"))


def train(epochs=1, max_steps=None, threads=2, batch=64, seed=0, data_dir=DATA_DIR, log=sys.stderr):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pytorch_reference import small_cnn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_x, train_y, test_x, test_y = load(data_dir)
    model = small_cnn(in_channels=1, image=28)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    report = {"threads": threads, "epoch_seconds": [], "test_accuracy": [], "steps": 0}
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x))
        start = time.perf_counter()
        for first in range(0, len(order), batch):
            if max_steps is not None and report["steps"] >= max_steps:
                break
            idx = order[first:first + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            loss.backward()
            opt.step()
            report["steps"] += 1
        report["epoch_seconds"].append(time.perf_counter() - start)
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000]).sum())
                          for i in range(0, len(test_x), 1000))
        report["test_accuracy"].append(correct / len(test_x))
        print("epoch {} {:.2f} s test accuracy {:.4f}".format(
            epoch + 1, report["epoch_seconds"][-1], report["test_accuracy"][-1]), file=log)
    report["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="stop each epoch after this many steps in all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=DATA_DIR)
    args = parser.parse_args()
    print(json.dumps(train(args.epochs, args.steps, args.threads, data_dir=args.data)))


if __name__ == "__main__":
    main()
