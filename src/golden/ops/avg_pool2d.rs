//! `avg_pool2d` (TFLite `reference_integer_ops::AveragePool`): the rounded mean of the raw
//! codes over the taps inside the input, counted per window ([`quant::average`]).

use super::{input_hwc, output_hwc};
use crate::model::{self, Model, Op, Window};
use crate::quant::{self, Clamp};

pub struct AvgPool2d {
    window: Window,
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    clamp: Clamp,
}

impl AvgPool2d {
    pub fn prepare(model: &Model, op: &Op, p: &model::AvgPool2d) -> AvgPool2d {
        AvgPool2d {
            window: p.window,
            input: input_hwc(model, op),
            output: output_hwc(model, op),
            clamp: op.clamp,
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8]) {
        let (h, w, c) = self.input;
        let (oh, ow, _) = self.output;
        let mut sum = vec![0i32; c];
        for oy in 0..oh {
            let (ky0, ky1) = self.window.valid_taps(0, oy, h);
            for ox in 0..ow {
                let (kx0, kx1) = self.window.valid_taps(1, ox, w);
                sum.fill(0);
                for ky in ky0..ky1 {
                    let iy = oy * self.window.stride[0] + ky - self.window.padding[0];
                    for kx in kx0..kx1 {
                        let ix = ox * self.window.stride[1] + kx - self.window.padding[2];
                        let src = &x[(iy * w + ix) * c..][..c];
                        for (s, &v) in sum.iter_mut().zip(src) {
                            *s += v as i32;
                        }
                    }
                }
                let n = ((ky1 - ky0) * (kx1 - kx0)) as u32;
                let dst = &mut y[(oy * ow + ox) * c..][..c];
                for (d, &s) in dst.iter_mut().zip(&sum) {
                    *d = self.clamp.apply(quant::average(s, n) as i64);
                }
            }
        }
    }
}
