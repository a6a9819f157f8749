//! Analytical cost model: iCE40 LUT4s of a requantizer from its plan, without running yosys.
//!
//! Like FINN's resource estimates, the model counts the structures the template instantiates
//! and weighs each by a LUT cost per bit:
//!
//! - a runtime `acc_bits x k` multiplier (time-shared lanes): one partial-product row of
//!   `acc_bits` bits per multiplicand bit,
//! - a baked constant multiply: one `acc_bits`-bit adder per extra set bit of `m` (yosys 0.23
//!   expands `acc * CONST` bit by bit, it does not recode to signed digits),
//! - the variable right shift (time-shared lanes): a barrel shifter of `r_bits` x `sh_bits` 2:1
//!   multiplexers, plus the `(1 << s) >> 1` rounding term,
//! - the linear logic on the rescaled value: rounding adder, two saturation comparators, the
//!   zero-point adder (`r_bits`), and for `double` rounding the SRDHM adder,
//! - the case ROM of time-shared lanes (`k + sh_bits` bits per channel; `ratflow synth` keeps
//!   requantizer ROMs in LUTs so that k is compared on equal terms).
//!
//! The weights below were fitted by least squares to yosys 0.23 `synth_ice40` on random
//! requantizers (`cargo run --release --example calibrate_estimate` refits and prints them and
//! the error on held-out designs); `ratflow synth` and the flow report show the estimate next
//! to the measured figure with its error.

use crate::quant::Rounding;
use crate::rtl::{LayerPlan, Plan};

/// Number of features of [`features`].
pub const N: usize = 8;

/// LUT4s per unit of each feature, in [`features`] order.
pub const WEIGHTS: [f64; N] = [2.934, 1.948, 1.340, 7.061, 58.51, -0.0279, -258.05, -186.37];

/// Names of the features, for the calibration report.
pub const FEATURES: [&str; N] = [
    "runtime multiplier bits (acc x k), time-shared lanes",
    "constant multiplier adder bits (acc x (set bits of m - 1)), baked lanes",
    "variable shifter muxes (r x bits of the distinct shifts), time-shared lanes",
    "rescaled-value bits r (round, saturate, zero point)",
    "double-rounding lanes (SRDHM stage)",
    "case ROM bits ((k + shift bits) x channels), time-shared lanes",
    "time-shared lanes",
    "baked lanes",
];

fn ubits(max: u64) -> u32 {
    (64 - max.leading_zeros()).max(1)
}

/// The structural features of one layer's requantizer.
pub fn features(l: &LayerPlan) -> [f64; N] {
    let acc = l.acc_bits as f64;
    let k = l.k as f64;
    let mut f = [0.0; N];
    for lane in &l.lanes {
        let max_shift = lane.max_shift();
        let prod = (l.acc_bits + l.k) as f64;
        let r = match l.rounding {
            Rounding::Single => prod.max(max_shift as f64) + 1.0,
            Rounding::Double => acc.max(max_shift as f64) + 1.0,
        };
        if l.groups > 1 {
            let mut shifts: Vec<u32> = lane.chans.iter().map(|c| c.shift).collect();
            shifts.sort_unstable();
            shifts.dedup();
            // yosys only builds the shifter stages the ROM's distinct shifts need.
            let sel = if shifts.len() > 1 {
                ubits(shifts.len() as u64 - 1) as f64
            } else {
                0.0
            };
            f[0] += acc * k;
            f[2] += r * sel;
            f[5] += (k + ubits(max_shift as u64) as f64) * l.groups as f64;
            f[6] += 1.0;
        } else {
            let m = lane.chans.first().map_or(0, |c| c.mult.m);
            f[1] += acc * (m.count_ones().saturating_sub(1)) as f64;
            f[7] += 1.0;
        }
        f[3] += r;
        if l.rounding == Rounding::Double {
            f[4] += 1.0;
        }
    }
    f
}

/// Estimated iCE40 LUT4s of layer `l`'s requantizer.
pub fn requant_luts(_plan: &Plan, l: &LayerPlan) -> f64 {
    features(l).iter().zip(WEIGHTS).map(|(f, w)| f * w).sum()
}

/// Least-squares weights for `rows` of (features, measured LUTs) minimising the *relative*
/// error (each row scaled by 1/measured, so small requantizers count as much as big ones), by
/// the normal equations with a tiny ridge term so an unused feature cannot make them singular.
pub fn fit(rows: &[([f64; N], f64)]) -> [f64; N] {
    let mut a = [[0.0f64; N]; N];
    let mut b = [0.0f64; N];
    for (x, y) in rows {
        let w = 1.0 / y.max(1.0);
        for i in 0..N {
            b[i] += x[i] * w * y * w;
            for j in 0..N {
                a[i][j] += x[i] * w * x[j] * w;
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-12 + 1e-10 * row[i];
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..N {
        let piv = (col..N)
            .max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))
            .expect("non-empty range");
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot_row = a[col];
        for r in col + 1..N {
            let f = a[r][col] / pivot_row[col];
            for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut w = [0.0; N];
    for i in (0..N).rev() {
        let s: f64 = (i + 1..N).map(|j| a[i][j] * w[j]).sum();
        w[i] = (b[i] - s) / a[i][i];
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

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
