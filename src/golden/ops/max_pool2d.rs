//! `max_pool2d` (TFLite `reference_integer_ops::MaxPool`): the largest raw code over the taps
//! inside the input, clamped.

use super::{input_hwc, output_hwc};
use crate::model::{self, Model, Op, Window};
use crate::quant::Clamp;

pub struct MaxPool2d {
    window: Window,
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    clamp: Clamp,
}

impl MaxPool2d {
    pub fn prepare(model: &Model, op: &Op, p: &model::MaxPool2d) -> MaxPool2d {
        MaxPool2d {
            window: p.window,
            input: input_hwc(model, op),
            output: output_hwc(model, op),
            clamp: op.clamp,
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8]) {
        let (h, w, c) = self.input;
        let (oh, ow, _) = self.output;
        let mut best = vec![i8::MIN; c];
        for oy in 0..oh {
            let (ky0, ky1) = self.window.valid_taps(0, oy, h);
            for ox in 0..ow {
                let (kx0, kx1) = self.window.valid_taps(1, ox, w);
                best.fill(i8::MIN);
                for ky in ky0..ky1 {
                    let iy = oy * self.window.stride[0] + ky - self.window.padding[0];
                    for kx in kx0..kx1 {
                        let ix = ox * self.window.stride[1] + kx - self.window.padding[2];
                        let src = &x[(iy * w + ix) * c..][..c];
                        for (b, &v) in best.iter_mut().zip(src) {
                            *b = (*b).max(v);
                        }
                    }
                }
                let dst = &mut y[(oy * ow + ox) * c..][..c];
                for (d, &b) in dst.iter_mut().zip(&best) {
                    *d = self.clamp.apply(b as i64);
                }
            }
        }
    }
}
