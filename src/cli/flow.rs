//! `ratflow flow`: the whole mission in one command, cached by content.

use super::{parse_k, parse_rounding};
use crate::data;
use crate::error::input;
use crate::quant::Rounding;
use anyhow::Result;
use std::path::PathBuf;

/// The whole flow on the bundled data: train, sweep, RTL, vectors, co-simulation, synthesis,
/// REPORT.md. Re-running skips stages whose inputs did not change.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
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

pub fn run(a: &Args) -> Result<()> {
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
