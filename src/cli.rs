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
    (1..=64)
        .find(|&b| {
            let half = 1i128 << (b - 1);
            (lo as i128) >= -half && (hi as i128) < half
        })
        .unwrap_or(64)
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
