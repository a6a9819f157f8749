#!/usr/bin/env python3
"""Independent check of ratflow golden vectors against README's integer semantics.

Written from the specification text with exact rationals (fractions.Fraction), sharing no code
with the Rust golden model. Usage: reference_check.py MODEL.json VECTORS.jsonl
Exit 0 when every accumulator, every layer output and every class matches.
"""
import json
import math
import sys
from fractions import Fraction


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


def main():
    model = json.load(open(sys.argv[1]))
    bad = 0
    n = 0
    for line in open(sys.argv[2]):
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
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
