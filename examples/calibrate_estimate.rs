//! Refits the analytical requantizer LUT model (`src/synth/estimate.rs`) against yosys.
//!
//! Synthesizes for iCE40 the requantizers of (a) random models over k, rounding mode and
//! parallelism, and (b) trained models: post-training exports of the shipped QAT checkpoint
//! (`models/qat.safetensors`) at every k, whose narrow shift ranges and normalised multipliers
//! random models do not have (they count three times in the fit). Fits the per-feature LUT
//! weights by least squares on relative error at k in {1, 3, 5, 8, 16, 31} and reports the
//! error at the held-out widths {2, 4, 6, 12, 24}, per module and per model.
//! Run: `cargo run --release --example calibrate_estimate` (a few minutes; needs yosys).

use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::Rounding;
use ratflow::rtl::{self, Parallel};
use ratflow::synth::{self, Scope, estimate, yosys::Target};

fn measure(
    model: &Model,
    parallel: Parallel,
    work: &std::path::Path,
) -> Vec<([f64; estimate::N], f64, String)> {
    let design = rtl::generate(
        model,
        &rtl::Options {
            parallel,
            ..Default::default()
        },
    )
    .expect("generate");
    if std::env::var_os("FEATURES_ONLY").is_some() {
        for l in &design.plan.layers {
            let lanes: Vec<String> = l
                .lanes
                .iter()
                .map(|lane| {
                    let mut sh: Vec<u32> = lane.chans.iter().map(|c| c.shift).collect();
                    sh.sort_unstable();
                    let smin = sh[0];
                    sh.dedup();
                    let m = lane.chans[0].mult.m;
                    format!(
                        "[{},{},{},{},{}]",
                        smin,
                        lane.max_shift(),
                        sh.len(),
                        m.count_ones(),
                        ratflow::quant::csd::weight(m as u64)
                    )
                })
                .collect();
            println!(
                "{} {{\"k\":{},\"acc\":{},\"G\":{},\"double\":{},\"lanes\":[{}]}}",
                l.requant_module,
                l.k,
                l.acc_bits,
                l.groups,
                l.rounding == ratflow::quant::Rounding::Double,
                lanes.join(",")
            );
        }
        return Vec::new();
    }
    let dir = work.join("rtl");
    let _ = std::fs::remove_dir_all(&dir);
    rtl::write(&design, &dir).expect("write");
    let cost = synth::synthesize(
        &design,
        &dir,
        &work.join("syn"),
        Target::Ice40,
        Scope::Requant,
        false,
    )
    .expect("synthesize");
    cost.modules
        .iter()
        .filter(|m| m.role == "requant")
        .map(|m| {
            let l = &design.plan.layers[m.layer.unwrap()];
            (
                estimate::features(l),
                m.stats.luts() as f64,
                format!(
                    "{} k={} {} P={} G={}",
                    m.name, l.k, l.rounding, l.p, l.groups
                ),
            )
        })
        .collect()
}

/// Widths the weights are fitted on; the others are held out.
const TRAIN_KS: [u32; 6] = [1, 3, 5, 8, 16, 31];

fn main() {
    let work = tempfile::tempdir().expect("tempdir");
    if let Some(list) = std::env::var_os("MODELS") {
        // Lane statistics (FEATURES_ONLY) or measurements of the given models only.
        for path in std::env::split_paths(&list) {
            let model = Model::load(&path).expect("model");
            for r in measure(&model, Parallel::Each(1), work.path()) {
                println!("{:>8.0} LUT  {}", r.1, r.2);
            }
        }
        return;
    }
    let mut rows = Vec::new();
    let mut seed = 0u64;
    for &k in &[1u32, 2, 3, 4, 5, 6, 8, 12, 16, 24, 31] {
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
                let got = measure(&model, parallel, work.path());
                for r in got {
                    eprintln!("{:>8.0} LUT  {}", r.1, r.2);
                    rows.push((k, r));
                }
            }
        }
    }
    // Trained models: PTQ exports of the shipped QAT network at every width.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let test = ratflow::data::load(&root.join("data"), ratflow::data::Split::Test).expect("data");
    let mut real = Vec::new();
    for &k in &[31u32, 24, 16, 12, 8, 6, 5, 4, 3, 2, 1] {
        let mut ck =
            ratflow::train::checkpoint::Checkpoint::load(&root.join("models/qat.safetensors"))
                .expect("models/qat.safetensors");
        let spec = ratflow::train::layers::IntSpec::plain(k, Rounding::Single);
        let ex = ratflow::train::export_checkpoint(&mut ck, spec, &format!("ptq_k{k}"), &test)
            .expect("export");
        let got = measure(&ex.model, Parallel::Each(1), work.path());
        for r in got {
            eprintln!("{:>8.0} LUT  {}", r.1, r.2);
            real.push((k, r));
        }
    }
    let mut train: Vec<([f64; estimate::N], f64)> = rows
        .iter()
        .filter(|(k, _)| TRAIN_KS.contains(k))
        .map(|(_, r)| (r.0, r.1))
        .collect();
    for _ in 0..3 {
        train.extend(
            real.iter()
                .filter(|(k, _)| TRAIN_KS.contains(k))
                .map(|(_, r)| (r.0, r.1)),
        );
    }
    let w = estimate::fit(&train);
    println!("pub const WEIGHTS: [f64; estimate::N] = {w:?};");
    for (name, v) in estimate::FEATURES.iter().zip(w) {
        println!("  {v:>9.4}  {name}");
    }
    let err = |x: &[f64; estimate::N], y: f64| {
        100.0 * (x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - y) / y
    };
    let held: Vec<f64> = rows
        .iter()
        .filter(|(k, _)| !TRAIN_KS.contains(k))
        .map(|(_, r)| err(&r.0, r.1).abs())
        .collect();
    let max = held.iter().cloned().fold(0.0, f64::max);
    let mean = held.iter().sum::<f64>() / held.len() as f64;
    println!(
        "held-out random requantizers: {} modules, mean |error| {mean:.1}%, max {max:.1}%",
        held.len()
    );
    for (k, r) in real.iter().filter(|(k, _)| !TRAIN_KS.contains(k)) {
        println!(
            "held-out trained k = {k:>2}: {:>6.0} measured, {:>+6.1}% estimated error: {}",
            r.1,
            err(&r.0, r.1),
            r.2
        );
    }
    let mut per_k: std::collections::BTreeMap<u32, (f64, f64)> = Default::default();
    for (k, r) in &real {
        let e = per_k.entry(*k).or_default();
        e.0 += r.1;
        e.1 += r.0.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
    }
    for (k, (m, e)) in per_k {
        let tag = if TRAIN_KS.contains(&k) {
            "fit "
        } else {
            "held"
        };
        println!(
            "trained model k = {k:>2} ({tag}), all layers: {m:>6.0} measured, {e:>6.0} estimated ({:+.1}%)",
            100.0 * (e - m) / m
        );
    }
    for name in ["qat_k31", "rat-b_k4", "rat-a_k4", "rat-a_k4_csd2"] {
        let Ok(model) = Model::load(&root.join(format!("models/{name}.json"))) else {
            continue;
        };
        for r in measure(&model, Parallel::Each(1), work.path()) {
            println!(
                "shipped: {:>6.0} measured, {:>+6.1}% estimated error: {}",
                r.1,
                err(&r.0, r.1),
                r.2
            );
        }
    }
}
