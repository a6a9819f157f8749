#!/usr/bin/env python3
"""Runs test_axis_top.py (the cocotb testbench beside this file) on a `ratflow rtl` folder with
Icarus Verilog, through cocotb's Python runner (docs/ecosystem.md).

    python cocotb/run.py --rtl DIR [--vectors V.jsonl] [--count N] [--seed S] [--gap P]
                         [--stall P] [--build DIR] [--waves]

The sources come from the folder's manifest.json (`files`, in dependency order; include folder:
the RTL folder), the `$readmemh` images (`roms`) are copied into the build folder, where the
simulator runs. Exit status: 0 when the test passed, 1 when it failed, 2 on bad arguments.
Needs cocotb 1.9 (`pip install -r cocotb/requirements.txt`) and `iverilog` on PATH.
"""

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", required=True, type=Path, help="folder written by `ratflow rtl`")
    ap.add_argument("--vectors", type=Path, help="golden vectors (JSONL); without: smoke test")
    ap.add_argument("--count", type=int, help="use only the first N vectors")
    ap.add_argument("--seed", type=int, default=1, help="seed of gaps and back-pressure")
    ap.add_argument("--gap", type=float, default=0.25, help="per-cycle input gap probability")
    ap.add_argument("--stall", type=float, default=0.25, help="per-cycle tready-low probability")
    ap.add_argument("--build", type=Path, help="build folder (default: ./cocotb_build/<top>)")
    ap.add_argument("--waves", action="store_true", help="dump an FST waveform (<build>/<top>.fst)")
    a = ap.parse_args()

    rtl = a.rtl.resolve()
    try:
        manifest = json.loads((rtl / "manifest.json").read_text(encoding="utf-8"))
        top = manifest["top"]
        files = [rtl / f for f in manifest["files"]]
        roms = [rtl / f for f in manifest.get("roms", [])]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: --rtl {a.rtl}: no usable manifest.json ({e})", file=sys.stderr)
        return 2
    missing = [str(f) for f in files + roms if not f.is_file()]
    if missing:
        print(f"error: --rtl {a.rtl}: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    if a.vectors is not None and not a.vectors.is_file():
        print(f"error: --vectors {a.vectors}: no such file", file=sys.stderr)
        return 2
    if shutil.which("iverilog") is None:
        print("error: iverilog not found (apt-get install iverilog, or `make tools`)", file=sys.stderr)
        return 2

    # Imported here so that --help and argument errors work without cocotb installed.
    warnings.filterwarnings("ignore", message="Python runners and associated APIs are an experimental")
    from cocotb.runner import get_results, get_runner

    build = (a.build or Path("cocotb_build") / top).resolve()
    build.mkdir(parents=True, exist_ok=True)
    for r in roms:
        shutil.copyfile(r, build / r.name)

    plusargs = [
        f"+manifest={rtl / 'manifest.json'}",
        f"+seed={a.seed}",
        f"+gap={a.gap}",
        f"+stall={a.stall}",
        # Keep vvp's status 0 after a failed test: the outcome is read from results.xml.
        "+exit_status=0",
    ]
    if a.vectors is not None:
        plusargs.append(f"+vectors={a.vectors.resolve()}")
    if a.count is not None:
        plusargs.append(f"+count={a.count}")

    runner = get_runner("icarus")
    runner.build(
        verilog_sources=files,
        includes=[rtl],
        hdl_toplevel=top,
        # The runner passes -g2012 first; the generated RTL is Verilog-2005.
        build_args=["-g2005", "-Wall"],
        build_dir=build,
        always=True,
        timescale=("1ns", "1ps"),
        waves=a.waves,
    )
    pythonpath = os.pathsep.join(p for p in [str(HERE), os.environ.get("PYTHONPATH", "")] if p)
    results = runner.test(
        test_module="test_axis_top",
        hdl_toplevel=top,
        build_dir=build,
        test_dir=build,
        plusargs=plusargs,
        # No __pycache__ in the repository's cocotb/ folder.
        extra_env={"PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"},
        waves=a.waves,
        timescale=("1ns", "1ps"),
    )
    tests, failed = get_results(results)
    print(f"cocotb: {tests - failed} of {tests} tests passed ({results})")
    return 0 if tests > 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
