#!/usr/bin/env python3
"""Compare ratflow golden vectors (v2) with LiteRT, element by element, on every tensor.

Usage:
  compare.py MODEL.tflite VECTORS.jsonl[.gz] --resolver ref|builtin|auto [--json]
             [--count N] [--report-only]

VECTORS: ratflow golden vectors version 2 (DESIGN section 5), one JSON object per line:
`{"index": i, "input": [i8 ...], "tensors": {name: [i8 ...]}, "output": [i8 ...],
"class": c, ...}` with the .tflite file's tensor names as keys (other keys, e.g. "label",
"acc", are ignored; "class" is optional). dump.py's output is in this format too.

For each vector, LiteRT (one thread, experimental_preserve_all_tensors, the op resolver of
--resolver: ref = BUILTIN_REF, builtin = BUILTIN_WITHOUT_DEFAULT_DELEGATES, auto = AUTO)
runs the vector's "input" codes, and every element of every tensor present on both sides
(matched by name) is compared; tensors present on one side only are listed by name. The
vector's "output" is compared with LiteRT's final int8 output (DESIGN section 5: a trailing
SOFTMAX or DEQUANTIZE dropped) and its "class" (or the argmax of its "output", ties to the
lowest index) with the argmax of LiteRT's.

Printed: per op, mismatched elements and vectors, the largest difference; the first
mismatch (tensor, vector index, element index, ours vs LiteRT's); final-output and top-1
agreement. `--json` prints the same as one JSON object instead.

Under --resolver auto (XNNPACK), only the final output and the class are compared: tensors
inside a delegate partition are not LiteRT's to report, and XNNPACK's rounding is not the
reference's (DESIGN section 6), so agreement is reported, never failed (as --report-only).

Exit: 0 when every compared element, the final output and the class are equal on every
vector (or --report-only / auto); 1 on any difference, or when no tensor at all could be
compared (names that never match); 2 bad file, option or vector (one line on stderr, naming
the file and line); 3 ai_edge_litert missing.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402


def read_vectors(path, graph, count):
    """Parsed vectors: [(line number, dict)], validated enough to run and compare."""
    vectors = []
    with lc.open_text_in(path) as f:
        for lineno, line in enumerate(f, 1):
            if count is not None and len(vectors) >= count:
                break
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                v = json.loads(line)
            except json.JSONDecodeError as e:
                raise lc.UserError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(v, dict):
                raise lc.UserError(f"{where}: a vector must be a JSON object")
            for key in ("index", "input", "output"):
                if key not in v:
                    raise lc.UserError(f"{where}: missing '{key}'")
            if not isinstance(v["index"], int):
                raise lc.UserError(f"{where}: 'index' must be an integer")
            v["input"] = int8_list(v["input"], f"{where}: 'input'")
            if v["input"].size != graph.input_size:
                raise lc.UserError(
                    f"{where}: 'input' has {v['input'].size} values, the model input "
                    f"{list(graph.input_shape)} has {graph.input_size}"
                )
            v["output"] = int8_list(v["output"], f"{where}: 'output'")
            tensors = v.get("tensors", {})
            if not isinstance(tensors, dict):
                raise lc.UserError(f"{where}: 'tensors' must be an object of name -> list")
            v["tensors"] = {
                name: int8_list(vals, f"{where}: tensor '{name}'") for name, vals in tensors.items()
            }
            if "class" in v and not isinstance(v["class"], int):
                raise lc.UserError(f"{where}: 'class' must be an integer")
            vectors.append((lineno, v))
    if not vectors:
        raise lc.UserError(f"{path}: no vectors")
    return vectors


def int8_list(values, where):
    if not isinstance(values, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in values
    ):
        raise lc.UserError(f"{where} must be a list of integers")
    a = np.array(values, dtype=np.int64)
    if a.size and (a.min() < -128 or a.max() > 127):
        raise lc.UserError(f"{where} has a value outside int8 [-128, 127]")
    return a


class Stat:
    """Mismatch counts of one tensor over all vectors."""

    def __init__(self, name, op, op_index):
        self.name, self.op, self.op_index = name, op, op_index
        self.elements = 0
        self.mismatched_elements = 0
        self.mismatched_vectors = 0
        self.max_abs_diff = 0

    def add(self, ours, theirs):
        diff = ours != theirs
        self.elements += ours.size
        n = int(diff.sum())
        self.mismatched_elements += n
        if n:
            self.mismatched_vectors += 1
            self.max_abs_diff = max(self.max_abs_diff, int(np.abs(ours - theirs).max()))
        return diff

    def to_json(self):
        return {
            "tensor": self.name,
            "op": self.op,
            "op_index": self.op_index,
            "elements": self.elements,
            "mismatched_elements": self.mismatched_elements,
            "mismatched_vectors": self.mismatched_vectors,
            "max_abs_diff": self.max_abs_diff,
        }


def compare(graph, vectors, path):
    outputs_only = graph.resolver == "auto"
    by_name = {name: (t, op, idx) for t, name, op, idx in graph.op_outputs}
    ours_names = set()
    for _, v in vectors:
        ours_names.update(v["tensors"])
    common = [name for _, name, _, _ in graph.op_outputs if name in ours_names]
    if outputs_only:
        common = []
    stats = {name: Stat(name, by_name[name][1], by_name[name][2]) for name in common}
    output_stat = Stat("(final output)", "", -1)
    first = None
    outputs_equal = top1_agree = 0
    inputs = np.stack([v["input"] for _, v in vectors]).astype(np.int8)
    feeds = graph.prepare(inputs, path)
    for (lineno, v), (feed, codes) in zip(vectors, feeds):
        values = graph.invoke(feed, codes)
        for name in common:
            if name not in v["tensors"]:
                continue  # this vector lacks it: counted under only_in_litert if none has it
            t = by_name[name][0]
            if t not in values:
                continue  # not written by LiteRT (delegate-internal)
            ours = v["tensors"][name]
            theirs = values[t].astype(np.int64)
            if ours.size != theirs.size:
                raise lc.UserError(
                    f"{path}:{lineno}: tensor '{name}' has {ours.size} values, LiteRT's "
                    f"{theirs.size}"
                )
            diff = stats[name].add(ours, theirs)
            if first is None and diff.any():
                e = int(np.nonzero(diff)[0][0])
                first = {"tensor": name, "vector": v["index"], "element": e,
                         "ours": int(ours[e]), "litert": int(theirs[e])}
        theirs = values[graph.final_index].astype(np.int64)
        ours = v["output"]
        if ours.size != theirs.size:
            raise lc.UserError(
                f"{path}:{lineno}: 'output' has {ours.size} values, LiteRT's final output "
                f"'{graph.details[graph.final_index]['name']}' {theirs.size}"
            )
        diff = output_stat.add(ours, theirs)
        if not diff.any():
            outputs_equal += 1
        elif first is None:
            e = int(np.nonzero(diff)[0][0])
            first = {"tensor": "(final output)", "vector": v["index"], "element": e,
                     "ours": int(ours[e]), "litert": int(theirs[e])}
        ours_class = v["class"] if "class" in v else int(np.argmax(ours))
        if ours_class == int(np.argmax(theirs)):
            top1_agree += 1

    litert_names = [name for t, name, _, _ in graph.op_outputs if t in graph.trusted]
    n = len(vectors)
    total = sum(s.mismatched_elements for s in stats.values()) + output_stat.mismatched_elements
    summary = {
        "model": graph.path,
        "sha256": lc.sha256_of(graph.path),
        "resolver": graph.resolver,
        "kernel_set": lc.RESOLVERS[graph.resolver],
        "vectors": n,
        "compared": "final output and class" if outputs_only else "every common tensor",
        "tensors": [stats[name].to_json() for name in common],
        "only_in_vectors": sorted(ours_names - set(by_name)),
        "only_in_litert": [] if outputs_only else [m for m in litert_names if m not in ours_names],
        "dropped_ops": graph.dropped_ops,
        "final_output_tensor": graph.details[graph.final_index]["name"],
        "first_mismatch": first,
        "output": {
            "vectors_equal": outputs_equal,
            "elements": output_stat.elements,
            "mismatched_elements": output_stat.mismatched_elements,
            "max_abs_diff": output_stat.max_abs_diff,
        },
        "top1": {"agree": top1_agree, "vectors": n},
        "mismatched_elements": total,
    }
    summary["ok"] = bool(
        total == 0 and top1_agree == n and (outputs_only or common)
    )
    return summary


def print_text(s):
    print(f"model {s['model']} (sha256 {s['sha256'][:16]}...), resolver {s['resolver']} "
          f"({s['kernel_set']}), {s['vectors']} vectors, compared: {s['compared']}")
    if s["tensors"]:
        print("per op (ratflow vs LiteRT): mismatched elements / total, vectors, max |diff|")
        for t in s["tensors"]:
            print(f"  op {t['op_index']:3d} {t['op']:<18} {t['mismatched_elements']:>9} / "
                  f"{t['elements']:<9} vectors {t['mismatched_vectors']:>4} / {s['vectors']:<4} "
                  f"max {t['max_abs_diff']:>3}  {t['tensor']}")
    for key, label in (("only_in_vectors", "only in the vectors"),
                       ("only_in_litert", "only in LiteRT")):
        for name in s[key]:
            print(f"  {label} (not compared): {name}")
    if s["dropped_ops"]:
        print(f"  final output: '{s['final_output_tensor']}' "
              f"(dropped tail ops: {', '.join(s['dropped_ops'])})")
    f = s["first_mismatch"]
    if f:
        print(f"first mismatch: tensor '{f['tensor']}', vector {f['vector']}, element "
              f"{f['element']}: ours {f['ours']} vs LiteRT {f['litert']}")
    o = s["output"]
    print(f"final output: {o['vectors_equal']} / {s['vectors']} vectors equal "
          f"({o['mismatched_elements']} / {o['elements']} elements differ, max |diff| "
          f"{o['max_abs_diff']}); top-1: {s['top1']['agree']} / {s['vectors']} agree")
    verdict = "OK: equal" if s["ok"] else "MISMATCH"
    if not s["ok"] and not s["tensors"] and s["compared"] == "every common tensor":
        verdict = "MISMATCH: no tensor name in common"
    print(f"{verdict}: {s['mismatched_elements']} mismatched elements")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help=".tflite file")
    ap.add_argument("vectors", help="golden vectors v2, JSON Lines (.gz accepted)")
    ap.add_argument("--resolver", required=True, choices=sorted(lc.RESOLVERS))
    ap.add_argument("--json", action="store_true", help="print one JSON summary object")
    ap.add_argument("--count", type=int, help="only the first N vectors")
    ap.add_argument("--report-only", action="store_true",
                    help="exit 0 whatever the differences (agreement rates only)")
    args = ap.parse_args()
    if args.count is not None and args.count < 1:
        raise lc.UserError(f"--count {args.count}: must be >= 1")
    graph = lc.Graph(args.model, args.resolver)
    vectors = read_vectors(args.vectors, graph, args.count)
    summary = compare(graph, vectors, args.vectors)
    if args.json:
        print(json.dumps(summary))
    else:
        print_text(summary)
    if args.report_only or args.resolver == "auto":
        return 0
    return 0 if summary["ok"] else lc.EXIT_MISMATCH


if __name__ == "__main__":
    lc.run_main(main)
