//! Requantizer units alone: every layer of models at k in {31, 8, 4, 1}, both rounding modes,
//! with time-shared (case ROM), fully parallel (baked constants) and mixed lanes; all corner
//! accumulators plus at least 100,000 random accumulators per layer, expected values from
//! `quant::Requant::apply`.

use crate::common::*;
use ratflow::quant::Rounding;
use ratflow::rtl::{self, Parallel};
use ratflow::sim::requant::{self, Case};

const RANDOM_PER_LAYER: usize = 100_000;

#[test]
fn requantizers_match_the_semantics_on_corners_and_random_accumulators() {
    require_tools();
    let mut models = Vec::new();
    for (i, k) in [31u32, 8, 4, 1].into_iter().enumerate() {
        for (j, rounding) in [Rounding::Single, Rounding::Double].into_iter().enumerate() {
            let seed = 100 + (2 * i + j) as u64;
            // Layer 0 time-shared (P = 1, one case ROM), layer 1 fully parallel (baked
            // constants), layer 2 mixed with a padded last group (P = 3 of 4).
            let m = corner_model(seed, k, rounding, &[9, 7, 4], 16);
            models.push((format!("k{k}_{rounding}"), m));
        }
    }
    let designs: Vec<_> = models
        .iter()
        .map(|(label, m)| {
            rtl::generate(
                m,
                &rtl::Options {
                    top: Some(format!("rq_{label}")),
                    parallel: Parallel::PerLayer(vec![1, 7, 3]),
                    ..Default::default()
                },
            )
            .expect("generates")
        })
        .collect();
    let cases: Vec<Case> = models
        .iter()
        .zip(&designs)
        .map(|((label, m), d)| Case {
            label: label.clone(),
            model: m,
            design: d,
        })
        .collect();

    // The corner sets really contain what they promise, per configuration.
    for c in &cases {
        let (mut pos, mut neg, mut sat_hi, mut sat_lo) = (false, false, false, false);
        for (li, layer) in c.model.layers.iter().enumerate() {
            for ch in 0..layer.out_features {
                let rq = c.model.requant(li, ch);
                let cs = requant::corners(c.model, li, ch, c.design.plan.layers[li].acc_bits);
                assert!(cs.contains(&i32::MIN) && cs.contains(&i32::MAX) && cs.contains(&0));
                for &a in &cs {
                    match requant::tie_sign(c.model, li, ch, a) {
                        Some(true) => pos = true,
                        Some(false) => neg = true,
                        None => {}
                    }
                }
                // Both sides of each saturation limit, when the channel can reach it.
                let ys: Vec<i8> = cs.iter().map(|&a| rq.apply(a)).collect();
                sat_hi |= ys.contains(&127) && ys.contains(&126);
                sat_lo |= ys.contains(&rq.lo()) && ys.iter().any(|&y| y == rq.lo() + 1);
            }
        }
        assert!(pos && neg, "{}: exact ties of both signs", c.label);
        assert!(sat_hi && sat_lo, "{}: saturation boundaries", c.label);
    }

    let rows = requant::rows(&cases, RANDOM_PER_LAYER, 7);
    let checked_lanes: usize = rows
        .iter()
        .map(|r| {
            let u = &requant::units(&cases)[r.unit];
            let lp = &cases[u.case].design.plan.layers[u.layer];
            (lp.out_features - r.group * lp.p).min(lp.p)
        })
        .sum();
    let (built, out) = requant::run(&cases, &rows, &cache(), 11, 0.2).expect("bench runs");
    eprintln!(
        "requant bench: {} rows, {} accumulators, build {:.1} s{}",
        rows.len(),
        checked_lanes,
        built.build_seconds,
        if built.cached { " (cached)" } else { "" }
    );
    assert!(
        out.success && out.failed == 0,
        "requantizer mismatches:\n{}",
        out.mismatches().join("\n")
    );
    assert_eq!(out.passed as usize, checked_lanes);
    assert!(checked_lanes >= cases.len() * 3 * RANDOM_PER_LAYER);
}

#[test]
fn requant_bench_detects_a_wrong_constant() {
    // The bench itself can fail: a requantizer whose baked m is off by one is caught and the
    // mismatch names the unit and channel.
    require_tools();
    // Seed 4 gives layer 0 Z = -128 under ReLU (an odd seed gives Z = 127 under ReLU, whose
    // outputs are all 127 and could hide any constant).
    let m = corner_model(4, 8, Rounding::Single, &[8, 3], 10);
    assert_eq!(m.layers[0].output.zero_point, -128);
    let mut d = rtl::generate(
        &m,
        &rtl::Options {
            top: Some("rq_bug".into()),
            parallel: Parallel::Full,
            ..Default::default()
        },
    )
    .unwrap();
    // Channels 6 and 7 of layer 0 keep their random constants (the corners sit on 0..=5).
    let ch = (6..8)
        .find(|&c| m.layers[0].multiplier[c] >= 2)
        .expect("a random channel with m >= 2");
    let mult = m.layers[0].mult(ch);
    let name = format!("{}.v", d.plan.layers[0].requant_module);
    let f = d.verilog.iter_mut().find(|f| f.name == name).unwrap();
    let needle = format!("l{ch}_acc_q * $signed({{1'b0, 8'd{}}})", mult.m);
    assert!(f.text.contains(&needle), "{needle}");
    f.text = f.text.replace(
        &needle,
        &format!("l{ch}_acc_q * $signed({{1'b0, 8'd{}}})", mult.m - 1),
    );
    let cases = [Case {
        label: "bug".into(),
        model: &m,
        design: &d,
    }];
    let rows = requant::rows(&cases, 2000, 3);
    // The channel's expected outputs vary, so a wrong constant has something to change.
    let lane_outputs: std::collections::BTreeSet<i8> = rows
        .iter()
        .filter(|r| r.unit == 0)
        .map(|r| m.requant(0, ch).apply(r.accs[ch]))
        .collect();
    assert!(lane_outputs.len() > 20, "{lane_outputs:?}");
    let (_, out) = requant::run(&cases, &rows, &cache(), 1, 0.0).unwrap();
    assert!(!out.success && out.failed > 0, "{}", out.output);
    assert!(
        out.mismatches()
            .iter()
            .all(|l| l.contains("rq_bug_fc1_requant") && l.contains(&format!("channel {ch} "))),
        "{}",
        out.output
    );
}
