//! Dense near-ties: where an imported dense op's `single` rescale and LiteRT `BUILTIN_REF`'s
//! FULLY_CONNECTED differ.
//!
//! The reference FULLY_CONNECTED of LiteRT 2.3 requantizes in float64:
//! `y = clamp(round_half_away(double(a) * M) + Z_y, lo, hi)` with
//! `M = double(S_x) * double(S_w[c]) / double(S_y)` (measured: per-tensor and per-channel
//! weights, on accumulators crafted to separate it from every `(m, s)` rule). `single` computes
//! `(a * m + 2^(s-1)) >> s` with `m * 2^-s` within `2^-32` (relative) of `M` at k = 31, so the
//! two agree except on accumulators whose `a * M` lies within about `|a * M| * 2^-32` of a
//! half-integer, and no `(m, s)` agrees on every accumulator. This module counts those
//! accumulators exactly, over every reachable accumulator of every channel (the range
//! [`crate::model::ops::weighted_sum_range`] gives for any int8 input), without enumerating
//! the range: both rules are non-decreasing step functions of `a`, so for each output step
//! `t -> t + 1` inside the clamp window the accumulators where they disagree are exactly those
//! between the two rules' first accumulators reaching `t + 1`, found a few steps from
//! `(t + 1/2) / M` (or by bisection when further).

use crate::model::ops::weighted_sum_range;
use crate::model::{Model, Op, OpKind};
use crate::quant::{Clamp, Dyadic, Rounding};
use serde::Serialize;
use std::fmt;

/// Most examples kept in a report.
const MAX_EXAMPLES: usize = 10;

/// The count over a model's dense ops.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NearTies {
    /// Reachable accumulators (summed over ops and channels) whose clamped outputs differ.
    pub differ: u64,
    /// Dense ops and output channels checked.
    pub ops: usize,
    pub channels: usize,
    /// The first few, in op and channel order.
    pub examples: Vec<NearTie>,
}

/// One accumulator where the two rules differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NearTie {
    pub op: String,
    pub channel: usize,
    pub acc: i64,
    /// The output code under the imported `(m, s)` and `single` rounding.
    pub single: i8,
    /// The output code under BUILTIN_REF's `round(double(a) * M)`.
    pub float64: i8,
}

impl fmt::Display for NearTie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "op {:?} channel {}, a = {}: single {} vs float64 {}",
            self.op, self.channel, self.acc, self.single, self.float64
        )
    }
}

/// Counts the near-ties of every op of `model` for which `from_fc[i]` is set (ops that came
/// from a FULLY_CONNECTED: `dense`, or a `conv2d` 1x1 applying one dense to several rows) and
/// whose rounding is `single`. Ops without `weight_scale` are skipped (their real M is
/// unknown).
pub fn count(model: &Model, from_fc: &[bool]) -> NearTies {
    let mut out = NearTies::default();
    for (op, _) in model
        .ops
        .iter()
        .zip(from_fc)
        .filter(|(op, fc)| **fc && model.op_rescale(op).rounding == Rounding::Single)
    {
        let Some(reals) = model.real_factors(op) else {
            continue;
        };
        let rows = channel_weights(op);
        if rows.is_empty() {
            continue;
        }
        out.ops += 1;
        let zx = model.tensors[op.inputs[0]].q.zero_point;
        let zy = model.tensors[op.output].q.zero_point;
        let ch = op.kind.channels().expect("dense and conv2d have channels");
        for (c, w) in rows.into_iter().enumerate() {
            out.channels += 1;
            let range = weighted_sum_range(w.iter().copied(), ch.bias[c], zx);
            let mut examples = Vec::new();
            out.differ += channel(range, ch.mult(c), reals[c], zy, op.clamp, &mut examples);
            for acc in examples {
                if out.examples.len() < MAX_EXAMPLES {
                    out.examples.push(NearTie {
                        op: op.name.clone(),
                        channel: c,
                        acc,
                        single: output(single(acc, ch.mult(c)), zy, op.clamp),
                        float64: output(float64(acc, reals[c]), zy, op.clamp),
                    });
                }
            }
        }
    }
    out
}

/// Per output channel, its weights (dense rows, conv2d filters).
fn channel_weights(op: &Op) -> Vec<&[i8]> {
    match &op.kind {
        OpKind::Dense(d) => (0..d.out_features).map(|c| d.row(c)).collect(),
        OpKind::Conv2d(c) => (0..c.out_channels).map(|o| c.filter(o)).collect(),
        _ => Vec::new(),
    }
}

/// `single`: `(a m + 2^(s-1)) >> s` (exact, i128).
fn single(a: i64, d: Dyadic) -> i64 {
    let p = a as i128 * d.m as i128;
    let r = if d.s == 0 {
        p
    } else {
        (p + (1i128 << (d.s - 1))) >> d.s
    };
    r.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// BUILTIN_REF's FULLY_CONNECTED: `round(double(a) * M)`, C `round` (half away from zero).
fn float64(a: i64, real: f64) -> i64 {
    // `as` saturates; every reachable accumulator times M is far inside i64 anyway.
    ((a as f64) * real).round() as i64
}

fn output(r: i64, zy: i8, clamp: Clamp) -> i8 {
    clamp.apply(r.saturating_add(zy as i64))
}

/// The smallest `a` in `[lo, hi + 1]` with `rule(a) >= target` (`hi + 1` when none), for a
/// non-decreasing `rule`: a few steps from `guess` (where `a * M` crosses the step), or a
/// bisection of the whole range when the step is further away than that.
fn first_reaching(lo: i64, hi: i64, target: i64, guess: f64, rule: impl Fn(i64) -> i64) -> i64 {
    const STEPS: usize = 8;
    let reaches = |a: i64| a > hi || rule(a) >= target;
    let mut a = if guess.is_nan() {
        lo
    } else {
        // Saturating float -> int, then into the range.
        (guess.ceil() as i64).clamp(lo, hi.saturating_add(1))
    };
    if reaches(a) {
        for _ in 0..STEPS {
            if a == lo || !reaches(a - 1) {
                return a;
            }
            a -= 1;
        }
    } else {
        for _ in 0..STEPS {
            a += 1;
            if reaches(a) {
                return a;
            }
        }
    }
    let (mut a, mut b) = (lo, hi + 1);
    while a < b {
        let mid = a + (b - a) / 2;
        if reaches(mid) {
            b = mid;
        } else {
            a = mid + 1;
        }
    }
    a
}

/// Accumulators in `range` whose clamped outputs differ between `single` with `d` and
/// float64 with `real`; the first few are appended to `examples`.
fn channel(
    (lo, hi): (i64, i64),
    d: Dyadic,
    real: f64,
    zy: i8,
    clamp: Clamp,
    examples: &mut Vec<i64>,
) -> u64 {
    // Clamped outputs differ iff some step v - 1 -> v with lo < v <= hi (v an output code) is
    // crossed by one rule and not the other, i.e. for r = v - Z_y - 1 = t, one rule reaches
    // t + 1 and the other does not.
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for v in (clamp.lo as i64 + 1)..=(clamp.hi as i64) {
        let target = v - zy as i64;
        // Both rules step to `target` where `a * M` crosses `target - 1/2`.
        let guess = (target as f64 - 0.5) / real;
        let a_single = first_reaching(lo, hi, target, guess, |a| single(a, d));
        let a_float = first_reaching(lo, hi, target, guess, |a| float64(a, real));
        if a_single != a_float {
            spans.push((a_single.min(a_float), a_single.max(a_float)));
        }
    }
    // At coarse k one span may cover several steps' spans: count their union.
    spans.sort_unstable();
    let mut total = 0u64;
    let mut end = i64::MIN;
    for (a, b) in spans {
        let start = a.max(end);
        if b > start {
            total += (b - start) as u64;
            let mut x = start;
            while x < b && examples.len() < MAX_EXAMPLES {
                examples.push(x);
                x += 1;
            }
        }
        end = end.max(b);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::derive_multiplier;

    /// Brute force over every accumulator of small ranges, many M and clamps: the span count
    /// equals the number of accumulators whose clamped outputs differ. Half of the cases sit
    /// on a half-integer of `a * M` with a tiny M, the regime where k = 31 near-ties are frequent.
    #[test]
    fn span_count_equals_brute_force() {
        let mut rng = crate::rng::Rng::new(7);
        let mut nonzero = [0usize; 2];
        for case in 0..600 {
            let k = [31, 31, 31, 12, 4, 2][case % 6];
            let near_tie = case % 2 == 0;
            let (real, lo, clamp, zy);
            if near_tie {
                // M ~ 1e-9: at |t| ~ 100 the two rules' thresholds lie up to ~20
                // accumulators apart ((t + 1/2) / M times m 2^-s's relative error, < 2^-32).
                real = (rng.unit() + 0.5) * 1e-9;
                let t = rng.range(-100, 100);
                lo = ((t as f64 + 0.5) / real).round() as i64 - rng.range(0, 3000);
                clamp = Clamp::NONE;
                zy = 0;
            } else {
                // M over many octaves.
                real = (rng.unit() * 0.999 + 0.001) * (-(rng.range(0, 19) as f64)).exp2();
                lo = -rng.range(0, 3000) * (1 << rng.range(0, 7));
                let (a, b) = (rng.i8(), rng.i8());
                clamp = Clamp {
                    lo: a.min(b),
                    hi: a.max(b),
                };
                zy = rng.i8();
            }
            let d = derive_multiplier(real, k).unwrap().mult;
            let hi = lo + rng.range(1, 6000);
            let brute = (lo..=hi)
                .filter(|&a| output(single(a, d), zy, clamp) != output(float64(a, real), zy, clamp))
                .count() as u64;
            let mut ex = Vec::new();
            let got = channel((lo, hi), d, real, zy, clamp, &mut ex);
            assert_eq!(got, brute, "case {case}: M {real} k {k} range {lo}..={hi}");
            assert_eq!(ex.len() as u64, got.min(MAX_EXAMPLES as u64));
            for a in ex {
                assert_ne!(
                    output(single(a, d), zy, clamp),
                    output(float64(a, real), zy, clamp)
                );
            }
            if got > 0 {
                nonzero[usize::from(k == 31)] += 1;
            }
        }
        // The cases exercise both regimes (k = 31 near-ties and coarse-k spans).
        assert!(nonzero[0] >= 50 && nonzero[1] >= 20, "{nonzero:?}");
    }
}
