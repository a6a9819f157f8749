"""Shared helpers of ratflow's LiteRT scripts (dump.py, compare.py, bench.py, ref_numpy.py).

One place decides how a .tflite file is opened, how inputs become the int8 codes of the
graph's input tensor, which tensor is the graph's final int8 output (DESIGN section 5), and
which tensors LiteRT actually wrote; the scripts share it so that a golden-vector comparison
and a fixture dump can never disagree about those choices.

Needs `ai-edge-litert` (scripts/litert/setup-venv.sh) and numpy.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import warnings

import numpy as np

# Exit codes of every script here: 0 success, 1 a comparison found a difference, 2 bad input
# (file, option, format), 3 LiteRT not importable (run scripts/litert/setup-venv.sh).
EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_NO_LITERT = 3

# ratflow's names for LiteRT's op resolvers (DESIGN section 6).
RESOLVERS = {
    "ref": "BUILTIN_REF",  # reference kernels: the semantics ratflow targets
    "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",  # optimized kernels, no delegate
    "auto": "AUTO",  # default: XNNPACK delegate
}

# Final ops that the integer graph drops (DESIGN section 5): the final int8 output is the
# input of a trailing SOFTMAX, and of a DEQUANTIZE at the edge of a float-output model.
DROPPED_TAIL_OPS = ("SOFTMAX", "DEQUANTIZE")


class UserError(Exception):
    """A one-line, user-facing error (bad file, option or format): exit 2."""


def fail(message, code=EXIT_USAGE):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run_main(main):
    """Runs `main()` and turns UserError into its one-line message and exit 2."""
    try:
        sys.exit(main())
    except UserError as e:
        fail(str(e))
    except BrokenPipeError:
        sys.exit(0)


def import_litert():
    """Returns (Interpreter, OpResolverType), or exits 3 with a one-line message."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        fail(
            f"cannot import ai_edge_litert ({e}): run scripts/litert/setup-venv.sh and use "
            "build/venv-litert/bin/python",
            EXIT_NO_LITERT,
        )
    return Interpreter, OpResolverType


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def quantize_tflite(real, scale, zero_point):
    """int8 codes of real values exactly as TFLite's QUANTIZE (reference AffineQuantize).

    `q = clamp(round_half_away(float32(r) / float32(S)) + Z, -128, 127)`: the division is
    float32 (the kernel divides by `static_cast<float>(scale)`), the rounding is
    `TfLiteRound` (std::round: half away from zero). The rounding is done on the float32
    quotient widened to float64, where `|x| + 0.5` is exact (in float32 it is not:
    0.49999997 + 0.5 rounds up to 1.0).
    """
    r = np.asarray(real, dtype=np.float32)
    if not np.all(np.isfinite(r)):
        raise UserError("input has NaN or infinite values: cannot quantize them")
    quotient = (r / np.float32(scale)).astype(np.float64)
    rounded = np.sign(quotient) * np.floor(np.abs(quotient) + 0.5)
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


class Graph:
    """A .tflite model opened in LiteRT with one op resolver, plus what ratflow needs of it.

    Attributes (tensor indices are LiteRT's):
    - `input_index`, `input_dtype`: the model's single input tensor (int8 or float32).
    - `int8_input_index`: the int8 tensor ratflow calls the graph input: the model input,
      or the output of the QUANTIZE that consumes a float32 model input.
    - `input_scale`, `input_zero_point`, `input_shape`: that tensor's (S, Z) and shape
      (with TFLite's batch dimension).
    - `final_index`: the final int8 output per DESIGN section 5: the model's first output,
      or, when it is made by SOFTMAX or DEQUANTIZE, that op's input (repeatedly);
      `dropped_ops` names the ops skipped.
    - `op_outputs`: [(tensor index, tensor name, op name, op index)] for every int8 output of
      every op, in LiteRT's node order.
    - `trusted`: the tensor indices LiteRT really wrote under this resolver. Under AUTO,
      tensors inside an XNNPACK partition are never written; only partition outputs and the
      outputs of ops left on the interpreter are trusted. Without a delegate, all of them.
    """

    def __init__(self, path, resolver, preserve_all_tensors=True, num_threads=1):
        if resolver not in RESOLVERS:
            raise UserError(f"unknown resolver '{resolver}' (expected ref, builtin or auto)")
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such file")
        Interpreter, OpResolverType = import_litert()
        self.path = path
        self.resolver = resolver
        with warnings.catch_warnings():
            # LiteRT warns that preserving every tensor is for debugging: that is our use.
            warnings.simplefilter("ignore", UserWarning)
            try:
                self.interp = Interpreter(
                    model_path=path,
                    num_threads=num_threads,
                    experimental_preserve_all_tensors=preserve_all_tensors,
                    experimental_op_resolver_type=getattr(OpResolverType, RESOLVERS[resolver]),
                )
                self.interp.allocate_tensors()
            except (ValueError, RuntimeError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UserError(f"{path}: LiteRT cannot load it: {first}") from None
        self.details = {t["index"]: t for t in self.interp.get_tensor_details()}
        nodes = self.interp._get_ops_details()
        self.ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
        self.delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
        self.producer = {}
        for op in self.ops:
            for t in op["outputs"]:
                self.producer[int(t)] = op

        inputs = self.interp.get_input_details()
        if len(inputs) != 1:
            raise UserError(f"{path}: the model has {len(inputs)} inputs; ratflow graphs have one")
        self.input_index = inputs[0]["index"]
        self.input_dtype = inputs[0]["dtype"]
        if self.input_dtype == np.int8:
            self.int8_input_index = self.input_index
        elif self.input_dtype == np.float32:
            consumers = [
                op
                for op in self.ops
                if op["op_name"] == "QUANTIZE" and int(op["inputs"][0]) == self.input_index
            ]
            if len(consumers) != 1 or self.details[int(consumers[0]["outputs"][0])]["dtype"] != np.int8:
                raise UserError(
                    f"{path}: float32 input '{inputs[0]['name']}' is not consumed by exactly one "
                    "QUANTIZE to int8"
                )
            self.int8_input_index = int(consumers[0]["outputs"][0])
        else:
            raise UserError(
                f"{path}: input '{inputs[0]['name']}' is {np.dtype(self.input_dtype).name}; "
                "only int8 and float32 inputs are supported"
            )
        scale, zero_point = self._per_tensor_quant(self.int8_input_index)
        self.input_scale, self.input_zero_point = scale, zero_point
        self.input_shape = tuple(int(d) for d in self.details[self.int8_input_index]["shape"])
        self.input_size = int(np.prod(self.input_shape))
        # One row of an inputs array: the input shape without TFLite's batch dimension.
        shape = self.input_shape
        self.row_shape = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape

        outputs = self.interp.get_output_details()
        self.model_output_index = outputs[0]["index"]
        final = self.model_output_index
        self.dropped_ops = []
        while final in self.producer and self.producer[final]["op_name"] in DROPPED_TAIL_OPS:
            op = self.producer[final]
            self.dropped_ops.append(op["op_name"])
            final = int(op["inputs"][0])
        if self.details[final]["dtype"] != np.int8:
            raise UserError(
                f"{path}: final output '{self.details[final]['name']}' is "
                f"{np.dtype(self.details[final]['dtype']).name}, not int8"
            )
        self.final_index = final

        self.op_outputs = []
        for op in self.ops:
            for t in op["outputs"]:
                t = int(t)
                if self.details[t]["dtype"] == np.int8:
                    self.op_outputs.append((t, self.details[t]["name"], op["op_name"], op["index"]))
        names = [name for _, name, _, _ in self.op_outputs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserError(f"{path}: op output tensor names are not unique: {dup[0]!r}")
        self.trusted = self._trusted_tensors()

    def _per_tensor_quant(self, index):
        q = self.details[index]["quantization_parameters"]
        if len(q["scales"]) != 1:
            raise UserError(
                f"{self.path}: tensor '{self.details[index]['name']}' has "
                f"{len(q['scales'])} scales; the graph input needs one (S, Z)"
            )
        return float(q["scales"][0]), int(q["zero_points"][0])

    def _trusted_tensors(self):
        """Tensor indices written by LiteRT: see the class docstring."""
        all_outputs = {t for t, _, _, _ in self.op_outputs}
        if not self.delegates:
            return all_outputs
        internal = set()
        for d in self.delegates:
            d_in = {int(t) for t in d["inputs"]}
            d_out = {int(t) for t in d["outputs"]}
            # Walk back from the partition's outputs to its inputs: the ops met are the
            # partition's members; their outputs that leave no partition are internal.
            members, stack, seen = set(), list(d_out), set()
            while stack:
                t = stack.pop()
                if t in seen or t in d_in or t not in self.producer:
                    continue
                seen.add(t)
                op = self.producer[t]
                if op["index"] not in members:
                    members.add(op["index"])
                    stack.extend(int(x) for x in op["inputs"] if x >= 0)
            for op in self.ops:
                if op["index"] in members:
                    internal.update(int(t) for t in op["outputs"] if int(t) not in d_out)
        outputs = {int(o["index"]) for o in self.interp.get_output_details()}
        return (all_outputs - internal) | (all_outputs & outputs)

    def prepare(self, array, source="inputs"):
        """Feeds for `invoke` from an inputs array: [(feed, int8 codes)] per row.

        `array`: shape [N, ...] with prod(shape[1:]) = the int8 input's element count;
        int8 codes, or float32 real values (float64 is first cast to float32, DESIGN
        section 5). Real values are quantized as TFLite's QUANTIZE does; a float-input model
        is fed real values (its own QUANTIZE runs), int8 codes become `S * (q - Z)` in
        float32, which quantizes back to exactly q.
        """
        a = np.asarray(array)
        if a.ndim < 2 or int(np.prod(a.shape[1:])) != self.input_size:
            raise UserError(
                f"{source}: shape {list(a.shape)} does not hold rows of the input "
                f"{list(self.input_shape)} ({self.input_size} values each)"
            )
        n = a.shape[0]
        a = a.reshape(n, self.input_size)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        if a.dtype == np.int8:
            codes = a
            reals = None
        elif a.dtype == np.float32:
            reals = a
            codes = quantize_tflite(a, self.input_scale, self.input_zero_point)
        else:
            raise UserError(f"{source}: dtype {a.dtype} is neither int8 codes nor float32 reals")
        feeds = []
        for i in range(n):
            if self.input_dtype == np.int8:
                feed = codes[i]
            elif reals is not None:
                feed = reals[i]
            else:
                feed = np.float32(self.input_scale) * (
                    codes[i].astype(np.float32) - np.float32(self.input_zero_point)
                )
            shape = tuple(int(d) for d in self.details[self.input_index]["shape"])
            feeds.append((feed.reshape(shape).astype(self.input_dtype), codes[i]))
        return feeds

    def invoke(self, feed, codes):
        """Runs one input; returns {tensor index: flat int8 array} of the trusted op outputs
        plus the int8 input and the final output."""
        self.interp.set_tensor(self.input_index, feed)
        self.interp.invoke()
        got_input = self.interp.get_tensor(self.int8_input_index).reshape(-1)
        if not np.array_equal(got_input, codes):
            # Only reachable for float-input models: LiteRT's QUANTIZE and ours disagree.
            i = int(np.nonzero(got_input != codes)[0][0])
            raise UserError(
                f"{self.path}: LiteRT's QUANTIZE gave {int(got_input[i])} at element {i}, "
                f"TFLite's rule (DESIGN section 1) {int(codes[i])}"
            )
        out = {self.int8_input_index: got_input.copy()}
        for t, _, _, _ in self.op_outputs:
            if t in self.trusted:
                out[t] = self.interp.get_tensor(t).reshape(-1).copy()
        out[self.final_index] = self.interp.get_tensor(self.final_index).reshape(-1).copy()
        return out

    def record(self, index, feed, codes):
        """One golden-vector-style record (see dump.py for the format)."""
        values = self.invoke(feed, codes)
        output = values[self.final_index]
        return {
            "index": index,
            "input": values[self.int8_input_index].tolist(),
            "tensors": {
                name: values[t].tolist() for t, name, _, _ in self.op_outputs if t in values
            },
            "output": output.tolist(),
            "class": int(np.argmax(output)),  # first maximum: ties to the lowest index
        }


def load_npy(path):
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        first = str(e).split(". ")[0]
        raise UserError(f"{path}: not a .npy array of numbers ({first})") from None


def random_codes(graph, count, seed):
    """`count` inputs of uniform int8 codes over the full range, shape [count, *input shape
    without batch]: numpy default_rng(seed).integers(-128, 128)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(count, *graph.row_shape), dtype=np.int8)


def open_text_out(path):
    """A text file for writing; gzip (level 9, no name or time stamp in the header, so the
    bytes depend only on the content) when `path` ends in `.gz`."""
    try:
        raw = open(path, "wb")
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror})") from None
    if path.endswith(".gz"):
        raw = _GzipOut(raw)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")


class _GzipOut(gzip.GzipFile):
    """GzipFile over an opened file that it also closes (GzipFile leaves a `fileobj` open)."""

    def __init__(self, raw):
        super().__init__(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0)
        self._raw = raw

    def close(self):
        try:
            super().close()
        finally:
            self._raw.close()


def open_text_in(path):
    """A text file for reading, gunzipped when `path` ends in `.gz`."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def dumps_line(obj):
    return json.dumps(obj, separators=(",", ":"))
