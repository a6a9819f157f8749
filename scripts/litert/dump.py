#!/usr/bin/env python3
"""Dump every int8 tensor LiteRT computes for a .tflite model, one JSON object per input.

Usage:
  dump.py MODEL.tflite --inputs X.npy --resolver ref|builtin|auto --out OUT.jsonl [--count N]
  dump.py MODEL.tflite --random N --seed SEED ... (uniform int8 codes, numpy default_rng(SEED))

The interpreter is LiteRT (`ai-edge-litert`, scripts/litert/setup-venv.sh) with one thread,
`experimental_preserve_all_tensors=True` and the op resolver named by --resolver:
ref = BUILTIN_REF (reference kernels, the semantics ratflow's importer targets),
builtin = BUILTIN_WITHOUT_DEFAULT_DELEGATES (optimized kernels), auto = AUTO (XNNPACK).

Inputs (`--inputs X.npy`): shape [N, ...], each row holding the model input's elements
(TFLite's batch dimension dropped); int8 codes of the graph's int8 input tensor, or float32
real values (float64 is cast to float32 first) quantized exactly as TFLite's QUANTIZE:
`clamp(round_half_away(float32(r) / float32(S)) + Z, -128, 127)`. A float-input model gets
the real values (its own QUANTIZE runs, and the script checks that it produced those codes),
or `float32(S) * (q - Z)` for int8 codes, which quantizes back to exactly q.

Output: JSON Lines (gzip-compressed when OUT ends in .gz), one object per input row, keys in
this order:
  {"index": i,                 # 0-based row of the inputs
   "input": [i8 ...],          # codes of the graph's int8 input tensor (for a float-input
                               # model, the output of its QUANTIZE), flat row-major NHWC
   "tensors": {name: [i8 ...]},# every int8 output tensor of every op, keyed by the .tflite
                               # tensor name, flat row-major NHWC (channels fastest)
   "output": [i8 ...],         # final int8 output (DESIGN section 5): the model's output,
                               # or the input of a trailing SOFTMAX / DEQUANTIZE, which the
                               # integer graph drops (their own outputs stay in "tensors"
                               # when int8)
   "class": c}                 # argmax of "output", ties to the lowest index
This is ratflow's golden-vector v2 layout (DESIGN section 5) without "label" and "acc", so
compare.py can read a dump as vectors. Under --resolver auto, tensors computed inside an
XNNPACK partition are never written by LiteRT and are left out of "tensors"; with
preserve_all_tensors XNNPACK makes one partition per op, so in practice all are present, but
only the final output is comparable with the deployed (one-partition) configuration.

Exit: 0 written; 2 bad file, option or input (one line on stderr); 3 ai_edge_litert missing.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help=".tflite file")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--inputs", help=".npy of int8 codes or float32 reals, [N, ...]")
    src.add_argument("--random", type=int, metavar="N", help="N uniform random int8 inputs")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    ap.add_argument("--resolver", required=True, choices=sorted(lc.RESOLVERS))
    ap.add_argument("--out", required=True, help="JSON Lines file to write")
    ap.add_argument("--count", type=int, help="only the first N inputs")
    args = ap.parse_args()
    if args.count is not None and args.count < 0:
        raise lc.UserError(f"--count {args.count}: must be >= 0")
    if args.random is not None and args.random < 0:
        raise lc.UserError(f"--random {args.random}: must be >= 0")

    graph = lc.Graph(args.model, args.resolver)
    if args.inputs is not None:
        array = lc.load_npy(args.inputs)
        source = args.inputs
    else:
        array = lc.random_codes(graph, args.random, args.seed)
        source = f"--random {args.random}"
    if args.count is not None:
        array = array[: args.count]
    feeds = graph.prepare(array, source)
    with lc.open_text_out(args.out) as out:
        for i, (feed, codes) in enumerate(feeds):
            out.write(lc.dumps_line(graph.record(i, feed, codes)) + "\n")
    return 0


if __name__ == "__main__":
    lc.run_main(main)
