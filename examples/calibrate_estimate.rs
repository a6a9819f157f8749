//! Refits the analytical requantizer LUT model (`src/synth/estimate.rs`) against yosys.
//!
//! Synthesizes the requantizers of random models over k, rounding mode and parallelism for
//! iCE40, fits the per-feature LUT weights by least squares on even-numbered designs, and
//! reports the error on the odd-numbered (held-out) ones and on the shipped models.
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
) -> Vec<([f64; 7], f64, String)> {
    let design = rtl::generate(
        model,
        &rtl::Options {
            parallel,
            ..Default::default()
        },
    )
    .expect("generate");
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

fn main() {
    let work = tempfile::tempdir().expect("tempdir");
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
                    rows.push((seed, r));
                }
            }
        }
    }
    let train: Vec<([f64; 7], f64)> = rows
        .iter()
        .filter(|(s, _)| s % 2 == 0)
        .map(|(_, r)| (r.0, r.1))
        .collect();
    let w = estimate::fit(&train);
    println!("pub const WEIGHTS: [f64; 7] = {w:?};");
    for (name, v) in estimate::FEATURES.iter().zip(w) {
        println!("  {v:>9.4}  {name}");
    }
    let err =
        |x: &[f64; 7], y: f64| 100.0 * (x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - y) / y;
    let held: Vec<f64> = rows
        .iter()
        .filter(|(s, _)| s % 2 == 1)
        .map(|(_, r)| err(&r.0, r.1).abs())
        .collect();
    let max = held.iter().cloned().fold(0.0, f64::max);
    let mean = held.iter().sum::<f64>() / held.len() as f64;
    println!(
        "held-out requantizers: {} designs, mean |error| {mean:.1}%, max {max:.1}%",
        held.len()
    );
    for name in ["qat_k31", "rat-b_k4", "rat-a_k4"] {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/{name}.json"));
        let Ok(model) = Model::load(&path) else {
            continue;
        };
        for p in [Parallel::Each(1), Parallel::Full] {
            for r in measure(&model, p.clone(), work.path()) {
                println!(
                    "{:>6.0} measured, {:>+6.1}% estimated error: {}",
                    r.1,
                    err(&r.0, r.1),
                    r.2
                );
            }
        }
    }
}
