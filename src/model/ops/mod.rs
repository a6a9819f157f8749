//! The op kinds of int-model version 2 (DESIGN section 5), one file each.
//!
//! A kind owns its fields, how they are read from and written to JSON, its shape rule, its
//! validation against the tensors it reads and writes, and its accumulator bound. Adding a kind
//! means one file here and one line in the `op_kinds!` list below; the golden engine, the RTL
//! generator and the trainer each add one file of their own.

mod add;
mod avg_pool2d;
mod conv2d;
mod dense;
mod depthwise_conv2d;
mod max_pool2d;
mod reshape;
mod window;

pub use add::Add;
pub use avg_pool2d::AvgPool2d;
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use depthwise_conv2d::DepthwiseConv2d;
pub use max_pool2d::MaxPool2d;
pub use reshape::Reshape;
pub use window::Window;

use super::json::Cursor;
use super::{Io, Op};
use crate::quant::{self, Dyadic};
use anyhow::Result;
use std::fmt::Write as _;

/// What every op kind provides to the graph.
pub(crate) trait Kind: Sized {
    /// The `kind` string in files.
    const NAME: &'static str;
    /// How many input tensors the op reads.
    const INPUTS: usize;
    /// Reads the kind's own fields. `io` holds the declared tensors, so array lengths are
    /// checked against them before anything is allocated.
    fn parse(c: &Cursor, io: &Io) -> Result<Self>;
    /// Writes the kind's own fields, each as `, "field": value`.
    fn write_fields(&self, out: &mut String);
    /// Checks the op against its tensors; the error names the field (`weight[3]: ...`).
    fn check(&self, io: &Io, op: &Op) -> std::result::Result<(), String>;
    /// Every `(m, s)` the op carries, in file order (`multiplier[i]`, `shift[i]`).
    fn dyadics(&self) -> Vec<Dyadic> {
        Vec::new()
    }
    /// Per output channel bias and `(m, s)`, for accumulating ops.
    fn channels(&self) -> Option<Channels<'_>> {
        None
    }
    /// Replaces every `(m, s)`, in `dyadics()` order.
    fn set_dyadics(&mut self, _ds: &[Dyadic]) {}
    /// Per output channel, the exact reachable accumulator range over all int8 inputs with
    /// input zero point `zp` (accumulating ops; empty otherwise).
    fn acc_ranges(&self, _zp: i8) -> Vec<(i64, i64)> {
        Vec::new()
    }
}

/// Bias and `(m, s)` of each output channel of an accumulating op.
#[derive(Clone, Copy, Debug)]
pub struct Channels<'a> {
    pub bias: &'a [i32],
    pub multiplier: &'a [u32],
    pub shift: &'a [u32],
}

impl Channels<'_> {
    pub fn len(&self) -> usize {
        self.bias.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bias.is_empty()
    }

    pub fn mult(&self, c: usize) -> Dyadic {
        super::dyadic(self.multiplier, self.shift, c)
    }

    /// Whether every channel shares one `(m, s)` (per-tensor quantization).
    pub fn per_tensor(&self) -> bool {
        (1..self.len()).all(|c| self.mult(c) == self.mult(0))
    }
}

macro_rules! op_kinds {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// An op's kind and its own fields.
        #[derive(Clone, Debug, PartialEq)]
        pub enum OpKind {
            $($variant($ty)),*
        }

        /// Every kind name, for messages.
        pub const KIND_NAMES: &[&str] = &[$(<$ty as Kind>::NAME),*];

        impl OpKind {
            /// The `kind` string in files (TFLite's op name in snake case).
            pub fn name(&self) -> &'static str {
                match self {
                    $(OpKind::$variant(_) => <$ty as Kind>::NAME),*
                }
            }

            /// How many input tensors the op reads.
            pub fn input_count(&self) -> usize {
                match self {
                    $(OpKind::$variant(_) => <$ty as Kind>::INPUTS),*
                }
            }

            pub(crate) fn parse(kind: &str, kind_c: &Cursor, c: &Cursor, io: &Io) -> Result<OpKind> {
                $(
                    if kind == <$ty as Kind>::NAME {
                        let want = <$ty as Kind>::INPUTS;
                        if io.inputs.len() != want {
                            return Err(c.field("inputs")?.error(format!(
                                "has {} tensors, a {kind} op takes {want}",
                                io.inputs.len()
                            )));
                        }
                        return Ok(OpKind::$variant(<$ty as Kind>::parse(c, io)?));
                    }
                )*
                Err(kind_c.error(format!(
                    "= {kind:?} is not a supported op kind ({})",
                    KIND_NAMES.join(", ")
                )))
            }

            pub(crate) fn write_fields(&self, out: &mut String) {
                match self {
                    $(OpKind::$variant(k) => k.write_fields(out)),*
                }
            }

            pub(crate) fn check(&self, io: &Io, op: &Op) -> std::result::Result<(), String> {
                match self {
                    $(OpKind::$variant(k) => k.check(io, op)),*
                }
            }

            /// Every `(m, s)` the op carries, in file order.
            pub fn dyadics(&self) -> Vec<Dyadic> {
                match self {
                    $(OpKind::$variant(k) => k.dyadics()),*
                }
            }

            /// Replaces every `(m, s)`, in `dyadics()` order (same count).
            pub fn set_dyadics(&mut self, ds: &[Dyadic]) {
                match self {
                    $(OpKind::$variant(k) => k.set_dyadics(ds)),*
                }
            }

            /// Per output channel bias and `(m, s)`, for accumulating ops.
            pub fn channels(&self) -> Option<Channels<'_>> {
                match self {
                    $(OpKind::$variant(k) => k.channels()),*
                }
            }

            /// Per output channel, the exact reachable accumulator range for input zero
            /// point `zp` (accumulating ops; empty otherwise).
            pub fn acc_ranges(&self, zp: i8) -> Vec<(i64, i64)> {
                match self {
                    $(OpKind::$variant(k) => k.acc_ranges(zp)),*
                }
            }
        }
    };
}

op_kinds! {
    Dense(Dense),
    Conv2d(Conv2d),
    DepthwiseConv2d(DepthwiseConv2d),
    AvgPool2d(AvgPool2d),
    MaxPool2d(MaxPool2d),
    Add(Add),
    Reshape(Reshape),
}

impl OpKind {
    /// Whether the op has rescalers (and so a k).
    pub fn has_rescalers(&self) -> bool {
        !self.dyadics().is_empty()
    }

    /// Whether the op accumulates weighted sums (dense, conv2d, depthwise_conv2d).
    pub fn accumulates(&self) -> bool {
        self.channels().is_some()
    }
}

/// The per-channel arrays every accumulating op carries, read with their lengths checked.
pub(crate) struct ChannelArrays {
    pub bias: Vec<i32>,
    pub multiplier: Vec<u32>,
    pub shift: Vec<u32>,
}

impl ChannelArrays {
    pub fn parse(c: &Cursor, n: usize) -> Result<ChannelArrays> {
        let ints = |field: &str, lo: i64, hi: i64| c.field(field)?.int_tensor(&[n], lo, hi);
        Ok(ChannelArrays {
            bias: ints("bias", i32::MIN as i64, i32::MAX as i64)?
                .into_iter()
                .map(|v| v as i32)
                .collect(),
            multiplier: ints("multiplier", 0, u32::MAX as i64)?
                .into_iter()
                .map(|v| v as u32)
                .collect(),
            shift: ints("shift", 0, quant::MAX_SHIFT as i64)?
                .into_iter()
                .map(|v| v as u32)
                .collect(),
        })
    }
}

/// Checks that bias, multiplier and shift have one entry per output channel.
pub(crate) fn check_channel_lengths(
    n: usize,
    bias: &[i32],
    multiplier: &[u32],
    shift: &[u32],
) -> std::result::Result<(), String> {
    for (field, len) in [
        ("bias", bias.len()),
        ("multiplier", multiplier.len()),
        ("shift", shift.len()),
    ] {
        if len != n {
            return Err(format!(
                "{field} has {len} entries, expected one per output channel ({n})"
            ));
        }
    }
    Ok(())
}

/// The range of an accumulating op's accumulators over every channel and every int8 input.
/// Padding taps are skipped, which stays inside this range: every term's range contains 0.
pub fn acc_range(model: &super::Model, op: &Op) -> Option<(i64, i64)> {
    let zp = model.tensors[op.inputs[0]].q.zero_point;
    op.kind
        .acc_ranges(zp)
        .into_iter()
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// Exact range of `b + sum (x - Z) * w` over int8 `x`: each term is extremal at x = -128 or
/// x = 127.
pub fn weighted_sum_range(weights: impl Iterator<Item = i8>, bias: i32, zp: i8) -> (i64, i64) {
    let (xlo, xhi) = (-128 - zp as i64, 127 - zp as i64);
    let mut lo = bias as i64;
    let mut hi = lo;
    for w in weights {
        let (a, b) = (xlo * w as i64, xhi * w as i64);
        lo += a.min(b);
        hi += a.max(b);
    }
    (lo, hi)
}

/// Checks DESIGN's i32 bound `255 * sum|w| + |b|` for one output channel.
pub(crate) fn check_acc_bound(
    c: usize,
    abs_weight_sum: i64,
    bias: i32,
) -> std::result::Result<(), String> {
    let bound = quant::MAX_CENTRED_INPUT * abs_weight_sum + (bias as i64).abs();
    if bound > i32::MAX as i64 {
        return Err(format!(
            "weight: output channel {c}'s worst-case accumulator 255*sum|w| + |b| = {bound} overflows i32"
        ));
    }
    Ok(())
}

/// Writes `, "field": [...]` for a flat list.
pub(crate) fn write_list<T: serde::Serialize>(out: &mut String, field: &str, v: &[T]) {
    let _ = write!(out, ", \"{field}\": {}", super::js(v));
}

/// Writes `, "weight": [...]` as nested arrays of `dims` (outermost first), one outermost entry
/// per line so that files stay diffable.
pub(crate) fn write_weight(out: &mut String, w: &[i8], dims: &[usize]) {
    out.push_str(",\n      \"weight\": [");
    let row = dims[1..].iter().product::<usize>().max(1);
    for (i, chunk) in w.chunks(row).enumerate() {
        out.push_str(if i == 0 { "\n        " } else { ",\n        " });
        nested(out, chunk, &dims[1..]);
    }
    out.push_str("\n      ]");
}

fn nested(out: &mut String, w: &[i8], dims: &[usize]) {
    match dims.split_first() {
        None => {
            let _ = write!(out, "{}", w[0]);
        }
        Some((&n, rest)) => {
            let step = rest.iter().product::<usize>().max(1);
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                nested(out, &w[i * step..(i + 1) * step], rest);
            }
            out.push(']');
        }
    }
}

/// Reads a nested int8 weight array of exactly `dims`.
pub(crate) fn parse_weight(c: &Cursor, dims: &[usize]) -> Result<Vec<i8>> {
    Ok(c.field("weight")?
        .int_tensor(dims, -128, 127)?
        .into_iter()
        .map(|v| v as i8)
        .collect())
}

/// The output tensor must have exactly `want` as its shape.
pub(crate) fn check_output_shape(io: &Io, want: &[usize]) -> std::result::Result<(), String> {
    if io.output.shape != want {
        return Err(format!(
            "output {:?} has shape {:?}, but the op produces {:?}",
            io.output.name, io.output.shape, want
        ));
    }
    Ok(())
}

/// The input tensor `i` must be rank 3 `[H, W, C]`.
pub(crate) fn input_hwc(io: &Io, i: usize) -> std::result::Result<(usize, usize, usize), String> {
    io.inputs[i].hwc().ok_or_else(|| {
        format!(
            "inputs[{i}] {:?} has shape {:?}: this op reads an [H, W, C] tensor",
            io.inputs[i].name, io.inputs[i].shape
        )
    })
}

/// Input and output must share (S, Z): ops that move codes without rescaling.
pub(crate) fn check_same_qparams(io: &Io) -> std::result::Result<(), String> {
    let (i, o) = (io.input(), io.output);
    if i.q != o.q {
        return Err(format!(
            "output {:?} has (S, Z) = ({}, {}) but input {:?} has ({}, {}): this op does not rescale",
            o.name, o.q.scale, o.q.zero_point, i.name, i.q.scale, i.q.zero_point
        ));
    }
    Ok(())
}
