//! `conv2d` (TFLite CONV_2D, `reference_integer_ops::ConvPerChannel`): `weight` is OHWI
//! `[O][KH][KW][C]`;
//! `acc[oy][ox][o] = b[o] + sum_{ky,kx,c} (x[iy][ix][c] - Z_x) * w[o][ky][kx][c]` with
//! `iy = oy*SH - pad_top + ky*DH`, `ix = ox*SW - pad_left + kx*DW`, over taps inside the input.

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::{ChannelArrays, Channels, Kind, Window};
use crate::quant::Dyadic;
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub window: Window,
    pub in_channels: usize,
    pub out_channels: usize,
    /// OHWI `[out_channels][KH][KW][in_channels]`.
    pub weight: Vec<i8>,
    pub bias: Vec<i32>,
    pub multiplier: Vec<u32>,
    pub shift: Vec<u32>,
}

impl Conv2d {
    /// Weights per output channel: `KH * KW * C`.
    pub fn fan_in(&self) -> usize {
        self.window.taps() * self.in_channels
    }

    /// The `[KH][KW][C]` weights of output channel `o`.
    pub fn filter(&self, o: usize) -> &[i8] {
        let n = self.fan_in();
        &self.weight[o * n..(o + 1) * n]
    }

    pub fn mult(&self, c: usize) -> Dyadic {
        super::super::dyadic(&self.multiplier, &self.shift, c)
    }

    fn shape_check(&self, io: &Io) -> std::result::Result<(), String> {
        self.window.check(true)?;
        let (h, w, c) = super::input_hwc(io, 0)?;
        if c != self.in_channels {
            return Err(format!(
                "weight has {} input channels but input {:?} has {c}",
                self.in_channels,
                io.input().name
            ));
        }
        let (oh, ow) = self.window.out_hw(h, w)?;
        super::check_output_shape(io, &[oh, ow, self.out_channels])
    }
}

impl Kind for Conv2d {
    const NAME: &'static str = "conv2d";
    const INPUTS: usize = 1;

    fn parse(c: &Cursor, io: &Io) -> Result<Self> {
        let window = Window::parse(c, true)?;
        let in_channels = io.input().channels();
        let out_channels = io.output.channels();
        // Shapes are checked with the whole graph (`check`); here only the array lengths.
        let mut op = Conv2d {
            window,
            in_channels,
            out_channels,
            weight: Vec::new(),
            bias: Vec::new(),
            multiplier: Vec::new(),
            shift: Vec::new(),
        };
        let [kh, kw] = window.kernel;
        op.weight = super::parse_weight(c, &[out_channels, kh, kw, in_channels])?;
        let ch = ChannelArrays::parse(c, out_channels)?;
        (op.bias, op.multiplier, op.shift) = (ch.bias, ch.multiplier, ch.shift);
        Ok(op)
    }

    fn write_fields(&self, out: &mut String) {
        self.window.write_fields(out, true);
        super::write_list(out, "multiplier", &self.multiplier);
        super::write_list(out, "shift", &self.shift);
        super::write_list(out, "bias", &self.bias);
        let [kh, kw] = self.window.kernel;
        super::write_weight(
            out,
            &self.weight,
            &[self.out_channels, kh, kw, self.in_channels],
        );
    }

    fn check(&self, io: &Io, _op: &Op) -> std::result::Result<(), String> {
        self.shape_check(io)?;
        if self.weight.len() != self.out_channels * self.fan_in() {
            return Err(format!(
                "weight has {} values, expected O x KH x KW x C = {}",
                self.weight.len(),
                self.out_channels * self.fan_in()
            ));
        }
        super::check_channel_lengths(self.out_channels, &self.bias, &self.multiplier, &self.shift)?;
        for o in 0..self.out_channels {
            let sum = self.filter(o).iter().map(|&w| (w as i64).abs()).sum();
            super::check_acc_bound(o, sum, self.bias[o])?;
        }
        Ok(())
    }

    fn dyadics(&self) -> Vec<Dyadic> {
        (0..self.out_channels).map(|c| self.mult(c)).collect()
    }

    fn acc_ranges(&self, zp: i8) -> Vec<(i64, i64)> {
        (0..self.out_channels)
            .map(|o| super::weighted_sum_range(self.filter(o).iter().copied(), self.bias[o], zp))
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
