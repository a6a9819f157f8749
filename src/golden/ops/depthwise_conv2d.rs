//! `depthwise_conv2d` (TFLite `reference_integer_ops::DepthwiseConvPerChannel`): output
//! channel `o = c * DM + d` reads input channel `c`.

use super::{KernelScratch, centre, input_hwc, output_hwc};
use crate::model::{self, Model, Op, Window};
use crate::quant::RequantLanes;

pub struct DepthwiseConv2d {
    window: Window,
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    dm: usize,
    /// `[KH * KW][O]` widened once.
    weight: Vec<i32>,
    bias: Vec<i32>,
    requant: RequantLanes,
    input_zp: i8,
}

impl DepthwiseConv2d {
    pub fn prepare(model: &Model, op: &Op, c: &model::DepthwiseConv2d) -> DepthwiseConv2d {
        DepthwiseConv2d {
            window: c.window,
            input: input_hwc(model, op),
            output: output_hwc(model, op),
            dm: c.depth_multiplier,
            weight: c.weight.iter().map(|&w| w as i32).collect(),
            bias: c.bias.clone(),
            requant: RequantLanes::new(
                &(0..c.out_channels())
                    .map(|o| model.requant(op, o).expect("depthwise has requantizers"))
                    .collect::<Vec<_>>(),
            ),
            input_zp: model.tensors[op.inputs[0]].q.zero_point,
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::avx512() {
                // SAFETY: the CPU has the features `run_avx512` is compiled for.
                unsafe { self.run_avx512(x, y, s) };
                return;
            }
        }
        self.run_lanes(x, y, s);
    }

    /// The same loops compiled for 16 x i32 lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    unsafe fn run_avx512(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        self.run_lanes(x, y, s);
    }

    #[inline(always)]
    fn run_lanes(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        let (h, w, c) = self.input;
        let (oh, ow, o) = self.output;
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [dh, dw] = self.window.dilation;
        let (pt, pl) = (self.window.padding[0], self.window.padding[2]);
        centre(x, self.input_zp, &mut s.centred);
        s.acc.resize(oh * ow * o, 0);
        for oy in 0..oh {
            for ox in 0..ow {
                let base = (oy * ow + ox) * o;
                let acc = &mut s.acc[base..base + o];
                acc.copy_from_slice(&self.bias);
                for ky in 0..kh {
                    let iy = (oy * sh + ky * dh) as isize - pt as isize;
                    if iy < 0 || iy as usize >= h {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * sw + kx * dw) as isize - pl as isize;
                        if ix < 0 || ix as usize >= w {
                            continue;
                        }
                        let src = &s.centred[(iy as usize * w + ix as usize) * c..][..c];
                        let wt = &self.weight[(ky * kw + kx) * o..][..o];
                        if self.dm == 1 {
                            for ((a, &xv), &wv) in acc.iter_mut().zip(src).zip(wt) {
                                *a = a.wrapping_add(xv as i32 * wv);
                            }
                        } else {
                            for (ch, &xv) in src.iter().enumerate() {
                                for d in 0..self.dm {
                                    let oc = ch * self.dm + d;
                                    acc[oc] = acc[oc].wrapping_add(xv as i32 * wt[oc]);
                                }
                            }
                        }
                    }
                }
            }
        }
        self.requant.apply(&s.acc, y);
    }
}
