#!/usr/bin/env bash
# Installs the external tools ratflow drives (Debian packages), only if any is missing.
# Idempotent: a machine that already has them is left alone. Needs root (or passwordless sudo)
# the first time; otherwise says exactly what to install.
set -euo pipefail

# tool-on-PATH:debian-package; nextpnr-ice40/icepack are optional extras (Fmax figures).
required=(verilator:verilator yosys:yosys iverilog:iverilog)
optional=(nextpnr-ice40:nextpnr-ice40 icepack:fpga-icestorm)

missing=()
for entry in "${required[@]}" "${optional[@]}"; do
  tool=${entry%%:*}; pkg=${entry#*:}
  command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
done
# tests/ecosystem.rs creates a Python virtual environment (fusesoc, cocotb: cocotb/requirements.txt).
venv_ok() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
venv_ok || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "error: missing Debian packages: ${missing[*]}" >&2
  echo "       run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 3
fi

echo "installing ${missing[*]} (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# Optional packages may be absent from a distribution: install them separately so that their
# absence never blocks the required ones.
req_pkgs=()
for entry in "${required[@]}"; do
  tool=${entry%%:*}; pkg=${entry#*:}
  command -v "$tool" >/dev/null 2>&1 || req_pkgs+=("$pkg")
done
venv_ok || req_pkgs+=(python3-venv)
if [ ${#req_pkgs[@]} -gt 0 ]; then
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${req_pkgs[@]}" >/dev/null
fi
for entry in "${optional[@]}"; do
  tool=${entry%%:*}; pkg=${entry#*:}
  command -v "$tool" >/dev/null 2>&1 || "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
    || echo "note: optional package $pkg not installed (iCE40 Fmax figures will be absent)" >&2
done
for entry in "${required[@]}"; do
  tool=${entry%%:*}
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool still missing after apt-get" >&2; exit 3; }
done
venv_ok || { echo "error: python3 -m venv still unusable after apt-get (python3-venv)" >&2; exit 3; }
echo "tools: $(verilator --version | head -1); $(yosys -V); $(iverilog -V 2>/dev/null | head -1)" >&2
