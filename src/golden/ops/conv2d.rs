//! `conv2d` (TFLite `reference_integer_ops::ConvPerChannel`): every output pixel's window is
//! gathered into one row of codes (padding taps hold the code of `Z_x`, which the folded bias
//! cancels: the same as skipping them), then one int8 matrix product with the OHWI filters
//! ([`gemm`]) gives every accumulator.

use super::gemm::{self, Packed};
use super::{KernelScratch, input_hwc, output_hwc};
use crate::model::{self, Model, Op, Window};
use crate::quant::Requant;

pub struct Conv2d {
    window: Window,
    /// Input `[H, W, C]`, output `[OH, OW, O]`.
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    weight: Packed,
    requant: Vec<Requant>,
    input_zp: i8,
}

impl Conv2d {
    pub fn prepare(model: &Model, op: &Op, c: &model::Conv2d) -> Conv2d {
        let zx = model.tensors[op.inputs[0]].q.zero_point;
        Conv2d {
            window: c.window,
            input: input_hwc(model, op),
            output: output_hwc(model, op),
            weight: Packed::new(&c.weight, c.out_channels, c.fan_in(), &c.bias, zx),
            requant: (0..c.out_channels)
                .map(|o| model.requant(op, o).expect("conv2d has requantizers"))
                .collect(),
            input_zp: zx,
        }
    }

    /// A 1x1 window at stride 1 without padding reads each input pixel as it is.
    fn pointwise(&self) -> bool {
        self.window.kernel == [1, 1]
            && self.window.stride == [1, 1]
            && self.window.padding == [0; 4]
            && self.weight.kp == self.input.2
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        let (oh, ow, o) = self.output;
        s.codes.clear();
        s.codes.extend(x.iter().map(|&v| gemm::code(v)));
        s.acc.resize(oh * ow * o, 0);
        if self.pointwise() {
            gemm::gemm(&s.codes, oh * ow, &self.weight, &mut s.acc);
        } else {
            self.gather(s);
            gemm::gemm(&s.patches, oh * ow, &self.weight, &mut s.acc);
        }
        for (i, (y, &a)) in y.iter_mut().zip(&s.acc).enumerate() {
            *y = self.requant[i % o].apply(a);
        }
    }

    /// One row of `kp` codes per output pixel, in the filters' (ky, kx, c) order.
    fn gather(&self, s: &mut KernelScratch) {
        let (h, w, c) = self.input;
        let (oh, ow, _) = self.output;
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [dh, dw] = self.window.dilation;
        let (pt, pl) = (self.window.padding[0], self.window.padding[2]);
        let kp = self.weight.kp;
        let pad = gemm::code(self.input_zp);
        s.patches.resize(oh * ow * kp, 0);
        let codes = &s.codes;
        for (p, row) in s.patches.chunks_exact_mut(kp).enumerate() {
            let (oy, ox) = (p / ow, p % ow);
            let x0 = (ox * sw) as isize - pl as isize;
            for ky in 0..kh {
                let iy = (oy * sh + ky * dh) as isize - pt as isize;
                let dst = &mut row[ky * kw * c..(ky + 1) * kw * c];
                if iy < 0 || iy as usize >= h {
                    dst.fill(pad);
                    continue;
                }
                let line = iy as usize * w;
                let x_last = x0 + ((kw - 1) * dw) as isize;
                if dw == 1 && x0 >= 0 && (x_last as usize) < w {
                    // The whole kernel row is inside: KW * C contiguous codes.
                    let src = (line + x0 as usize) * c;
                    dst.copy_from_slice(&codes[src..src + kw * c]);
                    continue;
                }
                for kx in 0..kw {
                    let ix = x0 + (kx * dw) as isize;
                    let d = &mut dst[kx * c..(kx + 1) * c];
                    if ix < 0 || ix as usize >= w {
                        d.fill(pad);
                    } else {
                        let src = (line + ix as usize) * c;
                        d.copy_from_slice(&codes[src..src + c]);
                    }
                }
            }
        }
    }
}
