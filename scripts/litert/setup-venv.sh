#!/usr/bin/env bash
# Creates the Python venv that runs LiteRT (the int8 TFLite interpreter ratflow checks itself
# against). Usage: scripts/litert/setup-venv.sh [DIR]   (default build/venv-litert; build/ is
# git-ignored). Idempotent: a venv that already imports ai_edge_litert 2.3.0 and numpy is
# left alone, so tests may call this every run. Packages come from PyPI through pip.
# Exit 0: ready (prints nothing); exit 3: python3, its venv module or pip is missing, or the
# install failed (one line on stderr saying which); the caller may then skip LiteRT checks.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${1:-build/venv-litert}
# Pinned: the rescale rules in DESIGN section 6 were measured on this release; another
# release may round differently in its optimized kernels.
litert_version=2.3.0
py=${PYTHON:-python3}

ready() {
  [ -x "$dir/bin/python" ] && "$dir/bin/python" - "$litert_version" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import numpy  # noqa: F401
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: F401
sys.exit(0 if version("ai-edge-litert") == sys.argv[1] else 1)
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

# A half-made venv (interrupted earlier, or from another Python) is rebuilt from scratch.
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
if ! "$py" -m venv "$dir" >/dev/null 2>&1; then
  echo "error: '$py -m venv $dir' failed (Debian: apt-get install python3-venv)" >&2
  exit 3
fi
if ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "error: the venv $dir has no pip (Debian: apt-get install python3-pip python3-venv)" >&2
  exit 3
fi
log="$dir/pip-install.log"
echo "installing ai-edge-litert==$litert_version and numpy into $dir (PyPI)..." >&2
if ! "$dir/bin/python" -m pip install --quiet "ai-edge-litert==$litert_version" numpy >"$log" 2>&1; then
  echo "error: pip install ai-edge-litert==$litert_version numpy failed (no PyPI access?), see $log" >&2
  exit 3
fi
if ! ready; then
  echo "error: $dir was installed but cannot import ai_edge_litert $litert_version (see $log)" >&2
  exit 3
fi
