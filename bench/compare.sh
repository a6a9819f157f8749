#!/usr/bin/env bash
# Seconds per training epoch, ratflow vs PyTorch, alternating so both see the same load.
# Usage: bench/compare.sh [ROUNDS] [EPOCHS]   (needs a release build and `torch` + `numpy`
# importable by $PYTHON, default python3). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
epochs=${2:-7}
py=${PYTHON:-python3}
for r in $(seq 1 "$rounds"); do
  echo "== round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for t in 2 1; do
    "$py" bench/torch_mlp.py --threads "$t" --epochs "$epochs" | tail -n 2 | sed "s/^ */torch   t=$t /"
    ./target/release/ratflow bench-train --threads "$t" --epochs "$epochs" | tail -n 4 | sed "s/^ */ratflow t=$t /"
  done
done
