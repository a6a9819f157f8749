//! Requantizer unit bench: the generated per-layer requantizers alone, driven with corner and
//! random accumulators, checked against [`crate::quant::Requant::apply`].
//!
//! Several designs (different k, rounding and P) go into one test wrapper
//! (`templates/tb/requant_bench.v`) so a single Verilator build covers them all. The corner set
//! of a channel is derived from the semantics, not from the RTL: both ends of the unit's A-bit
//! input range (INT32_MIN/MAX at 32 bits), zero and ±1, every accumulator where the rescaled
//! value steps across the saturation limits and across small values (found by bisection on the
//! monotone `quant::rescale`), exact rounding ties of both signs (solved as congruences; in
//! double rounding both the SRDHM and the RoundingDivideByPOT ties), and the ends of the
//! channel's reachable accumulator range; all within the unit's input range.

use super::{Built, Outcome, Sources};
use crate::fsio;
use crate::model::Model;
use crate::quant::{self, Dyadic, Rounding};
use crate::rng::Rng;
use crate::rtl::Design;
use anyhow::Result;
use askama::Template;
use std::fmt::Write as _;
use std::path::Path;

/// One design whose requantizers go into the bench.
pub struct Case<'a> {
    pub label: String,
    pub model: &'a Model,
    pub design: &'a Design,
}

pub struct UnitView {
    pub index: usize,
    pub module: String,
    pub doc: String,
    pub p: usize,
    pub groups: usize,
    pub acc_bits: u32,
}

#[derive(Template)]
#[template(path = "tb/requant_bench.v", escape = "none")]
pub struct WrapperView {
    pub header: String,
    pub module: String,
    pub ports: String,
    pub units: Vec<UnitView>,
}

#[derive(Template)]
#[template(path = "tb/requant.cpp", escape = "none")]
pub struct HarnessView {
    pub header: String,
    pub module: String,
    pub units: Vec<UnitView>,
    pub ps: String,
    pub groups: String,
    pub channels: String,
    pub latencies: String,
    pub labels: String,
}

/// A unit: one layer of one case.
#[derive(Clone, Debug)]
pub struct Unit {
    pub case: usize,
    pub layer: usize,
}

/// One beat into a unit: a group and an accumulator per lane.
#[derive(Clone, Debug)]
pub struct Row {
    pub unit: usize,
    pub group: usize,
    pub accs: Vec<i32>,
}

/// Module name of the bench wrapper.
pub const WRAPPER: &str = "requant_bench";

pub fn units(cases: &[Case]) -> Vec<Unit> {
    cases
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| {
            (0..c.design.plan.layers.len()).map(move |layer| Unit { case: ci, layer })
        })
        .collect()
}

/// The accumulators `a` in i32 at which `f(a) >= t` first holds, for a monotone
/// non-decreasing `f` (None when no i32 reaches `t`).
fn first_reaching(f: impl Fn(i32) -> i64, t: i64) -> Option<i32> {
    let (mut lo, mut hi) = (i32::MIN as i64, i32::MAX as i64);
    if f(hi as i32) < t {
        return None;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid as i32) >= t {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo as i32)
}

/// The accumulators an `acc_bits`-bit requantizer input can carry (its two's complement range).
pub fn domain(acc_bits: u32) -> (i64, i64) {
    let half = 1i64 << (acc_bits - 1);
    (-half, half - 1)
}

/// Solutions in `min..=max` (within i32) of `a * m ≡ c (mod 2^e)`, `m > 0`, `e <= 62`: a few
/// around zero and near both ends of the range.
fn congruence(m: u64, c: u64, e: u32, (min, max): (i64, i64)) -> Vec<i64> {
    let t = m.trailing_zeros();
    if t > e {
        return if c & ((1u64 << e) - 1) == 0 {
            vec![0, 1, -1]
        } else {
            Vec::new()
        };
    }
    if c & ((1u64 << t) - 1) != 0 {
        return Vec::new();
    }
    let (m1, c1, e1) = (m >> t, c >> t, e - t);
    let modulus = 1i128 << e1;
    // Inverse of the odd m1 modulo 2^64 by Newton's iteration, then reduced.
    let mut inv = m1;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(m1.wrapping_mul(inv)));
    }
    let a0 = ((c1 as u128 * inv as u128) % modulus as u128) as i128;
    let (min, max) = (min as i128, max as i128);
    let mut out = Vec::new();
    for j in -3i128..=3 {
        out.push(a0 + j * modulus);
    }
    // The solutions nearest the ends of the i32 range.
    out.push(a0 + (max - a0).div_euclid(modulus) * modulus);
    out.push(a0 - (a0 - min).div_euclid(modulus) * modulus);
    out.into_iter()
        .filter(|a| (min..=max).contains(a))
        .map(|a| a as i64)
        .collect()
}

/// Whether `a` is an exact rounding tie of channel (`layer`, `c`): returns `Some(a > 0)` for a
/// tie (its sign), `None` otherwise. Single: `a*m*2^-s` has fraction exactly 1/2. Double: the
/// SRDHM step or the RoundingDivideByPOT step is exactly halfway.
pub fn tie_sign(model: &Model, layer: usize, c: usize, a: i32) -> Option<bool> {
    let rq = model.layer_requant(layer, c);
    let (m, s, k) = (rq.mult.m as i128, rq.mult.s, rq.k);
    if m == 0 || a == 0 {
        return None;
    }
    let p = a as i128 * m;
    let half_of = |x: i128, n: u32| n >= 1 && x.rem_euclid(1i128 << n) == 1i128 << (n - 1);
    let tie = match rq.rounding {
        Rounding::Single => half_of(p, s),
        Rounding::Double => {
            let x = quant::rescale(a, Dyadic { m: rq.mult.m, s: k }, k, Rounding::Double);
            half_of(p, k) || half_of(x as i128, s - k)
        }
    };
    tie.then_some(a > 0)
}

/// The corner accumulators of channel `c` of layer `layer` for a requantizer with
/// `acc_bits`-bit inputs (see the module documentation); all within [`domain`].
pub fn corners(model: &Model, layer: usize, c: usize, acc_bits: u32) -> Vec<i32> {
    let rq = model.layer_requant(layer, c);
    let mult = rq.mult;
    let (k, rounding) = (rq.k, rq.rounding);
    let r = |a: i32| quant::rescale(a, mult, k, rounding);
    let (dmin, dmax) = domain(acc_bits.min(32));
    let mut v: Vec<i64> = vec![dmin, dmin + 1, -2, -1, 0, 1, 2, dmax - 1, dmax];
    let z = rq.zero_point as i64;
    let lo = rq.lo() as i64;
    let push_around = |v: &mut Vec<i64>, a: i32| {
        for d in -1..=1 {
            v.push(a as i64 + d);
        }
    };
    // Where the output steps across the saturation limits and across small values.
    for t in [
        lo - z - 1,
        lo - z,
        lo - z + 1,
        126 - z,
        127 - z,
        128 - z,
        -3,
        -2,
        -1,
        0,
        1,
        2,
        3,
    ] {
        if let Some(a) = first_reaching(r, t) {
            push_around(&mut v, a);
        }
    }
    if mult.m != 0 {
        let m = mult.m as u64;
        match rounding {
            Rounding::Single => {
                if mult.s >= 1 {
                    v.extend(congruence(m, 1u64 << (mult.s - 1), mult.s, (dmin, dmax)));
                }
            }
            Rounding::Double => {
                // SRDHM ties: a*m ≡ 2^(k-1) (mod 2^k).
                v.extend(congruence(m, 1u64 << (k - 1), k, (dmin, dmax)));
                // RoundingDivideByPOT ties: SRDHM(a) = j*2^n + 2^(n-1).
                let n = mult.s - k;
                let srdhm = |a: i32| quant::rescale(a, Dyadic { m: mult.m, s: k }, k, rounding);
                if (1..=32).contains(&n) {
                    let half = 1i64 << (n - 1);
                    for j in [-3i64, -2, -1, 0, 1, 2] {
                        let x = j * (1i64 << n) + half;
                        if let Some(a) = first_reaching(srdhm, x)
                            && srdhm(a) == x
                        {
                            push_around(&mut v, a);
                        }
                    }
                }
            }
        }
    }
    let (alo, ahi) = model.layers()[layer].acc_range(c, model.layer_input(layer).zero_point);
    v.extend([alo, ahi]);
    let mut out: Vec<i32> = v
        .into_iter()
        .filter(|&a| (dmin..=dmax).contains(&a))
        .map(|a| a as i32)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A random accumulator for channel `c` of an `acc_bits`-bit requantizer: a mix of its whole
/// input range ([`domain`]), the channel's reachable range, and values whose rescaled output
/// lands near the int8 range (with rounding jitter).
pub fn random_acc(rng: &mut Rng, model: &Model, layer: usize, c: usize, acc_bits: u32) -> i32 {
    let rq = model.layer_requant(layer, c);
    let (alo, ahi) = model.layers()[layer].acc_range(c, model.layer_input(layer).zero_point);
    let (dmin, dmax) = domain(acc_bits.min(32));
    let a = match rng.range(0, 3) {
        // Two's complement of the low acc_bits bits.
        0 => ((rng.next_u64() << (64 - acc_bits.min(32))) as i64) >> (64 - acc_bits.min(32)),
        1 => rng.range(alo.max(dmin), ahi.min(dmax)),
        _ if rq.mult.m == 0 => rng.range(-1000, 1000),
        _ => {
            // a ≈ t / M for an output t near the int8 range, plus up to one step of jitter.
            let step = 1.0 / rq.mult.value();
            let t = rng.range(-300, 300) as f64 + rng.unit() - 0.5;
            let a = t * step + (rng.unit() - 0.5) * step.min(1e12);
            a.clamp(i32::MIN as f64, i32::MAX as f64) as i64
        }
    };
    a.clamp(dmin, dmax) as i32
}

/// Rows for every unit: each channel's corners (other lanes random), then random rows until at
/// least `random_per_layer` random accumulators of real channels per unit.
pub fn rows(cases: &[Case], random_per_layer: usize, seed: u64) -> Vec<Row> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for (ui, u) in units(cases).iter().enumerate() {
        let case = &cases[u.case];
        let lp = &case.design.plan.layers[u.layer];
        let random_row = |rng: &mut Rng, g: usize| -> Vec<i32> {
            (0..lp.p)
                .map(|lane| {
                    let c = g * lp.p + lane;
                    if c < lp.out_features {
                        random_acc(rng, case.model, u.layer, c, lp.acc_bits)
                    } else {
                        0
                    }
                })
                .collect()
        };
        for c in 0..lp.out_features {
            let (g, lane) = (c / lp.p, c % lp.p);
            for a in corners(case.model, u.layer, c, lp.acc_bits) {
                let mut accs = random_row(&mut rng, g);
                accs[lane] = a;
                out.push(Row {
                    unit: ui,
                    group: g,
                    accs,
                });
            }
        }
        let mut random = 0;
        while random < random_per_layer {
            let g = rng.range(0, lp.groups as i64 - 1) as usize;
            let real = (lp.out_features - g * lp.p).min(lp.p);
            random += real;
            out.push(Row {
                unit: ui,
                group: g,
                accs: random_row(&mut rng, g),
            });
        }
    }
    out
}

fn list<T: ToString>(v: impl Iterator<Item = T>) -> String {
    v.map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// The vector file: unit headers, then each row's accumulators and expected outputs (`xx` for
/// padding lanes), expected values from `Requant::apply`.
pub fn vectors_text(cases: &[Case], rows: &[Row]) -> String {
    let us = units(cases);
    let mut out = format!(
        "# ratflow {} requantizer bench vectors; expected values from quant::Requant::apply\nratflow-requant 1\nunits {}\n",
        crate::VERSION,
        us.len()
    );
    for (i, u) in us.iter().enumerate() {
        let lp = &cases[u.case].design.plan.layers[u.layer];
        let _ = writeln!(
            out,
            "unit {i} {} {} {} {}",
            lp.p,
            lp.groups,
            lp.out_features,
            lp.requant_latency()
        );
    }
    let _ = writeln!(out, "rows {}", rows.len());
    for r in rows {
        let u = &us[r.unit];
        let case = &cases[u.case];
        let lp = &case.design.plan.layers[u.layer];
        let _ = write!(out, "{} {} ", r.unit, r.group);
        // Lane 0 first, for accumulators and expected outputs alike.
        for &a in &r.accs {
            let _ = write!(out, "{:08x}", a as u32);
        }
        out.push(' ');
        for lane in 0..lp.p {
            let c = r.group * lp.p + lane;
            if c < lp.out_features {
                let y = case.model.layer_requant(u.layer, c).apply(r.accs[lane]);
                let _ = write!(out, "{:02x}", y as u8);
            } else {
                out.push_str("xx");
            }
        }
        out.push('\n');
    }
    out
}

/// Build sources of the bench over `cases`.
pub fn sources(cases: &[Case]) -> Result<Sources> {
    let us = units(cases);
    let views = || -> Vec<UnitView> {
        us.iter()
            .enumerate()
            .map(|(i, u)| {
                let c = &cases[u.case];
                let lp = &c.design.plan.layers[u.layer];
                UnitView {
                    index: i,
                    module: lp.requant_module.clone(),
                    doc: format!(
                        "{} layer {} ({}), k = {}, {} rounding, P = {}, {} group(s)",
                        c.label, u.layer, lp.name, lp.k, lp.rounding, lp.p, lp.groups
                    ),
                    p: lp.p,
                    groups: lp.groups,
                    acc_bits: lp.acc_bits,
                }
            })
            .collect()
    };
    let mut ports = Vec::new();
    for u in views() {
        let i = u.index;
        ports.push(format!("  input  wire u{i}_valid_i"));
        if u.groups > 1 {
            let gb = crate::rtl::verilog::ubits(u.groups as u64 - 1);
            ports.push(format!("  input  wire [{}:0] u{i}_group_i", gb - 1));
        }
        ports.push(format!(
            "  input  wire [{}:0] u{i}_acc_i",
            u.p * u.acc_bits as usize - 1
        ));
        ports.push(format!("  output wire u{i}_valid_o"));
        ports.push(format!("  output wire [{}:0] u{i}_q_o", u.p * 8 - 1));
    }
    let header = format!(
        "// Generated by ratflow {}: requantizer bench over {}.",
        crate::VERSION,
        list(
            cases
                .iter()
                .map(|c| format!("{} (model hash {})", c.label, c.design.plan.model_hash))
        )
    );
    let wrapper = WrapperView {
        header: header.clone(),
        module: WRAPPER.into(),
        ports: ports.join(",\n"),
        units: views(),
    };
    let harness = HarnessView {
        header,
        module: WRAPPER.into(),
        ps: list(views().iter().map(|u| u.p)),
        groups: list(views().iter().map(|u| u.groups)),
        channels: list(
            us.iter()
                .map(|u| cases[u.case].design.plan.layers[u.layer].out_features),
        ),
        latencies: list(
            us.iter()
                .map(|u| cases[u.case].design.plan.layers[u.layer].requant_latency()),
        ),
        labels: list(views().iter().map(|u| {
            let c = &cases[us[u.index].case];
            format!(
                "\"{} {}\"",
                c.label.replace(['"', '\\'], "?"),
                c.design.plan.layers[us[u.index].layer]
                    .requant_module
                    .replace(['"', '\\'], "?")
            )
        })),
        units: views(),
    };
    let mut files = Vec::new();
    let mut verilog = Vec::new();
    for c in cases {
        for l in &c.design.plan.layers {
            let name = format!("{}.v", l.requant_module);
            let f = c
                .design
                .file(&name)
                .ok_or_else(|| anyhow::anyhow!("design lacks {name}"))?;
            files.push((format!("rtl/{name}"), f.text.as_bytes().to_vec()));
            verilog.push(format!("rtl/{name}"));
        }
    }
    files.push((
        format!("rtl/{WRAPPER}.v"),
        crate::rtl::render(&wrapper, "requantizer bench wrapper")?.into_bytes(),
    ));
    verilog.push(format!("rtl/{WRAPPER}.v"));
    files.push((
        "tb/tb_requant.cpp".into(),
        crate::rtl::render(&harness, "requantizer bench harness")?.into_bytes(),
    ));
    files.push((
        "tb/ratflow_tb.h".into(),
        super::harness::SUPPORT_HEADER.as_bytes().to_vec(),
    ));
    Ok(Sources {
        top: WRAPPER.into(),
        files,
        verilog,
        control: Vec::new(),
        harness: "tb/tb_requant.cpp".into(),
        tag: "requant".into(),
        trace: false,
    })
}

/// Builds the bench (cached) and runs `rows` through it.
pub fn run(
    cases: &[Case],
    rows: &[Row],
    cache: &Path,
    seed: u64,
    bubble: f64,
) -> Result<(Built, Outcome)> {
    let built = super::build(&sources(cases)?, cache)?;
    let path = built.dir.join(format!(
        "requant-{}-{}.vec",
        std::process::id(),
        &fsio::sha256_hex(format!("{:?}", std::thread::current().id()).as_bytes())[..8]
    ));
    fsio::write_atomic(&path, vectors_text(cases, rows).as_bytes())?;
    let args = vec![
        "--vectors".to_string(),
        path.display().to_string(),
        "--seed".into(),
        seed.to_string(),
        "--bubble".into(),
        bubble.to_string(),
        "--max-report".into(),
        "20".into(),
    ];
    let out = super::run_harness(&built, &args, false);
    std::fs::remove_file(&path).ok();
    Ok((built, out?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::{RandomSpec, random_model};

    #[test]
    fn congruence_solutions_are_solutions() {
        for (m, e) in [
            (3u64, 5u32),
            (6, 9),
            (255, 62),
            (1, 1),
            (2147483647, 40),
            (12, 3),
        ] {
            let c = 1u64 << (e - 1);
            let sols = congruence(m, c, e, domain(32));
            for a in &sols {
                let p = (*a as i128) * m as i128;
                assert_eq!(p.rem_euclid(1i128 << e), c as i128, "m {m} e {e} a {a}");
            }
            // Solutions repeat every 2^(e - tz(m)): one always falls inside i32 when that
            // period is at most 2^31 (for a larger period there may be none in range).
            if m.trailing_zeros() < e && e - m.trailing_zeros() <= 31 {
                assert!(!sols.is_empty(), "m {m} e {e}");
            }
        }
        // No solution: a * 4 is never 2 modulo 4.
        assert!(congruence(4, 2, 2, domain(32)).is_empty());
    }

    #[test]
    fn corners_contain_ties_and_saturation_steps() {
        for (seed, rounding) in [(1u64, Rounding::Single), (2, Rounding::Double)] {
            let m = random_model(&RandomSpec {
                seed,
                inputs: Some(10),
                layers: Some(vec![6]),
                k_bits: Some(8),
                rounding: Some(rounding),
            });
            let mut ties = (0, 0);
            for c in 0..6 {
                let cs = corners(&m, 0, c, 32);
                assert!(cs.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
                for &a in &cs {
                    match tie_sign(&m, 0, c, a) {
                        Some(true) => ties.0 += 1,
                        Some(false) => ties.1 += 1,
                        None => {}
                    }
                }
                // The first accumulator that saturates high is in the set, with its neighbour.
                let rq = m.layer_requant(0, c);
                if rq.mult.m != 0
                    && let Some(a) = first_reaching(
                        |a| quant::rescale(a, rq.mult, rq.k, rq.rounding),
                        127 - rq.zero_point as i64,
                    )
                {
                    assert!(cs.contains(&a) && (a == i32::MIN || cs.contains(&(a - 1))));
                }
            }
            assert!(ties.0 > 0 && ties.1 > 0, "{rounding}: {ties:?}");
        }
    }

    #[test]
    fn vector_text_marks_padding_lanes() {
        let m = random_model(&RandomSpec {
            seed: 3,
            inputs: Some(4),
            layers: Some(vec![5]),
            k_bits: Some(4),
            rounding: Some(Rounding::Single),
        });
        let d = crate::rtl::generate(
            &m,
            &crate::rtl::Options {
                top: None,
                parallel: crate::rtl::Parallel::Each(3),
                ..Default::default()
            },
        )
        .unwrap();
        let cases = [Case {
            label: "t".into(),
            model: &m,
            design: &d,
        }];
        let rows = vec![Row {
            unit: 0,
            group: 1,
            accs: vec![100, -100, 0],
        }];
        let text = vectors_text(&cases, &rows);
        let last = text.lines().last().unwrap();
        let y0 = m.layer_requant(0, 3).apply(100) as u8;
        let y1 = m.layer_requant(0, 4).apply(-100) as u8;
        assert_eq!(
            last,
            format!("0 1 00000064ffffff9c00000000 {y0:02x}{y1:02x}xx")
        );
    }
}
