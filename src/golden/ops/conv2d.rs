//! `conv2d` (TFLite `reference_integer_ops::ConvPerChannel`), as dot products of each output
//! channel's OHWI filter with the gathered window of centred codes (padding taps are 0, which
//! is the same as skipping them).

use super::{KernelScratch, centre, dot, input_hwc, output_hwc};
use crate::model::{self, Model, Op, Window};
use crate::quant::Requant;

pub struct Conv2d {
    window: Window,
    /// Input `[H, W, C]`, output `[OH, OW, O]`.
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    /// `[O][KH * KW * C]` widened once.
    weight: Vec<i16>,
    bias: Vec<i32>,
    requant: Vec<Requant>,
    input_zp: i8,
}

impl Conv2d {
    pub fn prepare(model: &Model, op: &Op, c: &model::Conv2d) -> Conv2d {
        Conv2d {
            window: c.window,
            input: input_hwc(model, op),
            output: output_hwc(model, op),
            weight: c.weight.iter().map(|&w| w as i16).collect(),
            bias: c.bias.clone(),
            requant: (0..c.out_channels)
                .map(|o| model.requant(op, o).expect("conv2d has requantizers"))
                .collect(),
            input_zp: model.tensors[op.inputs[0]].q.zero_point,
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        let (h, w, c) = self.input;
        let (oh, ow, o) = self.output;
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [dh, dw] = self.window.dilation;
        let (pt, pl) = (self.window.padding[0], self.window.padding[2]);
        let k = kh * kw * c;
        centre(x, self.input_zp, &mut s.centred);
        s.patch.resize(k, 0);
        s.acc.resize(oh * ow * o, 0);
        for oy in 0..oh {
            for ox in 0..ow {
                // Gather the window: C contiguous codes per tap, zeros outside the input.
                for ky in 0..kh {
                    let iy = (oy * sh + ky * dh) as isize - pt as isize;
                    for kx in 0..kw {
                        let ix = (ox * sw + kx * dw) as isize - pl as isize;
                        let dst = &mut s.patch[(ky * kw + kx) * c..][..c];
                        if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                            let src = (iy as usize * w + ix as usize) * c;
                            dst.copy_from_slice(&s.centred[src..src + c]);
                        } else {
                            dst.fill(0);
                        }
                    }
                }
                let base = (oy * ow + ox) * o;
                let acc = &mut s.acc[base..base + o];
                dot::matvec(&s.patch, &self.weight, &self.bias, acc);
                for ((y, &a), rq) in y[base..base + o]
                    .iter_mut()
                    .zip(acc.iter())
                    .zip(&self.requant)
                {
                    *y = rq.apply(a);
                }
            }
        }
    }
}
