#!/usr/bin/env python3
"""Regenerate tests/fixtures/litert/: LiteRT BUILTIN_REF outputs for machines without PyPI.

Usage (LiteRT venv): build/venv-litert/bin/python scripts/litert/make_fixtures.py

For every model (models/tiny/*.tflite: 5 inputs; tests/fixtures/tflite/*.tflite and
models/mnist_cnn_keras_int8.tflite: 10 inputs) it writes `<model>.inputs.npy`, uniform
random int8 codes from numpy default_rng(SEED).integers(-128, 128) shaped
[N, *input shape without batch], and `<model>.ref.jsonl.gz`, dump.py's output for them under
--resolver ref (format in dump.py's docstring; gzip because the MLPerf CNNs' full
intermediate tensors are large). For the MNIST CNN also `<model>.t10k.*`: the first 10
bundled test images as codes p - 128 (real value p / 255 quantized with S = 1/255,
Z = -128), with their labels added to each line as "label". Last, make_near_tie.py's
`mnist_fc_near_tie` model and fixture (crafted inputs, see that script).
"""

import glob
import gzip
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import litert_common as lc  # noqa: E402

SEED = 20251
OUT = os.path.join(ROOT, "tests", "fixtures", "litert")


def dump(model, inputs, out):
    subprocess.run([sys.executable, os.path.join(HERE, "dump.py"), model, "--inputs", inputs,
                    "--resolver", "ref", "--out", out], check=True, cwd=ROOT)


def random_fixture(model, count):
    stem = os.path.splitext(os.path.basename(model))[0]
    graph = lc.Graph(model, "ref")
    x = lc.random_codes(graph, count, SEED)
    inputs = os.path.join(OUT, stem + ".inputs.npy")
    np.save(inputs, x)
    dump(model, inputs, os.path.join(OUT, stem + ".ref.jsonl.gz"))


def mnist_fixture(model, count=10):
    def idx(path, dims):
        with gzip.open(path, "rb") as f:
            data = f.read()
        shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)

    images = idx(os.path.join(ROOT, "data", "t10k-images-idx3-ubyte.gz"), 3)[:count]
    labels = idx(os.path.join(ROOT, "data", "t10k-labels-idx1-ubyte.gz"), 1)[:count]
    graph = lc.Graph(model, "ref")
    codes = lc.quantize_tflite(images.astype(np.float32) / np.float32(255),
                               graph.input_scale, graph.input_zero_point)
    assert np.array_equal(codes.astype(np.int16), images.astype(np.int16) - 128)
    stem = os.path.splitext(os.path.basename(model))[0] + ".t10k"
    inputs = os.path.join(OUT, stem + ".inputs.npy")
    np.save(inputs, codes[..., None])
    out = os.path.join(OUT, stem + ".ref.jsonl.gz")
    dump(model, inputs, out)
    with gzip.open(out, "rt") as f:
        lines = [json.loads(line) for line in f]
    with lc.open_text_out(out) as f:
        for v, label in zip(lines, labels):
            v["label"] = int(label)
            f.write(lc.dumps_line(v) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    for model in sorted(glob.glob(os.path.join(ROOT, "models", "tiny", "*.tflite"))):
        random_fixture(model, 5)
    for model in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "tflite", "*.tflite"))):
        if os.path.basename(model) != "mnist_fc_near_tie.tflite":  # make_near_tie.py's
            random_fixture(model, 10)
    mnist = os.path.join(ROOT, "models", "mnist_cnn_keras_int8.tflite")
    random_fixture(mnist, 10)
    mnist_fixture(mnist)
    import make_near_tie
    make_near_tie.main()
    return 0


if __name__ == "__main__":
    lc.run_main(main)
