#!/usr/bin/env python3
"""Independent check of ratflow golden vectors against DESIGN's integer semantics.

Written from the specification text (DESIGN sections 1, 2 and 5), sharing no code with the Rust
golden model. Usage:

    reference_check.py MODEL.json VECTORS.jsonl [MODEL2.json VECTORS2.jsonl ...] [--engine auto|numpy|loops]

Version 1 models (dense chains, DESIGN section 1 and 2) are checked with exact rationals
(fractions.Fraction) against version 1 vectors: every accumulator (`acc`), every layer output
(`layers`) and `class`. Version 2 models (int8 graphs, DESIGN section 5) are recomputed from each
vector's `input` by `reference_v2.py` (next to this file; its docstring lists the DESIGN rules
implemented and every model field read) and compared on every element.

Version 2 vector fields read (one JSON object per line; blank lines skipped):
    index  (integer >= 0: named in reports)
    label  (optional: absent, null or an integer >= 0; not compared)
    input  (int8 codes of the model's input tensor, flat in tensor order)
    tensors {op output tensor name: flat list}  every op's output, reshape's included; a
           missing or extra name is a mismatch
    acc    (optional) {accumulating op's (dense, conv2d, depthwise_conv2d) output name: flat
           list of i32}; when present every accumulating op must be in it
    output (the model's first output tensor, flat)
    class  (argmax of `output`, ties to the lowest index)

Output: one line for the first differing element of each vector and field (at most 20 lines),
then the first mismatch and the counts. Exit status: 0 when every element of every vector
matches (and there is at least one vector), 1 on any mismatch (or no vector), 2 on a bad model
or vectors file (one line on stderr naming the file, the line or op, and the field). Several
pairs are checked in one process (no interpreter and numpy start per graph); each pair's
report is headed by "MODEL.json:" and the status is the worst of them (2 > 1 > 0).
numpy is used for version 2 when installed (exact int64); without it the plain loop engine
gives the same integers, slower.
"""
import argparse
import json
import math
import sys
from fractions import Fraction

import reference_v2 as v2


def round_half_up(q):
    return math.floor(q + Fraction(1, 2))


def round_half_away(q):
    mag = math.floor(abs(q) + Fraction(1, 2))
    return -mag if q < 0 else mag


def rescale(a, m, s, k, rounding):
    if m == 0:
        return 0
    if rounding == "single":
        return round_half_up(Fraction(a * m, 2 ** s))
    assert s >= k, "double rounding needs s >= k"
    m31 = m * 2 ** (31 - k)
    high = math.floor(Fraction(a * m31 + 2 ** 30, 2 ** 31))
    return round_half_away(Fraction(high, 2 ** (s - k)))


def run(model, x):
    k = model["rescale"]["k_bits"]
    rounding = model["rescale"]["rounding"]
    zx = model["input"]["zero_point"]
    accs, outs = [], []
    for layer in model["layers"]:
        acc, out = [], []
        zy = layer["output"]["zero_point"]
        lo = max(zy, -128) if layer["relu"] else -128
        for c, row in enumerate(layer["weight"]):
            a = sum((xi - zx) * w for xi, w in zip(x, row)) + layer["bias"][c]
            assert -(2 ** 31) <= a < 2 ** 31, "accumulator overflows i32"
            r = rescale(a, layer["multiplier"][c], layer["shift"][c], k, rounding)
            acc.append(a)
            out.append(min(max(r + zy, lo), 127))
        accs.append(acc)
        outs.append(out)
        x, zx = out, zy
    last = outs[-1]
    return accs, outs, last.index(max(last))


def validate_v1(doc):
    """Checks a version 1 model by loading it as DESIGN section 5 says: a chain of dense ops.

    The section 2 rules (shapes, ranges, m < 2^k, s <= 62, double's s >= k, the i32 bound) are
    then those of the version 2 validation; `in_features`, `relu` and the input's product are
    checked here. Raises reference_v2.ModelError naming the field (ops are named layers[i]).
    """
    ctx = v2._Ctx("")
    inp = ctx.obj(doc, "input")
    if not isinstance(inp, dict):
        raise ctx.err("input", "is not an object")
    shape = v2._Ctx("input.").obj(inp, "shape")
    if not isinstance(shape, list) or not shape:
        raise ctx.err("input.shape", f"= {v2._show(shape)} is not a list of sizes")
    size = 1
    for i, d in enumerate(shape):
        v2._Ctx("input.").int_in(d, f"shape[{i}]", 1, v2._MAX_ELEMENTS)
        size *= d
        if size > v2._MAX_ELEMENTS:
            raise ctx.err("input.shape", f"= {v2._show(shape)}: the element product exceeds 2^24")
    layers = ctx.obj(doc, "layers")
    if not isinstance(layers, list) or not layers:
        raise ctx.err("layers", "is not a non-empty list")
    tensors = {"input": {"shape": [size], "scale": inp.get("scale"), "zero_point": inp.get("zero_point")}}
    ops = []
    prev, fan_in = "input", size
    for i, layer in enumerate(layers):
        lc = v2._Ctx(f"layers[{i}].")
        if not isinstance(layer, dict):
            raise ModelError(f"layers[{i}]: is not an object")
        if layer.get("kind") != "dense":
            raise lc.err("kind", f"= {v2._show(layer.get('kind'))}, expected \"dense\"")
        if lc.int_in(lc.obj(layer, "in_features"), "in_features", 1, v2._MAX_ELEMENTS) != fan_in:
            raise lc.err("in_features", f"= {layer['in_features']} but its input has {fan_in} values")
        fan_in = lc.int_in(lc.obj(layer, "out_features"), "out_features", 1, v2._MAX_ELEMENTS)
        out = lc.obj(layer, "output")
        if not isinstance(out, dict):
            raise lc.err("output", "is not an object")
        relu = lc.obj(layer, "relu")
        if type(relu) is not bool:
            raise lc.err("relu", f"= {v2._show(relu)} is not true or false")
        zy = lc.int_in(v2._Ctx(f"layers[{i}].output.").obj(out, "zero_point"), "output.zero_point", -128, 127)
        name = f"layers[{i}]"
        tensors[name] = {"shape": [fan_in], "scale": out.get("scale"), "zero_point": zy}
        op = {"kind": "dense", "name": name, "inputs": [prev], "output": name,
              "clamp": [max(zy, -128) if relu else -128, 127]}
        for field in ("weight", "bias", "multiplier", "shift"):
            op[field] = lc.obj(layer, field)
        ops.append(op)
        prev = name
    as_v2 = {"format": doc.get("format"), "version": 2, "name": doc.get("name"),
             "rescale": doc.get("rescale"), "tensors": tensors, "inputs": ["input"],
             "outputs": [prev], "ops": ops}
    return v2.validate(as_v2)


ModelError = v2.ModelError


def check_v1(model, vectors_path):
    """Version 1: the original checker, unchanged (exit 1 on mismatch or no vectors)."""
    bad = 0
    n = 0
    with open(vectors_path) as f:
        lines = list(f)
    for line in lines:
        if not line.strip():
            continue
        v = json.loads(line)
        n += 1
        accs, outs, cls = run(model, v["input"])
        for what, got, want in (("acc", v["acc"], accs), ("layers", v["layers"], outs)):
            if got != want:
                bad += 1
                for li, (g, w) in enumerate(zip(got, want)):
                    for c, (gv, wv) in enumerate(zip(g, w)):
                        if gv != wv:
                            print(f"vector {v['index']} {what}[{li}][{c}]: file {gv}, reference {wv}")
                            break
        if v["class"] != cls:
            bad += 1
            print(f"vector {v['index']} class: file {v['class']}, reference {cls}")
    print(f"{n - bad if bad <= n else 0} of {n} vectors match the reference")
    return 1 if bad or n == 0 else 0


# --------------------------------------------------------------------------------------------
# Version 2.


class BadFile(Exception):
    """A vectors file that is not version 2 vectors for this model (exit 2)."""


def _int_list(v, where):
    # set(map(type, ...)) runs in C: bools and floats are refused without a Python-level loop.
    if not isinstance(v, list) or (v and set(map(type, v)) != {int}):
        raise BadFile(f"{where} is not a list of integers")
    return v


def read_vectors_v2(path, model):
    """Parses and structurally checks every line; returns the vector dicts in file order."""
    t_in = model.tensors[model.input]
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise BadFile(f"cannot read: {e}") from None
    with f:
        try:
            lines = list(f)
        except UnicodeDecodeError as e:
            raise BadFile(f"cannot read: {e}") from None
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        at = f"line {ln}"
        try:
            v = v2.parse_json(line)
        except (ValueError, RecursionError) as e:
            raise BadFile(f"{at}: not JSON ({e})") from None
        if not isinstance(v, dict):
            raise BadFile(f"{at}: not a JSON object")
        if "layers" in v and "tensors" not in v:
            raise BadFile(f"{at}: version 1 vectors (`layers`) for a version 2 model")
        for field in ("index", "input", "tensors", "output", "class"):
            if field not in v:
                raise BadFile(f"{at}: field `{field}` is missing")
        if type(v["index"]) is not int or v["index"] < 0:
            raise BadFile(f"{at}: index = {v2._show(v['index'])} is not an integer >= 0")
        label = v.get("label")
        if label is not None and (type(label) is not int or label < 0):
            raise BadFile(f"{at}: label = {v2._show(label)} is not an integer >= 0")
        codes = _int_list(v["input"], f"{at}: input")
        if len(codes) != t_in.size:
            raise BadFile(
                f"{at}: input has {len(codes)} codes, tensor {json.dumps(t_in.name)} "
                f"{t_in.shape} has {t_in.size}"
            )
        if any(q < -128 or q > 127 for q in codes):
            raise BadFile(f"{at}: input holds a value outside int8")
        for field in ("tensors", "acc"):
            if field in v:
                if not isinstance(v[field], dict):
                    raise BadFile(f"{at}: `{field}` is not an object")
                for name, lst in v[field].items():
                    _int_list(lst, f"{at}: {field}[{json.dumps(name)}]")
        _int_list(v["output"], f"{at}: output")
        if type(v["class"]) is not int:
            raise BadFile(f"{at}: class = {v2._show(v['class'])} is not an integer")
        out.append(v)
    return out


def _element(shape, i):
    """Flat index i of a tensor as text, with (y, x, c) for [H, W, C] tensors."""
    if len(shape) == 3 and i < math.prod(shape):
        _, w, c = shape
        return f"[{i}] (y {i // (w * c)}, x {(i // c) % w}, c {i % c})"
    return f"[{i}]"


class Report:
    """Collects mismatches: first element per vector and field, counts per field."""

    MAX_LINES = 20

    def __init__(self):
        self.lines = 0
        self.hidden = 0
        self.first = None
        self.elements = {}  # field -> mismatching elements
        self.bad_vectors = 0

    def note(self, vindex, field, where, text, count):
        """One mismatch of `field` in vector `vindex`; `where` names the element ("" if none)."""
        if self.first is None:
            self.first = f"vector {vindex} {field}{where}"
        self.elements[field] = self.elements.get(field, 0) + count
        if self.lines < self.MAX_LINES:
            print(f"vector {vindex} {field}{where}{text}")
            self.lines += 1
        else:
            self.hidden += 1

    def compare(self, vindex, field, shape, got, want):
        """Element-wise: got (file list) against want (reference list). Returns True if equal."""
        if got == want:
            return True
        if len(got) != len(want):
            self.note(vindex, field, "", f": file has {len(got)} elements, reference {len(want)}",
                      max(len(got), len(want)))
            return False
        diff = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
        i = diff[0]
        self.note(
            vindex,
            field,
            _element(shape, i),
            f": file {got[i]}, reference {want[i]} ({len(diff)} of {len(want)} elements differ)",
            len(diff),
        )
        return False


def check_v2(model, vectors_path, engine):
    vectors = read_vectors_v2(vectors_path, model)
    if not vectors:
        print("0 of 0 vectors match the reference (no vectors)")
        return 1
    op_outputs = [op.output for op in model.ops]
    acc_names = model.accumulating
    shapes = {n: t.shape for n, t in model.tensors.items()}
    first_out = model.outputs[0]
    biggest = max(t.size for t in model.tensors.values())
    chunk = max(1, (1 << 22) // biggest)  # inputs per batch: bounded int64 working set
    report = Report()
    for start in range(0, len(vectors), chunk):
        part = vectors[start:start + chunk]
        tensors, acc = v2.run_batch(model, [v["input"] for v in part], engine)
        for b, v in enumerate(part):
            ix = v["index"]
            ok = True

            def row(arrays, name):
                r = arrays[name][b]
                return r.tolist() if hasattr(r, "tolist") else list(r)

            for name in op_outputs:
                field = f"tensors[{json.dumps(name)}]"
                if name not in v["tensors"]:
                    report.note(ix, field, "", ": missing", math.prod(shapes[name]))
                    ok = False
                else:
                    ok &= report.compare(ix, field, shapes[name], v["tensors"][name], row(tensors, name))
            for name in v["tensors"]:
                if name not in op_outputs:
                    report.note(ix, f"tensors[{json.dumps(name)}]", "", ": not an op output of the model", 1)
                    ok = False
            if "acc" in v:
                for name in acc_names:
                    field = f"acc[{json.dumps(name)}]"
                    if name not in v["acc"]:
                        report.note(ix, field, "", ": missing", math.prod(shapes[name]))
                        ok = False
                    else:
                        ok &= report.compare(ix, field, shapes[name], v["acc"][name], row(acc, name))
                for name in v["acc"]:
                    if name not in acc_names:
                        report.note(ix, f"acc[{json.dumps(name)}]", "", ": not an accumulating op's output", 1)
                        ok = False
            want_out = row(tensors, first_out)
            ok &= report.compare(ix, "output", shapes[first_out], v["output"], want_out)
            cls = v2.classify(want_out)
            if v["class"] != cls:
                report.note(ix, "class", "", f": file {v['class']}, reference {cls}", 1)
                ok = False
            if not ok:
                report.bad_vectors += 1
    n = len(vectors)
    if report.hidden:
        print(f"({report.hidden} more mismatch lines not shown)")
    if report.first is not None:
        counts = ", ".join(f"{f} {c}" for f, c in report.elements.items())
        print(f"first mismatch: {report.first}; mismatching elements: {counts}")
    note = " (plain loop engine: numpy is not installed)" if engine == "auto" and v2.np is None else ""
    print(f"{n - report.bad_vectors} of {n} vectors match the reference{note}")
    return 1 if report.bad_vectors else 0


def check_pair(model_path, vectors_path, engine):
    """Checks one model and its vectors; returns the exit status (0, 1 or 2)."""
    try:
        with open(model_path, encoding="utf-8") as f:
            doc = v2.parse_json(f.read())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        print(f"error: {model_path}: cannot read: {type(e).__name__ if isinstance(e, RecursionError) else e}",
              file=sys.stderr)
        return 2
    version = doc.get("version") if isinstance(doc, dict) else None
    if version == 1 and type(version) is int:
        try:
            validate_v1(doc)
        except ModelError as e:
            print(f"error: {model_path}: {e}", file=sys.stderr)
            return 2
        try:
            return check_v1(doc, vectors_path)
        except (OSError, ValueError, KeyError, TypeError, IndexError, AssertionError, RecursionError) as e:
            what = f"{type(e).__name__} {e}" if isinstance(e, (KeyError, IndexError)) else str(e)
            print(f"error: {model_path} / {vectors_path}: bad version 1 model or vectors: {what}",
                  file=sys.stderr)
            return 2
    if version != 2 or type(version) is not int:
        print(f"error: {model_path}: version = {v2._show(version)}, expected 1 or 2", file=sys.stderr)
        return 2
    try:
        model = v2.validate(doc)
    except v2.ModelError as e:
        print(f"error: {model_path}: {e}", file=sys.stderr)
        return 2
    try:
        return check_v2(model, vectors_path, engine)
    except BadFile as e:
        print(f"error: {vectors_path}: {e}", file=sys.stderr)
        return 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", metavar="MODEL.json VECTORS.jsonl",
                    help="a model (version 1 or 2) and its vectors; more pairs may follow, "
                         "checked in one process (each headed by its model's path)")
    ap.add_argument("--engine", choices=("auto", "numpy", "loops"), default="auto",
                    help="version 2 engine: numpy (int64) or plain loops; auto = numpy if installed")
    args = ap.parse_args(argv)
    if len(args.files) % 2:
        ap.error("expected MODEL.json VECTORS.jsonl pairs")
    if args.engine == "numpy" and v2.np is None:
        print("error: --engine numpy: numpy is not installed", file=sys.stderr)
        return 2
    pairs = list(zip(args.files[0::2], args.files[1::2]))
    worst = 0
    for model_path, vectors_path in pairs:
        if len(pairs) > 1:
            print(f"{model_path}:", flush=True)
        status = check_pair(model_path, vectors_path, args.engine)
        sys.stdout.flush()
        worst = max(worst, status)
    return worst


if __name__ == "__main__":
    sys.exit(main())
