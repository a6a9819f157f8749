#!/usr/bin/env python3
"""Tests of the LiteRT scripts and of the committed fixtures (unittest, LiteRT venv).

Run: build/venv-litert/bin/python -m unittest discover -s scripts/litert -p 'test_*.py'
(after scripts/litert/setup-venv.sh). Covers the rounding helpers against DESIGN section 1's
worked examples, TFLite's QUANTIZE on ties, dump.py -> compare.py round trips (equal, one
element changed, a wrong name), the one-line errors, and that LiteRT BUILTIN_REF still
produces every committed fixture in tests/fixtures/litert/ bit for bit.
"""

import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import litert_common as lc  # noqa: E402
import ref_numpy as rn  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "litert")
SMALL = os.path.join(ROOT, "tests", "fixtures", "tflite", "conv_s2_same_relu6.tflite")
FLOAT_IO = os.path.join(ROOT, "tests", "fixtures", "tflite", "float_io.tflite")


def run(*args):
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)
    return p.returncode, p.stdout, p.stderr


class Rounding(unittest.TestCase):
    def test_design_section1_example_k4(self):
        # DESIGN section 1: k = 4, M = 0.25 (m = 8, s = 5).
        self.assertEqual(rn.quantize_multiplier(0.25, k=4), (8, 5))
        a = np.array([1, 5, -2, -6], dtype=np.int64)
        self.assertEqual(rn.rescale_single(a, 8, 5).tolist(), [0, 1, 0, -1])
        self.assertEqual(rn.rescale_double(a, 8, 5, k=4).tolist(), [1, 2, -1, -2])

    def test_quantize_multiplier_k31_and_underflow(self):
        self.assertEqual(rn.quantize_multiplier(0.5), (1 << 30, 31))
        # f * 2^31 rounding up to 2^31 renormalises to 2^30 with e + 1.
        self.assertEqual(rn.quantize_multiplier(1.0 - 2.0 ** -40), (1 << 30, 30))
        self.assertEqual(rn.quantize_multiplier(2.0 ** -40), (0, 0))  # s > 62

    def test_float64_rule_rounds_half_away(self):
        a = np.array([-2, 2, -6, 6], dtype=np.int64)
        self.assertEqual(rn.rescale_float64(a, 0.25).tolist(), [-1, 1, -2, 2])

    def test_quantize_tflite_ties_and_clamp(self):
        s = 0.5
        r = np.array([0.25, -0.25, 0.75, 100.0, -100.0, 0.2499999], dtype=np.float32)
        self.assertEqual(lc.quantize_tflite(r, s, 3).tolist(), [4, 2, 5, 127, -128, 3])
        # The division is float32: float32(0.7) / float32(0.2) is exactly 3.5 in float32
        # (-> 4), 3.4999999 in float64 (-> 3).
        self.assertEqual(lc.quantize_tflite(np.float32(0.7), 0.2, 0).tolist(), 4)

    def test_near_tie_counter_finds_a_planted_tie(self):
        # A dense layer whose M = 0.25 exactly: a = -2 gives -0.5, where `single` (half
        # toward +inf) gives 0 and float64 (half away) gives -1.
        op = rn.Op.__new__(rn.Op)
        op.zx, op.zy, op.lo, op.hi = 0, 0, -128, 127
        op.w = np.array([[1, 1]], dtype=np.int64)
        op.b = np.array([0], dtype=np.int64)
        op.M = np.array([0.25])
        op.m = np.array([1 << 30], dtype=np.int64)
        op.s = np.array([32], dtype=np.int64)
        report = op._dense_near_ties()
        self.assertGreater(report["single_vs_float64_differ"], 0)


@unittest.skipUnless(os.path.isfile(SMALL), "op models not generated")
class Scripts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_dump_then_compare_equal_then_tampered(self):
        out = self.path("v.jsonl")
        rc, _, err = run("scripts/litert/dump.py", SMALL, "--random", "3", "--seed", "5",
                         "--resolver", "ref", "--out", out)
        self.assertEqual(rc, 0, err)
        rc, text, err = run("scripts/litert/compare.py", SMALL, out, "--resolver", "ref")
        self.assertEqual(rc, 0, text + err)
        self.assertIn("OK: equal", text)
        with open(out) as f:
            vectors = [json.loads(line) for line in f]
        name = next(iter(vectors[1]["tensors"]))
        v = vectors[1]["tensors"][name]
        v[7] = v[7] + 1 if v[7] < 127 else v[7] - 1
        bad = self.path("bad.jsonl")
        with open(bad, "w") as f:
            for vec in vectors:
                f.write(json.dumps(vec) + "\n")
        rc, text, err = run("scripts/litert/compare.py", SMALL, bad, "--resolver", "ref",
                            "--json")
        self.assertEqual(rc, 1, err)
        s = json.loads(text)
        self.assertEqual(s["mismatched_elements"], 1)  # "output" is a separate copy
        self.assertEqual(s["output"]["vectors_equal"], 3)
        self.assertEqual(s["first_mismatch"]["vector"], 1)
        self.assertEqual(s["first_mismatch"]["element"], 7)

    def test_compare_with_no_common_name_fails(self):
        out = self.path("v.jsonl")
        run("scripts/litert/dump.py", SMALL, "--random", "2", "--resolver", "ref", "--out", out)
        renamed = self.path("renamed.jsonl")
        with open(renamed, "w") as f, open(out) as src:
            for line in src:
                v = json.loads(line)
                v["tensors"] = {"x/" + k: val for k, val in v["tensors"].items()}
                f.write(json.dumps(v) + "\n")
        rc, text, _ = run("scripts/litert/compare.py", SMALL, renamed, "--resolver", "ref")
        self.assertEqual(rc, 1)
        self.assertIn("no tensor name in common", text)

    def test_float_inputs_follow_quantize(self):
        # The same real values through dump.py on the float-I/O model: LiteRT's own QUANTIZE
        # runs, and dump.py checks that it equals quantize_tflite on every element.
        # Half of the values are chosen where float32 and float64 division round to
        # different codes, so LiteRT's QUANTIZE must divide in float32 for this to pass.
        graph = lc.Graph(FLOAT_IO, "ref")
        s32 = np.float32(graph.input_scale)
        rng = np.random.default_rng(3)
        cand = ((np.arange(-100, 100) + 0.5)[:, None] * np.float64(s32)
                + np.arange(-4, 5)[None, :] * 1e-9).astype(np.float32).ravel()
        q32 = (cand / s32).astype(np.float64)
        q64 = cand.astype(np.float64) / np.float64(s32)
        r32 = np.sign(q32) * np.floor(np.abs(q32) + 0.5)
        r64 = np.sign(q64) * np.floor(np.abs(q64) + 0.5)
        split = cand[r32 != r64]
        self.assertGreater(split.size, 20)
        x = rng.uniform(-1.5, 1.5, size=(4, 7, 9, 3)).astype(np.float32)
        flat = x.reshape(-1)
        flat[: min(split.size, flat.size // 2)] = split[: flat.size // 2]
        npy = self.path("x.npy")
        np.save(npy, x)
        rc, _, err = run("scripts/litert/dump.py", FLOAT_IO, "--inputs", npy, "--resolver",
                         "ref", "--out", self.path("f.jsonl"))
        self.assertEqual(rc, 0, err)

    def test_one_line_errors(self):
        cases = [
            ("scripts/litert/dump.py", "missing.tflite", "--random", "1", "--resolver", "ref",
             "--out", self.path("o")),
            ("scripts/litert/dump.py", os.path.join(ROOT, "README.md"), "--random", "1",
             "--resolver", "ref", "--out", self.path("o")),
            ("scripts/litert/compare.py", SMALL, os.path.join(ROOT, "README.md"), "--resolver",
             "ref"),
        ]
        for args in cases:
            rc, _, err = run(*args)
            self.assertEqual(rc, 2, args)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertTrue(err.startswith("error: "), err)

    def test_bench_prints_one_json_line(self):
        rc, text, err = run("scripts/litert/bench.py", SMALL, "--resolver", "builtin",
                            "--seconds", "0.2")
        self.assertEqual(rc, 0, err)
        r = json.loads(text)
        self.assertEqual(r["resolver"], "builtin")
        self.assertGreater(r["images_per_s"], 0)


class Fixtures(unittest.TestCase):
    def test_near_tie_fixture_pins_the_float64_dense_rule(self):
        # Row 0 reaches accumulator -737750 on channel 7: BUILTIN_REF's float64 requantize
        # gives -112 where DESIGN's `single` at k = 31 gives -111 (make_near_tie.py).
        with gzip.open(os.path.join(FIXTURES, "mnist_fc_near_tie.ref.jsonl.gz"), "rt") as f:
            row0 = json.loads(f.readline())
        self.assertEqual(row0["output"][7], -112)
        model = os.path.join(ROOT, "tests", "fixtures", "tflite", "mnist_fc_near_tie.tflite")
        g = lc.Graph(model, "ref")
        ops, _ = rn.build_ops(g, model)
        dense = ops[0]
        a = dense.accumulate(np.array(row0["input"], dtype=np.int8).reshape(1, -1))
        self.assertEqual(int(a[0, 7]), -737750)
        y = {r: int(np.clip(rn.rescale(r, a, dense.M, dense.m, dense.s) + dense.zy, dense.lo,
                            dense.hi)[0, 7]) for r in rn.RULES}
        # `double` happens to agree here (its first rounding lands on -154.5 exactly), but
        # it differs from BUILTIN_REF's dense on random inputs (ref_numpy.py).
        self.assertEqual(y, {"float64": -112, "single": -111, "double": -112})
        self.assertEqual(dense.tie_report["single_vs_float64_differ"], 1)

    def test_every_fixture_reproduces_under_builtin_ref(self):
        files = sorted(glob.glob(os.path.join(FIXTURES, "*.ref.jsonl.gz")))
        self.assertTrue(files, "no fixtures")
        for path in files:
            stem = os.path.basename(path)[: -len(".ref.jsonl.gz")]
            model_stem = stem.split(".")[0]  # mnist_cnn_keras_int8.t10k -> the model
            model = os.path.join(ROOT, "models", "tiny", model_stem + ".tflite")
            if not os.path.isfile(model):
                model = os.path.join(ROOT, "tests", "fixtures", "tflite", model_stem + ".tflite")
            if not os.path.isfile(model):
                model = os.path.join(ROOT, "models", model_stem + ".tflite")
            self.assertTrue(os.path.isfile(model), f"no model for {path}")
            inputs = os.path.join(FIXTURES, stem + ".inputs.npy")
            x = np.load(inputs)
            with gzip.open(path, "rt") as f:
                vectors = [json.loads(line) for line in f]
            self.assertEqual(len(vectors), len(x), stem)
            for v, row in zip(vectors, x):
                self.assertEqual(v["input"], row.reshape(-1).tolist(), stem)
            rc, text, err = run("scripts/litert/compare.py", model, path, "--resolver", "ref",
                                "--json")
            s = json.loads(text) if text else {}
            self.assertEqual(rc, 0, f"{stem}: {err} {s.get('first_mismatch')}")
            self.assertEqual(s["only_in_vectors"], [], stem)
            self.assertEqual(s["only_in_litert"], [], stem)


if __name__ == "__main__":
    unittest.main()
