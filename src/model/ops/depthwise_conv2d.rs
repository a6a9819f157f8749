//! `depthwise_conv2d` (TFLite DEPTHWISE_CONV_2D, `reference_integer_ops::DepthwiseConvPerChannel`):
//! `weight` is `[KH][KW][O]` (TFLite's leading 1 dropped), `O = C * DM`; output channel
//! `o = c * DM + d` reads input channel `c`:
//! `acc[oy][ox][o] = b[o] + sum_{ky,kx} (x[iy][ix][o / DM] - Z_x) * w[ky][kx][o]`.

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::{ChannelArrays, Channels, Kind, Window};
use crate::quant::Dyadic;
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct DepthwiseConv2d {
    pub window: Window,
    pub in_channels: usize,
    /// `DM`: output channels per input channel.
    pub depth_multiplier: usize,
    /// `[KH][KW][in_channels * depth_multiplier]`.
    pub weight: Vec<i8>,
    pub bias: Vec<i32>,
    pub multiplier: Vec<u32>,
    pub shift: Vec<u32>,
}

impl DepthwiseConv2d {
    pub fn out_channels(&self) -> usize {
        self.in_channels * self.depth_multiplier
    }

    /// Weight of tap `t = ky * KW + kx`, output channel `o`.
    #[inline]
    pub fn w(&self, t: usize, o: usize) -> i8 {
        self.weight[t * self.out_channels() + o]
    }

    pub fn mult(&self, c: usize) -> Dyadic {
        super::super::dyadic(&self.multiplier, &self.shift, c)
    }

    fn shape_check(&self, io: &Io) -> std::result::Result<(), String> {
        self.window.check(true)?;
        let (h, w, c) = super::input_hwc(io, 0)?;
        if c != self.in_channels {
            return Err(format!(
                "weight is for {} input channels but input {:?} has {c}",
                self.in_channels,
                io.input().name
            ));
        }
        let (oh, ow) = self.window.out_hw(h, w)?;
        super::check_output_shape(io, &[oh, ow, self.out_channels()])
    }
}

impl Kind for DepthwiseConv2d {
    const NAME: &'static str = "depthwise_conv2d";
    const INPUTS: usize = 1;

    fn parse(c: &Cursor, io: &Io) -> Result<Self> {
        let window = Window::parse(c, true)?;
        let in_channels = io.input().channels();
        let out = io.output.channels();
        // Shapes (and so the depth multiplier) are checked with the whole graph (`check`);
        // here only the array lengths. A non-integer multiplier leaves 0, which `check` names.
        let mut op = DepthwiseConv2d {
            window,
            in_channels,
            depth_multiplier: if out.is_multiple_of(in_channels) {
                out / in_channels
            } else {
                0
            },
            weight: Vec::new(),
            bias: Vec::new(),
            multiplier: Vec::new(),
            shift: Vec::new(),
        };
        let [kh, kw] = window.kernel;
        op.weight = super::parse_weight(c, &[kh, kw, out])?;
        let ch = ChannelArrays::parse(c, out)?;
        (op.bias, op.multiplier, op.shift) = (ch.bias, ch.multiplier, ch.shift);
        Ok(op)
    }

    fn write_fields(&self, out: &mut String) {
        self.window.write_fields(out, true);
        super::write_list(out, "multiplier", &self.multiplier);
        super::write_list(out, "shift", &self.shift);
        super::write_list(out, "bias", &self.bias);
        let [kh, kw] = self.window.kernel;
        super::write_weight(out, &self.weight, &[kh, kw, self.out_channels()]);
    }

    fn check(&self, io: &Io, _op: &Op) -> std::result::Result<(), String> {
        let out = io.output.channels();
        if self.depth_multiplier == 0 || out != self.out_channels() {
            return Err(format!(
                "output {:?} has {out} channels, not the input's {} times a whole depth multiplier",
                io.output.name, self.in_channels
            ));
        }
        self.shape_check(io)?;
        let o = self.out_channels();
        if self.weight.len() != self.window.taps() * o {
            return Err(format!(
                "weight has {} values, expected KH x KW x O = {}",
                self.weight.len(),
                self.window.taps() * o
            ));
        }
        super::check_channel_lengths(o, &self.bias, &self.multiplier, &self.shift)?;
        for c in 0..o {
            let sum = (0..self.window.taps())
                .map(|t| (self.w(t, c) as i64).abs())
                .sum();
            super::check_acc_bound(c, sum, self.bias[c])?;
        }
        Ok(())
    }

    fn dyadics(&self) -> Vec<Dyadic> {
        (0..self.out_channels()).map(|c| self.mult(c)).collect()
    }

    fn acc_ranges(&self, zp: i8) -> Vec<(i64, i64)> {
        (0..self.out_channels())
            .map(|o| {
                let taps = (0..self.window.taps()).map(|t| self.w(t, o));
                super::weighted_sum_range(taps, self.bias[o], zp)
            })
            .collect()
    }

    fn set_dyadics(&mut self, ds: &[Dyadic]) {
        self.multiplier = ds.iter().map(|d| d.m).collect();
        self.shift = ds.iter().map(|d| d.s).collect();
    }

    fn channels(&self) -> Option<Channels<'_>> {
        Some(Channels {
            bias: &self.bias,
            multiplier: &self.multiplier,
            shift: &self.shift,
        })
    }
}
