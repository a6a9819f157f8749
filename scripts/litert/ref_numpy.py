#!/usr/bin/env python3
"""Independent check of DESIGN section 5 against LiteRT's reference kernels (BUILTIN_REF).

Usage:
  ref_numpy.py MODEL.tflite [MODEL.tflite ...] [--count 100] [--seed 0] [--json]

For each model, a pure-numpy executor of the int8 graph follows DESIGN section 5 and
section 1 to the letter, reading weights, biases and (S, Z) from the LiteRT interpreter
(`get_tensor`, `get_tensor_details`) and the op options (padding, strides, dilation,
depth multiplier, fused activation, pool sizes) from the flatbuffer through
`ai_edge_litert.schema_py_generated`. It shares no arithmetic with ratflow's Rust engine.
On `--count` uniform random int8 inputs (numpy default_rng(seed)), every int8 op output is
compared with LiteRT BUILTIN_REF's (experimental_preserve_all_tensors), element by element:

- isolated: each op is fed LiteRT's own input tensors, so a rule that disagrees shows at
  the op that has it, not downstream; for accumulating ops and ADD the rescale is tried
  under every candidate rule: `double` and `single` (section 1, (m, s) at k = 31 from
  the real M formed in float64 from the float32 scales) and `float64`
  (round_half_away(double(a) * M), the C `round` of TFLite's newer reference
  FULLY_CONNECTED); the rule DESIGN section 6 pins (conv2d, depthwise_conv2d, add:
  double; dense: single) is the verdict;
- chained: the whole graph run from the input codes with DESIGN's rules only, as the
  golden engine would.

For every FULLY_CONNECTED it also enumerates the accumulators the layer can reach (any
int8 input) whose rescaled value lands in or next to the clamp window and counts those
where `single` and `float64` differ (near-ties), the count issue 11 asks the importer to
report. Ops outside DESIGN section 5 (a SOFTMAX or DEQUANTIZE at the tail is dropped by
design) are reported and break the chain.

Exit: 0 when DESIGN's rules equal BUILTIN_REF on every element of every modelled op,
isolated and chained, no op is unsupported and no dense near-tie differs; 1 otherwise;
2 bad file or option; 3 ai_edge_litert missing.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litert_common as lc  # noqa: E402

RULES = ("double", "single", "float64")
# DESIGN section 6: what ratflow's importer pins for BUILTIN_REF.
DESIGN_RULE = {"CONV_2D": "double", "DEPTHWISE_CONV_2D": "double", "ADD": "double",
               "FULLY_CONNECTED": "single"}
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
PAD_SAME, PAD_VALID = 0, 1


# ---- DESIGN section 1: (m, s) and the rescale rules ---------------------------------------

def round_half_away_scalar(x):
    """Python float -> int, half away from zero, exact (x is a float64)."""
    f = math.floor(abs(x))
    return int(math.copysign(f + (1 if abs(x) - f >= 0.5 else 0), x))


def quantize_multiplier(M, k=31):
    """Section 1: real M > 0 -> (m, s) at k bits; (0, 0) for M == 0 or s > 62."""
    if M == 0:
        return 0, 0
    f, e = math.frexp(M)
    m = round_half_away_scalar(f * (1 << k))
    if m == 1 << k:
        m, e = 1 << (k - 1), e + 1
    s = k - e
    if s > 62:
        return 0, 0
    if s < 0:
        raise ValueError(f"M = {M} too large for k = {k}")
    return m, s


def rescale_single(a, m, s):
    """(a * m + 2^(s-1)) >> s, floor shift; s = 0 -> a * m. a: int64 array; m, s arrays."""
    a = a.astype(np.int64)
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return np.right_shift(a * m + half, s)


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: floor((a*b + 2^30) / 2^31) (the
    a = b = INT32_MIN saturation cannot occur with b = m31 >= 0)."""
    return np.floor_divide(a * b + (1 << 30), 1 << 31)


def rounding_divide_by_pot(x, n):
    """gemmlowp RoundingDivideByPOT: x / 2^n rounded half away from zero (n array >= 0)."""
    n = np.asarray(n, dtype=np.int64)
    mask = np.left_shift(np.int64(1), n) - 1
    remainder = np.bitwise_and(x, mask)
    threshold = np.right_shift(mask, 1) + (x < 0)
    return np.right_shift(x, n) + (remainder > threshold)


def rescale_double(a, m, s, k=31):
    """Section 1 `double`, defined for s >= k (M < 1); m = 0 gives 0."""
    a = a.astype(np.int64)
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    if np.any((s < k) & (m > 0)):
        raise ValueError("double rounding needs s >= k (M < 1)")
    m31 = np.left_shift(m, 31 - k)
    return np.where(m > 0, rounding_divide_by_pot(srdhm(a, m31), np.maximum(s - k, 0)), 0)


def round_half_away(x):
    """float64 array -> int64, half away from zero, exact (no `|x| + 0.5` rounding)."""
    t = np.trunc(x)
    frac = x - t  # exact for |x| < 2^52
    return (t + np.where(np.abs(frac) >= 0.5, np.sign(x), 0)).astype(np.int64)


def rescale_float64(a, M):
    """round_half_away(double(a) * M), M the real multiplier in float64."""
    return round_half_away(a.astype(np.float64) * np.asarray(M, dtype=np.float64))


def rescale(rule, a, M, m, s):
    if rule == "single":
        return rescale_single(a, m, s)
    if rule == "double":
        return rescale_double(a, m, s)
    return rescale_float64(a, M)


def activation_bounds(act, scale, zp, where):
    """Section 5 `clamp`: NONE [-128, 127]; RELU [max(-128, Z), 127]; RELU6 adds
    min(127, Z + round_half_away(float32(6) / float32(S)))."""
    if act == ACT_NONE:
        return -128, 127
    if act == ACT_RELU:
        return max(-128, zp), 127
    if act == ACT_RELU6:
        q6 = round_half_away_scalar(float(np.float32(6.0) / np.float32(scale)))
        return max(-128, zp), min(127, zp + q6)
    raise Unsupported(f"{where}: fused activation {act} is outside DESIGN section 5")


class Unsupported(Exception):
    pass


# ---- the graph ------------------------------------------------------------------------------

def out_size(padding, size, k, stride, dilation):
    eff = (k - 1) * dilation + 1
    if padding == PAD_SAME:
        return (size + stride - 1) // stride
    return (size - eff + stride) // stride


def pads(padding, size, k, stride, dilation):
    """TFLite's ComputePaddingHeightWidth: (before, after); the odd one goes after."""
    if padding == PAD_VALID:
        return 0, 0
    eff = (k - 1) * dilation + 1
    total = max(0, (out_size(padding, size, k, stride, dilation) - 1) * stride + eff - size)
    return total // 2, total - total // 2


def windows(x, kh, kw, sh, sw, dh, dw, pad_hw, fill):
    """Patches [OH, OW, KH, KW, C] of x [H, W, C] padded with `fill`, and a validity mask
    [OH, OW, KH, KW] (False where the tap lies in the padding)."""
    (pt, pb), (pl, pr) = pad_hw
    H, W, C = x.shape
    xp = np.full((H + pt + pb, W + pl + pr, C), fill, dtype=x.dtype)
    xp[pt:pt + H, pl:pl + W] = x
    valid = np.zeros(xp.shape[:2], dtype=bool)
    valid[pt:pt + H, pl:pl + W] = True
    OH = (H + pt + pb - (kh - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (kw - 1) * dw - 1) // sw + 1
    iy = (np.arange(OH) * sh)[:, None] + (np.arange(kh) * dh)[None, :]  # [OH, KH]
    ix = (np.arange(OW) * sw)[:, None] + (np.arange(kw) * dw)[None, :]  # [OW, KW]
    patches = xp[iy[:, None, :, None], ix[None, :, None, :]]  # [OH, OW, KH, KW, C]
    mask = valid[iy[:, None, :, None], ix[None, :, None, :]]
    return patches, mask


class Op:
    """One op of the graph with its constants; `run(inputs) -> {rule: int8 output}`."""

    def __init__(self, g, node, opt):
        self.g, self.node = g, node
        self.name = node["op_name"]
        self.index = node["index"]
        self.inputs = [int(t) for t in node["inputs"]]
        self.output = int(node["outputs"][0])
        self.where = f"op {self.index} {self.name}"
        self.opt = opt
        self.tie_report = None
        d = g.details
        out = d[self.output]
        if out["dtype"] != np.int8 and self.name not in ("DEQUANTIZE",):
            raise Unsupported(f"{self.where}: output is {np.dtype(out['dtype']).name}")
        self.shape = tuple(int(v) for v in out["shape"])
        kind = self.name
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            self._prepare_accumulating()
        elif kind == "ADD":
            self._prepare_add()
        elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            self.sy, self.zy = self._quant(self.output)
            self.lo, self.hi = activation_bounds(opt.fusedActivationFunction, self.sy, self.zy,
                                                 self.where)
        elif kind == "RESHAPE":
            pass
        elif kind == "QUANTIZE":
            if d[self.inputs[0]]["dtype"] != np.float32:
                raise Unsupported(f"{self.where}: int8 -> int8 requantize is not in DESIGN")
            self.sy, self.zy = self._quant(self.output)
        else:
            raise Unsupported(f"{self.where}: op outside DESIGN section 5")

    def _quant(self, t):
        q = self.g.details[t]["quantization_parameters"]
        if len(q["scales"]) != 1:
            raise Unsupported(f"{self.where}: tensor {t} is not per-tensor quantized")
        return float(q["scales"][0]), int(q["zero_points"][0])

    def _prepare_accumulating(self):
        g, d = self.g, self.g.details
        self.sx, self.zx = self._quant(self.inputs[0])
        self.sy, self.zy = self._quant(self.output)
        w = g.interp.get_tensor(self.inputs[1]).astype(np.int64)
        wq = d[self.inputs[1]]["quantization_parameters"]
        if np.any(wq["zero_points"] != 0):
            raise Unsupported(f"{self.where}: asymmetric weights (zero point != 0)")
        sw = np.asarray(wq["scales"], dtype=np.float32)
        n_out = w.shape[-1] if self.name == "DEPTHWISE_CONV_2D" else w.shape[0]
        if sw.size == 1:
            sw = np.repeat(sw, n_out)
        if sw.size != n_out:
            raise Unsupported(f"{self.where}: {sw.size} weight scales for {n_out} channels")
        has_bias = len(self.inputs) > 2 and self.inputs[2] >= 0
        self.b = (g.interp.get_tensor(self.inputs[2]).astype(np.int64) if has_bias
                  else np.zeros(n_out, dtype=np.int64))
        self.w = w
        # Section 5: M[c] = double(S_x) * double(S_w[c]) / double(S_y).
        self.M = np.array([float(np.float64(self.sx) * np.float64(s) / np.float64(self.sy))
                           for s in sw])
        ms = [quantize_multiplier(M) for M in self.M]
        self.m = np.array([v[0] for v in ms], dtype=np.int64)
        self.s = np.array([v[1] for v in ms], dtype=np.int64)
        self.lo, self.hi = activation_bounds(self.opt.fusedActivationFunction, self.sy, self.zy,
                                             self.where)
        if self.name == "FULLY_CONNECTED":
            self.tie_report = self._dense_near_ties()

    def _prepare_add(self):
        self.s1, self.z1 = self._quant(self.inputs[0])
        self.s2, self.z2 = self._quant(self.inputs[1])
        self.sy, self.zy = self._quant(self.output)
        if tuple(self.g.details[self.inputs[0]]["shape"]) != tuple(
                self.g.details[self.inputs[1]]["shape"]):
            raise Unsupported(f"{self.where}: broadcast ADD is not in DESIGN section 5")
        self.left_shift = 20
        twice_max = 2.0 * max(np.float64(self.s1), np.float64(self.s2))
        self.M = [np.float64(self.s1) / twice_max, np.float64(self.s2) / twice_max,
                  twice_max / (float(1 << self.left_shift) * np.float64(self.sy))]
        self.ms = [quantize_multiplier(float(M)) for M in self.M]
        self.lo, self.hi = activation_bounds(self.opt.fusedActivationFunction, self.sy, self.zy,
                                             self.where)

    # -- evaluation --

    def accumulate(self, x):
        """int64 accumulators, shape = output shape without batch."""
        kind = self.name
        xi = x.astype(np.int64) - self.zx
        if kind == "FULLY_CONNECTED":
            n = self.w.shape[1]
            rows = xi.reshape(-1, n)
            acc = rows @ self.w.T + self.b
            return acc.reshape(self.shape)
        o = self.opt
        H, W, C = x.shape[1:4]
        kh, kw = (self.w.shape[1], self.w.shape[2])
        pad_hw = (pads(o.padding, H, kh, o.strideH, o.dilationHFactor),
                  pads(o.padding, W, kw, o.strideW, o.dilationWFactor))
        # Taps in the padding read the code Z_x, i.e. (x - Z_x) = 0: skipped, section 5.
        patches, _ = windows(xi[0], kh, kw, o.strideH, o.strideW, o.dilationHFactor,
                             o.dilationWFactor, pad_hw, 0)
        OH, OW = patches.shape[:2]
        if kind == "CONV_2D":
            cols = patches.reshape(OH * OW, -1)
            acc = cols @ self.w.reshape(self.w.shape[0], -1).T + self.b
            return acc.reshape(1, OH, OW, -1)
        dm = self.w.shape[3] // C
        if dm * C != self.w.shape[3] or dm != o.depthMultiplier:
            raise Unsupported(f"{self.where}: depth multiplier {o.depthMultiplier} does not "
                              f"match {C} -> {self.w.shape[3]} channels")
        expanded = np.repeat(patches, dm, axis=4)  # channel o = c * DM + d reads c
        acc = np.einsum("yxhwo,hwo->yxo", expanded, self.w[0]) + self.b
        return acc.reshape(1, OH, OW, -1)

    def run(self, ins):
        """{rule: output} (one entry, "design", for ops without a rescale choice)."""
        kind = self.name
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            acc = self.accumulate(ins[0])
            # per output channel constants broadcast on the last axis
            return {rule: np.clip(rescale(rule, acc, self.M, self.m, self.s) + self.zy,
                                  self.lo, self.hi).astype(np.int8) for rule in RULES}
        if kind == "ADD":
            out = {}
            for rule in RULES:
                a = []
                for x, z, M, (m, s) in ((ins[0], self.z1, self.M[0], self.ms[0]),
                                        (ins[1], self.z2, self.M[1], self.ms[1])):
                    shifted = (x.astype(np.int64) - z) * (1 << self.left_shift)
                    a.append(rescale(rule, shifted, M, m, s))
                total = a[0] + a[1]
                y = rescale(rule, total, self.M[2], *self.ms[2]) + self.zy
                out[rule] = np.clip(y, self.lo, self.hi).astype(np.int8)
            return out
        if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            o = self.opt
            x = ins[0].astype(np.int64)
            H, W = x.shape[1:3]
            pad_hw = (pads(o.padding, H, o.filterHeight, o.strideH, 1),
                      pads(o.padding, W, o.filterWidth, o.strideW, 1))
            patches, mask = windows(x[0], o.filterHeight, o.filterWidth, o.strideH, o.strideW,
                                    1, 1, pad_hw, 0)
            m = mask[..., None]
            if kind == "MAX_POOL_2D":
                v = np.where(m, patches, -(1 << 40)).max(axis=(2, 3))
            else:
                total = np.where(m, patches, 0).sum(axis=(2, 3))
                n = np.broadcast_to(m, patches.shape).sum(axis=(2, 3))
                # Section 5: half away from zero, C division truncating toward zero.
                num = np.where(total > 0, total + n // 2, total - n // 2)
                v = np.sign(num) * (np.abs(num) // n)
            return {"design": np.clip(v, self.lo, self.hi).astype(np.int8)[None]}
        if kind == "RESHAPE":
            return {"design": ins[0].reshape(self.shape).astype(np.int8)}
        if kind == "QUANTIZE":
            return {"design": lc.quantize_tflite(ins[0], self.sy, self.zy).reshape(self.shape)}
        raise AssertionError(kind)

    def design(self, outs):
        return outs[DESIGN_RULE[self.name]] if self.name in DESIGN_RULE else outs["design"]

    def _dense_near_ties(self):
        """Reachable accumulators of this FULLY_CONNECTED whose `single` and `float64`
        rescales differ and whose output is not clamped away: exhaustive over the
        near-tie candidates (a*M within one step of a half-integer in or next to the clamp
        window), which is where the two rules can differ at all (their multipliers agree
        to 2^-31 relative)."""
        xs = np.array([-128 - self.zx, 127 - self.zx], dtype=np.int64)
        lo_in = np.minimum(xs[0] * self.w, xs[1] * self.w).sum(axis=1) + self.b
        hi_in = np.maximum(xs[0] * self.w, xs[1] * self.w).sum(axis=1) + self.b
        differ = 0
        checked = 0
        examples = []
        for c in range(self.w.shape[0]):
            if self.m[c] == 0:
                continue
            r_lo, r_hi = self.lo - self.zy - 1, self.hi - self.zy + 1
            halves = np.arange(r_lo, r_hi + 1, dtype=np.float64) + 0.5
            halves = np.concatenate([halves, halves - 1.0])
            centre = np.round(halves / self.M[c]).astype(np.int64)
            cand = np.unique((centre[:, None] + np.arange(-2, 3)[None, :]).ravel())
            cand = cand[(cand >= lo_in[c]) & (cand <= hi_in[c])]
            checked += cand.size
            a = cand
            ys = np.clip(rescale_single(a, self.m[c], self.s[c]) + self.zy, self.lo, self.hi)
            yf = np.clip(rescale_float64(a, self.M[c]) + self.zy, self.lo, self.hi)
            differ += int(np.sum(ys != yf))
            for i in np.nonzero(ys != yf)[0][: max(0, 10 - len(examples))]:
                examples.append({"channel": c, "acc": int(a[i]), "single": int(ys[i]),
                                 "float64": int(yf[i])})
        return {"candidates_checked": int(checked), "single_vs_float64_differ": differ,
                "examples": examples}


def build_ops(graph, path):
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        model_t = schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
    if len(model_t.subgraphs) != 1:
        raise lc.UserError(f"{path}: {len(model_t.subgraphs)} subgraphs; DESIGN has one graph")
    operators = model_t.subgraphs[0].operators
    if len(operators) != len(graph.ops):
        raise lc.UserError(f"{path}: flatbuffer has {len(operators)} operators, LiteRT "
                           f"{len(graph.ops)} nodes")
    ops, unsupported = [], []
    for node, op_t in zip(graph.ops, operators):
        if list(op_t.outputs) != [int(t) for t in node["outputs"]]:
            raise lc.UserError(f"{path}: node {node['index']} and operator disagree on outputs")
        try:
            ops.append(Op(graph, node, op_t.builtinOptions))
        except Unsupported as e:
            ops.append(None)
            unsupported.append((node["index"], str(e)))
    return ops, unsupported


def check_model(path, count, seed):
    graph = lc.Graph(path, "ref")
    ops, unsupported = build_ops(graph, path)
    # The tail ops the integer graph drops are not a failure.
    tail = set()
    t = graph.model_output_index
    while t in graph.producer and graph.producer[t]["op_name"] in lc.DROPPED_TAIL_OPS:
        tail.add(graph.producer[t]["index"])
        t = int(graph.producer[t]["inputs"][0])
    stats = []
    for op in ops:
        if op is None:
            continue
        entry = {"op_index": op.index, "op": op.name, "tensor": graph.details[op.output]["name"],
                 "elements": 0, "chained_mismatches": 0,
                 "isolated_mismatches": {}}
        if op.name in DESIGN_RULE:
            entry["design_rule"] = DESIGN_RULE[op.name]
        if op.tie_report is not None:
            entry["dense_near_ties"] = op.tie_report
        stats.append(entry)
    stat_of = {e["op_index"]: e for e in stats}
    codes = lc.random_codes(graph, count, seed)
    for feed, row in graph.prepare(codes):
        graph.interp.set_tensor(graph.input_index, feed)
        graph.interp.invoke()
        ref = lambda t: graph.interp.get_tensor(t)  # noqa: E731
        chain = {graph.input_index: feed}
        chain_ok = True
        for op in ops:
            if op is None:
                chain_ok = False
                continue
            e = stat_of[op.index]
            theirs = ref(op.output)
            data_inputs = op.inputs[:2] if op.name == "ADD" else op.inputs[:1]
            outs = op.run([ref(t) for t in data_inputs])
            for rule, y in outs.items():
                e["isolated_mismatches"][rule] = e["isolated_mismatches"].get(rule, 0) + int(
                    np.sum(y.reshape(-1) != theirs.reshape(-1)))
            e["elements"] += theirs.size
            if chain_ok and all(t in chain for t in data_inputs):
                y = op.design(op.run([chain[t] for t in data_inputs]))
                chain[op.output] = y
                e["chained_mismatches"] += int(np.sum(y.reshape(-1) != theirs.reshape(-1)))
            else:
                e["chained_mismatches"] = None
    real_unsupported = [msg for idx, msg in unsupported if idx not in tail]
    dropped_tail = [msg for idx, msg in unsupported if idx in tail]
    ok = not real_unsupported
    for e in stats:
        design_key = e.get("design_rule", "design")
        if e["isolated_mismatches"].get(design_key, 0) or e["chained_mismatches"]:
            ok = False
    near_ties = sum(e["dense_near_ties"]["single_vs_float64_differ"] for e in stats
                    if "dense_near_ties" in e)
    return {"model": path, "sha256": lc.sha256_of(path), "inputs": count, "seed": seed,
            "ops": stats, "unsupported": real_unsupported,
            "dropped_tail": dropped_tail,
            "design_equals_builtin_ref": ok, "dense_near_tie_differences": near_ties}


def print_text(r):
    ties = r["dense_near_tie_differences"]
    extra = (f"; but {ties} reachable dense accumulator(s) where `single` != BUILTIN_REF's "
             "float64 rule (listed below)" if ties else "")
    print(f"{r['model']}: {r['inputs']} random inputs (seed {r['seed']}), DESIGN section 5 vs "
          f"BUILTIN_REF: {'EQUAL' if r['design_equals_builtin_ref'] else 'DIFFERENT'}{extra}")
    for e in r["ops"]:
        iso = e["isolated_mismatches"]
        rules = " ".join(f"{k}={v}" for k, v in iso.items())
        design = e.get("design_rule", "-")
        chained = e["chained_mismatches"]
        ties = ""
        if "dense_near_ties" in e:
            t = e["dense_near_ties"]
            ties = (f"  near-ties single!=float64: {t['single_vs_float64_differ']} of "
                    f"{t['candidates_checked']} candidates")
            for x in t["examples"]:
                ties += (f"\n      channel {x['channel']} acc {x['acc']}: output single "
                         f"{x['single']}, BUILTIN_REF (float64) {x['float64']}")
        print(f"  op {e['op_index']:3d} {e['op']:<18} elems {e['elements']:>8}  isolated "
              f"[{rules}] (DESIGN: {design})  chained {chained}{ties}")
    for u in r["unsupported"]:
        print(f"  unsupported: {u}")
    for u in r["dropped_tail"]:
        print(f"  dropped tail (not modelled): {u}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help=".tflite files")
    ap.add_argument("--count", type=int, default=100, help="random inputs per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object per model")
    args = ap.parse_args()
    if args.count < 1:
        raise lc.UserError(f"--count {args.count}: must be >= 1")
    all_ok = True
    for path in args.models:
        r = check_model(path, args.count, args.seed)
        all_ok &= r["design_equals_builtin_ref"] and r["dense_near_tie_differences"] == 0
        if args.json:
            print(json.dumps(r))
        else:
            print_text(r)
        sys.stdout.flush()
    return 0 if all_ok else lc.EXIT_MISMATCH


if __name__ == "__main__":
    lc.run_main(main)
