//! `ratflow sim`: Verilator co-simulation of the generated RTL against golden vectors.

use super::InputArgs;
use crate::error::input;
use crate::golden::vectors;
use crate::model::Model;
use anyhow::Result;
use std::path::PathBuf;

/// Bit-exact co-simulation of the generated RTL (Verilator) against golden vectors.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    /// Golden vectors (JSONL, DESIGN format) from any tool; default: generated here.
    #[arg(long, conflicts_with_all = ["count", "random_inputs", "inputs"])]
    pub vectors: Option<PathBuf>,
    /// Vectors to generate: from MNIST test images for a 784-input model, --inputs, or random
    /// inputs otherwise.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Simulate this `ratflow rtl` folder instead of generating the RTL.
    #[arg(long, conflicts_with_all = ["parallel", "top", "multiplier", "acc"])]
    pub rtl: Option<PathBuf>,
    /// Output channels per layer computed at once (as for `ratflow rtl`).
    #[arg(long, value_parser = crate::rtl::Parallel::parse)]
    pub parallel: Option<crate::rtl::Parallel>,
    #[arg(long)]
    pub top: Option<String>,
    /// Requantizer multiplier form (as for `ratflow rtl`): mul or csd.
    #[arg(long, value_parser = crate::rtl::MulForm::parse)]
    pub multiplier: Option<crate::rtl::MulForm>,
    /// Accumulator widths (as for `ratflow rtl`): minimal or 32.
    #[arg(long, value_parser = crate::rtl::AccWidth::parse)]
    pub acc: Option<crate::rtl::AccWidth>,
    /// Seed of the testbench's bubbles and stalls.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Probability that the input source idles in a cycle.
    #[arg(long, default_value_t = 0.1)]
    pub bubble: f64,
    /// Probability that the output sink drops ready in a cycle.
    #[arg(long, default_value_t = 0.2)]
    pub stall: f64,
    /// Write an FST waveform (builds a tracing simulator).
    #[arg(long, value_name = "OUT.fst")]
    pub trace: Option<PathBuf>,
    /// Build cache folder (default: $RATFLOW_CACHE, else ~/.cache/ratflow).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Mismatches printed in full (all are counted).
    #[arg(long, default_value_t = 10)]
    pub max_report: usize,
    #[command(flatten)]
    pub inputs: InputArgs,
}

pub fn run(a: &Args) -> Result<()> {
    use crate::sim;
    let model = Model::load(&a.model)?;
    for (name, p) in [("--bubble", a.bubble), ("--stall", a.stall)] {
        if !(0.0..1.0).contains(&p) {
            return Err(input(format!("{name} = {p} must be in [0, 1)")));
        }
    }
    if a.count == 0 {
        return Err(input("--count must be at least 1"));
    }
    // Fail early, before generating vectors, when the simulator is missing.
    sim::verilator()?;
    let opts = match &a.rtl {
        Some(dir) => sim::rtl_dir_options(dir)?,
        None => crate::rtl::Options {
            top: a.top.clone(),
            parallel: a.parallel.clone().unwrap_or(crate::rtl::Parallel::Each(1)),
            multiplier: a.multiplier.unwrap_or_default(),
            acc: a.acc.unwrap_or_default(),
        },
    };
    let mut design = crate::rtl::generate(&model, &opts)?;
    if let Some(dir) = &a.rtl {
        sim::use_rtl_dir(&mut design, dir)?;
    }
    let (vs, source) = match &a.vectors {
        Some(path) => (
            vectors::read_jsonl(path, &model)?,
            path.display().to_string(),
        ),
        None => {
            // MNIST-shaped models default to the test images, every other to random inputs.
            let mut args = a.inputs.clone();
            if args.inputs.is_none() && args.random_inputs.is_none() && model.input_len() != 784 {
                args.random_inputs = Some(1);
            }
            let inputs = args.load(&model, a.count)?;
            (
                vectors::generate(&model, &inputs, Some(a.count), false)?,
                inputs.source,
            )
        }
    };
    let plan = &design.plan;
    println!(
        "sim: model {} (hash {}), top {}, P = {:?}, multiplier {}, accumulators {:?} bits, {} vectors ({source})",
        model.name,
        plan.model_hash,
        plan.top,
        plan.parallel(),
        plan.multiplier,
        plan.layers.iter().map(|l| l.acc_bits).collect::<Vec<_>>(),
        vs.len()
    );
    let cache = sim::cache_root(a.cache.as_deref());
    let sources = sim::network_sources(&design, a.trace.is_some())?;
    let built = sim::build(&sources, &cache)?;
    if built.cached {
        println!("build: cached in {}", built.dir.display());
    } else {
        println!(
            "build: {:.1} s (verilator, -j {}) in {}",
            built.build_seconds,
            sim::BUILD_JOBS,
            built.dir.display()
        );
    }
    let run = sim::RunOptions {
        seed: a.seed,
        bubble: a.bubble,
        stall: a.stall,
        max_report: a.max_report,
        trace: a.trace.clone(),
        echo: true,
    };
    let out = sim::run_network(&built, plan, v1_of(&vs)?, &run, &design.timing)?;
    let wall = out.wall_seconds.max(1e-9);
    println!(
        "run: {} cycles in {:.3} s = {:.3} M cycles/s, {:.1} images/s; latency {} cycles, interval {:.2} cycles/inference (no-stall model: {}, {:.2})",
        out.cycles,
        out.wall_seconds,
        out.cycles as f64 / wall / 1e6,
        vs.len() as f64 / wall,
        out.latency,
        out.interval,
        design.timing.latency,
        design.timing.interval
    );
    if let Some(t) = &a.trace {
        println!("trace: {}", t.display());
    }
    println!("{} passed, {} failed", out.passed, out.failed);
    if out.failed > 0 || !out.success {
        anyhow::bail!(
            "co-simulation failed: {} of {} vectors mismatched",
            out.failed,
            vs.len()
        );
    }
    Ok(())
}

/// The version 1 records the dense-chain RTL is checked against.
fn v1_of(vs: &vectors::Vectors) -> Result<&[vectors::Vector]> {
    vs.v1().ok_or_else(|| {
        input("the dense-chain RTL is co-simulated with version 1 vectors (a version 1 model)")
    })
}
