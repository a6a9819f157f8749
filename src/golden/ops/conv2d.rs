//! `conv2d` (TFLite `reference_integer_ops::ConvPerChannel`) as one int8 matrix product of the
//! OHWI filters with every output pixel's window ([`gemm`]). The input is copied once into a
//! buffer of codes with the padding around it holding the code of `Z_x` (which the folded
//! bias cancels: the same as skipping those taps); the product then reads every window in
//! place through offsets (implicit im2col). When the channels are not a multiple of four (a
//! first layer's 1 or 3), the windows are gathered into rows instead.

use super::gemm::{self, Offsets, Packed};
use super::{KernelScratch, input_hwc, output_hwc};
use crate::model::{self, Model, Op, Window};
use crate::quant::RequantLanes;

pub struct Conv2d {
    window: Window,
    /// Input `[H, W, C]`, output `[OH, OW, O]`.
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    weight: Packed,
    requant: RequantLanes,
    input_zp: i8,
    /// Reads the padded input in place (C a multiple of 4), else gathered rows.
    implicit: bool,
    at: Offsets,
}

impl Conv2d {
    pub fn prepare(model: &Model, op: &Op, c: &model::Conv2d) -> Conv2d {
        let zx = model.tensors[op.inputs[0]].q.zero_point;
        let input = input_hwc(model, op);
        let output = output_hwc(model, op);
        let weight = Packed::new(&c.weight, c.out_channels, c.fan_in(), &c.bias, zx);
        let implicit = input.2.is_multiple_of(4);
        let at = if implicit {
            implicit_offsets(&c.window, input, output)
        } else {
            Offsets::rows(output.0 * output.1, weight.kp)
        };
        Conv2d {
            window: c.window,
            input,
            output,
            weight,
            requant: RequantLanes::new(
                &(0..c.out_channels)
                    .map(|o| model.requant(op, o).expect("conv2d has requantizers"))
                    .collect::<Vec<_>>(),
            ),
            input_zp: zx,
            implicit,
            at,
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        let (oh, ow, o) = self.output;
        s.acc.resize(oh * ow * o, 0);
        if self.implicit {
            self.pad(x, &mut s.codes);
            gemm::gemm(&s.codes, &self.at, &self.weight, &mut s.acc);
        } else {
            s.codes.clear();
            s.codes.extend(x.iter().map(|&v| gemm::code(v)));
            self.gather(s);
            gemm::gemm(&s.patches, &self.at, &self.weight, &mut s.acc);
        }
        self.requant.apply(&s.acc, y);
    }

    /// The input as codes inside a border of padding codes.
    fn pad(&self, x: &[i8], codes: &mut Vec<u8>) {
        let (h, w, c) = self.input;
        let [pt, pb, pl, pr] = self.window.padding;
        let wp = w + pl + pr;
        codes.clear();
        codes.resize((h + pt + pb) * wp * c, gemm::code(self.input_zp));
        for (iy, row) in x.chunks_exact(w * c).enumerate() {
            let dst = &mut codes[((iy + pt) * wp + pl) * c..][..w * c];
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = gemm::code(v);
            }
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

/// Offsets of the windows in the padded input (`[H + pt + pb][W + pl + pr][C]`): window origin
/// per output pixel, and per group of four weights (four channels of one tap) its tap's offset.
fn implicit_offsets(
    win: &Window,
    (_, w, c): (usize, usize, usize),
    (oh, ow, _): (usize, usize, usize),
) -> Offsets {
    let wp = w + win.padding[2] + win.padding[3];
    let [_, kw] = win.kernel;
    let [sh, sw] = win.stride;
    let [dh, dw] = win.dilation;
    let pixel = (0..oh * ow)
        .map(|p| ((p / ow) * sh * wp + (p % ow) * sw) * c)
        .collect();
    let group = (0..win.taps() * c / 4)
        .map(|g| {
            let (t, c0) = (4 * g / c, 4 * g % c);
            ((t / kw) * dh * wp + (t % kw) * dw) * c + c0
        })
        .collect();
    Offsets { pixel, group }
}
