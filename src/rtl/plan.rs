//! The hardware plan: a validated model and the user's choices resolved into a netlist of
//! library-module instances (units) joined by AXI4-Stream bundles (streams), with every
//! parameter value and ROM image computed and checked.
//!
//! Emission is a pure function of a [`Plan`]: every check happens while building it. Each op
//! becomes a chain of units (`rtl/lib/README.md`, "From a graph to a top"):
//!
//! | op | units |
//! |---|---|
//! | conv2d | [`rf_dwc`] -> `rf_window` (ORDER 0; none for 1x1 stride 1 unpadded) -> [`rf_fifo` 2*SF] -> `rf_mac` -> [`rf_dwc` acc] -> `rf_requant` |
//! | dense | [`rf_dwc`] -> [`rf_fifo` 2*SF] -> `rf_mac` -> [`rf_dwc` acc] -> `rf_requant` |
//! | depthwise_conv2d | [`rf_dwc`] -> `rf_window` (ORDER 1) -> `rf_dwmac` -> [`rf_dwc` acc] -> `rf_requant` |
//! | avg/max_pool2d | [`rf_dwc`] -> `rf_window` (ORDER 1) -> `rf_avgpool` / `rf_maxpool` |
//! | add | [`rf_dwc`] x 2 -> `rf_add` |
//! | reshape | nothing: same codes in the same order, the input's stream |
//!
//! plus an `rf_fork` where a tensor has several readers, a skip FIFO on the short path of every
//! residual branch (`schedule`), and `rf_argmax` (tensor then class) at the output. Brackets
//! mark units that appear only when needed (lane counts differ, NF > 1).

use super::folding::{self, Fold, Folding, Geom};
use super::lib::LibModule;
use super::names;
use super::rom::{Field, Rom};
use super::schedule::{self, SkipFifo, WindowGeom};
use super::verilog::{sbits, ubits};
use super::{AccWidth, MulForm, Options};
use crate::model::{Model, OpKind, TensorId};
use crate::quant::{self, Dyadic, Rounding, csd};
use anyhow::{Result, anyhow, bail};

/// DESIGN's accumulator width (i32), used everywhere under `--acc 32`.
pub const ACC_BITS: u32 = 32;

/// The most CSD digit fields for which a per-channel lane's shift-adds are smaller than one
/// k-bit multiplier: `2 + k / 4`, measured with yosys `synth_ice40` on a 64-channel
/// time-shared requantizer (docs/rtl.md). Beyond it `--multiplier csd` keeps the multiplier.
pub fn max_rom_digits(k: u32) -> usize {
    2 + k as usize / 4
}

/// A parameter value as the top writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Int(i64),
    /// A file name (ROM image): plain ASCII, no quotes or backslashes (checked).
    Str(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub value: Val,
}

/// An AXI4-Stream bundle inside the top: `<name>_data/_valid/_ready/_last` (and `_user`).
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    pub name: String,
    pub lanes: usize,
    pub elem_bits: u32,
    /// Bits of `_user` (0: none).
    pub user_bits: usize,
    /// Valid/ready bits: an `rf_fork` output has one per consumer.
    pub nout: usize,
    /// What the stream carries, for the comment above its wires.
    pub doc: String,
}

impl Stream {
    pub fn data_bits(&self) -> usize {
        self.lanes * self.elem_bits as usize
    }
}

/// A unit port bundle connected to a stream (`index`: which valid/ready bit of a fork output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    /// `s_axis`, `m_axis`, `s0_axis`, `s1_axis`.
    pub prefix: &'static str,
    pub stream: usize,
    pub index: Option<usize>,
    /// Connect `_tuser` too.
    pub user: bool,
}

/// One library-module instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub instance: String,
    pub module: LibModule,
    /// The op it belongs to (`None`: forks, skip FIFOs of the graph, argmax).
    pub op: Option<usize>,
    /// `window`, `mac`, `dwmac`, `requant`, `dwc`, `fifo`, `fork`, `pool`, `add`, `argmax`.
    pub role: &'static str,
    pub params: Vec<Param>,
    pub conns: Vec<Conn>,
    /// Busy cycles per inference (one frame), the figures of `rtl/lib/README.md`.
    pub cycles: u64,
    /// Pipeline latency in cycles.
    pub latency: u64,
    /// Line-buffer (window) bits.
    pub line_buffer_bits: u64,
    /// FIFO (and MAC vector buffer) bits.
    pub fifo_bits: u64,
    /// ROM bits (weights, biases, requantizer constants).
    pub rom_bits: u64,
    pub doc: String,
}

impl Unit {
    pub fn param(&self, name: &str) -> Option<&Val> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.value)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.param(name) {
            Some(Val::Int(v)) => Some(*v),
            _ => None,
        }
    }
}

/// What a tap observes for the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapKind {
    /// An op's int8 output tensor.
    Output,
    /// An accumulating op's accumulators (at the MAC engine's output).
    Acc,
}

/// A stream the testbench compares against the golden vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Tap {
    pub stream: usize,
    pub op: usize,
    pub kind: TapKind,
    /// Elements per inference and their shape `[H, W, C]` (rank 1: `[1, 1, N]`).
    pub elems: usize,
    pub hwc: (usize, usize, usize),
    /// Bits per element (8, or the accumulator width).
    pub bits: u32,
}

/// An op in the plan, for the manifest and the harness.
#[derive(Clone, Debug, PartialEq)]
pub struct OpPlan {
    pub index: usize,
    /// The op's name as in the model (may be anything).
    pub name: String,
    pub kind: &'static str,
    /// The output tensor's name as in the model.
    pub tensor: String,
    /// `o<i>_<fragment>`: prefix of its instances and files.
    pub prefix: String,
    pub fold: Fold,
    pub units: Vec<usize>,
    /// The stream carrying its output tensor (before any fork).
    pub out_stream: usize,
    /// Accumulating ops: the MAC engine's output stream, width and the accumulator range.
    pub acc_stream: Option<usize>,
    pub acc_bits: u32,
    pub acc_range: Option<(i64, i64)>,
    /// Requantizer form: `mul-const`, `csd-const`, `mul-rom`, `csd-rom` (accumulating ops),
    /// or `add-mul`/`add-csd` (add), else empty.
    pub requant_form: &'static str,
    /// `max` of its units' busy cycles per inference.
    pub cycles: u64,
    /// Sum of its units' latencies.
    pub latency: u64,
    pub line_buffer_bits: u64,
    pub fifo_bits: u64,
    pub rom_bits: u64,
    pub roms: Vec<String>,
}

/// The constants of an accumulating op's requantizer, for cost models.
#[derive(Clone, Debug, PartialEq)]
pub struct RequantInfo {
    /// Multiplicand width as baked.
    pub k: u32,
    pub double: bool,
    /// `(m, s)` per output channel, as baked.
    pub channels: Vec<(u32, u32)>,
    /// The model's `(k, m, s)` when a per-tensor constant was narrowed ([`narrow_constant`]).
    pub narrowed_from: Option<(u32, u32, u32)>,
}

/// A skip FIFO as placed.
#[derive(Clone, Debug, PartialEq)]
pub struct SkipPlan {
    pub unit: usize,
    pub info: SkipFifo,
    pub depth: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub top: String,
    pub model_name: String,
    pub model_hash: String,
    pub model_version: u32,
    /// The widest k of the model's rescalers.
    pub k: u32,
    pub multiplier: MulForm,
    pub acc: AccWidth,
    pub folding: Folding,
    pub streams: Vec<Stream>,
    pub units: Vec<Unit>,
    pub roms: Vec<Rom>,
    pub ops: Vec<OpPlan>,
    pub taps: Vec<Tap>,
    pub skips: Vec<SkipPlan>,
    /// Requantizer constants by op index (accumulating ops).
    pub requants: std::collections::BTreeMap<usize, RequantInfo>,
    /// Streams nothing reads (graph outputs after the first): ready tied high.
    pub sinks: Vec<(usize, Option<usize>)>,
    /// The top's input stream (one int8 per beat) and output stream (argmax).
    pub input_stream: usize,
    pub output_stream: usize,
    /// Elements per input beat (1) and per output beat.
    pub out_lanes: usize,
    pub input_len: usize,
    pub input_shape: Vec<usize>,
    pub classes: usize,
    /// Design interval: the largest unit busy count (and the input and output beats).
    pub interval: u64,
    /// What sets the interval: an instance name, or `input`/`output`.
    pub bottleneck: String,
}

/// A stream end a consumer reads: the stream, its valid/ready bit, its lanes and width.
#[derive(Clone, Copy, Debug)]
struct End {
    stream: usize,
    index: Option<usize>,
    lanes: usize,
    bits: u32,
}

struct Builder<'a> {
    model: &'a Model,
    opts: &'a Options,
    streams: Vec<Stream>,
    units: Vec<Unit>,
    roms: Vec<Rom>,
}

fn int(name: &'static str, v: i64) -> Param {
    Param {
        name,
        value: Val::Int(v),
    }
}

fn file(name: &'static str, f: &str) -> Param {
    Param {
        name,
        value: Val::Str(f.to_string()),
    }
}

impl Builder<'_> {
    fn stream(
        &mut self,
        lanes: usize,
        bits: u32,
        user_bits: usize,
        nout: usize,
        doc: String,
    ) -> usize {
        let n = self.streams.len();
        self.streams.push(Stream {
            name: format!("s{n}"),
            lanes,
            elem_bits: bits,
            user_bits,
            nout,
            doc,
        });
        n
    }

    fn conn(prefix: &'static str, e: End, user: bool) -> Conn {
        Conn {
            prefix,
            stream: e.stream,
            index: e.index,
            user,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn unit(
        &mut self,
        instance: String,
        module: LibModule,
        op: Option<usize>,
        role: &'static str,
        params: Vec<Param>,
        conns: Vec<Conn>,
        cycles: u64,
        latency: u64,
        doc: String,
    ) -> usize {
        self.units.push(Unit {
            instance,
            module,
            op,
            role,
            params,
            conns,
            cycles,
            latency,
            line_buffer_bits: 0,
            fifo_bits: 0,
            rom_bits: 0,
            doc,
        });
        self.units.len() - 1
    }

    /// `e` converted to `lanes` elements per beat (`elems` per inference): nothing, one
    /// `rf_dwc`, or two through the gcd when neither lane count divides the other.
    fn adapt(&mut self, e: End, lanes: usize, elems: usize, op: Option<usize>, name: &str) -> End {
        if e.lanes == lanes {
            return e;
        }
        if !e.lanes.is_multiple_of(lanes) && !lanes.is_multiple_of(e.lanes) {
            let g = gcd(e.lanes, lanes);
            let mid = self.adapt(e, g, elems, op, &format!("{name}a"));
            return self.adapt(mid, lanes, elems, op, &format!("{name}b"));
        }
        let out = self.stream(
            lanes,
            e.bits,
            0,
            1,
            format!(
                "{} -> {lanes} elements per beat",
                self.streams[e.stream].doc
            ),
        );
        let o = End {
            stream: out,
            index: None,
            lanes,
            bits: e.bits,
        };
        let beats = (elems / e.lanes.min(lanes)) as u64;
        self.unit(
            name.to_string(),
            LibModule::Dwc,
            op,
            "dwc",
            vec![
                int("IN_LANES", e.lanes as i64),
                int("OUT_LANES", lanes as i64),
                int("ELEM_BITS", e.bits as i64),
            ],
            vec![
                Self::conn("s_axis", e, false),
                Self::conn("m_axis", o, false),
            ],
            beats,
            1,
            format!(
                "width converter {} -> {lanes} lanes of {} bits",
                e.lanes, e.bits
            ),
        );
        o
    }

    fn fifo(
        &mut self,
        e: End,
        depth: u64,
        elems: usize,
        op: Option<usize>,
        name: &str,
        doc: String,
    ) -> Result<End> {
        if depth == 0 || depth > 1 << 24 {
            bail!("internal error: FIFO {name} of depth {depth}");
        }
        let out = self.stream(e.lanes, e.bits, 0, 1, doc.clone());
        let o = End {
            stream: out,
            index: None,
            lanes: e.lanes,
            bits: e.bits,
        };
        let width = e.lanes * e.bits as usize;
        let u = self.unit(
            name.to_string(),
            LibModule::Fifo,
            op,
            "fifo",
            vec![int("WIDTH", width as i64), int("DEPTH", depth as i64)],
            vec![
                Self::conn("s_axis", e, false),
                Self::conn("m_axis", o, false),
            ],
            (elems / e.lanes) as u64,
            if depth > 16 { 2 } else { 1 },
            doc,
        );
        self.units[u].fifo_bits = depth * (width as u64 + 1);
        Ok(o)
    }
}

/// A folded bias as stored: itself, or (only under a forced accumulator width, a fault
/// injected on purpose) its two's complement wrap to `bits`.
fn wrap(v: i64, bits: u32, forced: Option<u32>) -> i64 {
    if forced.is_none() || bits >= 64 {
        return v;
    }
    let m = 1i128 << bits;
    let r = (v as i128).rem_euclid(m);
    (if r >= m / 2 { r - m } else { r }) as i64
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The requantizer of an accumulating op: form, constants or ROM image.
struct Requant {
    form: u8,
    label: &'static str,
    params: Vec<Param>,
    rom: Option<Rom>,
    /// A per-tensor constant narrowed by [`narrow_constant`]: `(k, m, s)` as baked.
    narrowed: Option<(u32, u32, u32)>,
}

/// Largest accumulator window [`narrow_constant`] checks element by element.
pub const NARROW_MAX_WINDOW: i64 = 1 << 22;

/// The narrowest baked constant that gives exactly the same outputs as `rq` on every
/// accumulator in `range` (the op's exact range over every int8 input): `(k', m', s')` with
/// `k' < rq.k` bits, or `None` when no narrower constant is exact (or the check would be too
/// long). A per-tensor requantizer's cost grows with its constant's width (the product is
/// `ACC_BITS + k` bits), and a 31-bit m is mostly bits that no reachable accumulator can tell
/// apart: the AD autoencoder's layers need 14 to 25 bits.
///
/// Proof by exhaustion, using monotonicity: `y(a) = clamp(rescale(a) + Z, lo, hi)` is
/// non-decreasing in `a` for every m >= 0 in both rounding modes (each step is a monotone
/// rounding of a monotone function). Outside the window `[first - 1, last + 1]`, where
/// `first`/`last` are the first and last accumulators at which `rq`'s output leaves its value
/// at the range's ends, `rq` is constant; a monotone candidate that equals `rq` on the window
/// and at both ends of the range is then equal everywhere in between. So the candidate is
/// compared on every accumulator of the window (at most [`NARROW_MAX_WINDOW`]) and at the ends.
pub fn narrow_constant(rq: &quant::Requant, range: (i64, i64)) -> Option<(u32, u32, u32)> {
    let (lo, hi) = (i32::try_from(range.0).ok()?, i32::try_from(range.1).ok()?);
    if rq.mult.m == 0 || lo > hi {
        return None;
    }
    let (y_lo, y_hi) = (rq.apply(lo), rq.apply(hi));
    // First accumulator whose output exceeds y(lo), and the last below y(hi) (binary search on
    // the monotone y).
    let search = |pred: &dyn Fn(i32) -> bool| -> i64 {
        // Smallest a in [lo, hi + 1] with pred(a) (pred monotone false -> true).
        let (mut a, mut b) = (lo as i64, hi as i64 + 1);
        while a < b {
            let mid = a + (b - a) / 2;
            if pred(mid as i32) {
                b = mid;
            } else {
                a = mid + 1;
            }
        }
        a
    };
    let first = search(&|a| rq.apply(a) > y_lo);
    let last = search(&|a| rq.apply(a) >= y_hi) - 1;
    let w0 = (first - 1).max(lo as i64);
    let w1 = (last + 1).min(hi as i64);
    if w1 - w0 > NARROW_MAX_WINDOW {
        return None;
    }
    let exact = |c: &quant::Requant| {
        c.apply(lo) == y_lo
            && c.apply(hi) == y_hi
            && (w0..=w1).all(|a| c.apply(a as i32) == rq.apply(a as i32))
    };
    for k in 1..rq.k {
        let d = rq.k - k;
        let Some(s) = rq.mult.s.checked_sub(d) else {
            continue;
        };
        let m = rq.mult.m as u64;
        let (fl, half) = (m >> d, (m + (1u64 << (d - 1))) >> d);
        let mut cands = vec![half, fl, fl + 1];
        cands.dedup();
        for mm in cands {
            let mult = Dyadic { m: mm as u32, s };
            if mm == 0 || mm >> k != 0 || quant::check_multiplier(mult, k, rq.rounding).is_err() {
                continue;
            }
            let c = quant::Requant { mult, k, ..*rq };
            if exact(&c) {
                return Some((k, mult.m, mult.s));
            }
        }
    }
    None
}

fn requant_plan(
    model: &Model,
    op_index: usize,
    lanes: usize,
    (acc_bits, acc_range): (u32, (i64, i64)),
    mul: MulForm,
    rom_file: String,
    header: &str,
) -> Result<Requant> {
    let op = &model.ops[op_index];
    let ch = op.kind.channels().expect("accumulating op");
    let r = model.op_rescale(op);
    let (k, rounding) = (r.k_bits, r.rounding);
    let out_q = model.tensors[op.output].q;
    let n = ch.len();
    // m = 0 outputs clamp(Z) whatever s is: normalize so dead channels do not break sharing.
    let eff = |c: usize| {
        let d = ch.mult(c);
        if d.m == 0 { (0u32, 0u32) } else { (d.m, d.s) }
    };
    let per_tensor = (1..n).all(|c| eff(c) == eff(0));
    let rnd = match rounding {
        Rounding::Single => 0,
        Rounding::Double => 1,
    };
    let per_tensor_rq = per_tensor.then(|| quant::Requant {
        mult: Dyadic {
            m: eff(0).0,
            s: eff(0).1,
        },
        k,
        rounding,
        zero_point: out_q.zero_point,
        clamp: op.clamp,
    });
    let narrowed = per_tensor_rq
        .as_ref()
        .and_then(|rq| narrow_constant(rq, acc_range));
    let mut params = vec![
        int("LANES", lanes as i64),
        int("CH", n as i64),
        int("ACC_BITS", acc_bits as i64),
        int("K_BITS", narrowed.map_or(k, |c| c.0) as i64),
        int("ROUNDING", rnd),
    ];
    let tail = [
        int("ZY", out_q.zero_point as i64),
        int("LO", op.clamp.lo as i64),
        int("HI", op.clamp.hi as i64),
    ];
    if per_tensor {
        let (m, s) = narrowed.map_or(eff(0), |c| (c.1, c.2));
        let form = if mul == MulForm::Csd { 1 } else { 0 };
        params.extend([int("FORM", form), int("M", m as i64), int("S", s as i64)]);
        params.extend(tail);
        return Ok(Requant {
            form: form as u8,
            label: if form == 1 { "csd-const" } else { "mul-const" },
            params,
            rom: None,
            narrowed,
        });
    }
    let live: Vec<u32> = (0..n)
        .filter(|&c| ch.mult(c).m > 0)
        .map(|c| ch.mult(c).s)
        .collect();
    let s_min = live.iter().copied().min().unwrap_or(0);
    let s_max = live.iter().copied().max().unwrap_or(0);
    let digits = (0..n)
        .map(|c| csd::weight(ch.mult(c).m as u64) as usize)
        .max()
        .unwrap_or(0)
        .max(1);
    let csd_rom = mul == MulForm::Csd && digits <= max_rom_digits(k);
    let pb = ubits(k as u64);
    let db = pb + 2;
    let ew = if csd_rom {
        digits as u32 * db + 6
    } else {
        k + 6
    };
    let mut rom = Rom::new(
        rom_file.clone(),
        lanes * ew as usize,
        format!(
            "{header}\nrf_requant ROM (FORM {}): {} words, word g lane p = channel g*{lanes} + p, entry {}",
            if csd_rom { 3 } else { 2 },
            n / lanes,
            if csd_rom {
                format!(
                    "{{s[5:0], {digits} CSD digits of {db} bits {{valid, negative, position}}}}"
                )
            } else {
                format!("{{s[5:0], m[{}:0]}}", k - 1)
            }
        ),
    );
    for g in 0..n / lanes {
        let mut fields = Vec::with_capacity(lanes * (digits + 1));
        for p in 0..lanes {
            let d = ch.mult(g * lanes + p);
            let s = if d.m == 0 { s_min } else { d.s };
            if csd_rom {
                let ds = csd::digits(d.m as u64);
                for j in 0..digits {
                    let v = match ds.get(j) {
                        Some(dg) => {
                            (1i64 << (pb + 1)) | ((dg.negative as i64) << pb) | dg.shift as i64
                        }
                        None => 0,
                    };
                    fields.push(Field::unsigned(v, db));
                }
            } else {
                fields.push(Field::unsigned(d.m as i64, k));
            }
            fields.push(Field::unsigned(s as i64, 6));
        }
        rom.push(&fields)?;
    }
    let form = if csd_rom { 3 } else { 2 };
    params.extend([
        int("FORM", form),
        int("S_MIN", s_min as i64),
        int("S_MAX", s_max as i64),
    ]);
    if csd_rom {
        params.push(int("DIGITS", digits as i64));
    }
    params.push(file("ROM_FILE", &rom_file));
    params.extend(tail);
    Ok(Requant {
        form: form as u8,
        label: if csd_rom { "csd-rom" } else { "mul-rom" },
        params,
        rom: Some(rom),
        narrowed: None,
    })
}

/// Checks every parameter of a unit against the range its library module accepts (the
/// module refuses the same at elaboration; here it is an error before any file is written).
pub(crate) fn check_unit(u: &Unit) -> Result<()> {
    let get = |n: &str| -> Result<i64> {
        u.int(n)
            .ok_or_else(|| anyhow!("internal error: {} has no parameter {n}", u.instance))
    };
    let want = |ok: bool, what: String| -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(anyhow!(
                "{} ({}): {what}; the generated RTL would be wrong, refusing to write it",
                u.instance,
                u.module.name()
            ))
        }
    };
    let int8 = |n: &str| -> Result<()> {
        let v = get(n)?;
        want(
            (-128..=127).contains(&v),
            format!("{n} = {v} is not an int8 code"),
        )
    };
    for p in &u.params {
        match &p.value {
            Val::Int(v) => want(
                (i32::MIN as i64..=i32::MAX as i64).contains(v),
                format!("{} = {v} does not fit a Verilog integer (32 bits)", p.name),
            )?,
            Val::Str(s) => want(
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\'),
                format!("{} = {s:?} is not a plain file name", p.name),
            )?,
        }
    }
    let k_m_s = |m: &str, s: &str, k: i64, rounding: i64| -> Result<()> {
        let (m, s) = (get(m)?, get(s)?);
        want(
            m >= 0 && (m >> k) == 0,
            format!("M = {m} does not fit {k} bits"),
        )?;
        want((0..=62).contains(&s), format!("S = {s} is outside 0..62"))?;
        want(
            rounding == 0 || m == 0 || s >= k,
            format!("double rounding needs S >= k (S = {s}, k = {k})"),
        )
    };
    match u.module {
        LibModule::Mac | LibModule::DwMac => {
            int8("ZX")?;
            let a = get("ACC_BITS")?;
            want(
                (2..=64).contains(&a),
                format!("ACC_BITS = {a} is outside 2..64"),
            )?;
        }
        LibModule::Window => {
            int8("PAD_VALUE")?;
        }
        LibModule::Requant => {
            let (k, rnd, form) = (get("K_BITS")?, get("ROUNDING")?, get("FORM")?);
            want(
                (1..=31).contains(&k),
                format!("K_BITS = {k} is outside 1..31"),
            )?;
            let a = get("ACC_BITS")?;
            want(
                (2..=64).contains(&a),
                format!("ACC_BITS = {a} is outside 2..64"),
            )?;
            if form <= 1 {
                k_m_s("M", "S", k, rnd)?;
            } else {
                let (lo, hi) = (get("S_MIN")?, get("S_MAX")?);
                want(
                    0 <= lo && lo <= hi && hi <= 62,
                    format!("shift range {lo}..{hi} is not within 0..62"),
                )?;
            }
            int8("ZY")?;
            int8("LO")?;
            int8("HI")?;
            want(get("LO")? <= get("HI")?, "LO > HI".into())?;
        }
        LibModule::Add => {
            let (k, rnd) = (get("K_BITS")?, get("ROUNDING")?);
            want(
                (1..=31).contains(&k),
                format!("K_BITS = {k} is outside 1..31"),
            )?;
            k_m_s("M1", "S1", k, rnd)?;
            k_m_s("M2", "S2", k, rnd)?;
            k_m_s("MO", "SO", k, rnd)?;
            let ls = get("LEFT_SHIFT")?;
            want(
                (0..=40).contains(&ls),
                format!("LEFT_SHIFT = {ls} is outside 0..40"),
            )?;
            for z in ["Z1", "Z2", "ZOUT", "LO", "HI"] {
                int8(z)?;
            }
        }
        LibModule::AvgPool | LibModule::MaxPool => {
            int8("LO")?;
            int8("HI")?;
        }
        _ => {}
    }
    Ok(())
}

impl Plan {
    pub fn build(model: &Model, opts: &Options) -> Result<Plan> {
        let hash = model.content_hash();
        let top = names::top_name(opts.top.as_deref(), &model.name, &hash)?;
        let folding = folding::resolve(model, &opts.folding)?;
        let root = schedule::roots(model);
        let geoms: Vec<Geom> = model.ops.iter().map(|op| Geom::of(model, op)).collect();
        let header = format!(
            "Generated by ratflow {} from model `{}` (content hash {}). Do not edit.",
            crate::VERSION,
            names::printable(&model.name),
            hash
        );

        // Output lanes of every root tensor, from the folding (the graph input: 1).
        let mut lanes_of_root = vec![0usize; model.tensors.len()];
        lanes_of_root[root[model.inputs[0]]] = 1;
        for (i, op) in model.ops.iter().enumerate() {
            let f = folding.folds[i];
            let l = match geoms[i] {
                Geom::Conv { .. } | Geom::Dense { .. } | Geom::Depthwise { .. } => f.rq,
                Geom::Pool { .. } | Geom::Add { .. } => f.simd,
                Geom::Reshape => continue,
            };
            lanes_of_root[root[op.output]] = l;
        }
        // Window geometry of every op that has one.
        let window_of = |i: usize| -> Option<WindowGeom> {
            let op = &model.ops[i];
            let io = model.io(op);
            let (h, w, c) = folding::hwc(&io.input().shape);
            let simd = folding.folds[i].simd;
            let win = match (&op.kind, geoms[i]) {
                (
                    OpKind::Conv2d(k),
                    Geom::Conv {
                        needs_window: true, ..
                    },
                ) => k.window,
                (OpKind::DepthwiseConv2d(k), _) => k.window,
                (OpKind::AvgPool2d(k), _) => k.window,
                (OpKind::MaxPool2d(k), _) => k.window,
                _ => return None,
            };
            let mut g = WindowGeom {
                h,
                w,
                c,
                simd,
                win,
                buf_extra: -1,
            };
            // A window spanning most of its input (a global pool) holds a whole frame; one more
            // frame of buffer lets the next inference stream in while this one is read.
            if 2 * g.min_words() > g.n() {
                g.buf_extra = g.n() as i64;
            }
            Some(g)
        };
        let buf_elems =
            |i: usize| -> u64 { window_of(i).map_or(0, |g| g.buf_words() * g.simd as u64) };
        let skip = schedule::skip_fifos(model, &root, &|t| lanes_of_root[t], &buf_elems);

        // Readers of every root tensor: (op, input slot); the first output also feeds the
        // argmax, other outputs a sink.
        #[derive(Clone, Copy, PartialEq)]
        enum Reader {
            Op(usize, usize),
            Argmax,
            Sink,
        }
        let mut readers: Vec<Vec<Reader>> = vec![Vec::new(); model.tensors.len()];
        for (i, op) in model.ops.iter().enumerate() {
            if matches!(op.kind, OpKind::Reshape(_)) {
                continue;
            }
            for (slot, &t) in op.inputs.iter().enumerate() {
                readers[root[t]].push(Reader::Op(i, slot));
            }
        }
        readers[root[model.outputs[0]]].push(Reader::Argmax);
        for &t in &model.outputs[1..] {
            if !readers[root[t]].contains(&Reader::Sink) {
                readers[root[t]].push(Reader::Sink);
            }
        }
        for (i, op) in model.ops.iter().enumerate() {
            let t = root[op.output];
            if t == op.output && readers[t].is_empty() {
                let _ = i;
                readers[t].push(Reader::Sink);
            }
        }

        let mut b = Builder {
            model,
            opts,
            streams: Vec::new(),
            units: Vec::new(),
            roms: Vec::new(),
        };
        let input_t = &model.tensors[model.inputs[0]];
        let input_stream = b.stream(
            1,
            8,
            0,
            1,
            format!(
                "graph input {:?}, one int8 per beat",
                names::printable(&input_t.name)
            ),
        );
        // The end each reader of a root tensor reads, filled when the tensor is produced.
        let mut ends: Vec<Vec<(Reader, End)>> = vec![Vec::new(); model.tensors.len()];
        let mut out_stream_of_root: Vec<Option<usize>> = vec![None; model.tensors.len()];
        let mut skips: Vec<SkipPlan> = Vec::new();

        // Distributes a produced root tensor to its readers (fork, skip FIFOs).
        let distribute = |b: &mut Builder,
                          skips: &mut Vec<SkipPlan>,
                          t: TensorId,
                          e: End,
                          ends: &mut Vec<Vec<(Reader, End)>>|
         -> Result<()> {
            let rs = readers[t].clone();
            let elems = model.tensors[t].len();
            let name = names::printable(&model.tensors[t].name);
            let outs: Vec<End> = if rs.len() <= 1 {
                vec![e]
            } else {
                let s = b.stream(
                    e.lanes,
                    e.bits,
                    0,
                    rs.len(),
                    format!("tensor {name:?} to its {} readers", rs.len()),
                );
                let inst = format!("u_fork_{}", b.streams.len() - 1);
                b.unit(
                    inst,
                    LibModule::Fork,
                    None,
                    "fork",
                    vec![
                        int("NOUT", rs.len() as i64),
                        int("WIDTH", (e.lanes * e.bits as usize) as i64),
                    ],
                    vec![
                        Builder::conn("s_axis", e, false),
                        Conn {
                            prefix: "m_axis",
                            stream: s,
                            index: None,
                            user: false,
                        },
                    ],
                    (elems / e.lanes) as u64,
                    1,
                    format!("tensor {name:?} read by {} units", rs.len()),
                );
                (0..rs.len())
                    .map(|j| End {
                        stream: s,
                        index: Some(j),
                        lanes: e.lanes,
                        bits: e.bits,
                    })
                    .collect()
            };
            for (r, mut end) in rs.into_iter().zip(outs) {
                if let Reader::Op(op, slot) = r {
                    for sf in skip
                        .iter()
                        .filter(|s| s.fork == t && s.consumer == Some((op, slot)))
                    {
                        let c = folding::hwc(&model.tensors[t].shape).2;
                        let slack = c.div_ceil(end.lanes) as u64 + 2;
                        let depth = sf.min_depth.max(sf.rate_depth) + slack;
                        let add = &model.ops[sf.add];
                        let u_before = b.units.len();
                        end = b.fifo(
                            end,
                            depth,
                            elems,
                            None,
                            &format!("u_skip_{}", names::op_prefix(sf.add, &add.name)),
                            format!(
                                "skip FIFO of add {:?}: tensor {name:?} waits here for the long branch (formula depth {}, full-rate lead {}, + {slack})",
                                names::printable(&add.name),
                                sf.min_depth,
                                sf.rate_depth
                            ),
                        )?;
                        let _ = u_before;
                        skips.push(SkipPlan {
                            unit: b.units.len() - 1,
                            info: sf.clone(),
                            depth,
                        });
                    }
                }
                ends[t].push((r, end));
            }
            Ok(())
        };

        distribute(
            &mut b,
            &mut skips,
            root[model.inputs[0]],
            End {
                stream: input_stream,
                index: None,
                lanes: 1,
                bits: 8,
            },
            &mut ends,
        )?;

        let mut ops: Vec<OpPlan> = Vec::new();
        let mut taps: Vec<Tap> = Vec::new();
        let mut requants = std::collections::BTreeMap::new();
        for (i, op) in model.ops.iter().enumerate() {
            let io = model.io(op);
            let fold = folding.folds[i];
            let prefix = names::op_prefix(i, &op.name);
            let pname = names::printable(&op.name);
            let out_t = root[op.output];
            let first_unit = b.units.len();
            let take = |ends: &mut Vec<Vec<(Reader, End)>>, slot: usize| -> Result<End> {
                let t = root[op.inputs[slot]];
                let pos = ends[t]
                    .iter()
                    .position(|(r, _)| *r == Reader::Op(i, slot))
                    .ok_or_else(|| anyhow!("internal error: op {i} input {slot} has no stream"))?;
                Ok(ends[t].remove(pos).1)
            };
            let in_elems = io.input().len();
            let out_elems = io.output.len();
            let zx = io.input().q.zero_point as i64;
            let mut acc_stream = None;
            let mut acc_bits = 0;
            let mut acc_range = None;
            let mut requant_form = "";
            let mut roms = Vec::new();
            let out_end: End = match (&op.kind, geoms[i]) {
                (OpKind::Reshape(_), _) => {
                    ops.push(OpPlan {
                        index: i,
                        name: op.name.clone(),
                        kind: op.kind.name(),
                        tensor: model.tensors[op.output].name.clone(),
                        prefix,
                        fold,
                        units: Vec::new(),
                        out_stream: out_stream_of_root[out_t].unwrap_or(input_stream),
                        acc_stream: None,
                        acc_bits: 0,
                        acc_range: None,
                        requant_form: "",
                        cycles: 0,
                        latency: 0,
                        line_buffer_bits: 0,
                        fifo_bits: 0,
                        rom_bits: 0,
                        roms: Vec::new(),
                    });
                    let s = ops[i].out_stream;
                    taps.push(Tap {
                        stream: s,
                        op: i,
                        kind: TapKind::Output,
                        elems: out_elems,
                        hwc: folding::hwc(&io.output.shape),
                        bits: 8,
                    });
                    continue;
                }
                (OpKind::Conv2d(_) | OpKind::Dense(_) | OpKind::DepthwiseConv2d(_), g) => {
                    let x = take(&mut ends, 0)?;
                    let x = b.adapt(x, fold.simd, in_elems, Some(i), &format!("u_{prefix}_in"));
                    // Accumulator width: the exact range over every int8 input (the MACs fold
                    // the input zero point into the bias, so padding taps add 0 too).
                    let range = op
                        .kind
                        .acc_ranges(zx as i8)
                        .into_iter()
                        .fold((0i64, 0i64), |(a, bb), (lo, hi)| (a.min(lo), bb.max(hi)));
                    let forced = b.opts.force_acc_bits.iter().find(|f| f.0 == i).map(|f| f.1);
                    let ab = match (forced, b.opts.acc) {
                        (Some(bits), _) => bits,
                        (None, AccWidth::Minimal) => sbits(range.0, range.1).max(2),
                        (None, AccWidth::Bits32) => ACC_BITS,
                    };
                    if sbits(range.0, range.1) > ab && forced.is_none() {
                        bail!(
                            "ops[{i}] {pname:?}: accumulator range {}..={} does not fit {ab} bits",
                            range.0,
                            range.1
                        );
                    }
                    acc_bits = ab;
                    acc_range = Some(range);
                    let (oh, ow, oc) = folding::hwc(&io.output.shape);
                    let (mac_end, mac_lanes) = match (&op.kind, g) {
                        (OpKind::DepthwiseConv2d(d), _) => {
                            let wg = window_of(i).expect("depthwise has a window");
                            let wend = window_unit(&mut b, x, &wg, 1, zx, i, &prefix)?;
                            let lanes = fold.simd * d.depth_multiplier;
                            let cf = d.in_channels / fold.simd;
                            let kk = d.window.taps();
                            let mut wrom = Rom::new(
                                format!("{prefix}_w.hex"),
                                lanes * 8,
                                format!(
                                    "{header}\nrf_dwmac weights of op {i} ({pname}): {} words, word cf*{kk} + t lane j*DM + d = w[t][(cf*{} + j)*DM + d]",
                                    cf * kk,
                                    fold.simd
                                ),
                            );
                            for cfi in 0..cf {
                                for t in 0..kk {
                                    let fields: Vec<Field> = (0..lanes)
                                        .map(|l| Field::signed(d.w(t, cfi * lanes + l) as i64, 8))
                                        .collect();
                                    wrom.push(&fields)?;
                                }
                            }
                            let mut brom = Rom::new(
                                format!("{prefix}_b.hex"),
                                lanes * ab as usize,
                                format!(
                                    "{header}\nrf_dwmac folded biases b - Z_x*sum_t w of op {i} ({pname}): {cf} words of {lanes} x {ab} bits"
                                ),
                            );
                            for cfi in 0..cf {
                                let fields: Vec<Field> = (0..lanes)
                                    .map(|l| {
                                        let o = cfi * lanes + l;
                                        let sum: i64 = (0..kk).map(|t| d.w(t, o) as i64).sum();
                                        Field::signed(
                                            wrap(d.bias[o] as i64 - zx * sum, ab, forced),
                                            ab,
                                        )
                                    })
                                    .collect();
                                brom.push(&fields)
                                    .map_err(|e| anyhow!("ops[{i}] {pname:?}: folded bias: {e}"))?;
                            }
                            let s = b.stream(
                                lanes,
                                ab,
                                0,
                                1,
                                format!("accumulators of op {i} ({pname})"),
                            );
                            let o = End {
                                stream: s,
                                index: None,
                                lanes,
                                bits: ab,
                            };
                            let u = b.unit(
                                format!("u_{prefix}_dw"),
                                LibModule::DwMac,
                                Some(i),
                                "dwmac",
                                vec![
                                    int("C", d.in_channels as i64),
                                    int("DM", d.depth_multiplier as i64),
                                    int("KK", kk as i64),
                                    int("SIMD", fold.simd as i64),
                                    int("ZX", zx),
                                    int("FOLD_ZX", 1),
                                    int("ACC_BITS", ab as i64),
                                    file("W_FILE", &wrom.file),
                                    file("B_FILE", &brom.file),
                                ],
                                vec![
                                    Builder::conn("s_axis", wend, false),
                                    Builder::conn("m_axis", o, false),
                                ],
                                (oh * ow * kk * cf) as u64,
                                2,
                                format!(
                                    "depthwise MAC engine, {lanes} lanes (SIMD {} x DM {})",
                                    fold.simd, d.depth_multiplier
                                ),
                            );
                            b.units[u].rom_bits = wrom.bits() + brom.bits();
                            roms.push(wrom.file.clone());
                            roms.push(brom.file.clone());
                            b.roms.push(wrom);
                            b.roms.push(brom);
                            (o, lanes)
                        }
                        (_, _) => {
                            // conv2d or dense: one rf_mac over K inputs per vector.
                            let (kdim, o_ch, vectors, rows): (usize, usize, usize, Vec<&[i8]>) =
                                match &op.kind {
                                    OpKind::Conv2d(c) => (
                                        c.fan_in(),
                                        c.out_channels,
                                        oh * ow,
                                        (0..c.out_channels).map(|o| c.filter(o)).collect(),
                                    ),
                                    OpKind::Dense(d) => (
                                        d.in_features,
                                        d.out_features,
                                        1,
                                        (0..d.out_features).map(|o| d.row(o)).collect(),
                                    ),
                                    _ => unreachable!("accumulating op"),
                                };
                            let bias: &[i32] = op.kind.channels().expect("accumulating").bias;
                            let mut xin = x;
                            if let Some(wg) = window_of(i) {
                                xin = window_unit(&mut b, xin, &wg, 0, zx, i, &prefix)?;
                            }
                            let sf = kdim / fold.simd;
                            let nf = o_ch / fold.pe;
                            if nf > 1 {
                                // The MAC takes a vector in SF beats, then replays it NF-1 times:
                                // two vectors of FIFO keep a steady producer at full rate.
                                xin = b.fifo(
                                    xin,
                                    (2 * sf) as u64,
                                    vectors * kdim,
                                    Some(i),
                                    &format!("u_{prefix}_vfifo"),
                                    format!("two input vectors of op {i} ({pname}) for the MAC's {nf} folds"),
                                )?;
                            }
                            let (simd, pe) = (fold.simd, fold.pe);
                            let mut wrom = Rom::new(
                                format!("{prefix}_w.hex"),
                                pe * simd * 8,
                                format!(
                                    "{header}\nrf_mac weights of op {i} ({pname}): {} words, word nf*{sf} + sf lane p*{simd} + s = w[nf*{pe} + p][sf*{simd} + s] ((ky, kx, c) order)",
                                    nf * sf
                                ),
                            );
                            for nfi in 0..nf {
                                for sfi in 0..sf {
                                    let mut fields = Vec::with_capacity(pe * simd);
                                    for p in 0..pe {
                                        for s in 0..simd {
                                            fields.push(Field::signed(
                                                rows[nfi * pe + p][sfi * simd + s] as i64,
                                                8,
                                            ));
                                        }
                                    }
                                    wrom.push(&fields)?;
                                }
                            }
                            let mut brom = Rom::new(
                                format!("{prefix}_b.hex"),
                                pe * ab as usize,
                                format!(
                                    "{header}\nrf_mac folded biases b - Z_x*sum(w) of op {i} ({pname}): {nf} words of {pe} x {ab} bits"
                                ),
                            );
                            for nfi in 0..nf {
                                let fields: Vec<Field> = (0..pe)
                                    .map(|p| {
                                        let o = nfi * pe + p;
                                        let sum: i64 = rows[o].iter().map(|&w| w as i64).sum();
                                        Field::signed(
                                            wrap(bias[o] as i64 - zx * sum, ab, forced),
                                            ab,
                                        )
                                    })
                                    .collect();
                                brom.push(&fields)
                                    .map_err(|e| anyhow!("ops[{i}] {pname:?}: folded bias: {e}"))?;
                            }
                            let s =
                                b.stream(pe, ab, 0, 1, format!("accumulators of op {i} ({pname})"));
                            let o = End {
                                stream: s,
                                index: None,
                                lanes: pe,
                                bits: ab,
                            };
                            let u = b.unit(
                                format!("u_{prefix}_mac"),
                                LibModule::Mac,
                                Some(i),
                                "mac",
                                vec![
                                    int("K", kdim as i64),
                                    int("O", o_ch as i64),
                                    int("SIMD", simd as i64),
                                    int("PE", pe as i64),
                                    int("ZX", zx),
                                    int("FOLD_ZX", 1),
                                    int("ACC_BITS", ab as i64),
                                    file("W_FILE", &wrom.file),
                                    file("B_FILE", &brom.file),
                                ],
                                vec![
                                    Builder::conn("s_axis", xin, false),
                                    Builder::conn("m_axis", o, false),
                                ],
                                (vectors * sf * nf) as u64,
                                2,
                                format!("MAC engine, PE {pe} x SIMD {simd} (SF {sf}, NF {nf})"),
                            );
                            b.units[u].rom_bits = wrom.bits() + brom.bits();
                            if nf > 1 {
                                b.units[u].fifo_bits += (sf * simd * 8) as u64;
                            }
                            roms.push(wrom.file.clone());
                            roms.push(brom.file.clone());
                            b.roms.push(wrom);
                            b.roms.push(brom);
                            (o, pe)
                        }
                    };
                    let _ = mac_lanes;
                    acc_stream = Some(mac_end.stream);
                    taps.push(Tap {
                        stream: mac_end.stream,
                        op: i,
                        kind: TapKind::Acc,
                        elems: out_elems,
                        hwc: (oh, ow, oc),
                        bits: ab,
                    });
                    let rq_in = b.adapt(
                        mac_end,
                        fold.rq,
                        out_elems,
                        Some(i),
                        &format!("u_{prefix}_acc"),
                    );
                    let rq = requant_plan(
                        model,
                        i,
                        fold.rq,
                        (ab, range),
                        b.opts.multiplier,
                        format!("{prefix}_rq.hex"),
                        &header,
                    )?;
                    requant_form = rq.label;
                    {
                        let ch = op.kind.channels().expect("accumulating");
                        let r = model.op_rescale(op);
                        // The constants as baked (a narrowed per-tensor constant included).
                        requants.insert(
                            i,
                            RequantInfo {
                                k: rq.narrowed.map_or(r.k_bits, |c| c.0),
                                double: r.rounding == Rounding::Double,
                                channels: (0..ch.len())
                                    .map(|c| {
                                        rq.narrowed
                                            .map_or((ch.mult(c).m, ch.mult(c).s), |n| (n.1, n.2))
                                    })
                                    .collect(),
                                narrowed_from: rq
                                    .narrowed
                                    .map(|_| (r.k_bits, ch.mult(0).m, ch.mult(0).s)),
                            },
                        );
                    }
                    let s = b.stream(fold.rq, 8, 0, 1, format!("op {i} ({pname}) output"));
                    let o = End {
                        stream: s,
                        index: None,
                        lanes: fold.rq,
                        bits: 8,
                    };
                    let u = b.unit(
                        format!("u_{prefix}_rq"),
                        LibModule::Requant,
                        Some(i),
                        "requant",
                        rq.params,
                        vec![
                            Builder::conn("s_axis", rq_in, false),
                            Builder::conn("m_axis", o, false),
                        ],
                        (out_elems / fold.rq) as u64,
                        4,
                        format!(
                            "requantizer, {} lanes, form {} ({})",
                            fold.rq, rq.form, rq.label
                        ),
                    );
                    if let Some(rom) = rq.rom {
                        b.units[u].rom_bits = rom.bits();
                        roms.push(rom.file.clone());
                        b.roms.push(rom);
                    }
                    o
                }
                (
                    OpKind::AvgPool2d(_) | OpKind::MaxPool2d(_),
                    Geom::Pool {
                        c,
                        oh,
                        ow,
                        win,
                        avg,
                        ..
                    },
                ) => {
                    let x = take(&mut ends, 0)?;
                    let x = b.adapt(x, fold.simd, in_elems, Some(i), &format!("u_{prefix}_in"));
                    let wg = window_of(i).expect("pools have a window");
                    let wend = window_unit(&mut b, x, &wg, 1, zx, i, &prefix)?;
                    let s = b.stream(fold.simd, 8, 0, 1, format!("op {i} ({pname}) output"));
                    let o = End {
                        stream: s,
                        index: None,
                        lanes: fold.simd,
                        bits: 8,
                    };
                    b.unit(
                        format!("u_{prefix}_pool"),
                        if avg {
                            LibModule::AvgPool
                        } else {
                            LibModule::MaxPool
                        },
                        Some(i),
                        "pool",
                        vec![
                            int("C", c as i64),
                            int("KK", win.taps() as i64),
                            int("SIMD", fold.simd as i64),
                            int("LO", op.clamp.lo as i64),
                            int("HI", op.clamp.hi as i64),
                        ],
                        vec![
                            Builder::conn("s_axis", wend, true),
                            Builder::conn("m_axis", o, false),
                        ],
                        (oh * ow * win.taps() * (c / fold.simd)) as u64,
                        if avg { 3 } else { 2 },
                        format!(
                            "{} pool, {} channels per beat",
                            if avg { "average" } else { "max" },
                            fold.simd
                        ),
                    );
                    o
                }
                (OpKind::Add(a), _) => {
                    let aq = model.add_requant(op).expect("add");
                    let r = model.op_rescale(op);
                    let x0 = take(&mut ends, 0)?;
                    let x1 = take(&mut ends, 1)?;
                    let mut x0 =
                        b.adapt(x0, fold.simd, in_elems, Some(i), &format!("u_{prefix}_in0"));
                    let mut x1 =
                        b.adapt(x1, fold.simd, in_elems, Some(i), &format!("u_{prefix}_in1"));
                    // A branch that is not one chain from its branch point: the FIFO at the add's
                    // input holds a whole tensor (sufficient for any schedule).
                    for sf in skip.iter().filter(|s| s.add == i && s.consumer.is_none()) {
                        let depth = (out_elems / fold.simd) as u64;
                        let e = if sf.short_input == 0 {
                            &mut x0
                        } else {
                            &mut x1
                        };
                        *e = b.fifo(
                            *e,
                            depth,
                            out_elems,
                            Some(i),
                            &format!("u_skip_{prefix}"),
                            format!("skip FIFO of add {pname:?} (a whole tensor: the short branch is not one chain)"),
                        )?;
                        skips.push(SkipPlan {
                            unit: b.units.len() - 1,
                            info: sf.clone(),
                            depth,
                        });
                    }
                    let rnd = match r.rounding {
                        Rounding::Single => 0,
                        Rounding::Double => 1,
                    };
                    let form = if b.opts.multiplier == MulForm::Csd {
                        1
                    } else {
                        0
                    };
                    requant_form = if form == 1 { "add-csd" } else { "add-mul" };
                    let s = b.stream(fold.simd, 8, 0, 1, format!("op {i} ({pname}) output"));
                    let o = End {
                        stream: s,
                        index: None,
                        lanes: fold.simd,
                        bits: 8,
                    };
                    b.unit(
                        format!("u_{prefix}_add"),
                        LibModule::Add,
                        Some(i),
                        "add",
                        vec![
                            int("LANES", fold.simd as i64),
                            int("Z1", aq.input_zero_points[0] as i64),
                            int("Z2", aq.input_zero_points[1] as i64),
                            int("ZOUT", aq.output.zero_point as i64),
                            int("LEFT_SHIFT", a.left_shift as i64),
                            int("K_BITS", r.k_bits as i64),
                            int("ROUNDING", rnd),
                            int("FORM", form),
                            int("M1", aq.inputs[0].m as i64),
                            int("S1", aq.inputs[0].s as i64),
                            int("M2", aq.inputs[1].m as i64),
                            int("S2", aq.inputs[1].s as i64),
                            int("MO", aq.output.mult.m as i64),
                            int("SO", aq.output.mult.s as i64),
                            int("LO", op.clamp.lo as i64),
                            int("HI", op.clamp.hi as i64),
                        ],
                        vec![
                            Builder::conn("s0_axis", x0, false),
                            Builder::conn("s1_axis", x1, false),
                            Builder::conn("m_axis", o, false),
                        ],
                        (out_elems / fold.simd) as u64,
                        6,
                        format!("add, {} lanes, three rescalers each", fold.simd),
                    );
                    o
                }
                _ => bail!("internal error: op {i} kind and geometry disagree"),
            };
            out_stream_of_root[out_t] = Some(out_end.stream);
            b.streams[out_end.stream].doc = format!(
                "op {i} ({pname}) output, tensor {:?} {:?}",
                names::printable(&io.output.name),
                io.output.shape
            );
            let units: Vec<usize> = (first_unit..b.units.len()).collect();
            let us = &b.units[first_unit..];
            ops.push(OpPlan {
                index: i,
                name: op.name.clone(),
                kind: op.kind.name(),
                tensor: io.output.name.clone(),
                prefix,
                fold,
                out_stream: out_end.stream,
                acc_stream,
                acc_bits,
                acc_range,
                requant_form,
                cycles: us.iter().map(|u| u.cycles).max().unwrap_or(0),
                latency: us.iter().map(|u| u.latency).sum(),
                line_buffer_bits: us.iter().map(|u| u.line_buffer_bits).sum(),
                fifo_bits: us.iter().map(|u| u.fifo_bits).sum(),
                rom_bits: us.iter().map(|u| u.rom_bits).sum(),
                roms,
                units,
            });
            taps.push(Tap {
                stream: out_end.stream,
                op: i,
                kind: TapKind::Output,
                elems: out_elems,
                hwc: folding::hwc(&io.output.shape),
                bits: 8,
            });
            distribute(&mut b, &mut skips, out_t, out_end, &mut ends)?;
        }
        // Reshape ops read their input's stream: patch the taps of those produced later than
        // the reshape was visited (never: ops are in topological order), and of the input.
        for op in &mut ops {
            if op.kind == "reshape" {
                let t = root[model.ops[op.index].output];
                if let Some(s) = out_stream_of_root[t] {
                    op.out_stream = s;
                }
            }
        }
        for t in taps.iter_mut() {
            if ops[t.op].kind == "reshape" {
                t.stream = ops[t.op].out_stream;
            }
        }

        // Output: the argmax after the first output tensor; sinks for other readers.
        let classes = model.num_classes();
        let class_bits = ubits(classes.saturating_sub(1) as u64);
        let out_lanes = folding::divisors(classes)
            .into_iter()
            .find(|&l| l * 8 >= class_bits as usize)
            .unwrap_or(classes);
        let out_root = root[model.outputs[0]];
        let mut sinks = Vec::new();
        let mut output_stream = None;
        for slot in ends.iter_mut() {
            for (r, e) in std::mem::take(slot) {
                match r {
                    Reader::Argmax => {
                        let x = b.adapt(e, out_lanes, classes, None, "u_out_dwc");
                        let s = b.stream(
                            out_lanes,
                            8,
                            1,
                            1,
                            "top output: the output tensor, then the class".into(),
                        );
                        b.unit(
                            "u_argmax".into(),
                            LibModule::Argmax,
                            None,
                            "argmax",
                            vec![
                                int("LANES", out_lanes as i64),
                                int("N", classes as i64),
                                int("APPEND", 1),
                            ],
                            vec![
                                Builder::conn("s_axis", x, false),
                                Conn {
                                    prefix: "m_axis",
                                    stream: s,
                                    index: None,
                                    user: true,
                                },
                            ],
                            (classes / out_lanes) as u64 + 1,
                            1,
                            "output tensor then its class (argmax, ties to the lowest index)"
                                .into(),
                        );
                        output_stream = Some(s);
                    }
                    Reader::Sink => sinks.push((e.stream, e.index)),
                    Reader::Op(op, slot) => {
                        bail!("internal error: op {op} input {slot} was never connected")
                    }
                }
            }
        }
        let _ = out_root;
        let output_stream = output_stream.ok_or_else(|| anyhow!("internal error: no output"))?;

        // Every generated name is legal, every parameter within its module's range.
        names::check_identifier(&top)?;
        for u in &b.units {
            names::check_identifier(&u.instance)?;
            check_unit(u)?;
        }
        for s in &b.streams {
            names::check_identifier(&s.name)?;
        }
        let mut files: Vec<&str> = b.roms.iter().map(|r| r.file.as_str()).collect();
        files.sort();
        if files.windows(2).any(|w| w[0] == w[1]) {
            bail!("internal error: two ROM images share a file name");
        }

        // An identity skip's formula is exact only when nothing but the FIFO holds its elements
        // (no width converter between it and the add).
        for sk in &mut skips {
            if folding.folds[sk.info.add].simd != sk.info.lanes {
                sk.info.exact = false;
            }
        }
        let input_len = model.input_len();
        let mut interval = input_len as u64;
        let mut bottleneck = "input".to_string();
        for u in &b.units {
            if u.cycles > interval {
                interval = u.cycles;
                bottleneck = u.instance.clone();
            }
        }
        Ok(Plan {
            top,
            model_name: names::printable(&model.name),
            model_hash: hash,
            model_version: model.version,
            k: model.widest_k(),
            multiplier: opts.multiplier,
            acc: opts.acc,
            folding,
            streams: b.streams,
            units: b.units,
            roms: b.roms,
            ops,
            taps,
            skips,
            requants,
            sinks,
            input_stream,
            output_stream,
            out_lanes,
            input_len,
            input_shape: model.input().shape.clone(),
            classes,
            interval,
            bottleneck,
        })
    }

    /// Bits of the class index.
    pub fn class_bits(&self) -> u32 {
        ubits(self.classes.saturating_sub(1) as u64)
    }

    /// The library modules the design instantiates.
    pub fn modules(&self) -> Vec<LibModule> {
        let used: Vec<LibModule> = self.units.iter().map(|u| u.module).collect();
        super::lib::closure(&used)
    }
}

/// An `rf_window` unit over `x` (ORDER 0 for a MAC engine, 1 for per-channel consumers).
fn window_unit(
    b: &mut Builder,
    x: End,
    g: &WindowGeom,
    order: i64,
    zx: i64,
    op: usize,
    prefix: &str,
) -> Result<End> {
    if g.index_bits() > 32 {
        bail!(
            "ops[{op}] {:?}: the sliding window over [{}, {}, {}] is too large for the window \
             unit's 32-bit index arithmetic",
            names::printable(&b.model.ops[op].name),
            g.h,
            g.w,
            g.c
        );
    }
    let win = g.win;
    let (oh, ow) = win
        .out_hw(g.h, g.w)
        .map_err(|e| anyhow!("internal error: {e}"))?;
    let s = b.stream(
        g.simd,
        8,
        g.simd,
        1,
        format!(
            "window of op {op}, {} taps x {} channels per pixel",
            win.taps(),
            g.c
        ),
    );
    let o = End {
        stream: s,
        index: None,
        lanes: g.simd,
        bits: 8,
    };
    let mut params = vec![
        int("H", g.h as i64),
        int("W", g.w as i64),
        int("C", g.c as i64),
        int("KH", win.kernel[0] as i64),
        int("KW", win.kernel[1] as i64),
        int("SH", win.stride[0] as i64),
        int("SW", win.stride[1] as i64),
        int("DH", win.dilation[0] as i64),
        int("DW", win.dilation[1] as i64),
        int("PT", win.padding[0] as i64),
        int("PB", win.padding[1] as i64),
        int("PL", win.padding[2] as i64),
        int("PR", win.padding[3] as i64),
        int("SIMD", g.simd as i64),
        int("ORDER", order),
        int("PAD_VALUE", zx),
    ];
    if g.buf_extra >= 0 {
        params.push(int("BUF_EXTRA", g.buf_extra));
    }
    let cf = g.cf() as u64;
    let cycles = ((oh * ow * win.taps()) as u64 * cf).max(g.n());
    let u = b.unit(
        format!("u_{prefix}_win"),
        LibModule::Window,
        Some(op),
        "window",
        params,
        vec![
            Builder::conn("s_axis", x, false),
            Conn {
                prefix: "m_axis",
                stream: s,
                index: None,
                user: true,
            },
        ],
        cycles,
        1,
        format!(
            "sliding window {}x{} stride {}x{} dilation {}x{} padding {:?}, {} channels per beat, {} buffer words",
            win.kernel[0],
            win.kernel[1],
            win.stride[0],
            win.stride[1],
            win.dilation[0],
            win.dilation[1],
            win.padding,
            g.simd,
            g.buf_words()
        ),
    );
    b.units[u].line_buffer_bits = g.buf_bits();
    Ok(o)
}
