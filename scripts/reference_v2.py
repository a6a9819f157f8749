#!/usr/bin/env python3
"""Independent reference of ratflow's int-model version 2 (int8 graphs), from DESIGN's text.

Written from DESIGN sections 1 (integer semantics) and 5 (int-model version 2) alone, sharing no
code with the Rust golden model, so that `ratflow vectors` can be checked against a second
reading of the contract. Exact integers throughout: Python ints in the loop engine, numpy int64
in the vectorized one, where every intermediate is proven to fit (see `_MAX_ELEMENTS` and the
accumulator bounds checked in `validate`).

Library use (the CLI is `reference_check.py`):

    import reference_v2 as ref
    model = ref.load("m.json")                  # ModelError (one line) on a bad file
    out = ref.run(model, codes)                 # {tensor name: flat list of int8 codes}
    tensors, acc = ref.trace(model, codes)      # also {accumulating op's output: flat i32 list}
    tensors, acc = ref.run_batch(model, X)      # X: int array [B, input size]; numpy arrays

`codes` is the input tensor's int8 codes, flat in tensor order (row-major, channels fastest).
`run` returns the input tensor and every op's output tensor. numpy is used when it is installed
(`engine="numpy"`); without it, or with `engine="loops"`, every element is computed by a plain
loop over the DESIGN formulas (slower, same integers; the self-tests compare the two).

DESIGN rules implemented
------------------------
Section 1: rescale of an accumulator `a` by (m, s) at k bits:
  single: r = (a*m + 2^(s-1)) >> s (floor shift; r = a*m for s = 0);
  double: r = RoundingDivideByPOT(SRDHM(a, m << (31 - k)), s - k) with
          SRDHM(a, b) = floor((a*b + 2^30) / 2^31), RoundingDivideByPOT rounding ties away
          from zero; defined for s >= k, and `s < k` with m > 0 is rejected when loading;
  m = 0 gives r = 0 in both modes with any s in 0..=62 (the `s >= k` rule is for m > 0 only);
  0 <= m < 2^k, k in 1..=31, s in 0..=62; optional `csd_digits` D: every m has at most D
  non-zero canonical signed digits (non-adjacent form).
  Accumulator i32 bound: 255 * sum |w| + |b| <= 2^31 - 1 per output channel.
  Classification (in reference_check.py): argmax of the output, ties to the lowest index.
Section 5: tensors int8 with one (S, Z), shape [H, W, C] or [N], row-major, channels fastest;
  ops in topological order; per-op `clamp` [lo, hi] (-128 <= lo <= hi <= 127), per-op
  `rounding` and `k_bits` overriding `rescale` (for `add`: all three rescalers);
  dense / conv2d / depthwise_conv2d:
    acc = b[o] + sum (x - Z_x) * w over the taps inside the input (padding taps skipped),
    y = clamp(rescale(acc, m[o], s[o]) + Z_y, lo, hi);
    dense: input flattened row-major, weight [O][N];
    conv2d: weight [O][KH][KW][C], iy = oy*sh - pad_top + ky*dh, ix = ox*sw - pad_left + kx*dw,
      OH = (H + pad_top + pad_bottom - (KH-1)*dh - 1) // sh + 1 (OW likewise);
    depthwise_conv2d: weight [KH][KW][C*DM], DM = O / C, output channel o = c*DM + d reads
      input channel c;
  avg_pool2d: sum of raw codes over the valid taps, n = their count,
    v = (sum + n//2) / n if sum > 0 else (sum - n//2) / n, division truncating toward zero;
    y = clamp(v, lo, hi); input and output (S, Z) equal;
  max_pool2d: y = clamp(max of the raw codes over the valid taps, lo, hi); same (S, Z);
  add: a_i = rescale((q_i - Z_i) * 2^left_shift, m_i, s_i) for i = 1, 2,
    y = clamp(rescale(a_1 + a_2, m_out, s_out) + Z_out, lo, hi); all three shapes equal;
  reshape: same codes in the same order, new shape, same (S, Z) and element count.

JSON fields read (anything else, e.g. `provenance`, is ignored)
--------------------------------------------------------------
model: format ("ratflow.int-model"), version (2), name (string),
  rescale {k_bits (1..=31), rounding ("single" | "double", default "single"),
           csd_digits (optional, >= 1)},
  tensors {name: {shape ([N] or [H, W, C], positive), scale (finite, > 0),
                  zero_point (-128..=127)}},
  inputs (exactly one tensor name: the vectors carry one input), outputs (>= 1 names,
  each an op's output; the vectors' `output` is the first),
  ops [{kind, name (unique string), inputs [names], output (name), clamp [lo, hi]
        (required except on reshape, where it may be absent or must be [-128, 127]),
        rounding?, k_bits?, and per kind:
        dense: weight [O][N], bias [O], multiplier [O], shift [O];
        conv2d: kernel [KH, KW], stride [sh, sw], dilation [dh, dw] (default [1, 1]),
                padding [top, bottom, left, right], weight [O][KH][KW][C], bias, multiplier,
                shift [O];
        depthwise_conv2d: as conv2d with weight [KH][KW][C*DM];
        avg_pool2d / max_pool2d: kernel, stride, padding (dilation absent or [1, 1]);
        add: two inputs, multiplier [m_1, m_2, m_out], shift [s_1, s_2, s_out],
             left_shift (0..=23, so that 255 * 2^left_shift fits i32);
        reshape: one input}].

Readings of points DESIGN leaves open (also in the report to the lead):
  - `clamp` is a common field: required on every op except `reshape`, where it may be absent
    or must be [-128, 127]; `rounding`/`k_bits` on pools and reshape (no rescaler) are checked
    for range and otherwise ignored;
  - exactly one graph input (the vectors carry one `input`); ops must already be in
    topological order: an input produced by a later op is an error (that covers cycles);
  - `left_shift` is required on `add` (no default of 20);
  - `csd_digits` constrains every rescaler's m, add's three included;
  - the i32 bound of an accumulating op is section 1's worst case over all its weights,
    padding ignored (255 * sum |w[o]| + |b[o]|);
  - `add`'s output rescaler input a_1 + a_2 must fit i32 for every input pair (worst case
    |q - Z| = 255 as in section 1's bound), as SRDHM is an i32 operation;
  - a pool window with no valid tap (padding >= kernel on a side) has no defined average or
    maximum: rejected when loading; a conv window entirely in padding is legal (acc = bias);
  - pools and reshape keep (S, Z): the float scales and zero points must be equal exactly;
  - `dense`'s output may be declared [O] or [H, W, O'] with H * W * O' = O (its element
    count must be O; it is written flat either way);
  - every tensor holds at most 2^24 elements (a sanity bound, not from DESIGN), and kernel,
    stride, dilation and padding are at most 2^31 - 1 (TFLite's int32).
"""
import json
import math
import numbers
import sys

try:
    import numpy as np
except ImportError:  # the loop engine needs nothing but Python
    np = None

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
MAX_K_BITS = 31
MAX_SHIFT = 62
# Per-tensor element cap: keeps B x size int64 batches in memory and every index product far
# inside int64 (2^24 * 2^31 < 2^63). Real int8 edge models stay below 2^20 per tensor.
_MAX_ELEMENTS = 1 << 24
_MAX_GEOMETRY = I32_MAX
ACCUMULATING = ("dense", "conv2d", "depthwise_conv2d")
KINDS = ACCUMULATING + ("avg_pool2d", "max_pool2d", "add", "reshape")


class ModelError(ValueError):
    """A model file that breaks DESIGN section 5; the message is one line naming the field."""


# --------------------------------------------------------------------------------------------
# JSON with the strictness of a typed reader: duplicate keys and NaN/Infinity are errors.


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text):
    """json.loads that rejects duplicate keys and NaN/Infinity (ValueError)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


# --------------------------------------------------------------------------------------------
# Rescale (DESIGN section 1), scalar in Python integers.


def rescale(a, m, s, k, rounding):
    """Rescales accumulator `a` by m * 2^-s as DESIGN section 1 (exact Python integers).

    single: floor((a*m + 2^(s-1)) / 2^s), a*m for s = 0 (m = 0 gives 0 since 2^(s-1) < 2^s).
    double: RoundingDivideByPOT(SRDHM(a, m << (31 - k)), s - k); m = 0 gives 0 for any s.
    """
    if rounding == "single":
        return (a * m + ((1 << s) >> 1)) >> s
    if m == 0:
        return 0
    high = (a * (m << (MAX_K_BITS - k)) + (1 << 30)) >> 31
    n = s - k
    if n == 0:
        return high
    mag = (abs(high) + (1 << (n - 1))) >> n
    return -mag if high < 0 else mag


def csd_weight(m):
    """Number of non-zero digits of m's canonical signed-digit (non-adjacent) form."""
    count = 0
    while m:
        if m & 1:
            # ...01 takes digit +1, ...11 takes -1 and carries into the run of ones.
            m = m + 1 if m & 3 == 3 else m - 1
            count += 1
        m >>= 1
    return count


def derive_multiplier(real, k):
    """(m, s) of a real factor M > 0 at k bits, DESIGN section 1 (used by the self-tests).

    frexp gives M = f * 2^e, f in [0.5, 1); m = round_half_away(f * 2^k), renormalised when it
    reaches 2^k; s = k - e. (0, 0) when s > 62; ModelError when s < 0 (M too large).
    """
    f, e = math.frexp(real)
    scaled = f * (1 << k)  # exact: multiplying a double by a power of two
    m = int(math.floor(scaled + 0.5))  # scaled > 0: half away from zero is half up
    if m == 1 << k:
        m >>= 1
        e += 1
    s = k - e
    if s > MAX_SHIFT:
        return 0, 0
    if s < 0:
        raise ModelError(f"real multiplier {real} is too large for k = {k}")
    return m, s


# --------------------------------------------------------------------------------------------
# Validation.


def _show(v):
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v):
    return type(v) is int  # bool is an int subclass in Python, never a number in the file


class _Ctx:
    """Names the object being read, so that every error says which op and field."""

    def __init__(self, where):
        self.where = where

    def err(self, field, why):
        return ModelError(f"{self.where}{field}: {why}" if field else f"{self.where}{why}")

    def obj(self, d, field, required=True):
        if field not in d:
            if required:
                raise self.err(field, "missing")
            return None
        return d[field]

    def int_in(self, v, field, lo, hi):
        if not _is_int(v) or v < lo or v > hi:
            raise self.err(field, f"= {_show(v)} is not an integer in {lo}..={hi}")
        return v

    def ints(self, v, field, n, lo, hi):
        if not isinstance(v, list) or len(v) != n:
            raise self.err(field, f"= {_show(v)} is not a list of {n} integers")
        return [self.int_in(x, f"{field}[{i}]", lo, hi) for i, x in enumerate(v)]

    def nested(self, v, field, dims, lo, hi):
        """A nested list of exactly `dims` integers in lo..=hi, flattened row-major.

        Walks the data and compares each level's length with the expected size, so that
        nothing is ever allocated from a declared size before the data behind it is seen.
        """
        flat = []

        def walk(x, level, path):
            if not isinstance(x, list) or len(x) != dims[level]:
                got = f"{len(x)} entries" if isinstance(x, list) else _show(x)
                raise self.err(f"{field}{path}", f"has {got}, expected a list of {dims[level]}")
            if level == len(dims) - 1:
                for j, e in enumerate(x):
                    if not _is_int(e) or e < lo or e > hi:
                        raise self.err(
                            f"{field}{path}[{j}]", f"= {_show(e)} is not an integer in {lo}..={hi}"
                        )
                flat.extend(x)
            else:
                for j, e in enumerate(x):
                    walk(e, level + 1, f"{path}[{j}]")

        walk(v, 0, "")
        return flat


class Tensor:
    def __init__(self, name, shape, scale, zero_point):
        self.name = name
        self.shape = shape
        self.size = math.prod(shape)
        self.scale = scale
        self.zero_point = zero_point


class Op:
    """One validated op; the kind's fields are attributes (flat Python lists, numpy copies)."""

    def __init__(self, index, kind, name):
        self.index = index
        self.kind = kind
        self.name = name


class Model:
    """A validated version 2 model: tensors by name, the one input, outputs, ops in order."""

    def __init__(self, name, tensors, input_name, outputs, ops):
        self.name = name
        self.tensors = tensors
        self.input = input_name
        self.outputs = outputs
        self.ops = ops

    @property
    def accumulating(self):
        """Output tensor names of the ops whose accumulators vectors may carry."""
        return [op.output for op in self.ops if op.kind in ACCUMULATING]


def _rescale_bound(amax, m, s, k, rounding):
    """max |rescale(a)| over |a| <= amax: rescale is monotone in a, so an end attains it."""
    return max(abs(rescale(amax, m, s, k, rounding)), abs(rescale(-amax, m, s, k, rounding)))


def _check_rescalers(ctx, ms, ss, k, rounding, csd):
    """Every (m, s) against its k and rounding mode (DESIGN section 1)."""
    for i, (m, s) in enumerate(zip(ms, ss)):
        if m >= 1 << k:
            raise ctx.err(f"multiplier[{i}]", f"= {m} does not fit k = {k} bits (m < 2^{k})")
        if rounding == "double" and m > 0 and s < k:
            raise ctx.err(
                f"shift[{i}]",
                f"= {s} < k = {k}: double rounding needs s >= k when m > 0 (use single)",
            )
        if csd is not None and csd_weight(m) > csd:
            raise ctx.err(
                f"multiplier[{i}]",
                f"= {m} has {csd_weight(m)} non-zero CSD digits, more than rescale.csd_digits = {csd}",
            )


def _window(ctx, field, in_len, k, stride, dil, pad_lo, pad_hi, out_len):
    """Checks one spatial axis and lists its taps as slices.

    Returns [(tap, out_slice, in_slice)]: for kernel tap t, the output positions o whose input
    index o*stride - pad_lo + t*dil lies inside 0..in_len (always a contiguous run of o) and
    those input indices (stride `stride`). Taps that touch the input for no o are left out,
    which also keeps a huge pool kernel from costing one loop step per tap.
    """
    span = (k - 1) * dil + 1
    num = in_len + pad_lo + pad_hi - span
    if num < 0:
        raise ctx.err(
            "kernel",
            f"{field}: the kernel extent {span} exceeds the padded input {in_len + pad_lo + pad_hi}",
        )
    want = num // stride + 1
    if want != out_len:
        raise ctx.err(
            "output",
            f"{field}: computed size {want} = ({in_len} + {pad_lo} + {pad_hi} - {span}) // {stride} + 1, "
            f"but the output tensor declares {out_len}",
        )
    # Tap t is inside for the o with 0 <= o*stride - pad_lo + t*dil <= in_len - 1. Per o the
    # inside taps form an interval; their union (merged, never one step per unused tap) lists
    # every tap that some output position uses.
    intervals = []
    for o in range(out_len):
        base = o * stride - pad_lo
        lo = max(0, -(base // dil))  # ceil(-base / dil)
        hi = min(k - 1, (in_len - 1 - base) // dil)
        if lo <= hi:
            intervals.append((lo, hi))
    taps = []
    for lo, hi in _merge(intervals):
        for t in range(lo, hi + 1):
            off = t * dil - pad_lo
            o0 = max(0, -(off // stride))  # o*stride + off >= 0
            o1 = min(out_len - 1, (in_len - 1 - off) // stride)
            if o0 <= o1:
                i0 = o0 * stride + off
                taps.append((t, slice(o0, o1 + 1), slice(i0, i0 + (o1 - o0) * stride + 1, stride)))
    return taps


def _merge(intervals):
    merged = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return merged


def _pool_windows_nonempty(ctx, field, in_len, k, stride, pad_lo, out_len):
    """Every pool window holds a valid tap (else n = 0 and no average or maximum exists).

    Window o covers input rows o*stride - pad_lo .. + k - 1; the windows slide right with o,
    so the first and the last decide.
    """
    if pad_lo >= k:
        raise ctx.err(
            "padding", f"{field}: the first window lies entirely in the padding ({pad_lo} >= kernel {k})"
        )
    if (out_len - 1) * stride - pad_lo > in_len - 1:
        raise ctx.err("padding", f"{field}: the last window lies entirely in the padding")


def _pair(ctx, op, field, lo, default=None):
    v = op.get(field, default) if default is not None else ctx.obj(op, field)
    return ctx.ints(v, field, 2, lo, _MAX_GEOMETRY)


def _as_np(flat, shape):
    if np is None:
        return None
    return np.array(flat, dtype=np.int64).reshape(shape)


def validate(doc):
    """Validates a parsed version 2 model (dict) and returns a Model.

    Raises ModelError with one line naming the op (index and name) and field at fault.
    """
    top = _Ctx("")
    if not isinstance(doc, dict):
        raise ModelError("the model is not a JSON object")
    if doc.get("format") != "ratflow.int-model":
        raise top.err("format", f"= {_show(doc.get('format'))}, expected \"ratflow.int-model\"")
    if doc.get("version") != 2 or not _is_int(doc.get("version")):
        raise top.err("version", f"= {_show(doc.get('version'))}, expected 2")
    name = top.obj(doc, "name")
    if not isinstance(name, str):
        raise top.err("name", "is not a string")

    rs = top.obj(doc, "rescale")
    if not isinstance(rs, dict):
        raise top.err("rescale", "is not an object")
    rctx = _Ctx("rescale.")
    k_model = rctx.int_in(rctx.obj(rs, "k_bits"), "k_bits", 1, MAX_K_BITS)
    rounding_model = rs.get("rounding", "single")
    if rounding_model not in ("single", "double"):
        raise rctx.err("rounding", f"= {_show(rounding_model)}, expected \"single\" or \"double\"")
    csd = rs.get("csd_digits")
    if csd is not None:
        csd = rctx.int_in(csd, "csd_digits", 1, I32_MAX)

    tdoc = top.obj(doc, "tensors")
    if not isinstance(tdoc, dict) or not tdoc:
        raise top.err("tensors", "is not a non-empty object")
    tensors = {}
    for tname, t in tdoc.items():
        tctx = _Ctx(f"tensors[{json.dumps(tname)}].")
        if not isinstance(t, dict):
            raise tctx.err("", "is not an object")
        shape = tctx.obj(t, "shape")
        if not isinstance(shape, list) or len(shape) not in (1, 3):
            raise tctx.err("shape", f"= {_show(shape)} is not [N] or [H, W, C]")
        size = 1
        for i, d in enumerate(shape):
            tctx.int_in(d, f"shape[{i}]", 1, _MAX_ELEMENTS)
            size *= d
            if size > _MAX_ELEMENTS:
                raise tctx.err("shape", f"= {_show(shape)} has more than 2^24 elements")
        scale = tctx.obj(t, "scale")
        if type(scale) not in (int, float) or not math.isfinite(scale) or scale <= 0:
            raise tctx.err("scale", f"= {_show(scale)} is not a positive finite number")
        zp = tctx.int_in(tctx.obj(t, "zero_point"), "zero_point", -128, 127)
        tensors[tname] = Tensor(tname, list(shape), float(scale), zp)

    def names(v, ctx, field, n=None):
        if not isinstance(v, list) or not v or (n is not None and len(v) != n):
            count = "" if n is None else f"{n} "
            raise ctx.err(field, f"= {_show(v)} is not a list of {count}tensor names")
        for i, x in enumerate(v):
            if not isinstance(x, str):
                raise ctx.err(f"{field}[{i}]", f"= {_show(x)} is not a tensor name")
            if x not in tensors:
                raise ctx.err(f"{field}[{i}]", f"tensor {json.dumps(x)} is not declared in tensors")
        return list(v)

    inputs = names(top.obj(doc, "inputs"), top, "inputs", 1)
    input_name = inputs[0]
    outputs = names(top.obj(doc, "outputs"), top, "outputs")

    odoc = top.obj(doc, "ops")
    if not isinstance(odoc, list) or not odoc:
        raise top.err("ops", "is not a non-empty list")
    producer = {input_name: "the graph input"}
    all_outputs = {o.get("output") for o in odoc if isinstance(o, dict) and isinstance(o.get("output"), str)}
    op_names = set()
    ops = []
    for i, od in enumerate(odoc):
        if not isinstance(od, dict):
            raise ModelError(f"ops[{i}]: is not an object")
        oname = od.get("name")
        if not isinstance(oname, str):
            raise ModelError(f"ops[{i}].name: = {_show(oname)} is not a string")
        ctx = _Ctx(f"op {json.dumps(oname)} (ops[{i}]).")
        if oname in op_names:
            raise ctx.err("name", "is not unique")
        op_names.add(oname)
        kind = ctx.obj(od, "kind")
        if kind not in KINDS:
            raise ctx.err("kind", f"= {_show(kind)} is not one of {', '.join(KINDS)}")
        op = Op(i, kind, oname)
        n_in = 2 if kind == "add" else 1
        op.inputs = names(ctx.obj(od, "inputs"), ctx, "inputs", n_in)
        for j, x in enumerate(op.inputs):
            if x not in producer:
                why = (
                    "is produced by a later op (ops must be in topological order; a cycle?)"
                    if x in all_outputs
                    else "is neither the graph input nor any op's output"
                )
                raise ctx.err(f"inputs[{j}]", f"tensor {json.dumps(x)} {why}")
        out = ctx.obj(od, "output")
        if not isinstance(out, str) or out not in tensors:
            raise ctx.err("output", f"= {_show(out)} is not a declared tensor")
        if out in producer:
            raise ctx.err("output", f"tensor {json.dumps(out)} is already {producer[out]}"
                          if out == input_name else
                          f"tensor {json.dumps(out)} is already the output of op {json.dumps(producer[out])}")
        op.output = out
        op.out_shape = list(tensors[out].shape)

        # Shared fields.
        clamp = od.get("clamp")
        if kind == "reshape":
            if clamp is not None and clamp != [-128, 127]:
                raise ctx.err("clamp", f"= {_show(clamp)}: reshape has no clamp (or [-128, 127])")
            clamp = [-128, 127]
        else:
            clamp = ctx.ints(ctx.obj(od, "clamp"), "clamp", 2, -128, 127)
            if clamp[0] > clamp[1]:
                raise ctx.err("clamp", f"= {_show(clamp)} has lo > hi")
        op.lo, op.hi = clamp
        op.k = ctx.int_in(od["k_bits"], "k_bits", 1, MAX_K_BITS) if "k_bits" in od else k_model
        op.rounding = od.get("rounding", rounding_model)
        if op.rounding not in ("single", "double"):
            raise ctx.err("rounding", f"= {_show(op.rounding)}, expected \"single\" or \"double\"")

        x = tensors[op.inputs[0]]
        y = tensors[out]
        op.zx, op.zy = x.zero_point, y.zero_point
        _validate_kind(ctx, od, op, x, y, tensors, csd)
        producer[out] = oname
        ops.append(op)

    for i, o in enumerate(outputs):
        if o == input_name or o not in producer:
            raise top.err(f"outputs[{i}]", f"tensor {json.dumps(o)} is not any op's output")
    return Model(name, tensors, input_name, outputs, ops)


def _validate_kind(ctx, od, op, x, y, tensors, csd):
    kind = op.kind
    if kind in ACCUMULATING:
        if kind == "dense":
            O, N = y.size, x.size
            op.w_flat = ctx.nested(ctx.obj(od, "weight"), "weight", [O, N], -128, 127)
            op.w = _as_np(op.w_flat, (O, N))
            op.n = N
        else:
            if len(x.shape) != 3:
                raise ctx.err("inputs[0]", f"tensor {json.dumps(x.name)} has shape {x.shape}, not [H, W, C]")
            if len(y.shape) != 3:
                raise ctx.err("output", f"tensor {json.dumps(y.name)} has shape {y.shape}, not [H, W, C]")
            _geometry(ctx, od, op, x, y, pool=False)
            O, C = y.shape[2], x.shape[2]
            if kind == "conv2d":
                dims = [O, op.kh, op.kw, C]
                op.w_flat = ctx.nested(ctx.obj(od, "weight"), "weight", dims, -128, 127)
                # numpy: [KH][KW][C][O], one matmul operand per tap.
                op.w = None if np is None else _as_np(op.w_flat, dims).transpose(1, 2, 3, 0).copy()
            else:
                if O % C != 0:
                    raise ctx.err(
                        "output",
                        f"{O} output channels are not a multiple of the {C} input channels (depth multiplier)",
                    )
                op.dm = O // C
                dims = [op.kh, op.kw, O]
                op.w_flat = ctx.nested(ctx.obj(od, "weight"), "weight", dims, -128, 127)
                op.w = _as_np(op.w_flat, dims)
        op.b = ctx.nested(ctx.obj(od, "bias"), "bias", [O], I32_MIN, I32_MAX)
        op.m = ctx.nested(ctx.obj(od, "multiplier"), "multiplier", [O], 0, I32_MAX)
        op.s = ctx.nested(ctx.obj(od, "shift"), "shift", [O], 0, MAX_SHIFT)
        _check_rescalers(ctx, op.m, op.s, op.k, op.rounding, csd)
        # Section 1's i32 bound, per output channel over all its weights (padding ignored).
        taps = len(op.w_flat) // O if kind != "depthwise_conv2d" else op.kh * op.kw
        for o in range(O):
            if kind == "depthwise_conv2d":
                wsum = sum(abs(op.w_flat[t * O + o]) for t in range(taps))
            else:
                wsum = sum(abs(v) for v in op.w_flat[o * taps:(o + 1) * taps])
            bound = 255 * wsum + abs(op.b[o])
            if bound > I32_MAX:
                raise ctx.err(
                    "weight",
                    f"output channel {o}: accumulator bound 255 * {wsum} + |{op.b[o]}| = {bound} exceeds i32",
                )
        op.O = O
        if np is not None:
            op.b_np = np.array(op.b, dtype=np.int64)
            op.m_np = np.array(op.m, dtype=np.int64)
            op.s_np = np.array(op.s, dtype=np.int64)
    elif kind in ("avg_pool2d", "max_pool2d"):
        if len(x.shape) != 3 or len(y.shape) != 3:
            raise ctx.err("inputs[0]", f"pools need [H, W, C] tensors, got {x.shape} -> {y.shape}")
        if x.shape[2] != y.shape[2]:
            raise ctx.err("output", f"has {y.shape[2]} channels, the input {x.shape[2]}")
        _same_qparams(ctx, x, y, kind)
        _geometry(ctx, od, op, x, y, pool=True)
    elif kind == "add":
        x2 = tensors[op.inputs[1]]
        if x.shape != y.shape or x2.shape != y.shape:
            raise ctx.err("inputs", f"add needs equal shapes, got {x.shape} + {x2.shape} -> {y.shape}")
        op.z2 = x2.zero_point
        op.m = ctx.ints(ctx.obj(od, "multiplier"), "multiplier", 3, 0, I32_MAX)
        op.s = ctx.ints(ctx.obj(od, "shift"), "shift", 3, 0, MAX_SHIFT)
        _check_rescalers(ctx, op.m, op.s, op.k, op.rounding, csd)
        # 255 * 2^left_shift must fit i32 (TFLite computes the shifted input in int32).
        op.left_shift = ctx.int_in(ctx.obj(od, "left_shift"), "left_shift", 0, 23)
        amax = 255 << op.left_shift
        b1 = _rescale_bound(amax, op.m[0], op.s[0], op.k, op.rounding)
        b2 = _rescale_bound(amax, op.m[1], op.s[1], op.k, op.rounding)
        if b1 + b2 > I32_MAX:
            raise ctx.err(
                "multiplier",
                f"|a_1| + |a_2| can reach {b1 + b2}, beyond i32 (the output rescaler's accumulator)",
            )
    else:  # reshape
        if x.size != y.size:
            raise ctx.err("output", f"has {y.size} elements, the input {x.size}")
        _same_qparams(ctx, x, y, kind)


def _same_qparams(ctx, x, y, op_kind):
    if x.scale != y.scale or x.zero_point != y.zero_point:
        raise ctx.err(
            "output",
            f"(S, Z) = ({y.scale}, {y.zero_point}) differs from the input's "
            f"({x.scale}, {x.zero_point}); {op_kind} keeps (S, Z)",
        )


def _geometry(ctx, od, op, x, y, pool):
    op.kh, op.kw = _pair(ctx, od, "kernel", 1)
    op.sh, op.sw = _pair(ctx, od, "stride", 1)
    if pool:
        if "dilation" in od and od["dilation"] != [1, 1]:
            raise ctx.err("dilation", f"= {_show(od['dilation'])}: pools have no dilation")
        op.dh = op.dw = 1
    else:
        op.dh, op.dw = _pair(ctx, od, "dilation", 1, default=[1, 1])
    pad = ctx.ints(ctx.obj(od, "padding"), "padding", 4, 0, _MAX_GEOMETRY)
    op.pt, op.pb, op.pl, op.pr = pad
    H, W, _ = x.shape
    OH, OW, _ = y.shape
    op.rows = _window(ctx, "rows", H, op.kh, op.sh, op.dh, op.pt, op.pb, OH)
    op.cols = _window(ctx, "columns", W, op.kw, op.sw, op.dw, op.pl, op.pr, OW)
    if pool:
        _pool_windows_nonempty(ctx, "rows", H, op.kh, op.sh, op.pt, OH)
        _pool_windows_nonempty(ctx, "columns", W, op.kw, op.sw, op.pl, OW)
    op.H, op.W, op.C = x.shape
    op.OH, op.OW = OH, OW


def load(path):
    """Reads and validates a version 2 model file (ModelError, one line, on any fault)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = parse_json(f.read())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelError(f"cannot read: {e}") from None
    return validate(doc)


# --------------------------------------------------------------------------------------------
# Vectorized engine (numpy int64). Ranges: |acc| <= 2^31 - 1 (validated), m < 2^31, so
# |acc * m| < 2^62 and the rounding constants (<= 2^61 or 2^30) keep every sum below 2^63.


def _rescale_np(a, m, s, k, rounding):
    """Vectorized `rescale`; m, s broadcast along a's last axis (per channel) or scalars."""
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    if rounding == "single":
        return (a * m + ((np.int64(1) << s) >> 1)) >> s
    live = m > 0
    n = np.where(live, s - k, 0)  # m = 0 channels may have s < k: their n is unused
    high = (a * (m << (MAX_K_BITS - k)) + (1 << 30)) >> 31
    mag = (np.abs(high) + ((np.int64(1) << n) >> 1)) >> n
    r = np.where(high < 0, -mag, mag)
    return np.where(live, r, 0)


def _np_forward(op, xs):
    """One op on a batch: xs are the input arrays [B, *shape]; returns (y, acc or None)."""
    B = xs[0].shape[0]
    x = xs[0]
    if op.kind == "dense":
        acc = (x.reshape(B, -1) - op.zx) @ op.w.T + op.b_np
    elif op.kind in ("conv2d", "depthwise_conv2d"):
        xc = x - op.zx
        acc = np.empty((B, op.OH, op.OW, op.O), dtype=np.int64)
        acc[...] = op.b_np
        for ky, oys, iys in op.rows:
            xr = xc[:, iys]
            for kx, oxs, ixs in op.cols:
                patch = xr[:, :, ixs]
                if op.kind == "conv2d":
                    acc[:, oys, oxs] += patch @ op.w[ky, kx]
                else:
                    if op.dm > 1:
                        patch = np.repeat(patch, op.dm, axis=3)  # channel c*DM + d <- c
                    acc[:, oys, oxs] += patch * op.w[ky, kx]
    elif op.kind == "avg_pool2d":
        total = np.zeros((B, op.OH, op.OW, op.C), dtype=np.int64)
        count = np.zeros((op.OH, op.OW, 1), dtype=np.int64)
        for _, oys, iys in op.rows:
            xr = x[:, iys]
            for _, oxs, ixs in op.cols:
                total[:, oys, oxs] += xr[:, :, ixs]
                count[oys, oxs] += 1
        half = count // 2
        v = np.where(total > 0, (total + half) // count, -((half - total) // count))
        return np.clip(v, op.lo, op.hi), None
    elif op.kind == "max_pool2d":
        best = np.full((B, op.OH, op.OW, op.C), -129, dtype=np.int64)
        for _, oys, iys in op.rows:
            xr = x[:, iys]
            for _, oxs, ixs in op.cols:
                np.maximum(best[:, oys, oxs], xr[:, :, ixs], out=best[:, oys, oxs])
        return np.clip(best, op.lo, op.hi), None
    elif op.kind == "add":
        k, rd = op.k, op.rounding
        a1 = _rescale_np((x - op.zx) << op.left_shift, op.m[0], op.s[0], k, rd)
        a2 = _rescale_np((xs[1] - op.z2) << op.left_shift, op.m[1], op.s[1], k, rd)
        r = _rescale_np(a1 + a2, op.m[2], op.s[2], k, rd)
        return np.clip(r + op.zy, op.lo, op.hi), None
    else:  # reshape
        return x.reshape((B,) + tuple(op.out_shape)), None
    r = _rescale_np(acc, op.m_np, op.s_np, op.k, op.rounding)
    return np.clip(r + op.zy, op.lo, op.hi), acc


# --------------------------------------------------------------------------------------------
# Loop engine: every element straight from DESIGN's formulas, Python integers.


def _loop_forward(op, xs):
    """One op on one input: xs flat lists; returns (flat y, flat acc or None)."""
    x = xs[0]
    k, rd, lo, hi = op.k, op.rounding, op.lo, op.hi

    def out(acc_list, chans):
        return [
            min(max(rescale(a, op.m[i % chans], op.s[i % chans], k, rd) + op.zy, lo), hi)
            for i, a in enumerate(acc_list)
        ]

    if op.kind == "dense":
        acc = []
        for o in range(op.O):
            row = op.w_flat[o * op.n:(o + 1) * op.n]
            acc.append(op.b[o] + sum((xi - op.zx) * w for xi, w in zip(x, row)))
        return out(acc, op.O), acc
    if op.kind == "add":
        y = []
        for q1, q2 in zip(x, xs[1]):
            a1 = rescale((q1 - op.zx) * 2**op.left_shift, op.m[0], op.s[0], k, rd)
            a2 = rescale((q2 - op.z2) * 2**op.left_shift, op.m[1], op.s[1], k, rd)
            y.append(min(max(rescale(a1 + a2, op.m[2], op.s[2], k, rd) + op.zy, lo), hi))
        return y, None
    if op.kind == "reshape":
        return list(x), None

    H, W, C = op.H, op.W, op.C
    ys, accs = [], []
    for oy in range(op.OH):
        # The taps with iy = oy*sh - pad_top + ky*dh inside 0..H-1 (the others are skipped):
        # ky from ceil((pad_top - oy*sh) / dh) to floor((H - 1 + pad_top - oy*sh) / dh).
        kys = range(max(0, -((oy * op.sh - op.pt) // op.dh)),
                    min(op.kh - 1, (H - 1 + op.pt - oy * op.sh) // op.dh) + 1)
        for ox in range(op.OW):
            kxs = range(max(0, -((ox * op.sw - op.pl) // op.dw)),
                        min(op.kw - 1, (W - 1 + op.pl - ox * op.sw) // op.dw) + 1)
            chans = op.O if op.kind in ACCUMULATING else C
            for o in range(chans):
                taps = []  # (input flat index, weight) of the taps inside the input
                for ky in kys:
                    iy = oy * op.sh - op.pt + ky * op.dh
                    assert 0 <= iy < H
                    for kx in kxs:
                        ix = ox * op.sw - op.pl + kx * op.dw
                        assert 0 <= ix < W
                        if op.kind == "conv2d":
                            for c in range(C):
                                w = op.w_flat[((o * op.kh + ky) * op.kw + kx) * C + c]
                                taps.append(((iy * W + ix) * C + c, w))
                        elif op.kind == "depthwise_conv2d":
                            c = o // op.dm  # output channel o = c*DM + d reads channel c
                            w = op.w_flat[(ky * op.kw + kx) * op.O + o]
                            taps.append(((iy * W + ix) * C + c, w))
                        else:
                            taps.append(((iy * W + ix) * C + o, None))
                if op.kind in ACCUMULATING:
                    accs.append(op.b[o] + sum((x[i] - op.zx) * w for i, w in taps))
                elif op.kind == "avg_pool2d":
                    total = sum(x[i] for i, _ in taps)
                    n = len(taps)
                    t = total + n // 2 if total > 0 else total - n // 2
                    v = abs(t) // n * (1 if t >= 0 else -1)  # truncation toward zero
                    ys.append(min(max(v, lo), hi))
                else:
                    ys.append(min(max(max(x[i] for i, _ in taps), lo), hi))
    if op.kind in ACCUMULATING:
        return out(accs, op.O), accs
    return ys, None


# --------------------------------------------------------------------------------------------
# Running a model.


def _model(model):
    if isinstance(model, Model):
        return model
    if isinstance(model, dict):
        return validate(model)
    return load(model)


def _engine(engine):
    if engine == "auto":
        return "numpy" if np is not None else "loops"
    if engine == "numpy" and np is None:
        raise RuntimeError("engine 'numpy' asked for but numpy is not installed")
    if engine not in ("numpy", "loops"):
        raise ValueError(f"unknown engine {engine!r}")
    return engine


def _check_codes(model, codes):
    """`codes` as a list of Python ints, checked: the input tensor's size, int8 values."""
    t = model.tensors[model.input]
    codes = list(codes)
    if len(codes) != t.size:
        raise ValueError(f"input has {len(codes)} codes, tensor {t.name!r} {t.shape} has {t.size}")
    for i, q in enumerate(codes):
        if isinstance(q, bool) or not isinstance(q, numbers.Integral) or not -128 <= q <= 127:
            raise ValueError(f"input[{i}] = {q!r} is not an int8 code")
    return [int(q) for q in codes]


def run_batch(model, codes, engine="auto"):
    """Runs B inputs: `codes` is [B, input size] int8 codes (list of lists or array).

    Returns (tensors, acc): tensors maps the input and every op output to an array/list
    [B][size] (flat per row); acc maps each accumulating op's output name to its accumulators.
    numpy engine: int64 numpy arrays [B, size]; loop engine: lists of lists.
    """
    model = _model(model)
    engine = _engine(engine)
    if engine == "loops":
        rows = [_check_codes(model, r) for r in codes]
        tensors = {model.input: rows}
        acc = {}
        for op in model.ops:
            outs, accs = [], []
            for b in range(len(rows)):
                y, a = _loop_forward(op, [tensors[n][b] for n in op.inputs])
                outs.append(y)
                accs.append(a)
            tensors[op.output] = outs
            if op.kind in ACCUMULATING:
                acc[op.output] = accs
        return tensors, acc
    X = np.asarray(codes, dtype=np.int64)
    t_in = model.tensors[model.input]
    if X.ndim != 2 or X.shape[1] != t_in.size:
        raise ValueError(f"inputs must be [B, {t_in.size}], got {list(X.shape)}")
    if X.size and (X.min() < -128 or X.max() > 127):
        raise ValueError("input codes must be int8 (-128..=127)")
    B = X.shape[0]
    live = {model.input: X.reshape((B,) + tuple(t_in.shape))}
    acc = {}
    for op in model.ops:
        y, a = _np_forward(op, [live[n] for n in op.inputs])
        live[op.output] = y
        if a is not None:
            acc[op.output] = a.reshape(B, -1)
    tensors = {n: v.reshape(B, -1) for n, v in live.items()}
    return tensors, acc


def trace(model, codes, engine="auto"):
    """One input (flat int8 codes) -> ({tensor: flat list}, {accumulating op output: list})."""
    model = _model(model)
    codes = _check_codes(model, codes)
    tensors, acc = run_batch(model, [codes], engine)

    def row(v):
        return [int(q) for q in v[0]]

    return {n: row(v) for n, v in tensors.items()}, {n: row(v) for n, v in acc.items()}


def run(model, codes, engine="auto"):
    """One input (flat int8 codes) -> {tensor name: flat list of codes}, input included."""
    return trace(model, codes, engine)[0]


def classify(output):
    """Argmax of the output codes, ties to the lowest index (DESIGN section 1)."""
    best = 0
    for i, v in enumerate(output):
        if v > output[best]:
            best = i
    return best


if __name__ == "__main__":
    sys.exit("reference_v2 is a library; the checker is reference_check.py")
