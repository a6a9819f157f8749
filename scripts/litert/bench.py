#!/usr/bin/env python3
"""LiteRT inference speed of one .tflite model under one op resolver: 1 thread, batch 1.

Usage: bench.py MODEL.tflite --resolver ref|builtin|auto [--seconds S] [--seed N]

Prints one JSON line: {"model": file stem, "resolver": ref|builtin|auto,
"images_per_s": invocations per second, "invokes": count, "seconds": timed wall time,
"threads": 1}. The interpreter is set up as deployed (no experimental_preserve_all_tensors:
under AUTO, XNNPACK then takes the whole graph as one partition); inputs are 16 uniform
random int8 rows (numpy default_rng(seed)) cycled through, each set with `set_tensor` before
its `invoke`, after one warm-up second (at most) so first-call allocation is not timed.
ratflow's golden-engine benchmark calls this in the same run for same-load speed ratios.

Exit: 0; 2 bad file or option; 3 ai_edge_litert missing.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help=".tflite file")
    ap.add_argument("--resolver", required=True, choices=sorted(lc.RESOLVERS))
    ap.add_argument("--seconds", type=float, default=3.0, help="timed duration (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    args = ap.parse_args()
    if not args.seconds > 0:
        raise lc.UserError(f"--seconds {args.seconds}: must be > 0")
    graph = lc.Graph(args.model, args.resolver, preserve_all_tensors=False)
    feeds = [feed for feed, _ in graph.prepare(lc.random_codes(graph, 16, args.seed))]
    interp, index = graph.interp, graph.input_index

    def run_for(seconds):
        n, start = 0, time.perf_counter()
        while True:
            interp.set_tensor(index, feeds[n % len(feeds)])
            interp.invoke()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return n, elapsed

    run_for(min(1.0, args.seconds / 4))
    n, elapsed = run_for(args.seconds)
    print(json.dumps({
        "model": os.path.splitext(os.path.basename(args.model))[0],
        "resolver": args.resolver,
        "images_per_s": round(n / elapsed, 1),
        "invokes": n,
        "seconds": round(elapsed, 3),
        "threads": 1,
    }))
    return 0


if __name__ == "__main__":
    lc.run_main(main)
