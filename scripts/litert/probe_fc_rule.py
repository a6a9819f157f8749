#!/usr/bin/env python3
"""Which rule LiteRT's BUILTIN_REF FULLY_CONNECTED requantizes with, per-tensor and per-channel.

Usage: probe_fc_rule.py [--seeds 6]      (venv: build/venv-litert, scripts/litert/setup-venv.sh)

Takes the op models tests/fixtures/tflite/fc_per_tensor.tflite and fc_per_channel.tflite,
replaces their weights by w[c][0] = 1 (all else 0), their biases and scales by crafted
values, so that with input 0 channel c's accumulator is a chosen `a`, and picks `a` where
candidate rules give different outputs. Rules compared, `M64 = double(S_x) * double(S_w) /
double(S_y)` and `M32 = double(float32(S_x * S_w)) / double(S_y)` (TFLite's
GetQuantizedConvolutionMultipler):
  round_*   round_half_away(double(a) * M)
  single_*  (a m + 2^(s-1)) >> s with (m, s) = QuantizeMultiplier(M) at k = 31
  double_*  gemmlowp's MultiplyByQuantizedMultiplier with that (m, s)
Two experiments: (1) accumulators where the M64 and M32 rules disagree (S_y = 0.04), (2)
accumulators where round_M64 and single_M64 disagree (S_y = 1.7, |a| up to 2^31). Prints,
per weight quantization and experiment, how many accumulators each rule got right.
Measured with LiteRT 2.3.0 (docs/spec.md section 6, item 14): round_f64 right on all of them.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402
import ref_numpy as rn  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def rha(x):
    f = math.floor(abs(x))
    return int(math.copysign(f + (1 if abs(x) - f >= 0.5 else 0), x))


def rules(a, sx, sw, sy):
    out = {}
    for tag, M in (("f64", float(np.float64(sx) * np.float64(sw) / np.float64(sy))),
                   ("f32", float(np.float64(np.float32(sx) * np.float32(sw)) / np.float64(sy)))):
        m, s = rn.quantize_multiplier(M)
        out["round_" + tag] = rha(a * M)
        out["single_" + tag] = int(rn.rescale_single(np.int64(a), m, s))
        out["double_" + tag] = int(rn.rescale_double(np.int64(a), m, s))
    return out


def experiment(schema, Interpreter, OpResolverType, path, per_channel, seed, probe):
    import flatbuffers

    buf = open(path, "rb").read()
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    g = m.subgraphs[0]
    ops = g.operators[0]
    x, w, bt = (g.tensors[i] for i in ops.inputs)
    y = g.tensors[ops.outputs[0]]
    O, N = w.shape
    rng = np.random.default_rng(seed)
    sx = np.float32(x.quantization.scale[0])
    zx = int(x.quantization.zeroPoint[0])
    sy, lo_sw, hi_sw, want = ((np.float32(0.04), 1e-5, 3e-4, ("round_f64", "round_f32"))
                              if probe == 1 else
                              (np.float32(1.7), 5e-6, 2e-5, ("round_f64", "single_f64")))
    sws, targets = [], []
    for c in range(O):
        cands, sw = [], sws[0] if sws and not per_channel else None
        for _ in range(200):
            if sw is None or per_channel:
                sw = np.float32(rng.uniform(lo_sw, hi_sw))
            M = float(np.float64(sx) * np.float64(sw) / np.float64(sy))
            for t in range(-100, 100):
                a0 = int(round((t + 0.5) / M))
                for a in range(a0 - 3, a0 + 4):
                    if abs(a) < 2**31 - 300:
                        r = rules(a, sx, sw, sy)
                        if r[want[0]] != r[want[1]]:
                            cands.append((a, r))
            if cands or (sws and not per_channel):
                break
        sws.append(sw)
        targets.append(cands[c % len(cands)] if cands else None)
    W = np.zeros((O, N), np.int8)
    W[:, 0] = 1
    bias = np.array([(t[0] + zx) if t else 0 for t in targets], np.int32)
    m.buffers[w.buffer].data = W.tobytes()
    m.buffers[bt.buffer].data = bias.astype("<i4").tobytes()
    n = O if per_channel else 1
    w.quantization.scale = np.array(sws[:n], np.float32)
    w.quantization.zeroPoint = np.zeros(n, np.int64)
    bt.quantization.scale = np.array([np.float32(sx * s) for s in sws[:n]], np.float32)
    bt.quantization.zeroPoint = np.zeros(n, np.int64)
    y.quantization.scale = np.array([sy], np.float32)
    y.quantization.zeroPoint = np.array([0])
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), b"TFL3")
    it = Interpreter(model_content=bytes(b.Output()),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.zeros((1, N), np.int8))
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])[0]
    score = {}
    for c, t in enumerate(targets):
        if t:
            for k, v in t[1].items():
                hit, tot = score.get(k, (0, 0))
                score[k] = (hit + (v == int(got[c])), tot + 1)
    return score


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args()
    Interpreter, OpResolverType = lc.import_litert()
    from ai_edge_litert import schema_py_generated as schema

    for per_channel, name in ((False, "fc_per_tensor"), (True, "fc_per_channel")):
        path = os.path.join(ROOT, "tests/fixtures/tflite", name + ".tflite")
        for probe in (1, 2):
            total = {}
            for seed in range(args.seeds):
                for k, (h, t) in experiment(schema, Interpreter, OpResolverType, path,
                                            per_channel, seed, probe).items():
                    H, T = total.get(k, (0, 0))
                    total[k] = (H + h, T + t)
            what = "M64 vs M32 rules differ" if probe == 1 else "round_f64 vs single_f64 differ"
            print(f"{name} ({what}): " + ", ".join(f"{k} {h}/{t}" for k, (h, t) in total.items()))


if __name__ == "__main__":
    lc.run_main(main)
