#!/usr/bin/env python3
"""How often LiteRT's optimized kernel sets agree with its reference kernels on one model.

Usage: agreement.py MODEL.tflite [--count 30] [--seed 0]

Runs the same uniform random int8 inputs (numpy default_rng(seed)) through BUILTIN_REF,
BUILTIN_WITHOUT_DEFAULT_DELEGATES ("builtin") and AUTO (XNNPACK, "auto"), one thread, and
prints one JSON line per kernel set other than ref:
  {"model", "resolver", "inputs",
   "final_output_differs": inputs whose final int8 output (DESIGN section 5: the SOFTMAX's
       input where there is one) differs from ref's in any element,
   "top1_agree": inputs whose argmax (ties to the lowest index) equals ref's,
   "model_output_differs": the same count on the model's own output tensor (the SOFTMAX
       output), with the interpreter set up as deployed (no preserve_all_tensors; under
       AUTO, XNNPACK then takes the graph as one partition),
   "ops": [{"op_index", "op", "tensor", "mismatched_elements", "elements", "inputs"}]
       per int8 op output (builtin only; under AUTO the intermediates come from a
       per-op partitioning that preserve_all_tensors forces, so they are not reported)}
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402


def outputs(path, resolver, codes, preserve):
    g = lc.Graph(path, resolver, preserve_all_tensors=preserve)
    rows = []
    for feed, c in g.prepare(codes):
        g.interp.set_tensor(g.input_index, feed)
        g.interp.invoke()
        model_out = g.interp.get_tensor(g.model_output_index).reshape(-1).copy()
        tensors = {}
        if preserve:
            for t, name, op, idx in g.op_outputs:
                if t in g.trusted:
                    tensors[name] = (op, idx, g.interp.get_tensor(t).reshape(-1).copy())
            final = g.interp.get_tensor(g.final_index).reshape(-1).copy()
        else:
            final = None
        rows.append((final, model_out, tensors))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.count < 1:
        raise lc.UserError(f"--count {args.count}: must be >= 1")
    codes = lc.random_codes(lc.Graph(args.model, "ref"), args.count, args.seed)
    ref = outputs(args.model, "ref", codes, True)
    for resolver in ("builtin", "auto"):
        got = outputs(args.model, resolver, codes, True)
        deployed = outputs(args.model, resolver, codes, False)
        differs = sum(int(not np.array_equal(r[0], g[0])) for r, g in zip(ref, got))
        top1 = sum(int(np.argmax(r[0]) == np.argmax(g[0])) for r, g in zip(ref, got))
        model_differs = sum(int(not np.array_equal(r[1], d[1])) for r, d in zip(ref, deployed))
        ops = []
        if resolver == "builtin":
            for name, (op, idx, _) in ref[0][2].items():
                mism = [int(np.sum(r[2][name][2] != g[2][name][2])) for r, g in zip(ref, got)]
                ops.append({"op_index": idx, "op": op, "tensor": name,
                            "mismatched_elements": sum(mism),
                            "elements": sum(r[2][name][2].size for r in ref),
                            "inputs": sum(int(m > 0) for m in mism)})
        print(json.dumps({"model": os.path.splitext(os.path.basename(args.model))[0],
                          "resolver": resolver, "inputs": args.count,
                          "final_output_differs": differs, "top1_agree": top1,
                          "model_output_differs": model_differs, "ops": ops}))
    return 0


if __name__ == "__main__":
    lc.run_main(main)
