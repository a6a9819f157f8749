//! Canonical signed-digit (CSD) form of rescale multiplicands.
//!
//! With `m` baked into silicon, a constant multiplier costs one adder per extra non-zero digit
//! of its CSD form (the non-adjacent form: digits in {-1, 0, 1}, no two adjacent non-zero, the
//! minimum possible number of non-zero digits). This module owns that representation: the RTL
//! emits shift-adds from [`digits`], and the int-model's optional `csd_digits` constraint is
//! checked with [`weight`].

/// One non-zero CSD digit: `sign * 2^shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digit {
    pub shift: u32,
    pub negative: bool,
}

/// The CSD digits of `n`, least significant first.
pub fn digits(n: u64) -> Vec<Digit> {
    let mut out = Vec::new();
    // u128 so that the +1 carry of a run of ones at bit 63 cannot overflow.
    let mut rest = n as u128;
    let mut shift = 0;
    while rest != 0 {
        if rest & 1 == 1 {
            // n = ...01 takes +1 here; n = ...11 takes -1 and carries, merging a run of ones.
            let negative = rest & 3 == 3;
            if negative {
                rest += 1;
            } else {
                rest -= 1;
            }
            out.push(Digit { shift, negative });
        }
        rest >>= 1;
        shift += 1;
    }
    out
}

/// Number of non-zero CSD digits of `n` (0 for 0).
pub fn weight(n: u64) -> u32 {
    digits(n).len() as u32
}

/// Evaluates a digit list back to its integer.
pub fn value(ds: &[Digit]) -> i128 {
    ds.iter()
        .map(|d| {
            let v = 1i128 << d.shift;
            if d.negative { -v } else { v }
        })
        .sum()
}

/// The integer in `0..limit` with at most `max_digits` non-zero CSD digits closest to `target`
/// (ties to the larger, like `derive_multiplier`'s round half away from zero), found by
/// greedy digit placement refined over both neighbours.
/// `None` when `max_digits` is 0 and the target is not 0.
pub fn nearest(target: f64, max_digits: u32, limit: u64) -> Option<u64> {
    if max_digits == 0 {
        return if target.abs() < 0.5 { Some(0) } else { None };
    }
    let mut best: Option<(f64, u64)> = None;
    let mut consider = |v: u64| {
        if v < limit && weight(v) <= max_digits {
            let err = (v as f64 - target).abs();
            if best.is_none_or(|(e, b)| err < e || (err == e && v > b)) {
                best = Some((err, v));
            }
        }
    };
    // Above the limit the answer is the best value just below it.
    let target = target.clamp(0.0, (limit - 1) as f64);
    // An n-bit integer has at most floor(n/2) + 1 non-zero CSD digits: a budget that large
    // constrains nothing, and the search below would be needlessly exponential in it.
    let bits = 64 - (limit - 1).leading_zeros();
    if max_digits > bits / 2 {
        return Some((target.round() as u64).min(limit - 1));
    }
    for v in candidates(target, max_digits) {
        consider(v);
    }
    consider(0);
    best.map(|(_, v)| v)
}

/// Values with at most `d` CSD digits near `t`: the powers of two around `t`, then the best
/// residual approximations recursively, so the exact nearest is always among them.
fn candidates(t: f64, d: u32) -> Vec<u64> {
    if d == 0 || t < 0.5 {
        return vec![0];
    }
    let e = t.log2().floor() as i32;
    let mut out = Vec::new();
    for p in [e, e + 1] {
        if !(0..=62).contains(&p) {
            continue;
        }
        let base = 1u64 << p;
        out.push(base);
        let residual = t - base as f64;
        for r in candidates(residual.abs(), d - 1) {
            if residual >= 0.0 {
                out.push(base + r);
            } else if r <= base {
                out.push(base - r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_nearest(target: f64, d: u32, limit: u64) -> Option<u64> {
        (0..limit).filter(|&v| weight(v) <= d).min_by(|&a, &b| {
            let ea = (a as f64 - target).abs();
            let eb = (b as f64 - target).abs();
            ea.partial_cmp(&eb).unwrap().then(b.cmp(&a))
        })
    }

    #[test]
    fn known_forms() {
        assert_eq!(weight(0), 0);
        assert_eq!(weight(1), 1);
        assert_eq!(weight(7), 2); // 8 - 1
        assert_eq!(weight(15), 2);
        assert_eq!(weight(0b1011), 3); // 16 - 4 - 1
        assert_eq!(weight(u64::MAX), 2);
        assert_eq!(weight((1 << 31) - 1), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn digits_reconstruct_and_are_non_adjacent(n in any::<u64>()) {
            let ds = digits(n);
            prop_assert_eq!(value(&ds), n as i128);
            for w in ds.windows(2) {
                prop_assert!(w[1].shift >= w[0].shift + 2);
            }
        }

        #[test]
        fn nearest_matches_brute_force(t in 0.0f64..3000.0, d in 1u32..=7, bits in 1u32..=11) {
            let limit = 1u64 << bits;
            prop_assert_eq!(nearest(t, d, limit), brute_nearest(t, d, limit));
        }
    }
}
