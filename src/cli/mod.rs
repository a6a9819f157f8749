//! The command line: one file per command, each holding its clap arguments and calling one
//! library function; this module holds the argument groups and parsers they share. Every
//! command loads and validates its inputs completely before writing anything.

pub mod bench;
pub mod bench_train;
pub mod eval;
pub mod flow;
pub mod import;
pub mod inspect;
pub mod ptq_sweep;
pub mod random_model;
pub mod rtl;
pub mod sim;
pub mod sweep;
pub mod synth;
pub mod train;
pub mod vectors;

use crate::data::{self, Dataset, InputSet, Split};
use crate::error::input;
use crate::golden::vectors::corner_inputs;
use crate::model::Model;
use crate::quant::{self, Rounding};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Where a model's inputs come from: MNIST IDX (the bundled default), `--inputs X.npy` (with
/// optional `--labels Y.npy`) or `--random-inputs SEED`.
#[derive(clap::Args, Clone, Debug)]
pub struct InputArgs {
    /// Folder with the four standard MNIST IDX files (gzipped or raw), for MNIST-shaped models.
    #[arg(long, default_value_os_t = data::bundled_dir())]
    pub data: PathBuf,
    /// Which MNIST split: t10k (test) or train.
    #[arg(long, default_value = "t10k", value_parser = parse_split)]
    pub split: Split,
    /// Inputs as a .npy array `[N, ...input shape]`: int8 codes, or float32/float64 real values
    /// quantized with the model's input (S, Z).
    #[arg(long, value_name = "X.npy", conflicts_with = "random_inputs")]
    pub inputs: Option<PathBuf>,
    /// Labels of --inputs as a .npy integer array `[N]`, each below the model's output size.
    #[arg(long, value_name = "Y.npy", requires = "inputs")]
    pub labels: Option<PathBuf>,
    /// Random int8 inputs (corner patterns first) from this seed.
    #[arg(long, value_name = "SEED")]
    pub random_inputs: Option<u64>,
}

impl InputArgs {
    /// The inputs for `model`; `random_count` is how many random inputs to draw.
    pub fn load(&self, model: &Model, random_count: usize) -> Result<InputSet> {
        let t = model.input();
        let classes = model.num_classes();
        if let Some(path) = &self.inputs {
            let codes = data::npy::read_inputs(path, t.len(), t.q.scale, t.q.zero_point)?;
            let labels = self
                .labels
                .as_ref()
                .map(|l| data::npy::read_labels(l, codes.len(), classes))
                .transpose()?;
            return Ok(InputSet {
                codes,
                labels,
                source: path.display().to_string(),
            });
        }
        if let Some(seed) = self.random_inputs {
            return Ok(InputSet::random(
                seed,
                random_count,
                t.len(),
                corner_inputs(model),
            ));
        }
        let d = data::load(&self.data, self.split)?;
        if d.pixels_per_image() != t.len() {
            return Err(input(format!(
                "model {} takes {} inputs (shape {:?}) but the MNIST images in {} have {} pixels: pass --inputs X.npy or --random-inputs SEED",
                model.name,
                t.len(),
                t.shape,
                self.data.display(),
                d.pixels_per_image()
            )));
        }
        Ok(InputSet::from_dataset(
            &d,
            t.q.scale,
            t.q.zero_point,
            &format!("MNIST {}", self.split.as_str()),
        ))
    }
}

/// `--data DIR --split NAME`, for commands that read MNIST only (float checkpoints).
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
}
