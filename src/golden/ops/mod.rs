//! One kernel per op kind, each in its own file; [`Kernel`] dispatches.

mod add;
mod avg_pool2d;
mod conv2d;
mod dense;
mod depthwise_conv2d;
pub(crate) mod gemm;
mod max_pool2d;
mod reshape;

use crate::model::{Model, Op, OpKind};

/// Buffers kernels reuse between calls.
#[derive(Default)]
pub struct KernelScratch {
    /// The accumulators of the last accumulating op, `[pixels][channels]`.
    pub acc: Vec<i32>,
    /// Centred input codes `x - Z_x` (depthwise).
    centred: Vec<i16>,
    /// The op's input as unsigned codes `x + 128` ([`gemm::code`]).
    codes: Vec<u8>,
    /// Gathered windows, one row of `kp` codes per output pixel.
    patches: Vec<u8>,
    /// Widened inputs of an ADD.
    wide: Vec<i32>,
}

pub enum Kernel {
    Dense(dense::Dense),
    Conv2d(conv2d::Conv2d),
    DepthwiseConv2d(depthwise_conv2d::DepthwiseConv2d),
    AvgPool2d(avg_pool2d::AvgPool2d),
    MaxPool2d(max_pool2d::MaxPool2d),
    Add(add::Add),
    Reshape,
}

impl Kernel {
    pub fn prepare(model: &Model, op: &Op) -> Kernel {
        match &op.kind {
            OpKind::Dense(d) => Kernel::Dense(dense::Dense::prepare(model, op, d)),
            OpKind::Conv2d(c) => Kernel::Conv2d(conv2d::Conv2d::prepare(model, op, c)),
            OpKind::DepthwiseConv2d(c) => {
                Kernel::DepthwiseConv2d(depthwise_conv2d::DepthwiseConv2d::prepare(model, op, c))
            }
            OpKind::AvgPool2d(p) => Kernel::AvgPool2d(avg_pool2d::AvgPool2d::prepare(model, op, p)),
            OpKind::MaxPool2d(p) => Kernel::MaxPool2d(max_pool2d::MaxPool2d::prepare(model, op, p)),
            OpKind::Add(_) => Kernel::Add(add::Add::prepare(model, op)),
            OpKind::Reshape(_) => Kernel::Reshape,
        }
    }

    pub fn accumulates(&self) -> bool {
        matches!(
            self,
            Kernel::Dense(_) | Kernel::Conv2d(_) | Kernel::DepthwiseConv2d(_)
        )
    }

    /// Computes the op's output `y` from its inputs `xs`; accumulating ops leave their
    /// accumulators in `s.acc`.
    pub fn run(&self, xs: &[&[i8]], y: &mut [i8], s: &mut KernelScratch) {
        match self {
            Kernel::Dense(k) => k.run(xs[0], y, s),
            Kernel::Conv2d(k) => k.run(xs[0], y, s),
            Kernel::DepthwiseConv2d(k) => k.run(xs[0], y, s),
            Kernel::AvgPool2d(k) => k.run(xs[0], y),
            Kernel::MaxPool2d(k) => k.run(xs[0], y),
            Kernel::Add(k) => k.run(xs[0], xs[1], y, &mut s.acc, &mut s.wide),
            Kernel::Reshape => reshape::run(xs[0], y),
        }
    }
}

/// `[H, W, C]` of an op's first input (rank-1 tensors as `[1, 1, N]`).
pub(crate) fn input_hwc(model: &Model, op: &Op) -> (usize, usize, usize) {
    let t = &model.tensors[op.inputs[0]];
    t.hwc().unwrap_or((1, 1, t.len()))
}

/// `[OH, OW, O]` of an op's output.
pub(crate) fn output_hwc(model: &Model, op: &Op) -> (usize, usize, usize) {
    let t = &model.tensors[op.output];
    t.hwc().unwrap_or((1, 1, t.len()))
}

/// Centres int8 codes on the zero point: `x - Z_x`, so padding taps are exactly 0.
pub(crate) fn centre(x: &[i8], zp: i8, out: &mut Vec<i16>) {
    out.clear();
    out.extend(x.iter().map(|&v| v as i16 - zp as i16));
}
