#!/usr/bin/env bash
# Verilator simulation speed of a DS-CNN built from the library (tb/tb_dscnn.v), in CPU time
# of the simulation loop (the machine may be shared: wall-clock figures are printed too).
# Variants: the default folding at k = 31 and k = 4, all requantizer lanes as wide as the MAC
# output (no accumulator width converter), and Verilator's default -Os C++ optimisation.
# Usage: rtl/lib/bench.sh [IMAGES] (default 300). Builds go to rtl/lib/build/bench-*.
set -u -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
images="${1:-300}"
objcache=""
command -v ccache >/dev/null && objcache="OBJCACHE=ccache"
fold="-GC1_PE=64 -GDW_SIMD=16 -GPW_SIMD=16 -GPW_PE=8 -GPOOL_SIMD=4 -GFC_SIMD=1"
cfold="-DP_C1_PE=64 -DP_DW_SIMD=16 -DP_PW_SIMD=16 -DP_PW_PE=8 -DP_FC_SIMD=1"
run() {  # run NAME OPT_FAST "GFLAGS" "DFLAGS"
  local name="$1" opt="$2" g="$3" d="$4" out="$here/build/bench-$1"
  rm -rf "$out"
  mkdir -p "$out"
  # shellcheck disable=SC2086
  if ! verilator --cc --exe --build -j 2 -O3 -Wno-fatal -Wno-lint -Wno-style -I"$here" -I"$here/tb" \
      --top-module tb_dscnn -Mdir "$out/obj" -o ../Vtb $g -CFLAGS "-O2 -I$here/tb $d" \
      -MAKEFLAGS "$objcache OPT_FAST=$opt OPT_SLOW=-O1 OPT_GLOBAL=-O1" \
      "$here"/rf_*.v "$here/tb/tb_dscnn.v" "$here/tb/tb_dscnn.cpp" >"$out/build.log" 2>&1; then
    echo "$name: build failed ($out/build.log)"
    return 1
  fi
  (cd "$out" && ./Vtb --frames "$images" | tail -n 1 | sed "s/^/$name: /")
}
run k31 -O2 "$fold -GK_BITS=31" "$cfold -DP_K_BITS=31"
run k4 -O2 "$fold -GK_BITS=4" "$cfold -DP_K_BITS=4"
run wide-requant -O2 "$fold -GK_BITS=31 -GC1_RQ=64 -GDW_RQ=16 -GPW_RQ=8 -GFC_RQ=12" \
    "$cfold -DP_K_BITS=31 -DP_C1_RQ=64 -DP_DW_RQ=16 -DP_PW_RQ=8 -DP_FC_RQ=12"
run k31-Os -Os "$fold -GK_BITS=31" "$cfold -DP_K_BITS=31"
