#!/usr/bin/env bash
# Lint, portability and synthesis checks of the ratflow RTL library, one run per line of
# lint.list (a module and a parameter set, chosen so that every generate branch is seen):
#   1. verilator --lint-only -Wall: no output at all (no warning of any kind);
#   2. iverilog -g2005 (Verilog-2005) compiles it, and vvp runs its elaboration checks;
#   3. yosys: synth -top <module> (generic cells), then no latch cell of any kind.
# Lines starting with "!" are illegal parameter sets that each tool must refuse.
# Usage: rtl/lib/lint.sh [--filter REGEX] [--no-synth]. Exit status 0 only if all pass.
set -u -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
filter=""
synth=1
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter="$2"; shift 2 ;;
    --no-synth) synth=0; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "lint.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for tool in verilator iverilog vvp yosys; do
  command -v "$tool" >/dev/null || { echo "lint.sh: $tool not found (apt-get install verilator iverilog yosys)" >&2; exit 3; }
done
work="$here/build/lint"
rm -rf "$work"
mkdir -p "$work"
# $readmemh images under the modules' default names (synthesis reads them when elaborating):
# pseudo-random words (so that synthesis keeps the datapath; all-zero ROMs would fold it
# away), 256 words of 4096 bits, truncated by the tools to each memory's shape.
rom="$work/rom.hex"
awk 'BEGIN { srand(7); for (i = 0; i < 256; i++) { s = ""; for (j = 0; j < 1024; j++) s = s sprintf("%x", int(rand() * 16)); print s } }' >"$rom"
for f in rf_requant.hex rf_mac_w.hex rf_mac_b.hex rf_dwmac_w.hex rf_dwmac_b.hex; do cp "$rom" "$work/$f"; done
srcs=("$here"/rf_*.v)
pass=0
fail=0
n=0
while read -r mod params; do
  case "$mod" in ''|\#*) continue ;; esac
  expect_fail=0
  case "$mod" in !*) expect_fail=1; mod="${mod#!}" ;; esac
  if [ -n "$filter" ] && ! echo "$mod $params" | grep -Eq "$filter"; then continue; fi
  n=$((n + 1))
  vflags=() iflags=() ychp=""
  for p in $params; do
    k="${p%%=*}"; v="${p#*=}"
    case "$v" in str:*) v="\"${v#str:}\"" ;; esac
    yv="$v"
    case "$v" in -[0-9]*) yv="32'h$(printf '%08x' $(( v & 0xffffffff )))" ;; esac   # yosys: no "-3"
    vflags+=("-G$k=$v"); iflags+=("-P$mod.$k=$v"); ychp+=" -set $k $yv"
  done
  tag="$mod $params"
  log="$work/$n.log"
  problems=""
  (cd "$work" && verilator --lint-only -Wall -I"$here" --top-module "$mod" "${vflags[@]}" "${srcs[@]}") >"$log.vl" 2>&1
  vl_rc=$?
  (cd "$work" && iverilog -g2005 -I"$here" -s "$mod" "${iflags[@]}" -o "$n.vvp" "${srcs[@]}" && vvp -n "$n.vvp") >"$log.iv" 2>&1
  iv_rc=$?
  ys_rc=0
  if [ "$synth" -eq 1 ] || [ "$expect_fail" -eq 1 ]; then
    ycmd="read_verilog -defer -I$here ${srcs[*]}; chparam$ychp $mod; hierarchy -top $mod"
    [ "$expect_fail" -eq 0 ] && ycmd="$ycmd; synth -top $mod; select -assert-none t:\$dlatch t:\$adlatch t:\$dlatchsr t:\$_DLATCH* t:\$_DLATCHSR*; tee -o $n.stat stat"
    (cd "$work" && yosys -q -p "$ycmd") >"$log.ys" 2>&1
    ys_rc=$?
  fi
  if [ "$expect_fail" -eq 0 ]; then
    [ $vl_rc -ne 0 ] || [ -s "$log.vl" ] && problems+=" verilator:$(grep -m1 -E '%(Warning|Error)' "$log.vl" | cut -c1-150)"
    [ $iv_rc -ne 0 ] && problems+=" iverilog:$(grep -m1 -iE 'error|fatal' "$log.iv" | cut -c1-150)"
    [ $ys_rc -ne 0 ] && problems+=" yosys:$(grep -m1 -E 'ERROR|Assertion' "$log.ys" | cut -c1-150)"
    if [ -z "$problems" ]; then
      cells=""
      [ "$synth" -eq 1 ] && cells="$(awk '/Number of cells:/ {c=$4} END {print c}' "$work/$n.stat")"
      echo "PASS $tag${cells:+ (yosys: $cells cells, no latch)}"
      pass=$((pass + 1))
    else
      echo "FAIL $tag:$problems"
      fail=$((fail + 1))
    fi
  else
    [ $vl_rc -eq 0 ] && problems+=" verilator accepted it"
    [ $iv_rc -eq 0 ] && problems+=" icarus accepted it"
    [ $ys_rc -eq 0 ] && problems+=" yosys accepted it"
    if [ -z "$problems" ]; then
      msg="$(grep -m1 -oE 'rf_[a-z_]+: [^"]*' "$log.vl" | head -n 1)"
      echo "PASS refused: $tag (${msg:-refused})"
      pass=$((pass + 1))
    else
      echo "FAIL illegal $tag:$problems"
      fail=$((fail + 1))
    fi
  fi
done <"$here/lint.list"
echo "lint.sh: $pass of $n checks passed"
[ "$fail" -eq 0 ] && [ "$n" -gt 0 ]
