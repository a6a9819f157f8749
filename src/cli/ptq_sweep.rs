//! `ratflow ptq-sweep`: an int-model's rescalers narrowed to each k, against its k = 31 self.

use crate::data::{InputSet, npy};
use crate::golden::sweep;
use crate::model::Model;
use anyhow::Result;
use std::path::PathBuf;

/// Post-training sweep over the rescaler width k of any int-model that carries its real
/// factors (`weight_scale`: imported `.tflite` models, trained models): every rescaler, ADD's
/// three included, re-derived at each k (each op keeps its rounding), run on the golden
/// engine, and compared with the k = 31 model: top-1 agreement, max and mean absolute int8
/// difference of the final tensor, SNR of the dequantized final tensor, and accuracy with
/// labels. Prints a markdown table; with --out, writes sweep.json and sweep.md there.
///
/// (`ratflow sweep` is the training sweep of a QAT checkpoint: PTQ, RAT-a and RAT-b.)
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    /// Inputs as a .npy array `[N, ...input shape]` (int8 codes, or float32/float64 real
    /// values quantized with the model's input (S, Z)); default: uniform random int8 codes.
    #[arg(long, value_name = "X.npy")]
    pub inputs: Option<PathBuf>,
    /// Labels of --inputs (.npy integers `[N]`), for the accuracy column.
    #[arg(long, value_name = "Y.npy", requires = "inputs")]
    pub labels: Option<PathBuf>,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 1, conflicts_with = "inputs")]
    pub seed: u64,
    /// Inputs used (the first N of --inputs, or N random ones).
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Widths to sweep.
    #[arg(long, default_value = "31,16,12,8,6,5,4,3,2", value_parser = super::parse_k, value_delimiter = ',')]
    pub ks: Vec<u32>,
    /// Folder for sweep.json and sweep.md.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: &Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    if a.count == 0 {
        return Err(crate::error::input("--count must be at least 1"));
    }
    let t = model.input();
    let inputs = match &a.inputs {
        Some(path) => {
            let codes = npy::read_inputs(path, t.len(), t.q.scale, t.q.zero_point)?;
            let labels = a
                .labels
                .as_ref()
                .map(|l| npy::read_labels(l, codes.len(), model.num_classes()))
                .transpose()?;
            let mut set = InputSet {
                codes,
                labels,
                source: path.display().to_string(),
            };
            set.truncate(a.count);
            set
        }
        None => {
            let mut set = InputSet::random(a.seed, a.count, t.len(), Vec::new());
            set.source = format!("uniform random int8 codes, seed {}", a.seed);
            set
        }
    };
    let s = sweep::run(&model, &inputs, &a.ks)?;
    let md = sweep::markdown(&s);
    print!("{md}");
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::error::input(format!("cannot create {}: {e}", dir.display())))?;
        crate::fsio::write_atomic(
            dir.join("sweep.json"),
            serde_json::to_string_pretty(&s)?.as_bytes(),
        )?;
        crate::fsio::write_atomic(dir.join("sweep.md"), md.as_bytes())?;
        eprintln!("wrote {0}/sweep.json, {0}/sweep.md", dir.display());
    }
    Ok(())
}
