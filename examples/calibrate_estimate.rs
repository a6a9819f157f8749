//! Refits the analytical requantizer LUT model (`src/synth/estimate.rs`) against yosys.
//!
//! Measures (yosys 0.23 `synth_ice40`, requantizers synthesized alone as `ratflow synth
//! --requant-only` does) three sets and appends one JSON line per requantizer to a dump:
//!
//! - random models over k, rounding and parallelism (`ratflow random-model`), whose i32-sized
//!   biases keep 32-bit accumulators and whose multiplicands use every bit;
//! - trained models: post-training exports of the shipped QAT checkpoint
//!   (`models/qat.safetensors`) at every k, with minimal and with 32-bit accumulators, at
//!   P = 1 and P = 16 (narrow shift ranges and normalised multiplicands random models lack);
//! - the shipped int-models.
//!
//! Then fits the per-feature weights by least squares on relative error, on every k except the
//! held-out widths {2, 6, 12, 24} (trained rows count three times), and prints the weights, the
//! held-out errors per module and the per-model totals the flow report shows.
//!
//! Run: `cargo run --release --example calibrate_estimate [DUMP]` (needs yosys; the random
//! set at k >= 16 dominates, tens of minutes on two cores). The dump is appended to: `SETS=`
//! a comma list of `random`, `trained`, `shipped` measures part of it, and `FIT_ONLY=1` refits
//! from an existing dump without synthesis.

use anyhow::{Context, Result};
use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::Rounding;
use ratflow::rtl::{self, AccWidth, MulForm, Parallel};
use ratflow::synth::estimate::{self, RequantShape};
use ratflow::synth::{self, Scope, yosys::Target};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Widths never fitted on.
const HELD_OUT_KS: [u32; 4] = [2, 6, 12, 24];

#[derive(Serialize, Deserialize)]
struct Row {
    set: String,
    label: String,
    module: String,
    shape: RequantShape,
    luts: f64,
}

fn measure(
    set: &str,
    label: &str,
    model: &Model,
    opts: rtl::Options,
    work: &Path,
    dump: &mut std::fs::File,
) -> Result<Vec<Row>> {
    let design = rtl::generate(model, &opts)?;
    let dir = work.join("rtl");
    let _ = std::fs::remove_dir_all(&dir);
    rtl::write(&design, &dir)?;
    let cost = synth::synthesize(
        &design,
        &dir,
        &work.join("syn"),
        Target::Ice40,
        Scope::Requant,
        false,
    )?;
    let mut rows = Vec::new();
    for m in cost.modules.iter().filter(|m| m.role == "requant") {
        let l = &design.plan.layers[m.layer.context("requant module without a layer")?];
        let row = Row {
            set: set.into(),
            label: label.into(),
            module: m.name.clone(),
            shape: RequantShape::of(l),
            luts: m.stats.luts() as f64,
        };
        eprintln!(
            "{:>7.0} LUT  {set} {label} {} k={} A={} G={} {}",
            row.luts, row.module, l.k, l.acc_bits, l.groups, row.shape.form
        );
        writeln!(dump, "{}", serde_json::to_string(&row)?)?;
        rows.push(row);
    }
    Ok(rows)
}

fn opts(parallel: Parallel, acc: AccWidth, multiplier: MulForm) -> rtl::Options {
    rtl::Options {
        parallel,
        acc,
        multiplier,
        ..Default::default()
    }
}

fn collect(dump_path: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let mut dump = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dump_path)
        .with_context(|| format!("cannot open {}", dump_path.display()))?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `SETS=trained,shipped` measures a part (appending to the dump).
    let sets = std::env::var("SETS").unwrap_or_else(|_| "random,trained,shipped".into());
    let want = |set: &str| sets.split(',').any(|s| s.trim() == set);
    let mut seed = 0u64;
    let random_ks: &[u32] = if want("random") {
        &[1, 2, 3, 4, 6, 8, 12, 16, 24, 31]
    } else {
        &[]
    };
    for &k in random_ks {
        for rounding in [Rounding::Single, Rounding::Double] {
            for (layers, parallel) in [
                (vec![128, 64, 10], Parallel::Each(1)),
                (vec![24, 10], Parallel::Full),
                (vec![40, 12], Parallel::Each(4)),
            ] {
                seed += 1;
                let model = random_model(&RandomSpec {
                    seed,
                    layers: Some(layers),
                    k_bits: Some(k),
                    rounding: Some(rounding),
                    ..Default::default()
                });
                let o = opts(parallel, AccWidth::Minimal, MulForm::Mul);
                measure("random", &model.name, &model, o, work.path(), &mut dump)?;
            }
        }
    }
    let test = ratflow::data::load(&root.join("data"), ratflow::data::Split::Test)?;
    let trained_ks: &[u32] = if want("trained") {
        &[31, 24, 16, 12, 8, 6, 4, 3, 2, 1]
    } else {
        &[]
    };
    for &k in trained_ks {
        let mut ck =
            ratflow::train::checkpoint::Checkpoint::load(&root.join("models/qat.safetensors"))?;
        let spec = ratflow::quant::Rescale::plain(k, Rounding::Single);
        let ex = ratflow::train::export_checkpoint(&mut ck, spec, &format!("ptq_k{k}"), &test)?;
        let mut variants = vec![
            (Parallel::Each(1), AccWidth::Minimal),
            (Parallel::Each(1), AccWidth::Bits32),
        ];
        if k <= 8 {
            variants.push((Parallel::Each(16), AccWidth::Minimal));
        }
        for (p, acc) in variants {
            let label = format!("ptq_k{k} P={p} acc={acc}");
            let o = opts(p, acc, MulForm::Mul);
            measure("trained", &label, &ex.model, o, work.path(), &mut dump)?;
        }
    }
    let shipped: &[&str] = if want("shipped") {
        &[
            "qat_k31",
            "rat-b_k4",
            "rat-a_k4",
            "rat-a_k4_csd2",
            "rat-b_k4_csd2",
        ]
    } else {
        &[]
    };
    for name in shipped {
        let model = Model::load(&root.join(format!("models/{name}.json")))?;
        for multiplier in [MulForm::Mul, MulForm::Csd] {
            let o = opts(Parallel::Each(1), AccWidth::Minimal, multiplier);
            let label = format!("{name} P=1 {multiplier}");
            measure("shipped", &label, &model, o, work.path(), &mut dump)?;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let dump_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/calibrate_estimate.jsonl".into());
    let dump_path = Path::new(&dump_path);
    if std::env::var_os("FIT_ONLY").is_none() {
        collect(dump_path)?;
    }
    let text = std::fs::read_to_string(dump_path)?;
    let rows: Vec<Row> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    // Forms the model covers; the CSD digit ROM is reported without an estimate.
    let covered = |r: &&Row| estimate::features(&r.shape).is_some();
    let held = |r: &Row| HELD_OUT_KS.contains(&r.shape.k);
    let mut train = Vec::new();
    for r in rows.iter().filter(covered).filter(|r| !held(r)) {
        let x = estimate::features(&r.shape).expect("covered");
        let reps = if r.set == "random" { 1 } else { 3 };
        for _ in 0..reps {
            train.push((x, r.luts));
        }
    }
    let w = estimate::fit(&train);
    println!("pub const WEIGHTS: [f64; N] = {w:?};");
    for (name, v) in estimate::FEATURES.iter().zip(w) {
        println!("  {v:>9.4}  {name}");
    }
    let est = |r: &Row| -> f64 {
        let x = estimate::features(&r.shape).expect("covered");
        x.iter().zip(w).map(|(a, b)| a * b).sum()
    };
    let err = |r: &Row| 100.0 * (est(r) - r.luts) / r.luts;
    for (tag, fit) in [("fitted", true), ("held-out", false)] {
        for set in ["random", "trained", "shipped"] {
            let e: Vec<f64> = rows
                .iter()
                .filter(covered)
                .filter(|r| r.set == set && held(r) != fit)
                .map(|r| err(r).abs())
                .collect();
            if e.is_empty() {
                continue;
            }
            let mean = e.iter().sum::<f64>() / e.len() as f64;
            let max = e.iter().cloned().fold(0.0, f64::max);
            println!(
                "{tag:>8} {set:>7}: {:>3} requantizers, mean |error| {mean:>4.1}%, max {max:>4.1}%",
                e.len()
            );
        }
    }
    // Per model (what the flow report compares): the requantizers of one design together.
    let mut labels: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.set != "random") {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    for label in labels {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.label == label).collect();
        let measured: f64 = rs.iter().map(|r| r.luts).sum();
        if rs.iter().all(covered) {
            let e: f64 = rs.iter().map(|r| est(r)).sum();
            let per: Vec<String> = rs.iter().map(|r| format!("{:+.0}%", err(r))).collect();
            println!(
                "{label:<32} {measured:>6.0} measured, {e:>6.0} estimated ({:+5.1}%; modules {})",
                100.0 * (e - measured) / measured,
                per.join(" ")
            );
        } else {
            println!("{label:<32} {measured:>6.0} measured, not estimated (CSD digit ROM)");
        }
    }
    Ok(())
}
