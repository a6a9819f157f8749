//! `ratflow bench-train`: seconds per training epoch of each stage on the job
//! (the 8,000 bundled training images, batch 64, 784-128-64-10, or any `--arch`), comparable
//! with `bench/torch_mlp.py` and `bench/torch_cnn.py`.
//!
//! Epoch time covers the training steps only (batch assembly, forward, backward, Adam);
//! the per-epoch test evaluation and checkpoint are excluded, as in the PyTorch script.
//! Augmentation is off so both sides do the same work. The median over epochs is reported
//! because a 2-core machine shared with compilers gives noisy single epochs.

use super::checkpoint::Checkpoint;
use super::trainer::{self, Hyper, StageRun};
use super::{Recipe, Stage, StageSetup, begin_stage};
use crate::data::Dataset;
use crate::quant::Rescale;
use anyhow::Result;

pub struct BenchJob {
    pub epochs: usize,
    pub hidden: Vec<usize>,
    /// A graph network of this architecture instead of the MLP.
    pub arch: Option<super::arch::Arch>,
    pub exec: super::exec::Exec,
    pub k: u32,
    pub threads: usize,
    pub seed: u64,
}

pub struct BenchRow {
    pub stage: Stage,
    pub epoch_seconds: Vec<f64>,
}

impl BenchRow {
    pub fn median(&self) -> f64 {
        median(&self.epoch_seconds)
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Times every stage in turn; each integer stage starts from the previous stage's weights,
/// as in a real run.
pub fn run(job: &BenchJob, train: &Dataset, test: &Dataset) -> Result<Vec<BenchRow>> {
    let recipe = Recipe::default();
    let plain = |h: &Hyper| Hyper {
        epochs: job.epochs,
        max_shift: 0,
        batch: 64,
        ..h.clone()
    };
    let mut ck: Checkpoint = match &job.arch {
        Some(a) => super::fresh_graph(a, train, job.seed, "bench")?,
        None => super::fresh(train.pixels_per_image(), &job.hidden, job.seed)?,
    };
    ck.net.set_exec(job.exec.clone())?;
    super::check_data(&ck, train, "training data")?;
    let mut rows = Vec::new();
    let mut qat_bytes = Vec::new();
    for stage in Stage::ALL {
        let hyper = plain(recipe.hyper(stage));
        let spec = Rescale::plain(job.k, crate::quant::Rounding::Single);
        if stage >= Stage::RatPaper {
            ck = Checkpoint::from_bytes(&qat_bytes)?;
            ck.net.set_exec(job.exec.clone())?;
        }
        let setup = StageSetup {
            stage,
            spec,
            seed: job.seed,
            threads: job.threads,
        };
        begin_stage(&mut ck, &setup, &hyper, train)?;
        let report = trainer::train_stage(
            &mut ck,
            &StageRun {
                stage,
                hyper: &hyper,
                spec,
                seed: job.seed,
                train,
                test,
                checkpoint: None,
                progress: false,
                targets: None,
            },
        )?;
        if stage == Stage::Qat {
            qat_bytes = ck.to_bytes()?;
        }
        rows.push(BenchRow {
            stage,
            epoch_seconds: report.epoch_seconds,
        });
    }
    Ok(rows)
}
