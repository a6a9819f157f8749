//! `ratflow bench-train`: seconds per training epoch of each stage.

use super::TrainData;
use crate::error::input;
use crate::train;
use anyhow::Result;
use serde_json::json;

/// One comma-separated value (clap derive special-cases the literal `Vec`).
type Sizes = Vec<usize>;

/// Seconds per training epoch of each stage (8,000 images, batch 64).
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Epochs timed per stage (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    #[arg(long, default_value = "128,64", value_parser = super::parse_sizes)]
    pub hidden: Sizes,
    /// Time a network of this architecture instead of the MLP (see `ratflow train --arch`).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Where tensors live: cpu, cuda, cuda:N (needs the `cuda` build feature), metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Rescale width of the RAT stages.
    #[arg(long, default_value = "4", value_parser = super::parse_k)]
    pub k: u32,
    /// Threads for the matrix products.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    #[command(flatten)]
    pub data: TrainData,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &Args) -> Result<()> {
    crate::train::set_threads(a.threads as usize);
    let (epochs, hidden, k, threads, data, as_json) = (
        a.epochs,
        a.hidden.clone(),
        a.k,
        a.threads as usize,
        &a.data,
        a.json,
    );
    if epochs == 0 {
        return Err(input("--epochs must be at least 1"));
    }
    let arch = a
        .arch
        .as_deref()
        .map(train::arch::Arch::from_arg)
        .transpose()?;
    let exec = train::exec::Exec::parse(&a.device).map_err(|e| input(format!("{e:#}")))?;
    let (train_set, test_set) = data.load()?;
    let job = train::bench::BenchJob {
        epochs,
        hidden,
        arch,
        exec,
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
