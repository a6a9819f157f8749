//! Whole networks in co-simulation: MNIST test images through a 784-128-64-10 model, and random
//! models (random sizes, zero points, k, rounding, per-layer P) on random inputs that include
//! -128 and 127, with random input bubbles and output stalls. Also checks the cycle model: with
//! no bubbles and no stalls the measured latency and interval equal the manifest's.

use crate::common::*;
use ratflow::golden::vectors::{self, Vector};
use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::Rounding;
use ratflow::rng::Rng;
use ratflow::rtl::{self, AccWidth, MulForm, Parallel};
use ratflow::sim::{self, Outcome, RunOptions};

fn mnist_model() -> Model {
    random_model(&RandomSpec {
        seed: 1,
        layers: Some(vec![128, 64, 10]),
        ..Default::default()
    })
}

/// Builds and runs `vs` through the design of `model` at `parallel`; checks the outcome and,
/// when the run has no bubbles and no stalls, the cycle model.
fn cosim(
    model: &Model,
    parallel: Parallel,
    vs: &[Vector],
    bubble: f64,
    stall: f64,
    seed: u64,
) -> Outcome {
    cosim_with(
        model,
        &rtl::Options {
            parallel,
            ..Default::default()
        },
        vs,
        bubble,
        stall,
        seed,
    )
}

/// [`cosim`] with every generator option.
fn cosim_with(
    model: &Model,
    opts: &rtl::Options,
    vs: &[Vector],
    bubble: f64,
    stall: f64,
    seed: u64,
) -> Outcome {
    let parallel = &opts.parallel;
    let d = rtl::generate(model, opts).unwrap();
    let built = sim::build(&sim::network_sources(&d, false).unwrap(), &cache()).unwrap();
    let out = sim::run_network(
        &built,
        &d.plan,
        vs,
        &RunOptions {
            seed,
            bubble,
            stall,
            ..RunOptions::default()
        },
        &d.timing,
    )
    .unwrap();
    assert!(
        out.success && out.failed == 0 && out.passed == vs.len() as u64,
        "{} at P = {parallel}: {}",
        model.name,
        out.output
    );
    if bubble == 0.0 && stall == 0.0 {
        assert_eq!(
            out.latency, d.timing.latency,
            "{} P = {parallel}: latency",
            model.name
        );
        if vs.len() >= 2 * d.plan.layers.len() + 8 + 2 * rtl::timing::INTERVAL_FRAMES {
            assert_eq!(
                out.interval, d.timing.interval,
                "{} P = {parallel}: interval",
                model.name
            );
        }
    }
    eprintln!(
        "{} P = {:?}, {} multiplier ({:?}), accumulators {:?}: {} vectors, {} cycles, {:.3} s, build {:.1} s{}",
        model.name,
        d.plan.parallel(),
        d.plan.multiplier,
        d.plan
            .layers
            .iter()
            .map(|l| l.requant_form())
            .collect::<Vec<_>>(),
        d.plan.layers.iter().map(|l| l.acc_bits).collect::<Vec<_>>(),
        vs.len(),
        out.cycles,
        out.wall_seconds,
        built.build_seconds,
        if built.cached { " (cached)" } else { "" }
    );
    out
}

#[test]
fn mnist_500_images_through_784_128_64_10_via_the_cli() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let path = save(&mnist_model(), tmp.path(), "mnist.json");
    let o = ratflow(&[
        "sim",
        "--model",
        p(&path),
        "--count",
        "500",
        "--parallel",
        "16",
        "--seed",
        "5",
        "--bubble",
        "0.2",
        "--stall",
        "0.3",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(summary(&out), (500, 0), "{out}");
    assert!(out.contains("500 vectors (MNIST t10k)"), "{out}");
}

#[test]
fn mnist_model_at_p1_and_full_parallel() {
    require_tools();
    let model = mnist_model();
    let data =
        ratflow::data::load(&ratflow::data::bundled_dir(), ratflow::data::Split::Test).unwrap();
    // P = 1: one MAC per layer, 100,352 cycles per image in the first layer.
    let vs = mnist_vectors(&model, &data, 14);
    cosim(&model, Parallel::Each(1), &vs, 0.0, 0.0, 1);
    // P = out_features everywhere, with enough images for the steady-state interval.
    let vs = mnist_vectors(&model, &data, 150);
    cosim(&model, Parallel::Full, &vs, 0.0, 0.0, 1);
    cosim(&model, Parallel::Full, &vs[..60], 0.3, 0.5, 2);
}

#[test]
fn mnist_images_through_a_csd_model_with_minimal_accumulators() {
    // A 784-128-64-10 model at k = 16, double rounding, every multiplicand limited to 3 CSD
    // digits, small biases: at P = 16 the first two layers add digits from their case ROMs and
    // the last one has baked shift-adds (no `*` in any requantizer), all with minimal
    // accumulators narrower than 32 bits.
    require_tools();
    let model = csd_limited(
        &small_biases(&random_model(&RandomSpec {
            seed: 1,
            layers: Some(vec![128, 64, 10]),
            k_bits: Some(16),
            rounding: Some(Rounding::Double),
            ..Default::default()
        })),
        3,
    );
    let opts = rtl::Options {
        top: None,
        parallel: Parallel::Each(16),
        multiplier: MulForm::Csd,
        acc: AccWidth::Minimal,
    };
    let d = rtl::generate(&model, &opts).unwrap();
    let forms: Vec<&str> = d.plan.layers.iter().map(|l| l.requant_form()).collect();
    assert_eq!(forms, ["csd-rom", "csd-rom", "csd-const"]);
    assert!(d.plan.layers.iter().all(|l| l.acc_bits < 32));
    for l in &d.plan.layers {
        let f = d.file(&format!("{}.v", l.requant_module)).unwrap();
        // Code without comments and without the `@(*)` of combinational blocks.
        let code = f
            .text
            .lines()
            .map(|line| line.split("//").next().unwrap_or("").replace("@(*)", ""));
        assert!(
            code.clone().all(|c| !c.contains('*')) && code.clone().any(|c| c.contains("_prod_d =")),
            "{}: a multiplier",
            l.requant_module
        );
    }
    let data =
        ratflow::data::load(&ratflow::data::bundled_dir(), ratflow::data::Split::Test).unwrap();
    let vs = mnist_vectors(&model, &data, 200);
    cosim_with(&model, &opts, &vs, 0.2, 0.3, 4);
}

#[test]
fn random_models_with_random_parallelism() {
    require_tools();
    let mut rng = Rng::new(42);
    let mut saw = (false, false, false);
    for (i, seed) in [301u64, 302, 303, 304].into_iter().enumerate() {
        let inputs = rng.range(1, 96) as usize;
        // Sizes, weights, zero points, k and M from the seed; rounding alternates so both
        // modes are covered.
        let model = random_model(&RandomSpec {
            seed,
            inputs: Some(inputs),
            rounding: Some(if i % 2 == 0 {
                Rounding::Single
            } else {
                Rounding::Double
            }),
            ..Default::default()
        });
        let outs: Vec<usize> = model.layers().iter().map(|l| l.out_features).collect();
        // Model 0 fully time-shared, model 1 fully parallel, the rest random per layer.
        let ps: Vec<usize> = match i {
            0 => vec![1; outs.len()],
            1 => outs.clone(),
            _ => outs
                .iter()
                .map(|&n| rng.range(1, n as i64) as usize)
                .collect(),
        };
        saw.0 |= ps.contains(&1);
        saw.1 |= ps.iter().zip(&outs).any(|(p, n)| p == n);
        saw.2 |= ps.iter().zip(&outs).any(|(p, n)| n % p != 0);
        let vs = vectors::generate(
            &model,
            &vectors::random_inputs(&model, seed, 160),
            None,
            false,
        )
        .unwrap()
        .into_v1()
        .unwrap();
        assert!(
            vs.iter().any(|v| v.input.contains(&-128)) && vs.iter().any(|v| v.input.contains(&127))
        );
        eprintln!(
            "{}: {} inputs, layers {:?}, k = {}, {} rounding, zero points {:?}, P = {:?}",
            model.name,
            inputs,
            outs,
            model.rescale.k_bits,
            model.rescale.rounding,
            model
                .layers()
                .iter()
                .map(|l| l.output.zero_point)
                .collect::<Vec<_>>(),
            ps
        );
        // Every multiplier form and accumulator width, CSD in both rounding modes.
        let (multiplier, acc) = [
            (MulForm::Mul, AccWidth::Minimal),
            (MulForm::Csd, AccWidth::Minimal),
            (MulForm::Csd, AccWidth::Bits32),
            (MulForm::Mul, AccWidth::Bits32),
        ][i];
        let opts = rtl::Options {
            top: None,
            parallel: Parallel::PerLayer(ps),
            multiplier,
            acc,
        };
        cosim_with(&model, &opts, &vs, 0.0, 0.0, seed);
        cosim_with(&model, &opts, &vs, 0.25, 0.4, seed + 1);
    }
    assert!(
        saw.0 && saw.1 && saw.2,
        "P = 1, P = out and a non-dividing P all covered"
    );
}

/// Version 1 vectors of the first `count` MNIST images.
fn mnist_vectors(model: &Model, data: &ratflow::data::Dataset, count: usize) -> Vec<Vector> {
    let q = model.input().q;
    let inputs = ratflow::data::InputSet::from_dataset(data, q.scale, q.zero_point, "MNIST");
    vectors::generate(model, &inputs, Some(count), false)
        .unwrap()
        .into_v1()
        .unwrap()
}
