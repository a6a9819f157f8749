//! Command implementations behind `main.rs`'s argument parsing: each loads and validates its
//! inputs completely before writing anything.

use crate::data::{self, Dataset, Split};
use crate::error::input;
use crate::golden::{Engine, vectors};
use crate::model::Model;
use crate::model::random::{RandomSpec, random_model as generate_model};
use crate::quant::{self, Rounding};
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `--data DIR --split NAME`, shared by every command that reads MNIST.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// Folder with the four standard MNIST IDX files (gzipped or raw).
    #[arg(long, default_value_os_t = data::bundled_dir())]
    pub data: PathBuf,
    /// Which split: t10k (test) or train.
    #[arg(long, default_value = "t10k", value_parser = parse_split)]
    pub split: Split,
}

impl DataArgs {
    pub fn load(&self) -> Result<Dataset> {
        data::load(&self.data, self.split)
    }
}

pub fn parse_split(s: &str) -> std::result::Result<Split, String> {
    Split::parse(s).ok_or_else(|| format!("unknown split {s:?}: use t10k or train"))
}

pub fn parse_k(s: &str) -> std::result::Result<u32, String> {
    let k: u32 = s
        .parse()
        .map_err(|_| format!("k = {s:?} is not an integer"))?;
    if !(1..=quant::MAX_K_BITS).contains(&k) {
        return Err(format!("k = {k} is outside 1..={}", quant::MAX_K_BITS));
    }
    Ok(k)
}

pub fn parse_rounding(s: &str) -> std::result::Result<Rounding, String> {
    Rounding::parse(s).ok_or_else(|| format!("rounding {s:?} is not single or double"))
}

/// Comma-separated positive sizes, e.g. `128,64`.
pub fn parse_sizes(s: &str) -> std::result::Result<Vec<usize>, String> {
    let sizes: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("{s:?} is not a comma-separated list of sizes like 128,64"))?;
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(format!("{s:?}: sizes must be positive"));
    }
    Ok(sizes)
}

/// Accuracy of `model` on a dataset, in percent, with the counts.
pub fn accuracy(model: &Model, data: &Dataset) -> Result<(f64, usize, usize)> {
    if data.pixels_per_image() != model.input_len() {
        return Err(input(format!(
            "model {} takes {} inputs but the images have {} pixels",
            model.name,
            model.input_len(),
            data.pixels_per_image()
        )));
    }
    let correct = Engine::new(model).correct(data, data.len());
    Ok((
        100.0 * correct as f64 / data.len() as f64,
        correct,
        data.len(),
    ))
}

pub fn eval(model_path: &Path, data_args: &DataArgs, as_json: bool) -> Result<()> {
    let model = Model::load(model_path)?;
    let data = data_args.load()?;
    let (acc, correct, total) = accuracy(&model, &data)?;
    if as_json {
        println!(
            "{}",
            json!({
                "model": model.name, "hash": model.content_hash(),
                "split": data_args.split.as_str(), "correct": correct, "total": total,
                "accuracy": acc, "k_bits": model.rescale.k_bits,
                "rounding": model.rescale.rounding.as_str(),
            })
        );
    } else {
        println!(
            "{}: {acc:.2}% ({correct}/{total}) on {} [k = {}, {} rounding, hash {}]",
            model.name,
            data_args.split.as_str(),
            model.rescale.k_bits,
            model.rescale.rounding,
            model.content_hash()
        );
    }
    Ok(())
}

pub fn vectors(
    model_path: &Path,
    data_args: &DataArgs,
    count: usize,
    random_inputs: Option<u64>,
    out: &Path,
) -> Result<()> {
    let model = Model::load(model_path)?;
    if count == 0 {
        return Err(input("--count must be at least 1"));
    }
    let data;
    let source = match random_inputs {
        Some(seed) => vectors::Inputs::Random { seed },
        None => {
            data = data_args.load()?;
            vectors::Inputs::Data(&data)
        }
    };
    let vs = vectors::generate(&model, source, count)?;
    vectors::write_jsonl(out, &vs)?;
    eprintln!("wrote {} vectors to {}", vs.len(), out.display());
    Ok(())
}

pub fn random_model(spec: &RandomSpec, out: &Path) -> Result<()> {
    if spec.inputs == Some(0) {
        return Err(input("--inputs must be positive"));
    }
    let model = generate_model(spec);
    model.save(out)?;
    eprintln!(
        "wrote {} ({} layers, k = {}, {} rounding) to {}",
        model.name,
        model.layers.len(),
        model.rescale.k_bits,
        model.rescale.rounding,
        out.display()
    );
    Ok(())
}

pub fn rtl(model_path: &Path, out: &Path, opts: crate::rtl::Options) -> Result<()> {
    let model = Model::load(model_path)?;
    let design = crate::rtl::generate(&model, &opts)?;
    crate::rtl::write(&design, out)?;
    let p = &design.plan;
    eprintln!(
        "wrote {} ({} files) to {}: top {}, P = {:?}, multiplier {}, accumulators {:?} bits, latency {} cycles, {} cycles per inference",
        model.name,
        design.files().count(),
        out.display(),
        p.top,
        p.parallel(),
        p.multiplier,
        p.layers.iter().map(|l| l.acc_bits).collect::<Vec<_>>(),
        design.timing.latency,
        design.timing.interval
    );
    Ok(())
}

/// Options of `ratflow sim`.
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Golden vectors (JSONL, DESIGN format) from any tool; default: generated here.
    #[arg(long, conflicts_with_all = ["count", "random_inputs"])]
    pub vectors: Option<PathBuf>,
    /// Vectors to generate: MNIST test images for a 784-input model, else random inputs.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Generate random int8 inputs (corner patterns first) from this seed instead of images.
    #[arg(long, value_name = "SEED")]
    pub random_inputs: Option<u64>,
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
    pub data: DataArgs,
}

pub fn sim(a: &SimArgs) -> Result<()> {
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
            let use_data = a.random_inputs.is_none() && model.input_len() == 784;
            if use_data {
                let data = a.data.load()?;
                (
                    vectors::generate(&model, vectors::Inputs::Data(&data), a.count)?,
                    format!("MNIST {}", a.data.split.as_str()),
                )
            } else {
                let seed = a.random_inputs.unwrap_or(1);
                (
                    vectors::generate(&model, vectors::Inputs::Random { seed }, a.count)?,
                    format!("random inputs, seed {seed}"),
                )
            }
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
    let out = sim::run_network(&built, plan, &vs, &run, &design.timing)?;
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

/// Per-layer facts for `inspect`.
fn layer_facts(model: &Model, i: usize) -> serde_json::Value {
    let l = &model.layers[i];
    let zx = model.layer_input(i).zero_point;
    let nz: Vec<usize> = (0..l.out_features)
        .filter(|&c| l.multiplier[c] != 0)
        .collect();
    let min_of = |f: &dyn Fn(usize) -> i64| nz.iter().map(|&c| f(c)).min();
    let max_of = |f: &dyn Fn(usize) -> i64| nz.iter().map(|&c| f(c)).max();
    let (lo, hi) = (0..l.out_features)
        .map(|c| l.acc_range(c, zx))
        .fold((i64::MAX, i64::MIN), |(a, b), (lo, hi)| {
            (a.min(lo), b.max(hi))
        });
    let bound = (0..l.out_features)
        .map(|c| l.acc_bound(c))
        .max()
        .unwrap_or(0);
    let ms: Vec<f64> = nz.iter().map(|&c| l.mult(c).value()).collect();
    json!({
        "name": l.name, "in_features": l.in_features, "out_features": l.out_features,
        "relu": l.relu, "input_zero_point": zx,
        "output": { "scale": l.output.scale, "zero_point": l.output.zero_point },
        "multiplier": { "min": min_of(&|c| l.multiplier[c] as i64), "max": max_of(&|c| l.multiplier[c] as i64) },
        "shift": { "min": min_of(&|c| l.shift[c] as i64), "max": max_of(&|c| l.shift[c] as i64) },
        "zero_multipliers": l.out_features - nz.len(),
        "m_real": { "min": ms.iter().cloned().fold(f64::INFINITY, f64::min),
                    "max": ms.iter().cloned().fold(0.0, f64::max) },
        "acc_range": [lo, hi], "acc_bound": bound,
        "acc_bits": bits_for(lo, hi),
    })
}

/// Bits of a two's complement register holding every value in `lo..=hi`.
pub fn bits_for(lo: i64, hi: i64) -> u32 {
    crate::rtl::verilog::sbits(lo, hi)
}

pub fn inspect(model_path: &Path, as_json: bool) -> Result<()> {
    let model = Model::load(model_path)?;
    let layers: Vec<_> = (0..model.layers.len())
        .map(|i| layer_facts(&model, i))
        .collect();
    let params: usize = model
        .layers
        .iter()
        .map(|l| l.weight.len() + l.bias.len())
        .sum();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "name": model.name, "hash": model.content_hash(),
                "k_bits": model.rescale.k_bits, "rounding": model.rescale.rounding.as_str(),
                "csd_digits": model.rescale.csd_digits,
                "input": { "shape": model.input.shape, "scale": model.input.qparams.scale,
                           "zero_point": model.input.qparams.zero_point },
                "parameters": params, "layers": layers,
            }))?
        );
        return Ok(());
    }
    println!("model     {} (hash {})", model.name, model.content_hash());
    println!(
        "rescale   k = {} bits, {} rounding{}",
        model.rescale.k_bits,
        model.rescale.rounding,
        model
            .rescale
            .csd_digits
            .map(|d| format!(", at most {d} CSD digits"))
            .unwrap_or_default()
    );
    println!(
        "input     {:?}, S = {:.6}, Z = {}",
        model.input.shape, model.input.qparams.scale, model.input.qparams.zero_point
    );
    println!("params    {params}");
    for f in &layers {
        println!(
            "{:<8}  {:>4} -> {:<4} relu={:<5}  out S={:.5} Z={:<4}  m {}..{}  s {}..{}  M {:.3e}..{:.3e}  acc {}..{} ({} bits, bound {})",
            f["name"].as_str().unwrap_or(""),
            f["in_features"],
            f["out_features"],
            f["relu"],
            f["output"]["scale"].as_f64().unwrap_or(0.0),
            f["output"]["zero_point"],
            f["multiplier"]["min"],
            f["multiplier"]["max"],
            f["shift"]["min"],
            f["shift"]["max"],
            f["m_real"]["min"].as_f64().unwrap_or(0.0),
            f["m_real"]["max"].as_f64().unwrap_or(0.0),
            f["acc_range"][0],
            f["acc_range"][1],
            f["acc_bits"],
            f["acc_bound"],
        );
        if f["zero_multipliers"].as_u64().unwrap_or(0) > 0 {
            println!(
                "          {} channel(s) with m = 0 always output the zero point",
                f["zero_multipliers"]
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_sizes("128,64").unwrap(), vec![128, 64]);
        assert!(parse_sizes("128x64").is_err());
        assert!(parse_sizes("0").is_err());
        assert!(parse_sizes("").is_err());
        assert!(parse_k("0").is_err());
        assert!(parse_k("32").is_err());
        assert_eq!(parse_k("31").unwrap(), 31);
        assert!(parse_split("val").is_err());
    }

    #[test]
    fn bits_for_twos_complement() {
        assert_eq!(bits_for(-128, 127), 8);
        assert_eq!(bits_for(-129, 127), 9);
        assert_eq!(bits_for(0, 128), 9);
        assert_eq!(bits_for(i32::MIN as i64, i32::MAX as i64), 32);
        assert_eq!(bits_for(0, 0), 1);
    }
}
