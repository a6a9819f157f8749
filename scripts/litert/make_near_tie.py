#!/usr/bin/env python3
"""A FULLY_CONNECTED fixture where LiteRT's reference kernel and DESIGN's `single` differ.

Usage (LiteRT venv): build/venv-litert/bin/python scripts/litert/make_near_tie.py

TFLite's reference FULLY_CONNECTED requantizes with `round(double(acc) * M)` (C round, half
away from zero; M = double(S_x) * double(S_w[c]) / double(S_y)), which no integer (m, s)
reproduces on every accumulator. In models/mnist_cnn_keras_int8.tflite's dense layer,
channel 7 has M = 0.00020942053541325045 and the reachable accumulator a = -737750 gives
a * M = -154.50000000112553 (float64 rounds it to -155, output -112) while (m, s) at k = 31
gives -154.4999999797 (`single` -> -154, output -111). ref_numpy.py finds such accumulators
by enumeration; this script makes one concrete:

- `tests/fixtures/tflite/mnist_fc_near_tie.tflite`: the MNIST model's FULLY_CONNECTED alone
  (the flatbuffer with every other operator removed and the dense input as graph input;
  same tensors, names, weights and scales), 3,136 int8 -> 10 int8.
- `tests/fixtures/litert/mnist_fc_near_tie.inputs.npy`: row 0 is an input whose channel-7
  accumulator is exactly -737750 (found by a seeded coordinate search), rows 1-9 uniform
  random codes; `mnist_fc_near_tie.ref.jsonl.gz` is BUILTIN_REF's dump of them.
The script checks that BUILTIN_REF gives -112 on row 0, channel 7, and fails otherwise.
"""

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import litert_common as lc  # noqa: E402

SOURCE = os.path.join(ROOT, "models", "mnist_cnn_keras_int8.tflite")
MODEL = os.path.join(ROOT, "tests", "fixtures", "tflite", "mnist_fc_near_tie.tflite")
INPUTS = os.path.join(ROOT, "tests", "fixtures", "litert", "mnist_fc_near_tie.inputs.npy")
DUMP = os.path.join(ROOT, "tests", "fixtures", "litert", "mnist_fc_near_tie.ref.jsonl.gz")
CHANNEL, TARGET, EXPECTED_REF = 7, -737750, -112


def extract_dense(source, out):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    with open(source, "rb") as f:
        model = schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
    sg = model.subgraphs[0]
    dense = [op for op in sg.operators if model.operatorCodes[op.opcodeIndex].builtinCode
             == schema.BuiltinOperator.FULLY_CONNECTED]
    if len(dense) != 1:
        raise lc.UserError(f"{source}: expected one FULLY_CONNECTED, found {len(dense)}")
    op = dense[0]
    sg.operators, sg.inputs, sg.outputs = [op], [op.inputs[0]], [op.outputs[0]]
    # The signature still names the old input/output tensors: drop it (LiteRT does not
    # need one to run the subgraph).
    model.signatureDefs = []
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with open(out, "wb") as f:
        f.write(bytes(builder.Output()))
    return [int(t) for t in op.inputs]


def craft_input(w, b, zx, target, seed=0):
    """x - Z_x in [0, 255]^N with w . (x - Z_x) + b == target: seeded coordinate moves."""
    rng = np.random.default_rng(seed)
    nonzero = np.nonzero(w)[0]
    for _ in range(100):
        d = rng.integers(0, 256, size=w.size).astype(np.int64)
        for _ in range(50000):
            r = target - int(d @ w + b)
            if r == 0:
                return (d + zx).astype(np.int8)
            i = int(rng.choice(nonzero))
            step = int(np.clip(round(r / w[i]), -255, 255)) or (1 if r * w[i] > 0 else -1)
            d[i] = int(np.clip(d[i] + step, 0, 255))
    raise SystemExit("error: no input reaches the target accumulator")


def main():
    weight, bias = extract_dense(SOURCE, MODEL)[1:3]
    graph = lc.Graph(MODEL, "ref")
    w = graph.interp.get_tensor(weight).astype(np.int64)[CHANNEL]
    b = int(graph.interp.get_tensor(bias)[CHANNEL])
    row0 = craft_input(w, b, graph.input_zero_point, TARGET)
    x = np.concatenate([row0[None], lc.random_codes(graph, 9, 20251)])
    np.save(INPUTS, x)
    subprocess.run([sys.executable, os.path.join(HERE, "dump.py"), MODEL, "--inputs", INPUTS,
                    "--resolver", "ref", "--out", DUMP], check=True, cwd=ROOT)
    graph.interp.set_tensor(graph.input_index, x[:1].reshape(graph.input_shape))
    graph.interp.invoke()
    got = int(graph.interp.get_tensor(graph.final_index).reshape(-1)[CHANNEL])
    if got != EXPECTED_REF:
        raise SystemExit(f"error: BUILTIN_REF gave {got} on the near-tie input, not {EXPECTED_REF}")
    print(f"{MODEL}: row 0 channel {CHANNEL} accumulator {TARGET}: BUILTIN_REF {got} "
          f"(DESIGN single: {EXPECTED_REF + 1})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    lc.run_main(main)
