//! Command implementations behind `main.rs`'s argument parsing: each loads and validates its
//! inputs completely before writing anything.

use crate::data::{self, Dataset, Split};
use crate::error::input;
use crate::golden::{Engine, vectors};
use crate::model::Model;
use crate::model::random::{RandomSpec, random_model as generate_model};
use crate::quant::{self, Rounding};
use crate::train;
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

/// A CSD digit budget `D` in 1..=16 (`rescale.csd_digits`).
pub fn parse_csd(s: &str) -> std::result::Result<u32, String> {
    let d: u32 = s
        .parse()
        .map_err(|_| format!("CSD digit budget {s:?} is not an integer"))?;
    if !(1..=quant::MAX_CSD_DIGITS).contains(&d) {
        return Err(format!(
            "CSD digit budget {d} is outside 1..={} (1 = power-of-two rescaling)",
            quant::MAX_CSD_DIGITS
        ));
    }
    Ok(d)
}

/// `--csd 3,2,1` of the sweep: distinct budgets in 1..=16, or `none` for no CSD rows.
pub fn parse_csd_list(s: &str) -> std::result::Result<Vec<u32>, String> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    let ds = s
        .split(',')
        .map(|p| parse_csd(p.trim()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if ds.iter().enumerate().any(|(i, d)| ds[..i].contains(d)) {
        return Err(format!("{s:?}: list each digit budget once"));
    }
    Ok(ds)
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
    if model_path.extension().is_some_and(|e| e == "safetensors") {
        return eval_checkpoint(model_path, data_args, as_json);
    }
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
                "csd_digits": model.rescale.csd_digits,
            })
        );
    } else {
        println!(
            "{}: {acc:.2}% ({correct}/{total}) on {} [k = {}{}, {} rounding, hash {}]",
            model.name,
            data_args.split.as_str(),
            model.rescale.k_bits,
            model
                .rescale
                .csd_digits
                .map(|d| format!(", at most {d} CSD digits"))
                .unwrap_or_default(),
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
        assert_eq!(parse_csd("2").unwrap(), 2);
        for bad in ["0", "17", "x", "-1", ""] {
            assert!(parse_csd(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_csd_list("3,2,1").unwrap(), vec![3, 2, 1]);
        assert_eq!(parse_csd_list("none").unwrap(), Vec::<u32>::new());
        assert!(parse_csd_list("2,2").is_err());
        assert!(parse_csd_list("1,0").is_err());
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

/// `eval` of a training checkpoint: the float network of its weights (for a QAT/RAT
/// checkpoint, the float shadow weights; its integer accuracy is the exported JSON's).
fn eval_checkpoint(path: &Path, data_args: &DataArgs, as_json: bool) -> Result<()> {
    let mut ck = train::checkpoint::Checkpoint::load(path)?;
    let data = data_args.load()?;
    train::check_data(&ck, &data, &data_args.data.display().to_string())?;
    let preds = train::trainer::graph_predictions(&mut ck.mlp, &data, train::trainer::Mode::Float)?;
    let acc = train::trainer::accuracy_of(&preds, &data);
    let correct = preds
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    let hash = &crate::fsio::sha256_hex(&std::fs::read(path)?)[..16];
    if as_json {
        println!(
            "{}",
            json!({
                "checkpoint": path.display().to_string(), "stage": ck.stage.as_str(),
                "network": "float", "sha256_16": hash, "split": data_args.split.as_str(),
                "correct": correct, "total": data.len(), "accuracy": acc,
            })
        );
    } else {
        println!(
            "{} ({} checkpoint, float network): {acc:.2}% ({correct}/{}) on {} [sha256 {hash}]",
            path.display(),
            ck.stage.as_str(),
            data.len(),
            data_args.split.as_str(),
        );
    }
    Ok(())
}

/// Loads a split and keeps its first `limit` images.
fn load_limited(dir: &Path, split: Split, limit: Option<usize>) -> Result<Dataset> {
    let mut d = data::load(dir, split)?;
    if let Some(n) = limit {
        if n == 0 {
            return Err(input(format!(
                "{}: a limit of 0 images leaves no data",
                split.as_str()
            )));
        }
        d.truncate(n);
    }
    Ok(d)
}

/// Where training data comes from, shared by `train`, `sweep` and `bench-train`.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainData {
    /// Folder with the four standard MNIST IDX files (train split trains, t10k evaluates).
    #[arg(long, default_value_os_t = data::bundled_dir())]
    pub data: PathBuf,
    /// Use only the first N training images (smoke tests).
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
}

impl TrainData {
    pub fn load(&self) -> Result<(Dataset, Dataset)> {
        Ok((
            load_limited(&self.data, Split::Train, self.train_limit)?,
            load_limited(&self.data, Split::Test, self.test_limit)?,
        ))
    }
}

/// Every training hyper-parameter flag; unset ones keep the shipped recipe.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RecipeArgs {
    /// Float epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// QAT epochs.
    #[arg(long)]
    pub qat_epochs: Option<usize>,
    /// RAT epochs (both variants).
    #[arg(long)]
    pub rat_epochs: Option<usize>,
    /// Peak learning rate of the float stage (cosine schedule to zero).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Peak learning rate of QAT.
    #[arg(long)]
    pub qat_lr: Option<f64>,
    /// Peak learning rate of RAT (both variants).
    #[arg(long)]
    pub rat_lr: Option<f64>,
    /// Learning rate of the learned log2 rescale factors (RAT-b).
    #[arg(long)]
    pub rescale_lr: Option<f64>,
    /// Mini-batch size of every stage.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Random shift augmentation, in pixels per axis (0 = off), every stage.
    #[arg(long)]
    pub shift: Option<u32>,
}

impl RecipeArgs {
    pub fn apply(&self, mut r: train::Recipe) -> train::Recipe {
        let set = |v: Option<usize>, d: &mut usize| {
            if let Some(v) = v {
                *d = v
            }
        };
        set(self.epochs, &mut r.float.epochs);
        set(self.qat_epochs, &mut r.qat.epochs);
        set(self.rat_epochs, &mut r.rat.epochs);
        for (v, d) in [
            (self.lr, &mut r.float.lr),
            (self.qat_lr, &mut r.qat.lr),
            (self.rat_lr, &mut r.rat.lr),
            (self.rescale_lr, &mut r.rat.rescale_lr),
        ] {
            if let Some(v) = v {
                *d = v;
            }
        }
        for h in [&mut r.float, &mut r.qat, &mut r.rat] {
            set(self.batch, &mut h.batch);
            if let Some(s) = self.shift {
                h.max_shift = s;
            }
        }
        r
    }
}

pub struct TrainCmd {
    pub stages: Vec<train::Stage>,
    pub out: PathBuf,
    pub init: Option<PathBuf>,
    pub hidden: Option<Vec<usize>>,
    pub k: u32,
    pub rounding: Rounding,
    pub csd: Option<u32>,
    pub seed: u64,
    pub threads: usize,
    pub recipe: RecipeArgs,
    pub data: TrainData,
    pub quiet: bool,
}

pub fn train(cmd: TrainCmd) -> Result<()> {
    let (train_set, test_set) = cmd.data.load()?;
    let recipe = cmd.recipe.apply(train::Recipe::default());
    let job = train::TrainJob {
        stages: cmd.stages,
        out_dir: cmd.out,
        init: cmd.init,
        hidden: cmd.hidden,
        spec: train::layers::IntSpec {
            k: cmd.k,
            rounding: cmd.rounding,
            csd: cmd.csd,
        },
        seed: cmd.seed,
        threads: cmd.threads,
        recipe,
        progress: !cmd.quiet,
    };
    for p in train::run(&job, &train_set, &test_set)? {
        let secs = train::bench::median(&p.report.epoch_seconds);
        match (&p.model, p.exported) {
            (Some(m), Some((golden, graph, agree))) => println!(
                "{:<6} {} + {}: golden {golden:.2}%, graph {graph:.2}%, agreement {agree:.2}% ({} epochs, {secs:.3} s/epoch median)",
                p.stage.as_str(),
                p.checkpoint.display(),
                m.display(),
                p.report.epochs
            ),
            _ => println!(
                "{:<6} {}: float test {:.2}% ({} epochs, {secs:.3} s/epoch median)",
                p.stage.as_str(),
                p.checkpoint.display(),
                p.report.graph_test_accuracy,
                p.report.epochs
            ),
        }
    }
    Ok(())
}

pub struct SweepCmd {
    pub qat: PathBuf,
    pub float: PathBuf,
    pub ks: Vec<u32>,
    pub csd: Vec<u32>,
    pub csd_ks: Vec<u32>,
    pub out: PathBuf,
    pub rat_epochs: usize,
    pub recipe: RecipeArgs,
    pub rounding: Rounding,
    pub seed: u64,
    pub threads: usize,
    pub data: TrainData,
    pub save_models: bool,
    pub repeats: usize,
    pub quiet: bool,
}

pub fn sweep(cmd: SweepCmd) -> Result<()> {
    let (train_set, test_set) = cmd.data.load()?;
    let mut rat = cmd.recipe.apply(train::Recipe::default()).rat;
    rat.epochs = cmd.rat_epochs;
    let job = train::sweep::SweepJob {
        qat: cmd.qat,
        float: cmd.float,
        ks: cmd.ks,
        csd: cmd.csd,
        csd_ks: cmd.csd_ks,
        out_dir: cmd.out.clone(),
        rat,
        rounding: cmd.rounding,
        seed: cmd.seed,
        threads: cmd.threads,
        progress: !cmd.quiet,
        save_models: cmd.save_models,
        repeats: cmd.repeats,
    };
    let r = train::sweep::run(&job, &train_set, &test_set)?;
    print!("{}", train::sweep::markdown(&r));
    println!(
        "wrote {0}/sweep.json, {0}/sweep.md, {0}/sweep.svg{1}",
        cmd.out.display(),
        if r.constrained().next().is_some() {
            format!(", {}/sweep_csd.svg", cmd.out.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn bench_train(
    epochs: usize,
    hidden: Vec<usize>,
    k: u32,
    threads: usize,
    data: &TrainData,
    as_json: bool,
) -> Result<()> {
    if epochs == 0 {
        return Err(input("--epochs must be at least 1"));
    }
    let (train_set, test_set) = data.load()?;
    let job = train::bench::BenchJob {
        epochs,
        hidden,
        k,
        threads,
        seed: 1,
    };
    let rows = train::bench::run(&job, &train_set, &test_set)?;
    if as_json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({ "stage": r.stage.as_str(), "median_s_per_epoch": r.median(),
                             "epoch_seconds": r.epoch_seconds })
            })
            .collect();
        println!(
            "{}",
            json!({ "threads": threads, "images": train_set.len(), "batch": 64, "k": k, "stages": v })
        );
    } else {
        println!(
            "{} training images, batch 64, {threads} thread(s), median of {epochs} epochs:",
            train_set.len()
        );
        for r in &rows {
            println!("  {:<6} {:.3} s/epoch", r.stage.as_str(), r.median());
        }
    }
    Ok(())
}

/// `ratflow synth` options.
#[derive(clap::Args, Clone, Debug)]
pub struct SynthArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Cell library: generic gates (area in NAND2 equivalents), iCE40 (LUT4/CARRY/DFF, Fmax
    /// with nextpnr-ice40 when installed) or Xilinx 7-series (LUT/DSP48/FF).
    #[arg(long, default_value = "ice40", value_parser = parse_target)]
    pub target: crate::synth::yosys::Target,
    /// Output channels per layer computed at once (as for `ratflow rtl`).
    #[arg(long, default_value = "1", value_parser = crate::rtl::Parallel::parse)]
    pub parallel: crate::rtl::Parallel,
    /// Requantizer multiplier form: mul (`acc * m`), csd (shift-adds, no `*`; see `ratflow rtl`)
    /// or both, synthesized one after the other and compared module by module.
    #[arg(long, default_value = "mul", value_parser = parse_forms)]
    pub multiplier: Forms,
    /// Accumulator widths (as for `ratflow rtl`): minimal or 32.
    #[arg(long, default_value = "minimal", value_parser = crate::rtl::AccWidth::parse)]
    pub acc: crate::rtl::AccWidth,
    /// Synthesize the requantizers only (seconds instead of a minute for the MNIST MLP).
    #[arg(long)]
    pub requant_only: bool,
    /// Skip place-and-route (no Fmax figures).
    #[arg(long)]
    pub no_fmax: bool,
    /// Keep the generated RTL, scripts and logs here (default: a temporary folder).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_target(s: &str) -> std::result::Result<crate::synth::yosys::Target, String> {
    crate::synth::yosys::Target::parse(s)
        .ok_or_else(|| format!("unknown target {s:?}: use generic, ice40 or xilinx"))
}

/// The multiplier forms `ratflow synth` compares.
#[derive(Clone, Debug)]
pub struct Forms(pub Vec<crate::rtl::MulForm>);

/// `mul`, `csd` or `both`.
fn parse_forms(s: &str) -> std::result::Result<Forms, String> {
    use crate::rtl::MulForm;
    if s.trim() == "both" {
        return Ok(Forms(vec![MulForm::Mul, MulForm::Csd]));
    }
    MulForm::parse(s)
        .map(|f| Forms(vec![f]))
        .map_err(|_| format!("--multiplier {s:?}: expected mul, csd or both"))
}

pub fn synth(a: &SynthArgs) -> Result<()> {
    use crate::synth::{self, Scope};
    let model = Model::load(&a.model)?;
    crate::tools::require("yosys", "yosys")?;
    let temp;
    let work = match &a.work {
        Some(w) => w.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let scope = if a.requant_only {
        Scope::Requant
    } else {
        Scope::Design
    };
    let mut costs = Vec::new();
    for &multiplier in &a.multiplier.0 {
        let design = crate::rtl::generate(
            &model,
            &crate::rtl::Options {
                parallel: a.parallel.clone(),
                multiplier,
                acc: a.acc,
                ..Default::default()
            },
        )?;
        // One folder per form so that both can be kept and compared.
        let base = if a.multiplier.0.len() > 1 {
            work.join(multiplier.as_str())
        } else {
            work.clone()
        };
        let rtl_dir = base.join("rtl");
        crate::rtl::write(&design, &rtl_dir)?;
        costs.push(synth::synthesize(
            &design,
            &rtl_dir,
            &base.join("synth"),
            a.target,
            scope,
            !a.no_fmax,
        )?);
    }
    match (costs.as_slice(), a.json) {
        ([one], true) => println!("{}", serde_json::to_string_pretty(&one.to_json())?),
        ([one], false) => print!("{}", one.to_text()),
        ([mul, csd], true) => {
            let mut out = serde_json::json!({
                "model": mul.model, "hash": mul.hash, "target": mul.target.as_str(),
                "forms": { "mul": mul.to_json(), "csd": csd.to_json() },
            });
            out["comparison"] = synth::compare_forms(mul, csd);
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ([mul, csd], false) => {
            print!("{}\n{}\n", mul.to_text(), csd.to_text());
            print!("{}", synth::compare_text(mul, csd));
        }
        _ => unreachable!("one or two multiplier forms"),
    }
    Ok(())
}

/// `ratflow flow` options.
#[derive(clap::Args, Clone, Debug)]
pub struct FlowArgs {
    /// Run folder: every artifact and REPORT.md.
    #[arg(long, default_value = "runs/default")]
    pub out: PathBuf,
    /// Small budget (fewer epochs, widths and vectors; rescaler synthesis only): what CI runs.
    #[arg(long)]
    pub quick: bool,
    /// Rescale width of the final model.
    #[arg(long, default_value = "4", value_parser = parse_k)]
    pub k: u32,
    /// RAT variant that becomes the hardware: rat-a (paper) or rat-b (learned rescale).
    #[arg(long, default_value = "rat-b")]
    pub variant: String,
    #[arg(long, default_value = "single", value_parser = parse_rounding)]
    pub rounding: Rounding,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Matrix-product threads for training (recorded; results are identical for 1 and 2).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Output channels per layer computed at once in the generated RTL.
    #[arg(long, default_value = "1", value_parser = crate::rtl::Parallel::parse)]
    pub parallel: crate::rtl::Parallel,
    /// Re-run every stage even if its inputs did not change.
    #[arg(long)]
    pub force: bool,
    /// Folder with the MNIST IDX files.
    #[arg(long, default_value_os_t = data::bundled_dir())]
    pub data: PathBuf,
}

pub fn flow(a: &FlowArgs) -> Result<()> {
    let variant = match crate::train::Stage::parse(&a.variant) {
        Some(s @ (crate::train::Stage::RatPaper | crate::train::Stage::RatLearned)) => s,
        _ => {
            return Err(input(format!(
                "--variant {:?}: use rat-a or rat-b",
                a.variant
            )));
        }
    };
    if a.threads == 0 {
        return Err(input("--threads must be at least 1"));
    }
    crate::train::set_threads(a.threads);
    let cfg = crate::flow::FlowConfig {
        out: a.out.clone(),
        data: a.data.clone(),
        quick: a.quick,
        k: a.k,
        rounding: a.rounding,
        variant,
        seed: a.seed,
        threads: a.threads,
        parallel: a.parallel.clone(),
        force: a.force,
    };
    let r = crate::flow::run(&cfg)?;
    println!("flow finished: every stage passed");
    for l in &r.logs {
        println!(
            "  {:<14} {:>8}  {}",
            l.name,
            if l.cached {
                "cached".to_string()
            } else {
                format!("{:.1} s", l.seconds)
            },
            l.summary
        );
    }
    println!("report: {}", r.report.display());
    Ok(())
}
