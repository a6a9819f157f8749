//! The semantics checked against a reference written a different way: exact i128 rational
//! arithmetic with explicit floor/round steps instead of shifts and masks.

use super::*;
use proptest::prelude::*;

/// floor(n / d) for d > 0, on i128.
fn floor_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d)
}

/// Reference single rounding: round-half-up of the exact rational a*m/2^s.
fn ref_single(a: i32, m: u32, s: u32) -> i128 {
    let num = a as i128 * m as i128;
    let den = 1i128 << s;
    // floor(num/den + 1/2) = floor((2*num + den) / (2*den))
    floor_div(2 * num + den, 2 * den)
}

/// Reference double rounding, from the gemmlowp description rather than its bit tricks.
fn ref_double(a: i32, m: u32, s: u32, k: u32) -> i128 {
    if m == 0 {
        return 0;
    }
    let m31 = (m as i128) * (1i128 << (31 - k));
    let x = floor_div(2 * (a as i128) * m31 + (1i128 << 31), 1i128 << 32);
    let n = s - k;
    // round half away from zero of x / 2^n, via the magnitude.
    let mag = floor_div(2 * x.abs() + (1i128 << n), 1i128 << (n + 1));
    if x < 0 { -mag } else { mag }
}

/// Reference (m, s) derivation: normalise by repeated halving/doubling instead of frexp.
fn ref_derive(real: f64, k: u32) -> Option<(u64, i64)> {
    let mut f = real;
    let mut e: i64 = 0;
    while f >= 1.0 {
        f /= 2.0;
        e += 1;
    }
    while f < 0.5 {
        f *= 2.0;
        e -= 1;
    }
    let scaled = f * 2f64.powi(k as i32);
    let mut m = (scaled + 0.5).floor() as u64;
    if m == 1u64 << k {
        m >>= 1;
        e += 1;
    }
    let s = k as i64 - e;
    if s < 0 {
        return None;
    }
    if s > 62 {
        return Some((0, 0));
    }
    Some((m, s))
}

/// Clamp bounds with `lo <= hi`: full range, ReLU-like, or arbitrary.
fn arb_clamp() -> impl Strategy<Value = (i8, i8)> {
    prop_oneof![
        Just((-128i8, 127i8)),
        any::<i8>().prop_map(|z| (z, 127)),
        (any::<i8>(), any::<i8>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

fn clamp_ref(r: i128, zp: i8, lo: i8, hi: i8) -> i8 {
    let (lo, hi) = (lo as i128, hi as i128);
    (r + zp as i128).clamp(lo, hi.max(lo)) as i8
}

const CORNER_ACCS: [i32; 11] = [
    i32::MIN,
    i32::MIN + 1,
    i32::MAX,
    i32::MAX - 1,
    0,
    1,
    -1,
    2,
    -2,
    1 << 30,
    -(1 << 30),
];

fn arb_mult_single() -> impl Strategy<Value = (u32, Dyadic)> {
    (1u32..=31).prop_flat_map(|k| {
        let max_m = (1u32 << k) - 1;
        (Just(k), 0..=max_m, 0u32..=62).prop_map(|(k, m, s)| (k, Dyadic { m, s }))
    })
}

fn arb_mult_double() -> impl Strategy<Value = (u32, Dyadic)> {
    (1u32..=31).prop_flat_map(|k| {
        let max_m = (1u32 << k) - 1;
        (Just(k), 0..=max_m, k..=62).prop_map(|(k, m, s)| (k, Dyadic { m, s }))
    })
}

fn arb_acc() -> impl Strategy<Value = i32> {
    prop_oneof![
        any::<i32>(),
        proptest::sample::select(CORNER_ACCS.to_vec()),
        -100_000i32..100_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn single_matches_reference((k, mult) in arb_mult_single(), a in arb_acc()) {
        prop_assert_eq!(rescale(a, mult, k, Rounding::Single) as i128, ref_single(a, mult.m, mult.s));
    }

    #[test]
    fn double_matches_reference((k, mult) in arb_mult_double(), a in arb_acc()) {
        prop_assert_eq!(rescale(a, mult, k, Rounding::Double) as i128, ref_double(a, mult.m, mult.s, k));
    }

    #[test]
    fn double_differs_from_single_by_at_most_one((k, mult) in arb_mult_double(), a in arb_acc()) {
        let d = rescale(a, mult, k, Rounding::Double) - rescale(a, mult, k, Rounding::Single);
        prop_assert!(d.abs() <= 1);
    }

    #[test]
    fn requant_matches_reference((k, mult) in arb_mult_single(), a in arb_acc(), zp in any::<i8>(), (lo, hi) in arb_clamp()) {
        let rq = Requant { mult, k, rounding: Rounding::Single, zero_point: zp, clamp: Clamp { lo, hi } };
        prop_assert_eq!(rq.apply(a), clamp_ref(ref_single(a, mult.m, mult.s), zp, lo, hi));
    }

    #[test]
    fn requant_double_matches_reference((k, mult) in arb_mult_double(), a in arb_acc(), zp in any::<i8>(), (lo, hi) in arb_clamp()) {
        let rq = Requant { mult, k, rounding: Rounding::Double, zero_point: zp, clamp: Clamp { lo, hi } };
        prop_assert_eq!(rq.apply(a), clamp_ref(ref_double(a, mult.m, mult.s, k), zp, lo, hi));
    }

    #[test]
    fn derive_matches_reference(k in 1u32..=31, mant in 0.5f64..1.0, exp in -80i32..20) {
        let real = mant * 2f64.powi(exp);
        let ours = derive_multiplier(real, k);
        match ref_derive(real, k) {
            None => prop_assert_eq!(ours, Err(DeriveError::TooLarge(real))),
            Some((m, s)) => {
                let d = ours.unwrap();
                prop_assert_eq!((d.mult.m as u64, d.mult.s as i64), (m, s));
                prop_assert_eq!(d.underflow, m == 0);
                // The derived multiplier is within half a unit of the k-bit grid.
                if m != 0 {
                    let ulp = 2f64.powi(-(s as i32));
                    prop_assert!((d.mult.value() - real).abs() <= ulp / 2.0 + real * 1e-15);
                    prop_assert!(check_multiplier(d.mult, k, Rounding::Single).is_ok());
                }
            }
        }
    }

    #[test]
    fn frexp_reconstructs(x in proptest::num::f64::POSITIVE | proptest::num::f64::SUBNORMAL) {
        prop_assume!(x > 0.0 && x.is_finite());
        let (f, e) = frexp(x);
        prop_assert!((0.5..1.0).contains(&f));
        // Exact reconstruction, done in two steps so 2^e itself never overflows.
        let half = e / 2;
        prop_assert_eq!(f * 2f64.powi(half) * 2f64.powi(e - half), x);
    }
}

#[test]
fn design_counterexample_table() {
    // k = 4, M = 0.25 -> (m, s) = (8, 5); the two modes differ near ties.
    let d = derive_multiplier(0.25, 4).unwrap();
    assert_eq!(d.mult, Dyadic { m: 8, s: 5 });
    let table = [(1, 0, 1), (5, 1, 2), (-2, 0, -1), (-6, -1, -2)];
    for (a, single, double) in table {
        assert_eq!(
            rescale(a, d.mult, 4, Rounding::Single),
            single,
            "single a={a}"
        );
        assert_eq!(
            rescale(a, d.mult, 4, Rounding::Double),
            double,
            "double a={a}"
        );
    }
}

/// (M, LiteRT QuantizeMultiplier's (quantized_multiplier, shift)), computed with the C++
/// algorithm (std::frexp, std::round, the 2^31 carry and the shift < -31 flush).
const LITERT: [(f64, u32, i32); 16] = [
    (0.5, 1073741824, 0),
    (0.25, 1073741824, -1),
    (0.75, 1610612736, 0),
    (0.1, 1717986918, -3),
    (0.3, 1288490189, -1),
    (0.3333333333333333, 1431655765, -1),
    (0.999999999, 2147483646, 0),
    (0.9999999999, 1073741824, 1),
    (0.001, 1099511628, -9),
    (0.000784313725490196, 1724724122, -10),
    (4.656612873077393e-10, 1073741824, -30),
    (2.3283064365386963e-10, 1073741824, -31),
    (1.5e-10, 0, 0),
    (0.123456789, 2120971485, -3),
    (std::f64::consts::FRAC_1_SQRT_2, 1518500250, 0),
    (0.00703125, 1932735283, -7),
];

#[test]
fn k31_equals_litert_quantize_multiplier() {
    for (real, q, shift) in LITERT {
        let d = derive_multiplier(real, 31).unwrap();
        if q == 0 {
            assert!(d.underflow, "M = {real}");
            assert_eq!(d.mult, Dyadic { m: 0, s: 0 });
        } else {
            // LiteRT's shift is a left shift exponent: s = 31 - shift.
            assert_eq!(d.mult.m, q, "M = {real}");
            assert_eq!(d.mult.s as i32, 31 - shift, "M = {real}");
        }
    }
}

#[test]
fn derive_from_real_not_via_31_bits() {
    // f*16 sits 2^-30 below a tie: direct rounding gives 8, but rounding to 31 bits first lands
    // exactly on the tie (8.5 * 2^27) and would then round away to 9.
    let f = (8.5 - 2f64.powi(-30)) / 16.0;
    let direct = derive_multiplier(f, 4).unwrap().mult;
    assert_eq!(direct, Dyadic { m: 8, s: 4 });
    let via31 = derive_multiplier(f, 31).unwrap().mult;
    assert_eq!(via31.m, 17 << 26);
    let requantized = ((via31.m as f64) / 2f64.powi(27)).round() as u32;
    assert_eq!(requantized, 9, "the two-step path really differs here");
}

#[test]
fn derive_edges() {
    // Just below 1: at small k the rounding carries into the next octave, s drops below k.
    let d = derive_multiplier(0.99, 4).unwrap().mult;
    assert_eq!(d, Dyadic { m: 8, s: 3 });
    assert!(check_multiplier(d, 4, Rounding::Double).is_err());
    assert!(check_multiplier(d, 4, Rounding::Single).is_ok());
    // Exactly 1 and above: single allows it with s < k.
    assert_eq!(
        derive_multiplier(1.0, 8).unwrap().mult,
        Dyadic { m: 128, s: 7 }
    );
    assert_eq!(
        derive_multiplier(3.0, 2).unwrap().mult,
        Dyadic { m: 3, s: 0 }
    );
    // Needs a left shift.
    assert!(matches!(
        derive_multiplier(4.0, 2),
        Err(DeriveError::TooLarge(_))
    ));
    // s = 62 is the last representable shift; one octave lower underflows.
    let d = derive_multiplier(0.5 * 2f64.powi(-(62 - 8)), 8).unwrap();
    assert_eq!(d.mult, Dyadic { m: 128, s: 62 });
    let d = derive_multiplier(0.5 * 2f64.powi(-(63 - 8)), 8).unwrap();
    assert!(d.underflow);
    // k = 1 is power-of-two rescaling.
    assert_eq!(
        derive_multiplier(0.3, 1).unwrap().mult,
        Dyadic { m: 1, s: 2 }
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(derive_multiplier(bad, 8).is_err());
    }
    assert_eq!(derive_multiplier(0.5, 0), Err(DeriveError::BadK(0)));
    assert_eq!(derive_multiplier(0.5, 32), Err(DeriveError::BadK(32)));
    // Subnormal M underflows cleanly.
    assert!(
        derive_multiplier(f64::MIN_POSITIVE / 8.0, 31)
            .unwrap()
            .underflow
    );
}

#[test]
fn rescale_edges() {
    let max_m = Dyadic {
        m: (1 << 31) - 1,
        s: 0,
    };
    assert_eq!(
        rescale(i32::MIN, max_m, 31, Rounding::Single),
        i32::MIN as i64 * ((1i64 << 31) - 1)
    );
    let widest = Dyadic {
        m: (1 << 31) - 1,
        s: 62,
    };
    // (2^31-1)^2 / 2^62 = 1 - 2^-30 + 2^-62 and -2^31 (2^31-1) / 2^62 = -1 + 2^-31.
    for rounding in [Rounding::Single, Rounding::Double] {
        assert_eq!(rescale(i32::MAX, widest, 31, rounding), 1);
        assert_eq!(rescale(i32::MIN, widest, 31, rounding), -1);
    }
    // An exact tie at -1/2 with s - k = 31: single rounds up to 0, double away to -1.
    let m = Dyadic { m: 1, s: 32 };
    assert_eq!(rescale(i32::MIN, m, 1, Rounding::Single), 0);
    assert_eq!(rescale(i32::MIN, m, 1, Rounding::Double), -1);
    // s - k above 31 (gemmlowp would assert): everything rounds to 0.
    let m = Dyadic { m: 1, s: 33 };
    assert_eq!(rescale(i32::MIN, m, 1, Rounding::Double), 0);
    assert_eq!(rescale(i32::MAX, m, 1, Rounding::Double), 0);
    // Exact ties of both signs, M = 1/2 with s = k: double rounds entirely inside SRDHM, which
    // (like single) sends ties toward +inf.
    let half = Dyadic { m: 1, s: 1 };
    assert_eq!(rescale(3, half, 1, Rounding::Single), 2);
    assert_eq!(rescale(-3, half, 1, Rounding::Single), -1);
    assert_eq!(rescale(3, half, 1, Rounding::Double), 2);
    assert_eq!(rescale(-3, half, 1, Rounding::Double), -1);
    // M = 1/4 with s > k: the tie reaches RoundingDivideByPOT, which rounds away from zero.
    let quarter = Dyadic { m: 1, s: 2 };
    assert_eq!(rescale(-6, quarter, 1, Rounding::Single), -1);
    assert_eq!(rescale(-6, quarter, 1, Rounding::Double), -2);
    assert_eq!(rescale(6, quarter, 1, Rounding::Double), 2);
    // m = 0 outputs the zero point whatever s is, in both modes.
    for rounding in [Rounding::Single, Rounding::Double] {
        let rq = Requant {
            mult: Dyadic { m: 0, s: 0 },
            k: 8,
            rounding,
            zero_point: -7,
            clamp: Clamp::NONE,
        };
        assert_eq!(rq.apply(i32::MAX), -7);
        assert!(check_multiplier(rq.mult, 8, rounding).is_ok());
    }
}

#[test]
fn requant_saturates_and_clamps() {
    let rq = Requant {
        mult: Dyadic { m: 1, s: 0 },
        k: 8,
        rounding: Rounding::Single,
        zero_point: 5,
        clamp: Clamp::relu(5),
    };
    assert_eq!(rq.apply(1000), 127);
    assert_eq!(rq.apply(-1000), 5);
    assert_eq!(rq.apply(0), 5);
    let rq = Requant {
        clamp: Clamp::NONE,
        ..rq
    };
    assert_eq!(rq.apply(-1000), -128);
    assert_eq!(rq.apply(i32::MIN), -128);
    assert_eq!(rq.apply(i32::MAX), 127);
    assert_eq!(rq.apply(-133), -128);
    assert_eq!(rq.apply(-134), -128);
    assert_eq!(rq.apply(-132), -127);
}

#[test]
fn check_multiplier_names_the_problem() {
    let e = check_multiplier(Dyadic { m: 300, s: 10 }, 8, Rounding::Single).unwrap_err();
    assert!(e.contains("300") && e.contains("k_bits = 8"), "{e}");
    let e = check_multiplier(Dyadic { m: 3, s: 63 }, 8, Rounding::Single).unwrap_err();
    assert!(e.contains("63"), "{e}");
    let e = check_multiplier(Dyadic { m: 3, s: 7 }, 8, Rounding::Double).unwrap_err();
    assert!(e.contains("double"), "{e}");
    assert!(check_multiplier(Dyadic { m: 255, s: 8 }, 8, Rounding::Double).is_ok());
}

#[test]
fn accumulator_bound_is_exact_at_the_limit() {
    // 255 * 127 * n + b == i32::MAX exactly for a suitable bias.
    let n = 66_000usize;
    let w = vec![127i8; n];
    let used = 255i64 * 127 * n as i64;
    let room = i32::MAX as i64 - used;
    assert!(room >= 0);
    assert!(accumulator_fits(&w, room as i32));
    assert!(!accumulator_fits(&w, room as i32 + 1));
    assert!(!accumulator_fits(&w, -(room as i32) - 1));
}

#[test]
fn affine_params_include_zero() {
    let (s, z) = affine_params(0.0, 6.0);
    assert_eq!(z, -128);
    assert!((s - 6.0 / 255.0).abs() < 1e-15);
    let (s, z) = affine_params(-1.0, 1.0);
    assert!((s - 2.0 / 255.0).abs() < 1e-15);
    // -128 + 127.5 rounds half away from zero.
    assert_eq!(z, -1);
    let (_, z) = affine_params(2.0, 3.0);
    assert_eq!(z, -128);
    assert_eq!(quantize_weight(1.0, 1.0 / 127.0), 127);
    assert_eq!(quantize_weight(-2.0, 1.0 / 127.0), -127);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn csd_derivation_respects_the_digit_budget(k in 1u32..=31, d in 1u32..=4, mant in 0.5f64..1.0, exp in -40i32..0) {
        let real = mant * 2f64.powi(exp);
        let c = derive_multiplier_csd(real, k, d).unwrap();
        prop_assert!(csd::weight(c.mult.m as u64) <= d);
        prop_assert!(check_multiplier(c.mult, k, Rounding::Single).is_ok());
        // No value with at most d digits on the same grid is closer.
        let plain = derive_multiplier(real, k).unwrap();
        if !c.underflow && !plain.underflow {
            let err = (c.mult.value() - real).abs();
            let grid = 2f64.powi(-(plain.mult.s as i32));
            let t = real / grid;
            if let Some(v) = csd::nearest(t, d, 1u64 << k) {
                prop_assert!(err <= (v as f64 * grid - real).abs() * (1.0 + 1e-12));
            }
        }
    }

    #[test]
    fn csd_derivation_without_a_binding_budget_is_the_plain_rule(k in 1u32..=31, mant in 0.5f64..1.0, exp in -40i32..0) {
        let real = mant * 2f64.powi(exp);
        prop_assert_eq!(derive_multiplier_csd(real, k, 32).unwrap(), derive_multiplier(real, k).unwrap());
    }
}

#[test]
fn csd_derivation_examples() {
    // 0.3 at k = 8: plain m = 154 = 0b10011010 (CSD 128 + 32 - 8 + 2: 4 digits).
    assert_eq!(
        derive_multiplier(0.3, 8).unwrap().mult,
        Dyadic { m: 154, s: 9 }
    );
    // Two digits: 128 + 32 = 160 is the nearest 2-digit value to 153.6 (144 = 128 + 16 is
    // farther; 152 needs three).
    assert_eq!(
        derive_multiplier_csd(0.3, 8, 2).unwrap().mult,
        Dyadic { m: 160, s: 9 }
    );
    // One digit is power-of-two rescaling: 0.3 -> 0.25 (m = 128, s = 9).
    assert_eq!(
        derive_multiplier_csd(0.3, 8, 1).unwrap().mult,
        Dyadic { m: 128, s: 9 }
    );
    // 0.375 -> 1 digit: 0.25 and 0.5 tie at distance 0.125; ties go up.
    assert_eq!(
        derive_multiplier_csd(0.375, 8, 1).unwrap().mult.value(),
        0.5
    );
}

/// TFLite's QUANTIZE with `r / S` in float32: MNIST pixels map to `p - 128` exactly; ties
/// round away from zero; out-of-range and huge values saturate.
#[test]
fn quantize_real_follows_tflite_quantize() {
    for p in 0..=255u8 {
        assert_eq!(
            quantize_real(p as f32 / 255.0, 1.0 / 255.0, -128),
            (p as i16 - 128) as i8,
            "pixel {p}"
        );
    }
    assert_eq!(quantize_real(0.5, 1.0, 0), 1);
    assert_eq!(quantize_real(-0.5, 1.0, 0), -1);
    assert_eq!(quantize_real(2.5, 1.0, 3), 6);
    assert_eq!(quantize_real(1e30, 1.0, 0), 127);
    assert_eq!(quantize_real(-1e30, 0.5, 10), -128);
    assert_eq!(quantize_real(f32::INFINITY, 1.0, 0), 127);
}

/// The three rescalers of ADD (TFLite add.cc) and the AVERAGE_POOL rounding.
#[test]
fn add_factors_and_average_follow_tflite() {
    let [m1, m2, mo] = add_factors(0.5, 0.25, 0.1, 20);
    assert_eq!((m1, m2), (0.5, 0.25));
    assert_eq!(mo, 1.0 / (1048576.0 * 0.1));
    assert_eq!(average(7, 2), 4);
    assert_eq!(average(-7, 2), -4);
    assert_eq!(average(5, 4), 1);
    assert_eq!(average(6, 4), 2);
    assert_eq!(average(-6, 4), -2);
    assert_eq!(average(-5, 4), -1);
    assert_eq!(average(0, 9), 0);
}

proptest! {
    /// The vectorizable lanes compute exactly `Requant::apply`, channel by channel, in both
    /// modes, with m = 0 channels and every clamp.
    #[test]
    fn requant_lanes_equal_apply(
        k in 1u32..=31,
        double in any::<bool>(),
        seeds in proptest::collection::vec((any::<u32>(), 0u32..=62, any::<i8>(), any::<i8>(), any::<i8>()), 1..20),
        accs in proptest::collection::vec(any::<i32>(), 1..8),
    ) {
        let rounding = if double { Rounding::Double } else { Rounding::Single };
        let rq: Vec<Requant> = seeds
            .iter()
            .enumerate()
            .map(|(i, &(m, s, zp, a, b))| {
                let mut m = m >> (32 - k);
                let mut s = s;
                if i % 5 == 0 { m = 0; }
                if double && m != 0 && s < k { s = k + (s % (63 - k)); }
                Requant {
                    mult: Dyadic { m, s },
                    k,
                    rounding,
                    zero_point: zp,
                    clamp: Clamp { lo: a.min(b), hi: a.max(b) },
                }
            })
            .collect();
        let lanes = RequantLanes::new(&rq);
        let c = rq.len();
        let mut acc: Vec<i32> = Vec::new();
        for (p, &a) in accs.iter().enumerate() {
            for (ch, _) in rq.iter().enumerate() {
                let corner = CORNER_ACCS[(p + ch) % CORNER_ACCS.len()];
                acc.push(if (p + ch) % 3 == 0 { corner } else { a.wrapping_add(ch as i32 * 977) });
            }
        }
        let mut out = vec![0i8; acc.len()];
        lanes.apply(&acc, &mut out);
        let mut portable = vec![0i8; acc.len()];
        lanes.apply_lanes(&acc, &mut portable);
        for (i, &a) in acc.iter().enumerate() {
            prop_assert_eq!(out[i], rq[i % c].apply(a), "channel {} acc {}", i % c, a);
            prop_assert_eq!(portable[i], out[i]);
        }
    }
}
