//! Requantizer units alone: every layer of models at k in {31, 8, 4, 1} (and CSD-limited
//! models at k = 31 and 16), both rounding modes, with time-shared (case ROM), fully parallel
//! (baked constants) and mixed lanes, in every multiplier form (`*`, CSD shift-adds baked or from
//! a digit ROM) and with 32-bit and minimal accumulators; all corner accumulators plus at least
//! 100,000 random accumulators per layer, expected values from `quant::Requant::apply`.

use crate::common::*;
use ratflow::model::Model;
use ratflow::quant::Rounding;
use ratflow::rtl::{self, AccWidth, MulForm, Parallel};
use ratflow::sim::requant::{self, Case};
use std::collections::BTreeSet;

const RANDOM_PER_LAYER: usize = 100_000;

/// The bench's designs: corner models at k in {31, 8, 4, 1} x both roundings with 32-bit
/// accumulators, in both multiplier forms; the same with small biases (narrow minimal
/// accumulators), in both forms; and CSD-limited models (D = 2 at k = 31, D = 3 at k = 16,
/// small biases) whose time-shared lanes take the digit ROM. Layer 0 is time-shared (P = 1, one
/// case ROM), layer 1 fully parallel (baked constants), layer 2 mixed with a padded last group
/// (P = 3 of 4).
fn bench_models() -> Vec<(String, Model, MulForm, AccWidth)> {
    let mut out = Vec::new();
    for (i, k) in [31u32, 8, 4, 1].into_iter().enumerate() {
        for (j, rounding) in [Rounding::Single, Rounding::Double].into_iter().enumerate() {
            let seed = 100 + (2 * i + j) as u64;
            let m = corner_model(seed, k, rounding, &[9, 7, 4], 16);
            for form in [MulForm::Mul, MulForm::Csd] {
                let label = format!("k{k}_{rounding}_{form}");
                out.push((format!("{label}_a32"), m.clone(), form, AccWidth::Bits32));
                out.push((
                    format!("{label}_small_bias_amin"),
                    small_biases(&m),
                    form,
                    AccWidth::Minimal,
                ));
            }
        }
    }
    for (k, d) in [(31u32, 2u32), (16, 3)] {
        for (j, rounding) in [Rounding::Single, Rounding::Double].into_iter().enumerate() {
            let m = corner_model(120 + k as u64 + j as u64, k, rounding, &[9, 7, 4], 16);
            out.push((
                format!("k{k}_d{d}_{rounding}_csd_amin"),
                csd_limited(&small_biases(&m), d),
                MulForm::Csd,
                AccWidth::Minimal,
            ));
        }
    }
    out
}

#[test]
fn requantizers_match_the_semantics_on_corners_and_random_accumulators() {
    require_tools();
    let models = bench_models();
    let designs: Vec<_> = models
        .iter()
        .map(|(label, m, form, acc)| {
            rtl::generate(
                m,
                &rtl::Options {
                    top: Some(format!("rq_{label}")),
                    parallel: Parallel::PerLayer(vec![1, 7, 3]),
                    multiplier: *form,
                    acc: *acc,
                },
            )
            .expect("generates")
        })
        .collect();
    let labels: Vec<(String, &Model)> = models.iter().map(|(l, m, _, _)| (l.clone(), m)).collect();
    let cases: Vec<Case> = labels
        .iter()
        .zip(&designs)
        .map(|((label, m), d)| Case {
            label: label.clone(),
            model: m,
            design: d,
        })
        .collect();

    // The bench covers every requantizer form, and narrow accumulators (below 16 bits too).
    let layers = || cases.iter().flat_map(|c| &c.design.plan.layers);
    let forms: BTreeSet<&str> = layers().map(|l| l.requant_form()).collect();
    assert_eq!(
        forms,
        BTreeSet::from(["csd-const", "csd-rom", "mul-const", "mul-rom"])
    );
    assert!(
        layers().any(|l| l.multiplier == MulForm::Csd && l.requant_form() == "mul-rom"),
        "a CSD layer with too many digits keeps its multiplier"
    );
    let widths: BTreeSet<u32> = layers().map(|l| l.acc_bits).collect();
    eprintln!("requant bench: accumulator widths {widths:?}");
    assert!(
        widths.iter().any(|&b| b < 16) && widths.iter().any(|&b| (16..32).contains(&b)),
        "{widths:?}"
    );

    // The corner sets really contain what they promise, per configuration.
    for c in &cases {
        let (mut pos, mut neg, mut sat_hi, mut sat_lo) = (false, false, false, false);
        for (li, layer) in c.model.layers().iter().enumerate() {
            for ch in 0..layer.out_features {
                let rq = c.model.layer_requant(li, ch);
                let bits = c.design.plan.layers[li].acc_bits;
                let cs = requant::corners(c.model, li, ch, bits);
                let (dmin, dmax) = requant::domain(bits);
                assert!(
                    cs.contains(&(dmin as i32)) && cs.contains(&(dmax as i32)) && cs.contains(&0)
                );
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
    assert_eq!(m.layers()[0].output.zero_point, -128);
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
        .find(|&c| m.layers()[0].multiplier[c] >= 2)
        .expect("a random channel with m >= 2");
    let mult = m.layers()[0].mult(ch);
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
        .map(|r| m.layer_requant(0, ch).apply(r.accs[ch]))
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

#[test]
fn requant_bench_detects_a_wrong_csd_digit() {
    // The CSD forms can fail too: a baked shift-add with one digit's sign flipped, and a digit
    // ROM row with one digit field changed (its position, sign or enable), are both caught,
    // every mismatch naming its unit and the corrupted channel.
    require_tools();
    let m = corner_model(4, 8, Rounding::Single, &[8, 3], 10);
    assert_eq!(m.layers()[0].output.zero_point, -128);
    let ch = (6..8)
        .find(|&c| ratflow::quant::csd::weight(m.layers()[0].multiplier[c] as u64) >= 2)
        .expect("a random channel with at least two CSD digits");
    let generate = |top: &str, parallel| {
        rtl::generate(
            &m,
            &rtl::Options {
                top: Some(top.into()),
                parallel,
                multiplier: MulForm::Csd,
                acc: AccWidth::Minimal,
            },
        )
        .unwrap()
    };
    let mut baked = generate("rq_csdbug", Parallel::Full);
    let mut rom = generate("rq_csdrom", Parallel::Each(1));
    assert_eq!(baked.plan.layers[0].requant_form(), "csd-const");
    assert_eq!(rom.plan.layers[0].requant_form(), "csd-rom");

    // Baked: flip the sign of the second term of lane ch's shift-add.
    let name = format!("{}.v", baked.plan.layers[0].requant_module);
    let f = baked.verilog.iter_mut().find(|f| f.name == name).unwrap();
    let start = format!("wire signed [39:0] l{ch}_prod_d = ");
    let line = f
        .text
        .lines()
        .find(|l| l.trim_start().starts_with(&start))
        .unwrap_or_else(|| panic!("{start}"))
        .to_string();
    let (head, tail) = line.split_at(line.find(" = ").unwrap() + 3);
    let i = tail
        .find(" + ")
        .into_iter()
        .chain(tail.find(" - "))
        .min()
        .unwrap();
    let flipped = if &tail[i..i + 3] == " + " {
        " - "
    } else {
        " + "
    };
    let bad = format!("{head}{}{flipped}{}", &tail[..i], &tail[i + 3..]);
    f.text = f.text.replace(&line, &bad);

    // ROM: in channel ch's row, flip the low bit of its first digit field.
    let name = format!("{}.v", rom.plan.layers[0].requant_module);
    let f = rom.verilog.iter_mut().find(|f| f.name == name).unwrap();
    let row_start = format!("3'd{ch}: begin ");
    let line = f
        .text
        .lines()
        .find(|l| l.trim_start().starts_with(&row_start))
        .unwrap()
        .to_string();
    let body = &line[line.find(&row_start).unwrap() + row_start.len()..];
    let first = body.split(';').next().unwrap().trim(); // `l0_dsh0_d = 1'd1`
    assert!(first.starts_with("l0_d"), "{first}");
    let (field, lit) = first.split_once(" = ").unwrap();
    let (w, v) = lit.split_once("'d").unwrap();
    let bad_first = format!("{field} = {w}'d{}", v.parse::<u64>().unwrap() ^ 1);
    f.text = f.text.replace(&line, &line.replacen(first, &bad_first, 1));

    let cases = [
        Case {
            label: "baked".into(),
            model: &m,
            design: &baked,
        },
        Case {
            label: "rom".into(),
            model: &m,
            design: &rom,
        },
    ];
    let rows = requant::rows(&cases, 2000, 3);
    // The channel's expected outputs vary, so a wrong digit has something to change.
    let lane_outputs: std::collections::BTreeSet<i8> = rows
        .iter()
        .filter(|r| r.unit == 0)
        .map(|r| m.layer_requant(0, ch).apply(r.accs[ch]))
        .collect();
    assert!(lane_outputs.len() > 20, "{lane_outputs:?}");
    // One run per design (the harness reports the first mismatches only), same build.
    let units = requant::units(&cases);
    for (case, unit) in [(0, "rq_csdbug_fc1_requant"), (1, "rq_csdrom_fc1_requant")] {
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| units[r.unit].case == case)
            .cloned()
            .collect();
        let (_, out) = requant::run(&cases, &mine, &cache(), 1, 0.0).unwrap();
        assert!(!out.success && out.failed > 0, "{}", out.output);
        let mism = out.mismatches();
        assert!(
            !mism.is_empty()
                && mism
                    .iter()
                    .all(|l| l.contains(unit) && l.contains(&format!("channel {ch} "))),
            "{}",
            out.output
        );
    }
}
