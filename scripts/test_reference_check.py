#!/usr/bin/env python3
"""Self-tests of reference_check.py / reference_v2.py (run: python3 -m unittest, from scripts/).

Three kinds of evidence that the reference reads DESIGN right:
  - hand-computed cases: DESIGN section 1's rounding counterexamples and one small model per
    op under testdata/, whose expected vectors were worked out by hand (the arithmetic is in
    the docstrings below), checked with both engines;
  - three independent rescale implementations (exact rationals in the version 1 checker,
    Python integers, numpy int64) against each other on random accumulators;
  - random graphs using every op, where the numpy engine (padding as index slices) must equal
    the plain loop engine (DESIGN's per-element formulas) on every tensor and accumulator.
And that the checker catches what it must: a corrupted element of every tensor kind, missing
and extra tensors, bad model files (exit 2, one line naming op and field), bad vector files.
numpy is needed for the engine comparisons and the speed test; the rest runs without it.
"""
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import reference_check as rc  # noqa: E402
import reference_v2 as ref  # noqa: E402

np = ref.np
DATA = os.path.join(HERE, "testdata")
SCRIPT = os.path.join(HERE, "reference_check.py")
V2_CASES = ["conv_same_stride2", "conv_ohwi_flatten", "rounding_k4", "depthwise_dm2_dilation2", "pools",
            "add_scales_relu6"]
ENGINES = ["loops"] + (["numpy"] if np is not None else [])


def data(name):
    return os.path.join(DATA, name)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def run_cli(*args):
    """reference_check.py as a user runs it: (exit status, stdout, stderr)."""
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def run_main(model, vectors, *extra):
    """reference_check.main in-process (faster than a subprocess): (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = rc.main([model, vectors, *extra])
    return status, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------------------------
# Rescale.


class RescaleTests(unittest.TestCase):
    def test_design_counterexamples_k4(self):
        """DESIGN section 1: k = 4, M = 0.25 (m = 8, s = 5): single / double."""
        self.assertEqual(ref.derive_multiplier(0.25, 4), (8, 5))
        cases = {1: (0, 1), 5: (1, 2), -2: (0, -1), -6: (-1, -2)}
        for a, (single, double) in cases.items():
            self.assertEqual(ref.rescale(a, 8, 5, 4, "single"), single, a)
            self.assertEqual(ref.rescale(a, 8, 5, 4, "double"), double, a)
            self.assertEqual(rc.rescale(a, 8, 5, 4, "single"), single, a)
            self.assertEqual(rc.rescale(a, 8, 5, 4, "double"), double, a)
            if np is not None:
                arr = np.array([a], dtype=np.int64)
                self.assertEqual(int(ref._rescale_np(arr, 8, 5, 4, "single")[0]), single)
                self.assertEqual(int(ref._rescale_np(arr, 8, 5, 4, "double")[0]), double)

    def test_single_is_floor_of_half_up_and_s_zero_multiplies(self):
        # (a*m + 2^(s-1)) >> s: -3 * 1 / 2 = -1.5 -> -1 (ties toward +inf), 3/2 -> 2.
        self.assertEqual(ref.rescale(-3, 1, 1, 8, "single"), -1)
        self.assertEqual(ref.rescale(3, 1, 1, 8, "single"), 2)
        self.assertEqual(ref.rescale(-5, 3, 0, 8, "single"), -15)
        self.assertEqual(ref.rescale(2**31 - 1, 2**31 - 1, 0, 31, "single"), (2**31 - 1) ** 2)

    def test_double_rounds_the_final_division_away_from_zero(self):
        # k = 31, m = 2^30 (M = 0.5 * 2^-n): SRDHM(a, 2^30) = floor(a/2 + 1/2); then / 2^(s-31).
        self.assertEqual(ref.rescale(6, 2**30, 32, 31, "double"), 2)  # 3 / 2 -> 2
        self.assertEqual(ref.rescale(-6, 2**30, 32, 31, "double"), -2)  # -3 / 2 -> -2
        self.assertEqual(ref.rescale(-6, 2**30, 32, 31, "single"), -1)  # -1.5 -> -1
        # SRDHM rounds its own tie toward +inf: a = -1, m31 = 2^30: floor(-1/2 + 1/2) = 0.
        self.assertEqual(ref.rescale(-1, 2**30, 31, 31, "double"), 0)
        self.assertEqual(ref.rescale(1, 2**30, 31, 31, "double"), 1)

    def test_m_zero_is_zero_in_both_modes_with_any_shift(self):
        for rounding in ("single", "double"):
            for s in (0, 1, 3, 4, 31, 62):
                for a in (-(2**31), -7, 0, 5, 2**31 - 1):
                    self.assertEqual(ref.rescale(a, 0, s, 4, rounding), 0, (rounding, s, a))
                    if np is not None:
                        arr = np.array([a], dtype=np.int64)
                        self.assertEqual(int(ref._rescale_np(arr, np.array([0]), np.array([s]), 4, rounding)[0]), 0)

    def test_double_widens_m_by_31_minus_k(self):
        """(m, s) at k and (m << (31 - k), s + 31 - k) at k = 31 are the same double rescaler."""
        rng = random.Random(4)
        for _ in range(2000):
            k = rng.randint(1, 30)
            m = rng.randint(1, 2**k - 1)
            s = rng.randint(k, 62 - (31 - k))
            a = rng.randint(-(2**31), 2**31 - 1)
            self.assertEqual(
                ref.rescale(a, m, s, k, "double"),
                ref.rescale(a, m << (31 - k), s + 31 - k, 31, "double"),
                (a, m, s, k),
            )

    def test_three_implementations_agree(self):
        """Exact rationals (version 1 checker), Python ints and numpy int64 on random values."""
        rng = random.Random(1)
        rows = []
        for _ in range(6000):
            k = rng.choice([1, 2, 4, 8, 16, 31])
            rounding = rng.choice(["single", "double"])
            m = rng.choice([0, 1, 2**k - 1, rng.randint(0, 2**k - 1)])
            lo_s = k if rounding == "double" and m > 0 else 0
            s = rng.randint(lo_s, 62)
            a = rng.choice([rng.randint(-(2**31), 2**31 - 1), rng.randint(-300, 300)])
            # Near ties: a multiple of 2^(s-1) / m away from an integer boundary.
            want = ref.rescale(a, m, s, k, rounding)
            self.assertEqual(rc.rescale(a, m, s, k, rounding), want, (a, m, s, k, rounding))
            rows.append((a, m, s, k, rounding, want))
        for a_tie in range(-40, 41):  # every tie of M = 0.25 at k = 4 and of M = 0.5 at k = 2
            for m, s, k in ((8, 5, 4), (2, 2, 2), (3, 3, 2)):
                for rounding in ("single", "double"):
                    want = rc.rescale(a_tie, m, s, k, rounding)
                    self.assertEqual(ref.rescale(a_tie, m, s, k, rounding), want)
                    rows.append((a_tie, m, s, k, rounding, want))
        if np is None:
            return
        for a, m, s, k, rounding, want in rows:
            got = ref._rescale_np(np.array([a], dtype=np.int64), m, s, k, rounding)
            self.assertEqual(int(got[0]), want, (a, m, s, k, rounding))

    def test_derive_multiplier(self):
        self.assertEqual(ref.derive_multiplier(0.5, 4), (8, 4))
        self.assertEqual(ref.derive_multiplier(2.0**-19, 4), (8, 22))
        # LiteRT's QuantizeMultiplier(0.3) = 1288490189 with exponent -1: s = 31 + 1.
        self.assertEqual(ref.derive_multiplier(0.3, 31), (1288490189, 32))
        # f * 2^k rounding up to 2^k renormalises: 0.999 at k = 4 -> m = 8, e = 1, s = 3.
        self.assertEqual(ref.derive_multiplier(0.999, 4), (8, 3))
        self.assertEqual(ref.derive_multiplier(2.0**-70, 8), (0, 0))
        with self.assertRaises(ref.ModelError):
            ref.derive_multiplier(2.0**40, 8)

    def test_csd_weight(self):
        self.assertEqual([ref.csd_weight(n) for n in (0, 1, 3, 7, 15, 11, 0b1010101)], [0, 1, 2, 2, 2, 3, 4])


# --------------------------------------------------------------------------------------------
# Hand-computed models (testdata/).


class HandCases(unittest.TestCase):
    """Each testdata model's .jsonl holds values computed by hand; both engines must agree.

    conv_same_stride2: x - Z = 0..15 on a 4x4 grid; 3x3 kernel, stride 2, padding [0,1,0,1]
      (TFLite SAME: OH = ceil(4/2) = 2, total padding (2-1)*2 + 3 - 4 = 1, at the bottom/right).
      Channel 0 (all ones, M = 128/2^8 = 0.5): window sums 45, 39 (cols 2..3 only: column 4 is
      padding, skipped), 66, 50 -> floor((a+1)/2) = 23, 20, 33, 25; channel 1 (m = 1, s = 0,
      bias 3; taps w00 = 1, w02 = -1, w22 = 2): 0 - 2 + 20 + 3 = 21, 2 + 3 = 5, 8 - 10 + 3 = 1,
      10 + 3 = 13. Z_y = -5.
    conv_ohwi_flatten: x[y][x][c] = 1..12 on [3, 2, 2]; kernel [2, 1] with row dilation 2 reads
      rows 0 and 2: weight [O][KH][KW][C] = [[[[1, 2]], [[3, 4]]], [[[0, -1]], [[1, 0]]]] gives
      1*1 + 2*2 + 9*3 + 10*4 = 72 and 3 + 8 + 33 + 48 = 92 (channel 0), -2 + 9 = 7 and -4 + 11
      = 7 (channel 1); the dense head picks flat index 2 of [1, 2, 2] = (x 1, c 0) = 92. The
      model's rounding is double; the ops' `single` override makes m = 1, s = 0 legal.
    rounding_k4: the four counterexamples as dense outputs (identity rows) with an op-level
      k_bits = 4 and rounding override, Z_y = 3, plus a dead channel (m = 0; s = 0 < k in
      double mode, s = 7 in single) whose output is Z_y; the input passes through a reshape.
    depthwise_dm2_dilation2: 3x3x2 input, channel 0 = 1..9, channel 1 = -(1..9); 2x2 kernel,
      dilation 2, padding 1 on every side: taps at (oy-1, ox-1), (oy-1, ox+1), (oy+1, ox-1),
      (oy+1, ox+1). Output 0 (c 0, all ones) sums the valid ones (5, 10, 5, 10, 20, ...);
      output 1 (c 0) the top-left tap; output 2 (c 1) the bottom-right; output 3 (c 1,
      weight 2 at top-right, bias 5). M = 1, Z = 0.
    pools: Z = 50 (padding read as Z would show); 3x3 avg, padding 1: corner windows count 4
      taps, edges 6, centre 9; (6 + 2) / 4 = 2, (-6 - 2) / 4 = -2 (ties away from zero),
      (-17 - 2) / 4 = -4 (truncation), clamp [-3, 5]; 2x2 max, stride 2, padding [0,1,0,1]:
      the bottom-right window holds one valid tap (-6 / 6).
    add_scales_relu6: S_1 = 0.5, S_2 = 0.25, S_out = 0.5, left_shift 20, k = 4:
      a_1 = d_1 * 2^19, a_2 = d_2 * 2^18, output t / 2 with t = 2 d_1 + d_2: double rounds
      t = -3 to -2, single to -1; RELU6 clamp [-5, -5 + 12].
    """

    def check_case(self, name, engine):
        model = ref.load(data(name + ".json"))
        for v in read_jsonl(data(name + ".jsonl")):
            tensors, acc = ref.trace(model, v["input"], engine)
            self.assertEqual(tensors[model.input], v["input"])
            for t, want in v["tensors"].items():
                self.assertEqual(tensors[t], want, (name, engine, v["index"], t))
            self.assertEqual(set(v["tensors"]), {op.output for op in model.ops})
            for t, want in v.get("acc", {}).items():
                self.assertEqual(acc[t], want, (name, engine, v["index"], t))
            self.assertEqual(tensors[model.outputs[0]], v["output"])
            self.assertEqual(ref.classify(v["output"]), v["class"])

    def test_every_case_with_every_engine(self):
        for name in V2_CASES:
            for engine in ENGINES:
                with self.subTest(case=name, engine=engine):
                    self.check_case(name, engine)

    def test_specific_hand_values(self):
        """The facts each case stands for, stated once more in the test itself."""
        for engine in ENGINES:
            t, acc = ref.trace(data("conv_same_stride2.json"), list(range(1, 17)), engine)
            self.assertEqual(acc["y"][2], 39)  # bottom/right padding column skipped
            self.assertEqual(t["y"][6], 20)  # 50 -> floor(51 / 2) = 25, + Z_y -5
            t, _ = ref.trace(data("rounding_k4.json"), [1, 5, -2, -6], engine)
            self.assertEqual([q - 3 for q in t["s"][:4]], [0, 1, 0, -1])
            self.assertEqual([q - 3 for q in t["d"][:4]], [1, 2, -1, -2])
            self.assertEqual(t["d"][4], 3)
            self.assertEqual(t["s"][4], 3)
            t, _ = ref.trace(data("pools.json"), [-3, -3, 7, -8, 20, 1, 0, 5, -6], engine)
            self.assertEqual(t["avg"][0], 2)
            self.assertEqual(t["max"][3], -6)
            t, _ = ref.trace(data("add_scales_relu6.json"), [-1, 3, 0, 6], engine)
            self.assertEqual(t["yd"][2], -7)  # double: round_half_away(-3/2) = -2, + Z -5
            self.assertEqual(t["ys"][2], -6)  # single: floor(-3/2 + 1/2) = -1
            t, _ = ref.trace(data("add_scales_relu6.json"), [22, 9, 7, 11], engine)
            self.assertEqual(t["y6"], [7, 5, 4, 7])  # RELU6's upper bound Z + 12 = 7

    def test_depth_multiplier_channel_order(self):
        """Output channel o = c*DM + d reads input channel c (not c + d*C)."""
        model = ref.load(data("depthwise_dm2_dilation2.json"))
        x = [0] * 18
        x[(1 * 3 + 1) * 2 + 1] = 1  # only channel 1 of the centre pixel
        for engine in ENGINES:
            _, acc = ref.trace(model, x, engine)
            # Channels 0 and 1 read input channel 0: zero everywhere (bias 0).
            self.assertTrue(all(acc["y"][i] == 0 for i in range(len(acc["y"])) if i % 4 in (0, 1)))
            # Output 2 (c 1, tap bottom-right at (oy+1, ox+1)) sees the centre from (0, 0).
            self.assertEqual(acc["y"][(0 * 3 + 0) * 4 + 2], 1)

    def test_library_entry_points(self):
        out = ref.run(data("pools.json"), [0] * 9)
        self.assertEqual(sorted(out), ["avg", "max", "x"])
        with open(data("pools.json")) as f:
            doc = json.load(f)
        self.assertEqual(ref.run(doc, [0] * 9), out)
        with self.assertRaises(ValueError):
            ref.run(doc, [0] * 8)
        with self.assertRaises(ValueError):
            ref.run(doc, [0] * 8 + [128])
        with self.assertRaises(ValueError):
            ref.run(doc, [0] * 8 + [1.5])


class Version1AsDenseChain(unittest.TestCase):
    """DESIGN section 5: a version 1 file loads as a chain of dense ops. The version 1
    checker (exact rationals, the original code) and the version 2 engines must agree."""

    def test_random_version_1_models(self):
        rng = random.Random(11)
        for trial in range(30):
            k = rng.choice([31, 16, 8, 4, 2, 1])
            rounding = rng.choice(["single", "double"])
            sizes = [rng.randint(1, 12) for _ in range(rng.randint(2, 4))]
            layers = []
            for i in range(1, len(sizes)):
                n_in, n_out = sizes[i - 1], sizes[i]
                ms, ss = [], []
                for _ in range(n_out):
                    m = rng.choice([0, rng.randint(0, 2**k - 1)])
                    s = rng.randint(k if rounding == "double" and m > 0 else 0, 62)
                    if rng.random() < 0.7 and m > 0:  # a useful scale most of the time
                        m, s = ref.derive_multiplier(2.0 ** rng.uniform(-9, -4), k)
                    ms.append(m)
                    ss.append(s)
                layers.append({
                    "kind": "dense", "name": f"fc{i}", "in_features": n_in, "out_features": n_out,
                    "weight": [[rng.randint(-128, 127) for _ in range(n_in)] for _ in range(n_out)],
                    "bias": [rng.randint(-5000, 5000) for _ in range(n_out)],
                    "multiplier": ms, "shift": ss, "relu": rng.random() < 0.5,
                    "output": {"scale": 0.1, "zero_point": rng.randint(-128, 127)},
                })
            doc = {"format": "ratflow.int-model", "version": 1, "name": f"v1_{trial}",
                   "rescale": {"k_bits": k, "rounding": rounding},
                   "input": {"shape": [sizes[0]], "scale": 0.5, "zero_point": rng.randint(-128, 127)},
                   "layers": layers}
            model = rc.validate_v1(doc)
            for _ in range(4):
                x = [rng.randint(-128, 127) for _ in range(sizes[0])]
                accs, outs, cls = rc.run(doc, x)
                for engine in ENGINES:
                    tensors, acc = ref.trace(model, x, engine)
                    for i in range(len(layers)):
                        self.assertEqual(tensors[f"layers[{i}]"], outs[i], (trial, engine, i))
                        self.assertEqual(acc[f"layers[{i}]"], accs[i], (trial, engine, i))
                    self.assertEqual(ref.classify(tensors[model.outputs[0]]), cls)

    def test_version_1_rules(self):
        for edit, want in (
            (lambda d: d["layers"][1].__setitem__("in_features", 3), "layers[1].in_features: = 3 but its input has 2"),
            (lambda d: d["layers"][0].__setitem__("relu", 1), "layers[0].relu: = 1 is not true or false"),
            (lambda d: d["layers"][0]["multiplier"].__setitem__(0, 256), 'op "layers[0]" (ops[0]).multiplier[0]: = 256'),
            (lambda d: d["layers"][0].__setitem__("kind", "conv2d"), "layers[0].kind"),
            (lambda d: d["input"].__setitem__("shape", [2**20, 2**20]), "input.shape"),
        ):
            doc = load_doc("v1_tiny")
            edit(doc)
            with self.assertRaises(ref.ModelError) as cm:
                rc.validate_v1(doc)
            self.assertIn(want, str(cm.exception))


# --------------------------------------------------------------------------------------------
# The checker's command line.


def corrupt(rows, path, edit):
    rows = json.loads(json.dumps(rows))
    edit(rows)
    write_jsonl(path, rows)


class CliTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_testdata_vectors_pass(self):
        for name in V2_CASES + ["v1_tiny"]:
            for engine in ENGINES:
                status, out, err = run_main(data(name + ".json"), data(name + ".jsonl"), "--engine", engine)
                self.assertEqual(status, 0, (name, out, err))
                self.assertIn("vectors match the reference", out)

    def test_several_pairs_in_one_run(self):
        args = []
        for name in V2_CASES + ["v1_tiny"]:
            args += [data(name + ".json"), data(name + ".jsonl")]
        status, out, err = run_cli(*args)
        self.assertEqual(status, 0, (out, err))
        self.assertEqual(out.count("vectors match the reference"), len(V2_CASES) + 1)
        self.assertIn(data("pools.json") + ":\n2 of 2 vectors match the reference", out)
        rows = read_jsonl(data("pools.jsonl"))
        p = self.path("c.jsonl")
        corrupt(rows, p, lambda r: r[1]["tensors"]["max"].__setitem__(0, 9))
        status, out, _ = run_cli(*args[:2], data("pools.json"), p, *args[2:])
        self.assertEqual(status, 1)
        self.assertIn('vector 1 tensors["max"][0] (y 0, x 0, c 0): file 9, reference 8', out)
        status, _, err = run_cli(*args[:2], data("pools.json"), self.path("absent.jsonl"), data("pools.json"), p)
        self.assertEqual(status, 2)
        status, _, err = run_cli(data("pools.json"))
        self.assertEqual(status, 2)
        self.assertIn("expected MODEL.json VECTORS.jsonl pairs", err)

    def test_subprocess_cli(self):
        status, out, _ = run_cli(data("pools.json"), data("pools.jsonl"))
        self.assertEqual(status, 0, out)
        self.assertEqual(out.strip(), "2 of 2 vectors match the reference")
        status, out, _ = run_cli(data("v1_tiny.json"), data("v1_tiny.jsonl"))
        self.assertEqual((status, out.strip()), (0, "1 of 1 vectors match the reference"))

    def test_one_changed_element_of_every_kind_is_found(self):
        for name in V2_CASES:
            rows = read_jsonl(data(name + ".jsonl"))
            targets = [("tensors", t) for t in rows[-1]["tensors"]]
            targets += [("acc", t) for t in rows[-1].get("acc", {})]
            targets += [("output", None), ("class", None)]
            for kind, tname in targets:
                with self.subTest(case=name, kind=kind, tensor=tname):
                    last = len(rows) - 1
                    if kind == "class":
                        def edit(r):
                            r[last]["class"] += 1
                        want = f'vector {rows[last]["index"]} class'
                    else:
                        lst = rows[last][kind] if tname is None else rows[last][kind][tname]
                        i = len(lst) // 2
                        delta = -1 if lst[i] > 0 else 1

                        def edit(r, i=i, delta=delta, kind=kind, tname=tname):
                            target = r[last][kind] if tname is None else r[last][kind][tname]
                            target[i] += delta
                        field = kind if tname is None else f"{kind}[{json.dumps(tname)}]"
                        want = f'vector {rows[last]["index"]} {field}[{i}]'
                    p = self.path("c.jsonl")
                    corrupt(rows, p, edit)
                    status, out, _ = run_main(data(name + ".json"), p)
                    self.assertEqual(status, 1, out)
                    self.assertIn(want, out)
                    self.assertIn("first mismatch: " + want, out)
                    n = len(rows)
                    self.assertIn(f"{n - 1} of {n} vectors match the reference", out)

    def test_missing_extra_and_truncated_tensors_are_mismatches(self):
        rows = read_jsonl(data("add_scales_relu6.jsonl"))
        edits = {
            "missing": (lambda r: r[0]["tensors"].pop("yd"), 'vector 0 tensors["yd"]: missing'),
            "extra": (lambda r: r[0]["tensors"].__setitem__("x", r[0]["input"]),
                      'vector 0 tensors["x"]: not an op output'),
            "short": (lambda r: r[0]["tensors"]["p"].pop(), 'vector 0 tensors["p"]: file has 3 elements'),
            "acc_missing": (lambda r: r[0]["acc"].pop("p"), 'vector 0 acc["p"]: missing'),
            "acc_extra": (lambda r: r[0]["acc"].__setitem__("y6", [0, 0, 0, 0]),
                          'vector 0 acc["y6"]: not an accumulating'),
            "output_short": (lambda r: r[0]["output"].append(0), "vector 0 output: file has 5 elements"),
        }
        for what, (edit, want) in edits.items():
            with self.subTest(what=what):
                p = self.path("c.jsonl")
                corrupt(rows, p, edit)
                status, out, _ = run_main(data("add_scales_relu6.json"), p)
                self.assertEqual(status, 1, out)
                self.assertIn(want, out)

    def test_acc_is_optional(self):
        rows = read_jsonl(data("conv_same_stride2.jsonl"))
        p = self.path("noacc.jsonl")
        corrupt(rows, p, lambda r: [v.pop("acc") for v in r])
        self.assertEqual(run_main(data("conv_same_stride2.json"), p)[0], 0)

    def test_version_1_mismatch_keeps_its_format(self):
        rows = read_jsonl(data("v1_tiny.jsonl"))
        p = self.path("c.jsonl")
        corrupt(rows, p, lambda r: r[0]["layers"][0].__setitem__(1, -9))
        status, out, _ = run_cli(data("v1_tiny.json"), p)
        self.assertEqual(status, 1)
        self.assertEqual(out, "vector 0 layers[0][1]: file -9, reference -10\n0 of 1 vectors match the reference\n")
        corrupt(rows, p, lambda r: r[0]["acc"][1].__setitem__(0, 13))
        status, out, _ = run_cli(data("v1_tiny.json"), p)
        self.assertEqual(status, 1)
        self.assertIn("vector 0 acc[1][0]: file 13, reference 12", out)

    def test_empty_vectors_file_fails(self):
        p = self.path("empty.jsonl")
        open(p, "w").close()
        self.assertEqual(run_main(data("pools.json"), p)[0], 1)
        self.assertEqual(run_main(data("v1_tiny.json"), p)[0], 1)

    def test_bad_vectors_files_exit_2(self):
        good = read_jsonl(data("pools.jsonl"))[0]
        cases = {
            "not json": ("{", "line 1: not JSON"),
            "array": ("[1, 2]", "line 1: not a JSON object"),
            "no input": (json.dumps({k: v for k, v in good.items() if k != "input"}), "`input` is missing"),
            "short input": (json.dumps(dict(good, input=[0] * 8)), "input has 8 codes"),
            "wide input": (json.dumps(dict(good, input=[0] * 8 + [128])), "outside int8"),
            "float input": (json.dumps(dict(good, input=[0] * 8 + [0.5])), "input is not a list of integers"),
            "bool input": (json.dumps(dict(good, input=[0] * 8 + [True])), "input is not a list of integers"),
            "bad label": (json.dumps(dict(good, label=-1)), "label = -1"),
            "bad index": (json.dumps(dict(good, index="0")), "index ="),
            "tensors list": (json.dumps(dict(good, tensors=[])), "`tensors` is not an object"),
            "string element": (json.dumps(dict(good, output=["1"])), "output is not a list of integers"),
            "v1 vectors": (json.dumps({"index": 0, "input": [0] * 9, "acc": [], "layers": [], "class": 0}),
                           "version 1 vectors"),
            "duplicate key": ('{"index": 0, "index": 1}', "duplicate key"),
        }
        for what, (line, want) in cases.items():
            with self.subTest(what=what):
                p = self.path("bad.jsonl")
                with open(p, "w") as f:
                    f.write(line + "\n")
                status, out, err = run_main(data("pools.json"), p)
                self.assertEqual(status, 2, (out, err))
                self.assertIn(want, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
        status, _, err = run_main(data("pools.json"), self.path("absent.jsonl"))
        self.assertEqual(status, 2)
        self.assertIn("cannot read", err)


# --------------------------------------------------------------------------------------------
# Bad models: exit 2, one line naming the op and field.


def load_doc(name):
    with open(data(name + ".json")) as f:
        return json.load(f)


def op_named(doc, name):
    return next(o for o in doc["ops"] if o["name"] == name)


BAD_MODELS = [
    # (base case, edit, substring of the one-line error)
    ("pools", lambda d: d.__setitem__("version", 3), "version"),
    ("pools", lambda d: d.__setitem__("format", "x"), "format"),
    ("pools", lambda d: d.pop("rescale"), "rescale: missing"),
    ("pools", lambda d: d["rescale"].__setitem__("k_bits", 32), "rescale.k_bits: = 32"),
    ("pools", lambda d: d["rescale"].__setitem__("rounding", "up"), "rescale.rounding"),
    ("pools", lambda d: op_named(d, "avg3x3").__setitem__("kind", "softmax"),
     'op "avg3x3" (ops[0]).kind: = "softmax" is not one of'),
    ("pools", lambda d: op_named(d, "avg3x3").__setitem__("inputs", ["nothere"]),
     'op "avg3x3" (ops[0]).inputs[0]: tensor "nothere" is not declared'),
    ("pools", lambda d: d["tensors"]["max"].__setitem__("zero_point", 49),
     'op "max2x2" (ops[1]).output: (S, Z)'),
    ("pools", lambda d: d["tensors"]["avg"].__setitem__("scale", 0.2), 'op "avg3x3" (ops[0]).output: (S, Z)'),
    ("pools", lambda d: op_named(d, "avg3x3").__setitem__("clamp", [-129, 5]),
     'op "avg3x3" (ops[0]).clamp[0]: = -129'),
    ("pools", lambda d: op_named(d, "avg3x3").__setitem__("clamp", [6, 5]), 'op "avg3x3" (ops[0]).clamp: = [6, 5] has lo > hi'),
    ("pools", lambda d: op_named(d, "avg3x3").pop("clamp"), 'op "avg3x3" (ops[0]).clamp: missing'),
    ("pools", lambda d: op_named(d, "avg3x3").__setitem__("clamp", [-128, True]), "clamp[1]: = true"),
    ("pools", lambda d: (op_named(d, "avg3x3").__setitem__("padding", [3, 0, 1, 1]),
                         d["tensors"]["avg"].__setitem__("shape", [4, 3, 1])),
     'op "avg3x3" (ops[0]).padding: rows: the first window lies entirely in the padding'),
    ("pools", lambda d: op_named(d, "max2x2").__setitem__("padding", [0, 3, 0, 1]),
     'op "max2x2" (ops[1]).output: rows: computed size 3'),
    ("pools", lambda d: op_named(d, "max2x2").__setitem__("dilation", [2, 2]), "pools have no dilation"),
    ("pools", lambda d: op_named(d, "max2x2").__setitem__("stride", [0, 2]), "stride[0]: = 0"),
    ("pools", lambda d: op_named(d, "max2x2").__setitem__("name", "avg3x3"), "name: is not unique"),
    ("pools", lambda d: op_named(d, "max2x2").__setitem__("output", "avg"), 'already the output of op "avg3x3"'),
    ("pools", lambda d: op_named(d, "max2x2").__setitem__("output", "x"), "already the graph input"),
    ("pools", lambda d: d.__setitem__("outputs", ["x"]), "outputs[0]"),
    ("pools", lambda d: d.__setitem__("inputs", ["x", "avg"]), "inputs: = "),
    ("pools", lambda d: d["tensors"]["x"].__setitem__("shape", [3, 3]), 'tensors["x"].shape'),
    ("pools", lambda d: d["tensors"]["x"].__setitem__("scale", 0), 'tensors["x"].scale'),
    ("pools", lambda d: d["tensors"]["x"].__setitem__("shape", [4096, 4096, 2]), "more than 2^24 elements"),
    ("pools", lambda d: d["tensors"]["x"].__setitem__("shape", [4, 5, 5581, 8681, 49477, 384773]),
     'tensors["x"].shape: = [4, 5, 5581'),
    ("pools", lambda d: d["tensors"]["x"].__setitem__("shape", [3, 3, 2]), 'op "avg3x3" (ops[0]).output: has 1 channels'),
    # A cycle: the first op reads the second's output (ops must be in topological order).
    ("pools", lambda d: op_named(d, "avg3x3").__setitem__("inputs", ["max"]),
     "is produced by a later op"),
    ("conv_same_stride2", lambda d: op_named(d, "conv")["weight"][1][2].pop(),
     'op "conv" (ops[0]).weight[1][2]: has 2 entries, expected a list of 3'),
    ("conv_same_stride2", lambda d: op_named(d, "conv")["weight"][0][0][0].__setitem__(0, 128),
     "weight[0][0][0][0]: = 128"),
    ("conv_same_stride2", lambda d: op_named(d, "conv").__setitem__("kernel", [2, 3]),
     'op "conv" (ops[0]).weight[0]: has 3 entries, expected a list of 2'),
    ("conv_same_stride2", lambda d: op_named(d, "conv").__setitem__("stride", [1, 2]),
     'op "conv" (ops[0]).output: rows: computed size 3 = (4 + 0 + 1 - 3) // 1 + 1'),
    ("conv_same_stride2", lambda d: op_named(d, "conv")["multiplier"].__setitem__(0, 256),
     'op "conv" (ops[0]).multiplier[0]: = 256 does not fit k = 8'),
    ("conv_same_stride2", lambda d: op_named(d, "conv").__setitem__("rounding", "double"),
     'op "conv" (ops[0]).shift[1]: = 0 < k = 8: double rounding needs s >= k when m > 0'),
    ("conv_same_stride2", lambda d: op_named(d, "conv")["shift"].__setitem__(0, 63), "shift[0]: = 63"),
    ("conv_same_stride2", lambda d: op_named(d, "conv")["bias"].__setitem__(0, 2**31), "bias[0]: = 2147483648"),
    ("conv_same_stride2", lambda d: op_named(d, "conv")["bias"].__setitem__(0, 2**31 - 1000),
     "output channel 0: accumulator bound 255 * 9 + |2147482648|"),
    ("conv_same_stride2", lambda d: (d["rescale"].__setitem__("csd_digits", 1),
                                     op_named(d, "conv")["multiplier"].__setitem__(0, 3)),
     'op "conv" (ops[0]).multiplier[0]: = 3 has 2 non-zero CSD digits, more than rescale.csd_digits = 1'),
    ("conv_same_stride2", lambda d: d["rescale"].__setitem__("csd_digits", 0), "rescale.csd_digits: = 0"),
    ("conv_same_stride2", lambda d: d["tensors"]["y"].__setitem__("shape", [2, 2, 3]), "weight: has 2 entries, expected a list of 3"),
    ("conv_same_stride2", lambda d: d["tensors"]["y"].__setitem__("shape", [8]), "not [H, W, C]"),
    ("depthwise_dm2_dilation2", lambda d: d["tensors"]["y"].__setitem__("shape", [3, 3, 3]),
     "not a multiple of the 2 input channels"),
    ("depthwise_dm2_dilation2", lambda d: op_named(d, "dw").__setitem__("dilation", [3, 3]),
     'op "dw" (ops[0]).output: rows: computed size 2 = (3 + 1 + 1 - 4) // 1 + 1, but the output tensor declares 3'),
    ("depthwise_dm2_dilation2", lambda d: op_named(d, "dw").__setitem__("dilation", [5, 1]),
     'op "dw" (ops[0]).kernel: rows: the kernel extent 6 exceeds the padded input 5'),
    ("depthwise_dm2_dilation2", lambda d: op_named(d, "dw")["weight"][1][1].__setitem__(2, 3.0),
     'op "dw" (ops[0]).weight[1][1][2]: = 3.0 is not an integer'),
    ("add_scales_relu6", lambda d: d["tensors"]["p"].__setitem__("shape", [5]),
     'op "reverse" (ops[0]).weight: has 4 entries, expected a list of 5'),
    ("add_scales_relu6", lambda d: op_named(d, "add_double").__setitem__("inputs", ["x"]), "is not a list of 2 tensor names"),
    ("add_scales_relu6", lambda d: d["tensors"]["yd"].__setitem__("shape", [2, 2, 1]), "add needs equal shapes"),
    ("add_scales_relu6", lambda d: op_named(d, "add_double").__setitem__("left_shift", 24), "left_shift: = 24"),
    ("add_scales_relu6", lambda d: op_named(d, "add_double").pop("left_shift"), "left_shift: missing"),
    ("add_scales_relu6", lambda d: op_named(d, "add_double").__setitem__("multiplier", [8, 8]), "multiplier: = [8, 8]"),
    ("add_scales_relu6", lambda d: op_named(d, "add_single").__setitem__("shift", [0, 0, 22]),
     'op "add_single" (ops[3]).multiplier: |a_1| + |a_2| can reach'),
    ("add_scales_relu6", lambda d: op_named(d, "add_double").__setitem__("shift", [3, 5, 22]),
     'op "add_double" (ops[2]).shift[0]: = 3 < k = 4'),
    ("add_scales_relu6", lambda d: op_named(d, "add_double").__setitem__("k_bits", 0), "k_bits: = 0"),
    ("rounding_k4", lambda d: op_named(d, "flatten").__setitem__("clamp", [0, 127]), "reshape has no clamp"),
    ("rounding_k4", lambda d: d["tensors"]["flat"].__setitem__("shape", [5]), 'op "flatten" (ops[0]).output: has 5 elements'),
    ("rounding_k4", lambda d: d["tensors"]["flat"].__setitem__("zero_point", 1), 'op "flatten" (ops[0]).output: (S, Z)'),
    ("rounding_k4", lambda d: op_named(d, "single_k4")["weight"].pop(), 'op "single_k4" (ops[2]).weight: has 4 entries, expected a list of 5'),
]


class BadModelTests(unittest.TestCase):
    def test_every_rule_names_op_and_field(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "bad.json")
            for i, (base, edit, want) in enumerate(BAD_MODELS):
                with self.subTest(i=i, want=want):
                    doc = load_doc(base)
                    edit(doc)
                    with self.assertRaises(ref.ModelError) as cm:
                        ref.validate(doc)
                    self.assertIn(want, str(cm.exception))
                    with open(p, "w") as f:
                        json.dump(doc, f)
                    status, out, err = run_main(p, data(base + ".jsonl"))
                    self.assertEqual(status, 2, (out, err))
                    self.assertEqual(out, "")
                    self.assertEqual(len(err.strip().splitlines()), 1, err)
                    self.assertIn(want, err)

    def test_huge_declared_weight_is_refused_before_allocation(self):
        """Like shared/cases/huge_dimensions.json in version 2: 2^24 inputs, empty rows."""
        doc = {
            "format": "ratflow.int-model", "version": 2, "name": "huge",
            "rescale": {"k_bits": 8},
            "tensors": {"x": {"shape": [16777216], "scale": 1.0, "zero_point": 0},
                        "y": {"shape": [65536], "scale": 1.0, "zero_point": 0}},
            "inputs": ["x"], "outputs": ["y"],
            "ops": [{"kind": "dense", "name": "fc1", "inputs": ["x"], "output": "y",
                     "weight": [[]] * 65536, "bias": [0] * 65536, "multiplier": [1] * 65536,
                     "shift": [0] * 65536, "clamp": [-128, 127]}],
        }
        with self.assertRaises(ref.ModelError) as cm:
            ref.validate(doc)
        self.assertIn('op "fc1" (ops[0]).weight[0]: has 0 entries, expected a list of 16777216', str(cm.exception))

    def test_unreadable_model_files_exit_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            for what, text, want in (
                ("not json", "{", "cannot read"),
                ("nan", '{"version": NaN}', "cannot read"),
                ("deep", "[" * 100000, "cannot read"),
                ("duplicate", '{"version": 2, "version": 2}', "duplicate key"),
                ("array", "[]", "version = null"),
                ("version 3", '{"version": 3}', "version = 3"),
                ("version true", '{"version": true}', "version = true"),
            ):
                with self.subTest(what=what):
                    p = os.path.join(tmp, "m.json")
                    with open(p, "w") as f:
                        f.write(text)
                    status, out, err = run_main(p, data("pools.jsonl"))
                    self.assertEqual(status, 2, (out, err))
                    self.assertIn(want, err)
                    self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_shared_case_files(self):
        """The version 1 files of shared/cases/, where present, exit 2 without a traceback."""
        shared = os.path.join(HERE, "..", "..", "shared", "cases")
        for name in ("huge_dimensions.json", "shape_product_wraps.json"):
            p = os.path.join(shared, name)
            if not os.path.exists(p):
                continue
            status, out, err = run_main(p, data("v1_tiny.jsonl"))
            self.assertEqual(status, 2, (out, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)


# --------------------------------------------------------------------------------------------
# Random graphs: every op, both roundings, k in {31, 8, 4, 2}.


def _same_padding(n, k, stride, dil):
    ext = (k - 1) * dil + 1
    out = -(-n // stride)
    total = max((out - 1) * stride + ext - n, 0)
    return total // 2, total - total // 2, out  # TFLite SAME: the odd one at the end


def random_model(seed, k=None, rounding=None):
    """A valid random version 2 graph using every op kind (a JSON dict).

    Conv, depthwise (depth multiplier 1..3), a residual add with its own scales, both pools,
    a reshape and a dense head; strides 1 and 2, dilation 1 and 2, VALID / SAME / explicit
    padding; per-channel and per-tensor (m, s), dead channels (m = 0), per-op k_bits and
    rounding overrides, NONE / RELU / RELU6 clamps.
    """
    rng = random.Random(seed)
    k = k or rng.choice([31, 8, 4, 2])
    rounding = rounding or rng.choice(["single", "double"])
    tensors, ops = {}, []
    H = rng.randint(3, 9)
    W = 1 if rng.random() < 0.2 else rng.randint(3, 9)  # sometimes a 1-D signal [T, 1, C]
    C = rng.randint(1, 4)

    def tensor(name, shape, scale=None, zp=None):
        tensors[name] = {"shape": shape, "scale": scale or rng.uniform(0.01, 0.2),
                         "zero_point": rng.randint(-128, 127) if zp is None else zp}
        return name

    def clamp_for(name):
        z, s = tensors[name]["zero_point"], tensors[name]["scale"]
        choice = rng.random()
        if choice < 0.4:
            return [-128, 127]
        if choice < 0.7:
            return [max(-128, z), 127]
        q6 = math.floor(6.0 / s + 0.5)
        return [max(-128, z), min(127, z + q6)]

    def rescalers(n_out, fan_in, op):
        opk, oprd = op.get("k_bits", k), op.get("rounding", rounding)
        # Spread the outputs over int8: acc ~ 70 * 60 * sqrt(fan_in).
        base = 2.0 ** rng.uniform(-2, 2) * 40.0 / (70 * 60 * math.sqrt(fan_in))
        per_tensor = rng.random() < 0.3
        ms, ss = [], []
        for c in range(n_out):
            if c > 0 and per_tensor:
                ms.append(ms[0]); ss.append(ss[0])
                continue
            if rng.random() < 0.1:  # a dead channel; s < k is legal for m = 0 in both modes
                ms.append(0); ss.append(rng.randint(0, 62))
                continue
            m, s = ref.derive_multiplier(min(base * rng.uniform(0.5, 1.5), 0.9), opk)
            if oprd == "double" and m > 0 and s < opk:
                m, s = 0, 0
            ms.append(m); ss.append(s)
        op["multiplier"], op["shift"] = ms, ss

    def overrides(op):
        if rng.random() < 0.3:
            op["k_bits"] = rng.choice([31, 16, 8, 4, 2, 1])
        if rng.random() < 0.3:
            op["rounding"] = rng.choice(["single", "double"])

    def geometry(h, w, kh, kw, stride, dil):
        mode = rng.choice(["valid", "same", "explicit"])
        ext_h, ext_w = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
        if mode == "explicit":
            pad = [rng.randint(0, 2) for _ in range(4)]
        elif mode == "same":
            t, b, _ = _same_padding(h, kh, stride[0], dil[0])
            l, r, _ = _same_padding(w, kw, stride[1], dil[1])
            pad = [t, b, l, r]
        else:
            pad = [0, 0, 0, 0]
        if h + pad[0] + pad[1] < ext_h or w + pad[2] + pad[3] < ext_w:
            t, b, _ = _same_padding(h, kh, stride[0], dil[0])
            l, r, _ = _same_padding(w, kw, stride[1], dil[1])
            pad = [t, b, l, r]
        oh = (h + pad[0] + pad[1] - ext_h) // stride[0] + 1
        ow = (w + pad[2] + pad[3] - ext_w) // stride[1] + 1
        return pad, oh, ow

    def conv(cur, kind, out_c=None, same_shape=False):
        h, w, c = tensors[cur]["shape"]
        kh = rng.randint(1, 3)
        kw = 1 if w == 1 else rng.randint(1, 3)
        if same_shape:
            stride, dil = [1, 1], [1, 1]
        else:
            stride = [rng.choice([1, 2]), 1 if w == 1 else rng.choice([1, 2])]
            dil = [rng.choice([1, 1, 2]), 1 if w == 1 else rng.choice([1, 1, 2])]
        if same_shape:
            t, b, _ = _same_padding(h, kh, 1, 1)
            l, r, _ = _same_padding(w, kw, 1, 1)
            pad, oh, ow = [t, b, l, r], h, w
        else:
            pad, oh, ow = geometry(h, w, kh, kw, stride, dil)
        if kind == "conv2d":
            o = out_c or rng.randint(1, 6)
            weight = [[[[rng.randint(-128, 127) for _ in range(c)] for _ in range(kw)] for _ in range(kh)] for _ in range(o)]
            fan = kh * kw * c
        else:
            dm = 1 if same_shape else rng.randint(1, 3)
            o = c * dm
            weight = [[[rng.randint(-128, 127) for _ in range(o)] for _ in range(kw)] for _ in range(kh)]
            fan = kh * kw
        name = f"t{len(ops)}"
        tensor(name, [oh, ow, o])
        op = {"kind": kind, "name": f"{kind}_{len(ops)}", "inputs": [cur], "output": name,
              "kernel": [kh, kw], "stride": stride, "padding": pad, "weight": weight,
              "bias": [rng.randint(-3000, 3000) for _ in range(o)], "clamp": clamp_for(name)}
        if dil != [1, 1] or rng.random() < 0.5:
            op["dilation"] = dil
        overrides(op)
        rescalers(o, fan, op)
        ops.append(op)
        return name

    def pool(cur, kind):
        h, w, c = tensors[cur]["shape"]
        kh = rng.randint(1, min(3, h))
        kw = 1 if w == 1 else rng.randint(1, min(3, w))
        stride = [rng.choice([1, 2]), 1 if w == 1 else rng.choice([1, 2])]
        pad, oh, ow = geometry(h, w, kh, kw, stride, [1, 1])
        # Every window needs a valid tap (a pad < kernel; the last window inside).
        if (pad[0] >= kh or pad[2] >= kw or (oh - 1) * stride[0] - pad[0] > h - 1
                or (ow - 1) * stride[1] - pad[2] > w - 1):
            pad, oh, ow = [0, 0, 0, 0], (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
        name = f"t{len(ops)}"
        src = tensors[cur]
        tensor(name, [oh, ow, c], src["scale"], src["zero_point"])
        op = {"kind": kind, "name": f"{kind}_{len(ops)}", "inputs": [cur], "output": name,
              "kernel": [kh, kw], "stride": stride, "padding": pad, "clamp": clamp_for(name)}
        ops.append(op)
        return name

    def residual(cur):
        c = tensors[cur]["shape"][2]
        branch = conv(cur, rng.choice(["conv2d", "depthwise_conv2d"]), out_c=c, same_shape=True)
        name = f"t{len(ops)}"
        tensor(name, list(tensors[cur]["shape"]))
        s1, s2, so = tensors[cur]["scale"], tensors[branch]["scale"], tensors[name]["scale"]
        op = {"kind": "add", "name": f"add_{len(ops)}", "inputs": [cur, branch], "output": name,
              "left_shift": 20, "clamp": clamp_for(name)}
        overrides(op)
        opk = op.get("k_bits", k)
        twice = 2 * max(s1, s2)
        ms_ss = [ref.derive_multiplier(v, opk) for v in (s1 / twice, s2 / twice, twice / (2**20 * so))]
        op["multiplier"] = [m for m, _ in ms_ss]
        op["shift"] = [s for _, s in ms_ss]
        if op.get("rounding", rounding) == "double" and any(m > 0 and s < opk for m, s in ms_ss):
            op["rounding"] = "single"
        ops.append(op)
        return name

    cur = tensor("input", [H, W, C])
    cur = conv(cur, "conv2d")
    steps = ["conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d", "add"]
    rng.shuffle(steps)
    for step in steps + rng.sample(steps, 2):
        if step == "add":
            cur = residual(cur)
        elif step in ("conv2d", "depthwise_conv2d"):
            cur = conv(cur, step)
        else:
            cur = pool(cur, step)
    size = math.prod(tensors[cur]["shape"])
    if rng.random() < 0.7:
        flat = f"t{len(ops)}"
        src = tensors[cur]
        tensor(flat, [size], src["scale"], src["zero_point"])
        ops.append({"kind": "reshape", "name": f"reshape_{len(ops)}", "inputs": [cur], "output": flat})
        cur = flat
    n_cls = rng.randint(2, 10)
    name = tensor("logits", [n_cls])
    op = {"kind": "dense", "name": "head", "inputs": [cur], "output": name,
          "weight": [[rng.randint(-128, 127) for _ in range(size)] for _ in range(n_cls)],
          "bias": [rng.randint(-3000, 3000) for _ in range(n_cls)], "clamp": [-128, 127]}
    overrides(op)
    rescalers(n_cls, size, op)
    ops.append(op)
    return {"format": "ratflow.int-model", "version": 2, "name": f"random_{seed}",
            "rescale": {"k_bits": k, "rounding": rounding}, "tensors": tensors,
            "inputs": ["input"], "outputs": ["logits"], "ops": ops}


def random_inputs(model, count, seed):
    rng = random.Random(seed)
    n = model.tensors[model.input].size
    return [[rng.randint(-128, 127) for _ in range(n)] for _ in range(count)]


def vectors_for(model, inputs, engine):
    tensors, acc = ref.run_batch(model, inputs, engine)

    def row(arrays, name, b):
        r = arrays[name][b]
        return r.tolist() if hasattr(r, "tolist") else list(r)

    rows = []
    for b, x in enumerate(inputs):
        out = row(tensors, model.outputs[0], b)
        rows.append({"index": b, "input": x,
                     "tensors": {op.output: row(tensors, op.output, b) for op in model.ops},
                     "acc": {n: row(acc, n, b) for n in model.accumulating},
                     "output": out, "class": ref.classify(out)})
    return rows


@unittest.skipIf(np is None, "numpy is not installed")
class RandomGraphTests(unittest.TestCase):
    def test_numpy_engine_equals_loop_engine(self):
        kinds = set()
        roundings = set()
        for seed in range(40):
            doc = random_model(seed, k=[31, 8, 4, 2][seed % 4], rounding=["single", "double"][seed // 4 % 2])
            model = ref.validate(doc)
            kinds.update(op.kind for op in model.ops)
            roundings.update(op.rounding for op in model.ops)
            inputs = random_inputs(model, 3, seed)
            t_np, a_np = ref.run_batch(model, inputs, "numpy")
            t_lp, a_lp = ref.run_batch(model, inputs, "loops")
            for name in t_lp:
                self.assertEqual(t_np[name].tolist(), t_lp[name], (seed, name))
            for name in a_lp:
                self.assertEqual(a_np[name].tolist(), a_lp[name], (seed, name))
            self.assertEqual(set(a_np), set(model.accumulating))
        self.assertEqual(kinds, set(ref.KINDS))
        self.assertEqual(roundings, {"single", "double"})

    def test_outputs_are_not_degenerate(self):
        """The generator's scales keep outputs spread (a test of something, not of clamps)."""
        spread = 0
        for seed in range(10):
            model = ref.validate(random_model(seed))
            tensors, _ = ref.run_batch(model, random_inputs(model, 5, seed))
            spread += len(set(tensors["logits"].ravel().tolist()))
        self.assertGreater(spread, 40)

    def test_fifty_graphs_twenty_vectors_checked_quickly(self):
        """Speed: 50 random graphs x 20 vectors through the checker (acc included) < 60 s."""
        with tempfile.TemporaryDirectory() as tmp:
            pairs = []
            for seed in range(50):
                doc = random_model(1000 + seed)
                model = ref.validate(doc)
                mp, vp = os.path.join(tmp, f"m{seed}.json"), os.path.join(tmp, f"v{seed}.jsonl")
                with open(mp, "w") as f:
                    json.dump(doc, f)
                write_jsonl(vp, vectors_for(model, random_inputs(model, 20, seed), "numpy"))
                pairs.append((mp, vp))
            start = time.perf_counter()
            for mp, vp in pairs:
                status, out, err = run_main(mp, vp)
                self.assertEqual(status, 0, (out, err))
            elapsed = time.perf_counter() - start
            # As a test driver would run it: one process for all 50 pairs.
            start = time.perf_counter()
            status, out, err = run_cli(*[f for pair in pairs for f in pair])
            one_process = time.perf_counter() - start
            self.assertEqual(status, 0, (out, err))
            self.assertEqual(out.count("20 of 20 vectors match the reference"), 50)
            print(f"\n50 graphs x 20 vectors: {elapsed:.2f} s in-process, {one_process:.2f} s as one "
                  "reference_check.py run", file=sys.stderr)
            self.assertLess(elapsed, 60.0)
            self.assertLess(one_process, 60.0)
            # A changed accumulator deep in one random graph is still found.
            rows = read_jsonl(pairs[7][1])
            name = ref.load(pairs[7][0]).accumulating[-2]
            rows[13]["acc"][name][0] += 1
            write_jsonl(pairs[7][1], rows)
            status, out, _ = run_main(*pairs[7])
            self.assertEqual(status, 1)
            self.assertIn(f'vector 13 acc["{name}"][0]', out)


if __name__ == "__main__":
    unittest.main()
