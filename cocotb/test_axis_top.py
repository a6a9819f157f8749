"""cocotb testbench for any top written by `ratflow rtl` (docs/ecosystem.md).

It drives the top's AXI4-Stream input (s_axis: one int8 element per beat, NHWC raster order,
tlast on each inference's last element) with the inputs of golden vectors, inserting random
gaps, drops m_axis_tready at random, and checks every beat of m_axis against the vectors: for
each inference, `manifest.output.elements / manifest.output.lanes` tensor beats (element
`b * lanes + l` of beat b in bits [8l +: 8], tuser = tlast = 0), then one class beat (the class
zero-extended in tdata, tuser = tlast = 1). It also checks the AXI4-Stream rules on m_axis
(valid and payload hold until ready), X/Z on any m_axis beat, and a deadlock watchdog. The
first mismatch is reported by vector index and element; the test fails if any check failed.

Without +vectors it runs a smoke test: the inputs are all -128, all 127, then seeded random
codes, and each class must be the argmax (ties to the lowest index, DESIGN section 1) of the
tensor the design streamed before it. That checks framing, handshakes and the argmax, not the
arithmetic: for bit-exactness give it golden vectors (`ratflow vectors`).

Settings are plusargs (`vvp ... +vectors=V.jsonl`, FuseSoC `--vectors=...`, or `run.py`):
  +manifest=PATH   the design's manifest.json (default: manifest.json in the working folder)
  +vectors=PATH    golden vectors, JSONL version 1 or 2 (docs/spec.md section 4)
  +count=N         use only the first N vectors (default: all; smoke test: 4)
  +seed=S          seed of the gaps, the back-pressure and the smoke inputs (default 1)
  +gap=P           per-cycle probability that the source withholds its next beat (default 0.25)
  +stall=P         per-cycle probability that m_axis_tready is low (default 0.25)
  +idle_limit=N    cycles without any beat on s_axis or m_axis before a deadlock is declared
                   (default: 4 x the manifest's cycles per inference + 10000)
  +max_report=N    mismatch lines logged (default 10; the count covers all)
  +exit_status=0   keep the simulator's exit status 0 after a failure (default: 1, so that
                   `vvp` and FuseSoC fail too; cocotb's results.xml has the outcome either way)

Written for cocotb 1.9 with Icarus Verilog 11 (and usable with Verilator).
"""

import atexit
import json
import os
import random
import sys

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


def _plusarg(name, default, conv=str):
    value = cocotb.plusargs.get(name)
    if value is None or value is True:
        return default
    try:
        return conv(value)
    except ValueError as e:
        raise ValueError(f"+{name}={value}: {e}") from None


def _s8(x):
    x &= 0xFF
    return x - 256 if x >= 128 else x


class Design:
    """What the testbench needs from manifest.json."""

    def __init__(self, path):
        try:
            with open(path, encoding="utf-8") as f:
                m = json.load(f)
        except OSError as e:
            raise RuntimeError(f"cannot read the design's manifest {path}: {e}") from None
        try:
            self.top = m["top"]
            self.inputs = int(m["input"]["elements"])
            self.classes = int(m["output"]["elements"])
            self.lanes = int(m["output"]["lanes"])
            self.interval = int(m["cycles"]["interval"])
        except (KeyError, TypeError, ValueError) as e:
            raise RuntimeError(f"{path}: not a ratflow RTL manifest (field {e})") from None
        if self.lanes < 1 or self.classes % self.lanes:
            raise RuntimeError(f"{path}: output.lanes {self.lanes} does not divide {self.classes}")
        self.tensor_beats = self.classes // self.lanes


class Vector:
    def __init__(self, index, inputs, output, cls):
        self.index = index
        self.inputs = inputs
        self.output = output  # None: smoke test (the class must be the tensor's argmax)
        self.cls = cls


def load_vectors(path, design, count):
    """Golden vectors of either version: `output` (version 2) or the last of `layers` (1)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if count is not None and len(out) >= count:
                break
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
                inputs = [int(x) for x in rec["input"]]
                output = rec["output"] if "output" in rec else rec["layers"][-1]
                output = [int(x) for x in output]
                cls = int(rec["class"])
                index = int(rec.get("index", len(out)))
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise RuntimeError(f"{where}: not a golden vector ({type(e).__name__}: {e})") from None
            if len(inputs) != design.inputs:
                raise RuntimeError(f"{where}: input has {len(inputs)} elements, the design takes {design.inputs}")
            if len(output) != design.classes:
                raise RuntimeError(f"{where}: output has {len(output)} elements, the design streams {design.classes}")
            if any(not -128 <= x <= 127 for x in inputs + output):
                raise RuntimeError(f"{where}: a value is outside int8")
            out.append(Vector(index, inputs, output, cls))
    if not out:
        raise RuntimeError(f"{path}: no vectors")
    return out


def smoke_vectors(design, count, rng):
    pats = [[-128] * design.inputs, [127] * design.inputs]
    rows = [pats[i] if i < 2 else [rng.randrange(-128, 128) for _ in range(design.inputs)] for i in range(count)]
    return [Vector(i, r, None, None) for i, r in enumerate(rows)]


class Checker:
    """Consumes m_axis beats in order and records what differs from the expectation."""

    def __init__(self, design, vectors, max_report, log):
        self.d = design
        self.vs = vectors
        self.max_report = max_report
        self.log = log
        self.done = 0  # vectors whose class beat arrived
        self.beat = 0  # beat within the current packet
        self.tensor = []  # elements seen in the current packet
        self.errors = 0
        self.first = None
        self.bad = set()

    def error(self, vector, msg):
        self.errors += 1
        if vector is not None:
            self.bad.add(vector)
        if self.first is None:
            self.first = msg
        if self.errors <= self.max_report:
            self.log.error(msg)

    def take(self, data, user, last):
        if self.done >= len(self.vs):
            self.error(None, "m_axis: a beat after the last vector's class beat")
            return
        v = self.vs[self.done]
        for name, x in (("tdata", data), ("tuser", user), ("tlast", last)):
            if x is None:
                self.error(v.index, f"vector {v.index}: m_axis beat {self.beat}: {name} has X or Z bits")
        data, user, last = data or 0, user or 0, last or 0
        if self.beat < self.d.tensor_beats:
            if user or last:
                self.error(v.index, f"vector {v.index}: tensor beat {self.beat} has tuser={user} tlast={last} (want 0, 0)")
            for lane in range(self.d.lanes):
                e = self.beat * self.d.lanes + lane
                got = _s8(data >> (8 * lane))
                self.tensor.append(got)
                if v.output is not None and got != v.output[e]:
                    self.error(v.index, f"vector {v.index}: output element {e}: expected {v.output[e]}, got {got}")
            self.beat += 1
            return
        if not (user and last):
            self.error(v.index, f"vector {v.index}: class beat has tuser={user} tlast={last} (want 1, 1)")
        want = v.cls
        if want is None:  # smoke test: argmax of what was streamed, ties to the lowest index
            want = max(range(len(self.tensor)), key=lambda i: (self.tensor[i], -i))
        if data != want:
            self.error(v.index, f"vector {v.index}: class: expected {want}, got {data}")
        self.done += 1
        self.beat = 0
        self.tensor = []


def _exit_failed():
    """Ends the simulator with status 1 once cocotb has written its results: Icarus's vvp
    (and so FuseSoC's `sim` target, and any script) would otherwise exit 0 after a failed test."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _value(sig):
    """The integer on a signal, or None when it has X or Z bits."""
    v = sig.value
    return int(v) if v.is_resolvable else None


@cocotb.test()
async def axis_top_matches_golden_vectors(dut):
    """Every output element and class of every vector, under random gaps and back-pressure."""
    design = Design(_plusarg("manifest", "manifest.json"))
    seed = _plusarg("seed", 1, int)
    gap = _plusarg("gap", 0.25, float)
    stall = _plusarg("stall", 0.25, float)
    count = _plusarg("count", None, int)
    max_report = _plusarg("max_report", 10, int)
    idle_limit = _plusarg("idle_limit", 4 * design.interval + 10000, int)
    rng = random.Random(seed)
    path = _plusarg("vectors", None)
    if path:
        vectors = load_vectors(path, design, count)
        mode = f"{len(vectors)} golden vectors from {path}"
    else:
        vectors = smoke_vectors(design, count or 4, rng)
        mode = f"smoke test ({len(vectors)} inputs, no golden vectors: class = argmax of the streamed tensor)"
    dut._log.info(
        "top %s: %s; %d inputs, %d outputs in %d beats + class; gap %.2f, stall %.2f, seed %d",
        design.top, mode, design.inputs, design.classes, design.tensor_beats, gap, stall, seed,
    )

    beats = [(x & 0xFF, int(i == design.inputs - 1)) for v in vectors for i, x in enumerate(v.inputs)]
    ck = Checker(design, vectors, max_report, dut._log)

    # 100 MHz; the runners set the timescale to 1ns/1ps (the generated RTL has no `timescale).
    cocotb.start_soon(Clock(dut.clk_i, 10, units="ns").start())
    dut.rst_ni.value = 0
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tdata.value = 0
    dut.s_axis_tlast.value = 0
    dut.m_axis_tready.value = 0
    for _ in range(4):
        await RisingEdge(dut.clk_i)
    await FallingEdge(dut.clk_i)
    dut.rst_ni.value = 1

    sent = 0  # input beats accepted
    offered = False  # a beat is on s_axis (it must stay until accepted)
    held = None  # m_axis payload while valid and not ready (AXI4-Stream: it must hold)
    idle = 0
    cycle = 0
    while ck.done < len(vectors):
        # Drive at the falling edge; the design samples these at the next rising edge.
        await FallingEdge(dut.clk_i)
        if not offered:
            if sent < len(beats) and rng.random() >= gap:
                data, last = beats[sent]
                dut.s_axis_tdata.value = data
                dut.s_axis_tlast.value = last
                dut.s_axis_tvalid.value = 1
                offered = True
            else:
                dut.s_axis_tvalid.value = 0
        ready = int(rng.random() >= stall)
        dut.m_axis_tready.value = ready
        await ReadOnly()
        # Settled values: what the coming rising edge will see.
        in_fire = offered and _value(dut.s_axis_tready) == 1
        valid = _value(dut.m_axis_tvalid)
        if valid is None:
            ck.error(None, f"cycle {cycle}: m_axis_tvalid is X or Z")
            break
        moved = in_fire
        if valid:
            payload = (_value(dut.m_axis_tdata), _value(dut.m_axis_tuser), _value(dut.m_axis_tlast))
            if held is not None and payload != held:
                ck.error(None, f"cycle {cycle}: m_axis payload changed while valid and not ready")
            held = None if ready else payload
            if ready:
                ck.take(*payload)
                moved = True
        elif held is not None:
            ck.error(None, f"cycle {cycle}: m_axis_tvalid dropped before the beat was taken")
            held = None
        idle = 0 if moved else idle + 1
        if idle > idle_limit:
            ck.error(
                None,
                f"deadlock: no beat on s_axis or m_axis for {idle_limit} cycles "
                f"({sent} of {len(beats)} input beats sent, {ck.done} of {len(vectors)} classes received)",
            )
            break
        await RisingEdge(dut.clk_i)
        cycle += 1
        if in_fire:  # the edge took the beat; the next falling edge offers another or none
            sent += 1
            offered = False

    # A vector fails if any of its beats differed, or if it never arrived.
    failed = {v.index for v in vectors[ck.done :]} | ck.bad
    dut._log.info("%d cycles, %d of %d vectors received", cycle, ck.done, len(vectors))
    summary = f"{len(vectors) - len(failed)} passed, {len(failed)} failed"
    dut._log.info(summary)
    if ck.errors and _plusarg("exit_status", 1, int):
        atexit.register(_exit_failed)
    assert ck.errors == 0, f"{ck.errors} mismatches or protocol errors; first: {ck.first} ({summary})"
