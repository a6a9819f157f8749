//! Analytical cost model: iCE40 LUT4s of a requantizer (`rf_requant` with its parameters and
//! ROM) from the plan, without running yosys.
//!
//! Like FINN's resource estimates, the model counts the structures the template instantiates
//! and weighs each by a fitted LUT cost:
//!
//! - a runtime multiplier (time-shared lanes): one partial-product row of `acc_bits` bits per
//!   bit of m that is not 0 in every channel. yosys propagates the case ROM's constant output
//!   bits through the operand registers, so only the bits that vary between channels, or are 1
//!   in all of them, reach the multiplier;
//! - a baked constant multiply: one `acc_bits`-bit adder per extra digit of m (its set bits in
//!   the `mul` form: yosys 0.23 does not recode constants; its CSD digits in the `csd` form);
//! - the variable right shift (time-shared lanes): `r_bits` 2:1 multiplexers per shift bit that
//!   varies between channels;
//! - the linear logic on the rescaled value (rounding adder, saturation, zero point: `r_bits`),
//!   and for `double` rounding the SRDHM stage;
//! - per lane, a constant and (time-shared) an accumulator-width term, which absorb what the
//!   linear terms over-count once ABC shares logic between them.
//!
//! The per-channel forms read their constants from a ROM (`rf_requant` FORM 2/3). Synthesized
//! alone with `-nobram` (as `ratflow synth --requant-only` does), yosys turns that ROM into
//! logic and propagates its constant bits just as it did through the case ROMs the model was
//! first fitted on, so the same features apply; `ratflow synth` prints the estimate beside the
//! measurement with its error (docs/rtl.md gives the figures). Other library modules (window,
//! MAC engines, pools, add) have no analytical model: `ratflow synth` reports their measured
//! shares of the whole design instead.
//!
//! The CSD digit ROM (`csd-rom`) is not covered: its cost depends on the digit positions' spread
//! per slot, and it is reported without an estimate.
//!
//! The weights were fitted by least squares on relative error to yosys 0.23 `synth_ice40`
//! (requantizers alone, ROMs in LUTs) on random models and on the trained MNIST network exported
//! at every k with minimal and 32-bit accumulators and P = 1 and 16;
//! `cargo run --release --example calibrate_estimate` re-measures, refits and prints the weights
//! and the errors on held-out widths. `ratflow synth` and the flow report show the estimate next
//! to the measured figure with its error.

use crate::quant::csd;
use crate::rtl::{OpPlan, Plan};
use serde::{Deserialize, Serialize};

/// Number of features of [`features`].
pub const N: usize = 8;

/// LUT4s per unit of each feature, in [`features`] order.
pub const WEIGHTS: [f64; N] = [
    2.8577, 1.2694, 2.0780, 1.4299, -15.2757, -3.8800, 1.8537, -7.9393,
];

/// Names of the features, for the calibration report.
pub const FEATURES: [&str; N] = [
    "multiplier partial products (acc x non-constant-zero bits of m), time-shared lanes",
    "variable shifter muxes (r x varying shift bits), time-shared lanes",
    "rescaled-value bits r (round, saturate, zero point), every lane",
    "SRDHM bits (r, double rounding)",
    "time-shared lanes",
    "accumulator bits of time-shared lanes",
    "constant-multiply adder bits (acc x (digits of m - 1)), baked lanes",
    "baked lanes",
];

/// What the cost model needs of one layer's requantizer: the generated form, the widths and,
/// per lane, every channel's `(m, shift)`. Built from a [`LayerPlan`] or read back from a
/// calibration dump, so the fit and the estimate see exactly the same inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequantShape {
    pub k: u32,
    pub acc_bits: u32,
    pub double: bool,
    /// `mul-const`, `mul-rom`, `csd-const` or `csd-rom` (`OpPlan::requant_form`).
    pub form: String,
    /// Case-ROM entries per lane (1: constants baked).
    pub groups: usize,
    /// Per lane, per group: `(m, shift)` (padding slots are `(0, 0)`).
    pub lanes: Vec<Vec<(u64, u32)>>,
}

impl RequantShape {
    /// The requantizer of accumulating op `op` as planned; `None` for other ops.
    pub fn of(plan: &Plan, op: &OpPlan) -> Option<RequantShape> {
        let rq = plan.requants.get(&op.index)?;
        let lanes = op.fold.rq;
        let groups = rq.channels.len() / lanes.max(1);
        Some(RequantShape {
            k: rq.k,
            acc_bits: op.acc_bits,
            double: rq.double,
            form: op.requant_form.to_string(),
            groups,
            lanes: (0..lanes)
                .map(|p| {
                    (0..groups)
                        .map(|g| {
                            let (m, s) = rq.channels[g * lanes + p];
                            // The shift a lane applies after the product: s (single) or
                            // s - k (double); 0 for m = 0.
                            let shift = match (m, rq.double) {
                                (0, _) => 0,
                                (_, false) => s,
                                (_, true) => s.saturating_sub(rq.k),
                            };
                            (m as u64, shift)
                        })
                        .collect()
                })
                .collect(),
        })
    }
}

/// Bits that differ between the values, and bits that are 1 in all of them: after yosys
/// propagates the case ROM's constant output bits through the operand registers, only these
/// reach the multiplier and the shifter.
fn varying_and_ones(values: impl Iterator<Item = u64> + Clone) -> (u32, u32) {
    let all_or = values.clone().fold(0u64, |a, v| a | v);
    let all_and = values.fold(u64::MAX, |a, v| a & v);
    ((all_or & !all_and).count_ones(), all_and.count_ones())
}

/// The structural features of one requantizer; `None` for the CSD digit ROM (`csd-rom`),
/// which the model does not cover.
pub fn features(r: &RequantShape) -> Option<[f64; N]> {
    let acc = r.acc_bits as f64;
    let k = r.k as f64;
    let mut f = [0.0; N];
    for lane in &r.lanes {
        let max_shift = lane.iter().map(|c| c.1).max().unwrap_or(0) as f64;
        let rbits = if r.double { acc } else { acc + k }.max(max_shift) + 1.0;
        match r.form.as_str() {
            "mul-rom" => {
                // Addresses past the last group read the ROM's default (0, 0).
                let pad = !r.groups.is_power_of_two();
                let ms = lane.iter().map(|c| c.0).chain(pad.then_some(0));
                let ss = lane.iter().map(|c| c.1 as u64).chain(pad.then_some(0));
                let (vm, m1) = varying_and_ones(ms);
                let (vs, _) = varying_and_ones(ss);
                f[0] += acc * (vm + m1) as f64;
                f[1] += rbits * vs as f64;
                f[4] += 1.0;
                f[5] += acc;
            }
            "mul-const" | "csd-const" => {
                let m = lane.first().map_or(0, |c| c.0);
                let digits = if r.form == "mul-const" {
                    m.count_ones()
                } else {
                    csd::weight(m)
                };
                f[6] += acc * digits.saturating_sub(1) as f64;
                f[7] += 1.0;
            }
            _ => return None,
        }
        f[2] += rbits;
        if r.double {
            f[3] += rbits;
        }
    }
    Some(f)
}

/// Estimated iCE40 LUT4s of accumulating op `op`'s requantizer (`None` for the CSD digit ROM
/// and other ops).
pub fn requant_luts(plan: &Plan, op: &OpPlan) -> Option<f64> {
    let shape = RequantShape::of(plan, op)?;
    features(&shape).map(|f| f.iter().zip(WEIGHTS).map(|(x, w)| x * w).sum())
}

/// Least-squares weights for `rows` of (features, measured LUTs) minimising the *relative*
/// error (each row scaled by 1/measured, so small requantizers count as much as big ones), by
/// the normal equations with a tiny ridge term so an unused feature cannot make them singular.
pub fn fit<const M: usize>(rows: &[([f64; M], f64)]) -> [f64; M] {
    let mut a = [[0.0f64; M]; M];
    let mut b = [0.0f64; M];
    for (x, y) in rows {
        let w = 1.0 / y.max(1.0);
        for i in 0..M {
            b[i] += x[i] * w * y * w;
            for j in 0..M {
                a[i][j] += x[i] * w * x[j] * w;
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-12 + 1e-10 * row[i];
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..M {
        let piv = (col..M)
            .max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))
            .expect("non-empty range");
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot_row = a[col];
        for r in col + 1..M {
            let f = a[r][col] / pivot_row[col];
            for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut w = [0.0; M];
    for i in (0..M).rev() {
        let s: f64 = (i + 1..M).map(|j| a[i][j] * w[j]).sum();
        w[i] = (b[i] - s) / a[i][i];
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(form: &str, groups: usize, lanes: Vec<Vec<(u64, u32)>>) -> RequantShape {
        RequantShape {
            k: 4,
            acc_bits: 20,
            double: false,
            form: form.into(),
            groups,
            lanes,
        }
    }

    #[test]
    fn only_bits_that_vary_or_are_always_set_cost_multiplier_rows() {
        assert_eq!(
            varying_and_ones([0b1010u64, 0b1011, 0b1110].into_iter()),
            (2, 2)
        );
        assert_eq!(varying_and_ones([5u64, 5].into_iter()), (0, 2));
        // Same multiplicand everywhere and one shift: two partial-product rows, no shifter.
        let f = features(&shape("mul-rom", 2, vec![vec![(0b1001, 7), (0b1001, 7)]])).unwrap();
        assert_eq!(f[0], 20.0 * 2.0);
        assert_eq!(f[1], 0.0);
        // Three groups: the ROM's default (0, 0) entry makes every set bit vary.
        let f = features(&shape("mul-rom", 3, vec![vec![(0b1001, 7); 3]])).unwrap();
        assert_eq!(f[0], 20.0 * 2.0);
        assert_eq!(f[1], 25.0 * 3.0);
    }

    #[test]
    fn constant_lanes_count_digits_of_their_form() {
        // 7 = 0b111 (three set bits) = 8 - 1 (two CSD digits).
        let mul = features(&shape("mul-const", 1, vec![vec![(7, 3)]])).unwrap();
        let csd = features(&shape("csd-const", 1, vec![vec![(7, 3)]])).unwrap();
        assert_eq!(mul[6], 20.0 * 2.0);
        assert_eq!(csd[6], 20.0);
        assert!(features(&shape("csd-rom", 2, vec![vec![(7, 3), (5, 2)]])).is_none());
    }

    #[test]
    fn fit_recovers_a_known_linear_model() {
        let truth = [1.5, 0.5, 0.8, 3.0, 1.0, 0.25, 20.0, 7.0];
        let mut rng = crate::rng::Rng::new(4);
        let rows: Vec<([f64; N], f64)> = (0..40)
            .map(|_| {
                let x: [f64; N] = std::array::from_fn(|_| rng.range(1, 500) as f64);
                let y = x.iter().zip(truth).map(|(a, b)| a * b).sum();
                (x, y)
            })
            .collect();
        let w = fit(&rows);
        for (got, want) in w.iter().zip(truth) {
            assert!((got - want).abs() < 1e-3, "{w:?}");
        }
    }
}
