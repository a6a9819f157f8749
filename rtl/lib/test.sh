#!/usr/bin/env bash
# Unit tests of the ratflow RTL library: builds every configuration of tests.list with
# Verilator (a C++ harness per module under tb/, the design's parameters passed both as -G to
# Verilator and as -D P_<NAME> to the harness), runs it with random bubbles and stalls, and
# exits non-zero if any configuration fails to build or reports a mismatch.
#
# Usage: rtl/lib/test.sh [--filter REGEX] [--jobs N] [--seed S] [--planted] [--keep-going]
#   --filter REGEX  only the configurations whose name matches REGEX (grep -E); with
#                   --planted, only the planted bugs whose name matches REGEX
#   --jobs N        parallel builds/runs (default 2)
#   --seed S        seed of the random streams (default 1; each configuration adds its index)
#   --planted       instead of the normal run: apply each bug of planted.list to a copy of the
#                   library and check that the tests named there FAIL (exit non-zero if a
#                   planted bug goes unnoticed)
# Builds are cached in rtl/lib/build/<config> keyed by a hash of the sources and parameters.
set -u -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
filter=""
jobs=2
seed=1
planted=0
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --planted) planted=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for tool in verilator make g++; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (apt-get install verilator g++ make)" >&2; exit 3; }
done
objcache=""
command -v ccache >/dev/null && objcache="OBJCACHE=ccache"

# build_and_run NAME TB TOP SRC_DIR OUT_DIR SEED PARAMS... : prints the harness's last line.
build_and_run() {
  local name="$1" tb="$2" top="$3" src="$4" out="$5" s="$6"
  shift 6
  local gflags=() dflags=""
  for p in "$@"; do
    case "$p" in +*) dflags+=" -DP_${p#+}"; continue ;; esac   # +NAME=VALUE: harness only
    local k="${p%%=*}" v="${p#*=}"
    case "$v" in
      str:*) gflags+=("-G$k=\"${v#str:}\"") ;;   # string parameter: Verilator only
      *) gflags+=("-G$k=$v"); dflags+=" -DP_$k=$v" ;;
    esac
  done
  mkdir -p "$out"
  local key
  key="$( { cat "$src"/*.v "$src"/*.vh "$here"/tb/*.h "$here/tb/$tb" "$here"/tb/*.v 2>/dev/null; echo "$top $*"; verilator --version; } | sha256sum | cut -c1-16)"
  if [ ! -x "$out/V$top" ] || [ "$(cat "$out/.key" 2>/dev/null)" != "$key" ]; then
    rm -rf "$out/obj"
    if ! verilator --cc --exe --build -j 1 -O3 --x-assign unique --x-initial unique \
        -Wno-fatal -Wno-lint -Wno-style \
        -I"$src" -I"$here/tb" --top-module "$top" -Mdir "$out/obj" -o "../V$top" \
        "${gflags[@]}" -CFLAGS "-O2 -I$here/tb $dflags" -MAKEFLAGS "$objcache OPT_FAST=-O2 OPT_SLOW=-O1 OPT_GLOBAL=-O1" \
        "$src"/*.v $(ls "$here"/tb/*.v 2>/dev/null) "$here/tb/$tb" >"$out/build.log" 2>&1; then
      echo "FAIL $name: build failed (see $out/build.log)"
      return 0
    fi
    echo "$key" >"$out/.key"
  fi
  (cd "$out" && "./V$top" --seed "$s" +verilator+rand+reset+2 +verilator+seed+"$s" >"run.log" 2>&1)
  local rc=$?
  local last
  last="$(grep -E '^(PASS|FAIL) ' "$out/run.log" | tail -n 1)"
  if [ -z "$last" ] || { [ $rc -ne 0 ] && [ "${last%% *}" = PASS ]; }; then
    last="FAIL $name: harness exited $rc without a verdict (see $out/run.log)"
  fi
  echo "$last"
}
export -f build_and_run
export here objcache

# configs LIST: prints "index name tb top params..." for the selected lines of tests.list.
configs() {
  grep -vE '^\s*(#|$)' "$here/tests.list" | awk '{print NR-1, $0}' |
    { if [ -n "$filter" ]; then awk -v f="$filter" '$2 ~ f'; else cat; fi; }
}

run_suite() {  # run_suite SRC_DIR BUILD_DIR : prints one verdict line per configuration
  local src="$1" bdir="$2"
  configs | while read -r idx name tb top params; do
    echo "$name $tb $top $src $bdir/$name $((seed + idx)) $params"
  done | xargs -P "$jobs" -L 1 bash -c 'build_and_run "$@"' _
}

if [ "$planted" -eq 0 ]; then
  start=$(date +%s)
  results="$(run_suite "$here" "$here/build")"
  echo "$results"
  total=$(echo "$results" | grep -c . )
  fails=$(echo "$results" | grep -c '^FAIL' )
  echo "test.sh: $((total - fails)) of $total configurations passed in $(( $(date +%s) - start )) s"
  [ "$fails" -eq 0 ] && [ "$total" -gt 0 ]
  exit $?
fi

# Planted bugs: each line of planted.list is "name|file|sed expression|filter".
status=0
bugfilter="$filter"
while IFS='|' read -r bug file expr bfilter; do
  case "$bug" in ''|\#*) continue ;; esac
  if [ -n "$bugfilter" ] && ! echo "$bug" | grep -Eq "$bugfilter"; then continue; fi
  tmp="$here/build/planted-$bug/src"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$here"/*.v "$here"/*.vh "$tmp/"
  sed -i -e "$expr" "$tmp/$file"
  if cmp -s "$here/$file" "$tmp/$file"; then
    echo "PLANTED $bug: the sed expression changed nothing in $file (fix planted.list)"
    status=1
    continue
  fi
  filter="$bfilter"
  results="$(run_suite "$tmp" "$here/build/planted-$bug")"
  if echo "$results" | grep -q '^FAIL'; then
    first="$(echo "$results" | grep '^FAIL' | head -n 1)"
    echo "PLANTED $bug: caught ($first)"
    mm="$(grep -h '^mismatch' "$here/build/planted-$bug"/*/run.log 2>/dev/null | head -n 1)"
    [ -n "$mm" ] && echo "    first report: $mm"
  else
    echo "PLANTED $bug: NOT CAUGHT by $bfilter"
    status=1
  fi
done <"$here/planted.list"
exit $status
