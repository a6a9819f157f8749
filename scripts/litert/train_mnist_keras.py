#!/usr/bin/env python3
"""Train a small MNIST CNN in Keras and convert it to an int8 .tflite with TF's converter.

Usage (TensorFlow venv, scripts/litert/setup-tf.sh):
  build/venv-tf/bin/python scripts/litert/train_mnist_keras.py
      [--data data] [--out models/mnist_cnn_keras_int8.tflite] [--epochs 24] [--seed 0]

Data: the bundled MNIST IDX files (data/, gzip): 8,000 training and 2,000 test images,
read with numpy; a pixel p in 0..255 is the real value float32(p) / 255 (DESIGN section 5).

Network (NHWC, 28x28x1 input): CONV_2D 3x3, 32 ch, SAME, ReLU -> MAX_POOL_2D 2x2 ->
CONV_2D 3x3, 64 ch, SAME, ReLU -> MAX_POOL_2D 2x2 -> flatten (7x7x64 = 3136) -> dropout 0.3
(training only) -> dense 10 -> softmax; 50,186 parameters. Adam, lr 1e-3 halved every 8
epochs, batch 64, cross-entropy, 24 epochs, each on the training images shifted by up to
2 pixels (numpy default_rng(seed + 1)). keras.utils.set_random_seed, TF op determinism and
oneDNN off, so a rerun with the same TF version gives the same file.

Conversion: TFLiteConverter.from_keras_model, optimizations DEFAULT, TFLITE_BUILTINS_INT8,
int8 input and output, representative data set = 500 training images (a seeded
permutation). The input calibrates to S = 1/255, Z = -128, so q = p - 128.

Evaluation on the 2,000 test images: the Keras float model, and the .tflite run by LiteRT's
BUILTIN_REF kernels with the inputs quantized as TFLite's QUANTIZE would (the class is the
argmax of the int8 logits, the SOFTMAX's input, as ratflow's importer defines it; the
argmax of LiteRT's int8 softmax output is printed too, it can tie). Prints one JSON line.
"""

import argparse
import gzip
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's kernels differ by CPU: off, so training reproduces on other x86 machines too.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402

keras = tf.keras
L = keras.layers


def read_idx(path, magic, dims):
    """uint8 array of an IDX file (gzip): big-endian magic, `dims` sizes, then the bytes."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = 4 + 4 * dims
    if len(data) < header or int.from_bytes(data[0:4], "big") != magic:
        raise SystemExit(f"error: {path}: not an IDX file with magic {magic:#x}")
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    if len(data) != header + int(np.prod(shape)):
        raise SystemExit(f"error: {path}: {len(data) - header} bytes of data, shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), 0x803, 3)
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, 1)
    if len(images) != len(labels):
        raise SystemExit(f"error: {data_dir}: {len(images)} {prefix} images, {len(labels)} labels")
    return images, labels


def shift_images(images, rng, max_shift=2):
    """Each image [28, 28, 1] moved by (dy, dx) uniform in [-max_shift, max_shift], zero fill:
    the augmentation that lifts this CNN from ~97.2 % to ~98.3 % on 8,000 training images."""
    out = np.zeros_like(images)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))
    for i, (dy, dx) in enumerate(shifts):
        out[i, max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
            images[i, max(-dy, 0):28 - max(dy, 0), max(-dx, 0):28 - max(dx, 0)]
    return out


def build(batch_size=None):
    inp = keras.Input((28, 28, 1), batch_size=batch_size, name="image")
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dropout(0.3, name="dropout")(x)  # training only; not in the .tflite
    x = L.Dense(10, name="logits")(x)
    out = L.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name="mnist_cnn_keras")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data", help="folder of the MNIST IDX .gz files")
    ap.add_argument("--out", default="models/mnist_cnn_keras_int8.tflite")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    # Real value of pixel p: float32(p) / 255, DESIGN section 5.
    f_train = (x_train.astype(np.float32) / np.float32(255))[..., None]
    f_test = (x_test.astype(np.float32) / np.float32(255))[..., None]

    model = build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    rng = np.random.default_rng(args.seed + 1)
    for epoch in range(args.epochs):
        model.optimizer.learning_rate.assign(1e-3 * 0.5 ** (epoch // 8))
        model.fit(shift_images(f_train, rng), y_train.astype(np.int64), batch_size=64,
                  epochs=1, shuffle=True, verbose=2)
    float_pred = np.argmax(model.predict(f_test, batch_size=500, verbose=0), axis=1)
    float_acc = float(np.mean(float_pred == y_test))

    rep = f_train[np.random.default_rng(args.seed).permutation(len(f_train))[:500]]

    def representative():
        for img in rep:
            yield [img[None]]

    # Converted from a batch-1 copy: with a free batch dimension the converter writes
    # Flatten as SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE (a run-time shape computation);
    # with batch 1 it is one RESHAPE with a constant shape, as in the MLPerf Tiny models.
    deploy = build(batch_size=1)
    deploy.set_weights(model.get_weights())
    conv = tf.lite.TFLiteConverter.from_keras_model(deploy)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(data)

    graph = lc.Graph(args.out, "ref")
    logits_hits = softmax_hits = 0
    for (feed, codes), label in zip(graph.prepare(f_test, "test images"), y_test):
        values = graph.invoke(feed, codes)
        logits_hits += int(np.argmax(values[graph.final_index]) == label)
        softmax = graph.interp.get_tensor(graph.model_output_index).reshape(-1)
        softmax_hits += int(np.argmax(softmax) == label)
    n = len(y_test)
    print(json.dumps({
        "model": args.out,
        "bytes": len(data),
        "sha256": lc.sha256_of(args.out),
        "input_scale": graph.input_scale,
        "input_zero_point": graph.input_zero_point,
        "test_images": n,
        "keras_float_accuracy": round(float_acc, 4),
        "litert_ref_int8_accuracy": round(logits_hits / n, 4),
        "litert_ref_int8_softmax_argmax_accuracy": round(softmax_hits / n, 4),
        "tensorflow": tf.__version__,
        "epochs": args.epochs,
        "seed": args.seed,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
