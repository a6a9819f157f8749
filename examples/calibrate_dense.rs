//! Fits the analytical dense-layer LUT model (`estimate::dense_features`) against yosys.
//!
//! Synthesizes whole designs hierarchically for iCE40 (as `ratflow synth` does: weight ROMs in
//! block RAM) and keeps each dense module's own LUT4s: random models over input length, layer
//! widths and P (32-bit accumulators: their biases are i32-sized), and the shipped k = 4 model
//! at P = 1, 4 and 16 with minimal and 32-bit accumulators. One JSON line per dense module goes
//! to the dump (appended); `FIT_ONLY=1` refits from it without synthesis.
//! Run: `cargo run --release --example calibrate_dense [DUMP]` (needs yosys; about 10 minutes).

use anyhow::{Context, Result};
use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::rtl::{self, AccWidth, Parallel};
use ratflow::synth::estimate::{self, DenseShape};
use ratflow::synth::{self, Scope, yosys::Target};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Serialize, Deserialize)]
struct Row {
    label: String,
    module: String,
    shape: DenseShape,
    luts: f64,
}

fn measure(label: &str, model: &Model, opts: rtl::Options, dump: &mut std::fs::File) -> Result<()> {
    let work = tempfile::tempdir()?;
    let design = rtl::generate(model, &opts)?;
    let dir = work.path().join("rtl");
    rtl::write(&design, &dir)?;
    let cost = synth::synthesize(
        &design,
        &dir,
        &work.path().join("syn"),
        Target::Ice40,
        Scope::Design,
        false,
    )?;
    for m in cost.modules.iter().filter(|m| m.role == "dense") {
        let l = &design.plan.layers[m.layer.context("dense module without a layer")?];
        let row = Row {
            label: label.into(),
            module: m.name.clone(),
            shape: DenseShape::of(l),
            luts: m.stats.luts() as f64,
        };
        eprintln!(
            "{:>7.0} LUT  {label} {} {:?}",
            row.luts, row.module, row.shape
        );
        writeln!(dump, "{}", serde_json::to_string(&row)?)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let dump_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/calibrate_dense.jsonl".into());
    let dump_path = Path::new(&dump_path);
    if std::env::var_os("FIT_ONLY").is_none() {
        let mut dump = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dump_path)?;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = Model::load(&root.join("models/rat-b_k4.json"))?;
        for (p, acc) in [
            (4, AccWidth::Minimal),
            (4, AccWidth::Bits32),
            (16, AccWidth::Minimal),
            (1, AccWidth::Minimal),
            (1, AccWidth::Bits32),
        ] {
            let opts = rtl::Options {
                parallel: Parallel::Each(p),
                acc,
                ..Default::default()
            };
            measure(
                &format!("rat-b_k4 P={p} acc={acc}"),
                &shipped,
                opts,
                &mut dump,
            )?;
        }
        // (Random models at larger P with wide random k spend most of their time in the
        // requantizers, which this fit does not use; these three are quick.)
        let shapes: [(usize, Vec<usize>, usize); 3] = [
            (64, vec![32, 10], 1),
            (64, vec![32, 10], 4),
            (200, vec![48, 16], 2),
        ];
        for (i, (inputs, layers, p)) in shapes.into_iter().enumerate() {
            let model = random_model(&RandomSpec {
                seed: 100 + i as u64,
                inputs: Some(inputs),
                layers: Some(layers),
                ..Default::default()
            });
            let opts = rtl::Options {
                parallel: Parallel::Each(p),
                ..Default::default()
            };
            measure(&format!("{} P={p}", model.name), &model, opts, &mut dump)?;
        }
    }
    let text = std::fs::read_to_string(dump_path)?;
    let rows: Vec<Row> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    let train: Vec<_> = rows
        .iter()
        .map(|r| (estimate::dense_features(&r.shape), r.luts))
        .collect();
    let w = estimate::fit(&train);
    println!("pub const DENSE_WEIGHTS: [f64; DENSE_N] = {w:?};");
    for (name, v) in estimate::DENSE_FEATURES.iter().zip(w) {
        println!("  {v:>9.4}  {name}");
    }
    // Leave-one-model-out: refit without each label's rows, predict them.
    let mut labels: Vec<&str> = Vec::new();
    for r in &rows {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    for label in labels {
        let others: Vec<_> = rows
            .iter()
            .filter(|r| r.label != label)
            .map(|r| (estimate::dense_features(&r.shape), r.luts))
            .collect();
        let wo = estimate::fit(&others);
        let mine: Vec<&Row> = rows.iter().filter(|r| r.label == label).collect();
        let m: f64 = mine.iter().map(|r| r.luts).sum();
        let dot = |w: &[f64; estimate::DENSE_N], r: &Row| -> f64 {
            estimate::dense_features(&r.shape)
                .iter()
                .zip(w)
                .map(|(a, b)| a * b)
                .sum()
        };
        let e_in: f64 = mine.iter().map(|r| dot(&w, r)).sum();
        let e_out: f64 = mine.iter().map(|r| dot(&wo, r)).sum();
        println!(
            "{label:<34} {m:>6.0} measured, {e_in:>6.0} fitted ({:+5.1}%), {e_out:>6.0} left out ({:+5.1}%)",
            100.0 * (e_in - m) / m,
            100.0 * (e_out - m) / m
        );
    }
    Ok(())
}
