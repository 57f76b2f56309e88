#!/usr/bin/env bash
# The main job in one command: installs what is missing, builds, and trains the SmallCNN on
# Fashion-MNIST. Arguments go to the trainer, e.g. bash scripts/train.sh --epochs 5 --threads 2
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build --target train_fashion_mnist
exec ./build/examples/train_fashion_mnist "$@"
