#!/usr/bin/env bash
# Creates the TensorFlow venv used only to (re)generate the committed int8 .tflite test models
# (make_op_models.py, train_mnist_keras.py). Tests never need it: the generated files are
# committed. Usage: scripts/litert/setup-tf.sh [DIR]   (default build/venv-tf, git-ignored).
# Idempotent: a venv that already imports tensorflow (with its Keras) and numpy is left alone.
# The ai-edge-litert interpreter is installed beside TensorFlow so the generating scripts can
# evaluate what they convert with LiteRT's reference kernels.
# Exit 0: ready; exit 3: python3, venv or pip missing, or the install failed (one line).
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${1:-build/venv-tf}
# The versions the committed models were generated with (TFLiteConverter output can change
# between TensorFlow releases; regenerate and re-check the fixtures when changing them).
tf_version=2.21.0
litert_version=2.3.0
py=${PYTHON:-python3}

ready() {
  [ -x "$dir/bin/python" ] && "$dir/bin/python" - "$tf_version" "$litert_version" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import numpy  # noqa: F401
ok = version("tensorflow-cpu") == sys.argv[1] and version("ai-edge-litert") == sys.argv[2]
sys.exit(0 if ok else 1)
PY
}

ready && exit 0

if ! command -v "$py" >/dev/null 2>&1; then
  echo "error: $py not found: install Python 3 (Debian: apt-get install python3 python3-venv)" >&2
  exit 3
fi
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "error: $py has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2
  exit 3
fi
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
if ! "$py" -m venv "$dir" >/dev/null 2>&1 || ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "error: '$py -m venv $dir' failed or gave no pip (Debian: apt-get install python3-venv)" >&2
  exit 3
fi
log="$dir/pip-install.log"
echo "installing tensorflow-cpu==$tf_version, ai-edge-litert==$litert_version, numpy into $dir (PyPI, ~600 MB)..." >&2
if ! "$dir/bin/python" -m pip install --quiet "tensorflow-cpu==$tf_version" \
    "ai-edge-litert==$litert_version" numpy >"$log" 2>&1; then
  echo "error: pip install tensorflow-cpu==$tf_version failed (no PyPI access, or no wheel for this Python?), see $log" >&2
  exit 3
fi
if ! ready; then
  echo "error: $dir was installed but tensorflow-cpu $tf_version / ai-edge-litert $litert_version do not import (see $log)" >&2
  exit 3
fi
