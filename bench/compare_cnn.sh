#!/usr/bin/env bash
# Seconds per training epoch of the shipped CNN, ratflow vs PyTorch, alternating so both see
# the same load. Usage: bench/compare_cnn.sh [ROUNDS] [EPOCHS] [THREADS]   (needs a release
# build and `torch` + `numpy` importable by $PYTHON, default build/venv-torch/bin/python).
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
epochs=${2:-3}
threads=${3:-1}
py=${PYTHON:-build/venv-torch/bin/python}
arch="conv2d:16:3x3,batchnorm,relu,max_pool2d:2,res(conv2d:16:3x3,batchnorm,relu,conv2d:16:3x3,batchnorm),relu,max_pool2d:2,conv2d:32:3x3,batchnorm,relu,flatten,dense:10"
for r in $(seq 1 "$rounds"); do
  echo "== round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$py" bench/torch_cnn.py --arch "$arch" --threads "$threads" --epochs "$epochs" | tail -n 2 | sed "s/^ */torch   /"
  ./target/release/ratflow bench-train --arch "$arch" --threads "$threads" --epochs "$epochs" | tail -n 4 | sed "s/^ */ratflow /"
done
