//! `dense` (TFLite FULLY_CONNECTED, `reference_integer_ops::FullyConnected`): the input is
//! flattened row-major, `acc[o] = b[o] + sum_i (x[i] - Z_x) * w[o][i]`, then the per-channel
//! requantizer. `weight` is `[O][N]`, N the input's element count, O the output's.

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::{ChannelArrays, Channels, Kind};
use crate::quant::Dyadic;
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub in_features: usize,
    pub out_features: usize,
    /// Row-major `[out_features][in_features]`.
    pub weight: Vec<i8>,
    pub bias: Vec<i32>,
    pub multiplier: Vec<u32>,
    pub shift: Vec<u32>,
}

impl Dense {
    /// The weights of output channel `c`.
    pub fn row(&self, c: usize) -> &[i8] {
        &self.weight[c * self.in_features..(c + 1) * self.in_features]
    }

    pub fn mult(&self, c: usize) -> Dyadic {
        super::super::dyadic(&self.multiplier, &self.shift, c)
    }

    /// Worst-case |accumulator| of channel `c` (DESIGN's i32 bound).
    pub fn acc_bound(&self, c: usize) -> i64 {
        crate::quant::accumulator_bound(self.row(c), self.bias[c])
    }

    /// Exact reachable accumulator range of channel `c` over all int8 inputs, given the input
    /// zero point: each term `(x - Z_x) * w` is extremal at x = -128 or x = 127.
    pub fn acc_range(&self, c: usize, input_zp: i8) -> (i64, i64) {
        acc_range(self.row(c), self.bias[c], input_zp)
    }
}

/// Exact range of `b + sum (x - Z) * w` over int8 `x`.
pub fn acc_range(weights: &[i8], bias: i32, input_zp: i8) -> (i64, i64) {
    super::weighted_sum_range(weights.iter().copied(), bias, input_zp)
}

impl Kind for Dense {
    const NAME: &'static str = "dense";
    const INPUTS: usize = 1;

    fn parse(c: &Cursor, io: &Io) -> Result<Self> {
        let (n, o) = (io.input().len(), io.output.len());
        let weight = super::parse_weight(c, &[o, n])?;
        let ch = ChannelArrays::parse(c, o)?;
        Ok(Dense {
            in_features: n,
            out_features: o,
            weight,
            bias: ch.bias,
            multiplier: ch.multiplier,
            shift: ch.shift,
        })
    }

    fn write_fields(&self, out: &mut String) {
        super::write_list(out, "multiplier", &self.multiplier);
        super::write_list(out, "shift", &self.shift);
        super::write_list(out, "bias", &self.bias);
        super::write_weight(out, &self.weight, &[self.out_features, self.in_features]);
    }

    fn check(&self, io: &Io, _op: &Op) -> std::result::Result<(), String> {
        let (n, o) = (self.in_features, self.out_features);
        if io.input().len() != n {
            return Err(format!(
                "weight rows have {n} entries but input {:?} has {} elements",
                io.input().name,
                io.input().len()
            ));
        }
        if io.output.len() != o || o == 0 {
            return Err(format!(
                "weight has {o} rows but output {:?} has {} elements",
                io.output.name,
                io.output.len()
            ));
        }
        if self.weight.len() != n * o {
            return Err(format!(
                "weight has {} values, expected {o} x {n}",
                self.weight.len()
            ));
        }
        super::check_channel_lengths(o, &self.bias, &self.multiplier, &self.shift)?;
        for c in 0..o {
            let sum = self.row(c).iter().map(|&w| (w as i64).abs()).sum();
            super::check_acc_bound(c, sum, self.bias[c])?;
        }
        Ok(())
    }

    fn dyadics(&self) -> Vec<Dyadic> {
        (0..self.out_features).map(|c| self.mult(c)).collect()
    }

    fn acc_ranges(&self, zp: i8) -> Vec<(i64, i64)> {
        (0..self.out_features)
            .map(|c| self.acc_range(c, zp))
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
